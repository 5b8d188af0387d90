"""Plain-text tables of replay results: totals side by side, then each policy's route mix."""

from __future__ import annotations

from collections.abc import Sequence

from modelroute.replay.run import ReplayResult, Totals, fmt_share, fmt_usd


def _quality(t: Totals) -> str:
    if t.quality is None:
        return "-"
    return f"{fmt_share(t.quality)} (baseline {fmt_share(t.baseline_quality)})"


def summary(results: Sequence[ReplayResult], workload: str) -> str:
    n = results[0].requests
    head = [f"replay of {workload}: {n} requests"]
    names = [f"{r.policy} ({r.version[:8]})" for r in results]
    rows: list[tuple[str, list[str]]] = [
        ("requests routed", [str(r.total.requests) for r in results]),
        ("errors", [", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "0" for r in results]),
        ("cost USD", [fmt_usd(r.total.cost) for r in results]),
        ("baseline cost USD", [f"{fmt_usd(r.total.baseline_cost)} ({r.baseline})" for r in results]),
        ("saving", [fmt_share(r.total.saving) for r in results]),
        ("cost per 1,000 requests USD", [fmt_usd(r.total.per_1000()) for r in results]),
        ("quality (recorded correct)", [_quality(r.total) for r in results]),
    ]
    if any(r.total.escalations for r in results):
        rows.append(("escalated by a cascade", [f"{r.total.escalated} ({fmt_share(r.total.escalation_rate)})" for r in results]))
    width = max(28, *(len(x) + 2 for x in names), *(len(v) + 2 for _, values in rows for v in values))
    lines = head + [f"{'':<30}" + "".join(f"{x:<{width}}" for x in names)]
    lines += [f"{label:<30}" + "".join(f"{v:<{width}}" for v in values) for label, values in rows]
    for r in results:
        if r.estimated:
            lines.append(f"note: {r.policy}: {r.estimated} requests costed from estimated tokens (no recorded usage)")
        if r.unlabelled_models:
            missing = ", ".join(f"{m} ({c})" for m, c in r.unlabelled_models.most_common())
            lines.append(f"note: {r.policy}: no recorded outcome for {missing}: those requests are left out of quality")
        if r.unreplayed_calls:
            calls = ", ".join(f"{m} ({c})" for m, c in r.unreplayed_calls.most_common())
            lines.append(f"note: {r.policy}: model calls with no recorded reply, refused: {calls} "
                         "(a check whose model fails does what its onError says)")
        if r.first_candidate_only:
            lines.append(f"note: {r.policy}: {r.first_candidate_only} cascades replayed as their first candidate "
                         "(no recorded answers to review)")
    return "\n".join(lines)


def route_mix(result: ReplayResult) -> str:
    total = result.total.requests or 1
    lines = [f"route mix of {result.policy}:",
             f"  {'route':<18}{'model':<34}{'requests':>9}{'share':>8}{'cost USD':>12}{'baseline USD':>14}{'saving':>8}{'quality':>9}"
             f"{'escalated':>11}"]
    for route, t in sorted(result.routes.items(), key=lambda kv: -kv[1].requests):
        models = sorted(((m, c) for (r, m), c in result.mix.items() if r == route), key=lambda mc: -mc[1])
        for i, (model, count) in enumerate(models):
            label = route if i == 0 else ""
            lines.append(f"  {label:<18}{model:<34}{count:>9}{fmt_share(count / total):>8}" +
                         (f"{fmt_usd(t.cost):>12}{fmt_usd(t.baseline_cost):>14}{fmt_share(t.saving):>8}{fmt_share(t.quality):>9}"
                          f"{fmt_share(t.escalation_rate):>11}" if i == 0 else ""))
    return "\n".join(lines)


def render(results: Sequence[ReplayResult], workload: str) -> str:
    return "\n\n".join([summary(results, workload), *(route_mix(r) for r in results)])
