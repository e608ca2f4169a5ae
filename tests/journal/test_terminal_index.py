"""The ledger journal's ``order_events_terminal_ts`` partial index (actors/journal/sqlite.py
``terminal_term``): its predicate is an OR of equalities, so inserting a transition row builds no
ephemeral table (an ``IN (…)`` list of the terminal statuses built one per inserted row), and a
journal written with the first predicate gets the new one at open, in one transaction."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

import actors.journal.sqlite as journal_sqlite
from actors.audit.retention import _SQLITE_EXPIRED, _TERMINAL, _expired_orders
from actors.journal.sqlite import _SQL_EVENT, TERMINAL_TO_STATUSES, JournalError, OrderEventRow, SQLiteJournal

#: sqlite3's dump of a ledger journal the previous build wrote (its index: ``to_status IN (…)``)
OLD_FILE = Path(__file__).parent / "data" / "ledger_terminal_index_in_list.sql"
CUTOFF = 1796118000.0


def _old_journal(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_FILE.read_text(encoding="utf-8"))
    conn.close()
    return path


def _index_sql(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'order_events_terminal_ts'").fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


def _events(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM order_events ORDER BY id").fetchall()
    finally:
        conn.close()


def _insert_program(path: Path) -> list[str]:
    """The opcodes SQLite runs to insert one transition row (``EXPLAIN`` of the ledger's insert)."""
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute("EXPLAIN " + _SQL_EVENT, (1,) * _SQL_EVENT.count("?"))]
    finally:
        conn.close()


def test_the_terminal_statuses_are_the_protocols_ones() -> None:
    assert tuple(sorted(TERMINAL_TO_STATUSES)) == _TERMINAL


def test_inserting_a_transition_row_builds_no_ephemeral_table(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    SQLiteJournal(path).close()
    program = _insert_program(path)
    assert "IdxInsert" in program  # the program writes the indexes, the partial one included
    assert "OpenEphemeral" not in program, program


def test_a_journal_with_the_in_list_index_gets_the_new_predicate_at_open(tmp_path: Path) -> None:
    path = _old_journal(tmp_path)
    assert " IN (" in _index_sql(path)
    assert "OpenEphemeral" in _insert_program(path)  # what every row cost before
    before = _events(path)
    assert len(before) == 13
    j = SQLiteJournal(path)
    try:
        assert [(r.client_order_id, r.seq, r.to_status) for r in j.load_orders()] == [(r[4], r[1], r[6]) for r in before]
        later = OrderEventRow(4, CUTOFF + 1, "acc-1", "old-open", "ACCEPTED", "FILLED", "fill t1")
        assert j.record_order_events([later]) == 1
    finally:
        j.close()
    sql = _index_sql(path)
    assert sql is not None and " IN (" not in sql.upper() and "to_status = 'FILLED'" in sql
    assert "OpenEphemeral" not in _insert_program(path)
    assert _events(path)[:13] == before
    conn = sqlite3.connect(path)
    try:  # retention finds the same orders, through the new index
        assert _expired_orders(conn, CUTOFF) == [("acc-1", "old-filled"), ("acc-1", "old-canceled"), ("acc-1", "old-denied")]
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _SQLITE_EXPIRED, {"before": CUTOFF})]
        assert any("USING INDEX order_events_terminal_ts" in step for step in plan), plan
    finally:
        conn.close()
    SQLiteJournal(path).close()  # opened again: nothing left to migrate
    assert _index_sql(path) == sql


def test_a_failed_index_migration_leaves_the_old_index_and_the_next_open_migrates(tmp_path: Path, monkeypatch) -> None:
    path = _old_journal(tmp_path)
    old = _index_sql(path)
    monkeypatch.setattr(journal_sqlite, "_SQL_TERMINAL_INDEX", "CREATE INDEX order_events_terminal_ts ON order_events (no_such_column)")
    with pytest.raises(JournalError):
        SQLiteJournal(path)
    assert _index_sql(path) == old  # the DROP rolled back with the failed CREATE
    monkeypatch.undo()
    SQLiteJournal(path).close()
    assert " IN (" not in _index_sql(path).upper()


def test_rows_written_in_a_batch_are_read_back_unchanged(tmp_path: Path) -> None:
    """Terminal and other rows through the ledger's batch insert, read back as written."""
    j = SQLiteJournal(tmp_path / "ledger.sqlite")
    try:
        rows = [OrderEventRow(1, 10.0, "acc-1", "a", "INITIALIZED", "RESERVED", "reserved at intake", Decimal("1.5")),
                OrderEventRow(2, 11.0, "acc-1", "a", "RESERVED", "SUBMITTING", "attempt 1 sent to paper"),
                OrderEventRow(3, 12.0, "acc-1", "a", "SUBMITTING", "FILLED", "fill t1"),
                OrderEventRow(1, 13.0, "acc-1", "b", "INITIALIZED", "DENIED", "blocked")]
        assert j.record_ledger(rows, []) == (4, [])
        assert j.load_orders() == rows
    finally:
        j.close()
