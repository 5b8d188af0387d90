"""Hot reload of the policy file: atomic, in-flight requests finish on the old policy, an invalid
file is rejected and the last good policy stays."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openai
import yaml

from modelroute.proxy import PolicyFileWatcher
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, SidecarFactory, quickstart

HELLO = [{"role": "user", "content": "hello"}]


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_file_change_applies_and_invalid_change_is_rejected(tmp_path: Path, make_sidecar: SidecarFactory,
                                                                  fake_openai: FakeOpenAI) -> None:
    path = tmp_path / "policy.yaml"
    doc = quickstart(fake_openai.base_url)
    path.write_text(yaml.safe_dump(doc))
    watcher = PolicyFileWatcher(str(path), interval=0.02)
    sidecar = await make_sidecar(doc, background=[watcher.ctx])
    first = sidecar.holder.current.policy.version
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        doc["spec"]["default"] = "gpt-4o"
        path.write_text(yaml.safe_dump(doc))
        await wait_for(lambda: sidecar.holder.current.policy.version != first)
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
        assert raw.headers["x-modelroute-model"] == "gpt-4o"
        good = sidecar.holder.current.policy.version

        doc["spec"]["default"] = "no-such-model"
        path.write_text(yaml.safe_dump(doc))
        await wait_for(lambda: 'result="rejected"' in sidecar.services.metrics.render().decode())
        assert sidecar.holder.current.policy.version == good
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
        assert raw.headers["x-modelroute-model"] == "gpt-4o"
        assert raw.headers["x-modelroute-policy-version"] == good


async def test_in_flight_request_finishes_on_the_old_policy(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    from modelroute.policy import compile_policy

    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    old = sidecar.holder.current.policy.version
    fake_openai.fail("gpt-4o-mini", chunk_delay=0.05, times=1)
    body = {"model": "auto", "messages": HELLO, "stream": True}
    async with aiohttp.ClientSession() as http:
        async with http.post(sidecar.base_url + "/chat/completions", json=body) as resp:
            await resp.content.readline()
            sidecar.holder.apply(compile_policy(quickstart(fake_openai.base_url, default="gpt-4o")))
            rest = await resp.read()
        assert resp.headers["x-modelroute-policy-version"] == old
        assert b"[DONE]" in rest and b'"error"' not in rest
        async with http.post(sidecar.base_url + "/chat/completions", json={"model": "auto", "messages": HELLO}) as resp:
            assert resp.headers["x-modelroute-model"] == "gpt-4o"


async def test_no_request_fails_during_many_reloads(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    from modelroute.policy import compile_policy

    sidecar = await make_sidecar(quickstart(fake_openai.base_url))
    policies = [compile_policy(quickstart(fake_openai.base_url, default=m)) for m in ("gpt-4o", "gpt-4o-mini")]
    statuses: list[int] = []

    async def load() -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(40):
                async with http.post(sidecar.base_url + "/chat/completions", json={"model": "auto", "messages": HELLO}) as resp:
                    await resp.read()
                    statuses.append(resp.status)

    async def reload() -> None:
        for i in range(40):
            sidecar.holder.apply(policies[i % 2])
            await asyncio.sleep(0.005)

    await asyncio.gather(load(), load(), load(), reload())
    assert statuses == [200] * 120
