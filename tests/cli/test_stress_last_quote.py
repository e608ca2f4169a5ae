"""``run.py stress`` prices its LIMIT orders 1–200 ticks behind the touch it fed itself (one
``LastQuote`` its senders share), never by asking the paper venue: ``PaperVenue.touch`` takes the
venue's lock, which the venue worker holds through each durable book commit, so asking put the
senders in a queue behind the book's writes (harness work on the measured path)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flowroute.cli.stress import LastQuote, StressConfig, StressSender


class _Venue:
    def touch(self, symbol: str) -> Any:
        raise AssertionError("the sender asked the venue for its touch")


class _Runtime:
    def __init__(self) -> None:
        self.fed: list[Any] = []

    def venue(self, adapter_id: str) -> Any:
        return _Venue()

    def on_market(self, quote: Any) -> None:
        self.fed.append(quote)


def _senders(n: int) -> tuple[_Runtime, LastQuote, list[StressSender]]:
    rt, market = _Runtime(), LastQuote()
    cfg = StressConfig(senders=n, orders=100, faults=None, seed=3, state_dir=None, profile="stress")
    return rt, market, [StressSender(rt, i, 100, cfg, lambda _f: None, market) for i in range(n)]


def test_a_quote_one_sender_feeds_is_the_touch_every_sender_prices_behind() -> None:
    rt, market, (a, b) = _senders(2)
    a._quote()
    assert market.quote is rt.fed[-1]
    limits = [i for i in (b._new_intent() for _ in range(200)) if i.order_type.value == "LIMIT"]
    assert limits, "the mix sends LIMIT orders"
    for intent in limits:
        ticks = (market.quote.bid - intent.limit_price if intent.side.value == "BUY" else intent.limit_price - market.quote.ask)
        assert Decimal("0.01") <= ticks <= Decimal("2.00"), intent
    b._quote()
    assert market.quote is rt.fed[-1] and len(rt.fed) == 2


def test_before_any_quote_limits_are_priced_behind_the_opening_quote() -> None:
    _, market, (a,) = _senders(1)
    assert market.quote is None
    limits = [i for i in (a._new_intent() for _ in range(100)) if i.order_type.value == "LIMIT"]
    assert limits and all(i.limit_price < Decimal("39433.00") if i.side.value == "BUY" else i.limit_price > Decimal("39433.01")
                          for i in limits)
