"""The ledger actor: the order ledger, the position books, pre-trade risk, the audit trail
(the lifecycle table in protocols/model/lifecycle.py, README.md, Features, docs/DESIGN.md).

It is the one owner of every order's lifecycle record, the positions and cash, the risk
engine's reservations and the trading state. On the forward path it is the stage after
the idempotency store: it runs the risk checks, reserves budget, records the order as
RESERVED and forwards it to the adapter's circuit-breaker actor. Everything else arrives
as facts (``OrderSent``, ``OrderFinished``, venue events, reconciliation answers) and is
applied through the lifecycle table; each status change is published as an event,
appended to the audit log and journaled. Queries are asks that return frozen snapshots.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _esc
from pathlib import Path
from typing import Any

import orjson
import pykka
from loguru import logger

from protocols import (
    ORDER_EVENT_BY_STATUS,
    TERMINAL_STATUSES,
    BrokerStateMatched,
    BrokerStateMismatch,
    DurableWriteFailed,
    DurableWriteRecovered,
    ErrorCode,
    ExecError,
    Fill,
    IllegalTransition,
    JournalRowRefused,
    LifecycleState,
    OrderCancelRejected,
    OrderDenied,
    OrderEventType,
    OrderIntent,
    OrderReconciled,
    OrderStatus,
    OrderTrackingChanged,
    OverfillDetected,
    Quote,
    ReconciliationEscalated,
    RemainderResubmitted,
    RouteDecision,
    Trade,
    TradingStateChanged,
    VenueOrderState,
    remainder_client_order_id,
    storable_text,
    utc_now,
)
from protocols._files import fsync_dir, replace_file

from ..audit.log import _data_json
from ..audit.retention import archive_receipts
from ..events.alerts import AlertMonitor
from ..events.messages import Publish
from ..idempotency.messages import CompleteOrder
from ..journal.sqlite import NULL_PARAM, FillRow, OrderEventRow, event_params
from ..kernel.base import FlowActor, internal_error_report, now_ns, resolve, tell
from ..routing.messages import FetchBrokerState, ForwardReconcile, TrackOrders
from ..runtime.recovery import RecoveredOrder, RecoveryOutcome
from ..runtime.sync import AdapterSync, BrokerSyncReport, VenueHoldings
from ..supervision.backoff import backoff_delay
from ..supervision.messages import Wire
from ..testing import InjectJournalFailure, WriteFaults, crash_point
from .books import (
    SYNTHETIC_TRADE_PREFIX,
    FillBooking,
    FillOutcome,
    OrderRecord,
    Transition,
    arrival_price,
    attribution_of,
)
from .hooks import PreTradeCheck, run_hooks
from .lifecycle import OrderTable
from .messages import (
    AdapterAvailability,
    AlertTick,
    AttemptFailed,
    BrokerStateFetched,
    CancelFinished,
    CancelOrder,
    CancelOutcome,
    ClaimRefused,
    CompactJournal,
    ForgetWait,
    GetDailyPnl,
    GetEscalated,
    GetExposure,
    GetHistory,
    GetLedgerStats,
    GetOrder,
    GetPositions,
    GetReservations,
    GuardActed,
    HoldTrading,
    ListOrders,
    MarketData,
    OpenAgeCheck,
    OrderFinished,
    OrderReconciledWith,
    OrderSent,
    OrdersFinished,
    OutageCheck,
    QuietCheck,
    ReconciliationStalled,
    RecordDenied,
    RefusedValues,
    ReleaseTrading,
    RemainderChildAnswered,
    RestoreLedger,
    RetentionTick,
    RetryDurableWrites,
    SetTradingState,
    SubmitOrder,
    SubmitOrders,
    SyncBrokerState,
    SyncTick,
    SyncTimedOut,
    TrackTick,
    VenueEventReceived,
    WaitTerminal,
)
from .portfolio import Portfolio
from .reporting import cancel_error_report, error_report, latency_us
from .risk import RiskEngine, TradingState

#: how restrictive a trading state is (a safety rule only ever moves up this scale)
_RESTRICTION = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class _Sync:
    """One broker-state sync in progress: the reply, the adapters still to answer, the results."""

    __slots__ = ("reply", "waiting", "results", "timer")

    def __init__(self, reply: Any, waiting: set[str]) -> None:
        self.reply = reply
        self.waiting = waiting
        self.results: dict[str, AdapterSync] = {}
        self.timer: Any = None

E = OrderEventType
#: how an order that was in flight at a crash reaches UNKNOWN through the lifecycle table
_TO_UNKNOWN = {
    OrderStatus.INITIALIZED: (E.RESERVED, E.SUBMITTED, E.UNKNOWN),
    OrderStatus.RESERVED: (E.SUBMITTED, E.UNKNOWN),
}
#: cause of the RESERVED transition (free text for people; the amount is the row's typed
#: ``reserved`` column, ``OrderRecord.reserved_at_intake``)
_RESERVED_CAUSE = "reserved at intake"


#: intent metadata of a remainder's child order: the original order, the parent, the child's number
_META_ROOT = "flowroute.remainder_of"
_META_PARENT = "flowroute.parent"
_META_RESUBMIT = "flowroute.resubmit"


def _tell_child_answered(ledger: pykka.ActorRef, child_id: str) -> Callable[[Future], None]:
    """The done callback of a remainder child's reply future: tells ``ledger`` the child was answered
    (runs in the resolving stage's thread; only a tell)."""

    def answered(future: Future) -> None:
        report = None if future.cancelled() or future.exception() is not None else future.result()
        tell(ledger, RemainderChildAnswered(child_id, report))

    return answered


#: statuses live order tracking looks up: working at the venue, no call of ours in flight
_TRACKED = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
#: statuses an open-age limit applies to: the order is working at its venue
_AGED = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL})
#: statuses of an order whose venue outcome is in doubt
_IN_DOUBT = frozenset({OrderStatus.UNKNOWN, OrderStatus.SUBMITTING, OrderStatus.PENDING_CANCEL})
#: statuses watched by the in-flight check loop
#: statuses the quiet check watches (handle_QuietCheck). RESERVED: every RESERVED order has been forwarded
#: to its circuit breaker, and a group-commit venue's first attempt stays RESERVED until its outcome
#: (which carries the SUBMITTED step); one whose outcome never came is found here like a quiet
#: SUBMITTING order. An order legitimately waiting (for its claim's COMMIT, a venue group, the
#: throttle, an adapter restart) is still in the adapter's or the breaker's hands: it is not looked up
_WATCHED = frozenset({OrderStatus.RESERVED, OrderStatus.SUBMITTING, OrderStatus.PENDING_CANCEL})
_UNKNOWN_EXIT = {
    OrderStatus.ACCEPTED: E.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: E.PARTIALLY_FILLED,
    OrderStatus.FILLED: E.FILLED,
}
#: statuses whose audit line carries the order's error code and reason
_ERROR_STATUSES = frozenset({OrderStatus.DENIED, OrderStatus.REJECTED, OrderStatus.FAILED, OrderStatus.UNKNOWN})
#: terminal statuses counted as refused by the reject-rate alert
_REFUSED = frozenset({OrderStatus.REJECTED, OrderStatus.DENIED})
_STATUS_EVENT = {
    OrderStatus.UNKNOWN: E.UNKNOWN,
    OrderStatus.FAILED: E.FAILED,
    OrderStatus.REJECTED: E.REJECTED,
    OrderStatus.DENIED: E.DENIED,
}


@dataclass(frozen=True)
class LedgerHandover:
    """What a crashed ledger hands its next generation besides the journal: the trading state
    and why (the operator's or a rule's, with the causes and holds that keep it), the callers of
    ``Runtime.wait`` (their futures) and the escalated orders. None of it is books: the books
    come from the journal (docs/DESIGN.md "Failure handling")."""

    state: str
    reason: str
    auto_state: str | None
    auto_causes: dict
    holds: dict
    resume_to: str | None
    waiters: dict
    escalated: dict
    down_since: dict
    publishing: bool
    #: the last quote or trade per symbol: the touch and the marks (market data, not books)
    marks: tuple = ()
    #: the remainder children on their way through the idempotency store: ``(child id, risk book,
    #: parent id, the parent's reservation left for the child, child intent)``. The journal ends
    #: the parent's reservation with the parent (EXPIRED); the next generation holds it again, so
    #: the child arriving there lives within it, unchecked, as it would have here
    held: tuple = ()
    #: the refused rows, claims and shared-budget values no operator acknowledged yet (``health()``:
    #: they outlive a ledger restart)
    refused_rows: dict = field(default_factory=dict)
    refused_claims: dict = field(default_factory=dict)
    refused_budget: dict = field(default_factory=dict)
    #: orders this ledger took in and forwarded before their claim's COMMIT returned, whose claim
    #: ticket was not settled durable at the crash: ``(intent, context, adapter id)`` each. A restart
    #: reads only committed claims, so the next generation rebuilds these from the message and the
    #: ledger journal's rows (``journaled_orders(..., pending=)``): their later facts then match
    in_window: tuple = ()


_RESERVED = OrderStatus.RESERVED
_EMPTY = '""'
#: what a journal raises for a value it refuses (``JournalStore``: bad input, nothing written), as
#: against a write that failed (``JournalError``): the row, not the disk
_REFUSED_INPUT = (ValueError, TypeError, OverflowError)


def _event_row(row_type: type, rec: OrderRecord, t: Transition) -> Any:
    """The journal row of transition ``t`` of ``rec`` (``OrderEventRow``): the transition, the
    reservation on a RESERVED row, and the report fields as typed columns (the route and arrival
    price on the first row; the venue order id, attempts and error as they are now on every row),
    so an order rebuilt from the journal reports what it reported before (:func:`_restore_report_fields`)."""
    first = t.seq == 1
    route = rec.route if first else None
    error = rec.error
    # positional, in OrderEventRow's field order; enum values by ``_value_``, not the ``value``
    # property (its descriptor costs more than the rest of the row)
    return row_type(
        t.seq, t.ts.timestamp(), rec.account_id, rec.client_order_id, t.from_status._value_, t.to_status._value_,
        t.cause[:500], rec.reserved_at_intake if t.to_status is _RESERVED else None,
        None if route is None else route.route_id, None if route is None else route.routing_reason,
        rec.arrival_px if first else None, rec.venue_order_id, rec.attempts,
        None if error is None else error.code._value_, None if error is None else error.message,
        None if error is None else error.retry_after_s)


def _event_params(rec: OrderRecord, t: Transition) -> tuple:
    """``event_params(_event_row(OrderEventRow, rec, t))`` (``actors/journal/sqlite.py``) made
    straight from the record, without the row object: what the ledger's batch hands
    ``SQLiteJournal.record_ledger_params``. An order with an error takes the row (and its checks):
    rare, and its ``retry_after_s`` is whatever the error says."""
    if rec.error is not None:
        return event_params(_event_row(OrderEventRow, rec, t))
    n = NULL_PARAM
    vid = rec.venue_order_id
    route_id: str | int = n
    reason: str | int = n
    px: str | int = n
    if t.seq == 1:
        route = rec.route
        if route is not None:
            route_id, reason = route.route_id, route.routing_reason
        if rec.arrival_px is not None:
            px = str(rec.arrival_px)
    reserved = rec.reserved_at_intake if t.to_status is _RESERVED else None
    return (t.seq, t.ts.timestamp(), rec.account_id, rec.client_order_id, t.from_status._value_, t.to_status._value_,
            t.cause[:500], n if reserved is None else str(reserved), route_id, reason, px, n if vid is None else vid,
            rec.attempts, n, n, n)


_dumps = orjson.dumps


def _ts_json(ts: datetime) -> str:
    """``json.dumps(ts.isoformat())``: a time as the JSON string the audit line holds. A UTC
    ``datetime`` (the runtime's clocks stamp every transition so) is written by orjson, which
    writes it exactly as ``isoformat()`` does (``+00:00``; no fraction when the microseconds are
    0), in ~0.3 µs instead of ~1.2 (four or five times per order: each transition's and fill's
    line, each fill's row); any other time, a subclass or another zone, by ``isoformat()``.
    Held to ``isoformat()`` by ``tests/audit/test_ledger_lines.py`` and
    ``tests/orders/test_ledger_row_params.py``."""
    if ts.tzinfo is UTC and type(ts) is datetime:
        return _dumps(ts).decode()
    return f'"{ts.isoformat()}"'


def _transition_line(rec: OrderRecord, t: Transition) -> str:
    """``_data_json(LedgerActor._transition_data(rec, t))`` (``actors/audit/log.py``): the audit line's
    data of a transition as canonical JSON text, written straight from the record (keys in sorted
    order, each string escaped by ``json``'s own ASCII escaper, as ``json.dumps(ensure_ascii=True)``
    does) without the dict, its type check and orjson's sort. The rare lines (a slippage cap, an
    error) take the dict. Held to it by ``tests/audit/test_ledger_lines.py``."""
    to = t.to_status
    if (to in _ERROR_STATUSES and rec.error is not None) or (to is _RESERVED and rec.price_capped_from is not None):
        return _data_json(LedgerActor._transition_data(rec, t))
    reserved = rec.reserved_at_intake if to is _RESERVED else None
    res = "" if reserved is None else f'"reserved":{_esc(str(reserved))},'
    if t.seq != 1:
        return (f'{{"account_id":{_esc(rec.account_id)},"cause":{_esc(t.cause)},"client_order_id":{_esc(rec.client_order_id)},'
                f'"from":"{t.from_status._value_}",{res}"seq":{t.seq},"to":"{to._value_}","ts":{_ts_json(t.ts)}}}')
    route = rec.route
    limit = rec.limit_price
    if rec.strategy_id or rec.session_id or rec.correlation_id:  # the first line holds all three (rec.attribution)
        corr, sess = f'"correlation_id":{_esc(rec.correlation_id)},', f'"session_id":{_esc(rec.session_id)},'
        strat = f'"strategy_id":{_esc(rec.strategy_id)},'
    else:
        corr = sess = strat = ""
    return (f'{{"account_id":{_esc(rec.account_id)},"adapter_id":{_esc(rec.adapter_id)},"cause":{_esc(t.cause)},'
            f'"client_order_id":{_esc(rec.client_order_id)},{corr}"from":"{t.from_status._value_}",'
            f'"limit_price":{"null" if limit is None else _esc(str(limit))},"order_type":"{rec.order_type._value_}",'
            f'"quantity":{_esc(str(rec.quantity))},{res}"route_id":{_esc(route.route_id) if route else _EMPTY},'
            f'"routing_reason":{_esc(route.routing_reason) if route else _EMPTY},"seq":{t.seq},{sess}"side":"{rec.side._value_}",'
            f'{strat}"symbol":{_esc(rec.symbol)},"time_in_force":{_esc(rec.time_in_force)},"to":"{to._value_}","ts":{_ts_json(t.ts)}}}')


def _fill_line(rec: OrderRecord, fill: Fill) -> str:
    """``_data_json(LedgerActor._fill_data(rec, fill))``, written as :func:`_transition_line` writes
    a transition's (held to it by ``tests/audit/test_ledger_lines.py``)."""
    strategy = f'"strategy_id":{_esc(rec.strategy_id)},' if rec.strategy_id else ""
    return (f'{{"account_id":{_esc(rec.account_id)},"client_order_id":{_esc(rec.client_order_id)},"fee":{_esc(str(fill.fee))},'
            f'"fee_currency":{_esc(fill.fee_currency)},"liquidity":"{fill.liquidity._value_}","price":{_esc(str(fill.price))},'
            f'"qty":{_esc(str(fill.qty))},"side":"{rec.side._value_}",{strategy}"symbol":{_esc(rec.symbol)},'
            f'"trade_id":{_esc(fill.trade_id)},"ts":{_ts_json(fill.ts)}}}')


def _bare_event_row(rec: OrderRecord, t: Transition) -> OrderEventRow:
    """The journal row of transition ``t`` of ``rec`` without the report fields (route, arrival
    price, venue order id, attempts, error) and with its cause made encodable: what the ledger
    writes for a transition whose full row the journal refused (``LedgerActor._write_isolating``)."""
    return OrderEventRow(t.seq, t.ts.timestamp(), rec.account_id, rec.client_order_id, t.from_status._value_,
                         t.to_status._value_, storable_text(t.cause[:500]),
                         rec.reserved_at_intake if t.to_status is _RESERVED else None)


def _fill_row_params(rec: OrderRecord, fill: Fill) -> tuple:
    """``_fill_params(FillRow(...))`` of a fill of ``rec`` (``actors/journal/sqlite.py``), made
    straight from the record and the fill, as :func:`_event_params` makes its rows."""
    return (rec.adapter_id or "?", fill.trade_id, rec.account_id, rec.client_order_id, rec.symbol, rec.side._value_,
            format(fill.qty, "f"), format(fill.price, "f"), format(fill.fee, "f"), fill.fee_currency,
            fill.liquidity._value_, _ts_json(fill.ts)[1:-1])


def _restore_report_fields(rec: OrderRecord, rows: tuple, adapter_id: str) -> None:
    """Give ``rec`` (rebuilt from the journal) the report fields its rows journaled (see
    :func:`_event_row`): route and arrival price from the first row, the latest venue order id
    and error, the most attempts. Rows from before these columns leave them as they are."""
    first = rows[0] if rows and rows[0].seq == 1 else None
    if first is not None:
        if first.route_id is not None:
            rec.route = RouteDecision(route_id=first.route_id, adapter_id=adapter_id, routing_reason=first.routing_reason or "")
        if first.arrival_px is not None:
            rec.arrival_px = first.arrival_px
    for row in rows:
        if row.venue_order_id is not None:
            rec.venue_order_id = row.venue_order_id
        if row.attempts is not None and row.attempts > rec.attempts:
            rec.attempts = row.attempts
        if row.error_code is not None:
            rec.error = ExecError.of(ErrorCode(row.error_code), row.error_message or "", retry_after_s=row.error_retry_after_s)

class LedgerActor(FlowActor):
    """Owns orders, positions, risk and the audit trail; see the module docstring.

    Supervised (docs/DESIGN.md "Failure handling"): a handler that raises stops it; the
    supervisor starts a new generation with ``restore_from`` (a callable returning the journaled
    orders, ``actors.runtime.recovery.journaled_orders``; given the handover's ``in_window``
    orders, taken in before their claim's COMMIT, it rebuilds those whose claim it cannot read yet) and the crashed one's
    :class:`LedgerHandover` (``inherited``); it replays the journal in ``start_child``, before
    any message, and the messages queued to the crashed generation are redelivered after it.

    ``router`` receives cancels (with their adapter id); ``bus`` receives events;
    ``audit`` is an ``AuditLog`` or None; ``journal_factory`` builds a ``JournalStore``
    in this thread for order events and fills (None: not journaled); ``pnl``: keyword
    arguments of ``PnlAttribution`` (``day_start``, ``timezone``: the ``[pnl]`` settings).
    """

    crash_on_error = True
    answer_on_crash = True
    keeps_mailbox = True

    def __init__(
        self,
        *,
        risk: RiskEngine,
        bus: pykka.ActorRef,
        idempotency: pykka.ActorRef | None = None,
        instruments: dict | None = None,
        audit_factory: Any = None,
        journal_factory: Any = None,
        metrics: Any = None,
        clock: Any = None,
        shadow_adapters: frozenset[str] = frozenset(),
        quiet_interval_s: float = 1.0,
        quiet_threshold_s: float = 5.0,
        pnl: dict | None = None,
        receipts_path: Any = None,
        refused_path: Any = None,
        alerts: Any = None,
        hooks: tuple = (),
        max_open_age_s: float | None = None,
        remainder: str = "partial_success",
        max_resubmits: int = 0,
        adapter_ids: tuple[str, ...] = (),
        sync: Any = None,
        safety: Any = None,
        tracking: dict | None = None,
        keep_terminal: int = 10_000,
        compact_interval_s: float = 300.0,
        ttl_s: float = 3600.0,
        retention: Any = None,
        router: pykka.ActorRef | None = None,
        restore_from: Callable[..., list] | None = None,
        inherited: tuple = (),
        **kw,
    ) -> None:
        super().__init__(clock=clock, **kw)
        #: a restarted generation: the journaled orders to replay at start, and the crashed one's handover
        self._restore_from = restore_from
        self._handover: LedgerHandover | None = next((h for h in inherited if isinstance(h, LedgerHandover)), None)
        #: trading holds (``HoldTrading``): cause -> reason; trading is HALTED while any is held
        self._holds: dict[str, str] = {}
        #: the trading state to return to once every hold is released (None: a hold did not halt it)
        self._hold_resume: TradingState | None = None
        #: bounded memory (docs/DESIGN.md "Durability"): terminal orders beyond the most recent
        #: ``keep_terminal`` are archived in the ledger journal and leave memory; the journal of
        #: orders archived longer than ``ttl_s`` is compacted every ``compact_interval_s``
        self._compact_interval_s = compact_interval_s
        self._ttl_s = ttl_s
        self._archiving = False
        #: the order table (the lifecycle part): orders by id, the terminal ones due to leave memory,
        #: the totals of the archived ones; ``_orders`` is its dict, read directly on the hot path
        self._table = OrderTable(keep_terminal=keep_terminal)
        self._compact_timer = None
        #: the periodic retention run (``actors.audit.retention.RetentionJob``; None: only at start)
        self._retention = retention
        self._retention_timer = None
        #: fail closed on durable writes (docs/DESIGN.md "Durability"): store ("audit",
        #: "ledger_journal") -> {"error", "attempts", "pending"} while its write is failing
        self._write_failures: dict[str, dict[str, Any]] = {}
        #: the journal rows refused for their values (_row_refused), the idempotency claims
        #: (ClaimRefused) and the shared budget's values (_budget_refused) no operator acknowledged
        #: yet: count and the last one (health())
        self._refused_rows: dict[str, Any] = {}
        self._refused_claims: dict[str, Any] = {}
        self._refused_budget: dict[str, Any] = {}
        #: where they are kept across a runtime restart (``state_dir/refused.json``; None: memory only)
        self._refused_path = refused_path
        #: the trading state to return to once every failed write went through (None: we did not halt)
        self._state_before_halt: TradingState | None = None
        self._retry_timer = None
        self._retry_rng = random.Random(0)
        #: ledger journal rows and fills a failed write left behind (written before any newer ones)
        self._backlog_rows: list[tuple] = []
        self._backlog_fills: list[tuple] = []
        #: the testing seam's injected write failures (actors/testing: inert unless a test arms it)
        self._faults = WriteFaults()
        #: pre-trade hooks (actors/orders/hooks.py), run after the built-in risk rules; empty = no cost
        self._hooks = tuple(hooks)
        #: orders.max_open_age_s: open orders are canceled at their venue past this age (None: never)
        self._max_open_age_s = max_open_age_s
        #: client order id -> clock time it became open, in that order (the oldest first)
        self._open_since: dict[str, float] = {}
        self._age_timer = None
        #: orders.remainder == "resubmit": the forwarded order of each open order (to derive a child
        #: from), and the children announced but not yet back from the idempotency store
        self._resubmit = remainder == "resubmit"
        self._max_resubmits = max_resubmits
        self._resubmittable: dict[str, SubmitOrder] = {}
        #: child id -> (risk book, parent id, child intent): the remainder children on their way through the
        #: idempotency store, whose parents' reservations wait for them (_resubmit_remainder, _submit_child)
        self._held: dict[str, tuple[str, str, OrderIntent]] = {}
        #: orders forwarded before their claim's COMMIT, by claim ticket, until the ticket is settled
        #: durable (or, failed, their orders ended): handed over on a crash (``LedgerHandover.in_window``)
        self._in_window: dict[Any, list[SubmitOrder]] = {}
        #: broker-state sync ([sync]; actors/runtime/sync.py): the books each venue should hold, syncs running
        self._adapter_ids = tuple(adapter_ids)
        self._sync_settings = sync
        self._venue_books = VenueHoldings(tolerance=sync.tolerance, confirmations=sync.confirmations, baseline=sync.baseline) \
            if sync is not None else VenueHoldings()
        self._syncs: dict[int, _Sync] = {}
        self._sync_ids = 0
        self._sync_timer = None
        self._mismatched: dict[str, tuple[str, ...]] = {}  # adapter -> confirmed differences
        #: automatic trading state ([safety]): why the state is what it is, which causes hold it
        self._safety = safety
        self._state_reason = ""
        self._auto_state: TradingState | None = None  # the state a safety rule set (None: the operator's)
        self._auto_causes: dict[str, str] = {}  # "outage:<adapter>" | "mismatch:<adapter>" -> reason
        self._down_since: dict[str, tuple[float, str]] = {}  # adapter -> (clock time it went down, why)
        #: live order tracking ([tracking], per adapter): working orders by adapter, each with the
        #: clock time it was last looked up (insertion order = least recently looked up first)
        self._tracking = {a: t for a, t in (tracking or {}).items() if t.enabled} if clock is not None else {}
        self._working: dict[str, dict[str, float]] = {a: {} for a in self._tracking}
        self._heard: dict[str, float] = {}  # adapter -> last venue event (or when orders started working)
        self._polling: set[str] = set()  # adapters whose event stream is silent: tight schedule
        self._track_timers: dict[str, Any] = {}
        self._clock = clock
        #: the time a transition, report or receipt is stamped with: the injected clock's (UTC)
        self._now: Callable[[], datetime] = clock.now if clock is not None else utc_now
        self._shadow_adapters = frozenset(shadow_adapters)
        self._quiet_interval_s = quiet_interval_s
        self._quiet_threshold_s = quiet_threshold_s
        self._watched: dict[str, float] = {}
        #: orders in doubt whose reconciliation escalated (client order id -> lookups); see health()
        self._escalated: dict[str, int] = {}
        self._publishing = False
        self._quiet_timer = None
        self._risk = risk
        if risk.shared is not None:  # the PostgreSQL shared budget's refused values: health().refused_budget
            risk.shared.on_refused = self._budget_refused
        self._bus = bus
        self._idempotency = idempotency
        self._router: pykka.ActorRef | None = router
        self._instruments = instruments or {}
        self._audit_factory = audit_factory
        self._journal_factory = journal_factory
        self._audit = None
        #: a JournalStore built by ``journal_factory``; one that archives (SQLiteJournal,
        #: MemoryJournal) also has load_archive/load_archived/compact, found by ``start_child``
        self._journal: Any = None
        self._metrics = metrics
        self._orders: dict[str, OrderRecord] = self._table.orders
        #: positions, cash, per-strategy PnL (the pure portfolio part; the one fill-booking rule)
        self._portfolio = Portfolio(**(pnl or {}))
        #: raw venue receipts (``[retention] keep_receipts``): every venue answer as received, one JSON line each
        self._receipts_path = receipts_path
        self._receipts_fd: int | None = None
        self._pending_receipts: list[tuple] = []
        #: reject-rate and latency alerts (``[alerts]``); None without settings or a clock
        self._alerts = AlertMonitor(window_s=alerts.window_s, min_orders=alerts.min_orders, reject_rate=alerts.reject_rate,
                                    latency_p99_us=alerts.latency_p99_us) if alerts is not None and clock is not None else None
        self._alert_interval_s = alerts.interval_s if alerts is not None else 0.0
        self._alert_timer = None
        self._touch: dict[str, Quote] = {}
        #: the last quote or trade per symbol (the marks; handed to a restarted generation)
        self._marks: dict[str, Quote | Trade] = {}
        self._errors: Counter[str] = Counter()
        self._duplicates_denied = 0
        self._unknown_resolved = 0
        self._ever_unknown: set[str] = set()
        self._overfills = 0
        self._unmatched_venue_events = 0
        #: transitions and fills go to the audit log and the ledger journal (if either exists)
        self._recording = False
        self._pending_rows: list[tuple] = []
        self._pending_fills: list[tuple] = []
        #: the audit lines of the batch in the order they happened: ("transition", rec, t),
        #: ("fill", rec, fill) or (kind, None, data) for the rest (attempts, guard denials, operator acts)
        self._pending_audit: list[tuple] = []
        #: callers of ``Runtime.wait``: client order id -> futures resolved when the order is terminal
        self._waiters: dict[str, list] = {}
        #: while a ``SubmitOrders`` runs: the approved orders per circuit breaker, told when it is done
        self._onward: list | None = None
        #: a batch message's orders are being handled: its rows are written once it is done (_idle)
        self._batching = False
        #: a change inside a batch message asked for the group commit (a denial, not a deferred RESERVED row)
        self._flush_due = False

    def handle__Ping(self, message: Any) -> bool:
        """Barrier (``Runtime.flush``): the batch this ledger still holds — transition and fill rows,
        audit lines, orders due for archiving; deferred while orders kept coming — is written
        first, so after a flush the journal, the audit log and the in-memory bound are current."""
        if self._pending_rows or self._pending_fills or self._pending_audit:
            self._flush()
        return True

    def on_receive(self, message: Any) -> Any:
        result = super().on_receive(message)
        shared = self._risk.shared
        if shared is not None and shared.pending and self.actor_inbox.empty():
            # a release deferred behind a query must not hold the fleet's budget until the next order
            shared.flush()
        return result

    # -- lifecycle ---------------------------------------------------------------------
    def start_child(self) -> None:
        self._arm_sync_tick()
        if self._audit_factory is not None:
            self._audit = self._audit_factory()
        if self._journal_factory is not None:
            self._journal = self._journal_factory()
        if self._receipts_path is not None:
            self._receipts_fd = os.open(self._receipts_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._load_refused()
        self._recording = self._audit is not None or self._journal is not None
        # a journal that can archive (SQLiteJournal) lets terminal orders leave memory
        self._archiving = self._journal is not None and callable(getattr(self._journal, "load_archived", None))
        if self._archiving and self._clock is not None:
            self._arm_compaction()
        self._arm_retention()
        if self._restore_from is not None:
            pending = self._handover.in_window if self._handover is not None else ()
            self._replay_journal(self._restore_from(pending) if pending else self._restore_from())

    def _replay_journal(self, orders: list[RecoveredOrder]) -> None:
        """A restarted generation rebuilds the books from the journal (orders, transitions, fills,
        reservations), resumes watching the open orders, then takes the crashed one's handover. An
        order claimed but never booked (no transition) is left out: its ``SubmitOrder`` is still
        queued (redelivered) or was answered when the crash happened. Raises whatever the journal
        raises: a start-up failure, so the supervisor retries (trading stays HALTED meanwhile)."""
        restored = 0
        for order in orders:
            if not order.transitions:
                continue
            self._restore(order)
            restored += 1
            rec = self._orders.get(order.intent.client_order_id)
            if rec is not None and not rec.status.is_terminal and self._clock is not None:
                if rec.status in _WATCHED:
                    self._watched[rec.client_order_id] = self._clock.monotonic()
                    self._arm_quiet_check()
                if self._max_open_age_s is not None:
                    self._track_open_age(rec)
                if self._tracking:
                    self._track_working(rec)
        self._flush(archive_all_due=True)
        h = self._handover
        if h is not None:
            self._handover = None
            self._waiters = {k: list(v) for k, v in h.waiters.items()}
            for cl_id in list(self._waiters):  # finished while the ledger was down: answer now
                rec = self._orders.get(cl_id)
                if rec is not None and rec.status.is_terminal:
                    for reply in self._waiters.pop(cl_id):
                        self._answer_wait(reply, rec)
            for data in h.marks:
                self.handle_MarketData(MarketData(data))
            for child_id, book, parent_id, amount, intent in h.held:
                if child_id in self._orders or not amount:  # booked already (its own reservation restored), or nothing left
                    continue
                # the parent's reservation, ended by the journal with the parent, held again for the child
                self._risk.restore_reservation(book, intent.model_copy(update={"client_order_id": parent_id}), amount)
                self._held[child_id] = (book, parent_id, intent)
            self._escalated = dict(h.escalated)
            self._refused_rows, self._refused_claims = dict(h.refused_rows), dict(h.refused_claims)
            self._refused_budget = dict(h.refused_budget)
            self._down_since = dict(h.down_since)
            self._publishing = h.publishing
            self._auto_causes = dict(h.auto_causes)
            self._auto_state = TradingState(h.auto_state) if h.auto_state else None
            self._holds = dict(h.holds)
            self._hold_resume = TradingState(h.resume_to) if h.resume_to else None
            state = TradingState(h.state)
            if state is not self._risk.state:
                self._set_trading_state(state, h.reason, automatic=True)
            self._state_reason = h.reason
        logger.warning("{} g{} rebuilt {} order(s) from the journal", self.child_name, self.generation, restored)

    def _prune_window(self) -> None:
        """Forget the claim tickets settled durable (a restart reads those claims) and the failed ones
        whose orders all ended (DENIED, nothing sent)."""
        orders = self._orders
        for ticket in [t for t in self._in_window if t.settled]:
            if ticket.failure is None or all(
                    (r := orders.get(o.client_order_id)) is None or r.status.is_terminal for o in self._in_window[ticket]):
                del self._in_window[ticket]

    def _window_handover(self) -> tuple:
        """``LedgerHandover.in_window``: the orders forwarded before a claim COMMIT not known durable."""
        out: list[tuple] = []
        for ticket, forwarded in self._in_window.items():
            if ticket.settled and ticket.failure is None:
                continue
            out.extend((o.intent, o.context, o.route.adapter_id if o.route else "") for o in forwarded)
        return tuple(out)

    def failure_details(self) -> dict:
        """The crashed ledger: the rows its handled messages decided are written first (best
        effort: what is not written is unknown to the next generation, whose facts then arrive
        unmatched), then the :class:`LedgerHandover` for the next generation."""
        try:
            if self._pending_rows or self._pending_fills or self._pending_audit:
                self._flush()
        except Exception:  # noqa: BLE001 - crashed already: best effort, the next generation reconciles
            logger.opt(exception=True).error("the crashed ledger could not write its last batch")
        for timer in (self._quiet_timer, self._age_timer, self._sync_timer, self._compact_timer, self._retry_timer,
                      self._alert_timer, self._retention_timer, *self._track_timers.values()):
            if timer is not None:
                timer.cancel()
        for closer in (self._audit, self._journal):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # noqa: BLE001 - crashed already: best effort, the others still close
                logger.opt(exception=True).error("the crashed ledger could not close a file")
        if self._receipts_fd is not None:
            os.close(self._receipts_fd)
            self._receipts_fd = None
        resume_to = self._hold_resume or self._state_before_halt
        return {"inherited": (LedgerHandover(
            state=self._risk.state.value, reason=self._state_reason,
            auto_state=self._auto_state.value if self._auto_state is not None else None,
            auto_causes=dict(self._auto_causes), holds=dict(self._holds),
            resume_to=resume_to.value if resume_to is not None else None,
            waiters={k: list(v) for k, v in self._waiters.items()}, escalated=dict(self._escalated),
            down_since=dict(self._down_since), publishing=self._publishing, marks=tuple(self._marks.values()),
            held=tuple((child_id, book, parent_id, self._risk.reservation(book, parent_id), intent)
                       for child_id, (book, parent_id, intent) in self._held.items()),
            refused_rows=dict(self._refused_rows), refused_claims=dict(self._refused_claims),
            refused_budget=dict(self._refused_budget), in_window=self._window_handover()),)}

    def answer_crashed(self, message: Any) -> None:
        """An order whose handler raised here was never sent: FAILED (E_EXEC_INTERNAL), and the
        idempotency record completed with that report (a retry of the id replays it)."""
        reply = getattr(message, "reply", None)
        if isinstance(message, SubmitOrder) and isinstance(reply, Future):
            report = internal_error_report(message, ts=self.report_now())
            tell(self._idempotency, CompleteOrder(message.account_id, message.client_order_id, report))
            resolve(reply, report)
            return
        super().answer_crashed(message)

    # -- trading holds (the supervisor, while a durable core child restarts) ---------------
    def handle_Wire(self, message: Wire) -> None:
        """The supervisor's wiring: the idempotency store and router (after boot or a restart), the bus."""
        if message.idempotency is not None:
            self._idempotency = message.idempotency
        if message.router is not None:
            self._router = message.router
        if message.bus is not None:
            self._bus = message.bus

    def handle_HoldTrading(self, message: HoldTrading) -> None:
        """Trading HALTED while ``cause`` holds (e.g. the idempotency store restarting from the
        journal); the state before comes back once every hold is released."""
        self._holds[message.cause] = message.reason
        self._auto_causes[message.cause] = message.reason
        if self._risk.state is not TradingState.HALTED:
            if self._hold_resume is None:
                self._hold_resume = self._risk.state
            self._set_trading_state(TradingState.HALTED, message.reason, automatic=True)
        elif self._holds.keys() == {message.cause}:
            self._state_reason = message.reason

    def handle_ReleaseTrading(self, message: ReleaseTrading) -> None:
        if self._holds.pop(message.cause, None) is None:
            return
        self._auto_causes.pop(message.cause, None)
        if self._holds or self._write_failures:
            return
        resume, self._hold_resume = self._hold_resume, None
        if resume is not None and self._risk.state is TradingState.HALTED:
            self._set_trading_state(resume, message.reason, automatic=True)

    def on_stop(self) -> None:
        if self._alert_timer is not None:
            self._alert_timer.cancel()
        for timer in (self._quiet_timer, self._age_timer, self._sync_timer, self._compact_timer, self._retry_timer,
                      self._retention_timer, *self._track_timers.values()):
            if timer is not None:
                timer.cancel()
        self._flush()
        if self._write_failures:
            logger.error("stopping with durable writes still failing ({}); what was not written is reconciled with the "
                         "venue at the next start", "; ".join(f"{k}: {v['pending']} pending" for k, v in self._write_failures.items()))
        if self._audit is not None:
            try:
                self._audit.close()
            except Exception as exc:  # noqa: BLE001 - stopping: the journal still closes
                logger.opt(exception=exc).error("audit log could not be closed cleanly")
        if self._journal is not None:
            self._journal.close()
        if self._receipts_fd is not None:
            os.close(self._receipts_fd)
            self._receipts_fd = None

    # -- recovery ------------------------------------------------------------------------
    def handle_RestoreLedger(self, message: RestoreLedger) -> None:
        """Rebuild journaled orders (history and fills, books) and apply what reconciliation found."""
        for order in message.orders:
            try:
                self._restore(order)
            except Exception as exc:  # noqa: BLE001 - one unrestorable order must not stop the others' restore
                logger.opt(exception=exc).error("could not restore order {}", order.intent.client_order_id)
        self._flush(archive_all_due=True)

    def _restore(self, ro: RecoveredOrder) -> None:
        intent, account_id = ro.intent, ro.context.account_id
        rec = OrderRecord.from_intent(intent, account_id, adapter_id=ro.adapter_id, context=ro.context, ts=self._now())
        _restore_report_fields(rec, ro.transitions, ro.adapter_id)
        history = [
            Transition(r.seq, datetime.fromtimestamp(r.ts, UTC), OrderStatus(r.from_status), OrderStatus(r.to_status), r.cause)
            for r in ro.transitions
        ]
        rec.lifecycle = LifecycleState(OrderStatus.ACCEPTED)
        book = self._book_of(account_id, ro.adapter_id)
        last = history[-1].to_status if history else OrderStatus.INITIALIZED
        if last is not OrderStatus.DENIED:  # a denied order never held a reservation or spent anything
            # risk as it stood before the restart: the reservation from intake, trued up by each fill
            reserved = next((r.reserved for r in ro.transitions if r.to_status == OrderStatus.RESERVED.value), None)
            rec.reserved_at_intake = reserved
            self._risk.restore_reservation(book, intent, reserved)
        for row in ro.fills:
            fill = row.fill
            if fill.trade_id.startswith(SYNTHETIC_TRADE_PREFIX):  # booked from a cumulative report
                if rec.apply_synthetic(fill) is FillOutcome.APPLIED:
                    self._book_applied(rec, book, fill)
            elif rec.apply_fill(fill) is FillOutcome.APPLIED:
                self._book_applied(rec, book, rec.last_booking or fill)
        prior = (OrderStatus.PARTIALLY_FILLED if rec.cum_qty else OrderStatus.ACCEPTED) if last is OrderStatus.PENDING_CANCEL else None
        rec.lifecycle = LifecycleState(last, prior)
        rec.transitions = history
        if history:  # the report's time: its last change, as before the restart
            rec.updated_ts = history[-1].ts
        self._orders[intent.client_order_id] = rec
        if rec.status.is_terminal:
            self._risk.release(book, rec.client_order_id)
            if self._archiving:  # an archived order whose row is current leaves memory without a write
                self._table.changed_terminal(rec, archive_current=ro.archived and ro.outcome is RecoveryOutcome.UNCHANGED)
        if ro.outcome is RecoveryOutcome.UNCHANGED:
            return
        if rec.status in (OrderStatus.INITIALIZED, OrderStatus.RESERVED, OrderStatus.SUBMITTING):
            for event in _TO_UNKNOWN.get(rec.status, (E.UNKNOWN,)):
                self._transition(rec, event, "process restarted with the order in flight")
        if ro.outcome is RecoveryOutcome.RECONCILED and ro.venue_state is not None:  # the same paths as a lookup while running
            self._reconciled(rec, ro.adapter_id, ro.venue_state, cause="recovered: reconciled with the venue", reason=ro.note)
        elif ro.outcome is RecoveryOutcome.NEVER_DELIVERED:
            self._proven_absent(rec, ro.adapter_id, found="recovered", reason=ro.note)
        if rec.status is OrderStatus.UNKNOWN:
            self._ever_unknown.add(rec.client_order_id)

    # -- forward path: risk and reservation ----------------------------------------------
    def handle_SubmitOrder(self, order: SubmitOrder) -> None:
        intent, account_id = order.intent, order.account_id
        if self._held and intent.client_order_id in self._held:
            self._submit_child(order)
            return
        existing = self._orders.get(intent.client_order_id)
        if existing is not None and (existing.account_id != account_id or not existing.status.is_terminal):
            # duplicate ids are the idempotency store's alone to refuse; one reaching here is our bug
            self._id_invariant_broken(order, existing)
            return
        touch = self._touch.get(intent.symbol)
        instrument = self._instruments.get(intent.symbol)
        book = self._book_of(account_id, order.route.adapter_id if order.route else "")
        decision = self._risk.check_and_reserve(
            intent, book, touch=touch,
            position_qty=self._portfolio.net_qty(book, intent.symbol),
            tick_size=instrument.tick_size if instrument is not None else None,
        )
        rec = OrderRecord.from_intent(intent, account_id, route=order.route, arrival_px=arrival_price(intent.side, touch),
                                      context=order.context, ts=self._now())
        self._orders[intent.client_order_id] = rec
        if not decision.approved:
            self._deny_risk(order, rec, decision.rule, decision.reason)
            return
        if decision.adjusted_limit_price is not None:
            intent = intent.model_copy(update={"limit_price": decision.adjusted_limit_price})
            rec.price_capped_from = rec.limit_price
            rec.limit_price = decision.adjusted_limit_price
        if self._hooks:  # the caller's own rules, after the built-in ones approved (actors/orders/hooks.py)
            denial = run_hooks(self._hooks, PreTradeCheck(
                intent, order.context, self._portfolio.net_qty(book, intent.symbol), touch, self._risk.state.value, decision.reserved))
            if denial is not None:
                self._risk.release(book, intent.client_order_id)
                self._deny_risk(order, rec, denial.code, f"{denial.code}: {denial.reason}")
                return
        rec.reserved_at_intake = decision.reserved
        self._transition(rec, E.RESERVED, _RESERVED_CAUSE, defer_flush=True)
        forwarded = order.with_intent_arrival_px(intent, rec.arrival_px)
        if self._resubmit:
            self._resubmittable[intent.client_order_id] = forwarded
        claim = order.claim
        if claim is not None and not claim.settled:  # inside the claim window (actors/idempotency/ticket.py)
            self._in_window.setdefault(claim, []).append(forwarded)
        self._forward(order, forwarded, book)
        # the RESERVED row and audit line go with the next batch (the order's outcome always comes: every venue call has a timeout)

    def handle_SubmitOrders(self, message: SubmitOrders) -> None:
        """The orders of one group commit (the idempotency store): each handled as its own
        :class:`SubmitOrder`, in order; those approved go on to their circuit breakers as one
        message per breaker. When one crashes this actor, the ones before it still go on, it is
        answered alone and the rest wait for the next generation (``FlowActor.run_each``)."""
        onward: list[tuple[pykka.ActorRef | None, list[tuple[SubmitOrder, SubmitOrder, str]]]] = []
        self._onward = onward
        self._batching = True
        try:
            self.run_each(message.orders, self.handle_SubmitOrder)
        finally:
            self._onward = None
            self._batching = False
            for breaker, entries in onward:
                forwarded = entries[0][1] if len(entries) == 1 else SubmitOrders(tuple(f for _, f, _ in entries))
                if not tell(breaker, forwarded):
                    for order, _, book in entries:
                        self._breaker_unavailable(order, book)
        if self._flush_due:  # an order of the batch was answered here (denied): its rows are written as a lone one's are
            self._flush_if_idle()

    def _forward(self, order: SubmitOrder, forwarded: SubmitOrder, book: str) -> None:
        """Tell ``forwarded`` (``order`` as approved) to its circuit breaker; inside a
        ``SubmitOrders``, gather it with the others for its breaker (told when the batch is done)."""
        onward = self._onward
        if onward is None:
            if not tell(order.breaker, forwarded):
                self._breaker_unavailable(order, book)
            return
        breaker = order.breaker
        for ref, entries in onward:
            if ref is breaker:
                entries.append((order, forwarded, book))
                return
        onward.append((breaker, [(order, forwarded, book)]))

    def _breaker_unavailable(self, order: SubmitOrder, book: str) -> None:
        self._risk.release(book, order.client_order_id)
        self._deny_stage(order, ErrorCode.E_EXEC_NO_ADAPTER, "circuit breaker actor unavailable", record=True)

    # -- partial fills: the remainder as a child order (orders.remainder = "resubmit") ----
    def _resubmit_remainder(self, rec: OrderRecord, parent: SubmitOrder) -> bool:
        """Re-submit what an order that expired partly filled left unfilled, as a child order.

        The child has a derived client order id (:func:`remainder_client_order_id`), the parent's
        intent otherwise, and lives within the parent's reservation (moved to it when it arrives
        back from the idempotency store, where its claim is journaled like any order's). True
        when the child was sent on its way; False (the parent's reservation is released) when
        the order is not a partial expiry, the chain is at ``max_resubmits`` or trading is HALTED.
        """
        if rec.status is not OrderStatus.EXPIRED or not 0 < rec.cum_qty < rec.quantity:
            return False
        meta = parent.intent.metadata
        n = int(meta.get(_META_RESUBMIT) or 0) + 1
        if n > self._max_resubmits or self._risk.state is TradingState.HALTED:
            why = "trading is HALTED" if n <= self._max_resubmits else f"max_resubmits ({self._max_resubmits}) reached"
            logger.info("order {} expired with {} unfilled; not re-submitted: {}", rec.client_order_id, rec.quantity - rec.cum_qty, why)
            return False
        root = str(meta.get(_META_ROOT, rec.client_order_id))
        remaining = rec.quantity - rec.cum_qty
        child_id = remainder_client_order_id(root, n)
        try:
            data = parent.intent.model_dump()
            data.update(client_order_id=child_id, quantity=remaining,
                        metadata={**meta, _META_ROOT: root, _META_PARENT: rec.client_order_id, _META_RESUBMIT: n})
            intent = type(parent.intent).model_validate(data)
        except ValueError as exc:
            logger.error("remainder of {} cannot be re-submitted: {}", rec.client_order_id, exc)
            return False
        book = self._book_of(rec.account_id, rec.adapter_id)
        self._held[child_id] = (book, rec.client_order_id, intent)
        reply: Future = Future()
        # every outcome of the child resolves its future, whichever stage decides it: if the child
        # never reaches this ledger (replayed, refused, answered by a crashed store) the parent's
        # reservation is released there (handle_RemainderChildAnswered); once the child reached
        # the ledger (_submit_child) it holds the reservation itself and this is a no-op
        reply.add_done_callback(_tell_child_answered(self.actor_ref, child_id))
        child = SubmitOrder(intent, parent.context, reply, now_ns(), parent.route, parent.breaker)
        if not tell(self._idempotency, child):
            del self._held[child_id]
            return False
        self._audit_line("remainder_resubmitted", {"client_order_id": rec.client_order_id, "child_client_order_id": child_id,
                                                   "remaining_qty": str(remaining), "resubmit": n})
        self._publish(RemainderResubmitted(client_order_id=rec.client_order_id, account_id=rec.account_id, adapter_id=rec.adapter_id,
                                           status=rec.status, child_client_order_id=child_id, remaining_qty=remaining,
                                           reason=f"expired with {remaining} unfilled; re-submitted as {child_id}"))
        return True

    def _submit_child(self, order: SubmitOrder) -> None:
        """A remainder's child order, claimed: it takes over its parent's reservation, unchecked."""
        intent = order.intent
        book, parent_id, _ = self._held.pop(intent.client_order_id)
        rec = OrderRecord.from_intent(intent, order.account_id, route=order.route,
                                      arrival_px=arrival_price(intent.side, self._touch.get(intent.symbol)), ts=self._now())
        self._orders[intent.client_order_id] = rec
        if self._risk.state is TradingState.HALTED:
            self._risk.release(book, parent_id)
            self._deny_risk(order, rec, "trading_halted", "trading_halted: trading is HALTED; the remainder is not re-submitted")
            return
        amount = self._risk.transfer(book, parent_id, intent.client_order_id)
        rec.reserved_at_intake = amount
        self._transition(rec, E.RESERVED, f"{_RESERVED_CAUSE} (the remainder of {parent_id})", defer_flush=True)
        forwarded = order.evolve(arrival_px=rec.arrival_px)
        self._resubmittable[intent.client_order_id] = forwarded
        claim = order.claim
        if claim is not None and not claim.settled:
            self._in_window.setdefault(claim, []).append(forwarded)
        self._forward(order, forwarded, book)
        # the RESERVED row and audit line go with the next batch (the order's outcome always comes: every venue call has a timeout)

    def _id_invariant_broken(self, order: SubmitOrder, existing: OrderRecord) -> None:
        """Internal invariant, not a user-facing check: the idempotency store, the one owner of
        duplicate client order ids, claimed an id this ledger holds for another account or for an
        order still open. Logged as an error and DENIED E_EXEC_INTERNAL (nothing sent; the open
        order is untouched), never answered as a duplicate."""
        logger.error("internal invariant broken: client_order_id {} was claimed ({}) while the ledger holds it "
                     "for {} in {}; denied E_EXEC_INTERNAL", order.client_order_id, order.account_id,
                     "another account" if existing.account_id != order.account_id else "an open order", existing.status.value)
        self._deny_stage(order, ErrorCode.E_EXEC_INTERNAL,
                         f"internal error: client_order_id '{order.client_order_id}' was claimed while the ledger holds it; "
                         "nothing was sent", record=False)

    def _deny_risk(self, order: SubmitOrder, rec: OrderRecord, rule: str, reason: str) -> None:
        """DENIED by a risk rule or a pre-trade hook: E_EXEC_RISK_DENIED, counted as ``risk:<rule>``."""
        self._errors[f"risk:{rule}"] += 1
        if self._metrics is not None:
            self._metrics.rejected(f"risk:{rule}")
        report = error_report(order, ErrorCode.E_EXEC_RISK_DENIED, reason, ts=self._now())
        rec.error = report.error
        self._transition(rec, E.DENIED, f"risk: {rule}", report=report)
        tell(self._idempotency, CompleteOrder(order.account_id, order.client_order_id, report))
        resolve(order.reply, report)

    def _deny_stage(self, order: SubmitOrder, code: ErrorCode, message: str, *, record: bool) -> None:
        report = error_report(order, code, message, ts=self._now())
        self._errors[code.value] += 1
        if record:
            rec = self._orders.get(order.client_order_id)
            if rec is not None:
                rec.error = report.error
                self._transition(rec, E.DENIED, code.value, report=report)
        else:
            self._audit_line("denied", {"client_order_id": order.client_order_id, "account_id": order.account_id,
                                        "code": code.value, "reason": message})
            self._publish(OrderDenied(client_order_id=order.client_order_id, **attribution_of(order.intent, order.context),
                                      account_id=order.account_id,
                                      status=OrderStatus.DENIED, report=report, code=code, reason=message))
        tell(self._idempotency, CompleteOrder(order.account_id, order.client_order_id, report))
        resolve(order.reply, report)

    # -- facts from the pipeline -------------------------------------------------------
    def handle_RemainderChildAnswered(self, message: RemainderChildAnswered) -> None:
        held = self._held.pop(message.client_order_id, None) if self._held else None
        if held is None:  # the child reached this ledger and holds the reservation itself
            return
        report = message.report
        if report is None:
            why = "its reply failed"
        elif report.error is not None:
            why = report.error.message
        else:
            why = f"answered {report.status.value}" + (" as a replay of the id's earlier order" if report.replay else "")
        logger.warning("remainder child {} never reached the ledger ({}); releasing {}'s reservation",
                       message.client_order_id, why, held[1])
        self._risk.release(held[0], held[1])

    def handle_RecordDenied(self, message: RecordDenied) -> None:
        report = message.report
        code = report.error.code if report.error is not None else None
        self._errors[code.value if code else "none"] += 1
        if self._metrics is not None and code is not None:
            self._metrics.rejected(code.value)
        if message.intent is None or report.client_order_id in self._orders:
            self._duplicates_denied += 1
            self._audit_line("denied", {"client_order_id": report.client_order_id, "account_id": report.account_id,
                                        "code": code.value if code else "", "reason": report.error.message if report.error else ""})
            self._publish(OrderDenied(client_order_id=report.client_order_id, **attribution_of(message.intent, message.context),
                                      account_id=report.account_id,
                                      status=OrderStatus.DENIED, report=report, code=code,
                                      reason=report.error.message if report.error else ""))
            return
        rec = OrderRecord.from_intent(message.intent, message.context.account_id if message.context else "", route=report.route,
                                      context=message.context, ts=self._now())
        rec.error = report.error
        self._orders[rec.client_order_id] = rec
        self._transition(rec, E.DENIED, code.value if code else "denied", report=report)

    def handle_OrderSent(self, message: OrderSent) -> None:
        rec = self._order_for_update(message.client_order_id)
        if rec is None:
            return self._unmatched("OrderSent", message.client_order_id)
        rec.attempts = max(rec.attempts, message.attempt)
        rec.adapter_id = message.adapter_id
        if message.attempt > 1:  # a retry: the status stays SUBMITTING, so no transition records it
            self._audit_line("attempt", {"client_order_id": rec.client_order_id, "account_id": rec.account_id,
                                         "attempt": message.attempt, "adapter_id": message.adapter_id})
        self._transition(rec, E.SUBMITTED, f"attempt {message.attempt} sent to {message.adapter_id}")

    def handle_GuardActed(self, message: GuardActed) -> None:
        self._audit_line("guard", {"client_order_id": message.client_order_id, "account_id": message.account_id,
                                   "guard": message.guard, "action": message.action, "detail": message.detail[:500]})

    def handle_AttemptFailed(self, message: AttemptFailed) -> None:
        rec = self._orders.get(message.client_order_id)
        if rec is not None:
            rec.attempts = max(rec.attempts, message.attempt)
        self._audit_line("attempt_failed", {
            "client_order_id": message.client_order_id, "account_id": message.account_id, "adapter_id": message.adapter_id,
            "attempt": message.attempt, "code": message.code, "error": message.error[:500], "retry_in_s": message.retry_in_s,
        })

    def handle_OrderFinished(self, message: OrderFinished) -> None:
        report = message.report
        if message.metered:
            if self._metrics is not None:
                self._metrics.order_finished(message.adapter_id, report)
            if self._alerts is not None:
                self._alerts.record_latency(self._clock.monotonic(), report.latency_us)
        rec = self._order_for_update(report.client_order_id)
        if rec is None:
            return self._unmatched("OrderFinished", report.client_order_id)
        if report.error is not None:
            self._errors[report.error.code.value] += 1
        if rec.status is OrderStatus.RESERVED and report.attempts > 0:
            # sent inline (no separate OrderSent message): record the SUBMITTED step first
            rec.attempts = max(rec.attempts, report.attempts)
            rec.adapter_id = message.adapter_id
            self._transition(rec, E.SUBMITTED, f"attempt {report.attempts} sent to {message.adapter_id}")
        if message.venue_state is not None:
            self._apply_venue_state(rec, message.venue_state, cause="submit acknowledged")
            return
        event = _STATUS_EVENT.get(report.status)
        if event is None:
            return
        if report.error is not None:
            rec.error = report.error
        self._transition(rec, event, message.cause or report.status.value, report=report)

    def handle_OrdersFinished(self, message: OrdersFinished) -> None:
        """The outcomes of one group of venue calls (the adapter): each handled as its own
        :class:`OrderFinished`, in order; their rows and audit lines written once, after the last
        (``FlowActor.run_each``: one that crashes this actor is the one answered)."""
        self._batching = True
        try:
            self.run_each(message.finished, self.handle_OrderFinished)
        finally:
            self._batching = False
        self._flush_if_idle()

    def handle_VenueEventReceived(self, message: VenueEventReceived) -> None:
        if self._tracking:  # the adapter's event stream is alive
            self._heard[message.event.adapter_id] = self._clock.monotonic()
        if message.event.kind == "fill":
            crash_point("between_fills")
        state = message.event.state
        rec = self._order_for_update(state.client_order_id)
        if rec is None:
            return self._unmatched(f"venue event {message.event.kind}", state.client_order_id)
        self._apply_venue_state(rec, state, cause=f"venue {message.event.kind}", fill=message.event.fill)

    def handle_OrderReconciledWith(self, message: OrderReconciledWith) -> None:
        rec = self._order_for_update(message.client_order_id)
        if rec is None:
            return self._unmatched("reconciliation", message.client_order_id)
        if message.state is None:
            if message.resent:
                self._audit_line("reconcile", {"client_order_id": rec.client_order_id, "result": "venue proved absence; re-sent under the same id"})
            elif message.absent:
                self._proven_absent(rec, message.adapter_id)
            return
        if message.tracked:
            self._tracked_state(rec, message, message.state)
            return
        self._reconciled(rec, message.adapter_id, message.state, cause="reconciled with venue",
                         reason=f"venue says {message.state.status.value}")

    def _reconciled(self, rec: OrderRecord, adapter_id: str, state: VenueOrderState, *, cause: str, reason: str,
                    changes_only: bool = False) -> None:
        """The venue's answer to a lookup, adopted (status, fills by trade id): the one path for an
        answer found by start-up recovery, by a quiet-order lookup and by live tracking;
        ``OrderReconciled``. ``changes_only`` (live tracking, which looks up working orders that
        are usually fine): published and logged only when the answer moved the order."""
        previous, cum_before = rec.status, rec.cum_qty
        self._apply_venue_state(rec, state, cause=cause)
        if changes_only:
            if (rec.status, rec.cum_qty) == (previous, cum_before):
                return
            logger.warning("order {}: the venue lookup found {} (cum_qty {}) that no event reported", rec.client_order_id,
                           rec.status.value, rec.cum_qty)
        self._publish(OrderReconciled(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id, adapter_id=adapter_id,
                                      status=rec.status, previous_status=previous, report=rec.snapshot(), reason=reason))

    def _proven_absent(self, rec: OrderRecord, adapter_id: str, *, found: str = "reconciled",
                       reason: str = "venue proved absence") -> None:
        """The venue proved absence of an order nobody may re-send (in doubt since a restart):
        FAILED "never delivered" (E_EXEC_NETWORK) — the one place "never sent" ends an order,
        whether start-up recovery (``found="recovered"``) or a lookup while running found it
        (docs/DESIGN.md "Reconciliation"). An order the venue acknowledged or filled before is not
        failed on a lookup: that contradiction is logged and the order kept."""
        if rec.status is not OrderStatus.UNKNOWN or rec.venue_order_id is not None or rec.cum_qty:
            logger.error("order {} ({}): venue {} says it has no such order; the ledger keeps it (acknowledged before, or still in flight)",
                         rec.client_order_id, rec.status.value, adapter_id)
            return
        rec.error = ExecError.of(ErrorCode.E_EXEC_NETWORK, "never delivered: the venue proved it has no record of it")
        self._transition(rec, E.FAILED, f"{found}: venue proved it never received the order")
        self._publish(OrderReconciled(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id, adapter_id=adapter_id,
                                      status=rec.status, previous_status=OrderStatus.UNKNOWN, report=rec.snapshot(),
                                      reason=reason))

    def handle_ReconciliationStalled(self, message: ReconciliationStalled) -> None:
        """Escalate an order still in doubt after ``reconcile.max_attempts`` lookups: event, health."""
        rec = self._orders.get(message.client_order_id)
        if rec is None:
            return self._unmatched("reconciliation escalation", message.client_order_id)
        if rec.status not in _IN_DOUBT:  # settled meanwhile: tell the adapter to stop looking
            tell(self._router, ForwardReconcile(message.adapter_id, (rec.client_order_id,), resolved=True))
            return
        self._escalated[rec.client_order_id] = message.attempts
        self._publish(ReconciliationEscalated(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id,
                                              adapter_id=message.adapter_id, status=rec.status, attempts=message.attempts,
                                              unresolved_for_s=message.unresolved_for_s, reason=message.reason))

    def handle_GetEscalated(self, message: GetEscalated) -> dict[str, int]:
        return dict(self._escalated)

    def handle_GetReservations(self, message: GetReservations):
        return self._risk.reservations(message.account_id)

    def handle_GetExposure(self, message: GetExposure):
        return self._risk.exposure_of(message.account_id)

    def handle_CancelFinished(self, message: CancelFinished) -> None:
        """Apply a cancel's outcome and answer it with the order's report (plus the error, if any)."""
        cancel = message.cancel
        rec = self._order_for_update(cancel.client_order_id)
        if rec is None:
            self._unmatched("cancel result", cancel.client_order_id)
            resolve(cancel.reply, cancel_error_report(cancel, message.code or ErrorCode.E_EXEC_INTERNAL, message.reason or "unknown order",
                                                      status=OrderStatus.UNKNOWN, ts=self._now()))
            return
        outcome = message.outcome
        if outcome is CancelOutcome.DONE and message.state is not None:
            self._apply_venue_state(rec, message.state, cause="cancel acknowledged")
        elif outcome in (CancelOutcome.REJECTED, CancelOutcome.NOT_SENT) and rec.status is OrderStatus.PENDING_CANCEL:
            self._transition(rec, E.CANCEL_REJECTED, f"cancel {outcome.value.replace('_', ' ')}: {message.reason}")
            self._publish(OrderCancelRejected(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id,
                                              adapter_id=message.adapter_id, status=rec.status, reason=message.reason))
        error = (ExecError.of(message.code, message.reason)
                 if outcome not in (CancelOutcome.DONE, CancelOutcome.WITHDRAWN) and message.code is not None else None)
        resolve(cancel.reply, rec.snapshot(latency_us=latency_us(cancel.t0_ns)).model_copy(update={"error": error} if error else {}))

    # -- cancels -----------------------------------------------------------------------
    def handle_CancelOrder(self, cancel: CancelOrder) -> None:
        rec = self._order_for_update(cancel.client_order_id)
        if rec is None or (cancel.account_id and rec.account_id != cancel.account_id):
            resolve(cancel.reply, cancel_error_report(cancel, ErrorCode.E_EXEC_VALIDATION,
                                                      f"unknown order '{cancel.client_order_id}'", status=OrderStatus.UNKNOWN,
                                                      ts=self._now()))
            return
        if rec.status in (OrderStatus.RESERVED, OrderStatus.SUBMITTING):
            # not acknowledged yet: the adapter withdraws it from its throttle queue, or asks the venue
            if not tell(self._router, replace(cancel, adapter_id=rec.adapter_id or (rec.route.adapter_id if rec.route else ""),
                                              account_id=rec.account_id)):
                resolve(cancel.reply, cancel_error_report(cancel, ErrorCode.E_EXEC_INTERNAL, "router unavailable", status=rec.status,
                                                          ts=self._now()))
            return
        if not rec.status.is_open:
            snapshot = rec.snapshot(latency_us=latency_us(cancel.t0_ns))
            message = f"order is {rec.status.value}; only orders still working can be canceled"
            resolve(cancel.reply, snapshot.model_copy(update={"error": ExecError.of(ErrorCode.E_EXEC_VALIDATION, message)}))
            return
        if rec.status is not OrderStatus.PENDING_CANCEL:
            self._transition(rec, E.CANCEL_REQUESTED, f"cancel requested: {cancel.reason}" if cancel.reason else "cancel requested")
        if not tell(self._router, replace(cancel, adapter_id=rec.adapter_id, account_id=rec.account_id)):
            resolve(cancel.reply, cancel_error_report(cancel, ErrorCode.E_EXEC_INTERNAL, "router unavailable", status=rec.status,
                                                          ts=self._now()))

    # -- market data and operator ------------------------------------------------------
    def handle_MarketData(self, message: MarketData) -> None:
        data = message.data
        if isinstance(data, Quote):
            if data.is_crossed or data.is_locked:
                return  # never a mark or a touch: the last good quote stands
            self._touch[data.symbol] = data
            self._portfolio.mark(data.symbol, data.mid)
        elif isinstance(data, Trade):
            self._portfolio.mark(data.symbol, data.price)
        else:
            return
        self._marks[data.symbol] = data

    def handle_GetTradingState(self, message: Any) -> str:
        return self._risk.state.value

    def handle_GetTradingStatus(self, message: Any) -> tuple[str, str, tuple[str, ...]]:
        return self._risk.state.value, self._state_reason, tuple(sorted(self._mismatched))

    def handle_GetDurability(self, message: Any) -> dict:
        """Durable writes that are failing: store -> {"error", "attempts", "pending"} (empty: all written)."""
        return {store: dict(info) for store, info in self._write_failures.items()}

    def handle_GetRefusedRows(self, message: Any) -> RefusedValues:
        """The refused rows, claims and shared-budget values not acknowledged yet (see ``GetRefusedRows``)."""
        return RefusedValues(dict(self._refused_rows), dict(self._refused_claims), dict(self._refused_budget))

    def handle_ClaimRefused(self, message: ClaimRefused) -> None:
        """The idempotency journal refused an order's claim (the store denied the order): counted for health()."""
        self._refused_claims = {"count": self._refused_claims.get("count", 0) + 1,
                                "last_client_order_id": message.client_order_id, "last_reason": message.reason}
        self._save_refused()

    def _budget_refused(self, kind: str, account_id: str, client_order_id: str, reason: str) -> None:
        """The PostgreSQL shared budget refused a value of an order (``PgBudget.on_refused``, called
        on this actor's thread): ``kind`` "reserve" (the order was denied, nothing reserved) or
        "flush" (its values are left out of the fleet's totals: ``left_out``, which makes
        ``healthy`` False until an operator acknowledges it). Counted for health(), kept like the
        refused rows and claims."""
        old = self._refused_budget
        self._refused_budget = {"count": old.get("count", 0) + 1, "left_out": old.get("left_out", 0) + (kind == "flush"),
                                "last_client_order_id": client_order_id, "last_account_id": account_id,
                                "last_kind": kind, "last_reason": reason}
        self._save_refused()

    def _load_refused(self) -> None:
        """The refused rows, claims and shared-budget values no operator acknowledged before the
        runtime stopped (``refused.json``, written by :meth:`_save_refused`; a file written before
        ``budget`` was kept has none); an unreadable file is logged and left."""
        path = self._refused_path
        if path is None:
            return
        try:
            kept = json.loads(Path(path).read_bytes())
            rows, claims, budget = kept["rows"], kept["claims"], kept.get("budget", {})
            if not (isinstance(rows, dict) and isinstance(claims, dict) and isinstance(budget, dict)):
                raise ValueError("rows, claims and budget must be objects")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.error("{}: cannot read the refused rows and claims kept there ({}); health() starts without them",
                         path, exc)
            return
        self._refused_rows, self._refused_claims, self._refused_budget = rows, claims, budget

    def _save_refused(self) -> None:
        """Keep the refused rows, claims and shared-budget values for the next runtime (a cold path: a
        value refused, or an operator's acknowledgement): ``refused.json`` replaced durably, removed
        once all are empty.
        A failing write is logged (the audit log's lines stay the record)."""
        path = self._refused_path
        if path is None:
            return
        try:
            if self._refused_rows or self._refused_claims or self._refused_budget:
                blob = json.dumps({"budget": self._refused_budget, "claims": self._refused_claims, "rows": self._refused_rows},
                                  sort_keys=True)
                replace_file(Path(path), blob.encode("ascii"))
            elif Path(path).exists():
                Path(path).unlink()
                fsync_dir(Path(path).parent)
        except OSError as exc:
            logger.error("{}: cannot keep the refused rows and claims for the next start: {}", path, exc)

    def handle_AcknowledgeRefused(self, message: Any) -> RefusedValues:
        """An operator dealt with the refused rows, claims and shared-budget values
        (``Runtime.acknowledge_refused``): the lists are cleared, a ``refused_acknowledged`` audit
        line says how many; answers them as they were."""
        was = RefusedValues(self._refused_rows, self._refused_claims, self._refused_budget)
        rows, claims, budget = was
        self._refused_rows, self._refused_claims, self._refused_budget = {}, {}, {}
        if rows or claims or budget:
            self._save_refused()
        audit = self._audit
        if (rows or claims or budget) and audit is not None:
            try:
                audit.append_many([("refused_acknowledged", {"rows": rows.get("count", 0), "claims": claims.get("count", 0),
                                                             "budget": budget.get("count", 0)})])
                audit.flush()
            except Exception as exc:  # noqa: BLE001 - any audit write failure halts trading (_write_failed)
                self._write_failed("audit", exc, getattr(audit, "pending", 0))
        return was

    def handle_InjectJournalFailure(self, message: InjectJournalFailure) -> None:
        """The testing seam (``actors.testing.inject_journal_failure``): the next ``n`` writes of
        ``message.store`` ("ledger" journal or "audit" log) fail as a full or read-only disk
        would; ``n`` = 0 repairs it."""
        self._faults.arm(message.store, message.n)

    def handle_SetPublishing(self, message: Any) -> None:
        self._publishing = message.enabled

    def handle_SetTradingState(self, message: SetTradingState) -> str:
        state = TradingState(message.state)
        if self._holds and state is not TradingState.HALTED:
            # held by a restarting core child: the wish is kept for after the hold
            self._hold_resume = state
            logger.warning("trading stays HALTED while {} ({}); {} once released", ", ".join(self._holds),
                           "; ".join(self._holds.values()), state.value)
            return TradingState.HALTED.value
        if self._holds:
            self._hold_resume = None  # the operator halted too: stays HALTED after the hold
        if self._write_failures and state is not TradingState.HALTED:
            # fail closed: no new order on top of state that is not written; the wish is kept for after
            self._state_before_halt = state
            logger.warning("trading stays HALTED while durable writes fail ({}); {} once they are written",
                           ", ".join(self._write_failures), state.value)
            return TradingState.HALTED.value
        if self._write_failures:
            self._state_before_halt = None  # the operator halted too: stays HALTED after the writes recover
            if self._risk.state is TradingState.HALTED:
                return TradingState.HALTED.value
        self._auto_state = None  # the operator's state: no safety rule resumes from it
        self._set_trading_state(state, message.reason or "set by the operator", automatic=bool(message.reason))
        return self._risk.state.value

    def _set_trading_state(self, state: TradingState, reason: str, *, automatic: bool) -> None:
        previous = self._risk.state
        if state is TradingState.HALTED:
            self._risk.halt()
        elif state is TradingState.REDUCING:
            self._risk.reduce_only()
        else:
            self._risk.resume()
        self._state_reason = reason
        self._audit_line("trading_state", {"state": state.value, "previous": previous.value, "reason": reason, "automatic": automatic})
        logger.warning("trading state is now {} ({})", state.value, reason)
        self._publish(TradingStateChanged(state=state.value, previous=previous.value, reason=reason, automatic=automatic))

    # -- automatic trading state ([safety]) ------------------------------------------------
    def _escalate(self, target: str, cause: str, reason: str) -> None:
        """A safety rule fired: record the cause; move to ``target`` unless trading is already at
        least that restricted (ACTIVE < REDUCING < HALTED; a rule never loosens the state)."""
        self._auto_causes[cause] = reason
        if target == "none":
            return
        state = TradingState(target)
        if _RESTRICTION[state] > _RESTRICTION[self._risk.state]:
            self._auto_state = state
            self._set_trading_state(state, reason, automatic=True)

    def _clear_cause(self, cause: str) -> None:
        """A cause is gone; with ``auto_resume``, back to ACTIVE once none is left — only from the state
        a safety rule set, never from one the operator chose."""
        if self._auto_causes.pop(cause, None) is None or self._auto_causes:
            return
        safety = self._safety
        if safety is not None and safety.auto_resume and self._auto_state is not None and self._risk.state is self._auto_state:
            self._auto_state = None
            self._set_trading_state(TradingState.ACTIVE, "every automatic cause cleared (auto_resume)", automatic=True)

    def handle_AdapterAvailability(self, message: AdapterAvailability) -> None:
        adapter = message.adapter_id
        if message.available:
            if self._down_since.pop(adapter, None) is not None:
                logger.info("adapter {} is available again", adapter)
            self._clear_cause(f"outage:{adapter}")
            return
        safety = self._safety
        if adapter in self._down_since:  # still down, now for another reason (e.g. restarting, then given up)
            self._down_since[adapter] = (self._down_since[adapter][0], message.reason)
            return
        if safety is None or safety.on_outage == "none" or self._clock is None:
            return
        since = self._clock.monotonic()
        self._down_since[adapter] = (since, message.reason)
        ref = self.actor_ref
        self._clock.call_later(safety.outage_after_s, lambda: tell(ref, OutageCheck(adapter, since)))

    def handle_OutageCheck(self, message: OutageCheck) -> None:
        down = self._down_since.get(message.adapter_id)
        if down is None or down[0] != message.since:
            return  # it came back in time (or went down again later: that outage has its own timer)
        safety = self._safety
        reason = f"adapter {message.adapter_id} unavailable for {safety.outage_after_s:g} s ({down[1]})"
        self._escalate(safety.on_outage, f"outage:{message.adapter_id}", reason)

    # -- broker-state sync (sync_broker_state) --------------------------------------------
    def handle_SyncBrokerState(self, message: SyncBrokerState) -> None:
        """Ask every adapter for the venue's positions and balances; compare when they answer."""
        self._sync_ids += 1
        sync_id = self._sync_ids
        sync = _Sync(message.reply, set(self._adapter_ids))
        self._syncs[sync_id] = sync
        for adapter_id in self._adapter_ids:
            if not tell(self._router, FetchBrokerState(adapter_id, sync_id)):
                sync.results[adapter_id] = AdapterSync(adapter_id, "unavailable", error="router unavailable")
                sync.waiting.discard(adapter_id)
        if not sync.waiting:
            self._finish_sync(sync_id)
        elif self._clock is not None:
            ref = self.actor_ref
            timeout = self._sync_settings.timeout_s if self._sync_settings is not None else 10.0
            sync.timer = self._clock.call_later(timeout, lambda: tell(ref, SyncTimedOut(sync_id)))

    def handle_BrokerStateFetched(self, message: BrokerStateFetched) -> None:
        sync = self._syncs.get(message.sync_id)
        if sync is None or message.adapter_id not in sync.waiting:
            return  # late: that sync ended already
        sync.waiting.discard(message.adapter_id)
        if message.error:
            result = AdapterSync(message.adapter_id, "unavailable", error=message.error)
        else:
            try:
                result = self._venue_books.compare(message.adapter_id, message.positions, message.balances)
            except ValueError as exc:
                result = AdapterSync(message.adapter_id, "unavailable", error=str(exc))
        sync.results[message.adapter_id] = result
        self._after_compare(result)
        if not sync.waiting:
            self._finish_sync(message.sync_id)

    def handle_SyncTimedOut(self, message: SyncTimedOut) -> None:
        sync = self._syncs.get(message.sync_id)
        if sync is None:
            return
        for adapter_id in sorted(sync.waiting):
            sync.results[adapter_id] = AdapterSync(adapter_id, "unavailable", error="no answer within the sync timeout")
        sync.waiting.clear()
        self._finish_sync(message.sync_id)

    def handle_SyncTick(self, message: SyncTick) -> None:
        self._sync_timer = None
        self.handle_SyncBrokerState(SyncBrokerState())
        self._arm_sync_tick()

    def _arm_sync_tick(self) -> None:
        interval = self._sync_settings.interval_s if self._sync_settings is not None else None
        if interval is not None and self._clock is not None and self._sync_timer is None:
            ref = self.actor_ref
            self._sync_timer = self._clock.call_later(interval, lambda: tell(ref, SyncTick()))

    def _after_compare(self, result: AdapterSync) -> None:
        adapter = result.adapter_id
        if result.status == "mismatch":
            described = tuple(d.describe() for d in result.differences)
            if self._mismatched.get(adapter) != described:
                self._mismatched[adapter] = described
                logger.error("broker state of {} differs from the ledger (nothing adjusted): {}", adapter, "; ".join(described))
                self._audit_line("broker_state_mismatch", {"adapter_id": adapter, "differences": list(described)})
                self._publish(BrokerStateMismatch(adapter_id=adapter, differences=described))
                target = self._safety.on_mismatch if self._safety is not None else "none"
                self._escalate(target, f"mismatch:{adapter}", f"broker state of {adapter} differs from the ledger: {described[0]}"
                               + (f" (+{len(described) - 1} more)" if len(described) > 1 else ""))
        elif result.status == "match" and adapter in self._mismatched:
            del self._mismatched[adapter]
            logger.warning("broker state of {} matches the ledger again", adapter)
            self._audit_line("broker_state_matched", {"adapter_id": adapter})
            self._publish(BrokerStateMatched(adapter_id=adapter))
            self._clear_cause(f"mismatch:{adapter}")

    def _finish_sync(self, sync_id: int) -> None:
        sync = self._syncs.pop(sync_id)
        if sync.timer is not None:
            sync.timer.cancel()
        report = BrokerSyncReport(ts=self._now(),
                                  adapters=tuple(sync.results[a] for a in self._adapter_ids if a in sync.results),
                                  trading_state=self._risk.state.value)
        if sync.reply is not None:
            resolve(sync.reply, report)

    # -- queries -----------------------------------------------------------------------
    def handle_GetOrder(self, message: GetOrder):
        rec = self._orders.get(message.client_order_id)
        return rec.snapshot() if rec is not None else self._archived_report(message.client_order_id)

    def handle_WaitTerminal(self, message: WaitTerminal) -> None:
        rec = self._orders.get(message.client_order_id)
        if rec is None:
            archived = self._archived_report(message.client_order_id)
            if not message.reply.done():
                try:
                    message.reply.set_result(archived)
                except InvalidStateError:  # answered meanwhile
                    pass
            return
        if rec.status.is_terminal:
            self._answer_wait(message.reply, rec)
            return
        self._waiters.setdefault(message.client_order_id, []).append(message.reply)

    def handle_ForgetWait(self, message: ForgetWait) -> None:
        waiting = self._waiters.get(message.client_order_id)
        if waiting is not None:
            waiting[:] = [f for f in waiting if f is not message.reply]
            if not waiting:
                del self._waiters[message.client_order_id]

    @staticmethod
    def _answer_wait(reply, rec: OrderRecord | None) -> None:
        if not reply.done():
            try:
                reply.set_result(rec.snapshot() if rec is not None else None)
            except InvalidStateError:  # the caller's future was answered meanwhile: nothing to do
                pass

    def handle_GetHistory(self, message: GetHistory):
        """``(audit_path, ())`` after flushing the audit log; without one, ``(None, records)`` built
        from the order's transitions and fills in memory."""
        if self._audit is not None:
            self._flush()
            return self._audit.path, ()
        rec = self._orders.get(message.client_order_id)
        if rec is None:
            return None, ()
        # in the audit's order: a fill just before the status change it caused (cause "fill <trade_id>")
        fills = {f"fill {f.trade_id}": f for f in rec.fills}
        lines = []
        for t in rec.transitions:
            fill = fills.pop(t.cause, None)
            if fill is not None:
                lines.append(("fill", self._fill_data(rec, fill)))
            lines.append(("transition", self._transition_data(rec, t)))
        lines += [("fill", self._fill_data(rec, f)) for f in fills.values()]
        return None, tuple(lines)

    def handle_ListOrders(self, message: ListOrders):
        statuses, account_id = message.statuses, message.account_id
        archived: list = []
        if self._archiving and self._table.archived and (statuses is None or not statuses.isdisjoint(TERMINAL_STATUSES)):
            from .archive import archived_report

            wanted = None if statuses is None else {s._value_ for s in statuses}
            try:  # only the rows the filters admit are parsed (the row has the order's status and account)
                archived = [archived_report(a.record_json) for a in self._journal.load_archive()
                            if (wanted is None or a.status in wanted) and (account_id is None or a.account_id == account_id)
                            and a.client_order_id not in self._orders]
            except Exception as exc:  # noqa: BLE001 - a query never breaks the ledger; say what is missing
                logger.opt(exception=exc).error("archived orders could not be read back; listing the orders in memory only")
        if statuses is None and account_id is None:
            return tuple(archived) + tuple(rec.snapshot() for rec in self._orders.values())
        return tuple(archived) + tuple(rec.snapshot() for rec in self._orders.values()
                                       if (statuses is None or rec.status in statuses)
                                       and (account_id is None or rec.account_id == account_id))

    def handle_GetPositions(self, message: GetPositions):
        return self._portfolio.positions(message.strategy_id, by_strategy=message.by_strategy)

    def handle_GetDailyPnl(self, message: GetDailyPnl):
        return self._portfolio.daily(day=message.day, account_id=message.account_id, strategy_id=message.strategy_id)

    def handle_GetLedgerStats(self, message: GetLedgerStats) -> dict:
        # one pass over the orders in memory for every count (statuses, fills, orders in doubt)
        counts: Counter[OrderStatus] = Counter()
        fills = self._table.retired_fills
        for rec in self._orders.values():
            counts[rec.lifecycle.status] += 1
            fills += len(rec.fills)
        by_status: Counter[str] = Counter({status._value_: n for status, n in counts.items()})
        by_status.update(self._table.retired_by_status)
        stats = {
            "orders_total": self._table.total(),
            "orders_in_memory": len(self._orders),
            "orders_archived": self._table.archived,
            "orders_by_status": dict(sorted(by_status.items())),
            "fills_total": fills,
            "errors_by_code": dict(sorted(self._errors.items())),
            "duplicates_denied": self._duplicates_denied,
            "unknown_open": counts[OrderStatus.UNKNOWN],
            "unknown_resolved": self._unknown_resolved,
            "overfills": self._overfills,
            "unmatched_venue_events": self._unmatched_venue_events,
            "waiters": sum(len(v) for v in self._waiters.values()),
            "trading_state": self._risk.state.value,
            "exposure": {
                acct: {"reserved": str(r), "spent": str(s), "budget": None if b is None else str(b)}
                for acct in self._risk.accounts()
                for r, s, b in (self._risk.exposure(acct),)
            },
            "cash": {acct: {k: str(v) for k, v in self._portfolio.cash(acct).items()} for acct in self._portfolio.accounts()},
        }
        if message.invariants:
            stats["risk_invariants"] = self._risk.check_invariants()
            stats["book_invariants"] = self._books_invariants()
        return stats

    def _books_invariants(self) -> list[str]:
        grouped: dict[tuple[str, str], list] = {}
        for rec in self._orders.values():
            for fill in rec.fills:
                grouped.setdefault((self._book_of(rec.account_id, rec.adapter_id), rec.symbol), []).append((rec.side, fill))
        try:
            return self._portfolio.check_invariants(grouped, self._table.retired if self._table.archived else None)
        except Exception as exc:  # noqa: BLE001 - the check itself must never break a query
            return [f"invariant check failed: {exc!r}"]

    # -- applying changes ----------------------------------------------------------------
    def _apply_venue_state(self, rec: OrderRecord, state: VenueOrderState, *, cause: str, fill: Fill | None = None) -> None:
        if self._receipts_fd is not None:
            self._pending_receipts.append((rec.adapter_id, cause, state))
        if rec.status is OrderStatus.RESERVED:
            # the venue holds the order, so it was sent: a group-commit venue's SUBMITTED step comes with the
            # call's outcome (actors/execution/adapter.py, _send), and the venue's event (a fill of the group's
            # write, pushed by market data) can come first
            rec.attempts = max(rec.attempts, 1)
            self._transition(rec, E.SUBMITTED, f"sent to {rec.adapter_id} ({cause})", defer_flush=True)
        before_status = rec.status
        before_transitions = len(rec.transitions)
        before_overfills = len(rec.overfills)
        before_anomalies = len(rec.anomalies)
        try:
            new_fills = rec.apply_venue_state(state, fill=fill, ts=self._now())
        except (IllegalTransition, ValueError) as exc:
            logger.error("venue state for {} not applied: {}", rec.client_order_id, exc)
            return
        if rec.status is OrderStatus.PENDING_CANCEL and state.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED) \
                and cause.startswith(("reconciled", "recovered")):
            # the venue proves the order is still working: the cancel never took effect
            try:
                rec.apply_event(E.CANCEL_REJECTED, cause=f"{cause}: venue says {state.status.value}, the cancel did not happen",
                                ts=self._now())
            except IllegalTransition as exc:
                logger.error("order {}: {}", rec.client_order_id, exc)
        if rec.status is OrderStatus.UNKNOWN and state.status in _UNKNOWN_EXIT:
            # the venue proves the order is live (or done) but no new fill moved it out of UNKNOWN
            try:
                rec.apply_event(_UNKNOWN_EXIT[state.status], cause=f"{cause}: venue says {state.status.value}", ts=self._now())
            except IllegalTransition as exc:
                logger.error("order {}: {}", rec.client_order_id, exc)
        fills: list[Fill] = []
        if new_fills:
            book = self._book_of(rec.account_id, rec.adapter_id)
            fills = [self._book_applied(rec, book, booking) for booking in new_fills]
            if self._recording:
                for applied in fills:
                    self._pending_fills.append((rec, applied))
                    if self._audit is not None:
                        self._pending_audit.append(("fill", rec, applied))
        for note in rec.anomalies[before_anomalies:]:
            logger.warning("order {}: venue report contradicts the book and was not applied: {}", rec.client_order_id, note)
        if len(rec.overfills) > before_overfills:
            self._overfills += len(rec.overfills) - before_overfills
            for fill in rec.overfills[before_overfills:]:
                logger.error("overfill on {}: fill {} would exceed quantity {}; recorded, not applied",
                             rec.client_order_id, fill.trade_id, rec.quantity)
                self._publish(OverfillDetected(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id,
                                               adapter_id=rec.adapter_id, status=rec.status, fill=fill,
                                               reason="fill exceeds order quantity"))
        self._after_change(rec, before_status, before_transitions, cause, fills=fills)

    def _book_applied(self, rec: OrderRecord, book: str, booking: Fill | FillBooking) -> Fill:
        """Book one applied fill (or a real fill that covered synthetic quantity) in the portfolio,
        keep risk in step with what it booked; return the fill as reported."""
        self._venue_books.on_booking(rec.adapter_id, rec.symbol, rec.side, booking)
        booked = self._portfolio.book(book, rec.strategy_id, rec.symbol, rec.side, booking)
        if booked.spent is not None:
            self._risk.on_fill(book, rec.client_order_id, booked.spent)
        if booked.correction:
            self._risk.on_reprice(book, booked.correction)
        return booked.fill

    def _transition(self, rec: OrderRecord, event: OrderEventType, cause: str, *, report=None, defer_flush: bool = False) -> None:
        """Apply ``event`` to ``rec`` and queue its journal rows and audit lines (written by the next
        flush). ``defer_flush``: the caller flushes itself (``_flush_if_idle``) once it has told the
        order onward, so the ledger's own commit is never on an order's path to its venue."""
        before_status = rec.status
        before_transitions = len(rec.transitions)
        try:
            rec.apply_event(event, cause=cause, ts=self._now())
        except IllegalTransition as exc:
            logger.error("order {}: {} (cause: {})", rec.client_order_id, exc, cause)
            return
        self._after_change(rec, before_status, before_transitions, cause, report=report, defer_flush=defer_flush)

    def _idle(self) -> bool:
        """The group commit's moment: no message waits behind this one, and this is not one order of
        a batch message (``SubmitOrders``, ``OrdersFinished``: the batch is written once it is done)."""
        if self._batching:
            self._flush_due = True  # written when the batch is done (handle_SubmitOrders, handle_OrdersFinished)
            return False
        return self.actor_inbox.empty()

    def _flush_if_idle(self) -> None:
        """Group commit: write the queued rows and audit lines when no message waits behind them."""
        self._flush_due = False
        if (self._pending_rows or self._pending_fills or self._pending_audit) and self._idle():
            self._flush()

    def _after_change(self, rec: OrderRecord, before: OrderStatus, before_transitions: int, cause: str, *, fills=(), report=None,
                      defer_flush: bool = False) -> None:
        new = rec.transitions[before_transitions:]
        if new and self._clock is not None:
            if rec.status in _WATCHED:
                self._watched[rec.client_order_id] = self._clock.monotonic()
                self._arm_quiet_check()
            else:
                self._watched.pop(rec.client_order_id, None)
            if self._max_open_age_s is not None:
                self._track_open_age(rec)
            if self._tracking:
                self._track_working(rec)
        if new and self._escalated:
            self._escalated.pop(rec.client_order_id, None)
        for t in new:
            if self._recording:
                self._pending_rows.append((rec, t))
                if self._audit is not None:
                    self._pending_audit.append(("transition", rec, t))
            if t.to_status is OrderStatus.UNKNOWN:
                self._ever_unknown.add(rec.client_order_id)
            elif t.from_status is OrderStatus.UNKNOWN:
                self._unknown_resolved += 1
                if t.to_status is not OrderStatus.SUBMITTING:
                    self._settled(rec)
        if rec.status.is_terminal:
            if not before.is_terminal:
                parent = self._resubmittable.pop(rec.client_order_id, None) if self._resubmittable else None
                if parent is None or not self._resubmit_remainder(rec, parent):
                    self._risk.release(self._book_of(rec.account_id, rec.adapter_id), rec.client_order_id)
            if self._archiving:  # changed: (re)queued as the newest terminal order, its archive row stale
                self._table.changed_terminal(rec)
            if self._waiters:
                for reply in self._waiters.pop(rec.client_order_id, ()):
                    self._answer_wait(reply, rec)
            if self._alerts is not None:
                self._alerts.record_outcome(self._clock.monotonic(), rejected=rec.status in _REFUSED)
                self._arm_alert_check()
        if self._publishing:
            self._publish_changes(rec, new, cause, fills, report)
        if (self._pending_rows or self._pending_fills) and (len(self._pending_rows) > 512 or (not defer_flush and self._idle())):
            self._flush()

    def _settled(self, rec: OrderRecord) -> None:
        """An order left UNKNOWN on positive evidence from any source (a lookup, an event, a fill):
        a retry of its id now replays this report, and its adapter stops looking it up."""
        tell(self._idempotency, CompleteOrder(rec.account_id, rec.client_order_id, rec.snapshot()))
        if rec.adapter_id:
            tell(self._router, ForwardReconcile(rec.adapter_id, (rec.client_order_id,), resolved=True))

    def _publish_changes(self, rec: OrderRecord, new: list, cause: str, fills, report) -> None:
        # one event per fill (PartiallyFilled/Filled), and one per status change that is not a fill
        fill_statuses = {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED}
        for fill in fills:
            event_type = ORDER_EVENT_BY_STATUS[OrderStatus.FILLED if rec.cum_qty >= rec.quantity else OrderStatus.PARTIALLY_FILLED]
            self._publish(event_type(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id, adapter_id=rec.adapter_id,
                                     status=rec.status, fill=fill, reason=cause))
        for t in new:
            if t.to_status in fill_statuses and fills:
                continue
            status_event = ORDER_EVENT_BY_STATUS.get(t.to_status)
            if status_event is None:
                continue
            code = rec.error.code if rec.error is not None and t.to_status in _ERROR_STATUSES else None
            self._publish(status_event(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id, adapter_id=rec.adapter_id,
                                       status=t.to_status, report=report, code=code, reason=t.cause))

    # -- in-flight checks (after NautilusTrader's inflight_check_interval/threshold) ------
    def _arm_alert_check(self) -> None:
        if self._alert_timer is None:
            ref = self.actor_ref
            self._alert_timer = self._clock.call_later(self._alert_interval_s, lambda: tell(ref, AlertTick()))

    def handle_AlertTick(self, message: AlertTick) -> None:
        """Evaluate the alert window; publish, log and audit what changed; keep ticking while it holds anything."""
        self._alert_timer = None
        if self._alerts is None:
            return
        for event in self._alerts.evaluate(self._clock.monotonic()):
            logger.warning("alert: {}", event)
            self._audit_line("alert", {"event": event.name, **event.model_dump(mode="json", exclude={"ts", "seq"})})
            self._publish(event)
        if not self._alerts.idle:
            self._arm_alert_check()

    def _arm_quiet_check(self) -> None:
        if self._quiet_timer is None and self._watched:
            ref = self.actor_ref
            self._quiet_timer = self._clock.call_later(self._quiet_interval_s, lambda: tell(ref, QuietCheck()))

    def handle_QuietCheck(self, message: QuietCheck) -> None:
        """Orders quiet in RESERVED, SUBMITTING or PENDING_CANCEL past the threshold are asked about at
        their venue (through the router and breaker to the adapter, which skips what is still in its hands)."""
        self._quiet_timer = None
        now = self._clock.monotonic()
        by_adapter: dict[str, list[str]] = {}
        for cl_id, since in list(self._watched.items()):
            if now - since < self._quiet_threshold_s:
                continue
            rec = self._orders.get(cl_id)
            if rec is None or rec.status not in _WATCHED:
                self._watched.pop(cl_id, None)
                continue
            by_adapter.setdefault(rec.adapter_id, []).append(cl_id)
            self._watched[cl_id] = now  # ask again only after another quiet period
        for adapter_id, ids in by_adapter.items():
            logger.info("{} order(s) quiet on {} for {:g} s: asking the venue", len(ids), adapter_id, self._quiet_threshold_s)
            tell(self._router, ForwardReconcile(adapter_id, tuple(ids)))
        self._arm_quiet_check()

    # -- live order tracking ([tracking]; seeds 001, 002) -------------------------------------
    def _track_working(self, rec: OrderRecord) -> None:
        working = self._working.get(rec.adapter_id)
        if working is None:
            return
        cl_id = rec.client_order_id
        if rec.status in _TRACKED:
            if cl_id not in working:
                now = self._clock.monotonic()
                if not working:  # silence counts from when something could be missed
                    self._heard[rec.adapter_id] = now
                working[cl_id] = now  # first looked up one interval from now
                self._arm_track(rec.adapter_id)
        else:
            working.pop(cl_id, None)

    def _arm_track(self, adapter_id: str) -> None:
        working = self._working[adapter_id]
        if adapter_id in self._track_timers or not working:
            return
        t = self._tracking[adapter_id]
        interval = t.silent_interval_s if adapter_id in self._polling else t.interval_s
        rounds = -(-len(working) // t.page_size)  # pages per interval: every order once per interval
        ref = self.actor_ref
        self._track_timers[adapter_id] = self._clock.call_later(interval / rounds, lambda: tell(ref, TrackTick(adapter_id)))

    def handle_TrackTick(self, message: TrackTick) -> None:
        """One tracking round: the working orders of one adapter not looked up for an interval,
        least recently looked up first, one page at most, go to the adapter (``TrackOrders``).
        The interval is ``silent_interval_s`` while the venue's event stream is silent."""
        adapter_id = message.adapter_id
        self._track_timers.pop(adapter_id, None)
        working = self._working.get(adapter_id)
        if not working:
            return
        t = self._tracking[adapter_id]
        now = self._clock.monotonic()
        quiet_for = now - self._heard.get(adapter_id, now)
        silent = quiet_for >= t.silence_s
        if silent != (adapter_id in self._polling):
            if silent:
                self._polling.add(adapter_id)
                reason = (f"no event from {adapter_id} for {quiet_for:g} s with {len(working)} order(s) working: "
                          f"polling every {t.silent_interval_s:g} s")
                logger.warning("live order tracking: {}", reason)
            else:
                self._polling.discard(adapter_id)
                reason = f"events from {adapter_id} flow again: looking orders up every {t.interval_s:g} s"
                logger.info("live order tracking: {}", reason)
            self._audit_line("order_tracking", {"adapter_id": adapter_id, "polling": silent, "reason": reason})
            self._publish(OrderTrackingChanged(adapter_id=adapter_id, polling=silent, reason=reason))
        interval = t.silent_interval_s if silent else t.interval_s
        due: list[str] = []
        for cl_id, last in working.items():
            if now - last < interval or len(due) >= t.page_size:
                break
            due.append(cl_id)
        for cl_id in due:  # to the back of the line
            del working[cl_id]
            working[cl_id] = now
        if due:
            tell(self._router, TrackOrders(adapter_id, tuple(due)))
        self._arm_track(adapter_id)

    def _tracked_state(self, rec: OrderRecord, message: OrderReconciledWith, state: VenueOrderState) -> None:
        """A tracking lookup's answer: the reconciliation path (each trade id once); only a change
        (a fill or a status the event stream did not bring) is logged and published."""
        if rec.status.is_terminal:
            return
        self._reconciled(rec, message.adapter_id, state, cause="tracked: looked up at the venue",
                         reason=f"live tracking: venue says {state.status.value}", changes_only=True)

    # -- open-age limit (orders.max_open_age_s; seed 002's order timeout) -----------------
    def _track_open_age(self, rec: OrderRecord) -> None:
        cl_id = rec.client_order_id
        if rec.status.is_terminal:
            self._open_since.pop(cl_id, None)
        elif rec.status in _AGED and cl_id not in self._open_since:
            self._open_since[cl_id] = self._clock.monotonic()
            self._arm_age_check()

    def _arm_age_check(self) -> None:
        max_age = self._max_open_age_s
        if self._age_timer is None and self._open_since and max_age is not None:
            oldest = next(iter(self._open_since.values()))
            delay = max(0.0, oldest + max_age - self._clock.monotonic())
            ref = self.actor_ref
            self._age_timer = self._clock.call_later(delay, lambda: tell(ref, OpenAgeCheck()))

    def handle_OpenAgeCheck(self, message: OpenAgeCheck) -> None:
        """Cancel, at their venue, the orders open for ``max_open_age_s`` or longer (oldest first).

        An order already PENDING_CANCEL is left to its cancel; one whose cancel the venue refused
        (back to working) is canceled again one more age later."""
        self._age_timer = None
        now, age = self._clock.monotonic(), self._max_open_age_s
        while self._open_since:
            cl_id, since = next(iter(self._open_since.items()))
            if now - since < age:
                break
            del self._open_since[cl_id]
            rec = self._orders.get(cl_id)
            if rec is None or rec.status not in _AGED or rec.status is OrderStatus.PENDING_CANCEL:
                continue
            logger.info("order {} open for {:g} s (max_open_age_s): canceling it at {}", cl_id, now - since, rec.adapter_id)
            self.handle_CancelOrder(CancelOrder(cl_id, rec.account_id, Future(), now_ns(),
                                                reason=f"open longer than max_open_age_s ({age:g} s)"))
        self._arm_age_check()

    def _book_of(self, account_id: str, adapter_id: str) -> str:
        """The position/risk book of an order: the account itself, or ``<account>@<adapter>`` for a
        shadow adapter, whose fills show what would have happened without touching the primary books."""
        return f"{account_id}@{adapter_id}" if adapter_id in self._shadow_adapters else account_id

    def _publish(self, event) -> None:
        tell(self._bus, Publish(event))

    def _unmatched(self, what: str, client_order_id: str) -> None:
        self._unmatched_venue_events += 1
        logger.warning("{} for unknown order {}", what, client_order_id)

    # -- durability ----------------------------------------------------------------------
    def _audit_line(self, kind: str, data: dict) -> None:
        """Queue one audit line that is not a transition or a fill; written with the next batch."""
        if self._audit is not None:
            self._pending_audit.append((kind, None, data))
            if self._idle():
                self._flush()

    @staticmethod
    def _transition_data(rec: OrderRecord, t: Transition) -> dict:
        """The audit line of one transition. The order's first line also holds the intent and its
        route (NEW), the RESERVED line a slippage cap, an error status the code and reason."""
        data = {"client_order_id": rec.client_order_id, "account_id": rec.account_id, "seq": t.seq,
                "from": t.from_status._value_, "to": t.to_status._value_, "cause": t.cause, "ts": t.ts.isoformat()}
        if t.seq == 1:
            route = rec.route
            data.update(symbol=rec.symbol, side=rec.side._value_, order_type=rec.order_type._value_, quantity=str(rec.quantity),
                        limit_price=None if rec.limit_price is None else str(rec.limit_price), time_in_force=rec.time_in_force,
                        route_id=route.route_id if route else "", routing_reason=route.routing_reason if route else "",
                        adapter_id=rec.adapter_id)
            if rec.strategy_id or rec.session_id or rec.correlation_id:
                data.update(rec.attribution)
        if t.to_status is OrderStatus.RESERVED and rec.reserved_at_intake is not None:
            data["reserved"] = str(rec.reserved_at_intake)
        if t.to_status is OrderStatus.RESERVED and rec.price_capped_from is not None:
            data["slippage_cap"] = {"limit_price": str(rec.price_capped_from), "capped_to": str(rec.limit_price)}
        if t.to_status in _ERROR_STATUSES and rec.error is not None:
            data["code"] = rec.error.code.value
            data["reason"] = rec.error.message[:500]
        return data

    @staticmethod
    def _fill_data(rec: OrderRecord, fill) -> dict:
        data = {
            "client_order_id": rec.client_order_id, "account_id": rec.account_id, "trade_id": fill.trade_id,
            "qty": str(fill.qty), "price": str(fill.price), "fee": str(fill.fee), "fee_currency": fill.fee_currency,
            "liquidity": fill.liquidity._value_, "side": rec.side._value_, "symbol": rec.symbol, "ts": fill.ts.isoformat(),
        }
        if rec.strategy_id:
            data["strategy_id"] = rec.strategy_id
        return data

    def _flush(self, *, archive_all_due: bool = False) -> None:
        if self._in_window:
            self._prune_window()
        rows, self._pending_rows = self._pending_rows, []
        fills, self._pending_fills = self._pending_fills, []
        lines, self._pending_audit = self._pending_audit, []
        audit = self._audit
        if audit is not None and (lines or "audit" in self._write_failures):
            try:
                if lines:
                    # queued inside the log in its own order (hash chain) even when the write below fails
                    audit.append_encoded([
                        (kind, _transition_line(rec, item) if kind == "transition" else _fill_line(rec, item) if kind == "fill"
                         else _data_json(item))
                        for kind, rec, item in lines
                    ])
                if self._faults:
                    self._faults.check("audit")
                audit.flush()
            except Exception as exc:  # noqa: BLE001 - any audit write failure halts trading (_write_failed)
                self._write_failed("audit", exc, getattr(audit, "pending", 0))
            else:
                self._write_ok("audit")
        if self._journal is not None:
            if self._backlog_rows or self._backlog_fills:  # what a failed write left, before anything newer
                rows, self._backlog_rows = self._backlog_rows + rows, []
                fills, self._backlog_fills = self._backlog_fills + fills, []
            due = [] if "ledger_journal" in self._write_failures else self._archive_due(archive_all_due)
            if rows or fills or due:
                written = self._journal_write(rows, fills, due)
                if written is not False:
                    self._write_ok("ledger_journal")
                    if written:  # the archive rows too (None: the rows were written one by one, without them)
                        for rec in due:
                            self._retire(rec)
                else:  # what is left to write: a refused row is not (see _write_isolating)
                    self._backlog_rows, self._backlog_fills = rows, fills
        if self._pending_receipts:
            self._write_receipts()
        shared = self._risk.shared
        if shared is not None and shared.pending:
            shared.flush()  # the shared budget's true-ups (releases, fills) with each batch

    def _write_receipts(self) -> None:
        """Append the batch's venue receipts to ``receipts.jsonl`` (no fsync: evidence, not state)."""
        receipts, self._pending_receipts = self._pending_receipts, []
        fd = self._receipts_fd
        if fd is None:  # never: receipts are queued only while the file is open
            return
        # the runtime's clock, as the transitions and the audit lines are stamped (retention compares them all)
        stamp = self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            blob = "".join(json.dumps({"ts": stamp, "adapter_id": adapter_id, "cause": cause, "state": state.model_dump(mode="json")},
                                      sort_keys=True, separators=(",", ":")) + "\n" for adapter_id, cause, state in receipts)
            os.write(fd, blob.encode())
        except Exception as exc:  # noqa: BLE001 - receipts are best effort; the order flow goes on
            logger.opt(exception=exc).error("could not record {} venue receipt(s)", len(receipts))

    def _journal_write(self, rows: list, fills: list, due=()) -> bool | None:
        """Write the batch's transition ``rows`` and ``fills`` (``(record, item)`` pairs, in order)
        and the ``due`` orders' archive rows in one transaction: True once written. When the
        journal refuses the batch for its values (``ValueError``/``TypeError``/``OverflowError``:
        what ``JournalStore`` raises for bad input, nothing written) rather than for a failing
        write, the rows are written one by one and the refused ones left out
        (:meth:`_write_isolating`): None, the archive rows not written. False when the write failed
        (trading HALTED, :meth:`_write_failed`); ``rows`` and ``fills`` then hold what is left to
        retry (without a refused row)."""
        from ..journal.sqlite import ArchivedOrder

        try:
            archive = []
            if due:
                from .archive import archive_json

                now = self._wall()
                archive = [ArchivedOrder(rec.client_order_id, rec.account_id, rec.status.value, now, archive_json(rec))
                           for rec in due if not self._table.archive_current(rec.client_order_id)]
            if self._faults:
                self._faults.check("ledger")
            self._record_ledger(rows, fills, archive)
            return True
        except _REFUSED_INPUT:
            return self._write_isolating(rows, fills)
        except Exception as exc:  # noqa: BLE001 - any journal failure halts trading (_write_failed)
            self._write_failed("ledger_journal", exc, len(rows) + len(fills))
            return False

    def _record_ledger(self, rows, fills, archive) -> None:
        """One ``record_ledger`` transaction of ``(record, transition)`` rows and ``(record, fill)`` fills."""
        record_params = getattr(self._journal, "record_ledger_params", None)
        if record_params is not None:  # SQLite: the rows straight from the records (see _event_params)
            record_params([_event_params(rec, t) for rec, t in rows], [_fill_row_params(rec, fill) for rec, fill in fills],
                          archive)
        else:
            self._journal.record_ledger(
                [_event_row(OrderEventRow, rec, t) for rec, t in rows],
                [FillRow(adapter_id=rec.adapter_id or "?", account_id=rec.account_id, client_order_id=rec.client_order_id,
                         symbol=rec.symbol, side=rec.side, fill=fill) for rec, fill in fills],
                *((archive,) if archive else ()),
            )

    def _write_isolating(self, rows: list, fills: list) -> bool | None:
        """The journal refused the batch for a value in it: write each row in its own transaction,
        in order (a re-written row is a no-op: rows are unique per order and seq, fills per trade
        id), and leave out each row it refuses — retrying a refused row would fail at every retry
        and keep trading HALTED for ever. Each refused row: an error log, a ``journal_row_refused``
        audit line (the audit log holds the row itself) and a :class:`JournalRowRefused` event; its
        order needs an operator. None once every other row is written; False when a write fails
        for another reason (:meth:`_write_failed`), ``rows``/``fills`` left holding the rest."""
        items: list[tuple[str, OrderRecord, Any]] = [("transition", rec, t) for rec, t in rows]
        items += [("fill", rec, fill) for rec, fill in fills]
        refused: list[tuple[str, OrderRecord, Any, str]] = []
        failure: Exception | None = None
        for kind, rec, item in items:
            try:
                if kind == "transition":
                    self._record_ledger([(rec, item)], [], [])
                else:
                    self._record_ledger([], [(rec, item)], [])
            except _REFUSED_INPUT as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                bare = False
                try:  # the transition itself, without what its report added: the order's status history stays whole
                    if kind == "transition":
                        self._journal.record_ledger([_bare_event_row(rec, item)], [])
                        bare = True
                except _REFUSED_INPUT:
                    bare = False
                except Exception as write_exc:  # noqa: BLE001 - a failing write: the rest is retried (_write_failed)
                    failure = write_exc
                    break
                refused.append((kind, rec, item, error + ("; written without its report fields" if bare else "")))
            except Exception as exc:  # noqa: BLE001 - a failing write: the rest is retried (_write_failed)
                failure = exc
                break
        gone = {id(item) for _, _, item, _ in refused}
        rows[:] = [(rec, t) for rec, t in rows if id(t) not in gone]
        fills[:] = [(rec, f) for rec, f in fills if id(f) not in gone]
        for kind, rec, item, error in refused:
            self._row_refused(kind, rec, item, error)
        if failure is not None:
            self._write_failed("ledger_journal", failure, len(rows) + len(fills))
            return False
        return None

    def _row_refused(self, kind: str, rec: OrderRecord, item: Any, error: str) -> None:
        """Say that the journal refused ``rec``'s row ``item`` (see :meth:`_write_isolating`)."""
        what = f"transition {item.seq} ({item.from_status._value_} -> {item.to_status._value_})" if kind == "transition" \
            else f"fill {item.trade_id}"
        self._refused_rows = {"count": self._refused_rows.get("count", 0) + 1, "last_client_order_id": rec.client_order_id,
                              "last_kind": kind, "last_reason": f"{what}: {error}"}
        self._save_refused()
        logger.error("order {}: the ledger journal refused its {} ({}); the rest of the batch is written, this row is "
                     "not retried: the order needs an operator (its journaled history lacks this row; the audit log has it)",
                     rec.client_order_id, what, error)
        audit = self._audit
        if audit is not None:
            try:
                audit.append_many([("journal_row_refused", {"client_order_id": rec.client_order_id, "account_id": rec.account_id,
                                                            "row": what, "error": error})])
                audit.flush()
            except Exception as exc:  # noqa: BLE001 - any audit write failure halts trading (_write_failed)
                self._write_failed("audit", exc, getattr(audit, "pending", 0))
        self._publish(JournalRowRefused(client_order_id=rec.client_order_id, **rec.attribution, account_id=rec.account_id,
                                        adapter_id=rec.adapter_id or "", status=rec.status, kind=kind,
                                        reason=f"{what}: {error}"))

    # -- fail closed on durable writes (docs/DESIGN.md "Durability") -----------------------
    def _write_failed(self, store: str, exc: BaseException, pending: int) -> None:
        """A durable write of ``store`` failed: its records stay queued, trading is HALTED (new orders
        denied, cancels pass), an event, a metric and ``health()`` say so, and a timer retries it."""
        info = self._write_failures.get(store)
        first = info is None
        if info is None:
            info = self._write_failures[store] = {"error": "", "attempts": 0, "pending": 0}
        info["attempts"] += 1
        info["error"] = f"{type(exc).__name__}: {exc}"[:300]
        info["pending"] = pending
        reason = f"durable write to {store} failed: {info['error']}"
        self._auto_causes[f"durable:{store}"] = reason  # no automatic resume while it is failing
        if self._risk.state is not TradingState.HALTED and self._state_before_halt is None:
            self._state_before_halt = self._risk.state
            self._set_trading_state(TradingState.HALTED, reason, automatic=True)
            logger.error("trading HALTED: durable write to {} failed ({}); new orders are denied until it is written",
                         store, info["error"])
        elif first:
            logger.error("durable write to {} failed ({}); trading stays HALTED until it is written", store, info["error"])
        else:
            logger.warning("durable write to {} failed again (attempt {}): {}", store, info["attempts"], info["error"])
        if self._metrics is not None:
            self._metrics.durable_write_failed(store, pending)
        self._publish(DurableWriteFailed(store=store, error=info["error"], pending=pending, attempt=info["attempts"]))
        self._arm_write_retry()

    def _write_ok(self, store: str) -> None:
        info = self._write_failures.pop(store, None)
        if info is None:
            return
        self._auto_causes.pop(f"durable:{store}", None)
        logger.warning("durable write to {} went through after {} failed attempt(s); {} record(s) written",
                       store, info["attempts"], info["pending"])
        if self._metrics is not None:
            self._metrics.durable_write_pending_set(store, 0)
        self._publish(DurableWriteRecovered(store=store, written=info["pending"]))
        if not self._write_failures:
            if self._retry_timer is not None:
                self._retry_timer.cancel()
                self._retry_timer = None
            before, self._state_before_halt = self._state_before_halt, None
            if before is not None and self._risk.state is TradingState.HALTED:
                self._set_trading_state(before, "every durable write went through", automatic=True)

    def _arm_write_retry(self) -> None:
        if self._retry_timer is not None or self._clock is None:
            return
        attempts = max(info["attempts"] for info in self._write_failures.values())
        delay = backoff_delay(attempts, base_s=_WRITE_RETRY_BASE_S, cap_s=_WRITE_RETRY_CAP_S, jitter=0.2, rng=self._retry_rng)
        ref = self.actor_ref
        self._retry_timer = self._clock.call_later(delay, lambda: tell(ref, RetryDurableWrites()))

    def handle_RetryDurableWrites(self, message: RetryDurableWrites) -> None:
        """Timer: write again what a failed durable write left (audit lines, journal rows)."""
        self._retry_timer = None
        if self._write_failures:
            self._flush()
            if self._write_failures:
                self._arm_write_retry()

    # -- bounded memory: archiving terminal orders (docs/DESIGN.md "Durability") -------------
    def _wall(self) -> float:
        """Epoch seconds on the runtime's clock (the idempotency TTL's time scale)."""
        return self._now().timestamp()

    def _archive_due(self, everything: bool) -> list[OrderRecord]:
        """The oldest terminal orders beyond ``keep_terminal``, once a batch of them is due (or all, at restore)."""
        if not self._archiving:
            return []
        return self._table.archive_due(batch=_ARCHIVE_BATCH, everything=everything)

    def _retire(self, rec: OrderRecord) -> None:
        """``rec`` is archived: it leaves memory (the table keeps its totals) and every schedule."""
        cl_id = rec.client_order_id
        self._table.retire(rec, self._book_of(rec.account_id, rec.adapter_id))
        self._ever_unknown.discard(cl_id)
        self._watched.pop(cl_id, None)
        self._open_since.pop(cl_id, None)

    def _order_for_update(self, client_order_id: str) -> OrderRecord | None:
        """The record a fact about ``client_order_id`` applies to: in memory, or an archived order
        brought back (a late venue event, a cancel of an old order), so no fact is ever dropped."""
        rec = self._orders.get(client_order_id)
        if rec is not None or not self._table.archived:
            return rec
        archived = self._load_archived(client_order_id)
        if archived is None:
            return None
        from .archive import restore_record

        try:
            rec = restore_record(archived.record_json)
        except Exception as exc:  # noqa: BLE001 - an unreadable archive row is logged; the ledger goes on
            logger.opt(exception=exc).error("archived order {} is unreadable", client_order_id)
            return None
        self._table.bring_back(rec, self._book_of(rec.account_id, rec.adapter_id))
        return rec

    def _load_archived(self, client_order_id: str):
        if not self._table.archived:
            return None
        try:
            return self._journal.load_archived(client_order_id)
        except Exception as exc:  # noqa: BLE001 - a query never breaks the ledger
            logger.opt(exception=exc).error("could not read archived order {} back from the journal", client_order_id)
            return None

    def _archived_report(self, client_order_id: str):
        archived = self._load_archived(client_order_id)
        if archived is None:
            return None
        from .archive import archived_report

        try:
            return archived_report(archived.record_json)
        except Exception as exc:  # noqa: BLE001 - an unreadable archive row is logged; the ledger goes on
            logger.opt(exception=exc).error("archived order {} is unreadable", client_order_id)
            return None

    def _arm_compaction(self) -> None:
        ref = self.actor_ref
        self._compact_timer = self._clock.call_later(self._compact_interval_s, lambda: tell(ref, CompactJournal()))

    def handle_CompactJournal(self, message: CompactJournal) -> None:
        """Periodic job: fold the journal rows of orders archived longer than the idempotency TTL
        into their archive rows (``SQLiteJournal.compact``), ``_COMPACT_BATCH`` orders per
        transaction; while a batch comes back full the next one is queued behind whatever waits
        in the inbox (orders interleave), so the job keeps up with any archiving rate."""
        self._compact_timer = None
        try:
            n = self._journal.compact(self._wall() - self._ttl_s, _COMPACT_BATCH)
        except Exception as exc:  # noqa: BLE001 - housekeeping: retried at the next run
            logger.opt(exception=exc).error("journal compaction failed; retried at the next run")
            n = 0
        if n:
            logger.debug("journal compaction: {} archived order(s) older than {:g} s compacted", n, self._ttl_s)
        if n >= _COMPACT_BATCH and tell(self.actor_ref, CompactJournal()):
            return
        self._arm_compaction()


    def _arm_retention(self) -> None:
        job = self._retention
        if job is None or not job.interval_s or self._clock is None or self._retention_timer is not None:
            return
        ref = self.actor_ref
        self._retention_timer = self._clock.call_later(job.interval_s, lambda: tell(ref, RetentionTick()))

    def handle_RetentionTick(self, message: RetentionTick) -> None:
        """Periodic job (``[retention] interval_s`` on the runtime's clock; actors/audit/retention.py):
        what is past its keep time leaves the live files for the archive while the runtime runs, as
        at start. The ledger holds the audit log and the receipts file open, so it rotates the
        one (``AuditLog.rotate``: a link and a rename, whatever its size) and archives the other
        itself between two batches (its queued rows written first); the journals follow
        (``RetentionJob.journals``: SQLite files or the PostgreSQL journal), idempotency records of
        orders that reached a venue kept (retired). Runs on the ledger's own thread (a durable
        ledger has one); a failure is logged and the next run tries again. The journals go in steps
        of at most ``retention.STEP_ORDERS`` orders, one message each (the next one told to itself,
        behind whatever waits), so an order never waits for more than one step."""
        if message.before is not None:  # the next step of a run
            self._retention_step(message.before, message.after)
            return
        self._retention_timer = None
        job = self._retention
        try:
            self._flush()
            now = self._now()
            before = now - timedelta(days=job.orders_days)
            lines = 0
            if self._audit is not None:
                lines = self._audit.rotate(before).lines
            receipts = 0
            if self._receipts_fd is not None:
                os.close(self._receipts_fd)
                self._receipts_fd = None
                try:
                    receipts, _ = archive_receipts(self._receipts_path, before=now - timedelta(days=job.receipts_days),
                                                   archive_dir=job.archive_dir, file_mode=job.file_mode)
                finally:
                    self._receipts_fd = os.open(self._receipts_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if lines or receipts:
                logger.info("retention: archived {} audit line(s), {} venue receipt(s) older than their keep time", lines, receipts)
        except Exception as exc:  # noqa: BLE001 - housekeeping: nothing is pruned that is not archived; the next run tries again
            logger.opt(exception=exc).error("retention run failed; the next run tries again")
            return
        finally:
            self._arm_retention()
        self._retention_step(before, None)

    def _retention_step(self, before: datetime, after: tuple[float, int] | None) -> None:
        """One step of the journals' part of a retention run (``RetentionJob.journals``: at most
        ``STEP_ORDERS`` orders); tells itself the next one while candidates are left."""
        try:
            orders, events, fills, _, cursor = self._retention.journals(before, after)
        except Exception as exc:  # noqa: BLE001 - housekeeping: nothing is pruned that is not archived; the next run tries again
            logger.opt(exception=exc).error("retention run failed; the next run tries again")
            return
        if orders:
            logger.info("retention: archived {} order(s) ({} transition(s), {} fill(s)) that ended before {}", orders, events, fills,
                        before.isoformat())
        if cursor is not None:
            tell(self.actor_ref, RetentionTick(before, cursor))


#: journal compaction folds this many archived orders per transaction
_COMPACT_BATCH = 10_000
#: a failed durable write is retried after min(base · 2^(n-1), cap) seconds (± 20 % jitter)
_WRITE_RETRY_BASE_S = 0.05
_WRITE_RETRY_CAP_S = 5.0
#: archive terminal orders this many at a time (one extra row each in the ledger's own transaction)
_ARCHIVE_BATCH = 256
