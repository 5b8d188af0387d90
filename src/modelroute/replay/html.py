"""A self-contained HTML replay report: totals, an inline SVG of cost against quality per policy
(and the baseline), and each policy's route mix as a stacked bar. No scripts, no external files."""

from __future__ import annotations

import html
from collections.abc import Sequence

from modelroute.replay.run import ReplayResult, fmt_share, fmt_usd

COLOURS = ("#3b6fb6", "#d9822b", "#2e9e6a", "#b03a48", "#7a5cb0", "#8c8c2e", "#2b9bb3", "#c2528b", "#6b6b6b", "#4f8f3a")
W, H, PAD = 560, 340, 56


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def chart(results: Sequence[ReplayResult]) -> str:
    """Cost per 1,000 requests (x) against quality (y): one dot per policy, a hollow one for the baseline."""
    points: list[tuple[str, float, float | None, str, bool]] = []
    for i, r in enumerate(results):
        colour = COLOURS[i % len(COLOURS)]
        points.append((r.policy, r.total.per_1000(), r.total.quality, colour, False))
    base = results[0]
    n = base.total.requests or 1
    points.append((f"baseline {base.baseline}", base.total.baseline_cost / n * 1000, base.total.baseline_quality, "#222", True))
    xmax = max(p[1] for p in points) * 1.15 or 1.0
    qualities = [p[2] for p in points if p[2] is not None]
    ylo, yhi = (min(qualities) - 0.05, max(qualities) + 0.05) if qualities else (0.0, 1.0)
    ylo, yhi = max(0.0, ylo), min(1.0, yhi)

    def x(v: float) -> float:
        return PAD + (W - 2 * PAD) * v / xmax

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * (v - ylo) / (yhi - ylo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="cost against quality">',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#999"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#999"/>',
             f'<text x="{W / 2}" y="{H - 14}" text-anchor="middle" font-size="12">USD per 1,000 requests</text>',
             f'<text x="16" y="{H / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {H / 2})">quality (recorded correct)</text>']
    for k in range(5):
        xv, yv = xmax * k / 4, ylo + (yhi - ylo) * k / 4
        parts.append(f'<text x="{x(xv):.1f}" y="{H - PAD + 16}" text-anchor="middle" font-size="10">{xv:.3g}</text>')
        parts.append(f'<text x="{PAD - 6}" y="{y(yv) + 3:.1f}" text-anchor="end" font-size="10">{yv * 100:.0f}%</text>')
    for name, cost, quality, colour, hollow in points:
        cy = y(quality) if quality is not None else H - PAD
        fill = "none" if hollow else colour
        parts.append(f'<circle cx="{x(cost):.1f}" cy="{cy:.1f}" r="6" fill="{fill}" stroke="{colour}" stroke-width="2">'
                     f'<title>{_esc(name)}: USD {cost:.4f} per 1,000, quality {fmt_share(quality)}</title></circle>')
        parts.append(f'<text x="{x(cost) + 9:.1f}" y="{cy - 8:.1f}" font-size="11">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def mix_bar(result: ReplayResult) -> str:
    """The route mix as one stacked horizontal bar with a legend."""
    total = sum(result.mix.values()) or 1
    width, offset, parts, legend = W - 2 * PAD, float(PAD), [], []
    for i, ((route, model), count) in enumerate(result.mix.most_common()):
        w = width * count / total
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<rect x="{offset:.1f}" y="8" width="{w:.1f}" height="22" fill="{colour}">'
                     f'<title>{_esc(route)} / {_esc(model)}: {count} ({fmt_share(count / total)})</title></rect>')
        legend.append(f'<li><span style="background:{colour}"></span>{_esc(route)} &rarr; {_esc(model)}: {count} '
                      f'({fmt_share(count / total)})</li>')
        offset += w
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="38">{"".join(parts)}</svg>'
    return f"<h3>{_esc(result.policy)}</h3>{svg}<ul class=legend>{''.join(legend)}</ul>"


def totals_table(results: Sequence[ReplayResult]) -> str:
    head = "".join(f"<th>{_esc(r.policy)}</th>" for r in results)
    rows = [
        ("requests", [str(r.requests) for r in results]),
        ("errors", [str(sum(r.errors.values())) for r in results]),
        ("cost USD", [fmt_usd(r.total.cost) for r in results]),
        ("baseline cost USD", [f"{fmt_usd(r.total.baseline_cost)} ({_esc(r.baseline)})" for r in results]),
        ("saving", [fmt_share(r.total.saving) for r in results]),
        ("USD per 1,000 requests", [fmt_usd(r.total.per_1000()) for r in results]),
        ("quality", [fmt_share(r.total.quality) for r in results]),
        ("baseline quality", [fmt_share(r.total.baseline_quality) for r in results]),
    ]
    body = "".join(f"<tr><th>{label}</th>{''.join(f'<td>{v}</td>' for v in values)}</tr>" for label, values in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def report_html(results: Sequence[ReplayResult], workload: str) -> str:
    style = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f4f4f4}"
             ".legend{list-style:none;padding:0;font-size:13px}.legend span{display:inline-block;width:10px;height:10px;"
             "margin-right:6px}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>modelroute replay: {_esc(workload)}</title>"
            f"<style>{style}</style></head><body><h1>modelroute replay</h1><p>workload {_esc(workload)}</p>"
            f"<h2>Totals</h2>{totals_table(results)}<h2>Cost against quality</h2>{chart(results)}"
            f"<h2>Route mix</h2>{''.join(mix_bar(r) for r in results)}</body></html>")
