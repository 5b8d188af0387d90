"""OpenAI Responses clients (``POST /v1/responses``), and the responses they may read back.

The body is read once into chat's shape (:class:`ResponsesToChat`) for routing; built-in tools and
other Responses-only content do not refuse the request: routing reads a copy without them, and only
providers speaking Responses natively are candidates.

``previous_response_id`` works whichever model served the earlier turn: the sidecar expands it
into the conversation's items from its own store (:mod:`modelroute.proxy.responses_store`) before
anything else reads the request, so every provider gets a whole input, and item references are
resolved the same way. Each answer is kept (unless ``store: false``) for the next turn and for
``GET /v1/responses/{id}``, ``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``.

A stream that fails after its first event ends as the API ends one: an ``error`` event, then
``response.failed``, numbered on from the events already sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from aiohttp import web

from modelroute import _json as json
from modelroute.providers import ErrorKind, ProviderError
from modelroute.providers.responses_chat import ResponsesToChat
from modelroute.providers.responses_objects import new_id
from modelroute.providers.sse import encode
from modelroute.proxy.codecs import ClientCodec, Incoming
from modelroute.contract.errors import BadRequest, ClientError, NotFound
from modelroute.proxy.errors import error_response
from modelroute.proxy.responses_store import Missing, ResponseStore
from modelroute.contract.shapes import OPENAI

if TYPE_CHECKING:
    from modelroute.proxy.exchange import Exchange

_END = (b"response.completed", b"response.incomplete")


def check(body: Mapping[str, Any]) -> None:
    """The fields the sidecar reads, in OpenAI's words (the provider judges the rest)."""
    c = OPENAI
    if "model" not in body:
        raise BadRequest("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    c.typed(body, "string", ("model", "instructions", "previous_response_id", "user", "safety_identifier", "truncation"))
    c.typed(body, "boolean", ("stream", "store", "parallel_tool_calls", "background"))
    c.typed(body, "object", ("text", "reasoning", "metadata", "stream_options"))
    c.typed(body, "integer", ("max_output_tokens",))
    c.typed(body, "number", ("temperature", "top_p"))
    value = body.get("input")
    if value is not None and not isinstance(value, (str, list)):
        raise c.fail(("input",), "a string or an array", value)
    for at, item in c.items(body, "input") if isinstance(value, list) else ():
        c.typed(item, "string", ("type", "role", "id", "call_id", "name", "arguments"), at)
        content = item.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise c.fail((*at, "content"), "a string or an array", content)
        if isinstance(content, list):
            for part_at, part in c.items(item, "content", at):
                c.typed(part, "string", ("type", "text", "image_url", "file_id", "file_data", "detail"), part_at)
    for at, tool in c.items(body, "tools"):
        c.typed(tool, "string", ("type", "name", "description"), at)
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, (str, dict)):
        raise c.fail(("tool_choice",), "a string or an object", choice)


def _items(value: Any) -> list[dict[str, Any]]:
    """The request's ``input`` as items with ids (what ``input_items`` lists)."""
    if isinstance(value, str):
        return [{"id": new_id("msg"), "type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    out = []
    for item in value or ():
        if isinstance(item, dict):
            item = dict(item)
            if item.get("type") in (None, "message") and "id" not in item:
                item = {"id": new_id("msg"), "type": "message", **item}
            out.append(item)
    return out


class ResponsesCodec(ClientCodec):
    api = "responses"
    family = "openai"

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    def parse(self, body: dict[str, Any]) -> Incoming:
        check(body)
        own = _items(body.get("input"))
        previous = body.get("previous_response_id")
        history: list[Mapping[str, Any]] = []
        if previous is not None:
            try:
                history = self.store.history(previous)
            except Missing as exc:
                raise NotFound(f"Previous response with id '{exc.args[0]}' not found.", param="previous_response_id",
                               code="previous_response_not_found") from None
        expanded = {k: v for k, v in body.items() if k != "previous_response_id"}
        expanded["input"] = [self._resolved(i) for i in (*history, *own)]
        chat, native_only = self._as_chat(expanded)
        return Incoming(expanded, chat, stream=bool(body.get("stream")), native_only=native_only,
                        codec=_Turn(self, body, own))

    def _resolved(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        if item.get("type") != "item_reference":
            return item
        found = self.store.item(str(item.get("id")))
        if found is None:
            raise NotFound(f"Item with id '{item.get('id')}' not found.", param="input", code="item_not_found")
        return found

    @staticmethod
    def _as_chat(body: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        try:
            return ResponsesToChat().request(body), None
        except ProviderError as exc:  # TranslationError: Responses-only content
            why = exc.message
        try:
            return ResponsesToChat(lenient=True).request(body), why
        except ProviderError as exc:
            raise BadRequest(exc.message, code="unsupported_content") from None

    def stream_error(self, exc: ProviderError) -> bytes:  # the endpoint's codec never streams: a turn does
        return _Turn(self, {}, []).stream_error(exc)


class _Turn(ResponsesCodec):
    """One request's codec: counts the events sent (their sequence numbers), keeps the final
    response of a stream, and stores the answer."""

    def __init__(self, parent: ResponsesCodec, body: Mapping[str, Any], own: list[dict[str, Any]]) -> None:
        super().__init__(parent.store)
        self.body, self.own = body, own
        self.sent = 0
        self.response_id: str | None = None
        self.final: Mapping[str, Any] | None = None

    def frame(self, name: bytes | None, data: bytes) -> bytes | None:
        if self.sent == 0 or name in _END:
            self._read(json.loads(data))
        self.sent += 1
        return super().frame(name, data)

    def frame_event(self, name: str | None, payload: Mapping[str, Any]) -> bytes | None:
        if self.sent == 0 or name in ("response.completed", "response.incomplete"):
            self._read(payload)
        self.sent += 1
        return super().frame_event(name, payload)

    def _read(self, event: Any) -> None:
        response = event.get("response") if isinstance(event, Mapping) else None
        if isinstance(response, Mapping):
            self.response_id = self.response_id or str(response.get("id") or "")
            if event.get("type") in ("response.completed", "response.incomplete"):
                self.final = response

    def stream_error(self, exc: ProviderError) -> bytes:
        code = "rate_limit_exceeded" if exc.kind is ErrorKind.RATE_LIMITED else "server_error"
        message = "the upstream stream failed: " + exc.kind.value
        error = {"type": "error", "sequence_number": self.sent, "code": code, "message": message, "param": None}
        failed = {"type": "response.failed", "sequence_number": self.sent + 1,
                  "response": {"id": self.response_id or new_id("resp"), "object": "response", "status": "failed",
                               "error": {"code": code, "message": message}, "output": [], "usage": None}}
        return encode(json.dumps(error), "error") + encode(json.dumps(failed), "response.failed")

    def answered(self, ex: Exchange, answer: Mapping[str, Any] | None) -> None:
        response = answer if answer is not None else self.final
        if response is None or self.body.get("store") is False:
            return
        policy = ex.policy
        self.store.bound(policy.responses_store.max_bytes, policy.responses_store.ttl_seconds)
        self.store.put(response, self.own, self.body.get("previous_response_id"))


# -- reading back -----------------------------------------------------------------------------------


def _not_found(ident: str) -> ClientError:
    return NotFound(f"Response with id '{ident}' not found.", param=None, code=None)


def retrieve(store: ResponseStore) -> Any:
    async def get(request: web.Request) -> web.Response:
        entry = store.get(request.match_info["id"])
        if entry is None:
            return error_response(_not_found(request.match_info["id"]))
        return web.json_response(entry.response)

    return get


def delete(store: ResponseStore) -> Any:
    async def remove(request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        if not store.delete(ident):
            return error_response(_not_found(ident))
        return web.json_response({"id": ident, "object": "response.deleted", "deleted": True})

    return remove


def input_items(store: ResponseStore) -> Any:
    async def listing(request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        entry = store.get(ident)
        if entry is None:
            return error_response(_not_found(ident))
        items = list(entry.input_items)
        if request.query.get("order", "desc") == "desc":
            items.reverse()
        after = request.query.get("after")
        if after is not None:
            ids = [i.get("id") for i in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        try:
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError:
            return error_response(BadRequest("Invalid 'limit': expected an integer.", param="limit"))
        page = items[:limit]
        return web.json_response({"object": "list", "data": page, "first_id": page[0].get("id") if page else None,
                                  "last_id": page[-1].get("id") if page else None, "has_more": len(items) > limit})

    return listing
