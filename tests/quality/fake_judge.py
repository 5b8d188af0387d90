"""A fake judge: a real OpenAI-compatible server that grades like a judge model, deterministically.

Scores (the sidecar's default judge prompt): 0.9 when the graded answer came from ``gpt-4o``, 0.6
otherwise. Comparisons: the answer from ``gpt-4o`` wins when the question mentions "hard", else TIE.
Every reply costs 100 prompt and 2 completion tokens. ``delay`` slows every answer down.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from modelroute.testing.server import ServerBase

USAGE = {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102}


@dataclass
class FakeJudge(ServerBase):
    delay: float = 0.0
    prompts: list[str] = field(default_factory=list)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = str(body["messages"][-1]["content"])
        self.prompts.append(prompt)
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({
            "id": "judge-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply(prompt)}, "finish_reason": "stop"}],
            "usage": USAGE,
        })


def reply(prompt: str) -> str:
    if "Which answer is better" in prompt:
        question = prompt.split("Question:", 1)[1].split("Answer A:", 1)[0]
        a = prompt.split("Answer A:", 1)[1].split("Answer B:", 1)[0]
        if "hard" not in question:
            return "TIE"
        return "A" if "[gpt-4o]" in a else "B"
    answer = prompt.split("Answer:", 1)[1] if "Answer:" in prompt else prompt
    return "0.9" if re.search(r"\[gpt-4o\]", answer) else "0.6"


def judged_policy(base_url: str, judge_url: str, **quality: Any) -> dict[str, Any]:
    """The quickstart policy plus a judge model served by the fake judge."""
    from tests.support import quickstart

    doc = quickstart(base_url, quality={"judge": {"model": "judge", "sampleRate": 1.0}, **quality})
    doc["spec"]["providers"].append({"name": "judges", "type": "openai", "baseURL": judge_url, "apiKey": {"env": "TEST_PROVIDER_KEY"}})
    doc["spec"]["models"].append({"name": "judge", "provider": "judges", "pricing": {"input": 1.0, "output": 2.0}})
    return doc
