"""The durable paper book's layout (protocols/venues/paper/book.py): the venue order id and the trade
id are made from their row's ``seq`` and have no index of their own, so an order filled at once
writes four pages (the orders table's leaf and its client order id index's, the fills table's leaf
and its by-order index's) where the first layout wrote six; a book written with the first layout
is migrated at open, every row kept, in one transaction."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import protocols.venues.paper.book as paper_book
from protocols import VenueRejectedError
from protocols.venues import PaperVenue
from tests.venues.test_book_off_path import CFG, order, quote

#: sqlite3's dump of a paper book the previous build wrote: four filled market orders (one submitted
#: twice), a resting limit order, a canceled one and a rejected one
OLD_FILE = Path(__file__).parent / "data" / "paper_book_unique_ids.sql"
TABLES = ("orders", "fills", "submissions", "consumed_trades", "meta")


def _old_book(tmp_path: Path) -> Path:
    path = tmp_path / "paper_book.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_FILE.read_text(encoding="utf-8"))
    conn.close()
    return path


def _raw(path: Path) -> tuple[dict[str, list[tuple]], set[str]]:
    """Every table's rows (``meta`` without the session mark) and the unique columns of orders and fills."""
    conn = sqlite3.connect(path)
    try:
        rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
        rows["meta"] = [r for r in rows["meta"] if r[0] != "session"]
        return rows, {f"{t}.{c}" for t in ("orders", "fills") for c in paper_book._unique_columns(conn, t)}
    finally:
        conn.close()


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
    assert unique == {"orders.client_order_id"}
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


def test_an_order_filled_at_once_writes_four_pages(tmp_path: Path) -> None:
    path = tmp_path / "paper_book.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    wal = f"{path}-wal"
    frames = []
    try:
        v.on_market(quote())
        for i in range(200):
            start = os.path.getsize(wal)
            v.submit_order(order(f"o-{i}"))
            frames.append((os.path.getsize(wal) - start) // (4096 + 24))
    finally:
        v.close()
    assert sorted(frames[100:])[50] == 4, frames[100:]
