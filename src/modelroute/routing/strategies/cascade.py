"""Cascade routing: the cheapest model first; its answer is checked before the client sees it,
and a rejected answer escalates to the next model of the chain.

The strategy returns a :class:`Choice` whose ``chain`` is the cascade (cheapest first) and whose
``reviewer`` the proxy calls after each non-streamed answer (the last model's answer is never
reviewed). Streaming requests follow ``stream``: ``none`` (default) sends them straight to
``streamModel`` (the last model of the chain unless set) without a cascade; ``commit`` asks the
proxy to hold the first ``commit.tokens`` tokens or ``commit.ms`` milliseconds, review, then stream
or escalate invisibly (the commit point is the proxy's; the strategy parses and passes it on in the
choice's ``cascade_commit`` annotation and in :attr:`CascadeStrategy.commit`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from modelroute.policy import CompiledPolicy
from modelroute.routing.answers import REFUSAL_PHRASES
from modelroute.routing.request import RequestView
from modelroute.routing.strategies._config import Config
from modelroute.routing.strategies.checks import DEFAULT_JUDGE_PROMPT, Agreement, AnswerReviewer, AnswerRule, Heuristics, Judge
from modelroute.routing.strategy import Choice, ModelClient, Strategy

_FIELDS = ("chain", "checks", "stream", "streamModel", "commit")
_CHECKS = ("empty", "truncated", "refusal", "json", "regex", "minLength", "logprobs", "judge", "agreement", "byAnswer")
_THEN = ("accept", "escalate", "check")


class CascadeStrategy(Strategy):
    type = "cascade"

    def __init__(self, name: str, config: Mapping[str, Any], policy: CompiledPolicy, client: ModelClient | None) -> None:
        super().__init__(name, config, policy, client)
        cfg = Config(name, config, policy, _FIELDS)
        self.chain = cfg.models("chain", min_items=2)
        self.stream_mode = cfg.string("stream", "none", choices=("none", "commit")) or "none"
        stream_model = cfg.model("streamModel", required=False)
        self.stream_model = stream_model or (self.chain[-1] if self.chain else "")
        commit = cfg.mapping("commit")
        self.commit: dict[str, int] | None = None
        if commit and self.stream_mode != "commit":
            cfg.fail("is only used with stream: commit", "commit")
        if self.stream_mode == "commit":
            unknown = set(commit) - {"tokens", "ms"}
            for key in sorted(unknown):
                cfg.fail("unknown field; known: ['ms', 'tokens']", "commit", key)
            self.commit = {"tokens": cfg.integer("tokens", 64, lo=1, hi=4096, block=commit, at=("commit",)),
                           "ms": cfg.integer("ms", 1000, lo=1, hi=60000, block=commit, at=("commit",))}
        self.reviewer = _reviewer(cfg, self.chain, client)
        cfg.check()

    async def choose(self, view: RequestView) -> Choice:
        if view.stream and self.stream_mode == "none":
            return Choice(self.stream_model, "streaming request: no cascade", {"cascade": "off (stream)"})
        notes: dict[str, Any] = {"cascade": list(self.chain)}
        if view.stream and self.commit is not None:
            notes["cascade_commit"] = dict(self.commit)
        return Choice(self.chain[0], f"cascade from {self.chain[0]}", notes, chain=self.chain, reviewer=self.reviewer)


def _reviewer(cfg: Config, chain: tuple[str, ...], client: ModelClient | None) -> AnswerReviewer:
    checks = cfg.mapping("checks")
    at = ("checks",)
    for key in checks:
        if key not in _CHECKS:
            cfg.fail(f"unknown check; known: {sorted(_CHECKS)}", "checks", key)
    refusal = checks.get("refusal", True)
    if isinstance(refusal, list) and all(isinstance(p, str) and p for p in refusal):
        phrases = tuple(p.lower() for p in refusal)
    elif isinstance(refusal, bool):
        phrases = REFUSAL_PHRASES if refusal else ()
    else:
        cfg.fail("must be true, false or a list of phrases", "checks", "refusal")
        phrases = REFUSAL_PHRASES
    heuristics = Heuristics(
        empty=cfg.boolean("empty", True, block=checks, at=at),
        truncated=cfg.boolean("truncated", True, block=checks, at=at),
        refusals=phrases,
        json=cfg.boolean("json", True, block=checks, at=at),
        regex=_regex(cfg, checks.get("regex"), ("checks", "regex")),
        min_length=cfg.integer("minLength", 0, lo=0, block=checks, at=at),
    )
    logprobs = cfg.mapping("logprobs", block=checks, at=at)
    threshold = cfg.number("threshold", -1.0, hi=0.0, block=logprobs, at=(*at, "logprobs")) if logprobs else None
    return AnswerReviewer(chain, client, heuristics, threshold, _agreement(cfg, checks), _judge(cfg, checks),
                          _by_answer(cfg, checks.get("byAnswer")))


def _by_answer(cfg: Config, rules: Any) -> tuple[AnswerRule, ...]:
    """``checks.byAnswer``: a list of ``{match, then, agreement}``, the first match deciding."""
    if rules is None:
        return ()
    at: tuple[str | int, ...] = ("checks", "byAnswer")
    if not isinstance(rules, list) or not rules:
        cfg.fail("must be a non-empty list of {match, then, agreement}", *at)
        return ()
    out: list[AnswerRule] = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            cfg.fail("must be an object {match, then, agreement}", *at, i)
            continue
        for key in sorted(set(rule) - {"match", "then", "agreement"}):
            cfg.fail("unknown field; known: ['agreement', 'match', 'then']", *at, i, key)
        match = _regex(cfg, rule.get("match"), (*at, i, "match")) if "match" in rule else None
        if match is None and "match" not in rule:
            cfg.fail("is required (a regular expression over the normalised answer)", *at, i, "match")
        then = cfg.string("then", "check", choices=_THEN, block=rule, at=(*at, i)) or "check"
        agreement = cfg.models("agreement", block=rule, at=(*at, i)) if "agreement" in rule else ()
        if agreement and then != "check":
            cfg.fail("is only used with then: check", *at, i, "agreement")
        if match is not None:
            out.append(AnswerRule(match, then, agreement))
    return tuple(out)


def _regex(cfg: Config, value: Any, at: tuple[str | int, ...]) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise re.error("not a string")
        return re.compile(value)
    except re.error as exc:
        cfg.fail(f"not a valid regular expression: {exc}", *at)
        return None


def _judge(cfg: Config, checks: Mapping[str, Any]) -> Judge | None:
    block = cfg.mapping("judge", block=checks, at=("checks",))
    if not block:
        return None
    at = ("checks", "judge")
    model = cfg.model("model", block=block, at=at) or ""
    prompt = cfg.string("prompt", None, block=block, at=at)
    if prompt is not None and ("{answer}" not in prompt or "{prompt}" not in prompt):
        cfg.fail("must contain {prompt} and {answer}", *at, "prompt")
    return Judge(
        model=model,
        threshold=cfg.number("threshold", 0.8, lo=0.0, hi=1.0, block=block, at=at),
        prompt=prompt or DEFAULT_JUDGE_PROMPT,
        timeout=cfg.number("timeoutSeconds", 5.0, lo=0.01, block=block, at=at),
        max_tokens=cfg.integer("maxTokens", 8, lo=1, hi=256, block=block, at=at),
        on_error=cfg.string("onError", "accept", choices=("accept", "reject"), block=block, at=at) or "accept",
    )


def _agreement(cfg: Config, checks: Mapping[str, Any]) -> Agreement | None:
    block = cfg.mapping("agreement", block=checks, at=("checks",))
    if not block:
        return None
    at = ("checks", "agreement")
    if ("model" in block) == ("models" in block):
        cfg.fail("needs model (one) or models (each in turn must agree), not both", *at)
    if "models" in block:
        models = cfg.models("models", block=block, at=at)
    else:
        models = (cfg.model("model", block=block, at=at) or "",)
    return Agreement(
        models=models,
        extract=_regex(cfg, block.get("extract"), (*at, "extract")),
        timeout=cfg.number("timeoutSeconds", 30.0, lo=0.01, block=block, at=at),
        max_tokens=cfg.integer("maxTokens", 512, lo=1, block=block, at=at),
    )
