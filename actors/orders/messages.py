"""Messages the ledger (order manager) accepts, and the order commands that travel the forward-only flow
(``SubmitOrder``, ``CancelOrder``: router → idempotency store → ledger → breaker → adapter).

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

import pykka

from protocols import (
    ErrorCode,
    ExecutionContext,
    ExecutionReport,
    OrderIntent,
    Quote,
    RouteDecision,
    Trade,
    VenueEvent,
    VenueOrderState,
)
from protocols.model.dataclass_compat import KEEP, evolver

from ..breaker.breaker import BreakerPermit

if TYPE_CHECKING:  # the runtime room builds them (start-up recovery, a takeover); the ledger accepts them
    from ..runtime.recovery import RecoveredOrder


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Submit one intent (the command that flows forward through every stage).

    ``t0_ns`` is ``perf_counter_ns`` at ``Runtime.submit`` (for latency_us); ``attempt``
    counts venue submit attempts so far; ``permit`` is the circuit breaker's permit for the
    current attempt (None until the breaker granted one, and again once it is handed back);
    ``route`` and ``breaker`` are the route chosen at intake and its circuit-breaker actor;
    ``arrival_px`` is the touch at intake (for slippage_bps).
    """

    intent: OrderIntent
    context: ExecutionContext
    reply: Future
    t0_ns: int
    route: RouteDecision | None = None
    breaker: pykka.ActorRef | None = None
    attempt: int = 0
    permit: BreakerPermit | None = None
    arrival_px: Decimal | None = None

    @property
    def client_order_id(self) -> str:
        return self.intent.client_order_id

    @property
    def account_id(self) -> str:
        return self.context.account_id

    def evolve(self, *, intent: OrderIntent = KEEP, context: ExecutionContext = KEEP, reply: Future = KEEP,
               t0_ns: int = KEEP, route: RouteDecision | None = KEEP, breaker: pykka.ActorRef | None = KEEP,
               attempt: int = KEEP, permit: BreakerPermit | None = KEEP, arrival_px: Decimal | None = KEEP) -> SubmitOrder:
        """A copy with the given fields changed: ``dataclasses.replace(self, ...)`` at half its cost
        (every stage of every order evolves). Replaced below by the function
        ``protocols.model.dataclass_compat.evolver`` generates for this class."""
        raise NotImplementedError  # pragma: no cover - replaced right after the class


SubmitOrder.evolve = evolver(SubmitOrder)  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel an open order by client order id; ``reply`` gets the resulting report. The router
    fills in ``adapter_id`` and ``breaker`` (the circuit-breaker actor of the order's adapter)."""

    client_order_id: str
    account_id: str | None
    reply: Future
    t0_ns: int
    adapter_id: str = ""
    breaker: pykka.ActorRef | None = None
    #: why the runtime itself cancels (e.g. the open-age limit); "" for a caller's cancel
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderFinished:
    """The adapter (or a circuit breaker) finished the submit of an order with ``report`` (any status)."""

    report: ExecutionReport
    adapter_id: str
    venue_state: VenueOrderState | None = None
    cause: str = ""
    #: the ledger counts it in the order metrics (status, latency, slippage, error code): set
    #: for outcomes of a venue call, so the adapter's thread does no metrics work per order
    metered: bool = False


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
class RemainderChildAnswered:
    """A remainder child order's reply future was resolved (told by the future's done callback,
    from whichever stage answered it). If the ledger still holds the parent's reservation for
    the child (it never reached the ledger: replayed, refused, or answered by a crashed store),
    the reservation is released."""

    client_order_id: str
    report: ExecutionReport | None


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


class CancelOutcome(str, Enum):
    """How a cancel ended (:class:`CancelFinished`), as the ledger applies it.

    ``DONE``: the venue answered (``state`` is its answer). ``WITHDRAWN``: the order was still
    queued here and is now DENIED, never sent. ``REJECTED``: the venue refused the cancel (FIX
    OrderCancelReject): the order keeps its previous status. ``NOT_SENT``: the cancel provably
    never reached the venue: likewise. ``IN_DOUBT``: unknown: the order stays PENDING_CANCEL
    and is reconciled.
    """

    DONE = "done"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True, slots=True)
class CancelFinished:
    """→ ledger: how a cancel ended (a :class:`CancelOutcome`); the ledger applies it and
    answers ``cancel.reply``. ``code`` (an ``ErrorCode``) and ``reason`` explain anything but
    ``DONE`` and ``WITHDRAWN``."""

    cancel: CancelOrder
    adapter_id: str
    outcome: CancelOutcome
    state: VenueOrderState | None = None
    code: ErrorCode | None = None
    reason: str = ""

    @property
    def client_order_id(self) -> str:
        return self.cancel.client_order_id


@dataclass(frozen=True, slots=True)
class HoldTrading:
    """Supervisor: trading HALTED while ``cause`` holds (a durable core child restarting from the
    journal), with ``reason``; the state before comes back when every hold is released."""

    cause: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseTrading:
    """Supervisor: the hold ``cause`` is over (``reason`` goes with the state change)."""

    cause: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RestoreLedger:
    """Boot, after a restart: rebuild these journaled orders before any new order."""

    orders: tuple[RecoveredOrder, ...]


@dataclass(frozen=True, slots=True)
class SyncBrokerState:
    """Compare every adapter's venue positions and balances with the ledger (``reply`` gets the
    ``BrokerSyncReport``; None: the periodic job)."""

    reply: Future | None = None


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
class TrackTick:
    """Timer → ledger: a live-order-tracking round for ``adapter_id``."""

    adapter_id: str


@dataclass(frozen=True, slots=True)
class OpenAgeCheck:
    """Timer: cancel the orders open longer than ``orders.max_open_age_s`` (ledger)."""


@dataclass(frozen=True, slots=True)
class AlertTick:
    """Timer → ledger: evaluate the alert window (``actors/events/alerts.py``)."""


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
class RetentionTick:
    """Timer → ledger: archive and prune what is past its keep time (``[retention]``, actors/audit/retention.py)."""


@dataclass(frozen=True, slots=True)
class QuietCheck:
    """Timer → ledger: look for orders that have gone quiet in SUBMITTING or PENDING_CANCEL."""


@dataclass(frozen=True, slots=True)
class SetPublishing:
    """Runtime → ledger: whether anyone subscribes to order events (skip building them if not)."""

    enabled: bool


@dataclass(frozen=True, slots=True)
class GetTradingState:
    """Ask: the ledger's trading state (ACTIVE / REDUCING / HALTED) as a string."""
