"""``run.py stress`` cancels resting LIMIT orders (its documented mix): a sender's candidate is
its oldest LIMIT whose report says it rests *and* that the venue still holds working; one the
quotes have filled since its report is dropped, not canceled. Asking the venue never goes through
a fault-injecting wrapper (it would draw faults from the plan's stream)."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flowroute import ExecutionContext, ExecutionReport, OrderIntent, Quote
from flowroute.cli.stress import Op, StressConfig, StressSender
from protocols import OrderStatus, VenueOrder
from protocols.venues import FaultInjectingAdapter, FaultPlan, PaperVenue

T0 = datetime(2021, 1, 8, tzinfo=UTC)
CTX = ExecutionContext(mode="paper", account_id="stress")


class _Runtime:
    def __init__(self, venue: Any) -> None:
        self._venue = venue

    def venue(self, adapter_id: str) -> Any:
        assert adapter_id == "paper"
        return self._venue


def _quote(seconds: int, bid: str) -> Quote:
    return Quote(ts=T0 + timedelta(seconds=seconds), symbol="BTC/USDT", bid=Decimal(bid), bid_size=Decimal("1"),
                 ask=Decimal(bid) + Decimal("0.01"), ask_size=Decimal("1"))


def _limit(venue: PaperVenue, coid: str, price: str) -> Op:
    intent = OrderIntent(client_order_id=coid, symbol="BTC/USDT", side="BUY", order_type="LIMIT", quantity=Decimal("0.001"),
                         limit_price=Decimal(price))
    state = venue.submit_order(VenueOrder.from_intent(intent, CTX))
    future: Future = Future()
    future.set_result(ExecutionReport(client_order_id=coid, status=state.status))  # what the submit answered: ACCEPTED
    return Op("new", coid, future, intent)


def _sender(venue: Any) -> StressSender:
    cfg = StressConfig(senders=1, orders=10, faults=None, seed=0, state_dir=None, profile="stress")
    return StressSender(_Runtime(venue), 0, 10, cfg, lambda _f: None)


def test_a_limit_the_quotes_filled_since_its_report_is_dropped_not_canceled() -> None:
    venue = PaperVenue("paper")
    venue.on_market(_quote(0, "39433.00"))
    filled, resting = _limit(venue, "s00-000001", "39432.00"), _limit(venue, "s00-000002", "39420.00")
    assert filled.future.result().status is OrderStatus.ACCEPTED
    venue.on_market(_quote(1, "39431.00"))  # the ask crosses the first order's limit only
    assert venue.fetch_order("s00-000001").status is OrderStatus.FILLED
    sender = _sender(venue)
    sender._limits = [filled, resting]
    assert sender._cancelable() is resting
    assert sender._limits == [resting]


def test_the_venue_is_asked_past_a_fault_injecting_wrapper() -> None:
    venue = PaperVenue("paper")
    venue.on_market(_quote(0, "39433.00"))
    op = _limit(venue, "s00-000001", "39420.00")
    wrapped = FaultInjectingAdapter(venue, FaultPlan.parse("transient=1", seed=0))  # every read through it fails
    sender = _sender(wrapped)
    sender._limits = [op]
    assert sender._cancelable() is op
    assert wrapped.stats().get("transient", 0) == 0
