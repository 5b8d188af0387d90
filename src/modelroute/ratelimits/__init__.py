"""Rate limits that hold across the fleet: a provider's limit is an organisation's, not a pod's.

:class:`RateLimitHook` passes over a model with no room before it is called (the request
overflows to the next model of its chain). Its views of a limit: the policy's ``limits`` (this
sidecar's buckets, :mod:`.state`), the provider's own figures from every answer's headers
(:mod:`.headers`), and, with ``rateLimits.store: shared``, one bucket per provider key and model
in Redis that the whole fleet leases from (:mod:`.shared`). Settings: :mod:`.config`; metrics:
:mod:`.metrics`; the feature and ``GET /v1/ratelimits``: :mod:`.feature`.
"""

from __future__ import annotations

from modelroute.ratelimits.feature import RateLimitFeature
from modelroute.ratelimits.hook import RateLimitHook

__all__ = ["RateLimitFeature", "RateLimitHook"]
