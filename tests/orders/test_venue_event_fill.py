"""``VenueEvent.fill`` is honoured: an event may carry its trade (FIX LastQty/LastPx/ExecID) beside
a state that reports only cum_qty/avg_px; the ledger books the trade once (protocols/adapter.py)."""

from __future__ import annotations

from decimal import Decimal

from _adapters import TestAdapter
from conftest import ctx, limit, registry_of, wait_until

from protocols import Fill, Liquidity, OrderStatus


def test_an_event_fill_outside_its_state_is_booked_once(make_runtime) -> None:
    venue = TestAdapter(default="accept")
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}})
    assert rt.submit(limit("evf-1", qty="0.002"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    booked = venue.book("evf-1")
    price = Decimal("39433.62")
    trade = Fill(trade_id="x-1", qty=Decimal("0.001"), price=price, fee_currency="USDT", liquidity=Liquidity.TAKER, ts=booked.ts)
    # the state carries only the cumulative figures, the trade rides in VenueEvent.fill
    state = booked.model_copy(update={"status": OrderStatus.PARTIALLY_FILLED, "cum_qty": Decimal("0.001"),
                                      "leaves_qty": Decimal("0.001"), "avg_px": price})
    venue.emit("fill", state, trade)
    venue.emit("fill", state, trade)  # a repeat changes nothing
    wait_until(lambda: rt.order("evf-1").status is OrderStatus.PARTIALLY_FILLED, what="the trade booked")
    rt.flush()
    order = rt.order("evf-1")
    assert order.cum_qty == Decimal("0.001") and [f.trade_id for f in order.fills] == ["x-1"]
    assert {p.account_id: p.net_qty for p in rt.positions()} == {"acc-1": Decimal("0.001")}
