"""Wake-ups are the kernel's business (actors/kernel/inbox.py ``tell_quiet_then_wake``), and the
reply future ``Runtime.stop`` abandons is typed (``ReplyFuture``), not monkey-patched."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, fields

import pytest
from loguru import logger

from actors.kernel.base import FlowActor, ReplyFuture, resolve
from actors.kernel.dispatcher import Dispatcher
from actors.kernel.inbox import tell_quiet, tell_quiet_then_wake, wake
from actors.orders.messages import OrderFinished
from protocols import ExecutionReport, OrderStatus


@dataclass(frozen=True)
class Fact:
    fail: bool = False


class Relay(FlowActor):
    """Handles ``Fact`` (raising when asked to: a contained failure, as the ledger's)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.facts: list[Fact] = []

    def handle_Fact(self, message: Fact) -> None:
        self.facts.append(message)
        if message.fail:
            raise RuntimeError("half-applied")

    def handle_str(self, message: str) -> list[Fact]:
        return list(self.facts)


class Woken(FlowActor):
    """Sets ``ran`` when it runs its (quietly queued) message."""

    def __init__(self, ran: threading.Event, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ran = ran

    def handle_str(self, message: str) -> None:
        self.ran.set()


@pytest.mark.parametrize("shared", [False, True], ids=["own-threads", "dispatcher"])
@pytest.mark.parametrize("fail", [False, True], ids=["handled", "handler-raises"])
def test_the_receiver_wakes_the_named_actors_after_handling_the_message(shared: bool, fail: bool) -> None:
    dispatcher = Dispatcher("wake-after") if shared else None
    ran = threading.Event()
    relay = Relay.start(dispatcher=dispatcher)
    woken = Woken.start(ran, dispatcher=dispatcher)
    try:
        assert tell_quiet(woken, "fact")  # queued, not woken
        assert tell_quiet_then_wake(relay, Fact(fail=fail), (woken, None))
        if not shared:  # (a dispatcher's idle order thread runs quiet messages nobody woke for)
            assert not ran.wait(0.05)  # nobody woke the relay yet: nothing ran
        wake(relay)
        assert ran.wait(5), "the relay did not pass the wake-up on"
        # the relay handled the message itself with its typed handler (not an unexpected message)
        assert relay.ask("facts", timeout=5) == [Fact(fail=fail)]
    finally:
        for ref in (relay, woken):
            ref.stop(timeout=5)
        if dispatcher is not None:
            dispatcher.close()


class Stepping(Relay):
    """A subclass with its own ``on_receive`` step around every message (as the ledger and the
    idempotency store have): what that step saw."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stepped: list[str] = []

    def on_receive(self, message):
        self.stepped.append(type(message).__name__)
        return super().on_receive(message)


def test_a_relayed_message_passes_the_subclass_step_once() -> None:
    """The relay is one message for the receiver's own step, then its message is handled with
    the base dispatch (before: the step ran for the relay and again for its message, on every order)."""
    relay = Stepping.start()
    try:
        assert tell_quiet_then_wake(relay, Fact(), ())
        wake(relay)
        assert relay.ask("facts", timeout=5) == [Fact()]
        assert relay.proxy().stepped.get(timeout=5) == ["WakeAfter", "str"]
    finally:
        relay.stop(timeout=5)


def test_a_gone_receiver_is_reported_so_the_sender_wakes_them_itself() -> None:
    relay = Relay.start()
    relay.stop(timeout=5)
    assert tell_quiet_then_wake(relay, Fact(), ()) is False


def test_domain_messages_carry_no_thread_hints() -> None:
    assert [f.name for f in fields(OrderFinished)] == ["report", "adapter_id", "venue_state", "cause", "metered"]


@pytest.fixture()
def errors() -> list[str]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="ERROR")
    yield seen
    logger.remove(sink)


def _report(status: OrderStatus = OrderStatus.FILLED) -> ExecutionReport:
    return ExecutionReport(client_order_id="c-1", account_id="a", status=status)


def test_a_late_answer_to_a_future_abandoned_at_stop_is_expected(errors: list[str]) -> None:
    future = ReplyFuture()
    assert future.abandon(_report(OrderStatus.UNKNOWN)) is True
    assert future.abandoned_at_stop and future.result(0).status is OrderStatus.UNKNOWN
    assert resolve(future, _report()) is False  # the actors' late answer: dropped quietly
    assert errors == []
    assert future.result(0).status is OrderStatus.UNKNOWN


def test_a_second_answer_to_any_other_future_is_an_error(errors: list[str], no_double_resolution: list[str]) -> None:
    for future in (ReplyFuture(), Future()):
        assert resolve(future, _report()) is True
        assert resolve(future, _report()) is False
    assert len(errors) == 2 and all("resolved twice" in e for e in errors)
    no_double_resolution.clear()  # provoked on purpose here
    answered = ReplyFuture()
    resolve(answered, _report())
    assert answered.abandon(_report(OrderStatus.UNKNOWN)) is False  # stop came too late: the answer stands
    assert answered.result(0).status is OrderStatus.FILLED
