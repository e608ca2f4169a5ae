"""The waiting thread helps (actors/kernel/dispatcher.py ``Dispatcher.help``, ``HelpingFuture``;
docs/DESIGN.md "Threads").

Covered: a waiter's ``result`` runs its order's messages itself, following it from dispatcher to
dispatcher (a parked dispatcher thread makes "the waiter ran it" certain); ``help`` stops at its
budget and at ``until``, leaves the close marker to the order thread, does nothing on a closed
dispatcher, and is refused to a thread that runs members' messages (no thread holds two
dispatchers' locks); per-member FIFO and one handler at a time with concurrent helping senders
on a running dispatcher; fire-and-forget and ``asyncio.wrap_future`` still complete through a
runtime; Ctrl-C (a real SIGINT) during a handler the main thread runs is raised after the
handler, which runs to its end; with a host's own SIGINT handler the main thread does not help.

Nothing depends on timing: waits are on futures and Events with timeouts.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest
from conftest import ctx, market, quote

from actors import Runtime
from actors.kernel import interrupts
from actors.kernel.base import FlowActor, ReplyFuture, tell
from actors.kernel.dispatcher import Dispatcher, HelpingFuture
from actors.kernel.inbox import tell_quiet, wake
from config import load_settings
from protocols import OrderStatus

#: as ``Runtime.start`` does: Ctrl-C deferred, so the main thread (pytest's) helps (tests/kernel/conftest.py)
pytestmark = pytest.mark.usefixtures("main_thread_may_help")


class ParkedDispatcher(Dispatcher):
    """A dispatcher whose order thread waits for :attr:`unpark` before it runs anything: until
    then only helpers run its messages (its after thread is the real one, idle: nothing quiet)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.unpark = threading.Event()

    def _order_loop(self) -> None:
        self.unpark.wait(30)
        super()._order_loop()

    def close(self, timeout: float = 5.0) -> bool:
        self.unpark.set()
        return super().close(timeout)


@dataclass(frozen=True)
class Step:
    """Append ``(label, n)`` to the log, then tell ``then`` the next step, or answer ``reply``."""

    n: int
    reply: Any = None
    then: tuple = ()
    sender: int = 0
    relayed: bool = False


@dataclass(frozen=True)
class Interrupted:
    """Send SIGINT to the main thread, then keep working; answer ``reply`` with the work done."""

    reply: Any
    steps: int = 20000


@dataclass(frozen=True)
class HelpOther:
    """From inside a handler, try to help ``other``; answer ``reply`` with what help returned."""

    other: Dispatcher
    reply: Any = field(default_factory=ReplyFuture)


class Member(FlowActor):
    """Logs ``(label, sender, n, thread)`` per Step; flags any overlap of two handlers on its dispatcher."""

    def __init__(self, label: str, log: list, busy: list, **kw: Any) -> None:
        super().__init__(child_name=label, **kw)
        self.label, self.log, self.busy = label, log, busy
        self.done_work: list[int] = []

    def on_receive(self, message: Any) -> Any:
        if self.busy[0]:
            self.busy.append(threading.current_thread().name)  # an overlap
        self.busy[0] = True
        try:
            return super().on_receive(message)
        finally:
            self.busy[0] = False

    def handle_Step(self, message: Step) -> None:
        # relayed: told by a member, not by the sender itself
        self.log.append((self.label, message.sender, message.n, threading.current_thread().name, message.relayed))
        if message.then:
            tell(message.then[0], Step(message.n, message.reply, message.then[1:], message.sender, relayed=True))
        elif message.reply is not None:
            message.reply.set_result(threading.current_thread().name)

    def handle_Interrupted(self, message: Interrupted) -> None:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        work = 0
        for _ in range(message.steps):  # bytecodes enough for Python to run its signal handler
            work += 1
        self.done_work.append(work)
        message.reply.set_result(work)

    def handle_HelpOther(self, message: HelpOther) -> None:
        message.reply.set_result(message.other.help(lambda: False))


def _start(dispatcher: Dispatcher, *labels: str) -> tuple[list, list, list[pykka.ActorRef]]:
    log: list = []
    busy: list = [False]
    return log, busy, [Member.start(label, log, busy, dispatcher=dispatcher) for label in labels]


def test_a_waiting_caller_runs_its_orders_messages_itself() -> None:
    """Fails without ``HelpingFuture.result``'s help: both dispatcher threads are parked."""
    core, solo = ParkedDispatcher("help-core"), ParkedDispatcher("help-solo")
    try:
        log, _, (a,) = _start(solo, "a")
        _, _, (b, c) = _start(core, "b", "c")
        reply = ReplyFuture()
        tell(a, Step(1, reply, (b, c)))  # a (solo) -> b -> c (core), who answers
        assert reply.queued_on is solo
        me = threading.current_thread().name
        assert reply.result(timeout=10) == me  # no dispatcher thread ran anything: both are parked
        assert [(label, thread) for label, _, _, thread, _ in log] == [("a", me)]
        assert reply.queued_on is core  # it followed its order
    finally:
        core.close()
        solo.close()


def test_a_dispatcher_that_is_not_helpable_runs_its_messages_on_its_own_threads_only() -> None:
    """``[dispatch] help = false``: the waiting caller just waits; fails if help ignored ``helpable``."""
    d = ParkedDispatcher("help-off", helpable=False)
    try:
        log, _, (a,) = _start(d, "a")
        reply = ReplyFuture()
        tell(a, Step(1, reply))
        assert reply.queued_on is d
        assert d.help(lambda: False) == 0
        with pytest.raises(FutureTimeout):
            reply.result(timeout=0.2)  # nothing ran in this thread: the order thread is parked
        assert log == []
        d.unpark.set()
        assert reply.result(timeout=10) != threading.current_thread().name  # the dispatcher's thread answered
        assert [thread for _, _, _, thread, _ in log] == [reply.result()]
    finally:
        d.close()


def test_the_runtime_setting_help_false_makes_no_dispatcher_helpable(make_runtime) -> None:
    rt = make_runtime(durable=True, dispatch={"help": False})
    assert [d.helpable for d in (rt._core, *rt._solo)] == [False, False, False]
    rt.on_market(quote())
    assert rt.submit(market(), ctx()).result(timeout=10).status is OrderStatus.FILLED


def test_help_is_bounded_by_budget_and_until_and_leaves_the_close_marker() -> None:
    d = ParkedDispatcher("help-bounds")
    log, _, (a,) = _start(d, "a")
    assert d.help(lambda: False, budget=1) == 1  # a's on_start
    for n in range(5):
        tell(a, Step(n))
    assert d.help(lambda: False, budget=2) == 2
    assert d.help(lambda: len(log) >= 3) == 1
    assert [n for _, _, n, _, _ in log] == [0, 1, 2]
    # the close marker stays for the order thread: a helper stops at it
    d._closed = True
    from actors.kernel.dispatcher import _CLOSE
    d._runq.appendleft(_CLOSE)
    assert d.help(lambda: False) == 0
    assert d._runq[0] is _CLOSE
    d._runq.popleft()
    d._closed = False
    assert d.close()
    assert d.help(lambda: False) == 0  # closed: nothing runs in the caller's thread
    assert [n for _, _, n, _, _ in log] == [0, 1, 2, 3, 4]  # the order thread ran the rest before closing


def test_a_thread_running_a_handler_never_helps_another_dispatcher() -> None:
    here, other = Dispatcher("help-here"), ParkedDispatcher("help-other")
    try:
        _, _, (a,) = _start(here, "a")
        log, _, (b,) = _start(other, "b")
        tell(b, Step(1))
        asked = HelpOther(other)
        tell(a, asked)
        assert asked.reply.result(timeout=10) == 0
        assert log == []  # b's start and message wait for other's own thread
    finally:
        other.close()
        here.close()


def test_concurrent_helping_senders_keep_fifo_per_member_and_one_handler_at_a_time() -> None:
    d = Dispatcher("help-fifo")
    log, busy, refs = _start(d, "a", "b", "c")
    try:
        errors: list[BaseException] = []

        def sender(k: int) -> None:
            try:
                for n in range(150):
                    reply = ReplyFuture()
                    target = refs[(k + n) % 3]
                    # a chain through two members, answered by the last
                    tell(target, Step(n, reply, (refs[(k + n + 1) % 3],), sender=k))
                    if n % 3:  # every third one fire-and-forget
                        reply.result(timeout=30)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for ref in refs:  # a barrier: everything told before is done
            reply = ReplyFuture()
            tell(ref, Step(-1, reply))
            reply.result(timeout=30)
        assert errors == []
        assert busy == [False]  # no overlap recorded
        for label in "abc":
            for k in range(4):
                told = [n for who, s, n, _, relayed in log if who == label and s == k and n >= 0 and not relayed]
                assert told == sorted(told) and told  # per member, per sender: FIFO
        assert len([e for e in log if e[2] >= 0]) == 4 * 150 * 2  # every step of every chain ran once
    finally:
        d.close()


def test_help_happens_only_for_a_helping_future_queued_on_a_dispatcher() -> None:
    plain = HelpingFuture()
    assert plain.queued_on is None
    with pytest.raises(FutureTimeout):
        plain.result(timeout=0)


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime.start(load_settings("test", state_dir=tmp_path, journal={"enabled": False}))
    rt.on_market(quote())
    yield rt
    rt.stop()


def test_fire_and_forget_and_asyncio_wrap_future_still_complete(runtime: Runtime) -> None:
    told = runtime.submit(market(), ctx())  # never waited on with result()
    report = runtime.wait(_coid(told), timeout=10)
    assert report.status is OrderStatus.FILLED

    async def main() -> Any:
        return await asyncio.wait_for(asyncio.wrap_future(runtime.submit(market(), ctx())), 10)

    assert asyncio.run(main()).status is OrderStatus.FILLED


def _coid(future: Any) -> str:
    import time

    deadline = time.monotonic() + 10
    while not future.done() and time.monotonic() < deadline:  # a fire-and-forget caller never calls result()
        time.sleep(0.001)
    return future._result.client_order_id


def test_ctrl_c_during_a_handler_the_main_thread_runs_waits_for_the_handler_to_end() -> None:
    assert threading.current_thread() is threading.main_thread()
    assert signal.getsignal(signal.SIGINT) is interrupts._on_sigint  # the fixture's hold, as Runtime.start's
    d = ParkedDispatcher("help-sigint")
    try:
        _, _, (a,) = _start(d, "a")
        reply = ReplyFuture()
        tell(a, Interrupted(reply))
        with pytest.raises(KeyboardInterrupt):
            reply.result(timeout=10)
        # the interrupt came during the handler and was raised after it: the handler ran to its end
        assert reply.done() and reply.result(timeout=0) == Interrupted(reply).steps
    finally:
        d.close()
    # outside a help a Ctrl-C is Python's own, at once
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_the_last_release_puts_pythons_sigint_handler_back() -> None:
    first, second = interrupts.hold(), interrupts.hold()  # the fixture holds too
    first()
    first()  # idempotent
    second()
    assert signal.getsignal(signal.SIGINT) is interrupts._on_sigint  # the fixture still holds


def test_with_a_hosts_own_sigint_handler_the_main_thread_does_not_help() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    release = interrupts.hold()  # not Python's handler: left alone
    d = ParkedDispatcher("help-host-sigint")
    try:
        assert not interrupts.main_may_help()
        log, _, (a,) = _start(d, "a")
        reply = ReplyFuture()
        tell(a, Step(1, reply))
        with pytest.raises(FutureTimeout):
            reply.result(timeout=0.05)  # the main thread waited: nothing ran
        assert log == []
    finally:
        d.close()
        release()
        signal.signal(signal.SIGINT, previous)


def test_after_the_last_runtime_stops_sigint_is_pythons_again(tmp_path) -> None:
    rt = Runtime.start(load_settings("test", state_dir=tmp_path, journal={"enabled": False}))
    try:
        assert signal.getsignal(signal.SIGINT) is interrupts._on_sigint
    finally:
        rt.stop()
    assert signal.getsignal(signal.SIGINT) is interrupts._on_sigint  # this test's fixture still holds


# -- the journal-writing actors on solo dispatchers ------------------------------------------------
def test_durable_store_and_ledger_run_on_solo_dispatchers_a_waiting_sender_helps(make_runtime) -> None:
    rt = make_runtime(durable=True, dispatch={"help_journaled": True})
    store_on, ledger_on = rt._solo
    assert store_on.solo and ledger_on.solo and len(store_on._threads) == 1
    assert store_on.members() == [rt.idempotency.actor_inbox.actor] and ledger_on.members() == [rt.ledger.actor_inbox.actor]
    rt.on_market(quote())
    future = rt.submit(market(), ctx())
    assert future.queued_on is store_on  # the claim is queued on the store's own dispatcher
    assert future.result(timeout=10).status is OrderStatus.FILLED
    assert future.queued_on is rt._core  # followed to the core after the store and the ledger


def test_by_default_a_sender_helps_the_journal_writing_actors(make_runtime) -> None:
    """``[dispatch] help_journaled`` is on by default (docs/DESIGN.md "Threads")."""
    rt = make_runtime(durable=True)
    assert [d.helpable for d in rt._solo] == [True, True] and rt._core.helpable


def test_help_journaled_off_leaves_the_journal_writing_actors_to_their_threads(make_runtime) -> None:
    """``help_journaled = false``: the store's and the ledger's own threads run their messages (the
    core is still helped); fails if the setting is ignored."""
    rt = make_runtime(durable=True, dispatch={"help_journaled": False})
    assert [d.helpable for d in rt._solo] == [False, False] and rt._core.helpable
    rt.on_market(quote())
    future = rt.submit(market(), ctx())
    assert future.result(timeout=10).status is OrderStatus.FILLED


def test_claims_of_concurrent_helping_senders_still_share_one_commit(make_runtime) -> None:
    """Every sender's claim is queued while the store's dispatcher is busy; whoever runs them
    then (a sender helping, or the store's thread) commits them in one batch: a helper stops
    only once its order has left the store, and the store commits when its inbox is empty."""
    rt = make_runtime(durable=True, dispatch={"help_journaled": True})
    rt.on_market(quote())
    store_on = rt._solo[0]
    before = rt.stats()["journal"]
    senders = 6
    go = threading.Event()
    reports: list[Any] = []

    def sender(future: Any) -> None:
        go.wait(10)
        reports.append(future.result(timeout=30))

    assert store_on._running.acquire(timeout=10)  # the store is busy: nothing of it runs
    try:
        futures = [rt.submit(market(), ctx()) for _ in range(senders)]
        threads = [threading.Thread(target=sender, args=(f,)) for f in futures]
        for t in threads:
            t.start()
        # every claim is in the store's inbox (its thread may hold one entry, waiting for the lock)
        assert rt.idempotency.actor_inbox.qsize() == senders
    finally:
        go.set()  # the senders help (or find the store's thread at it) as soon as it is free
        store_on._running.release()
    for t in threads:
        t.join(30)
    assert [r.status for r in reports] == [OrderStatus.FILLED] * senders
    after = rt.stats()["journal"]
    assert after["batches"] - before["batches"] == 1  # the store's claim batches: one commit for all of them
    assert after["store"].max_batch >= senders


def test_a_solo_dispatcher_leaves_quiet_messages_for_their_wake_up() -> None:
    """A quiet message waits for its wake-up (after the answer), even when the solo thread is
    awake for told messages; then it runs after the linger, on the solo thread."""
    d = Dispatcher("help-solo-quiet", solo=True)
    try:
        log, _, (a, b) = _start(d, "a", "b")
        tell_quiet(a, Step(1))
        # asks to another member: each runs on the solo thread (a pykka future: nobody helps), which
        # goes idle after each one; a's quiet message must still wait for its wake-up
        for n in range(20):
            b.ask(Step(10 + n), timeout=10)
        assert [label for label, *_ in log] == ["b"] * 20
        done = ReplyFuture()
        tell_quiet(a, Step(2, done))
        wake(a)
        assert done.result(timeout=10) == f"dispatcher-{d.name}"
        assert [(label, n) for label, _, n, _, _ in log][-3:] == [("b", 29), ("a", 1), ("a", 2)]
    finally:
        d.close()


class WatchedDispatcher(Dispatcher):
    """A dispatcher that notes each help attempt (``helped``) and what it returned."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.helped = threading.Event()
        self.results: list[int] = []

    def help(self, until: Any, budget: int = 256) -> int:
        ran = super().help(until, budget)
        self.results.append(ran)
        self.helped.set()
        return ran


def test_a_helper_rings_the_dispatcher_it_queued_its_order_on_without_a_ring_when_it_cannot_run_it() -> None:
    """A stage run by the waiting thread queues the order on the next dispatcher without waking
    its thread (the waiter runs it next); when the waiter finds that dispatcher busy it rings
    it before waiting, so its thread runs the order once free. Fails (TimeoutError) without it."""
    first, nxt = ParkedDispatcher("help-ring-first"), WatchedDispatcher("help-ring-next")
    try:
        _, _, (a,) = _start(first, "a")
        _, _, (b,) = _start(nxt, "b")
        b.ask(Step(0), timeout=10)  # b started; nxt's thread idle
        reply = ReplyFuture()
        tell(a, Step(1, reply, (b,)))
        outcome: list[Any] = []
        assert nxt._running.acquire(timeout=10)  # nxt is busy while the waiter looks at it
        try:
            waiter = threading.Thread(target=lambda: outcome.append(reply.result(timeout=10)))
            waiter.start()
            assert nxt.helped.wait(10) and nxt.results == [0]  # the waiter ran a, found nxt busy
        finally:
            nxt._running.release()
        waiter.join(15)
        assert outcome == [f"dispatcher-{nxt.name}"]  # nxt's own thread answered: it was rung
    finally:
        first.close()
        nxt.close()


# -- tell_then_help (a venue's reader thread, an adapter's venue worker) ------------------------------
def test_tell_then_help_runs_the_message_here_without_waking_the_dispatchers_thread(monkeypatch) -> None:
    """A free dispatcher: the message runs in the telling thread and the dispatcher's thread is not
    rung (woken, it would only contend for the GIL and find it run). Fails if it rings first."""
    import actors.kernel.dispatcher as dispatcher_mod

    d = Dispatcher("help-tth-free")
    try:
        log, _, (a,) = _start(d, "a")
        a.ask(Step(0), timeout=10)  # started; its thread idle
        rung: list[Any] = []
        real_ring = dispatcher_mod.ring
        monkeypatch.setattr(dispatcher_mod, "ring", lambda bell: (rung.append(bell), real_ring(bell)))
        done = ReplyFuture()
        assert dispatcher_mod.tell_then_help(a, Step(1, done), 8)
        me = threading.current_thread().name
        assert done.done() and done.result() == me and log[-1][3] == me
        assert [b for b in rung if b is d._bell] == []
    finally:
        d.close()


def test_tell_then_help_rings_the_dispatcher_when_it_cannot_run_the_message() -> None:
    """A busy dispatcher: the teller leaves the message to the dispatcher's thread and rings it,
    which runs it once free. Fails (TimeoutError) without that ring."""
    import actors.kernel.dispatcher as dispatcher_mod

    d = Dispatcher("help-tth-busy")
    try:
        _, _, (a,) = _start(d, "a")
        a.ask(Step(0), timeout=10)  # started; its thread idle
        done: Future = Future()  # a plain future: its waiter never helps
        assert d._running.acquire(timeout=10)
        try:
            assert dispatcher_mod.tell_then_help(a, Step(1, done), 8)
            assert not done.done()
        finally:
            d._running.release()
        assert done.result(timeout=10) == f"dispatcher-{d.name}"
    finally:
        d.close()


def test_done_of_a_helping_future_is_futures_done_in_every_state_without_its_lock() -> None:
    """``HelpingFuture.done`` reads the state without the future's lock (the waiting thread asks
    it after every message it runs): the same answer as ``Future.done`` pending, running,
    finished, failed and cancelled, and it answers while another thread holds the lock (it
    would block there, as ``Future.done`` does, if it took the lock)."""
    def states():
        pending = HelpingFuture()
        yield pending
        running = HelpingFuture()
        running.set_running_or_notify_cancel()
        yield running
        finished = HelpingFuture()
        finished.set_result(1)
        yield finished
        failed = HelpingFuture()
        failed.set_exception(ValueError("x"))
        yield failed
        cancelled = HelpingFuture()
        cancelled.cancel()
        yield cancelled
        notified = HelpingFuture()
        notified.cancel()
        notified.set_running_or_notify_cancel()  # CANCELLED_AND_NOTIFIED
        yield notified

    answers = [(f.done(), Future.done(f)) for f in states()]
    assert answers == [(False, False), (False, False), (True, True), (True, True), (True, True), (True, True)]

    f = HelpingFuture()
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with f._condition:  # type: ignore[attr-defined]
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(10)
        seen: list[bool] = []
        asker = threading.Thread(target=lambda: seen.append(f.done()))
        asker.start()
        asker.join(2)
        assert seen == [False], "done() waited for the future's lock"
    finally:
        release.set()
        holder.join()
        asker.join()
    f.set_result("r")
    assert f.done() and f.result(0) == "r"


@dataclass(frozen=True)
class Steps:
    """A batch of steps in one message (as ``SubmitOrders``): its ``replies`` are each step's reply."""

    steps: tuple

    @property
    def replies(self) -> list:
        return [s.reply for s in self.steps]


class BatchMember(Member):
    def handle_Steps(self, message: Steps) -> None:
        self.run_each(message.steps, self.handle_Step)


def test_every_reply_of_a_batch_message_follows_it_and_its_waiters_help() -> None:
    """A message carrying several orders' replies (``replies``, a group commit's ``SubmitOrders``)
    marks each queued on its dispatcher, so each waiting caller can run it; fails if only ``reply`` is read."""
    d = ParkedDispatcher("help-batch")
    try:
        log: list = []
        a = BatchMember.start("a", log, [False], dispatcher=d)
        replies = [ReplyFuture() for _ in range(3)]
        tell(a, Steps(tuple(Step(i, r) for i, r in enumerate(replies))))
        assert all(r.queued_on is d for r in replies)
        me = threading.current_thread().name
        assert replies[1].result(timeout=10) == me  # the parked thread ran nothing: this caller ran the batch
        assert [r.result(timeout=0) for r in replies] == [me] * 3
        assert [n for _, _, n, _, _ in log] == [0, 1, 2]
    finally:
        d.close()
