"""Adapter contract v2: lifetime across restarts, breaker counting of a crash, the public
``Runtime.flush`` barrier (venue workers included), typed reservations and exposure."""

from __future__ import annotations

import random
import threading
from concurrent.futures import Future
from dataclasses import FrozenInstanceError
from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import ObservableClock, child, ctx, limit, market, quote, registry_of, wait_until

from actors import FakeClock
from actors.breaker.breaker import CallOutcome
from actors.breaker.messages import CallFinished
from actors.execution.adapter import AdapterActor, AdapterPolicy, _Call
from actors.orders.messages import SubmitOrder
from actors.runtime.registry import AdapterRegistry, default_registry
from config import load_settings
from protocols import OrderStatus
from protocols.venues import FaultInjectingAdapter, FaultPlan

# --------------------------------------------------------------------------- breaker counting


class _Recorder:
    """A stand-in actor ref at the boundary of the adapter actor: records what it is told."""

    def __init__(self) -> None:
        self.actor_stopped = threading.Event()
        self.actor_inbox = None
        self.told: list = []

    def tell(self, message) -> None:
        self.told.append(message)


def test_one_crash_counts_once_in_the_breaker_however_many_orders_it_leaves_in_doubt() -> None:
    breaker, ledger, store = _Recorder(), _Recorder(), _Recorder()
    policy = AdapterPolicy.from_settings(load_settings("test"))
    actor = AdapterActor(adapter_id="test", venue=TestAdapter(), policy=policy, clock=FakeClock(), breaker=breaker,
                         ledger=ledger, idempotency=store, rng=random.Random(0))
    for i in range(1, 6):  # five calls picked by the worker (answers lost with the crash)
        order = SubmitOrder(limit(f"cc-{i}"), ctx(), Future(), 0, attempt=1, permit=object())
        actor._calls[i] = _Call("submit", order.client_order_id, order=order)
    details = actor.failure_details()
    outcomes = [m.outcome for m in breaker.told if isinstance(m, CallFinished)]
    assert outcomes.count(CallOutcome.FAILURE) == 1 and outcomes.count(CallOutcome.IGNORED) == 4
    assert len(details["in_doubt"]) == 5  # every order is still in doubt and reconciled


def test_a_hang_counts_its_timed_out_call_and_nothing_more() -> None:
    breaker = _Recorder()
    actor = AdapterActor(adapter_id="test", venue=TestAdapter(), policy=AdapterPolicy.from_settings(load_settings("test")),
                         clock=FakeClock(), breaker=breaker, ledger=_Recorder(), idempotency=_Recorder(), rng=random.Random(0))
    for i in range(1, 4):
        order = SubmitOrder(limit(f"hc-{i}"), ctx(), Future(), 0, attempt=1, permit=object())
        actor._calls[i] = _Call("submit", order.client_order_id, order=order)
    from actors.execution.messages import CallTimedOut
    from actors.kernel.base import ActorCrashed

    with pytest.raises(ActorCrashed):
        actor.handle_CallTimedOut(CallTimedOut(1))
    actor.failure_details()
    outcomes = [m.outcome for m in breaker.told if isinstance(m, CallFinished)]
    assert outcomes == [CallOutcome.FAILURE, CallOutcome.IGNORED, CallOutcome.IGNORED]


# --------------------------------------------------------------------------- lifetime across restarts


def _counting_registry(make, *, rebuild=True) -> tuple[AdapterRegistry, list]:
    built: list = []

    def build(settings):
        adapter = make(len(built))
        built.append(adapter)
        return adapter

    registry = AdapterRegistry()
    registry.register("test", build, rebuild=rebuild)
    return registry, built


def test_every_restart_runs_on_a_fresh_instance_from_the_builder_and_retires_the_old(make_runtime) -> None:
    clock = ObservableClock()
    registry, built = _counting_registry(lambda n: TestAdapter(script=["crash"] if n == 0 else [], default="fill"))
    rt = make_runtime(registry=registry, clock=clock, routing={"policy": {"paper": "test"}})
    assert rt.submit(limit("lt-1"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    wait_until(lambda: child(rt, "test").state == "restarting", what="restarting")
    clock.wait_timer(lambda d: d < 0.5, what="the restart timer")
    clock.advance(0.5)
    wait_until(lambda: child(rt, "test").state == "running" and child(rt, "test").generation == 2, what="g2")
    assert len(built) == 2 and rt.venue("test") is built[1]
    assert rt.submit(limit("lt-2"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert built[1].submit_calls == ["lt-2"] and built[0].submit_calls == ["lt-1"]
    wait_until(lambda: built[0]._closed, what="the crashed instance closed")
    assert built[1].start_calls == 1 and built[0].start_calls == 1


def test_a_builder_that_fails_is_a_start_up_crash_then_retried(make_runtime) -> None:
    clock = ObservableClock()
    calls = {"n": 0}

    def make(n):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionRefusedError("venue down")
        return TestAdapter(script=["crash"] if n == 0 else [], default="fill")

    registry, _built = _counting_registry(make)
    rt = make_runtime(registry=registry, clock=clock, routing={"policy": {"paper": "test"}})
    assert rt.submit(limit("bf-1"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    for _ in range(3):
        wait_until(lambda: child(rt, "test").state in ("restarting", "running"), what="restart")
        if child(rt, "test").state == "running" and child(rt, "test").generation >= 3:
            break
        clock.wait_timer(lambda d: d < 0.5, what="the restart timer")
        clock.advance(0.5)
    wait_until(lambda: child(rt, "test").state == "running" and child(rt, "test").generation == 3, what="g3")
    assert "venue down" in child(rt, "test").last_failure
    assert rt.submit(limit("bf-2"), ctx()).result(timeout=5).status is OrderStatus.FILLED


def test_the_durable_paper_book_survives_a_rebuild(make_runtime, settings_factory) -> None:
    settings = settings_factory(durable=True, journal={"enabled": True, "synchronous": "FULL"})
    clock = ObservableClock()
    plan = FaultPlan(crash=0.0)
    registry = default_registry(faults=plan)
    rt = make_runtime(settings, registry=registry, clock=clock)
    rt.on_market(quote())
    first = rt.venue("paper")
    resting = rt.submit(limit("dp-1", price="39000.00"), ctx()).result(timeout=5)
    assert resting.status is OrderStatus.ACCEPTED
    # crash the adapter: one injected crash on the next call
    object.__setattr__(first, "plan", FaultPlan(crash=1.0))
    assert rt.submit(limit("dp-2"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    wait_until(lambda: child(rt, "paper").state == "restarting", what="restarting")
    clock.wait_timer(lambda d: d < 0.5, what="the restart timer")
    clock.advance(0.5)
    wait_until(lambda: child(rt, "paper").generation == 2 and child(rt, "paper").state == "running", what="g2")
    fresh = rt.venue("paper")
    assert fresh is not first and isinstance(fresh, FaultInjectingAdapter)
    assert fresh.inner.fetch_order("dp-1").status is OrderStatus.ACCEPTED  # the book reopened from its file
    assert fresh.stats()["crash"] == first.stats()["crash"] == 1  # the fault sequence and counts go on
    assert fresh.inner.touch("BTC/USDT") == quote()  # the last touch replayed into the fresh instance
    object.__setattr__(fresh, "plan", FaultPlan())
    assert rt.submit(market("dp-3"), ctx()).result(timeout=5).status is OrderStatus.FILLED


def test_an_in_memory_simulator_is_kept_across_restarts() -> None:
    registry = default_registry()
    settings = load_settings("test", journal={"enabled": False})
    assert not registry.rebuilds("paper", settings)
    assert registry.rebuilds("paper", load_settings("test", journal={"enabled": True}))


# --------------------------------------------------------------------------- flush


def test_flush_waits_for_venue_calls_and_their_outcomes(make_runtime) -> None:
    venue = TestAdapter(default="fill")
    pause = threading.Event()
    venue.on_submit = lambda order: pause.wait(0.05)  # every call takes a while in the venue
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}})
    futures = [rt.submit(limit(f"fl-{i}"), ctx()) for i in range(6)]
    rt.flush()
    assert all(f.done() for f in futures)
    assert [rt.order(f"fl-{i}").status for i in range(6)] == [OrderStatus.FILLED] * 6
    assert {p.account_id: p.net_qty for p in rt.positions()} == {"acc-1": Decimal("0.006")}


def test_flush_reports_a_venue_call_that_does_not_finish(make_runtime) -> None:
    venue = TestAdapter(script=[("block", "fill")])
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}}, timeouts={"attempt_s": 30.0, "deadline_s": 300.0})
    fut = rt.submit(limit("fl-hang"), ctx())
    assert venue.wait_blocked(1)
    with pytest.raises(TimeoutError, match="still running"):
        rt.flush(timeout=0.2)
    rt.flush(timeout=5, venue_calls=False)  # the actors alone
    venue.release()
    assert fut.result(timeout=5).status is OrderStatus.FILLED


# --------------------------------------------------------------------------- typed reservations


def test_reservations_and_exposure_are_typed_frozen_values(make_runtime) -> None:
    venue = TestAdapter(default="accept")
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}},
                      risk={"budgets": {"acc-1": "1000"}})
    rt.submit(limit("rv-1"), ctx()).result(timeout=5)
    rt.flush()
    (res,) = rt.reservations("acc-1")
    assert (res.client_order_id, res.account_id, res.open_qty) == ("rv-1", "acc-1", Decimal("0.001"))
    assert res.amount == res.price * res.open_qty and res.amount > 0
    with pytest.raises(FrozenInstanceError):
        res.amount = Decimal(0)  # type: ignore[misc]
    exp = rt.exposure("acc-1")
    assert exp.reserved == res.amount and exp.spent == 0 and exp.budget == Decimal("1000")
    assert exp.available == Decimal("1000") - res.amount
    assert rt.reservations("nobody") == () and rt.exposure("nobody").reserved == 0
