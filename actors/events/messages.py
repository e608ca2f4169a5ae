"""Messages the event bus accepts: publish, subscribe, unsubscribe, deliveries.

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protocols import Event


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish an event to subscribers (event bus)."""

    event: Event


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Event bus: add ``callback`` filtered by ``accepts`` under ``token``."""

    token: int
    callback: Callable[[Event], None]
    accepts: Callable[[Event], bool]
    max_pending: int = 10_000


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Event bus: remove subscription ``token``."""

    token: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """Event bus → subscriber actor: one event to hand to the callback."""

    event: Event


@dataclass(frozen=True, slots=True)
class DeliveryDone:
    """Subscriber actor → bus: a delivery finished (``error`` set when the callback raised)."""

    token: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GetBusStats:
    """Ask: event bus counters (published, per-subscriber pending/dropped/failures)."""
