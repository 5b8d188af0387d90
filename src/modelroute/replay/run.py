"""Replay a workload through a policy's real router and total what it would spend and deliver.

Per request, the router's decision (the sidecar's own code, offline) names the serving model. Its
cost is, in order of preference: the model's recorded cost (labelled lines), the recorded tokens
(plain lines with ``usage``) at its prices, or the estimate (input tokens estimated as the sidecar
does, ``max_tokens`` or 256 out). The baseline cost is the same for the policy's baseline model,
so a labelled line compares what each model really cost on that prompt. Quality is the mean of the
recorded ``correct`` over labelled lines whose serving model was recorded. Requests the sidecar
would refuse (unknown model, nothing eligible) are counted as errors, at no cost.

A cascade replays on labelled lines: the recorded answers stand in for the providers
(:mod:`modelroute.replay.recorded`), the cascade's own checks review them, a rejected answer
escalates, and the request costs every attempt and check, as in the sidecar. Checks whose replies
were never recorded (a judge) are refused and counted; the check then does what it does when its
model fails. On plain lines a cascade is replayed as its first candidate.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modelroute.policy import CompiledPolicy
from modelroute.providers.base import Usage
from modelroute.replay.offline import decide_offline, expected_cost, expected_usage
from modelroute.replay.recorded import RecordedClient, run_cascade
from modelroute.replay.workload import Item
from modelroute.routing import RequestView, Router

Progress = Callable[[int, int], None]


@dataclass
class Totals:
    requests: int = 0
    cost: float = 0.0
    baseline_cost: float = 0.0
    correct: float = 0.0  # sum of recorded correctness of the served answers
    baseline_correct: float = 0.0
    labelled: int = 0  # requests whose served model (and baseline) had a recorded outcome
    escalated: int = 0  # requests a cascade escalated at least once
    escalations: int = 0

    def add(self, cost: float, baseline: float, escalations: int = 0) -> None:
        self.requests += 1
        self.cost += cost
        self.baseline_cost += baseline
        self.escalated += escalations > 0
        self.escalations += escalations

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.requests if self.requests else None

    @property
    def saving(self) -> float:
        return 1 - self.cost / self.baseline_cost if self.baseline_cost else 0.0

    @property
    def quality(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def baseline_quality(self) -> float | None:
        return self.baseline_correct / self.labelled if self.labelled else None

    def per_1000(self) -> float:
        return self.cost / self.requests * 1000 if self.requests else 0.0


@dataclass
class ReplayResult:
    policy: str
    version: str
    baseline: str
    total: Totals = field(default_factory=Totals)
    routes: dict[str, Totals] = field(default_factory=dict)
    mix: Counter[tuple[str, str]] = field(default_factory=Counter)  # (route, model) -> requests
    errors: Counter[str] = field(default_factory=Counter)
    estimated: int = 0  # requests costed from estimated tokens
    unlabelled_models: Counter[str] = field(default_factory=Counter)  # served models with no recorded outcome
    unreplayed_calls: Counter[str] = field(default_factory=Counter)  # model -> strategy calls with no recorded reply
    first_candidate_only: int = 0  # cascades replayed as their first candidate (no recorded answers)

    @property
    def requests(self) -> int:
        return self.total.requests + sum(self.errors.values())


def _cost(policy: CompiledPolicy, model: str, item: Item, view: RequestView) -> tuple[float, bool]:
    """(USD, estimated?) of ``model`` serving ``item``."""
    if item.labels is not None and model in item.labels:
        return item.labels[model].cost_usd, False
    if item.usage is not None:
        return float(expected_cost(policy, model, Usage(input_tokens=item.usage[0], output_tokens=item.usage[1]))), False
    return float(expected_cost(policy, model, expected_usage(view))), True


async def replay(policy: CompiledPolicy, items: Sequence[Item], progress: Progress | None = None) -> ReplayResult:
    client = RecordedClient()
    router = Router(policy, client)
    result = ReplayResult(policy.name, policy.version, policy.baseline)
    try:
        for n, item in enumerate(items, 1):
            client.item = item
            outcome = await decide_offline(router, item.body, item.headers)
            decision = outcome.decision
            if outcome.error or decision is None or outcome.model is None:
                result.errors[outcome.error or "no_model"] += 1
            else:
                cascaded = None
                if decision.reviewer is not None:
                    cascaded = await run_cascade(decision, outcome.view, item.labels) if item.labels is not None else None
                    result.first_candidate_only += cascaded is None
                if cascaded is None:
                    _account(result, policy, item, outcome.view, decision.route, outcome.model)
                else:
                    _account(result, policy, item, outcome.view, decision.route, cascaded.model,
                             cascaded.cost_usd, len(cascaded.escalations))
            if progress is not None and (n % 50 == 0 or n == len(items)):
                progress(n, len(items))
    finally:
        client.item = None
        await router.aclose()
    result.unreplayed_calls = client.refused
    return result


def _account(result: ReplayResult, policy: CompiledPolicy, item: Item, view: RequestView, route: str, model: str,
             paid: float | None = None, escalations: int = 0) -> None:
    """Count one routed request; ``paid`` is a replayed cascade's cost (every attempt and check)."""
    cost, estimated = (paid, False) if paid is not None else _cost(policy, model, item, view)
    baseline, _ = _cost(policy, policy.baseline, item, view)
    result.estimated += estimated
    result.mix[(route, model)] += 1
    totals = result.routes.setdefault(route, Totals())
    for t in (result.total, totals):
        t.add(cost, baseline, escalations)
    labels = item.labels
    if labels is not None:
        if model in labels and policy.baseline in labels:
            for t in (result.total, totals):
                t.labelled += 1
                t.correct += labels[model].correct
                t.baseline_correct += labels[policy.baseline].correct
        else:
            result.unlabelled_models[model if model not in labels else policy.baseline] += 1


def replay_sync(policy: CompiledPolicy, items: Sequence[Item], progress: Progress | None = None) -> ReplayResult:
    return asyncio.run(replay(policy, items, progress))


def fmt_usd(value: float) -> str:
    return f"{value:.6f}" if abs(value) < 100 else f"{value:,.2f}"


def fmt_share(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f}%"
