"""Spend control: budgets reserved before dispatch, shared budget stores (rate limits are
:mod:`modelroute.ratelimits`).

:class:`SpendHook` is the sidecar's request hook (see :mod:`modelroute.contract.hooks`); the rest are
its parts: worst-case estimates (:mod:`.estimate`), calendar
windows (:mod:`.windows`), stores (:mod:`.store` local, :mod:`.redis_store` shared), the ledger
that picks keys and stores (:mod:`.ledger`), and metrics (:mod:`.metrics`). Errors: :mod:`.errors`.
"""

from __future__ import annotations

from modelroute.spend.feature import SpendFeature
from modelroute.spend.hook import SpendHook

__all__ = ["SpendFeature", "SpendHook"]
