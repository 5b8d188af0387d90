"""A Kubernetes API emulator for tests and benchmarks (needs ``kmock``; not used in production).

:class:`Emulator` extends ``kmock.KubernetesEmulator`` with what kopf and the operator rely on:
``metadata.resourceVersion/uid/generation/creationTimestamp``, list resourceVersions and watches that
resume from ``?resourceVersion``, RFC 7386 merge patches and RFC 6902 JSON patches (a failed ``test``
answers 422, as kopf's optimistic finalizer patches expect), finalizers on delete, and TokenReview
answered from :attr:`Emulator.tokens` (token -> pod identity).

Run it as its own process (so an operator can be killed and restarted against it)::

    python -m modelroute.operator.emulator --port 0 --port-file /tmp/port
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
from kmock._internal import apps, enums, rendering

RESOURCES: dict[str, dict[str, Any]] = {
    "v1/namespaces": {"kind": "Namespace", "namespaced": False},
    "v1/pods": {"kind": "Pod", "namespaced": True, "subresources": {"status"}},
    "v1/events": {"kind": "Event", "namespaced": True},
    "v1/configmaps": {"kind": "ConfigMap", "namespaced": True},
    "v1/secrets": {"kind": "Secret", "namespaced": True},
    "modelroute.dev/v1alpha1/routingpolicies": {"kind": "RoutingPolicy", "namespaced": True, "subresources": {"status"},
                                                "shortnames": {"rp"}},
    "authentication.k8s.io/v1/tokenreviews": {"kind": "TokenReview", "namespaced": False},
}
VERBS = {"get", "list", "watch", "create", "patch", "update", "delete"}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with resource versions, generations, JSON patches and TokenReview."""

    tokens: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # token -> TokenReview status.user
    _rv: int = attrs.field(default=1, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, info in RESOURCES.items():
            self.resources[key] = kmock.ResourceInfo(verbs=VERBS, **info)
        self.objects["v1/namespaces", None, "default"] = {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": "default", "uid": "ns-default", "resourceVersion": "1"}}

    def add_pod_token(self, token: str, namespace: str, pod: str, uid: str, sa: str = "default") -> None:
        self.tokens[token] = {"username": f"system:serviceaccount:{namespace}:{sa}",
                              "extra": {"authentication.kubernetes.io/pod-name": [pod],
                                        "authentication.kubernetes.io/pod-uid": [uid]}}

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        # Skip KubernetesEmulator's own state changes: ours happen in the _serve_* fallbacks below.
        if request.resource is not None and request.resource.plural == "tokenreviews":
            return aiohttp.web.json_response(self._review(request.data or {}), status=201)
        return await apps.RawHandler._handle(self, request)

    def _review(self, review: dict[str, Any]) -> dict[str, Any]:
        token = (review.get("spec") or {}).get("token", "")
        user = self.tokens.get(token)
        status = {"authenticated": True, "user": user, "audiences": (review.get("spec") or {}).get("audiences")} \
            if user else {"authenticated": False, "error": "invalid token"}
        return {**review, "status": status}

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _key(self, request: rendering.Request, name: str | None = None) -> tuple[Any, str | None, str]:
        return (request.resource, request.namespace, name or request.name or "")

    async def _emit(self, request: rendering.Request, kind: str, raw: dict[str, Any]) -> None:
        assert request.resource is not None
        await self._buses[request.resource].put({"type": kind, "object": copy.deepcopy(raw)})

    async def _serve_create(self, request: rendering.Request) -> rendering.Payload:
        body = copy.deepcopy(request.data or {})
        meta = body.setdefault("metadata", {})
        if request.namespace:
            meta["namespace"] = request.namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        key = self._key(request, meta.get("name"))
        async with self._lock:
            existing = self._objects[key] if key in self._objects else None  # noqa: SIM401 (no .get)
            if existing is not None and not existing.deleted:
                raise kmock.KubernetesError(409, "AlreadyExists", f"{meta.get('name')} already exists")
            meta.update(uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), generation=1, creationTimestamp=_now())
            if existing is None:
                self._objects[key] = body
            else:
                existing.create(body)
            await self._emit(request, "ADDED", body)
        return body

    async def _serve_update(self, request: rendering.Request) -> rendering.Payload:
        key = self._key(request)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                raise kmock.KubernetesObjectNotFoundError()
            obj = self._objects[key]
            old = copy.deepcopy(obj.raw)
            new = self._patched(request, old)
            if request.subresource == "status":
                new = {**old, "status": new.get("status")}
            elif "status" in (RESOURCES.get(self._rkey(request), {}).get("subresources") or ()):
                new["status"] = old.get("status")
            new = {k: v for k, v in new.items() if v is not None}
            meta = new.setdefault("metadata", {})
            meta["resourceVersion"] = self._next_rv()
            if request.subresource is None and new.get("spec") != old.get("spec"):
                meta["generation"] = int(old.get("metadata", {}).get("generation", 1)) + 1
            obj.create(new)
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                obj.delete()
                await self._emit(request, "DELETED", new)
            else:
                await self._emit(request, "MODIFIED", new)
        return new

    def _rkey(self, request: rendering.Request) -> str:
        r = request.resource
        assert r is not None
        return f"{r.group}/{r.version}/{r.plural}" if r.group else f"{r.version}/{r.plural}"

    def _patched(self, request: rendering.Request, old: dict[str, Any]) -> dict[str, Any]:
        ctype = request.headers.get("Content-Type", "") if request.headers else ""
        data = request.data
        if isinstance(data, list) or "json-patch" in ctype:
            try:
                patched: dict[str, Any] = jsonpatch.apply_patch(old, data)
                return dict(patched)
            except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPointerException) as exc:
                raise kmock.KubernetesError(422, "Invalid", f"the JSON patch does not apply: {exc}") from None
        if request.method == enums.method.PUT:
            return dict(data or {})
        merged: dict[str, Any] = _merge(old, data or {})
        return merged

    async def _serve_delete(self, request: rendering.Request) -> rendering.Payload:
        key = self._key(request)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                raise kmock.KubernetesObjectNotFoundError()
            obj = self._objects[key]
            raw = copy.deepcopy(obj.raw)
            meta = raw["metadata"]
            if meta.get("finalizers"):
                if not meta.get("deletionTimestamp"):
                    meta.update(deletionTimestamp=_now(), resourceVersion=self._next_rv())
                    obj.create(raw)
                    await self._emit(request, "MODIFIED", raw)
                return raw
            meta["resourceVersion"] = self._next_rv()
            obj.delete()
            await self._emit(request, "DELETED", raw)
        return raw

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        if request.resource not in self._get_resources():
            raise kmock.KubernetesResourceNotFoundError()
        async with self._lock:
            items = [copy.deepcopy(o.raw) for o in self._matching(request)]
            rv = str(self._rv)
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items}

    def _matching(self, request: rendering.Request) -> list[Any]:
        return [o for (res, ns, name), o in self._objects.items()
                if res == request.resource and not o.deleted
                and (request.namespace is None or ns == request.namespace)
                and (request.name is None or name == request.name)]

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""
        assert request.resource is not None
        since = int((request.params or {}).get("resourceVersion") or 0)
        async with self._lock:
            mark = await self._buses[request.resource].mark()
            backlog = [copy.deepcopy(o.raw) for o in self._matching(request)
                       if int(o.raw.get("metadata", {}).get("resourceVersion", 0)) > since]
        for raw in backlog:
            yield {"type": "ADDED" if not since else "MODIFIED", "object": raw}
        async for event in mark:
            meta = event.get("object", {}).get("metadata", {})
            if request.namespace is None or meta.get("namespace") == request.namespace:
                if request.name is None or meta.get("name") == request.name:
                    yield event


def _merge(old: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(old) if isinstance(old, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


async def serve(port: int, port_file: str | None, tokens_file: str | None) -> None:
    emulator = Emulator()
    if tokens_file:
        with open(tokens_file, encoding="utf-8") as fh:
            emulator.tokens.update(json.load(fh))
    async with emulator, kmock.Server(emulator, port=port or None) as server:
        if port_file:
            with open(port_file + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(str(server.port))
            import os

            os.replace(port_file + ".tmp", port_file)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--tokens", help="JSON file: token -> TokenReview status.user")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.port_file, args.tokens))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
