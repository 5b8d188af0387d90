"""End to end with real processes: the operator and several sidecars (child processes) against the
API emulator and a fake OpenAI provider, all on 127.0.0.1.

One scenario, in order: apply -> the sidecars route by it; update -> new routing; invalid update ->
Accepted=False with the field path and the sidecars keep the old version; the operator killed and
restarted under load -> no failed request, then a change still lands; delete -> "no policy"
behaviour (pass-through for one sidecar, refusal for another).
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from modelroute.policy import compile_policy
from modelroute.testing.fake_openai import FakeOpenAI
from tests.operator.harness import (
    Cluster,
    Process,
    chat,
    operator_process,
    policy_doc,
    sidecar_process,
    wait_for,
)

pytestmark = pytest.mark.slow


async def served_model(session: aiohttp.ClientSession, sidecar: Process, **headers: str) -> str | None:
    status, body, _ = await chat(session, sidecar, headers)
    return body.get("model") if status == 200 else f"HTTP {status}: {body.get('error', {}).get('code')}"


async def load(session: aiohttp.ClientSession, sidecars: list[Process], stop: asyncio.Event) -> tuple[int, list[str]]:
    ok, failures = 0, []
    while not stop.is_set():
        for sc in sidecars:
            try:
                status, body, _ = await chat(session, sc)
            except (TimeoutError, aiohttp.ClientError) as exc:
                failures.append(repr(exc))
                continue
            if status == 200:
                ok += 1
            else:
                failures.append(f"{status} {body}")
    return ok, failures


async def test_policy_lifecycle_through_real_processes(cluster: Cluster, fake: FakeOpenAI) -> None:
    operator = operator_process(cluster)
    operator.start()
    sidecars: list[Process] = []
    try:
        await operator.wait_ready()
        pods = [await cluster.add_pod(f"app-{i}", {"app": "chat"}) for i in range(3)]
        passthrough = ["--no-policy", "passthrough", "--passthrough-base-url", fake.base_url,
                       "--passthrough-model", "passthrough-model"]
        sidecars = [sidecar_process(operator.url, pod, passthrough if i == 0 else None) for i, pod in enumerate(pods)]
        for sc in sidecars:
            sc.start()
        async with aiohttp.ClientSession() as session:
            # apply: every sidecar routes by it (default gpt-4o-mini, premium header -> gpt-4o)
            await cluster.apply(policy_doc("chat", fake.base_url, selector={"matchLabels": {"app": "chat"}}))
            for sc in sidecars:
                await sc.wait_ready()
                await wait_for(lambda sc=sc: _is(served_model(session, sc), "gpt-4o-mini"), 5, what="policy applied")
                assert await served_model(session, sc, **{"x-user-tier": "premium"}) == "gpt-4o"
            await wait_for(lambda: _synced(cluster, "chat", "3/3"), 10, what="status synced 3/3")

            # update: new routing everywhere
            updated = policy_doc("chat", fake.base_url, default="gpt-4o", selector={"matchLabels": {"app": "chat"}})
            await cluster.apply(updated)
            for sc in sidecars:
                await wait_for(lambda sc=sc: _is(served_model(session, sc), "gpt-4o"), 5, what="update applied")
            good = compile_policy(updated).version

            # invalid update: rejected with the field path, sidecars keep the last good version
            await cluster.apply(policy_doc("chat", fake.base_url, default="no-such-model"))
            cond = await wait_for(lambda: _false(cluster, "chat"), 10, what="Accepted=False")
            assert "spec.default" in cond["message"] and "no-such-model" in cond["message"]
            assert (await cluster.get("chat") or {})["status"]["policyVersion"] == good
            for sc in sidecars:
                assert await served_model(session, sc) == "gpt-4o"

            # the operator dies and comes back under steady load: no request fails
            await cluster.apply(policy_doc("chat", fake.base_url, default="gpt-4o", selector={"matchLabels": {"app": "chat"}}))
            await wait_for(lambda: _accepted(cluster, "chat"), 10, what="Accepted=True again")
            stop = asyncio.Event()
            loader = asyncio.create_task(load(session, sidecars, stop))
            await asyncio.sleep(0.3)
            operator.kill()
            await asyncio.sleep(1.0)
            operator.start()
            await operator.wait_ready()
            await cluster.apply(policy_doc("chat", fake.base_url, default="gpt-4o-mini", selector={"matchLabels": {"app": "chat"}}))
            for sc in sidecars:
                await wait_for(lambda sc=sc: _is(served_model(session, sc), "gpt-4o-mini"), 15, what="change after restart")
            stop.set()
            ok, failures = await loader
            assert failures == [] and ok > 20

            # delete: pass-through for the sidecar configured so, refusal for the others
            await cluster.delete("chat")
            await wait_for(lambda: _is(served_model(session, sidecars[0]), "passthrough-model"), 5, what="passthrough")
            await wait_for(lambda: _is(served_model(session, sidecars[1]), "HTTP 503: no_policy"), 5, what="refusal")
            await wait_for(lambda: _gone(cluster, "chat"), 5, what="finalizer released")
            assert "chat.json" not in await cluster.bootstrap_data()
    finally:
        for proc in [operator, *sidecars]:
            proc.stop()
            print(f"--- {proc.args[0]} {proc.port}\n{proc.output()[-3000:]}")  # shown when the test fails


async def _is(value: asyncio.Future[str | None] | object, expected: str) -> bool:
    return await value == expected  # type: ignore[misc]


async def _synced(cluster: Cluster, name: str, expected: str) -> bool:
    obj = await cluster.get(name) or {}
    return (obj.get("status") or {}).get("synced") == expected


async def _false(cluster: Cluster, name: str) -> dict[str, object] | None:
    cond = await cluster.condition(name, "Accepted")
    return cond if cond and cond["status"] == "False" else None


async def _accepted(cluster: Cluster, name: str) -> bool:
    cond = await cluster.condition(name, "Accepted")
    return bool(cond and cond["status"] == "True")


async def _gone(cluster: Cluster, name: str) -> bool:
    return await cluster.get(name) is None


async def test_sidecar_starts_from_the_bootstrap_copy_while_the_operator_is_down(cluster: Cluster, fake: FakeOpenAI) -> None:
    from modelroute.policy.wire import Bundle, Candidate

    pod = await cluster.add_pod("lonely", {"app": "chat"})
    compiled = compile_policy(policy_doc("chat", fake.base_url, default="gpt-4o"))
    other = compile_policy(policy_doc("other", fake.base_url, default="gpt-4o-mini"))
    bundles = {
        "chat.json": Bundle(Candidate("chat", 5, "2026-01-01T00:00:00Z", {"matchLabels": {"app": "chat"}}), compiled.to_dict()).encode(),
        "other.json": Bundle(Candidate("other", 0, "2025-01-01T00:00:00Z", {}), other.to_dict()).encode(),
        "batch.json": Bundle(Candidate("batch", 9, "2025-01-01T00:00:00Z", {"matchLabels": {"app": "batch"}}), other.to_dict()).encode(),
    }
    sidecar = sidecar_process("http://127.0.0.1:9", pod, bootstrap=bundles)  # nothing listens on port 9
    sidecar.start()
    try:
        await sidecar.wait_ready()
        async with aiohttp.ClientSession() as session:
            assert await served_model(session, sidecar) == "gpt-4o"  # priority 5 beats the older catch-all
    finally:
        sidecar.stop()
    assert "subscription to http://127.0.0.1:9 broken" in sidecar.output()
