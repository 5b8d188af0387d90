"""Batch API routing: OpenAI's Files + Batch API and Anthropic's Message Batches, with every request
routed by the policy as in real time (:mod:`.routing`, :mod:`.messages`), one provider batch per
model (:mod:`.service`, :mod:`.upstream`), the worst case held against budgets at submission, and
the cost at ``pricing.batchDiscount`` recorded once when the provider finishes (:mod:`.poller`),
in records that survive a restart where a budget store is shared (:mod:`.store`); deferred
real-time requests (:mod:`.deferred`). The feature: :mod:`.feature`.
"""

from modelroute.batch.feature import BatchFeature
from modelroute.batch.poller import PollSettings

__all__ = ["BatchFeature", "PollSettings"]
