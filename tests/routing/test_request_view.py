"""The request view: what routing reads, computed once from the body."""

from __future__ import annotations

from modelroute.routing import build_view, estimate_input


def test_view_fields() -> None:
    body = {
        "model": "auto", "stream": True, "stream_options": {"include_usage": True}, "max_completion_tokens": 300,
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}],
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        ],
    }
    view = build_view(body, {"x-modelroute-task": "vision"})
    assert (view.stream, view.include_usage, view.max_tokens, view.tool_count) == (True, True, 300, 2)
    assert (view.response_format, view.has_images, view.task) == ("json_object", True, "vision")
    assert view.prompt_text() == "what is this?"


def test_input_estimate_grows_with_text_and_counts_images() -> None:
    short, _ = estimate_input({"messages": [{"role": "user", "content": "x" * 40}]})
    long, _ = estimate_input({"messages": [{"role": "user", "content": "x" * 4000}]})
    image, has_image = estimate_input({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]})
    assert short == 10 + 4 and long == 1000 + 4
    assert has_image and image >= 85
