"""Providers: one class per provider type, behind the :class:`Provider` interface; the wire formats
they speak (:mod:`.formats`) and the translator table between client APIs and wire formats
(:mod:`.translators`).

Provider types are looked up by name (``spec.providers[].type``) and imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Mapping

import aiohttp

from modelroute.policy import CompiledPolicy
from modelroute.providers.base import (
    RETRYABLE,
    UNHEALTHY,
    ChunkStream,
    Completion,
    ErrorKind,
    KeySource,
    ProviderError,
    Usage,
)
from modelroute.providers.formats import EventStream
from modelroute.providers.provider import Provider
from modelroute.providers.keys import EnvFileKeys
from modelroute.providers.transport import Transport

__all__ = [
    "RETRYABLE",
    "TYPES",
    "UNHEALTHY",
    "ChunkStream",
    "Completion",
    "EnvFileKeys",
    "ErrorKind",
    "EventStream",
    "KeySource",
    "Provider",
    "ProviderError",
    "Transport",
    "Usage",
    "build_providers",
]

#: provider type -> "module:Class"
TYPES: dict[str, str] = {
    "openai": "modelroute.providers.openai:OpenAIProvider",
    "anthropic": "modelroute.providers.anthropic:AnthropicProvider",
}


def provider_class(type_name: str) -> type[Provider]:
    module, _, name = TYPES[type_name].partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, Provider)
    return cls


def build_providers(policy: CompiledPolicy, session: aiohttp.ClientSession, keys: KeySource,
                    transport: Transport | None = None) -> Mapping[str, Provider]:
    """The policy's providers; their calls go through ``transport`` when given, else ``session``."""
    return {name: provider_class(spec.type)(spec, session, keys, transport) for name, spec in policy.providers.items()}
