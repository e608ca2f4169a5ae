"""Seed conveniences: deterministic client order ids from signal inputs, ``Runtime.wait``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from conftest import ctx, limit, quote

from protocols import OrderIntent, OrderStatus, signal_client_order_id

BAR = datetime(2021, 1, 8, 0, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- signal_client_order_id


def test_same_signal_gives_the_same_id_whatever_the_keyword_order_and_decimal_scale() -> None:
    a = signal_client_order_id("ma-cross", symbol="BTC/USDT", side="BUY", bar_ts=BAR, fast=Decimal("1.50"))
    b = signal_client_order_id("ma-cross", fast=Decimal("1.5"), bar_ts=BAR.astimezone(timezone(timedelta(hours=2))),
                               side="BUY", symbol="BTC/USDT")
    assert a == b
    assert a.startswith("ma-cross-") and len(a) <= 36
    OrderIntent(client_order_id=a, symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=Decimal("1"))


def test_different_signals_and_strategies_give_different_ids() -> None:
    base = dict(symbol="BTC/USDT", side="BUY", bar_ts=BAR)
    ids = {
        signal_client_order_id("ma-cross", **base),
        signal_client_order_id("ma-cross", **{**base, "bar_ts": BAR + timedelta(minutes=1)}),
        signal_client_order_id("ma-cross", **{**base, "side": "SELL"}),
        signal_client_order_id("breakout", **base),
        signal_client_order_id("ma-cross", **base, note=None),
    }
    assert len(ids) == 5


@pytest.mark.parametrize(("strategy", "inputs", "error", "names"), [
    ("", {"a": 1}, ValueError, "strategy_id"),
    ("a" * 12, {"a": 1}, ValueError, "strategy_id"),
    ("s p", {"a": 1}, ValueError, "strategy_id"),
    ("s1", {}, ValueError, "signal input"),
    ("s1", {"px": 1.5}, TypeError, "'px'"),
    ("s1", {"ts": datetime(2021, 1, 8)}, ValueError, "'ts'"),
    ("s1", {"obj": object()}, TypeError, "'obj'"),
    ("s1", {"px": Decimal("NaN")}, ValueError, "'px'"),
])
def test_bad_signal_inputs_are_refused_naming_what_is_wrong(strategy, inputs, error, names) -> None:
    with pytest.raises(error, match=names):
        signal_client_order_id(strategy, **inputs)


def test_a_signal_seen_twice_makes_one_order(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    signal = dict(symbol="BTC/USDT", side="BUY", bar_ts=BAR)
    reports = []
    for _ in range(2):  # the strategy sees the same signal twice (e.g. a re-delivered message)
        cl = signal_client_order_id("ma-cross", **signal)
        intent = OrderIntent(client_order_id=cl, symbol="BTC/USDT", side="BUY", order_type="MARKET",
                             quantity=Decimal("0.001"))
        reports.append(rt.submit(intent, ctx()).result(timeout=5))
    assert reports[0].status is OrderStatus.FILLED and not reports[0].replay
    assert reports[1].replay and reports[1].client_order_id == reports[0].client_order_id
    assert rt.venue("paper").submission_counts() == {reports[0].client_order_id: 1}


# --------------------------------------------------------------------------- Runtime.wait


def test_wait_returns_when_a_resting_gtc_order_fills(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    first = rt.submit(limit("wait-gtc", price="39000.00"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.ACCEPTED
    with pytest.raises(TimeoutError, match="wait-gtc is still ACCEPTED"):
        rt.wait("wait-gtc", timeout=0.05)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(rt.wait("wait-gtc", timeout=10)))
    waiter.start()
    rt.on_market(quote(bid="38990.00", ask="38999.00"))  # the ask crosses the resting bid: it fills
    waiter.join(timeout=15)
    assert got and got[0].status is OrderStatus.FILLED and got[0].cum_qty == Decimal("0.001")
    # already terminal: answered at once
    assert rt.wait("wait-gtc", timeout=1).status is OrderStatus.FILLED


def test_wait_ends_on_any_terminal_status_and_refuses_bad_calls(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    rt.submit(limit("wait-cxl", price="39000.00"), ctx()).result(timeout=5)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(rt.wait("wait-cxl", timeout=10)))
    waiter.start()
    rt.cancel("wait-cxl").result(timeout=5)
    waiter.join(timeout=15)
    assert got and got[0].status is OrderStatus.CANCELED
    with pytest.raises(KeyError, match="never saw"):
        rt.wait("no-such-order", timeout=1)
    for bad in (0, -1, "5", None, True):
        with pytest.raises(ValueError, match="timeout"):
            rt.wait("wait-cxl", timeout=bad)


def test_a_timed_out_wait_leaves_no_waiter_behind(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    rt.submit(limit("wait-forget", price="39000.00"), ctx()).result(timeout=5)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            rt.wait("wait-forget", timeout=0.01)
    rt.flush()
    assert rt.stats()["waiters"] == 0
