"""The supervisor watches and restarts the core children (docs/DESIGN.md "Failure handling").

Each kind of child is crashed through a real handler exception (a malformed message its
handler cannot process), the failure reaches the supervisor through pykka's ``on_failure``
path, the restart waits for its backoff timer on the fake clock, and the new generation is
rewired: orders flow again, the breaker starts CLOSED, the bus keeps its subscriptions.
"""

from __future__ import annotations

import pytest

from actors.breaker.messages import BreakerCommand
from actors.idempotency.messages import CompleteOrder
from actors.routing.messages import ForwardReconcile
from actors.events.messages import Publish
from actors.orders.messages import SetTradingState
from protocols import ChildGaveUp, ErrorCode, OrderStatus

from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, child, ctx, market, quote, registry_of, settle, wait_until

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
    old = rt.gates["test"]
    venue.push("fatal", "fatal")
    for k in range(2):
        rt.submit(market(f"cr-trip-{k}"), ctx()).result(timeout=5)
    settle(rt)
    assert rt.breaker("test").state.value == "OPEN"
    old.tell(BreakerCommand("explode"))  # the handler raises ValueError (an ask would return it instead)
    restart(rt, clock, "breaker:test")
    assert not old.is_alive() and rt.gates["test"] is not old
    assert rt.breaker("test").state.value == "CLOSED"  # state rebuilt: a fresh breaker window
    assert child(rt, "breaker:test").generation == 2
    # the router's table and the adapter actor point at the new breaker: orders fill end to end
    assert fills(rt, "cr-breaker-1") and fills(rt, "cr-breaker-2")
    assert child(rt, "test").state == "running" and child(rt, "test").restarts == 0


def test_an_operators_override_survives_a_breaker_restart(rt, clock) -> None:
    rt.force_open("test")
    rt.gates["test"].tell(BreakerCommand("explode"))
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


@pytest.mark.parametrize("name", ["ledger", "idempotency"])
def test_a_failing_ledger_or_idempotency_store_halts_trading_with_the_reason(rt, name) -> None:
    """The durable core actors are not restarted in place (their state is rebuilt by replaying the
    journal at start): a handler that raises halts trading with the reason; the actor goes on
    answering queries and the child shows failed."""
    assert fills(rt, f"cr-{name}-before")
    if name == "ledger":
        rt.ledger.tell(SetTradingState("BOGUS"))  # TradingState("BOGUS") raises ValueError in the handler
    else:
        rt.idempotency.tell(CompleteOrder(["unhashable"], "x", None))  # the report cache key raises TypeError
    wait_until(lambda: rt.health().trading_state == "HALTED", what="trading HALTED")
    health = rt.health()
    assert name in health.trading_reason and "restart the runtime" in health.trading_reason
    assert child(rt, name).state == "failed" and not health.healthy
    assert rt.ledger.is_alive() and rt.idempotency.is_alive()
    report = rt.submit(market(f"cr-{name}-after"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.DENIED
