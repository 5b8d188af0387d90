"""The fake OpenAI provider's Responses API, spoken to by the real ``openai`` SDK directly: the
fake must speak the wire format the SDK expects (objects, semantic events, stored state, errors)
before a sidecar is tested against it."""

from __future__ import annotations

import json
from typing import AsyncIterator

import openai
import pytest
from pydantic import BaseModel

from modelroute.testing.fake_openai import RESPONSES_ONLY, FakeOpenAI
from tests.support import PROVIDER_KEY

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
               *["response.output_text.delta"] * 8, "response.output_text.done", "response.content_part.done",
               "response.output_item.done", "response.completed"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=PROVIDER_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=PROVIDER_KEY, max_retries=0) as c:
        yield c


async def test_a_whole_response_is_the_api_object(client: openai.AsyncOpenAI) -> None:
    raw = await client.responses.with_raw_response.create(model="gpt-5", input="Say hello to the router",
                                                          metadata={"ticket": "7"}, store=True)
    wire = json.loads(raw.text)
    response = raw.parse()
    assert wire["object"] == "response" and "output_text" not in wire  # an SDK convenience, never on the wire
    assert response.status == "completed" and response.metadata == {"ticket": "7"}
    assert response.output_text == "[gpt-5] you said: Say hello to the router"
    assert response.usage is not None and response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.usage.input_tokens_details.cached_tokens == 0 and response.usage.output_tokens_details.reasoning_tokens == 0


async def test_a_stream_is_the_semantic_events_in_order(client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(model="gpt-5", input="Say hello to the router", stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events] == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.usage is not None and final.usage.output_tokens == 8


async def test_a_function_call_round_trip_through_the_stored_state(client: openai.AsyncOpenAI) -> None:
    async with client.responses.stream(model="gpt-5", input="Weather in Paris?", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        types = [event.type async for event in stream]
        first = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in types and types[-1] == "response.completed"
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.parsed_arguments == {"city": "Weather in Paris?"}  # type: ignore[union-attr]
    second = await client.responses.create(model="gpt-5", previous_response_id=first.id,
                                           input=[{"type": "function_call_output", "call_id": call.call_id, "output": "14C"}])
    assert second.output_text == "[gpt-5] the tool said: 14C" and second.previous_response_id == first.id
    items = await client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["function_call_output"] and items.data[0].id
    assert (await client.responses.retrieve(second.id)).output_text == second.output_text
    await client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError, match=f"Response with id '{second.id}' not found"):
        await client.responses.retrieve(second.id)


async def test_input_items_are_listed_newest_first_and_page(client: openai.AsyncOpenAI) -> None:
    inputs = [{"role": "user", "content": f"message {n}"} for n in range(5)]
    response = await client.responses.create(model="gpt-5", input=inputs)  # type: ignore[arg-type]
    listed = [item async for item in client.responses.input_items.list(response.id, limit=2)]
    assert [i.content[0].text for i in listed] == [f"message {n}" for n in range(4, -1, -1)]  # type: ignore[union-attr]
    oldest = await client.responses.input_items.list(response.id, order="asc", limit=1)
    assert oldest.data[0].content[0].text == "message 0" and oldest.has_more  # type: ignore[union-attr]


class Person(BaseModel):
    name: str
    age: int


async def test_structured_output_parses(client: openai.AsyncOpenAI) -> None:
    parsed = await client.responses.parse(model="gpt-5", input="Ada is 36", text_format=Person)
    assert parsed.output_parsed == Person(name="Ada is 36", age=1)
    json_mode = await client.responses.create(model="gpt-5", input="answer in json", text={"format": {"type": "json_object"}})
    assert json.loads(json_mode.output_text) == {"model": "gpt-5", "echo": "answer in json"}


async def test_unstored_and_unknown_previous_responses(client: openai.AsyncOpenAI) -> None:
    unstored = await client.responses.create(model="gpt-5", input="hi", store=False)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="again", previous_response_id=unstored.id)
    assert info.value.body == {"message": f"Previous response with id '{unstored.id}' not found.", "type": "invalid_request_error",
                               "param": "previous_response_id", "code": "previous_response_not_found"}


@pytest.mark.parametrize(("body", "param", "message"), [
    ({"messages": [{"role": "user", "content": "hi"}]}, "messages", "Unknown parameter: 'messages'."),
    ({"input": "hi", "response_format": {"type": "json_object"}}, "response_format", "Unknown parameter: 'response_format'."),
    ({"input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}, "input",
     "No tool call found for function call output with call_id call_x."),
    ({"input": [{"type": "function_call", "call_id": "call_y", "name": "f", "arguments": "{}"}]}, "input",
     "No tool output found for function call call_y."),
    ({"input": [{"role": "assistant", "content": [{"type": "input_text", "text": "hi"}]}]}, "input[0].content[0].type",
     "Invalid value: 'input_text'. Supported values are: 'output_text', 'refusal'."),
    ({"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input[0].content[0].type", None),
    ({"input": [{"type": "chat_message"}]}, "input[0].type", None),
    ({"input": "hi", "max_output_tokens": 5}, "max_output_tokens", None),
    ({"input": "hi", "text": {"format": {"type": "json_object"}}}, "input", None),
    ({"input": "hi", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice", None),
    ({"input": "hi", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name", None),
])
async def test_requests_the_api_refuses_get_its_400(client: openai.AsyncOpenAI, fake: FakeOpenAI, body: dict[str, object],
                                                    param: str, message: str | None) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.post("/responses", cast_to=object, body={"model": "gpt-5", **body})
    error = info.value.body
    assert isinstance(error, dict) and error["param"] == param and error["type"] == "invalid_request_error"
    assert message is None or error["message"] == message
    assert fake.responses == {} and fake.refused == 0  # refused by the checks, not by a crash


async def test_max_output_tokens_cuts_the_answer(client: openai.AsyncOpenAI) -> None:
    prompt = " ".join(f"w{n}" for n in range(30))
    cut = await client.responses.create(model="gpt-5", input=prompt, max_output_tokens=16)
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens" and len(cut.output_text.split()) == 16
    stream = await client.responses.create(model="gpt-5", input=prompt, max_output_tokens=16, stream=True)
    assert [e.type async for e in stream][-1] == "response.incomplete"


async def test_reasoning_items_and_tokens(client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(model="o4", input="Think", reasoning={"effort": "medium", "summary": "auto"},
                                           include=["reasoning.encrypted_content"], stream=True)
    events = [e async for e in stream]
    assert "response.reasoning_summary_text.delta" in [e.type for e in events]
    final = events[-1].response  # type: ignore[union-attr]
    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "The user wrote: Think"
    assert reasoning.encrypted_content and final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 16
    again = await client.responses.create(model="o4", previous_response_id=final.id, input="More",
                                          reasoning={"effort": "medium"})
    assert again.output_text == "[o4] you said: More"


async def test_item_references_read_the_store(client: openai.AsyncOpenAI) -> None:
    first = await client.responses.create(model="gpt-5", input="Remember me")
    answer = await client.responses.create(model="gpt-5", input=[{"type": "item_reference", "id": first.output[0].id},
                                                                 {"role": "user", "content": "What did you say?"}])
    assert answer.output_text == "[gpt-5] you said: What did you say?"
    with pytest.raises(openai.NotFoundError, match="Item with id 'msg_nope' not found"):
        await client.responses.create(model="gpt-5", input=[{"type": "item_reference", "id": "msg_nope"}])


async def test_built_in_web_search_and_scripted_outputs(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    searched = await client.responses.create(model="gpt-5", input="news today", tools=[{"type": "web_search"}])
    assert [i.type for i in searched.output] == ["web_search_call", "message"]
    fake.script([{"id": "msg_s", "type": "message", "status": "completed", "role": "assistant",
                  "content": [{"type": "refusal", "refusal": "I can't help with that."}]}])
    stream = await client.responses.create(model="gpt-5", input="bad", stream=True)
    events = [e async for e in stream]
    assert [e.delta for e in events if e.type == "response.refusal.delta"] == ["I can't help with that."]


async def test_faults_keys_and_stream_failures(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.responses.create(model="gpt-5", input="hi")
    fake.fail("gpt-5", status=429, retry_after=2, times=1)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.responses.create(model="gpt-5", input="hi")
    assert limited.value.response.headers["retry-after"] == "2"
    fake.fail("gpt-5", status=500, times=1)
    with pytest.raises(openai.InternalServerError):
        await client.responses.create(model="gpt-5", input="hi")
    fake.fail("gpt-5", error_after=4, times=1)
    stream = await client.responses.create(model="gpt-5", input="Say hello to the router", stream=True)
    events = [e async for e in stream]
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1].response.error is not None and events[-1].response.error.code == "server_error"  # type: ignore[union-attr]
    fake.fail("gpt-5", cut_after=3, times=1)
    with pytest.raises(openai.APIError):
        stream = await client.responses.create(model="gpt-5", input="hi", stream=True)
        [e async for e in stream]


async def test_chat_only_and_responses_only_servers() -> None:
    async with FakeOpenAI(speaks=frozenset({"chat"})) as chat_only, FakeOpenAI(speaks=frozenset({"responses"})) as pro:
        async with openai.AsyncOpenAI(base_url=chat_only.base_url, api_key="k", max_retries=0) as c:
            with pytest.raises(openai.NotFoundError) as info:
                await c.responses.create(model="qwen3", input="hi")
            assert info.value.body == {"message": "Invalid URL (POST /v1/responses)", "type": "invalid_request_error",
                                       "param": None, "code": None}
            assert (await c.chat.completions.create(model="qwen3", messages=[{"role": "user", "content": "hi"}])).choices
        async with openai.AsyncOpenAI(base_url=pro.base_url, api_key="k", max_retries=0) as c:
            with pytest.raises(openai.NotFoundError, match=RESPONSES_ONLY):
                await c.chat.completions.create(model="gpt-5-pro", messages=[{"role": "user", "content": "hi"}])
            assert (await c.responses.create(model="gpt-5-pro", input="hi")).output_text == "[gpt-5-pro] you said: hi"


async def test_one_model_may_be_responses_only(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.responses_only.add("gpt-5-codex")
    with pytest.raises(openai.NotFoundError, match=RESPONSES_ONLY):
        await client.chat.completions.create(model="gpt-5-codex", messages=[{"role": "user", "content": "hi"}])
    assert (await client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])).choices


async def test_a_chat_stream_can_end_in_an_error_chunk(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.fail("gpt-5", error_after=2, times=1)
    stream = await client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi there"}], stream=True)
    with pytest.raises(openai.APIError, match="The server had an error"):
        [chunk async for chunk in stream]
