"""Fill-model rules (protocols/venues/paper/fill_model.py) exercised through PaperVenue and directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocols import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    Liquidity,
    OrderStatus,
    Quote,
    Side,
    Trade,
    VenueOrder,
    VenueRejectedError,
)
from protocols.venues import FILL_MODEL_VERSION, FillModel, FillModelConfig, PaperVenue, floor_lot, round_price
from protocols.venues.paper.fill_model import Resting, TopOfBook

T0 = datetime(2021, 1, 8, 0, 0, 1, tzinfo=UTC)
SYM = "BTC/USDT"
TEST_INST = {
    SYM: Instrument(symbol=SYM, tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D("5")),
    "EUR/USD": DEFAULT_INSTRUMENTS["EUR/USD"],
}


def cfg(**kw) -> FillModelConfig:
    base = dict(
        maker_fee_bps=D("1"),
        taker_fee_bps=D("10"),
        instruments=TEST_INST,
    )
    base.update(kw)
    return FillModelConfig(**base)


def quote(bid="99.99", ask="100.00", bid_size="1", ask_size="1", t=0.0, symbol=SYM) -> Quote:
    return Quote(
        ts=T0 + timedelta(seconds=t), symbol=symbol, bid=D(bid), bid_size=D(bid_size), ask=D(ask), ask_size=D(ask_size)
    )


_trade_ids = iter(range(1, 10**9))


def trade(price, qty, t=1.0, trade_id=None, symbol=SYM) -> Trade:
    return Trade(
        ts=T0 + timedelta(seconds=t),
        symbol=symbol,
        trade_id=trade_id or f"m{next(_trade_ids)}",
        price=D(price),
        qty=D(qty),
    )


_n = iter(range(1, 10**9))


def order(side="BUY", qty="0.1", price=None, tif="GTC", coid=None, symbol=SYM) -> VenueOrder:
    return VenueOrder(
        client_order_id=coid or f"c{next(_n)}",
        account_id="acc",
        symbol=symbol,
        side=side,
        order_type="LIMIT" if price is not None else "MARKET",
        quantity=D(qty),
        limit_price=D(price) if price is not None else None,
        time_in_force=tif,
        ts=T0,
    )


def venue(**kw) -> PaperVenue:
    v = PaperVenue(config=cfg(**kw))
    v.on_market(quote())
    return v


def fills_of(state):
    return [(f.qty, f.price, f.liquidity) for f in state.fills]


# ---------------------------------------------------------------- market orders


def test_market_buy_within_touch_fills_at_ask_as_taker_with_fee():
    v = venue()
    s = v.submit_order(order("BUY", "0.5"))
    assert s.status is OrderStatus.FILLED
    assert fills_of(s) == [(D("0.5"), D("100.00"), Liquidity.TAKER)]
    assert s.fills[0].fee == D("0.05000000")  # 50 * 10 bps
    assert s.fills[0].fee_currency == "USDT"
    assert s.fills[0].trade_id == "paper-1"
    assert s.leaves_qty == 0


def test_market_walks_only_evidence_levels_then_expires():
    """Rule 6/7: depth beyond the touch is recent quotes and trades, never an invented ladder."""
    v = PaperVenue(config=cfg())
    v.on_market(quote(ask="100.20", ask_size="0.4", t=0.0))
    v.on_market(trade("100.10", "0.3", t=0.5))  # no aggressor, inside the spread: not a touch move
    v.on_market(quote(ask="100.00", ask_size="1", t=1.0))
    s = v.submit_order(order("BUY", "2.5"))
    assert s.status is OrderStatus.EXPIRED  # beyond the evidence nothing fills
    assert fills_of(s) == [
        (D("1"), D("100.00"), Liquidity.TAKER),
        (D("0.3"), D("100.10"), Liquidity.TAKER),
        (D("0.4"), D("100.20"), Liquidity.TAKER),
    ]
    assert [f.trade_id for f in s.fills] == ["paper-1", "paper-2", "paper-3"]
    assert max(f.price for f in s.fills) == D("100.20")  # never above what the market showed


def test_depth_level_is_larger_of_shown_and_traded_and_depleted_by_our_fills():
    v = PaperVenue(config=cfg())
    v.on_market(quote(ask="100.10", ask_size="0.2", t=0.0))
    v.on_market(quote(ask="100.10", ask_size="0.5", t=0.1))
    v.on_market(trade("100.10", "0.3", t=0.2))
    v.on_market(trade("100.10", "0.3", t=0.3))  # traded 0.6 > shown 0.5
    v.on_market(quote(ask="100.00", ask_size="1", t=1.0))
    a = v.submit_order(order("BUY", "1.4"))
    assert fills_of(a) == [(D("1"), D("100.00"), Liquidity.TAKER), (D("0.4"), D("100.10"), Liquidity.TAKER)]
    b = v.submit_order(order("BUY", "1"))  # the same quote: touch used up, 0.2 left at 100.10
    assert fills_of(b) == [(D("0.2"), D("100.10"), Liquidity.TAKER)] and b.status is OrderStatus.EXPIRED


def test_depth_evidence_older_than_the_window_is_ignored():
    v = PaperVenue(config=cfg(depth_window_s=D("0.5")))
    v.on_market(quote(ask="100.10", ask_size="5", t=0.0))
    v.on_market(quote(ask="100.00", ask_size="1", t=1.0))
    s = v.submit_order(order("BUY", "2"))
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER)] and s.status is OrderStatus.EXPIRED


def test_market_sell_walks_bids_below_the_touch():
    v = PaperVenue(config=cfg())
    v.on_market(quote(bid="99.90", bid_size="0.5", ask="100.00", t=0.0))
    v.on_market(quote(bid="99.99", bid_size="1", ask="100.00", t=1.0))
    s = v.submit_order(order("SELL", "1.5"))
    assert fills_of(s) == [(D("1"), D("99.99"), Liquidity.TAKER), (D("0.5"), D("99.90"), Liquidity.TAKER)]
    assert s.status is OrderStatus.FILLED


def test_market_expire_rule_expires_remainder():
    v = PaperVenue(config=cfg(market_remainder="expire"))
    v.on_market(quote(ask="100.10", ask_size="5", t=0.0))
    v.on_market(quote(t=1.0))
    s = v.submit_order(order("BUY", "2.5"))
    assert s.status is OrderStatus.EXPIRED
    assert s.cum_qty == D("1") and s.leaves_qty == 0
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER)]


def test_market_walk_capped_by_max_levels():
    v = PaperVenue(config=cfg(max_walk_levels=2))
    for i, ask in enumerate(("100.30", "100.20", "100.10", "100.00")):
        v.on_market(quote(ask=ask, ask_size="1", t=i * 0.1))
    s = v.submit_order(order("BUY", "5"))
    assert s.status is OrderStatus.EXPIRED
    assert s.cum_qty == D("3")  # touch + 2 levels


@pytest.mark.parametrize("tif", ["IOC", "GTC"])
def test_ioc_and_gtc_market_fill_what_is_available_and_expire_the_rest(tif):
    v = venue()
    s = v.submit_order(order("BUY", "2.5", tif=tif))
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER)] and s.status is OrderStatus.EXPIRED


def test_trades_move_the_touch_until_the_next_quote():
    v = venue()  # 99.99 / 100.00, 1 each
    v.on_market(Trade(ts=T0 + timedelta(seconds=1), symbol=SYM, trade_id="tb", price=D("99.995").quantize(D("0.01")),
                      qty=D("0.3"), aggressor_side="BUY"))
    s = v.submit_order(order("BUY", "0.2"))
    assert fills_of(s) == [(D("0.2"), D("100.00"), Liquidity.TAKER)]  # 99.995 rounds to 100.00
    v.on_market(Trade(ts=T0 + timedelta(seconds=2), symbol=SYM, trade_id="tb2", price=D("99.97"), qty=D("0.3"),
                      aggressor_side="BUY"))
    s = v.submit_order(order("BUY", "0.5"))
    # the ask moved to 99.97 with the print's 0.3; the quote's 100.00 stays as depth evidence
    assert fills_of(s) == [(D("0.3"), D("99.97"), Liquidity.TAKER), (D("0.2"), D("100.00"), Liquidity.TAKER)]
    # and the bid too, as 99.97 < 99.99: a SELL now meets 99.97
    s = v.submit_order(order("SELL", "0.1"))
    assert fills_of(s) == [(D("0.1"), D("99.97"), Liquidity.TAKER)]
    v.on_market(quote(t=3.0))
    s = v.submit_order(order("BUY", "0.1"))
    assert fills_of(s) == [(D("0.1"), D("100.00"), Liquidity.TAKER)]


def test_trades_move_the_touch_can_be_switched_off():
    v = venue(trades_move_touch=False)
    v.on_market(Trade(ts=T0 + timedelta(seconds=1), symbol=SYM, trade_id="tb", price=D("99.97"), qty=D("0.3"),
                      aggressor_side="BUY"))
    s = v.submit_order(order("BUY", "0.2"))
    assert fills_of(s) == [(D("0.2"), D("100.00"), Liquidity.TAKER)]


def test_marketable_limit_takes_evidence_within_its_limit_and_rests_the_rest():
    v = PaperVenue(config=cfg())
    v.on_market(quote(ask="100.20", ask_size="1", t=0.0))
    v.on_market(quote(ask="100.10", ask_size="0.5", t=0.1))
    v.on_market(quote(t=1.0))
    s = v.submit_order(order("BUY", "3", price="100.10"))
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER), (D("0.5"), D("100.10"), Liquidity.TAKER)]
    assert s.status is OrderStatus.PARTIALLY_FILLED and s.leaves_qty == D("1.5")
    f = v.submit_order(order("BUY", "3", price="100.20", tif="FOK"))  # 0 + 0 + 1 available: short
    assert f.status is OrderStatus.EXPIRED and f.fills == ()


def test_zero_touch_size_counts_as_one_lot_level():
    v = PaperVenue(config=cfg())
    v.on_market(quote(ask_size="0"))
    s = v.submit_order(order("BUY", "0.06"))  # 0.06 * 100 = 6 >= min notional 5
    assert s.status is OrderStatus.EXPIRED  # one lot at the touch, no depth evidence
    assert fills_of(s) == [(D("0.001"), D("100.00"), Liquidity.TAKER)]


def test_market_fok_judged_on_touch_plus_evidence():
    v = PaperVenue(config=cfg())
    v.on_market(quote(ask="100.10", ask_size="0.5", t=0.0))
    v.on_market(quote(t=1.0))
    s = v.submit_order(order("BUY", "1.6", tif="FOK"))
    assert s.status is OrderStatus.EXPIRED and s.fills == ()
    s = v.submit_order(order("BUY", "1.5", tif="FOK"))
    assert s.status is OrderStatus.FILLED
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER), (D("0.5"), D("100.10"), Liquidity.TAKER)]


def test_touch_is_depleted_by_our_taker_fills_until_next_quote():
    v = venue(market_remainder="expire")
    a = v.submit_order(order("BUY", "0.6"))
    b = v.submit_order(order("BUY", "0.6"))
    assert a.cum_qty == D("0.6") and a.status is OrderStatus.FILLED
    assert b.cum_qty == D("0.4") and b.status is OrderStatus.EXPIRED
    v.on_market(quote(t=1))
    c = v.submit_order(order("BUY", "0.6"))
    assert c.status is OrderStatus.FILLED


def test_market_fok_expire_rule_all_or_nothing():
    v = venue(market_remainder="expire")
    s = v.submit_order(order("BUY", "2", tif="FOK"))
    assert s.status is OrderStatus.EXPIRED and s.fills == ()
    s = v.submit_order(order("BUY", "0.5", tif="FOK"))
    assert s.status is OrderStatus.FILLED


def test_market_order_without_quote_rejected_and_recorded():
    v = PaperVenue(config=cfg())
    o = order("BUY", "0.1")
    with pytest.raises(VenueRejectedError, match="no market data") as exc:
        v.submit_order(o)
    assert exc.value.venue_code == "NO_MARKET_DATA"
    st_ = v.fetch_order(o.client_order_id)
    assert st_ is not None and st_.status is OrderStatus.REJECTED and st_.reject_reason == "no market data"


# ---------------------------------------------------------------- limit orders


def test_marketable_limit_fills_at_touch_not_limit_and_rests_remainder():
    v = venue()
    s = v.submit_order(order("BUY", "1.5", price="100.50"))
    assert s.status is OrderStatus.PARTIALLY_FILLED
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER)]
    assert s.leaves_qty == D("0.5")
    assert [o.client_order_id for o in v.fetch_open_orders()] == [s.client_order_id]


def test_ioc_limit_fills_then_expires_rest():
    v = venue()
    s = v.submit_order(order("SELL", "1.5", price="99.00", tif="IOC"))
    assert s.status is OrderStatus.EXPIRED
    assert fills_of(s) == [(D("1"), D("99.99"), Liquidity.TAKER)]
    s = v.submit_order(order("BUY", "0.1", price="99.00", tif="IOC"))  # not marketable
    assert s.status is OrderStatus.EXPIRED and s.fills == ()
    assert v.fetch_open_orders() == ()


def test_fok_limit_fills_fully_or_nothing():
    v = venue()
    s = v.submit_order(order("BUY", "1.5", price="100.00", tif="FOK"))
    assert s.status is OrderStatus.EXPIRED and s.fills == ()
    s = v.submit_order(order("BUY", "1", price="100.00", tif="FOK"))
    assert s.status is OrderStatus.FILLED and s.avg_px == D("100.00")


def test_resting_limit_fills_as_maker_capped_by_trade_volume():
    v = venue()
    s = v.submit_order(order("BUY", "1", price="99.50"))
    assert s.status is OrderStatus.ACCEPTED
    events = []
    v.set_event_sink(events.append)
    v.on_market(trade("99.60", "5"))  # above the limit: nothing
    assert events == []
    v.on_market(trade("99.40", "0.3"))  # through: fills 0.3 at the limit
    v.on_market(trade("99.50", "0.4"))  # at the limit (queue rule): fills 0.4
    st_ = v.fetch_order(s.client_order_id)
    assert fills_of(st_) == [(D("0.3"), D("99.50"), Liquidity.MAKER), (D("0.4"), D("99.50"), Liquidity.MAKER)]
    assert st_.status is OrderStatus.PARTIALLY_FILLED and st_.leaves_qty == D("0.3")
    assert [e.kind for e in events] == ["fill", "fill"]
    assert events[0].fill.fee == D("0.00298500")  # 0.3*99.5*1bp
    v.on_market(trade("99.00", "10"))
    st_ = v.fetch_order(s.client_order_id)
    assert st_.status is OrderStatus.FILLED and st_.cum_qty == D("1")
    assert events[-1].state.status is OrderStatus.FILLED


def test_trade_volume_consumed_once_in_price_time_priority():
    v = venue()
    a = v.submit_order(order("BUY", "0.5", price="99.50"))
    b = v.submit_order(order("BUY", "0.5", price="99.60"))  # better price: first
    c = v.submit_order(order("BUY", "0.5", price="99.50"))  # same price as a, later
    v.on_market(trade("99.40", "0.8"))
    assert v.fetch_order(b.client_order_id).cum_qty == D("0.5")
    assert v.fetch_order(a.client_order_id).cum_qty == D("0.3")
    assert v.fetch_order(c.client_order_id).cum_qty == D("0")
    assert sum(f.qty for f in v.fills()) == D("0.8")


def test_same_market_trade_id_never_fills_twice():
    v = venue()
    v.submit_order(order("BUY", "1", price="99.50"))
    t = trade("99.40", "0.2", trade_id="dup")
    v.on_market(t)
    v.on_market(t)
    assert sum(f.qty for f in v.fills()) == D("0.2")


def test_resting_order_filled_by_crossing_quote_up_to_ask_size():
    v = venue()
    a = v.submit_order(order("BUY", "1", price="99.50"))
    b = v.submit_order(order("SELL", "1", price="100.50"))
    v.on_market(quote(bid="99.00", ask="99.40", ask_size="0.3", t=1))
    st_ = v.fetch_order(a.client_order_id)
    assert fills_of(st_) == [(D("0.3"), D("99.50"), Liquidity.MAKER)]
    assert v.fetch_order(b.client_order_id).cum_qty == 0
    # what our resting order took depleted the touch for the next taker
    s = v.submit_order(order("BUY", "0.1", price="99.40", tif="IOC"))
    assert s.status is OrderStatus.EXPIRED and s.fills == ()
    v.on_market(quote(bid="100.60", bid_size="2", ask="100.70", t=2))
    st_ = v.fetch_order(b.client_order_id)
    assert fills_of(st_) == [(D("1"), D("100.50"), Liquidity.MAKER)]


def test_limit_before_any_quote_rests_and_ioc_expires():
    v = PaperVenue(config=cfg())
    s = v.submit_order(order("BUY", "0.1", price="99.00"))
    assert s.status is OrderStatus.ACCEPTED
    s = v.submit_order(order("BUY", "0.1", price="99.00", tif="IOC"))
    assert s.status is OrderStatus.EXPIRED


# ---------------------------------------------------------------- crossed / locked


@pytest.mark.parametrize("bad", [("100.00", "100.00"), ("100.20", "100.10")], ids=["locked", "crossed"])
def test_skip_rule_keeps_last_good_touch(bad):
    v = venue(locked_crossed_rule="skip")
    v.on_market(quote(bid=bad[0], ask=bad[1], t=1))
    assert v.touch(SYM).ask == D("100.00")
    s = v.submit_order(order("BUY", "0.5"))
    assert fills_of(s) == [(D("0.5"), D("100.00"), Liquidity.TAKER)]


def test_halt_rule_rejects_market_and_does_not_match_until_good_quote():
    v = venue(locked_crossed_rule="halt")
    resting = v.submit_order(order("BUY", "1", price="99.50"))
    v.on_market(quote(bid="100.20", ask="99.00", t=1))  # crossed: would cross our bid, must not fill
    assert v.fetch_order(resting.client_order_id).cum_qty == 0
    with pytest.raises(VenueRejectedError) as exc:
        v.submit_order(order("BUY", "0.5"))
    assert exc.value.venue_code == "MARKET_HALTED"
    s = v.submit_order(order("BUY", "0.5", price="101.00", tif="IOC"))
    assert s.status is OrderStatus.EXPIRED and s.fills == ()
    s = v.submit_order(order("BUY", "0.5", price="101.00"))
    assert s.status is OrderStatus.ACCEPTED
    v.on_market(trade("99.40", "0.6", t=2))  # trades still fill resting orders (price priority)
    assert v.fetch_order(s.client_order_id).cum_qty == D("0.5")
    assert v.fetch_order(resting.client_order_id).cum_qty == D("0.1")
    v.on_market(quote(bid="99.98", ask="99.99", t=3))  # good again
    assert v.submit_order(order("BUY", "0.1")).status is OrderStatus.FILLED


def test_crossed_quote_before_any_good_quote_means_no_market_data():
    v = PaperVenue(config=cfg())
    v.on_market(quote(bid="100.10", ask="100.00"))
    with pytest.raises(VenueRejectedError, match="no market data"):
        v.submit_order(order("BUY", "0.1"))


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kw,code,text",
    [
        (dict(symbol="ETH/USDT"), "UNKNOWN_SYMBOL", "unknown symbol 'ETH/USDT'"),
        (dict(qty="0.0005", price="99.00"), "LOT_SIZE", "below lot size"),
        (dict(qty="0.1005", price="99.00"), "LOT_SIZE", "not a multiple of lot size"),
        (dict(qty="0.1", price="99.005"), "TICK_SIZE", "not a multiple of tick size"),
        (dict(qty="0.01", price="99.00"), "MIN_NOTIONAL", "below min notional"),
        (dict(qty="0.01"), "MIN_NOTIONAL", "below min notional"),
    ],
)
def test_instrument_filters_reject_and_book_records_rejected(kw, code, text):
    v = venue()
    o = order(**kw)
    with pytest.raises(VenueRejectedError, match=text) as exc:
        v.submit_order(o)
    assert exc.value.venue_code == code
    st_ = v.fetch_order(o.client_order_id)
    assert st_.status is OrderStatus.REJECTED and text in st_.reject_reason
    assert v.submission_counts()[o.client_order_id] == 1
    assert v.fills() == ()


# ---------------------------------------------------------------- fees, DAY, config


def test_fee_rounds_half_up_to_8dp():
    m = FillModel(cfg(taker_fee_bps=D("7.5")))
    assert m.fee(D("0.000001"), D("39433.61"), Liquidity.TAKER) == D("0.00002958")  # 0.0000295752...
    assert m.fee(D("1"), D("0.00000002"), Liquidity.MAKER) == D("0E-8")


def test_rounding_helpers():
    assert round_price(D("100.001"), D("0.01"), side=Side.BUY) == D("100.01")
    assert round_price(D("100.009"), D("0.01"), side=Side.SELL) == D("100.00")
    assert floor_lot(D("0.0019"), D("0.001")) == D("0.001")


def test_day_orders_expire_at_utc_date_change_gtc_stays():
    v = PaperVenue(config=cfg())
    v.on_market(quote(t=0))
    day = v.submit_order(order("BUY", "0.1", price="99.00", tif="DAY"))
    gtc = v.submit_order(order("BUY", "0.1", price="99.00"))
    events = []
    v.set_event_sink(events.append)
    late = datetime(2021, 1, 8, 23, 59, 59, tzinfo=UTC) - T0
    v.on_market(quote(t=late.total_seconds()))
    assert v.fetch_order(day.client_order_id).status is OrderStatus.ACCEPTED
    v.on_market(quote(t=late.total_seconds() + 2))  # 2021-01-09 00:00:01
    assert v.fetch_order(day.client_order_id).status is OrderStatus.EXPIRED
    assert v.fetch_order(gtc.client_order_id).status is OrderStatus.ACCEPTED
    assert [e.kind for e in events] == ["expired"]
    assert events[0].state.client_order_id == day.client_order_id


def test_latency_is_modelled_only_in_timestamps():
    v = venue(latency_us=1500)
    s = v.submit_order(order("BUY", "0.1"))
    assert s.fills[0].ts == T0 + timedelta(microseconds=1500)


def test_config_validation_names_field():
    with pytest.raises(ValidationError, match="market_remainder"):
        FillModelConfig(market_remainder="teleport")
    with pytest.raises(ValidationError, match="maker_fee_bps"):
        FillModelConfig(maker_fee_bps=D("-1"))
    with pytest.raises(ValidationError, match="does not match"):
        FillModelConfig(instruments={"X/Y": TEST_INST[SYM]})
    c = FillModelConfig()
    with pytest.raises((TypeError, ValueError)):
        c.instruments["X/Y"] = TEST_INST[SYM]  # read-only mapping


def test_from_settings_tolerant():
    s = SimpleNamespace(maker_fee_bps=D("0"), taker_fee_bps=3, market_remainder="expire")
    c = FillModelConfig.from_settings(s)
    assert c.taker_fee_bps == D(3) and c.market_remainder == "expire"
    assert dict(c.instruments) == DEFAULT_INSTRUMENTS
    s2 = SimpleNamespace(locked_crossed_rule="halt", instrument_map=lambda: {SYM: TEST_INST[SYM]})
    c2 = FillModelConfig.from_settings(s2)
    assert list(c2.instruments) == [SYM] and c2.locked_crossed_rule == "halt"
    assert FILL_MODEL_VERSION == "2.0"


def test_pure_model_match_functions_directly():
    m = FillModel(cfg())
    book = m.on_quote(None, quote(ask="100.00", ask_size="0.5"))
    assert isinstance(book, TopOfBook) and book.ask_avail == D("0.5")
    book2, out = m.match_quote(book, [Resting(1, Side.BUY, D("100.00"), D("2"))])
    assert [(s, e.qty) for s, e in out] == [(1, D("0.5"))] and book2.ask_avail == 0
    assert book.ask_avail == D("0.5")  # inputs untouched


# ---------------------------------------------------------------- properties


_events = st.lists(
    st.one_of(
        st.tuples(
            st.just("q"),
            st.integers(9900, 10100),  # bid in cents
            st.integers(-2, 30),  # spread in cents (<= 0: locked/crossed)
            st.integers(0, 3000),  # sizes in lots
            st.integers(0, 3000),
        ),
        st.tuples(st.just("t"), st.integers(9900, 10100), st.integers(1, 3000)),
        st.tuples(
            st.just("o"),
            st.sampled_from(["BUY", "SELL"]),
            st.integers(50, 3000),  # qty in lots
            st.one_of(st.none(), st.integers(9900, 10100)),
            st.sampled_from(["GTC", "IOC", "FOK", "DAY"]),
        ),
    ),
    max_size=40,
)


def _run(events, **kw):
    v = PaperVenue(config=cfg(**kw))
    per_trade: dict[str, D] = {}
    for i, ev in enumerate(events):
        if ev[0] == "q":
            _, bid, spread, bs, as_ = ev
            v.on_market(
                Quote(
                    ts=T0 + timedelta(seconds=i),
                    symbol=SYM,
                    bid=D(bid) / 100,
                    ask=D(bid + spread) / 100,
                    bid_size=D(bs) / 1000,
                    ask_size=D(as_) / 1000,
                )
            )
        elif ev[0] == "t":
            _, px, qty = ev
            before = len(v.fills())
            v.on_market(trade(D(px) / 100, D(qty) / 1000, t=i, trade_id=f"p{i}"))
            per_trade[f"p{i}"] = (sum(f.qty for f in v.fills()[before:]), D(qty) / 1000)
        else:
            _, side, qty, px, tif = ev
            try:
                v.submit_order(
                    order(side, D(qty) / 1000, price=None if px is None else D(px) / 100, tif=tif, coid=f"o{i}")
                )
            except VenueRejectedError:
                pass
    return v, per_trade


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events, st.sampled_from(["walk", "expire"]), st.sampled_from(["skip", "halt"]))
def test_property_invariants_and_determinism(events, remainder, rule):
    v1, per_trade = _run(events, market_remainder=remainder, locked_crossed_rule=rule)
    v2, _ = _run(events, market_remainder=remainder, locked_crossed_rule=rule)
    assert [f.model_dump_json() for f in v1.fills()] == [f.model_dump_json() for f in v2.fills()]
    inst = TEST_INST[SYM]
    for f in v1.fills():
        assert f.price % inst.tick_size == 0 and f.qty % inst.lot_size == 0 and f.qty > 0
    for coid in v1.submission_counts():
        s = v1.fetch_order(coid)
        assert s.cum_qty <= s.quantity
        if s.status is OrderStatus.FILLED:
            assert s.cum_qty == s.quantity
        if s.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
            assert s.leaves_qty == s.quantity - s.cum_qty
    for used, qty in per_trade.values():
        assert used <= qty
    pos = v1.fetch_positions().get(SYM, D(0))
    assert pos == sum(
        (f.qty if v1.fetch_order(c).side.value == "BUY" else -f.qty) for c, f in v1.fill_records()
    )
    assert len({f.trade_id for f in v1.fills()}) == len(v1.fills())


# ---------------------------------------------------------------- fill_model = "nautilus_l1" (rule 15)


def l1_venue(**kw) -> PaperVenue:
    v = PaperVenue(config=cfg(fill_model="nautilus_l1", **kw))
    v.on_market(quote())  # 99.99 x 1 / 100.00 x 1
    return v


def test_l1_market_remainder_one_tick_worse_ioc_expires_fok_needs_the_level():
    v = l1_venue()
    s = v.submit_order(order("BUY", "2.5"))
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER), (D("1.5"), D("100.01"), Liquidity.TAKER)]
    assert s.status is OrderStatus.FILLED
    s = v.submit_order(order("BUY", "2.5", tif="IOC"))  # the level is not depleted (N1)
    assert fills_of(s) == [(D("1"), D("100.00"), Liquidity.TAKER)] and s.status is OrderStatus.EXPIRED
    s = v.submit_order(order("SELL", "1.5", tif="FOK"))
    assert s.fills == () and s.status is OrderStatus.EXPIRED


def test_l1_marketable_limit_rests_at_the_touch_and_fills_one_tick_worse_beyond_it():
    v = l1_venue()
    at = v.submit_order(order("BUY", "3", price="100.00"))
    assert fills_of(at) == [(D("1"), D("100.00"), Liquidity.TAKER)] and at.status is OrderStatus.PARTIALLY_FILLED
    beyond = v.submit_order(order("BUY", "3", price="100.05"))
    assert fills_of(beyond) == [(D("1"), D("100.00"), Liquidity.TAKER), (D("2"), D("100.01"), Liquidity.TAKER)]


def test_l1_resting_limit_fills_whole_when_price_moves_through_and_level_size_at_it():
    v = l1_venue()
    buy = v.submit_order(order("BUY", "5", price="99.50"))
    v.on_market(quote(bid="99.40", ask="99.50", ask_size="2", t=1))  # at the limit: the level size
    assert fills_of(v.fetch_order(buy.client_order_id)) == [(D("2"), D("99.50"), Liquidity.MAKER)]
    v.on_market(quote(bid="99.30", ask="99.40", ask_size="1", t=2))  # through it: the whole rest
    assert fills_of(v.fetch_order(buy.client_order_id))[1:] == [
        (D("1"), D("99.50"), Liquidity.MAKER), (D("2"), D("99.50"), Liquidity.MAKER)]
    assert v.fetch_order(buy.client_order_id).status is OrderStatus.FILLED


def test_l1_trades_are_side_specific_and_set_the_level_on_both_sides():
    v = l1_venue()
    sell = v.submit_order(order("SELL", "1", price="100.50"))
    v.on_market(Trade(ts=T0 + timedelta(seconds=1), symbol=SYM, trade_id="b1", price=D("100.60"), qty=D("0.2"),
                      aggressor_side="BUY"))
    assert v.fetch_order(sell.client_order_id).fills == ()  # a BUY print moves the ask, not the bid
    v.on_market(Trade(ts=T0 + timedelta(seconds=2), symbol=SYM, trade_id="s1", price=D("100.60"), qty=D("0.2"),
                      aggressor_side="SELL"))
    assert fills_of(v.fetch_order(sell.client_order_id)) == [
        (D("0.2"), D("100.50"), Liquidity.MAKER), (D("0.8"), D("100.50"), Liquidity.MAKER)]
    m = v.submit_order(order("BUY", "0.5"))  # matching ask 100.60 from the BUY print, level size 0.2
    assert fills_of(m) == [(D("0.2"), D("100.60"), Liquidity.TAKER), (D("0.3"), D("100.61"), Liquidity.TAKER)]


def test_l1_mode_via_settings_and_make_fill_model():
    from protocols.venues import NautilusL1Model, make_fill_model

    s = SimpleNamespace(fill_model="nautilus_l1")
    assert isinstance(make_fill_model(FillModelConfig.from_settings(s)), NautilusL1Model)
    assert type(make_fill_model(FillModelConfig())) is FillModel
    with pytest.raises(ValidationError, match="fill_model"):
        FillModelConfig(fill_model="nautilus")


# ---------------------------------------------------------------- configured depth (rule 6)


def test_configured_depth_adds_levels_beyond_the_touch_merged_with_evidence():
    v = PaperVenue(config=cfg(depth={SYM: [(5, D("0.5")), (1, D("0.2"))]}))
    v.on_market(quote(ask="100.01", ask_size="0.1", t=0.0))  # evidence at 100.01: 0.1 < configured 0.2
    v.on_market(quote(t=1.0))
    s = v.submit_order(order("BUY", "2"))
    assert fills_of(s) == [
        (D("1"), D("100.00"), Liquidity.TAKER),
        (D("0.2"), D("100.01"), Liquidity.TAKER),
        (D("0.5"), D("100.05"), Liquidity.TAKER),
    ]
    assert s.status is OrderStatus.EXPIRED
    s = v.submit_order(order("SELL", "1.1", price="99.98"))  # a limit takes only levels within it
    assert fills_of(s) == [(D("1"), D("99.99"), Liquidity.TAKER), (D("0.1"), D("99.98"), Liquidity.TAKER)]


def test_configured_depth_is_validated_and_read_from_settings():
    from config import load_settings

    with pytest.raises(ValidationError, match="ticks must be >= 1"):
        cfg(depth={SYM: [(0, D("1"))]})
    with pytest.raises(ValidationError, match="not instruments: X/Y"):
        cfg(depth={"X/Y": [(1, D("1"))]})
    settings = load_settings(paper={"depth": {"BTC/USDT": [{"ticks": 3, "size": "0.25"}]}})
    c = FillModelConfig.from_settings(settings.paper)
    assert dict(c.depth) == {"BTC/USDT": ((3, D("0.25")),)}
