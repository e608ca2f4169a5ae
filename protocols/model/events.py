"""The event catalogue (docs/DESIGN.md): frozen, past-tense values published to subscribers.

Every event has ``ts`` (UTC) and ``seq`` (a per-runtime sequence number, 0 until the
publisher stamps it). Order events carry the order's identity, its status after the
event and, where one exists, the fill or the full report.

Example::

    >>> ev = CircuitOpened(adapter_id="paper", from_state="CLOSED", to_state="OPEN",
    ...                    failure_rate=60.0, slow_call_rate=0.0)
    >>> ev.name
    'CircuitOpened'
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from .base import Frozen, UtcDatetime, utc_now
from .enums import OrderStatus
from .errors import ErrorCode
from .reports import ExecutionReport, Fill


class Event(Frozen):
    """Base of every event: ``ts`` (UTC) and ``seq`` (stamped by the publisher)."""

    ts: UtcDatetime = Field(default_factory=utc_now)
    seq: int = 0

    @property
    def name(self) -> str:
        """The event's class name, e.g. ``OrderFilled``."""
        return type(self).__name__


class OrderEvent(Event):
    """Base of order events: identity, status after the event, optional fill, report and code.

    ``strategy_id``, ``session_id``, ``correlation_id``: the order's attribution (from its
    intent and ``ExecutionContext``), so a subscriber can filter, e.g.
    ``rt.subscribe(cb, lambda e: getattr(e, "strategy_id", "") == "ma-cross")``."""

    client_order_id: str
    account_id: str = ""
    adapter_id: str = ""
    strategy_id: str = ""
    session_id: str = ""
    correlation_id: str = ""
    status: OrderStatus
    fill: Fill | None = None
    report: ExecutionReport | None = None
    code: ErrorCode | None = None
    reason: str = ""


class OrderDenied(OrderEvent):
    """The order was refused before reaching a venue (routing, risk, idempotency, breaker, throttle)."""


class OrderSubmitted(OrderEvent):
    """The order was handed to the venue adapter (its idempotency claim had committed)."""


class OrderAccepted(OrderEvent):
    """The venue acknowledged the order."""


class OrderRejected(OrderEvent):
    """The venue refused the order definitively."""


class OrderFailed(OrderEvent):
    """The order provably never reached the venue and will not be retried."""


class OrderPartiallyFilled(OrderEvent):
    """A fill that leaves quantity working."""


class OrderFilled(OrderEvent):
    """The fill that completed the order."""


class OrderCanceled(OrderEvent):
    """The venue confirmed the cancel."""


class OrderCancelRejected(OrderEvent):
    """The venue refused a cancel; the order keeps its previous status."""


class OrderExpired(OrderEvent):
    """The order's time in force ended with quantity left (IOC/FOK/DAY)."""


class OrderUnknown(OrderEvent):
    """The outcome is ambiguous (timeout after send, adapter crash); reconciliation follows."""


class OrderReconciled(OrderEvent):
    """Reconciliation with the venue proved the order's status (``previous_status`` before it)."""

    previous_status: OrderStatus = OrderStatus.UNKNOWN


class ReconciliationEscalated(OrderEvent):
    """An order in doubt is still unresolved after ``attempts`` lookups at its venue
    (``reconcile.max_attempts``). It stays UNKNOWN with its reservation, lookups go on with
    backoff, and ``Runtime.health()`` lists it until any evidence (a state, a fill) resolves it.
    ``reason`` is the last lookup's answer ("not found ... inside the propagation window", ...)."""

    attempts: int
    unresolved_for_s: float = 0.0


class RemainderResubmitted(OrderEvent):
    """The unfilled remainder of an order that expired partly filled was re-submitted as the child
    order ``child_client_order_id`` for ``remaining_qty`` (base units), within the parent's
    reservation ([orders] remainder = "resubmit")."""

    child_client_order_id: str
    remaining_qty: Decimal


class OverfillDetected(OrderEvent):
    """A fill would push cum_qty above the order quantity; recorded and alerted, not applied."""


class CircuitStateChanged(Event):
    """Base of breaker transitions (resilience4j ``CircuitBreakerOnStateTransitionEvent``)."""

    adapter_id: str
    from_state: str
    to_state: str
    failure_rate: float = -1.0
    slow_call_rate: float = -1.0


class CircuitOpened(CircuitStateChanged):
    """The breaker opened (rates crossed thresholds, a half-open trial failed, or forced)."""


class CircuitHalfOpened(CircuitStateChanged):
    """The open period ended; trial calls are admitted."""


class CircuitClosed(CircuitStateChanged):
    """The breaker closed (trials succeeded, reset, or disabled/enabled by the operator)."""


class AdapterCrashed(Event):
    """A supervised child failed; ``orders_in_doubt`` are now UNKNOWN and will be reconciled."""

    child: str
    error: str
    generation: int = 0
    orders_in_doubt: tuple[str, ...] = ()


class AdapterRestarted(Event):
    """A supervised child was restarted after ``delay_s`` (restart number ``restarts``)."""

    child: str
    generation: int
    restarts: int
    delay_s: float = 0.0


class ChildGaveUp(Event):
    """A child exceeded its restart intensity (N restarts in T s); its routes answer E_EXEC_NO_ADAPTER."""

    child: str
    restarts: int
    within_s: float
    last_error: str = ""


class VenueSessionChanged(Event):
    """A venue's session changed state (FIX: DISCONNECTED, LOGON_SENT, ACTIVE, LOGOUT_SENT)."""

    adapter_id: str
    state: str
    detail: str = ""


class BrokerStateMismatch(Event):
    """``sync_broker_state`` found, ``confirmations`` syncs in a row, that the venue's positions or
    balances differ from the ledger's (each difference as ``"position BTC/USDT: venue 0.4, ledger 0.5"``).
    Nothing was adjusted; ``health()`` is degraded until a sync matches again."""

    adapter_id: str
    differences: tuple[str, ...] = ()


class BrokerStateMatched(Event):
    """A sync matched the ledger again after a ``BrokerStateMismatch`` of ``adapter_id``."""

    adapter_id: str


class TradingStateChanged(Event):
    """The trading state changed (ACTIVE, REDUCING, HALTED), by the operator (``automatic`` False)
    or by a safety rule ([safety]: an adapter outage, a broker-state mismatch); ``reason`` says why."""

    state: str
    previous: str
    reason: str = ""
    automatic: bool = False


class OrderTrackingChanged(Event):
    """Live order tracking of ``adapter_id`` switched schedule: ``polling`` True when the venue's
    event stream went silent (no event for ``tracking.silence_s`` with orders working: fills may be
    missed, so working orders are looked up every ``silent_interval_s``), False when events flow again."""

    adapter_id: str
    polling: bool
    reason: str = ""


class RejectRateSpiked(Event):
    """Alert (settings ``[alerts]``): more than ``threshold`` of the orders finished in the last
    ``window_s`` seconds were REJECTED or DENIED (``rejected`` of ``orders``; ``reject_rate`` a
    fraction). Raised once per episode; ``AlertCleared`` ends it."""

    reject_rate: float
    threshold: float
    orders: int
    rejected: int
    window_s: float


class LatencySpiked(Event):
    """Alert (settings ``[alerts]``): the p99 of the submit-to-answer latencies of the orders
    answered in the last ``window_s`` seconds (``orders``) is ``p99_us`` µs, above ``threshold_us``.
    Raised once per episode; ``AlertCleared`` ends it."""

    p99_us: int
    threshold_us: int
    orders: int
    window_s: float


class AlertCleared(Event):
    """An alert ended: ``alert`` (``"reject_rate"`` or ``"latency_p99"``) is back at or below its
    ``threshold`` (``value`` now, over ``orders`` in the last ``window_s`` seconds)."""

    alert: str
    value: float
    threshold: float
    orders: int
    window_s: float


class SubscriberFailed(Event):
    """A subscriber raised or fell behind; it was isolated and the pipeline went on."""

    subscriber: str
    error: str


class InlineCallOverran(Event):
    """A non-blocking adapter's call (``AdapterCapabilities.blocking = False``), run inline on the
    dispatcher thread, took longer than the adapter's ``inline_budget_us``. An inline call cannot
    be pre-empted, so it is measured and reported; an adapter that overruns often should declare
    itself blocking (its calls then run on a worker thread with a timeout).

    ``call``: ``submit``, ``cancel`` or ``fetch``; ``elapsed_us`` / ``budget_us`` in µs."""

    adapter_id: str
    call: str
    client_order_id: str
    elapsed_us: int
    budget_us: int


class DurableWriteFailed(Event):
    """A durable write failed (``store``: ``audit`` log or ``ledger_journal``): trading is HALTED
    (new orders denied, cancels pass) and the write is retried with backoff; nothing that was not
    written is reported as done. ``pending``: records waiting; ``attempt``: failed tries so far."""

    store: str
    error: str
    pending: int
    attempt: int


class JournalRowRefused(OrderEvent):
    """The ledger journal refused one row of an order (``kind``: ``transition`` or ``fill``;
    ``reason``: the journal's error) for its values, not for a failing disk: a value that entered
    past the models' constraints, a bug where it entered. The rest of the ledger's batch was
    written and trading goes on; this row is not retried (it would be refused at every retry and
    keep trading HALTED for ever, docs/DESIGN.md "What written means"). A refused transition is
    written without its report fields (route, venue order id, attempts, error: ``reason`` then
    ends "written without its report fields"), so the order's status history stays whole; a
    refused fill is not written (the books rebuilt from the journal lack it). The order needs
    an operator; the audit log holds the whole row, followed by a ``journal_row_refused`` line."""

    kind: str


class DurableWriteRecovered(Event):
    """A durable write that had failed went through on a retry (``written`` records); the halt it
    caused is lifted (trading returns to the state it was in before, unless an operator changed it)."""

    store: str
    written: int


ORDER_EVENT_BY_STATUS: dict[OrderStatus, type[OrderEvent]] = {
    OrderStatus.DENIED: OrderDenied,
    OrderStatus.SUBMITTING: OrderSubmitted,
    OrderStatus.ACCEPTED: OrderAccepted,
    OrderStatus.REJECTED: OrderRejected,
    OrderStatus.FAILED: OrderFailed,
    OrderStatus.PARTIALLY_FILLED: OrderPartiallyFilled,
    OrderStatus.FILLED: OrderFilled,
    OrderStatus.CANCELED: OrderCanceled,
    OrderStatus.EXPIRED: OrderExpired,
    OrderStatus.UNKNOWN: OrderUnknown,
}
