"""The exceptions that carry an answer other than the model's out of the pipeline and its features.

Exception tree::

    ClientError                 an answer other than the model's (status, OpenAI error object)
    ├── BadRequest              400 invalid_request_error
    ├── NotFound                404 (unknown model, unknown path)
    ├── PayloadTooLarge         413
    └── UpstreamFailure         every candidate failed: 429, 502, 503 or 504, naming the models tried

Messages never contain keys or prompts.
"""

from __future__ import annotations

from typing import Any, Mapping


class ClientError(Exception):
    status = 400
    type = "invalid_request_error"
    #: How the request is recorded (metrics, span): "error", or e.g. "deferred" for an answer that
    #: is not a failure but leaves the handler the same way (a 202 with a batch handle).
    outcome = "error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 headers: Mapping[str, str] | None = None, status: int | None = None, type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class BadRequest(ClientError):
    status = 400


class NotFound(ClientError):
    status = 404


class PayloadTooLarge(ClientError):
    status = 413


class UpstreamFailure(ClientError):
    status = 502
    type = "upstream_error"


def from_upstream(error: Mapping[str, Any], status: int) -> ClientError:
    """An upstream 4xx the client must see (its own request is wrong), in OpenAI format."""
    return ClientError(
        str(error.get("message") or "the provider rejected the request"),
        code=error.get("code"),
        param=error.get("param"),
        status=status,
        type=str(error.get("type") or "invalid_request_error"),
    )
