"""One client per API, each the real SDK, behind one small face: ask a question, get what came back.

The behaviour matrix (``test_matrix.py``) runs every behaviour of the request pipeline through each
of them: OpenAI's Chat Completions and Responses clients, Anthropic's Messages client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import anthropic
import openai

from tests.support import APP_KEY, Sidecar


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    text: str = ""
    error: Any = None  # the error body (whole answers) or the error event (streams)
    broke: bool = False  # a stream that ended with the API's error event
    extra: dict[str, Any] = field(default_factory=dict)


class Api:
    name = ""

    async def ask(self, sidecar: Sidecar, prompt: str = "Say hello to the router", *, model: str = "auto", stream: bool = False,
                  headers: Mapping[str, str] | None = None, **extra: Any) -> Reply:
        raise NotImplementedError


def _error(exc: Exception) -> Reply:
    assert isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)), exc
    return Reply(exc.status_code, exc.response.headers, error=exc.body)


class Chat(Api):
    name = "chat"

    async def ask(self, sidecar: Sidecar, prompt: str = "Say hello to the router", *, model: str = "auto", stream: bool = False,
                  headers: Mapping[str, str] | None = None, **extra: Any) -> Reply:
        async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
            messages = [{"role": "user", "content": prompt}]
            try:
                if not stream:
                    raw = await client.chat.completions.with_raw_response.create(
                        model=model, messages=messages, extra_headers=dict(headers or {}), **extra)  # type: ignore[arg-type]
                    return Reply(raw.status_code, raw.headers, raw.parse().choices[0].message.content or "")
                chunks = await client.chat.completions.create(model=model, messages=messages, stream=True,  # type: ignore[arg-type]
                                                              extra_headers=dict(headers or {}), **extra)
                text, reply = "", Reply(200, chunks.response.headers)
                try:
                    async for chunk in chunks:
                        text += "".join(c.delta.content or "" for c in chunk.choices)
                except openai.APIError as exc:
                    reply.broke, reply.error = True, exc.body
                reply.text = text
                return reply
            except openai.APIStatusError as exc:
                return _error(exc)


class Responses(Api):
    name = "responses"

    async def ask(self, sidecar: Sidecar, prompt: str = "Say hello to the router", *, model: str = "auto", stream: bool = False,
                  headers: Mapping[str, str] | None = None, **extra: Any) -> Reply:
        async with openai.AsyncOpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0) as client:
            try:
                if not stream:
                    raw = await client.responses.with_raw_response.create(model=model, input=prompt, extra_headers=dict(headers or {}),
                                                                          **extra)
                    parsed = raw.parse()
                    return Reply(raw.status_code, raw.headers, parsed.output_text, extra={"id": parsed.id})
                events = await client.responses.create(model=model, input=prompt, stream=True, extra_headers=dict(headers or {}),
                                                       **extra)
                text, reply = "", Reply(200, events.response.headers)
                async for event in events:
                    if event.type == "response.output_text.delta":
                        text += event.delta
                    elif event.type in ("error", "response.failed"):
                        reply.broke, reply.error = True, reply.error or event.model_dump()
                    elif event.type == "response.completed":
                        reply.extra["id"] = event.response.id
                reply.text = text
                return reply
            except openai.APIStatusError as exc:
                return _error(exc)


class Messages(Api):
    name = "messages"

    async def ask(self, sidecar: Sidecar, prompt: str = "Say hello to the router", *, model: str = "auto", stream: bool = False,
                  headers: Mapping[str, str] | None = None, **extra: Any) -> Reply:
        async with anthropic.AsyncAnthropic(base_url=sidecar.url, api_key=APP_KEY, max_retries=0) as client:
            messages = [{"role": "user", "content": prompt}]
            try:
                if not stream:
                    raw = await client.messages.with_raw_response.create(
                        model=model, max_tokens=512, messages=messages, extra_headers=dict(headers or {}), **extra)  # type: ignore[arg-type]
                    message = await raw.parse()
                    return Reply(raw.status_code, raw.headers, "".join(b.text for b in message.content if b.type == "text"))
                events = await client.messages.create(model=model, max_tokens=512, messages=messages, stream=True,  # type: ignore[arg-type]
                                                      extra_headers=dict(headers or {}), **extra)
                text, reply = "", Reply(200, events.response.headers)
                try:
                    async for event in events:
                        if event.type == "content_block_delta" and event.delta.type == "text_delta":
                            text += event.delta.text
                except anthropic.APIStatusError as exc:
                    reply.broke, reply.error = True, exc.body
                reply.text = text
                return reply
            except anthropic.APIStatusError as exc:
                return _error(exc)


APIS: list[Api] = [Chat(), Responses(), Messages()]
