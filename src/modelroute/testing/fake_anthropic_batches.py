"""Message Batches and Models of the fake Anthropic provider (:class:`~modelroute.testing.fake_anthropic.FakeAnthropic`).

In the shapes of Anthropic's API reference (https://docs.anthropic.com/en/api/creating-message-batches,
``/retrieving-message-batches``, ``/listing-message-batches``, ``/canceling-message-batches``,
``/deleting-message-batches``, ``/retrieving-message-batch-results``, ``/models-list``, ``/models``)
and the ``anthropic`` SDK's types (``anthropic/types/messages/message_batch*.py``, ``model_info.py``):

* ``POST /v1/messages/batches`` takes ``requests`` of ``{custom_id, params}`` and answers a
  ``message_batch`` with ``processing_status: in_progress`` and ``request_counts``; it ends on its
  ``polls_to_end``-th retrieval (or at once with :meth:`MessageBatches.end_all`);
* ``POST .../{id}/cancel`` makes it ``canceling``; the next retrieval ends it, the requests not yet
  processed ``canceled``;
* once ended, ``results_url`` names ``GET .../{id}/results``: JSONL lines ``{custom_id, result}`` with
  ``result.type`` ``succeeded`` (the fake's deterministic Messages answer), ``errored`` (the 400 the
  Messages endpoint would have given, as an Anthropic error body), ``canceled`` or ``expired``
  (``expire`` names the custom ids that expire);
* ``GET /v1/messages/batches`` lists newest first (``limit``, ``after_id``, ``before_id``);
  ``DELETE .../{id}`` deletes an ended batch;
* ``GET /v1/models`` and ``/v1/models/{id}`` answer ``model`` objects.

Timestamps are RFC 3339 strings, as the API writes them.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from modelroute.providers.anthropic_errors import anthropic_error_body
from modelroute.testing.fake_anthropic_rules import check_request
from modelroute.testing.server import Received

if TYPE_CHECKING:
    from modelroute.testing.fake_anthropic import FakeAnthropic

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def error(status: int, message: str, kind: str | None = None) -> web.Response:
    return web.json_response({**anthropic_error_body(status, message, kind), "request_id": "req_fake"}, status=status)


def _now(shift_days: int = 0) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=shift_days)
    return when.isoformat().replace("+00:00", "Z")


class MessageBatches:
    """The batch and model routes of one fake, reading and writing ``fake.batches``."""

    def __init__(self, fake: FakeAnthropic) -> None:
        self.fake = fake

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages/batches", self._create)
        app.router.add_get("/v1/messages/batches", self._list)
        app.router.add_get("/v1/messages/batches/{id}", self._retrieve)
        app.router.add_delete("/v1/messages/batches/{id}", self._delete)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self._cancel)
        app.router.add_get("/v1/messages/batches/{id}/results", self._results)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{id}", self._model)

    def _refused(self, request: web.Request) -> web.Response | None:
        if not self.fake.authorized(request):
            return error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error(400, "anthropic-version: header is required")
        return None

    def _batch(self, request: web.Request) -> dict[str, Any] | web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        batch = self.fake.batches.get(request.match_info["id"])
        if batch is None:
            return error(404, f"Message batch {request.match_info['id']} not found.")
        return batch

    # -- create ------------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return error(400, "There was an error parsing the body of your request.")
        if self.fake.record:
            self.fake.requests.append(Received(request.path, dict(request.headers), body if isinstance(body, dict) else {}))
        problem = _check(body)
        if problem is not None:
            return error(400, problem)
        id = "msgbatch_" + secrets.token_hex(12)
        batch = {"id": id, "type": "message_batch", "processing_status": "in_progress",
                 "request_counts": {"processing": len(body["requests"]), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
                 "ended_at": None, "created_at": _now(), "expires_at": _now(1), "archived_at": None,
                 "cancel_initiated_at": None, "results_url": None}
        self.fake.batches[id] = batch
        self.fake.batch_requests[id] = list(body["requests"])
        self.fake.batch_polls[id] = 0
        return web.json_response(batch)

    # -- lifecycle ---------------------------------------------------------------------------
    async def _retrieve(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        if isinstance(batch, web.Response):
            return batch
        self.fake.batch_polls[batch["id"]] += 1
        if batch["processing_status"] == "canceling" or (
                batch["processing_status"] == "in_progress" and self.fake.batch_polls[batch["id"]] >= self.fake.polls_to_end):
            self.end(batch)
        return web.json_response(batch)

    async def _cancel(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        if isinstance(batch, web.Response):
            return batch
        if batch["processing_status"] == "in_progress":
            batch.update(processing_status="canceling", cancel_initiated_at=_now())
        return web.json_response(batch)

    async def _delete(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        if isinstance(batch, web.Response):
            return batch
        if batch["processing_status"] != "ended":
            return error(400, f"Message batch {batch['id']} cannot be deleted while it is {batch['processing_status']}; "
                              "cancel it first.")
        del self.fake.batches[batch["id"]]
        return web.json_response({"id": batch["id"], "type": "message_batch_deleted"})

    def end_all(self) -> None:
        for batch in self.fake.batches.values():
            if batch["processing_status"] != "ended":
                self.end(batch)

    def end(self, batch: dict[str, Any]) -> None:
        """Process (or cancel) every request of ``batch`` and end it."""
        canceling = batch["processing_status"] == "canceling"
        lines = []
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for line in self.fake.batch_requests[batch["id"]]:
            result = self._result(line, canceling)
            counts[result["type"]] += 1
            lines.append({"custom_id": line["custom_id"], "result": result})
        self.fake.batch_results[batch["id"]] = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        batch.update(processing_status="ended", request_counts=counts, ended_at=_now(),
                     results_url=f"{self.fake.url}/v1/messages/batches/{batch['id']}/results")

    def _result(self, line: dict[str, Any], canceling: bool) -> dict[str, Any]:
        if canceling:
            return {"type": "canceled"}
        if line["custom_id"] in self.fake.expire:
            return {"type": "expired"}
        params = line["params"]
        problem = check_request(params, count=False) or ("stream: batch requests cannot stream" if params.get("stream") else None)
        if problem is not None:
            return {"type": "errored", "error": {**anthropic_error_body(400, problem), "request_id": None}}
        return {"type": "succeeded", "message": self.fake.answer_message(params)}

    async def _results(self, request: web.Request) -> web.Response:
        batch = self._batch(request)
        if isinstance(batch, web.Response):
            return batch
        if batch["processing_status"] != "ended":
            return error(400, f"Message batch {batch['id']} has not ended yet: its results are not available.")
        return web.Response(body=self.fake.batch_results[batch["id"]], content_type="application/binary")

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        batches = list(reversed(self.fake.batches.values()))
        return web.json_response(_page(batches, request))

    # -- models ------------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        return refused or web.json_response(_page([_model(n) for n in sorted(self.fake.models)], request))

    async def _model(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        name = request.match_info["id"]
        if name not in self.fake.models:
            return error(404, f"model: {name}")
        return web.json_response(_model(name))


def _check(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    extra = sorted(set(body) - {"requests"})
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return "requests: List should have at least 1 item after validation, not 0"
    seen = set()
    for i, line in enumerate(requests):
        if not isinstance(line, dict) or not isinstance(line.get("params"), dict):
            return f"requests.{i}.params: Field required"
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            return f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if custom_id in seen:
            return f"requests: custom_id values must be unique within a batch (duplicate: {custom_id})"
        seen.add(custom_id)
    return None


def _model(name: str) -> dict[str, Any]:
    words = [p.capitalize() for p in re.sub(r"(\d)-(?=\d)", r"\1.", name.removeprefix("claude-")).split("-")]
    display = " ".join(words)  # claude-sonnet-4-5 -> Sonnet 4.5
    return {"type": "model", "id": name, "display_name": f"Claude {display}", "created_at": "2025-09-29T00:00:00Z",
            "lifecycle": "active"}


def _page(data: list[dict[str, Any]], request: web.Request) -> dict[str, Any]:
    """Anthropic's list page: ``limit`` (default 20), ``after_id`` / ``before_id`` cursors."""
    ids = [d["id"] for d in data]
    after, before = request.query.get("after_id"), request.query.get("before_id")
    if after in ids:
        data = data[ids.index(after) + 1:]
    elif before in ids:
        data = data[: ids.index(before)]
    limit = int(request.query.get("limit", "20"))
    page = data[-limit:] if before in ids else data[:limit]
    return {"data": page, "has_more": len(data) > limit, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None}
