"""A completed idempotency record sits in its page: the runtime's ``journal.sqlite`` is made with
``RECORD_PAGE_SIZE`` pages (``actors/journal/sqlite.py``), where at SQLite's 4,096 every record
of a filled order (claim JSON + report JSON, ~1,050 bytes) spilled into an overflow page of its
own, written again by each completion."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import ctx, market, quote, settle

from actors.journal.sqlite import RECORD_PAGE_SIZE, SQLiteJournal


def test_filled_orders_records_share_pages(make_runtime) -> None:
    rt = make_runtime(durable=True)
    rt.on_market(quote())
    settle(rt)
    futures = [rt.submit(market(f"pages-{i}"), ctx()) for i in range(120)]
    assert all(f.result(timeout=10).status.value == "FILLED" for f in futures)
    settle(rt)
    path = rt.journal_path
    rt.stop()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == RECORD_PAGE_SIZE
        records = conn.execute("SELECT count(*) FROM idempotency WHERE report_json IS NOT NULL").fetchone()[0]
        # the records' tables and key (``idempotency`` is a view over them)
        pages = conn.execute("SELECT count(*) FROM dbstat WHERE name IN ('idempotency_records', 'idempotency_key', "
                             "'idempotency_reports')").fetchone()[0]
    finally:
        conn.close()
    assert records >= 120 and pages > 0
    assert pages <= records / 4  # at 4,096 bytes a page: more pages than records


def test_an_existing_journal_keeps_its_page_size(tmp_path: Path) -> None:
    SQLiteJournal(tmp_path / "j.sqlite").close()
    journal = SQLiteJournal(tmp_path / "j.sqlite", page_size=RECORD_PAGE_SIZE)
    try:
        assert journal._live().execute("PRAGMA page_size").fetchone()[0] == 4096
    finally:
        journal.close()


@pytest.mark.parametrize("bad", [0, 1000, 131072, True, "8192"])
def test_a_page_size_that_sqlite_would_ignore_is_refused(tmp_path: Path, bad) -> None:
    with pytest.raises(ValueError, match="page_size"):
        SQLiteJournal(tmp_path / "j.sqlite", page_size=bad)
