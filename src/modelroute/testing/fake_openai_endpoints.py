"""The OpenAI endpoints a sidecar passes through unrouted, as the fake OpenAI provider answers them.

In the shapes of OpenAI's API reference (https://platform.openai.com/docs/api-reference) and the
``openai`` SDK's types: ``/v1/moderations``, legacy ``/v1/completions`` (whole and streamed),
``/v1/images/generations``, ``/v1/audio/transcriptions`` and ``/v1/audio/translations`` (multipart,
read as a stream and counted, never held: a 200 MB upload allocates chunks of 64 KiB),
``/v1/audio/speech`` (a binary answer written in chunks), ``/v1/files`` (upload for any purpose the
API knows, list, get, delete, content), ``/v1/vector_stores`` (create, list, get, delete) and
``/v1/models`` / ``/v1/models/{id}``.

Every request is recorded as a :class:`Hit` (method, path, query, headers, byte count and SHA-256
of the body or of each uploaded file), so a test can check the bytes came through a sidecar
unchanged. Answers are deterministic functions of what was received, so the test can check the
bytes went back unchanged too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

if TYPE_CHECKING:
    from modelroute.testing.fake_openai import FakeOpenAI

CHUNK = 64 * 1024
#: Purposes ``POST /v1/files`` accepts.
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MODERATION_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
                         "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
                         "violence/graphic")
#: A 1x1 transparent PNG: the fake's image.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@dataclass
class Upload:
    """One uploaded file of a multipart body, counted and hashed as it streamed in."""

    filename: str
    size: int
    sha256: str
    content: bytes | None = None  # kept only where the API keeps files


@dataclass
class Hit:
    """A request to a pass-through endpoint, as the fake received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    size: int = 0  # body bytes (for multipart: the uploaded files' bytes)
    sha256: str = ""  # of the body (JSON and other single bodies)
    body: Any = None  # the JSON body, when it was JSON
    fields: dict[str, str] = field(default_factory=dict)  # multipart text fields
    files: dict[str, Upload] = field(default_factory=dict)  # multipart file fields


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def obj(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "expires_at": None,
                "status_details": None}


def error(status: int, message: str, param: str | None = None, code: str | None = None,
          kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status)


def invalid_url(request: web.Request) -> web.Response:
    """OpenAI's answer to a path it does not serve."""
    return error(404, f"Invalid URL ({request.method} {request.path})")


class Endpoints:
    """The pass-through endpoints of one fake, recording into ``fake.hits``."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake

    def routes(self, app: web.Application) -> None:
        add = app.router
        add.add_post("/v1/moderations", self._moderations)
        add.add_post("/v1/completions", self._completions)
        add.add_post("/v1/images/generations", self._images)
        add.add_post("/v1/audio/transcriptions", self._transcription)
        add.add_post("/v1/audio/translations", self._transcription)
        add.add_post("/v1/audio/speech", self._speech)
        add.add_post("/v1/files", self._upload)
        add.add_get("/v1/files", self._files)
        add.add_get("/v1/files/{id}", self._file)
        add.add_delete("/v1/files/{id}", self._file)
        add.add_get("/v1/files/{id}/content", self._content)
        add.add_post("/v1/vector_stores", self._vector_store_create)
        add.add_get("/v1/vector_stores", self._vector_stores)
        add.add_get("/v1/vector_stores/{id}", self._vector_store)
        add.add_delete("/v1/vector_stores/{id}", self._vector_store)
        add.add_get("/v1/models", self._models)
        add.add_get("/v1/models/{id}", self._model)

    # -- receiving ---------------------------------------------------------------------------
    async def _hit(self, request: web.Request, keep_files: bool = False) -> tuple[Hit, web.Response | None]:
        hit = Hit(request.method, request.path, request.query_string, dict(request.headers))
        self.fake.hits.append(hit)
        if request.content_type.startswith("multipart/"):
            await self._multipart(request, hit, keep_files)
        elif request.can_read_body:
            digest = hashlib.sha256()
            data = bytearray()
            async for chunk in request.content.iter_chunked(CHUNK):
                digest.update(chunk)
                hit.size += len(chunk)
                data += chunk
            hit.sha256 = digest.hexdigest()
            if request.content_type == "application/json":
                try:
                    hit.body = json.loads(data)
                except ValueError:
                    return hit, error(400, "We could not parse the JSON body of your request.")
        if not self.fake.authorized(request):
            return hit, error(401, "Incorrect API key provided.", None, "invalid_api_key")
        return hit, None

    async def _multipart(self, request: web.Request, hit: Hit, keep: bool) -> None:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                hit.fields[part.name] = (await part.read()).decode()
                continue
            digest, size, kept = hashlib.sha256(), 0, bytearray()
            while chunk := await part.read_chunk(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if keep:
                    kept += chunk
            hit.files[part.name] = Upload(part.filename, size, digest.hexdigest(), bytes(kept) if keep else None)
            hit.size += size

    # -- model endpoints ---------------------------------------------------------------------
    async def _moderations(self, request: web.Request) -> web.Response:
        hit, early = await self._hit(request)
        if early is not None:
            return early
        body = hit.body if isinstance(hit.body, dict) else {}
        inputs = body.get("input")
        if inputs is None:
            return error(400, "Missing required parameter: 'input'.", "input", "missing_required_parameter")
        texts = [inputs] if isinstance(inputs, str) else [str(i.get("text", "")) if isinstance(i, dict) else str(i) for i in inputs]
        results = []
        for text in texts:
            violent = any(word in text.lower() for word in ("kill", "violence"))
            flags = {c: c == "violence" and violent for c in MODERATION_CATEGORIES}
            results.append({"flagged": violent, "categories": flags,
                            "category_scores": {c: 0.9 if flags[c] else 0.0001 for c in MODERATION_CATEGORIES},
                            "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES}})
        return web.json_response({"id": "modr-" + secrets.token_hex(12), "model": body.get("model") or "omni-moderation-latest",
                                  "results": results})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        hit, early = await self._hit(request)
        if early is not None:
            return early
        body = hit.body if isinstance(hit.body, dict) else {}
        prompt = body.get("prompt")
        prompt = " ".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt or "")
        words = f"[{body.get('model')}] continued: {' '.join(prompt.split()[:12])}".split(" ")
        limit = body.get("max_tokens", 16)
        finish = "length" if isinstance(limit, int) and len(words) > limit else "stop"
        words = words[:limit] if isinstance(limit, int) else words
        base = {"id": "cmpl-" + secrets.token_hex(12), "object": "text_completion", "created": int(time.time()),
                "model": body.get("model"), "system_fingerprint": "fp_fake"}
        usage = {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": len(words),
                 "total_tokens": max(1, len(prompt) // 4) + len(words)}
        if not body.get("stream"):
            choice = {"text": " ".join(words), "index": 0, "logprobs": None, "finish_reason": finish}
            return web.json_response({**base, "choices": [choice], "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, word in enumerate(words):
            last = i == len(words) - 1
            choice = {"text": word if i == 0 else " " + word, "index": 0, "logprobs": None, "finish_reason": finish if last else None}
            await resp.write(b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _images(self, request: web.Request) -> web.Response:
        hit, early = await self._hit(request)
        if early is not None:
            return early
        body = hit.body if isinstance(hit.body, dict) else {}
        if not body.get("prompt"):
            return error(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
        n = body.get("n") or 1
        url = body.get("response_format") == "url"
        image = {"url": f"{self.fake.url}/images/{hashlib.sha256(PNG).hexdigest()[:16]}.png"} if url else {
            "b64_json": base64.b64encode(PNG).decode()}
        tokens = max(1, len(str(body["prompt"])) // 4)
        return web.json_response({"created": int(time.time()), "data": [image] * n, "size": body.get("size", "1024x1024"),
                                  "usage": {"input_tokens": tokens, "input_tokens_details": {"image_tokens": 0, "text_tokens": tokens},
                                            "output_tokens": 272 * n, "total_tokens": tokens + 272 * n}})

    async def _transcription(self, request: web.Request) -> web.Response:
        hit, early = await self._hit(request)
        if early is not None:
            return early
        upload = hit.files.get("file")
        if upload is None:
            return error(400, "Missing required parameter: 'file'.", "file", "missing_required_parameter")
        kind = "translated" if request.path.endswith("translations") else "transcribed"
        text = f"{kind} {upload.size} bytes of {upload.filename} (sha256 {upload.sha256[:16]})"
        if hit.fields.get("response_format") == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": max(1, upload.size // 16000)}})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        hit, early = await self._hit(request)
        if early is not None:
            return early
        body = hit.body if isinstance(hit.body, dict) else {}
        if not body.get("input"):
            return error(400, "Missing required parameter: 'input'.", "input", "missing_required_parameter")
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await resp.prepare(request)
        for chunk in speech_chunks(str(body["input"]), self.fake.speech_bytes):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    # -- files -------------------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.Response:
        hit, early = await self._hit(request, keep_files=True)
        if early is not None:
            return early
        purpose, upload = hit.fields.get("purpose"), hit.files.get("file")
        if upload is None or upload.content is None:
            return error(400, "Missing required parameter: 'file'.", "file", "missing_required_parameter")
        if purpose not in PURPOSES:
            return error(400, f"'{purpose}' is not one of {list(PURPOSES)} - 'purpose'", "purpose", "invalid_value")
        stored = StoredFile("file-" + secrets.token_hex(12), upload.filename, purpose, upload.content)
        self.fake.files[stored.id] = stored
        return web.json_response(stored.obj())

    async def _files(self, request: web.Request) -> web.Response:
        _, early = await self._hit(request)
        if early is not None:
            return early
        purpose = request.query.get("purpose")
        data = [f.obj() for f in self.fake.files.values() if purpose is None or f.purpose == purpose]
        return web.json_response(_page(data))

    async def _file(self, request: web.Request) -> web.Response:
        _, early = await self._hit(request)
        if early is not None:
            return early
        stored = self.fake.files.get(request.match_info["id"])
        if stored is None:
            return error(404, f"No such File object: {request.match_info['id']}", "id")
        if request.method == "DELETE":
            del self.fake.files[stored.id]
            return web.json_response({"id": stored.id, "object": "file", "deleted": True})
        return web.json_response(stored.obj())

    async def _content(self, request: web.Request) -> web.Response:
        _, early = await self._hit(request)
        if early is not None:
            return early
        stored = self.fake.files.get(request.match_info["id"])
        if stored is None:
            return error(404, f"No such File object: {request.match_info['id']}", "id")
        return web.Response(body=stored.content, content_type="application/octet-stream")

    # -- vector stores -----------------------------------------------------------------------
    async def _vector_store_create(self, request: web.Request) -> web.Response:
        hit, early = await self._hit(request)
        if early is not None:
            return early
        body = hit.body if isinstance(hit.body, dict) else {}
        file_ids = [str(f) for f in body.get("file_ids") or ()]
        missing = [f for f in file_ids if f not in self.fake.files]
        if missing:
            return error(404, f"No such File object: {missing[0]}", "file_ids")
        now = int(time.time())
        store = {"id": "vs_" + secrets.token_hex(12), "object": "vector_store", "created_at": now, "name": body.get("name", ""),
                 "usage_bytes": sum(len(self.fake.files[f].content) for f in file_ids),
                 "file_counts": {"in_progress": 0, "completed": len(file_ids), "failed": 0, "cancelled": 0, "total": len(file_ids)},
                 "status": "completed", "expires_after": body.get("expires_after"), "expires_at": None, "last_active_at": now,
                 "metadata": body.get("metadata") or {}}
        self.fake.vector_stores[store["id"]] = store
        return web.json_response(store)

    async def _vector_stores(self, request: web.Request) -> web.Response:
        _, early = await self._hit(request)
        return early or web.json_response(_page(list(reversed(self.fake.vector_stores.values()))))

    async def _vector_store(self, request: web.Request) -> web.Response:
        _, early = await self._hit(request)
        if early is not None:
            return early
        store = self.fake.vector_stores.get(request.match_info["id"])
        if store is None:
            return error(404, f"No vector store found with id '{request.match_info['id']}'.", None)
        if request.method == "DELETE":
            del self.fake.vector_stores[store["id"]]
            return web.json_response({"id": store["id"], "object": "vector_store.deleted", "deleted": True})
        return web.json_response(store)

    # -- models ------------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        _, early = await self._hit(request)
        names = sorted(self.fake.models or ())
        return early or web.json_response({"object": "list", "data": [_model(n) for n in names]})

    async def _model(self, request: web.Request) -> web.Response:
        _, early = await self._hit(request)
        if early is not None:
            return early
        name = request.match_info["id"]
        if self.fake.models is not None and name not in self.fake.models:
            return error(404, f"The model '{name}' does not exist", "model", "model_not_found")
        return web.json_response(_model(name))


def speech_chunks(text: str, size: int) -> list[bytes]:
    """The fake's audio for ``text``: ``size`` deterministic bytes, in chunks of 64 KiB."""
    seed = hashlib.sha256(text.encode()).digest()
    block = (seed * (CHUNK // len(seed) + 1))[:CHUNK]
    return [block[: min(CHUNK, size - start)] for start in range(0, size, CHUNK)]


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": "openai"}


def _page(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": False}
