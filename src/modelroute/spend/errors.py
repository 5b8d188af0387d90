"""Errors of spend control, and how they reach the client.

Exception tree::

    ClientError (modelroute.contract.errors)
    ├── BudgetExceeded          429 budget_exceeded: a budget with onExceed reject (or nothing left to
    │                           downgrade to) cannot cover the request's worst-case cost; names the budget
    └── BudgetStoreDown         503 budget_store_unavailable: the shared store (Redis) is unreachable
                                and the policy says failClosed
    StoreUnavailable            raised by a store when it cannot be reached; the hook turns it into
                                BudgetStoreDown (failClosed) or falls back to local accounting (failOpen)

Messages name budgets and windows, never header values that could identify a user beyond the
budget's own scope, and never the store's URL (it may carry a password).
"""

from __future__ import annotations

from modelroute.contract.errors import ClientError


class BudgetExceeded(ClientError):
    status = 429
    type = "budget_exceeded"

    def __init__(self, budget: str, message: str, retry_after: int | None = None) -> None:
        headers = {"retry-after": str(retry_after)} if retry_after else {}
        super().__init__(message, code="budget_exceeded", param=budget, headers=headers)
        self.budget = budget


class BudgetStoreDown(ClientError):
    status = 503
    type = "server_error"

    def __init__(self) -> None:
        super().__init__("the budget store is unreachable and the policy fails closed", code="budget_store_unavailable",
                         headers={"retry-after": "1"})


class StoreUnavailable(Exception):
    """The budget store could not be reached (connection refused, timeout)."""
