"""Decode a :class:`CompiledPolicy` from its plain (JSON) form, guided by the dataclass types."""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from typing import Any, Mapping

from modelroute.policy.errors import PolicyError
from modelroute.policy.model import FORMAT_VERSION, CompiledPolicy


def decode_compiled(data: Mapping[str, Any]) -> CompiledPolicy:
    got = data.get("format_version")
    if got != FORMAT_VERSION:
        raise PolicyError([("format_version", f"unsupported compiled policy format {got!r}, this sidecar reads {FORMAT_VERSION}")])
    result = _decode(CompiledPolicy, data)
    assert isinstance(result, CompiledPolicy)
    return result


def _decode(tp: Any, value: Any) -> Any:
    if value is None or tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _decode(inner[0], value)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {f.name: _decode(hints[f.name], value[f.name]) for f in dataclasses.fields(tp) if f.name in value}
        return tp(**kwargs)  # type: ignore[operator]
    if origin is tuple:
        return tuple(_decode(args[0], v) for v in value)
    if origin is frozenset:
        return frozenset(_decode(args[0], v) for v in value)
    if origin in (dict, collections.abc.Mapping) or tp in (dict, Mapping):
        vt = args[1] if args else Any
        return {k: _decode(vt, v) for k, v in value.items()}
    if tp is float and isinstance(value, int):
        return float(value)
    return value
