"""The waiting thread calls the venue (actors/execution/adapter.py ``VenueWorker``, docs/DESIGN.md
"Threads"): a caller blocked in ``result()`` on an order to an in-process venue (the durable paper
book) makes the order's venue call itself once its claim is settled, instead of the venue
worker's thread, when that worker is idle; everyone else's orders (fire-and-forget, asyncio, a
caller that stopped waiting, a call queued behind a busy worker) are called by the worker.

Real runtime, real SQLite journal (synchronous FULL) and real durable paper book; the claim's
COMMIT is held at its true boundary (``journal.test_claim_ticket.HeldCommit``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from conftest import wait_until
from journal.test_claim_ticket import HeldCommit

from actors.execution.adapter import VenueWorker
from actors.kernel.dispatcher import HelpingFuture
from protocols import AdapterCrash, ErrorCode, ExecutionContext, OrderIntent, OrderStatus, Quote

SYM = "BTC/USDT"
CTX = ExecutionContext(mode="paper", account_id="callers")
FULL = {"synchronous": "FULL"}


def _intent(coid: str) -> OrderIntent:
    return OrderIntent(client_order_id=coid, symbol=SYM, side="BUY", order_type="MARKET", quantity=D("0.001"))


def _quote() -> Quote:
    return Quote(ts=datetime(2024, 1, 2, tzinfo=UTC), symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"),
                 ask_size=D("1"))


class CallThreads:
    """Wraps the durable paper venue's ``submit_order``: the thread each client order id's call ran on,
    the claim's journal row at that moment, and (``hold``) a call that waits until released."""

    def __init__(self, rt, hold: str | None = None) -> None:
        self.rt, self.threads, self.rows = rt, {}, {}
        self.entered, self.release = threading.Event(), threading.Event()
        venue = rt.venue("paper")
        inner = venue.submit_order

        def submit_order(order):
            coid = order.client_order_id
            self.threads[coid] = threading.current_thread()
            self.rows[coid] = self._row(coid)
            if coid == hold:
                self.entered.set()
                assert self.release.wait(10), "the test never released the held call"
            return inner(order)

        venue.submit_order = submit_order

    def _row(self, coid: str):
        conn = sqlite3.connect(f"file:{self.rt.journal_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT status FROM idempotency WHERE client_order_id = ?", (coid,)).fetchone()
        finally:
            conn.close()

    def on_worker(self, coid: str) -> bool:
        return self.threads[coid].name.startswith("venue-paper")


@pytest.fixture
def durable(make_runtime):
    rt = make_runtime(durable=True, journal=FULL)
    rt.on_market(_quote())
    return rt


@pytest.fixture
def offers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """``(client order id, taken)`` of every venue call offered to a waiting caller."""
    seen: list[tuple[str, bool]] = []
    offer = HelpingFuture.offer

    def spy(future, call):
        taken = offer(future, call)
        seen.append((call.item[2].client_order_id, taken))
        return taken

    monkeypatch.setattr(HelpingFuture, "offer", spy)
    return seen


def test_a_waiting_caller_makes_its_own_venue_call(durable, offers) -> None:
    """The sender blocked in ``result()`` makes the call (no venue worker, no wake-up for the answer),
    after its claim was durable; FILLED, sent once; the worker still does the venue's housekeeping."""
    calls = CallThreads(durable)
    for i in range(VenueWorker.housekeep_every + 2):
        report = durable.submit(_intent(f"own-{i}"), CTX).result(timeout=10)
        assert report.status is OrderStatus.FILLED, report.error
        assert calls.threads[f"own-{i}"] is threading.current_thread()
        assert calls.rows[f"own-{i}"] == ("IN_PROGRESS",)  # the claim was on disk when the venue was called
    assert offers == [(f"own-{i}", True) for i in range(VenueWorker.housekeep_every + 2)]
    durable.flush()
    venue = durable.venue("paper")
    assert all(venue.submission_counts()[f"own-{i}"] == 1 for i in range(VenueWorker.housekeep_every + 2))
    assert venue.duplicate_submissions() == 0
    assert {r.client_order_id: r.status for r in durable.orders()} == {
        f"own-{i}": OrderStatus.FILLED for i in range(VenueWorker.housekeep_every + 2)}


def test_fire_and_forget_and_asyncio_orders_are_called_by_the_worker(durable, offers) -> None:
    calls = CallThreads(durable)
    done = threading.Event()
    future = durable.submit(_intent("ff-1"), CTX)
    future.add_done_callback(lambda _f: done.set())
    assert done.wait(10)
    assert future.result(timeout=0).status is OrderStatus.FILLED

    async def wait_async() -> object:
        return await asyncio.wrap_future(durable.submit(_intent("aio-1"), CTX))

    assert asyncio.run(asyncio.wait_for(wait_async(), 10)).status is OrderStatus.FILLED
    assert calls.on_worker("ff-1") and calls.on_worker("aio-1")
    assert offers == [("ff-1", False), ("aio-1", False)]  # nobody waiting in result()


def test_the_caller_waits_for_the_claims_commit_then_calls(durable, monkeypatch, offers) -> None:
    """Offered while the COMMIT is held: the caller makes no call before the claim is durable, and
    is woken by the claim's settle to make it."""
    held = HeldCommit(monkeypatch, "held-1")
    calls = CallThreads(durable)
    out: dict[str, object] = {}

    def sender() -> None:
        out["thread"] = threading.current_thread()
        out["report"] = durable.submit(_intent("held-1"), CTX).result(timeout=10)

    thread = threading.Thread(target=sender, name="sender-1")
    thread.start()
    assert held.forwarded.wait(10)
    wait_until(lambda: offers, what="the call offered to the waiting caller")
    assert offers == [("held-1", True)] and "held-1" not in calls.threads
    held.let_go()
    thread.join(10)
    assert out["report"].status is OrderStatus.FILLED
    assert calls.threads["held-1"] is out["thread"] and calls.rows["held-1"] == ("IN_PROGRESS",)


def test_a_failed_commit_denies_the_callers_order_never_sent(durable, monkeypatch, offers) -> None:
    held = HeldCommit(monkeypatch, "fail-1", fail=True)
    calls = CallThreads(durable)
    reply = durable.submit(_intent("fail-1"), CTX)
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.setdefault("report", reply.result(timeout=10)))
    thread.start()
    assert held.forwarded.wait(10)
    wait_until(lambda: offers, what="the call offered to the waiting caller")
    held.let_go()
    thread.join(10)
    report = result["report"]
    assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_PERSISTENCE
    assert "nothing was sent" in report.error.message
    durable.flush()
    assert "fail-1" not in calls.threads and "fail-1" not in durable.venue("paper").submission_counts()


def test_a_caller_that_stops_waiting_leaves_its_call_to_the_worker(make_runtime, monkeypatch, offers) -> None:
    """Its ``result(timeout)`` ends while the claim's COMMIT is held: the call goes to the worker,
    which makes it once the claim is durable (once: the caller never makes it too). The store's
    thread commits here (``help_journaled = false``): a caller committing its own claim cannot
    stop waiting in the middle of that commit."""
    held = HeldCommit(monkeypatch, "late-1")
    durable = make_runtime(durable=True, journal=FULL, dispatch={"help_journaled": False})
    durable.on_market(_quote())
    calls = CallThreads(durable)
    reply = durable.submit(_intent("late-1"), CTX)
    with pytest.raises(concurrent.futures.TimeoutError):
        reply.result(timeout=1.0)  # offered meanwhile, its claim still held
    assert held.forwarded.is_set() and offers == [("late-1", True)]
    held.let_go()
    done = threading.Event()
    reply.add_done_callback(lambda _f: done.set())
    assert done.wait(10)
    assert reply.result(timeout=0).status is OrderStatus.FILLED
    assert calls.on_worker("late-1")
    durable.flush()
    assert durable.venue("paper").submission_counts()["late-1"] == 1


def test_a_call_behind_a_busy_worker_is_made_by_the_worker(durable, monkeypatch, offers) -> None:
    """The worker is in a call: the next order's call is queued behind it (never offered, never
    made beside it), and the worker makes it next."""
    calls = CallThreads(durable, hold="busy-0")
    queued: list[str] = []
    submit = VenueWorker.submit

    def counted(worker, call_id, fn, call=None):
        submit(worker, call_id, fn, call)
        queued.append(call.client_order_id)

    monkeypatch.setattr(VenueWorker, "submit", counted)
    first = durable.submit(_intent("busy-0"), CTX)
    assert calls.entered.wait(10)
    second: dict[str, object] = {}
    thread = threading.Thread(target=lambda: second.setdefault("report", durable.submit(_intent("busy-1"), CTX).result(timeout=10)))
    thread.start()
    wait_until(lambda: "busy-1" in queued, what="busy-1 queued at the worker")
    calls.release.set()
    thread.join(10)
    assert first.result(timeout=10).status is OrderStatus.FILLED
    assert second["report"].status is OrderStatus.FILLED
    assert calls.on_worker("busy-0") and calls.on_worker("busy-1")
    assert offers == [("busy-0", False)]  # busy-1: never offered (the worker was in a call)


@pytest.mark.parametrize("waiting", [True, False], ids=["caller", "worker"])
def test_an_adapter_crash_in_the_call_is_handled_as_on_the_worker(durable, offers, waiting) -> None:
    """The venue booked the order, then the adapter crashed (``AdapterCrash``) in the call: the
    order is UNKNOWN (E_EXEC_ADAPTER_CRASHED), reconciled from the book (FILLED), sent once —
    the same whichever thread made the call."""
    venue = durable.venue("paper")
    inner = venue.submit_order
    threads: list[threading.Thread] = []

    def crash_after_booking(order):
        threads.append(threading.current_thread())
        inner(order)
        raise AdapterCrash("venue adapter died after booking (test)")

    venue.submit_order = crash_after_booking
    reply = durable.submit(_intent("crash-1"), CTX)
    if waiting:
        report = reply.result(timeout=10)
    else:
        done = threading.Event()
        reply.add_done_callback(lambda _f: done.set())
        assert done.wait(10)
        report = reply.result(timeout=0)
    assert report.status is OrderStatus.UNKNOWN and report.error.code is ErrorCode.E_EXEC_ADAPTER_CRASHED
    assert (threads[0] is threading.current_thread()) is waiting
    final = durable.wait("crash-1", timeout=20)
    assert final.status is OrderStatus.FILLED
    venue = durable.venue("paper")
    assert venue.submission_counts()["crash-1"] == 1 and venue.duplicate_submissions() == 0


def test_a_caller_helping_the_store_commits_its_claim_while_the_others_run_and_then_calls(make_runtime, monkeypatch,
                                                                                        offers) -> None:
    """``[dispatch] help_journaled``: the sender commits its own claim; the order it forwards before
    the COMMIT rings the ledger's thread (the ledger, breaker and adapter run during the commit,
    not after it), and the venue call offered meanwhile is the sender's once its commit returned:
    the claim and the call on the sender's thread, the intake on the others'."""
    from actors.journal.sqlite import SQLiteJournal
    from actors.orders.ledger import LedgerActor

    rt = make_runtime(durable=True, journal=FULL, dispatch={"help_journaled": True})
    rt.on_market(_quote())
    claimed_on: list[threading.Thread] = []
    ledger_on: list[threading.Thread] = []
    claim_batch, intake = SQLiteJournal.claim_batch, LedgerActor.handle_SubmitOrder

    def spy_claim(journal, claims, *args):
        claimed_on.append(threading.current_thread())
        return claim_batch(journal, claims, *args)

    def spy_intake(ledger, message):
        ledger_on.append(threading.current_thread())
        return intake(ledger, message)

    monkeypatch.setattr(SQLiteJournal, "claim_batch", spy_claim)
    monkeypatch.setattr(LedgerActor, "handle_SubmitOrder", spy_intake)
    held = HeldCommit(monkeypatch, "hj-1")  # wraps the spy: the COMMIT is held in the sender's thread
    calls = CallThreads(rt)
    out: dict[str, object] = {}

    def sender() -> None:
        out["report"] = rt.submit(_intent("hj-1"), CTX).result(timeout=10)

    thread = threading.Thread(target=sender, name="sender-hj")
    thread.start()
    assert held.forwarded.wait(10)
    # the COMMIT is held in the sender's thread: the ledger, the breaker and the adapter go on without it
    wait_until(lambda: offers, what="the venue call offered to the sender while its commit is held")
    assert claimed_on == [thread] and ledger_on and ledger_on[0] is not thread
    assert offers == [("hj-1", True)] and "hj-1" not in calls.threads
    held.let_go()
    thread.join(10)
    assert out["report"].status is OrderStatus.FILLED
    assert calls.threads["hj-1"] is thread and calls.rows["hj-1"] == ("IN_PROGRESS",)
