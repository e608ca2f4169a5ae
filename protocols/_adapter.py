"""The venue contract: ``BrokerAdapter`` and the values that cross it (SPEC §11).

A venue adapter is plain, synchronous, possibly blocking code. flowroute never calls
it from an actor's inbox thread: the adapter actor runs each call on the adapter's
worker thread and turns the outcome into a message (SPEC §3). Errors are typed (see
``protocols.AdapterError``): not-delivered, ambiguous, rejected, fatal.

Example (a minimal adapter that accepts everything and never fills)::

    class Nop:
        adapter_id = "nop"
        def submit_order(self, order):
            return VenueOrderState.accepted(order, venue_order_id="n-1")
        ...
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, Literal, Mapping, Protocol, runtime_checkable

from pydantic import Field

from ._enums import OrderStatus, OrderType, Side, TimeInForce
from ._intents import ExecutionContext, OrderIntent
from ._market import Quote, Trade
from ._model import Dec, Frozen, NonNegDec, PosDec, UtcDatetime, construct_valid, utc_now
from ._reports import Fill, summarize_fills


class VenueOrder(Frozen):
    """An order as sent to a venue (FIX NewOrderSingle, MsgType=D).

    ``client_order_id`` (tag 11) is the idempotency key the venue sees; flowroute
    guarantees it is never sent twice unless the venue proved it does not know it.
    """

    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: PosDec
    limit_price: PosDec | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    ts: UtcDatetime = Field(default_factory=utc_now)

    @classmethod
    def from_intent(cls, intent: OrderIntent, context: ExecutionContext) -> "VenueOrder":
        """Build the venue order for ``intent`` under ``context`` (timestamp from the context).

        Every field comes from a validated ``OrderIntent`` / ``ExecutionContext`` field with the
        same or a stricter constraint, so it is built without validating again
        (``construct_valid``; checked field by field against the validating constructor in
        tests/test_contracts.py). A subclass is validated as usual.
        """
        fields = {
            "client_order_id": intent.client_order_id,
            "account_id": context.account_id,
            "symbol": intent.symbol,
            "side": intent.side,
            "order_type": intent.order_type,
            "quantity": intent.quantity,
            "limit_price": intent.limit_price,
            "time_in_force": intent.time_in_force,
            "ts": context.timestamp,
        }
        if cls is VenueOrder and type(intent) is OrderIntent and type(context) is ExecutionContext:
            return construct_valid(VenueOrder, fields, _VENUE_ORDER_FIELDS)
        return cls(**fields)


_VENUE_ORDER_FIELDS = frozenset(VenueOrder.model_fields)


class VenueOrderState(Frozen):
    """What the venue knows about one order (FIX ExecutionReport / OrderStatusRequest answer).

    ``status`` is one of ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED;
    ``fills`` are all fills so far in venue order (each with a unique ``trade_id``);
    ``cum_qty``/``leaves_qty`` in base units, ``avg_px`` in quote currency.
    """

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    status: OrderStatus
    quantity: PosDec
    cum_qty: NonNegDec = Decimal(0)
    leaves_qty: NonNegDec = Decimal(0)
    avg_px: Dec | None = None
    fills: tuple[Fill, ...] = ()
    reject_reason: str | None = None
    ts: UtcDatetime = Field(default_factory=utc_now)

    @classmethod
    def of(
        cls,
        order: VenueOrder,
        *,
        venue_order_id: str,
        status: OrderStatus,
        fills: tuple[Fill, ...] = (),
        reject_reason: str | None = None,
        ts=None,
    ) -> "VenueOrderState":
        """Derive cum_qty, leaves_qty and avg_px from ``fills`` (leaves 0 when terminal)."""
        cum, avg, _fees = summarize_fills(fills)
        leaves = Decimal(0) if status.is_terminal else max(order.quantity - cum, Decimal(0))
        return cls(
            client_order_id=order.client_order_id,
            venue_order_id=venue_order_id,
            symbol=order.symbol,
            side=order.side,
            status=status,
            quantity=order.quantity,
            cum_qty=cum,
            leaves_qty=leaves,
            avg_px=avg,
            fills=fills,
            reject_reason=reject_reason,
            ts=ts if ts is not None else order.ts,
        )


VenueEventKind = Literal["accepted", "rejected", "fill", "canceled", "cancel_rejected", "expired"]


class VenueEvent(Frozen):
    """An execution event pushed by a venue after the submit call returned.

    ``kind`` says what happened; ``state`` is the order's venue state right after it;
    ``fill`` is set for ``kind == "fill"``.
    """

    adapter_id: str
    kind: VenueEventKind
    state: VenueOrderState
    fill: Fill | None = None


EventSink = Callable[[VenueEvent], None]


@runtime_checkable
class BrokerAdapter(Protocol):
    """The contract every venue implements (SPEC §11).

    All methods may block and may raise the typed ``AdapterError`` subclasses:
    ``NotDeliveredError`` (safe to retry), ``AmbiguousError`` (order goes UNKNOWN),
    ``VenueRejectedError`` (final), ``FatalAdapterError`` (final, counts as failure).
    """

    adapter_id: str

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        """Send a new order; return its state right after the venue's acknowledgement."""
        ...

    def cancel_order(self, client_order_id: str) -> VenueOrderState:
        """Cancel an open order; return its state after the cancel (CANCELED or a fill-terminal state).

        Raises ``VenueRejectedError`` when the venue refuses the cancel (unknown or already final).
        """
        ...

    def fetch_order(self, client_order_id: str) -> VenueOrderState | None:
        """The venue's state of the order, or None when the venue proves it does not know it."""
        ...

    def fetch_open_orders(self) -> tuple[VenueOrderState, ...]:
        """All orders still working at the venue."""
        ...

    def fetch_positions(self) -> Mapping[str, Decimal]:
        """Net position per symbol in base units, as the venue books it."""
        ...

    def fetch_account(self) -> Mapping[str, Decimal]:
        """Balance per currency, as the venue books it."""
        ...

    def set_event_sink(self, sink: EventSink | None) -> None:
        """Where to push execution events that happen after a call returned (fills of resting orders)."""
        ...

    def on_market(self, data: Quote | Trade) -> None:
        """Feed market data (simulated venues fill against it; real venues ignore it)."""
        ...

    def close(self) -> None:
        """Release connections and files. Idempotent."""
        ...
