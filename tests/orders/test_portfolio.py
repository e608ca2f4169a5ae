"""The portfolio, a pure part of the ledger (actors/orders/portfolio.py; docs/DESIGN.md "Fills"):
positions, cash and per-strategy PnL booked from fills by one rule, and what risk must hear."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from actors.orders.books import FillBooking, FillOutcome, OrderRecord
from actors.orders.portfolio import Portfolio
from protocols import Fill, Side
from protocols import OrderEventType as E

T0 = datetime(2021, 1, 8, tzinfo=UTC)


def fill(trade_id: str, qty: str, price: str, fee: str = "0") -> Fill:
    return Fill(trade_id=trade_id, qty=D(qty), price=D(price), fee=D(fee), fee_currency="USDT", ts=T0)


def working(qty: str = "2") -> OrderRecord:
    rec = OrderRecord(client_order_id="c1", account_id="a1", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                      quantity=D(qty), limit_price=D("200"))
    for ev in (E.RESERVED, E.SUBMITTED, E.ACCEPTED):
        rec.apply_event(ev, cause="test")
    return rec


def test_a_fill_books_the_account_and_the_strategy_and_is_spent_for_risk() -> None:
    p = Portfolio()
    booked = p.book("a1", "ma", "BTC/USDT", Side.BUY, fill("t1", "1", "100", fee="0.1"))
    assert booked.fill.trade_id == "t1" and booked.spent == booked.fill and booked.correction == 0
    assert p.net_qty("a1", "BTC/USDT") == D("1")
    assert p.cash("a1") == {"USDT": D("-100.1"), "BTC": D("1")}
    (mine,) = p.positions("ma", by_strategy=True)
    (acct,) = p.positions()
    assert (mine.strategy_id, mine.net_qty, acct.net_qty, acct.avg_entry_px) == ("ma", D("1"), D("1"), D("100"))
    p.mark("BTC/USDT", D("110"))
    assert p.positions()[0].unrealized_pnl == D("10")
    p.book("a1", "ma", "BTC/USDT", Side.SELL, fill("t2", "1", "120"))
    (day,) = p.daily(account_id="a1")
    assert day.realized_pnl == D("20") and p.net_qty("a1", "BTC/USDT") == 0


def test_a_real_fill_covering_a_synthetic_one_corrects_the_books_and_tells_risk_the_difference() -> None:
    rec, p, direct = working(), Portfolio(), Portfolio()
    out, synthetic = rec.apply_cumulative(D("1"), D("100"), trade_id_prefix="v-1")
    assert out is FillOutcome.APPLIED
    p.book("a1", "", "BTC/USDT", Side.BUY, synthetic)
    assert rec.apply_fill(fill("t1", "1", "101")) is FillOutcome.APPLIED
    booking = rec.last_booking
    assert isinstance(booking, FillBooking)
    booked = p.book("a1", "", "BTC/USDT", Side.BUY, booking)
    assert booked.fill.trade_id == "t1" and booked.spent is None  # nothing new: the quantity was counted
    assert booked.correction == D("1")  # 1 unit now priced 101 instead of 100
    direct.book("a1", "", "BTC/USDT", Side.BUY, fill("t1", "1", "101"))
    assert p.positions() == direct.positions() and p.cash("a1") == direct.cash("a1")
