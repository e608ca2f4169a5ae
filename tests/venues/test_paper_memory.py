"""The paper venue with a durable book keeps closed orders and booked fills out of memory past
``keep_closed`` and reads them back from its book (bounded memory for long sessions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocols import ExecutionContext, OrderIntent, OrderStatus, Quote, VenueOrder, VenueRejectedError
from protocols.venues import PaperVenue


def order(cl_id: str, side: str) -> VenueOrder:
    intent = OrderIntent(client_order_id=cl_id, symbol="BTC/USDT", side=side, order_type="MARKET", quantity=Decimal("0.001"))
    return VenueOrder.from_intent(intent, ExecutionContext(mode="paper", account_id="acc"))


def test_closed_orders_leave_memory_and_are_read_back(tmp_path) -> None:
    venue = PaperVenue("paper", book_path=tmp_path / "paper_book.sqlite")
    venue.keep_closed = 10
    venue.on_market(Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=Decimal("39432.99"), bid_size=Decimal("1000"),
                          ask=Decimal("39433.62"), ask_size=Decimal("1000")))
    states = {}
    for i in range(600):
        cl_id = f"pm-{i}"
        states[cl_id] = venue.submit_order(order(cl_id, "BUY" if i % 3 else "SELL"))
    assert len(venue._orders) <= 10 + 256 and len(venue._fills) <= 256 + 1  # bounded, not 600
    assert venue.fetch_order("pm-0") == states["pm-0"]  # read back from the book
    with pytest.raises(VenueRejectedError) as dup:
        venue.submit_order(order("pm-1", "BUY"))
    assert dup.value.venue_code == "DUPLICATE_CLIENT_ORDER_ID"
    assert venue.duplicate_submissions() == 1
    counts = venue.submission_counts()
    assert len(counts) == 600 and counts["pm-1"] == 2 and counts["pm-2"] == 1
    with pytest.raises(VenueRejectedError, match="already FILLED"):
        venue.cancel_order("pm-3")
    records = venue.fill_records()
    assert [c for c, _ in records] == [f"pm-{i}" for i in range(600)]
    net = sum((Decimal("0.001") if i % 3 else Decimal("-0.001")) for i in range(600))
    assert venue.fetch_positions("acc") == {"BTC/USDT": net}
    assert all(s.status is OrderStatus.FILLED for s in states.values())
    venue.close()
    PaperVenue.keep_closed, keep = 10, PaperVenue.keep_closed
    try:
        again = PaperVenue("paper", book_path=tmp_path / "paper_book.sqlite")  # a restart reads the same book
    finally:
        PaperVenue.keep_closed = keep
    assert len(again._orders) == 10
    assert again.fetch_order("pm-0") == states["pm-0"] and again.fetch_positions("acc") == {"BTC/USDT": net}
    again.close()
