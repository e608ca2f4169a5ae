"""The waiting thread reads (actors/kernel/dispatcher.py ``HelpingFuture.reader``,
``CallerReader``): ``result()`` hands the wait to the venue's reader, which is told when the
answer came from another thread; in the main thread a Ctrl-C during the read ends it and is
raised once the reader has handed the socket back (never in the middle of a read), and nested
deferring stretches (a help inside the read) raise only at the outermost end.

A scripted reader stands in for the FIX connection (tests/fix/test_caller_reads.py runs the real
one). Nothing depends on timing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import pytest

from actors.kernel import interrupts
from actors.kernel.base import ReplyFuture

#: Ctrl-C deferred during helps and reads, as ``Runtime.start`` does (tests/kernel/conftest.py)
pytestmark = pytest.mark.usefixtures("main_thread_may_help")


class ScriptedReader:
    """A ``CallerReader`` whose read runs ``script(until)`` and notes how it ended."""

    def __init__(self, script: Callable[[Callable[[], bool]], None]) -> None:
        self.script = script
        self.reads = 0
        self.handed_back = False
        self.answered: list[int] = []

    def read_for(self, until: Callable[[], bool], deadline: float | None) -> bool:
        self.reads += 1
        self.script(until)
        self.handed_back = True  # reached only when the read was not cut short
        return True

    def caller_answered(self, ident: int) -> None:
        self.answered.append(ident)


def test_the_waiting_thread_reads_until_its_answer_is_there() -> None:
    future = ReplyFuture()

    def script(until: Callable[[], bool]) -> None:
        assert not until()
        future.set_result("report")  # the reader hands the answer on in this thread
        assert until()

    future.reader = reader = ScriptedReader(script)
    assert future.result(timeout=10) == "report"
    assert reader.reads == 1 and reader.handed_back
    assert reader.answered == [threading.get_ident()]  # told, and it is the reader itself: nothing to wake


def test_an_answer_from_another_thread_tells_the_reader_which_caller_to_stop() -> None:
    future = ReplyFuture()
    started = threading.Event()

    def script(until: Callable[[], bool]) -> None:
        started.set()
        while not until():
            threading.Event().wait(0.001)

    future.reader = reader = ScriptedReader(script)
    waiter: list[object] = []
    t = threading.Thread(target=lambda: waiter.append(future.result(timeout=10)))
    t.start()
    assert started.wait(10)
    future.set_result("report")
    t.join(10)
    assert waiter == ["report"] and reader.answered == [t.ident]


def test_ctrl_c_while_the_main_thread_reads_is_raised_after_the_read_hands_back() -> None:
    assert threading.current_thread() is threading.main_thread()
    future = ReplyFuture()
    spins: list[int] = []

    def script(until: Callable[[], bool]) -> None:
        signal.raise_signal(signal.SIGINT)  # mid-read: must not raise here
        assert interrupts.pending()
        while not until():  # the read ends at its next look at until()
            spins.append(1)
            assert len(spins) < 1000, "a pending Ctrl-C did not end the read"

    future.reader = reader = ScriptedReader(script)
    with pytest.raises(KeyboardInterrupt):
        future.result(timeout=10)
    assert reader.handed_back and not spins
    assert not interrupts.pending()
    # outside a read a Ctrl-C is Python's own, at once
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_deferring_stretches_nest_and_only_the_outermost_end_raises() -> None:
    interrupts.begin_help()
    try:
        interrupts.begin_help()  # a help inside a read
        signal.raise_signal(signal.SIGINT)
        interrupts.end_help()  # the inner end: still deferred
        assert interrupts.pending()
    except KeyboardInterrupt:
        pytest.fail("raised at an inner end")
    with pytest.raises(KeyboardInterrupt):
        interrupts.end_help()
    assert not interrupts.pending()


def test_a_thread_that_runs_members_messages_never_reads() -> None:
    from actors.kernel import dispatcher

    future = ReplyFuture()
    future.reader = reader = ScriptedReader(lambda until: None)
    dispatcher._here.busy = True
    try:
        with pytest.raises(TimeoutError):
            future.result(timeout=0.01)
    finally:
        dispatcher._here.busy = False
    assert reader.reads == 0


def _user_handler(signum, frame) -> None:  # a handler the application installed itself
    raise KeyboardInterrupt


@pytest.mark.parametrize("handler", ["held", signal.default_int_handler, signal.SIG_IGN, signal.SIG_DFL, _user_handler])
def test_main_may_help_answers_what_signal_getsignal_says(handler) -> None:
    """``main_may_help`` reads the SIGINT handler with the C getter (no enum conversion): for the
    deferring handler, Python's default one, SIG_IGN, SIG_DFL and an application's own handler it
    answers what ``signal.getsignal(SIGINT) in (deferring, SIG_IGN, SIG_DFL)`` answers."""
    before = signal.getsignal(signal.SIGINT)
    try:
        if handler != "held":
            signal.signal(signal.SIGINT, handler)
        want = signal.getsignal(signal.SIGINT) in (interrupts._on_sigint, signal.SIG_IGN, signal.SIG_DFL)
        assert interrupts.main_may_help() is want
        assert want is (handler in ("held", signal.SIG_IGN, signal.SIG_DFL))
    finally:
        signal.signal(signal.SIGINT, before)
