"""The quality monitor's settings, read from a compiled policy's ``quality`` section (with defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.routing.answers import REFUSAL_PHRASES, Refusals, refusals

DEFAULT_JUDGE_PROMPT = (
    "You grade an AI assistant's answer.\n\nQuestion:\n{question}\n\nAnswer:\n{answer}\n\n"
    "How well does the answer address the question? Reply with only a number from 0 (useless or wrong) "
    "to 1 (fully correct and helpful)."
)
COMPARE_PROMPT = (
    "Two AI assistants answered the same question.\n\nQuestion:\n{question}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n"
    "Which answer is better? Reply with only A, B or TIE."
)


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    model: str
    sample_rate: float
    prompt: str = DEFAULT_JUDGE_PROMPT
    max_tokens: int = 16
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class QualityConfig:
    refusals: Refusals = refusals(REFUSAL_PHRASES)  # compiled once per policy version
    judge: JudgeConfig | None = None
    regret_rate: float = 0.0
    regret_per_minute: int = 10
    feedback_ttl: float = 3600.0
    queue_size: int = 256
    workers: int = 2
    judge_rate: float = field(init=False)  # the judge's sample rate, 0 without a judge
    background: bool = field(init=False)  # whether any answer may need a background job (judge, regret)

    def __post_init__(self) -> None:  # read once per policy version, not per answer
        rate = self.judge.sample_rate if self.judge is not None else 0.0
        object.__setattr__(self, "judge_rate", rate)
        object.__setattr__(self, "background", self.judge is not None and (rate > 0 or self.regret_rate > 0))


def quality_config(extensions: Mapping[str, Any]) -> QualityConfig:
    q: Mapping[str, Any] = extensions.get("quality") or {}
    judge = None
    if "judge" in q:
        j = q["judge"]
        judge = JudgeConfig(model=str(j["model"]), sample_rate=float(j["sampleRate"]), prompt=str(j.get("prompt", DEFAULT_JUDGE_PROMPT)),
                            max_tokens=int(j.get("maxTokens", 16)), timeout_seconds=float(j.get("timeoutSeconds", 30.0)))
    regret = q.get("regret") or {}
    extra = tuple(str(p).lower() for p in q.get("refusalPhrases", []))
    return QualityConfig(
        refusals=refusals(REFUSAL_PHRASES + extra),
        judge=judge,
        regret_rate=float(regret.get("sampleRate", 0.0)),
        regret_per_minute=int(regret.get("maxPerMinute", 10)),
        feedback_ttl=float((q.get("feedback") or {}).get("ttlSeconds", 3600.0)),
        queue_size=int(q.get("queueSize", 256)),
        workers=int(q.get("workers", 2)),
    )
