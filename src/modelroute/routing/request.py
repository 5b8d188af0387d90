"""RequestView: everything routing may look at, built once per request from the parsed body.

Nothing after ingress re-parses the body; strategies read the view. The view's body is the
OpenAI chat-completions shape whatever API the client spoke (Anthropic requests are translated
first), so one routing code path serves both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, Callable

#: Rough characters per token for the estimate; real tokenizers average 3.5-4.2 on English.
CHARS_PER_TOKEN = 4
#: Per-message framing tokens (role, separators), as OpenAI documents for its chat format.
MESSAGE_OVERHEAD = 4
#: A low-detail image costs 85 tokens at OpenAI; used as the floor estimate of any image.
IMAGE_TOKENS = 85


@dataclass(slots=True)
class RequestView:
    requested_model: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]  # lower-case names
    stream: bool = False
    include_usage: bool = False  # the client asked for the usage chunk of a stream
    tool_count: int = 0
    response_format: str = "text"
    input_tokens: int = 0
    max_tokens: int | None = None
    has_images: bool = False
    task: str | None = None
    complexity: str | None = None
    api: str = "chat"  # the API the client spoke: chat | messages | responses
    native_only: str | None = None  # why only models of the client's own API can serve it (untranslatable content)
    labels: dict[str, Any] = field(default_factory=dict)  # set by labelling strategies
    decision_cost_usd: float = 0.0  # what strategies spent deciding (classifier, embedding calls)
    _prompt: str | None = None

    @property
    def messages(self) -> list[Mapping[str, Any]]:
        msgs = self.body.get("messages")
        return msgs if isinstance(msgs, list) else []

    def prompt_text(self) -> str:
        """The text of the last user message (what most routers classify)."""
        if self._prompt is None:
            self._prompt = ""
            for msg in reversed(self.messages):
                if isinstance(msg, Mapping) and msg.get("role") == "user":
                    self._prompt = content_text(msg.get("content"))
                    break
        return self._prompt

    def cel_context(self, fields: frozenset[str] | None = None) -> dict[str, Any]:
        """The ``request`` object CEL expressions see, limited to ``fields`` when given.

        Converting a value to CEL costs time in proportion to its size, so each expression gets
        only the fields it reads.
        """
        names = CEL_FIELDS.keys() if fields is None else fields
        return {"request": {name: CEL_FIELDS[name](self) for name in names}}

    def relabel(self, **labels: Any) -> None:
        """Record labels from a labelling strategy (task, complexity, ...); CEL sees them afterwards."""
        for key, value in labels.items():
            if key in ("task", "complexity"):
                setattr(self, key, value)
            self.labels[key] = value


#: The fields of the CEL ``request`` object (documented in docs/policy.md).
CEL_FIELDS: dict[str, Callable[[RequestView], Any]] = {
    "model": lambda v: v.requested_model,
    "input_tokens": lambda v: v.input_tokens,
    "max_tokens": lambda v: v.max_tokens if v.max_tokens is not None else 0,
    "stream": lambda v: v.stream,
    "tool_count": lambda v: v.tool_count,
    "tools": lambda v: [_tool_name(t) for t in v.body.get("tools") or []],
    "response_format": lambda v: v.response_format,
    "message_count": lambda v: len(v.messages),
    "has_images": lambda v: v.has_images,
    "headers": lambda v: dict(v.headers),
    "task": lambda v: v.task or "",
    "complexity": lambda v: v.complexity or "",
    "user": lambda v: str(v.body.get("user") or ""),
    "prompt": lambda v: v.prompt_text(),
    "labels": lambda v: {k: x for k, x in v.labels.items() if isinstance(x, (str, int, float, bool))},
    "api": lambda v: "anthropic" if v.api == "messages" else "openai",  # the client's API family
    "client_api": lambda v: v.api,
}


def _tool_name(tool: Any) -> str:
    if isinstance(tool, Mapping):
        fn = tool.get("function")
        if isinstance(fn, Mapping):
            return str(fn.get("name", ""))
        return str(tool.get("name", ""))
    return ""


def content_text(content: Any) -> str:
    """Plain text of an OpenAI message content (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def _count(content: Any) -> tuple[int, bool]:
    """(characters of text, has an image) of one message content."""
    if isinstance(content, str):
        return len(content), False
    chars, image = 0, False
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text":
                chars += len(part.get("text") or "")
            elif part.get("type") in ("image_url", "image", "input_image"):
                image = True
                chars += IMAGE_TOKENS * CHARS_PER_TOKEN
    return chars, image


def estimate_input(body: Mapping[str, Any]) -> tuple[int, bool]:
    """(estimated input tokens, has images) of an OpenAI-shaped chat request.

    A character count, not a tokenizer: no tokenizer of every provider ships offline, and routing
    needs the size class, not the exact count. Costs are settled from the provider's usage.
    """
    chars, images, messages = 0, False, body.get("messages") or []
    for msg in messages:
        if not isinstance(msg, Mapping):
            continue
        n, img = _count(msg.get("content"))
        chars += n
        images = images or img
        if msg.get("tool_calls"):
            chars += len(json.dumps(msg["tool_calls"]))
    if body.get("tools"):
        chars += len(json.dumps(body["tools"]))
    tokens = -(-chars // CHARS_PER_TOKEN) + MESSAGE_OVERHEAD * len(messages)
    return tokens, images


def build_view(body: Mapping[str, Any], headers: Mapping[str, str], api: str = "chat") -> RequestView:
    """The view of an OpenAI-shaped chat request. ``headers`` must have lower-case names."""
    fmt = body.get("response_format")
    fmt_type = fmt.get("type", "text") if isinstance(fmt, Mapping) else "text"
    opts = body.get("stream_options")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    tokens, images = estimate_input(body)
    return RequestView(
        requested_model=str(body.get("model") or ""),
        body=body,
        headers=headers,
        stream=bool(body.get("stream")),
        include_usage=bool(isinstance(opts, Mapping) and opts.get("include_usage")),
        tool_count=len(body.get("tools") or []),
        response_format=str(fmt_type),
        input_tokens=tokens,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        has_images=images,
        task=headers.get("x-modelroute-task") or None,
        api=api,
    )
