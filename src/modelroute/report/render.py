"""Text (and JSON) rendering of a :class:`~modelroute.report.live.Report`."""

from __future__ import annotations

import dataclasses
from typing import Any

from modelroute.report.live import ArmRow, Report, RouteRow
from modelroute.report.stats import Estimate


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f}ms"


def _score(e: Estimate | None) -> str:
    return "-" if e is None else f"{e.mean:.2f} (n={e.n:.0f})"


def _ci(e: Estimate | None, fmt: str = "{:.3f}", scale: float = 1.0) -> str:
    if e is None:
        return "-"
    return f"{fmt.format(e.mean * scale)} [{fmt.format(e.low * scale)}, {fmt.format(e.high * scale)}]"


def route_table(routes: list[RouteRow]) -> list[str]:
    head = (f"{'route':<16}{'requests':>9}{'share':>8}{'cost USD':>12}{'baseline USD':>14}{'saving':>8}{'p50':>8}{'p95':>8}"
            f"{'escal.':>8}{'fallb.':>8}{'checks ok':>10}  {'judge':<14}{'feedback':<14}")
    lines = [head, "-" * len(head)]
    for r in routes:
        lines.append(f"{r.route:<16}{r.requests:>9.0f}{_pct(r.share):>8}{r.cost:>12.6f}{r.baseline_cost:>14.6f}{_pct(r.saving):>8}"
                     f"{_ms(r.p50):>8}{_ms(r.p95):>8}{_pct(r.escalation_rate):>8}{_pct(r.fallback_rate):>8}"
                     f"{_pct(r.pass_rate.mean if r.pass_rate else None):>10}  {_score(r.judge):<14}{_score(r.feedback):<14}")
    cost, base = sum(r.cost for r in routes), sum(r.baseline_cost for r in routes)
    lines.append("-" * len(head))
    lines.append(f"{'total':<16}{sum(r.requests for r in routes):>9.0f}{'':>8}{cost:>12.6f}{base:>14.6f}"
                 f"{_pct(1 - cost / base if base else None):>8}")
    return lines


def _verdict(arm: ArmRow, measure: str) -> str:
    c = arm.versus.get(measure)
    if arm.reference:
        return "reference"
    if c is None or c.p is None:
        return "n/a"
    return f"p={c.p:.3f} " + ("SIGNIFICANT" if c.significant else "not significant")


def arm_tables(arms: list[ArmRow]) -> list[str]:
    lines: list[str] = []
    for experiment in sorted({a.experiment for a in arms}):
        lines.append(f"experiment {experiment} (95% intervals; each arm against the reference arm)")
        for arm in sorted((a for a in arms if a.experiment == experiment), key=lambda a: not a.reference):
            lines.append(f"  arm {arm.arm}: {arm.requests:.0f} requests, latency p50 {_ms(arm.p50)} p95 {_ms(arm.p95)}")
            rows = [("cost per 1k requests USD", _ci(arm.cost, "{:.4f}", 1000), "cost"),
                    ("latency ms", _ci(arm.latency, "{:.1f}", 1000), "latency"),
                    ("heuristic pass rate", _ci(arm.pass_rate), "pass_rate"),
                    ("judge score", _ci(arm.judge), "judge"),
                    ("feedback score", _ci(arm.feedback), "feedback")]
            for label, value, measure in rows:
                lines.append(f"    {label:<26}{value:<36}{_verdict(arm, measure)}")
    return lines


def render(report: Report) -> str:
    total = report.total_requests
    lines = [f"policy {report.policy or '(none)'}" + (f" (version {report.version})" if report.version else "")
             + f": {total:.0f} requests"]
    if not report.routes:
        lines.append("no requests yet")
        return "\n".join(lines)
    lines += route_table(report.routes)
    if report.arms:
        lines.append("")
        lines += arm_tables(report.arms)
    return "\n".join(lines)


def as_dict(report: Report) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            if isinstance(value, RouteRow):
                out["saving"] = value.saving
            return out
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    result: dict[str, Any] = plain(report)
    return result
