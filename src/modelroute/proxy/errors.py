"""Error answers in the OpenAI error format (the exception tree is :mod:`modelroute.contract.errors`)."""

from __future__ import annotations

import json
from typing import Mapping

from aiohttp import web

from modelroute.contract.errors import BadRequest, ClientError, NotFound, PayloadTooLarge, UpstreamFailure, from_upstream


def error_response(exc: ClientError, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=exc.status,
        body=json.dumps(exc.body()).encode(),
        content_type="application/json",
        headers={**(headers or {}), **exc.headers},
    )


__all__ = ["BadRequest", "ClientError", "NotFound", "PayloadTooLarge", "UpstreamFailure", "error_response", "from_upstream"]
