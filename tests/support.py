"""Test helpers: policies pointing at fake providers, and a sidecar running on a real socket."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelroute.policy import compile_policy
from modelroute.providers import EnvFileKeys
from modelroute.batch import BatchFeature, PollSettings
from modelroute.cli.compose import default_features, sidecar_app
from modelroute.contract.features import Feature
from modelroute.proxy import SERVICES, PolicyHolder, Services, Settings

PROVIDER_KEY = "sk-provider-secret-0123456789"
APP_KEY = "sk-app-key-must-not-be-forwarded"


def quickstart(base_url: str, **overrides: Any) -> dict[str, Any]:
    """The quickstart policy of the issue, pointed at ``base_url``."""
    doc: dict[str, Any] = {
        "apiVersion": "modelroute.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "quickstart"},
        "spec": {
            "providers": [{"name": "openai", "type": "openai", "baseURL": base_url, "apiKey": {"env": "TEST_PROVIDER_KEY"}}],
            "models": [
                {"name": "gpt-4o-mini", "provider": "openai", "pricing": {"input": 0.15, "output": 0.60},
                 "contextWindow": 128000, "capabilities": ["tools", "json", "vision"], "limits": {"rpm": 10000, "tpm": 2000000}},
                {"name": "gpt-4o", "provider": "openai", "pricing": {"input": 2.50, "output": 10.00},
                 "contextWindow": 128000, "capabilities": ["tools", "json", "vision"]},
            ],
            "baseline": "gpt-4o",
            "default": "gpt-4o-mini",
            "routes": [
                {"name": "code", "match": {"task": ["code_generation", "reasoning"]}, "model": "gpt-4o"},
                {"name": "premium", "match": {"headers": {"x-user-tier": "premium"}}, "model": "gpt-4o"},
                {"name": "long-input", "when": "request.input_tokens > 100000", "model": "gpt-4o"},
            ],
            "fallbacks": {"gpt-4o-mini": ["gpt-4o"]},
        },
    }
    doc["spec"].update(copy.deepcopy(overrides))
    return doc


ANTHROPIC_KEY = "sk-ant-provider-secret-9876543210"


def mixed_policy(openai_url: str, anthropic_url: str) -> dict[str, Any]:
    """The quickstart policy plus an Anthropic provider; Claude is the default, falling back to gpt-4o-mini."""
    doc = quickstart(openai_url)
    spec = doc["spec"]
    spec["providers"].append({"name": "anthropic", "type": "anthropic", "baseURL": anthropic_url,
                              "apiKey": {"env": "TEST_ANTHROPIC_KEY"}})
    spec["models"].append({"name": "claude-sonnet", "provider": "anthropic", "upstreamModel": "claude-sonnet-4-5",
                           "pricing": {"input": 3.0, "output": 15.0, "cachedInput": 0.3, "cacheWrite": 3.75},
                           "contextWindow": 200000, "maxOutputTokens": 1024, "capabilities": ["tools", "json", "vision", "thinking"]})
    spec["default"] = "claude-sonnet"
    spec["fallbacks"] = {"claude-sonnet": ["gpt-4o-mini"], "gpt-4o-mini": ["gpt-4o"]}
    return doc


@dataclass
class Sidecar:
    app: web.Application
    runner: web.AppRunner
    url: str
    spans: InMemorySpanExporter
    holder: PolicyHolder
    features: list[Feature] = field(default_factory=list)

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    @property
    def batch(self) -> BatchFeature:
        return next(f for f in self.features if isinstance(f, BatchFeature))

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def finished_spans(self, name_prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name.startswith(name_prefix)]

    def request_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind.name == "SERVER"]

    async def close(self) -> None:
        await self.runner.cleanup()


@dataclass
class SidecarFactory:
    environ: dict[str, str] = field(default_factory=lambda: {"TEST_PROVIDER_KEY": PROVIDER_KEY})
    started: list[Sidecar] = field(default_factory=list)

    async def __call__(self, doc: dict[str, Any], *, background: Any = (), batch_poll: PollSettings | None = None,
                       rate_limits: Any = None, **settings: Any) -> Sidecar:
        """A sidecar on ``doc``. ``batch_poll``: how its batch poller runs (by default every 30 s,
        so a test drives it round by round with ``sidecar.batch.poller.run_once``); ``rate_limits``:
        its RateLimitFeature, e.g. with the test's clock."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        holder = PolicyHolder(compile_policy(doc))
        settings.setdefault("tracer_provider", provider)
        features = default_features(batch_poll, rate_limits)
        app = sidecar_app(holder, Settings(keys=EnvFileKeys(self.environ), **settings), background=background, features=features)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        sidecar = Sidecar(app, runner, f"http://127.0.0.1:{port}", exporter, holder, features)
        self.started.append(sidecar)
        return sidecar

    async def close(self) -> None:
        for sidecar in self.started:
            await sidecar.close()


#: Values of every JSON type, for replacing a field with one of another type.
OTHER_TYPES: list[Any] = [None, True, 0, -1, 2.5, "", "x", [], [None], {}, {"type": None}, [[]]]


def field_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every field and item of a JSON document, at any depth."""
    if prefix:
        yield prefix
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in children:
        yield from field_paths(value, (*prefix, key))


def each_field_mutated(valid: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every copy of ``valid`` with exactly one field replaced by one of :data:`OTHER_TYPES` or dropped."""
    for path in field_paths(valid):
        for value in [*OTHER_TYPES, _DROP]:
            doc = copy.deepcopy(valid)
            if _change(doc, path, value):
                yield doc


def mutated(valid: dict[str, Any], rng: random.Random, drop: float = 0.15) -> dict[str, Any]:
    """A copy of ``valid`` with one to three fields replaced by a value of another type, or dropped."""
    doc = copy.deepcopy(valid)
    for _ in range(rng.randint(1, 3)):
        paths = list(field_paths(doc))
        if not paths:  # an empty object or array: nothing to change
            break
        path = rng.choice(paths)
        if not (rng.random() < drop and _change(doc, path, _DROP)):
            _change(doc, path, rng.choice(OTHER_TYPES))
    return doc


_DROP = object()


def _change(doc: Any, path: tuple[Any, ...], value: Any) -> bool:
    """Set the field at ``path`` to a copy of ``value``, or drop it (``_DROP``: only from an
    object). False when nothing was changed."""
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is not _DROP:
        parent[path[-1]] = copy.deepcopy(value)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        return False
    return True
