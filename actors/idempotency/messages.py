"""Messages the idempotency store accepts: completion and release of claims, journal flushes and stats.

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols import ExecutionReport
from protocols.model.dataclass_compat import builder


@dataclass(frozen=True, slots=True)
class CompleteOrder:
    """Cache the final report for (account_id, client_order_id); ``unknown`` marks it UNKNOWN instead."""

    account_id: str
    client_order_id: str
    report: ExecutionReport
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class CompleteOrders:
    """The completions of one group of venue outcomes (``VenueCallsCompleted``) as one message, each
    handled as its own :class:`CompleteOrder`, in order (committed together, as their claims were)."""

    completions: tuple[CompleteOrder, ...]


@dataclass(frozen=True, slots=True)
class ReleaseClaim:
    """Forget a claim whose order was never sent (retryable denial: breaker, throttle, no adapter)."""

    account_id: str
    client_order_id: str


@dataclass(frozen=True, slots=True)
class FlushJournal:
    """Self-message: commit what is pending now."""


@dataclass(frozen=True, slots=True)
class GetJournalStats:
    """Ask: idempotency store counters and the journal's batch statistics."""


#: ``CompleteOrder(...)`` without the frozen dataclass ``__init__`` (made on every order; protocols/model/dataclass_compat.py)
new_complete_order = builder(CompleteOrder)
