"""Request hooks: admission may reject, a skip passes over a model, settled sees the whole answer."""

from __future__ import annotations

import openai
import pytest

from modelroute.contract.errors import ClientError
from modelroute.proxy.exchange import Exchange
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, SidecarFactory, quickstart


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Exchange] = []

    async def admit(self, ex: Exchange) -> None:
        if ex.incoming_headers.get("x-refuse"):
            raise ClientError("refused by a hook", status=429, code="budget_exceeded", type="budget_exceeded")
        ex.collect_answer = True

    def skip(self, ex: Exchange, model: str) -> str | None:
        return "saturated" if model == "gpt-4o-mini" and ex.incoming_headers.get("x-skip-mini") else None

    def settled(self, ex: Exchange) -> None:
        self.seen.append(ex)


async def test_hooks_see_every_request(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    hook = Recorder()
    sidecar = await make_sidecar(quickstart(fake_openai.base_url), hooks=(hook,))
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        stream = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "one two three"}], stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-skip-mini": "1"})
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-refuse": "1"})
    assert info.value.body["code"] == "budget_exceeded"
    assert raw.headers["x-modelroute-model"] == "gpt-4o"
    assert [a.reason for a in hook.seen[1].attempts] == ["saturated", ""]
    first = hook.seen[0].answer
    assert first is not None and first["choices"][0]["message"]["content"] == streamed
    assert first["choices"][0]["finish_reason"] == "stop" and first["usage"]["completion_tokens"] > 0
    assert len(hook.seen) == 3 and hook.seen[2].status == "error"


class Selective:
    """Takes part in settling always, in admission only for policies whose default is gpt-4o."""

    def __init__(self) -> None:
        self.admitted: list[str] = []
        self.settled_ids: list[str] = []

    def phases(self, policy: object) -> frozenset[str]:
        return frozenset({"admit", "settled"} if getattr(policy, "default") == "gpt-4o" else {"settled"})

    async def admit(self, ex: Exchange) -> None:
        self.admitted.append(ex.request_id)

    def skip(self, ex: Exchange, model: str) -> str | None:
        raise AssertionError("skip is not one of this hook's phases")

    def settled(self, ex: Exchange) -> None:
        self.settled_ids.append(ex.request_id)


async def test_a_hook_is_called_only_in_the_phases_it_has_for_the_policy(make_sidecar: SidecarFactory,
                                                                         fake_openai: FakeOpenAI) -> None:
    from modelroute.policy import compile_policy

    hook = Selective()
    doc = quickstart(fake_openai.base_url)
    sidecar = await make_sidecar(doc, hooks=(hook,))
    hello = [{"role": "user", "content": "hi"}]
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        first = await client.chat.completions.with_raw_response.create(model="auto", messages=hello)
        doc["spec"]["default"] = "gpt-4o"  # a new policy version: the plan is compiled again
        assert sidecar.holder.apply(compile_policy(doc))
        second = await client.chat.completions.with_raw_response.create(model="auto", messages=hello)
    ids = [r.headers["x-modelroute-request-id"] for r in (first, second)]
    assert hook.admitted == ids[1:]
    assert hook.settled_ids == ids
