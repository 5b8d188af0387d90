"""What a feature that spends outside a request's admission asks of spend control: batches.

A batch is admitted once, at submission: the worst case of its requests at batch prices is
reserved against every budget that applies (refused with 429 ``budget_exceeded`` when a budget
cannot cover it) and held until the provider finishes the batch, hours later. The hold is an
opaque token the batch keeps in its record, so a sidecar that restarts, or another sidecar
sharing the budget store, can settle it. Settling is idempotent per batch id: the first call
counts the cost and frees the hold, every later one does nothing.

Spend control implements :class:`BatchSpend`; the composition root hands it to the batch feature,
so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from modelroute.contract.hooks import RequestRecord
    from modelroute.policy import CompiledPolicy


@dataclass(frozen=True, slots=True)
class Work:
    """One batched request, as much as its worst-case cost needs."""

    model: str  # the registry model it was routed to
    input_tokens: int  # estimated
    output_tokens: int | None = None  # the most output it may be billed for (max_tokens); None: the model's cap


class BatchSpend(Protocol):
    async def hold(self, policy: CompiledPolicy, headers: Mapping[str, str], work: Sequence[Work], ident: str,
                   seconds: float, replacing: RequestRecord | None = None) -> str | None:
        """Reserve the worst case of ``work`` at batch prices for ``seconds`` (the batch's window),
        against the budgets ``headers`` put it under. Returns the hold's token, None when no budget
        applies. Raises a ClientError (429 ``budget_exceeded``, 503 when the store is down and the
        policy fails closed). ``replacing``: a request deferred to this batch, whose own admission
        reservation is given back first."""
        ...

    async def release(self, policy: CompiledPolicy, token: str | None) -> None:
        """Give a hold back unspent (the batch could not be started)."""
        ...

    async def settle(self, policy: CompiledPolicy, token: str | None, ident: str, usd: Decimal) -> bool:
        """Count ``usd`` against the hold's budgets and free the hold, once per ``ident``. True the
        first time. Raises when the budget store cannot be reached: the caller retries later, so
        nothing is lost and nothing is counted twice."""
        ...
