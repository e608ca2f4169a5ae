"""Tests for protocols.model.intents: OrderIntent.fingerprint() computed once, cached, and invisible to pydantic."""

from __future__ import annotations

import copy
import hashlib
import pickle
import threading
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocols import OrderIntent
from protocols.model import intents as _intents

PROPS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def reference(intent: OrderIntent) -> str:
    """The fingerprint as specified: sha256 of the |-joined economic fields, Decimals normalised."""
    def norm(value: D) -> str:
        return format(value.normalize(), "f")

    price = "" if intent.limit_price is None else norm(intent.limit_price)
    text = "|".join((intent.symbol, intent.side.value, intent.order_type.value, norm(intent.quantity), price,
                     intent.time_in_force.value))
    return hashlib.sha256(text.encode()).hexdigest()


def limit(**kw) -> OrderIntent:
    args = dict(client_order_id="f-1", symbol="BTC/USDT", side="BUY", order_type="LIMIT", quantity=D("1.50"),
                limit_price=D("39400.00"), time_in_force="IOC", strategy_id="s1", metadata={"k": 1})
    args.update(kw)
    return OrderIntent(**args)


decimals = st.decimals(min_value=D("1e-12"), max_value=D("1e12"), allow_nan=False, allow_infinity=False, places=12)


@settings(max_examples=200, **PROPS)
@given(qty=decimals, price=st.one_of(st.none(), decimals), side=st.sampled_from(["BUY", "SELL"]),
       tif=st.sampled_from(["GTC", "IOC", "FOK", "DAY"]))
def test_fingerprint_matches_the_specified_digest_first_and_cached(qty, price, side, tif) -> None:
    if qty <= 0 or (price is not None and price <= 0):
        return
    intent = OrderIntent(client_order_id="f-1", symbol="ETH/USDT", side=side, order_type="LIMIT" if price else "MARKET",
                         quantity=qty, limit_price=price, time_in_force=tif)
    expected = reference(intent)
    assert intent.fingerprint() == expected
    assert intent.fingerprint() == expected  # cached
    fresh = intent.model_copy()
    assert fresh.fingerprint() == expected


def test_the_cache_is_invisible_to_pydantic() -> None:
    a, b = limit(), limit()
    dumped, json_text = a.model_dump(), a.model_dump_json()
    assert a.fingerprint() == reference(a)
    assert a == b and b == a  # one cached, one not
    assert a.model_dump() == dumped == b.model_dump() and a.model_dump_json() == json_text
    assert a.__pydantic_private__ is None and "_fingerprint" not in a.__dict__
    assert repr(a) == repr(b)
    assert set(type(a).model_fields) == {"client_order_id", "symbol", "side", "order_type", "quantity",
                                         "limit_price", "time_in_force", "strategy_id", "metadata"}
    plain = OrderIntent(client_order_id="p-1", symbol="BTC/USDT", side="SELL", order_type="MARKET",
                        quantity=D("0.25"))  # default metadata: picklable, deep-copyable
    plain.fingerprint()
    for other in (copy.copy(a), a.model_copy(), copy.copy(plain), copy.deepcopy(plain), plain.model_copy(deep=True),
                  pickle.loads(pickle.dumps(plain))):
        src = a if other.client_order_id == "f-1" else plain
        assert other == src and other.fingerprint() == src.fingerprint() == reference(src)
    data = pickle.dumps(plain)  # the cache is not pickled
    assert b"_fingerprint" not in data and plain.fingerprint().encode() not in data
    with pytest.raises(ValidationError):
        a.quantity = D("2")  # still frozen


def test_a_copy_with_other_economics_gets_its_own_fingerprint() -> None:
    a = limit()
    before = a.fingerprint()
    capped = a.model_copy(update={"limit_price": D("39300")})  # what the ledger does on a slippage cap
    assert capped.fingerprint() == reference(capped) != before
    assert a.fingerprint() == before
    unvalidated = OrderIntent.model_construct(**{**a.model_dump(), "quantity": D("3")})
    assert unvalidated.fingerprint() == reference(unvalidated) != before


def test_equal_economics_share_a_fingerprint_and_different_ones_do_not() -> None:
    assert limit(quantity=D("1.5")).fingerprint() == limit(quantity=D("1.500"), client_order_id="f-2").fingerprint()
    assert limit().fingerprint() != limit(side="SELL").fingerprint()
    assert limit().fingerprint() != limit(time_in_force="GTC").fingerprint()
    market = OrderIntent(client_order_id="m", symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=D("1.5"))
    assert market.fingerprint() == reference(market)


def test_the_digest_memo_is_bounded() -> None:
    for i in range(_intents._DIGESTS_MAX + 10):
        intent = OrderIntent(client_order_id="b", symbol="BTC/USDT", side="BUY", order_type="MARKET",
                             quantity=D(i + 1))
        assert intent.fingerprint() == reference(intent)
    assert len(_intents._DIGESTS) <= _intents._DIGESTS_MAX


def test_concurrent_first_calls_agree() -> None:
    intents = [limit(quantity=D(i + 1)) for i in range(200)]
    results: list[list[str]] = [[] for _ in range(4)]

    def worker(out: list[str]) -> None:
        out.extend(i.fingerprint() for i in intents)

    threads = [threading.Thread(target=worker, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [reference(i) for i in intents]
    assert all(r == expected for r in results)


@settings(max_examples=500, **PROPS)
@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_norm_is_format_of_the_normalised_value(value) -> None:
    if value.is_snan():
        return  # normalize() signals on a signalling NaN, before any text is made
    assert _intents._norm(value) == format(value.normalize(), "f")
