"""Answer checks of a cascade, and the reviewer that combines them.

Cheap checks run first (heuristics on the answer itself, then token logprobs); the checks that
call a model (agreement with a second model, an LLM judge) run only when those pass. Between the
two, ``byAnswer`` rules may decide by the answer itself: the first rule whose pattern matches the
normalised answer accepts it, escalates it, or names the models that must agree with it (how
often a model is right depends on what it answered: a model that leans to option A is more often
right when it answers B). The first
failing check rejects the answer and names itself in the review's reason; the cost of the model
calls is reported in :attr:`Review.cost_usd`. The answer is read, and a refusal recognised, by
:mod:`modelroute.routing.answers`, as the quality monitor does.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field, replace
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from modelroute.routing.answers import REFUSAL_PHRASES, Answer, read_answer, refusal_phrase
from modelroute.routing.request import RequestView
from modelroute.routing.strategy import ModelClient, Review

DEFAULT_JUDGE_PROMPT = (
    "You grade answers to requests.\n\nRequest:\n{prompt}\n\nAnswer:\n{answer}\n\n"
    "How correct and complete is the answer, from 0 (wrong or useless) to 1 (fully correct)? "
    "Reply with only the number."
)
_SCORE = re.compile(r"^\s*(1(?:\.0*)?|0(?:\.\d*)?|\.\d+)\s*$")
_NON_WORD = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")


def normalise_answer(text: str, extract: re.Pattern[str] | None = None) -> str:
    """The comparable core of an answer: the ``extract`` match (its first group) when given, then
    lower case, punctuation dropped, whitespace collapsed. Used by the agreement check and by
    ``modelroute calibrate``, so both compare answers the same way."""
    if extract is not None:
        found = extract.search(text)
        if found is None:
            return ""
        text = found.group(1) if found.groups() else found.group(0)
    return _SPACE.sub(" ", _NON_WORD.sub(" ", text.lower())).strip()


@dataclass(frozen=True)
class Heuristics:
    """The cheap checks on the answer itself; ``refusals`` empty turns the refusal check off."""

    empty: bool = True
    truncated: bool = True
    refusals: tuple[str, ...] = REFUSAL_PHRASES
    json: bool = True
    regex: re.Pattern[str] | None = None
    min_length: int = 0

    def problem(self, view: RequestView, answer: Answer) -> str | None:
        """What is wrong with ``answer`` (the first failing check), or None."""
        text, tools = answer.text, bool(answer.tool_calls)
        stripped = text.strip()
        if self.refusals and answer.refusal is not None:
            return "refusal (declared by the model)"
        if self.empty and not stripped and not tools and answer.refusal is None:  # a declared refusal is not empty
            return "empty answer"
        if self.truncated and answer.finish_reason == "length":
            return "truncated answer (finish_reason length)"
        phrase = refusal_phrase(stripped, self.refusals)
        if phrase is not None:
            return f"refusal ({phrase!r})"
        if self.json and view.response_format in ("json_object", "json_schema") and not tools:
            try:
                json.loads(stripped)
            except ValueError:
                return "invalid JSON (JSON was requested)"
        if self.regex is not None and not self.regex.search(text):
            return f"answer does not match {self.regex.pattern!r}"
        if len(stripped) < self.min_length:
            return f"answer shorter than {self.min_length} characters"
        return None


@dataclass(frozen=True)
class Judge:
    """An LLM judge: a registry model scores the answer 0..1; below ``threshold`` escalates."""

    model: str
    threshold: float
    prompt: str = DEFAULT_JUDGE_PROMPT
    timeout: float = 5.0
    max_tokens: int = 8
    on_error: str = "accept"  # accept | reject, when the judge is late or its answer unparseable


@dataclass(frozen=True)
class Agreement:
    """Other models answer the same request, one after the other; the answer stands when every one
    of them agrees (the first that disagrees ends the check, so the rest are not called)."""

    models: tuple[str, ...]
    extract: re.Pattern[str] | None = None
    timeout: float = 30.0
    max_tokens: int = 512


@dataclass(frozen=True)
class AnswerRule:
    """What to do with an answer whose normalised form matches ``match``: ``accept`` (no further
    checks), ``escalate``, or ``check`` (logprobs, agreement with ``agreement`` when set, judge)."""

    match: re.Pattern[str]
    then: str = "check"
    agreement: tuple[str, ...] = ()


@dataclass
class AnswerReviewer:
    """The :class:`~modelroute.routing.strategy.Reviewer` of a cascade."""

    chain: tuple[str, ...]
    client: ModelClient | None
    heuristics: Heuristics = field(default_factory=Heuristics)
    logprob_threshold: float | None = None
    agreement: Agreement | None = None
    judge: Judge | None = None
    by_answer: tuple[AnswerRule, ...] = ()

    async def review(self, view: RequestView, model: str, answer: Mapping[str, Any]) -> Review:
        if model not in self.chain[:-1]:
            return Review(True, "last model of the cascade: accepted as is")
        read = read_answer(answer)
        why = self.heuristics.problem(view, read)
        if why is not None:
            return Review(False, why)
        text, logprobs = read.text, read.logprobs
        rule = self._rule(text)
        if rule is not None and rule.then != "check":
            said = normalise_answer(text)[:40]
            return Review(rule.then == "accept", f"answer {said!r} {rule.then}s by rule {rule.match.pattern!r}")
        if self.logprob_threshold is not None and logprobs:
            mean = sum(logprobs) / len(logprobs)
            if mean < self.logprob_threshold:
                return Review(False, f"mean token logprob {mean:.3f} < {self.logprob_threshold}")
        cost = 0.0
        notes: list[str] = []
        agreement = self.agreement
        if rule is not None and rule.agreement:
            agreement = replace(agreement, models=rule.agreement) if agreement else Agreement(rule.agreement)
        steps: list[Callable[[], Awaitable[Review]]] = []
        if agreement is not None:
            steps.append(lambda: self._agree(view, text, agreement))
        if self.judge is not None:
            steps.append(lambda: self._judge(view, text))
        for step in steps:
            verdict = await step()
            cost += verdict.cost_usd
            if not verdict.accept:
                return Review(False, verdict.reason, cost)
            notes.append(verdict.reason)
        return Review(True, "checks passed" + (f" ({'; '.join(notes)})" if notes else ""), cost)

    def _rule(self, text: str) -> AnswerRule | None:
        if not self.by_answer:
            return None
        said = normalise_answer(text)
        return next((r for r in self.by_answer if r.match.search(said)), None)

    async def _agree(self, view: RequestView, text: str, check: Agreement) -> Review:
        if self.client is None:
            return Review(True, "agreement skipped: no model client")
        messages = [dict(m) for m in view.messages]
        mine = normalise_answer(text, check.extract)
        cost = 0.0
        for model in check.models:
            try:
                reply = await asyncio.wait_for(
                    self.client.complete(model, messages, max_tokens=check.max_tokens, timeout=check.timeout),
                    check.timeout)
            except Exception as exc:  # the second opinion failed: escalate, quality first
                return Review(False, f"agreement model {model} failed: {type(exc).__name__}", cost)
            cost += reply.cost_usd
            if not mine or mine != normalise_answer(reply.text, check.extract):
                return Review(False, f"disagrees with {model}", cost)
        return Review(True, f"agrees with {', '.join(check.models)}", cost)

    async def _judge(self, view: RequestView, text: str) -> Review:
        judge = self.judge
        assert judge is not None
        if self.client is None:
            return Review(judge.on_error == "accept", "judge skipped: no model client")
        prompt = judge.prompt.replace("{prompt}", view.prompt_text()).replace("{answer}", text)
        try:
            reply = await asyncio.wait_for(
                self.client.complete(judge.model, [{"role": "user", "content": prompt}],
                                     max_tokens=judge.max_tokens, timeout=judge.timeout), judge.timeout)
        except Exception as exc:
            return Review(judge.on_error == "accept", f"judge {judge.model} failed: {type(exc).__name__}")
        found = _SCORE.match(reply.text)
        if found is None:
            return Review(judge.on_error == "accept", f"judge answer not a score: {reply.text[:40]!r}", reply.cost_usd)
        score = float(found.group(1))
        if score < judge.threshold:
            return Review(False, f"judge score {score:g} < {judge.threshold:g}", reply.cost_usd)
        return Review(True, f"judge score {score:g}", reply.cost_usd)
