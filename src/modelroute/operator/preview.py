"""Impact preview: on every accepted change, replay the policy's sample workload into ``status.preview``.

The workload is a ConfigMap in the policy's namespace (``spec.preview.configMap``), JSON lines as
``modelroute replay`` reads them. The replay runs the real routing code offline (no provider is
called), for the new version and the one it replaces, so the status shows the route mix, cost per
1,000 requests against the previous version and the baseline; a Warning Event says when the cost
rises by more than ``maxCostIncreasePercent``.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from modelroute.operator.kubeapi import KubeAPI, KubeError
from modelroute.policy import CompiledPolicy, PolicyError
from modelroute.replay.preview import DEFAULT_MAX_INCREASE, preview, workload_from_text

log = logging.getLogger("modelroute.operator.preview")
DEFAULT_KEY = "workload.jsonl"


async def compute(api: KubeAPI, namespace: str, policy: CompiledPolicy, previous: CompiledPolicy | None) -> dict[str, Any] | None:
    """``status.preview`` for ``policy``, or None when it names no workload. Problems reading the
    workload are reported in the preview (``error``), never raised: a preview must not block a policy."""
    cfg = policy.extensions.get("preview") or {}
    ref = cfg.get("configMap")
    if not ref:
        return None
    name, key = ref["name"], ref.get("key", DEFAULT_KEY)
    try:
        cm = await api.get_configmap(namespace, name)
    except (KubeError, OSError) as exc:
        return {"error": f"cannot read ConfigMap {name}: {exc}"}
    text = ((cm or {}).get("data") or {}).get(key)
    if text is None:
        return {"error": f"ConfigMap {name} has no key {key!r}"}
    try:
        items = workload_from_text(text)
        return await preview(policy, items, previous, float(cfg.get("maxCostIncreasePercent", DEFAULT_MAX_INCREASE)))
    except (ValueError, KeyError, PolicyError) as exc:
        log.warning("preview of %s/%s failed: %s", namespace, policy.name, exc)
        return {"error": f"the workload in ConfigMap {name} cannot be replayed: {exc}"}


def announce(body: Any, status: dict[str, Any] | None) -> None:
    """A Warning Event when the new version costs more than the threshold allows."""
    if status and status.get("costIncreaseExceeded"):
        kopf.warn(body, reason="CostIncrease",
                  message=f"cost per 1,000 requests rises {status.get('costChangePercent')}% "
                          f"(limit {status.get('maxCostIncreasePercent')}%): "
                          f"{(status.get('previous') or {}).get('costPer1000')} -> {status.get('costPer1000')} USD")
    elif status and status.get("error"):
        kopf.warn(body, reason="PreviewFailed", message=str(status["error"])[:1000])
