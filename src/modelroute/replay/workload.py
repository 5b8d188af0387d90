"""Recorded workloads for ``modelroute replay``: JSON lines in one of two formats.

Plain request lines, as an app sent them (``usage`` optional: the recorded token counts)::

    {"request": {"model": "gpt-4o", "messages": [...]}, "headers": {"x-user-tier": "premium"},
     "usage": {"prompt_tokens": 812, "completion_tokens": 95}}

Labelled lines in the RouterBench format of ``../shared/data/routerbench-train.jsonl`` (each
model's recorded answer, whether it was correct, and what it cost), read with the calibration
loader (:func:`modelroute.calibrate.data.load`); they replay as a user message holding the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Recorded:
    """One model's recorded outcome on a labelled line."""

    correct: float
    cost_usd: float
    answer: str = ""  # the answer text (a cascade's checks read it)


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, Recorded] | None = None  # model -> recorded outcome (labelled lines only)
    usage: tuple[int, int] | None = None  # recorded (input, output) tokens of plain lines
    task: str = ""


def is_labelled(row: Mapping[str, Any]) -> bool:
    return "prompt" in row and isinstance(row.get("models"), Mapping)


def first_row(path: str | Path) -> Mapping[str, Any]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"{path}: line 1 is not a JSON object")
                return row
    raise ValueError(f"{path} holds no lines")


def read_workload(path: str | Path) -> list[Item]:
    """Every line of ``path`` as an :class:`Item`; ValueError naming the line that is wrong."""
    if is_labelled(first_row(path)):
        return list(_labelled(path))
    return list(_plain(path))


def _plain(path: str | Path) -> Iterator[Item]:
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
            request = row.get("request") if isinstance(row, dict) else None
            if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
                raise ValueError(f"{path}:{number}: expected {{\"request\": {{chat completion body}}, \"headers\": {{...}}}}")
            usage = row.get("usage")
            recorded = (int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))) if isinstance(usage, dict) else None
            headers = {str(k).lower(): str(v) for k, v in (row.get("headers") or {}).items()}
            yield Item(str(row.get("id", number)), request, headers, None, recorded)


def _labelled(path: str | Path) -> Iterator[Item]:
    from modelroute.calibrate.data import load  # the shared RouterBench loader (numpy)

    data = load(path)
    for i, prompt in enumerate(data.prompts):
        labels = {m: Recorded(float(data.correct[i, j]), float(data.cost[i, j]), data.answers[i][j]) for j, m in enumerate(data.models)}
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
        yield Item(data.ids[i], body, {}, labels, None, data.tasks[i])
