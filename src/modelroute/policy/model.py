"""The compiled policy: plain, immutable, versioned data.

This is the one contract between the control plane (operator, ``modelroute validate``) and the data
plane (the sidecar). It holds no code objects: CEL expressions stay as source text here and are
compiled by the routing layer, so a ``CompiledPolicy`` round-trips through JSON unchanged
(:meth:`CompiledPolicy.to_dict` / :func:`CompiledPolicy.from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

#: Bumped when the shape of the compiled policy changes incompatibly.
FORMAT_VERSION = 1

#: Wire formats (and client APIs): OpenAI Chat Completions, OpenAI Responses, Anthropic Messages.
CHAT, RESPONSES, MESSAGES = "chat", "responses", "messages"
APIS = (CHAT, RESPONSES, MESSAGES)
#: API families of paths a client may call: OpenAI clients (chat, responses) and Anthropic clients (messages).
FAMILIES = {"openai": (CHAT, RESPONSES), "anthropic": (MESSAGES,)}


def default_apis(type_: str, base_url: str) -> frozenset[str]:
    """The wire formats a provider serves when the policy does not say: Anthropic's Messages; for
    OpenAI-compatible providers, Chat Completions, plus Responses at OpenAI itself (most
    OpenAI-compatible servers answer 404 to /responses)."""
    if type_ == "anthropic":
        return frozenset({MESSAGES})
    host = base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return frozenset({CHAT, RESPONSES}) if host == "api.openai.com" else frozenset({CHAT})


@dataclass(frozen=True, slots=True)
class ApiKeyRef:
    """Where a provider key comes from: an environment variable, a file, or a Kubernetes Secret."""

    env: str | None = None
    file: str | None = None
    secret_name: str | None = None
    secret_key: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    type: str  # "openai" | "anthropic"
    base_url: str
    api_key: ApiKeyRef | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    anthropic_version: str = "2023-06-01"
    apis: frozenset[str] = frozenset()  # wire formats it serves natively; empty: the type's defaults

    def __post_init__(self) -> None:
        if not self.apis:
            object.__setattr__(self, "apis", default_apis(self.type, self.base_url))

    @property
    def family(self) -> str:
        """The API family of its unrouted paths: ``anthropic`` or ``openai``."""
        return "anthropic" if MESSAGES in self.apis else "openai"


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per 1M tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    batch_discount: float | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    provider: str
    upstream_model: str
    pricing: Pricing
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: frozenset[str] | None = None  # None: not declared, assume everything
    limits: Limits = Limits()
    timeout_seconds: float | None = None
    aliases: tuple[str, ...] = ()

    def supports(self, capability: str) -> bool:
        return self.capabilities is None or capability in self.capabilities


@dataclass(frozen=True, slots=True)
class IntRange:
    min: int | None = None
    max: int | None = None

    def contains(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True, slots=True)
class Match:
    """A match block: every field given must hold; a list field holds when any item does."""

    task: tuple[str, ...] | None = None
    headers: Mapping[str, tuple[str, ...]] | None = None  # lower-case name -> accepted values ("*" = present)
    model: tuple[str, ...] | None = None  # the model the client asked for
    input_tokens: IntRange | None = None
    tools: IntRange | None = None
    response_format: tuple[str, ...] | None = None  # text | json_object | json_schema
    stream: bool | None = None


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    model: str | None = None
    match: Match | None = None
    when: str | None = None  # CEL source
    fallbacks: tuple[str, ...] | None = None  # overrides the policy's chain for this route
    strategy: str | None = None  # a named strategy block (issue: smart routing) instead of `model`


@dataclass(frozen=True, slots=True)
class Timeouts:
    request_seconds: float = 120.0  # overall deadline until the first byte reaches the client
    attempt_seconds: float = 60.0  # one upstream attempt, until its response (or first chunk)
    connect_seconds: float = 10.0
    stream_idle_seconds: float = 60.0  # longest silence inside a stream once it has started


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    failure_threshold: int = 3
    cooldown_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Telemetry:
    record_prompts: bool = False
    max_recorded_chars: int = 4096


@dataclass(frozen=True, slots=True)
class ResponsesStore:
    """Bounds of the sidecar's store of served Responses (conversation state)."""

    max_bytes: int = 64 * 1024 * 1024
    ttl_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    version: str  # content hash of the normalised spec
    providers: Mapping[str, ProviderSpec]
    models: Mapping[str, ModelSpec]
    baseline: str
    default: str
    routes: tuple[Route, ...]
    fallbacks: Mapping[str, tuple[str, ...]]
    pinned_models: frozenset[str] = frozenset()  # served as asked when named by the client; "*" = all
    timeouts: Timeouts = Timeouts()
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    telemetry: Telemetry = Telemetry()
    strategies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extensions: Mapping[str, Any] = field(default_factory=dict)  # spec sections owned by later layers
    #: API family (openai, anthropic) -> provider receiving the paths the sidecar does not route ("" = none)
    passthrough: Mapping[str, str] = field(default_factory=dict)
    responses_store: ResponsesStore = ResponsesStore()
    #: Every name a client may ask for (registry names, aliases, upstream model ids) -> registry name
    model_names: Mapping[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def resolve(self, requested: str) -> str | None:
        """The registry model a client's model name means (a registry name, an alias, or a model's
        upstream id), or None."""
        if requested in self.models:
            return requested
        return self.model_names.get(requested)

    def chain(self, model: str, route: Route | None = None) -> tuple[str, ...]:
        """`model` then its fallbacks, transitively, each model once."""
        out: list[str] = [model]
        first = route.fallbacks if route is not None and route.fallbacks is not None else None
        queue = list(first if first is not None else self.fallbacks.get(model, ()))
        while queue:
            name = queue.pop(0)
            if name in out:
                continue
            out.append(name)
            queue.extend(self.fallbacks.get(name, ()))
        return tuple(out)

    def is_pinned(self, model: str) -> bool:
        return "*" in self.pinned_models or model in self.pinned_models

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> CompiledPolicy:
        from modelroute.policy._codec import decode_compiled

        return decode_compiled(data)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
