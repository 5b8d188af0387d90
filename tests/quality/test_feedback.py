"""POST /v1/feedback joins a request id to the policy, route, model and arm that served it."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest

from modelroute.feedback import FeedbackError, RequestIndex
from modelroute.report.prom import Samples
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, SidecarFactory, quickstart

EXPERIMENT = [{"name": "mini-vs-4o", "key": {"header": "x-user-id"}, "appliesTo": ["premium"],
               "arms": [{"name": "control", "model": "gpt-4o"}, {"name": "candidate", "model": "gpt-4o-mini"}]}]


async def post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(url + "/v1/feedback", json=body) as resp:
        return resp.status, await resp.json()


async def test_feedback_joins_the_route_model_and_arm(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    sidecar = await make_sidecar(quickstart(fake_openai.base_url, experiments=EXPERIMENT))
    ids: dict[str, tuple[str, str, str]] = {}
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        for headers in ({}, {"x-modelroute-task": "code_generation"}, {"x-user-tier": "premium", "x-user-id": "u1"}):
            raw = await client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                                                         extra_headers=headers)
            h = raw.headers
            ids[h["x-modelroute-request-id"]] = (h["x-modelroute-route"], h["x-modelroute-model"], h.get("x-modelroute-arm", ""))
    (default_id, code_id, premium_id) = ids
    async with aiohttp.ClientSession() as http:
        status, joined = await post(http, sidecar.url, {"request_id": code_id, "thumbs": "down"})
        assert status == 200 and (joined["route"], joined["model"], joined["arm"]) == ("code", "gpt-4o", None)
        assert joined["policy"] == "quickstart" and joined["score"] == 0.0
        status, joined = await post(http, sidecar.url, {"request_id": premium_id, "score": 0.75})
        assert status == 200 and (joined["route"], joined["model"], joined["arm"]) == ids[premium_id]
        assert joined["experiment"] == "mini-vs-4o"
        assert (await post(http, sidecar.url, {"request_id": default_id, "thumbs": "up"}))[0] == 200
        again = await post(http, sidecar.url, {"request_id": default_id, "thumbs": "down"})
        assert again[0] == 409 and again[1]["error"]["code"] == "feedback_exists"
        unknown = await post(http, sidecar.url, {"request_id": "req_nope", "score": 1})
        assert unknown[0] == 404 and unknown[1]["error"]["code"] == "request_not_found"
        assert "unknown or expired request_id 'req_nope'" in unknown[1]["error"]["message"]
        for bad in ({"score": 1}, {"request_id": default_id}, {"request_id": default_id, "score": 1.5},
                    {"request_id": default_id, "thumbs": "sideways"}, {"request_id": default_id, "score": 1, "thumbs": "up"}):
            status, error = await post(http, sidecar.url, bad)
            assert status == 400 and error["error"]["code"] == "invalid_feedback", bad
        async with http.get(sidecar.url + "/metrics") as resp:
            m = Samples.parse(await resp.text())
    assert m.sum("modelroute_feedback_total", route="code", model="gpt-4o", kind="down") == 1
    assert m.sum("modelroute_feedback_total", route="default", model="gpt-4o-mini", kind="up") == 1
    arm = ids[premium_id][2]
    assert m.sum("modelroute_feedback_score_sum", route="premium", experiment="mini-vs-4o", arm=arm) == 0.75
    assert m.sum("modelroute_feedback_score_count") == 3


LABELS = ("p", "v", "default", "m", "", "")


def test_expired_and_evicted_ids_are_unknown() -> None:
    now = [0.0]
    index = RequestIndex(max_entries=2, clock=lambda: now[0])  # each id kept for the next 2 additions
    index.add("a", LABELS, 10)
    index.add("b", LABELS, 100)
    now[0] = 11
    for rid in ("a", "zzz"):
        with pytest.raises(FeedbackError) as refused:
            index.claim(rid, "up")
        assert refused.value.status == 404
    index.add("c", LABELS, 100)
    index.add("d", LABELS, 100)  # "b" has seen two additions since its own: it goes
    with pytest.raises(FeedbackError):
        index.claim("b", "up")
    assert len(index) == 2 and index.claim("d", "up").route == "default" and index.claim("c", "down").model == "m"


def test_every_id_is_kept_for_the_same_number_of_additions() -> None:
    """Oldest first, one at a time: the generations never drop an id early or many at once."""
    index = RequestIndex(max_entries=5, clock=lambda: 0.0)  # an id goes at the 5th addition after its own
    for i in range(100):
        index.add(f"r{i}", LABELS, 60)
        assert len(index) <= 5
        kept = [j for j in range(i + 1) if _known(index, f"r{j}")]
        assert kept == list(range(max(0, i - 4), i + 1)), (i, kept)


def _known(index: RequestIndex, request_id: str) -> bool:
    """Whether the index still holds ``request_id`` (without claiming it)."""
    return request_id in index._young or request_id in index._old


def test_feedback_is_taken_once_and_keeps_its_labels() -> None:
    index = RequestIndex(clock=lambda: 0.0)
    index.add("r", ("p", "v7", "premium", "gpt-4o", "mini-vs-4o", "control"), 60)
    served = index.claim("r", "score")
    assert served.to_dict() == {"request_id": "r", "policy": "p", "policy_version": "v7", "route": "premium",
                                "model": "gpt-4o", "experiment": "mini-vs-4o", "arm": "control"}
    with pytest.raises(FeedbackError) as again:
        index.claim("r", "up")
    assert again.value.status == 409 and "score" in str(again.value)
