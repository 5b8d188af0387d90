"""The rate-limit request hook: pass over a saturated model before it answers 429.

- ``admit`` (only with ``rateLimits.store: shared``): for the decision's candidates in order, make
  sure this sidecar holds a lease on the fleet's bucket for the request, until one model has room
  (one Redis call at most per model, usually none: leases are topped up in the background);
- ``skip`` before each attempt: take one request and the request's estimated tokens from the
  model's views (the provider's figures, then the fleet's lease or this sidecar's policy buckets),
  or pass over the model with the reason and the wait (``provider_rpm_limit``, ``shared_tpm_limit``,
  ``local_rpm_limit``, ``reserved_rpm_limit``...);
- ``attempted`` after each attempt: learn the provider's figures from its headers (a 429's too);
- ``settled``: replace token estimates by the real usage, count the 429s suffered.

Buckets belong to a provider key and an upstream model (two policies using one key share them)
and outlive policy reloads. The hook's clock is injectable (tests); Anthropic's reset times are
read against the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelroute.policy import CompiledPolicy
from modelroute.ratelimits.buckets import RateLimitSkip
from modelroute.ratelimits.config import ConfigCache, ModelLimits, RateLimitConfig, SharedStore
from modelroute.ratelimits.headers import KINDS, observe
from modelroute.ratelimits.metrics import RateLimitMetrics
from modelroute.ratelimits.shared import SharedBuckets, SharedKey, key_ident
from modelroute.ratelimits.state import NAMES, KeyState

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from modelroute.contract.hooks import Admission, RequestRecord

#: Output tokens assumed when a request sets no max_tokens (corrected from usage after).
DEFAULT_OUTPUT_TOKENS = 0


@dataclass(slots=True)
class Entry:
    """A watched model of one policy version: its limits and the buckets of its key."""

    limits: ModelLimits
    state: KeyState
    shared: SharedKey | None


@dataclass(slots=True)
class _Held:
    """What one request took: (model, its entry, the amounts, the marks of its take)."""

    amounts: list[float] | None = None
    taken: list[tuple[str, Entry, list[float], tuple[float, ...]]] = field(default_factory=list)


class RateLimitHook:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.configs = ConfigCache()
        self.states: dict[tuple[str, str], KeyState] = {}  # (key ident, upstream model)
        self.stores: dict[SharedStore, SharedBuckets] = {}
        self.metrics: RateLimitMetrics | None = None
        self._entries: dict[tuple[str, str], Entry] = {}  # (policy version, model)

    def bind(self, registry: CollectorRegistry) -> RateLimitMetrics:
        if self.metrics is None:
            self.metrics = RateLimitMetrics(registry)
        return self.metrics

    def _metrics(self) -> RateLimitMetrics:
        assert self.metrics is not None, "the rate-limit feature was not started"
        return self.metrics

    def phases(self, policy: CompiledPolicy) -> frozenset[str]:
        cfg = self.configs.get(policy)
        if not cfg.active:
            return frozenset()
        return frozenset({"skip", "settled"} | ({"attempted"} if cfg.follow_headers else set())
                         | ({"admit"} if cfg.store is not None else set()))

    # -- state -------------------------------------------------------------------------------

    def store_for(self, cfg: RateLimitConfig) -> SharedBuckets | None:
        if cfg.store is None:
            return None
        store = self.stores.get(cfg.store)
        if store is None:
            store = self.stores[cfg.store] = SharedBuckets(cfg.store, self.clock, self._store_state)
        return store

    def _store_state(self, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.store(up)

    def entry(self, request: RequestRecord, cfg: RateLimitConfig, model: str) -> Entry | None:
        found = self._entries.get((cfg.version, model))
        if found is not None:
            return found
        limits = cfg.models.get(model)
        if limits is None:
            return None
        provider = request.runtime.provider_for(model)
        try:
            secret = provider.keys.get(provider.spec) if provider.spec.api_key is not None else None
        except Exception:  # an unreadable key: the attempt will say so; the endpoint alone names the bucket
            secret = None
        ident = key_ident(provider.spec.base_url, secret)
        state = self.states.get((ident, limits.upstream))
        if state is None:
            state = self.states[(ident, limits.upstream)] = KeyState()
        state.configure(limits.rpm, limits.tpm, self.clock())
        store = self.store_for(cfg)
        shared = None
        if store is not None:
            shared = store.key(ident, limits.upstream)
            shared.limit(0, limits.rpm)
            shared.limit(1, limits.tpm)
        if len(self._entries) > 4096:
            self._entries.clear()
        found = self._entries[(cfg.version, model)] = Entry(limits, state, shared)
        return found

    def _amounts(self, request: RequestRecord, held: _Held) -> list[float]:
        if held.amounts is None:
            view = request.view
            given = view.max_tokens if view is not None and view.max_tokens is not None and view.max_tokens > 0 else None
            inp = float(view.input_tokens) if view is not None else 0.0
            out = float(given if given is not None else DEFAULT_OUTPUT_TOKENS)
            held.amounts = [1.0, inp + out, inp, out]
        return held.amounts

    # -- admission (shared store) ------------------------------------------------------------

    async def admit(self, request: Admission) -> None:
        cfg = self.configs.get(request.policy)
        store = self.store_for(cfg)
        decision = request.decision
        if store is None or decision is None:
            return
        amounts = self._amounts(request, request.slot(self, _Held))
        for model in decision.candidates:
            entry = self.entry(request, cfg, model)
            if entry is None or entry.shared is None or not store.up:
                return  # an unwatched model serves, or the store is away: nothing to lease
            floor = entry.limits.floor(decision.route)
            now = self.clock()
            if entry.state.check_provider(amounts, floor, now) is not None or entry.shared.empty(amounts, now, floor) is not None:
                continue
            if entry.shared.covers(amounts, now):
                return
            await store.fill(entry.shared, amounts, floor)
            if entry.shared.covers(amounts, self.clock()):
                return

    # -- each attempt ------------------------------------------------------------------------

    def skip(self, request: RequestRecord, model: str) -> str | None:
        cfg = self.configs.get(request.policy)
        entry = self.entry(request, cfg, model)
        if entry is None:
            return None
        held = request.slot(self, _Held)
        amounts = self._amounts(request, held)
        floor = entry.limits.floor(request.decision.route if request.decision is not None else None)
        now = self.clock()
        reason = entry.state.check_provider(amounts, floor, now)
        shared = entry.shared
        if reason is None:
            reason = self._check_limits(cfg, entry, model, amounts, floor, now)
        if reason is not None:
            self._metrics().skipped(model, reason.limit, reason.source)
            return reason
        marks = entry.state.take(amounts)
        if shared is not None:
            shared.take(amounts, now)
            store = self.store_for(cfg)
            if store is not None and shared.low(now):
                store.top_up(shared, floor)
        held.taken.append((model, entry, amounts, marks))
        return None

    def _check_limits(self, cfg: RateLimitConfig, entry: Entry, model: str, amounts: list[float], floor: float,
                      now: float) -> RateLimitSkip | None:
        shared, store = entry.shared, self.store_for(cfg)
        if shared is None or store is None:
            return entry.state.check_policy(amounts, floor, now)
        if not store.up:
            self._metrics().failed_open(model)
            return entry.state.check_policy(amounts, floor, now)
        if shared.covers(amounts, now):
            return None
        empty = shared.empty(amounts, now, floor)
        if empty is not None:
            return empty
        # not leased (a fallback after a failure, or a request without admission): this
        # sidecar's own view decides, and a lease is fetched for the next request
        store.top_up(shared, floor)
        return entry.state.check_policy(amounts, floor, now)

    def attempted(self, request: RequestRecord, model: str, headers: Mapping[str, str]) -> None:
        obs = observe(headers, time.time())
        if obs is None:
            return
        cfg = self.configs.get(request.policy)
        entry = self.entry(request, cfg, model)
        if entry is None:
            return
        marks = None
        for taken in reversed(request.slot(self, _Held).taken):
            if taken[0] == model:
                marks = taken[3]
                break
        now = self.clock()
        state, shared = entry.state, entry.shared
        state.observe(obs, marks, now, scaled=shared is None)
        metrics = self._metrics()
        store = self.store_for(cfg) if shared is not None else None
        for i, kind in enumerate(KINDS):
            reading = obs.readings.get(kind)
            if reading is None:
                continue
            view = state.provider[i]
            metrics.reported(model, NAMES[i], reading.remaining, reading.limit,
                             view.share if view is not None and shared is None else None)
            if shared is not None and store is not None:
                if reading.limit is not None and (i > 1 or (entry.limits.rpm, entry.limits.tpm)[i] is None):
                    shared.limit(i, reading.limit)  # no policy limit: the provider's
                last = shared.level[i]
                if shared.caps[i] is not None and (last is None or reading.remaining < last):
                    in_flight = view.taken - marks[i] if view is not None and marks is not None else 0.0
                    store.correct(shared, i, reading.remaining, max(0.0, in_flight))

    # -- settlement --------------------------------------------------------------------------

    def settled(self, record: RequestRecord) -> None:
        metrics = self._metrics()
        for attempt in record.attempts:
            if attempt.outcome == "error" and attempt.reason == "rate_limited":
                metrics.suffered(attempt.model)
        held = record.slot(self, _Held)
        if not held.taken:
            return
        attempts = [a for a in record.attempts if a.outcome != "skipped"]
        now = self.clock()
        for model, entry, amounts, _ in held.taken:
            for i, attempt in enumerate(attempts):
                if attempt.model != model:
                    continue
                usage = attempt.usage
                used = (0.0, 0.0) if usage is None else (float(usage.input_tokens), float(usage.output_tokens))
                for kind, real in ((1, used[0] + used[1]), (2, used[0]), (3, used[1])):
                    delta = real - amounts[kind]
                    if delta:
                        entry.state.correct(kind, delta, now)
                        if entry.shared is not None and entry.shared.caps[kind] is not None:
                            entry.shared.units[kind] -= delta
                del attempts[i]
                break

    async def close(self) -> None:
        for store in self.stores.values():
            await store.close()
        self.stores.clear()
