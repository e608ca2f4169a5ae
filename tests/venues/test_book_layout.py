"""The durable paper book's layout (protocols/venues/paper/book.py).

- An order's fills are in its own row (``orders.fills_json``), so an order filled at once is one
  row, written by one statement that commits itself (no BEGIN/COMMIT) into two WAL pages (the
  orders table's leaf and its client order id index's), where the previous layout (a ``fills``
  table with its by-order index) wrote four pages in four statements; a group of orders is one
  multi-row statement.
- The venue order id and the trade id are made from their ``seq``: no index of their own.
- A book written by an earlier build is migrated at open, every row kept, in one transaction: the
  first layout (unique ids) and the previous one (a ``fills`` table); a failed migration leaves the
  old tables whole and the next open migrates.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

import protocols.venues.paper.book as paper_book
from protocols import Trade, VenueOrder, VenueRejectedError
from protocols.venues import PaperVenue
from protocols.venues.paper.book import BookChanges, SqliteBook
from tests.venues.test_book_off_path import CFG, SYM, T0, order, quote

DATA = Path(__file__).parent / "data"
#: sqlite3's dump of a paper book the first layout wrote: four filled market orders (one submitted
#: twice), a resting limit order, a canceled one and a rejected one
OLD_FILE = DATA / "paper_book_unique_ids.sql"
#: sqlite3's dump of a paper book the previous build wrote (a ``fills`` table, ids from ``seq``): the
#: same orders, the resting one partly filled by two trades with a market order's fill between them,
#: and a fifth market order
FILLS_TABLE_FILE = DATA / "paper_book_fills_table.sql"
TABLES = ("orders", "submissions", "consumed_trades", "meta")


def _old_book(tmp_path: Path, dump: Path = OLD_FILE) -> Path:
    path = tmp_path / "paper_book.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(dump.read_text(encoding="utf-8"))
    conn.close()
    return path


def _raw(path: Path) -> tuple[dict[str, list[tuple]], set[str]]:
    """Every table's rows (``orders`` without ``fills_json``, ``meta`` without the session mark and the
    schema version), the fills as ``(seq, trade_id, client_order_id, fill as parsed)`` whichever
    layout holds them, and the unique columns of orders (and fills, while there is such a table)."""
    conn = sqlite3.connect(path)
    try:
        rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
        rows["orders"] = [r[:9] for r in rows["orders"]]
        rows["meta"] = [r for r in rows["meta"] if r[0] not in ("session", "schema_version")]
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "fills" in tables:
            rows["fills"] = [(seq, tid, coid, json.loads(text))
                             for seq, tid, coid, text in conn.execute("SELECT * FROM fills ORDER BY seq")]
        else:
            rows["fills"] = sorted((seq, fill["trade_id"], coid, fill)
                                   for coid, text in conn.execute("SELECT client_order_id, fills_json FROM orders")
                                   for seq, fill in json.loads(text))
        unique = {f"{t}.{c}" for t in ("orders", "fills") if t in tables for c in paper_book._unique_columns(conn, t)}
        return rows, unique
    finally:
        conn.close()


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def limit(coid: str, qty: str = "0.5", price: str = "99.00") -> VenueOrder:
    return VenueOrder(client_order_id=coid, account_id="acc", symbol=SYM, side="BUY", order_type="LIMIT",
                      quantity=D(qty), limit_price=D(price), ts=T0)


def test_a_book_with_the_first_layout_is_migrated_at_open_with_every_row(tmp_path: Path) -> None:
    path = _old_book(tmp_path)
    before, unique = _raw(path)
    assert unique == {"orders.client_order_id", "orders.venue_order_id", "fills.trade_id"}
    assert len(before["orders"]) == 7 and len(before["fills"]) == 4
    v = PaperVenue(config=CFG, book_path=path)
    try:
        states = {coid: v.fetch_order(coid) for coid in ("old-m0", "old-m3", "old-rest", "old-cancel", "old-rej")}
        assert states["old-m3"].status.value == "FILLED" and states["old-m3"].fills[0].trade_id == "paper-4"
        assert states["old-rest"].status.value == "ACCEPTED" and states["old-cancel"].status.value == "CANCELED"
        with pytest.raises(VenueRejectedError):
            v.submit_order(order("old-m1"))  # still a duplicate
        v.on_market(quote())
        state = v.submit_order(order("new-1"))  # the sequences go on from the rows
        assert state.venue_order_id == "paper-o8" and [f.trade_id for f in state.fills] == ["paper-5"]
    finally:
        v.close()
    after, unique = _raw(path)
    assert unique == {"orders.client_order_id"} and "fills" not in _tables(path)
    assert after["orders"][:7] == before["orders"] and after["fills"][:4] == before["fills"]
    assert after["submissions"] == [("old-m0", 2), ("old-m1", 2)]
    v = PaperVenue(config=CFG, book_path=path)  # opened again: nothing left to migrate, the same orders
    try:
        assert {coid: v.fetch_order(coid) for coid in states} == states
    finally:
        v.close()
    assert _raw(path)[0]["orders"] == after["orders"]


def test_a_failed_migration_leaves_the_old_tables_whole_and_the_next_open_migrates(tmp_path: Path, monkeypatch) -> None:
    path = _old_book(tmp_path)
    before = _raw(path)
    monkeypatch.setattr(paper_book, "_IDS_BY_SEQ", (*paper_book._IDS_BY_SEQ, "SELECT no_such_column FROM orders"))
    with pytest.raises(sqlite3.Error):
        PaperVenue(config=CFG, book_path=path)
    assert _raw(path) == before  # the last statement failed: everything before it rolled back
    monkeypatch.undo()
    PaperVenue(config=CFG, book_path=path).close()
    rows, unique = _raw(path)
    assert unique == {"orders.client_order_id"} and rows["orders"] == before[0]["orders"]
    assert rows["fills"] == before[0]["fills"]


def test_a_book_of_the_previous_build_moves_its_fills_into_their_orders_rows(tmp_path: Path) -> None:
    path = _old_book(tmp_path, FILLS_TABLE_FILE)
    before, unique = _raw(path)
    assert unique == {"orders.client_order_id"} and "fills" in _tables(path)
    assert [(seq, tid, coid) for seq, tid, coid, _ in before["fills"]] == [
        (1, "paper-1", "old-m0"), (2, "paper-2", "old-m1"), (3, "paper-3", "old-m2"), (4, "paper-4", "old-m3"),
        (5, "paper-5", "old-rest"), (6, "paper-6", "old-m4"), (7, "paper-7", "old-rest")]
    v = PaperVenue(config=CFG, book_path=path)
    try:
        rest = v.fetch_order("old-rest")
        assert rest.status.value == "PARTIALLY_FILLED" and [f.trade_id for f in rest.fills] == ["paper-5", "paper-7"]
        assert rest.cum_qty == D("0.3") and v.fetch_order("old-m4").fills[0].trade_id == "paper-6"
        assert [(coid, f.trade_id) for coid, f in v.fill_records()] == [(coid, tid) for _, tid, coid, _ in before["fills"]]
        assert v.fetch_positions("acc") == {SYM: D("0.8")} and v.duplicate_submissions() == 1
        with pytest.raises(VenueRejectedError):
            v.submit_order(order("old-m1"))  # still a duplicate
        v.on_market(Trade(ts=T0 + timedelta(seconds=3), symbol=SYM, trade_id="x3", price=D("98.50"), qty=D("0.1")))
        grown = v.fetch_order("old-rest")  # a fill appended to a migrated row
        assert [f.trade_id for f in grown.fills] == ["paper-5", "paper-7", "paper-8"]
        v.on_market(quote(4))
        assert v.submit_order(order("new-1")).venue_order_id == "paper-o9"
        records = v.fill_records()
    finally:
        v.close()
    after, _ = _raw(path)
    assert "fills" not in _tables(path)
    unchanged = [r for r in before["orders"] if r[1] != "old-rest"]  # (old-rest: a fill since)
    assert [r for r in after["orders"][:8] if r[1] != "old-rest"] == unchanged and after["fills"][:7] == before["fills"]
    assert after["consumed_trades"] == [("BTC/USDT", "x1"), ("BTC/USDT", "x2"), ("BTC/USDT", "x3")]
    w = PaperVenue(config=CFG, book_path=path)
    try:
        assert w.fetch_order("old-rest") == grown and w.fill_records() == records
        assert [f.trade_id for _, f in records] == [f"paper-{i}" for i in range(1, 10)]
    finally:
        w.close()


def test_a_failed_move_of_the_fills_leaves_the_old_tables_whole(tmp_path: Path, monkeypatch) -> None:
    path = _old_book(tmp_path, FILLS_TABLE_FILE)
    before = _raw(path)
    fold = paper_book._fold_fills

    def fold_then_fail(conn: sqlite3.Connection) -> None:
        fold(conn)  # every fill moved and the table dropped, then the step fails
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(paper_book, "_fold_fills", fold_then_fail)
    with pytest.raises(sqlite3.OperationalError):
        PaperVenue(config=CFG, book_path=path)
    assert _raw(path) == before and "fills" in _tables(path)
    monkeypatch.undo()
    PaperVenue(config=CFG, book_path=path).close()
    assert _raw(path)[0]["fills"] == before[0]["fills"] and "fills" not in _tables(path)


def test_a_fill_of_an_order_the_book_does_not_hold_is_refused_at_migration(tmp_path: Path) -> None:
    path = _old_book(tmp_path, FILLS_TABLE_FILE)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO fills VALUES (8, 'paper-8', 'ghost', '{}')")
    conn.commit()
    conn.close()
    before = _raw(path)
    with pytest.raises(ValueError, match="fills of orders it does not hold \\(ghost\\)"):
        PaperVenue(config=CFG, book_path=path)
    assert _raw(path) == before


def test_an_order_filled_at_once_writes_two_pages_in_one_statement(tmp_path: Path) -> None:
    path = tmp_path / "paper_book.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    wal = f"{path}-wal"
    frames, statements = [], []
    v._book._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    try:
        v.on_market(quote())
        for i in range(200):
            start = os.path.getsize(wal)
            del statements[:]
            v.submit_order(order(f"o-{i}"))
            frames.append((os.path.getsize(wal) - start) // (4096 + 24))
            assert len(statements) == 1 and statements[0].startswith("INSERT INTO orders"), statements
    finally:
        v.close()
    assert sorted(frames[100:])[50] == 2, frames[100:]


def test_a_group_of_orders_is_one_statement_and_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "paper_book.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    statements: list[str] = []
    v.on_market(quote())
    v.submit_order(limit("r-0"))
    v._book._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    v.begin_batch()
    for i in range(40):
        v.submit_order(order(f"g-{i}"))
    v.submit_order(limit("r-1"))
    v.end_batch()
    assert [s.split(" (")[0] for s in statements] == ["INSERT INTO orders"]
    del statements[:]
    v.begin_batch()  # more rows than one statement takes, a cancel and a duplicate: one transaction
    for i in range(paper_book.ROWS_PER_STATEMENT + 1):
        v.submit_order(order(f"h-{i}"))
    v.cancel_order("r-1")
    with pytest.raises(VenueRejectedError):
        v.submit_order(order("g-0"))
    v.end_batch()
    assert [s.split(" (")[0] for s in statements] == [
        "BEGIN IMMEDIATE", "INSERT INTO orders", "INSERT INTO orders", "INSERT INTO submissions", "INSERT INTO meta", "COMMIT"]
    v._book._conn.set_trace_callback(None)  # type: ignore[attr-defined]
    v.on_market(Trade(ts=T0 + timedelta(seconds=1), symbol=SYM, trade_id="x1", price=D("98.50"), qty=D("0.2")))
    states = {coid: v.fetch_order(coid) for coid in ("r-0", "r-1", "g-0", "g-39", "h-64")}
    records, counts = v.fill_records(), v.submission_counts()
    v.close()
    w = PaperVenue(config=CFG, book_path=path)
    try:
        assert {coid: w.fetch_order(coid) for coid in states} == states
        assert states["r-0"].cum_qty == D("0.2") and states["r-1"].status.value == "CANCELED"
        assert w.fill_records() == records and w.submission_counts() == counts and counts["g-0"] == 2
    finally:
        w.close()


def test_a_fill_without_its_orders_record_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    book = SqliteBook(tmp_path / "b.sqlite", adapter_id="paper", fill_model_version="x")
    try:
        v = PaperVenue(config=CFG)
        v.on_market(quote())
        fill = v.submit_order(order("a")).fills[0]
        with pytest.raises(ValueError, match="a fill of order 'a' without the order's record"):
            book.commit(BookChanges(fills=[(1, "a", fill)], meta={"venue_time": "x"}))
        assert book.load().fills == [] and "venue_time" not in book.load().meta
    finally:
        book.close()
