"""The measurement hook: quality checks, sampled judge, regret sampling, feedback index, arm metrics.

Registered in :func:`modelroute.proxy.app.default_hooks`. Its ``settled`` runs after the answer
has gone out (the exchange records itself on the next turn of the event loop): it indexes the
request for feedback and runs the heuristic checks; judge calls and regret re-runs go to a bounded
:class:`BackgroundQueue` (dropped and counted when full), so the loop never waits on them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from modelroute.feedback import Feedback, RequestIndex, Served
from modelroute.policy import CompiledPolicy
from modelroute.quality import judge
from modelroute.quality.background import BackgroundQueue, Queued, RateLimiter
from modelroute.quality.config import QualityConfig, quality_config
from modelroute.quality.heuristics import run_checks
from modelroute.quality.metrics import MeasureMetrics
from modelroute.routing import ModelClient
from modelroute.routing.answers import read_answer
from modelroute.telemetry.cost import cost_usd

if TYPE_CHECKING:
    from modelroute.proxy.exchange import Exchange

log = logging.getLogger("modelroute.quality")


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

    # -- the hook interface ----------------------------------------------------------------------

    def phases(self, policy: CompiledPolicy) -> frozenset[str]:
        return frozenset({"settled"})

    async def admit(self, ex: Exchange) -> None:
        ex.collect_answer = True

    def skip(self, ex: Exchange, model: str) -> str | None:
        return None

    def settled(self, ex: Exchange) -> None:
        decision = ex.decision
        if ex.operation != "chat" or decision is None:
            return
        cfg = self.config(ex.policy)
        experiment = str(decision.annotations.get("experiment", ""))
        arm = str(decision.annotations.get("arm", "")) if experiment else ""
        served = Served(ex.request_id, ex.policy.name, ex.policy.version, decision.route, ex.served or "none",
                        experiment, arm, self.index.expires_at(cfg.feedback_ttl))
        self.index.add(served)
        metrics = self.metrics(ex.services.metrics.registry)
        if experiment:
            cost = float(ex.cost())
            baseline = float(ex.baseline_cost()) if ex.usage is not None else 0.0
            metrics.record_arm((ex.policy.name, experiment, arm), ex.status, cost, baseline, ex.seconds)
        if ex.answer is not None and ex.status == "ok":  # settled() already runs after the answer went out
            self._measure(ex, served, cfg)

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

    def _measure(self, ex: Exchange, served: Served, cfg: QualityConfig) -> None:
        try:
            assert ex.answer is not None and ex.view is not None and self._metrics is not None
            results = run_checks(ex.answer, ex.view.response_format, cfg.refusal_phrases)
            self._metrics.record_checks(served.labels(), results)
            if cfg.background:
                self._sample(ex, served, cfg)
        except Exception:
            log.exception("quality checks failed for %s", ex.request_id)

    def _sample(self, ex: Exchange, served: Served, cfg: QualityConfig) -> None:
        assert cfg.judge is not None
        policy = ex.policy.name
        if cfg.judge.sample_rate > 0 and self._rng.random() < cfg.judge.sample_rate:
            self.queue.submit(Queued("judge", policy, lambda: self._judge(ex, served, cfg)), cfg.queue_size, cfg.workers)
        cheap = ex.served is not None and ex.served != ex.policy.baseline and ex.usage is not None
        if cheap and cfg.regret_rate > 0 and self._rng.random() < cfg.regret_rate:
            if not self.limiter.allow(cfg.regret_per_minute):
                self._job_result(policy, "regret", "dropped_rate_limited")
            else:
                swap = self._rng.random() < 0.5
                self.queue.submit(Queued("regret", policy, lambda: self._regret(ex, served, cfg, swap)), cfg.queue_size, cfg.workers)

    async def _judge(self, ex: Exchange, served: Served, cfg: QualityConfig) -> None:
        assert cfg.judge is not None and ex.view is not None and ex.answer is not None and self._metrics is not None
        client = _client(ex)
        verdict = await judge.score(client, cfg.judge, ex.view.prompt_text(), _answer_text(ex.answer))
        self._metrics.quality_cost.labels(served.policy, "judge", verdict.model).inc(verdict.cost_usd)
        assert isinstance(verdict.value, float)
        self._metrics.judge.observe(served.labels(), verdict.value)

    async def _regret(self, ex: Exchange, served: Served, cfg: QualityConfig, swap: bool) -> None:
        """Re-run the request on the baseline, then let the judge say which answer is better."""
        assert cfg.judge is not None and ex.view is not None and ex.answer is not None and self._metrics is not None
        m, policy = self._metrics, ex.policy
        spec = policy.models[policy.baseline]
        body = {k: v for k, v in ex.view.body.items() if k not in ("stream", "stream_options", "n")}
        body["model"] = policy.baseline
        rerun = await ex.runtime.provider_for(policy.baseline).chat(body, spec, timeout=policy.timeouts.attempt_seconds, headers={})
        rerun_cost = float(cost_usd(rerun.usage, spec.pricing))
        m.quality_cost.labels(served.policy, "regret", policy.baseline).inc(rerun_cost)
        client = _client(ex)
        verdict = await judge.compare(client, cfg.judge, ex.view.prompt_text(), _answer_text(ex.answer),
                                      _answer_text(rerun.body), swap)
        m.quality_cost.labels(served.policy, "judge", verdict.model).inc(verdict.cost_usd)
        m.regret.labels(served.policy, served.route, served.model, str(verdict.value)).inc()
        m.regret_saved.labels(served.policy, served.route, served.model).inc(max(0.0, rerun_cost - float(ex.cost())))

    # -- feedback ------------------------------------------------------------------------------

    def record_feedback(self, registry: CollectorRegistry, request_id: str, feedback: Feedback) -> Served:
        """Join feedback to its request and count it; FeedbackError (404/409) when it cannot be joined."""
        served = self.index.claim(request_id, feedback.kind)
        metrics = self.metrics(registry)
        metrics.feedback_kinds.labels(*served.labels(), feedback.kind).inc()
        metrics.feedback.observe(served.labels(), feedback.score)
        return served

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for scheduled checks and queued jobs (tests and shutdown)."""
        await asyncio.sleep(0)
        await self.queue.drain(timeout)


def _client(ex: Exchange) -> ModelClient:
    """The narrow client for the judge, on the request's own runtime (its providers and session)."""
    from modelroute.proxy.model_client import (
        ProxyModelClient,  # proxy imports this module: import late
    )

    return ProxyModelClient(ex.policy, ex.runtime.providers)


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
