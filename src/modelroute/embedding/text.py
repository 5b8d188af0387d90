"""What to embed of a request: the part that tells requests apart.

Few-shot prompts repeat a long shared prefix (instructions, worked examples) and put the new
question last; embedding all of it would place every request of one template at nearly the same
point, and the 256-token window of MiniLM would see only the prefix. So the router embeds the
*tail*: the last blank-line-separated paragraph of the last user message, extended backwards by
whole paragraphs until it has at least ``min_chars`` characters, and capped to ``max_chars``
(keeping its start, where a question's subject usually is). A system message is not embedded.

The same function serves calibration (building the library) and routing, so both see the same text.
"""

from __future__ import annotations

import re

#: Defaults shared by ``modelroute calibrate`` and the embedding strategy.
MIN_CHARS = 48
MAX_CHARS = 1200

_BLANK = re.compile(r"\n\s*\n")


def discriminating_text(prompt: str, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS) -> str:
    """The tail of ``prompt`` that identifies the request (see the module doc)."""
    paragraphs = [p.strip() for p in _BLANK.split(prompt.strip()) if p.strip()]
    if not paragraphs:
        return ""
    taken: list[str] = []
    size = 0
    for paragraph in reversed(paragraphs):
        taken.append(paragraph)
        size += len(paragraph) + 2
        if size >= min_chars:
            break
    text = "\n\n".join(reversed(taken))
    return text[:max_chars]
