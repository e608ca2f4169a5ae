"""Group commit of the durable paper book (protocols/venues/paper/venue.py, actors/execution/adapter.VenueWorker).

The venue worker runs the calls queued together between ``begin_batch`` and ``end_batch``; the
paper venue writes their change sets in one transaction and fails the whole group closed when
that write fails (nothing of the group is in the book, memory reloaded, every call answers
``FatalAdapterError``). Market data during a group writes the group before any event goes out.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from actors.execution.adapter import VenueWorker
from protocols import FatalAdapterError, Instrument, NotDeliveredError, OrderStatus, Quote, Trade, VenueOrder, VenueRejectedError
from protocols.venues import FillModelConfig, PaperVenue

T0 = datetime(2021, 1, 8, 0, 0, 1, tzinfo=UTC)
SYM = "BTC/USDT"
CFG = FillModelConfig(maker_fee_bps=D("1"), taker_fee_bps=D("10"),
                      instruments={SYM: Instrument(symbol=SYM, tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D("5"))})


def quote(size: str = "1", t: float = 0.0) -> Quote:
    return Quote(ts=T0 + timedelta(seconds=t), symbol=SYM, bid=D("99.99"), bid_size=D(size), ask=D("100.00"), ask_size=D(size))


def order(coid: str, qty: str = "0.1", price: str | None = None) -> VenueOrder:
    return VenueOrder(client_order_id=coid, account_id="acc", symbol=SYM, side="BUY",
                      order_type="LIMIT" if price else "MARKET", quantity=D(qty),
                      limit_price=D(price) if price else None, ts=T0)


def count_commits(venue: PaperVenue) -> list[int]:
    """Spy on the book's transactions: the list grows by one per ``commit`` call with changes."""
    calls: list[int] = []
    inner = venue._book.commit

    def commit(changes):
        if changes:
            calls.append(len(changes.orders))
        return inner(changes)

    venue._book.commit = commit  # type: ignore[method-assign]
    return calls


def fail_commits(venue: PaperVenue) -> Callable[[], None]:
    """Make the book's writes fail (reads still work); returns the undo."""
    inner = venue._book.commit

    def commit(changes):
        raise sqlite3.OperationalError("disk I/O error")

    venue._book.commit = commit  # type: ignore[method-assign]
    return lambda: setattr(venue._book, "commit", inner)


# ---------------------------------------------------------------- the venue


def test_capabilities_declare_group_commit_only_for_a_durable_book(tmp_path: Path) -> None:
    durable = PaperVenue(config=CFG, book_path=tmp_path / "b.sqlite")
    assert durable.capabilities.group_commit and durable.capabilities.blocking
    assert not PaperVenue(config=CFG).capabilities.group_commit
    durable.close()


def test_a_group_is_one_transaction_and_in_the_book_only_after_end_batch(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    commits = count_commits(v)
    v.begin_batch()
    filled = v.submit_order(order("m-1"))
    resting = v.submit_order(order("r-1", price="99.00"))
    with pytest.raises(VenueRejectedError, match="duplicate"):
        v.submit_order(order("m-1"))
    assert filled.status is OrderStatus.FILLED and resting.status is OrderStatus.ACCEPTED
    assert commits == []  # nothing written yet: the answers must wait for end_batch
    other = PaperVenue(config=CFG, book_path=path)  # what a restart would find now
    assert other.fetch_order("m-1") is None and other.fetch_order("r-1") is None
    other.close()
    v.end_batch()
    assert commits == [2]  # one transaction for the group
    again = PaperVenue(config=CFG, book_path=path)
    assert again.fetch_order("m-1") == filled and again.fetch_order("r-1") == resting
    assert again.submission_counts() == {"m-1": 2, "r-1": 1} and again.duplicate_submissions() == 1
    assert [f.trade_id for f in again.fills()] == [f.trade_id for f in v.fills()]
    again.close()
    v.close()


def test_a_failed_group_write_forgets_the_whole_group(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote(size="0.15"))
    v.submit_order(order("before"))  # written on its own: stays
    touch = v.touch(SYM)
    undo = fail_commits(v)
    v.begin_batch()
    v.submit_order(order("a", qty="0.05"))
    v.submit_order(order("b", price="99.00"))
    with pytest.raises(FatalAdapterError, match="venue book write failed"):
        v.end_batch()
    # memory is the book again: neither order, no fill, no count; the touch they consumed is back
    assert v.fetch_order("a") is None and v.fetch_order("b") is None
    assert v.submission_counts() == {"before": 1} and len(v.fills()) == 1
    assert [o.client_order_id for o in v.fetch_open_orders()] == []
    assert v.touch(SYM) == touch
    undo()
    again = v.submit_order(order("a", qty="0.05"))  # the id is free: the venue never had it
    assert again.status is OrderStatus.FILLED and again.venue_order_id == "paper-o2"
    v.close()
    w = PaperVenue(config=CFG, book_path=path)
    assert w.submission_counts() == {"before": 1, "a": 1} and w.fetch_order("b") is None
    w.close()


def test_a_book_that_cannot_be_read_back_closes_the_venue(tmp_path: Path) -> None:
    v = PaperVenue(config=CFG, book_path=tmp_path / "b.sqlite")
    v.on_market(quote())
    v.begin_batch()
    v.submit_order(order("a"))
    v._book._conn.close()  # the disk goes away under the venue
    with pytest.raises(FatalAdapterError):
        v.end_batch()
    with pytest.raises(NotDeliveredError, match="venue closed"):  # never serves a guess
        v.fetch_order("a")


def test_market_data_in_a_group_writes_the_group_before_its_events(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    seen: list[tuple] = []

    def sink(event) -> None:  # what the book holds when the event goes out
        conn = sqlite3.connect(path)
        try:
            status = conn.execute("SELECT status FROM orders WHERE client_order_id = 'r-1'").fetchone()
            fills = conn.execute("SELECT json_array_length(fills_json) FROM orders WHERE client_order_id = 'r-1'").fetchone()[0]
        finally:
            conn.close()
        seen.append((event.kind, status, fills))

    v.set_event_sink(sink)
    v.begin_batch()
    v.submit_order(order("r-1", qty="0.5", price="99.00"))
    v.on_market(Trade(ts=T0 + timedelta(seconds=1), symbol=SYM, trade_id="x1", price=D("98.50"), qty=D("0.2")))
    assert seen == [("fill", ("PARTIALLY_FILLED",), 1)]
    v.submit_order(order("m-1"))
    v.end_batch()
    w = PaperVenue(config=CFG, book_path=path)
    assert w.fetch_order("r-1").cum_qty == D("0.2") and w.fetch_order("m-1").status is OrderStatus.FILLED
    w.close()
    v.close()


def test_a_failed_market_data_write_fails_the_rest_of_the_group(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    v.begin_batch()
    v.submit_order(order("a"))
    undo = fail_commits(v)
    with pytest.raises(FatalAdapterError):
        v.on_market(quote(t=1))
    undo()
    with pytest.raises(FatalAdapterError):  # the group failed: a later call of it cannot succeed
        v.submit_order(order("b"))
    with pytest.raises(FatalAdapterError):
        v.end_batch()
    assert v.fetch_order("a") is None and v.fetch_order("b") is None
    assert v.submit_order(order("c")).status is OrderStatus.FILLED  # the next group is a new one
    v.close()
    w = PaperVenue(config=CFG, book_path=path)
    assert w.submission_counts() == {"c": 1}
    w.close()


def test_closed_orders_leave_memory_only_once_their_group_is_written(tmp_path: Path) -> None:
    v = PaperVenue(config=CFG, book_path=tmp_path / "b.sqlite")
    v.keep_closed = 2
    v.on_market(quote(size="1000"))
    v.begin_batch()
    ids = [f"m-{i}" for i in range(300)]  # more than keep_closed + one eviction batch
    for coid in ids:
        v.submit_order(order(coid, qty="0.1"))
    assert v._evicted == 0  # not written yet: none may leave memory
    assert all(v.fetch_order(coid) is not None for coid in ids)
    v.end_batch()
    assert v._evicted > 0 and v.fetch_order(ids[0]).status is OrderStatus.FILLED  # read back from the book
    v.close()


def test_close_writes_an_open_group(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    v.on_market(quote())
    v.begin_batch()
    v.submit_order(order("a"))
    v.close()  # its calls reached the venue
    v.end_batch()
    w = PaperVenue(config=CFG, book_path=path)
    assert w.fetch_order("a").status is OrderStatus.FILLED
    w.close()


# ---------------------------------------------------------------- the worker


class _GroupVenue:
    """Records begin/end and each call; ``fail_group`` makes that group's (1-based) end_batch raise."""

    def __init__(self, fail_group: int = 0) -> None:
        self.log: list[str] = []
        self.groups = 0
        self.fail_group = fail_group

    def begin_batch(self) -> None:
        self.groups += 1
        self.log.append("begin")

    def end_batch(self) -> None:
        self.log.append("end")
        if self.groups == self.fail_group:
            raise FatalAdapterError("venue book write failed: disk full")

    def call(self, name: str, *, hold: threading.Event | None = None, entered: threading.Event | None = None,
             reject: bool = False) -> Callable[[], str]:
        def fn() -> str:
            if entered is not None:
                entered.set()
            if hold is not None:
                assert hold.wait(5)
            self.log.append(name)
            if reject:
                raise VenueRejectedError("lot size", venue_code="LOT_SIZE")
            return name
        return fn


def _worker(venue: _GroupVenue, done: list) -> VenueWorker:
    def on_done(message) -> None:
        venue.log.append(f"done {message.call_id}")
        done.append(message)

    return VenueWorker("venue-test", on_done, group=(venue.begin_batch, venue.end_batch))


def _hold_first(worker: VenueWorker, venue: _GroupVenue) -> threading.Event:
    """Queue call 1 and wait until the worker is inside it: the calls queued next form one group."""
    hold, entered = threading.Event(), threading.Event()
    worker.submit(1, venue.call("c1", hold=hold, entered=entered))
    assert entered.wait(5)
    return hold


def test_worker_runs_the_calls_queued_together_as_one_group_and_answers_after_its_end() -> None:
    venue, done = _GroupVenue(), []
    worker = _worker(venue, done)
    hold = _hold_first(worker, venue)
    for i in range(2, 6):
        worker.submit(i, venue.call(f"c{i}"))
    barrier = worker.barrier()
    hold.set()
    barrier.result(timeout=5)
    assert venue.log == ["begin", "c1", "end", "done 1",
                         "begin", "c2", "c3", "c4", "c5", "end", "done 2", "done 3", "done 4", "done 5"]
    worker.retire()


def test_worker_answers_every_call_of_a_failed_group_with_the_failure() -> None:
    venue, done = _GroupVenue(fail_group=2), []
    worker = _worker(venue, done)
    hold = _hold_first(worker, venue)
    worker.submit(2, venue.call("c2"))
    worker.submit(3, venue.call("c3", reject=True))  # a reject writes too (the submission count)
    worker.submit(4, venue.call("c4"))
    barrier = worker.barrier()
    hold.set()
    barrier.result(timeout=5)
    outcomes = [(m.call_id, m.result, type(m.error).__name__ if m.error else None) for m in done]
    assert outcomes == [(1, "c1", None), (2, None, "FatalAdapterError"), (3, None, "FatalAdapterError"),
                        (4, None, "FatalAdapterError")]
    worker.submit(5, venue.call("c5"))  # the next group is a new one
    worker.barrier().result(timeout=5)
    assert done[-1].result == "c5" and done[-1].error is None
    worker.retire()


def test_retired_worker_ends_its_group_and_answers_nothing_of_it() -> None:
    venue, done = _GroupVenue(), []
    worker = _worker(venue, done)
    hold = _hold_first(worker, venue)
    hold2, entered2 = threading.Event(), threading.Event()
    worker.submit(2, venue.call("c2", hold=hold2, entered=entered2))
    worker.submit(3, venue.call("c3"))
    hold.set()
    assert entered2.wait(5)  # group 2 = [c2, c3], c2 in the venue
    unpicked = worker.retire()
    hold2.set()
    worker._thread.join(5)
    assert unpicked == {3}  # never picked up: provably never delivered
    assert venue.log == ["begin", "c1", "end", "done 1", "begin", "c2", "end"]  # what reached the venue is written
    assert [m.call_id for m in done] == [1]


def _grouping_worker(venue: _GroupVenue, done: list, groups: list) -> VenueWorker:
    """A worker that hands a group of more than one call over in one ``on_group`` call."""
    def on_done(message) -> None:
        venue.log.append(f"done {message.call_id}")
        done.append(message)

    def on_group(message) -> None:
        venue.log.append("group " + " ".join(str(o.call_id) for o in message.outcomes))
        groups.append(message)

    return VenueWorker("venue-test", on_done, group=(venue.begin_batch, venue.end_batch), on_group=on_group)


def test_worker_hands_a_groups_outcomes_over_in_one_message_in_call_order() -> None:
    venue, done, groups = _GroupVenue(), [], []
    worker = _grouping_worker(venue, done, groups)
    hold = _hold_first(worker, venue)
    worker.submit(2, venue.call("c2"))
    worker.submit(3, venue.call("c3", reject=True))
    worker.submit(4, venue.call("c4"))
    barrier = worker.barrier()
    hold.set()
    barrier.result(timeout=5)
    # a group of one as before (on_done); the group of three after its end, in one message
    assert venue.log == ["begin", "c1", "end", "done 1", "begin", "c2", "c3", "c4", "end", "group 2 3 4"]
    assert [m.call_id for m in done] == [1]
    (group,) = groups
    assert [(o.call_id, o.result, type(o.error).__name__ if o.error else None) for o in group.outcomes] == [
        (2, "c2", None), (3, None, "VenueRejectedError"), (4, "c4", None)]
    worker.retire()


def test_worker_hands_a_failed_group_over_in_one_message_every_call_failed() -> None:
    venue, done, groups = _GroupVenue(fail_group=2), [], []
    worker = _grouping_worker(venue, done, groups)
    hold = _hold_first(worker, venue)
    worker.submit(2, venue.call("c2"))
    worker.submit(3, venue.call("c3"))
    barrier = worker.barrier()
    hold.set()
    barrier.result(timeout=5)
    (group,) = groups
    assert [(o.call_id, o.result, type(o.error).__name__) for o in group.outcomes] == [
        (2, None, "FatalAdapterError"), (3, None, "FatalAdapterError")]
    worker.retire()


def test_retired_grouping_worker_answers_nothing_of_its_group() -> None:
    venue, done, groups = _GroupVenue(), [], []
    worker = _grouping_worker(venue, done, groups)
    hold = _hold_first(worker, venue)
    hold2, entered2 = threading.Event(), threading.Event()
    worker.submit(2, venue.call("c2", hold=hold2, entered=entered2))
    worker.submit(3, venue.call("c3"))
    worker.submit(4, venue.call("c4"))
    hold.set()
    assert entered2.wait(5)  # group 2 = [c2, c3, c4], c2 in the venue
    worker.retire()
    hold2.set()
    worker._thread.join(5)
    assert venue.log == ["begin", "c1", "end", "done 1", "begin", "c2", "end"]
    assert groups == [] and [m.call_id for m in done] == [1]


def test_worker_without_group_runs_one_call_at_a_time() -> None:
    log, done = [], []
    worker = VenueWorker("venue-test", done.append)
    hold, entered = threading.Event(), threading.Event()
    worker.submit(1, lambda: (entered.set(), hold.wait(5), log.append(1)))
    assert entered.wait(5)
    worker.submit(2, lambda: log.append(2))
    hold.set()
    worker.barrier().result(timeout=5)
    assert log == [1, 2] and [m.call_id for m in done] == [1, 2] and all(m.error is None for m in done)
    worker.retire()


# ---------------------------------------------------------------- the runtime


def test_runtime_answers_a_failed_book_write_failed_and_the_venue_never_had_the_order(tmp_path: Path) -> None:
    from actors import Runtime
    from config import load_settings
    from protocols import ExecutionContext, OrderIntent

    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True}))
    try:
        venue = rt.venue("paper")
        assert venue.capabilities.group_commit
        rt.on_market(Quote(ts=T0, symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"), ask_size=D("1")))
        ctx = ExecutionContext(mode="paper", account_id="gc")

        def submit(coid: str):
            intent = OrderIntent(client_order_id=coid, symbol=SYM, side="BUY", order_type="MARKET", quantity=D("0.001"))
            return rt.submit(intent, ctx).result(timeout=10)

        undo = fail_commits(venue)
        report = submit("lost-1")
        assert report.status is OrderStatus.FAILED and report.error.code.value == "E_EXEC_NETWORK"
        assert "venue book write failed" in report.error.message
        assert venue.fetch_order("lost-1") is None  # never acknowledged as filled: not durable
        assert rt.order("lost-1").status is OrderStatus.FAILED
        undo()
        assert submit("ok-1").status is OrderStatus.FILLED
        rt.flush()
        assert [c for c, _ in venue.fill_records()] == ["ok-1"]
    finally:
        rt.stop()


def test_runtime_answers_each_order_of_a_group_handed_over_in_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The durable book's worker hands a group's outcomes to the adapter as one message
    (``VenueCallsCompleted``); each order still gets its own report, fills and journal rows."""
    from actors import Runtime
    from actors.execution.adapter import AdapterActor
    from config import load_settings
    from protocols import ExecutionContext, OrderIntent

    handled: list[list[int]] = []
    run_group = AdapterActor.handle_VenueCallsCompleted

    def spy(actor, message):
        handled.append([o.call_id for o in message.outcomes])
        return run_group(actor, message)

    monkeypatch.setattr(AdapterActor, "handle_VenueCallsCompleted", spy)
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True}))
    try:
        venue = rt.venue("paper")
        rt.on_market(Quote(ts=T0, symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"), ask_size=D("1")))
        ctx = ExecutionContext(mode="paper", account_id="gc")
        inner, hold, entered = venue.submit_order, threading.Event(), threading.Event()

        def held_submit(order):  # the first order holds the worker: the next ones queue as one group
            if order.client_order_id == "g-0":
                entered.set()
                assert hold.wait(10)
            return inner(order)

        venue.submit_order = held_submit  # type: ignore[method-assign]
        groups = count_commits(venue)
        queued: list[int] = []
        submit_call = VenueWorker.submit

        def counted(worker, call_id, fn, call=None):
            submit_call(worker, call_id, fn, call)
            queued.append(call_id)

        monkeypatch.setattr(VenueWorker, "submit", counted)

        def intent(coid: str) -> OrderIntent:
            return OrderIntent(client_order_id=coid, symbol=SYM, side="BUY", order_type="MARKET", quantity=D("0.001"))

        first = rt.submit(intent("g-0"), ctx)
        assert entered.wait(10)
        rest = [rt.submit(intent(f"g-{i}"), ctx) for i in range(1, 6)]
        deadline = time.monotonic() + 10
        while len(queued) < 6 and time.monotonic() < deadline:  # the five wait at the worker
            time.sleep(0.005)
        assert len(queued) == 6
        hold.set()
        reports = [f.result(timeout=10) for f in [first, *rest]]
        assert [(r.client_order_id, r.status) for r in reports] == [(f"g-{i}", OrderStatus.FILLED) for i in range(6)]
        assert all(len(r.fills) == 1 and r.cum_qty == D("0.001") for r in reports)
        assert groups == [1, 5]  # the held order alone, then the five as one group
        assert [len(ids) for ids in handled] == [5] and handled[0] == sorted(handled[0])  # one message, call order
        rt.flush()
        assert [c for c, _ in venue.fill_records()] == [f"g-{i}" for i in range(6)]
        assert [rt.order(f"g-{i}").status for i in range(6)] == [OrderStatus.FILLED] * 6
    finally:
        rt.stop()


class _CountingLock:
    """The venue's lock, counting how often it is taken."""

    def __init__(self, lock) -> None:
        self.lock, self.taken = lock, 0

    def __enter__(self):
        self.taken += 1
        return self.lock.__enter__()

    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)


def test_an_order_whose_change_is_in_the_book_is_looked_up_without_the_venues_lock(tmp_path: Path) -> None:
    v = PaperVenue(config=CFG, book_path=tmp_path / "b.sqlite")
    v.on_market(quote("10"))
    v.submit_order(order("a"))
    lock = v._lock = _CountingLock(v._lock)
    assert v.fetch_order("a").status is OrderStatus.FILLED and lock.taken == 0
    v.begin_batch()
    v.submit_order(order("b"))
    taken = lock.taken
    assert v.fetch_order("a").status is OrderStatus.FILLED and lock.taken == taken  # not changed by the group
    assert v.fetch_order("b").status is OrderStatus.FILLED and lock.taken == taken + 1  # not written yet: locked
    assert v.fetch_order("nope") is None and lock.taken == taken + 2  # not in memory: the lock (and the book)
    v.end_batch()
    taken = lock.taken
    assert v.fetch_order("b").status is OrderStatus.FILLED and lock.taken == taken
    v.close()


def test_a_lookup_during_a_groups_write_waits_for_the_write(tmp_path: Path) -> None:
    v = PaperVenue(config=CFG, book_path=tmp_path / "b.sqlite")
    v.on_market(quote("10"))
    v.submit_order(order("a"))
    write, answers = v._book.commit, {}

    def commit(changes) -> None:  # while the group's transaction is written: look both orders up
        lookups = [threading.Thread(target=lambda c=c: answers.__setitem__(c, v.fetch_order(c))) for c in ("a", "b")]
        for t in lookups:
            t.start()
        lookups[0].join(timeout=5)
        answers["a during the write"] = not lookups[0].is_alive()
        lookups[1].join(timeout=0.2)
        answers["b while written"] = lookups[1].is_alive()  # "b" is not in the book yet: it waits
        write(changes)
        threads.extend(lookups)

    threads: list[threading.Thread] = []
    v._book.commit = commit
    v.begin_batch()
    v.submit_order(order("b"))
    v.end_batch()
    for t in threads:
        t.join(timeout=10)
    assert answers["a during the write"] and answers["a"].status is OrderStatus.FILLED  # from memory
    assert answers["b while written"] and answers["b"].status is OrderStatus.FILLED
    v.close()


def test_a_lookup_after_a_failed_group_write_finds_nothing_of_the_group(tmp_path: Path) -> None:
    v = PaperVenue(config=CFG, book_path=tmp_path / "b.sqlite")
    v.on_market(quote("10"))
    v.submit_order(order("a"))
    write = v._book.commit

    def fail(changes) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    v._book.commit = fail
    v.begin_batch()
    v.submit_order(order("b"))
    with pytest.raises(FatalAdapterError):
        v.end_batch()
    v._book.commit = write
    assert v.fetch_order("b") is None and v.fetch_order("a").status is OrderStatus.FILLED
    v.close()
