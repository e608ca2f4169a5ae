"""A circuit-breaker actor that crashes while it holds an order's permit (actors/breaker/actor.py).

The crash is injected where the breaker has taken the permit and not yet handed the order on
(``CircuitBreaker.drain_events``, called right after ``try_acquire``). The permit goes back to the
breaker (a half-open trial is not lost) and the order, provably not sent, is answered as the
breaker answers every order it does not send: DENIED, its claim and reservation released, so a
retry under the same id is sent once.
"""

from __future__ import annotations

import pytest
from _adapters import TestAdapter
from conftest import ObservableClock, child, ctx, limit, registry_of, settle, wait_until

from actors import BreakerState
from actors.breaker.breaker import BreakerPermit, CircuitBreaker
from protocols import ErrorCode, OrderStatus

OPEN_S = 10.0
BREAKER = {"window_size": 4, "minimum_calls": 4, "failure_rate_threshold": 50.0, "open_duration_s": OPEN_S,
           "slow_call_duration_s": 5.0, "half_open_permits": 1}
BACKOFF_MAX = 0.5  # above every restart delay of the test profile


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def test_a_crash_after_the_permit_gives_it_back_and_denies_the_unsent_order(make_runtime, clock, monkeypatch) -> None:
    venue = TestAdapter(script=["fatal"] * 4, default="fill")
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}},
                      timeouts={"attempt_s": 30.0, "deadline_s": 300.0}, breaker=BREAKER, durable=True)
    for k in range(4):
        assert rt.submit(limit(f"bc-{k}"), ctx()).result(timeout=5).status is OrderStatus.FAILED
    settle(rt)
    assert rt.breaker("test").state is BreakerState.OPEN
    clock.advance(OPEN_S)
    settle(rt)
    assert rt.breaker("test").state is BreakerState.HALF_OPEN  # one trial permit

    crashed: list[CircuitBreaker] = []
    drain = CircuitBreaker.drain_events

    def crash_once(self: CircuitBreaker):
        if not crashed:
            crashed.append(self)
            raise RuntimeError("injected: the breaker crashes holding the trial permit")
        return drain(self)

    monkeypatch.setattr(CircuitBreaker, "drain_events", crash_once)
    report = rt.submit(limit("bc-trial"), ctx()).result(timeout=5)
    assert crashed, "the crash was not injected"
    # never sent: DENIED (not FAILED), so the caller knows it may retry under the same id
    assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_INTERNAL
    assert venue.submit_count("bc-trial") == 0
    # the crashed breaker got its trial permit back (the permit and the outstanding record are one step)
    assert crashed[0].state is BreakerState.HALF_OPEN
    assert isinstance(crashed[0].try_acquire(), BreakerPermit)

    wait_until(lambda: child(rt, "breaker:test").state == "restarting", what="the breaker restarting")
    clock.wait_timer(lambda delay: delay < BACKOFF_MAX, what="the restart timer of the breaker")
    clock.advance(BACKOFF_MAX)
    wait_until(lambda: child(rt, "breaker:test").state == "running", what="the breaker running again")
    settle(rt)
    # the ledger was told: not left RESERVED with its budget held; the claim was released
    assert rt.order("bc-trial").status is OrderStatus.DENIED
    again = rt.submit(limit("bc-trial"), ctx()).result(timeout=5)
    assert again.status is OrderStatus.FILLED and not again.replay
    assert venue.submit_count("bc-trial") == 1
