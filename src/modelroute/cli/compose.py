"""The composition root: which features a sidecar runs, wired together and into the proxy.

The proxy never imports a feature and no feature imports the proxy; this module is the one place
that knows both (``serve``, ``sidecar``, ``demo`` and the tests build their sidecars here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiohttp import web

from modelroute.batch import BatchFeature, PollSettings
from modelroute.contract.features import Feature
from modelroute.proxy import Background, PolicyHolder, Settings, build_app
from modelroute.quality.feature import QualityFeature
from modelroute.ratelimits import RateLimitFeature
from modelroute.spend import SpendFeature


def default_features(batch_poll: PollSettings | None = None, rate_limits: RateLimitFeature | None = None) -> list[Feature]:
    """Every feature, each idle for a policy without its spec section. Batches hold and settle
    what they spend against the budgets of spend control (``batch_poll``: how running batches
    are followed). Rate limits come after spend control: a downgraded decision is the one leased
    for (``rate_limits``: tests give one with their own clock)."""
    spend = SpendFeature()
    return [spend, rate_limits if rate_limits is not None else RateLimitFeature(),
            BatchFeature(spend=spend.hook.batches, poll=batch_poll), QualityFeature()]


def sidecar_app(holder: PolicyHolder, settings: Settings | None = None, background: Iterable[Background] = (),
                rate_limits: RateLimitFeature | None = None, features: Sequence[Feature] | None = None) -> web.Application:
    """``features``: the sidecar's features (default: :func:`default_features` with ``rate_limits``)."""
    return build_app(holder, settings, background, default_features(rate_limits=rate_limits) if features is None else features)
