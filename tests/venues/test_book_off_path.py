"""What the durable paper book does on an order's path, and what it leaves for after
(protocols/venues/paper/book.py, docs/DESIGN.md "Durability").

- A commit writes the order's row and its fills: no ``submissions`` row for a first submission,
  no ``meta`` counters (both derived from the rows), and the counts and sequences read back the same.
- A commit never runs SQLite's WAL checkpoint (an fsync of the database file) below the hard
  limit; the venue checkpoints between groups, from the venue worker once nothing waits.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

from actors.execution.adapter import VenueWorker
from protocols import Instrument, Quote, VenueOrder, VenueRejectedError
from protocols.venues import FillModelConfig, PaperVenue
from protocols.venues.paper.book import SqliteBook

T0 = datetime(2021, 1, 8, 0, 0, 1, tzinfo=UTC)
SYM = "BTC/USDT"
CFG = FillModelConfig(maker_fee_bps=D("1"), taker_fee_bps=D("10"),
                      instruments={SYM: Instrument(symbol=SYM, tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D("5"))})


def quote(t: float = 0.0) -> Quote:
    return Quote(ts=T0 + timedelta(seconds=t), symbol=SYM, bid=D("99.99"), bid_size=D("1000"), ask=D("100.00"),
                 ask_size=D("1000"))


def order(coid: str) -> VenueOrder:
    return VenueOrder(client_order_id=coid, account_id="acc", symbol=SYM, side="BUY", order_type="MARKET",
                      quantity=D("0.1"), ts=T0)


def orders_on_disk(path: Path) -> int:
    """Orders the database file itself holds, ignoring the WAL (``immutable=1``): what checkpoints wrote."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'orders'").fetchone() is None:
            return 0  # not even the schema was checkpointed
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    finally:
        conn.close()


def test_an_order_writes_its_row_and_fills_only_and_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    v.submit_order(order("a"))
    v.submit_order(order("b"))
    try:
        v.submit_order(order("a"))  # a duplicate: the only submissions row, and the duplicates counter
    except VenueRejectedError:
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT client_order_id, count FROM submissions").fetchall() == [("a", 2)]
        assert conn.execute("SELECT key FROM meta WHERE key IN ('order_seq', 'fill_seq')").fetchall() == []
    finally:
        conn.close()
    counts, fills, duplicates = v.submission_counts(), v.fill_records(), v.duplicate_submissions()
    v.close()
    w = PaperVenue(config=CFG, book_path=path)
    assert w.submission_counts() == counts == {"a": 2, "b": 1}
    assert w.fill_records() == fills and w.duplicate_submissions() == duplicates == 1
    w.on_market(quote(1))
    w.submit_order(order("c"))  # the sequences go on from the rows
    assert w.fetch_order("c").venue_order_id == "paper-o3"
    assert [f.trade_id for _, f in w.fill_records()][-1] != fills[-1][1].trade_id
    w.close()


def test_evicted_orders_keep_their_submission_count(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.keep_closed = 1
    v.on_market(quote())
    for i in range(300):  # past keep_closed + the eviction batch (256)
        v.submit_order(order(f"o{i}"))
    assert v._evicted  # the first orders left memory: counts are read back from the book
    assert v._book.submission_counts_of("o0") == 1 and v._book.submission_counts_of("never") == 0
    assert v.submission_counts() == {f"o{i}": 1 for i in range(300)}
    try:
        v.submit_order(order("o0"))
    except VenueRejectedError as exc:
        assert exc.venue_code == "DUPLICATE_CLIENT_ORDER_ID"
    assert v.submission_counts()["o0"] == 2
    v.close()


def test_a_commit_leaves_the_checkpoint_to_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    book = v._book
    assert isinstance(book, SqliteBook)
    v.on_market(quote())
    n = 400  # ~2,400 WAL pages, far past SQLite's own 1,000-page automatic checkpoint; below the hard limit
    for i in range(n):
        v.submit_order(order(f"o{i}"))
    # every row is in the WAL, none in the database file: no commit checkpointed
    assert orders_on_disk(path) == 0
    v.after_batch()  # what the venue worker calls between groups
    assert orders_on_disk(path) == n
    v.close()


def test_a_commit_checkpoints_past_the_hard_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(SqliteBook, "wal_hard_limit", 5)
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    for i in range(6):
        v.submit_order(order(f"o{i}"))
    assert orders_on_disk(path) == 5  # a venue never idle keeps its WAL bounded
    v.close()


def test_a_checkpoint_a_reader_held_back_is_tried_again(tmp_path: Path) -> None:
    """A PASSIVE checkpoint cannot copy WAL frames past another connection's open read snapshot (a
    look at the book from outside): it ends partial, the count of commits since the last one must
    not restart, and the next housekeeping copies the rest (before: counted as done)."""
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    v.submit_order(order("first"))
    v.after_batch()
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM orders").fetchone()  # its snapshot: held open
    n = SqliteBook.wal_soft_limit
    for i in range(n):
        v.submit_order(order(f"o{i}"))
    held = orders_on_disk(path)
    v.after_batch()  # due, but the reader holds the frames back: partial
    assert orders_on_disk(path) == held < n + 1
    reader.rollback()
    reader.close()
    v.after_batch()  # still due: copies the rest
    assert orders_on_disk(path) == n + 1
    v.close()


def test_the_wal_starts_again_at_the_checkpoint_not_in_the_next_orders_commit(tmp_path: Path) -> None:
    """After a whole checkpoint SQLite restarts the WAL at the next write and fsyncs the WAL's header
    there (synchronous NORMAL too): in the next order's commit, on its answer's path. The venue's
    housekeeping makes that write itself, so the next order's commit only adds its frames."""
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    for i in range(SqliteBook.wal_soft_limit):
        v.submit_order(order(f"o{i}"))

    def restarts() -> int:  # the WAL header's checkpoint sequence number (one more at each restart)
        with open(f"{path}-wal", "rb") as wal:
            return int.from_bytes(wal.read(16)[12:16], "big")

    before = restarts()
    v.after_batch()
    assert orders_on_disk(path) == SqliteBook.wal_soft_limit
    started = restarts()
    assert started == before + 1
    v.submit_order(order("next"))
    assert restarts() == started
    v.close()
    reopened = PaperVenue(config=CFG, book_path=path)
    assert reopened.fetch_order("next") is not None and reopened.fetch_order("o0") is not None
    reopened.close()


def test_the_worker_runs_the_venues_housekeeping_once_nothing_waits() -> None:
    log: list[str] = []
    idle = threading.Event()
    hold, entered = threading.Event(), threading.Event()

    def call(name: str, wait: bool = False):
        def fn() -> str:
            if wait:
                entered.set()
                assert hold.wait(5)
            log.append(name)
            return name
        return fn

    def housekeeping() -> None:
        log.append("idle")
        idle.set()

    worker = VenueWorker("venue-test", lambda m: log.append(f"done {m.call_id}"),
                         group=(lambda: log.append("begin"), lambda: log.append("end")), idle=housekeeping)
    worker.submit(1, call("c1", wait=True))
    assert entered.wait(5)
    worker.submit(2, call("c2"))
    worker.submit(3, call("c3"))
    hold.set()
    assert idle.wait(5)
    worker.barrier().result(timeout=5)
    # not between the groups (calls waited), once after the last group's answers
    assert log == ["begin", "c1", "end", "done 1", "begin", "c2", "c3", "end", "done 2", "done 3", "idle"]
    worker.retire()
