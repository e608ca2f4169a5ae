"""The adapter actor: one per venue adapter; throttles, calls the venue off its inbox, classifies outcomes.

Venue calls are blocking, so they never run in this actor's handler: each call goes to the
adapter's :class:`VenueWorker` thread, and its outcome comes back as a
``VenueCallCompleted`` message (docs/DESIGN.md, One order), which the worker runs itself when
this actor's dispatcher is free (``tell_then_help``: no wake-up of the dispatcher's thread, a few
messages at most); a group commit's outcomes come as one ``VenueCallsCompleted``. Timeouts are
timer messages.
An adapter that declares ``capabilities.sends_async`` (``protocols.AsyncSender``, e.g. the FIX
venue) has its orders and cancels written from this actor instead, without waiting: the
adapter's own thread tells the ``VenueCallCompleted`` (no worker hop either way); the attempt
timeout then leaves the order UNKNOWN without a crash (no worker is stuck), and a request the
adapter cannot send at once goes to the worker as usual.

The claim ticket (actors/idempotency/ticket.py): an order forwarded by the idempotency store before
its claim's COMMIT carries the batch's ticket (``SubmitOrder.claim``). Its venue call waits for
the ticket: on the worker's thread (``VenueWorker`` waits before the call), or, for a call this
actor would make from its own thread (inline, asynchronous), parked here until the store's
``ClaimSettled``. ``OrderSent`` is told once the wait is over. A ticket that failed makes the
order DENIED (E_EXEC_PERSISTENCE, nothing sent), its claim released.

Outcome classification (docs/DESIGN.md, Failure handling, ``protocols.AdapterError``):

=====================  ===========================================  ================
error                  order outcome                                breaker counts
=====================  ===========================================  ================
none                   the venue's state (ACCEPTED, FILLED, ...)    success
VenueRejectedError     REJECTED, E_EXEC_BROKER_REJECTED (final);    success
                       a duplicate-id reject of a re-send: UNKNOWN
NotDeliveredError      retried, same client order id, jittered      failure
                       backoff, bounded; then FAILED
                       E_EXEC_RETRY_EXHAUSTED
AmbiguousError         UNKNOWN, E_EXEC_BROKER_TIMEOUT, reconciled   failure
FatalAdapterError      FAILED, E_EXEC_NETWORK (final)               failure
timeout (timer)        UNKNOWN, E_EXEC_BROKER_TIMEOUT, reconciled;  failure
                       the hung worker makes this actor crash so
                       the supervisor restarts it
AdapterCrash / bug     this actor crashes; every order whose call   one failure per
                       the worker had picked up is UNKNOWN          crash (the other
                       (E_EXEC_ADAPTER_CRASHED) and reconciled      orders: ignored)
=====================  ===========================================  ================

A ``VenueRejectedError`` with ``venue_code=DUPLICATE_CLIENT_ORDER_ID`` on a re-send (attempt 2
and later) means the venue already holds the order: UNKNOWN and reconciled, never REJECTED.

Reconciliation (adapter contract v2, ``protocols.classify_lookup``): an order in doubt is
looked up by ``fetch_order(client_order_id)`` once it has been quiet for
``reconcile.quiet_threshold_s``, then on a backoff schedule (``backoff_delay`` from
``reconcile.interval_s`` doubling up to ``reconcile.backoff_cap_s``). Each answer is
three-valued:

- *found*: the venue's state is adopted by the ledger;
- *proven absent* (the adapter declares ``lookup_covers_closed`` and the propagation window
  ``absence_window_s`` has passed since the id was last sent): re-sent under the same client
  order id through the breaker and throttle again (or, with nothing to re-send from here, the
  ledger decides: FAILED "never delivered" for an order in doubt after a restart);
- *unknown* (not found without that proof, an error, no lookup at all): the order stays
  UNKNOWN with its reservation and is looked up again later; after ``reconcile.max_attempts``
  lookups the ledger escalates it (``ReconciliationEscalated``, ``Runtime.health()``) and the
  lookups go on. Positive evidence from any source (an event's state or fill) settles it at
  any time: the ledger tells this actor to stop looking.

Nothing is ever inferred terminal, and nothing is re-sent, from "not found" alone.
"""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, cast

import pykka
from loguru import logger

from config import JournalSettings
from protocols import (
    DUPLICATE_CLIENT_ORDER_ID,
    AdapterCrash,
    AmbiguousError,
    AsyncSender,
    BrokerAdapter,
    ErrorCode,
    FatalAdapterError,
    InlineCallOverran,
    LookupOutcome,
    NotDeliveredError,
    OrderStatus,
    VenueOrder,
    VenueOrderState,
    VenueRejectedError,
    adapter_capabilities,
    classify_lookup,
    start_adapter,
    storable_venue_state,
)

from ..breaker.breaker import CallOutcome
from ..breaker.messages import CallFinished, CallsFinished, CancelTaken, RetryOrder, ReturnOrder, new_call_finished
from ..events.messages import Publish
from ..idempotency.messages import CompleteOrder, CompleteOrders, ReleaseClaim, new_complete_order
from ..idempotency.ticket import ClaimNotDurable
from ..kernel.base import ActorCrashed, FlowActor, exc_summary, resolve, tell
from ..kernel.dispatcher import CallerReader, DispatchedInbox, HelpingFuture, tell_then_help
from ..kernel.inbox import ring, sched_yield, tell_quiet, tell_quiet_then_wake, wake
from ..orders.messages import (
    AttemptFailed,
    BrokerStateFetched,
    CancelFinished,
    CancelOrder,
    CancelOutcome,
    GuardActed,
    OrderFinished,
    OrderReconciledWith,
    OrdersFinished,
    ReconciliationStalled,
    SubmitOrder,
    new_order_finished,
    new_order_sent,
)
from ..orders.reporting import error_report, venue_report
from ..routing.messages import FetchBrokerState, TrackOrders
from ..supervision.backoff import backoff_delay
from ..supervision.messages import Wire
from ..testing import crash_point
from .messages import (
    CallTimedOut,
    ClaimSettled,
    ExecuteCancel,
    ExecuteOrder,
    ExecuteOrders,
    FlushWorker,
    ReconcileOrders,
    ReconcileTick,
    ThrottleTick,
    VenueCallCompleted,
    VenueCallsCompleted,
    new_venue_call_completed,
)
from .throttle import AdmissionQueue, SlidingLogThrottle


class _Batching(Protocol):
    """What an adapter that declares ``group_commit`` (``protocols.AdapterCapabilities``) has."""

    def begin_batch(self) -> None: ...

    def end_batch(self) -> None: ...


class VenueWorker:
    """A daemon thread that runs one adapter's blocking venue calls in FIFO order.

    ``submit(call_id, fn)`` queues a call; the outcome is passed to ``on_done`` as a
    ``VenueCallCompleted``. ``retire()`` stops the worker and returns the ids of calls it
    had not picked up yet: those provably never reached the venue.

    ``group``: the adapter's ``(begin_batch, end_batch)`` when it declares ``group_commit``
    (``protocols.AdapterCapabilities``). The worker then takes every call queued at the time
    (up to :attr:`batch_max`) as one group: ``begin_batch()``, the calls in order, ``end_batch()``
    (the adapter writes them in one transaction), and only then the outcomes, in order. When
    ``end_batch()`` raises, every call of the group answers that error instead of its own
    outcome (fail closed: nothing of the group is durable). A retired worker still ends the
    group it is in, so what reached the venue is written, and hands out nothing.

    ``on_group``: when given, a group of more than one call hands its outcomes over in one call,
    ``on_group(VenueCallsCompleted(outcomes))``, instead of one ``on_done`` each (the adapter then
    runs them in one message: at 64 senders a group holds ~100 calls, each a message before).

    **The waiting thread calls the venue** (``callers_call``: an adapter that declares
    ``in_process``, on a dispatcher where waiting threads help; docs/DESIGN.md "Threads"). A
    submit queued while the worker is idle with nothing ahead of it, whose order's caller waits in
    ``result()`` (:meth:`HelpingFuture.offer`), is queued without waking the worker and offered
    to that caller: woken when the order's claim ticket settles (instead of this thread), the
    caller takes the call off the queue (under the same run lock as this thread's groups, so the
    worker never runs it too) and makes it as this thread would (the claim's wait, the pick that
    arms the attempt timeout, a group of one, the outcome handed to ``on_done``, which answers it
    in the caller's own thread when the adapter's dispatcher is free): neither this thread's
    wake-up nor the caller's is on the order's path. The worker is busy (its lock held), a call is
    ahead, or the caller leaves first (its timeout): the worker is rung and makes it, as always.
    The venue's housekeeping (``idle``) stays on this thread: rung for it every
    :attr:`housekeep_every` calls made by callers.
    """

    #: most calls in one group (a group's first answer waits for its last call)
    batch_max = 128
    #: calls made by waiting callers after which this thread is rung for the venue's housekeeping
    #: (``idle``: the durable paper book's WAL checkpoint, due every 64 commits)
    housekeep_every = 8

    def __init__(self, name: str, on_done: Callable[[VenueCallCompleted], object], clock: Any = None,
                 on_pick: Callable[[int, Any], None] | None = None,
                 group: tuple[Callable[[], None], Callable[[], None]] | None = None,
                 idle: Callable[[], None] | None = None,
                 on_group: Callable[[VenueCallsCompleted], object] | None = None,
                 claim_wait_s: float | None = None, callers_call: bool = False) -> None:
        #: seconds a call awaiting its claim (``_Call.awaits_claim``) waits for the claim's commit before it
        #: is answered :class:`ClaimNotDurable` without calling the venue (the store settles every
        #: ticket when its commit returns: this bounds a stalled disk, not the normal path); the
        #: setting ``journal.claim_wait_s`` (None: its default). ValueError unless finite and > 0.
        if claim_wait_s is None:
            claim_wait_s = JournalSettings.model_fields["claim_wait_s"].default
        if isinstance(claim_wait_s, bool) or not isinstance(claim_wait_s, (int, float)) \
                or not math.isfinite(claim_wait_s) or claim_wait_s <= 0:
            raise ValueError(f"claim_wait_s must be a finite number of seconds > 0, got {claim_wait_s!r}")
        self.claim_wait_s = float(claim_wait_s)
        self._clock = clock
        self._on_group = on_group
        self._on_pick = on_pick
        self._group = group
        self._idle = idle
        self._callers_call = callers_call
        #: queued calls ``(call_id, fn, call)``, barriers (``Future``) and the stop (None), oldest first
        self._items: deque[Any] = deque()
        self._bell = threading.Lock()  # a doorbell (actors/kernel/inbox.ring): held = nothing announced
        self._bell.acquire()
        #: held by the thread that takes and runs calls: this worker's, or a caller making its own
        self._running = threading.Lock()
        self._lock = threading.Lock()
        self._queued: set[int] = set()
        self._retired = False
        #: calls made by callers since the last housekeeping, and whether this thread owes it
        self._called = 0
        self._housekeep = False
        self._on_done = on_done
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, call_id: int, fn: Callable[[], Any], call: Any = None) -> None:
        """Queue ``fn``; when the worker picks it up it stamps ``call.picked_at`` (clock seconds).
        A submit whose caller waits may be offered to it instead of waking the worker (above)."""
        with self._lock:
            self._queued.add(call_id)
        item = (call_id, fn, call)
        items = self._items
        offer = (self._callers_call and not items and call.__class__ is _Call and call.kind == "submit"
                 and call.order is not None and not self._running.locked())
        items.append(item)
        if offer:
            order = call.order
            reply, ticket = order.reply, order.claim
            if isinstance(reply, HelpingFuture) and reply.offer(_Offered(self, item, ticket, time.monotonic() + self.claim_wait_s)):
                if ticket is None:
                    reply.poke()
                else:
                    ticket.on_settled(reply.poke)  # the store's thread wakes the caller, not this one
                return
        ring(self._bell)

    def barrier(self) -> Future:
        """A future resolved once every call queued before it has finished and its outcome was
        handed to ``on_done`` (``Runtime.flush``); resolved at once by a retired worker."""
        done: Future = Future()
        with self._lock:
            retired = self._retired
        if retired:
            done.set_result(None)
        else:
            self._items.append(done)
            ring(self._bell)
        return done

    def retire(self) -> set[int]:
        """Stop taking calls; return the ids never picked up (never delivered)."""
        with self._lock:
            self._retired = True
            unpicked = set(self._queued)
            self._queued.clear()
        items = self._items
        while True:  # drop what waits (never picked: in ``unpicked``); barriers: nothing more will run
            try:
                item = items.popleft()
            except IndexError:
                break
            if item.__class__ is Future:
                item.set_result(None)
        items.append(None)
        ring(self._bell)
        return unpicked

    def _loop(self) -> None:
        items, bell, running, grouped = self._items, self._bell, self._running, self._group is not None
        while True:
            if not items:
                if self._housekeep:  # callers made calls: the venue's housekeeping, after their answers
                    self._housekeep = False
                    sched_yield()
                    with running:
                        if not items:
                            self._housekeeping()
                    continue
                bell.acquire()  # a ring with nobody waiting leaves it open: re-check at once
                continue
            with running:
                calls = []
                item: Any = _NOTHING
                # a call, then (grouped) every call queued behind it, up to a barrier or the stop
                while True:
                    try:
                        item = items.popleft()
                    except IndexError:
                        item = _NOTHING
                        break
                    if item is None or item.__class__ is Future:
                        break
                    calls.append(item)
                    item = _NOTHING
                    if not grouped or len(calls) >= self.batch_max:
                        break
                if calls and not self._run(calls):
                    return
                if item is None:
                    return
                if calls and item is _NOTHING and not items:
                    self._housekeeping()
                if item.__class__ is Future:  # a barrier: everything before it is done
                    item.set_result(None)

    def _housekeeping(self) -> None:
        """The adapter's ``idle()`` between groups (run lock held), off every order's path."""
        self._called = 0
        if self._idle is None:
            return
        try:
            self._idle()  # nothing waits: the adapter's housekeeping, off every order's path
        except Exception:  # noqa: BLE001 - housekeeping never stops the worker
            logger.opt(exception=True).warning("{}: the venue's housekeeping between groups failed", self._thread.name)

    def run_offered(self, item: tuple, claim_wait_s: float) -> None:
        """Make the offered call ``item`` in the calling thread (a caller waiting for its order's
        answer) when this worker is idle and ``item`` is next in its queue; else leave it to the
        worker (rung). Waits for its claim at most ``claim_wait_s``. Never raises."""
        running = self._running
        if not running.acquire(False):  # the worker runs a group: it takes this call after it
            ring(self._bell)
            return
        items = self._items
        try:
            try:
                head = items.popleft()
            except IndexError:
                return  # the worker took it (or a retire dropped it)
            if head is not item:  # taken, or something ahead of it: the worker keeps the order
                items.appendleft(head)
                return
            try:
                self._run([item], claim_wait_s)
            except BaseException:  # noqa: BLE001 - _run hands every outcome out; this is a fault of ours
                logger.opt(exception=True).critical("{}: a venue call made by its waiting caller failed", self._thread.name)
            self._called += 1
            if self._idle is not None and self._called >= self.housekeep_every:
                self._housekeep = True
        finally:
            running.release()
            if items or self._housekeep:
                ring(self._bell)

    def _run(self, calls: list, claim_wait_s: float | None = None) -> bool:
        """Run ``calls`` (one group when grouped), then hand out their outcomes; False once retired.
        A call awaiting its claim waits for it at most ``claim_wait_s`` (default :attr:`claim_wait_s`)."""
        # A call that raised leaves its exception in ``outcomes``, and the exception's traceback holds
        # this frame, which keeps its locals once it returns: ``outcomes``, ``error`` and ``outcome``
        # would close a reference cycle (frame -> outcome -> exception -> traceback -> frame) that only
        # the garbage collector frees, with the group's calls in it (each cancel of an order already
        # filled, in ``run.py stress``). So the frame lets go of them on the way out.
        outcomes: list[VenueCallCompleted] = []
        error: BaseException | None = None
        outcome: VenueCallCompleted | None = None
        try:
            group = self._group
            opened = retired = False
            # persist-before-submit: a call forwarded before its claim's COMMIT waits for it here,
            # before the group is opened (the venue's group transaction is not held open meanwhile)
            not_durable: dict[int, str] | None = None
            wait_s = self.claim_wait_s if claim_wait_s is None else claim_wait_s
            for call_id, _fn, call in calls:
                if call is not None and call.__class__ is _Call and call.awaits_claim and call.order is not None:
                    claim = call.order.claim
                    why = claim.wait(wait_s)
                    if why is not None and not claim.settled:  # a caller's wait began at the offer: name the whole wait
                        why = f"the claim was not durable within {self.claim_wait_s:g} s"
                    if why is not None:
                        if not_durable is None:
                            not_durable = {}
                        not_durable[call_id] = why
            for call_id, fn, call in calls:
                if not_durable is not None and call_id in not_durable:  # the venue is not called
                    with self._lock:
                        if self._retired:
                            retired = True
                            break
                        self._queued.discard(call_id)
                    outcomes.append(new_venue_call_completed(call_id, None, ClaimNotDurable(not_durable[call_id]), 0.0))
                    continue
                with self._lock:
                    if self._retired:
                        retired = True
                        break
                    self._queued.discard(call_id)
                    if call is not None and self._clock is not None:
                        call.picked_at = self._clock.monotonic()
                if self._on_pick is not None and call is not None:
                    self._on_pick(call_id, call)  # arms the attempt timeout: it counts from now
                started = time.perf_counter()
                result, error = None, None
                try:
                    if group is not None and not opened:
                        opened = True
                        group[0]()  # begin_batch
                    result = fn()
                except BaseException as exc:  # noqa: BLE001 - classified by the actor
                    error = exc
                outcomes.append(new_venue_call_completed(call_id, result, error, time.perf_counter() - started))
            if opened and group is not None:
                try:
                    group[1]()  # end_batch: the group's one write
                except BaseException as exc:  # noqa: BLE001 - fail closed: no call of the group is durable
                    outcomes = [VenueCallCompleted(o.call_id, None, exc, o.duration_s) for o in outcomes]
            for outcome in outcomes:
                if outcome.error is None:
                    crash_point("after_send")
            if retired:
                return False
            if self._on_group is not None and len(outcomes) > 1:
                with self._lock:
                    if self._retired:
                        return False
                self._on_group(VenueCallsCompleted(tuple(outcomes)))
                return True
            for outcome in outcomes:
                with self._lock:
                    if self._retired:
                        return False
                self._on_done(outcome)
            return True
        finally:
            del outcomes, error, outcome


#: orders of a group's outcomes finished together (one message per actor, then their answers): the
#: ledger, woken after each chunk, works on it while this actor finishes the next. 64 senders as
#: deployed, interleaved (load ~5): CPU per order 194 / 180 / 170 µs at 8 / 16 / 64; a whole group at
#: once left the ledger idle until the group's end (fewer orders/s)
FINISH_CHUNK = 64
#: "no item in hand" for the worker's loop (neither a call, a barrier nor the stop)
_NOTHING = object()


class _Offered:
    """A submit queued at an idle :class:`VenueWorker` and offered to its order's waiting caller
    (``dispatcher.OfferedCall``): ready once its claim ticket is settled (or it had none)."""

    __slots__ = ("worker", "item", "ticket", "deadline")

    def __init__(self, worker: VenueWorker, item: tuple, ticket: Any, deadline: float) -> None:
        self.worker, self.item, self.ticket, self.deadline = worker, item, ticket, deadline

    def ready(self) -> bool:
        ticket = self.ticket
        return ticket is None or ticket.settled

    def run(self) -> None:
        self.worker.run_offered(self.item, max(0.0, self.deadline - time.monotonic()))

    def decline(self) -> None:
        ring(self.worker._bell)  # the worker takes it (if it is still queued)
#: run-queue entries a venue's thread answering an asynchronous send (or the venue worker handing out
#: a call's outcome) runs at most on the adapter's dispatcher before it goes back to its socket (its
#: calls) (``tell_then_help``): its outcome and a few ahead of it
READER_HELP_BUDGET = 8


@dataclass(slots=True)
class _Call:
    kind: str  # "submit" | "cancel" | "fetch" (reconciliation) | "track" (live tracking) | "sync"
    client_order_id: str
    order: SubmitOrder | None = None
    cancel: CancelOrder | None = None
    started: float = 0.0
    timer: Any = None
    #: set by the worker thread when it starts the call (the attempt timeout counts from here)
    picked_at: float | None = None
    #: the broker-state sync this call answers (kind "sync")
    sync_id: int = 0
    #: written by the adapter actor itself (``AsyncSender``): no worker holds it, so its
    #: timeout leaves it UNKNOWN without crashing the actor
    sent_async: bool = False
    #: a submit whose claim was not durable yet when dispatched: the worker waits for it
    #: (``SubmitOrder.claim``) and ``OrderSent`` is told when the worker picks the call
    awaits_claim: bool = False


@dataclass(slots=True)
class _Recon:
    """One order in doubt (clock seconds): ``since`` it went quiet, ``sent_at`` the latest time it
    may have been handed to the venue (None: unknown), ``next_at`` when to look it up next."""

    client_order_id: str
    order: SubmitOrder | None
    since: float
    sent_at: float | None
    next_at: float
    attempts: int = 0
    fetching: bool = False
    escalated: bool = False


@dataclass(frozen=True, slots=True)
class AdapterPolicy:
    """Timeouts, retry, throttle and reconciliation settings of one adapter actor (seconds).

    Built with :meth:`from_settings`; the defaults live in ``config`` only.
    """

    attempt_timeout_s: float
    cancel_timeout_s: float
    deadline_s: float
    max_retries: int
    retry_base_s: float
    retry_cap_s: float
    retry_jitter: float
    throttle_max_calls: int
    throttle_window_s: float
    throttle_overflow: str
    throttle_queue_size: int
    reconcile_interval_s: float
    quiet_threshold_s: float
    reconcile_max_attempts: int
    tracking_budget_share: float
    reconcile_backoff_cap_s: float
    #: ``journal.claim_wait_s``: how long the venue worker waits for a forwarded order's claim COMMIT
    claim_wait_s: float

    @classmethod
    def from_settings(cls, settings: Any, adapter_id: str | None = None) -> AdapterPolicy:
        """Read the policy of ``adapter_id`` from a ``config.Settings``: the global [timeouts],
        [retry] and [throttle] with its ``[adapters.<adapter_id>.*]`` overrides (None: global only)."""
        own = settings.for_adapter(adapter_id) if adapter_id is not None else settings
        return cls(
            attempt_timeout_s=own.timeouts.attempt_s,
            cancel_timeout_s=own.timeouts.cancel_s,
            deadline_s=own.timeouts.deadline_s,
            max_retries=own.retry.max_retries,
            retry_base_s=own.retry.base_s,
            retry_cap_s=own.retry.cap_s,
            retry_jitter=own.retry.jitter,
            throttle_max_calls=own.throttle.max_calls,
            throttle_window_s=own.throttle.window_s,
            throttle_overflow=own.throttle.overflow,
            throttle_queue_size=own.throttle.queue_size,
            reconcile_interval_s=settings.reconcile.interval_s,
            quiet_threshold_s=settings.reconcile.quiet_threshold_s,
            reconcile_max_attempts=settings.reconcile.max_attempts,
            tracking_budget_share=own.tracking.budget_share,
            reconcile_backoff_cap_s=settings.reconcile.backoff_cap_s,
            claim_wait_s=settings.journal.claim_wait_s,
        )

    def timeout_of(self, kind: str) -> float:
        """The attempt timeout of one venue call of ``kind`` ("submit", "cancel", "fetch"), seconds."""
        return self.cancel_timeout_s if kind == "cancel" else self.attempt_timeout_s


class AdapterActor(FlowActor):
    """Executes permitted orders and cancels on one venue adapter (see the module docstring).

    ``inherited`` are orders in doubt from the previous generation (reconciled first).
    """

    crash_on_error = True

    def __init__(
        self,
        *,
        adapter_id: str,
        venue: BrokerAdapter,
        policy: AdapterPolicy,
        clock: Any,
        breaker: pykka.ActorRef,
        ledger: pykka.ActorRef,
        idempotency: pykka.ActorRef,
        rng: random.Random,
        inherited: tuple = (),
        metrics: Any = None,
        order_detail: bool = False,
        throttle: Any = None,
        start_error: BaseException | None = None,
        bus: pykka.ActorRef | None = None,
        **kw,
    ) -> None:
        super().__init__(clock=clock, **kw)
        self._start_error = start_error
        self.adapter_id = adapter_id
        self._bus = bus
        #: inline calls run on the dispatcher thread; one that takes longer than this is reported
        self.inline_overruns = 0
        self._order_detail = order_detail
        self._venue = venue
        self._caps = adapter_capabilities(venue)
        self._inline = not self._caps.blocking
        #: a blocking adapter that can also send without waiting (protocols.AsyncSender): orders and
        #: cancels are written from here and answered by the adapter's own thread, no worker hop
        self._async = self._caps.blocking and self._caps.sends_async
        self._sender: AsyncSender | None = cast(AsyncSender, venue) if self._async else None  # declared by the capability
        #: the venue's connection a caller waiting for an async send's answer may read itself
        #: (``caller_reader``, e.g. the FIX venue's; actors/kernel/dispatcher.py "The waiting thread reads")
        self._caller_reader: CallerReader | None = getattr(venue, "caller_reader", None) if self._async else None
        #: a group-commit venue (``protocols.AdapterCapabilities.group_commit``, e.g. the durable paper book)
        #: answers a call only after its group's write, and its outcome (``OrderFinished``) carries the
        #: order's SUBMITTED step: a first attempt's separate ``OrderSent`` is left out (one ledger message
        #: less per order); a call that ends without an ``OrderFinished`` (not delivered, retried) tells it then
        self._sent_with_outcome = self._caps.group_commit and not self._inline and not self._async
        self._inline_budget_us = self._caps.inline_budget_us
        self._inline_budget_s = self._inline_budget_us / 1e6
        self._policy = policy
        self._clock = clock
        self._breaker = breaker
        self._ledger = ledger
        self._idempotency = idempotency
        self._rng = rng
        self._metrics = metrics
        self._calls: dict[int, _Call] = {}
        #: while a group's outcomes run (handle_VenueCallsCompleted): the orders finished, told as one group
        self._finished: list[tuple] | None = None
        #: orders waiting for their claim's commit before this actor calls the venue itself (ClaimSettled)
        self._parked: dict[Any, list[SubmitOrder]] = {}
        self._next_call = 0
        self._worker: VenueWorker | None = None
        # ``throttle``: one shared with other processes (actors/journal/pg_throttle.SharedThrottle), else this actor's own
        self._throttle = throttle or SlidingLogThrottle(policy.throttle_max_calls, policy.throttle_window_s, clock)
        if throttle is not None:
            ref = self.actor_ref
            throttle.waker = lambda: tell(ref, ThrottleTick())
        self._queue: AdmissionQueue[SubmitOrder] = AdmissionQueue(policy.throttle_queue_size)
        self._throttle_timer = None
        self._recon: dict[str, _Recon] = {}
        #: the crash under way already counted its one breaker failure (see failure_details)
        self._crash_counted = False
        self._recon_timer = None
        now = clock.monotonic()
        for item in inherited:
            since = now if item.since is None else min(item.since, now)
            sent_at = now if item.sent_at is None else min(item.sent_at, now)
            self._track_unknown(item.client_order_id, item.order, since, sent_at, attempts=item.attempts)

    # -- lifecycle ---------------------------------------------------------------------
    def start_child(self) -> None:
        if self._start_error is not None:  # the registry could not build this generation's adapter
            raise self._start_error
        start_adapter(self._venue)  # may raise: a start-up crash, reported to the supervisor
        ref = self.actor_ref
        clock, timeout_of = self._clock, self._policy.timeout_of

        adapter_id = self.adapter_id

        def arm_timeout(call_id: int, call: _Call) -> None:
            order = call.order
            # its claim is durable: now it is sent (ledger: SUBMITTING), unless its outcome carries that step (see _send)
            if call.awaits_claim and order is not None and not (self._sent_with_outcome and order.attempt == 1):
                tell_quiet(self._ledger, new_order_sent(order.client_order_id, order.account_id, adapter_id, order.attempt))
            call.timer = clock.call_later(timeout_of(call.kind), lambda: tell(ref, CallTimedOut(call_id)))

        group = None
        if self._caps.group_commit and not self._inline:
            batching = cast(_Batching, self._venue)  # declared by the capability: AttributeError if missing
            group = (batching.begin_batch, batching.end_batch)
        idle = getattr(self._venue, "after_batch", None) if group is not None else None
        # the worker hands each outcome over and runs it itself when this actor's dispatcher is free (a few
        # entries at most, then back to its calls): no wake-up of the dispatcher's thread between the
        # venue's answer and the caller's, as a venue's reader thread does for an asynchronous send
        hand_over = functools.partial(tell_then_help, ref, budget=READER_HELP_BUDGET)
        # a caller waiting for its order may make the call of an in-process venue itself, where waiting
        # threads help this actor's dispatcher ("The waiting thread calls the venue", VenueWorker)
        inbox = self.actor_inbox
        callers_call = self._caps.in_process and isinstance(inbox, DispatchedInbox) and inbox.dispatcher.helpable
        self._worker = VenueWorker(f"venue-{self.adapter_id}-g{self.generation}", hand_over, clock, arm_timeout,
                                   group, idle if callable(idle) else None, on_group=hand_over,
                                   claim_wait_s=self._policy.claim_wait_s, callers_call=callers_call)
        self._arm_reconcile()

    def on_stop(self) -> None:
        if self._worker is not None:
            self._worker.retire()
        for timer in (self._throttle_timer, self._recon_timer):
            if timer is not None:
                timer.cancel()

    def failure_details(self) -> dict[str, Any]:
        """On a crash: orders whose call the worker picked up become UNKNOWN; the rest go back to the breaker.

        The crash counts once in the breaker (one failed call), however many orders it leaves in
        doubt: it is one fault of the adapter, not one per order (a hang already counted its own
        timed-out call). The other orders in doubt are recorded as IGNORED calls.
        """
        unpicked = self._worker.retire() if self._worker is not None else set()
        self._worker = None
        now = self._clock.monotonic()
        counted = self._crash_counted
        for parked in self._parked.values():  # never sent: back to the breaker actor, as the unpicked calls
            for order in parked:
                tell(self._breaker, ReturnOrder(order))
        self._parked.clear()
        for call_id, call in list(self._calls.items()):
            if call.timer is not None:
                call.timer.cancel()
            if call.kind == "submit" and call.order is not None:
                if call_id in unpicked:
                    # never sent: back to the breaker actor for the next generation, attempts kept
                    tell(self._breaker, ReturnOrder(call.order))
                    continue
                self._order_unknown(call.order, ErrorCode.E_EXEC_ADAPTER_CRASHED,
                                    "adapter crashed while the call was in flight; reconciling",
                                    CallOutcome.IGNORED if counted else CallOutcome.FAILURE)
                counted = True
            elif call.kind == "cancel" and call.cancel is not None:
                if call_id in unpicked:
                    tell(self._ledger, CancelFinished(call.cancel, self.adapter_id, CancelOutcome.NOT_SENT, code=ErrorCode.E_EXEC_NETWORK,
                                                      reason="adapter crashed before the cancel was sent"))
                    continue
                tell(self._ledger, CancelFinished(call.cancel, self.adapter_id, CancelOutcome.IN_DOUBT, code=ErrorCode.E_EXEC_ADAPTER_CRASHED,
                                                  reason="adapter crashed during the cancel; reconciling"))
                self._track_unknown(call.client_order_id, None, now, now)
        self._calls.clear()
        # every order in doubt is in the reconciliation table exactly once, with the time it went
        # quiet, the latest time it may have been sent and the lookups made so far
        in_doubt = tuple(InDoubt(r.client_order_id, r.order, r.since, r.sent_at, r.attempts) for r in self._recon.values())
        self._recon.clear()
        return {"in_doubt": in_doubt, "adapter_id": self.adapter_id}

    def handle_Wire(self, message: Wire) -> None:
        """The supervisor's wiring: a restarted ledger, idempotency store, bus or circuit breaker."""
        if message.ledger is not None:
            self._ledger = message.ledger
        if message.idempotency is not None:
            self._idempotency = message.idempotency
        if message.bus is not None:
            self._bus = message.bus
        if message.breaker is not None:
            self._breaker = message.breaker

    def handle_FlushWorker(self, message: FlushWorker) -> Future:
        if self._worker is None:
            done: Future = Future()
            done.set_result(None)
            return done
        return self._worker.barrier()

    # -- orders ------------------------------------------------------------------------
    def handle_ExecuteOrder(self, message: ExecuteOrder) -> None:
        self._execute(message.order)

    def handle_ExecuteOrders(self, message: ExecuteOrders) -> None:
        """The permitted orders of one group commit (the circuit breaker), each handled as its own
        ``ExecuteOrder``, in order. One that crashes this actor leaves the rest with the breaker,
        which re-dispatches what the adapter never took (``FlowActor.run_each``)."""
        self.run_each(message.orders, self._execute)

    def _execute(self, order: SubmitOrder) -> None:
        if self._queue.waiting_new == 0:
            retry_after = self._throttle.try_admit()
            if retry_after is None:
                self._send(order)
                return
        else:
            retry_after = self._throttle.retry_after()
        if self._policy.throttle_overflow == "queue" and self._queue.offer(order, is_cancel=False):
            self._arm_throttle(retry_after)
            tell(self._ledger, GuardActed(order.client_order_id, order.account_id, "throttle", "queued",
                                          f"rate limit of {self._policy.throttle_max_calls} calls per "
                                          f"{self._policy.throttle_window_s:g} s reached; next slot in {retry_after:.3f} s"))
            return
        self._never_sent(order, ErrorCode.E_EXEC_THROTTLED,
                         f"rate limit of {self._policy.throttle_max_calls} calls per {self._policy.throttle_window_s:g} s reached",
                         retry_after_s=round(retry_after, 3))

    def handle_ThrottleTick(self, message: ThrottleTick) -> None:
        self._throttle_timer = None
        while len(self._queue):
            retry_after = self._throttle.try_admit()
            if retry_after is not None:
                self._arm_throttle(retry_after)
                return
            order = self._queue.pop()
            if order is None:  # never: the queue is not empty
                return
            if self._past_deadline(order):
                self._never_sent(order, ErrorCode.E_EXEC_THROTTLED, "waited in the throttle queue past the order deadline")
                continue
            self._send(order)

    def handle_ExecuteCancel(self, message: ExecuteCancel) -> None:
        cancel = message.cancel
        tell(self._breaker, CancelTaken(message.token))
        self._throttle.force_admit()  # cancels never wait behind new orders
        queued = self._queue.remove_if(lambda o: isinstance(o, SubmitOrder) and o.client_order_id == cancel.client_order_id)
        for order in queued:  # the order never left: withdraw it here, its answer is final (cached)
            self._never_sent(order, ErrorCode.E_EXEC_THROTTLED, "canceled while waiting in the throttle queue; never sent", final=True)
        if queued:
            tell(self._ledger, CancelFinished(cancel, self.adapter_id, CancelOutcome.WITHDRAWN,
                                              reason="the order was still in the throttle queue; it was never sent"))
            return
        venue, sender = self._venue, self._sender
        cl_id = cancel.client_order_id
        self._dispatch_call(_Call("cancel", cl_id, cancel=cancel), lambda: venue.cancel_order(cl_id),
                            (lambda done: sender.send_cancel(cl_id, done)) if sender is not None else None)

    def _send(self, order: SubmitOrder) -> None:
        claim = order.claim
        if claim is not None:
            crash_point("claim_awaited")
        awaits = claim is not None and not claim.settled
        if awaits and (self._inline or self._sender is not None):
            # this actor would call the venue itself, and it never waits: parked until the claim is settled
            parked = self._parked.get(claim)
            if parked is None:
                parked = self._parked[claim] = []
                ref = self.actor_ref
                claim.on_settled(lambda: tell(ref, ClaimSettled(claim)))
            parked.append(order)
            return
        if claim is not None and claim.failure is not None:
            self._claim_not_durable(order, claim.failure)
            return
        order = order.with_attempt(order.attempt + 1)
        venue_order = VenueOrder.from_intent(order.intent, order.context)
        venue, sender = self._venue, self._sender
        try:
            self._dispatch_call(_Call("submit", order.client_order_id, order=order, awaits_claim=awaits), lambda: venue.submit_order(venue_order),
                                None if sender is None or awaits else (lambda done: sender.send_order(venue_order, done)))
        finally:
            # an inline call's answer follows at once and carries the SUBMITTED step, as a group-commit
            # venue's first attempt does (its outcome comes only after the group's write); an awaiting call's
            # OrderSent is told by the worker once the claim is durable (arm_timeout)
            if not self._inline and not awaits and not (self._sent_with_outcome and order.attempt == 1):
                # told after the request is written (an asynchronous sender's write is on the order's
                # critical path, this is not) and still before the call's outcome: that runs in a later
                # message of this actor (a helper inside a handler never helps: actors/kernel/dispatcher.py).
                # Queued, not woken: the ledger's bookkeeping (and its journal commit) would take the
                # GIL from the venue worker; it runs with the call's outcome, or with any earlier message
                tell_quiet(self._ledger, new_order_sent(order.client_order_id, order.account_id, self.adapter_id, order.attempt))

    def handle_ClaimSettled(self, message: ClaimSettled) -> None:
        """The claim batch of parked orders is durable (they are sent) or failed (DENIED, nothing sent)."""
        for order in self._parked.pop(message.ticket, ()):
            self._send(order)

    def _claim_not_durable(self, order: SubmitOrder, why: str) -> None:
        """``order``'s claim never became durable: DENIED (E_EXEC_PERSISTENCE), never sent, its claim released."""
        logger.error("{} {}: not sent, its idempotency claim is not durable ({})", self.adapter_id, order.client_order_id, why)
        self._never_sent(order, ErrorCode.E_EXEC_PERSISTENCE, f"the order's claim could not be written ({why}); nothing was sent"[:1000])

    def _dispatch_call(self, call: _Call, fn: Callable[[], Any], send: Callable[[Any], bool] | None = None) -> None:
        if self._worker is None:
            raise ActorCrashed("venue worker is not running")
        self._next_call += 1
        call_id = self._next_call
        if send is not None and self._send_async(call_id, call, send):
            return
        if self._inline and not call.awaits_claim:
            # a non-blocking venue (in-memory simulator): call it here, skip two thread hops. It
            # cannot be pre-empted, so instead of a timeout it is measured on the runtime's clock
            # and an overrun of the adapter's inline budget is reported (InlineCallOverran)
            clock = self._clock
            call.started = started_at = clock.monotonic()
            self._calls[call_id] = call  # in doubt if the call crashes this actor
            started = time.perf_counter()
            result, error = None, None
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - classified below
                error = exc
            duration_s = time.perf_counter() - started
            elapsed_s = clock.monotonic() - started_at
            if elapsed_s > self._inline_budget_s:
                self._inline_overran(call, elapsed_s)
            self._call_completed(call_id, result, error, duration_s)  # what a VenueCallCompleted message does
            return
        call.started = self._clock.monotonic()
        self._calls[call_id] = call
        self._worker.submit(call_id, fn, call)  # the worker arms the attempt timeout when it starts the call

    def _send_async(self, call_id: int, call: _Call, send: Callable[[Any], bool]) -> bool:
        """Write one request from here (``protocols.AsyncSender``); its outcome comes back as a
        ``VenueCallCompleted`` told by the adapter's own thread. The attempt timeout counts from
        now (armed after the write). False when the adapter could not send at once: the caller
        gives it to the worker."""
        clock, ref = self._clock, self.actor_ref
        call.started = call.picked_at = started_at = clock.monotonic()
        call.sent_async = True
        self._calls[call_id] = call  # in doubt if the send crashes this actor
        started = time.perf_counter()

        def done(result: Any, error: BaseException | None) -> None:
            if error is None:
                crash_point("after_send")
            # called on the venue's reader thread: it runs the outcome itself when the dispatcher is
            # free (a few entries at most, then back to its socket), no wake-up of the order thread
            tell_then_help(ref, new_venue_call_completed(call_id, result, error, time.perf_counter() - started), READER_HELP_BUDGET)

        try:
            taken = send(done)
        except BaseException as exc:  # noqa: BLE001 - an adapter bug: classified like a worker call's
            taken = True
            done(None, exc)
        elapsed_s = clock.monotonic() - started_at
        if elapsed_s > self._inline_budget_s:
            self._inline_overran(call, elapsed_s)
        if taken:
            # the attempt timeout, armed once the request is written (off the order's critical path)
            # and still counted from before the write; the outcome cannot have run yet: it is a later
            # message of this actor, which has this one's timer to cancel
            call.timer = clock.call_later(max(0.0, self._policy.timeout_of(call.kind) - elapsed_s),
                                          lambda: tell(ref, CallTimedOut(call_id)))
            reader = self._caller_reader
            if reader is not None:
                carrier = call.order if call.order is not None else call.cancel
                reply = getattr(carrier, "reply", None)
                if isinstance(reply, HelpingFuture):
                    reply.reader = reader  # its waiting thread reads the answer itself
            return True
        call.sent_async, call.picked_at = False, None
        del self._calls[call_id]
        return False

    def _inline_overran(self, call: _Call, elapsed_s: float) -> None:
        self.inline_overruns += 1
        elapsed_us = int(elapsed_s * 1e6)
        logger.warning("{}: inline {} of {} took {} µs, over the adapter's inline budget of {} µs (it blocks the dispatcher thread)",
                       self.adapter_id, call.kind, call.client_order_id, elapsed_us, self._inline_budget_us)
        if self._metrics is not None:
            self._metrics.inline_overrun(self.adapter_id)
        if self._bus is not None:
            tell(self._bus, Publish(InlineCallOverran(adapter_id=self.adapter_id, call=call.kind, client_order_id=call.client_order_id,
                                                      elapsed_us=elapsed_us, budget_us=self._inline_budget_us)))

    # -- outcomes ----------------------------------------------------------------------
    def handle_VenueCallCompleted(self, message: VenueCallCompleted) -> None:
        self._call_completed(message.call_id, message.result, message.error, message.duration_s)

    def handle_VenueCallsCompleted(self, message: VenueCallsCompleted) -> None:
        """A group's outcomes, in call order, each as its ``VenueCallCompleted`` would run. One that
        crashes this actor leaves the rest in ``_calls``: in doubt, as ``failure_details`` says (a
        worker hands out nothing more once the crash has retired it, either way)."""
        completed = self._call_completed
        self._finished = []  # _finish gathers the group's orders: their facts go out as one message per actor
        try:
            for o in message.outcomes:
                completed(o.call_id, o.result, o.error, o.duration_s)
        finally:
            finished, self._finished = self._finished, None
            if finished:
                self._finish_group(finished)

    def _call_completed(self, call_id: int, result: Any, error: BaseException | None, duration_s: float) -> None:
        """A venue call ended (``result`` or ``error``, after ``duration_s`` s): from the worker's or
        an async sender's ``VenueCallCompleted``, or directly from an inline call."""
        call = self._calls.pop(call_id, None)
        if call is None:
            return  # a late answer for a call already handled as timed out: reconciliation covers it
        if call.timer is not None:
            call.timer.cancel()
        if isinstance(error, AdapterCrash) or (error is not None and not isinstance(error, Exception)):
            self._calls[call_id] = call  # still in doubt when the crash handler runs
            raise ActorCrashed(f"venue adapter crashed: {error!r}")
        if result.__class__ is VenueOrderState:  # the venue's text as every journal can store it
            result, fields = storable_venue_state(result)
            if fields:
                logger.warning("venue {}: its answer for order {} held text no journal can store (a NUL character or "
                               "a lone surrogate) in {}; kept escaped (\\x00, \\udXXX)", self.adapter_id,
                               call.client_order_id, ", ".join(fields))
        if call.kind == "submit":
            assert call.order is not None, "a submit call carries its order"
            try:
                self._submit_done(call.order, result, error, duration_s)
            except BaseException:
                # the venue answered it, and handling that crashed this actor: in doubt (the crash handler
                # reports it UNKNOWN and reconciles it), never left with the breaker, which would send it
                # again. Unless its outcome went out already (answered, or gathered with its group's)
                order = call.order
                if not order.reply.done() and not any(f[0] is order for f in self._finished or ()):
                    self._calls[call_id] = call
                raise
            crash_point("after_ack")
        elif call.kind == "cancel":
            assert call.cancel is not None, "a cancel call carries its cancel"
            self._cancel_done(call.cancel, result, error)
        elif call.kind == "sync":
            self._sync_done(call.sync_id, result, error)
        elif call.kind == "track":
            self._track_done(call.client_order_id, result, error)
        else:
            self._fetch_done(call.client_order_id, result, error)

    def _submit_done(self, order: SubmitOrder, result: Any, error: BaseException | None, duration_s: float) -> None:
        if isinstance(error, ClaimNotDurable):  # the worker did not call the venue
            self._claim_not_durable(order.with_attempt(order.attempt - 1), error.reason)
            return
        if error is None:
            if not isinstance(result, VenueOrderState):
                self._order_unknown(order, ErrorCode.E_EXEC_BROKER_TIMEOUT,
                                    f"adapter returned {type(result).__name__}, not a VenueOrderState; reconciling", CallOutcome.FAILURE)
                return
            report = venue_report(order, result, ts=self._clock.now())
            self._finish(order, report, CallOutcome.SUCCESS, duration_s, venue_state=result)
        elif isinstance(error, VenueRejectedError):
            if error.venue_code == DUPLICATE_CLIENT_ORDER_ID and order.attempt > 1:
                # a re-send refused as a duplicate: the venue holds the order (an earlier attempt
                # reached it), so it is in doubt, never REJECTED
                self._order_unknown(order, ErrorCode.E_EXEC_BROKER_TIMEOUT,
                                    f"venue already holds this client order id ({error.message}); reconciling",
                                    CallOutcome.SUCCESS, duration_s)
                return
            report = error_report(order, ErrorCode.E_EXEC_BROKER_REJECTED, f"venue rejected: {error.message}", status=OrderStatus.REJECTED,
                                  ts=self._clock.now())
            self._finish(order, report, CallOutcome.SUCCESS, duration_s)
        elif isinstance(error, NotDeliveredError):
            self._retry_or_fail(order, error, duration_s)
        elif isinstance(error, FatalAdapterError):
            report = error_report(order, ErrorCode.E_EXEC_NETWORK, f"fatal adapter error: {error.message}", status=OrderStatus.FAILED,
                                  ts=self._clock.now())
            self._finish(order, report, CallOutcome.FAILURE, duration_s)
        elif isinstance(error, AmbiguousError):
            self._order_unknown(order, ErrorCode.E_EXEC_BROKER_TIMEOUT, f"outcome unknown ({error.message}); reconciling",
                                CallOutcome.FAILURE, duration_s)
        else:
            logger.opt(exception=error).error("adapter {} raised an unclassified error for {}", self.adapter_id, order.client_order_id)
            self._order_unknown(order, ErrorCode.E_EXEC_BROKER_TIMEOUT,
                                f"unclassified adapter error ({exc_summary(error)}); reconciling", CallOutcome.FAILURE, duration_s)

    def _retry_or_fail(self, order: SubmitOrder, error: NotDeliveredError, duration_s: float) -> None:
        tell(self._breaker, CallFinished(order.permit, CallOutcome.FAILURE, duration_s, order.client_order_id))
        policy = self._policy
        if self._sent_with_outcome and order.attempt == 1:
            # its OrderSent was left for the outcome (see _send); a retry's goes out as it is sent,
            # so the ledger records this attempt as sent before the next one (its audit's "attempt" line)
            tell(self._ledger, new_order_sent(order.client_order_id, order.account_id, self.adapter_id, order.attempt))
        if order.attempt <= policy.max_retries:
            delay = backoff_delay(order.attempt, base_s=policy.retry_base_s, cap_s=policy.retry_cap_s, jitter=policy.retry_jitter, rng=self._rng)
            if not self._past_deadline(order, after_s=delay):
                breaker = self._breaker
                retry = order.evolve(permit=None)
                tell(self._ledger, AttemptFailed(order.client_order_id, order.account_id, self.adapter_id, order.attempt,
                                                 ErrorCode.E_EXEC_NETWORK.value, error.message, round(delay, 6)))
                self._clock.call_later(delay, functools.partial(_send_retry, breaker, retry))
                return
        report = error_report(order, ErrorCode.E_EXEC_RETRY_EXHAUSTED,
                              f"not delivered after {order.attempt} attempt(s): {error.message}", status=OrderStatus.FAILED,
                              ts=self._clock.now())
        self._finish(order, report, None, duration_s)

    def _finish(self, order: SubmitOrder, report, outcome: CallOutcome | None, duration_s: float, *,
                venue_state: VenueOrderState | None = None) -> None:
        finished = self._finished
        if finished is not None:  # one of a group's outcomes (handle_VenueCallsCompleted): finished with the group
            finished.append((order, report, outcome, duration_s, venue_state))
            if len(finished) >= FINISH_CHUNK:  # answered and handed on in chunks: the ledger starts on them meanwhile
                self._finished = []
                self._finish_group(finished)
            return
        # The ledger, the idempotency store and the breaker get their facts before the caller
        # gets its answer (read-your-writes: a query or a retry of the id made right after the
        # answer is queued behind them), but their threads are woken only after it, so their
        # bookkeeping does not take the GIL ahead of the caller's wake-up (actors/kernel/inbox.py).
        # Only the ledger is woken here; it wakes the other two once it has applied the outcome.
        idempotency, breaker = self._idempotency, self._breaker
        tell_quiet(idempotency, new_complete_order(order.account_id, order.client_order_id, report))
        if outcome is not None:
            tell_quiet(breaker, new_call_finished(order.permit, outcome, duration_s, order.client_order_id))
        # the kernel relays the wake-up: the ledger wakes the other two once it has applied this
        if tell_quiet_then_wake(self._ledger, new_order_finished(report=report, adapter_id=self.adapter_id, venue_state=venue_state,
                                                                 metered=True), (idempotency, breaker)):
            woken: tuple[pykka.ActorRef, ...] = (self._ledger,)
        else:  # no ledger to pass the wake-up on: wake them here
            woken = (idempotency, breaker)
        try:
            resolve(order.reply, report)
        finally:
            for ref in woken:
                wake(ref)
        if self._order_detail:
            logger.debug("{} {} {} attempts={} cum_qty={} avg_px={} latency_us={}", self.adapter_id, report.client_order_id,
                         report.status.value, report.attempts, report.cum_qty, report.avg_px, report.latency_us)

    def _finish_group(self, finished: list[tuple]) -> None:
        """:meth:`_finish` for the orders of one group of venue outcomes (``(order, report, outcome,
        duration_s, venue_state)`` each, in call order): their facts go to the idempotency store, the
        breaker and the ledger as one message each (``CompleteOrders``, ``CallsFinished``,
        ``OrdersFinished``: each order still handled as its own), all queued before the first
        answer (read-your-writes, as for one order), and their threads are woken after the last."""
        if len(finished) == 1:
            order, report, outcome, duration_s, venue_state = finished[0]
            gathering, self._finished = self._finished, None
            try:
                self._finish(order, report, outcome, duration_s, venue_state=venue_state)
            finally:
                self._finished = gathering
            return
        idempotency, breaker, adapter_id = self._idempotency, self._breaker, self.adapter_id
        tell_quiet(idempotency, CompleteOrders(tuple(new_complete_order(order.account_id, order.client_order_id, report)
                                                     for order, report, _, _, _ in finished)))
        calls = tuple(new_call_finished(order.permit, outcome, duration_s, order.client_order_id)
                      for order, _, outcome, duration_s, _ in finished if outcome is not None)
        if calls:
            tell_quiet(breaker, CallsFinished(calls))
        outcomes = OrdersFinished(tuple(new_order_finished(report=report, adapter_id=adapter_id, venue_state=venue_state, metered=True)
                                        for _, report, _, _, venue_state in finished))
        if tell_quiet_then_wake(self._ledger, outcomes, (idempotency, breaker)):
            woken: tuple[pykka.ActorRef, ...] = (self._ledger,)
        else:  # no ledger to pass the wake-up on: wake them here
            woken = (idempotency, breaker)
        try:
            for order, report, _, _, _ in finished:
                resolve(order.reply, report)
        finally:
            for ref in woken:
                wake(ref)
        if self._order_detail:
            for _, report, _, _, _ in finished:
                logger.debug("{} {} {} attempts={} cum_qty={} avg_px={} latency_us={}", adapter_id, report.client_order_id,
                             report.status.value, report.attempts, report.cum_qty, report.avg_px, report.latency_us)

    def _order_unknown(self, order: SubmitOrder, code: ErrorCode, message: str, outcome: CallOutcome, duration_s: float | None = None) -> None:
        report = error_report(order, code, message, status=OrderStatus.UNKNOWN, ts=self._clock.now())
        logger.warning("{} {} is UNKNOWN ({}): {}", self.adapter_id, order.client_order_id, code.value, message)
        tell(self._ledger, OrderFinished(report=report, adapter_id=self.adapter_id, cause=code.value, metered=True))
        tell(self._idempotency, CompleteOrder(order.account_id, order.client_order_id, report, unknown=True))
        took_s = duration_s if duration_s is not None else self._policy.attempt_timeout_s
        tell(self._breaker, CallFinished(order.permit, outcome, took_s, order.client_order_id))
        resolve(order.reply, report)
        now = self._clock.monotonic()
        self._track_unknown(order.client_order_id, order.evolve(permit=None), now, now)

    def _never_sent(self, order: SubmitOrder, code: ErrorCode, message: str, *, retry_after_s: float | None = None,
                    final: bool = False) -> None:
        """An order that this actor refused before sending (throttle): DENIED on a first attempt, its
        claim released so the caller may retry the id — unless ``final`` (withdrawn by a cancel)."""
        tell(self._breaker, CallFinished(order.permit, CallOutcome.IGNORED, 0.0, order.client_order_id))
        if order.attempt == 0:
            report = error_report(order, code, message, status=OrderStatus.DENIED, retry_after_s=retry_after_s, ts=self._clock.now())
            if final:
                tell(self._idempotency, CompleteOrder(order.account_id, order.client_order_id, report))
            else:
                tell(self._idempotency, ReleaseClaim(order.account_id, order.client_order_id))
        else:
            report = error_report(order, code, message, status=OrderStatus.FAILED, retry_after_s=retry_after_s, ts=self._clock.now())
            tell(self._idempotency, CompleteOrder(order.account_id, order.client_order_id, report))
        tell(self._ledger, OrderFinished(report=report, adapter_id=self.adapter_id, cause=code.value))
        resolve(order.reply, report)

    def _cancel_done(self, cancel: CancelOrder, result: Any, error: BaseException | None) -> None:
        if error is None and isinstance(result, VenueOrderState):
            tell(self._ledger, CancelFinished(cancel, self.adapter_id, CancelOutcome.DONE, state=result))
        elif isinstance(error, VenueRejectedError):
            tell(self._ledger, CancelFinished(cancel, self.adapter_id, CancelOutcome.REJECTED, code=ErrorCode.E_EXEC_BROKER_REJECTED,
                                              reason=f"cancel rejected by the venue: {error.message}"))
        elif isinstance(error, NotDeliveredError):
            tell(self._ledger, CancelFinished(cancel, self.adapter_id, CancelOutcome.NOT_SENT, code=ErrorCode.E_EXEC_NETWORK,
                                              reason=f"cancel not delivered: {error.message}"))
        else:
            reason = exc_summary(error) if error is not None else f"adapter answered {type(result).__name__}"
            tell(self._ledger, CancelFinished(cancel, self.adapter_id, CancelOutcome.IN_DOUBT, code=ErrorCode.E_EXEC_BROKER_TIMEOUT,
                                              reason=f"cancel outcome unknown ({reason}); reconciling"))
            now = self._clock.monotonic()
            self._track_unknown(cancel.client_order_id, None, now, now)

    # -- live order tracking ---------------------------------------------------------------
    def handle_TrackOrders(self, message: TrackOrders) -> None:
        """Look working orders up at the venue (``fetch_order``), each lookup one throttle slot,
        only while the throttle window is below ``tracking.budget_share`` of ``max_calls`` and no
        order waits in the throttle queue: tracking never makes an order wait. Orders skipped here
        come round again in the ledger's next round; orders in reconciliation answer for themselves."""
        if not self._caps.supports_lookup:
            return
        budget = self._policy.throttle_max_calls * self._policy.tracking_budget_share
        busy = {call.client_order_id for call in self._calls.values()}
        venue = self._venue
        for cl_id in message.client_order_ids:
            if len(self._queue) or self._throttle.in_window() + 1 > budget:
                break
            if cl_id in busy or cl_id in self._recon:
                continue
            self._throttle.force_admit()
            self._dispatch_call(_Call("track", cl_id), functools.partial(venue.fetch_order, cl_id))

    def _track_done(self, cl_id: str, result: Any, error: BaseException | None) -> None:
        if error is None and result is not None and not isinstance(result, VenueOrderState):
            error = TypeError(f"fetch_order returned {type(result).__name__}, not a VenueOrderState or None")
        lookup = classify_lookup(cl_id, error if error is not None else result, self._caps, None)
        if lookup.found:  # the one lookup path: the ledger applies the state, each trade id once
            tell(self._ledger, OrderReconciledWith(cl_id, self.adapter_id, lookup.state, tracked=True))
        else:
            logger.debug("{} tracking lookup of {}: {}", self.adapter_id, cl_id, lookup.reason)

    # -- broker-state sync (sync_broker_state) -------------------------------------------
    def handle_FetchBrokerState(self, message: FetchBrokerState) -> None:
        """Fetch the venue's positions and balances on the worker (one throttle slot, never queued)."""
        self._throttle.force_admit()
        venue = self._venue
        self._dispatch_call(_Call("sync", "", sync_id=message.sync_id),
                            lambda: (dict(venue.fetch_positions()), dict(venue.fetch_account())))

    def _sync_done(self, sync_id: int, result: Any, error: BaseException | None) -> None:
        if error is not None or not (isinstance(result, tuple) and len(result) == 2):
            why = exc_summary(error) if error is not None else f"adapter answered {type(result).__name__}"
            tell(self._ledger, BrokerStateFetched(self.adapter_id, sync_id, error=f"fetch_positions/fetch_account failed: {why}"))
            return
        tell(self._ledger, BrokerStateFetched(self.adapter_id, sync_id, positions=result[0], balances=result[1]))

    # -- timeouts ----------------------------------------------------------------------
    def handle_CallTimedOut(self, message: CallTimedOut) -> None:
        call = self._calls.get(message.call_id)
        if call is None:
            return
        # the timer is armed by the worker when it starts the call, so the attempt timeout counts
        # from then: a call waiting behind others is not late (the one ahead of it times out itself)
        del self._calls[message.call_id]
        if call.kind == "submit" and call.order is not None:
            self._order_unknown(call.order, ErrorCode.E_EXEC_BROKER_TIMEOUT,
                                f"no answer within {self._policy.attempt_timeout_s:g} s; reconciling", CallOutcome.FAILURE)
        elif call.kind == "cancel" and call.cancel is not None:
            tell(self._ledger, CancelFinished(call.cancel, self.adapter_id, CancelOutcome.IN_DOUBT, code=ErrorCode.E_EXEC_BROKER_TIMEOUT,
                                              reason=f"cancel: no answer within {self._policy.cancel_timeout_s:g} s; reconciling"))
            now = self._clock.monotonic()
            self._track_unknown(call.client_order_id, None, now, now)
        elif call.kind == "sync":
            tell(self._ledger, BrokerStateFetched(self.adapter_id, call.sync_id, error=f"no answer within {self._policy.timeout_of(call.kind):g} s"))
        else:
            recon = self._recon.get(call.client_order_id)
            if recon is not None:
                recon.fetching = False
        if call.sent_async:
            return  # written from here, no worker is stuck: a later answer is ignored (reconciliation covers it)
        # the worker is stuck inside the venue: crash so the supervisor restarts us with a fresh worker
        self._crash_counted = call.kind == "submit" and call.order is not None  # its FAILURE is the crash's one
        raise ActorCrashed(f"venue worker of '{self.adapter_id}' hung past the {self._policy.timeout_of(call.kind):g} s deadline")

    # -- reconciliation ----------------------------------------------------------------
    def handle_ReconcileOrders(self, message: ReconcileOrders) -> None:
        if message.reason == "resolved":  # other evidence settled them (ledger): stop looking
            for cl_id in message.client_order_ids:
                self._recon.pop(cl_id, None)
            return
        now = self._clock.monotonic()
        # still in this actor's hands, so its outcome will come (the ledger also asks about RESERVED
        # orders, which may be legitimately waiting here): a call in flight, also one queued for a venue
        # group or waiting on the venue worker for its claim's COMMIT; an order in the throttle queue;
        # an order parked until its claim is settled. None of these is looked up (nothing is in doubt)
        busy = {call.client_order_id for call in self._calls.values()}
        busy.update(o.client_order_id for o in self._queue.waiting())
        for parked in self._parked.values():
            busy.update(o.client_order_id for o in parked)
        for cl_id in message.client_order_ids:
            if cl_id not in busy:  # a call still in flight answers for itself
                # quiet for the threshold in the ledger's view: look it up at the next tick
                self._track_unknown(cl_id, None, now - self._policy.quiet_threshold_s, now)

    def handle_ReconcileTick(self, message: ReconcileTick) -> None:
        self._recon_timer = None
        now = self._clock.monotonic()
        venue = self._venue
        lookup = self._caps.supports_lookup
        for recon in list(self._recon.values()):
            if recon.fetching or now < recon.next_at:
                continue
            recon.attempts += 1
            cl_id = recon.client_order_id
            if not lookup:  # nothing to ask: the attempt is counted (escalation), the order stays in doubt
                self._lookup_done(recon, None, None)
                continue
            recon.fetching = True
            self._dispatch_call(_Call("fetch", cl_id), functools.partial(venue.fetch_order, cl_id))
        self._arm_reconcile()

    def _fetch_done(self, cl_id: str, result: Any, error: BaseException | None) -> None:
        recon = self._recon.get(cl_id)
        if recon is None:
            return  # settled meanwhile (resolved by other evidence)
        recon.fetching = False
        self._lookup_done(recon, result, error)

    def _lookup_done(self, recon: _Recon, result: Any, error: BaseException | None) -> None:
        cl_id = recon.client_order_id
        now = self._clock.monotonic()
        if error is None and result is not None and not isinstance(result, VenueOrderState):
            error = TypeError(f"fetch_order returned {type(result).__name__}, not a VenueOrderState or None")
        since_sent = None if recon.sent_at is None else now - recon.sent_at
        lookup = classify_lookup(cl_id, error if error is not None else result, self._caps, since_sent)
        if lookup.outcome is LookupOutcome.FOUND:
            del self._recon[cl_id]
            tell(self._ledger, OrderReconciledWith(cl_id, self.adapter_id, lookup.state))
            return
        if lookup.outcome is LookupOutcome.ABSENT:
            del self._recon[cl_id]
            if recon.order is not None:
                # proof of absence: re-send, same client order id, through the breaker and throttle
                tell(self._ledger, OrderReconciledWith(cl_id, self.adapter_id, None, resent=True))
                tell(self._breaker, RetryOrder(recon.order.evolve(permit=None, reply=Future())))
            else:
                tell(self._ledger, OrderReconciledWith(cl_id, self.adapter_id, None, absent=True))
            return
        policy = self._policy
        recon.next_at = now + backoff_delay(recon.attempts, base_s=policy.reconcile_interval_s,
                                            cap_s=max(policy.reconcile_backoff_cap_s, policy.reconcile_interval_s),
                                            jitter=policy.retry_jitter, rng=self._rng)
        if recon.attempts >= policy.reconcile_max_attempts and not recon.escalated:
            recon.escalated = True
            logger.error("{} {} still in doubt after {} lookups: {}; it stays UNKNOWN and is looked up again",
                         self.adapter_id, cl_id, recon.attempts, lookup.reason)
            tell(self._ledger, ReconciliationStalled(cl_id, self.adapter_id, recon.attempts, lookup.reason,
                                                     round(now - recon.since, 3)))
        else:
            logger.debug("{} {} lookup {}: {}", self.adapter_id, cl_id, recon.attempts, lookup.reason)

    def _track_unknown(self, cl_id: str, order: SubmitOrder | None, since: float, sent_at: float | None,
                       *, attempts: int = 0) -> None:
        existing = self._recon.get(cl_id)
        if existing is not None:
            if existing.order is None and order is not None:
                existing.order = order
            if sent_at is not None and (existing.sent_at is None or sent_at > existing.sent_at):
                existing.sent_at = sent_at
            return
        self._recon[cl_id] = _Recon(cl_id, order, since, sent_at, since + self._policy.quiet_threshold_s,
                                    attempts=attempts, escalated=attempts >= self._policy.reconcile_max_attempts)
        self._arm_reconcile()

    def _arm_reconcile(self) -> None:
        if self._recon_timer is None and self._recon and self._worker is not None:
            ref = self.actor_ref
            self._recon_timer = self._clock.call_later(self._policy.reconcile_interval_s, lambda: tell(ref, ReconcileTick()))

    def _arm_throttle(self, delay: float) -> None:
        if self._throttle_timer is None:
            ref = self.actor_ref
            self._throttle_timer = self._clock.call_later(delay, lambda: tell(ref, ThrottleTick()))

    def _past_deadline(self, order: SubmitOrder, *, after_s: float = 0.0) -> bool:
        """True when the order's overall deadline (from ``Runtime.submit``) has passed, or will
        have passed ``after_s`` seconds from now."""
        elapsed = (time.perf_counter_ns() - order.t0_ns) / 1e9 + after_s
        return elapsed > self._policy.deadline_s


def _send_retry(breaker: pykka.ActorRef, order: SubmitOrder) -> None:
    """Timer thread: hand a retry to its breaker actor; log it if the actor is gone (only at shutdown)."""
    if not tell(breaker, RetryOrder(order)):
        logger.error("retry of {} could not reach its breaker actor", order.client_order_id)


@dataclass(frozen=True, slots=True)
class InDoubt:
    """An order whose venue outcome is unknown, handed from a crashed generation to the next."""

    client_order_id: str
    order: SubmitOrder | None
    #: clock time it went quiet (None: now); the first lookup is a quiet threshold later
    since: float | None = None
    #: latest clock time it may have been handed to the venue (None: now, the safe bound)
    sent_at: float | None = None
    #: lookups made so far (escalation counts on across generations)
    attempts: int = 0
