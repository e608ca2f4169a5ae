"""The order_archive table's layout (actors/journal/sqlite.py): a rowid table whose ~1.2 KB rows
sit inline in its leaf pages, and a journal written with the first layout (WITHOUT ROWID, each
row overflowing into a page of its own) migrated at open, every row kept, in one transaction."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

import actors.journal.sqlite as journal_sqlite
from actors.journal.sqlite import ArchivedOrder, JournalError, SQLiteJournal
from actors.orders.archive import archive_json, archived_report, restore_record
from actors.orders.books import OrderRecord
from protocols import Fill, OrderEventType, OrderIntent

#: sqlite3's dump of a ledger journal the previous build wrote (six archived orders, two compacted)
OLD_FILE = Path(__file__).parent / "data" / "ledger_archive_without_rowid.sql"
_COLS = "client_order_id, account_id, status, archived_at, record_json, compacted"


def _old_journal(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_FILE.read_text(encoding="utf-8"))
    conn.close()
    return path


def _raw(path: Path) -> tuple[str, list[tuple], set[str]]:
    """The archive table's DDL, its rows (by id) and its indexes, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'order_archive'").fetchone()[0]
        rows = conn.execute(f"SELECT {_COLS} FROM order_archive ORDER BY client_order_id").fetchall()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'order_archive'")}
        return ddl, rows, indexes
    finally:
        conn.close()


def _record(i: int) -> OrderRecord:
    intent = OrderIntent(client_order_id=f"new-{i:05d}", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                         quantity=Decimal("0.002"), limit_price=Decimal("39433.00"), strategy_id="mm-1")
    rec = OrderRecord.from_intent(intent, "acc-1", adapter_id="paper", arrival_px=Decimal("39433.10"))
    for event in (OrderEventType.RESERVED, OrderEventType.SUBMITTED, OrderEventType.ACCEPTED):
        rec.apply_event(event, cause=event.value)
    rec.apply_fill(Fill(trade_id=f"t{i}", qty=Decimal("0.002"), price=Decimal("39433.00"), fee=Decimal("0.0789"),
                        fee_currency="USDT"))
    return rec


def test_a_journal_with_the_old_archive_layout_is_migrated_at_open_with_every_row(tmp_path: Path) -> None:
    path = _old_journal(tmp_path)
    ddl, before, indexes = _raw(path)
    assert "WITHOUT ROWID" in ddl.upper() and len(before) == 6 and [r[5] for r in before] == [1, 1, 0, 0, 0, 0]
    j = SQLiteJournal(path)
    try:
        # every reader sees the same rows: by id, in archive order, and as records and reports
        assert j.load_archive() == [ArchivedOrder(*r[:5]) for r in before]
        assert j.load_archived("old-3") == ArchivedOrder(*before[3][:5])
        for row in before:
            back = restore_record(row[4])
            assert back.snapshot() == archived_report(row[4]) and back.client_order_id == row[0]
        assert j.compact(archived_before=2e9) == 4  # the two compacted before stay compacted
        # a re-archived order replaces its row (INSERT OR REPLACE by client_order_id)
        again = ArchivedOrder("old-2", "acc-1", "CANCELED", 1796117500.0, before[2][4])
        j.record_ledger([], [], [again])
        assert j.load_archived("old-2") == again and len(j.load_archive()) == 6
    finally:
        j.close()
    ddl, after, indexes_after = _raw(path)
    assert "WITHOUT ROWID" not in ddl.upper()
    assert indexes_after >= indexes and "order_archive_age" in indexes_after
    assert [r[:2] + r[4:5] for r in after] == [r[:2] + r[4:5] for r in before]
    SQLiteJournal(path).close()  # opened again: nothing left to migrate, nothing changed
    assert _raw(path)[1] == after


def test_a_failed_migration_leaves_the_old_table_whole_and_the_next_open_migrates(tmp_path: Path, monkeypatch) -> None:
    path = _old_journal(tmp_path)
    ddl, before, _ = _raw(path)
    failing = (*journal_sqlite._SQL_ARCHIVE_TO_ROWID, "SELECT no_such_column FROM order_archive")
    monkeypatch.setattr(journal_sqlite, "_SQL_ARCHIVE_TO_ROWID", failing)
    with pytest.raises(JournalError):
        SQLiteJournal(path)
    assert _raw(path)[:2] == (ddl, before)  # the last statement failed: everything before it rolled back
    monkeypatch.undo()
    SQLiteJournal(path).close()
    ddl_after, after, _ = _raw(path)
    assert "WITHOUT ROWID" not in ddl_after.upper() and after == before


def test_archive_rows_sit_inline_in_a_new_journal(tmp_path: Path) -> None:
    """300 archived orders (~1.2 KB of JSON each) take about a page per three rows; in the first
    layout each row overflowed into a page of its own (over 300 pages)."""
    path = tmp_path / "ledger.sqlite"
    SQLiteJournal(path).close()
    conn = sqlite3.connect(path)
    start = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    rows = [ArchivedOrder(rec.client_order_id, rec.account_id, rec.status.value, 1796117400.0 + i, archive_json(rec))
            for i, rec in enumerate(_record(i) for i in range(300))]
    assert all(1_000 < len(r.record_json) < 1_400 for r in rows)
    j = SQLiteJournal(path)
    try:
        for k in range(0, 300, 100):
            j.record_ledger([], [], rows[k:k + 100])
        assert j.load_archive() == rows
    finally:
        j.close()
    conn = sqlite3.connect(path)
    grown = conn.execute("PRAGMA page_count").fetchone()[0] - start
    conn.close()
    assert grown < 150, f"300 archive rows took {grown} pages"
