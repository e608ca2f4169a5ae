"""A group-commit venue's first attempt: no separate ``OrderSent`` to the ledger; the outcome carries
the SUBMITTED step (actors/execution/adapter.py ``_send``), and the ledger's history is what it was.

The durable paper book (journal on) declares ``group_commit``: its answers come only after the
group's write, so the ``OrderSent`` told before the call reached the ledger just before the
outcome, one ledger message per order more. These tests hold that each order still goes RESERVED
→ SUBMITTING → its outcome, that a retried attempt is still recorded as sent before the next one,
and that a venue event arriving before the call's outcome is applied, not dropped.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from actors import Runtime
from actors.orders.ledger import LedgerActor
from config import load_settings
from protocols import ExecutionContext, NotDeliveredError, OrderIntent, OrderStatus, Quote

SYM = "BTC/USDT"
T0 = datetime(2024, 1, 2, tzinfo=UTC)


def _quote(bid: str = "39432.99", ask: str = "39433.62") -> Quote:
    return Quote(ts=T0, symbol=SYM, bid=D(bid), bid_size=D("1"), ask=D(ask), ask_size=D("1"))


def _transitions(rt: Runtime, coid: str) -> list[tuple[str, str, str]]:
    return [(r.data["from"], r.data["to"], r.data["cause"]) for r in rt.history(coid) if r.kind == "transition"]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(client order id, attempt) of every OrderSent the ledger handles."""
    seen: list[tuple[str, int]] = []
    handle = LedgerActor.handle_OrderSent

    def spy(actor, message):
        seen.append((message.client_order_id, message.attempt))
        return handle(actor, message)

    monkeypatch.setattr(LedgerActor, "handle_OrderSent", spy)
    return seen


def test_first_attempts_at_a_group_commit_venue_send_no_order_sent(tmp_path: Path, sent: list) -> None:
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True}))
    try:
        assert rt.venue("paper").capabilities.group_commit
        rt.on_market(_quote())
        ctx = ExecutionContext(mode="paper", account_id="acct")
        futures = [rt.submit(OrderIntent(client_order_id=f"s-{i}", symbol=SYM, side="BUY", order_type="MARKET",
                                         quantity=D("0.001")), ctx) for i in range(5)]
        assert [f.result(timeout=10).status for f in futures] == [OrderStatus.FILLED] * 5
        rt.flush()
        assert sent == []
        for i in range(5):
            steps = _transitions(rt, f"s-{i}")
            assert steps[:2] == [("INITIALIZED", "RESERVED", "reserved at intake"),
                                 ("RESERVED", "SUBMITTING", "attempt 1 sent to paper")]
            assert [(a, b) for a, b, _ in steps[2:]] == [("SUBMITTING", "FILLED")] and steps[2][2].startswith("fill paper-")
            assert rt.order(f"s-{i}").attempts == 1
    finally:
        rt.stop()


def test_a_retried_first_attempt_is_recorded_as_sent_before_the_next(tmp_path: Path, sent: list) -> None:
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True},
                                     retry={"max_retries": 3}))
    try:
        venue = rt.venue("paper")
        inner, failed = venue.submit_order, []

        def once_not_delivered(order):
            if not failed:
                failed.append(order.client_order_id)
                raise NotDeliveredError("connection refused")
            return inner(order)

        venue.submit_order = once_not_delivered  # type: ignore[method-assign]
        rt.on_market(_quote())
        ctx = ExecutionContext(mode="paper", account_id="acct")
        report = rt.submit(OrderIntent(client_order_id="r-1", symbol=SYM, side="BUY", order_type="MARKET",
                                       quantity=D("0.001")), ctx).result(timeout=10)
        assert failed == ["r-1"] and report.status is OrderStatus.FILLED and report.attempts == 2
        rt.flush()
        assert sent == [("r-1", 1), ("r-1", 2)]  # the first told once it failed, the retry as it was sent
        steps = _transitions(rt, "r-1")
        assert steps[:2] == [("INITIALIZED", "RESERVED", "reserved at intake"), ("RESERVED", "SUBMITTING", "attempt 1 sent to paper")]
        assert [(a, b) for a, b, _ in steps[2:]] == [("SUBMITTING", "FILLED")]
        kinds = [(r.kind, r.data.get("attempt")) for r in rt.history("r-1") if r.kind in ("attempt", "attempt_failed")]
        assert kinds == [("attempt_failed", 1), ("attempt", 2)]
    finally:
        rt.stop()


def test_a_venue_fill_event_before_the_calls_outcome_is_applied(tmp_path: Path, sent: list) -> None:
    """A resting LIMIT order filled by market data while its group is still open: the venue pushes
    the fill event before the worker hands out the call's outcome (ACCEPTED). The ledger, which has
    the order RESERVED, records it sent and books the fill."""
    rt = Runtime.start(load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True},
                                     timeouts={"attempt_s": 30.0, "deadline_s": 60.0}))  # the held call is not late
    try:
        venue = rt.venue("paper")
        rt.on_market(_quote())
        inner, hold, entered = venue.submit_order, threading.Event(), threading.Event()

        def held_after_submit(order):  # the venue has the order; its answer waits
            state = inner(order)
            entered.set()
            assert hold.wait(10)
            return state

        venue.submit_order = held_after_submit  # type: ignore[method-assign]
        ctx = ExecutionContext(mode="paper", account_id="acct")
        future = rt.submit(OrderIntent(client_order_id="e-1", symbol=SYM, side="BUY", order_type="LIMIT",
                                       quantity=D("0.001"), limit_price=D("39000")), ctx)
        assert entered.wait(10)
        rt.on_market(_quote(bid="38990", ask="38999"))  # crosses the resting limit: a fill event
        deadline = time.monotonic() + 10
        while rt.order("e-1").status is not OrderStatus.FILLED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rt.order("e-1").status is OrderStatus.FILLED  # applied while the call's outcome still waits
        hold.set()
        assert future.result(timeout=10).status is OrderStatus.ACCEPTED  # the venue's answer to the call
        rt.flush()
        order = rt.order("e-1")
        assert order.status is OrderStatus.FILLED and order.cum_qty == D("0.001") and len(order.fills) == 1
        steps = [(a, b) for a, b, _ in _transitions(rt, "e-1")]
        assert steps[:3] == [("INITIALIZED", "RESERVED"), ("RESERVED", "SUBMITTING"), ("SUBMITTING", "FILLED")]
        assert sent == []
    finally:
        rt.stop()
