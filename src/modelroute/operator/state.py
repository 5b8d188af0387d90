"""What the operator knows: policies, injected pods, subscribed sidecars and their acks.

Pure asyncio, no kopf and no HTTP: the kopf handlers feed it, the distribution endpoint reads it,
and the status writer is told which policies changed. Every change that can move a pod to another
policy (or another version) pushes the new :class:`~modelroute.policy.wire.Message` to that pod's
subscribers at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.policy import CompiledPolicy
from modelroute.policy.wire import Ack, Candidate, Message, choose, none_message, policy_message

log = logging.getLogger("modelroute.operator")

Key = tuple[str, str]  # (namespace, name)
NO_POLICY = "no RoutingPolicy in this namespace selects this pod"


@dataclass
class PolicyRecord:
    namespace: str
    name: str
    candidate: Candidate
    compiled: CompiledPolicy | None = None  # the last accepted compilation: what sidecars get
    generation: int = 0
    problems: tuple[str, ...] = ()  # of the latest generation; empty when it was accepted
    deleting: bool = False
    preview: dict[str, Any] | None = None  # status.preview of the accepted version (impact preview)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def serving(self) -> bool:
        return self.compiled is not None and not self.deleting


@dataclass
class PodRecord:
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)


@dataclass(eq=False)
class Subscriber:
    pod: Key
    queue: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)


@dataclass(frozen=True)
class PolicyStats:
    selected: tuple[str, ...]  # pods it serves
    synced: tuple[str, ...]  # of those, pods that acked its version
    shadowed: tuple[str, ...]  # "pod (served by other)"


class ControlState:
    """The operator's in-memory view. ``on_dirty`` is called with each policy key whose status may change."""

    def __init__(self, on_dirty: Callable[[Key], None] | None = None) -> None:
        self.policies: dict[Key, PolicyRecord] = {}
        self.pods: dict[Key, PodRecord] = {}
        self._subs: dict[Key, set[Subscriber]] = {}
        self._sent: dict[Key, str] = {}  # pod -> identity of the last message sent to its subscribers
        self.acks: dict[Key, Ack] = {}
        self._served_by: dict[Key, Key | None] = {}  # pod -> policy serving it
        self._on_dirty = on_dirty or (lambda key: None)

    # --- selection ---------------------------------------------------------------------------

    def ranking(self, pod: PodRecord) -> list[PolicyRecord]:
        """Serving policies that select ``pod``, the winner first."""
        mine = {r.name: r for r in self.policies.values() if r.namespace == pod.namespace and r.serving}
        return [mine[c.name] for c in choose((r.candidate for r in mine.values()), pod.labels)]

    def winner(self, pod_key: Key) -> PolicyRecord | None:
        pod = self.pods.get(pod_key)
        if pod is None:
            return None
        ranked = self.ranking(pod)
        return ranked[0] if ranked else None

    def message_for(self, pod_key: Key) -> Message:
        rec = self.winner(pod_key)
        if rec is None or rec.compiled is None:
            return none_message(NO_POLICY)
        return policy_message(rec.namespace, rec.compiled)

    def stats(self, key: Key) -> PolicyStats:
        rec = self.policies.get(key)
        selected: list[str] = []
        synced: list[str] = []
        shadowed: list[str] = []
        if rec is None or not rec.serving:
            return PolicyStats((), (), ())
        for pod in self.pods.values():
            if pod.namespace != rec.namespace:
                continue
            ranked = self.ranking(pod)
            if not ranked or rec not in ranked:
                continue
            if ranked[0] is rec:
                selected.append(pod.name)
                ack = self.acks.get(pod.key)
                if ack is not None and ack.applied and rec.compiled and ack.version == rec.compiled.version:
                    synced.append(pod.name)
            else:
                shadowed.append(f"{pod.name} (served by {ranked[0].name})")
        return PolicyStats(tuple(sorted(selected)), tuple(sorted(synced)), tuple(sorted(shadowed)))

    # --- changes -----------------------------------------------------------------------------

    def upsert_policy(self, rec: PolicyRecord) -> None:
        self.policies[rec.key] = rec
        self._on_dirty(rec.key)
        self._reassign(rec.namespace)

    def remove_policy(self, key: Key) -> None:
        if self.policies.pop(key, None) is not None:
            self._reassign(key[0])

    def upsert_pod(self, pod: PodRecord) -> None:
        old = self.pods.get(pod.key)
        if old is not None and old.uid != pod.uid:
            self.acks.pop(pod.key, None)  # a new pod under an old name
        self.pods[pod.key] = pod
        self._reassign(pod.namespace, only=[pod.key])

    def remove_pod(self, key: Key) -> None:
        if self.pods.pop(key, None) is None:
            return
        self.acks.pop(key, None)
        served = self._served_by.pop(key, None)
        if served:
            self._on_dirty(served)
        for rec in self.policies.values():
            if rec.namespace == key[0]:
                self._on_dirty(rec.key)  # a shadowing may have gone

    def ack(self, pod_key: Key, ack: Ack) -> None:
        self.acks[pod_key] = ack
        served = self._served_by.get(pod_key)
        if served:
            self._on_dirty(served)

    def _reassign(self, namespace: str, only: Iterable[Key] | None = None) -> None:
        keys = list(only) if only is not None else [k for k in self.pods if k[0] == namespace]
        dirty: set[Key] = set()
        for pod_key in keys:
            win = self.winner(pod_key)
            new = win.key if win else None
            old = self._served_by.get(pod_key)
            self._served_by[pod_key] = new
            dirty.update(k for k in (old, new) if k)
            self._push(pod_key)
        dirty.update(r.key for r in self.policies.values() if r.namespace == namespace)
        for key in dirty:
            self._on_dirty(key)

    # --- subscriptions -----------------------------------------------------------------------

    def subscribe(self, pod_key: Key) -> Subscriber:
        sub = Subscriber(pod_key)
        self._subs.setdefault(pod_key, set()).add(sub)
        if pod_key in self.pods:
            sub.queue.put_nowait(self.message_for(pod_key))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.pod)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.pod]
                self._sent.pop(sub.pod, None)

    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def close_all(self) -> None:
        """Tell every subscriber to reconnect (e.g. this replica stopped leading)."""
        for subs in self._subs.values():
            for sub in subs:
                sub.queue.put_nowait(Message("close"))

    def _push(self, pod_key: Key) -> None:
        subs = self._subs.get(pod_key)
        if not subs:
            return
        msg = self.message_for(pod_key)
        ident = f"{msg.type}:{msg.namespace}/{msg.name}@{msg.version}"
        if self._sent.get(pod_key) == ident:
            return
        self._sent[pod_key] = ident
        for sub in subs:
            sub.queue.put_nowait(msg)
