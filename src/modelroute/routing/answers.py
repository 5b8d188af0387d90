"""What an OpenAI ``chat.completion`` answer says: its text, tool calls, finish reason, token
logprobs and the refusal the model declared (:func:`read_answer`), and whether its text reads as a
refusal (:class:`Refusals`); a streamed answer reassembled from its chunks (:class:`AnswerBuilder`).

The one reading of an answer shared by the cascade's checks
(:mod:`modelroute.routing.strategies.checks`) and the quality monitor's
(:mod:`modelroute.quality.heuristics`), so both judge an answer the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from modelroute import _json as json

#: Lower-case phrases (straight apostrophes) that mark a refusal. Matched as substrings, so a
#: phrase also covers its longer forms: "i can't assist" covers "i can't assist with".
REFUSAL_PHRASES: tuple[str, ...] = (
    "i can't help with",
    "i cannot help with",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i can't comply",
    "i cannot comply",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i can't",
    "i am sorry, but i cannot",
    "i'm unable to",
    "i am unable to",
    "i'm not able to help",
    "i won't be able to",
    "as an ai language model",
    "i must decline",
)
#: An answer up to this long (stripped) is searched whole for a refusal phrase ...
_SHORT = 300
#: ... a longer one only in its opening, so a caveat deep in a real answer is no refusal.
_OPENING = 120


@dataclass(slots=True)
class Answer:
    """The first choice of a ``chat.completion`` body, as the checks read it (read-only by
    convention: not frozen, because a frozen dataclass takes twice as long to build, and every
    answer the sidecar serves is read)."""

    text: str = ""
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None  # one per token, when the provider returned them
    refusal: str | None = None  # the model's own refusal: ``message.refusal``, or a content part of type refusal


def read_answer(body: Mapping[str, Any]) -> Answer:
    """The :class:`Answer` of a ``chat.completion`` body; malformed parts read as absent.

    Every answer the sidecar serves is read here (the quality monitor checks them all), so the
    common shape, a string content and no tool calls, logprobs or refusal, takes the short way."""
    choice = _first(body.get("choices"))
    message = _mapping(choice.get("message"))
    content, calls, finish = message.get("content"), message.get("tool_calls"), choice.get("finish_reason")
    logprobs, declared = choice.get("logprobs"), message.get("refusal")
    return Answer(
        text=content if type(content) is str else _text(content),
        tool_calls=() if calls is None else _tool_calls(calls),
        finish_reason=finish if type(finish) is str else None,
        logprobs=None if logprobs is None else _logprobs(logprobs),
        refusal=None if declared is None and type(content) is str else _refusal(message),
    )


class Refusals:
    """A refusal phrase list, compiled once.

    Case-insensitive; a typographic apostrophe (U+2019) counts as a straight one. A short text is
    searched whole, a long one only in its opening. :meth:`phrase` names the phrase found (the
    first of the list at the leftmost place: a cascade's reason). :meth:`found` only says whether
    there is one, and every answer the sidecar serves asks it: its pattern is the phrases' trie, so
    the regex engine follows one branch per character instead of trying every phrase at every
    place (1.5-2x faster on answers of 100-300 characters).
    """

    __slots__ = ("phrases", "_first", "_any")

    def __init__(self, phrases: Iterable[str] = REFUSAL_PHRASES) -> None:
        self.phrases = tuple(phrases)
        normal = list(dict.fromkeys(_normal(p) for p in self.phrases if p))
        self._first = re.compile("|".join(map(re.escape, normal))) if normal else None
        self._any = re.compile(_trie(normal)) if normal else None

    def phrase(self, text: str) -> str | None:
        """The refusal phrase ``text`` holds (lower case, straight apostrophes), or None."""
        found = self._first.search(_window(text)) if self._first is not None else None  # phrases are never empty
        return None if found is None else found.group(0)

    def found(self, text: str) -> bool:
        """Whether ``text`` holds a refusal phrase."""
        return self._any is not None and self._any.search(_window(text)) is not None


def _window(text: str) -> str:
    """What is searched for a refusal, normalised: a short text whole, a long one's opening."""
    stripped = text.strip()
    return _normal(stripped if len(stripped) <= _SHORT else stripped[:_OPENING])


def _trie(phrases: list[str]) -> str:
    """A regex matching any of ``phrases`` (non-empty), their shared prefixes factored out."""
    root: dict[str, Any] = {}
    for phrase in phrases:
        node = root
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}  # a phrase ends here

    def build(node: dict[str, Any]) -> str:
        chain = []
        while len(node) == 1 and "" not in node:  # one way on: no group needed
            ch, node = next(iter(node.items()))
            chain.append(re.escape(ch))
        branches = [re.escape(ch) + build(child) for ch, child in node.items() if ch]
        if not branches:
            return "".join(chain)
        alternatives = "(?:" + "|".join(branches) + ")"
        return "".join(chain) + (alternatives + "?" if "" in node else alternatives)

    return build(root)


@lru_cache(maxsize=32)
def refusals(phrases: tuple[str, ...] = REFUSAL_PHRASES) -> Refusals:
    """The compiled :class:`Refusals` of a phrase list."""
    return Refusals(phrases)


def compiled(phrases: Refusals | Iterable[str]) -> Refusals:
    """``phrases`` as :class:`Refusals`: as given when compiled already, else compiled once per list."""
    return phrases if isinstance(phrases, Refusals) else refusals(tuple(phrases))


def refusal_phrase(text: str, phrases: Refusals | Iterable[str] = REFUSAL_PHRASES) -> str | None:
    """The refusal phrase ``text`` holds, or None (see :class:`Refusals`)."""
    return compiled(phrases).phrase(text)


def is_refusal(text: str, phrases: Refusals | Iterable[str] = REFUSAL_PHRASES) -> bool:
    """Whether ``text`` is a refusal (see :class:`Refusals`)."""
    return compiled(phrases).found(text)


def _normal(text: str) -> str:
    return text.lower().replace("\u2019", "'")


def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # what JSON gives: skip the slower Mapping check
        return value
    return value if value is not None and isinstance(value, Mapping) else _NOTHING


_NOTHING: Mapping[str, Any] = MappingProxyType({})


def _first(choices: Any) -> Mapping[str, Any]:
    return _mapping(choices[0]) if isinstance(choices, (list, tuple)) and choices else _NOTHING


def _tool_calls(calls: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(c for c in calls if isinstance(c, Mapping)) if isinstance(calls, (list, tuple)) else ()


def _text(content: Any) -> str:
    """A message content's text: the string, or its text parts joined as they are (no separator,
    as the Anthropic translation joins text blocks); anything else reads as no text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, (list, tuple)):
        return ""
    return "".join(p["text"] for p in content
                   if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str))


def _refusal(message: Mapping[str, Any]) -> str | None:
    """The refusal a model declares in its own field (OpenAI's structured refusals), not in prose."""
    declared = message.get("refusal")
    if isinstance(declared, str) and declared:
        return declared
    content = message.get("content")
    if isinstance(content, (list, tuple)):
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                return str(part["refusal"])
    return None


def _logprobs(value: Any) -> tuple[float, ...] | None:
    """The token logprobs of ``choice.logprobs.content``; tokens without a number are skipped."""
    tokens = _mapping(value).get("content")
    if not isinstance(tokens, (list, tuple)):
        return None
    found = tuple(float(t["logprob"]) for t in tokens if isinstance(t, Mapping) and _is_number(t.get("logprob")))
    return found or None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parsed(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


class AnswerBuilder:
    """Reassembles an OpenAI ``chat.completion`` body from streamed chunk payloads."""

    __slots__ = ("content", "tool_calls", "finish_reason", "model", "usage")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: Mapping[str, Any] | None = None

    def add(self, chunk: Mapping[str, Any]) -> None:
        """Add one chunk payload; pieces of the wrong type (an upstream's bug) are skipped."""
        model, usage, choices = chunk.get("model"), chunk.get("usage"), chunk.get("choices")
        if model and isinstance(model, str):
            self.model = model
        if usage and isinstance(usage, dict):
            self.usage = usage
        for choice in choices if type(choices) is list else ():
            if type(choice) is not dict or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if type(delta) is dict:
                content = delta.get("content")
                if content and type(content) is str:
                    self.content.append(content)
                if delta.get("tool_calls"):
                    self._tool_calls(delta["tool_calls"])
            finish = choice.get("finish_reason")
            if finish and type(finish) is str:
                self.finish_reason = finish

    def _tool_calls(self, calls: Any) -> None:
        for call in calls if type(calls) is list else ():
            if type(call) is not dict:
                continue
            index = call.get("index", 0)
            slot = self.tool_calls.setdefault(index if type(index) is int else 0,
                                              {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            if call.get("id") and type(call["id"]) is str:
                slot["id"] = call["id"]
            fn = call.get("function")
            if type(fn) is dict:
                name, arguments = fn.get("name"), fn.get("arguments")
                slot["function"]["name"] += name if type(name) is str else ""
                slot["function"]["arguments"] += arguments if type(arguments) is str else ""

    @classmethod
    def from_chunks(cls, chunks: list[bytes]) -> dict[str, Any]:
        """The body raw chunk payloads add up to (payloads that are not JSON objects are skipped).

        The payloads are parsed in one go, as the items of one JSON array (one call instead of one
        per payload: 109 against 132 µs in all for 103 chunks); when that fails, or gives another
        number of items (a payload that is not one JSON value), each is parsed alone."""
        try:
            items = json.loads(b"[" + b",".join(chunks) + b"]")
        except ValueError:
            items = None
        if type(items) is not list or len(items) != len(chunks):
            items = [_parsed(chunk) for chunk in chunks]
        builder = cls()
        for data in items:
            if type(data) is dict:
                builder.add(data)
        return builder.body()

    @classmethod
    def for_checks(cls, chunks: list[bytes], response_format: str = "text") -> dict[str, Any]:
        """A body that the quality checks read as they read the whole stream's, parsing as few
        payloads as that allows.

        Only the opening of a long answer counts for a refusal, so once the text passes
        :data:`_SHORT` characters (stripped) the middle of the stream is skipped, and its end is
        read back to the last finish reason given. A stream with tool calls, or one asked for JSON
        (whose check needs every character), is read whole. A 500-token stream is some 500
        payloads, of which this parses about the first 80."""
        if response_format in ("json_object", "json_schema") or b'"tool_calls"' in b"".join(chunks):
            return cls.from_chunks(chunks)  # a JSON string cannot hold the key in its quotes
        builder, chars, head = cls(), 0, len(chunks)
        for index, chunk in enumerate(chunks):
            pieces = len(builder.content)
            data = _parsed(chunk)
            if type(data) is dict:
                builder.add(data)
            if len(builder.content) != pieces:
                chars += sum(map(len, builder.content[pieces:]))
            if chars > _SHORT and len("".join(builder.content).strip()) > _SHORT:
                head = index + 1
                break
        for chunk in reversed(chunks[head:]):  # the last finish reason given, as add() keeps it
            data = _parsed(chunk)
            if type(data) is dict:
                end = cls()
                end.add(data)
                if end.finish_reason is not None:
                    builder.finish_reason = end.finish_reason
                    break
        return builder.body()

    def body(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {"object": "chat.completion", "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}], "usage": self.usage}
