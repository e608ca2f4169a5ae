"""The supervisor watches and restarts the core children (docs/DESIGN.md "Failure handling").

Each kind of child is crashed through a real handler exception (a malformed message its
handler cannot process), the failure reaches the supervisor through pykka's ``on_failure``
path, the restart waits for its backoff timer on the fake clock, and the new generation is
rewired: orders flow again, the breaker starts CLOSED, the bus keeps its subscriptions.
"""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, child, ctx, limit, market, quote, registry_of, settle, wait_until

from actors.breaker.messages import BreakerCommand
from actors.events.messages import Publish
from actors.idempotency.messages import CompleteOrder
from actors.kernel.inbox import tell_quiet, wake
from actors.orders.messages import SetTradingState, WaitTerminal
from actors.routing.messages import ForwardReconcile
from protocols import ChildGaveUp, ErrorCode, OrderStatus

#: the books of an order (test_reports_after_a_ledger_restart_equal_those_before_it compares whole reports)
BOOKED = ("client_order_id", "account_id", "status", "fills", "cum_qty", "leaves_qty", "avg_px", "fees")
BACKOFF_MAX = 0.5  # above every restart delay of the test profile (0.01 doubling to 0.1, ±20%)


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


@pytest.fixture
def rt(make_runtime, clock):
    runtime = make_runtime(registry=registry_of(TestAdapter(default="fill")), clock=clock,
                           routing={"policy": {"paper": "test"}})
    runtime.on_market(quote())
    return runtime


def restart(rt, clock, name: str) -> None:
    """Wait until ``name`` is restarting (its crash was observed), then fire its backoff timer."""
    wait_until(lambda: child(rt, name).state == "restarting", what=f"{name} restarting")
    clock.wait_timer(lambda delay: delay < BACKOFF_MAX, what=f"the restart timer of {name}")
    clock.advance(BACKOFF_MAX)
    wait_until(lambda: child(rt, name).state == "running", what=f"{name} running again")
    settle(rt)


def fills(rt, client_order_id: str) -> bool:
    return rt.submit(market(client_order_id), ctx()).result(timeout=5).status is OrderStatus.FILLED


def test_the_supervisor_creates_and_watches_every_child(rt) -> None:
    """One StartChildren builds the whole topology: every core child and adapter is the
    supervisor's, generation 1, running; the runtime reads the references it published."""
    children = {c.name: (c.kind, c.state, c.generation) for c in rt.health().children}
    assert children == {"event_bus": ("core", "running", 1), "ledger": ("core", "running", 1),
                        "idempotency": ("core", "running", 1), "router": ("core", "running", 1),
                        "breaker:test": ("core", "running", 1), "test": ("adapter", "running", 1)}
    assert all(ref.is_alive() for ref in (rt.bus, rt.ledger, rt.idempotency, rt.router, *rt.breakers.values()))


def test_bus_events_published_while_it_restarts_are_kept(rt, clock) -> None:
    log = EventLog()
    rt.subscribe(log)
    rt.bus.tell(Publish("not an event"))
    wait_until(lambda: child(rt, "event_bus").state == "restarting", what="the bus restarting")
    assert fills(rt, "cr-bus-down")  # its events go to the crashed bus: kept for the next one
    restart(rt, clock, "event_bus")
    log.wait_for(lambda evs: [e for e in evs if getattr(e, "client_order_id", None) == "cr-bus-down"],
                 what="an event published while the bus was down")


def test_router_crash_is_observed_and_it_comes_back_rewired(rt, clock) -> None:
    old = rt.router
    rt.router.tell(ForwardReconcile(["not", "hashable"], ()))  # dict lookup in the handler raises TypeError
    restart(rt, clock, "router")
    health = child(rt, "router")
    assert (health.generation, health.restarts) == (2, 1) and "TypeError" in health.last_failure
    assert not old.is_alive() and rt.router.is_alive() and rt.router is not old
    assert fills(rt, "cr-router-1")
    # the ledger routes cancels through the new router: an unknown order's cancel is answered, not lost
    assert rt.cancel("no-such-order", "acc-1").result(timeout=5) is not None


def test_breaker_crash_restarts_closed_and_keeps_its_adapter(make_runtime, clock) -> None:
    venue = TestAdapter()
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}},
                      breaker={"window_size": 4, "minimum_calls": 2})
    rt.on_market(quote())
    old = rt.breakers["test"]
    venue.push("fatal", "fatal")
    for k in range(2):
        rt.submit(market(f"cr-trip-{k}"), ctx()).result(timeout=5)
    settle(rt)
    assert rt.breaker("test").state.value == "OPEN"
    old.tell(BreakerCommand("explode"))  # the handler raises ValueError (an ask would return it instead)
    restart(rt, clock, "breaker:test")
    assert not old.is_alive() and rt.breakers["test"] is not old
    assert rt.breaker("test").state.value == "CLOSED"  # state rebuilt: a fresh breaker window
    assert child(rt, "breaker:test").generation == 2
    # the router's table and the adapter actor point at the new breaker: orders fill end to end
    assert fills(rt, "cr-breaker-1") and fills(rt, "cr-breaker-2")
    assert child(rt, "test").state == "running" and child(rt, "test").restarts == 0


def test_an_operators_override_survives_a_breaker_restart(rt, clock) -> None:
    rt.force_open("test")
    rt.breakers["test"].tell(BreakerCommand("explode"))
    restart(rt, clock, "breaker:test")
    assert rt.breaker("test").state.value == "FORCED_OPEN"  # an operator's decision is not a crash's to undo
    report = rt.submit(market("cr-forced-1"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_CIRCUIT_OPEN
    rt.reset_breaker("test")
    assert fills(rt, "cr-forced-2")


def test_event_bus_crash_keeps_its_subscriptions(rt, clock) -> None:
    log = EventLog()
    rt.subscribe(log)
    old = rt.bus
    old.tell(Publish("not an event"))  # the handler's model_copy raises AttributeError
    restart(rt, clock, "event_bus")
    assert not old.is_alive() and rt.bus is not old
    assert fills(rt, "cr-bus-1")
    # the subscription made before the crash still receives what the restarted bus publishes
    events = log.wait_for(lambda evs: [e for e in evs if getattr(e, "client_order_id", None) == "cr-bus-1"],
                          what="an event of cr-bus-1 through the restarted bus")
    assert events
    seqs = [e.seq for e in log.snapshot() if e.seq]
    assert seqs == sorted(seqs)


def test_a_core_child_that_keeps_crashing_is_given_up(make_runtime, clock) -> None:
    rt = make_runtime(registry=registry_of(TestAdapter(default="fill")), clock=clock, routing={"policy": {"paper": "test"}},
                      supervisor={"max_restarts": 1, "within_s": 60.0})
    log = EventLog()
    rt.subscribe(log, ChildGaveUp)
    name = "router"
    rt.router.tell(ForwardReconcile(["x"], ()))
    restart(rt, clock, name)
    rt.router.tell(ForwardReconcile(["x"], ()))
    wait_until(lambda: child(rt, name).state == "failed", what="router given up")
    gave_up = log.wait_for(lambda evs: [e for e in evs if isinstance(e, ChildGaveUp)], what="ChildGaveUp")[0]
    assert gave_up.child == name and "TypeError" in gave_up.last_error
    assert not rt.health().healthy


@pytest.fixture
def durable(make_runtime, clock, tmp_path):
    venue = TestAdapter(default="fill")
    runtime = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}}, durable=True,
                           state_dir=str(tmp_path / "state"))
    runtime.on_market(quote())
    return runtime, venue


def poison(name: str):
    """A message whose handler raises in the actor named ``name`` (a tell: the actor crashes)."""
    return {"ledger": SetTradingState("BOGUS"),  # TradingState("BOGUS") raises ValueError
            "idempotency": CompleteOrder(["unhashable"], "x", None),  # the report cache key raises TypeError
            "router": ForwardReconcile(["not", "hashable"], ()),
            "breaker:test": BreakerCommand("explode"),
            "event_bus": Publish("not an event")}[name]


def ref_of(rt, name: str):
    return {"ledger": rt.ledger, "idempotency": rt.idempotency, "router": rt.router, "breaker:test": rt.breakers.get("test"),
            "event_bus": rt.bus}[name]


def test_ledger_restarts_from_the_journal_and_gets_the_messages_queued_to_it(durable, clock) -> None:
    """The ledger crashes with a message queued behind the failing one; the next generation rebuilds
    the books from the journal and the queued message is redelivered to it, not lost."""
    rt, venue = durable
    assert fills(rt, "lr-before")
    before = rt.order("lr-before")
    positions = rt.positions()
    old = rt.ledger
    waiter: Future = Future()
    tell_quiet(old, SetTradingState("BOGUS"))  # queued, not run yet
    tell_quiet(old, WaitTerminal("lr-before", waiter))  # queued behind it
    wake(old)
    restart(rt, clock, "ledger")
    assert not old.is_alive() and rt.ledger is not old and child(rt, "ledger").generation == 2
    # redelivered to generation 2, which answers it from the books it rebuilt from the journal
    got = waiter.result(timeout=5)
    for report in (got, rt.order("lr-before")):
        assert {k: getattr(report, k) for k in BOOKED} == {k: getattr(before, k) for k in BOOKED}
    assert rt.positions() == positions
    assert rt.health().trading_state == "ACTIVE"
    assert fills(rt, "lr-after")
    assert venue.submit_count("lr-before") == 1 and venue.submit_count("lr-after") == 1


def test_reports_after_a_ledger_restart_equal_those_before_it(durable, clock) -> None:
    """The route, the venue order id and the attempts are journaled as typed fields of the order's
    transitions, so a ledger rebuilt from the journal answers ``rt.order`` and a waiter with the
    very report it gave before the restart: a filled order, one resting at its venue, one filled
    on its second attempt, one the venue rejected, one risk denied."""
    rt, venue = durable
    venue.push("fill", "accept", "not_delivered", "fill", "reject")
    ids = ["eq-filled", "eq-resting", "eq-retried", "eq-rejected"]
    for cl in ids:
        fut = rt.submit(limit(cl), ctx())
        for _ in range(100):  # the retry of eq-retried waits for its backoff on the fake clock
            if fut.done():
                break
            clock.advance(0.1)
            settle(rt)
        fut.result(timeout=5)
    denied = rt.submit(limit("eq-denied", qty="1000000"), ctx()).result(timeout=5)
    assert denied.status is OrderStatus.DENIED
    ids.append("eq-denied")
    settle(rt)
    before = {cl: rt.order(cl) for cl in ids}
    assert before["eq-retried"].attempts == 2 and before["eq-resting"].status is OrderStatus.ACCEPTED
    assert all(r.route is not None for r in before.values())
    assert all(before[cl].venue_order_id for cl in ("eq-filled", "eq-resting", "eq-retried"))
    rt.ledger.tell(poison("ledger"))
    restart(rt, clock, "ledger")
    waiter: Future = Future()
    rt.ledger.tell(WaitTerminal("eq-filled", waiter))
    after = {cl: rt.order(cl) for cl in ids}
    diffs = {cl: sorted(k for k in type(before[cl]).model_fields if getattr(before[cl], k) != getattr(after[cl], k))
             for cl in ids}
    assert after == before, diffs
    assert waiter.result(timeout=5) == before["eq-filled"]


def test_idempotency_store_restart_halts_trading_until_it_has_reopened_the_journal(durable, clock) -> None:
    rt, venue = durable
    assert fills(rt, "ir-before")
    rt.idempotency.tell(poison("idempotency"))
    wait_until(lambda: child(rt, "idempotency").state == "restarting", what="the store restarting")
    health = rt.health()
    assert health.trading_state == "HALTED" and "idempotency store" in health.trading_reason
    during = rt.submit(market("ir-during"), ctx())  # told to the crashed store: kept for its next generation
    restart(rt, clock, "idempotency")
    assert during.result(timeout=5).status is OrderStatus.FILLED
    assert rt.health().trading_state == "ACTIVE"
    # the claims are the journal's: a retry of an id claimed before the crash is answered from it, not sent
    again = rt.submit(market("ir-before"), ctx()).result(timeout=5)
    assert again.replay and again.status is OrderStatus.FILLED
    assert fills(rt, "ir-after")
    assert all(venue.submit_count(c) == 1 for c in ("ir-before", "ir-during", "ir-after"))


def test_an_operator_resume_waits_for_the_store_restart(durable, clock) -> None:
    rt, _ = durable
    rt.idempotency.tell(poison("idempotency"))
    wait_until(lambda: rt.health().trading_state == "HALTED", what="trading HALTED")
    assert rt.resume() == "HALTED"  # a restart hold is not the operator's to lift
    restart(rt, clock, "idempotency")
    assert rt.health().trading_state == "ACTIVE"


def test_a_ledger_without_a_journal_is_given_up_and_trading_stays_halted_with_the_reason(rt, clock) -> None:
    """Nothing to rebuild the books from: given up at once; the orders it gets are answered."""
    assert fills(rt, "ng-before")
    rt.ledger.tell(poison("ledger"))
    wait_until(lambda: child(rt, "ledger").state == "restarting", what="the ledger restarting")
    held = rt.submit(market("ng-held"), ctx())  # reaches the crashed ledger: kept, then answered when given up
    clock.wait_timer(lambda delay: delay < BACKOFF_MAX, what="the restart timer of the ledger")
    clock.advance(BACKOFF_MAX)
    wait_until(lambda: child(rt, "ledger").state == "failed", what="the ledger given up")
    assert held.result(timeout=5).error.code is ErrorCode.E_EXEC_INTERNAL
    health = rt.health()
    assert health.trading_state == "HALTED" and "no journal" in child(rt, "ledger").last_failure
    assert "restart the runtime" in health.trading_reason and not health.healthy
    report = rt.submit(market("ng-after"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.FAILED and report.error.code is ErrorCode.E_EXEC_INTERNAL


@pytest.mark.parametrize("name", ["router", "idempotency", "ledger", "breaker:test", "adapter", "event_bus"])
def test_each_kind_of_child_is_killed_and_comes_back_with_no_duplicate_sent(durable, clock, name) -> None:
    """Orders before, the child killed (a handler that raises; the adapter through its venue call),
    observed by the supervisor, restarted after its backoff, orders after; every order reaches its
    venue exactly once."""
    rt, venue = durable
    rt.subscribe(EventLog())  # the bus copies each event for its subscribers (where its poison raises)
    ids = [f"k-{name}-{i}" for i in range(3)]
    for cl in ids[:2]:
        assert fills(rt, cl)
    if name == "adapter":
        venue.push("crash")  # the next venue call raises AdapterCrash: the adapter actor crashes
        crashed = rt.submit(market(f"k-{name}-crash"), ctx()).result(timeout=5)
        assert crashed.status is OrderStatus.UNKNOWN
        restart(rt, clock, "test")
        ids.append(f"k-{name}-crash")
        for _ in range(120):  # looked up once quiet, proven absent, re-sent under the same id
            if rt.order(f"k-{name}-crash").status is OrderStatus.FILLED:
                break
            clock.advance(1.0)
            settle(rt)
        assert rt.order(f"k-{name}-crash").status is OrderStatus.FILLED
    else:
        old = ref_of(rt, name)
        old.tell(poison(name))
        restart(rt, clock, name)
        assert not old.is_alive() and ref_of(rt, name) is not old
        assert child(rt, name).generation == 2 and child(rt, name).restarts == 1
    assert fills(rt, ids[2])
    assert rt.health().healthy
    for cl in ids:
        assert rt.order(cl).status is OrderStatus.FILLED
        assert venue.delivered_count(cl) == 1, cl
        # a retry of every id is answered from the journal, never sent again
        assert rt.submit(market(cl), ctx()).result(timeout=5).replay
    assert all(venue.delivered_count(cl) == 1 for cl in ids)
