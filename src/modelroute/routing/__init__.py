"""Routing: turns a :class:`RequestView` into a :class:`Decision` under a compiled policy.

Strategies are small classes behind one interface (:class:`Strategy`), found by name in
:data:`REGISTRY`; the rules strategy (match blocks and CEL) is built in.
"""

from __future__ import annotations

from modelroute.routing.decision import Decision, Skip
from modelroute.routing.request import RequestView, build_view, content_text, estimate_input
from modelroute.routing.router import AUTO, Router, UnknownModel
from modelroute.routing.rules import Verdict
from modelroute.routing.strategy import REGISTRY, Choice, ModelClient, ModelReply, Review, Reviewer, Strategy, register
import modelroute.routing.strategies  # noqa: F401,E402  registers the classifier, cascade and embedding strategies

__all__ = [
    "AUTO",
    "REGISTRY",
    "Choice",
    "Decision",
    "ModelClient",
    "ModelReply",
    "RequestView",
    "Review",
    "Reviewer",
    "Router",
    "Skip",
    "Strategy",
    "UnknownModel",
    "Verdict",
    "build_view",
    "content_text",
    "estimate_input",
    "register",
]
