"""A carrying solo dispatcher (actors/kernel/dispatcher.py ``Dispatcher.carry``; docs/DESIGN.md
"Threads"): the idempotency store's thread runs each order it told onward through the next
stages itself, with no thread wake-up in between, and never leaves one unrung.

Covered: the order runs on the carrying thread through a parked (not helpable) solo dispatcher
and a parked shared one; a message for the carrying dispatcher's own member stops the carry
and the next stage's own thread takes the order; a busy next stage is rung, never left
waiting; as deployed (journal FULL, durable paper book) the ledger's intake, the breaker and the
adapter run on the store's thread, and on their own threads with ``[dispatch] carry = false``.

Nothing depends on timing: waits are on futures and Events with timeouts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pykka
import pytest
from conftest import ctx, market, quote, settle

from actors.kernel.base import FlowActor, ReplyFuture, tell
from actors.kernel.dispatcher import Dispatcher
from actors.orders.ledger import LedgerActor
from protocols import OrderStatus


class ParkedDispatcher(Dispatcher):
    """A dispatcher whose own threads run nothing until :attr:`unpark` (or close): until then only
    a helper or a carrier runs its messages."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.unpark = threading.Event()

    def _order_loop(self) -> None:
        self.unpark.wait(30)
        super()._order_loop()

    def _solo_loop(self) -> None:
        self.unpark.wait(30)
        super()._solo_loop()

    def close(self, timeout: float = 5.0) -> bool:
        self.unpark.set()
        return super().close(timeout)


@dataclass(frozen=True)
class Hop:
    """Log ``(label, thread)``; the stage labelled ``side_at`` first tells ``side`` a plain Hop; then
    tell ``then[0]`` the rest of the chain with ``reply``; the last stage answers ``reply`` with its
    thread's name."""

    reply: Any = None
    then: tuple = ()
    side: Any = None
    side_at: str = ""


class Stage(FlowActor):
    def __init__(self, label: str, log: list, **kw: Any) -> None:
        super().__init__(child_name=label, **kw)
        self.label, self.log = label, log

    def handle_Hop(self, message: Hop) -> None:
        me = threading.current_thread().name
        self.log.append((self.label, me))
        if message.side is not None and message.side_at == self.label:
            tell(message.side, Hop())
        if message.then:
            tell(message.then[0], Hop(message.reply, message.then[1:], message.side, message.side_at))
        elif message.reply is not None:
            message.reply.set_result(me)


def _stages(log: list, *pairs: tuple[str, Dispatcher]) -> list[pykka.ActorRef]:
    return [Stage.start(label, log, dispatcher=d) for label, d in pairs]


def _wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return predicate()


def test_a_carrying_thread_runs_the_order_it_told_onward_through_the_next_stages() -> None:
    """Fails without the carry: the next two stages' own threads are parked, so only the store's
    thread can run them (the ledger's is not helpable, as a journaled one is by default)."""
    store = Dispatcher("carry-store", solo=True, helpable=False, carries=True)
    ledger = ParkedDispatcher("carry-ledger", solo=True, helpable=False)
    core = ParkedDispatcher("carry-core")
    try:
        log: list = []
        a, b, c = _stages(log, ("store", store), ("ledger", ledger), ("core", core))
        reply = ReplyFuture()
        tell(a, Hop(reply, (b, c)))
        # the sender does not help (the store is not helpable): it only waits
        assert reply.result(timeout=10) == "dispatcher-carry-store"
        assert log == [("store", "dispatcher-carry-store"), ("ledger", "dispatcher-carry-store"),
                       ("core", "dispatcher-carry-store")]
        assert reply.queued_on is core  # followed from dispatcher to dispatcher
    finally:
        for d in (core, ledger, store):
            d.close()


def test_without_carries_the_next_stages_own_threads_run_it() -> None:
    store = Dispatcher("nocarry-store", solo=True, helpable=False)
    ledger = Dispatcher("nocarry-ledger", solo=True, helpable=False)
    core = Dispatcher("nocarry-core")
    try:
        log: list = []
        a, b, c = _stages(log, ("store", store), ("ledger", ledger), ("core", core))
        reply = ReplyFuture()
        tell(a, Hop(reply, (b, c)))
        assert reply.result(timeout=10) == "dispatcher-nocarry-core"
        assert [thread for _, thread in log] == ["dispatcher-nocarry-store", "dispatcher-nocarry-ledger",
                                                 "dispatcher-nocarry-core"]
    finally:
        for d in (core, ledger, store):
            d.close()


def test_a_message_for_the_carrying_dispatcher_stops_the_carry_and_rings_the_next_stage() -> None:
    """The ledger's step tells the store's own member something before it tells the core: the
    carrier goes back to its own member, and the core's own thread (rung, not left waiting) runs
    the order's last step. Fails if the carry ignores its own run queue (the core would run on the
    store's thread) or leaves the core unrung (the reply would never come)."""
    store = Dispatcher("stop-store", solo=True, helpable=False, carries=True)
    ledger = ParkedDispatcher("stop-ledger", solo=True, helpable=False)
    core = Dispatcher("stop-core")
    try:
        log: list = []
        a, b, c = _stages(log, ("store", store), ("ledger", ledger), ("core", core))
        reply = ReplyFuture()
        tell(a, Hop(reply, (b, c), side=a, side_at="ledger"))
        assert reply.result(timeout=10) == "dispatcher-stop-core"
        assert log[:2] == [("store", "dispatcher-stop-store"), ("ledger", "dispatcher-stop-store")]
        assert _wait_for(lambda: log.count(("store", "dispatcher-stop-store")) == 2)  # its own member's message
    finally:
        for d in (core, ledger, store):
            d.close()


def test_a_busy_next_stage_is_rung_and_its_own_thread_runs_the_order() -> None:
    """The ledger's dispatcher is busy (its lock held here) when the carrier comes: the carrier
    leaves the order queued and rings it; once free, the ledger's own thread runs it. Fails if the
    carrier left it unrung (the reply would never come: nothing else tells the ledger)."""
    store = Dispatcher("busy-store", solo=True, helpable=False, carries=True)
    ledger = Dispatcher("busy-ledger", solo=True, helpable=False)
    try:
        log: list = []
        a, b = _stages(log, ("store", store), ("ledger", ledger))
        b.ask(Hop(), timeout=10)
        # the ledger's thread goes to sleep on its bell (nothing rung: an order queued without a ring waits forever)
        assert _wait_for(lambda: ledger._bell.locked())
        assert ledger._running.acquire(timeout=10)
        try:
            reply = ReplyFuture()
            tell(a, Hop(reply, (b,)))
            # the store's thread has run a and come back from its carry once it answers this ask
            # (asked after: behind a's message in the store's run queue)
            a.ask(Hop(), timeout=10)
            assert not reply.done()
        finally:
            ledger._running.release()
        assert reply.result(timeout=10) == "dispatcher-busy-ledger"
    finally:
        for d in (ledger, store):
            d.close()


# -- as deployed -----------------------------------------------------------------------------------
def _intake_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    threads: list[str] = []
    original = LedgerActor.handle_SubmitOrder

    def recording(self: LedgerActor, order: Any) -> None:
        threads.append(threading.current_thread().name)
        original(self, order)

    monkeypatch.setattr(LedgerActor, "handle_SubmitOrder", recording)
    return threads


def test_as_deployed_the_stores_thread_carries_the_order_to_the_venue_worker(make_runtime, monkeypatch) -> None:
    """Journal FULL and the durable paper book (what ``Runtime.start()`` runs): the ledger's
    intake runs on the store's thread; the order is FILLED as before. Fails without the carry
    (the ledger's own thread runs it)."""
    threads = _intake_threads(monkeypatch)
    rt = make_runtime(durable=True)
    store_on, _ledger_on = rt._solo
    assert store_on.carries
    rt.on_market(quote())
    for _ in range(3):
        settle(rt)  # nothing else queued for the store or the ledger: the carry is not cut short
        assert rt.submit(market(), ctx()).result(timeout=10).status is OrderStatus.FILLED
    assert threads == [f"dispatcher-{store_on.name}"] * 3


def test_carry_false_leaves_each_stage_to_its_own_thread(make_runtime, monkeypatch) -> None:
    threads = _intake_threads(monkeypatch)
    rt = make_runtime(durable=True, dispatch={"carry": False})
    store_on, ledger_on = rt._solo
    assert not store_on.carries
    rt.on_market(quote())
    settle(rt)
    assert rt.submit(market(), ctx()).result(timeout=10).status is OrderStatus.FILLED
    assert threads == [f"dispatcher-{ledger_on.name}"]
