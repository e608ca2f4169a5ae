"""Bounded memory (docs/DESIGN.md "Durability"): terminal orders leave the ledger's memory once
journaled (a bounded cache of recent ones stays) and are read back from the journal on demand;
the journal of orders archived longer than the idempotency TTL is compacted by a timer job."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest
from conftest import ctx, limit, market, quote, wait_until

from actors import FakeClock, Runtime
from protocols import OrderStatus

N = 120
KEEP = 8


def settings_for(settings_factory, **journal):
    return settings_factory(durable=True, journal={"synchronous": "NORMAL", "keep_terminal_orders": KEEP, **journal},
                            idempotency={"ttl_s": 60.0})


def events_in_journal(rt: Runtime) -> int:
    conn = sqlite3.connect(f"file:{rt.ledger_journal_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM order_events").fetchone()[0]
    finally:
        conn.close()


def compacted(rt: Runtime) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{rt.ledger_journal_path}?mode=ro", uri=True)
    try:
        return tuple(conn.execute("SELECT COUNT(*), SUM(compacted) FROM order_archive").fetchone())
    finally:
        conn.close()


def test_terminal_orders_leave_memory_and_are_read_back(settings_factory, make_runtime) -> None:
    settings = settings_for(settings_factory)
    rt = make_runtime(settings)
    rt.on_market(quote())
    answers = {}
    for i in range(N):
        side = "BUY" if i % 2 == 0 else "SELL"
        answers[f"mem-{i}"] = rt.submit(market(f"mem-{i}", side=side), ctx()).result(timeout=5)
    resting = rt.submit(limit("mem-rest", price="39000.00"), ctx()).result(timeout=5)
    assert resting.status is OrderStatus.ACCEPTED
    rt.flush()
    stats = rt.stats()
    # every order is counted, but only the open one and the recent terminal ones are in memory
    assert stats["orders_total"] == N + 1
    assert stats["orders_in_memory"] <= 1 + KEEP + KEEP // 4 + 1
    assert stats["orders_archived"] == N + 1 - stats["orders_in_memory"]
    assert stats["orders_by_status"] == {"ACCEPTED": 1, "FILLED": N}
    assert stats["fills_total"] == N
    assert stats["book_invariants"] == []
    # read back on demand: the archived report is the report the order had
    first = rt.order("mem-0")
    assert first.status is OrderStatus.FILLED
    assert first.fills == answers["mem-0"].fills and first.avg_px == answers["mem-0"].avg_px
    assert first.venue_order_id == answers["mem-0"].venue_order_id
    assert rt.wait("mem-1", timeout=5).status is OrderStatus.FILLED
    listed = {r.client_order_id: r for r in rt.orders()}
    assert len(listed) == N + 1 and listed["mem-5"].fills == answers["mem-5"].fills
    # a fact about an archived order brings it back and is applied, never dropped
    cancel = rt.cancel("mem-2").result(timeout=5)
    assert cancel.status is OrderStatus.FILLED and "only orders still working" in cancel.error.message
    assert rt.stats()["orders_total"] == N + 1 and rt.stats()["book_invariants"] == []
    net = sum(p.net_qty for p in rt.positions() if p.account_id == "acc-1")
    assert net == Decimal(0)  # as many buys as sells of the same quantity


def test_restart_and_compaction_keep_history(settings_factory, make_runtime, monkeypatch) -> None:
    monkeypatch.setattr("actors.orders.ledger._COMPACT_BATCH", 5)  # several batches: one run does them all
    clock = FakeClock()
    settings = settings_for(settings_factory, compact_interval_s=30.0)
    rt = make_runtime(settings, clock=clock)
    rt.on_market(quote())
    for i in range(40):
        assert rt.submit(market(f"cmp-{i}"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    archived = rt.stats()["orders_archived"]
    assert archived >= 40 - KEEP - KEEP // 4 - 1
    before = events_in_journal(rt)
    clock.advance(61.0)  # past the TTL: the next compaction run folds the archived orders' rows
    rt.flush()
    wait_until(lambda: compacted(rt) == (archived, archived), what="every archived order compacted, batch after batch")
    after = events_in_journal(rt)
    assert after < before
    positions = [(p.account_id, p.symbol, p.net_qty, p.buy_qty, p.sell_qty, p.avg_entry_px, p.fees) for p in rt.positions()]
    rt.stop()
    again = make_runtime(settings, clock=FakeClock())
    assert again.recovery.counts() == {"unchanged": 40}  # nothing asked at the venue: history intact
    assert again.order("cmp-0").status is OrderStatus.FILLED
    assert again.stats()["orders_in_memory"] <= KEEP + KEEP // 4 + 1
    assert again.stats()["book_invariants"] == []
    assert [(p.account_id, p.symbol, p.net_qty, p.buy_qty, p.sell_qty, p.avg_entry_px, p.fees) for p in again.positions()] == positions


def test_orders_filtered_by_status_and_account_read_only_the_archive_rows_they_admit(
        settings_factory, make_runtime, monkeypatch) -> None:
    """``rt.orders(status, account_id=)``: the same reports as filtering ``rt.orders()``, and a
    query that admits no terminal status reads no archived order back (the REPL's ``orders
    open`` and its Tab completion, the stress harness's closing of resting orders)."""
    from actors.orders import archive

    parsed = []
    real = archive.archived_report
    monkeypatch.setattr(archive, "archived_report", lambda text: parsed.append(text) or real(text))
    rt = make_runtime(settings_for(settings_factory))
    rt.on_market(quote())
    for i in range(40):
        account = "acc-1" if i % 4 else "acc-2"
        rt.submit(market(f"flt-{i}", side="BUY" if i % 2 == 0 else "SELL"), ctx(account=account)).result(timeout=5)
    for i in range(3):
        assert rt.submit(limit(f"flt-rest-{i}", price="39000.00"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    rt.flush()
    assert rt.stats()["orders_archived"] > 0
    everything = rt.orders()
    assert len(everything) == 43 and len(parsed) == rt.stats()["orders_archived"]

    def ids(reports):
        return sorted(r.client_order_id for r in reports)

    parsed.clear()
    working = rt.orders(("ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"))
    assert ids(working) == ["flt-rest-0", "flt-rest-1", "flt-rest-2"]
    assert parsed == []  # no archive row read back for a query of working orders
    assert ids(rt.orders(OrderStatus.FILLED)) == ids(r for r in everything if r.status is OrderStatus.FILLED)
    parsed.clear()
    acc2 = rt.orders(account_id="acc-2")
    assert ids(acc2) == ids(r for r in everything if r.account_id == "acc-2") and len(acc2) == 10
    assert parsed and all('"account_id":"acc-2"' in text for text in parsed)  # only acc-2's archived rows were parsed
    assert ids(rt.orders(["filled"], account_id="acc-1")) == ids(
        r for r in everything if r.account_id == "acc-1" and r.status is OrderStatus.FILLED)
    assert rt.orders("CANCELED") == ()
    with pytest.raises(ValueError, match="unknown order status 'WORKING'"):
        rt.orders("WORKING")


def test_stats_without_invariants_counts_the_same_in_one_pass(settings_factory, make_runtime) -> None:
    """``rt.stats(invariants=False)``: every counter ``rt.stats()`` gives (statuses, fills, orders in
    doubt, archived ones included) without the two checks that recompute the books; what the
    harnesses poll (``unknown_open``)."""
    rt = make_runtime(settings_for(settings_factory))
    rt.on_market(quote())
    for i in range(30):
        rt.submit(market(f"cnt-{i}", side="BUY" if i % 2 == 0 else "SELL"), ctx()).result(timeout=5)
    rt.submit(limit("cnt-rest", price="39000.00"), ctx()).result(timeout=5)
    rt.flush()
    full, light = rt.stats(), rt.stats(invariants=False)
    assert full["book_invariants"] == [] and full["risk_invariants"] == []
    assert "book_invariants" not in light and "risk_invariants" not in light
    for key in ("orders_total", "orders_in_memory", "orders_archived", "orders_by_status", "fills_total", "unknown_open",
                "exposure", "cash"):
        assert light[key] == full[key], key
    assert light["orders_by_status"] == {"ACCEPTED": 1, "FILLED": 30} and light["fills_total"] == 30
    assert light["orders_archived"] > 0 and light["unknown_open"] == 0
