"""Batch API routing: files and batches passed through to OpenAI-compatible providers with every line
routed by the policy (:mod:`.routing`), one provider batch per model (:mod:`.service`, :mod:`.upstream`),
batch pricing at ``pricing.batchDiscount`` recorded once, and deferred real-time requests
(:mod:`.deferred`). The feature (its hook and HTTP routes): :mod:`.endpoints`.
"""

from modelroute.batch.endpoints import BatchFeature

__all__ = ["BatchFeature"]
