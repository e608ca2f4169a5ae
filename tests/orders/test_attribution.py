"""Attribution (seeds 000, 002): strategy_id, session_id and correlation_id on reports, events, fills and
audit lines; positions and PnL per strategy; daily PnL with the day boundary as a setting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from conftest import EventLog, market, quote, settle

from actors.orders.pnl import PnlAttribution
from protocols import ExecutionContext, Fill, OrderFilled, OrderIntent, OrderStatus, Side

D = Decimal


def sctx(strategy: str = "", session: str = "sess-1", corr: str = "", account: str = "acc-1") -> ExecutionContext:
    return ExecutionContext(mode="paper", account_id=account, strategy_id=strategy, session_id=session, correlation_id=corr)


def test_reports_and_events_carry_the_attribution(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    log = EventLog()
    rt.subscribe(log, lambda e: getattr(e, "strategy_id", "") == "alpha")
    report = rt.submit(market("at-1"), sctx("alpha", corr="sig-42")).result(timeout=5)
    other = rt.submit(market("at-2"), sctx("beta")).result(timeout=5)
    assert (report.strategy_id, report.session_id, report.correlation_id) == ("alpha", "sess-1", "sig-42")
    assert other.strategy_id == "beta"
    (filled,) = log.wait_for(lambda events: [e for e in events if isinstance(e, OrderFilled)])
    assert (filled.client_order_id, filled.strategy_id, filled.session_id, filled.correlation_id) == ("at-1", "alpha", "sess-1", "sig-42")
    settle(rt)
    assert {e.client_order_id for e in log.snapshot()} == {"at-1"}  # beta's events never reached the filter
    snap = rt.order("at-1")
    assert (snap.strategy_id, snap.correlation_id) == ("alpha", "sig-42")


def test_the_intents_strategy_id_wins_over_the_contexts(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    intent = OrderIntent(client_order_id="at-3", symbol="BTC/USDT", side="BUY", order_type="MARKET",
                         quantity=D("0.001"), strategy_id="from-intent")
    assert rt.submit(intent, sctx("from-context")).result(timeout=5).strategy_id == "from-intent"
    denied = rt.submit(market("at-4", qty="0.0001"), sctx("small", corr="c-9")).result(timeout=5)
    assert denied.status is OrderStatus.DENIED and (denied.strategy_id, denied.correlation_id) == ("small", "c-9")


def test_positions_and_pnl_per_strategy(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote(bid="99.99", ask="100.00"))
    rt.submit(market("ps-a1", qty="1"), sctx("alpha")).result(timeout=5)       # alpha long 1 @ 100
    rt.on_market(quote(bid="109.99", ask="110.00"))
    rt.submit(market("ps-b1", qty="1"), sctx("beta")).result(timeout=5)        # beta long 1 @ 110
    rt.on_market(quote(bid="120.00", ask="120.02"))
    rt.submit(market("ps-a2", side="SELL", qty="1"), sctx("alpha")).result(timeout=5)  # alpha closes @ 120: +20
    settle(rt)
    account = {p.symbol: p for p in rt.positions()}["BTC/USDT"]
    assert account.net_qty == D("1") and account.strategy_id == ""
    by = {p.strategy_id: p for p in rt.positions(by_strategy=True)}
    assert set(by) == {"alpha", "beta"}
    assert by["alpha"].net_qty == 0 and by["alpha"].realized_pnl == D("20")
    assert by["beta"].net_qty == D("1") and by["beta"].avg_entry_px == D("110") and by["beta"].realized_pnl == 0
    assert by["beta"].unrealized_pnl == D("10.01")  # marked at the mid, 120.01
    assert by["alpha"].account_id == "acc-1"
    assert [p.strategy_id for p in rt.positions("beta")] == ["beta"]
    # the account book's average cost differs: it closed 1 of 2 at an entry of 105
    assert account.realized_pnl == D("15")


def test_daily_pnl_day_boundary_is_a_setting(make_runtime) -> None:
    rt = make_runtime(pnl={"day_start": "17:00", "timezone": "America/New_York"})
    # 20:00Z = 15:00 New York (day of 01-08); 22:30Z = 17:30 New York: past 17:00, so the day of 01-09
    rt.on_market(quote(bid="99.99", ask="100.00", ts="2021-01-08T20:00:00Z"))
    rt.submit(market("dp-1", qty="2"), sctx("alpha")).result(timeout=5)
    rt.on_market(quote(bid="105.00", ask="105.01", ts="2021-01-08T22:30:00Z"))
    rt.submit(market("dp-2", side="SELL", qty="1"), sctx("alpha")).result(timeout=5)
    settle(rt)
    rows = rt.daily_pnl(strategy_id="alpha")
    assert [(r.day, r.fills, r.bought, r.sold) for r in rows] == [
        (date(2021, 1, 8), 1, D("2"), 0), (date(2021, 1, 9), 1, 0, D("1"))]
    day2 = rows[1]
    assert day2.realized_pnl == D("5") and day2.fees > 0 and day2.net_pnl == day2.realized_pnl - day2.fees
    assert rows[0].realized_pnl == 0 and rows[0].fees > 0
    assert rt.daily_pnl(date(2021, 1, 9)) == (day2,)
    assert rt.daily_pnl(account_id="nobody") == ()
    # the same fills with the day starting at midnight UTC: both on 01-08
    rt2 = make_runtime()
    rt2.on_market(quote(bid="99.99", ask="100.00", ts="2021-01-08T20:00:00Z"))
    rt2.submit(market("dq-1", qty="2"), sctx()).result(timeout=5)
    rt2.on_market(quote(bid="105.00", ask="105.01", ts="2021-01-08T22:30:00Z"))
    rt2.submit(market("dq-2", side="SELL", qty="1"), sctx()).result(timeout=5)
    settle(rt2)
    assert [(r.day, r.strategy_id, r.fills, r.realized_pnl) for r in rt2.daily_pnl()] == [(date(2021, 1, 8), "", 2, D("5"))]


def test_strategy_books_and_daily_pnl_survive_a_restart(make_runtime, settings_factory) -> None:
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"})  # OFF keeps no intents
    rt = make_runtime(settings)
    rt.on_market(quote(bid="99.99", ask="100.00"))
    rt.submit(market("rs-1", qty="1"), sctx("alpha", corr="c-1")).result(timeout=5)
    rt.on_market(quote(bid="101.00", ask="101.01"))
    rt.submit(market("rs-2", side="SELL", qty="1"), sctx("alpha")).result(timeout=5)
    settle(rt)
    before_pnl, before_pos = rt.daily_pnl(), rt.positions(by_strategy=True)
    fill_lines = [r for r in rt.history("rs-1") if r.kind == "fill"]
    assert fill_lines and fill_lines[0].data["strategy_id"] == "alpha"
    first = rt.history("rs-1")[0].data
    assert (first["strategy_id"], first["session_id"], first["correlation_id"]) == ("alpha", "sess-1", "c-1")
    rt.stop()
    rt2 = make_runtime(settings)
    settle(rt2)
    assert rt2.daily_pnl() == before_pnl and before_pnl[0].realized_pnl == D("1")
    assert [(p.strategy_id, p.net_qty, p.realized_pnl) for p in rt2.positions(by_strategy=True)] == \
        [(p.strategy_id, p.net_qty, p.realized_pnl) for p in before_pos]
    assert rt2.order("rs-1").correlation_id == "c-1"


def test_pnl_book_day_of_handles_dst_and_bad_settings() -> None:
    book = PnlAttribution(day_start="17:00", timezone="America/New_York")
    # summer (EDT, UTC-4): 21:30Z = 17:30 local -> next day; winter (EST, UTC-5): 21:30Z = 16:30 local -> same day
    assert book.day_of(datetime(2021, 7, 1, 21, 30, tzinfo=UTC)) == date(2021, 7, 2)
    assert book.day_of(datetime(2021, 1, 1, 21, 30, tzinfo=UTC)) == date(2021, 1, 1)
    assert book.day_of(datetime(2021, 1, 1, 22, 0, tzinfo=UTC)) == date(2021, 1, 2)
    assert book.day_of(datetime(2021, 1, 1, 21, 59, tzinfo=UTC)) == date(2021, 1, 1)
    for bad in ("24:00", "5pm", ""):
        with pytest.raises(ValueError, match="HH:MM"):
            PnlAttribution(day_start=bad)


def test_pnl_book_without_strategy_uses_the_account_share() -> None:
    book = PnlAttribution()
    fill = Fill(trade_id="t1", qty=D("1"), price=D("10"), fee=D("0.01"), fee_currency="USDT",
                ts=datetime(2021, 1, 8, tzinfo=UTC))
    book.on_fill("acc-1", "", "BTC/USDT", Side.SELL, fill, (D("3"), D("0.01")))
    (row,) = book.daily()
    assert (row.strategy_id, row.realized_pnl, row.fees, row.sold) == ("", D("3"), D("0.01"), D("1"))
    assert book.positions() == ()
