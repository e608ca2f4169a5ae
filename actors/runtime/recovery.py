"""Crash recovery: rebuild the books from the journal and reconcile every order in doubt (docs/DESIGN.md, Durability, README.md, Write an adapter).

Runs once in ``Runtime.start``, in the starting thread, before any actor accepts an order,
so no new order reaches an adapter before that adapter's orders in doubt were asked about.

1. Every IN_PROGRESS idempotency record becomes UNKNOWN (the process died while it was in
   flight: the venue may or may not have it).
2. The order ledger is rebuilt from the journal: each claimed intent with its journaled
   transitions and fills (fills once per trade_id).
3. Every order in doubt — idempotency UNKNOWN, or a journaled status that is not terminal —
   is looked up at its venue by client order id (``fetch_order``), with a few retries for
   not-delivered errors, and the answer is classified by ``protocols.classify_lookup`` with
   the adapter's capabilities:

   - found: its state is adopted (status and fills by trade_id) through the ledger, an
     ``OrderReconciled`` event is published and the cached report is updated;
   - proven absent: the order never left, it is FAILED (E_EXEC_NETWORK, "never delivered").
     It is **not** re-sent: the intent belongs to a process that died, and re-sending a stale
     intent is a trading decision, not recovery. REJECTED and CANCELED are only ever set from
     the venue's own answer. The time since the last send is taken as 0 here (the send
     happened before this start, nothing more is known), so only a venue whose propagation
     window is 0 (``absence_window_s``) proves absence at start; for any other the adapter
     actor inherits the order with the start time as its last send and proves absence once
     the window has passed (the ledger then fails it the same way);
   - unknown (not found without proof, an error): the order stays UNKNOWN and the adapter
     actor keeps asking (its reconciliation loop), never inferring a terminal state.

Every lookup has a timeout (a venue that hangs must not hang ``Runtime.start``): the calls of
one venue run on a worker thread of their own (``VenueWorker``, as the adapter actor's calls
do) and the starting thread waits at most ``lookup_timeout_s`` for each answer, and at most
``budget_s`` for all of them. A venue that misses a deadline is not asked again during start
(its worker is stuck inside it): its remaining orders in doubt stay UNKNOWN ("unresolved") and
the adapter actor's reconciliation loop asks again once the runtime runs. So recovery returns
within about ``budget_s`` whatever the venues do.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from loguru import logger

from protocols import (
    ErrorCode,
    ExecError,
    ExecutionContext,
    ExecutionReport,
    NotDeliveredError,
    OrderIntent,
    OrderStatus,
    VenueOrderState,
    adapter_capabilities,
    classify_lookup,
    storable_venue_state,
)

from ..execution.adapter import VenueWorker
from ..execution.messages import VenueCallCompleted
from ..journal.sqlite import Completion, FillRow, JournalStore, OrderEventRow
from ..orders.archive import archived_transitions

_FETCH_TRIES = 5


class RecoveryOutcome(str, Enum):
    """What recovery did with one journaled order (the three-valued lookup of docs/DESIGN.md
    "Reconciliation", plus the orders it did not ask about). The values are the names the
    ``flowroute recover`` summary and ``RecoveryReport.counts()`` print.

    ``UNCHANGED``: nothing to ask (terminal, or a restart while running: docs/DESIGN.md "Failure
    handling"); ``RECONCILED``: found at its venue, its state adopted; ``NEVER_DELIVERED``: the
    venue proved absence, the order is FAILED (never re-sent); ``UNRESOLVED``: the venue could
    not answer, the order stays UNKNOWN for the adapter actor's reconciliation loop.
    """

    UNCHANGED = "unchanged"
    RECONCILED = "reconciled"
    NEVER_DELIVERED = "never_delivered"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class RecoveredOrder:
    """One journaled order to restore in the ledger, and what the venue said about it.

    ``outcome``: a :class:`RecoveryOutcome`; ``venue_state``: the venue's answer when
    RECONCILED; ``note``: why (the venue's status, or why it could not answer).
    """

    intent: OrderIntent
    context: ExecutionContext
    adapter_id: str
    transitions: tuple[OrderEventRow, ...]
    fills: tuple[FillRow, ...]
    outcome: RecoveryOutcome
    venue_state: VenueOrderState | None = None
    previous_status: OrderStatus = OrderStatus.UNKNOWN
    idempotency_status: str = "COMPLETED"
    note: str = ""
    #: the ledger archived this (terminal) order: its archive row is current (actors/orders/archive.py)
    archived: bool = False


@dataclass
class RecoveryReport:
    """What recovery found and did: counts by outcome and the orders themselves."""

    orders: list[RecoveredOrder] = field(default_factory=list)
    marked_unknown: int = 0
    skipped: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of orders per outcome (keyed by ``RecoveryOutcome`` value)."""
        out: dict[str, int] = {}
        for order in self.orders:
            out[order.outcome.value] = out.get(order.outcome.value, 0) + 1
        return out

    @property
    def in_doubt(self) -> list[RecoveredOrder]:
        """Orders that were asked about at their venue."""
        return [o for o in self.orders if o.outcome is not RecoveryOutcome.UNCHANGED]


def recover(journal: JournalStore, venues: dict[str, Any], ledger_journal: JournalStore | None = None,
            wall: Callable[[], float] = time.time, *, lookup_timeout_s: float = 2.0, budget_s: float = 30.0,
            now: Callable[[], datetime] | None = None) -> RecoveryReport:
    """Rebuild and reconcile from ``journal`` against ``venues`` (adapter id → BrokerAdapter).

    ``journal`` holds the idempotency records; ``ledger_journal`` (default: the same store) the
    ledger's transitions and fills. ``wall``: epoch seconds now (the runtime's clock), the time
    scale of the idempotency records' timestamps (their TTL). ``now``: the runtime's clock
    (``Clock.now``, aware UTC), the ``ts`` of the reports cached for retries (default: ``wall``
    as a UTC datetime). ``lookup_timeout_s``: the longest
    wait for one ``fetch_order`` answer (seconds); ``budget_s``: for all of them together.

    Writes the reconciled answers back as idempotency completions, so a caller who retries a
    client order id after the restart gets the reconciled report (``replay=True``).
    """
    report = RecoveryReport()
    report.marked_unknown = journal.mark_all_unknown(wall())
    records = journal.load_records()
    if not records:
        return report
    transitions, fills, archived = _load_history(ledger_journal if ledger_journal is not None else journal)
    completions: list[Completion] = []
    deadline = time.monotonic() + budget_s
    lookups: dict[str, _VenueLookups] = {}
    try:
        stamp = now if now is not None else (lambda: datetime.fromtimestamp(wall(), UTC))
        _reconcile_records(records, transitions, fills, venues, lookups, lookup_timeout_s, deadline, wall, stamp, report,
                           completions, archived)
    finally:
        for asker in lookups.values():
            asker.close()
    if completions:
        journal.complete_batch(completions)
    logger.info("recovery: {} journaled order(s), {} asked at their venue: {}", len(report.orders), len(report.in_doubt), report.counts())
    return report


def _load_history(history: JournalStore) -> tuple[dict, dict, set]:
    """The ledger journal's transitions and fills by (account id, client order id), and the keys
    of archived orders (their transitions come from the archive row: compaction deleted the rows)."""
    transitions: dict[tuple[str, str], list[OrderEventRow]] = {}
    for row in history.load_orders():
        transitions.setdefault((row.account_id, row.client_order_id), []).append(row)
    archived: set[tuple[str, str]] = set()
    load_archive = getattr(history, "load_archive", None)
    if callable(load_archive):
        for a in load_archive():
            key = (a.account_id, a.client_order_id)
            archived.add(key)
            rows = transitions.setdefault(key, [])
            have = {r.seq for r in rows}
            rows.extend(OrderEventRow(seq, ts, a.account_id, a.client_order_id, x, y, cause)
                        for seq, ts, x, y, cause in archived_transitions(a.record_json) if seq not in have)
    fills: dict[tuple[str, str], list[FillRow]] = {}
    for fill_row in history.load_fills():
        fills.setdefault((fill_row.account_id, fill_row.client_order_id), []).append(fill_row)
    return transitions, fills, archived


def journaled_orders(journal: JournalStore, ledger_journal: JournalStore | None = None,
                     pending: tuple = ()) -> list[RecoveredOrder]:
    """Every journaled order as the journal holds it (outcome UNCHANGED), for a ledger
    restarted while the runtime runs (docs/DESIGN.md "Failure handling"): nothing is marked
    UNKNOWN and no venue is asked, since the orders in flight are still in flight: their
    outcomes reach the new ledger from the adapter actors. Unreadable records are skipped
    (logged).

    ``pending``: ``(intent, context, adapter id)`` of orders the crashed ledger took in before
    their claim's COMMIT returned (``LedgerHandover.in_window``). This reads committed claims
    only; one of those whose claim is not among them yet is rebuilt from its intent and the
    ledger journal's rows (the crashed ledger wrote them), so its later facts match. One the
    ledger journal has no row of is left out (logged)."""
    transitions, fills, archived = _load_history(ledger_journal if ledger_journal is not None else journal)
    out = []
    claimed: set[tuple[str, str]] = set()
    for record in journal.load_records():
        claimed.add(record.key)
        try:
            intent = OrderIntent.model_validate_json(record.intent_json)
            context = ExecutionContext.model_validate_json(record.context_json)
        except ValueError as exc:
            logger.error("ledger restart: {}: unreadable journal record ({})", record.client_order_id, exc)
            continue
        key = record.key
        rows = tuple(sorted(transitions.get(key, ()), key=lambda r: r.seq))
        last = OrderStatus(rows[-1].to_status) if rows else OrderStatus.INITIALIZED
        out.append(RecoveredOrder(intent, context, record.adapter_id, rows, tuple(fills.get(key, ())), RecoveryOutcome.UNCHANGED,
                                  previous_status=last, idempotency_status=record.status, archived=key in archived))
    for intent, context, adapter_id in pending:
        key = (context.account_id, intent.client_order_id)
        if key in claimed:
            continue
        rows = tuple(sorted(transitions.get(key, ()), key=lambda r: r.seq))
        if not rows:
            logger.error("ledger restart: {}: taken in before its claim's COMMIT and not in the ledger journal; its facts "
                         "arrive unmatched until the next start's recovery", intent.client_order_id)
            continue
        out.append(RecoveredOrder(intent, context, adapter_id, rows, tuple(fills.get(key, ())), RecoveryOutcome.UNCHANGED,
                                  previous_status=OrderStatus(rows[-1].to_status), idempotency_status="IN_PROGRESS"))
    return out


def _reconcile_records(records, transitions, fills, venues, lookups, lookup_timeout_s, deadline, wall, now, report, completions,
                       archived) -> None:
    for record in records:
        try:
            intent = OrderIntent.model_validate_json(record.intent_json)
            context = ExecutionContext.model_validate_json(record.context_json)
        except ValueError as exc:
            report.skipped.append(f"{record.client_order_id}: unreadable journal record ({exc})")
            continue
        key = record.key
        rows = tuple(sorted(transitions.get(key, ()), key=lambda r: r.seq))
        last = OrderStatus(rows[-1].to_status) if rows else OrderStatus.INITIALIZED
        in_doubt = record.status != "COMPLETED" or not last.is_terminal
        if not in_doubt:
            report.orders.append(RecoveredOrder(intent, context, record.adapter_id, rows, tuple(fills.get(key, ())), RecoveryOutcome.UNCHANGED,
                                                previous_status=last, idempotency_status=record.status, archived=key in archived))
            continue
        venue = venues.get(record.adapter_id)
        state, outcome, note = None, RecoveryOutcome.UNRESOLVED, ""
        if venue is None:
            note = f"adapter '{record.adapter_id}' is not configured any more"
        else:
            asker = lookups.get(record.adapter_id)
            if asker is None:
                asker = lookups[record.adapter_id] = _VenueLookups(record.adapter_id, venue, lookup_timeout_s, deadline)
            state, outcome, note = asker.ask(record.client_order_id)
        recovered = RecoveredOrder(intent, context, record.adapter_id, rows, tuple(fills.get(key, ())), outcome,
                                   venue_state=state, previous_status=last, idempotency_status=record.status, note=note)
        report.orders.append(recovered)
        cached = _cached_report(recovered, now())
        if cached is not None:
            completions.append(Completion(record.account_id, record.client_order_id, "COMPLETED", cached.model_dump_json(), wall()))


def _ask_venue(venue: Any, client_order_id: str, timeout_s: float = 2.0) -> tuple[VenueOrderState | None, RecoveryOutcome, str]:
    """One order's start-up lookup on its own (``(state, outcome, note)``, see :class:`_VenueLookups`)."""
    asker = _VenueLookups(venue.adapter_id, venue, timeout_s, time.monotonic() + timeout_s * _FETCH_TRIES)
    try:
        return asker.ask(client_order_id)
    finally:
        asker.close()


class _VenueLookups:
    """The start-up lookups of one venue: each ``fetch_order`` runs on this venue's own
    ``VenueWorker`` thread and is waited for at most ``timeout_s`` (and never past ``deadline``,
    a ``time.monotonic()`` value). After a missed deadline the venue is not asked again: every
    later :meth:`ask` answers UNRESOLVED at once (the order stays UNKNOWN, reconciled later)."""

    def __init__(self, adapter_id: str, venue: Any, timeout_s: float, deadline: float) -> None:
        self._adapter_id = adapter_id
        self._venue = venue
        self._timeout_s = timeout_s
        self._deadline = deadline
        self._answers: queue.SimpleQueue = queue.SimpleQueue()
        self._worker: VenueWorker | None = None
        self._calls = 0
        #: why this venue is not asked any more (None: it answers in time)
        self.hung: str | None = None

    def ask(self, client_order_id: str) -> tuple[VenueOrderState | None, RecoveryOutcome, str]:
        """``(state, outcome, note)`` for one order: outcome RECONCILED, NEVER_DELIVERED or UNRESOLVED
        (the answer classified by ``protocols.classify_lookup`` with the adapter's capabilities)."""
        try:
            caps = adapter_capabilities(self._venue)
        except TypeError as exc:
            return None, RecoveryOutcome.UNRESOLVED, str(exc)
        if not caps.supports_lookup:
            return None, RecoveryOutcome.UNRESOLVED, "the venue has no order lookup"
        note = ""
        for attempt in range(1, _FETCH_TRIES + 1):
            if self.hung is not None:
                return None, RecoveryOutcome.UNRESOLVED, self.hung
            finished, answer, error = self._call(client_order_id)
            if not finished:
                return None, RecoveryOutcome.UNRESOLVED, self.hung or ""
            if isinstance(error, NotDeliveredError):
                note = f"fetch_order not delivered ({error}); attempt {attempt}"
                continue
            if error is not None:  # ambiguous, or a venue bug: must not stop the runtime from starting
                answer = error
            elif answer is not None and not isinstance(answer, VenueOrderState):
                answer = TypeError(f"fetch_order returned {type(answer).__name__}, not a VenueOrderState or None")
            elif answer is not None:  # the venue's text as every journal can store it (as while running)
                answer, fields = storable_venue_state(answer)
                if fields:
                    logger.warning("recovery: {}'s answer for order {} held text no journal can store (a NUL character "
                                   "or a lone surrogate) in {}; kept escaped (\\x00, \\udXXX)", self._adapter_id,
                                   client_order_id, ", ".join(fields))
            lookup = classify_lookup(client_order_id, answer, caps, 0.0)
            if lookup.found:
                assert lookup.state is not None
                return lookup.state, RecoveryOutcome.RECONCILED, f"venue says {lookup.state.status.value}"
            if lookup.absent:
                return None, RecoveryOutcome.NEVER_DELIVERED, "the venue has no record of this client order id"
            return None, RecoveryOutcome.UNRESOLVED, lookup.reason
        return None, RecoveryOutcome.UNRESOLVED, note

    def _call(self, client_order_id: str) -> tuple[bool, Any, BaseException | None]:
        wait_s = min(self._timeout_s, self._deadline - time.monotonic())
        if wait_s <= 0:
            self.hung = "not asked: the start-up recovery budget was spent; reconciled after start"
            return False, None, None
        if self._worker is None:
            self._worker = VenueWorker(f"recovery-{self._adapter_id}", self._answers.put)
        self._calls += 1
        venue = self._venue
        self._worker.submit(self._calls, lambda: venue.fetch_order(client_order_id))
        try:
            answer: VenueCallCompleted = self._answers.get(timeout=wait_s)
        except queue.Empty:
            self.hung = (f"fetch_order of '{self._adapter_id}' gave no answer within {wait_s:g} s at start-up; "
                         "reconciled after start")
            logger.warning("recovery: {}", self.hung)
            return False, None, None
        return True, answer.result, answer.error

    def close(self) -> None:
        """Retire the worker (a call stuck inside the venue is abandoned; its answer is dropped)."""
        if self._worker is not None:
            self._worker.retire()
            self._worker = None


def _cached_report(order: RecoveredOrder, ts: datetime) -> ExecutionReport | None:
    """The report a retry of this client order id should replay after recovery (None: keep as is),
    stamped ``ts`` (the runtime's clock)."""
    intent, context = order.intent, order.context
    base = dict(client_order_id=intent.client_order_id, account_id=context.account_id, symbol=intent.symbol, side=intent.side, ts=ts)
    if order.outcome is RecoveryOutcome.NEVER_DELIVERED:
        return ExecutionReport(**base, status=OrderStatus.FAILED,
                               error=ExecError.of(ErrorCode.E_EXEC_NETWORK, "never delivered: the venue has no record of it (found at recovery)"))
    if order.outcome is RecoveryOutcome.RECONCILED and order.venue_state is not None:
        state = order.venue_state
        error = None
        if state.status is OrderStatus.REJECTED:
            error = ExecError.of(ErrorCode.E_EXEC_BROKER_REJECTED, state.reject_reason or "rejected by venue")
        return ExecutionReport(**base, venue_order_id=state.venue_order_id, status=state.status, fills=state.fills,
                               cum_qty=state.cum_qty, leaves_qty=state.leaves_qty, avg_px=state.avg_px,
                               fees=sum((f.fee for f in state.fills), 0), error=error)
    return None
