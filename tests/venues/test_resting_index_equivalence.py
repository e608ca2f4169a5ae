"""The paper venue finds the resting orders a quote or trade can fill through its price index
(``PaperVenue._limits``, bounded by ``FillModel.resting_bounds``) instead of visiting every open
order. Held here to the code it replaced: a twin venue whose ``_resting`` ignores the bounds (every
open LIMIT order, as before) is fed the same orders, cancels, quotes and trades, in both fill
models, and ends with the same fills, order states, events and touch at every step; the index
always holds exactly the open LIMIT orders, in arrival order per price."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from protocols import ExecutionContext, OrderIntent, OrderType, Quote, Side, Trade, VenueOrder
from protocols.venues import FillModelConfig, PaperVenue

T0 = datetime(2021, 1, 8, 23, 50, tzinfo=UTC)
SYMBOL = "BTC/USDT"
CTX = ExecutionContext(mode="paper", account_id="acc-1")


def _unbounded(venue: PaperVenue) -> PaperVenue:
    """``venue`` with the resting orders found as before the index: every open LIMIT order."""
    full = venue._resting

    def resting(symbol: str, updated: Any, bounds: Any = (None, None)) -> Any:
        return full(symbol, updated)

    venue._resting = resting  # type: ignore[method-assign]
    return venue


def _index_holds_open_limits(venue: PaperVenue) -> None:
    expected: dict[tuple[str, Side], list[tuple[Decimal, str]]] = {}
    for symbol, ids in venue._open.items():
        for coid in ids:
            order = venue._orders[coid].order
            if order.order_type is OrderType.LIMIT:
                assert order.limit_price is not None
                expected.setdefault((symbol, order.side), []).append((order.limit_price, coid))
    for entries in expected.values():
        entries.sort(key=lambda e: e[0])  # stable: arrival order within a price
    got = {key: [(price, coid) for price, _pos, coid in book] for key, book in venue._limits.items() if book}
    assert got == expected
    assert set(venue._limit_of) == {coid for entries in expected.values() for _price, coid in entries}


def _state(venue: PaperVenue) -> Any:
    return ({coid: (r.status, r.fills, r.ts) for coid, r in venue._orders.items()}, list(venue._fills),
            venue.touch(SYMBOL), venue._fill_seq)


@pytest.mark.parametrize("fill_model", ["flowroute", "nautilus_l1"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_indexed_resting_orders_match_as_every_open_order_did(fill_model: str, seed: int) -> None:
    rng = random.Random(seed)
    config = FillModelConfig(fill_model=fill_model)
    fast, slow = PaperVenue("paper", config=config), _unbounded(PaperVenue("paper", config=config))
    events: dict[str, list[Any]] = {"fast": [], "slow": []}
    fast.set_event_sink(events["fast"].append)
    slow.set_event_sink(events["slow"].append)
    mid, ts, n_fills = Decimal("39433.00"), T0, 0
    for i in range(700):
        ts += timedelta(seconds=rng.choice((1, 1, 1, 30, 600, 3600)))  # crosses midnight: DAY orders expire
        u = rng.random()
        if u < 0.45:
            side = rng.choice(["BUY", "SELL"])
            ticks = Decimal(rng.randint(-20, 500)) * Decimal("0.01")
            price = mid - ticks if side == "BUY" else mid + ticks
            kind = rng.random()
            intent = OrderIntent(client_order_id=f"o-{i}", symbol=SYMBOL, side=side,
                                 order_type="MARKET" if kind < 0.1 else "LIMIT",
                                 quantity=Decimal(rng.choice(["0.001", "0.002", "0.005", "0.05"])),
                                 limit_price=None if kind < 0.1 else price,
                                 time_in_force="DAY" if 0.1 <= kind < 0.3 else "GTC")
            outcomes = []
            for venue in (fast, slow):
                try:
                    venue.submit_order(VenueOrder.from_intent(intent, CTX))
                    outcomes.append("ok")
                except Exception as exc:  # noqa: BLE001 - a refusal must be the same in both
                    outcomes.append(type(exc).__name__)
            assert outcomes[0] == outcomes[1]
        elif u < 0.55 and fast._open.get(SYMBOL):
            coid = rng.choice(list(fast._open[SYMBOL]))
            assert fast.cancel_order(coid) == slow.cancel_order(coid)
        elif u < 0.85:
            mid += Decimal(rng.randint(-150, 150)) * Decimal("0.01")
            size = Decimal(rng.choice(["0.001", "0.004", "0.02", "1"]))
            quote = Quote(ts=ts, symbol=SYMBOL, bid=mid, bid_size=size, ask=mid + Decimal("0.01") * rng.randint(1, 3),
                          ask_size=size)
            fast.on_market(quote)
            slow.on_market(quote)
        else:
            price = mid + Decimal(rng.randint(-300, 300)) * Decimal("0.01")
            trade = Trade(ts=ts, symbol=SYMBOL, trade_id=f"t-{i}", price=price,
                          qty=Decimal(rng.choice(["0.001", "0.003", "0.05"])),
                          aggressor_side=rng.choice([Side.BUY, Side.SELL, None]))
            fast.on_market(trade)
            slow.on_market(trade)
        assert _state(fast) == _state(slow), f"step {i}"
        _index_holds_open_limits(fast)
        n_fills = len(fast._fills)
    assert events["fast"] == events["slow"]
    assert n_fills > 50 and any(e.kind == "fill" for e in events["fast"]), "the run should fill resting orders"
    assert any(e.kind == "expired" for e in events["fast"]), "the run should expire DAY orders at midnight"
    assert len(fast._open.get(SYMBOL, ())) > 20, "the run should leave many orders resting"


def test_an_order_resting_at_the_bound_is_a_candidate_in_arrival_order() -> None:
    """A BUY limit equal to the quote's ask and a SELL limit equal to its bid cross (rule 10); the
    candidates come in arrival order (``_open``'s), whatever their prices."""
    venue = PaperVenue("paper")
    venue.on_market(Quote(ts=T0, symbol=SYMBOL, bid=Decimal("39000"), bid_size=Decimal("1"), ask=Decimal("39001"),
                          ask_size=Decimal("1")))
    for coid, side, price in (("b", "BUY", "38999"), ("b2", "BUY", "38998"), ("s", "SELL", "39002"),
                              ("s2", "SELL", "39003"), ("b3", "BUY", "38999")):
        venue.submit_order(VenueOrder.from_intent(OrderIntent(client_order_id=coid, symbol=SYMBOL, side=side,
                                                              order_type="LIMIT", quantity=Decimal("0.001"),
                                                              limit_price=Decimal(price)), CTX))
    assert [r.seq for r in venue._resting(SYMBOL, {}, (Decimal("38999"), Decimal("39002")))] == [1, 3, 5]
    assert [r.seq for r in venue._resting(SYMBOL, {}, (Decimal("38998"), None))] == [1, 2, 3, 4, 5]
    assert [r.seq for r in venue._resting(SYMBOL, {})] == [1, 2, 3, 4, 5]
    assert venue._resting(SYMBOL, {}, (Decimal("38999.5"), Decimal("39001"))) == []
    venue.on_market(Quote(ts=T0 + timedelta(seconds=1), symbol=SYMBOL, bid=Decimal("39002"), bid_size=Decimal("1"),
                          ask=Decimal("39002.5"), ask_size=Decimal("1")))
    assert venue.fetch_order("s").status.value == "FILLED" and venue.fetch_order("s2").status.value == "ACCEPTED"
