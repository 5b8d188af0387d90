"""The attempt loop: try each candidate model in order until one answers. Fallback rules live here.

A candidate is skipped while its circuit breaker is open. A retryable failure (connection error,
timeout, 429, 5xx, context length, auth) moves on to the next candidate; a client error (the
request itself is wrong) is returned to the client at once. No attempt starts after the overall
deadline, and each attempt gets the smaller of its model's timeout and the time left. When every
candidate fails, :func:`all_failed` builds the answer: 429 (all rate limited upstream or by the
sidecar's own rpm/tpm buckets, with retry-after),
503 (all cooling down), 504 (timed out) or 502, naming the models tried.
"""

from __future__ import annotations

import math
import time
from typing import Awaitable, Callable, Generic, Mapping, TypeVar

from opentelemetry.trace import Span, Status, StatusCode

from modelroute.policy import ModelSpec
from modelroute.providers import UNHEALTHY, ErrorKind, Provider, ProviderError, Usage
from modelroute.contract.errors import ClientError, UpstreamFailure, from_upstream
from modelroute.proxy.exchange import Attempt, Exchange
from modelroute.routing import Review

T = TypeVar("T")
Call = Callable[[Provider, ModelSpec, float, Mapping[str, str]], Awaitable[T]]
ReviewFn = Callable[[str, T], Awaitable[Review | None]]
UsageOf = Callable[[T], Usage | None]
HeadersOf = Callable[[T], Mapping[str, str]]


class Outcome(Generic[T]):
    __slots__ = ("model", "result")

    def __init__(self, model: str, result: T) -> None:
        self.model = model
        self.result = result


async def attempt_each(
    ex: Exchange, call: Call[T], *, usage_of: UsageOf[T] | None = None, review: ReviewFn[T] | None = None,
    headers_of: HeadersOf[T] | None = None,
) -> Outcome[T]:
    """Run ``call`` on each candidate of the exchange's decision until one succeeds (and, with
    ``review``, is accepted). Raises ClientError when none does. ``headers_of`` reads an answer's
    upstream headers for the hooks' ``attempted`` phase (a failure carries its own)."""
    assert ex.decision is not None
    candidates = ex.decision.candidates
    breakers, policy = ex.services.breakers, ex.policy
    for index, name in enumerate(candidates):
        cooling = breakers.cooling(name)
        if cooling > 0:
            ex.attempts.append(Attempt(name, "skipped", "cooling_down", retry_after=cooling))
            continue
        held = ex.hooks.run_skip(ex, name) if ex.hooks.skip else None
        if held:
            ex.attempts.append(Attempt(name, "skipped", held, retry_after=getattr(held, "retry_after", None)))
            continue
        remaining = ex.deadline - time.monotonic()
        if remaining <= 0:
            ex.attempts.append(Attempt(name, "skipped", "deadline"))
            break
        spec = policy.models[name]
        timeout = min(spec.timeout_seconds or policy.timeouts.attempt_seconds, remaining)
        result = await _one(ex, name, spec, timeout, call, usage_of, headers_of)
        if result is None:
            continue
        last = index == len(candidates) - 1
        verdict = await review(name, result.result) if review is not None and not last else None
        if verdict is not None and not verdict.accept:
            ex.attempts[-1].outcome, ex.attempts[-1].reason = "rejected", verdict.reason
            continue
        return result
    raise all_failed(ex.attempts)


async def _one(ex: Exchange, name: str, spec: ModelSpec, timeout: float, call: Call[T],
               usage_of: UsageOf[T] | None, headers_of: HeadersOf[T] | None) -> Outcome[T] | None:
    """One attempt; None when it failed in a way that lets the next candidate try."""
    span = ex.start_attempt_span(name)
    started = time.monotonic()
    attempt = Attempt(name, "ok")
    ex.attempts.append(attempt)
    try:
        result = await call(ex.runtime.provider_for(name), spec, timeout, ex.upstream_headers(span))
    except ProviderError as exc:
        attempt.outcome, attempt.reason, attempt.retry_after = "error", exc.kind.value, exc.retry_after
        if exc.kind is ErrorKind.NO_KEY:  # the operator's to fix: say where the key is expected
            attempt.detail = exc.message
        attempt.seconds = time.monotonic() - started
        _fail_span(span, exc)
        _count_failure(ex, name, exc)
        if ex.hooks.attempted and exc.status is not None:
            ex.hooks.run_attempted(ex, name, exc.headers)
        if not exc.retryable:
            raise from_upstream(exc.error or {"message": exc.message}, exc.status or 400) from None
        return None
    except BaseException as exc:  # cancelled (client went away) or a bug: close the span, then re-raise
        attempt.outcome, attempt.reason = "error", type(exc).__name__
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
        raise
    attempt.seconds = time.monotonic() - started
    attempt.usage = usage_of(result) if usage_of is not None else None
    if ex.hooks.attempted:
        ex.hooks.run_attempted(ex, name, headers_of(result) if headers_of is not None else {})
    ex.services.breakers.success(name)
    if attempt.usage is not None and span.is_recording():
        span.set_attributes({"gen_ai.usage.input_tokens": attempt.usage.input_tokens,
                             "gen_ai.usage.output_tokens": attempt.usage.output_tokens})
    span.end()
    return Outcome(name, result)


def _fail_span(span: Span, exc: ProviderError) -> None:
    span.set_attribute("error.type", exc.kind.value)
    if exc.status is not None:
        span.set_attribute("http.response.status_code", exc.status)
    span.set_status(Status(StatusCode.ERROR, exc.message))
    span.end()


def _count_failure(ex: Exchange, name: str, exc: ProviderError) -> None:
    breakers, config = ex.services.breakers, ex.policy.circuit_breaker
    if exc.kind is ErrorKind.RATE_LIMITED and exc.retry_after:
        breakers.cool_down(name, exc.retry_after, "rate limited")
    elif exc.kind in UNHEALTHY:
        breakers.failure(name, config, exc.kind.value)


def _rate_limit_skip(reason: str) -> bool:
    """A skip reason of the sidecar's own rate limits (:mod:`modelroute.ratelimits`): every such
    reason ends in ``_limit`` (``local_rpm_limit``, ``provider_tokens_limit``, ``reserved_rpm_limit``...)."""
    return reason.endswith("_limit")


def _rate_limited(reason: str) -> bool:
    return reason in ("rate_limited", "cooling_down") or _rate_limit_skip(reason)


def all_failed(attempts: list[Attempt]) -> ClientError:
    """The error answer when no candidate served the request."""
    tried = [a for a in attempts if a.outcome != "skipped"]
    summary = ", ".join(f"{a.model} ({a.reason}{': ' + a.detail if a.detail else ''})" for a in attempts) or "none"
    if not attempts:
        return UpstreamFailure("no model can serve this request", status=503, code="no_candidates")
    if all(_rate_limited(a.reason) for a in attempts) and (tried or any(_rate_limit_skip(a.reason) for a in attempts)):
        waits = [a.retry_after for a in attempts if a.retry_after]
        retry = str(max(1, math.ceil(min(waits)))) if waits else "1"
        return UpstreamFailure(f"every model is rate limited: {summary}", status=429, type="rate_limit_error",
                               code="rate_limit_exceeded", headers={"retry-after": retry})
    if not tried:
        waits = [a.retry_after for a in attempts if a.retry_after]
        headers = {"retry-after": str(math.ceil(min(waits)))} if waits else {}
        return UpstreamFailure(f"every model is cooling down: {summary}", status=503, code="models_unavailable", headers=headers)
    if attempts[-1].reason in ("timeout", "deadline"):
        return UpstreamFailure(f"the models timed out: {summary}", status=504, type="timeout_error", code="upstream_timeout")
    return UpstreamFailure(f"every model failed: {summary}", status=502, code="upstream_failed")
