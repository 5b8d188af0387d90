"""The RoutingPolicy CustomResourceDefinition, generated from :mod:`modelroute.policy.schema`.

The spec schema is the sidecar's own (one source); this module only translates JSON Schema into a
Kubernetes *structural* OpenAPI v3 schema:

* ``additionalProperties: false`` is dropped (Kubernetes forbids it beside ``properties``; unknown
  fields are rejected by kubectl's strict field validation and by the operator's validator);
* open objects (no ``properties``, or free-form strategy blocks) keep unknown fields
  (``x-kubernetes-preserve-unknown-fields``); ``anyOf`` over types becomes a preserved value;
* JSON Schema 2020 ``exclusiveMinimum: n`` becomes OpenAPI's ``minimum: n, exclusiveMinimum: true``;
* lists of named items become ``x-kubernetes-list-type: map`` keyed by ``name`` (the API server then
  rejects duplicate names), with ``maxItems`` bounds so CEL rules have a bounded cost;
* cross-field rules that CEL can express are added as ``x-kubernetes-validations``.

Pure: no kopf, no kubernetes client. ``modelroute crds`` prints it; ``crds/`` holds a copy and a test
fails when that copy is stale.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from modelroute.policy.schema import API_VERSION, KIND, spec_schema

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "routingpolicies"
SINGULAR = "routingpolicy"
SHORT_NAMES = ["rp"]
CRD_NAME = f"{PLURAL}.{GROUP}"

#: Upper bounds for lists, so the API server can bound the cost of the CEL rules below.
MAX_ITEMS = {"providers": 32, "models": 128, "routes": 128}
NAME_MAX = 253

#: CEL rules attached to (path of the node) -> rules. Paths use '.' for properties and '[]' for items.
RULES: dict[str, list[dict[str, str]]] = {
    "": [
        {"rule": "self.models.exists(m, m.name == self.default)",
         "message": "spec.default must name a model of spec.models", "fieldPath": ".default"},
        {"rule": "!has(self.baseline) || self.models.exists(m, m.name == self.baseline)",
         "message": "spec.baseline must name a model of spec.models", "fieldPath": ".baseline"},
        {"rule": "self.models.all(m, self.providers.exists(p, p.name == m.provider))",
         "message": "every model's provider must name a provider of spec.providers", "fieldPath": ".models"},
        {"rule": "!has(self.routes) || self.routes.all(r, !has(r.model) || self.models.exists(m, m.name == r.model))",
         "message": "every route's model must name a model of spec.models", "fieldPath": ".routes"},
    ],
    "routes[]": [
        {"rule": "has(self.model) != has(self.strategy)", "message": "a route needs exactly one of model or strategy"},
    ],
    "models[]": [
        {"rule": "!has(self.maxOutputTokens) || !has(self.contextWindow) || self.maxOutputTokens <= self.contextWindow",
         "message": "maxOutputTokens is larger than contextWindow", "fieldPath": ".maxOutputTokens"},
    ],
    "routes[].match.inputTokens": [
        {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max", "message": "min is larger than max"},
    ],
    "routes[].match.tools": [
        {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max", "message": "min is larger than max"},
    ],
}
#: Strings that CEL rules compare: bounded so the rules' estimated cost is bounded.
BOUNDED_STRINGS = {"default", "baseline", "models[].provider", "routes[].model", "routes[].strategy"}


def structural(node: Any, path: str = "") -> Any:
    """Translate one JSON Schema node (recursively) into a structural OpenAPI v3 node."""
    if not isinstance(node, dict):
        return node
    if "anyOf" in node or "oneOf" in node:
        out: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
        if "description" in node:
            out["description"] = node["description"]
        return out
    out = {k: copy.deepcopy(v) for k, v in node.items()
           if k not in ("properties", "items", "additionalProperties", "exclusiveMinimum", "const", "$schema")}
    if "exclusiveMinimum" in node:
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "properties" in node:
        out["properties"] = {k: structural(v, _join(path, k)) for k, v in node["properties"].items()}
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" not in node:
        out["additionalProperties"] = structural(extra, path + "{}")
    if node.get("type") == "object" and "properties" in node and extra is not False:
        out["x-kubernetes-preserve-unknown-fields"] = True  # an open object: keep what we do not declare
    if node.get("type") == "object" and "properties" not in node and not isinstance(extra, dict):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in node:
        out["items"] = structural(node["items"], path + "[]")
        _list_map(out, path)
    if node.get("type") == "string" and path in BOUNDED_STRINGS:
        out.setdefault("maxLength", NAME_MAX)
    if path in RULES:
        out["x-kubernetes-validations"] = copy.deepcopy(RULES[path])
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _list_map(node: dict[str, Any], path: str) -> None:
    items = node["items"]
    if path in MAX_ITEMS:
        node["maxItems"] = MAX_ITEMS[path]
    if items.get("type") == "object" and "name" in items.get("required", []):
        node["x-kubernetes-list-type"] = "map"
        node["x-kubernetes-list-map-keys"] = ["name"]


def status_schema() -> dict[str, Any]:
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string", "description": "Accepted (validation) or Synced (delivery to the selected pods)."},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string", "description": "For Accepted=False: every problem with its field path."},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    }
    return {
        "type": "object",
        "description": "Written by the operator.",
        "properties": {
            "observedGeneration": {"type": "integer", "description": "The metadata.generation last validated."},
            "policyVersion": {"type": "string", "description": "Content hash of the compiled policy being delivered."},
            "selectedPods": {"type": "integer", "description": "Injected pods this policy serves (it wins the selection for them)."},
            "syncedPods": {"type": "integer", "description": "Of those, pods whose sidecar acknowledged policyVersion."},
            "synced": {"type": "string", "description": "syncedPods/selectedPods, e.g. 3/3."},
            "models": {"type": "string", "description": "The registry's model names, comma separated."},
            "shadowedPods": {
                "type": "array", "items": {"type": "string"},
                "description": "Pods this policy selects but another policy serves (higher priority, or older): 'pod (served by policy)'.",
            },
            "conditions": {"type": "array", "items": condition, "x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["type"]},
            "preview": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                "description": "Impact preview (spec.preview): the sample workload replayed on the accepted version: route mix, "
                               "costPer1000 against the previous version and the baseline, quality when labelled.",
            },
        },
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a plain dict."""
    spec = structural(spec_schema())
    spec["description"] = spec.get("description", "") + " Validated by the operator with the sidecar's own validator."
    columns = [
        {"name": "Default", "type": "string", "jsonPath": ".spec.default"},
        {"name": "Models", "type": "string", "jsonPath": ".status.models", "priority": 0},
        {"name": "Synced", "type": "string", "jsonPath": ".status.synced"},
        {"name": "Accepted", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Accepted")].status'},
        {"name": "Version", "type": "string", "jsonPath": ".status.policyVersion", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = {
        "type": "object",
        "description": "RoutingPolicy: how the modelroute sidecars of the selected pods route LLM requests.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status_schema(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "modelroute"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": SINGULAR, "kind": KIND, "listKind": f"{KIND}List",
                      "shortNames": SHORT_NAMES, "categories": ["modelroute"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": schema},
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
            }],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `modelroute crds` from src/modelroute/policy/schema.py. Do not edit.\n"
    return header + str(yaml.safe_dump(crd(), sort_keys=False, width=120))
