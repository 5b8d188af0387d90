"""Reading a strategy block: typed getters that collect every problem with its field path.

A strategy constructor builds a :class:`Config` over its block, reads each field once, and calls
:meth:`Config.check` at the end, which raises :class:`PolicyError` listing all problems
(``spec.strategies.<name>.<field>: message``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterable

from modelroute.policy import CompiledPolicy, PolicyError
from modelroute.routing.strategy import ModelClient, Strategy, strategy_class

_MISSING = object()


class Config:
    def __init__(self, name: str, block: Mapping[str, Any], policy: CompiledPolicy, known: Iterable[str]) -> None:
        self.name = name
        self.root = f"spec.strategies.{name}"
        self.block = block
        self.policy = policy
        self.problems: list[tuple[str, str]] = []
        for key in block:
            if key != "type" and key not in set(known):
                self.problems.append((f"{self.root}.{key}", f"unknown field; known: {sorted(known)}"))

    def path(self, *parts: str | int) -> str:
        out = self.root
        for p in parts:
            out += f"[{p}]" if isinstance(p, int) else f".{p}"
        return out

    def fail(self, message: str, *parts: str | int) -> None:
        self.problems.append((self.path(*parts), message))

    def check(self) -> None:
        if self.problems:
            raise PolicyError(self.problems)

    def _get(self, key: str, default: Any, block: Mapping[str, Any] | None) -> Any:
        src = self.block if block is None else block
        return src.get(key, default)

    def number(self, key: str, default: float, *, lo: float | None = None, hi: float | None = None,
               block: Mapping[str, Any] | None = None, at: tuple[str | int, ...] = ()) -> float:
        value = self._get(key, default, block)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail("must be a number", *at, key)
            return default
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(f"must be between {lo} and {hi}", *at, key)
            return default
        return float(value)

    def integer(self, key: str, default: int, *, lo: int = 1, hi: int | None = None,
                block: Mapping[str, Any] | None = None, at: tuple[str | int, ...] = ()) -> int:
        value = self._get(key, default, block)
        if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
            self.fail(f"must be an integer between {lo} and {hi if hi is not None else 'any'}", *at, key)
            return default
        return value

    def string(self, key: str, default: str | None = None, *, choices: Iterable[str] | None = None,
               block: Mapping[str, Any] | None = None, at: tuple[str | int, ...] = ()) -> str | None:
        value = self._get(key, default, block)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.fail("must be a non-empty string", *at, key)
            return default
        if choices is not None and value not in set(choices):
            self.fail(f"must be one of {sorted(choices)}", *at, key)
            return default
        return value

    def required_string(self, key: str) -> str:
        if key not in self.block:
            self.fail("is required", key)
            return ""
        return self.string(key) or ""

    def boolean(self, key: str, default: bool, *, block: Mapping[str, Any] | None = None, at: tuple[str | int, ...] = ()) -> bool:
        value = self._get(key, default, block)
        if not isinstance(value, bool):
            self.fail("must be true or false", *at, key)
            return default
        return value

    def mapping(self, key: str, *, block: Mapping[str, Any] | None = None, at: tuple[str | int, ...] = ()) -> Mapping[str, Any]:
        value = self._get(key, None, block)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail("must be an object", *at, key)
            return {}
        return value

    def model(self, key: str, *, required: bool = True, block: Mapping[str, Any] | None = None,
              at: tuple[str | int, ...] = ()) -> str | None:
        """A registry model name."""
        value = self._get(key, None, block)
        if value is None:
            if required:
                self.fail("is required (a registry model)", *at, key)
            return None
        if not isinstance(value, str) or value not in self.policy.models:
            self.fail(f"unknown model {value!r}", *at, key)
            return None
        return value

    def models(self, key: str, *, min_items: int = 1, block: Mapping[str, Any] | None = None,
               at: tuple[str | int, ...] = ()) -> tuple[str, ...]:
        value = self._get(key, None, block)
        if not isinstance(value, list) or len(value) < min_items:
            self.fail(f"must be a list of at least {min_items} registry models", *at, key)
            return ()
        out: list[str] = []
        for i, name in enumerate(value):
            if not isinstance(name, str) or name not in self.policy.models:
                self.fail(f"unknown model {name!r}", *at, key, i)
            elif name in out:
                self.fail(f"model {name!r} is listed twice", *at, key, i)
            else:
                out.append(name)
        return tuple(out)

    def strategy(self, ref: Any, client: ModelClient | None, refused: tuple[str, ...], *at: str | int) -> Strategy | None:
        """Another block of spec.strategies, built to choose for this one; None (with a problem at
        ``at``) when ``ref`` names no block, names this one, or names a block of a ``refused`` type."""
        block = self.policy.strategies.get(ref) if isinstance(ref, str) else None
        if block is None or ref == self.name or block.get("type") in refused:
            self.fail(f"strategy {ref!r} is not another strategy of spec.strategies whose type is not one of {list(refused)}", *at)
            return None
        return strategy_class(str(block["type"]), f"spec.strategies.{ref}.type")(str(ref), block, self.policy, client)
