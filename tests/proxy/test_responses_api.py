"""The OpenAI Responses API through the sidecar with the real ``openai`` SDK and the OpenAI Agents
SDK: plain and streamed, a function-tool round trip, structured output, conversation state across
two providers, the stored responses read back, and an agent's tool loop."""

from __future__ import annotations

import json
from typing import AsyncIterator

import openai
import pytest
from pydantic import BaseModel

from modelroute.testing.fake_anthropic import FakeAnthropic
from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import ANTHROPIC_KEY, APP_KEY, Sidecar, SidecarFactory, mixed_policy

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def sidecar(make_sidecar: SidecarFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> Sidecar:
    """gpt-4o-mini and gpt-4o at a provider speaking Responses, Claude at Anthropic; every model
    served as named."""
    make_sidecar.environ["TEST_ANTHROPIC_KEY"] = ANTHROPIC_KEY
    doc = mixed_policy(fake_openai.base_url, fake_anthropic.url)
    doc["spec"]["providers"][0]["apis"] = ["chat", "responses"]
    doc["spec"]["pinnedModels"] = ["*"]
    return await make_sidecar(doc)


@pytest.fixture
async def client(sidecar: Sidecar) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as c:
        yield c


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet"])
async def test_plain_and_streamed(client: openai.AsyncOpenAI, model: str, fake_openai: FakeOpenAI,
                                  fake_anthropic: FakeAnthropic) -> None:
    raw = await client.responses.with_raw_response.create(model=model, input="Say hi", instructions="Be brief.")
    response = raw.parse()
    upstream = "gpt-4o-mini" if model == "gpt-4o-mini" else "claude-sonnet-4-5"
    assert response.status == "completed" and response.output_text == f"[{upstream}] you said: Say hi"
    assert response.usage is not None and response.usage.output_tokens > 0 and float(raw.headers["x-modelroute-cost-usd"]) > 0
    if model == "gpt-4o-mini":  # natively: the request went as the client wrote it
        assert fake_openai.requests[-1].path == "/v1/responses" and fake_openai.requests[-1].body["instructions"] == "Be brief."
    else:
        assert fake_anthropic.calls()[-1].body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    async with client.responses.stream(model=model, input="Count to three") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert final.output_text == f"[{upstream}] you said: Count to three" and final.usage is not None


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet"])
async def test_a_function_tool_round_trip(client: openai.AsyncOpenAI, model: str) -> None:
    first = await client.responses.create(model=model, input="What is the weather in Paris?", tools=[WEATHER])  # type: ignore[list-item]
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    second = await client.responses.create(
        model=model, previous_response_id=first.id, tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}])
    assert second.output_text.endswith("the tool said: sunny, 21C")


class City(BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet"])
async def test_structured_output_with_a_json_schema(client: openai.AsyncOpenAI, model: str) -> None:
    parsed = await client.responses.parse(model=model, input="The largest city of France", text_format=City)
    assert isinstance(parsed.output_parsed, City)


async def test_previous_response_id_across_two_providers(client: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic,
                                                        fake_openai: FakeOpenAI) -> None:
    """Turn one on OpenAI, turn two on Claude, turn three on OpenAI again: each provider gets the
    whole conversation, whichever served the turns before."""
    one = await client.responses.create(model="gpt-4o-mini", input="My name is Ada.")
    two = await client.responses.create(model="claude-sonnet", input="What is my name?", previous_response_id=one.id)
    sent = fake_anthropic.calls()[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "My name is Ada." in json.dumps(sent[0]) and one.output_text in json.dumps(sent[1])
    three = await client.responses.create(model="gpt-4o-mini", input="And again?", previous_response_id=two.id)
    items = fake_openai.requests[-1].body["input"]
    assert len(items) == 5 and "previous_response_id" not in fake_openai.requests[-1].body
    assert three.output_text.startswith("[gpt-4o-mini]")
    assert (await client.responses.retrieve(two.id)).output_text == two.output_text
    listed = await client.responses.input_items.list(two.id)
    assert [json.dumps(i.model_dump()) for i in listed.data][0].count("What is my name?") == 1
    await client.responses.delete(one.id)
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.create(model="gpt-4o-mini", input="x", previous_response_id=three.id)  # its chain lost turn one
    assert f"Previous response with id '{one.id}' not found." in info.value.message
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(one.id)


async def test_store_false_keeps_nothing(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(model="claude-sonnet", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.retrieve(response.id)
    assert info.value.body == {"message": f"Response with id '{response.id}' not found.", "type": "invalid_request_error",
                               "param": None, "code": None}


async def test_a_built_in_tool_goes_only_to_a_provider_serving_it(client: openai.AsyncOpenAI, make_sidecar: SidecarFactory,
                                                                 fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    """Claude cannot run OpenAI's web search: its chain (Claude, then gpt-4o-mini) serves the
    request on gpt-4o-mini, natively; a chain of Claude alone is a 400 saying why."""
    raw = await client.responses.with_raw_response.create(model="claude-sonnet", input="news about Paris",
                                                          tools=[{"type": "web_search"}])
    assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
    assert any(item.type == "web_search_call" for item in raw.parse().output)
    assert fake_anthropic.calls() == []
    doc = mixed_policy(fake_openai.base_url, fake_anthropic.url)
    doc["spec"]["fallbacks"] = {}
    alone = await make_sidecar(doc)
    async with openai.AsyncOpenAI(base_url=alone.base_url, api_key=APP_KEY, max_retries=0) as other:
        with pytest.raises(openai.BadRequestError) as info:
            await other.responses.create(model="auto", input="news", tools=[{"type": "web_search"}])
    assert "claude-sonnet: the built-in tool 'web_search' has no Chat Completions equivalent: only providers that speak the Responses API natively" in info.value.message


async def test_an_agent_runs_its_tool_loop_through_the_sidecar(sidecar: Sidecar) -> None:
    """The OpenAI Agents SDK's default model speaks the Responses API."""
    import agents  # the OpenAI Agents SDK (a test dependency)

    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    agents.set_tracing_disabled(True)
    async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
        agent = agents.Agent(name="weather", instructions="Answer with the tool.", tools=[get_weather],
                             model=agents.OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client))
        result = await agents.Runner.run(agent, "What is the weather in Paris?")
    assert len(calls) == 1 and result.final_output.endswith(f"the tool said: sunny in {calls[0]}")
    spans = [s for s in sidecar.request_spans() if s.attributes.get("modelroute.client_api") == "responses"]
    assert len(spans) == 2


