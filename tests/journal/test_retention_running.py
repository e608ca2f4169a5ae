"""Retention while the runtime runs, on both journals (actors/audit/retention.py; README "Features"):
every ``[retention] interval_s`` of the runtime's clock the ledger archives and prunes what is past
its keep time — audit lines, the journal's terminal orders (SQLite files or the PostgreSQL tables) —
as a start does; and nothing the idempotency guarantee still needs is pruned: the record of an order
that reached a venue stays (retired), so its id is refused at every later reuse, also after a
restart; only an id that never left may be used again."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ctx, limit, market, quote, settle, wait_until

from actors import FakeClock
from actors.audit import retention
from actors.audit.log import audit_segments, verify
from protocols import ErrorCode, OrderStatus

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request) -> dict:
    """The journal settings: the SQLite files, or ``journal.url`` on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {"synchronous": "NORMAL"}
    return {"url": request.getfixturevalue("pg_url")}


def _archived_rows(state: Path) -> list[dict]:
    return [json.loads(x) for f in sorted((state / "archive").glob("orders.*.jsonl.gz"))
            for x in gzip.decompress(f.read_bytes()).splitlines()]


def test_retention_runs_on_the_clock_while_running_and_keeps_what_idempotency_needs(make_runtime, settings_factory,
                                                                                  journal) -> None:
    settings = settings_factory(durable=True, journal=journal, retention={"orders_days": 30, "interval_s": DAY})
    state = Path(settings.state_dir)
    clock = FakeClock(wall_start=T0)
    rt = make_runtime(settings, clock=clock)
    rt.on_market(quote())
    assert rt.submit(market("rr-sent"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    denied = rt.submit(market("rr-denied", qty="0.00001"), ctx()).result(timeout=10)  # under min notional: never left
    assert denied.error.code is ErrorCode.E_EXEC_RISK_DENIED
    settle(rt)
    for day in range(1, 31):
        clock.advance(DAY)
        settle(rt)
        if day < 30:  # not yet past the 30 days: nothing moved
            assert not _archived_rows(state) and not audit_segments(state / "audit.jsonl")
    live = (state / "audit.jsonl").stat().st_ino
    clock.advance(DAY)  # day 31: both orders ended more than 30 days ago
    settle(rt)
    rows = _archived_rows(state)
    assert {r["client_order_id"] for r in rows} == {"rr-sent", "rr-denied"}
    assert {r["table"] for r in rows} >= {"order_events", "fills"}
    assert audit_segments(state / "audit.jsonl"), "the audit lines were archived while the runtime ran"
    # rotated, not rewritten on the ledger's thread: the live file itself became the segment
    # (AuditLog.rotate), which a thread of its own compresses while the runtime runs (before: at the next start)
    assert (state / "audit.jsonl").stat().st_ino != live
    wait_until(lambda: [seg.name[-9:] for seg, _, _ in audit_segments(state / "audit.jsonl")] == [".jsonl.gz"],
               what="the rotated audit segment compressed while the runtime runs")
    assert not list((state / "archive").glob("audit.jsonl.*.jsonl"))
    # the runtime goes on: a new order, its audit line after the archived segment in one chain
    assert rt.submit(market("rr-new"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    # an id that reached a venue is refused; one that never left may be used again
    reuse = rt.submit(market("rr-sent"), ctx()).result(timeout=10)
    assert reuse.status is OrderStatus.DENIED and reuse.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT, reuse
    settle(rt)
    rt.stop()
    assert verify(state / "audit.jsonl").ok

    # a restart: the archived orders are not restored (nor looked up at the venue), their ids stay refused
    rt2 = make_runtime(settings, clock=FakeClock(wall_start=T0 + timedelta(days=31, hours=1)))
    rt2.on_market(quote())
    assert rt2.order("rr-sent") is None and rt2.order("rr-denied") is None
    if "url" not in journal:  # (PostgreSQL: a stopped process's finished orders stay its history, not restored here)
        assert rt2.order("rr-new").status is OrderStatus.FILLED
    assert "rr-sent" not in {o.intent.client_order_id for o in rt2.recovery.orders}
    again = rt2.submit(market("rr-sent"), ctx()).result(timeout=10)
    assert again.status is OrderStatus.DENIED and again.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT, again
    assert rt2.submit(market("rr-denied"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    settle(rt2)
    assert rt2.venue("paper").submission_counts().get("rr-sent") == 1


def test_an_order_archived_at_start_keeps_its_id_refused(make_runtime, settings_factory, journal) -> None:
    settings = settings_factory(durable=True, journal=journal, retention={"orders_days": 30})
    rt = make_runtime(settings, clock=FakeClock(wall_start=T0))
    rt.on_market(quote())
    assert rt.submit(market("rs-sent"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    settle(rt)
    rt.stop()
    rt2 = make_runtime(settings, clock=FakeClock(wall_start=T0 + timedelta(days=31)))
    assert rt2.retention.orders == 1 and rt2.order("rs-sent") is None
    rt2.on_market(quote())
    again = rt2.submit(market("rs-sent"), ctx()).result(timeout=10)
    assert again.status is OrderStatus.DENIED and again.error.code is ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT, again
    settle(rt2)
    assert rt2.venue("paper").submission_counts().get("rs-sent") == 1


def test_a_run_archives_the_journals_in_bounded_steps_between_orders(make_runtime, settings_factory, journal, monkeypatch) -> None:
    """The journals' part of a run goes in steps of at most ``STEP_ORDERS`` orders, one ledger
    message each (the next told behind what waits), so an order waits for one step at most, not a
    whole run: here 5 old orders, steps of 2, three archive files; an open old order stays."""
    monkeypatch.setattr(retention, "STEP_ORDERS", 2)
    settings = settings_factory(durable=True, journal=journal, retention={"orders_days": 30, "interval_s": DAY})
    state = Path(settings.state_dir)
    clock = FakeClock(wall_start=T0)
    rt = make_runtime(settings, clock=clock)
    rt.on_market(quote())
    ids = [f"rb-{i}" for i in range(5)]
    for cl in ids:
        assert rt.submit(market(cl), ctx()).result(timeout=10).status is OrderStatus.FILLED
    assert rt.submit(limit("rb-open", price="30000"), ctx()).result(timeout=10).status is OrderStatus.ACCEPTED
    settle(rt)
    clock.advance(31 * DAY)  # one run, its first step in the tick's message, the rest told after it
    wait_until(lambda: {r["client_order_id"] for r in _archived_rows(state)} == set(ids), what="every old order archived")
    files = sorted((state / "archive").glob("orders.*.jsonl.gz"))
    per_file = [{json.loads(x)["client_order_id"] for x in gzip.decompress(f.read_bytes()).splitlines()} for f in files]
    assert sorted(len(f) for f in per_file) == [1, 2, 2], per_file  # one step: at most STEP_ORDERS orders
    assert rt.submit(market("rb-after"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    settle(rt)
    assert rt.order("rb-open").status is OrderStatus.ACCEPTED and "rb-open" not in set().union(*per_file)
