"""The figures of ``modelroute report``, computed from a sidecar's ``/metrics`` text.

Per route: requests, share, cost, baseline cost, saving, p50/p95 latency (from the histogram
buckets, as ``histogram_quantile`` would), escalation and fallback rates, heuristic pass rate,
judge and feedback scores. Per experiment arm: the same measures with 95% intervals, each arm
compared with the reference arm (``control`` when there is one, else the first by name).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelroute.report.prom import Samples
from modelroute.report.stats import (
    Estimate,
    mean_estimate,
    proportion_estimate,
    proportions_p,
    significant,
    welch_p,
)


@dataclass
class RouteRow:
    route: str
    requests: float
    share: float
    cost: float
    baseline_cost: float
    p50: float | None
    p95: float | None
    escalation_rate: float
    fallback_rate: float
    pass_rate: Estimate | None
    judge: Estimate | None
    feedback: Estimate | None
    models: dict[str, float] = field(default_factory=dict)

    @property
    def saving(self) -> float | None:
        return 1 - self.cost / self.baseline_cost if self.baseline_cost else None


@dataclass
class Comparison:
    p: float | None
    significant: bool


@dataclass
class ArmRow:
    experiment: str
    arm: str
    requests: float
    cost: Estimate | None
    latency: Estimate | None
    p50: float | None
    p95: float | None
    pass_rate: Estimate | None
    judge: Estimate | None
    feedback: Estimate | None
    versus: dict[str, Comparison] = field(default_factory=dict)  # measure -> against the reference arm
    reference: bool = False


@dataclass
class Report:
    policy: str
    version: str
    routes: list[RouteRow]
    arms: list[ArmRow]

    @property
    def total_requests(self) -> float:
        return sum(r.requests for r in self.routes)


def active_policy(m: Samples) -> tuple[str, str]:
    infos = [s for s in m.select("modelroute_policy_info") if s.value == 1]
    return (infos[0].labels["policy"], infos[0].labels["version"]) if infos else ("", "")


def _moments(m: Samples, name: str, **labels: str) -> Estimate | None:
    return mean_estimate(m.sum(name + "_count", **labels), m.sum(name + "_sum", **labels), m.sum(name + "_squares_total", **labels))


def _passes(m: Samples, **labels: str) -> Estimate | None:
    ok = m.sum("modelroute_quality_answers_total", result="pass", **labels)
    return proportion_estimate(ok, ok + m.sum("modelroute_quality_answers_total", result="fail", **labels))


def route_rows(m: Samples, policy: str) -> list[RouteRow]:
    requests = m.group("modelroute_requests_total", ("route",), policy=policy)
    total = sum(requests.values()) or 1.0
    rows = []
    for (route,), n in sorted(requests.items(), key=lambda kv: -kv[1]):
        sel = {"policy": policy, "route": route}
        rows.append(RouteRow(
            route=route, requests=n, share=n / total,
            cost=m.sum("modelroute_cost_usd_total", **sel), baseline_cost=m.sum("modelroute_baseline_cost_usd_total", **sel),
            p50=m.quantile(0.5, "modelroute_request_duration_seconds", **sel),
            p95=m.quantile(0.95, "modelroute_request_duration_seconds", **sel),
            escalation_rate=m.sum("modelroute_escalations_total", **sel) / n if n else 0.0,
            fallback_rate=m.sum("modelroute_fallbacks_total", **sel) / n if n else 0.0,
            pass_rate=_passes(m, **sel), judge=_moments(m, "modelroute_judge_score", **sel),
            feedback=_moments(m, "modelroute_feedback_score", **sel),
            models={k[0]: v for k, v in m.group("modelroute_requests_total", ("model",), **sel).items()},
        ))
    return rows


def arm_rows(m: Samples, policy: str) -> list[ArmRow]:
    rows: list[ArmRow] = []
    pairs = sorted(m.group("modelroute_arm_requests_total", ("experiment", "arm"), policy=policy).items())
    for (experiment, arm), n in pairs:
        sel = {"policy": policy, "experiment": experiment, "arm": arm}
        cost = mean_estimate(n, m.sum("modelroute_arm_cost_usd_total", **sel), m.sum("modelroute_arm_cost_usd_squares_total", **sel))
        rows.append(ArmRow(
            experiment=experiment, arm=arm, requests=n, cost=cost,
            latency=_moments(m, "modelroute_arm_request_duration_seconds", **sel),
            p50=m.quantile(0.5, "modelroute_arm_request_duration_seconds", **sel),
            p95=m.quantile(0.95, "modelroute_arm_request_duration_seconds", **sel),
            pass_rate=_passes(m, **sel), judge=_moments(m, "modelroute_judge_score", **sel),
            feedback=_moments(m, "modelroute_feedback_score", **sel),
        ))
    for experiment in sorted({r.experiment for r in rows}):
        _compare([r for r in rows if r.experiment == experiment])
    return rows


MEASURES = ("cost", "latency", "pass_rate", "judge", "feedback")


def _compare(arms: list[ArmRow]) -> None:
    ref = next((a for a in arms if a.arm == "control"), arms[0])
    ref.reference = True
    for arm in arms:
        if arm is ref:
            continue
        for measure in MEASURES:
            a, b = getattr(arm, measure), getattr(ref, measure)
            if a is None or b is None:
                continue
            p = proportions_p(a, b) if measure == "pass_rate" else welch_p(a, b)
            arm.versus[measure] = Comparison(p, significant(p, a, b))


def build_report(metrics_text: str, policy: str | None = None) -> Report:
    m = Samples.parse(metrics_text)
    active, version = active_policy(m)
    name = policy or active
    return Report(name, version if name == active else "", route_rows(m, name), arm_rows(m, name))
