"""RoutingPolicy status: computed from :class:`ControlState`, written in small debounced batches.

One writer owns ``.status`` (observedGeneration, policyVersion, conditions Accepted and Synced,
selectedPods, syncedPods, synced "n/m", models, shadowedPods). Changes mark a policy dirty; a loop
flushes dirty policies every :data:`FLUSH_SECONDS` with a merge patch of only what changed, so 50
acks arriving together cost one API call.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping
from typing import Any

from modelroute.operator.kubeapi import KubeAPI, KubeError
from modelroute.operator.state import ControlState, Key, PolicyRecord

log = logging.getLogger("modelroute.operator")
FLUSH_SECONDS = 0.1
MAX_LISTED = 20  # pods named in status lists


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(ctype: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {"type": ctype, "status": "True" if ok else "False", "reason": reason,
            "message": message[:4000], "observedGeneration": generation}


def desired_status(state: ControlState, rec: PolicyRecord) -> dict[str, Any]:
    """The status a policy should have now (without transition times)."""
    stats = state.stats(rec.key)
    if rec.problems:
        kept = f". Sidecars keep version {rec.compiled.version}." if rec.compiled else ""
        accepted = _condition("Accepted", False, "Invalid", "; ".join(rec.problems) + kept, rec.generation)
    else:
        accepted = _condition("Accepted", True, "Valid", "validated and compiled", rec.generation)
    n, m = len(stats.synced), len(stats.selected)
    pending = [p for p in stats.selected if p not in stats.synced]
    if not rec.serving:
        synced = _condition("Synced", False, "NotServing", "no accepted version to deliver", rec.generation)
    elif n == m:
        synced = _condition("Synced", True, "AllPodsSynced" if m else "NoPods", f"{n}/{m} pods run version {rec.compiled.version if rec.compiled else ''}", rec.generation)
    else:
        synced = _condition("Synced", False, "Pending", f"{n}/{m} pods synced; waiting for: {', '.join(pending[:MAX_LISTED])}", rec.generation)
    if stats.shadowed:
        synced["message"] += "; selected but served by another policy: " + ", ".join(stats.shadowed[:MAX_LISTED])
    out: dict[str, Any] = {
        "observedGeneration": rec.generation,
        "policyVersion": rec.compiled.version if rec.compiled else "",
        "selectedPods": m,
        "syncedPods": n,
        "synced": f"{n}/{m}",
        "models": ",".join(rec.compiled.models) if rec.compiled else "",
        "shadowedPods": list(stats.shadowed[:MAX_LISTED]),
        "conditions": [accepted, synced],
    }
    if rec.preview is not None:
        out["preview"] = rec.preview
    return out


def with_transitions(new: dict[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """Carry lastTransitionTime over from ``old`` conditions whose status did not change."""
    before = {c["type"]: c for c in (old or {}).get("conditions", [])}
    for cond in new["conditions"]:
        prev = before.get(cond["type"])
        same = prev is not None and prev.get("status") == cond["status"]
        cond["lastTransitionTime"] = prev.get("lastTransitionTime", _now()) if same and prev else _now()
    return new


class StatusWriter:
    """Debounced status patches for dirty policies."""

    def __init__(self, api: KubeAPI) -> None:
        self.api = api
        self.state: ControlState | None = None
        self._dirty: set[Key] = set()
        self._written: dict[Key, dict[str, Any]] = {}
        self._wake = asyncio.Event()

    def mark(self, key: Key) -> None:
        self._dirty.add(key)
        self._wake.set()

    def forget(self, key: Key) -> None:
        self._dirty.discard(key)
        self._written.pop(key, None)

    def seed(self, key: Key, status: Mapping[str, Any] | None) -> None:
        """What the API already holds (from the watched body), so transition times survive restarts."""
        if status and key not in self._written:
            self._written[key] = dict(status)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_SECONDS)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for key in sorted(dirty):
            try:
                await self._write(key)
            except (TimeoutError, KubeError, OSError) as exc:
                log.warning("status of %s/%s not written (will retry): %s", key[0], key[1], exc)
                self._dirty.add(key)
        if self._dirty:
            await asyncio.sleep(1.0)
            self._wake.set()

    async def _write(self, key: Key) -> None:
        assert self.state is not None
        rec = self.state.policies.get(key)
        if rec is None:
            return
        old = self._written.get(key)
        new = desired_status(self.state, rec)
        if old is not None and _same(old, new):
            return
        new = with_transitions(new, old)
        if not self.api.configured:
            raise KubeError(0, "not logged in yet")
        await self.api.patch_status(key[0], key[1], new)
        self._written[key] = new


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def strip(s: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(s)
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in s.get("conditions", [])]
        return out

    return strip(old) == strip(new)
