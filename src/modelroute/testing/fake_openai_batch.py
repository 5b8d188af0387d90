"""A fake OpenAI-compatible provider with the Batch API: :class:`FakeOpenAIBatch` extends
:class:`~modelroute.testing.fake_openai.FakeOpenAI` (chat, embeddings, responses, files, faults) with
``POST /v1/batches`` and ``GET /v1/batches/{id}``, reading and writing the fake's files.

Like OpenAI, a batch input file may name one model only (400 otherwise). A batch is
``validating`` when created and completes on its ``polls_to_complete``-th retrieval (or at once with
:meth:`complete_all`): every line is answered with the same deterministic answers and usage as the
real-time endpoint, into an output file of ``{custom_id, response: {status_code, body}}`` lines.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from modelroute.testing.fake_openai import (
    FakeOpenAI,
    _error,
    answer,
    completion_tokens,
    prompt_tokens,
)
from modelroute.testing.fake_openai_endpoints import StoredFile


@dataclass
class FakeOpenAIBatch(FakeOpenAI):
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls_to_complete: int = 1  # retrievals of a batch before it completes
    _polls: dict[str, int] = field(default_factory=dict)

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches/{id}", self._batch)

    async def _create(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key", "invalid_request_error")
        body = await request.json()
        stored = self.files.get(str(body.get("input_file_id")))
        if stored is None:
            return _error(400, "input_file_id does not exist", "invalid_file", "invalid_request_error")
        lines = [json.loads(line) for line in stored.content.splitlines() if line.strip()]
        models = {line["body"].get("model") for line in lines}
        if len(models) != 1:
            return _error(400, f"a batch may use one model only, got {sorted(map(str, models))}", "mixed_models", "invalid_request_error")
        batch = {
            "id": "batch_" + uuid.uuid4().hex[:24], "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
            "input_file_id": stored.id, "completion_window": body.get("completion_window"), "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": int(time.time()), "completed_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
        }
        self.batches[batch["id"]] = batch
        return web.json_response(batch)

    async def _batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None or not self.authorized(request):
            return _error(404, "No such Batch object", "not_found", "invalid_request_error")
        self._polls[batch["id"]] = polls = self._polls.get(batch["id"], 0) + 1
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
        if polls >= self.polls_to_complete and batch["status"] == "in_progress":
            self._complete(batch)
        return web.json_response(batch)

    def complete_all(self) -> None:
        for batch in self.batches.values():
            if batch["status"] in ("validating", "in_progress"):
                self._complete(batch)

    def _complete(self, batch: dict[str, Any]) -> None:
        out = []
        for raw in self.files[batch["input_file_id"]].content.splitlines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            body = line["body"]
            message, finish = answer(body)
            prompt, completion = prompt_tokens(body), completion_tokens(message)
            result = {"id": "chatcmpl-" + uuid.uuid4().hex[:20], "object": "chat.completion", "created": int(time.time()),
                      "model": body.get("model"), "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                      "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}
            out.append({"id": "batch_req_" + uuid.uuid4().hex[:16], "custom_id": line.get("custom_id"),
                        "response": {"status_code": 200, "request_id": uuid.uuid4().hex, "body": result}, "error": None})
        output = StoredFile("file-" + uuid.uuid4().hex[:24], "batch_output.jsonl", "batch_output",
                            b"".join(json.dumps(o).encode() + b"\n" for o in out))
        self.files[output.id] = output
        batch.update(status="completed", output_file_id=output.id, completed_at=int(time.time()),
                     request_counts={"total": len(out), "completed": len(out), "failed": 0})
