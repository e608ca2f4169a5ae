"""Every message the actors exchange: frozen dataclasses, one place (docs/DESIGN.md, One order).

Commands are imperative (``SubmitOrder``, ``CancelOrder``), facts are past tense
(``VenueCallCompleted``, ``ChildFailed``). Messages are frozen; the only mutable thing
a message may carry is its reply channel (a ``concurrent.futures.Future``), which is
resolved exactly once by the stage that finishes the work.

An order travels forward as one :class:`SubmitOrder`, enriched stage by stage with
``SubmitOrder.evolve``: ``Runtime.submit`` (``route``, ``gate`` from the router's table) →
idempotency store (claimed) → ledger (risk reservation, order recorded) → circuit breaker
(``permit``) → adapter (throttle, venue call on its worker thread) → the future is resolved.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

import pykka

from protocols import (
    ExecutionContext,
    ExecutionReport,
    Event,
    OrderIntent,
    Quote,
    RouteDecision,
    Trade,
    VenueEvent,
    VenueOrderState,
)

_SAME: Any = object()

# ---------------------------------------------------------------------------------------
# The order envelope and order commands
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Submit one intent (the command that flows forward through every stage).

    ``t0_ns`` is ``perf_counter_ns`` at ``Runtime.submit`` (for latency_us); ``attempt``
    counts venue submit attempts so far; ``permit`` is the breaker permit for the
    current attempt; ``arrival_px`` is the touch at intake (for slippage_bps).
    """

    intent: OrderIntent
    context: ExecutionContext
    reply: Future
    t0_ns: int
    route: RouteDecision | None = None
    gate: pykka.ActorRef | None = None
    attempt: int = 0
    permit: Any = None
    arrival_px: Decimal | None = None

    @property
    def client_order_id(self) -> str:
        return self.intent.client_order_id

    @property
    def account_id(self) -> str:
        return self.context.account_id

    def evolve(self, *, intent=_SAME, reply=_SAME, route=_SAME, gate=_SAME, attempt=_SAME, permit=_SAME, arrival_px=_SAME) -> "SubmitOrder":
        """A copy with the given fields changed (``dataclasses.replace`` without its per-call
        introspection; the slots are set through their descriptors, as the frozen ``__init__``
        does with ``object.__setattr__``, at half its cost: every stage of every order evolves)."""
        new = _new_submit(SubmitOrder)
        _set_intent(new, self.intent if intent is _SAME else intent)
        _set_context(new, self.context)
        _set_reply(new, self.reply if reply is _SAME else reply)
        _set_t0(new, self.t0_ns)
        _set_route(new, self.route if route is _SAME else route)
        _set_gate(new, self.gate if gate is _SAME else gate)
        _set_attempt(new, self.attempt if attempt is _SAME else attempt)
        _set_permit(new, self.permit if permit is _SAME else permit)
        _set_arrival(new, self.arrival_px if arrival_px is _SAME else arrival_px)
        return new


_new_submit = object.__new__
(_set_intent, _set_context, _set_reply, _set_t0, _set_route, _set_gate, _set_attempt, _set_permit, _set_arrival) = (
    SubmitOrder.__dict__[name].__set__
    for name in ("intent", "context", "reply", "t0_ns", "route", "gate", "attempt", "permit", "arrival_px")
)
assert tuple(SubmitOrder.__dataclass_fields__) == ("intent", "context", "reply", "t0_ns", "route", "gate", "attempt",
                                                   "permit", "arrival_px"), "SubmitOrder.evolve sets every field: update it"


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel an open order by client order id; ``reply`` gets the resulting report."""

    client_order_id: str
    account_id: str | None
    reply: Future
    t0_ns: int
    adapter_id: str = ""
    gate: pykka.ActorRef | None = None
    #: why the runtime itself cancels (e.g. the open-age limit); "" for a caller's cancel
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RetryOrder:
    """Timer message: resend ``order`` (same client order id) after a not-delivered error."""

    order: SubmitOrder


# ---------------------------------------------------------------------------------------
# Idempotency store
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompleteOrder:
    """Cache the final report for (account_id, client_order_id); ``unknown`` marks it UNKNOWN instead."""

    account_id: str
    client_order_id: str
    report: ExecutionReport
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseClaim:
    """Forget a claim whose order was never sent (retryable denial: breaker, throttle, no adapter)."""

    account_id: str
    client_order_id: str


@dataclass(frozen=True, slots=True)
class FlushJournal:
    """Self-message: commit what is pending now."""


# ---------------------------------------------------------------------------------------
# Ledger
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFinished:
    """The adapter (or a gate) finished the submit of an order with ``report`` (any status)."""

    report: ExecutionReport
    adapter_id: str
    venue_state: VenueOrderState | None = None
    cause: str = ""
    #: the ledger counts it in the order metrics (status, latency, slippage, error code): set
    #: for outcomes of a venue call, so the adapter's thread does no metrics work per order
    metered: bool = False
    #: actors holding messages queued quietly together with this one (the idempotency store's
    #: completion, the breaker's call outcome): the ledger wakes them once it has applied this,
    #: so only one thread wakes on the caller's path (actors/_inbox.py)
    wake_after: tuple = ()


@dataclass(frozen=True, slots=True)
class OrderSent:
    """The order was handed to the venue worker (attempt ``attempt``): status SUBMITTING."""

    client_order_id: str
    account_id: str
    adapter_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """Fact: submit attempt ``attempt`` of an order was not delivered (``code``, ``error``); it is
    retried after ``retry_in_s`` seconds (for the audit: every attempt and its error)."""

    client_order_id: str
    account_id: str
    adapter_id: str
    attempt: int
    code: str
    error: str
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class GuardActed:
    """Fact for the audit: a guard acted on an order without ending it: ``guard`` (``idempotency``,
    ``throttle``, ``breaker``), ``action`` (``replayed``, ``queued``, ``stashed``) and ``detail``."""

    client_order_id: str
    account_id: str
    guard: str
    action: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GetHistory:
    """Ask: flush the audit log, then answer ``(audit_path or None, in-memory records)`` for
    one order (the records only when there is no audit log)."""

    client_order_id: str


@dataclass(frozen=True, slots=True)
class RecordDenied:
    """An order denied before reaching the ledger stage (routing, idempotency, validation)."""

    report: ExecutionReport
    intent: OrderIntent | None
    context: ExecutionContext | None


@dataclass(frozen=True, slots=True)
class VenueEventReceived:
    """A venue pushed an execution event (fill of a resting order, expiry, cancel)."""

    event: VenueEvent


@dataclass(frozen=True, slots=True)
class OrderReconciledWith:
    """Reconciliation asked the venue about an order and got an answer that settles it: ``state``
    (found), or None with ``resent`` (proven absent, re-sent under the same id) or ``absent``
    (proven absent, nothing to re-send from here: the ledger decides)."""

    client_order_id: str
    adapter_id: str
    state: VenueOrderState | None
    resent: bool = False
    absent: bool = False
    #: found by live order tracking (a routine lookup of a working order), not by reconciliation
    tracked: bool = False


@dataclass(frozen=True, slots=True)
class ReconciliationStalled:
    """Adapter → ledger: an order in doubt is still unresolved after ``attempts`` lookups
    (``reconcile.max_attempts``); the ledger escalates it (event, health) while lookups go on."""

    client_order_id: str
    adapter_id: str
    attempts: int
    reason: str
    unresolved_for_s: float


@dataclass(frozen=True, slots=True)
class GetReservations:
    """Ask: the ledger's open reservations (of ``account_id``, or all) as frozen ``Reservation`` values."""

    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetExposure:
    """Ask: an account's ``Exposure`` (reserved, spent, budget)."""

    account_id: str


@dataclass(frozen=True, slots=True)
class FlushWorker:
    """Ask an adapter actor: a ``Future`` resolved once its venue worker has finished every call
    queued before (``Runtime.flush``)."""


@dataclass(frozen=True, slots=True)
class GetEscalated:
    """Ask: the ledger's escalated orders in doubt as ``{client_order_id: attempts}``."""


@dataclass(frozen=True, slots=True)
class MarketData:
    """A quote or trade from the trading process (marks, touch for risk, simulated venues)."""

    data: Quote | Trade


@dataclass(frozen=True, slots=True)
class GetOrder:
    """Ask: the ExecutionReport snapshot of one order, or None."""

    client_order_id: str


@dataclass(frozen=True, slots=True)
class WaitTerminal:
    """Resolve ``reply`` with the order's report once it is terminal (at once if it already is;
    with None when the ledger never saw the order)."""

    client_order_id: str
    reply: Future


@dataclass(frozen=True, slots=True)
class ForgetWait:
    """The caller of a :class:`WaitTerminal` gave up (its timeout passed): drop ``reply``."""

    client_order_id: str
    reply: Future


@dataclass(frozen=True, slots=True)
class ListOrders:
    """Ask: snapshots of all orders (tuple of ExecutionReport)."""


@dataclass(frozen=True, slots=True)
class GetPositions:
    """Ask: tuple of Position, per account (default) or, with ``by_strategy``, per strategy
    (only ``strategy_id``'s when given)."""

    strategy_id: str | None = None
    by_strategy: bool = False


@dataclass(frozen=True, slots=True)
class GetDailyPnl:
    """Ask: tuple of ``DailyPnl`` rows matching the filters (None = any)."""

    day: Any = None
    account_id: str | None = None
    strategy_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetLedgerStats:
    """Ask: a dict of counters and invariant checks from the ledger."""


@dataclass(frozen=True, slots=True)
class SetTradingState:
    """Operator: ACTIVE / REDUCING / HALTED; ``reason`` when it is not the operator's (e.g. the
    supervisor halting after a durable core actor failed). No safety rule resumes from it."""

    state: str
    reason: str = ""


# ---------------------------------------------------------------------------------------
# Circuit breaker (gate) and adapter
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallFinished:
    """Adapter → breaker: the outcome of a permitted venue call (``outcome`` a CallOutcome)."""

    permit: Any
    outcome: Any
    duration_s: float
    client_order_id: str


@dataclass(frozen=True, slots=True)
class BreakerTick:
    """Timer: the breaker's open period may have ended."""

    generation: int


@dataclass(frozen=True, slots=True)
class BreakerCommand:
    """Operator: ``force_open``, ``disable`` or ``reset``."""

    command: str


@dataclass(frozen=True, slots=True)
class GetBreaker:
    """Ask: the breaker snapshot."""


@dataclass(frozen=True, slots=True)
class AdapterChanged:
    """Supervisor → breaker: the adapter actor for this route is ``ref`` (None while restarting)."""

    ref: pykka.ActorRef | None
    generation: int
    gave_up: bool = False
    in_doubt: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExecuteOrder:
    """Breaker → adapter: send this permitted order (passes the throttle first)."""

    order: SubmitOrder


@dataclass(frozen=True, slots=True)
class ExecuteCancel:
    """Breaker → adapter: send this cancel (never waits behind new orders); ``token`` is acked
    with ``CancelTaken`` so the breaker can re-dispatch cancels a crashed adapter never saw."""

    cancel: CancelOrder
    token: int = 0


@dataclass(frozen=True, slots=True)
class CancelTaken:
    """Adapter → breaker: the adapter took cancel ``token`` (it now answers for it)."""

    token: int


@dataclass(frozen=True, slots=True)
class VenueCallCompleted:
    """Worker → adapter: a venue call returned ``result`` or raised ``error`` after ``duration_s``."""

    call_id: int
    result: Any = None
    error: BaseException | None = None
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CallTimedOut:
    """Timer → adapter: call ``call_id`` passed its per-attempt timeout."""

    call_id: int


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


@dataclass(frozen=True, slots=True)
class ChildFailed:
    """A child reports its own failure (from ``on_failure`` or a failed start-up)."""

    child: str
    generation: int
    error: str
    during_startup: bool = False
    details: dict = field(default_factory=dict)
    #: the message a contained failure happened in (the actor goes on), "" for a crash
    contained_in: str = ""


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Timer → supervisor: restart ``child`` (if it is still at ``generation``)."""

    child: str
    generation: int


@dataclass(frozen=True, slots=True)
class GetHealth:
    """Ask: the supervisor's health snapshot."""


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


@dataclass(frozen=True, slots=True)
class CancelFinished:
    """→ ledger: how a cancel ended; the ledger applies it and answers ``cancel.reply``.

    ``outcome``: ``"done"`` (``state`` is the venue's answer), ``"withdrawn"`` (the order was
    still queued here and is now DENIED, never sent), ``"rejected"`` (the venue
    refused: the order keeps its previous status), ``"not_sent"`` (provably never sent:
    likewise), ``"in_doubt"`` (unknown: stays PENDING_CANCEL and is reconciled). ``code``
    and ``reason`` explain anything but ``done``.
    """

    cancel: CancelOrder
    adapter_id: str
    outcome: str
    state: VenueOrderState | None = None
    code: Any = None
    reason: str = ""

    @property
    def client_order_id(self) -> str:
        return self.cancel.client_order_id


@dataclass(frozen=True, slots=True)
class GetJournalStats:
    """Ask: idempotency store counters and the journal's batch statistics."""


@dataclass(frozen=True, slots=True)
class InjectJournalFailure:
    """Test hook: make the next ``n`` journal writes fail (fail-closed checks); ``store``
    ``"ledger"`` or ``"audit"`` when sent to the ledger (there ``n`` = 0 repairs it)."""

    n: int = 1
    store: str = "idempotency"


@dataclass(frozen=True, slots=True)
class Wire:
    """Wiring at boot: set the actor's reference named ``name`` (e.g. ``router``) to ``ref``."""

    name: str
    ref: pykka.ActorRef


@dataclass(frozen=True, slots=True)
class RegisterCore:
    """Boot: the supervisor takes ``ref`` as a core child named ``name``.

    With a ``factory`` the child is watched and restarted: the supervisor tells it
    :class:`Supervise` (so a crash reaches the supervisor through pykka's ``on_failure``), and
    after a crash calls ``factory(generation, inherited)`` for a fresh actor (``inherited``: what
    the crashed actor handed over in ``failure_details()["inherited"]``), then ``rewire(new_ref)``
    so every holder of the old reference gets the new one. Without a factory the child is only
    recorded (it contains its own handler failures)."""

    name: str
    ref: pykka.ActorRef
    factory: Callable[[int, tuple], pykka.ActorRef] | None = None
    rewire: Callable[[pykka.ActorRef], None] | None = None


@dataclass(frozen=True, slots=True)
class Supervise:
    """Supervisor → child: report your failures to ``supervisor`` as child ``name``, generation
    ``generation``."""

    supervisor: pykka.ActorRef
    generation: int
    name: str


@dataclass(frozen=True, slots=True)
class RegisterAdapter:
    """Boot: the supervisor starts and supervises an adapter actor built by ``factory(generation, inherited)``.

    ``inherited``: orders in doubt found by recovery, reconciled by the first generation."""

    name: str
    factory: Callable[[int, tuple], pykka.ActorRef]
    gate: pykka.ActorRef
    inherited: tuple = ()


@dataclass(frozen=True, slots=True)
class GetAdapterRefs:
    """Ask: current adapter actor refs by child name."""


@dataclass(frozen=True, slots=True)
class StopChildren:
    """Ask: mark every adapter child stopped (no more restarts) before shutdown."""


@dataclass(frozen=True, slots=True)
class RestoreLedger:
    """Boot, after a restart: rebuild these journaled orders (``RecoveredOrder``) before any new order."""

    orders: tuple


@dataclass(frozen=True, slots=True)
class SyncBrokerState:
    """Compare every adapter's venue positions and balances with the ledger (``reply`` gets the
    ``BrokerSyncReport``; None: the periodic job)."""

    reply: Future | None = None


@dataclass(frozen=True, slots=True)
class FetchBrokerState:
    """Ledger → router → breaker actor → adapter: fetch the venue's positions and balances for sync ``sync_id``."""

    adapter_id: str
    sync_id: int


@dataclass(frozen=True, slots=True)
class BrokerStateFetched:
    """Adapter (or breaker actor) → ledger: the venue's answer to ``FetchBrokerState`` (``error`` when none)."""

    adapter_id: str
    sync_id: int
    positions: Any = None
    balances: Any = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class SyncTimedOut:
    """Timer → ledger: sync ``sync_id`` ends; adapters that have not answered are unavailable."""

    sync_id: int


@dataclass(frozen=True, slots=True)
class SyncTick:
    """Timer → ledger: run the periodic broker-state sync ([sync] interval_s)."""


@dataclass(frozen=True, slots=True)
class AdapterAvailability:
    """Breaker actor → ledger: the adapter became unavailable (breaker not CLOSED, adapter
    restarting or given up) or available again; ``reason`` says which."""

    adapter_id: str
    available: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OutageCheck:
    """Timer → ledger: has ``adapter_id`` been unavailable since ``since`` (clock seconds) all along?"""

    adapter_id: str
    since: float


@dataclass(frozen=True, slots=True)
class GetTradingStatus:
    """Ask the ledger: ``(state, reason, adapters with a confirmed broker-state mismatch)``."""


@dataclass(frozen=True, slots=True)
class TrackOrders:
    """Ledger → router → breaker actor → adapter: look these working orders up at the venue
    (live order tracking; within the adapter's throttle budget share)."""

    adapter_id: str
    client_order_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TrackTick:
    """Timer → ledger: a live-order-tracking round for ``adapter_id``."""

    adapter_id: str


@dataclass(frozen=True, slots=True)
class OpenAgeCheck:
    """Timer: cancel the orders open longer than ``orders.max_open_age_s`` (ledger)."""


@dataclass(frozen=True, slots=True)
class AlertTick:
    """Timer → ledger: evaluate the alert window (``actors/_alerts.py``)."""


@dataclass(frozen=True, slots=True)
class RetryDurableWrites:
    """Timer → ledger: write again what a failed durable write left (audit lines, journal rows)."""


@dataclass(frozen=True, slots=True)
class GetDurability:
    """Ask the ledger which durable writes are failing (store -> error, attempts, pending)."""


@dataclass(frozen=True, slots=True)
class CompactJournal:
    """Timer → ledger: compact the journal of orders archived longer than the idempotency TTL."""


@dataclass(frozen=True, slots=True)
class QuietCheck:
    """Timer → ledger: look for orders that have gone quiet in SUBMITTING or PENDING_CANCEL."""


@dataclass(frozen=True, slots=True)
class ForwardReconcile:
    """Ledger → router → breaker → adapter: ask the venue about these quiet orders, or, with
    ``resolved``, stop looking them up (other evidence settled them)."""

    adapter_id: str
    client_order_ids: tuple[str, ...]
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class SetPublishing:
    """Runtime → ledger: whether anyone subscribes to order events (skip building them if not)."""

    enabled: bool


@dataclass(frozen=True, slots=True)
class ReturnOrder:
    """Crashed adapter → breaker: this order was never sent (still queued on the worker); re-dispatch it."""

    order: SubmitOrder


@dataclass(frozen=True, slots=True)
class GetTradingState:
    """Ask: the ledger's trading state (ACTIVE / REDUCING / HALTED) as a string."""
