"""A crashed supervised actor keeps its mailbox for its next generation (actors/kernel/inbox.Mailbox;
docs/DESIGN.md "Failure handling"): what was queued behind the failing message and what is told to
the dead reference afterwards is redelivered in order; asks are answered ActorDeadError at once;
a refused mailbox answers each message."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pykka
import pytest

from actors.kernel.base import FlowActor
from actors.kernel.dispatcher import Dispatcher
from actors.kernel.inbox import tell, tell_quiet, wake


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Boom:
    pass


class Recorder(FlowActor):
    crash_on_error = True
    keeps_mailbox = True

    def __init__(self, seen: list, failures: list, **kw) -> None:
        super().__init__(**kw)
        self.seen, self.failures = seen, failures

    def handle_Note(self, message: Note) -> str:
        self.seen.append(message.text)
        return message.text

    def handle_Boom(self, message: Boom) -> None:
        raise ValueError("boom")


class Supervisor(FlowActor):
    def __init__(self, failures: list, got: threading.Event, **kw) -> None:
        super().__init__(**kw)
        self.failures, self.got = failures, got

    def handle_ChildFailed(self, message) -> None:
        self.failures.append(message)
        self.got.set()


@pytest.fixture(params=["own thread", "dispatcher"])
def dispatcher(request):
    if request.param == "own thread":
        yield None
        return
    d = Dispatcher("mailbox-test")
    yield d
    d.close()


def test_queued_and_later_tells_reach_the_next_generation_in_order(dispatcher) -> None:
    failures, got = [], threading.Event()
    sup = Supervisor.start(failures, got)
    seen1, seen2 = [], []
    first = Recorder.start(seen1, failures, supervisor=sup, generation=1, dispatcher=dispatcher)
    try:
        first.ask(Note("warm"), timeout=5)
        tell_quiet(first, Boom())  # queued, not run yet
        tell_quiet(first, Note("a"))  # queued behind the failing message
        tell_quiet(first, Note("b"))
        wake(first)
        assert got.wait(5)
        mailbox = failures[0].details["mailbox"]
        assert not first.is_alive()
        assert tell(first, Note("c"))  # told to the dead reference: kept, not dropped
        with pytest.raises(pykka.ActorDeadError):
            first.ask(Note("asked"), timeout=5)  # an ask is answered at once
        second = Recorder.start(seen2, failures, supervisor=sup, generation=2, dispatcher=dispatcher)
        assert mailbox.connect(second) == 3
        assert tell(first, Note("d"))  # after the connect: forwarded
        second.ask(Note("barrier"), timeout=5)
        assert seen1 == ["warm"] and seen2 == ["a", "b", "c", "d", "barrier"]
        second.stop()
    finally:
        sup.stop()


def test_a_refused_mailbox_answers_what_it_kept(dispatcher) -> None:
    failures, got = [], threading.Event()
    sup = Supervisor.start(failures, got)
    first = Recorder.start([], failures, supervisor=sup, generation=1, dispatcher=dispatcher)
    try:
        tell_quiet(first, Boom())
        tell_quiet(first, Note("a"))
        wake(first)
        assert got.wait(5)
        answered = []
        mailbox = failures[0].details["mailbox"]
        assert mailbox.refuse(answered.append) == 1
        tell(first, Note("late"))
        assert answered == [Note("a"), Note("late")]
    finally:
        sup.stop()


def test_an_unsupervised_actor_keeps_nothing() -> None:
    first = Recorder.start([], [])
    first.tell(Boom())
    assert first.actor_stopped.wait(5)
    assert not tell(first, Note("x"))  # pykka's behaviour: dropped
