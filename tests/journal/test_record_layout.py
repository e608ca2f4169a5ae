"""The idempotency records' layout (actors/journal/sqlite.py ``_SQL_RECORD_TABLES``): a view,
``idempotency``, over the records appended in claim order with a unique index on
``(client_order_id, account_id)`` and the reports beside them, so a batch of claims at random ids
writes few pages and no statement that writes a status builds an ephemeral table. Journals
written with an earlier layout (keyed account first with two indexes; keyed by the id with the JSON
in the keyed rows and a status ``CHECK … IN (…)``) are migrated at open, every record kept, in one
transaction. Retention's check of a candidate's record reads it by its key, and retention's writes
through the view keep each report with its record."""

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
from actors.journal.sqlite import RECORD_PAGE_SIZE, RETIRED_INTENT, Claim, Completion, IdempotencyRecord, JournalError, SQLiteJournal

#: sqlite3's dump of an idempotency journal an earlier build wrote (``journal.sqlite``, 8,192-byte
#: pages): COMPLETED, UNKNOWN (one with a report), IN_PROGRESS and retired records, one id under two
#: accounts (a journal from before the one-account rule)
OLD_FILE = Path(__file__).parent / "data" / "journal_idempotency_account_first.sql"
#: the same records as the previous build (6a3de54) left them after migrating that file at open: one
#: table keyed ``(client_order_id, account_id)`` with the JSON in its rows, ``CHECK (status IN (…))``
PREVIOUS_FILE = Path(__file__).parent / "data" / "journal_idempotency_json_in_keyed_rows.sql"
_COLS = ("account_id, client_order_id, fingerprint, status, report_json, created_at, updated_at, intent_json, "
         "context_json, adapter_id")
TTL = 3600.0
NOW = 1796117500.0  # within the TTL of every record of the old file


def _old_journal(tmp_path: Path, dump: Path = OLD_FILE) -> Path:
    path = tmp_path / "journal.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(dump.read_text(encoding="utf-8"))
    conn.close()
    return path


def _raw(path: Path) -> tuple[list[str], list[tuple], set[str]]:
    """The records' key columns in key order (the table's while ``idempotency`` is a table, else the
    index ``idempotency_key``'s), the records (by account and id) and the other indexes of the
    records' tables, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'idempotency'").fetchone()[0]
        if kind == "table":
            key = [c[1] for c in sorted(conn.execute("PRAGMA table_info(idempotency)"), key=lambda c: c[5]) if c[5]]
        else:
            key = [c[2] for c in conn.execute("PRAGMA index_info(idempotency_key)")]
        rows = conn.execute(f"SELECT {_COLS} FROM idempotency ORDER BY account_id, client_order_id").fetchall()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name LIKE 'idempotency%'"
                                              " AND sql IS NOT NULL AND name != 'idempotency_key'")}
        return key, rows, indexes
    finally:
        conn.close()


def _tables_agree(path: Path) -> None:
    """Every report row belongs to a record (none is left behind when its record goes)."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM idempotency_reports r LEFT JOIN idempotency_records rec ON rec.id = r.id "
                            "WHERE rec.id IS NULL").fetchone()[0] == 0
    finally:
        conn.close()


def _claim(coid: str, account: str = "acc-1", fp: str | None = None, now: float = NOW) -> Claim:
    return Claim(account, coid, fp or "f" * 64, f'{{"client_order_id":"{coid}"}}', '{"mode":"paper"}', "paper", now)


@pytest.mark.parametrize("dump, old_key", [(OLD_FILE, ["account_id", "client_order_id"]),
                                           (PREVIOUS_FILE, ["client_order_id", "account_id"])], ids=["account-first", "previous"])
def test_a_journal_with_an_earlier_record_layout_is_migrated_at_open_with_every_record(tmp_path: Path, dump: Path,
                                                                                        old_key: list[str]) -> None:
    path = _old_journal(tmp_path, dump)
    key, before, indexes = _raw(path)
    assert key == old_key and indexes == ({"idempotency_by_id", "idempotency_unresolved"} if dump == OLD_FILE else set())
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
    _tables_agree(path)
    SQLiteJournal(path).close()  # opened again: nothing left to migrate, nothing changed
    assert _raw(path)[1] == after


def test_the_first_layouts_indexes_made_again_by_an_older_build_are_dropped_at_open(tmp_path: Path) -> None:
    path = _old_journal(tmp_path, PREVIOUS_FILE)
    conn = sqlite3.connect(path)  # what the build before the previous one did at open to a file without them
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
    path = _old_journal(tmp_path, PREVIOUS_FILE)
    before = _raw(path)
    failing = (*journal_sqlite._SQL_RECORDS_SPLIT, "SELECT no_such_column FROM idempotency")
    monkeypatch.setattr(journal_sqlite, "_SQL_RECORDS_SPLIT", failing)
    with pytest.raises(JournalError):
        SQLiteJournal(path)
    assert _raw(path) == before  # the last statement failed: everything before it rolled back
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT type FROM sqlite_master WHERE name = 'idempotency'").fetchone() == ("table",)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'idempotency_%'").fetchone() == (0,)
    finally:
        conn.close()
    monkeypatch.undo()
    SQLiteJournal(path).close()
    key, rows, indexes = _raw(path)
    assert key == ["client_order_id", "account_id"] and rows == before[1] and indexes == set()


def _program(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [row[1] for row in conn.execute("EXPLAIN " + sql, (1,) * sql.count("?"))]


def test_writing_a_status_builds_no_ephemeral_table(tmp_path: Path) -> None:
    """The claim's insert, the completion, the reclaim and mark_unknown check the status against
    three values: as ``IN (…)`` (the previous layout) each run built an ephemeral table of them."""
    path = _old_journal(tmp_path, PREVIOUS_FILE)
    conn = sqlite3.connect(path)
    try:  # what each completion cost before
        assert "OpenEphemeral" in _program(conn, "UPDATE idempotency SET status = ?, report_json = ?, updated_at = ? "
                                                 "WHERE account_id = ? AND client_order_id = ?")
    finally:
        conn.close()
    SQLiteJournal(path).close()
    conn = sqlite3.connect(path)
    try:
        for sql in (journal_sqlite._SQL_INSERT, journal_sqlite._SQL_COMPLETE, journal_sqlite._SQL_RECLAIM,
                    journal_sqlite._SQL_MARK_UNKNOWN):
            program = _program(conn, sql)
            assert "Insert" in program and "OpenEphemeral" not in program, (sql, program)  # it writes the row, building nothing
    finally:
        conn.close()


def _wal_frames(path: Path) -> int:
    size = os.path.getsize(f"{path}-wal")
    return 0 if size == 0 else (size - 32) // (RECORD_PAGE_SIZE + 24)


REPORT = '{"status":"FILLED","text":"' + "r" * 600 + '"}'
INTENT = '{"symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.005","limit_price":"39433.67","text":"' + "i" * 100 + '"}'
CONTEXT = '{"mode":"paper","account_id":"stress","strategy_id":"sender0","session_id":"stress","correlation_id":"","text":"' + "c" * 40 + '"}'


def _frames_per_write(tmp_path: Path, ids: list[str], batch: int = 1) -> tuple[list[float], list[float]]:
    """WAL frames (pages) per record that each claim batch of ``ids`` and each completion batch wrote
    (the completions of a batch follow its claims), the second half of them."""
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path, synchronous="OFF", checkpoint_off_path=True, page_size=RECORD_PAGE_SIZE)
    claims: list[float] = []
    completions: list[float] = []
    try:
        for i in range(0, len(ids), batch):
            part = ids[i:i + batch]
            start = _wal_frames(path)
            results = j.claim_batch([Claim("acc-1", coid, "f" * 64, INTENT, CONTEXT, "paper", NOW) for coid in part], ttl_s=TTL)
            assert {r.outcome for r in results} == {"CLAIMED"}
            mid = _wal_frames(path)
            assert j.complete_batch([Completion("acc-1", coid, "COMPLETED", REPORT, NOW) for coid in part]) == len(part)
            if i >= len(ids) // 2:
                claims.append((mid - start) / len(part))
                completions.append((_wal_frames(path) - mid) / len(part))
    finally:
        j.close()
    return claims, completions


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def test_a_batch_of_claims_from_many_senders_writes_few_pages(tmp_path: Path) -> None:
    """Sixteen senders' ids (``run.py stress``: each sender's ids in order, the senders' interleaved),
    40 claims a transaction and their completions: a batch's records fill the last pages of their
    table, its key entries (~25 bytes) share the index's leaves, a completion updates its row in
    place and appends its report: ~0.38 pages a claim, ~0.23 a completion. With the JSON in rows
    keyed by the id (the previous layout) this wrote ~1.25 pages a claim and ~1.5 a completion
    (its row grew by the report where it stood)."""
    claims, completions = _frames_per_write(tmp_path, [f"s{i % 16:02d}-{i // 16:06d}" for i in range(4000)], batch=40)
    assert _median(claims) <= 0.6, claims
    assert _median(completions) <= 0.4, completions


def test_a_lone_claim_and_its_completion_write_two_pages_each(tmp_path: Path) -> None:
    """One claim a transaction (one sender), ids in no order: the record's page (the table's last)
    and the index leaf of its key; a completion the record's page and the reports' last. (The
    previous layout: one page a completion, and a claim one page at the median but ~3 on average,
    its ~1 KB rows splitting leaves.)"""
    rng = random.Random(7)
    claims, completions = _frames_per_write(tmp_path, [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(300)])
    assert _median(claims) == 2, claims
    assert _median(completions) == 2, completions


def test_the_views_writes_and_the_journals_keep_each_report_with_its_record(tmp_path: Path) -> None:
    """Retention retires and deletes records through the view; a release, a reclaim, a repeated
    completion and mark_unknown through the journal: no report row is left without its record."""
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path)
    try:
        j.claim_batch([_claim(c, now=100.0) for c in ("keep", "retire", "drop", "release", "reclaim", "unknown")], ttl_s=TTL)
        j.complete_batch([Completion("acc-1", c, "COMPLETED", f'{{"r":"{c}"}}', 101.0) for c in ("keep", "retire", "drop", "reclaim")])
        assert j.complete_batch([Completion("acc-1", "keep", "COMPLETED", '{"r":"first"}', 102.0),
                                 Completion("acc-1", "keep", "COMPLETED", '{"r":"second"}', 103.0),
                                 Completion("acc-1", "absent", "COMPLETED", '{"r":"none"}', 103.0)]) == 2
        assert j.mark_unknown("acc-1", "unknown", 104.0, '{"r":"in doubt"}') and not j.mark_unknown("acc-1", "keep", 104.0, "{}")
        assert j.release("acc-1", "release")
        assert j.claim_batch([_claim("reclaim", fp="e" * 64, now=100.0 + 2 * TTL)], ttl_s=TTL)[0].outcome == "EXPIRED_RECLAIMED"
    finally:
        j.close()
    conn = sqlite3.connect(path)
    with conn:  # retention's statements (actors/audit/retention.py)
        conn.execute("UPDATE idempotency SET intent_json = ?, context_json = ? WHERE account_id = ? AND client_order_id = ? "
                     "AND status = 'COMPLETED'", (RETIRED_INTENT, RETIRED_INTENT, "acc-1", "retire"))
        conn.execute("DELETE FROM idempotency WHERE account_id = ? AND client_order_id = ? AND status = 'COMPLETED'", ("acc-1", "drop"))
        conn.execute(f"INSERT INTO idempotency ({_COLS}) VALUES ('acc-2', 'tool', 'fp', 'COMPLETED', '{{}}', 1.0, 2.0, 'i', 'c', 'paper')")
    with pytest.raises(sqlite3.IntegrityError, match="cannot change"):
        conn.execute("UPDATE idempotency SET client_order_id = 'other' WHERE client_order_id = 'keep'")
    conn.close()
    _tables_agree(path)
    j = SQLiteJournal(path)
    try:
        records = {r.client_order_id: r for r in j.load_records()}
        assert set(records) == {"keep", "reclaim", "unknown", "tool"}  # retired ones are not loaded
        assert records["keep"].report_json == '{"r":"second"}' and records["keep"].updated_at == 103.0
        assert (records["reclaim"].status, records["reclaim"].report_json, records["reclaim"].fingerprint) == ("IN_PROGRESS", None, "e" * 64)
        assert (records["unknown"].status, records["unknown"].report_json) == ("UNKNOWN", '{"r":"in doubt"}')
        assert records["tool"] == IdempotencyRecord("acc-2", "tool", "fp", "COMPLETED", "{}", 1.0, 2.0, "i", "c", "paper")
        retired = j.get("acc-1", "retire")
        assert (retired.intent_json, retired.context_json, retired.report_json) == (RETIRED_INTENT, RETIRED_INTENT, '{"r":"retire"}')
        assert j.get("acc-1", "drop") is None and j.get("acc-1", "release") is None
    finally:
        j.close()


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
