"""The translator interface: one request carried from the client's API to an upstream's, and back.

A translator is created per request and named by the pair it converts, client API first
(``OpenAIToAnthropic`` serves an OpenAI client from an Anthropic upstream). It converts the request
body once (:meth:`Translator.request`), then either a whole answer (:meth:`Translator.response`) or
a stream, event by event (:meth:`Translator.event`, then :meth:`Translator.end`). A translator keeps
the state a stream needs (open content blocks, tool indexes, usage) and the list of what it had to
drop: parameters or content with no equivalent on the other side, never guessed at, reported on the
span as ``modelroute.translation.dropped``.

Stream events are ``(event name, payload)`` pairs; the name is None for OpenAI chunks, which have
none on the wire.
"""

from __future__ import annotations

import abc
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator, Mapping

from modelroute.policy import ModelSpec
from modelroute.providers.base import ErrorKind, ProviderError, Usage

#: One stream event: (SSE event name or None, JSON payload).
Event = tuple[str | None, dict[str, Any]]


#: Names a translator may drop, as metric label values; anything else (a parameter name a client
#: made up, a block type an upstream added) is counted as ``other`` to keep the label set bounded.
METRIC_LABELS = frozenset({
    # OpenAI request parameters without an Anthropic equivalent
    "seed", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "n", "metadata",
    "service_tier", "store", "modalities", "audio", "prediction", "web_search_options", "functions", "function_call",
    "verbosity", "safety_identifier", "prompt_cache_key", "temperature", "temperature.above_1", "top_p", "top_k",
    "reasoning_effort", "thinking", "tool_choice", "response_format", "image_url.detail", "tool_calls.arguments",
    "messages.system_position", "messages.name", "messages.empty", "messages.reasoning_content", "messages.function_call",
    "messages.audio", "tools.custom",
    # Anthropic answers and requests without an OpenAI equivalent
    "citations", "content.text_outside_json", "content.server_tool_use", "content.web_search_tool_result",
    "content.web_fetch_tool_result", "content.code_execution_tool_result", "content.mcp_tool_use", "content.mcp_tool_result",
    "container", "mcp_servers", "cache_control", "inference_geo", "speed", "output_config.effort",
    "stop_sequences.beyond_4", "tool_result.is_error", "tool_result.non_text", "document.title", "reasoning_content",
    "tool_calls.interleaved", "tools.web_search_20250305", "tools.web_fetch_20250910", "tools.code_execution_20250825",
    "tools.bash_20250124", "tools.text_editor_20250728", "tools.computer_20250124", "tools.memory_20250818",
    # Responses API requests and answers without a Chat Completions equivalent, and the reverse
    "input.reasoning", "input.item_reference", "input.web_search_call", "input.file_search_call", "input.computer_call",
    "input.computer_call_output", "input.mcp_call", "input.custom_tool_call", "input.custom_tool_call_output",
    "input_file.file_url", "input_image.file_id", "function_call_output.non_text", "phase", "annotations", "truncation",
    "include", "top_logprobs", "max_tool_calls", "reasoning.summary", "reasoning.context", "reasoning.mode", "text.format",
    "thinking_blocks", "background", "conversation", "prompt", "context_management", "tools.web_search",
    "tools.web_search_preview", "tools.file_search", "tools.code_interpreter", "tools.computer_use_preview", "tools.computer",
    "tools.mcp", "tools.image_generation", "tools.local_shell", "tools.shell", "tools.apply_patch", "output.web_search_call",
    "output.file_search_call", "output.code_interpreter_call", "output.mcp_call", "output.image_generation_call",
    "max_output_tokens.minimum", "stop",
})


def metric_label(name: str) -> str:
    """The metric label value for a dropped name (bounded set)."""
    return name if name in METRIC_LABELS else "other"


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (bodies are parsed JSON: dicts)."""
    return value if isinstance(value, dict) else {}


#: What reading a JSON answer of the wrong shape raises (a field of another type, a missing one).
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError)


@contextmanager
def answer_errors(where: str) -> Iterator[None]:
    """Reading an upstream's answer: one that does not follow its API (a field of the wrong type,
    a missing one) is that upstream's failure, ``PROTOCOL``, so the next model is tried and the
    model's breaker counts it; it is not an error of the sidecar's."""
    try:
        yield
    except SHAPE_ERRORS as exc:
        raise ProviderError(ErrorKind.PROTOCOL, f"{where}: the answer does not follow the API ({type(exc).__name__})") from None


class TranslationError(ProviderError):
    """The request cannot be expressed in the target API at all (e.g. audio input to Claude).

    A client error for this model; the message names what could not be carried.
    """

    def __init__(self, message: str) -> None:
        super().__init__(
            ErrorKind.BAD_REQUEST,
            message,
            status=400,
            error={"message": message, "type": "invalid_request_error", "param": None, "code": "unsupported_content"},
        )


class Translator(abc.ABC):
    """Converts one request from ``source`` (the client's API) to ``target`` (the upstream's)."""

    source: ClassVar[str]
    target: ClassVar[str]

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.usage: Usage | None = None

    @classmethod
    def for_model(cls, model: ModelSpec) -> Translator:
        """The translator for one request to ``model`` (those that need the model override this)."""
        return cls()

    def drop(self, what: str) -> None:
        """Record something that could not be carried across (each name once)."""
        if what not in self.dropped:
            self.dropped.append(what)

    @abc.abstractmethod
    def request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The request body in the target API's shape."""

    @abc.abstractmethod
    def response(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A whole target-API answer in the source API's shape; sets :attr:`usage`."""

    @abc.abstractmethod
    def event(self, name: str | None, data: Mapping[str, Any]) -> list[Event]:
        """The source-API events for one target-API stream event (often none, sometimes several)."""

    @abc.abstractmethod
    def end(self) -> list[Event]:
        """The events that close the stream once the upstream's has ended normally."""

    @property
    @abc.abstractmethod
    def finished(self) -> bool:
        """True once the upstream stream has signalled its normal end."""
