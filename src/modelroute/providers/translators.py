"""The translator table: which translator carries a client API to a provider's wire format.

One entry per (client API, wire format) pair, as Envoy AI Gateway's ``endpointspec`` has one
translator per (client endpoint, backend schema); a pair whose two sides are the same API is
pass-through (no translator: the request goes as the client sent it, model renamed, and the answer
comes back as its bytes). Chat Completions is the hub: a pair with no translator of its own is the
two translators through chat, chained (a Responses client served by Claude: Responses -> chat ->
Messages, and back).

:func:`wire_for` picks the wire format a provider is called in for a client API: the client's own
when the provider speaks it (pass-through keeps everything, built-in tools and all), else chat
when spoken, else what the provider speaks. :func:`chat_call` and :func:`chat_stream` call any
provider with a chat-shaped request through this table (a strategy's classifier, the judge).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from modelroute import _json as json
from modelroute.policy import ModelSpec
from modelroute.policy.model import APIS, CHAT
from modelroute.providers.base import ChunkStream, Completion
from modelroute.providers.formats import EventStream
from modelroute.providers.provider import Provider
from modelroute.providers.translate import Event, Translator, answer_errors

#: (client API, wire format) -> "module:Class" of the translator between them (imported on first use).
TABLE: dict[tuple[str, str], str] = {
    ("chat", "messages"): "modelroute.providers.openai_anthropic:OpenAIToAnthropic",
    ("messages", "chat"): "modelroute.providers.anthropic_openai:AnthropicToOpenAI",
    ("responses", "chat"): "modelroute.providers.responses_chat:ResponsesToChat",
    ("chat", "responses"): "modelroute.providers.chat_responses:ChatToResponses",
}

Factory = Callable[[ModelSpec], Translator]
_FACTORIES: dict[tuple[str, str], Factory | None] = {}


def register(client: str, wire: str, target: str) -> None:
    """Add a pair to the table (``target`` is ``module:Class``, made by its ``for_model``)."""
    TABLE[(client, wire)] = target
    _FACTORIES.clear()


def wire_for(client: str, apis: frozenset[str]) -> str:
    """The wire format to call a provider speaking ``apis`` in, for a client speaking ``client``."""
    if client in apis:
        return client
    if CHAT in apis:
        return CHAT
    return next(api for api in APIS if api in apis)


def can_serve(client: str, apis: frozenset[str]) -> bool:
    """Whether some wire format of ``apis`` is reachable from ``client`` (itself, or a translation)."""
    return any(api == client or (client, api) in TABLE or ((client, CHAT) in TABLE and (CHAT, api) in TABLE) for api in apis)


def factory(client: str, wire: str) -> Factory | None:
    """A maker of the translator for (client, wire), None for pass-through."""
    key = (client, wire)
    if key in _FACTORIES:
        return _FACTORIES[key]
    made: Factory | None
    if client == wire:
        made = None
    elif key in TABLE:
        made = _load(TABLE[key])
    else:  # through the hub
        outer, inner = _load(TABLE[(client, CHAT)]), _load(TABLE[(CHAT, wire)])

        def made(model: ModelSpec) -> Translator:
            return Chain(outer(model), inner(model))

    _FACTORIES[key] = made
    return made


def translator(client: str, wire: str, model: ModelSpec) -> Translator | None:
    make = factory(client, wire)
    return make(model) if make is not None else None


def _load(target: str) -> Factory:
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, Translator)
    return cls.for_model


class Chain(Translator):
    """Two translators through the hub: ``outer`` (client API -> chat) then ``inner`` (chat ->
    wire format); answers and events go back through ``inner`` then ``outer``."""

    source = target = "chain"  # the two sides say theirs

    def __init__(self, outer: Translator, inner: Translator) -> None:
        super().__init__()
        self.outer, self.inner = outer, inner

    @property
    def lost(self) -> list[str]:
        """What either side dropped."""
        return [*self.outer.dropped, *(d for d in self.inner.dropped if d not in self.outer.dropped)]

    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        upstream = self.inner.request(self.outer.request(body))
        self.dropped = self.lost
        return upstream

    def response(self, body: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.outer.response(self.inner.response(body))
        self.usage = self.inner.usage or self.outer.usage
        self.dropped = self.lost
        return answer

    def event(self, name: str | None, data: Mapping[str, Any]) -> list[Event]:
        out: list[Event] = []
        for hub_name, hub in self.inner.event(name, data):
            out += self.outer.event(hub_name, hub)
        return out

    def end(self) -> list[Event]:
        out: list[Event] = []
        for hub_name, hub in self.inner.end():
            out += self.outer.event(hub_name, hub)
        out += self.outer.end()
        self.dropped = self.lost
        return out

    @property
    def finished(self) -> bool:
        return self.inner.finished


# -- chat-shaped calls to any provider ---------------------------------------------------------


async def chat_call(provider: Provider, body: Mapping[str, Any], model: ModelSpec, *, timeout: float,
                    headers: Mapping[str, str]) -> Completion:
    """A chat completion from ``provider`` whatever it speaks; the answer in chat's shape."""
    wire = wire_for(CHAT, provider.apis)
    t = translator(CHAT, wire, model)
    if t is None:
        return await provider.call(CHAT, body, model, timeout=timeout, headers=headers)
    done = await provider.call(wire, t.request(body), model, timeout=timeout, headers=headers)
    with answer_errors(f"{provider.name}/{model.name}"):
        answer = t.response(done.body)
    return Completion(body=answer, usage=done.usage, dropped=tuple(t.dropped), headers=done.headers)


async def chat_stream(provider: Provider, body: Mapping[str, Any], model: ModelSpec, *, timeout: float, idle_timeout: float,
                      headers: Mapping[str, str]) -> ChunkStream:
    """A streamed chat completion from ``provider`` whatever it speaks: chat chunk payloads."""
    wire = wire_for(CHAT, provider.apis)
    t = translator(CHAT, wire, model)
    events = await provider.stream(wire, t.request(body) if t is not None else body, model, timeout=timeout,
                                   idle_timeout=idle_timeout, headers=headers)
    return ChatChunks(events, t)


class ChatChunks(ChunkStream):
    """An upstream stream as chat chunk payloads (translated when the upstream speaks another format)."""

    def __init__(self, events: EventStream, t: Translator | None) -> None:
        self.events, self.translator = events, t
        self.dropped = tuple(t.dropped) if t is not None else ()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        t, events = self.translator, self.events
        async for batch in events.batches():
            self.usage = events.usage
            for name, data in batch:
                if t is None:
                    yield data
                    continue
                with answer_errors(events.where):
                    out = t.event(name.decode() if name else None, json.loads(data))
                for _, payload in out:
                    yield json.dumps(payload)
        self.usage = events.usage
        if t is not None:
            self.dropped = tuple(t.dropped)

    async def aclose(self) -> None:
        await self.events.aclose()
