"""Policy: the RoutingPolicy schema, its validation and its compilation. Pure: no I/O, no network.

``compile_text`` / ``compile_policy`` turn a RoutingPolicy document into a :class:`CompiledPolicy`,
the versioned plain-data contract between the operator and the sidecar, or raise
:class:`PolicyError` listing every problem with its field path.
"""

from __future__ import annotations

from typing import Any

import yaml

from modelroute.policy.compile import compile_policy, compile_spec, policy_version, split_document
from modelroute.policy.errors import PolicyError, Problem
from modelroute.policy.model import (
    FORMAT_VERSION,
    ApiKeyRef,
    CompiledPolicy,
    Match,
    ModelSpec,
    Pricing,
    ProviderSpec,
    Route,
)
from modelroute.policy.schema import API_VERSION, KIND, resource_schema, spec_schema
from modelroute.policy.validate import validate_spec

__all__ = [
    "API_VERSION",
    "FORMAT_VERSION",
    "KIND",
    "ApiKeyRef",
    "CompiledPolicy",
    "Match",
    "ModelSpec",
    "PolicyError",
    "Pricing",
    "Problem",
    "ProviderSpec",
    "Route",
    "compile_policy",
    "compile_spec",
    "compile_text",
    "parse_text",
    "policy_version",
    "resource_schema",
    "spec_schema",
    "split_document",
    "validate_spec",
]


def parse_text(text: str) -> dict[str, Any]:
    """Parse a policy document from YAML (or JSON) text. Raises PolicyError."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        raise PolicyError([(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(doc, dict):
        raise PolicyError([("document", "must be a mapping (a RoutingPolicy resource)")])
    return doc


def compile_text(text: str, base_dir: str | None = None) -> CompiledPolicy:
    """Parse, validate and compile policy text; relative paths resolve against ``base_dir``."""
    return compile_policy(parse_text(text), base_dir)
