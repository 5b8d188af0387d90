"""The wire contract between the operator and its sidecars (pure: no I/O, no kopf, no aiohttp).

Both ``modelroute.operator`` and ``modelroute.proxy.subscription`` import this module; they never
import each other.

Subscription (push): a sidecar opens ``GET /v1/subscribe`` with its projected ServiceAccount token
as ``Authorization: Bearer``; the operator answers with a never-ending ``application/x-ndjson``
stream, one :class:`Message` per line:

* ``{"type": "policy", "name", "namespace", "version", "policy": <CompiledPolicy.to_dict()>}``
* ``{"type": "none", "reason"}``: no RoutingPolicy selects this pod (the "no policy" behaviour)
* ``{"type": "ping"}``: keep-alive, sent every :data:`PING_SECONDS`

After applying (or failing to apply) a policy the sidecar acknowledges it with ``POST /v1/ack``,
body ``{"version", "applied": bool, "error"}``, same token.

Bootstrap: the operator keeps every accepted policy of a namespace in the ConfigMap
:data:`BOOTSTRAP_CONFIGMAP` (one key ``<policy>.json`` per policy, holding a :class:`Bundle`), which the
injected sidecar mounts; a sidecar that starts while the operator is down picks its policy from there
with the same :func:`choose` rule the operator uses.

Selection rule: a policy selects a pod when its label selector matches the pod's labels (an empty
selector selects every injected pod of the namespace). When several policies select one pod, the
highest ``spec.priority`` wins, then the oldest (creation time), then the name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.policy.model import CompiledPolicy

SUBSCRIBE_PATH = "/v1/subscribe"
ACK_PATH = "/v1/ack"
PING_SECONDS = 10.0
BOOTSTRAP_CONFIGMAP = "modelroute-policies"
#: Audience of the projected ServiceAccount token a sidecar presents to the operator.
TOKEN_AUDIENCE = "modelroute"
CONTENT_TYPE = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class Message:
    """One line of the subscription stream."""

    type: str  # "policy" | "none" | "ping"
    name: str | None = None
    namespace: str | None = None
    version: str | None = None
    policy: Mapping[str, Any] | None = None
    reason: str | None = None

    def encode(self) -> bytes:
        data = {k: v for k, v in (
            ("type", self.type), ("name", self.name), ("namespace", self.namespace),
            ("version", self.version), ("policy", self.policy), ("reason", self.reason),
        ) if v is not None}
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    @staticmethod
    def decode(line: bytes | str) -> Message:
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("type") not in ("policy", "none", "ping"):
            raise ValueError(f"not a subscription message: {str(line)[:80]!r}")
        if data["type"] == "policy" and not isinstance(data.get("policy"), dict):
            raise ValueError("a policy message without a policy")
        return Message(
            type=data["type"], name=data.get("name"), namespace=data.get("namespace"),
            version=data.get("version"), policy=data.get("policy"), reason=data.get("reason"),
        )

    def compiled(self) -> CompiledPolicy:
        assert self.policy is not None
        return CompiledPolicy.from_dict(self.policy)


def policy_message(namespace: str, policy: CompiledPolicy) -> Message:
    return Message("policy", name=policy.name, namespace=namespace, version=policy.version, policy=policy.to_dict())


def none_message(reason: str) -> Message:
    return Message("none", reason=reason)


PING = Message("ping")


@dataclass(frozen=True, slots=True)
class Ack:
    version: str
    applied: bool
    error: str | None = None

    def encode(self) -> bytes:
        return json.dumps({"version": self.version, "applied": self.applied, "error": self.error}).encode()

    @staticmethod
    def decode(body: bytes | str) -> Ack:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise ValueError("an ack needs a version")
        error = data.get("error")
        return Ack(version=data["version"], applied=bool(data.get("applied")), error=str(error)[:500] if error else None)


# --- selection -------------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A standard Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or ())
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the selection rule needs to know about a policy."""

    name: str
    priority: int = 0
    created: str = ""  # RFC 3339 creation timestamp; compares in time order as text
    selector: Mapping[str, Any] = field(default_factory=dict)

    def rank(self) -> tuple[int, str, str]:
        return (-self.priority, self.created, self.name)


def choose(candidates: Iterable[Candidate], labels: Mapping[str, str]) -> list[Candidate]:
    """Policies selecting a pod with ``labels``, the winner first (priority, then oldest, then name)."""
    return sorted((c for c in candidates if selector_matches(c.selector, labels)), key=Candidate.rank)


# --- bootstrap ConfigMap ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bundle:
    """One accepted policy as kept in the bootstrap ConfigMap."""

    candidate: Candidate
    policy: Mapping[str, Any]  # CompiledPolicy.to_dict()

    def encode(self) -> str:
        c = self.candidate
        return json.dumps({
            "name": c.name, "priority": c.priority, "created": c.created,
            "selector": dict(c.selector), "policy": self.policy,
        }, separators=(",", ":"), sort_keys=True)

    @staticmethod
    def decode(text: str) -> Bundle:
        data = json.loads(text)
        cand = Candidate(name=str(data["name"]), priority=int(data.get("priority", 0)),
                         created=str(data.get("created", "")), selector=data.get("selector") or {})
        return Bundle(candidate=cand, policy=data["policy"])


def bundle_key(policy_name: str) -> str:
    return f"{policy_name}.json"


def parse_labels_file(text: str) -> dict[str, str]:
    """Labels as the downward API writes them: one ``key="value"`` per line (value JSON-quoted)."""
    labels: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            labels[key.strip()] = str(json.loads(value.strip()))
        except json.JSONDecodeError:
            labels[key.strip()] = value.strip().strip('"')
    return labels
