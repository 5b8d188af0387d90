"""JSON Schema of a RoutingPolicy ``spec``: the single source for validation and for the CRD.

Descriptions are written for ``kubectl explain``. Cross-field rules (unknown model names, cycles,
CEL that does not compile) are checked in :mod:`modelroute.policy.validate`, since a schema cannot
express them.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "modelroute.dev/v1alpha1"
KIND = "RoutingPolicy"

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$", "maxLength": 253}
_PRICE = {"type": "number", "minimum": 0}
_STRINGS = {"type": "array", "items": {"type": "string"}, "minItems": 1}


def _obj(props: dict[str, Any], required: list[str] | None = None, desc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    if desc:
        out["description"] = desc
    return out


def _range(desc: str) -> dict[str, Any]:
    return _obj(
        {"min": {"type": "integer", "minimum": 0}, "max": {"type": "integer", "minimum": 0}},
        desc=desc + " Both ends are inclusive; either may be left out.",
    )


API_KEY = _obj(
    {
        "env": {"type": "string", "minLength": 1, "description": "Environment variable holding the key."},
        "file": {"type": "string", "minLength": 1, "description": "File holding the key (a mounted Secret); re-read when it changes."},
        "secretKeyRef": _obj(
            {"name": {"type": "string", "minLength": 1}, "key": {"type": "string", "minLength": 1}},
            ["name", "key"],
            "A key of a Secret in the policy's namespace (in a cluster only).",
        ),
    },
    desc="Where the provider key comes from: exactly one of env, file or secretKeyRef.",
)
API_KEY["minProperties"] = 1
API_KEY["maxProperties"] = 1

PROVIDER = _obj(
    {
        "name": {**_NAME, "description": "Name that models refer to."},
        "type": {"type": "string", "enum": ["openai", "anthropic"], "description": "Wire format the provider speaks."},
        "baseURL": {
            "type": "string",
            "pattern": r"^https?://",
            "description": "API root as the provider's own SDK takes it: with /v1 for OpenAI-compatible providers, without for Anthropic.",
        },
        "apiKey": API_KEY,
        "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Extra headers sent upstream."},
        "anthropicVersion": {"type": "string", "description": "anthropic-version header (type anthropic)."},
        "apis": {
            "type": "array",
            "items": {"type": "string", "enum": ["chat", "responses", "messages"]},
            "minItems": 1,
            "uniqueItems": True,
            "description": "Wire formats the provider serves natively: chat (OpenAI Chat Completions), responses (OpenAI "
                           "Responses), messages (Anthropic Messages). Default: messages for type anthropic; for type openai, "
                           "chat and responses at api.openai.com and chat elsewhere (most OpenAI-compatible servers).",
        },
    },
    ["name", "type", "baseURL"],
    "An upstream API endpoint.",
)

MODEL = _obj(
    {
        "name": {**_NAME, "description": "Registry name: what routes, fallbacks and clients use."},
        "provider": {"type": "string", "description": "Name of the provider serving this model."},
        "upstreamModel": {"type": "string", "minLength": 1, "description": "The provider's model id, when it differs from name."},
        "pricing": _obj(
            {
                "input": {**_PRICE, "description": "USD per 1M input tokens."},
                "output": {**_PRICE, "description": "USD per 1M output tokens."},
                "cachedInput": {**_PRICE, "description": "USD per 1M cached input tokens (cache reads)."},
                "cacheWrite": {**_PRICE, "description": "USD per 1M tokens written to the prompt cache."},
                "batchDiscount": {"type": "number", "minimum": 0, "maximum": 1, "description": "Share of the price paid through the batch API, e.g. 0.5."},
            },
            ["input", "output"],
            "Prices in USD per 1M tokens.",
        ),
        "contextWindow": {"type": "integer", "minimum": 1, "description": "Largest input plus output, in tokens."},
        "maxOutputTokens": {"type": "integer", "minimum": 1, "description": "Largest output, in tokens."},
        "capabilities": {
            "type": "array",
            "items": {"type": "string", "enum": ["tools", "json", "vision", "embeddings", "thinking", "batch"]},
            "description": "What the model can do. Requests needing a missing capability skip it. Left out: everything.",
        },
        "limits": _obj(
            {"rpm": {"type": "integer", "minimum": 1}, "tpm": {"type": "integer", "minimum": 1}},
            desc="Provider rate limits for this model: requests and tokens per minute.",
        ),
        "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "Deadline of one attempt on this model."},
        "aliases": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Other names clients use for this model (dated snapshots, old names). A request for an alias, or "
                           "for a model's upstreamModel, is a request for this model.",
        },
    },
    ["name", "provider", "pricing"],
    "A model of the registry.",
)

MATCH = _obj(
    {
        "task": {**_STRINGS, "description": "Task labels (x-modelroute-task header, or a classifier's label)."},
        "headers": {
            "type": "object",
            "additionalProperties": {"anyOf": [{"type": "string"}, _STRINGS]},
            "description": "Request headers and accepted values; \"*\" accepts any value that is present.",
        },
        "model": {**_STRINGS, "description": "The model the client asked for."},
        "inputTokens": _range("Estimated input tokens."),
        "tools": _range("Number of tools in the request."),
        "responseFormat": {
            "type": "array",
            "items": {"type": "string", "enum": ["text", "json_object", "json_schema"]},
            "minItems": 1,
            "description": "response_format.type of the request (text when absent).",
        },
        "stream": {"type": "boolean", "description": "Whether the request streams."},
    },
    desc="Conditions on the request; all given must hold, a list holds when any item does.",
)

ROUTE = _obj(
    {
        "name": {**_NAME, "description": "Route name, reported in headers, spans and metrics."},
        "match": MATCH,
        "when": {"type": "string", "minLength": 1, "description": "CEL expression over `request` that must be true (see docs/policy.md)."},
        "model": {"type": "string", "description": "Registry model serving this route."},
        "strategy": {"type": "string", "description": "Name of a spec.strategies entry that picks the model."},
        "fallbacks": {"type": "array", "items": {"type": "string"}, "description": "Fallback chain for this route, replacing spec.fallbacks."},
        "batch": {
            "type": "string",
            "enum": ["preferred"],
            "description": "preferred: requests marked x-modelroute-deadline (24h or more) are sent to the provider's batch API "
                           "at its discount and answered 202 with a handle (GET /v1/modelroute/deferred/{id}); others are served in real time.",
        },
    },
    ["name"],
    "A route: the first route whose match and when both hold serves the request.",
)

SPEC: dict[str, Any] = _obj(
    {
        "providers": {"type": "array", "items": PROVIDER, "minItems": 1, "description": "Upstream API endpoints."},
        "models": {"type": "array", "items": MODEL, "minItems": 1, "description": "The model registry."},
        "baseline": {"type": "string", "description": "The model the app would use without routing; savings are measured against it."},
        "default": {"type": "string", "description": "The model serving requests no route matched."},
        "routes": {"type": "array", "items": ROUTE, "description": "Routes in order; the first match wins."},
        "fallbacks": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Model -> models to try next, in order, when it fails. Chains are followed transitively.",
        },
        "pinnedModels": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Registry models served as asked when a client names them (\"*\" for all). Others are routed.",
        },
        "strategies": {
            "type": "object",
            "additionalProperties": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
            "description": "Named adaptive strategies (classifier, cascade, embedding, split) that routes refer to.",
        },
        "timeouts": _obj(
            {
                "requestSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "Overall deadline until the answer starts."},
                "attemptSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "Default deadline of one upstream attempt."},
                "connectSeconds": {"type": "number", "exclusiveMinimum": 0},
                "streamIdleSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "Longest silence inside a started stream."},
            },
            desc="Deadlines.",
        ),
        "circuitBreaker": _obj(
            {
                "failureThreshold": {"type": "integer", "minimum": 1, "description": "Consecutive failures that cool a model down."},
                "cooldownSeconds": {"type": "number", "minimum": 0},
            },
            desc="Skip a model that keeps failing for a while.",
        ),
        "selector": {
            "type": "object",
            "description": "Label selector over pods in the policy's namespace (in a cluster); empty selects every injected pod.",
            "properties": {
                "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "matchExpressions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key", "operator"],
                        "properties": {
                            "key": {"type": "string"},
                            "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                            "values": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
        "priority": {"type": "integer", "description": "When two policies select one pod, the higher priority wins (then the older)."},
        "passthrough": _obj(
            {
                "openai": {"type": "string", "minLength": 1,
                           "description": "Provider receiving, unrouted, every OpenAI path the sidecar does not route "
                                          "(/v1/moderations, /v1/audio/*, /v1/images/*, /v1/files, ...); \"none\" answers 404."},
                "anthropic": {"type": "string", "minLength": 1,
                              "description": "The same for Anthropic clients' paths; \"none\" answers 404."},
            },
            desc="Where paths the sidecar does not route go. Default: the provider of the default model when it speaks "
                 "that API, else the first provider that does.",
        ),
        "responses": _obj(
            {
                "store": _obj(
                    {
                        "maxMB": {"type": "number", "exclusiveMinimum": 0, "description": "Memory for stored responses (default 64)."},
                        "ttlSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "How long a response is kept (default 3600)."},
                    },
                    desc="Responses the sidecar served, kept for previous_response_id and GET /v1/responses/{id}.",
                ),
            },
            desc="The OpenAI Responses API: conversation state.",
        ),
        "telemetry": _obj(
            {"recordPrompts": {"type": "boolean", "description": "Record prompts and answers on spans (off by default)."},
             "maxRecordedChars": {"type": "integer", "minimum": 1,
                                  "description": "Longest prompt or answer recorded on a span, in characters (default 4096)."}},
            desc="What is recorded.",
        ),
    },
    ["providers", "models", "default"],
    "A routing policy: the model registry and how requests are routed among its models.",
)

BUDGET = _obj(
    {
        "name": {**_NAME, "description": "Budget name, reported in errors, metrics and GET /v1/budgets."},
        "scope": {
            "anyOf": [
                {"type": "string", "enum": ["policy"]},
                _obj({"header": {"type": "string", "minLength": 1, "description": "Request header naming the spender, e.g. x-team."}}, ["header"]),
            ],
            "description": "policy: one budget for every request of the policy; {header: NAME}: one budget per value of that "
                           "header (requests without it are not subject to this budget).",
        },
        "window": {"type": "string", "enum": ["hour", "day", "week", "month"],
                   "description": "Calendar window in UTC (weeks start on Monday); spend starts from zero in each."},
        "limitUSD": {"type": "number", "exclusiveMinimum": 0, "description": "USD per window, never exceeded: requests reserve their worst-case cost first."},
        "onExceed": {
            "anyOf": [
                {"type": "string", "enum": ["reject"]},
                _obj({"downgradeTo": {"type": "string", "description": "Registry model (with its fallbacks) serving instead."}}, ["downgradeTo"]),
            ],
            "description": "When a request's worst-case cost does not fit: reject (429 budget_exceeded, the default) or {downgradeTo: model}.",
        },
    },
    ["name", "window", "limitUSD"],
    "A spend limit per calendar window.",
)

BUDGET_STORE = _obj(
    {
        "redis": _obj(
            {
                "url": {"type": "string", "pattern": r"^rediss?://", "description": "redis:// or rediss:// URL shared by every sidecar of the policy."},
                "keyPrefix": {"type": "string", "minLength": 1, "description": "Prefix of the budget keys (default modelroute)."},
                "timeoutMs": {"type": "number", "exclusiveMinimum": 0, "description": "Connect and command timeout (default 250)."},
            },
            ["url"],
            "Budgets shared across replicas: reservations are atomic in Redis.",
        ),
        "onUnavailable": {"type": "string", "enum": ["failOpen", "failClosed"],
                          "description": "When Redis is unreachable: failOpen keeps accounts per sidecar (flagged in metrics); failClosed (default) answers 503."},
    },
    desc="Where budgets are kept; without it each sidecar keeps its own.",
)

RATE_LIMITS = _obj(
    {
        "store": {"type": "string", "enum": ["local", "shared"],
                  "description": "local (default): each sidecar keeps its own buckets; shared: one bucket per provider key and model "
                                 "in the Redis of budgetStore, leased by every sidecar of the fleet."},
        "providerHeaders": {"type": "string", "enum": ["follow", "ignore"],
                            "description": "follow (default): learn what is left of each limit from the providers' rate-limit headers "
                                           "and pass over an exhausted model before it answers 429; ignore: the policy's limits only."},
        "reserve": {
            "type": "array",
            "description": "Shares of models' limits held for a route: other routes' requests overflow once only the reserve is left.",
            "items": _obj(
                {
                    "route": {"type": "string", "minLength": 1, "description": "The route the share is held for (a route name, or default)."},
                    "share": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                              "description": "Share of each limit (requests and tokens) held, e.g. 0.3."},
                    "models": {**_STRINGS, "description": "Registry models whose limits it applies to (default: every model)."},
                },
                ["route", "share"],
                "A share of a model's limit that only one route may use.",
            ),
        },
    },
    desc="Rate limits across the fleet: every model's limits are watched (see docs/spend-control.md).",
)

#: Sections of the spec owned by later layers (experiments, budgets, quality...). Each registers its
#: schema here so validation stays strict about typos everywhere else.
EXTENSIONS: dict[str, dict[str, Any]] = {
    "budgets": {"type": "array", "items": BUDGET, "description": "Spend limits; see docs/spend-control.md."},
    "budgetStore": BUDGET_STORE,
    "rateLimits": RATE_LIMITS,
}


_MERGED: dict[tuple[tuple[str, int], ...], dict[str, Any]] = {}


def spec_schema() -> dict[str, Any]:
    """The spec schema including registered extension sections (the same object while they are unchanged)."""
    if not EXTENSIONS:
        return SPEC
    stamp = tuple((k, id(v)) for k, v in EXTENSIONS.items())
    merged = _MERGED.get(stamp)
    if merged is None:
        _MERGED.clear()
        merged = _MERGED[stamp] = {**SPEC, "properties": {**SPEC["properties"], **EXTENSIONS}}
    return merged


def resource_schema() -> dict[str, Any]:
    """Schema of the whole resource file (apiVersion, kind, metadata, spec)."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": KIND},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": {"type": "object"},
        },
    }


# -- measurement sections (issue 6): experiments, quality monitor, impact preview -------------------

_SHARE = {"type": "number", "minimum": 0, "maximum": 1}

EXPERIMENT = _obj(
    {
        "name": {**_NAME, "description": "Experiment name, reported as modelroute.experiment on spans and in metrics."},
        "key": _obj(
            {"header": {"type": "string", "minLength": 1, "description": "Request header whose value keeps a caller in one arm."}},
            desc="What makes assignment sticky; requests without the key are split at random.",
        ),
        "arms": {
            "type": "array",
            "minItems": 2,
            "items": _obj(
                {
                    "name": {**_NAME, "description": "Arm name, sent back in x-modelroute-arm."},
                    "weight": {"type": "number", "minimum": 0, "description": "Relative share of traffic (default 1)."},
                    "model": {"type": "string", "description": "Registry model serving this arm (its fallbacks follow)."},
                },
                ["name", "model"],
                "One arm of the experiment.",
            ),
            "description": "The arms; traffic splits by weight.",
        },
        "appliesTo": {**_STRINGS, "description": "Routes whose traffic the experiment splits (route names, or default)."},
    },
    ["name", "arms", "appliesTo"],
    "An A/B experiment splitting some routes' traffic between models.",
)

QUALITY = _obj(
    {
        "refusalPhrases": {"type": "array", "items": {"type": "string", "minLength": 1},
                           "description": "Extra phrases that mark an answer as a refusal (case-insensitive)."},
        "judge": _obj(
            {
                "model": {"type": "string", "description": "Registry model that scores answers 0..1."},
                "sampleRate": {**_SHARE, "description": "Share of answers the judge scores, e.g. 0.01."},
                "prompt": {"type": "string", "minLength": 1, "description": "Judge instructions; {question} and {answer} are filled in."},
                "maxTokens": {"type": "integer", "minimum": 1, "description": "Longest judge reply (default 16)."},
                "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
            },
            ["model", "sampleRate"],
            "Sampled judge, off the hot path; its cost is counted apart from the traffic's.",
        ),
        "regret": _obj(
            {
                "sampleRate": {**_SHARE, "description": "Share of requests served below the baseline that are re-run on it."},
                "maxPerMinute": {"type": "integer", "minimum": 1, "description": "Re-runs per minute at most (default 10)."},
            },
            ["sampleRate"],
            "Regret sampling: re-run cheap-routed requests on the baseline and let the judge compare both answers.",
        ),
        "feedback": _obj(
            {"ttlSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "How long a request id accepts feedback (default 3600)."}},
            desc="POST /v1/feedback settings.",
        ),
        "queueSize": {"type": "integer", "minimum": 1, "description": "Background jobs waiting at most; more are dropped and counted (default 256)."},
        "workers": {"type": "integer", "minimum": 1, "maximum": 16, "description": "Background jobs run at once (default 2)."},
    },
    desc="Quality monitor: heuristic checks on every answer, a sampled judge, regret sampling, feedback.",
)

PREVIEW = _obj(
    {
        "configMap": _obj(
            {"name": {"type": "string", "minLength": 1}, "key": {"type": "string", "minLength": 1, "description": "Default workload.jsonl."}},
            ["name"],
            "ConfigMap in the policy's namespace holding a sample workload (JSON lines, as modelroute replay reads).",
        ),
        "maxCostIncreasePercent": {"type": "number", "minimum": 0,
                                   "description": "An Event is emitted when cost per 1,000 requests rises by more than this (default 10)."},
    },
    desc="Impact preview: the operator replays a sample workload on every accepted change into status.preview.",
)

EXTENSIONS["experiments"] = {"type": "array", "items": EXPERIMENT, "description": "A/B experiments (see docs/measurement.md)."}
EXTENSIONS["quality"] = QUALITY
EXTENSIONS["preview"] = PREVIEW
