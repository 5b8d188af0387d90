"""A replay provider: a real OpenAI-compatible server that answers with recorded responses.

Given a routerbench-format dataset (one prompt per line with every model's recorded answer and
cost), ``POST /v1/chat/completions`` finds the request's last user message among the recorded
prompts and answers, as ``model``, with that model's recorded response, and a usage whose cost
at the model's prices equals the recorded cost (the completion tokens are estimated from the
answer's length, the prompt tokens make up the rest). A request for a prompt that was not
recorded goes to ``fallback`` (a function of the model and the last user message that returns an
answer text, e.g. a stand-in classifier), else gets a 404 error body.

Run alone: ``python -m modelroute.testing.replay_provider --data FILE --port 9002``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, Callable

from aiohttp import web

from modelroute.replay.recorded import completion
from modelroute.routing.request import content_text
from modelroute.testing.server import ServerBase

Fallback = Callable[[str, str], "str | None"]
CHARS_PER_TOKEN = 4


def _answer_of(response: str) -> str:
    from modelroute.calibrate.data import answer_of

    return answer_of(response)


def usage_for(cost_usd: float, answer: str, price_in: float, price_out: float) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) whose cost at the prices (USD per 1M) is ``cost_usd``."""
    completion = max(1, len(answer) // CHARS_PER_TOKEN)
    budget = cost_usd * 1e6
    if completion * price_out > budget:
        completion = int(budget // price_out) if price_out > 0 else 0
    prompt = round((budget - completion * price_out) / price_in) if price_in > 0 else 0
    return max(prompt, 0), max(completion, 0)


@dataclass
class ReplayProvider(ServerBase):
    data: str = ""
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # model -> USD per 1M (in, out)
    fallback: Fallback | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)  # (model, source: recorded | fallback | missing)

    def __post_init__(self) -> None:
        self._rows: dict[str, Mapping[str, Any]] = {}
        if self.data:
            with open(self.data) as fh:
                for line in fh:
                    if line.strip():
                        row = json.loads(line)
                        self._rows[row["prompt"]] = row["models"]
        if not self.prices:
            from modelroute.calibrate.policy import ROUTERBENCH_PRICES

            self.prices = ROUTERBENCH_PRICES

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        model = str(body.get("model", ""))
        prompt = ""
        for msg in reversed(body.get("messages") or []):
            if isinstance(msg, Mapping) and msg.get("role") == "user":
                prompt = content_text(msg.get("content"))
                break
        price_in, price_out = self.prices.get(model, (1.0, 1.0))
        recorded = self._rows.get(prompt, {}).get(model)
        answer: str | None
        if recorded is not None:
            answer = _answer_of(str(recorded.get("response", "")))
            usage = usage_for(float(recorded["cost_usd"]), answer, price_in, price_out)
            self.requests.append((model, "recorded"))
        else:
            answer = self.fallback(model, prompt) if self.fallback is not None else None
            if answer is None:
                self.requests.append((model, "missing"))
                return web.json_response({"error": {"message": f"no recorded answer of {model} to this prompt",
                                                    "type": "invalid_request_error", "code": "not_recorded"}}, status=404)
            usage = (max(1, len(prompt) // CHARS_PER_TOKEN), max(1, len(answer) // CHARS_PER_TOKEN))
            self.requests.append((model, "fallback"))
        return web.json_response(_completion(model, answer, usage))


def _completion(model: str, answer: str, usage: tuple[int, int]) -> dict[str, Any]:
    """The recorded answer's chat.completion (as ``modelroute replay`` reads it), with the wire fields."""
    return {
        "id": f"chatcmpl-replay-{time.monotonic_ns()}",
        "created": int(time.time()),
        **completion(model, answer),
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[0] + usage[1]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    ReplayProvider(port=args.port, data=args.data).run_forever()


if __name__ == "__main__":
    main()
