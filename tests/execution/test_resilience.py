"""Per-adapter resilience (docs/DESIGN.md, Failure handling) with a fake clock: retry, ambiguity and reconciliation,
rejects, the circuit breaker and its operator controls, the throttle, hung venue calls.

Time only moves in ``clock.advance``; a test advances only once the timer it means to fire
has been scheduled (``ObservableClock.wait_timer``) and lets the actors process what the
timers told them (``settle``), so nothing here depends on real time.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, child, ctx, limit, registry_of, settle, wait_until

from actors import BreakerState
from protocols import (
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    CircuitStateChanged,
    ErrorCode,
    Fill,
    NotDeliveredError,
    OrderReconciled,
    OrderStatus,
    VenueOrder,
    VenueOrderState,
)

ATTEMPT_S = 30.0     # per-attempt timeout: far beyond every other delay used here
INTERVAL_S = 1.0     # reconcile tick
QUIET_S = 2.5        # reconcile quiet threshold
OPEN_S = 10.0        # breaker open duration
RETRY_MAX = 0.5      # every retry / restart delay of the test profile is below this


def is_retry(delay: float) -> bool:
    return delay < RETRY_MAX


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


@pytest.fixture
def start(make_runtime, clock):
    """``start(*adapters, policy=None, **overrides)`` → a runtime on the fake clock."""

    def make(*adapters, policy=None, **overrides):
        overrides.setdefault("timeouts", {"attempt_s": ATTEMPT_S, "deadline_s": 10 * ATTEMPT_S})
        overrides.setdefault("reconcile", {"interval_s": INTERVAL_S, "quiet_threshold_s": QUIET_S})
        overrides.setdefault("breaker", {"open_duration_s": OPEN_S})
        routing = {"policy": policy or {"paper": adapters[0].adapter_id}}
        return make_runtime(registry=registry_of(*adapters), clock=clock, routing=routing, **overrides)

    return make


def venue_state(order_like: VenueOrder, status: OrderStatus, *, fill_qty: str | None = None) -> VenueOrderState:
    fills = ()
    if fill_qty is not None:
        fills = (Fill(trade_id="rec-t1", qty=Decimal(fill_qty), price=order_like.limit_price or Decimal("100"),
                      fee=Decimal("0.01"), fee_currency="USDT"),)
    return VenueOrderState.of(order_like, venue_order_id="rec-o1", status=status, fills=fills)


def venue_order(intent, account: str = "acc-1") -> VenueOrder:
    return VenueOrder.from_intent(intent, ctx(account=account))


# --------------------------------------------------------------------------- retry


def test_not_delivered_twice_then_success(start, clock) -> None:
    venue = TestAdapter(script=["not_delivered", "not_delivered"], default="fill")
    rt = start(venue)
    fut = rt.submit(limit("rs-1"), ctx())
    for attempt in (1, 2):
        assert venue.wait_entered(attempt)
        clock.wait_timer(is_retry, what=f"retry timer after attempt {attempt}")
        assert not fut.done()
        clock.advance(RETRY_MAX)
    report = fut.result(timeout=5)
    assert report.status is OrderStatus.FILLED and report.error is None
    assert report.attempts == 3
    assert venue.submit_calls == ["rs-1"] * 3
    assert venue.delivered_count("rs-1") == 1
    settle(rt)
    assert rt.order("rs-1").attempts == 3 and rt.order("rs-1").status is OrderStatus.FILLED
    assert rt.breaker("test").state is BreakerState.CLOSED


def test_retries_exhausted(start, clock) -> None:
    venue = TestAdapter(default="not_delivered")
    rt = start(venue, retry={"max_retries": 3, "base_s": 0.01, "cap_s": 0.1})
    fut = rt.submit(limit("rs-2"), ctx())
    for attempt in (1, 2, 3):
        assert venue.wait_entered(attempt)
        clock.wait_timer(is_retry, what=f"retry timer after attempt {attempt}")
        clock.advance(RETRY_MAX)
    report = fut.result(timeout=5)
    assert report.status is OrderStatus.FAILED
    assert report.error.code is ErrorCode.E_EXEC_RETRY_EXHAUSTED and report.error.retryable is False
    assert report.attempts == 4  # the first try plus max_retries
    assert venue.submit_calls == ["rs-2"] * 4 and venue.delivered_count("rs-2") == 0
    settle(rt)
    assert clock.live_timers(is_retry) == 0  # no fifth attempt is scheduled
    assert rt.order("rs-2").status is OrderStatus.FAILED


def test_rejected_is_final(start, clock) -> None:
    venue = TestAdapter(script=["reject"])
    rt = start(venue)
    report = rt.submit(limit("rs-3"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.REJECTED
    assert report.error.code is ErrorCode.E_EXEC_BROKER_REJECTED and "insufficient balance" in report.error.message
    assert report.attempts == 1
    settle(rt)
    assert clock.live_timers(is_retry) == 0
    assert venue.submit_calls == ["rs-3"]
    assert rt.order("rs-3").status is OrderStatus.REJECTED


def test_fatal_adapter_error_is_final(start, clock) -> None:
    venue = TestAdapter(script=["fatal"])
    rt = start(venue)
    report = rt.submit(limit("rs-fatal"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.FAILED and report.error.code is ErrorCode.E_EXEC_NETWORK
    assert venue.submit_calls == ["rs-fatal"]


# --------------------------------------------------------------------------- ambiguity and reconciliation


def reconcile_once(rt, clock, venue, n_fetches: int) -> None:
    """Advance past the quiet threshold in reconcile ticks until ``n_fetches`` fetches were made."""
    for _ in range(int(QUIET_S / INTERVAL_S) + 2):
        if len(venue.fetch_calls) >= n_fetches:
            return
        clock.advance(INTERVAL_S)
        settle(rt)
    wait_until(lambda: len(venue.fetch_calls) >= n_fetches, what="fetch_order")


def test_ambiguous_then_reconciled_from_the_venue_state(start, clock) -> None:
    intent = limit("rs-amb-1")
    proved = venue_state(venue_order(intent), OrderStatus.FILLED, fill_qty="0.001")
    venue = TestAdapter(script=["ambiguous"], fetch_script=[proved])
    rt = start(venue)
    log = EventLog()
    rt.subscribe(log, OrderReconciled)
    report = rt.submit(intent, ctx()).result(timeout=5)
    assert report.status is OrderStatus.UNKNOWN
    assert report.error.code is ErrorCode.E_EXEC_BROKER_TIMEOUT and report.error.retryable is False
    settle(rt)
    # not before the quiet threshold
    clock.advance(INTERVAL_S)
    settle(rt)
    assert venue.fetch_calls == []
    reconcile_once(rt, clock, venue, 1)
    wait_until(lambda: rt.order("rs-amb-1").status is OrderStatus.FILLED, what="the reconciled status")
    order = rt.order("rs-amb-1")
    assert order.cum_qty == Decimal("0.001") and [f.trade_id for f in order.fills] == ["rec-t1"]
    ev = log.wait_for(lambda evs: evs, what="OrderReconciled")[0]
    assert ev.client_order_id == "rs-amb-1"
    assert ev.previous_status is OrderStatus.UNKNOWN and ev.status is OrderStatus.FILLED
    assert venue.submit_calls == ["rs-amb-1"]  # never re-sent
    settle(rt)
    assert {p.account_id: p.net_qty for p in rt.positions()} == {"acc-1": Decimal("0.001")}
    # the journal now answers repeats with the reconciled outcome
    again = rt.submit(intent, ctx()).result(timeout=5)
    assert again.replay and again.status is OrderStatus.FILLED


@pytest.mark.parametrize("status", [OrderStatus.ACCEPTED, OrderStatus.CANCELED, OrderStatus.REJECTED])
def test_ambiguous_then_reconciled_to_any_venue_status(start, clock, status) -> None:
    intent = limit(f"rs-amb-{status.value}")
    venue = TestAdapter(script=["ambiguous"], fetch_script=[venue_state(venue_order(intent), status)])
    rt = start(venue)
    assert rt.submit(intent, ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    reconcile_once(rt, clock, venue, 1)
    wait_until(lambda: rt.order(intent.client_order_id).status is status, what=f"{status.value} after reconciliation")
    assert venue.submit_calls == [intent.client_order_id]


def test_ambiguous_then_venue_proves_absence_resends_same_id(start, clock) -> None:
    venue = TestAdapter(script=["ambiguous"], default="fill")  # the lost request never reached the book
    rt = start(venue)
    first = rt.submit(limit("rs-amb-none"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.UNKNOWN
    settle(rt)
    reconcile_once(rt, clock, venue, 1)
    wait_until(lambda: venue.submit_count("rs-amb-none") == 2, what="the resend")
    wait_until(lambda: rt.order("rs-amb-none").status is OrderStatus.FILLED, what="FILLED after the resend")
    assert venue.submit_calls == ["rs-amb-none", "rs-amb-none"]
    assert venue.delivered_count("rs-amb-none") == 1
    assert venue.fetch_calls == ["rs-amb-none"]  # asked first, sent only after the proof
    assert rt.order("rs-amb-none").attempts == 2


def test_ambiguous_after_delivery_is_never_sent_twice(start, clock) -> None:
    venue = TestAdapter(script=["ambiguous_sent"], default="accept")
    rt = start(venue)
    assert rt.submit(limit("rs-amb-sent"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    reconcile_once(rt, clock, venue, 1)
    wait_until(lambda: rt.order("rs-amb-sent").status is OrderStatus.ACCEPTED, what="ACCEPTED from the venue")
    for _ in range(5):
        clock.advance(INTERVAL_S)
        settle(rt)
    assert venue.submit_calls == ["rs-amb-sent"] and venue.delivered_count("rs-amb-sent") == 1
    assert venue.fetch_calls == ["rs-amb-sent"]


def test_reconcile_fetch_failures_are_retried(start, clock) -> None:
    intent = limit("rs-amb-ff")
    venue = TestAdapter(script=["ambiguous"],
                        fetch_script=[NotDeliveredError("down"), venue_state(venue_order(intent), OrderStatus.ACCEPTED)])
    rt = start(venue)
    assert rt.submit(intent, ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    reconcile_once(rt, clock, venue, 1)
    reconcile_once(rt, clock, venue, 2)
    wait_until(lambda: rt.order("rs-amb-ff").status is OrderStatus.ACCEPTED, what="ACCEPTED on the second fetch")
    assert venue.submit_calls == ["rs-amb-ff"]


# --------------------------------------------------------------------------- circuit breaker


BREAKER = {"window_size": 4, "minimum_calls": 4, "failure_rate_threshold": 50.0, "open_duration_s": OPEN_S,
           "slow_call_duration_s": 5.0}


def test_breaker_opens_denies_half_opens_and_closes(start, clock) -> None:
    venue = TestAdapter(script=["fatal"] * 4, default="fill")
    rt = start(venue, breaker=BREAKER)
    log = EventLog()
    rt.subscribe(log, CircuitStateChanged)
    for k in range(4):
        report = rt.submit(limit(f"br-{k}"), ctx()).result(timeout=5)
        assert report.status is OrderStatus.FAILED
    settle(rt)
    log.wait_for(lambda evs: len(evs) == 1, what="CircuitOpened")
    opened = log.snapshot()[0]
    assert isinstance(opened, CircuitOpened) and opened.adapter_id == "test"
    assert (opened.from_state, opened.to_state) == ("CLOSED", "OPEN") and opened.failure_rate == 100.0
    assert rt.breaker("test").state is BreakerState.OPEN
    denied = rt.submit(limit("br-denied"), ctx()).result(timeout=5)
    assert denied.status is OrderStatus.DENIED
    assert denied.error.code is ErrorCode.E_EXEC_CIRCUIT_OPEN and denied.error.retryable is True
    assert denied.error.retry_after_s == OPEN_S
    assert venue.submit_count("br-denied") == 0
    clock.advance(OPEN_S / 2)
    half_way = rt.submit(limit("br-denied-2"), ctx()).result(timeout=5)
    assert half_way.error.code is ErrorCode.E_EXEC_CIRCUIT_OPEN and half_way.error.retry_after_s == OPEN_S / 2
    clock.advance(OPEN_S / 2)
    settle(rt)
    log.wait_for(lambda evs: len(evs) == 2, what="CircuitHalfOpened")
    assert rt.breaker("test").state is BreakerState.HALF_OPEN
    trial = rt.submit(limit("br-trial"), ctx()).result(timeout=5)
    assert trial.status is OrderStatus.FILLED
    settle(rt)
    log.wait_for(lambda evs: len(evs) == 3, what="CircuitClosed")
    assert [type(e) for e in log.snapshot()] == [CircuitOpened, CircuitHalfOpened, CircuitClosed]
    assert [(e.from_state, e.to_state) for e in log.snapshot()] == [
        ("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    assert rt.breaker("test").state is BreakerState.CLOSED
    # the denied orders never reached the venue and were released: the same ids can be used now
    again = rt.submit(limit("br-denied"), ctx()).result(timeout=5)
    assert again.status is OrderStatus.FILLED and not again.replay


def test_failed_trial_reopens(start, clock) -> None:
    venue = TestAdapter(script=["fatal"] * 5, default="fill")
    rt = start(venue, breaker=BREAKER)
    for k in range(4):
        rt.submit(limit(f"bt-{k}"), ctx()).result(timeout=5)
    settle(rt)
    assert rt.breaker("test").state is BreakerState.OPEN
    clock.advance(OPEN_S)
    settle(rt)
    assert rt.submit(limit("bt-trial"), ctx()).result(timeout=5).status is OrderStatus.FAILED
    settle(rt)
    assert rt.breaker("test").state is BreakerState.OPEN
    assert rt.submit(limit("bt-after"), ctx()).result(timeout=5).error.code is ErrorCode.E_EXEC_CIRCUIT_OPEN


def test_business_rejects_do_not_open_the_breaker(start, clock) -> None:
    venue = TestAdapter(default="reject")
    rt = start(venue, breaker=BREAKER)
    for k in range(8):
        assert rt.submit(limit(f"brj-{k}"), ctx()).result(timeout=5).status is OrderStatus.REJECTED
    settle(rt)
    assert rt.breaker("test").state is BreakerState.CLOSED


def test_operator_force_open_reset_disable(start, clock) -> None:
    venue = TestAdapter(default="fill")
    rt = start(venue, breaker=BREAKER)
    log = EventLog()
    rt.subscribe(log, CircuitStateChanged)
    assert rt.force_open("test").state is BreakerState.FORCED_OPEN
    denied = rt.submit(limit("op-1"), ctx()).result(timeout=5)
    assert denied.error.code is ErrorCode.E_EXEC_CIRCUIT_OPEN and denied.error.retry_after_s is not None
    clock.advance(10 * OPEN_S)  # forced open does not time out
    settle(rt)
    assert rt.breaker("test").state is BreakerState.FORCED_OPEN
    assert rt.health().breakers == {"test": "FORCED_OPEN"} and not rt.health().healthy
    assert rt.reset_breaker("test").state is BreakerState.CLOSED
    assert rt.submit(limit("op-2"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert rt.disable_breaker("test").state is BreakerState.DISABLED
    venue.push(*["fatal"] * 6)
    for k in range(6):
        assert rt.submit(limit(f"op-f{k}"), ctx()).result(timeout=5).status is OrderStatus.FAILED
    settle(rt)
    assert rt.breaker("test").state is BreakerState.DISABLED  # records nothing, never opens
    assert rt.submit(limit("op-3"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert rt.reset_breaker("test").state is BreakerState.CLOSED
    log.wait_for(lambda evs: len(evs) == 4, what="four transitions")
    assert [e.to_state for e in log.snapshot()] == ["FORCED_OPEN", "CLOSED", "DISABLED", "CLOSED"]
    with pytest.raises(KeyError):
        rt.force_open("nope")


# --------------------------------------------------------------------------- throttle


def test_throttle_deny(start, clock) -> None:
    venue = TestAdapter(default="fill")
    rt = start(venue, throttle={"max_calls": 3, "window_s": 60.0, "overflow": "deny"})
    for k in range(3):
        assert rt.submit(limit(f"th-{k}"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    fourth = rt.submit(limit("th-3"), ctx()).result(timeout=5)
    assert fourth.status is OrderStatus.DENIED
    assert fourth.error.code is ErrorCode.E_EXEC_THROTTLED and fourth.error.retryable is True
    assert fourth.error.retry_after_s == 60.0
    assert venue.submit_count("th-3") == 0
    clock.advance(20.0)
    fifth = rt.submit(limit("th-4"), ctx()).result(timeout=5)
    assert fifth.error.code is ErrorCode.E_EXEC_THROTTLED and fifth.error.retry_after_s == 40.0
    clock.advance(40.0)
    # the window has slid: the denied id (released, never sent) goes through now
    assert rt.submit(limit("th-3"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert venue.submit_calls == ["th-0", "th-1", "th-2", "th-3"]


def test_throttle_queue_sends_after_the_window(start, clock) -> None:
    venue = TestAdapter(default="fill")
    rt = start(venue, throttle={"max_calls": 3, "window_s": 60.0, "overflow": "queue"})
    for k in range(3):
        assert rt.submit(limit(f"tq-{k}"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    fourth = rt.submit(limit("tq-3"), ctx())
    clock.wait_timer(lambda d: d == 60.0, what="the throttle timer")
    settle(rt)
    assert not fourth.done() and venue.submit_count("tq-3") == 0
    clock.advance(59.0)
    settle(rt)
    assert not fourth.done()
    clock.advance(1.0)
    report = fourth.result(timeout=5)
    assert report.status is OrderStatus.FILLED and report.attempts == 1
    assert venue.submit_calls == ["tq-0", "tq-1", "tq-2", "tq-3"]


def test_cancel_is_not_throttled_behind_queued_orders(start, clock) -> None:
    venue = TestAdapter(default="accept")
    rt = start(venue, throttle={"max_calls": 1, "window_s": 60.0, "overflow": "queue"})
    assert rt.submit(limit("tc-a"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    queued = [rt.submit(limit(f"tc-q{k}"), ctx()) for k in range(3)]
    clock.wait_timer(lambda d: d == 60.0, what="the throttle timer")
    canceled = rt.cancel("tc-a").result(timeout=5)
    assert canceled.status is OrderStatus.CANCELED and canceled.error is None
    assert venue.cancel_calls == ["tc-a"]
    assert venue.submit_calls == ["tc-a"]  # the queued orders still wait
    assert not any(f.done() for f in queued)
    clock.advance(60.0)
    settle(rt)
    # one slot per window: the first queued order goes, the next ones wait for later windows
    wait_until(lambda: queued[0].done(), what="the first queued order")
    assert queued[0].result().status is OrderStatus.ACCEPTED


# regression (found by this suite, fixed in actors/): a cancel of an order still waiting in the throttle queue
# is refused by the ledger (RESERVED is not open) and the order is sent later; the adapter's queued-cancel path
# is unreachable (actors.orders.ledger.handle_CancelOrder vs actors.execution.adapter.handle_ExecuteCancel)
def test_cancel_of_a_queued_order_never_sends_it(start, clock) -> None:
    venue = TestAdapter(default="accept")
    rt = start(venue, throttle={"max_calls": 1, "window_s": 60.0, "overflow": "queue"})
    assert rt.submit(limit("tcq-a"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    queued = rt.submit(limit("tcq-b"), ctx())
    clock.wait_timer(lambda d: d == 60.0, what="the throttle timer")
    settle(rt)
    assert rt.order("tcq-b").status is OrderStatus.RESERVED
    rt.cancel("tcq-b").result(timeout=5)
    clock.advance(60.0)
    settle(rt)
    # whatever the cancel answered, the order the user canceled must never reach the venue
    assert venue.submit_count("tcq-b") == 0
    assert queued.result(timeout=5).status is not OrderStatus.ACCEPTED


# --------------------------------------------------------------------------- hung venue calls


def test_hung_call_on_one_adapter_does_not_delay_another(start, clock) -> None:
    a = TestAdapter("venue_a", script=[("block", "fill")], default="fill")
    b = TestAdapter("venue_b", default="fill")
    rt = start(a, b, policy={"paper": "venue_a", "shadow": "venue_b"})
    hung = rt.submit(limit("hang-a"), ctx("paper"))
    assert a.wait_blocked(1)
    for k in range(5):
        report = rt.submit(limit(f"hang-b{k}"), ctx("shadow")).result(timeout=5)
        assert report.status is OrderStatus.FILLED and report.route.adapter_id == "venue_b"
    assert not hung.done()
    # the per-attempt timeout fires: UNKNOWN, and the adapter actor is restarted with a fresh worker
    clock.advance(ATTEMPT_S)
    report = hung.result(timeout=5)
    assert report.status is OrderStatus.UNKNOWN and report.error.code is ErrorCode.E_EXEC_BROKER_TIMEOUT
    wait_until(lambda: child(rt, "venue_a").state == "restarting", what="venue_a restarting")
    clock.wait_timer(is_retry, what="the restart timer")
    clock.advance(RETRY_MAX)
    wait_until(lambda: child(rt, "venue_a").state == "running" and child(rt, "venue_a").restarts == 1,
               what="venue_a running again")
    health = child(rt, "venue_a")
    assert health.generation == 2 and "hung" in health.last_failure
    assert child(rt, "venue_b").restarts == 0
    # the new generation answers while the old worker is still stuck in the venue
    assert a.blocked_now == 1
    assert rt.submit(limit("hang-a2"), ctx("paper")).result(timeout=5).status is OrderStatus.FILLED
    # the in-doubt order is reconciled: the venue never got it (blocked before delivery), so it is
    # re-sent under the same id once the venue proves absence
    for _ in range(10):
        if rt.order("hang-a").status is not OrderStatus.UNKNOWN:
            break
        clock.advance(INTERVAL_S)
        settle(rt)
    wait_until(lambda: rt.order("hang-a").status is OrderStatus.FILLED, what="hang-a reconciled")
    assert a.delivered_count("hang-a") == 1


# regression (found by this suite, fixed in actors/): orders already in reconciliation are handed to the next
# adapter generation as aged=True, so 'not found' is trusted before the quiet threshold
# (actors.execution.adapter.failure_details)
def test_timed_out_order_is_not_declared_absent_before_the_quiet_threshold(start, clock) -> None:
    a = TestAdapter("venue_a", script=[("block", "fill")], default="fill")
    rt = start(a, reconcile={"interval_s": 0.25, "quiet_threshold_s": 5.0})
    hung = rt.submit(limit("quiet-a"), ctx())
    assert a.wait_blocked(1)
    clock.advance(ATTEMPT_S)  # UNKNOWN at t=30
    assert hung.result(timeout=5).status is OrderStatus.UNKNOWN
    wait_until(lambda: child(rt, "venue_a").state == "restarting", what="restarting")
    clock.wait_timer(is_retry, what="the restart timer")
    clock.advance(RETRY_MAX)  # t=30.5: restarted
    wait_until(lambda: child(rt, "venue_a").state == "running", what="running")
    for _ in range(8):  # up to t=32.5, still well inside the 5 s quiet threshold
        clock.advance(0.25)
        settle(rt)
    assert a.fetch_calls == [] and a.submit_count("quiet-a") == 1
