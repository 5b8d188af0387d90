"""Classifier routing: a cheap model labels each request; the label selects the model.

A labelling strategy (``labels_requests``): :meth:`ClassifierStrategy.label` runs before the routes
and sets ``request.complexity`` (or ``request.task``, with ``labelAs: task``) so rules and CEL can
use the label; :meth:`ClassifierStrategy.choose` maps the label to a model for routes that name
this strategy. The classifier's answer is parsed strictly (the whole answer, trimmed of quotes,
spaces and a final period, must be one of the labels, case-insensitive); a late, failed or
unparseable answer gives ``defaultLabel``. Answers are cached by the normalised prompt (lower
case, whitespace collapsed), so a repeated prompt costs nothing; the classifier's cost is added
to the request's decision cost and reported in the ``classifier`` label.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from typing import Any, Mapping

from modelroute.policy import CompiledPolicy
from modelroute.routing.request import RequestView
from modelroute.routing.strategies._config import Config
from modelroute.routing.strategy import Choice, ModelClient, Strategy

DEFAULT_LABELS = ("simple", "medium", "complex")
DEFAULT_PROMPT = (
    "Classify the request below for an LLM router. Answer with exactly one word from this list: "
    "{labels}.\n\nRequest:\n<<<\n{prompt}\n>>>\n\nLabel:"
)
_FIELDS = ("model", "labels", "prompt", "models", "defaultLabel", "timeoutSeconds", "maxTokens",
           "cacheSize", "labelAs", "maxPromptChars")
_SPACE = re.compile(r"\s+")


def parse_label(answer: str, labels: tuple[str, ...]) -> str | None:
    """The label that ``answer`` is, or None (strict: nothing else may be in the answer)."""
    core = answer.strip().rstrip(".").strip().strip("\"'`").rstrip(".").strip().lower()
    for label in labels:
        if core == label.lower():
            return label
    return None


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(_SPACE.sub(" ", prompt.strip().lower()).encode()).hexdigest()


class ClassifierStrategy(Strategy):
    type = "classifier"
    labels_requests = True

    def __init__(self, name: str, config: Mapping[str, Any], policy: CompiledPolicy, client: ModelClient | None) -> None:
        super().__init__(name, config, policy, client)
        cfg = Config(name, config, policy, _FIELDS)
        self.model = cfg.model("model") or ""
        self.labels = self._labels(cfg)
        self.prompt = cfg.string("prompt", DEFAULT_PROMPT) or DEFAULT_PROMPT
        if "{prompt}" not in self.prompt:
            cfg.fail("must contain {prompt}", "prompt")
        self.default_label = cfg.string("defaultLabel", self.labels[len(self.labels) // 2] if self.labels else None,
                                        choices=self.labels) or ""
        self.timeout = cfg.number("timeoutSeconds", 2.0, lo=0.01, hi=120)
        self.max_tokens = cfg.integer("maxTokens", 8, lo=1, hi=256)
        self.max_prompt_chars = cfg.integer("maxPromptChars", 4000, lo=100)
        self.cache_size = cfg.integer("cacheSize", 10_000, lo=0)
        self.label_as = cfg.string("labelAs", "complexity", choices=("complexity", "task")) or "complexity"
        self.routes: dict[str, str] = {}
        for label, model in cfg.mapping("models").items():
            if label not in self.labels:
                cfg.fail(f"not one of the labels {list(self.labels)}", "models", label)
            elif not isinstance(model, str) or model not in policy.models:
                cfg.fail(f"unknown model {model!r}", "models", label)
            else:
                self.routes[label] = model
        cfg.check()
        self._cache: OrderedDict[str, str] = OrderedDict()

    @staticmethod
    def _labels(cfg: Config) -> tuple[str, ...]:
        value = cfg.block.get("labels", list(DEFAULT_LABELS))
        if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) and v.strip() for v in value):
            cfg.fail("must be a list of at least two non-empty strings", "labels")
            return DEFAULT_LABELS
        if len({v.lower() for v in value}) != len(value):
            cfg.fail("labels must differ (case-insensitively)", "labels")
        return tuple(value)

    def render(self, prompt: str) -> str:
        return self.prompt.replace("{labels}", ", ".join(self.labels)).replace("{prompt}", prompt[-self.max_prompt_chars:])

    async def classify(self, view: RequestView) -> tuple[str, str, float]:
        """(label, source, cost): source is cache | model | default (why)."""
        prompt = view.prompt_text()
        key = prompt_key(prompt)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached, "cache", 0.0
        if self.client is None:
            return self.default_label, "default (no model client)", 0.0
        messages = [{"role": "user", "content": self.render(prompt)}]
        try:
            reply = await asyncio.wait_for(
                self.client.complete(self.model, messages, max_tokens=self.max_tokens, timeout=self.timeout), self.timeout)
        except Exception as exc:  # late, failed or refused: the default label, never an error
            late = isinstance(exc, TimeoutError) or "timeout" in str(getattr(exc, "kind", "")).lower()
            return self.default_label, "default (timeout)" if late else f"default ({type(exc).__name__})", 0.0
        label = parse_label(reply.text, self.labels)
        if label is None:
            return self.default_label, "default (unparseable answer)", reply.cost_usd
        if self.cache_size:
            self._cache[key] = label
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return label, "model", reply.cost_usd

    async def label(self, view: RequestView) -> None:
        started = time.perf_counter()
        label, source, cost = await self.classify(view)
        view.decision_cost_usd += cost
        view.relabel(**{self.label_as: label})
        view.labels["classifier"] = {"strategy": self.name, "model": self.model, "label": label, "source": source,
                                     "cost_usd": cost, "ms": round((time.perf_counter() - started) * 1000, 3)}

    async def choose(self, view: RequestView) -> Choice:
        label = view.task if self.label_as == "task" else view.complexity
        model = self.routes.get(label or "")
        if model is None:
            return Choice(None, f"label {label!r} has no model here")
        return Choice(model, f"classified {label}", {"label": label})
