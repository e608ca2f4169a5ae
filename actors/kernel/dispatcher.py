"""A dispatcher: threads shared by several actors (Akka's term), instead of one thread each.

Why: every hop between two actors on their own threads costs a thread wake-up (5-20 µs on
CPython, ~2·F for the four hops of an order; benchmarks/README.md). Actors that never block
(docs/DESIGN.md, One order) lose nothing by sharing a thread: a message one member tells another runs on the
same thread as soon as the current message is done, with no wake-up at all.

What stays true (docs/DESIGN.md, One order's actor contract, and pykka's):

- each member is its own actor: its own inbox, ``ActorRef``, state and lifecycle; it is
  started, stopped, crashed and restarted exactly like a ``ThreadingActor``;
- one message at a time per member, in the order they were told (FIFO per inbox); no two
  members' handlers ever overlap (one dispatcher lock around each message);
- ``on_start``, ``on_stop`` and ``on_failure`` run on a dispatcher thread; a failing member
  stops alone, and its later messages are answered ``ActorDeadError`` (asks) or dropped
  (tells), as pykka's teardown does; a ``BaseException`` stops every actor, as pykka does.

Two threads, one lock: the *order thread* runs told messages in arrival order; the *after
thread* runs quiet ones (:func:`actors.kernel.inbox.tell_quiet`, an adapter's outcome facts queued
before it answers the caller) once woken (:func:`actors.kernel.inbox.wake`, after the answer).
When woken it first yields the CPU and lingers ``linger_s`` (default 50 µs) so that the
caller just answered takes the GIL before the bookkeeping does (measured: without it the
bookkeeping ran first, +70-100 µs on the caller's path). The order thread takes the quiet
messages itself when more than ``after_backlog`` wait, so they are never starved.

**The waiting thread helps** (ForkJoin's "join helps"): a thread about to block on an order's
reply (:class:`HelpingFuture`, ``Runtime.submit``'s ``ReplyFuture``) first runs the queued
messages of the dispatcher its order is queued on itself, if that dispatcher is free
(:meth:`Dispatcher.help`: the lock is only tried, never waited for), until its reply is there,
its order moved to another dispatcher, the run queue is empty or a budget is spent; then it
waits as before. The order then needs no thread wake-up at all. The dispatcher's thread was
rung as usual and finds the entries run (done) or runs what the helper left. Nothing else
changes: the helper holds the same lock, and running an entry runs its inbox up to it.

**The waiting thread reads** (leader/follower): an order sent to a venue whose answer comes
back on a socket (the FIX venue) marks its reply future with the venue's :class:`CallerReader`
(``HelpingFuture.reader``); the waiting thread, once nothing is left to help, reads that socket
itself until its answer is there (``CallerReader.read_for``), instead of sleeping until the
venue's reader thread has read the answer and woken it: one thread wake-up less per order, and
no two threads runnable on the answer's path. The answer's outcome then runs in the waiting
thread through the venue's help (``tell_then_help``). In the main thread the read runs with
Ctrl-C deferred, and ends within 0.5 s of one (raised once the read is handed back).

**The waiting thread calls the venue**: an in-process venue's call queued at its idle venue
worker may be offered to the thread waiting for the order's reply (:meth:`HelpingFuture.offer`,
actors/execution/adapter.py ``VenueWorker``): that thread, woken when the call may go (its claim
settled), makes it itself, and the outcome it hands on answers it in its own thread. A thread
counts as waiting for its whole ``result()``, helping included; one that leaves without making
the offered call (its timeout) declines it, and the worker makes it. A message carrying an order
whose claim's COMMIT has not returned yet is rung even when it is the helper's own order: the
helper is about to wait in that commit, and the next stage's thread runs it meanwhile.

A *solo* dispatcher (``solo=True``) has one member and one thread, which runs told messages
first and quiet ones when woken, after the same linger (a told message ends it): the runtime
gives one to each actor that writes a durable journal, whose commit blocks on fsync, so that
its commits never block the shared one while a waiting caller can still help it (the
idempotency store: the sender commits its own claim, with the claims queued behind it).

Which actors share one is the runtime's choice (``actors/runtime/runtime.py``, ``[dispatch]``
settings): the core actors and the adapter actors (a blocking venue call runs on the
adapter's worker thread, never in a handler), except actors writing a durable journal.

Example::

    core = Dispatcher("core")
    a = Echo.start(dispatcher=core)     # FlowActor subclasses take ``dispatcher=``
    b = Echo.start(dispatcher=core)
    a.ask("hi", timeout=1)              # runs on the "dispatcher-core" thread
    core.close()                        # stops a and b, ends both threads
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED
from typing import TYPE_CHECKING, Any, Protocol

import pykka
from loguru import logger

from . import interrupts
from .inbox import Inbox, ring, sched_yield, tell
from .pykka_compat import Envelope, dead_letter, run_envelope, start_actor

if TYPE_CHECKING:  # pragma: no cover
    from .base import FlowActor


class _Start:
    """First item of a member's inbox: run its ``on_start`` on the dispatcher thread."""

    __slots__ = ()


_START = _Start()
_CLOSE = object()

#: run-queue entries (messages) one wait for a reply runs at most before it just waits
HELP_BUDGET = 256


class _Here(threading.local):
    #: this thread runs members' messages now (a dispatcher's own thread, or a helper inside
    #: :meth:`Dispatcher.help`): it never helps, so it never holds two dispatchers' locks
    busy = False
    #: the reply this thread waits for while it helps (``HelpingFuture.result``): a handler it
    #: runs that queues this reply's order on a dispatcher does not ring that dispatcher's thread,
    #: since this thread runs it there next; what it leaves queued there, it rings for on leaving
    waiting: Any = None
    #: the dispatchers queued on without a ring during this thread's help (rung at its end)
    unrung: Any = None


_here = _Here()


#: ``Future``'s states in which ``Future.done()`` is True
_DONE_STATES = frozenset({CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED})


class CallerReader(Protocol):
    """A venue connection whose socket a thread waiting for an answer may read itself
    (protocols/venues/fix/_driver.py ``FixConnection``)."""

    def read_for(self, until: Callable[[], bool], deadline: float | None) -> bool:
        """Read (and hand on what is read) in the calling thread until ``until()`` or ``deadline``
        (``time.monotonic()`` s); ``until`` is checked at least every 0.5 s. True when it read."""
        ...

    def caller_answered(self, ident: int) -> None:
        """The waiting thread ``ident`` has its answer: stop its read soon."""
        ...


class OfferedCall(Protocol):
    """A venue call offered to the thread waiting for its order's answer (:meth:`HelpingFuture.offer`;
    actors/execution/adapter.py ``VenueWorker``: "The waiting thread calls the venue")."""

    #: ``time.monotonic()`` s after which the waiting thread runs it even when not :meth:`ready`
    #: (its claim's wait is over: the call then answers that the claim is not durable)
    deadline: float

    def ready(self) -> bool:
        """True once it may run now (its claim is settled). Never blocks."""
        ...

    def run(self) -> None:
        """Make the call in the calling thread, or leave it to its owner's thread; never raises."""
        ...

    def decline(self) -> None:
        """The waiting thread leaves without running it: its owner's thread takes it."""
        ...


class HelpingFuture(Future):
    """A ``concurrent.futures.Future`` whose waiter helps: :meth:`result` first runs the queued
    messages of the dispatcher the message carrying it is queued on (:meth:`Dispatcher.help`),
    then waits as ``Future.result`` does; ``timeout`` (seconds) bounds both.

    ``queued_on`` is set by :meth:`DispatchedInbox.put` whenever a told message whose ``reply``
    is this future (or whose ``replies`` hold it: a group commit's orders in one message) is
    queued on a dispatcher (an order's ``SubmitOrder`` at each stage), so the
    waiter follows its order from dispatcher to dispatcher. None (a thread per actor, or not
    queued yet): no help. ``add_done_callback`` and ``asyncio.wrap_future`` never call
    :meth:`result` before the future is done: they wait for the dispatchers' threads as before.
    """

    #: the dispatcher whose run queue last took a message carrying this future
    queued_on: Dispatcher | None = None
    #: the venue connection the answer comes back on, when a waiting thread may read it itself
    #: (set by the adapter actor that sent the order: "The waiting thread reads" above)
    reader: CallerReader | None = None
    #: threads now waiting in :meth:`result` that may run an :class:`OfferedCall` (under ``_condition``)
    _callers: int = 0
    #: the venue call offered to them and not yet taken (under ``_condition``)
    _offered: OfferedCall | None = None

    def offer(self, call: OfferedCall) -> bool:
        """Offer the order's venue call to the thread waiting in :meth:`result`: True when one waits
        (it runs ``call`` once ``call.ready()`` and :meth:`poke` woke it, or at ``call.deadline``, or
        declines it on leaving), False when none does (fire-and-forget, ``asyncio.wrap_future``, not
        waiting yet, answered already, a call offered already): the offerer's thread makes it."""
        with self._condition:
            if not self._callers or self._offered is not None or self._state in _DONE_STATES:
                return False
            self._offered = call
            return True

    def poke(self) -> None:
        """Wake the waiting thread to look at its offered call again (its claim was settled)."""
        with self._condition:
            self._condition.notify_all()

    def done(self) -> bool:
        """``Future.done()`` without taking the future's lock: one read of its state. The waiting
        thread asks it after every message it runs and every read of the venue's socket (~14 times
        per order), and ``Future.done`` takes and releases the future's ``Condition`` each time.
        One attribute read is atomic under the GIL, and ``set_result`` / ``set_exception`` store
        the result before the state, so a True here is followed by ``result()`` seeing the answer
        (tests/kernel/test_helping.py holds it to ``Future.done`` in every state)."""
        return self._state in _DONE_STATES

    def result(self, timeout: float | None = None) -> Any:
        """The result, helping first (see the class); raises as ``Future.result`` does."""
        if not self.done():
            calls = _may_call()
            if calls:  # from here on a venue call may be offered to this thread (made below, once ready)
                with self._condition:
                    self._callers += 1
            try:
                if self.queued_on is not None:
                    timeout = _help_then_wait(self, timeout)
                if self.reader is not None and not self.done():
                    timeout = _read_then_wait(self, self.reader, timeout)
                    if self.queued_on is not None and not self.done():
                        timeout = _help_then_wait(self, timeout)  # its outcome was left queued: run it
                if calls and not self.done():
                    timeout = _wait_or_call(self, timeout)
            finally:
                if calls:
                    _stop_calling(self)
        return super().result(timeout)


def _help_then_wait(future: HelpingFuture, timeout: float | None) -> float | None:
    """Help the dispatchers ``future``'s order is queued on (bounded by :data:`HELP_BUDGET` and
    ``timeout``); return what is left of ``timeout``. Never from a thread that runs members'
    messages; from the main thread only where a Ctrl-C is deferred (:meth:`Dispatcher.help`)."""
    if _here.busy:
        return timeout
    monotonic = time.monotonic
    deadline = None if timeout is None else monotonic() + timeout
    here = _here
    here.waiting, here.unrung = future, set()
    try:
        _help(future, deadline, monotonic)
    finally:
        unrung = here.unrung
        here.waiting = here.unrung = None
        for dispatcher in unrung:  # what this thread queued without a ring and left: its thread takes it
            if dispatcher._runq:
                ring(dispatcher._bell)
    return None if deadline is None else max(0.0, deadline - monotonic())


def _may_call() -> bool:
    """True when this thread may make a venue call offered to it (:meth:`HelpingFuture.offer`): it
    runs no member's messages, and in the main thread a Ctrl-C can be deferred."""
    if _here.busy:
        return False
    return threading.current_thread() is not threading.main_thread() or interrupts.main_may_help()


def _stop_calling(future: HelpingFuture) -> None:
    """This thread stops waiting in ``future.result()``: a venue call offered to it and not made
    (its timeout, a ``KeyboardInterrupt``) is declined, so its owner's thread makes it."""
    with future._condition:
        future._callers -= 1
        left = future._offered if not future._callers else None
        if left is not None:
            future._offered = None
    if left is not None:
        left.decline()


def _wait_or_call(future: HelpingFuture, timeout: float | None) -> float | None:
    """Wait for ``future`` within ``timeout``, making the venue call offered to this thread
    (:meth:`HelpingFuture.offer`) once it is ready (or at its deadline); return what is left of
    ``timeout``. Only while this thread counts among ``future``'s callers (``result()``, when
    :func:`_may_call`); in the main thread the call runs with a Ctrl-C deferred."""
    main = threading.current_thread() is threading.main_thread()
    monotonic = time.monotonic
    deadline = None if timeout is None else monotonic() + timeout
    condition = future._condition
    while True:
        with condition:
            while True:
                if future._state in _DONE_STATES:
                    return None if deadline is None else max(0.0, deadline - monotonic())
                offered, now = future._offered, monotonic()
                if offered is not None and (now >= offered.deadline or offered.ready()):
                    future._offered = None
                    break
                wait_s = None if deadline is None else deadline - now
                if wait_s is not None and wait_s <= 0:
                    return 0.0
                if offered is not None:
                    wait_s = offered.deadline - now if wait_s is None else min(wait_s, offered.deadline - now)
                condition.wait(wait_s)
        if main:
            interrupts.begin_help()
        try:
            offered.run()
        finally:
            if main:
                interrupts.end_help()  # a Ctrl-C that came in meanwhile: raised now, the call made


def _read_then_wait(future: HelpingFuture, reader: CallerReader, timeout: float | None) -> float | None:
    """Read the venue's socket for ``future``'s answer in this thread (:class:`CallerReader`)
    within ``timeout``; return what is left of it. Not from a thread that runs members' messages;
    from the main thread only where a Ctrl-C can be deferred: the read then ends within 0.5 s of
    one, and the ``KeyboardInterrupt`` is raised once it has handed the socket back."""
    if _here.busy:
        return timeout
    monotonic = time.monotonic
    deadline = None if timeout is None else monotonic() + timeout
    ident = threading.get_ident()
    future.add_done_callback(lambda _f: reader.caller_answered(ident))
    if threading.current_thread() is not threading.main_thread():
        reader.read_for(future.done, deadline)
    elif interrupts.main_may_help():
        interrupts.begin_help()
        try:
            reader.read_for(lambda: future.done() or interrupts.pending(), deadline)
        finally:
            interrupts.end_help()  # a Ctrl-C that came in meanwhile: raised now, the socket handed back
    return None if deadline is None else max(0.0, deadline - monotonic())


def _help(future: HelpingFuture, deadline: float | None, monotonic: Callable[[], float]) -> None:
    budget = HELP_BUDGET
    while budget > 0:
        dispatcher = future.queued_on
        if dispatcher is None or future.done():
            break

        def until(d: Dispatcher | None = dispatcher) -> bool:
            offered = future._offered  # its own venue call, ready: made next, not after other orders' messages
            return (future.done() or future.queued_on is not d or (offered is not None and offered.ready())
                    or (deadline is not None and monotonic() >= deadline))

        ran = dispatcher.help(until, budget)
        offered = future._offered
        if offered is not None and offered.ready():
            break  # its venue call may go: made now (_wait_or_call)
        if not ran and future.queued_on is dispatcher:
            break  # busy (its thread or another helper runs it) or nothing queued: wait
        budget -= max(ran, 1)
        if deadline is not None and monotonic() >= deadline:
            break


def _awaits_commit(message: Any) -> bool:
    """True when ``message`` carries an order forwarded before its claim's COMMIT returned (its
    ``claim`` ticket, or its first order's, not settled: actors/idempotency/ticket.py). A helper
    that tells it is about to wait in that commit's fsync: the next stage's thread is rung, so
    it runs meanwhile (the early forward's overlap), instead of waiting for the helper."""
    claim = getattr(message, "claim", None)
    if claim is None:
        orders = getattr(message, "orders", None)
        claim = getattr(orders[0], "claim", None) if orders else None
    return claim is not None and not claim.settled


class DispatchedInbox(Inbox):
    """A member's inbox: its own FIFO of messages, and one run-queue entry per message.

    A message is held as a small list ``[inbox, envelope, done]``, appended to the inbox's
    FIFO and then, as the entry, to the dispatcher's order queue (``put``, which rings the
    order thread) or after queue (``put_quiet``, no ring; ``wake`` rings the after thread).
    Running an entry runs the inbox's messages *up to and including the entry's own* (older
    ones first: per-member FIFO), marking each done; an entry whose message is done already
    is skipped. So a told message never waits for the after thread, and a quiet message
    ahead of it in the same inbox runs first. Only the dispatcher takes: ``get`` never
    blocks (``queue.Empty``).
    """

    __slots__ = ("_runq", "_later", "_later_bell", "_dispatcher", "_start_entry", "actor")

    def __init__(self, dispatcher: Dispatcher, actor: Any) -> None:
        self.actor = actor
        # on_start is the first message, whatever is told before Dispatcher.start queues it
        self._start_entry = [self, _START, False]
        self._items: deque[list] = deque((self._start_entry,))
        self._runq = dispatcher._runq
        self._later = dispatcher._later
        self._bell = dispatcher._bell
        self._later_bell = dispatcher._later_bell
        self._dispatcher = dispatcher
        self.held = None

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher whose threads (and helpers) run this inbox's messages."""
        return self._dispatcher

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Queue envelope ``item`` and wake the order thread (never blocks: unbounded). A message
        carrying a :class:`HelpingFuture` as its ``reply`` marks it queued on this dispatcher."""
        self.put_entry(item)

    def put_entry(self, item: Any, *, rung: bool = True) -> list:
        """:meth:`put`, returning the run-queue entry (``entry[2]`` turns True once it has run).
        ``rung=False``: the dispatcher's thread is not woken; the caller runs the entry itself or
        rings (``ring(dispatcher._bell)``) when it could not (:func:`tell_then_help`)."""
        entry = [self, item, False]
        self._items.append(entry)
        message = item.message
        reply = getattr(message, "reply", None)
        if isinstance(reply, HelpingFuture):
            reply.queued_on = self._dispatcher
            here = _here
            # the waiting thread goes on to run it (or rings on leaving); not while it waits in the claim's commit
            if reply is here.waiting and not _awaits_commit(message):
                return self._put_unrung(entry)
        elif reply is None:
            replies = getattr(message, "replies", None)  # a batch of orders (SubmitOrders, ExecuteOrders): each followed
            if replies is not None:
                waiting, dispatcher = _here.waiting, self._dispatcher
                mine = False
                for each in replies:
                    if isinstance(each, HelpingFuture):
                        each.queued_on = dispatcher
                        mine = mine or each is waiting
                if mine and not _awaits_commit(message):
                    return self._put_unrung(entry)
        self._runq.append(entry)
        if rung:
            ring(self._bell)
        if self._dispatcher._finished:  # no thread will take it: answer it here (ActorDeadError)
            self._dispatcher._drain()
        return entry

    def _put_unrung(self, entry: list) -> list:
        """Queue ``entry`` that carries the reply this thread waits for: it goes on to run it (or rings on leaving)."""
        self._runq.append(entry)
        _here.unrung.add(self._dispatcher)
        if self._dispatcher._finished:
            self._dispatcher._drain()
        return entry

    def put_quiet(self, item: Any) -> None:
        """Queue envelope ``item`` for the after thread without waking it."""
        entry = [self, item, False]
        self._items.append(entry)
        self._later.append(entry)
        if self._dispatcher._finished:
            self._dispatcher._drain()

    def wake(self) -> None:
        """Wake the dispatcher's after thread (a solo dispatcher's one thread, which lingers
        first) for the quiet messages queued so far."""
        self._dispatcher._late = True
        ring(self._later_bell)

    def take_all(self) -> list[Any]:
        """Nothing: a crashed member's later messages reach its mailbox as dead letters (below)."""
        return []

    def drain(self) -> list[Any]:
        """Remove and return the queued envelopes (marked done; called on the dispatcher thread,
        by a member that crashed, for its :class:`~actors.kernel.inbox.Mailbox`)."""
        out = []
        items = self._items
        while items:
            entry = items.popleft()
            entry[2] = True
            if entry[1] is not _START:
                out.append(entry[1])
        return out

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The oldest envelope if there is one (non-blocking only: the dispatcher takes them)."""
        try:
            entry = self._items.popleft()
        except IndexError:
            raise queue.Empty from None
        entry[2] = True
        return entry[1]


class Dispatcher:
    """Two daemon threads running the messages of its member actors, one message at a time.

    ``name`` names the threads (``dispatcher-<name>``, ``dispatcher-<name>-after``; a ``solo``
    dispatcher has only the first, which takes both queues: told messages first, quiet ones
    once woken for them and after ``linger_s``);
    ``linger_s`` (seconds, 0-0.01) is how long the after thread waits once woken before it
    runs quiet messages; ``after_backlog`` (count >= 1) is how many quiet messages may wait
    before the order thread runs them itself; ``helpable`` False: a waiting thread never runs
    its members' messages (:meth:`help` returns 0; ``[dispatch] help = false``). Raises
    ValueError for values out of range.

    ``inbox()`` makes a member's inbox (``FlowActor._create_actor_inbox``); ``start(actor)``
    schedules its ``on_start`` (``FlowActor._start_actor_loop``); ``close()`` stops the
    members still alive and ends both threads. Running an entry of either queue runs its
    inbox up to and including the entry's message, so per-member FIFO holds whichever thread
    runs it.
    """

    def __init__(self, name: str, *, linger_s: float = 50e-6, after_backlog: int = 64, solo: bool = False,
                 helpable: bool = True) -> None:
        if after_backlog < 1:
            raise ValueError(f"after_backlog must be >= 1, got {after_backlog}")
        if not 0.0 <= linger_s <= 0.01:
            raise ValueError(f"linger_s must be within [0, 0.01] s, got {linger_s}")
        self.name = name
        self.linger_s = linger_s
        self.after_backlog = after_backlog
        self._runq: deque[Any] = deque()
        self._later: deque[Any] = deque()
        self._bell = threading.Lock()
        self._bell.acquire()  # held = nothing to announce
        self.solo = solo
        #: False: :meth:`help` never runs anything here (``[dispatch] help = false``): only the
        #: dispatcher's own threads run its members' messages
        self.helpable = helpable
        if solo:  # one thread waits for both
            self._later_bell = self._bell
        else:
            self._later_bell = threading.Lock()
            self._later_bell.acquire()
        #: set by a wake(): the solo thread lingers before its quiet messages
        self._late = False
        self._running = threading.Lock()  # held while a member handler runs
        self._lock = threading.Lock()  # members and threads
        self._members: list[Any] = []
        self._threads: tuple[threading.Thread, ...] = ()
        self._closed = False
        #: set once the order thread has passed close(): later puts are answered dead by the putter
        self._finished = False

    # -- members ---------------------------------------------------------------------------
    def inbox(self, actor: Any) -> DispatchedInbox:
        """A new inbox of member ``actor`` (called from its ``__init__``; RuntimeError once closed)."""
        if self._closed:
            raise RuntimeError(f"dispatcher {self.name!r} is closed")
        return DispatchedInbox(self, actor)

    def start(self, actor: FlowActor) -> None:
        """Run ``actor``'s ``on_start`` next, then its messages (raises ValueError for a foreign inbox)."""
        inbox = actor.actor_inbox
        if not isinstance(inbox, DispatchedInbox) or inbox._dispatcher is not self or inbox.actor is not actor:
            raise ValueError(f"{actor} was not created with dispatcher {self.name!r}")
        with self._lock:
            if self._closed:  # pykka registered it before starting it: undo that
                actor.actor_stopped.set()
                pykka.ActorRegistry.unregister(actor.actor_ref)
                raise RuntimeError(f"dispatcher {self.name!r} is closed")
            # stopped members (crashed adapters replaced by the supervisor) are dropped here
            self._members = [a for a in self._members if not a.actor_stopped.is_set()]
            self._members.append(actor)
            if not self._threads:
                if self.solo:
                    self._threads = (threading.Thread(target=self._solo_loop, name=f"dispatcher-{self.name}", daemon=True),)
                else:
                    self._threads = (
                        threading.Thread(target=self._order_loop, name=f"dispatcher-{self.name}", daemon=True),
                        threading.Thread(target=self._after_loop, name=f"dispatcher-{self.name}-after", daemon=True),
                    )
                for thread in self._threads:
                    thread.start()
            # the entry of the inbox's first message, on_start; under the lock, so a concurrent
            # close() either sees this member and stops it, or this start raises above
            self._runq.append(inbox._start_entry)
        ring(self._bell)

    def members(self) -> list[Any]:
        """The member actors that have not stopped (a snapshot)."""
        with self._lock:
            return [a for a in self._members if not a.actor_stopped.is_set()]

    @property
    def running_here(self) -> bool:
        """True when called from one of the dispatcher's threads."""
        return threading.current_thread() in self._threads

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the members still alive, then end both threads; True if they ended within ``timeout`` s."""
        with self._lock:
            self._closed = True
            threads = self._threads
            alive = [a for a in self._members if not a.actor_stopped.is_set()]
        for actor in alive:
            try:
                actor.actor_ref.stop(block=False)
            except pykka.ActorDeadError:
                pass
        if not threads:
            return True
        self._runq.append(_CLOSE)  # behind the stops; the order thread then ends the after thread
        ring(self._bell)
        if threading.current_thread() in threads:
            return False  # closing from a member's handler: the threads end after this message
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    # -- the waiting thread helps -----------------------------------------------------------
    def help(self, until: Callable[[], bool], budget: int = HELP_BUDGET) -> int:
        """Run queued messages in the calling thread, as the order thread would, while the
        dispatcher is free; return how many run-queue entries ran (0: busy, closed or nothing
        queued).

        For a thread about to wait for something these messages lead to (a reply): it runs them
        instead of waking the dispatcher's thread and sleeping. Only tries the dispatcher's lock
        (never waits for it: busy means its thread or another helper runs it, returns 0). Then
        runs run-queue entries oldest first until ``until()`` (checked before each entry) is
        true, the run queue is empty, or ``budget`` (entries >= 1) is spent; the quiet messages'
        backlog is taken as the order thread takes it (``after_backlog``); the close marker is
        left for the order thread, and a closed dispatcher is not run. Per-member FIFO and one
        message at a time hold as on the dispatcher's threads (same lock; an entry runs its
        inbox up to itself). A thread that runs members' messages (a dispatcher's thread, or a
        helper inside a handler) never helps: returns 0, so no thread holds two dispatchers'
        locks. The main thread helps only while a Ctrl-C is deferred to the end of the help
        (actors/kernel/interrupts.py; raised then as ``KeyboardInterrupt``), else returns 0.
        ``until`` must not block.

        Example::

            reply = HelpingFuture()
            tell(member, Ask(reply))
            dispatcher.help(reply.done)     # usually runs it here; then reply.result(timeout)
        """
        here = _here
        if here.busy or budget < 1 or not self.helpable:
            return 0
        main = threading.current_thread() is threading.main_thread()
        if main and not interrupts.main_may_help():
            return 0
        running = self._running
        if not running.acquire(False):
            return 0
        here.busy = True
        if main:
            interrupts.begin_help()
        ran = 0
        try:
            if self._finished:
                return 0
            runq, later, backlog, run = self._runq, self._later, self.after_backlog, self._run_entry
            popleft = runq.popleft
            while ran < budget and not until():
                try:
                    entry = popleft()
                except IndexError:
                    break
                if entry is _CLOSE:  # the order thread closes; it may have been rung already
                    runq.appendleft(entry)
                    ring(self._bell)
                    break
                run(entry)
                ran += 1
                if len(later) > backlog:  # as the order thread does: quiet messages are never starved
                    for _ in range(backlog):
                        if not later:
                            break
                        run(later.popleft())
                        ran += 1
        finally:
            here.busy = False
            running.release()
            if main:
                interrupts.end_help()  # a Ctrl-C that came in meanwhile: raised now, the dispatcher free
        return ran

    # -- the loops -------------------------------------------------------------------------
    def _order_loop(self) -> None:
        _here.busy = True
        runq, later, bell, running = self._runq, self._later, self._bell, self._running
        popleft, backlog = runq.popleft, self.after_backlog
        run = self._run_entry
        while True:
            try:
                entry = popleft()
            except IndexError:
                if later:
                    ring(self._later_bell)  # quiet messages nobody woke for: never left behind
                bell.acquire()  # a ring with nobody waiting leaves it open: re-check at once
                continue
            if entry is _CLOSE:
                with running:  # not while a member handler runs: it may still tell
                    self._finished = True
                    self._drain_locked()
                ring(self._later_bell)  # the after thread sees _finished and ends
                return
            with running:
                run(entry)
                if len(later) > backlog:  # the after thread is starved: take its oldest share
                    for _ in range(backlog):
                        if not later:
                            break
                        run(later.popleft())

    def _after_loop(self) -> None:
        _here.busy = True
        later, bell, running = self._later, self._later_bell, self._running
        run, linger_s, sleep = self._run_entry, self.linger_s, time.sleep
        while True:
            with running:
                if self._finished:
                    return
                try:
                    entry = later.popleft()
                except IndexError:
                    entry = None
                else:
                    run(entry)
            if entry is None:
                bell.acquire()
                # woken after an answer: let the answered caller take the CPU and the GIL first
                sched_yield()
                if linger_s:
                    sleep(linger_s)

    def _solo_loop(self) -> None:
        """A solo dispatcher's one thread: told messages first; quiet ones once woken for them
        (:meth:`DispatchedInbox.wake`), after first yielding the CPU and lingering ``linger_s``
        as the after thread does (a told message ends the linger and runs first). Woken only
        by a ring it leaves quiet messages queued: they wait for their wake-up (after the answer
        went out) or run ahead of the member's next told message (FIFO), exactly as they do on
        a thread of its own (``Inbox``)."""
        _here.busy = True
        runq, later, bell, running = self._runq, self._later, self._bell, self._running
        run, linger_s = self._run_entry, self.linger_s
        draining = False  # woken for quiet messages: take them all (told ones first)
        while True:
            try:
                entry = runq.popleft()
            except IndexError:
                if self._late:  # a wake() since the last look: linger, then take what it announced
                    self._late = False
                    if later:
                        draining = True
                        sched_yield()
                        if linger_s and bell.acquire(timeout=linger_s):
                            continue  # rung: a told message first (or another wake)
                if not draining:
                    bell.acquire()  # a ring with nobody waiting leaves it open: re-check at once
                    continue
                try:
                    entry = later.popleft()
                except IndexError:
                    draining = False
                    continue
            if entry is _CLOSE:
                with running:
                    self._finished = True
                    self._drain_locked()
                return
            with running:
                run(entry)

    def _drain(self) -> None:
        """Answer every entry left once the threads are done (a put after close: ActorDeadError)."""
        with self._running:
            self._drain_locked()

    def _drain_locked(self) -> None:
        for queue_ in (self._runq, self._later):
            while True:
                try:
                    entry = queue_.popleft()
                except IndexError:
                    break
                if entry is not _CLOSE:  # a second close()'s marker
                    self._run_entry(entry)

    @staticmethod
    def _run_entry(entry: list) -> None:
        """Run ``entry``'s inbox up to and including ``entry``'s message (dispatcher lock held).

        Never raises: a fault of the dispatcher itself is logged, and its threads go on.
        """
        if entry[2]:
            return  # run already, behind an earlier entry of the same inbox
        inbox = entry[0]
        items, actor = inbox._items, inbox.actor
        try:
            # each message the way pykka's own actor loop runs it (actors/kernel/pykka_compat.py)
            while True:
                item = items.popleft()  # never empty here: an entry is queued after its item
                item[2] = True
                envelope = item[1]
                if envelope is _START:
                    start_actor(actor)
                elif actor.actor_stopped.is_set():  # per message: most entries run one
                    _dead_letter(actor, envelope)
                else:
                    run_envelope(actor, envelope)
                if item is entry:
                    return
        except Exception:  # noqa: BLE001 - a handler's errors are handled inside; this is ours
            logger.opt(exception=True).critical("dispatcher fault running a message of {}", actor)


def tell_then_help(ref: pykka.ActorRef | None, message: Any, budget: int) -> bool:
    """Tell ``message`` to ``ref``; then, if ``ref`` is a dispatcher member, help that dispatcher
    (:meth:`Dispatcher.help`) until the message has run, at most ``budget`` run-queue entries
    (older ones first). For a thread that hands a result to an actor and goes back to its own
    work (a venue session's reader thread, an adapter's venue worker): the message usually runs
    right here, and the dispatcher's thread is not woken for it (woken, it would only contend for
    the GIL and find the message run). Bounded: with the dispatcher busy (its lock taken) or the
    budget spent first, it is rung and its thread runs the message, as after a plain tell.
    False (never raises) when ``ref`` is gone, as :func:`~actors.kernel.inbox.tell`."""
    if ref is None:
        return False
    inbox = ref.actor_inbox
    if type(inbox) is not DispatchedInbox or ref.actor_stopped.is_set():
        return tell(ref, message)
    dispatcher = inbox._dispatcher
    entry = inbox.put_entry(Envelope(message), rung=False)
    try:
        dispatcher.help(lambda: entry[2], budget)
    finally:
        if not entry[2]:  # left (busy, budget, not helpable, an exception): its thread takes it
            ring(dispatcher._bell)
    return True


def _dead_letter(actor: Any, envelope: Any) -> None:
    """A message that reached a stopped member: kept by its mailbox if it crashed supervised
    (actors/kernel/inbox.Mailbox), else what pykka's loop teardown does (pykka_compat.dead_letter)."""
    held = actor.actor_inbox.held
    if held is not None:
        held._put_envelope(envelope)
        return
    dead_letter(actor, envelope)


__all__ = ["HELP_BUDGET", "CallerReader", "DispatchedInbox", "Dispatcher", "HelpingFuture", "OfferedCall", "tell_then_help"]
