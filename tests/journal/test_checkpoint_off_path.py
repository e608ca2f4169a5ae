"""The idempotency journal's WAL checkpoint runs between batches, not inside a claim's commit
(actors/journal/sqlite.py ``checkpoint_off_path``, actors/idempotency/store.py, docs/DESIGN.md "Durability").

SQLite's automatic checkpoint writes the WAL back into the database file and fsyncs it inside the
COMMIT that crosses 1,000 WAL pages: on a claim's commit, that order waited for it. With
``checkpoint_off_path`` the owner checkpoints when nothing waits; a commit does only past the hard limit.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import ctx, market, quote

from actors.idempotency.messages import GetJournalStats
from actors.journal.sqlite import Claim, SQLiteJournal
from protocols import OrderStatus


def records_on_disk(path: Path) -> int:
    """Idempotency records the database file itself holds, ignoring the WAL (``immutable=1``)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'idempotency'").fetchone() is None:
            return 0
        return int(conn.execute("SELECT count(*) FROM idempotency").fetchone()[0])
    finally:
        conn.close()


def claim(i: int) -> Claim:
    return Claim("acc", f"c-{i}", "f" * 64, "{}", "{}", "paper", 1_000.0 + i)


def test_no_claim_commit_checkpoints_below_the_hard_limit(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path, synchronous="NORMAL", checkpoint_off_path=True)
    n = 900  # ~2 WAL pages each: far past SQLite's own 1,000-page automatic checkpoint
    for i in range(n):
        j.claim_batch([claim(i)], ttl_s=3600.0)
    assert records_on_disk(path) == 0  # all in the WAL: no commit waited for a checkpoint
    j.checkpoint()
    assert records_on_disk(path) == n
    j.close()


def test_checkpoint_waits_for_the_soft_limit_and_a_commit_checkpoints_past_the_hard_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(SQLiteJournal, "checkpoint_hard_limit", 8)
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path, synchronous="NORMAL", checkpoint_off_path=True)
    for i in range(3):
        j.claim_batch([claim(i)], ttl_s=3600.0)
    j.checkpoint()  # 3 commits < the soft limit (64): nothing to do yet
    assert records_on_disk(path) == 0
    for i in range(3, 9):
        j.claim_batch([claim(i)], ttl_s=3600.0)
    assert records_on_disk(path) == 8  # the 8th commit since open checkpointed (the hard limit); the 9th is in the WAL
    j.close()


def test_the_store_checkpoints_once_idle(make_runtime, monkeypatch) -> None:
    monkeypatch.setattr(SQLiteJournal, "checkpoint_soft_limit", 1)
    rt = make_runtime(durable=True)
    rt.on_market(quote())
    for i in range(3):
        assert rt.submit(market(f"cp-{i}"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    rt.flush()
    assert rt.journal_path is not None
    assert records_on_disk(rt.journal_path) >= 3  # checkpointed by the store after its completions, runtime still up


def test_a_message_that_arrives_during_the_last_write_does_not_cost_the_checkpoint(make_runtime, monkeypatch) -> None:
    """The store checks for an empty inbox after its completion write; a query or barrier that came
    in during that write took the idle moment, so the store checkpoints after handling it instead
    (before: no checkpoint until the next batch, and a barrier such as ``rt.flush()`` raced it)."""
    monkeypatch.setattr(SQLiteJournal, "checkpoint_soft_limit", 1)
    rt = make_runtime(durable=True)
    write = SQLiteJournal.complete_batch

    def complete_batch_and_a_query_lands(self: SQLiteJournal, completions):  # type: ignore[no-untyped-def]
        written = write(self, completions)
        rt.idempotency.tell(GetJournalStats())  # in the inbox before the store looks at it again
        return written

    monkeypatch.setattr(SQLiteJournal, "complete_batch", complete_batch_and_a_query_lands)
    rt.on_market(quote())
    for i in range(3):
        assert rt.submit(market(f"cq-{i}"), ctx()).result(timeout=10).status is OrderStatus.FILLED
    rt.flush()
    assert rt.journal_path is not None
    assert records_on_disk(rt.journal_path) >= 3


def test_a_checkpoint_a_reader_held_back_is_tried_again(tmp_path: Path) -> None:
    """A PASSIVE checkpoint cannot copy WAL frames past another connection's open read snapshot:
    it ends partial. The commit count must not restart then, so the next idle checkpoint copies the
    rest (before: counted as done, the WAL stayed until 64 more commits)."""
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path, synchronous="NORMAL", checkpoint_off_path=True)
    j.claim_batch([claim(0)], ttl_s=3600.0)
    j.checkpoint()
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM idempotency").fetchone()[0] == 1  # its snapshot: held open
    n = SQLiteJournal.checkpoint_soft_limit
    for i in range(1, n + 1):
        j.claim_batch([claim(i)], ttl_s=3600.0)
    before = records_on_disk(path)
    j.checkpoint()  # due, but the reader holds the frames back: partial
    assert records_on_disk(path) == before < n + 1
    reader.rollback()
    reader.close()
    j.checkpoint()  # still due: copies the rest
    assert records_on_disk(path) == n + 1
    j.close()


def wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time it starts the WAL
    again from its beginning (written with the first frame after a whole checkpoint)."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


def test_the_wal_starts_again_at_the_checkpoint_not_in_the_next_claim(tmp_path: Path) -> None:
    """After a whole checkpoint SQLite restarts the WAL at the next write, which (synchronous FULL)
    fsyncs the WAL's header and then its frames: two fsyncs. The idle checkpoint makes that write
    itself, so the next claim's commit writes its frame into a WAL already started (one fsync)."""
    path = tmp_path / "journal.sqlite"
    j = SQLiteJournal(path, checkpoint_off_path=True)
    try:
        for i in range(SQLiteJournal.checkpoint_soft_limit):
            j.claim_batch([claim(i)], ttl_s=3600.0)
        before = wal_restarts(path)
        j.checkpoint()
        assert records_on_disk(path) == SQLiteJournal.checkpoint_soft_limit  # a whole checkpoint
        started = wal_restarts(path)
        assert started == before + 1  # started again here
        j.claim_batch([claim(10_000)], ttl_s=3600.0)
        assert wal_restarts(path) == started  # not again in the claim's commit
        assert j.get("acc", "c-10000") is not None and j.load_unresolved()[0].client_order_id == "c-0"
    finally:
        j.close()
