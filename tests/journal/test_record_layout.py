"""The idempotency table's layout (actors/journal/sqlite.py): keyed ``(client_order_id, account_id)``
with no index of its own, so a claim writes one page to the WAL (its leaf) and a completion one; a
journal written with the first layout (keyed account first, an index on the id and one of the
unresolved records: three pages a claim, two a completion) is migrated at open, every record kept,
in one transaction. Retention's check of a candidate's record reads it by its key."""

from __future__ import annotations

import os
import random
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

import actors.journal.sqlite as journal_sqlite
from actors.audit.retention import archive_orders
from actors.journal.sqlite import RECORD_PAGE_SIZE, RETIRED_INTENT, Claim, Completion, JournalError, SQLiteJournal

#: sqlite3's dump of an idempotency journal the previous build wrote (``journal.sqlite``, 8,192-byte
#: pages): COMPLETED, UNKNOWN (one with a report), IN_PROGRESS and retired records, one id under two
#: accounts (a journal from before the one-account rule)
OLD_FILE = Path(__file__).parent / "data" / "journal_idempotency_account_first.sql"
_COLS = ("account_id, client_order_id, fingerprint, status, report_json, created_at, updated_at, intent_json, "
         "context_json, adapter_id")
TTL = 3600.0
NOW = 1796117500.0  # within the TTL of every record of the old file


def _old_journal(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_FILE.read_text(encoding="utf-8"))
    conn.close()
    return path


def _raw(path: Path) -> tuple[list[str], list[tuple], set[str]]:
    """The table's key columns in key order, its rows (by account and id) and its indexes, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        key = [c[1] for c in sorted(conn.execute("PRAGMA table_info(idempotency)"), key=lambda c: c[5]) if c[5]]
        rows = conn.execute(f"SELECT {_COLS} FROM idempotency ORDER BY account_id, client_order_id").fetchall()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'idempotency'"
                                              " AND sql IS NOT NULL")}
        return key, rows, indexes
    finally:
        conn.close()


def _claim(coid: str, account: str = "acc-1", fp: str | None = None, now: float = NOW) -> Claim:
    return Claim(account, coid, fp or "f" * 64, f'{{"client_order_id":"{coid}"}}', '{"mode":"paper"}', "paper", now)


def test_a_journal_with_the_first_record_layout_is_migrated_at_open_with_every_record(tmp_path: Path) -> None:
    path = _old_journal(tmp_path)
    key, before, indexes = _raw(path)
    assert key == ["account_id", "client_order_id"] and indexes == {"idempotency_by_id", "idempotency_unresolved"}
    assert len(before) == 9
    j = SQLiteJournal(path, checkpoint_off_path=True, page_size=RECORD_PAGE_SIZE)
    try:
        # every reader sees the same records
        assert [r.client_order_id for r in j.load_unresolved()] == ["old-2", "old-3", "old-4", "old-5"]
        assert sorted(r.key for r in j.load_records()) == sorted((r[0], r[1]) for r in before if r[7] != RETIRED_INTENT)
        assert j.get("acc-1", "old-3").report_json == '{"status":"UNKNOWN"}'
        # and every claim is decided as before: replay, in flight, conflict, retired, one account per id, new
        fp = {r[1]: r[2] for r in before if r[0] == "acc-1"}
        results = j.claim_batch([_claim("old-0", fp=fp["old-0"]), _claim("old-4", fp=fp["old-4"]), _claim("old-5"),
                                 _claim("old-1", fp=fp["old-1"], now=NOW + 2 * TTL), _claim("old-b"),
                                 _claim("shared", account="acc-3"), _claim("shared", account="acc-2", fp="c" * 64),
                                 _claim("new-1")], ttl_s=TTL)
        assert [r.outcome for r in results] == ["REPLAY", "IN_FLIGHT", "CONFLICT", "CONFLICT", "OTHER_ACCOUNT",
                                                "OTHER_ACCOUNT", "REPLAY", "CLAIMED"]
        assert j.mark_all_unknown(NOW) == 3  # old-4, old-5 and new-1
    finally:
        j.close()
    key, after, indexes = _raw(path)
    assert key == ["client_order_id", "account_id"] and indexes == set()
    new_row = [r for r in after if r[1] == "new-1"]
    unknown = {"old-4", "old-5"}
    assert [r for r in after if r[1] != "new-1"] == [
        (r[:3] + ("UNKNOWN", r[4], r[5], NOW) + r[7:]) if r[1] in unknown else r for r in before]
    assert len(new_row) == 1 and new_row[0][3] == "UNKNOWN"
    SQLiteJournal(path).close()  # opened again: nothing left to migrate, nothing changed
    assert _raw(path)[1] == after


def test_the_first_layouts_indexes_made_again_by_an_older_build_are_dropped_at_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    SQLiteJournal(path).close()
    conn = sqlite3.connect(path)  # what the previous build's open does to a file without them
    conn.execute("CREATE INDEX idempotency_by_id ON idempotency (client_order_id)")
    conn.execute("CREATE INDEX idempotency_unresolved ON idempotency (created_at) WHERE status != 'COMPLETED'")
    conn.close()
    j = SQLiteJournal(path)
    try:
        assert j.claim_batch([_claim("a")], ttl_s=TTL)[0].outcome == "CLAIMED"
    finally:
        j.close()
    assert _raw(path)[2] == set()


def test_a_failed_migration_leaves_the_old_table_whole_and_the_next_open_migrates(tmp_path: Path, monkeypatch) -> None:
    path = _old_journal(tmp_path)
    before = _raw(path)
    failing = (*journal_sqlite._SQL_RECORDS_ID_FIRST, "SELECT no_such_column FROM idempotency")
    monkeypatch.setattr(journal_sqlite, "_SQL_RECORDS_ID_FIRST", failing)
    with pytest.raises(JournalError):
        SQLiteJournal(path)
    assert _raw(path) == before  # the last statement failed: everything before it rolled back
    monkeypatch.undo()
    SQLiteJournal(path).close()
    key, rows, indexes = _raw(path)
    assert key == ["client_order_id", "account_id"] and rows == before[1] and indexes == set()


def _wal_frames(path: Path) -> int:
    size = os.path.getsize(f"{path}-wal")
    return 0 if size == 0 else (size - 32) // (RECORD_PAGE_SIZE + 24)


def _frames_per_write(tmp_path: Path, ids: list[str]) -> tuple[list[int], list[int]]:
    """WAL frames (pages) each claim of ``ids`` and each completion of it wrote, the second half of them."""
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path, synchronous="OFF", checkpoint_off_path=True, page_size=RECORD_PAGE_SIZE)
    report = '{"status":"FILLED","text":"' + "r" * 650 + '"}'
    claims, completions = [], []
    try:
        for i, coid in enumerate(ids):
            start = _wal_frames(path)
            assert j.claim_batch([_claim(coid)], ttl_s=TTL)[0].outcome == "CLAIMED"
            mid = _wal_frames(path)
            j.complete_batch([Completion("acc-1", coid, "COMPLETED", report, NOW)])
            if i >= len(ids) // 2:
                claims.append(mid - start)
                completions.append(_wal_frames(path) - mid)
    finally:
        j.close()
    return claims, completions


def test_a_claim_of_the_next_id_writes_one_page(tmp_path: Path) -> None:
    """Ids in key order (a counter): each claim writes its leaf only (the first layout: three pages)."""
    claims, _ = _frames_per_write(tmp_path, [f"s1-{i:06d}" for i in range(300)])
    assert sorted(claims)[len(claims) // 2] == 1, claims


def test_a_completion_of_a_random_id_writes_one_page(tmp_path: Path) -> None:
    """Ids in no order (uuid4, seeded): a completion rewrites its record's leaf only (the first
    layout: that leaf and the unresolved index's)."""
    rng = random.Random(7)
    _, completions = _frames_per_write(tmp_path, [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(300)])
    assert sorted(completions)[len(completions) // 2] == 1, completions


def test_retention_keeps_a_terminal_order_whose_record_is_not_completed(tmp_path: Path) -> None:
    """An order the ledger holds as FILLED but whose idempotency record is UNKNOWN or IN_PROGRESS
    (its answer not cached yet) stays; one whose record is COMPLETED is archived."""
    ledger_path, journal_path = tmp_path / "ledger.sqlite", tmp_path / "journal.sqlite"
    SQLiteJournal(ledger_path).close()
    conn = sqlite3.connect(ledger_path)
    with conn:
        conn.executemany("INSERT INTO order_events (seq, ts, account_id, client_order_id, from_status, to_status, cause) "
                         "VALUES (?, ?, 'acc-1', ?, '', ?, '')",
                         [(s, 100.0 + s, coid, st) for coid in ("done", "unknown", "in-flight")
                          for s, st in ((1, "RESERVED"), (2, "FILLED"))])
    conn.close()
    j = SQLiteJournal(journal_path)
    try:
        j.claim_batch([_claim(c, now=100.0) for c in ("done", "unknown", "in-flight")], ttl_s=TTL)
        j.complete_batch([Completion("acc-1", "done", "COMPLETED", '{"status":"FILLED","venue_order_id":"v-1"}', 102.0),
                          Completion("acc-1", "unknown", "UNKNOWN", None, 102.0)])
    finally:
        j.close()
    orders, events, _, _, _ = archive_orders(ledger_path, journal_path, before=datetime(2000, 1, 1, tzinfo=UTC),
                                             archive_dir=tmp_path / "archive")
    assert (orders, events) == (1, 2)
    conn = sqlite3.connect(ledger_path)
    try:
        assert {r[0] for r in conn.execute("SELECT client_order_id FROM order_events")} == {"unknown", "in-flight"}
    finally:
        conn.close()
