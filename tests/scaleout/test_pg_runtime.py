"""Several runtimes on one PostgreSQL journal (``journal.url``): what each sees of the others' orders."""

from __future__ import annotations

import threading
from decimal import Decimal

import psycopg
import pytest
from _adapters import TestAdapter
from conftest import ctx, limit, market, quote, registry_of, wait_until

from protocols import ErrorCode, OrderStatus


@pytest.fixture
def pg_runtime(make_runtime, pg_url):
    """``make(**overrides)``: a durable runtime on the test's PostgreSQL database, own state dir."""

    def make(*, journal=None, **kwargs):
        return make_runtime(durable=True, journal={"url": pg_url, **(journal or {})}, **kwargs)

    return make


def test_a_duplicate_sent_to_another_process_is_replayed_or_refused(pg_runtime) -> None:
    a, b = pg_runtime(), pg_runtime()
    for rt in (a, b):
        rt.on_market(quote())
    first = a.submit(market("x-1"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.FILLED
    a.flush()  # the completion is committed
    replay = b.submit(market("x-1"), ctx()).result(timeout=5)
    assert replay.replay is True and replay.status is OrderStatus.FILLED
    conflict = b.submit(market("x-1", qty="0.002"), ctx()).result(timeout=5)
    assert conflict.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT
    b.flush()
    # one paper book for both (paper.shared_book): it saw x-1 once, whichever process asks
    assert a.venue("paper").submission_counts() == b.venue("paper").submission_counts() == {"x-1": 1}


def test_an_id_another_account_holds_in_another_process_is_refused(pg_runtime) -> None:
    """Process a trades x-acct for acc-1; process b is asked for x-acct under acc-2: another key, so
    no replay, but the id is acc-1's across the fleet (a venue sees the id, not the account). b's
    idempotency store refuses it; b's ledger never knew the id, so nothing else would have."""
    a, b = pg_runtime(), pg_runtime()
    for rt in (a, b):
        rt.on_market(quote())
    assert a.submit(limit("x-acct", price="30000"), ctx(account="acc-1")).result(timeout=5).status is OrderStatus.ACCEPTED
    other = b.submit(limit("x-acct", price="30000"), ctx(account="acc-2")).result(timeout=5)
    assert other.status is OrderStatus.DENIED and other.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT
    assert "held by another account" in other.error.message
    b.flush()
    assert b.stats()["journal"]["conflicts"] == 1
    assert a.venue("paper").submission_counts() == {"x-acct": 1}
    assert a.order("x-acct").status is OrderStatus.ACCEPTED


def test_a_duplicate_in_flight_elsewhere_is_refused_in_flight(pg_runtime) -> None:
    venue = TestAdapter("paper", script=[("block", "fill")])
    a = pg_runtime(registry=registry_of(venue), routing={"policy": {"paper": "paper"}})
    b = pg_runtime()
    fut = a.submit(limit("x-2"), ctx())
    assert venue.wait_blocked(1)
    dup = b.submit(limit("x-2"), ctx()).result(timeout=5)
    assert dup.error.code is ErrorCode.E_EXEC_DUPLICATE_IN_FLIGHT
    venue.release()
    assert fut.result(timeout=5).status is OrderStatus.FILLED
    assert venue.submit_count("x-2") == 1


def test_concurrent_duplicates_across_two_processes_send_once(pg_runtime) -> None:
    a, b = pg_runtime(), pg_runtime()
    for rt in (a, b):
        rt.on_market(quote())
    ids = [f"burst-{i}" for i in range(40)]
    futures: list = []
    lock = threading.Lock()

    def send(rt) -> None:
        mine = [rt.submit(market(i), ctx()) for i in ids]
        with lock:
            futures.extend(mine)

    threads = [threading.Thread(target=send, args=(rt,)) for rt in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reports = [f.result(timeout=10) for f in futures]
    fresh = [r for r in reports if r.status is OrderStatus.FILLED and not r.replay]
    assert sorted(r.client_order_id for r in fresh) == sorted(ids)  # each id executed exactly once
    for r in reports:
        assert r in fresh or r.replay or r.error.code is ErrorCode.E_EXEC_DUPLICATE_IN_FLIGHT
    a.flush()
    b.flush()
    # one paper book for both processes (paper.shared_book): every id reached it once in total
    assert a.venue("paper").submission_counts() == b.venue("paper").submission_counts() == {i: 1 for i in ids}


@pytest.mark.parametrize("url, cause", [
    ("postgresql://postgres@/postgres?host=/nonexistent-dir", "cannot reach the PostgreSQL server"),
    ("mysql://x@y/z", "must be a postgresql:// URL"),
])
def test_a_bad_journal_url_is_a_clear_start_error(make_runtime, url: str, cause: str) -> None:
    with pytest.raises(ValueError, match=cause):
        make_runtime(durable=True, journal={"url": url, "connect_timeout_s": 1})


def test_a_missing_database_is_a_clear_start_error(make_runtime, pg_cluster) -> None:
    with pytest.raises(ValueError, match=r"runtime refused to start: .*database does not exist"):
        make_runtime(durable=True, journal={"url": pg_cluster.url(dbname="nope")})


def test_a_survivor_takes_over_a_dead_process_orders_and_reconciles_them(pg_runtime, pg_url) -> None:
    """Process A dies with an order sent but unanswered; B starts after A's lease expired, takes the
    order over and asks the venue, which has it: B adopts the fill. The venue saw it once."""
    venue = TestAdapter("paper", script=[("block", "fill")])
    a = pg_runtime(registry=registry_of(venue), routing={"policy": {"paper": "paper"}}, journal={"lease_s": 0.3})
    a.submit(limit("x-dead"), ctx())
    assert venue.wait_blocked(1)
    a.pg._stop.set()  # A "dies": its lease is no longer renewed and it writes nothing more
    a.pg._pool, pool = None, a.pg._pool
    venue.release()   # the venue filled it, but A never journals the answer
    with psycopg.connect(pg_url) as conn:
        wait_until(lambda: conn.execute("SELECT lease_until < clock_timestamp() FROM flowroute.owners "
                                        "WHERE owner_id = %s", (a.pg.owner_id,)).fetchone()[0], what="A's lease to expire")
    b = pg_runtime(registry=registry_of(venue), routing={"policy": {"paper": "paper"}})
    assert b.recovery is not None and b.recovery.counts() == {"reconciled": 1}
    wait_until(lambda: b.order("x-dead") is not None and b.order("x-dead").status is OrderStatus.FILLED,
               what="B to adopt the fill")
    assert venue.submit_count("x-dead") == 1
    assert b.pg.journal().owner_of("acc-1", "x-dead") == b.pg.owner_id
    replay = b.submit(limit("x-dead"), ctx()).result(timeout=5)
    assert replay.replay and replay.status is OrderStatus.FILLED
    a.pg._pool = pool


def test_a_budget_is_never_overbooked_by_two_processes_racing(pg_runtime, pg_url) -> None:
    """Budget 1000 for acc-1; resting BUY limits of 0.001 at 39000 reserve 39 each, so 25 fit (975)
    and the 26th would overbook. Two processes race 30 orders each: exactly 25 are admitted in total
    (each process alone would admit 25: without the shared row it would be 50)."""
    budget = {"budgets": {"acc-1": "1000"}}
    a, b = pg_runtime(risk=budget), pg_runtime(risk=budget)
    for rt in (a, b):
        rt.on_market(quote())
    results: dict[str, list] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def send(name, rt) -> None:
        start.wait()
        futures = [rt.submit(limit(f"{name}-{i}", price="39000"), ctx()) for i in range(30)]
        results[name] = [f.result(timeout=10) for f in futures]

    threads = [threading.Thread(target=send, args=(n, rt)) for n, rt in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reports = results["a"] + results["b"]
    admitted = [r for r in reports if r.status is OrderStatus.ACCEPTED]
    denied = [r for r in reports if r.status is OrderStatus.DENIED]
    assert len(admitted) == 25 and len(denied) == 35, [(r.status, r.error) for r in reports][:5]
    assert all(r.error.code is ErrorCode.E_EXEC_RISK_DENIED and "budget" in r.error.message for r in denied)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT reserved, spent FROM flowroute.budget_accounts WHERE account_id = 'acc-1'"
                            ).fetchone() == (Decimal("975.000"), 0)
    # cancels free the shared reservations (flushed with the ledger's batch): the room is back for both
    for r in admitted:
        (a if r.client_order_id.startswith("a-") else b).cancel(r.client_order_id, "acc-1").result(timeout=5)
    for rt in (a, b):
        rt.flush()
    with psycopg.connect(pg_url) as conn:
        wait_until(lambda: conn.execute("SELECT reserved FROM flowroute.budget_accounts WHERE account_id = 'acc-1'"
                                        ).fetchone()[0] == 0, what="the releases to reach the shared row")
    assert b.submit(limit("b-after", price="39000"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED


def test_shared_fills_count_as_spent_for_every_process(pg_runtime, pg_url) -> None:
    budget = {"budgets": {"acc-1": "100"}}
    a, b = pg_runtime(risk=budget), pg_runtime(risk=budget)
    for rt in (a, b):
        rt.on_market(quote())
    assert a.submit(market("m-1", qty="0.002"), ctx()).result(timeout=5).status is OrderStatus.FILLED  # ~78.9 spent
    a.flush()
    with psycopg.connect(pg_url) as conn:
        wait_until(lambda: conn.execute("SELECT reserved FROM flowroute.budget_accounts WHERE account_id = 'acc-1'"
                                        ).fetchone()[0] == 0, what="the true-up to reach the shared row")
        reserved, spent = conn.execute("SELECT reserved, spent FROM flowroute.budget_accounts").fetchone()
    assert spent > Decimal("78") and reserved == 0
    second = b.submit(market("m-2", qty="0.001"), ctx()).result(timeout=5)  # 39.4 more would pass 100
    assert second.status is OrderStatus.DENIED and "all processes" in second.error.message


def _max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_two_processes_share_one_rate_limit_per_venue_key(pg_runtime) -> None:
    """10 calls per 0.5 s for the venue key "k1"; two processes send 20 orders each at once. Every
    rolling 0.5 s holds at most 10 venue calls of both together (each alone would allow 10: 20)."""
    import time

    calls: list[float] = []
    lock = threading.Lock()

    def venue(name: str) -> TestAdapter:
        v = TestAdapter("paper")

        def record(order) -> None:
            with lock:
                calls.append(time.monotonic())

        v.on_submit = record
        return v

    throttle = {"max_calls": 10, "window_s": 0.5, "venue_key": "k1"}
    a = pg_runtime(registry=registry_of(venue("a")), routing={"policy": {"paper": "paper"}}, throttle=throttle,
                   timeouts={"attempt_s": 2.0, "deadline_s": 30.0})
    b = pg_runtime(registry=registry_of(venue("b")), routing={"policy": {"paper": "paper"}}, throttle=throttle,
                   timeouts={"attempt_s": 2.0, "deadline_s": 30.0})
    futures = [rt.submit(limit(f"{n}-{i}"), ctx()) for i in range(20) for n, rt in (("a", a), ("b", b))]
    reports = [f.result(timeout=30) for f in futures]
    assert all(r.status is OrderStatus.FILLED for r in reports), {r.status for r in reports}
    assert len(calls) == 40
    # a grant is used within its ttl of being asked for, so calls can sit up to a few ms inside the window's edge
    assert _max_in_window(calls, 0.5 - 0.02) <= 10, sorted(calls)


def test_a_share_caps_one_process(pg_runtime, pg_url) -> None:
    from actors.journal.pg_throttle import SharedThrottle

    rt = pg_runtime()
    t = SharedThrottle(rt.pg, "k2", max_calls=10, window_s=30.0, share=0.3)
    try:
        for _ in range(3):
            wait_until(lambda: t.try_admit() is None, what="a call within the share")
        start, extra = t.db_calls, []

        def asked_again() -> bool:
            if t.try_admit() is None:
                extra.append(1)
            return t.db_calls >= start + 3

        wait_until(asked_again, what="three more grant requests")
        assert t.cap == 3 and extra == []  # 30 % of 10 in a 30 s window, however often it asks
        other = SharedThrottle(rt.pg, "k2", max_calls=10, window_s=30.0, share=1.0)
        try:  # another process still has the rest of the window
            for _ in range(7):
                wait_until(lambda: other.try_admit() is None, what="a call in the rest of the window")
        finally:
            other.close()
    finally:
        t.close()


def test_a_running_survivor_adopts_a_dead_peer_orders_and_never_resends(pg_runtime, pg_url) -> None:
    """B is running when A dies: B's takeover loop adopts A's orders once A's lease expired. The
    one the venue has is adopted FILLED; the one A claimed but never sent is proven absent by
    the venue's lookup (OrderLookup.absent) and becomes FAILED "never delivered": never re-sent."""
    venue = TestAdapter("paper", script=[("block", "fill")])
    policy = {"policy": {"paper": "paper"}}
    b = pg_runtime(registry=registry_of(venue), routing=policy, journal={"lease_s": 0.4})
    a = pg_runtime(registry=registry_of(venue), routing=policy, journal={"lease_s": 0.4})
    a.submit(limit("x-sent"), ctx())
    assert venue.wait_blocked(1)
    # A also claimed x-unsent, then died before sending it (written as A's claim would be)
    unsent = limit("x-unsent")
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO flowroute.idempotency VALUES ('acc-1', 'x-unsent', %s, 'IN_PROGRESS', NULL, 1.0, 1.0, %s, %s, "
            "'paper', %s)", (unsent.fingerprint(), unsent.model_dump_json(), ctx().model_dump_json(), a.pg.owner_id))
    a.pg._stop.set()  # A "dies": no lease renewal, no more writes
    a._takeover.close()
    a.pg._pool, pool = None, a.pg._pool
    venue.release()  # the venue filled x-sent; A never journals it
    wait_until(lambda: b.order("x-sent") is not None and b.order("x-sent").status is OrderStatus.FILLED,
               what="B to adopt x-sent as FILLED")
    wait_until(lambda: b.order("x-unsent") is not None and b.order("x-unsent").status is OrderStatus.FAILED,
               what="B to find x-unsent absent")
    assert "never delivered" in b.order("x-unsent").error.message
    assert venue.submit_count("x-sent") == 1 and venue.submit_count("x-unsent") == 0
    assert b._takeover.adopted == 2
    assert b.pg.journal().owner_of("acc-1", "x-sent") == b.pg.owner_id
    a.pg._pool = pool


def test_a_stopped_process_finished_orders_stay_its_own(pg_runtime) -> None:
    """A fills an order and stops cleanly (its lease ends); B starts: it takes nothing over, so B's
    books stay its own and equal its own venue's (found by the stress run: adopting A's finished
    orders put A's fills into B's positions)."""
    a = pg_runtime()
    a.on_market(quote())
    assert a.submit(market("done-1"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    a.flush()
    a.stop()
    b = pg_runtime()
    assert b.recovery is not None and b.recovery.orders == []
    assert b.positions() == () and b.order("done-1") is None


def test_a_process_that_lost_its_lease_halts(pg_runtime, pg_url) -> None:
    """A stalled past its lease and a survivor took its orders over (its owner row is gone): at its
    next renewal A finds out and halts trading, so two processes never act for one order."""
    a = pg_runtime(journal={"lease_s": 0.3})
    a.on_market(quote())
    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM flowroute.owners WHERE owner_id = %s", (a.pg.owner_id,))  # as a takeover does
    wait_until(lambda: a.pg.lease_lost, what="A to notice")
    wait_until(lambda: a.submit(market(), ctx()).result(timeout=5).status is OrderStatus.DENIED, what="A to halt")
    denied = a.submit(market(), ctx()).result(timeout=5)
    assert "trading_halted" in denied.error.message


def test_a_ledger_restarted_while_running_rebuilds_from_the_postgresql_journal(pg_runtime) -> None:
    """The supervisor's ledger restart reads the shared journal (this owner's orders) like start-up
    recovery does (docs/DESIGN.md "Failure handling")."""
    from conftest import ObservableClock, child

    from actors.orders.messages import SetTradingState

    clock = ObservableClock()
    venue = TestAdapter(default="fill")
    rt = pg_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}})
    rt.on_market(quote())
    before = rt.submit(market("pg-lr-1"), ctx()).result(timeout=10)
    assert before.status is OrderStatus.FILLED
    rt.ledger.tell(SetTradingState("BOGUS"))  # the handler raises: the ledger crashes
    wait_until(lambda: child(rt, "ledger").state == "restarting", what="the ledger restarting")
    clock.wait_timer(lambda delay: delay < 0.5, what="the ledger's restart timer")
    clock.advance(0.5)
    wait_until(lambda: child(rt, "ledger").state == "running" and child(rt, "ledger").generation == 2,
               what="the ledger running again")
    rebuilt = rt.order("pg-lr-1")
    assert (rebuilt.status, rebuilt.cum_qty, rebuilt.fills) == (before.status, before.cum_qty, before.fills)
    assert rt.submit(market("pg-lr-2"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    assert venue.delivered_count("pg-lr-1") == 1 and venue.delivered_count("pg-lr-2") == 1
