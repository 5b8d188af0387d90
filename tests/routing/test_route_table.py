"""The route index gives the same first match as checking every route in order, for any mix of
conditions (seeded random policies and requests), and checks only a request's own routes."""

from __future__ import annotations

import random
from typing import Any

from modelroute.policy import compile_policy
from modelroute.routing import Router, build_view
from modelroute.routing.rules import RouteTable


def _policy(rng: random.Random, routes: int) -> dict[str, Any]:
    models = ["small", "big", "other"]
    out: list[dict[str, Any]] = []
    for i in range(routes):
        match: dict[str, Any] = {}
        kind = rng.random()
        if kind < 0.35:
            match["headers"] = {rng.choice(["x-tenant", "x-tier"]): rng.choice([f"t{rng.randrange(20)}", [f"t{rng.randrange(20)}", "t1"], "*"])}
        if 0.25 < kind < 0.55:
            match["task"] = rng.sample(["code", "chat", "math", "summarise"], rng.randint(1, 2))
        if 0.5 < kind < 0.7:
            match["model"] = rng.sample(["small", "big", "auto"], rng.randint(1, 2))
        if rng.random() < 0.3:
            match["stream"] = rng.random() < 0.5
        route: dict[str, Any] = {"name": f"r{i}", "model": rng.choice(models)}
        if match:
            route["match"] = match
        if rng.random() < 0.2:
            route["when"] = f"request.input_tokens > {rng.randrange(0, 60)}"
        out.append(route)
    return {"providers": [{"name": "p", "type": "openai", "baseURL": "http://127.0.0.1:9/v1"}],
            "models": [{"name": "small", "provider": "p", "pricing": {"input": 1, "output": 1}, "aliases": ["gpt-x"]},
                       {"name": "big", "provider": "p", "pricing": {"input": 1, "output": 1}},
                       {"name": "other", "provider": "p", "pricing": {"input": 1, "output": 1}}],
            "default": "small", "routes": out}


def _view(rng: random.Random) -> Any:
    headers = {k: f"t{rng.randrange(22)}" for k in ("x-tenant", "x-tier") if rng.random() < 0.6}
    if rng.random() < 0.5:
        headers["x-modelroute-task"] = rng.choice(["code", "chat", "math", "summarise", "other"])
    body = {"model": rng.choice(["auto", "small", "big", "gpt-x", "unknown"]), "stream": rng.random() < 0.5,
            "messages": [{"role": "user", "content": "w " * rng.randrange(0, 200)}]}
    return build_view(body, headers)


def test_the_index_finds_the_first_match_checking_every_route_would() -> None:
    rng = random.Random(7)
    for _ in range(30):
        router = Router(compile_policy(_policy(rng, rng.randint(1, 120))))
        for _ in range(100):
            view = _view(rng)
            every = next((c.route.name for c in router.routes if c.matches(view)), None)
            indexed = next((c.route.name for c in router.table.candidates(view) if c.matches(view)), None)
            assert indexed == every


def test_a_request_checks_only_routes_for_its_own_values() -> None:
    routes = [{"name": f"tenant-{i}", "match": {"headers": {"x-tenant": f"t{i}"}}, "when": "request.input_tokens > 0",
               "model": "big"} for i in range(1000)]
    routes.append({"name": "long", "when": "request.input_tokens > 100000", "model": "big"})
    doc = {"providers": [{"name": "p", "type": "openai", "baseURL": "http://127.0.0.1:9/v1"}],
           "models": [{"name": m, "provider": "p", "pricing": {"input": 1, "output": 1}} for m in ("small", "big")],
           "default": "small", "routes": routes}
    table: RouteTable = Router(compile_policy(doc)).table
    view = build_view({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, {"x-tenant": "t500"})
    assert [c.route.name for c in table.candidates(view)] == ["tenant-500", "long"]
    view = build_view({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, {})
    assert [c.route.name for c in table.candidates(view)] == ["long"]
