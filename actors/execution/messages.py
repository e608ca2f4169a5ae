"""Messages the adapter actor accepts: venue calls, their completions and timeouts, throttle and reconcile ticks.

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from protocols.model.dataclass_compat import builder

from ..orders.messages import CancelOrder, SubmitOrder


@dataclass(frozen=True, slots=True)
class FlushWorker:
    """Ask an adapter actor: a ``Future`` resolved once its venue worker has finished every call
    queued before (``Runtime.flush``)."""


@dataclass(frozen=True, slots=True)
class ExecuteOrder:
    """Breaker → adapter: send this permitted order (passes the throttle first)."""

    order: SubmitOrder

    @property
    def replies(self) -> tuple[Future, ...]:
        """The order's reply future: the dispatcher marks it queued with this message, as for every
        stage before (``SubmitOrder.reply``), so a caller helping its order runs this hop too and the
        dispatcher's thread is not rung for it (actors/kernel/dispatcher.py ``put_entry``)."""
        return (self.order.reply,)

    @property
    def orders(self) -> tuple[SubmitOrder, ...]:
        """The one order, as :class:`ExecuteOrders` names its orders (a message with ``replies`` has ``orders``)."""
        return (self.order,)


@dataclass(frozen=True, slots=True)
class ExecuteOrders:
    """Breaker → adapter: the permitted orders of one group commit, in order, each handled as its
    own :class:`ExecuteOrder` (``FlowActor.run_each``). Only for two or more orders."""

    orders: tuple[SubmitOrder, ...]

    @property
    def replies(self) -> list[Future]:
        """Each order's reply future (the dispatcher marks each as queued with this message)."""
        return [order.reply for order in self.orders]


@dataclass(frozen=True, slots=True)
class ExecuteCancel:
    """Breaker → adapter: send this cancel (never waits behind new orders); ``token`` is acked
    with ``CancelTaken`` so the breaker can re-dispatch cancels a crashed adapter never saw."""

    cancel: CancelOrder
    token: int = 0


@dataclass(frozen=True, slots=True)
class VenueCallCompleted:
    """Worker → adapter: a venue call returned ``result`` or raised ``error`` after ``duration_s``."""

    call_id: int
    result: Any = None
    error: BaseException | None = None
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class VenueCallsCompleted:
    """Worker → adapter: a group's outcomes (``VenueCallCompleted``, in call order), handed over as
    one message: each runs as its own ``VenueCallCompleted`` would, without a message per call."""

    outcomes: tuple[VenueCallCompleted, ...]


@dataclass(frozen=True, slots=True)
class CallTimedOut:
    """Timer → adapter: call ``call_id`` passed its per-attempt timeout."""

    call_id: int


@dataclass(frozen=True, slots=True)
class ClaimSettled:
    """Idempotency store's thread → adapter: the claim batch of ``ticket`` (an
    ``actors.idempotency.ticket.ClaimTicket``) is durable or failed; its parked orders go on."""

    ticket: Any


@dataclass(frozen=True, slots=True)
class ThrottleTick:
    """Timer → adapter: a throttle slot may have freed; drain the queue."""


@dataclass(frozen=True, slots=True)
class ReconcileOrders:
    """Adapter: ask the venue about these client order ids (UNKNOWN or quiet orders); with
    ``reason="resolved"``: stop looking them up."""

    client_order_ids: tuple[str, ...]
    reason: str = "unknown"


@dataclass(frozen=True, slots=True)
class ReconcileTick:
    """Timer → adapter: run the in-flight check loop."""


#: ``ExecuteOrder(...)`` without the frozen dataclass ``__init__`` (made on every order; protocols/model/dataclass_compat.py)
new_execute_order = builder(ExecuteOrder)
#: ``VenueCallCompleted(...)`` without the frozen dataclass ``__init__`` (made on every order; protocols/model/dataclass_compat.py)
new_venue_call_completed = builder(VenueCallCompleted)
