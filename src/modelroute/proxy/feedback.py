"""``POST /v1/feedback``: a score (0..1) or thumbs (up/down) on an answer, joined by its request id.

The answer's ``x-modelroute-request-id`` names it; the reply echoes what the feedback was joined
to (policy, route, model, experiment arm). Unknown or expired ids get 404 ``request_not_found``,
a second feedback on one answer 409 ``feedback_exists``.
"""

from __future__ import annotations

from aiohttp import web

from modelroute.feedback import FeedbackError, parse_feedback
from modelroute.proxy.errors import BadRequest, ClientError
from modelroute.proxy.ingress import read_json
from modelroute.proxy.state import SERVICES
from modelroute.quality.hook import MeasurementHook


def measurement_hook(app: web.Application) -> MeasurementHook:
    for hook in app[SERVICES].hooks.items:
        if isinstance(hook, MeasurementHook):
            return hook
    raise ClientError("feedback is not enabled on this sidecar", status=404, code="feedback_disabled")


async def handle(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_json(request, 64 * 1024)
    try:
        request_id, feedback = parse_feedback(body)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_feedback") from None
    hook = measurement_hook(request.app)
    try:
        served = hook.record_feedback(services.metrics.registry, request_id, feedback)
    except FeedbackError as exc:
        raise ClientError(str(exc), status=exc.status, code=exc.code, param="request_id") from None
    return web.json_response({"object": "feedback", "recorded": feedback.kind, "score": feedback.score, **served.to_dict()})
