"""The runtime over FIX against QuickFIX's ``executor`` acceptor (real process, real TCP).

executor fills every limit order at once at its limit price, answers a market order with a
session-level Reject (371=40) and does not dedupe ClOrdID: a re-sent id would fill again, so
its own log (every incoming message) counts what reached it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from protocols import OrderIntent, OrderStatus, Quote, VenueOrder, VenueRejectedError

from .conftest import SYM, cid, incoming, limit, live, needs_peers
from .test_acceptance import SCRIPTS

SPEC = SCRIPTS / "spec"

pytestmark = needs_peers


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_limit_orders_fill_at_their_limit_and_books_equal_fills(peer, fix_runtime, begin) -> None:
    executor = peer("executor")
    rt = fix_runtime(executor, "CLIENT1", "EXECUTOR", begin)
    orders = [("BUY", "0.5", "100.25"), ("BUY", "0.25", "101.5"), ("SELL", "0.125", "102")]
    reports = []
    for side, qty, px in orders:
        reports.append(rt.submit(limit(side, qty, px, tif="GTC"), live()).result(timeout=10))
    for report, (_side, qty, px) in zip(reports, orders, strict=False):
        assert report.status is OrderStatus.FILLED, report
        assert report.avg_px == Decimal(px)
        assert report.cum_qty == Decimal(qty)
        assert len(report.fills) == 1 and report.fills[0].price == Decimal(px)
    rt.flush()
    (position,) = [p for p in rt.positions() if p.symbol == SYM]
    assert position.net_qty == Decimal("0.5") + Decimal("0.25") - Decimal("0.125")
    assert position.buy_qty == Decimal("0.75") and position.sell_qty == Decimal("0.125")
    health = rt.health().venues["fix"]
    assert health["state"] == "ACTIVE" and health["execution_reports"] == 3


def test_market_order_comes_back_rejected_with_the_venue_reason(peer, fix_runtime) -> None:
    rt = fix_runtime(peer("executor"), "CLIENT1", "EXECUTOR")
    rt.on_market(Quote(ts="2026-01-05T12:00:00Z", symbol=SYM, bid=Decimal("99.99"), bid_size=Decimal("10"),
                       ask=Decimal("100.01"), ask_size=Decimal("10")))  # risk prices a MARKET order at the touch
    intent = OrderIntent(client_order_id=cid("mkt"), symbol=SYM, side="BUY", order_type="MARKET", quantity=Decimal("0.5"))
    report = rt.submit(intent, live()).result(timeout=10)
    assert report.status is OrderStatus.REJECTED
    assert report.error is not None and report.error.code.value == "E_EXEC_BROKER_REJECTED"
    assert "tag 40" in report.error.message and "Value is incorrect" in report.error.message


def test_a_resent_client_order_id_never_reaches_the_executor_twice(peer, fix_runtime, tmp_path) -> None:
    executor = peer("executor")
    rt = fix_runtime(executor, "CLIENT1", "EXECUTOR", durable=True, name="dup")
    intent = limit("BUY", "0.5", "100", tif="GTC")
    first = rt.submit(intent, live()).result(timeout=10)
    again = rt.submit(intent, live()).result(timeout=10)  # the same intent again: an idempotent replay
    assert first.status is again.status is OrderStatus.FILLED
    rt.stop(timeout=5)
    rt2 = fix_runtime(executor, "CLIENT1", "EXECUTOR", durable=True, name="dup")  # same state dir: a restart
    third = rt2.submit(intent, live()).result(timeout=10)
    assert third.status is OrderStatus.FILLED and third.fills == first.fills  # answered from the journal
    assert incoming(executor, "D", intent.client_order_id) == 1


@pytest.mark.skipif(not SPEC.exists(), reason=f"QuickFIX data dictionaries not found at {SPEC}")
@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_with_quickfix_data_dictionary_orders_fill_and_nothing_is_rejected(peer, fix_runtime, begin) -> None:
    """``data_dictionary`` set to QuickFIX's own dictionary of the version: every message
    executor sends passes the checks (no Reject sent), orders fill and are rejected as before."""
    dictionary = SPEC / f"FIX{begin[4]}{begin[6]}.xml"
    rt = fix_runtime(peer("executor"), "CLIENT1", "EXECUTOR", begin, data_dictionary=str(dictionary))
    for side, qty, px in [("BUY", "0.5", "100.25"), ("SELL", "0.125", "102")]:
        report = rt.submit(limit(side, qty, px, tif="GTC"), live()).result(timeout=10)
        assert report.status is OrderStatus.FILLED and report.avg_px == Decimal(px), report
    rt.on_market(Quote(ts="2026-01-05T12:00:00Z", symbol=SYM, bid=Decimal("99.99"), bid_size=Decimal("10"),
                       ask=Decimal("100.01"), ask_size=Decimal("10")))
    intent = OrderIntent(client_order_id=cid("mkt"), symbol=SYM, side="BUY", order_type="MARKET", quantity=Decimal("0.5"))
    assert rt.submit(intent, live()).result(timeout=10).status is OrderStatus.REJECTED
    health = rt.health().venues["fix"]
    assert health["state"] == "ACTIVE" and health["execution_reports"] == 2 and health["session_rejects_sent"] == 0


def test_finished_orders_leave_the_adapters_memory_and_their_fills_stay_in_its_positions(peer, fix_runtime) -> None:
    """``max_finished_orders``: the adapter keeps the latest finished orders only (bounded tables);
    the runtime's books and the adapter's positions still equal every fill."""
    rt = fix_runtime(peer("executor"), "CLIENT1", "EXECUTOR", max_finished_orders=2)
    sent = [limit("BUY", "0.5", "100"), limit("BUY", "0.25", "101"), limit("SELL", "0.125", "102"),
            limit("BUY", "1", "99"), limit("SELL", "0.5", "100")]
    for intent in sent:
        assert rt.submit(intent, live()).result(timeout=10).status is OrderStatus.FILLED
    rt.flush()
    venue = rt.venue("fix")
    health = rt.health().venues["fix"]
    assert health["orders_in_memory"] == 2 and health["orders_retired"] == 3
    net = Decimal("0.5") + Decimal("0.25") - Decimal("0.125") + Decimal("1") - Decimal("0.5")
    assert dict(venue.fetch_positions()) == {SYM: net}
    (position,) = [p for p in rt.positions() if p.symbol == SYM]
    assert position.net_qty == net
    with pytest.raises(VenueRejectedError, match="already sent"):  # a kept finished id is still refused by the adapter
        venue.submit_order(VenueOrder.from_intent(sent[-1], live()))
