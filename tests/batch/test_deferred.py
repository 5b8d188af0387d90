"""Deferred requests: a batch-preferred route answers opted-in clients 202 with a handle, resolved
later at the batch discount; everyone else is served in real time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp

from modelroute.testing.fake_openai_batch import FakeOpenAIBatch
from tests.batch.helpers import batch_policy
from tests.spend.helpers import budgets, chat
from tests.support import SidecarFactory

DEADLINE = {"x-modelroute-deadline": "24h"}
CODE = "write code for a tokenizer"


def _worst_case_usd(prompt: str, price_in: Decimal, price_out: Decimal, max_output: int) -> float:
    """An upper bound of what the admission reserves for ``prompt``: every character a token, plus the output cap."""
    return float(((len(prompt) + 10) * price_in + max_output * price_out) / 1_000_000)


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], Any]:
    async with http.get(url) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.json()


async def test_opted_in_request_is_deferred_and_resolved_once(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch) -> None:
    fake_batch.polls_to_complete = 2
    sidecar = await make_sidecar(batch_policy(fake_batch.base_url))
    async with aiohttp.ClientSession() as http:
        status, headers, handle = await chat(http, sidecar, CODE, DEADLINE)
        assert status == 202 and handle["object"] == "modelroute.deferred" and handle["model"] == "gpt-4o"
        assert headers["location"] == handle["url"] == f"/v1/modelroute/deferred/{handle['id']}"
        assert headers["x-modelroute-route"] == "code-gen" and fake_batch.calls() == []  # no real-time call
        held = (await budgets(sidecar))[0]["reserved_usd"]  # the batch's worst case at batch prices, not the real-time one
        assert 0 < held <= _worst_case_usd(CODE, Decimal("2.5"), Decimal(10), 1000) / 2
        assert "error.type" not in sidecar.request_spans()[0].attributes  # deferred, not failed
        assert 'status="deferred"' in sidecar.services.metrics.render().decode()
        pending = await _get(http, sidecar.url + handle["url"])
        assert pending[0] == 202 and pending[2]["status"] == "in_progress"
        done = await _get(http, sidecar.url + handle["url"])
        again = await _get(http, sidecar.url + handle["url"])
    assert done[0] == 200 and done[2]["status"] == "completed"
    answer = done[2]["response"]
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"].startswith("[gpt-4o] you said: write code")
    usage = answer["usage"]
    full = (usage["prompt_tokens"] * Decimal("2.5") + usage["completion_tokens"] * Decimal(10)) / 1_000_000
    assert Decimal(done[1]["x-modelroute-cost-usd"]) == full / 2 == Decimal(again[1]["x-modelroute-cost-usd"])
    [row] = await budgets(sidecar)
    assert row["spent_usd"] == float(full / 2) and row["reserved_usd"] == 0  # recorded once, though read twice; hold freed
    [batch] = fake_batch.batches.values()
    assert batch["completion_window"] == "24h" and batch["request_counts"]["total"] == 1


async def test_everyone_else_is_served_in_real_time(make_sidecar: SidecarFactory, fake_batch: FakeOpenAIBatch) -> None:
    sidecar = await make_sidecar(batch_policy(fake_batch.base_url))
    async with aiohttp.ClientSession() as http:
        cases = [
            (CODE, {}),  # did not opt in
            (CODE, {"x-modelroute-deadline": "1h"}),  # sooner than the batch window
            (CODE, {"x-modelroute-deadline": "soon"}),  # unreadable
            ("hello", DEADLINE),  # the default route does not prefer batch
        ]
        for content, headers in cases:
            status, _, body = await chat(http, sidecar, content, headers)
            assert status == 200 and body["object"] == "chat.completion"
        payload = {"model": "auto", "messages": [{"role": "user", "content": CODE}], "stream": True}
        async with http.post(sidecar.base_url + "/chat/completions", json=payload, headers=DEADLINE) as resp:
            assert resp.status == 200 and (await resp.read()).endswith(b"data: [DONE]\n\n")
        missing = await _get(http, sidecar.url + "/v1/modelroute/deferred/dfr_nothing")
    assert len(fake_batch.calls()) == 5 and fake_batch.batches == {}
    assert missing[0] == 404
