"""The rules strategy: every match field, CEL over the request object, pinned models, eligibility."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.policy import PolicyError, compile_policy
from modelroute.routing import Router, UnknownModel, build_view

MODELS = [
    {"name": "small", "provider": "p", "pricing": {"input": 0.1, "output": 0.2}, "contextWindow": 1000, "capabilities": ["json"]},
    {"name": "big", "provider": "p", "pricing": {"input": 1, "output": 2}, "capabilities": ["tools", "json", "vision"]},
    {"name": "huge", "provider": "p", "pricing": {"input": 5, "output": 10}},
]


def router(routes: list[dict[str, Any]], **spec: Any) -> Router:
    doc = {"providers": [{"name": "p", "type": "openai", "baseURL": "http://127.0.0.1:1/v1"}], "models": MODELS,
           "default": "small", "routes": routes, **spec}
    return Router(compile_policy(doc))


def request(content: str = "hello", model: str = "auto", headers: dict[str, str] | None = None, **body: Any) -> Any:
    return build_view({"model": model, "messages": [{"role": "user", "content": content}], **body}, headers or {})


async def route_of(r: Router, view: Any) -> tuple[str, tuple[str, ...]]:
    decision = await r.decide(view)
    return decision.route, decision.candidates


TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {}}}]


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [
        ({"task": ["code"]}, request(headers={"x-modelroute-task": "code"}), request(headers={"x-modelroute-task": "chat"})),
        ({"headers": {"x-tier": ["gold", "vip"]}}, request(headers={"x-tier": "vip"}), request(headers={"x-tier": "free"})),
        ({"headers": {"x-trace": "*"}}, request(headers={"x-trace": "1"}), request()),
        ({"model": ["big"]}, request(model="big"), request(model="auto")),
        ({"inputTokens": {"min": 100}}, request("x" * 1000), request("x" * 10)),
        ({"inputTokens": {"max": 50}}, request("x" * 10), request("x" * 1000)),
        ({"tools": {"min": 1}}, request(tools=TOOLS), request()),
        ({"responseFormat": ["json_object"]}, request(response_format={"type": "json_object"}), request()),
        ({"stream": True}, request(stream=True), request()),
    ],
)
async def test_each_match_field(match: dict[str, Any], hit: Any, miss: Any) -> None:
    r = router([{"name": "r", "match": match, "model": "big"}])
    assert (await route_of(r, hit))[0] == "r"
    assert (await route_of(r, miss))[0] == "default"


async def test_all_fields_of_a_match_must_hold() -> None:
    r = router([{"name": "r", "match": {"task": ["code"], "headers": {"x-tier": "gold"}}, "model": "big"}])
    assert (await route_of(r, request(headers={"x-modelroute-task": "code", "x-tier": "gold"})))[0] == "r"
    assert (await route_of(r, request(headers={"x-modelroute-task": "code"})))[0] == "default"


async def test_first_matching_route_wins() -> None:
    r = router([{"name": "one", "match": {"stream": True}, "model": "big"}, {"name": "two", "match": {"stream": True}, "model": "huge"}])
    assert await route_of(r, request(stream=True)) == ("one", ("big",))


@pytest.mark.parametrize(
    ("expr", "view", "expected"),
    [
        ("request.input_tokens > 200", request("x" * 1000), True),
        ("request.headers['x-team'] == 'ml'", request(headers={"x-team": "ml"}), True),
        ("'x-team' in request.headers", request(), False),
        ("request.tool_count >= 1 && 'f' in request.tools", request(tools=TOOLS), True),
        ("request.prompt.contains('translate')", request("please translate this"), True),
        ("request.model == 'auto' && !request.stream", request(), True),
        ("request.response_format == 'json_schema'", request(response_format={"type": "json_schema", "json_schema": {}}), True),
        ("request.max_tokens > 1000", request(max_tokens=2000), True),
        ("request.message_count == 1 && request.user == 'u1'", request(user="u1"), True),
        ("request.headers['missing'] == 'x'", request(), False),  # a runtime error does not match
        ("request.task == 'code'", request(headers={"x-modelroute-task": "code"}), True),
    ],
)
async def test_cel_sees_the_documented_request_object(expr: str, view: Any, expected: bool) -> None:
    r = router([{"name": "cel", "when": expr, "model": "big"}])
    assert ((await route_of(r, view))[0] == "cel") is expected


async def test_fallback_chain_is_transitive_and_filtered_by_capability() -> None:
    r = router([], fallbacks={"small": ["big"], "big": ["huge"]})
    assert await route_of(r, request()) == ("default", ("small", "big", "huge"))
    decision = await r.decide(request(tools=TOOLS))
    assert decision.candidates == ("big", "huge")
    assert decision.skipped[0].model == "small" and "tools" in decision.skipped[0].reason


async def test_context_window_filters_candidates() -> None:
    r = router([], fallbacks={"small": ["big"]})
    decision = await r.decide(request("x" * 8000))
    assert decision.candidates == ("big",)
    assert "context window 1000" in decision.skipped[0].reason


async def test_route_fallbacks_replace_the_policy_chain() -> None:
    r = router([{"name": "r", "match": {"stream": True}, "model": "big", "fallbacks": ["small"]}], fallbacks={"big": ["huge"]})
    assert await route_of(r, request(stream=True)) == ("r", ("big", "small"))


async def test_named_models_are_routed_unless_pinned() -> None:
    r = router([], pinnedModels=["huge"])
    assert await route_of(r, request(model="big")) == ("default", ("small",))
    assert await route_of(r, request(model="huge")) == ("pinned", ("huge",))
    star = router([], pinnedModels=["*"])
    assert await route_of(star, request(model="big")) == ("pinned", ("big",))
    assert await route_of(star, request(model="auto")) == ("default", ("small",))


async def test_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownModel):
        await router([]).decide(request(model="gpt-99"))


def test_bad_cel_is_rejected_with_its_path() -> None:
    with pytest.raises(PolicyError) as info:
        router([{"name": "ok", "model": "big"}, {"name": "bad", "when": "request.input_tokens >>", "model": "big"}])
    assert info.value.problems[0].path == "spec.routes[1].when"


def test_explain_says_why_each_route_did_not_match() -> None:
    r = router([{"name": "a", "match": {"stream": True}, "model": "big"}, {"name": "b", "when": "request.input_tokens > 5", "model": "big"}])
    verdicts = r.explain_routes(request("x" * 100))
    assert [(v.route, v.matched) for v in verdicts] == [("a", False), ("b", True)]
    assert "stream is True" in verdicts[0].reason


@pytest.mark.parametrize(
    "expr",
    [
        "request.input_tokens > 200",
        "request.prompt.contains('request.model') || request.model == \"auto\"",
        "'x-team' in request.headers && request.headers['x-team'] == 'ml'",
        "request.tool_count >= 1 && 'f' in request.tools",
        "r'request.task' == request.task",
        "has(request.headers.x)",
        "size(request) > 3",
    ],
)
async def test_flattened_cel_agrees_with_the_nested_request_object(expr: str) -> None:
    """Field reads are passed to CEL as flat variables (faster); the answers must not change."""
    from modelroute.routing.rules import _flat_program, cel_fields

    import cel

    views = [request("x" * 1000, headers={"x-team": "ml"}, tools=TOOLS), request(model="big"),
             request("request.model please", headers={"x-modelroute-task": "request.task"})]
    nested = cel.compile(expr)
    fields = cel_fields(expr)
    flat = _flat_program(expr, fields)
    for view in views:
        try:
            want = nested.execute(view.cel_context(fields)) is True
        except Exception:
            want = False
        r = router([{"name": "cel", "when": expr, "model": "big"}])
        assert ((await route_of(r, view))[0] == "cel") is want
    if "has(" in expr or "size(request)" in expr:
        assert flat is None
    else:
        assert flat is not None and "request." not in flat.source.replace("'request.model'", "").replace("r'request.task'", "")
