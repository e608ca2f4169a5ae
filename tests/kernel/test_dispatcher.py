"""The dispatcher contract (actors/kernel/dispatcher.py): several FlowActors on two shared threads.

Covered: FIFO per member and no overlapping handlers under concurrent senders (told, quiet and
woken messages mixed), every hook and handler on the dispatcher's threads; a member telling
another member (runs after the handler returns, on the same thread); ``on_start`` before the
first message, and a failing ``on_start``; quiet tells (run once woken, never left behind,
FIFO with a following tell); failures (``crash_on_error`` True stops the member alone and
answers its queued asks ``ActorDeadError``; False contains the error; an ask's exception goes
back to the caller); ``stop``, ``close`` and the argument checks; the quiet backlog (FIFO with
a following tell, and the order thread taking quiet messages when too many wait); a
supervisor-style restart on the same dispatcher; the runtime's ``[dispatch]`` modes.

Each test waits on Events or on futures with timeouts only; nothing depends on timing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka
import pytest
from conftest import ctx, market, quote

from actors import Runtime
from actors.kernel.base import FlowActor, tell
from actors.kernel.dispatcher import Dispatcher
from actors.kernel.inbox import tell_quiet, wake
from actors.supervision.messages import ChildFailed
from config import load_settings
from protocols import OrderStatus


# -- messages ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    """Recorded as ``("note", (sender, seq))``."""

    sender: int
    seq: int


@dataclass(frozen=True)
class Snapshot:
    """Answered with the member's own records, oldest first."""


@dataclass(frozen=True)
class Boom:
    """The handler raises ValueError."""


@dataclass(frozen=True)
class Signal:
    """Recorded as ``("signal", None)``, then ``done`` is set."""

    done: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Hold:
    """The handler sets ``entered`` and waits (bounded) for ``release``: the dispatcher is held."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Relay:
    """Tell ``target`` ``Note(-1, seq)`` from inside the handler; answered "relayed"."""

    target: pykka.ActorRef
    seq: int


@dataclass(frozen=True)
class CloseThenAsk:
    """Close the member's dispatcher from its handler, then ask ``target``; answered with that future."""

    target: pykka.ActorRef


# -- actors -----------------------------------------------------------------------------------
class Probe:
    """What the members of one test record (list appends are atomic).

    ``records``: ``(label, kind, payload, thread name)``; ``failures``: ``(label, exception,
    during_startup, thread name)`` from ``_report_failure``, ``failed`` set on each;
    ``overlaps``: thread names of handlers that started while another handler was running.
    """

    def __init__(self) -> None:
        self.records: list[tuple[str, str, Any, str]] = []
        self.failures: list[tuple[str, BaseException | None, bool, str]] = []
        self.failed = threading.Event()
        self.overlaps: list[str] = []
        self.busy = False

    def of(self, label: str, kind: str) -> list[tuple[Any, str]]:
        """``(payload, thread name)`` of ``label``'s records of ``kind``, oldest first."""
        return [(payload, thread) for who, k, payload, thread in self.records if who == label and k == kind]


class Recorder(FlowActor):
    """Records its start, stop, failures and messages in a shared :class:`Probe`.

    Every handler runs inside the probe's "busy" flag: a handler that finds it set records an
    overlap (and yields the GIL while set, so an overlap, if one can happen, shows).
    """

    def __init__(self, label: str, probe: Probe, **kwargs: Any) -> None:
        super().__init__(child_name=label, **kwargs)
        self.label = label
        self.probe = probe

    def record(self, kind: str, payload: Any = None) -> None:
        self.probe.records.append((self.label, kind, payload, threading.current_thread().name))

    def start_child(self) -> None:
        self.record("start")

    def on_stop(self) -> None:
        self.record("stop")

    def _report_failure(self, exc: BaseException | None, *, during_startup: bool) -> None:
        self.probe.failures.append((self.label, exc, during_startup, threading.current_thread().name))
        self.probe.failed.set()
        super()._report_failure(exc, during_startup=during_startup)

    def on_receive(self, message: Any) -> Any:
        probe = self.probe
        if probe.busy:
            probe.overlaps.append(threading.current_thread().name)
        probe.busy = True
        try:
            time.sleep(0)  # let another thread run while the flag is set
            return super().on_receive(message)
        finally:
            probe.busy = False

    def handle_Note(self, message: Note) -> None:
        self.record("note", (message.sender, message.seq))

    def handle_Snapshot(self, message: Snapshot) -> list[tuple[str, Any, str]]:
        return [(kind, payload, thread) for who, kind, payload, thread in self.probe.records if who == self.label]

    def handle_Boom(self, message: Boom) -> None:
        raise ValueError(f"boom in {self.label}")

    def handle_Signal(self, message: Signal) -> None:
        self.record("signal")
        message.done.set()

    def handle_Hold(self, message: Hold) -> None:
        message.entered.set()
        message.release.wait(10)

    def handle_Relay(self, message: Relay) -> str:
        self.record("relay-start", self.dispatcher.running_here)
        tell(message.target, Note(-1, message.seq))
        self.record("relay-end")
        return "relayed"

    def handle_CloseThenAsk(self, message: CloseThenAsk) -> pykka.Future:
        self.dispatcher.close()
        return message.target.ask(Snapshot(), block=False)


class Crasher(Recorder):
    """A Recorder that crashes (stops) when a told handler raises, like an adapter actor."""

    crash_on_error = True


class FailingStart(Recorder):
    """A Recorder whose start-up work raises."""

    def start_child(self) -> None:
        super().start_child()
        raise RuntimeError("start-up refused")


class Restarter(FlowActor):
    """A supervisor-like member: on ``ChildFailed`` it starts a fresh Crasher on its own dispatcher."""

    def __init__(self, probe: Probe, restarted: threading.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.restarted = restarted
        self.reports: list[ChildFailed] = []
        self.children: list[pykka.ActorRef] = []

    def handle_ChildFailed(self, message: ChildFailed) -> None:
        self.reports.append(message)
        self.children.append(Crasher.start(message.child, self.probe, dispatcher=self.dispatcher,
                                           supervisor=self.actor_ref, generation=message.generation + 1))
        self.restarted.set()

    def handle_Snapshot(self, message: Snapshot) -> tuple[list[ChildFailed], list[pykka.ActorRef]]:
        return list(self.reports), list(self.children)


# -- helpers ----------------------------------------------------------------------------------
def thread_names(dispatcher: Dispatcher) -> set[str]:
    """The names of ``dispatcher``'s order thread and after thread."""
    return {f"dispatcher-{dispatcher.name}", f"dispatcher-{dispatcher.name}-after"}


def alive_threads(dispatcher: Dispatcher) -> list[threading.Thread]:
    names = thread_names(dispatcher)
    return [t for t in threading.enumerate() if t.name in names and t.is_alive()]


@contextmanager
def holding(ref: pykka.ActorRef) -> Iterator[None]:
    """Keep ``ref``'s dispatcher inside a handler for the duration of the block (one lock: both threads wait)."""
    hold = Hold()
    ref.tell(hold)
    assert hold.entered.wait(5), "the holding handler did not start"
    try:
        yield
    finally:
        hold.release.set()


@pytest.fixture
def make_dispatcher() -> Iterator[Any]:
    """``make(**kwargs)`` → a Dispatcher with a unique name; each is closed (and checked) at teardown."""
    made: list[Dispatcher] = []

    def make(**kwargs: Any) -> Dispatcher:
        dispatcher = Dispatcher(f"test-{uuid.uuid4().hex[:8]}", **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        assert dispatcher.close(), f"{dispatcher.name}: threads still running after close()"
        assert not alive_threads(dispatcher)


@pytest.fixture
def dispatcher(make_dispatcher: Any) -> Dispatcher:
    return make_dispatcher()


# -- 1. FIFO per member, no overlap, dispatcher threads ---------------------------------------
def test_fifo_per_member_without_overlap_on_the_dispatcher_threads(dispatcher: Dispatcher) -> None:
    """4 sender threads × 125 rounds × 2 members = 1,000 messages (every third told quietly and
    woken, so the after thread takes part): per member and sender the seqs arrive in order,
    every handler runs on a dispatcher thread, and no two handlers ever overlap."""
    probe = Probe()
    members = [Recorder.start(label, probe, dispatcher=dispatcher) for label in ("a", "b")]
    senders, rounds = 4, 125
    start = threading.Barrier(senders)

    def send(sender: int) -> None:
        start.wait(5)
        for seq in range(rounds):
            for ref in members:
                if seq % 3 == 0:
                    assert tell_quiet(ref, Note(sender, seq))
                    wake(ref)
                else:
                    ref.tell(Note(sender, seq))

    threads = [threading.Thread(target=send, args=(s,), daemon=True) for s in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    for ref in members:
        ref.ask(Snapshot(), timeout=10)  # FIFO: answered after every note told before it
    assert probe.overlaps == []
    for label in ("a", "b"):
        notes = probe.of(label, "note")
        assert len(notes) == senders * rounds
        for s in range(senders):
            assert [seq for (sender, seq), _ in notes if sender == s] == list(range(rounds))
        assert {thread for _, thread in notes} <= thread_names(dispatcher)


# -- 2. a member telling a member ---------------------------------------------------------------
def test_a_tell_between_members_runs_after_the_handler_on_the_same_thread(dispatcher: Dispatcher) -> None:
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    b = Recorder.start("b", probe, dispatcher=dispatcher)
    assert a.ask(Relay(b, 7), timeout=5) == "relayed"
    b.ask(Snapshot(), timeout=5)  # the relayed note was queued before this ask
    steps = [(who, kind, payload, thread) for who, kind, payload, thread in probe.records if kind != "start"]
    order_thread = f"dispatcher-{dispatcher.name}"
    assert steps == [("a", "relay-start", True, order_thread), ("a", "relay-end", None, order_thread),
                     ("b", "note", (-1, 7), order_thread)]
    assert not dispatcher.running_here  # the test's own thread


# -- 3. on_start ------------------------------------------------------------------------------
def test_on_start_runs_before_the_first_message_on_a_dispatcher_thread(dispatcher: Dispatcher) -> None:
    probe = Probe()
    holder = Recorder.start("holder", probe, dispatcher=dispatcher)
    with holding(holder):  # the new member's messages are queued before its on_start can run
        ref = Recorder.start("new", probe, dispatcher=dispatcher)
        ref.tell(Note(0, 0))
        answer = ref.ask(Snapshot(), block=False)
    log = answer.get(timeout=5)
    assert [(kind, payload) for kind, payload, _ in log] == [("start", None), ("note", (0, 0))]
    assert {thread for _, _, thread in log} <= thread_names(dispatcher)


def test_on_start_runs_first_even_for_a_message_told_before_start(dispatcher: Dispatcher) -> None:
    """pykka registers an actor before it starts it, so a registry lookup can tell it a message
    before ``Dispatcher.start``: that message still runs after ``on_start``."""
    probe = Probe()
    running = Recorder.start("running", probe, dispatcher=dispatcher)
    early = Recorder("early", probe, dispatcher=dispatcher)
    signal = Signal()
    early.actor_ref.tell(signal)
    running.ask(Snapshot(), timeout=5)  # the order thread has taken the early entry (FIFO)
    dispatcher.start(early)
    assert signal.done.wait(5)
    assert [kind for who, kind, _, _ in probe.records if who == "early"] == ["start", "signal"]


def test_a_failing_on_start_stops_the_member_alone(dispatcher: Dispatcher) -> None:
    probe = Probe()
    other = Recorder.start("other", probe, dispatcher=dispatcher)
    with holding(other):
        ref = FailingStart.start("failing", probe, dispatcher=dispatcher)
        queued = ref.ask(Snapshot(), block=False)
    with pytest.raises(pykka.ActorDeadError):
        queued.get(timeout=5)
    assert ref.actor_stopped.is_set()
    assert [(label, during_startup) for label, _, during_startup, _ in probe.failures] == [("failing", True)]
    assert probe.failures[0][3] in thread_names(dispatcher)
    assert other.ask(Snapshot(), timeout=5)  # still answering


# -- 4. quiet tells ---------------------------------------------------------------------------
def test_a_quiet_tell_runs_on_the_after_thread_once_woken(dispatcher: Dispatcher) -> None:
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    a.ask(Snapshot(), timeout=5)
    signal = Signal()
    assert tell_quiet(a, signal)
    wake(a)
    assert signal.done.wait(5)
    assert probe.of("a", "signal") == [(None, f"dispatcher-{dispatcher.name}-after")]


def test_a_quiet_tell_nobody_wakes_for_is_not_left_behind(dispatcher: Dispatcher) -> None:
    """No ``wake``: the next message the dispatcher runs (here, to another member) leaves the
    order thread out of work, and it rings the after thread for the quiet message."""
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    b = Recorder.start("b", probe, dispatcher=dispatcher)
    a.ask(Snapshot(), timeout=5)
    signal = Signal()
    assert tell_quiet(a, signal)
    b.tell(Note(0, 0))
    assert signal.done.wait(5), "the quiet message was left behind"


def test_a_tell_after_a_quiet_tell_sees_it_applied(dispatcher: Dispatcher) -> None:
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    for seq in range(100):
        assert tell_quiet(a, Note(0, seq))  # never woken
        log = a.ask(Snapshot(), timeout=5)
        assert log[-1][:2] == ("note", (0, seq))
    assert [payload for payload, _ in probe.of("a", "note")] == [(0, seq) for seq in range(100)]


def test_a_told_message_never_waits_for_the_after_thread(dispatcher: Dispatcher) -> None:
    """A told message runs on the order thread at once, and the quiet messages queued before it
    for the same member run first (FIFO), on the order thread too: the after thread, never
    woken for them, holds nothing up."""
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    b = Recorder.start("b", probe, dispatcher=dispatcher)
    a.ask(Snapshot(), timeout=5)
    with holding(b):
        assert tell_quiet(a, Note(0, 0))
        assert tell_quiet(a, Note(0, 1))
        reply = a.ask(Note(1, 0), block=False)
    reply.get(timeout=5)
    order_thread = f"dispatcher-{dispatcher.name}"
    assert probe.of("a", "note") == [((0, 0), order_thread), ((0, 1), order_thread), ((1, 0), order_thread)]


# -- 5. / 6. failures -------------------------------------------------------------------------
def test_a_crashing_member_stops_alone_and_its_queued_ask_is_answered_dead(dispatcher: Dispatcher) -> None:
    probe = Probe()
    crasher = Crasher.start("crasher", probe, dispatcher=dispatcher)
    other = Recorder.start("other", probe, dispatcher=dispatcher)
    with holding(other):  # both are queued before the crash is processed
        crasher.tell(Boom())
        queued = crasher.ask(Snapshot(), block=False)
    with pytest.raises(pykka.ActorDeadError):
        queued.get(timeout=5)
    assert crasher.actor_stopped.is_set()
    assert probe.failed.wait(5)
    [(label, exc, during_startup, thread)] = probe.failures
    assert (label, type(exc), during_startup) == ("crasher", ValueError, False)
    assert thread in thread_names(dispatcher)
    with pytest.raises(pykka.ActorDeadError):
        crasher.ask(Snapshot(), timeout=5)  # a dead ref: raised at once
    assert tell(crasher, Note(0, 0)) is False
    other.tell(Note(1, 1))
    assert other.ask(Snapshot(), timeout=5)[-1][:2] == ("note", (1, 1))
    assert [m.actor_ref for m in dispatcher.members()] == [other]


def test_a_member_without_crash_on_error_contains_a_failing_handler(dispatcher: Dispatcher) -> None:
    probe = Probe()
    ref = Recorder.start("contained", probe, dispatcher=dispatcher)
    ref.tell(Boom())
    assert ref.ask(Boom(), timeout=5) is None  # contained: answered, not raised
    ref.tell(Note(0, 0))
    assert ref.ask(Snapshot(), timeout=5)[-1][:2] == ("note", (0, 0))
    assert ref.is_alive() and probe.failures == []


def test_an_asked_failing_handler_answers_the_caller_and_the_member_lives(dispatcher: Dispatcher) -> None:
    """pykka's rule, kept by the dispatcher: an exception from an *asked* message goes back to
    the caller and does not stop the actor, even with ``crash_on_error``."""
    probe = Probe()
    crasher = Crasher.start("crasher", probe, dispatcher=dispatcher)
    with pytest.raises(ValueError, match="boom in crasher"):
        crasher.ask(Boom(), timeout=5)
    assert crasher.ask(Snapshot(), timeout=5)
    assert crasher.is_alive() and probe.failures == []


# -- 7. stop, close, arguments ----------------------------------------------------------------
def test_stop_then_close_stop_every_member_on_the_dispatcher_threads(dispatcher: Dispatcher) -> None:
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    b = Recorder.start("b", probe, dispatcher=dispatcher)
    unstarted = Recorder("unstarted", probe, dispatcher=dispatcher)
    assert a.stop(block=True, timeout=5) is True
    assert not a.is_alive()
    assert [thread for _, thread in probe.of("a", "stop")] == [f"dispatcher-{dispatcher.name}"]
    assert b.ask(Snapshot(), timeout=5)
    assert [m.actor_ref for m in dispatcher.members()] == [b]
    assert len(alive_threads(dispatcher)) == 2

    assert dispatcher.close() is True
    assert b.actor_stopped.is_set()
    assert [thread for _, thread in probe.of("b", "stop")] == [f"dispatcher-{dispatcher.name}"]
    assert alive_threads(dispatcher) == []
    with pytest.raises(RuntimeError, match="closed"):
        dispatcher.inbox(object())
    with pytest.raises(RuntimeError, match="closed"):
        Recorder.start("late", probe, dispatcher=dispatcher)
    with pytest.raises(RuntimeError, match="closed"):
        dispatcher.start(unstarted)
    # a refused start leaves nothing behind: not registered, not alive (pykka registers first)
    assert unstarted.actor_ref not in pykka.ActorRegistry.get_all()
    assert not unstarted.actor_ref.is_alive()


def test_start_refuses_an_actor_of_another_dispatcher(make_dispatcher: Any) -> None:
    mine, theirs = make_dispatcher(), make_dispatcher()
    probe = Probe()
    with pytest.raises(ValueError, match=mine.name):
        mine.start(Recorder("foreign", probe, dispatcher=theirs))
    with pytest.raises(ValueError, match=mine.name):
        mine.start(Recorder("own-thread", probe))


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"linger_s": -1}, "linger_s"),
    ({"linger_s": 0.011}, "linger_s"),
    ({"after_backlog": 0}, "after_backlog"),
])
def test_out_of_range_parameters_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Dispatcher("bad", **kwargs)


def test_an_ask_put_after_close_requested_the_stops_is_answered_dead(dispatcher: Dispatcher) -> None:
    """A message put to a member between close() and its stop gets ActorDeadError, never silence."""
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    b = Recorder.start("b", probe, dispatcher=dispatcher)
    late = a.ask(CloseThenAsk(b), timeout=5)
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=2)


# -- 8. the quiet backlog ---------------------------------------------------------------------
def test_a_quiet_backlog_runs_in_order_before_the_next_told_message(make_dispatcher: Any) -> None:
    dispatcher = make_dispatcher(after_backlog=4)
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    for seq in range(50):
        assert tell_quiet(a, Note(0, seq))  # never woken
    assert a.ask(Note(1, 0), timeout=5) is None
    assert [payload for payload, _ in probe.of("a", "note")] == [(0, seq) for seq in range(50)] + [(1, 0)]


def test_the_order_thread_takes_quiet_messages_when_more_than_the_backlog_wait(make_dispatcher: Any) -> None:
    """While the order thread has work, nobody rings the after thread: with 50 quiet messages
    waiting (backlog 4), the order thread runs some of them itself before its next told message."""
    dispatcher = make_dispatcher(after_backlog=4)
    probe = Probe()
    a = Recorder.start("a", probe, dispatcher=dispatcher)
    b = Recorder.start("b", probe, dispatcher=dispatcher)
    with holding(b):
        for seq in range(50):
            assert tell_quiet(a, Note(0, seq))
        b.tell(Note(1, 0))
    a.ask(Note(2, 0), timeout=5)
    notes = [(who, payload, thread) for who, kind, payload, thread in probe.records if kind == "note"]
    b_at = notes.index(("b", (1, 0), f"dispatcher-{dispatcher.name}"))
    assert b_at >= 1, "the quiet messages were starved while the order thread had work"
    assert all(thread == f"dispatcher-{dispatcher.name}" for _, _, thread in notes[:b_at])
    assert [payload for who, payload, _ in notes if who == "a"] == [(0, seq) for seq in range(50)] + [(2, 0)]


# -- 9. restart -------------------------------------------------------------------------------
def test_a_crashed_member_is_replaced_by_a_new_one_on_the_same_dispatcher(dispatcher: Dispatcher) -> None:
    probe = Probe()
    restarted = threading.Event()
    supervisor = Restarter.start(probe, restarted, dispatcher=dispatcher)
    first = Crasher.start("worker", probe, dispatcher=dispatcher, supervisor=supervisor)
    first.tell(Boom())
    assert restarted.wait(5)
    reports, children = supervisor.ask(Snapshot(), timeout=5)
    assert [(r.child, r.generation, r.during_startup) for r in reports] == [("worker", 0, False)]
    assert "boom in worker" in reports[0].error
    [second] = children
    assert first.actor_stopped.is_set() and second.is_alive()
    second.tell(Note(0, 0))
    assert [kind for kind, _, _ in second.ask(Snapshot(), timeout=5)][-1] == "note"
    assert {m.actor_ref for m in dispatcher.members()} == {supervisor, second}
    assert {thread for _, _, _, thread in probe.records} <= thread_names(dispatcher)


# -- 10. the runtime --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["shared", "threads"])
def test_runtime_answers_an_order_and_ends_its_dispatcher_threads(tmp_path: Path, mode: str) -> None:
    before = set(threading.enumerate())
    rt = Runtime.start(load_settings("test", state_dir=tmp_path, journal={"enabled": False}, dispatch={"mode": mode}))
    try:
        rt.on_market(quote())
        assert rt.submit(market(), ctx()).result(timeout=5).status is OrderStatus.FILLED
        mine = [t for t in threading.enumerate() if t not in before and t.name.startswith("dispatcher-")]
        assert len(mine) == (2 if mode == "shared" else 0)
    finally:
        rt.stop()
    assert not any(t.is_alive() for t in mine)
