"""The paper venue's resting orders for the fill model (``PaperVenue._resting``, run on every quote
and trade) are what the records' own properties give: ``Resting(seq, side, limit_price,
rec.leaves_qty)`` for each open LIMIT order, in the same order, whatever the orders' states."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from protocols import ExecutionContext, OrderIntent, OrderType, Quote, VenueOrder
from protocols.venues import PaperVenue, Resting

T0 = datetime(2021, 1, 8, tzinfo=UTC)


def _quote(i: int, bid: str, size: str = "0.002") -> Quote:
    b = Decimal(bid)
    return Quote(ts=T0 + timedelta(seconds=i), symbol="BTC/USDT", bid=b, bid_size=Decimal(size), ask=b + Decimal("0.63"),
                 ask_size=Decimal(size))


def _expected(venue: PaperVenue) -> list[Resting]:
    out = []
    for coid in venue._open.get("BTC/USDT", ()):
        rec = venue._orders[coid]
        if rec.status.is_open and rec.order.order_type is OrderType.LIMIT:
            out.append(Resting(rec.seq, rec.order.side, rec.order.limit_price, rec.leaves_qty))
    return out


def test_resting_orders_are_those_the_records_describe() -> None:
    rng = random.Random(7)
    venue = PaperVenue("paper")
    venue.on_market(_quote(0, "39432.99"))
    ctx = ExecutionContext(mode="paper", account_id="acc-1")
    for i in range(120):  # resting, partly filled, filled, canceled and market orders mixed
        side = rng.choice(["BUY", "SELL"])
        if rng.random() < 0.2:
            intent = OrderIntent(client_order_id=f"m-{i}", symbol="BTC/USDT", side=side, order_type="MARKET",
                                 quantity=Decimal("0.001"))
        else:
            ticks = Decimal(rng.randint(-3, 40)) * Decimal("0.01")
            price = Decimal("39432.99") - ticks if side == "BUY" else Decimal("39433.62") + ticks
            intent = OrderIntent(client_order_id=f"l-{i}", symbol="BTC/USDT", side=side, order_type="LIMIT",
                                 quantity=Decimal(rng.choice(["0.001", "0.003", "0.005"])), limit_price=price)
        venue.submit_order(VenueOrder.from_intent(intent, ctx))
        if i % 9 == 0:
            venue.on_market(_quote(i + 1, str(Decimal("39432.99") + Decimal(rng.randint(-150, 150)) * Decimal("0.01"))))
        if i % 13 == 0 and venue._open.get("BTC/USDT"):
            coid = next(iter(venue._open["BTC/USDT"]))
            venue.cancel_order(coid)
        assert venue._resting("BTC/USDT", {}) == _expected(venue)
    assert any(r.leaves_qty < venue._orders[venue._by_seq[r.seq]].order.quantity for r in _expected(venue)), \
        "the run should leave a partly filled order resting"
