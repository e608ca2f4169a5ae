"""Idempotency and persist-before-submit (docs/DESIGN.md, Durability), runtime level, over both durable journals:
a real SQLite file and a real PostgreSQL database (``pg_url``: a throwaway cluster)."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from decimal import Decimal
from pathlib import Path

import pytest
from _adapters import TestAdapter
from conftest import ctx, limit, market, quote, registry_of, wait_until

from actors import FakeClock
from actors.testing import inject_journal_failure
from protocols import ErrorCode, OrderStatus


def journal_row(rt, account_id: str, client_order_id: str) -> tuple | None:
    """(status, fingerprint) of the idempotency record, read through a separate connection."""
    if rt.pg is not None:
        import psycopg

        with psycopg.connect(rt.settings.journal.url) as pg:
            return pg.execute("SELECT status, fingerprint FROM flowroute.idempotency WHERE account_id = %s "
                              "AND client_order_id = %s", (account_id, client_order_id)).fetchone()
    conn = sqlite3.connect(f"file:{rt.journal_path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT status, fingerprint FROM idempotency WHERE account_id = ? AND client_order_id = ?",
                            (account_id, client_order_id)).fetchone()
    finally:
        conn.close()


FULL = {"synchronous": "FULL"}  # the default: a real, durable SQLite journal file


@pytest.fixture(params=["sqlite", "postgresql"])
def make_runtime(request, make_runtime):
    """conftest's ``make_runtime``, once with the SQLite journal and once with ``journal.url`` set."""
    if request.param == "sqlite":
        return make_runtime
    url = request.getfixturevalue("pg_url")

    def make(*args, journal=None, **kwargs):
        return make_runtime(*args, journal={**(journal or {}), "url": url}, **kwargs)

    return make


@pytest.fixture
def paper_rt(make_runtime):
    rt = make_runtime(durable=True, journal=FULL)
    rt.on_market(quote())
    return rt


def test_repeat_after_completion_is_a_replay_and_the_venue_saw_it_once(paper_rt) -> None:
    rt = paper_rt
    first = rt.submit(market("idem-1"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.FILLED and not first.replay
    second = rt.submit(market("idem-1"), ctx()).result(timeout=5)
    assert second.replay is True
    assert second.status is OrderStatus.FILLED
    assert second.fills == first.fills and second.cum_qty == first.cum_qty and second.avg_px == first.avg_px
    assert second.venue_order_id == first.venue_order_id
    # a third time, equal in every economic field but written differently (1E-3 vs 0.001)
    third = rt.submit(market("idem-1", qty="1E-3"), ctx()).result(timeout=5)
    assert third.replay is True and third.fills == first.fills
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"idem-1": 1}
    assert len(rt.venue("paper").fill_records()) == 1
    assert rt.stats()["journal"]["replays"] == 2
    assert journal_row(rt, "acc-1", "idem-1")[0] == "COMPLETED"


def _another_accounts_id_is_refused_by_the_store(rt) -> None:
    a = rt.submit(market("idem-acct"), ctx(account="acc-1")).result(timeout=5)
    resting = rt.submit(limit("idem-open", price="30000"), ctx(account="acc-1")).result(timeout=5)
    assert a.status is OrderStatus.FILLED and not a.replay and resting.status is OrderStatus.ACCEPTED
    for coid in ("idem-acct", "idem-open"):  # an id another account holds, whatever its order's status
        b = rt.submit(market(coid), ctx(account="acc-2")).result(timeout=5)
        # the key differs, so this is no replay; but a venue knows the id already, so it is never sent again
        assert not b.replay
        assert b.status is OrderStatus.DENIED and b.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT
        assert "held by another account" in b.error.message and "acc-1" not in b.error.message
    rt.flush()
    assert rt.stats()["journal"]["conflicts"] == 2  # the idempotency store refused them, the one owner
    assert rt.venue("paper").submission_counts() == {"idem-acct": 1, "idem-open": 1}
    assert rt.venue("paper").duplicate_submissions() == 0
    assert rt.order("idem-acct").account_id == "acc-1"
    assert rt.order("idem-open").account_id == "acc-1" and rt.order("idem-open").status is OrderStatus.ACCEPTED
    # the holder's own replay is unchanged
    assert rt.submit(market("idem-acct"), ctx(account="acc-1")).result(timeout=5).replay is True


def test_an_id_another_account_holds_is_refused_by_the_store(paper_rt) -> None:
    _another_accounts_id_is_refused_by_the_store(paper_rt)


def test_an_id_another_account_holds_is_refused_with_the_journal_off(settings_factory) -> None:
    """The memory journal (journal.enabled = false) keeps one account per id too (run once: the
    module's ``make_runtime`` runs per durable backend)."""
    from actors import Runtime

    rt = Runtime.start(settings_factory(durable=False))
    try:
        rt.on_market(quote())
        _another_accounts_id_is_refused_by_the_store(rt)
    finally:
        rt.stop(timeout=5.0)


def test_the_ledger_keeps_only_an_internal_guard_for_ids(paper_rt) -> None:
    """The ledger is no second owner of duplicate ids: an order that reaches it around the store
    (a bug) for an id it holds open is refused E_EXEC_INTERNAL, not as a duplicate, and the open
    order is untouched; nothing is sent."""
    from concurrent.futures import Future

    from actors.kernel.base import tell
    from actors.orders.messages import SubmitOrder

    rt = paper_rt
    assert rt.submit(limit("idem-guard", price="30000"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    peers = rt._view.current()
    adapter_id, breaker = peers.routes.lookup("paper")
    reply: Future = Future()
    assert tell(rt.ledger, SubmitOrder(limit("idem-guard", price="30000"), ctx(account="acc-2"), reply, 0, adapter_id, breaker))
    report = reply.result(timeout=5)
    assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_INTERNAL
    assert "idem-guard" in report.error.message
    rt.flush()
    order = rt.order("idem-guard")
    assert (order.account_id, order.status) == ("acc-1", OrderStatus.ACCEPTED)
    assert rt.venue("paper").submission_counts() == {"idem-guard": 1}


def test_different_intent_same_key_is_a_conflict(paper_rt) -> None:
    rt = paper_rt
    first = rt.submit(market("idem-2"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.FILLED
    for other in (market("idem-2", side="SELL"), market("idem-2", qty="0.002"), limit("idem-2")):
        report = rt.submit(other, ctx()).result(timeout=5)
        assert report.status is OrderStatus.DENIED
        assert report.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT
        assert "idem-2" in report.error.message
        assert report.replay is False
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"idem-2": 1}
    # the original order is untouched by the conflicts
    assert rt.order("idem-2").status is OrderStatus.FILLED
    assert rt.order("idem-2").side.value == "BUY"


def test_repeat_while_in_flight_is_duplicate_in_flight(make_runtime) -> None:
    venue = TestAdapter("paper", script=[("block", "fill")])
    rt = make_runtime(durable=True, journal=FULL, registry=registry_of(venue), routing={"policy": {"paper": "paper"}})
    fut = rt.submit(limit("idem-3"), ctx())
    assert venue.wait_blocked(1)
    dup = rt.submit(limit("idem-3"), ctx()).result(timeout=5)
    assert dup.status is OrderStatus.DENIED
    assert dup.error.code is ErrorCode.E_EXEC_DUPLICATE_IN_FLIGHT and dup.error.retryable is True
    assert not fut.done()
    assert journal_row(rt, "acc-1", "idem-3")[0] == "IN_PROGRESS"
    venue.release()
    final = fut.result(timeout=5)
    assert final.status is OrderStatus.FILLED
    assert venue.submit_count("idem-3") == 1 and venue.delivered_count("idem-3") == 1
    # the duplicate's denial did not disturb the original order's record
    rt.flush()
    assert rt.order("idem-3").status is OrderStatus.FILLED
    replay = rt.submit(limit("idem-3"), ctx()).result(timeout=5)
    assert replay.replay and replay.status is OrderStatus.FILLED
    assert journal_row(rt, "acc-1", "idem-3")[0] == "COMPLETED"
    assert venue.submit_count("idem-3") == 1


def test_many_concurrent_duplicates_send_once(paper_rt) -> None:
    rt = paper_rt
    futures = [rt.submit(market("idem-burst"), ctx()) for _ in range(50)]
    reports = [f.result(timeout=10) for f in futures]
    filled_fresh = [r for r in reports if r.status is OrderStatus.FILLED and not r.replay]
    assert len(filled_fresh) == 1
    for r in reports:
        assert (r.status is OrderStatus.FILLED and (r.replay or r is filled_fresh[0])) or \
            r.error.code is ErrorCode.E_EXEC_DUPLICATE_IN_FLIGHT
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"idem-burst": 1}


def test_expired_record_is_never_sent_twice(make_runtime) -> None:
    """TTL (observed behaviour): once a completed record is older than ``ttl_s``, the key is reclaimed,
    but an id that already reached a venue is refused (E_EXEC_IDEMPOTENCY_CONFLICT, "use a new id")
    instead of being replayed or re-sent: the venue never sees it twice and never fills it twice."""
    rt = make_runtime(durable=True, journal=FULL, idempotency={"ttl_s": 0.001})
    rt.on_market(quote())
    first = rt.submit(market("idem-ttl"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.FILLED
    rt.flush()
    done_at = time.time()
    wait_until(lambda: time.time() > done_at + 0.01, what="the TTL to pass")  # wall-clock TTL (checked on read)
    again = rt.submit(market("idem-ttl"), ctx()).result(timeout=5)
    assert again.replay is False
    assert again.status is OrderStatus.DENIED
    assert again.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT
    assert "expired" in again.error.message
    rt.flush()
    venue = rt.venue("paper")
    assert venue.submission_counts() == {"idem-ttl": 1}
    fills = [f for c, f in venue.fill_records() if c == "idem-ttl"]
    assert sum(f.qty for f in fills) == Decimal("0.001")
    assert venue.duplicate_submissions() == 0
    assert rt.order("idem-ttl").status is OrderStatus.FILLED


def test_expired_denial_can_be_reused(make_runtime) -> None:
    """An id whose only outcome was a denial before any venue call may be used again after the TTL."""
    rt = make_runtime(durable=True, journal=FULL, idempotency={"ttl_s": 0.001})
    rt.on_market(quote())
    denied = rt.submit(market("idem-ttl-d", qty="0.00001"), ctx()).result(timeout=5)  # 0.39 USDT < min notional
    assert denied.error.code is ErrorCode.E_EXEC_RISK_DENIED
    rt.flush()
    done_at = time.time()
    wait_until(lambda: time.time() > done_at + 0.01, what="the TTL to pass")
    ok = rt.submit(market("idem-ttl-d"), ctx()).result(timeout=5)
    assert ok.status is OrderStatus.FILLED and not ok.replay, ok.error
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"idem-ttl-d": 1}


def test_ttl_runs_on_the_runtimes_clock(make_runtime) -> None:
    """The TTL is measured on the injected clock, not ``time.time()``: a FakeClock advanced past
    ``ttl_s`` expires the record at once (no sleep); before that, the same id replays."""
    clock = FakeClock()
    rt = make_runtime(durable=True, journal=FULL, idempotency={"ttl_s": 60.0}, clock=clock)
    rt.on_market(quote())
    first = rt.submit(market("idem-fake-ttl"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.FILLED
    rt.flush()
    clock.advance(59.0)
    assert rt.submit(market("idem-fake-ttl"), ctx()).result(timeout=5).replay is True
    clock.advance(2.0)  # 61 s on the runtime's clock, a few ms of real time
    again = rt.submit(market("idem-fake-ttl"), ctx()).result(timeout=5)
    assert again.replay is False
    assert again.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT and "expired" in again.error.message
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"idem-fake-ttl": 1}


def test_within_ttl_a_denial_replays(paper_rt) -> None:
    rt = paper_rt
    denied = rt.submit(market("idem-den", qty="0.00001"), ctx()).result(timeout=5)
    assert denied.error.code is ErrorCode.E_EXEC_RISK_DENIED and "min_notional" in denied.error.message
    again = rt.submit(market("idem-den", qty="0.00001"), ctx()).result(timeout=5)
    assert again.replay is True and again.error.code is ErrorCode.E_EXEC_RISK_DENIED


def test_journal_failure_fails_closed_and_the_next_order_works(paper_rt) -> None:
    rt = paper_rt
    rt.flush()
    inject_journal_failure(rt, 1)
    failed = rt.submit(market("idem-jf"), ctx()).result(timeout=5)
    assert failed.status is OrderStatus.DENIED
    assert failed.error.code is ErrorCode.E_EXEC_PERSISTENCE and failed.error.retryable is True
    rt.flush()
    assert rt.venue("paper").submission_counts() == {}
    assert journal_row(rt, "acc-1", "idem-jf") is None
    nxt = rt.submit(market("idem-jf-2"), ctx()).result(timeout=5)
    assert nxt.status is OrderStatus.FILLED
    # the failed id was never claimed, so it can be submitted again and now goes through
    retry = rt.submit(market("idem-jf"), ctx()).result(timeout=5)
    assert retry.status is OrderStatus.FILLED and not retry.replay
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"idem-jf-2": 1, "idem-jf": 1}
    assert rt.stats()["journal"]["persistence_failures"] == 1


def test_journal_files_are_owner_only(paper_rt) -> None:
    rt = paper_rt
    if rt.pg is not None:
        pytest.skip("the journal is a PostgreSQL database: no journal file")
    rt.submit(market("idem-mode"), ctx()).result(timeout=5)
    rt.flush()
    path = Path(rt.journal_path)
    assert path.parent == Path(rt.settings.state_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            assert stat.S_IMODE(os.stat(side).st_mode) == 0o600, side
    if rt.audit_path is not None and Path(rt.audit_path).exists():
        assert stat.S_IMODE(os.stat(rt.audit_path).st_mode) == 0o600


def test_record_is_durable_before_the_venue_call(make_runtime) -> None:
    venue = TestAdapter("paper")
    rt = make_runtime(durable=True, journal=FULL, registry=registry_of(venue), routing={"policy": {"paper": "paper"}})
    seen: list[tuple] = []
    venue.on_submit = lambda order: seen.append(
        (order.client_order_id, journal_row(rt, order.account_id, order.client_order_id)))
    intents = [limit(f"idem-pbs-{k}") for k in range(5)]
    futures = [rt.submit(i, ctx()) for i in intents]
    reports = [f.result(timeout=5) for f in futures]
    assert venue.hook_errors == []
    assert all(r.status is OrderStatus.FILLED for r in reports)
    assert sorted(c for c, _ in seen) == sorted(i.client_order_id for i in intents)
    by_id = {i.client_order_id: i for i in intents}
    for cl, row in seen:
        assert row is not None, f"no journal record for {cl} when the venue was called"
        assert row == ("IN_PROGRESS", by_id[cl].fingerprint())


# regression (found by this suite, fixed in actors/): a claim followed in the inbox by a non-journal message
# (rt.flush ping, rt.stats) is never committed, so the order hangs (actors.idempotency.store._maybe_flush)
def test_claim_is_committed_even_when_a_query_is_queued_behind_it(make_runtime) -> None:
    """Deterministic version of a race: hold the journal's write lock so the idempotency actor
    is busy, queue order B and then a barrier ping behind it, release the lock: B must still go out."""
    from actors.runtime.runtime import _PING

    rt = make_runtime(durable=True, journal=FULL)
    rt.on_market(quote())
    assert rt.submit(market("idem-warm"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    # order A is a repeat of idem-warm: a replay answered by the store itself, so nothing that
    # happens after it (no completion, no venue answer) sends the store another journal message
    if rt.pg is not None:  # PostgreSQL: a table lock held by another connection blocks the next claim
        import psycopg

        locker = psycopg.connect(rt.settings.journal.url)
        locker.execute("LOCK TABLE flowroute.idempotency IN EXCLUSIVE MODE")
    else:
        locker = sqlite3.connect(rt.journal_path, isolation_level=None, timeout=5)
        locker.execute("BEGIN IMMEDIATE")  # the actor's next claim waits in SQLite's busy handler
    try:
        a = rt.submit(market("idem-warm"), ctx())
        rt.router.ask(_PING, timeout=5)
        wait_until(lambda: rt.idempotency.actor_inbox.qsize() == 0, what="the store to pick up order A")
        b = rt.submit(market("idem-b"), ctx())
        rt.router.ask(_PING, timeout=5)  # B is now queued at the store, behind nothing
        barrier = rt.idempotency.ask(_PING, block=False)  # ... and this query behind B
    finally:
        locker.rollback() if rt.pg is not None else locker.execute("ROLLBACK")
        locker.close()
    assert a.result(timeout=5).replay is True
    barrier.get(timeout=5)
    assert b.result(timeout=3).status is OrderStatus.FILLED


def test_an_id_refused_after_its_ttl_stays_refused_at_every_later_reuse(make_runtime) -> None:
    """The refusal of an expired id that reached a venue is itself journaled (the record now caches
    that DENIED conflict report); a reuse after the next TTL must be refused again, not taken for an
    id that never left (the store's rule, ``EXPIRED_RECLAIMED``): the venue sees it once, ever."""
    clock = FakeClock()
    rt = make_runtime(durable=True, journal=FULL, idempotency={"ttl_s": 60.0}, clock=clock)
    rt.on_market(quote())
    assert rt.submit(market("idem-thrice"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    for _ in range(3):
        rt.flush()
        clock.advance(61.0)
        again = rt.submit(market("idem-thrice"), ctx()).result(timeout=5)
        assert again.status is OrderStatus.DENIED and again.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT, again
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"idem-thrice": 1}
