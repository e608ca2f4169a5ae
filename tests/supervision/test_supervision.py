"""Supervision (docs/DESIGN.md, One order, docs/DESIGN.md, Failure handling): adapter crashes, restarts with backoff, the intensity limit, the
stash, stale failure reports, and exactly one final report per intent through injected faults."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, child, ctx, limit, market, quote, registry_of, settle, wait_until

from actors import default_registry
from actors.runtime.runtime import _PING
from actors.supervision.messages import ChildFailed
from protocols import (
    AdapterCrashed,
    AdapterRestarted,
    ChildGaveUp,
    ErrorCode,
    OrderReconciled,
    OrderStatus,
)
from protocols.venues import FaultPlan

BACKOFF_MAX = 0.5  # above every restart delay of the test profile (0.01 doubling to 0.1, ±20%)
INTERVAL_S = 1.0
QUIET_S = 2.5


def is_restart(delay: float) -> bool:
    return delay < BACKOFF_MAX


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


@pytest.fixture
def start(make_runtime, clock):
    def make(*adapters, **overrides):
        overrides.setdefault("timeouts", {"attempt_s": 30.0, "deadline_s": 300.0})
        overrides.setdefault("reconcile", {"interval_s": INTERVAL_S, "quiet_threshold_s": QUIET_S})
        return make_runtime(registry=registry_of(*adapters), clock=clock,
                            routing={"policy": {"paper": adapters[0].adapter_id}}, **overrides)

    return make


def restart_once(rt, clock, name: str = "test") -> None:
    """Wait for the child to be restarting, then fire its restart timer."""
    wait_until(lambda: child(rt, name).state == "restarting", what=f"{name} restarting")
    clock.wait_timer(is_restart, what="the restart timer")
    clock.advance(BACKOFF_MAX)
    settle(rt)


def test_adapter_crash_is_contained_restarted_and_reconciled(start, clock, make_runtime) -> None:
    other = make_runtime()  # a second runtime in the same process, real clock
    other.on_market(quote())
    venue = TestAdapter(script=["crash"], default="fill")
    rt = start(venue)
    log = EventLog()
    rt.subscribe(log, (AdapterCrashed, AdapterRestarted, OrderReconciled))
    report = rt.submit(limit("sv-crash"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.UNKNOWN
    assert report.error.code is ErrorCode.E_EXEC_ADAPTER_CRASHED and report.error.retryable is False
    wait_until(lambda: child(rt, "test").state == "restarting", what="restarting")
    crashed = log.wait_for(lambda evs: [e for e in evs if isinstance(e, AdapterCrashed)], what="AdapterCrashed")[0]
    assert crashed.child == "test" and crashed.generation == 1 and "AdapterCrash" in crashed.error
    assert "sv-crash" in crashed.orders_in_doubt
    # pykka did not stop every actor: this runtime's core and the other runtime still work
    assert rt.router.is_alive() and rt.ledger.is_alive() and rt.idempotency.is_alive()
    assert other.submit(market("sv-other"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    restart_once(rt, clock)
    health = child(rt, "test")
    assert (health.state, health.restarts, health.generation) == ("running", 1, 2)
    assert "AdapterCrash" in health.last_failure
    restarted = log.wait_for(lambda evs: [e for e in evs if isinstance(e, AdapterRestarted)], what="AdapterRestarted")[0]
    assert restarted.child == "test" and restarted.generation == 2 and restarted.restarts == 1
    assert 0 < restarted.delay_s < BACKOFF_MAX
    # the new generation answers
    assert rt.submit(limit("sv-after"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    # the in-doubt order is reconciled before anything is re-sent: asked first, then re-sent (same id)
    for _ in range(int(QUIET_S / INTERVAL_S) + 3):
        if venue.fetch_calls:
            break
        clock.advance(INTERVAL_S)
        settle(rt)
    wait_until(lambda: rt.order("sv-crash").status is OrderStatus.FILLED, what="sv-crash reconciled")
    assert venue.fetch_calls[0] == "sv-crash"
    assert venue.submit_calls.count("sv-crash") == 2 and venue.delivered_count("sv-crash") == 1
    assert rt.stats()["unknown_open"] == 0


# regression (found by this suite, fixed in actors/): an order in flight at a crash is listed twice in
# AdapterCrashed.orders_in_doubt (once from _calls, once from _recon, in actors.execution.adapter.failure_details)
def test_orders_in_doubt_are_listed_once(start, clock) -> None:
    venue = TestAdapter(script=["crash"], default="fill")
    rt = start(venue)
    log = EventLog()
    rt.subscribe(log, AdapterCrashed)
    assert rt.submit(limit("sv-once"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    crashed = log.wait_for(lambda evs: evs, what="AdapterCrashed")[0]
    assert crashed.orders_in_doubt == ("sv-once",)


def test_unclassified_adapter_exception_goes_unknown_without_a_crash(start, clock) -> None:
    venue = TestAdapter(script=["raise"], default="fill")
    rt = start(venue)
    report = rt.submit(limit("sv-bug"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.UNKNOWN and report.error.code is ErrorCode.E_EXEC_BROKER_TIMEOUT
    assert "RuntimeError" in report.error.message
    settle(rt)
    assert child(rt, "test").restarts == 0 and child(rt, "test").state == "running"


def test_crash_loop_on_start_gives_up(start, clock) -> None:
    venue = TestAdapter(start_failures=-1)
    rt = start(venue, supervisor={"max_restarts": 2, "within_s": 60.0, "backoff_initial_s": 0.01, "backoff_max_s": 0.1})
    log = EventLog()
    rt.subscribe(log, ChildGaveUp)
    for _ in range(2):
        restart_once(rt, clock)
    wait_until(lambda: child(rt, "test").state == "failed", what="the child to be given up")
    health = child(rt, "test")
    assert health.restarts == 2 and health.generation == 3
    assert "start-up" in health.last_failure or "scripted start-up failure" in health.last_failure
    assert venue.start_calls == 3
    gave_up = log.wait_for(lambda evs: evs, what="ChildGaveUp")[0]
    assert gave_up.child == "test" and gave_up.restarts == 2 and gave_up.within_s == 60.0
    report = rt.submit(limit("sv-gone"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.DENIED
    assert report.error.code is ErrorCode.E_EXEC_NO_ADAPTER and report.error.retryable is True
    assert venue.submit_calls == []
    # no further restarts are attempted
    clock.advance(10 * BACKOFF_MAX)
    settle(rt)
    assert child(rt, "test").state == "failed" and venue.start_calls == 3
    assert not rt.health().healthy


def test_crash_on_every_call_gives_up_and_orders_stay_unknown(start, clock) -> None:
    venue = TestAdapter(default="crash")
    rt = start(venue, supervisor={"max_restarts": 2, "within_s": 60.0})
    log = EventLog()
    rt.subscribe(log, (AdapterCrashed, ChildGaveUp))
    crashed = []
    for k in range(3):
        report = rt.submit(limit(f"sv-loop-{k}"), ctx()).result(timeout=5)
        assert report.status is OrderStatus.UNKNOWN and report.error.code is ErrorCode.E_EXEC_ADAPTER_CRASHED
        crashed.append(report.client_order_id)
        if k < 2:
            restart_once(rt, clock)
    wait_until(lambda: child(rt, "test").state == "failed", what="given up")
    log.wait_for(lambda evs: any(isinstance(e, ChildGaveUp) for e in evs), what="ChildGaveUp")
    assert [e.generation for e in log.of(AdapterCrashed)] == [1, 2, 3]
    after = rt.submit(limit("sv-loop-after"), ctx()).result(timeout=5)
    assert after.error.code is ErrorCode.E_EXEC_NO_ADAPTER
    # the orders that were inside the crashed adapter are UNKNOWN (never silently lost or guessed)
    assert all(rt.order(cl).status is OrderStatus.UNKNOWN for cl in crashed)
    assert venue.delivered == Counter()


def test_stale_failure_reports_are_ignored(start, clock) -> None:
    venue = TestAdapter(script=["crash"], default="fill")
    rt = start(venue)
    assert rt.submit(limit("sv-stale"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    restart_once(rt, clock)
    assert child(rt, "test").generation == 2
    # a late report about generation 1 (and one about a generation that never existed)
    rt.supervisor.tell(ChildFailed(child="test", generation=1, error="late report of g1"))
    rt.supervisor.tell(ChildFailed(child="test", generation=0, error="bogus"))
    settle(rt)
    health = child(rt, "test")
    assert (health.state, health.generation, health.restarts) == ("running", 2, 1)
    assert "late report" not in health.last_failure and "bogus" not in health.last_failure
    assert clock.live_timers(is_restart) == 0
    assert rt.submit(limit("sv-stale-after"), ctx()).result(timeout=5).status is OrderStatus.FILLED


def test_orders_during_restart_are_stashed_then_executed(start, clock) -> None:
    venue = TestAdapter(script=["crash"], default="fill")
    rt = start(venue, supervisor={"when_restarting": "stash", "backoff_initial_s": 0.01, "backoff_max_s": 0.1})
    assert rt.submit(limit("sv-s0"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    wait_until(lambda: child(rt, "test").state == "restarting", what="restarting")
    waiting = [rt.submit(limit(f"sv-s{k}"), ctx()) for k in range(1, 4)]
    # past risk (RESERVED) and held at the breaker; no barrier through the idempotency store here
    # (a ping queued behind a claim there strands it: see the xfail in test_idempotency)
    wait_until(lambda: all((o := rt.order(f"sv-s{k}")) is not None and o.status is OrderStatus.RESERVED
                           for k in range(1, 4)), what="the orders to reach the breaker")
    rt.breakers["test"].ask(_PING, timeout=5)
    assert not any(f.done() for f in waiting)
    assert venue.submit_calls == ["sv-s0"]
    clock.wait_timer(is_restart, what="the restart timer")
    clock.advance(BACKOFF_MAX)
    reports = [f.result(timeout=5) for f in waiting]
    assert [r.status for r in reports] == [OrderStatus.FILLED] * 3
    assert venue.submit_calls[1:4] == ["sv-s1", "sv-s2", "sv-s3"]  # in arrival order


def test_orders_during_restart_fail_fast(start, clock) -> None:
    venue = TestAdapter(script=["crash"], default="fill")
    rt = start(venue, supervisor={"when_restarting": "fail_fast"})
    assert rt.submit(limit("sv-f0"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    wait_until(lambda: child(rt, "test").state == "restarting", what="restarting")
    report = rt.submit(limit("sv-f1"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.DENIED
    assert report.error.code is ErrorCode.E_EXEC_NO_ADAPTER and report.error.retryable is True
    assert "restarting" in report.error.message
    restart_once(rt, clock)
    # the denied id was never sent and its claim was released: it can be sent now
    assert rt.submit(limit("sv-f1"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert venue.submit_calls.count("sv-f1") == 1


def test_stash_is_bounded(start, clock) -> None:
    venue = TestAdapter(script=["crash"], default="fill")
    rt = start(venue, supervisor={"when_restarting": "stash", "stash_size": 2})
    assert rt.submit(limit("sv-b0"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    wait_until(lambda: child(rt, "test").state == "restarting", what="restarting")
    futures = [rt.submit(limit(f"sv-b{k}"), ctx()) for k in range(1, 5)]
    over = [f.result(timeout=5) for f in futures[2:]]
    assert all(r.error.code is ErrorCode.E_EXEC_NO_ADAPTER and "stash is full" in r.error.message for r in over)
    assert not futures[0].done() and not futures[1].done()
    restart_once(rt, clock)
    assert futures[0].result(timeout=5).status is OrderStatus.FILLED
    assert futures[1].result(timeout=5).status is OrderStatus.FILLED


# --------------------------------------------------------------------------- faults, real clock


def test_every_intent_gets_exactly_one_final_report_through_faults(make_runtime) -> None:
    plan = FaultPlan(crash=0.05, transient=0.05, ambiguous=0.05, seed=3)
    rt = make_runtime(registry=default_registry(faults=plan),
                      # 5 restarts in 60 s (the default) would give the adapter up after ~100 orders
                      # at a 5% crash rate; this test is about every order's outcome, not the limit
                      supervisor={"max_restarts": 10_000, "within_s": 60.0})
    rt.on_market(quote(size="100000"))
    total = 200
    resolutions: Counter[str] = Counter()
    lock = threading.Lock()

    def count(cl: str):
        def cb(_f) -> None:
            with lock:
                resolutions[cl] += 1
        return cb

    futures = {}
    for k in range(total):
        cl = f"flt-{k}"
        fut = rt.submit(market(cl, side="BUY" if k % 2 else "SELL"), ctx())
        fut.add_done_callback(count(cl))
        futures[cl] = fut
    reports = {cl: f.result(timeout=30) for cl, f in futures.items()}
    wait_until(lambda: sum(resolutions.values()) == total, what="all done-callbacks")
    assert set(resolutions.values()) == {1}
    assert all(r.client_order_id == cl for cl, r in reports.items())
    by_status = Counter(r.status for r in reports.values())
    assert set(by_status) <= {OrderStatus.FILLED, OrderStatus.UNKNOWN, OrderStatus.FAILED, OrderStatus.DENIED}, by_status
    assert by_status[OrderStatus.UNKNOWN] > 0 and by_status[OrderStatus.FILLED] > 0  # the faults did happen
    for r in reports.values():
        if r.status is OrderStatus.UNKNOWN:
            assert r.error.code in (ErrorCode.E_EXEC_ADAPTER_CRASHED, ErrorCode.E_EXEC_BROKER_TIMEOUT)
    venue = rt.venue("paper")
    stats = venue.stats()
    # the seeded draws always put a crash among the first calls; how many calls follow depends on the breaker
    assert stats["crash"] > 0 and stats["calls"] >= stats["crash"] + stats["ambiguous"] + stats["transient"]
    # every UNKNOWN is reconciled in bounded time
    wait_until(lambda: rt.stats()["unknown_open"] == 0, timeout=30, what="every UNKNOWN order reconciled")

    def ledger_matches_venue() -> bool:  # resends still in flight settle
        orders = rt.orders()
        filled = {o.client_order_id for o in orders if o.status is OrderStatus.FILLED}
        return filled == set(venue.submission_counts()) and not any(o.status is OrderStatus.UNKNOWN for o in orders)

    wait_until(ledger_matches_venue, timeout=30, what="the ledger's FILLED orders to equal what the venue received")
    assert venue.duplicate_submissions() == 0
    counts = venue.submission_counts()
    assert counts and set(counts.values()) == {1}
    orders = {o.client_order_id: o for o in rt.orders()}
    assert set(orders) == set(futures)
    # (orders re-dispatched after a crash and then denied can stay SUBMITTING in the ledger: see
    # test_redispatched_order_denied_after_a_crash_leaves_the_ledger_consistent; never sent, so not asserted here)
    assert not any(o.status is OrderStatus.UNKNOWN for o in orders.values())
    # the books equal the venue's fills
    venue_qty = sum((Decimal(1 if orders[c].side.value == "BUY" else -1) * f.qty for c, f in venue.fill_records()), Decimal(0))
    assert {p.account_id: p.net_qty for p in rt.positions()} == {"acc-1": venue_qty}
    # the venue's own book, read past the fault plan: its reads draw transient faults too, from a stream
    # whose position depends on how many lookups reconciliation made (timing), so a read here could fail
    assert venue.inner.fetch_positions("acc-1") == {"BTC/USDT": venue_qty}
    ledger = rt.stats()
    assert ledger["book_invariants"] == [] and ledger["overfills"] == 0


# regression (found by this suite, fixed in actors/): an order queued on the venue worker (ledger: SUBMITTING)
# when the adapter dies is re-dispatched with attempt=0; a denial then (DENIED) is illegal from SUBMITTING, so
# the ledger keeps it SUBMITTING forever (actors.execution.adapter.failure_details unpicked calls /
# actors.breaker.actor._deny)
def test_redispatched_order_denied_after_a_crash_leaves_the_ledger_consistent(start, clock) -> None:
    venue = TestAdapter(script=[("block", "fill")], default="fill")
    rt = start(venue, supervisor={"max_restarts": 0})
    a = rt.submit(limit("sv-rd-a"), ctx())
    assert venue.wait_blocked(1)  # A hangs inside the venue
    b = rt.submit(limit("sv-rd-b"), ctx())
    wait_until(lambda: (o := rt.order("sv-rd-b")) is not None and o.status is OrderStatus.SUBMITTING,
               what="B handed to the venue worker, queued behind A")
    clock.advance(30.0)  # A times out; the adapter actor crashes and is given up (max_restarts=0)
    assert a.result(timeout=5).status is OrderStatus.UNKNOWN
    report = b.result(timeout=5)
    assert report.status in (OrderStatus.DENIED, OrderStatus.FAILED) and report.error.code is ErrorCode.E_EXEC_NO_ADAPTER
    assert venue.submit_count("sv-rd-b") == 0  # provably never sent
    settle(rt)
    assert rt.order("sv-rd-b").status is report.status
