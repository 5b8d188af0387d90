"""Model calls made while deciding (a classifier) are child spans of the request, and paid for."""

from __future__ import annotations

from decimal import Decimal

import openai

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, SidecarFactory, quickstart


async def test_classifier_call_is_a_child_span_and_its_cost_counts(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI) -> None:
    doc = quickstart(fake_openai.base_url, strategies={"triage": {
        "type": "classifier", "model": "gpt-4o-mini", "labels": ["simple", "complex"], "defaultLabel": "simple",
        "models": {"simple": "gpt-4o-mini", "complex": "gpt-4o"}}})
    doc["spec"]["routes"] = [{"name": "triaged", "strategy": "triage"}]
    sidecar = await make_sidecar(doc)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "classify me"}])
    reply = raw.parse()
    [request_span] = sidecar.request_spans()
    children = [s for s in sidecar.spans.get_finished_spans()
                if s.parent is not None and s.parent.span_id == request_span.context.span_id]
    purposes = [c.attributes.get("modelroute.purpose") for c in children]
    assert purposes.count("routing") == 1  # the classifier's call (the fake's answer is no label: default)
    classifier = next(c for c in children if c.attributes.get("modelroute.purpose") == "routing")
    served = (Decimal(reply.usage.prompt_tokens) * Decimal("0.15") + Decimal(reply.usage.completion_tokens) * Decimal("0.6")) / 1_000_000
    paid = Decimal(raw.headers["x-modelroute-cost-usd"])
    assert abs(paid - served - Decimal(str(classifier.attributes["modelroute.cost_usd"]))) < Decimal("1e-12")
    assert len(fake_openai.calls()) == 2
