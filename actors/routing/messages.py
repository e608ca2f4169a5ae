"""Requests the router forwards to one venue's breaker and adapter: broker-state fetches, order tracking, reconciliation.

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FetchBrokerState:
    """Ledger → router → breaker actor → adapter: fetch the venue's positions and balances for sync ``sync_id``."""

    adapter_id: str
    sync_id: int


@dataclass(frozen=True, slots=True)
class TrackOrders:
    """Ledger → router → breaker actor → adapter: look these working orders up at the venue
    (live order tracking; within the adapter's throttle budget share)."""

    adapter_id: str
    client_order_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ForwardReconcile:
    """Ledger → router → breaker → adapter: ask the venue about these quiet orders, or, with
    ``resolved``, stop looking them up (other evidence settled them)."""

    adapter_id: str
    client_order_ids: tuple[str, ...]
    resolved: bool = False
