"""The durable paper book writes an order's and a fill's JSON itself (protocols/venues/paper/book.py
``order_json``, ``fill_json``): the content pydantic's ``model_dump_json`` writes, read back as the
same value, field by field, for drawn orders and fills."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from protocols import Fill, VenueOrder
from protocols.model.enums import Liquidity, OrderType, Side, TimeInForce
from protocols.venues.paper.book import fill_json, order_json

#: text a journal can store (no NUL, no lone surrogate), with what JSON must escape
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)
amounts = st.one_of(
    st.decimals(min_value=Decimal("1E-12"), max_value=Decimal("1E+12"), allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("1E+3"), Decimal("0.10"), Decimal("5E-8"), Decimal("123456789.123456789")]))
stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda d: d.replace(tzinfo=UTC))


def _same_content(ours: str, pydantic: str) -> None:
    """The same keys in the same order and the same values, the time compared as a time."""
    a, b = json.loads(ours), json.loads(pydantic)
    assert list(a) == list(b)
    assert datetime.fromisoformat(a.pop("ts")) == datetime.fromisoformat(b.pop("ts").replace("Z", "+00:00"))
    assert a == b


@given(coid=texts, account=texts, symbol=texts, side=st.sampled_from(list(Side)), qty=amounts,
       limit=st.one_of(st.none(), amounts), tif=st.sampled_from(list(TimeInForce)), ts=stamps)
def test_an_orders_json_reads_back_as_the_order(coid, account, symbol, side, qty, limit, tif, ts) -> None:
    order = VenueOrder(client_order_id=coid, account_id=account, symbol=symbol, side=side,
                       order_type="MARKET" if limit is None else "LIMIT", quantity=qty, limit_price=limit,
                       time_in_force=tif, ts=ts)
    text = order_json(order)
    assert VenueOrder.model_validate_json(text) == order
    _same_content(text, order.model_dump_json())


@given(trade_id=texts.filter(lambda t: len(t) <= 64), qty=amounts, price=amounts,
       fee=st.one_of(st.just(Decimal(0)), amounts), currency=st.text(max_size=8).filter(lambda t: "\x00" not in t),
       liquidity=st.sampled_from(list(Liquidity)), ts=stamps)
def test_a_fills_json_reads_back_as_the_fill(trade_id, qty, price, fee, currency, liquidity, ts) -> None:
    try:
        currency.encode("utf-8")
    except UnicodeEncodeError:
        return
    fill = Fill(trade_id=trade_id, qty=qty, price=price, fee=fee, fee_currency=currency, liquidity=liquidity, ts=ts)
    text = fill_json(fill)
    assert Fill.model_validate_json(text) == fill
    _same_content(text, fill.model_dump_json())


def test_a_subclass_and_a_time_in_another_zone_go_to_pydantic() -> None:
    class Tagged(Fill):
        tag: str = "t"

    fill = Tagged(trade_id="t-1", qty=Decimal("1"), price=Decimal("2"))
    assert fill_json(fill) == fill.model_dump_json() and '"tag":"t"' in fill_json(fill)
    order = VenueOrder.model_construct(client_order_id="c", account_id="a", symbol="BTC/USDT", side=Side.BUY,
                                       order_type=OrderType.MARKET, quantity=Decimal("1"), limit_price=None,
                                       time_in_force=TimeInForce.GTC,
                                       ts=datetime(2021, 1, 1, tzinfo=timezone(timedelta(hours=5, seconds=30))))
    assert order_json(order) == order.model_dump_json()
