"""One message per group commit: the claimed orders of one idempotency group commit cross the
ledger, the circuit breaker and the adapter as one message per stage (``SubmitOrders``,
``ExecuteOrders``), each still handled as its own order (its own checks, outcome and answer).

A group forms while the store commits: the first order's claim is held inside the journal's
``claim_batch`` until the next orders wait in the store's inbox, so they share the next commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from actors import Runtime
from actors.breaker.actor import CircuitBreakerActor
from actors.execution.adapter import AdapterActor
from actors.journal.sqlite import SQLiteJournal
from actors.orders.ledger import LedgerActor
from config import load_settings
from protocols import ErrorCode, ExecutionContext, OrderIntent, OrderStatus, Quote

SYM = "BTC/USDT"
T0 = datetime(2024, 1, 2, tzinfo=UTC)
CTX = ExecutionContext(mode="paper", account_id="grp")


def _intent(coid: str) -> OrderIntent:
    return OrderIntent(client_order_id=coid, symbol=SYM, side="BUY", order_type="MARKET", quantity=D("0.001"))


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """The client order ids of every batch message each stage handled."""
    seen: dict[str, list[list[str]]] = {"ledger": [], "breaker": [], "adapter": []}

    def spying(stage: str, run):
        def spy(actor, message):
            seen[stage].append([o.client_order_id for o in message.orders])
            return run(actor, message)
        return spy

    for stage, cls, name in (("ledger", LedgerActor, "handle_SubmitOrders"), ("breaker", CircuitBreakerActor, "handle_SubmitOrders"),
                             ("adapter", AdapterActor, "handle_ExecuteOrders")):
        monkeypatch.setattr(cls, name, spying(stage, getattr(cls, name)))
    return seen


@pytest.fixture
def held_claim(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """(entered, release): the claim of "g-0" waits inside ``claim_batch`` until ``release`` is set."""
    entered, release = threading.Event(), threading.Event()
    claim_batch = SQLiteJournal.claim_batch

    def held(journal, claims, ttl_s, *before_commit):
        if any(c.client_order_id == "g-0" for c in claims):
            entered.set()
            assert release.wait(10)
        return claim_batch(journal, claims, ttl_s, *before_commit)

    monkeypatch.setattr(SQLiteJournal, "claim_batch", held)
    yield entered, release
    release.set()


def _group(rt: Runtime, entered: threading.Event, release: threading.Event, n: int) -> list:
    """Submit g-0 (held in its claim) and then g-1..g-n, which wait for the store; release the claim."""
    first = rt.submit(_intent("g-0"), CTX)
    assert entered.wait(10)
    rest = [rt.submit(_intent(f"g-{i}"), CTX) for i in range(1, n + 1)]
    time.sleep(0.05)  # they are in the store's inbox (told, not yet handled: its thread is in g-0's commit)
    release.set()
    return [first, *rest]


def test_a_group_commits_orders_cross_each_stage_as_one_message(tmp_path: Path, batches, held_claim) -> None:
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True}))
    try:
        rt.on_market(Quote(ts=T0, symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"), ask_size=D("1")))
        futures = _group(rt, *held_claim, 5)
        reports = [f.result(timeout=10) for f in futures]
        assert [(r.client_order_id, r.status) for r in reports] == [(f"g-{i}", OrderStatus.FILLED) for i in range(6)]
        group = [f"g-{i}" for i in range(1, 6)]
        assert batches == {"ledger": [group], "breaker": [group], "adapter": [group]}  # g-0 alone went as itself
        rt.flush()
        for i in range(6):
            order = rt.order(f"g-{i}")
            assert order.status is OrderStatus.FILLED and order.cum_qty == D("0.001") and order.attempts == 1
        assert sorted(c for c, _ in rt.venue("paper").fill_records()) == [f"g-{i}" for i in range(6)]
    finally:
        rt.stop()


def test_each_order_of_a_group_keeps_its_own_outcome(tmp_path: Path, batches, held_claim) -> None:
    """A risk denial inside a group denies that order only; the others go on in the same messages."""
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True},
                                     risk={"max_notional": "100"}))
    try:
        rt.on_market(Quote(ts=T0, symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"), ask_size=D("1")))
        entered, release = held_claim
        first = rt.submit(_intent("g-0"), CTX)
        assert entered.wait(10)
        big = OrderIntent(client_order_id="g-2", symbol=SYM, side="BUY", order_type="MARKET", quantity=D("0.01"))
        rest = [rt.submit(_intent("g-1"), CTX), rt.submit(big, CTX), rt.submit(_intent("g-3"), CTX)]
        time.sleep(0.05)
        release.set()
        reports = [f.result(timeout=10) for f in [first, *rest]]
        assert [r.status for r in reports] == [OrderStatus.FILLED, OrderStatus.FILLED, OrderStatus.DENIED, OrderStatus.FILLED]
        assert reports[2].error.code is ErrorCode.E_EXEC_RISK_DENIED
        assert batches == {"ledger": [["g-1", "g-2", "g-3"]], "breaker": [["g-1", "g-3"]], "adapter": [["g-1", "g-3"]]}
    finally:
        rt.stop()


def test_an_order_that_crashes_the_ledger_in_a_group_is_answered_alone(tmp_path: Path, batches, held_claim,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger crashes on the third order of a group: the two before it were sent and fill,
    it is answered FAILED (E_EXEC_INTERNAL, nothing sent), and the two after it go to the ledger's
    next generation, which sends them: none is lost (without ``run_each`` keeping them, they were)."""
    handle = LedgerActor.handle_SubmitOrder

    def crash_on_g3(actor, order):
        if order.client_order_id == "g-3":
            raise RuntimeError("injected ledger bug")
        return handle(actor, order)

    monkeypatch.setattr(LedgerActor, "handle_SubmitOrder", crash_on_g3)
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True}))
    try:
        rt.on_market(Quote(ts=T0, symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"), ask_size=D("1")))
        futures = _group(rt, *held_claim, 5)
        reports = {r.client_order_id: r for r in (f.result(timeout=20) for f in futures)}
        assert batches["ledger"][0] == [f"g-{i}" for i in range(1, 6)]
        assert [reports[f"g-{i}"].status for i in range(3)] == [OrderStatus.FILLED] * 3
        assert reports["g-3"].status is OrderStatus.FAILED and reports["g-3"].error.code is ErrorCode.E_EXEC_INTERNAL
        assert "g-3" not in [c for c, _ in rt.venue("paper").fill_records()]
        # handled by the next generation, each answered once with its own outcome
        assert [reports[f"g-{i}"].status for i in (4, 5)] == [OrderStatus.FILLED] * 2
    finally:
        rt.stop()


def _one_venue_group(rt: Runtime, monkeypatch: pytest.MonkeyPatch, n: int) -> list:
    """Submit w-0 … w-n to the paper venue so that w-1 … w-n reach its worker as ONE group: w-0
    holds the worker until the n others are queued behind it. Returns the n + 1 futures."""
    from actors.execution.adapter import VenueWorker

    venue = rt.venue("paper")
    rt.on_market(Quote(ts=T0, symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"), ask_size=D("1")))
    inner, hold, entered = venue.submit_order, threading.Event(), threading.Event()

    def held_submit(order):  # the first order holds the worker: the next ones queue as one group
        if order.client_order_id == "w-0":
            entered.set()
            assert hold.wait(10)
        return inner(order)

    venue.submit_order = held_submit  # type: ignore[method-assign]
    queued: list[int] = []
    submit_call = VenueWorker.submit

    def counted(worker, call_id, fn, call=None):
        submit_call(worker, call_id, fn, call)
        queued.append(call_id)

    monkeypatch.setattr(VenueWorker, "submit", counted)
    first = rt.submit(_intent("w-0"), CTX)
    assert entered.wait(10)
    rest = [rt.submit(_intent(f"w-{i}"), CTX) for i in range(1, n + 1)]
    deadline = time.monotonic() + 10
    while len(queued) < n + 1 and time.monotonic() < deadline:  # the n wait at the worker
        time.sleep(0.005)
    hold.set()
    return [first, *rest]


@pytest.mark.parametrize("n", [5, "chunk+4"])
def test_a_groups_outcomes_reach_the_store_breaker_and_ledger_as_one_message_each(tmp_path: Path, n: int | str,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The durable book's worker hands a group's outcomes to the adapter in one message; the adapter
    hands their facts on as one message per actor (CompleteOrders, CallsFinished, OrdersFinished) per
    chunk of FINISH_CHUNK orders, queued before the chunk's first answer: each order is journaled,
    recorded and replayable as before."""
    from actors.execution.adapter import FINISH_CHUNK
    from actors.idempotency.store import IdempotencyStoreActor

    n = n if isinstance(n, int) else FINISH_CHUNK + 4  # two chunks: FINISH_CHUNK, then 4
    seen: dict[str, list[list[str]]] = {"store": [], "breaker": [], "ledger": []}

    def spying(stage: str, run, items: str):
        def spy(actor, message):
            seen[stage].append([getattr(m, "client_order_id", None) or m.report.client_order_id for m in getattr(message, items)])
            return run(actor, message)
        return spy

    for stage, cls, name, items in (("store", IdempotencyStoreActor, "handle_CompleteOrders", "completions"),
                                    ("breaker", CircuitBreakerActor, "handle_CallsFinished", "calls"),
                                    ("ledger", LedgerActor, "handle_OrdersFinished", "finished")):
        monkeypatch.setattr(cls, name, spying(stage, getattr(cls, name), items))
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True}))
    try:
        first, *rest = _one_venue_group(rt, monkeypatch, n)
        reports = [f.result(timeout=10) for f in [first, *rest]]
        assert [(r.client_order_id, r.status) for r in reports] == [(f"w-{i}", OrderStatus.FILLED) for i in range(n + 1)]
        rt.flush()  # the facts are handled after the answers (queued before them, run after)
        group = [f"w-{i}" for i in range(1, n + 1)]
        chunks = [group[i:i + FINISH_CHUNK] for i in range(0, n, FINISH_CHUNK)]
        assert seen == {"store": chunks, "breaker": chunks, "ledger": chunks}  # w-0 alone went as itself
        for i in range(n + 1):
            assert rt.order(f"w-{i}").status is OrderStatus.FILLED
            replay = rt.submit(_intent(f"w-{i}"), CTX).result(timeout=10)  # its completion was journaled
            assert replay.replay and replay.status is OrderStatus.FILLED
    finally:
        rt.stop()


def test_the_rows_of_orders_denied_inside_a_group_are_written_once_the_ledger_is_idle(tmp_path: Path, held_claim) -> None:
    """An order the ledger denies is written at its group commit, as when told alone: a group whose
    orders are all denied (risk) leaves nothing else for the ledger to do, and its DENIED rows are
    in the ledger's journal without a further message (they waited for the next one, and a crash
    meanwhile left orders answered DENIED with no row, in doubt at the next start)."""
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True},
                                     risk={"max_notional": "100"}))
    try:
        rt.on_market(Quote(ts=T0, symbol=SYM, bid=D("39432.99"), bid_size=D("1"), ask=D("39433.62"), ask_size=D("1")))
        entered, release = held_claim

        def big(coid: str) -> OrderIntent:
            return OrderIntent(client_order_id=coid, symbol=SYM, side="BUY", order_type="MARKET", quantity=D("0.01"))

        first = rt.submit(big("g-0"), CTX)
        assert entered.wait(10)
        rest = [rt.submit(big(f"g-{i}"), CTX) for i in (1, 2, 3)]
        time.sleep(0.05)
        release.set()
        reports = [f.result(timeout=10) for f in [first, *rest]]
        assert [r.status for r in reports] == [OrderStatus.DENIED] * 4
        ledger = tmp_path / "state" / "ledger.sqlite"
        want = [(f"g-{i}", "DENIED") for i in range(4)]
        deadline = time.monotonic() + 10
        while True:  # no rt.flush(): it would write them
            with contextlib.closing(sqlite3.connect(ledger)) as db:
                rows = sorted(db.execute("SELECT client_order_id, to_status FROM order_events").fetchall())
            if rows == want or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert rows == want
    finally:
        rt.stop()


def test_an_outcome_whose_handling_crashes_the_adapter_is_in_doubt_never_sent_again(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The venue took every order of a group; handling the second outcome crashes the adapter. The
    one before it is answered as it was; that one and those after it are in doubt (UNKNOWN,
    E_EXEC_ADAPTER_CRASHED) and reconciled with the venue. None is sent again: the crashing one
    was left with the breaker as never taken, which sent it to the next generation (the venue
    refused it as a duplicate: REJECTED, its fill missing from the books)."""
    import actors.execution.adapter as adapter_module

    venue_report, crashed = adapter_module.venue_report, []

    def crashing_report(order, result, **kw):
        if order.client_order_id == "w-2" and not crashed:
            crashed.append(order.client_order_id)
            raise RuntimeError("injected adapter bug")
        return venue_report(order, result, **kw)

    monkeypatch.setattr(adapter_module, "venue_report", crashing_report)
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True}))
    try:
        venue = rt.venue("paper")
        first, *rest = _one_venue_group(rt, monkeypatch, 4)
        reports = {r.client_order_id: r for r in (f.result(timeout=20) for f in [first, *rest])}
        assert crashed == ["w-2"]
        assert reports["w-1"].status is OrderStatus.FILLED
        assert reports["w-2"].status is OrderStatus.UNKNOWN and reports["w-2"].error.code is ErrorCode.E_EXEC_ADAPTER_CRASHED
        ids = [f"w-{i}" for i in range(5)]
        deadline = time.monotonic() + 20
        while any(rt.order(c).status is not OrderStatus.FILLED for c in ids) and time.monotonic() < deadline:
            time.sleep(0.05)  # the in-doubt orders are looked up at the venue
        assert venue.submission_counts() == {c: 1 for c in ids} and venue.duplicate_submissions() == 0
        assert {c: rt.order(c).status for c in ids} == {c: OrderStatus.FILLED for c in ids}
        venue_fills = {c: f.trade_id for c, f in venue.fill_records()}
        assert {c: [f.trade_id for f in rt.order(c).fills] for c in ids} == {c: [venue_fills[c]] for c in ids}
    finally:
        rt.stop()
