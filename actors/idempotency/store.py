"""The idempotency-store actor: persist-before-submit and duplicate detection (docs/DESIGN.md, Durability).

The one owner of duplicate client order ids (docs/DESIGN.md "Who owns what"): nothing after it
checks them again. Key: ``(account_id, client_order_id)``; fingerprint:
``OrderIntent.fingerprint()``; and across every account (and, on PostgreSQL, every process) a
``client_order_id`` belongs to one account only, since a venue sees the id (FIX ClOrdID, tag 11)
and not the account.

==================================  ==============================================
seen before?                        answer
==================================  ==============================================
no (or COMPLETED past its TTL)      record committed IN_PROGRESS, order goes on
same fingerprint, COMPLETED         cached report, ``replay=True``; venue not called
same fingerprint, IN_PROGRESS       E_EXEC_DUPLICATE_IN_FLIGHT
  or UNKNOWN
different fingerprint               E_EXEC_IDEMPOTENCY_CONFLICT
the id is another account's         E_EXEC_IDEMPOTENCY_CONFLICT ("held by another
  (any status)                        account"; which one is not said)
journal write fails                 E_EXEC_PERSISTENCE, nothing sent (fail closed)
==================================  ==============================================

**Group commit.** Claims and completions are collected and committed together when the
inbox runs empty (or ``group_commit_max`` is reached): every claim that arrived while the
previous transaction was committing shares the next one, so a durable (``synchronous=FULL``)
journal costs one fsync per batch, not per order. No order leaves this actor before the
transaction holding its claim has committed — or, on a durable SQLite journal, leaves it
*before* the COMMIT carrying its batch's ``ClaimTicket`` (actors/idempotency/ticket.py): the ledger,
the breaker and the adapter work while the commit's fsync is in flight, and the venue call waits
for the ticket. No venue call is made before its claim is durable; a failed commit makes the
forwarded orders DENIED (E_EXEC_PERSISTENCE, nothing sent) where the call would have been made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pykka
from loguru import logger

from protocols import ErrorCode, ExecutionReport, OrderStatus, utc_now

from ..journal.sqlite import (
    RETIRED_INTENT,
    Claim,
    Completion,
    FailureInjectable,
    JournalError,
    JournalStore,
    JournalValueRefused,
    MemoryJournal,
    SQLiteJournal,
)
from ..kernel.base import FlowActor, resolve, tell
from ..orders.messages import ClaimRefused, GuardActed, RecordDenied, ReleaseTrading, SubmitOrder, SubmitOrders
from ..orders.reporting import as_replay, error_report
from ..supervision.messages import Wire
from ..testing import InjectJournalFailure, crash_point
from .messages import CompleteOrder, CompleteOrders, FlushJournal, ReleaseClaim
from .ticket import ClaimTicket

_JOURNAL_MESSAGES = (SubmitOrder, CompleteOrder, CompleteOrders, ReleaseClaim)
#: the trading hold the supervisor takes while this store restarts (``HoldTrading.cause``)
RESTART_HOLD = "restart:idempotency"


@dataclass(frozen=True)
class StoreHandover:
    """What a crashed idempotency store hands its next generation besides the journal."""

    completions: tuple
    releases: tuple
    reports: dict


class IdempotencyStoreActor(FlowActor):
    """Owns the journal's idempotency records; forwards claimed orders to the ledger stage.

    ``store_factory`` builds the ``JournalStore`` inside this actor's thread (SQLite
    connections belong to one thread). ``ttl_s``: seconds a COMPLETED record is honoured,
    measured on ``clock`` (the runtime's injected ``Clock``: its ``now()`` stamps claims and
    completions, so a ``FakeClock`` moves the TTL without sleeping; default: the wall clock).

    Supervised (docs/DESIGN.md "Failure handling"): a handler that raises stops it. Its state is
    the journal, so the next generation opens the same journal (a non-durable runtime's
    ``MemoryJournal`` is one instance for the runtime's life) and takes over, in ``inherited``, the
    completions and releases the crashed one had not committed and the reports a non-durable store
    keeps in memory; the claims of its open batch are answered DENIED (E_EXEC_INTERNAL, nothing
    was sent). Messages queued to it are redelivered to the next generation.
    """

    crash_on_error = True
    answer_on_crash = True
    keeps_mailbox = True

    def __init__(
        self,
        *,
        store_factory: Callable[[], JournalStore],
        ttl_s: float,
        ledger: pykka.ActorRef,
        group_commit_max: int = 512,
        metrics: Any = None,
        clock: Any = None,
        inherited: tuple = (),
        **kw,
    ) -> None:
        super().__init__(clock=clock, **kw)
        #: epoch seconds (float) of "now" on the runtime's clock: the TTL's time scale
        self._wall = (lambda: clock.now().timestamp()) if clock is not None else time.time
        #: the time its reports are stamped with: the runtime's clock (UTC)
        self._now = clock.now if clock is not None else utc_now
        self._store_factory = store_factory
        self._store: JournalStore | None = None
        self._ttl_s = ttl_s
        self._ledger = ledger
        self._max = group_commit_max
        self._claims: list[SubmitOrder] = []
        #: the claim batch being committed and answered (empty between batches)
        self._batch: list[SubmitOrder] = []
        #: the open batch's ticket and the ``id()`` of its orders forwarded before the COMMIT
        #: (answered where the venue call waits for the ticket, not by this store, if the commit fails)
        self._ticket: ClaimTicket | None = None
        self._forwarded: set[int] = set()
        #: forward claimed orders before the claim batch's COMMIT (a file-backed SQLite journal)
        self._early = False
        self._completions: list[Completion] = []
        self._releases: list[tuple[str, str]] = []
        self._metrics = metrics
        self._durable = True
        self._transactional = True
        #: non-durable mode keeps report objects here instead of JSON in the store
        self._reports: dict[tuple[str, str], ExecutionReport] = {}
        self.batches = 0
        self.replays = 0
        self.conflicts = 0
        self.in_flight_denials = 0
        self.persistence_failures = 0
        #: orders denied because the journal cannot store a value of their claim
        self.refused_claims = 0
        for handed in inherited:  # a restarted generation: what the crashed one had not committed
            if isinstance(handed, StoreHandover):
                self._completions.extend(handed.completions)
                self._releases.extend(handed.releases)
                self._reports.update(handed.reports)

    def start_child(self) -> None:
        self._store = self._store_factory()
        self._durable = bool(getattr(self._store, "durable", True))
        self._transactional = not isinstance(self._store, MemoryJournal)
        self._early = isinstance(self._store, SQLiteJournal) and self._store.path is not None
        if self._completions or self._releases:
            self._flush()
        if self.generation > 1:  # restarted: the journal is open again, orders may pass (HoldTrading)
            tell(self._ledger, ReleaseTrading(RESTART_HOLD, "the idempotency store restarted from the journal"))

    def failure_details(self) -> dict:
        """The crashed store: the claims of its open batch are answered (nothing was sent); the
        uncommitted completions and releases and the in-memory reports go to the next generation."""
        if self._ticket is not None:  # forwarded before a COMMIT that never returned: their calls are not made
            self._ticket.settle("the idempotency store failed while committing the claim")
        forwarded = self._forwarded
        claims = [o for o in self._batch if not o.reply.done() and id(o) not in forwarded] + self._claims
        self._claims = []
        for order in claims:
            self._deny(order, ErrorCode.E_EXEC_INTERNAL, "the idempotency store failed before the claim was written; nothing was sent")
        if self._store is not None and not isinstance(self._store, MemoryJournal):
            try:
                self._store.close()
            except Exception:  # noqa: BLE001 - crashed already: best effort, the handover still goes out
                logger.opt(exception=True).error("the crashed idempotency store could not close its journal")
        return {"inherited": (StoreHandover(tuple(self._completions), tuple(self._releases), dict(self._reports)),)}

    def on_stop(self) -> None:
        try:
            self._flush()
        finally:
            if self._store is not None:
                self._store.close()

    # -- messages ----------------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        result = super().on_receive(message)
        if not isinstance(message, _JOURNAL_MESSAGES):
            if self._claims or self._completions or self._releases:
                self._flush()  # never let a query or barrier sit between a claim and its commit
            elif self._store is not None and self.actor_inbox.empty():
                self._checkpoint_if_due()  # a message that came in during the last write took the idle moment
        return result

    def handle_SubmitOrder(self, order: SubmitOrder) -> None:
        self._claims.append(order)
        self._maybe_flush()

    def handle_CompleteOrder(self, message: CompleteOrder) -> None:
        self._add_completion(message)
        self._maybe_flush()

    def handle_CompleteOrders(self, message: CompleteOrders) -> None:
        """The completions of one group of venue outcomes (the adapter): each as its own
        :class:`CompleteOrder`, in order, then committed together."""
        self.run_each(message.completions, self._add_completion)
        self._maybe_flush()

    def _add_completion(self, message: CompleteOrder) -> None:
        if self._durable:
            try:
                report_json = message.report.model_dump_json()
            except ValueError as exc:  # PydanticSerializationError: a value JSON cannot hold (a lone surrogate in a venue's text)
                # as a completion the journal could not record (docs/DESIGN.md "What written means"): the order was
                # answered; its record stays IN_PROGRESS (a repeat of the id: E_EXEC_DUPLICATE_IN_FLIGHT) and
                # recovery reconciles it at the next start. Raising here would crash the store for good.
                self.persistence_failures += 1
                logger.error("order {}: its report cannot be cached in the idempotency journal ({}); the record stays "
                             "IN_PROGRESS and is reconciled at the next start", message.client_order_id, exc)
                return
        else:
            report_json = None
            self._reports[(message.account_id, message.client_order_id)] = message.report
        self._completions.append(
            Completion(
                account_id=message.account_id,
                client_order_id=message.client_order_id,
                status="UNKNOWN" if message.unknown else "COMPLETED",
                report_json=report_json,
                now=self._wall(),
            )
        )

    def handle_ReleaseClaim(self, message: ReleaseClaim) -> None:
        self._releases.append((message.account_id, message.client_order_id))
        self._maybe_flush()

    def handle_FlushJournal(self, message: FlushJournal) -> None:
        self._flush()

    def handle_Wire(self, message: Wire) -> None:
        """The supervisor's wiring: the ledger after its restart."""
        if message.ledger is not None:
            self._ledger = message.ledger

    def handle_GetJournalStats(self, message: Any) -> dict:
        stats = self._store.stats() if self._store is not None else None
        return {
            "batches": self.batches,
            "replays": self.replays,
            "conflicts": self.conflicts,
            "in_flight_denials": self.in_flight_denials,
            "persistence_failures": self.persistence_failures,
            "refused_claims": self.refused_claims,
            "store": stats,
        }

    def handle_InjectJournalFailure(self, message: InjectJournalFailure) -> None:
        """The testing seam (``actors.testing.inject_journal_failure``): the journal's next ``n``
        write transactions fail (claims fail closed)."""
        store = self._store
        if not isinstance(store, FailureInjectable):
            raise TypeError(f"the idempotency store's journal ({type(store).__name__}) cannot inject failures")
        store.inject_failure(message.n)

    # -- group commit ------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        pending = len(self._claims) + len(self._completions) + len(self._releases)
        if pending >= self._max or self.actor_inbox.empty():
            self._flush()

    def _checkpoint_if_due(self) -> None:
        """Housekeeping while nothing waits: the journal's WAL checkpoint when one is due
        (``SQLiteJournal.checkpoint``, a no-op below its soft limit; journals without one skip it)."""
        checkpoint = getattr(self._store, "checkpoint", None)
        if checkpoint is not None:
            checkpoint()

    def _flush(self) -> None:
        if self._store is None:
            return
        if self._completions or self._releases:
            completions, self._completions = self._completions, []
            releases, self._releases = self._releases, []
            try:
                if completions:
                    try:
                        self._store.complete_batch(completions)
                    except JournalValueRefused:
                        self._complete_one_by_one(completions)
                if releases:
                    self._store.release_batch(releases)
            except JournalError as exc:
                # the order has already been answered; the record stays IN_PROGRESS and recovery reconciles it
                self.persistence_failures += 1
                logger.error("journal could not record {} completion(s): {}", len(completions) + len(releases), exc)
        if not self._claims:
            if self.actor_inbox.empty():  # no claim waits: the WAL's checkpoint (SQLiteJournal.checkpoint) here
                self._checkpoint_if_due()
            return
        claims, self._claims = self._claims, []
        self._batch = claims  # until answered: a crash in between answers the rest (failure_details)
        self.batches += 1
        now = self._wall()
        crash_point("before_claim")
        built: list[Claim] = []
        for order in list(claims):
            try:
                built.append(self._claim(order, now))
            except ValueError as exc:  # a value JSON cannot hold (past the models' checks): this order only
                claims.remove(order)
                self._refuse_claim(order, exc)
        results: list = []
        forwarded = self._forwarded
        ticket = self._ticket = ClaimTicket() if self._early and built else None
        try:
            if built:
                try:
                    if ticket is not None:  # self._early: a SQLiteJournal
                        results = cast(SQLiteJournal, self._store).claim_batch(built, self._ttl_s, self._forward_early)
                    else:
                        results = self._store.claim_batch(built, self._ttl_s)
                except JournalValueRefused:  # one claim's value, not the disk: the others go on
                    if forwarded:  # refused at COMMIT, after forwarding (never seen): as a failed write
                        raise JournalError("the journal refused the claim batch at its commit") from None
                    results = self._claim_one_by_one(claims, built)
        except JournalError as exc:
            self.persistence_failures += 1
            logger.error("journal write failed for a batch of {} claim(s): {}", len(claims), exc)
            sent_on = set(forwarded)
            self._fail_ticket(f"journal write failed: {exc}"[:500])
            for order in claims:
                if id(order) not in sent_on:
                    self._deny(order, ErrorCode.E_EXEC_PERSISTENCE, "journal write failed; nothing was sent", status=OrderStatus.DENIED)
            self._batch = []
            return
        except Exception as exc:  # noqa: BLE001 - bad input reaching the store is our bug: fail closed, keep going
            logger.opt(exception=exc).error("claim batch failed")
            sent_on = set(forwarded)
            self._fail_ticket(f"journal rejected the claim: {type(exc).__name__}"[:500])
            for order in claims:
                if id(order) not in sent_on:
                    self._deny(order, ErrorCode.E_EXEC_PERSISTENCE, "journal rejected the claim; nothing was sent", status=OrderStatus.DENIED)
            self._batch = []
            return
        if ticket is not None:
            ticket.settle()  # durable: the forwarded orders' venue calls may go
            self._ticket = None
        crash_point("after_claim")
        if self._metrics is not None and self._transactional:  # a MemoryJournal has no transactions to size
            self._metrics.journal_batch(len(claims))
        onward: list[SubmitOrder] = []  # the claimed orders, told on to the ledger as one message
        for order, result in zip(claims, results, strict=False):
            if result is None:  # refused by the journal for its values: answered already (_claim_one_by_one)
                continue
            if forwarded and id(order) in forwarded:  # on its way since before the COMMIT (_forward_early)
                continue
            outcome = result.outcome
            if outcome == "EXPIRED_RECLAIMED" and _reached_venue(result.previous, self._reports.get(result.record.key)):
                # the TTL ended the replay window, but the id was sent once: never send it again (docs/DESIGN.md, Durability)
                self.conflicts += 1
                report = error_report(order, ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT,
                                      f"client_order_id '{order.client_order_id}' was already sent to a venue (its record expired); use a new id",
                                      ts=self._now())
                self._completions.append(Completion(order.account_id, order.client_order_id, "COMPLETED",
                                                    report.model_dump_json() if self._durable else None, now))
                if not self._durable:
                    self._reports[(order.account_id, order.client_order_id)] = report
                resolve(order.reply, report)
                tell(self._ledger, RecordDenied(report=report, intent=None, context=None))
                continue
            if outcome in ("CLAIMED", "EXPIRED_RECLAIMED"):
                onward.append(order)
            elif outcome == "REPLAY":
                self.replays += 1
                if self._metrics is not None:
                    self._metrics.replay()
                cached = self._reports.get(result.record.key)
                if cached is None:
                    assert result.record.report_json is not None, "a replayed record holds its report"
                    cached = ExecutionReport.model_validate_json(result.record.report_json)
                resolve(order.reply, as_replay(cached, order.t0_ns))
                tell(self._ledger, GuardActed(order.client_order_id, order.account_id, "idempotency", "replayed",
                                              f"answered from the journal: {cached.status.value}"))
            elif outcome == "CONFLICT":
                self.conflicts += 1
                why = ("was already sent to a venue (its record expired); use a new id" if result.record.intent_json == RETIRED_INTENT
                       else "was already used for a different intent")
                self._deny(order, ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT, f"client_order_id '{order.client_order_id}' {why}", duplicate=True)
            elif outcome == "OTHER_ACCOUNT":
                self.conflicts += 1
                self._deny(order, ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT,
                           f"client_order_id '{order.client_order_id}' is held by another account; a venue sees the id, "
                           "not the account, so an id is used by one account only: use a new id", duplicate=True)
            else:
                self.in_flight_denials += 1
                self._deny(order, ErrorCode.E_EXEC_DUPLICATE_IN_FLIGHT,
                           f"client_order_id '{order.client_order_id}' is still in progress ({result.record.status})", duplicate=True)
        if onward:
            self._forward(onward)
        self._batch = []
        forwarded.clear()

    def _forward_early(self, results: list) -> None:
        """``claim_batch``'s ``before_commit``: the batch is decided but not committed. Each order
        claimed for sending goes on to the ledger now, carrying the batch's ticket (its venue call
        waits for the COMMIT: actors/idempotency/ticket.py); every other outcome is answered after
        the COMMIT, as without this step."""
        ticket = self._ticket
        sendable = [order for order, result in zip(self._batch, results, strict=True)
                    if result.outcome == "CLAIMED" or (result.outcome == "EXPIRED_RECLAIMED" and not _reached_venue(
                        result.previous, self._reports.get(result.record.key)))]
        if sendable:
            onward = [order.evolve(claim=ticket) for order in sendable]
            # as _forward: the group as one SubmitOrders; a ledger that is gone: after the COMMIT, as without this step
            if tell(self._ledger, onward[0] if len(onward) == 1 else SubmitOrders(tuple(onward))):
                self._forwarded.update(id(order) for order in sendable)
        crash_point("claim_forwarded")

    def _fail_ticket(self, reason: str) -> None:
        """The open batch's COMMIT failed: its forwarded orders' venue calls are not made (DENIED there)."""
        if self._ticket is not None:
            self._ticket.settle(reason)
            self._ticket = None
        self._forwarded.clear()

    def _forward(self, orders: list[SubmitOrder]) -> None:
        """Tell the orders whose claims just committed on to the ledger: the group as one
        ``SubmitOrders`` (one message per group commit, not per order; the ledger handles each as
        its own), a lone order as itself. When the ledger is gone each is denied (nothing was sent)."""
        if tell(self._ledger, orders[0] if len(orders) == 1 else SubmitOrders(tuple(orders))):
            return
        for order in orders:
            self._deny(order, ErrorCode.E_EXEC_INTERNAL, "ledger unavailable")

    def _claim_one_by_one(self, orders: list[SubmitOrder], claims: list[Claim]) -> list:
        """The journal refused the claim batch for a value in it (:class:`JournalValueRefused`):
        each claim in its own transaction, in order (the same decisions as one batch: a batch
        decides its claims in list order), so only the order whose value is refused is denied
        (E_EXEC_VALIDATION, nothing sent); its result is None. A failing write (JournalError) is
        raised as from one batch; the claims committed before it stand and their orders go on."""
        results: list = []
        for order, claim in zip(orders, claims, strict=True):
            try:
                results.append(self._store.claim_batch([claim], self._ttl_s)[0])  # type: ignore[union-attr]
            except JournalValueRefused as exc:
                self._refuse_claim(order, exc)
                results.append(None)
            except JournalError:
                # the claims written so far stand: their orders go on; the rest is denied (fail closed)
                done = len(results)
                for o, result in zip(orders[:done], results, strict=True):
                    if result is not None and result.outcome in ("CLAIMED", "EXPIRED_RECLAIMED") and not tell(self._ledger, o):
                        self._deny(o, ErrorCode.E_EXEC_INTERNAL, "ledger unavailable")
                del orders[:done]
                raise
        return results

    def _refuse_claim(self, order: SubmitOrder, exc: Exception) -> None:
        """Deny ``order``: a value of it cannot be journaled (nothing was written, nothing sent)."""
        self.refused_claims += 1
        logger.error("order {}: the idempotency journal cannot store its claim ({}); denied, nothing sent",
                     order.client_order_id, exc)
        # before the denial: health() shows it by the time the caller has the answer
        tell(self._ledger, ClaimRefused(order.client_order_id, order.account_id, f"{type(exc).__name__}: {exc}"[:300]))
        self._deny(order, ErrorCode.E_EXEC_VALIDATION,
                   f"the journal cannot store a value of this order, so it was not sent ({type(exc).__name__}: {exc})"[:1000])

    def _complete_one_by_one(self, completions: list[Completion]) -> None:
        """The journal refused the completion batch for a value in it: each completion in its own
        transaction; a refused one is left as not recorded (its record stays IN_PROGRESS and
        recovery reconciles it at the next start, as a report JSON cannot hold)."""
        for completion in completions:
            try:
                self._store.complete_batch([completion])  # type: ignore[union-attr]
            except JournalValueRefused as exc:
                self.persistence_failures += 1
                logger.error("order {}: the idempotency journal cannot store its completion ({}); the record stays "
                             "IN_PROGRESS and is reconciled at the next start", completion.client_order_id, exc)
            except JournalError:  # as from one batch: the rest is not recorded (recovery reconciles it)
                raise

    def _claim(self, order: SubmitOrder, now: float) -> Claim:
        intent, context, route = order.intent, order.context, order.route
        if self._durable:
            # fingerprint and JSON are cached on the intent and context: Runtime.submit made them in the sender's thread
            return Claim(context.account_id, intent.client_order_id, intent.fingerprint(), intent.journal_json(),
                         context.journal_json(), route.adapter_id if route else "", now)
        return Claim(context.account_id, intent.client_order_id, intent.fingerprint(), "", "", route.adapter_id if route else "", now)

    def _deny(self, order: SubmitOrder, code: ErrorCode, message: str, *, status: OrderStatus = OrderStatus.DENIED, duplicate: bool = False) -> None:
        report = error_report(order, code, message, status=status, ts=self._now())
        resolve(order.reply, report)
        tell(self._ledger, RecordDenied(report=report, intent=None if duplicate else order.intent, context=None if duplicate else order.context))


def _reached_venue(record: Any, cached: ExecutionReport | None = None) -> bool:
    """True unless the expired record's cached report proves the order never left (DENIED).

    A DENIED E_EXEC_IDEMPOTENCY_CONFLICT report does not prove that: it is the refusal of an id
    that was already used (an expired id that had reached a venue), so the id stays refused at
    every later reuse too. ``cached`` is the report kept in memory by a non-durable store (whose
    records hold no JSON)."""
    if cached is None:
        if record is None or not record.report_json:
            return record is not None
        try:
            cached = ExecutionReport.model_validate_json(record.report_json)
        except ValueError:
            return True
    if cached.status is not OrderStatus.DENIED:
        return True
    return cached.error is not None and cached.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT
