"""The composition root: which features a sidecar runs, wired together and into the proxy.

The proxy never imports a feature and no feature imports the proxy; this module is the one place
that knows both (``serve``, ``sidecar``, ``demo`` and the tests build their sidecars here).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from modelroute.batch import BatchFeature
from modelroute.contract.features import Feature
from modelroute.proxy import Background, PolicyHolder, Settings, build_app
from modelroute.quality.feature import QualityFeature
from modelroute.spend import SpendFeature


def features() -> list[Feature]:
    """Every feature, each idle for a policy without its spec section. Batches count what they
    spend against the budgets of spend control."""
    spend = SpendFeature()
    return [spend, BatchFeature(spend=spend.hook), QualityFeature()]


def sidecar_app(holder: PolicyHolder, settings: Settings | None = None, background: Iterable[Background] = ()) -> web.Application:
    return build_app(holder, settings, background, features())
