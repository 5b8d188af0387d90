"""Measurement as a sidecar feature: the quality monitor's hook and ``POST /v1/feedback``.

``POST /v1/feedback`` takes a score (0..1) or thumbs (up/down) on an answer, joined by its
``x-modelroute-request-id``; the reply echoes what the feedback was joined to (policy, route,
model, experiment arm). Unknown or expired ids get 404 ``request_not_found``, a second feedback on
one answer 409 ``feedback_exists``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from modelroute.contract.errors import BadRequest, ClientError
from modelroute.contract.features import BaseFeature, Host, Route
from modelroute.contract.hooks import Hook
from modelroute.contract.http import read_json
from modelroute.feedback import FeedbackError, parse_feedback
from modelroute.quality.hook import MeasurementHook


class QualityFeature(BaseFeature):
    def __init__(self, seed: int | None = None) -> None:
        self.hook = MeasurementHook(seed)
        self.hooks: Sequence[Hook] = (self.hook,)

    def routes(self) -> Sequence[Route]:
        return (Route("POST", "/v1/feedback", self.feedback),)

    async def start(self, host: Host) -> None:
        await super().start(host)
        self.hook.metrics(host.registry)

    async def stop(self) -> None:
        await self.hook.queue.aclose()

    async def feedback(self, request: web.Request) -> web.Response:
        self.host.runtime()  # 503 no_policy before a policy is loaded, as every routed endpoint
        body = await read_json(request, 64 * 1024)
        try:
            request_id, feedback = parse_feedback(body)
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_feedback") from None
        try:
            served = self.hook.record_feedback(self.host.registry, request_id, feedback)
        except FeedbackError as exc:
            raise ClientError(str(exc), status=exc.status, code=exc.code, param="request_id") from None
        return web.json_response({"object": "feedback", "recorded": feedback.kind, "score": feedback.score, **served.to_dict()})
