"""Batches as a sidecar feature: OpenAI's Files and Batch APIs, Anthropic's Message Batches,
deferred requests, and the background poller that records each batch's cost when it ends.

Spend control is handed in by the composition root as a
:class:`~modelroute.contract.spend.BatchSpend` (budget holds at submission, settled once at the
end); without it batches are not budgeted. ``poll`` sets how the poller follows running batches
(tests make it fast, or drive it round by round with ``poller.run_once``).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from modelroute.batch import message_endpoints, openai_endpoints
from modelroute.batch.deferred import Deferral, answer
from modelroute.batch.metrics import BatchMetrics
from modelroute.batch.poller import PollSettings, Poller
from modelroute.batch.service import Batches
from modelroute.contract.features import BaseFeature, Host, Route
from modelroute.contract.hooks import Hook
from modelroute.contract.spend import BatchSpend


class BatchFeature(BaseFeature):
    def __init__(self, spend: BatchSpend | None = None, poll: PollSettings | None = None) -> None:
        self.batches = Batches(spend)
        self.poller = Poller(self.batches, poll or PollSettings())
        self.service = Deferral(self.batches, self.poller.track)
        self.hooks: Sequence[Hook] = (self.service,)

    def routes(self) -> Sequence[Route]:
        return (*openai_endpoints.routes(self), *message_endpoints.routes(self),
                Route("GET", "/v1/modelroute/deferred/{id}", self.deferred))

    async def start(self, host: Host) -> None:
        await super().start(host)
        self.batches.host = host
        self.batches.metrics = BatchMetrics(host.registry)
        self.poller.start(host)

    async def stop(self) -> None:
        await self.poller.stop()
        await self.batches.close()

    async def deferred(self, request: web.Request) -> web.StreamResponse:
        return await answer(self.batches, self.host, request.match_info["id"])
