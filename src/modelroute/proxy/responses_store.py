"""The Responses API's conversation state: the responses this sidecar served, kept for a while.

``previous_response_id`` must work whichever model served the earlier turn, and no provider holds a
conversation another provider served, so the sidecar keeps each response it answered (unless the
request said ``store: false``): the response object, the request's own input items, and the id of
the response before it. A new turn's input is the chain's items, oldest first (each turn's input
then its output), then its own: :meth:`ResponseStore.history`.

Bounded by the active policy (``spec.responses.store``: ``maxMB``, ``ttlSeconds``): each entry is
counted at its serialised size; the least recently used go first when the total passes the bound,
and entries older than the TTL are gone. A turn whose chain lost an entry gets a clear 404 naming
it. Evictions and the bytes held are in ``/metrics``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelroute import _json as json


@dataclass(slots=True)
class Stored:
    id: str
    response: Mapping[str, Any]  # as the client got it
    input_items: tuple[Mapping[str, Any], ...]  # this turn's own input, as items with ids
    previous: str | None
    at: float
    size: int


class Missing(LookupError):
    """A response of the chain is not held (never served here, deleted, evicted or expired)."""


class ResponseStore:
    def __init__(self, max_bytes: int = 64 * 1024 * 1024, ttl_seconds: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes, self.ttl = max_bytes, ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, Stored] = OrderedDict()
        self._items: dict[str, str] = {}  # item id -> response id holding it
        self.bytes = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def bound(self, max_bytes: int, ttl_seconds: float) -> None:
        """Apply the active policy's bounds."""
        self.max_bytes, self.ttl = max_bytes, ttl_seconds

    def put(self, response: Mapping[str, Any], input_items: Sequence[Mapping[str, Any]], previous: str | None) -> None:
        ident = str(response.get("id") or "")
        if not ident:
            return
        self.delete(ident)
        size = len(json.dumps(response)) + len(json.dumps(input_items)) + 200
        entry = Stored(ident, response, tuple(input_items), previous, self._clock(), size)
        self._entries[ident] = entry
        self.bytes += size
        for item in (*input_items, *_output(response)):
            if isinstance(item.get("id"), str):
                self._items[item["id"]] = ident
        self._trim()

    def get(self, ident: str) -> Stored | None:
        entry = self._entries.get(ident)
        if entry is None:
            return None
        if self._clock() - entry.at > self.ttl:
            self._drop(ident)
            return None
        self._entries.move_to_end(ident)
        return entry

    def delete(self, ident: str) -> bool:
        if ident not in self._entries:
            return False
        self._drop(ident)
        return True

    def history(self, ident: str) -> list[Mapping[str, Any]]:
        """The conversation up to and including response ``ident``, as input items, oldest first."""
        chain: list[Stored] = []
        seen: set[str] = set()
        current: str | None = ident
        while current is not None and current not in seen:
            entry = self.get(current)
            if entry is None:
                raise Missing(current)
            chain.append(entry)
            seen.add(current)
            current = entry.previous
        items: list[Mapping[str, Any]] = []
        for entry in reversed(chain):
            items += entry.input_items
            items += _output(entry.response)
        return items

    def item(self, item_id: str) -> Mapping[str, Any] | None:
        """An input or output item by its id (an ``item_reference``), or None."""
        holder = self._items.get(item_id)
        entry = self.get(holder) if holder is not None else None
        if entry is None:
            return None
        for item in (*entry.input_items, *_output(entry.response)):
            if item.get("id") == item_id:
                return item
        return None

    def _drop(self, ident: str) -> None:
        entry = self._entries.pop(ident)
        self.bytes -= entry.size
        for item in (*entry.input_items, *_output(entry.response)):
            if self._items.get(str(item.get("id"))) == ident:
                del self._items[str(item["id"])]

    def _trim(self) -> None:
        now = self._clock()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if self.bytes <= self.max_bytes and now - oldest.at <= self.ttl:
                break
            self._drop(oldest.id)
            self.evicted += 1


def _output(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    output = response.get("output")
    return [item for item in output if isinstance(item, Mapping)] if isinstance(output, list) else []
