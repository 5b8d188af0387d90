"""Routerbench-format datasets: one JSON line per prompt with each model's correctness and cost.

    {"id": "...", "task": "...", "prompt": "...",
     "models": {"<model id>": {"correct": 1.0, "cost_usd": 0.0005, "response": "..."}, ...}}

Recorded responses are often a Python list literal of one string (``"['D']"``); :func:`answer_of`
unwraps them to the text a provider would have returned.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def answer_of(response: str) -> str:
    """The answer text of a recorded response (unwraps ``"['text']"``)."""
    text = response.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return response
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return str(value[0])
    return response


@dataclass
class Dataset:
    ids: list[str]
    tasks: list[str]
    prompts: list[str]
    models: tuple[str, ...]
    correct: NDArray[np.float64]  # (n, m)
    cost: NDArray[np.float64]  # (n, m) USD
    answers: list[list[str]]  # (n, m) unwrapped answer texts

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: NDArray[np.int64]) -> Dataset:
        pick = [int(i) for i in rows]
        return Dataset([self.ids[i] for i in pick], [self.tasks[i] for i in pick], [self.prompts[i] for i in pick],
                       self.models, self.correct[rows], self.cost[rows], [self.answers[i] for i in pick])

    def column(self, model: str) -> int:
        return self.models.index(model)


def load(path: str | os.PathLike[str]) -> Dataset:
    """Read a dataset; every line must name the same models (the first line's)."""
    ids: list[str] = []
    tasks: list[str] = []
    prompts: list[str] = []
    correct: list[list[float]] = []
    cost: list[list[float]] = []
    answers: list[list[str]] = []
    models: tuple[str, ...] = ()
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not models:
                models = tuple(row["models"])
            recorded = row["models"]
            if set(recorded) != set(models):
                raise ValueError(f"{path}:{number}: models differ from the first line's")
            ids.append(str(row.get("id", number)))
            tasks.append(str(row.get("task", "")))
            prompts.append(str(row["prompt"]))
            correct.append([float(recorded[m]["correct"]) for m in models])
            cost.append([float(recorded[m]["cost_usd"]) for m in models])
            answers.append([answer_of(str(recorded[m].get("response", ""))) for m in models])
    if not ids:
        raise ValueError(f"{path} holds no prompts")
    return Dataset(ids, tasks, prompts, models, np.array(correct), np.array(cost), answers)


def held_out(ids: list[str], fraction: float, salt: str = "modelroute") -> NDArray[np.bool_]:
    """A stable split: True for the ids held out (by a hash of the id, not by position or RNG)."""
    def unit(i: str) -> float:
        return int(hashlib.sha256(f"{salt}:{i}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return np.array([unit(i) < fraction for i in ids])
