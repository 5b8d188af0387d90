"""The measurement hook: quality checks, sampled judge, regret sampling, feedback index, arm metrics.

Registered in :func:`modelroute.proxy.app.default_hooks`. Its ``settled`` runs after the answer
has gone out (the exchange records itself on the next turn of the event loop). It keeps what the
checks need (the answer's text, for the usual answer) and samples the judge, and the exchange is
gone. :meth:`MeasurementHook.flush` indexes the requests for feedback and checks their answers
together, :data:`BATCH_SECONDS` later or once :data:`BATCH_MAX` wait: in a batch the checks' code
and tables stay in cache, and no exchange is kept alive for the collector to walk
(bench/README.md has the figures). Feedback, a ``/metrics`` scrape and :meth:`drain` flush first,
so none of them misses an answer already sent. Judge calls and regret re-runs go to a bounded
:class:`BackgroundQueue` (dropped and counted when full), so the loop never waits on them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from modelroute.feedback import Feedback, RequestIndex, Served, ServedLabels
from modelroute.policy import CompiledPolicy
from modelroute.quality import judge
from modelroute.quality.background import BackgroundQueue, Queued, RateLimiter
from modelroute.quality.config import QualityConfig, quality_config
from modelroute.quality.heuristics import check_prose, plain_prose, run_checks
from modelroute.quality.metrics import MeasureMetrics, QualityLabels
from modelroute.routing import ModelClient
from modelroute.routing.answers import AnswerBuilder, read_answer
from modelroute.telemetry.cost import cost_usd

if TYPE_CHECKING:
    from modelroute.contract.hooks import Admission, RequestRecord

log = logging.getLogger("modelroute.quality")

#: RequestRecords settled within this many seconds are indexed and checked together ...
BATCH_SECONDS = 0.05
#: ... or as soon as this many wait.
BATCH_MAX = 256

#: A settled exchange waiting for the batch: request id, labels, settings, the answer (its text when
#: :func:`plain_prose` reads it, a stream's chunk payloads, else the body; None when there is no
#: answer to check), response format.
_Waiting = tuple[str, tuple[ServedLabels, QualityLabels], QualityConfig, "str | Mapping[str, Any] | list[bytes] | None", str]


class MeasurementHook:
    """Process-wide (outlives policy reloads); settings come from each request's policy."""

    collects_answers = True  # streamed answers are reassembled for the checks

    def __init__(self, seed: int | None = None) -> None:
        self.index = RequestIndex()
        self.queue = BackgroundQueue(self._job_result)
        self.limiter = RateLimiter()
        self._metrics: MeasureMetrics | None = None
        self._registry: CollectorRegistry | None = None
        self._configs: dict[str, QualityConfig] = {}
        self._rng = random.Random(seed)
        self._labels: dict[tuple[str, str, str | None, str, str], tuple[ServedLabels, QualityLabels]] = {}
        self._waiting: list[_Waiting] = []
        self._timer: asyncio.TimerHandle | None = None

    # -- the hook interface ----------------------------------------------------------------------

    def phases(self, policy: CompiledPolicy) -> frozenset[str]:
        return frozenset({"settled"})

    async def admit(self, ex: Admission) -> None:
        return None

    def skip(self, ex: RequestRecord, model: str) -> str | None:
        return None

    def settled(self, ex: RequestRecord) -> None:
        """Note what the batch needs while the exchange is still in cache; sample the judge."""
        decision = ex.decision
        if ex.operation != "chat" or decision is None:
            return
        policy = ex.policy
        cfg = self.config(policy)
        experiment = decision.annotations.get("experiment") or ""
        arm = decision.annotations.get("arm") or "" if experiment else ""
        key = (policy.version, decision.route, ex.served, experiment, arm)
        labels = self._labels.get(key) or self._new_labels(key, policy.name)
        metrics = self._metrics
        assert metrics is not None, "the quality feature was not started"
        if experiment:
            cost = float(ex.cost())
            baseline = float(ex.baseline_cost()) if ex.usage is not None else 0.0
            metrics.record_arm((policy.name, experiment, arm), ex.status, cost, baseline, ex.seconds)
        answer: str | Mapping[str, Any] | list[bytes] | None = None
        fmt = ""
        if ex.status == "ok" and ex.view is not None:
            chunks = ex.answer_chunks  # a stream's: the batch reassembles it
            body = ex.answer if chunks is None else None
            if chunks is not None or body is not None:
                fmt = ex.view.response_format
                answer = chunks if body is None else plain_prose(body, fmt) or body  # the usual answer: its text
                if cfg.background:
                    self._sample(ex, labels[1], cfg)
        waiting = self._waiting
        waiting.append((ex.request_id, labels, cfg, answer, fmt))
        if len(waiting) == 1:
            self._timer = asyncio.get_running_loop().call_later(BATCH_SECONDS, self.flush)
        elif len(waiting) >= BATCH_MAX:
            self.flush()

    def flush(self) -> None:
        """Index and check every exchange settled since the last flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        assert self._metrics is not None  # settled() made them before it queued anything
        add, tally = self.index.add, self._metrics.checks.add
        for request_id, labels, cfg, answer, fmt in waiting:
            add(request_id, labels[0], cfg.feedback_ttl)
            if answer is None:
                continue
            try:
                if isinstance(answer, str):
                    results = check_prose(answer, cfg.refusals)
                else:
                    body = AnswerBuilder.for_checks(answer, fmt) if isinstance(answer, list) else answer
                    results = run_checks(body, fmt, cfg.refusals)
            except Exception:
                log.exception("quality checks failed for %s", request_id)
                continue
            tally(labels[1], results)

    def _new_labels(self, key: tuple[str, str, str | None, str, str], policy: str) -> tuple[ServedLabels, QualityLabels]:
        """The index's and the metrics' labels of a (policy version, route, model, experiment,
        arm), made once and shared by all its requests."""
        if len(self._labels) > 4096:  # routes x models x arms of the live versions are far fewer
            self._labels.clear()
        version, route, model, experiment, arm = key
        found = self._labels[key] = ((policy, version, route, model or "none", str(experiment), str(arm)),
                                     (policy, route, model or "none", str(experiment), str(arm)))
        return found

    # -- settings and metrics -------------------------------------------------------------------

    def config(self, policy: CompiledPolicy) -> QualityConfig:
        cfg = self._configs.get(policy.version)
        if cfg is None:
            if len(self._configs) > 16:
                self._configs.clear()
            cfg = self._configs[policy.version] = quality_config(policy.extensions)
        return cfg

    def metrics(self, registry: CollectorRegistry) -> MeasureMetrics:
        if self._metrics is None or self._registry is not registry:
            self._metrics, self._registry = MeasureMetrics(registry), registry
        return self._metrics

    def _job_result(self, policy: str, kind: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.jobs.labels(policy, kind, result).inc()

    # -- after the answer --------------------------------------------------------------------------

    def _sample(self, ex: RequestRecord, labels: QualityLabels, cfg: QualityConfig) -> None:
        policy = labels[0]
        if cfg.judge_rate > 0 and self._rng.random() < cfg.judge_rate:
            self.queue.submit(Queued("judge", policy, lambda: self._judge(ex, labels, cfg)), cfg.queue_size, cfg.workers)
        cheap = ex.served is not None and ex.served != ex.policy.baseline and ex.usage is not None
        if cheap and cfg.regret_rate > 0 and self._rng.random() < cfg.regret_rate:
            if not self.limiter.allow(cfg.regret_per_minute):
                self._job_result(policy, "regret", "dropped_rate_limited")
            else:
                swap = self._rng.random() < 0.5
                self.queue.submit(Queued("regret", policy, lambda: self._regret(ex, labels, cfg, swap)), cfg.queue_size, cfg.workers)

    async def _judge(self, ex: RequestRecord, labels: QualityLabels, cfg: QualityConfig) -> None:
        assert cfg.judge is not None and ex.view is not None and ex.answer is not None and self._metrics is not None
        client = _client(ex)
        verdict = await judge.score(client, cfg.judge, ex.view.prompt_text(), _answer_text(ex.answer))
        self._metrics.quality_cost.labels(labels[0], "judge", verdict.model).inc(verdict.cost_usd)
        assert isinstance(verdict.value, float)
        self._metrics.judge.observe(labels, verdict.value)

    async def _regret(self, ex: RequestRecord, labels: QualityLabels, cfg: QualityConfig, swap: bool) -> None:
        """Re-run the request on the baseline, then let the judge say which answer is better."""
        assert cfg.judge is not None and ex.view is not None and ex.answer is not None and self._metrics is not None
        m, policy = self._metrics, ex.policy
        spec = policy.models[policy.baseline]
        body = {k: v for k, v in ex.view.body.items() if k not in ("stream", "stream_options", "n")}
        body["model"] = policy.baseline
        rerun = await ex.runtime.provider_for(policy.baseline).chat(body, spec, timeout=policy.timeouts.attempt_seconds, headers={})
        rerun_cost = float(cost_usd(rerun.usage, spec.pricing))
        m.quality_cost.labels(labels[0], "regret", policy.baseline).inc(rerun_cost)
        client = _client(ex)
        verdict = await judge.compare(client, cfg.judge, ex.view.prompt_text(), _answer_text(ex.answer),
                                      _answer_text(rerun.body), swap)
        m.quality_cost.labels(labels[0], "judge", verdict.model).inc(verdict.cost_usd)
        m.regret.labels(*labels[:3], str(verdict.value)).inc()
        m.regret_saved.labels(*labels[:3]).inc(max(0.0, rerun_cost - float(ex.cost())))

    # -- feedback ------------------------------------------------------------------------------

    def record_feedback(self, registry: CollectorRegistry, request_id: str, feedback: Feedback) -> Served:
        """Join feedback to its request and count it; FeedbackError (404/409) when it cannot be joined."""
        self.flush()  # the request may still wait in the batch
        served = self.index.claim(request_id, feedback.kind)
        metrics = self.metrics(registry)
        metrics.feedback_kinds.labels(*served.labels(), feedback.kind).inc()
        metrics.feedback.observe(served.labels(), feedback.score)
        return served

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for scheduled checks and queued jobs (tests and shutdown)."""
        await asyncio.sleep(0)  # exchanges settle on the next turn of the loop
        self.flush()
        await self.queue.drain(timeout)


def _client(ex: RequestRecord) -> ModelClient:
    """The narrow client for the judge, on the request's own runtime (its providers and session);
    untraced: the judge runs in the background, and its worker may outlive the request whose
    trace context it was started in."""
    return ex.runtime.model_client()


def _answer_text(body: Mapping[str, Any]) -> str:
    """The answer as the judge reads it: its text, then a line per tool call."""
    answer = read_answer(body)
    if not answer.tool_calls:
        return answer.text
    return answer.text + "\n" + "\n".join(_call_line(c) for c in answer.tool_calls)


def _call_line(call: Mapping[str, Any]) -> str:
    fn = call.get("function")
    fn = fn if isinstance(fn, Mapping) else {}
    return f"[tool call {fn.get('name')}: {fn.get('arguments')}]"
