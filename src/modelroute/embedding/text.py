"""What to embed of a request: the part that tells requests apart.

Few-shot prompts repeat a long shared prefix (instructions, worked examples) and put the new
question last; embedding all of it would place every request of one template at nearly the same
point, and the 256-token window of MiniLM would see only the prefix. So the router embeds the
*tail*: the last blank-line-separated paragraph of the last user message, extended backwards by
whole paragraphs until it has at least ``min_chars`` characters, and capped to ``max_chars``
(keeping its start, where a question's subject usually is). A system message is not embedded.

Lines of the tail that the prompt already has before the tail (the template's own lines, such as
``Print only a single choice from "A" or "B" without explanation.`` or ``Answer:``, repeated in
every worked example) are dropped: they are the same for every request of a template, so they
only dilute the question and cost encoder time (routerbench tails: 203 -> 131 characters p50,
embedding 15 -> 10 ms p50 on one core, neighbour quality unchanged within cross-validation noise).
A tail made only of such lines is kept whole.

The same function serves calibration (building the library) and routing, so both see the same text.
"""

from __future__ import annotations

import re

#: Defaults shared by ``modelroute calibrate`` and the embedding strategy.
MIN_CHARS = 48
MAX_CHARS = 1200

_BLANK = re.compile(r"\n\s*\n")


def _lines(paragraph: str) -> list[str]:
    return [line.strip() for line in paragraph.splitlines() if line.strip()]


def discriminating_text(prompt: str, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS) -> str:
    """The tail of ``prompt`` that identifies the request, without the template's repeated lines
    (see the module doc)."""
    paragraphs = [p.strip() for p in _BLANK.split(prompt.strip()) if p.strip()]
    if not paragraphs:
        return ""
    # before[i]: the lines of paragraphs[:i]; a tail starting at i drops the lines found there.
    before: list[set[str]] = [set()]
    for paragraph in paragraphs[:-1]:
        before.append(before[-1] | set(_lines(paragraph)))
    text = ""
    for start in range(len(paragraphs) - 1, -1, -1):
        seen = before[start]
        kept = ["\n".join(line for line in _lines(p) if line not in seen) for p in paragraphs[start:]]
        text = "\n\n".join(p for p in kept if p)
        if len(text) + 2 >= min_chars:
            break
    if not text:
        text = paragraphs[-1]
    return text[:max_chars]
