"""The strategy interface and the registry that finds strategies by name.

A strategy is a small class behind one interface. Routes name a block of ``spec.strategies``;
the block's ``type`` names the class. Heavy imports (numpy, models) happen inside the strategy's
module, which is imported only when a policy uses it.

A strategy that needs to call a model (a classifier, a judge) is given a :class:`ModelClient`,
a narrow interface the proxy implements; it never sees the HTTP layer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol

from modelroute.policy import CompiledPolicy, PolicyError
from modelroute.routing.request import RequestView


@dataclass(frozen=True, slots=True)
class Review:
    """A reviewer's verdict on an answer: accept it, or escalate to the next candidate."""

    accept: bool
    reason: str
    cost_usd: float = 0.0  # what the review itself cost (a judge call)


class Reviewer(Protocol):
    """Checks an answer before the client sees it (cascade routing). ``answer`` is an OpenAI
    ``chat.completion`` body; ``model`` the registry model that produced it."""

    async def review(self, view: RequestView, model: str, answer: Mapping[str, Any]) -> Review: ...


@dataclass(frozen=True, slots=True)
class Choice:
    """A strategy's answer: the model (or None to let the next route try) and why.

    ``chain`` replaces the chosen model's fallback chain (a cascade orders its models cheapest
    first); ``reviewer`` makes the proxy check each answer and escalate down the chain when the
    review rejects it.
    """

    model: str | None
    reason: str
    annotations: dict[str, Any] = field(default_factory=dict)
    chain: tuple[str, ...] | None = None
    reviewer: Reviewer | None = None


@dataclass(frozen=True, slots=True)
class ModelReply:
    text: str
    model: str
    cost_usd: float
    input_tokens: int
    output_tokens: int
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None  # per output token, when the provider returns them


class ModelClient(Protocol):
    """What a strategy may ask of the proxy: a chat completion or embeddings on a registry model."""

    async def complete(
        self, model: str, messages: list[dict[str, Any]], *, max_tokens: int, timeout: float, logprobs: bool = False
    ) -> ModelReply: ...

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> tuple[list[list[float]], float]:
        """Vectors of ``texts`` and the cost in USD."""
        ...


class Strategy:
    """Base of every strategy. ``type`` is the name policies use in ``spec.strategies.<x>.type``."""

    type: ClassVar[str] = ""
    #: Labelling strategies run before the routes and may set view.task / view.complexity.
    labels_requests: ClassVar[bool] = False

    def __init__(self, name: str, config: Mapping[str, Any], policy: CompiledPolicy, client: ModelClient | None) -> None:
        self.name = name
        self.config = config
        self.policy = policy
        self.client = client

    async def label(self, view: RequestView) -> None:
        """Annotate the view (labelling strategies only)."""

    async def choose(self, view: RequestView) -> Choice:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the strategy holds (called when its policy is replaced)."""


#: type name -> "module:Class". Imported on first use.
REGISTRY: dict[str, str] = {}


def register(type_name: str, target: str) -> None:
    REGISTRY[type_name] = target


def strategy_class(type_name: str, path: str) -> type[Strategy]:
    target = REGISTRY.get(type_name)
    if target is None:
        raise PolicyError([(path, f"unknown strategy type {type_name!r}; known: {sorted(REGISTRY)}")])
    module, _, cls = target.partition(":")
    found = getattr(importlib.import_module(module), cls)
    assert isinstance(found, type) and issubclass(found, Strategy)
    return found
