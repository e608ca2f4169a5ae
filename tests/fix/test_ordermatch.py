"""Two runtimes trade against each other through QuickFIX's ``ordermatch`` (FIX 4.2).

ordermatch is a price-time matching engine with sessions CLIENT1 and CLIENT2 and Day limit
orders. Quirks met here: the trade prints at the ask (the selling order's limit), not at the
resting bid; the cancel acknowledgement carries ClOrdID 11 = the original id and no
OrigClOrdID 41; OrderID == ClOrdID.
"""

from __future__ import annotations

from decimal import Decimal

from protocols import OrderStatus

from .conftest import SYM, incoming, limit, live, needs_peers

pytestmark = needs_peers


def _wait(rt, client_order_id, pred, what):
    from tests.conftest import wait_until

    return wait_until(lambda: (lambda r: r if r is not None and pred(r) else None)(rt.order(client_order_id)), 10, what)


def test_crossing_orders_partially_fill_at_the_ask_vwap_and_the_rest_is_canceled(peer, fix_runtime) -> None:
    om = peer("ordermatch")
    buyer = fix_runtime(om, "CLIENT1", "ORDERMATCH", "FIX.4.2", name="c1")
    seller = fix_runtime(om, "CLIENT2", "ORDERMATCH", "FIX.4.2", name="c2")
    bid = limit("BUY", "10", "101")
    resting = buyer.submit(bid, live("buyer")).result(timeout=10)
    assert resting.status is OrderStatus.ACCEPTED and resting.venue_order_id == bid.client_order_id  # OrderID == ClOrdID
    ask1, ask2 = limit("SELL", "4", "100"), limit("SELL", "3", "99.5")
    for ask in (ask1, ask2):
        seller.submit(ask, live("seller")).result(timeout=10)
        _wait(seller, ask.client_order_id, lambda r: r.status is OrderStatus.FILLED, f"{ask.client_order_id} filled")
    report = _wait(buyer, bid.client_order_id, lambda r: r.cum_qty == Decimal("7"), "the bid's two partial fills")
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert [f.price for f in report.fills] == [Decimal("100"), Decimal("99.5")]  # at the ask, not at 101
    assert report.avg_px == (4 * Decimal("100") + 3 * Decimal("99.5")) / 7
    canceled = buyer.cancel(bid.client_order_id).result(timeout=10)
    assert canceled.status is OrderStatus.CANCELED and canceled.cum_qty == Decimal("7")  # ack with 11=orig, no 41
    for rt, account, qty in ((buyer, "buyer", Decimal("7")), (seller, "seller", Decimal("-7"))):
        rt.flush()
        (position,) = [p for p in rt.positions() if p.symbol == SYM and p.account_id == account]
        fills = [f for r in rt.orders() for f in r.fills]
        assert position.net_qty == qty
        assert sum(f.qty for f in fills) == abs(qty)
        assert position.buy_qty + position.sell_qty == sum(f.qty for f in fills)


def test_a_cancel_that_crosses_a_fill_on_the_wire_leaves_the_order_filled_once(peer, fix_runtime) -> None:
    """The cancel reaches ordermatch after the order filled there, while the fill's
    ExecutionReport is still on its way back (held 1 s by a relay): ordermatch drops a cancel of
    a finished order without an answer. The fill is booked once, the order ends FILLED, the
    cancel does not undo it, and each side's position equals its fills."""
    from ._relay import Relay

    om = peer("ordermatch")
    relay = Relay(om.connector(), om.port)
    try:
        buyer = fix_runtime(None, "CLIENT1", "ORDERMATCH", "FIX.4.2", name="c1", port=relay.port,
                            connector=lambda host, port, timeout: __import__("socket").create_connection((host, port), timeout))
        seller = fix_runtime(om, "CLIENT2", "ORDERMATCH", "FIX.4.2", name="c2")
        bid = limit("BUY", "2", "101")
        assert buyer.submit(bid, live("buyer")).result(timeout=10).status is OrderStatus.ACCEPTED
        relay.delay_s = 1.0  # what ordermatch sends the buyer from now on arrives 1 s late
        ask = limit("SELL", "2", "100")
        seller.submit(ask, live("seller")).result(timeout=10)
        _wait(seller, ask.client_order_id, lambda r: r.status is OrderStatus.FILLED, "the ask filled")
        assert buyer.order(bid.client_order_id).status is OrderStatus.ACCEPTED  # the buyer has not heard yet
        canceled = buyer.cancel(bid.client_order_id).result(timeout=15)  # crosses the fill on the wire
        assert incoming(om, "F", f"{bid.client_order_id}-c1") == 1  # the cancel reached ordermatch ...
        # ... which dropped it: the fill's report answers it, too late to cancel, not a timeout
        assert canceled.client_order_id == bid.client_order_id and canceled.status is OrderStatus.FILLED
        assert canceled.error is not None and "too late to cancel" in canceled.error.message, canceled.error
        report = _wait(buyer, bid.client_order_id, lambda r: r.status is OrderStatus.FILLED, "the bid filled")
        relay.delay_s = 0.0
        assert report.cum_qty == Decimal("2") and [f.qty for f in report.fills] == [Decimal("2")]
        for rt, account, qty in ((buyer, "buyer", Decimal("2")), (seller, "seller", Decimal("-2"))):
            rt.flush()
            (position,) = [p for p in rt.positions() if p.symbol == SYM and p.account_id == account]
            assert position.net_qty == qty == (1 if qty > 0 else -1) * sum(f.qty for r in rt.orders() for f in r.fills)
    finally:
        relay.close()
