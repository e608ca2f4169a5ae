"""Tests for actors.journal.sqlite: idempotency claims, group commit, fail-closed writes, ledger rows."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors.journal.sqlite import (
    SCHEMA_VERSION,
    Claim,
    Completion,
    FillRow,
    JournalError,
    JournalStore,
    MemoryJournal,
    OrderEventRow,
    SQLiteJournal,
)
from protocols import Fill, OrderStatus, Side

REPO = Path(__file__).resolve().parents[2]
TTL = 3600.0


def claim(coid: str = "c-1", fp: str = "fp-a", now: float = 1000.0, account: str = "acc-1") -> Claim:
    return Claim(account, coid, fp, f'{{"client_order_id":"{coid}"}}', '{"mode":"paper"}', "paper", now)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _open_journal(request, tmp_path: Path):
    if request.param == "memory":
        yield MemoryJournal()
        return
    if request.param == "sqlite":
        j = SQLiteJournal(tmp_path / "journal.db")
        yield j
        j.close()
        return
    from actors.journal.postgres import PostgresBackend

    backend = PostgresBackend.open(request.getfixturevalue("pg_url"))
    j = backend.journal()
    yield j
    j.close()
    backend.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request, tmp_path: Path):
    """The same contract over both backends: a SQLite file, and a fresh PostgreSQL database."""
    yield from _open_journal(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def any_journal(request, tmp_path: Path):
    """Both durable backends and the memory journal a runtime with the journal off uses."""
    yield from _open_journal(request, tmp_path)


# ---------------------------------------------------------------------------
# idempotency outcomes
# ---------------------------------------------------------------------------


def test_implements_the_protocol(journal: SQLiteJournal) -> None:
    assert isinstance(journal, JournalStore)


def test_first_claim_writes_an_in_progress_record(journal: SQLiteJournal) -> None:
    [res] = journal.claim_batch([claim()], ttl_s=TTL)
    assert res.outcome == "CLAIMED"
    assert res.record.status == "IN_PROGRESS"
    assert res.record.created_at == res.record.updated_at == 1000.0
    assert journal.get("acc-1", "c-1") == res.record
    assert journal.get("acc-1", "other") is None
    assert journal.get("acc-2", "c-1") is None  # the key includes the account


def test_same_key_in_progress_is_in_flight_and_different_fingerprint_conflicts(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim()], ttl_s=TTL)
    [same] = journal.claim_batch([claim(now=1001.0)], ttl_s=TTL)
    [diff] = journal.claim_batch([claim(fp="fp-b", now=1002.0)], ttl_s=TTL)
    assert same.outcome == "IN_FLIGHT" and same.record.fingerprint == "fp-a"
    assert diff.outcome == "CONFLICT" and diff.record.fingerprint == "fp-a"
    assert journal.get("acc-1", "c-1").fingerprint == "fp-a"  # nothing overwritten


def test_completed_same_fingerprint_replays_cached_report(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim()], ttl_s=TTL)
    assert journal.complete("acc-1", "c-1", "COMPLETED", '{"status":"FILLED"}', now=1005.0) is True
    [res] = journal.claim_batch([claim(now=1010.0)], ttl_s=TTL)
    assert res.outcome == "REPLAY"
    assert res.record.report_json == '{"status":"FILLED"}'
    assert res.record.updated_at == 1005.0
    [conflict] = journal.claim_batch([claim(fp="fp-b", now=1010.0)], ttl_s=TTL)
    assert conflict.outcome == "CONFLICT"


def test_unknown_record_is_in_flight_not_replayed(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim()], ttl_s=TTL)
    assert journal.mark_unknown("acc-1", "c-1", now=1001.0, report_json='{"status":"UNKNOWN"}')
    [res] = journal.claim_batch([claim(now=1002.0)], ttl_s=TTL)
    assert res.outcome == "IN_FLIGHT"
    assert res.record.status == "UNKNOWN"


def test_ttl_expiry_reclaims_completed_records_only(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim("done"), claim("busy"), claim("amb")], ttl_s=TTL)
    journal.complete("acc-1", "done", "COMPLETED", "{}", now=1000.0)
    journal.mark_unknown("acc-1", "amb", now=1000.0)
    # exactly at the TTL: still replayed ("older than" is strict)
    [at] = journal.claim_batch([claim("done", now=1000.0 + TTL)], ttl_s=TTL)
    assert at.outcome == "REPLAY"
    later = 1000.0 + TTL + 0.001
    done, busy, amb = journal.claim_batch(
        [claim("done", fp="fp-new", now=later), claim("busy", now=later), claim("amb", now=later)], ttl_s=TTL
    )
    assert done.outcome == "EXPIRED_RECLAIMED"
    assert done.record.status == "IN_PROGRESS" and done.record.fingerprint == "fp-new"
    assert done.record.created_at == later and done.record.report_json is None
    assert done.previous is not None and done.previous.status == "COMPLETED"
    assert busy.outcome == "IN_FLIGHT"  # IN_PROGRESS never expires
    assert amb.outcome == "IN_FLIGHT"  # UNKNOWN never expires
    assert journal.get("acc-1", "done") == done.record


def test_ttl_is_measured_from_completion_not_creation(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim(now=0.0)], ttl_s=TTL)
    journal.complete("acc-1", "c-1", "COMPLETED", "{}", now=5000.0)  # took longer than the TTL
    [res] = journal.claim_batch([claim(now=5001.0)], ttl_s=TTL)
    assert res.outcome == "REPLAY"


def test_ttl_none_never_expires(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim()], ttl_s=None)
    journal.complete("acc-1", "c-1", "COMPLETED", "{}", now=1000.0)
    [res] = journal.claim_batch([claim(now=1e12)], ttl_s=None)
    assert res.outcome == "REPLAY"


def test_duplicates_inside_one_batch_are_resolved_in_order(journal: SQLiteJournal) -> None:
    results = journal.claim_batch([claim(), claim(), claim(fp="fp-b"), claim("c-2")], ttl_s=TTL)
    assert [r.outcome for r in results] == ["CLAIMED", "IN_FLIGHT", "CONFLICT", "CLAIMED"]
    assert journal.stats().batches == 1
    assert journal.stats().rows == 2


# ---------------------------------------------------------------------------
# one account per client_order_id (the idempotency store is the one owner of duplicate ids)
# ---------------------------------------------------------------------------


def test_an_id_another_account_holds_is_refused_whatever_its_status(any_journal) -> None:
    j = any_journal
    j.claim_batch([claim("busy"), claim("done"), claim("amb"), claim("old")], ttl_s=TTL)
    j.complete("acc-1", "done", "COMPLETED", "{}", now=1000.0)
    j.complete("acc-1", "old", "COMPLETED", "{}", now=1000.0)
    j.mark_unknown("acc-1", "amb", now=1000.0)
    later = 1000.0 + TTL + 1  # "old" has expired for acc-1's own replays; acc-1 still holds the id
    results = j.claim_batch([claim(k, now=later, account="acc-2") for k in ("busy", "done", "amb", "old")], ttl_s=TTL)
    assert [r.outcome for r in results] == ["OTHER_ACCOUNT"] * 4
    assert all(r.record.account_id == "acc-1" for r in results)
    for k in ("busy", "done", "amb", "old"):
        assert j.get("acc-2", k) is None  # nothing written for the refused account
    # the holder's own semantics are untouched: replay, in flight, and its own reclaim after the TTL
    own = j.claim_batch([claim("done", now=1001.0), claim("busy", now=1001.0), claim("old", fp="fp-b", now=later)], ttl_s=TTL)
    assert [r.outcome for r in own] == ["REPLAY", "IN_FLIGHT", "EXPIRED_RECLAIMED"]


def test_one_batch_with_one_id_under_two_accounts_claims_it_once(any_journal) -> None:
    j = any_journal
    results = j.claim_batch([claim("x", account="acc-2"), claim("x", account="acc-1"), claim("x", account="acc-2")], ttl_s=TTL)
    assert [r.outcome for r in results] == ["CLAIMED", "OTHER_ACCOUNT", "IN_FLIGHT"]
    assert j.get("acc-2", "x") is not None and j.get("acc-1", "x") is None


def test_a_released_id_may_be_claimed_by_another_account(any_journal) -> None:
    """Release means the order provably never left: the id is free again, for any account."""
    j = any_journal
    j.claim_batch([claim("r")], ttl_s=TTL)
    assert j.claim_batch([claim("r", account="acc-2")], ttl_s=TTL)[0].outcome == "OTHER_ACCOUNT"
    assert j.release("acc-1", "r") is True
    assert j.claim_batch([claim("r", account="acc-2")], ttl_s=TTL)[0].outcome == "CLAIMED"
    assert j.claim_batch([claim("r")], ttl_s=TTL)[0].outcome == "OTHER_ACCOUNT"


def test_a_journal_holding_an_id_under_two_accounts_opens_and_keeps_each_key(tmp_path: Path) -> None:
    """A journal written before the one-account rule may hold an id under several accounts: it opens
    (the key is the id and the account), each old record still answers its own key, and nobody claims the
    id again while another account's record of it exists."""
    path = tmp_path / "old.db"
    SQLiteJournal(path).close()
    conn = sqlite3.connect(path)  # as an older build left it: keyed account first, no index on the id, one id under two accounts
    conn.executescript("DROP VIEW idempotency; DROP TABLE idempotency_records; "
                       "DROP TABLE idempotency_reports")  # this build's records (a view over two tables)
    conn.execute("CREATE TABLE idempotency (account_id TEXT NOT NULL, client_order_id TEXT NOT NULL, fingerprint TEXT NOT NULL, "
                 "status TEXT NOT NULL, report_json TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, intent_json TEXT NOT NULL, "
                 "context_json TEXT NOT NULL, adapter_id TEXT NOT NULL, PRIMARY KEY (account_id, client_order_id)) WITHOUT ROWID")
    for account in ("acc-1", "acc-2"):
        conn.execute("INSERT INTO idempotency VALUES (?, 'shared', 'fp-a', 'COMPLETED', '{}', 1000.0, 1000.0, '{}', '{}', 'paper')",
                     (account,))
    conn.commit()
    conn.close()
    j = SQLiteJournal(path)
    try:
        results = j.claim_batch([claim("shared", now=1001.0), claim("shared", now=1001.0, account="acc-2"),
                                 claim("shared", now=1001.0, account="acc-3"),
                                 claim("shared", fp="fp-b", now=1000.0 + TTL + 1, account="acc-2")], ttl_s=TTL)
        assert [r.outcome for r in results] == ["REPLAY", "REPLAY", "OTHER_ACCOUNT", "OTHER_ACCOUNT"]
        assert j.get("acc-2", "shared").fingerprint == "fp-a"  # the expired record was not reclaimed
    finally:
        j.close()
    conn = sqlite3.connect(path)
    try:  # migrated at open: keyed by the id first, both records kept
        assert [c[2] for c in conn.execute("PRAGMA index_info(idempotency_key)")] == [
            "client_order_id", "account_id"]
        assert conn.execute("SELECT account_id FROM idempotency WHERE client_order_id = 'shared' ORDER BY 1").fetchall() == [
            ("acc-1",), ("acc-2",)]
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# group commit and fail-closed behaviour
# ---------------------------------------------------------------------------


def test_group_commit_one_transaction_for_a_hundred_claims(journal: SQLiteJournal) -> None:
    if not isinstance(journal, SQLiteJournal):
        results = journal.claim_batch([claim(f"c-{i}") for i in range(100)], ttl_s=TTL)
        assert [r.outcome for r in results] == ["CLAIMED"] * 100
        s = journal.stats()
        assert (s.batches, s.rows, s.items, s.max_batch) == (1, 100, 100, 100)
        import psycopg  # every row was written by one PostgreSQL transaction: one xmin

        with psycopg.connect(journal._backend.url) as conn:
            assert conn.execute("SELECT count(*), count(DISTINCT xmin::text) FROM flowroute.idempotency").fetchone() == (100, 1)
        return
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
    results = journal.claim_batch([claim(f"c-{i}") for i in range(100)], ttl_s=TTL)
    journal._conn.set_trace_callback(None)  # type: ignore[union-attr]
    assert [r.outcome for r in results] == ["CLAIMED"] * 100
    s = journal.stats()
    assert (s.batches, s.rows, s.items, s.max_batch) == (1, 100, 100, 100)
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert statements.count("COMMIT") == 1
    assert sum(s.startswith("INSERT") for s in statements) == 100


def test_a_lone_claim_of_a_new_id_is_one_statement(tmp_path: Path) -> None:
    """One claim a transaction (one sender): a new id is inserted by one statement, no look-up first
    (each statement gives up and retakes the GIL on the claim's critical path); an id with a record
    is decided from its look-up as in a batch, with nothing written by the first statement."""
    j = SQLiteJournal(tmp_path / "j.db")
    try:
        statements: list[str] = []
        j._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
        first = j.claim_batch([claim("lone")], ttl_s=TTL)
        assert [s.split()[0] for s in statements] == ["BEGIN", "INSERT", "COMMIT"], statements
        assert first[0].outcome == "CLAIMED" and first[0].record == j.get("acc-1", "lone")
        statements.clear()
        again = j.claim_batch([claim("lone")], ttl_s=TTL)
        other = j.claim_batch([claim("lone", account="acc-2")], ttl_s=TTL)
        j._conn.set_trace_callback(None)  # type: ignore[union-attr]
        assert [again[0].outcome, other[0].outcome] == ["IN_FLIGHT", "OTHER_ACCOUNT"]
        assert sum(s.startswith("SELECT") for s in statements) == 2
        assert [r.key for r in j.load_records()] == [("acc-1", "lone")]
    finally:
        j.close()


def test_injected_failure_rolls_back_the_whole_batch(journal: SQLiteJournal) -> None:
    journal.inject_failure(1)
    with pytest.raises(JournalError, match="rolled back"):
        journal.claim_batch([claim(f"c-{i}") for i in range(10)], ttl_s=TTL)
    assert all(journal.get("acc-1", f"c-{i}") is None for i in range(10))
    assert journal.stats().failures == 1 and journal.stats().batches == 0
    # the next write works again and sees a clean slate
    assert {r.outcome for r in journal.claim_batch([claim(f"c-{i}") for i in range(10)], ttl_s=TTL)} == {"CLAIMED"}


def test_fail_writes_hook_makes_every_kind_of_write_fail_closed(tmp_path: Path) -> None:
    failing = [False]
    j = SQLiteJournal(tmp_path / "j.db", fail_writes=lambda: failing[0])
    j.claim_batch([claim()], ttl_s=TTL)
    failing[0] = True
    with pytest.raises(JournalError):
        j.complete("acc-1", "c-1", "COMPLETED", "{}", now=1001.0)
    with pytest.raises(JournalError):
        j.mark_unknown("acc-1", "c-1", now=1001.0)
    with pytest.raises(JournalError):
        j.record_ledger([OrderEventRow(1, 1.0, "acc-1", "c-1", "RESERVED", "SUBMITTING")], [fill_row("t-1")])
    assert j.get("acc-1", "c-1").status == "IN_PROGRESS"
    assert j.load_orders() == [] and j.load_fills() == []
    failing[0] = False
    assert j.complete("acc-1", "c-1", "COMPLETED", "{}", now=1002.0)
    j.close()


def test_a_real_sqlite_error_mid_batch_rolls_back_earlier_rows(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    SQLiteJournal(path).close()
    with sqlite3.connect(path) as raw:  # a trigger that aborts the insert of one poisoned key
        raw.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON idempotency_records WHEN NEW.client_order_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
        )
    raw.close()
    j = SQLiteJournal(path)
    with pytest.raises(JournalError, match="poisoned"):
        j.claim_batch([claim("ok-1"), claim("poison"), claim("ok-2")], ttl_s=TTL)
    assert j.get("acc-1", "ok-1") is None and j.get("acc-1", "ok-2") is None
    assert j.claim_batch([claim("ok-1")], ttl_s=TTL)[0].outcome == "CLAIMED"
    j.close()


def _hold_reserved_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding a RESERVED lock on a brand-new (rollback-journal) file."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE IF NOT EXISTS held (x)")
    return other


def test_opening_a_new_journal_waits_for_another_connections_lock(tmp_path: Path) -> None:
    """Regression: two connections opening one new journal at once. SQLite refuses the switch
    to WAL at once ("database is locked", no busy handler) while another holds a lock; the open
    must wait for it within busy_timeout, not fail (it killed an actor at start-up)."""
    import threading

    path = tmp_path / "journal.sqlite"
    other = _hold_reserved_lock(path)
    release = threading.Timer(0.2, lambda: other.execute("ROLLBACK"))
    release.start()
    try:
        j = SQLiteJournal(path, busy_timeout_ms=5000)
        assert j.journal_mode == "wal"
        j.close()
    finally:
        release.join()
        other.close()


def test_opening_a_journal_locked_past_busy_timeout_names_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    other = _hold_reserved_lock(path)
    try:
        with pytest.raises(JournalError, match=r"cannot open journal .*journal.sqlite: database is locked"):
            SQLiteJournal(path, busy_timeout_ms=100)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_closed_journal_raises_journal_error(journal: SQLiteJournal) -> None:
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        journal.claim_batch([claim()], ttl_s=TTL)
    with pytest.raises(JournalError, match="closed"):
        journal.get("acc-1", "c-1")


# ---------------------------------------------------------------------------
# files, durability, schema
# ---------------------------------------------------------------------------


def test_files_are_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "sub" / "journal.db"
        j = SQLiteJournal(path)
        j.claim_batch([claim()], ttl_s=TTL)
        assert mode_of(path) == 0o600
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            assert side.exists()
            assert mode_of(side) == 0o600
        j.close()
    finally:
        os.umask(old)


def test_existing_file_with_wide_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.touch()
    os.chmod(path, 0o644)
    SQLiteJournal(path).close()
    assert mode_of(path) == 0o600


def test_records_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = SQLiteJournal(path)
    j.claim_batch([claim("a"), claim("b")], ttl_s=TTL)
    j.complete("acc-1", "a", "COMPLETED", '{"r":1}', now=1001.0)
    j.close()
    j2 = SQLiteJournal(path)
    assert j2.claim_batch([claim("a", now=1002.0)], ttl_s=TTL)[0].outcome == "REPLAY"
    assert [r.client_order_id for r in j2.load_unresolved()] == ["b"]
    assert j2.journal_mode == "wal" and j2.durable
    j2.close()


def test_committed_claims_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from actors.journal.sqlite import SQLiteJournal, Claim
        j = SQLiteJournal({str(path)!r})
        for b in range(5):
            j.claim_batch([Claim("acc", f"c-{{b}}-{{i}}", "fp", "{{}}", "{{}}", "paper", 1.0) for i in range(20)], 3600.0)
        os.kill(os.getpid(), 9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    j = SQLiteJournal(path)
    unresolved = j.load_unresolved()
    assert len(unresolved) == 100
    assert j.mark_all_unknown(now=2.0) == 100
    assert {r.status for r in j.load_unresolved()} == {"UNKNOWN"}
    j.close()


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    SQLiteJournal(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    raw.close()
    with pytest.raises(JournalError, match="schema_version 999"):
        SQLiteJournal(path)


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    SQLiteJournal(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    raw.close()


def test_not_a_database_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="cannot open journal"):
        SQLiteJournal(path)


def test_in_memory_journal_works_and_is_not_durable() -> None:
    j = SQLiteJournal(None, synchronous="OFF")
    assert j.claim_batch([claim()], ttl_s=TTL)[0].outcome == "CLAIMED"
    assert not j.durable and j.path is None and j.journal_mode == "memory"
    j.close()


@pytest.mark.parametrize("sync", ["FULL", "NORMAL", "OFF", "normal"])
def test_synchronous_modes_accepted(tmp_path: Path, sync: str) -> None:
    j = SQLiteJournal(tmp_path / "j.db", synchronous=sync)  # type: ignore[arg-type]
    assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == {"FULL": 2, "NORMAL": 1, "OFF": 0}[sync.upper()]  # type: ignore[union-attr]
    j.close()


# ---------------------------------------------------------------------------
# recovery support
# ---------------------------------------------------------------------------


def test_load_unresolved_returns_in_progress_and_unknown_oldest_first(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim("c", now=3.0), claim("a", now=1.0), claim("b", now=2.0), claim("d", now=4.0)], ttl_s=TTL)
    journal.complete("acc-1", "d", "COMPLETED", "{}", now=5.0)
    journal.mark_unknown("acc-1", "b", now=5.0)
    got = journal.load_unresolved()
    assert [(r.client_order_id, r.status) for r in got] == [("a", "IN_PROGRESS"), ("b", "UNKNOWN"), ("c", "IN_PROGRESS")]
    assert got[0].intent_json == '{"client_order_id":"a"}' and got[0].adapter_id == "paper"


def test_mark_unknown_never_downgrades_a_completed_record(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim()], ttl_s=TTL)
    journal.complete("acc-1", "c-1", "COMPLETED", '{"r":1}', now=2.0)
    assert journal.mark_unknown("acc-1", "c-1", now=3.0) is False
    assert journal.mark_all_unknown(now=3.0) == 0
    rec = journal.get("acc-1", "c-1")
    assert rec.status == "COMPLETED" and rec.report_json == '{"r":1}'


def test_release_frees_only_in_progress_keys(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim("a"), claim("b"), claim("c")], ttl_s=TTL)
    journal.complete("acc-1", "b", "COMPLETED", "{}", now=1.0)
    journal.mark_unknown("acc-1", "c", now=1.0)
    assert journal.release("acc-1", "a") is True
    assert journal.release_batch([("acc-1", "b"), ("acc-1", "c"), ("acc-1", "missing")]) == 0
    assert journal.get("acc-1", "a") is None
    assert journal.get("acc-1", "b").status == "COMPLETED" and journal.get("acc-1", "c").status == "UNKNOWN"
    assert journal.claim_batch([claim("a", fp="fp-other")], ttl_s=TTL)[0].outcome == "CLAIMED"
    with pytest.raises(TypeError, match="keys"):
        journal.release_batch(["acc-1/a"])  # type: ignore[list-item]


def test_complete_unknown_key_returns_false_and_bad_status_is_refused(journal: SQLiteJournal) -> None:
    assert journal.complete("acc-1", "nope", "COMPLETED", None, now=1.0) is False
    journal.claim_batch([claim()], ttl_s=TTL)
    with pytest.raises(ValueError, match="status"):
        journal.complete("acc-1", "c-1", "FILLED", None, now=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        journal.complete("acc-1", "c-1", "IN_PROGRESS", None, now=1.0)
    assert journal.complete_batch(
        [Completion("acc-1", "c-1", "UNKNOWN", None, 2.0), Completion("acc-1", "x", "COMPLETED", None, 2.0)]
    ) == 1
    assert journal.get("acc-1", "c-1").status == "UNKNOWN"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"account_id": ""}, "account_id"),
        ({"client_order_id": 5}, "client_order_id"),
        ({"fingerprint": ""}, "fingerprint"),
        ({"intent_json": None}, "intent_json"),
        ({"now": float("nan")}, "now"),
        ({"now": True}, "now"),
    ],
)
def test_bad_claims_name_the_field(kwargs: dict, field: str) -> None:
    base = dict(account_id="a", client_order_id="c", fingerprint="f", intent_json="{}", context_json="{}",
                adapter_id="paper", now=1.0)
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=field):
        Claim(**base)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), "3600"])
def test_bad_ttl_is_refused_before_writing(journal: SQLiteJournal, ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        journal.claim_batch([claim()], ttl_s=ttl)  # type: ignore[arg-type]
    assert journal.get("acc-1", "c-1") is None


def test_empty_batches_do_not_open_transactions(journal: SQLiteJournal) -> None:
    assert journal.claim_batch([], ttl_s=TTL) == []
    assert journal.complete_batch([]) == 0
    assert journal.record_ledger([], []) == (0, [])
    assert journal.stats().batches == 0


# ---------------------------------------------------------------------------
# ledger rows: order events and fills
# ---------------------------------------------------------------------------


def fill_row(trade_id: str, adapter: str = "paper", qty: str = "0.5", coid: str = "c-1") -> FillRow:
    fill = Fill(trade_id=trade_id, qty=Decimal(qty), price=Decimal("39400.10"), fee=Decimal("0.0197005"),
                fee_currency="USDT", liquidity="TAKER", ts=datetime(2021, 1, 8, 0, 0, 1, 123456, tzinfo=UTC))
    return FillRow(adapter, "acc-1", coid, "BTC/USDT", Side.BUY, fill)


def test_fills_are_journaled_once_per_trade_id_and_adapter(journal: SQLiteJournal) -> None:
    journal.claim_batch([claim()], ttl_s=TTL)  # a fill belongs to a claimed order (PostgreSQL loads its owner's)
    assert journal.record_fills([fill_row("t-1"), fill_row("t-2"), fill_row("t-1")]) == [True, True, False]
    assert journal.record_fills([fill_row("t-1"), fill_row("t-1", adapter="shadow")]) == [False, True]
    rows = journal.load_fills()
    assert [(r.adapter_id, r.trade_id) for r in rows] == [("paper", "t-1"), ("paper", "t-2"), ("shadow", "t-1")]
    assert rows[0] == fill_row("t-1")  # exact round trip: Decimals, liquidity, microsecond timestamp


def test_order_events_round_trip_and_ignore_repeats(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = SQLiteJournal(path)
    events = [
        OrderEventRow(1, 10.5, "acc-1", "c-1", OrderStatus.INITIALIZED, OrderStatus.RESERVED, "RESERVED"),
        OrderEventRow(2, 10.6, "acc-1", "c-1", "RESERVED", "SUBMITTING", "SUBMITTED"),
    ]
    assert j.record_order_events(events) == 2
    n, flags = j.record_ledger(events + [OrderEventRow(3, 10.7, "acc-1", "c-1", "SUBMITTING", "FILLED", "fill t-1")],
                               [fill_row("t-1")])
    assert (n, flags) == (1, [True])
    assert j.stats().batches == 2
    j.close()
    loaded = SQLiteJournal(path).load_orders()
    assert [e.seq for e in loaded] == [1, 2, 3]
    assert loaded[0].from_status == "INITIALIZED" and loaded[0].to_status == "RESERVED"


def test_bad_ledger_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="seq"):
        OrderEventRow(-1, 1.0, "a", "c", "X", "Y")
    with pytest.raises(ValueError, match="side"):
        FillRow("paper", "a", "c", "BTC/USDT", "HOLD", fill_row("t").fill)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fill"):
        FillRow("paper", "a", "c", "BTC/USDT", Side.BUY, {"trade_id": "t"})  # type: ignore[arg-type]


def test_hand_edited_fill_row_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = SQLiteJournal(path)
    j.record_fills([fill_row("t-1")])
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE fills SET qty = 'lots'")
    raw.close()
    with pytest.raises(JournalError, match="t-1"):
        j.load_fills()
    j.close()


# ---------------------------------------------------------------------------
# property-based: the store behaves like a simple model
# ---------------------------------------------------------------------------

KEYS = st.sampled_from(["k1", "k2", "k3"])
FPS = st.sampled_from(["fa", "fb"])


class JournalMachine(RuleBasedStateMachine):
    """Claims, completions, unknowns and TTL expiry against a dict model."""

    def __init__(self) -> None:
        super().__init__()
        self.j = SQLiteJournal(None)
        self.model: dict[str, dict] = {}
        self.now = 0.0
        self.ttl = 100.0

    def expected(self, key: str, fp: str) -> str:
        rec = self.model.get(key)
        if rec is None:
            return "CLAIMED"
        if rec["status"] == "COMPLETED" and self.now - rec["updated"] > self.ttl:
            return "EXPIRED_RECLAIMED"
        if rec["fp"] != fp:
            return "CONFLICT"
        return "REPLAY" if rec["status"] == "COMPLETED" else "IN_FLIGHT"

    @rule(batch=st.lists(st.tuples(KEYS, FPS), min_size=1, max_size=5), fail=st.booleans())
    def claim(self, batch: list[tuple[str, str]], fail: bool) -> None:
        claims = [Claim("acc", k, fp, "{}", "{}", "paper", self.now) for k, fp in batch]
        if fail:
            self.j.inject_failure(1)
            with pytest.raises(JournalError):
                self.j.claim_batch(claims, ttl_s=self.ttl)
            return
        results = self.j.claim_batch(claims, ttl_s=self.ttl)
        for (k, fp), res in zip(batch, results, strict=False):
            assert res.outcome == self.expected(k, fp)
            if res.outcome in ("CLAIMED", "EXPIRED_RECLAIMED"):
                self.model[k] = {"fp": fp, "status": "IN_PROGRESS", "updated": self.now}

    @rule(key=KEYS, status=st.sampled_from(["COMPLETED", "UNKNOWN"]))
    def complete(self, key: str, status: str) -> None:
        assert self.j.complete("acc", key, status, "{}", self.now) == (key in self.model)  # type: ignore[arg-type]
        if key in self.model:
            self.model[key].update(status=status, updated=self.now)

    @rule(key=KEYS)
    def mark_unknown(self, key: str) -> None:
        rec = self.model.get(key)
        changed = rec is not None and rec["status"] != "COMPLETED"
        assert self.j.mark_unknown("acc", key, self.now) == changed
        if changed:
            rec.update(status="UNKNOWN", updated=self.now)

    @rule(dt=st.sampled_from([0.0, 1.0, 60.0, 100.0, 150.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def unresolved_matches(self) -> None:
        got = {r.client_order_id for r in self.j.load_unresolved()}
        assert got == {k for k, r in self.model.items() if r["status"] != "COMPLETED"}

    def teardown(self) -> None:
        self.j.close()


TestJournalMachine = JournalMachine.TestCase
TestJournalMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=40, deadline=None)
@given(qty=st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e9"), places=8),
       fee=st.decimals(min_value=Decimal(0), max_value=Decimal("1000"), places=10))
def test_fill_decimals_round_trip_exactly(qty: Decimal, fee: Decimal) -> None:
    j = SQLiteJournal(None)
    row = FillRow("paper", "acc", "c", "BTC/USDT", Side.SELL,
                  Fill(trade_id="t", qty=qty, price=Decimal("1.5"), fee=fee))
    j.record_fills([row])
    [back] = j.load_fills()
    assert back.fill.qty == qty and back.fill.fee == fee and back == row
    j.close()


def test_the_reservation_is_a_typed_column_of_the_reserved_row(journal) -> None:
    """Risk's reservation at intake is journaled as a Decimal of its own, never in the free-text
    cause; it comes back as it went in (the cause says nothing about it)."""
    journal.claim_batch([claim("r-1")], TTL)  # PostgreSQL reads the transitions of its own claimed orders
    rows = [OrderEventRow(1, 1.0, "acc-1", "r-1", "INITIALIZED", "RESERVED", "reserved at intake", Decimal("39.43362000")),
            OrderEventRow(2, 2.0, "acc-1", "r-1", "RESERVED", "SUBMITTING", "sent")]
    journal.record_order_events(rows)
    loaded = {r.seq: r for r in journal.load_orders()}
    assert loaded[1].reserved == Decimal("39.43362000") and loaded[2].reserved is None
    with pytest.raises(ValueError, match="reserved must be a Decimal >= 0"):
        OrderEventRow(1, 1.0, "acc-1", "r-2", "INITIALIZED", "RESERVED", "", Decimal("-1"))


def test_the_report_fields_are_typed_columns_of_the_rows(journal) -> None:
    """Route, arrival price, venue order id, attempts and error round trip as the typed values they
    went in as (a ledger rebuilt from the journal reports what it reported before)."""
    journal.claim_batch([claim("f-1")], TTL)
    rows = [OrderEventRow(1, 1.0, "acc-1", "f-1", "INITIALIZED", "RESERVED", "reserved at intake", Decimal("39.4"),
                          route_id="route_paper", routing_reason="paper mode", arrival_px=Decimal("39433.62"), attempts=0),
            OrderEventRow(2, 2.0, "acc-1", "f-1", "SUBMITTING", "REJECTED", "venue state REJECTED", venue_order_id="v-9",
                          attempts=2, error_code="E_EXEC_BROKER_REJECTED", error_message="insufficient balance",
                          error_retry_after_s=1.5)]
    journal.record_order_events(rows)
    assert {r.seq: r for r in journal.load_orders()} == {1: rows[0], 2: rows[1]}
    with pytest.raises(ValueError, match="attempts must be an int >= 0"):
        OrderEventRow(1, 1.0, "acc-1", "f-2", "A", "B", attempts=-1)
    with pytest.raises(ValueError, match="arrival_px must be a Decimal > 0"):
        OrderEventRow(1, 1.0, "acc-1", "f-2", "A", "B", arrival_px=Decimal("0"))


def test_a_journal_from_before_the_report_columns_opens_with_them_empty(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SQLiteJournal(path).close()
    conn = sqlite3.connect(path)  # as an older build wrote it: none of the report columns
    for name in ("route_id", "routing_reason", "arrival_px", "venue_order_id", "attempts", "error_code", "error_message",
                 "error_retry_after_s"):
        conn.execute(f"ALTER TABLE order_events DROP COLUMN {name}")
    conn.execute("INSERT INTO order_events (seq, ts, account_id, client_order_id, from_status, to_status, cause, reserved) "
                 "VALUES (1, 1.0, 'acc-1', 'old-1', 'INITIALIZED', 'RESERVED', 'reserved at intake', '5')")
    conn.commit()
    conn.close()
    j = SQLiteJournal(path)
    try:
        [old] = j.load_orders()
        assert old == OrderEventRow(1, 1.0, "acc-1", "old-1", "INITIALIZED", "RESERVED", "reserved at intake", Decimal("5"))
        new = OrderEventRow(2, 2.0, "acc-1", "old-1", "RESERVED", "SUBMITTING", "sent", venue_order_id="v-1", attempts=1)
        j.record_order_events([new])
        assert j.load_orders()[1] == new
    finally:
        j.close()


def test_a_journal_from_before_the_reserved_column_is_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SQLiteJournal(path).close()
    conn = sqlite3.connect(path)  # as an older build wrote it: no column, the amount in the cause
    conn.execute("ALTER TABLE order_events DROP COLUMN reserved")
    conn.execute("INSERT INTO order_events (seq, ts, account_id, client_order_id, from_status, to_status, cause) "
                 "VALUES (1, 1.0, 'acc-1', 'old-1', 'INITIALIZED', 'RESERVED', 'reserved 201.5')")
    conn.execute("INSERT INTO order_events (seq, ts, account_id, client_order_id, from_status, to_status, cause) "
                 "VALUES (2, 2.0, 'acc-1', 'old-1', 'RESERVED', 'SUBMITTING', 'reserved 7 as text elsewhere')")
    conn.commit()
    conn.close()
    j = SQLiteJournal(path)
    try:
        loaded = {r.seq: r for r in j.load_orders()}
        assert (loaded[1].reserved, loaded[1].cause) == (Decimal("201.5"), "reserved at intake")
        assert (loaded[2].reserved, loaded[2].cause) == (None, "reserved 7 as text elsewhere")  # not a RESERVED row
    finally:
        j.close()
