"""Live order tracking (seed 002: the order tracker polls the broker every 0.5 s; seed 001: "Fill
tracking failure: degrade to polling; emit alert", "poll interval and rate limits").

Working orders (ACCEPTED, PARTIALLY_FILLED) are looked up at their venue every
``tracking.interval_s``; while the venue's event stream is silent, every ``silent_interval_s``
(with an ``OrderTrackingChanged`` alert). Lookups are paged and spend the adapter's throttle
budget (up to ``budget_share``); what they find goes through the one reconciliation path and each
trade id is applied once, whether the lookup or the late event brings it. Fake clock throughout.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, ctx, limit, registry_of, settle, wait_until

from protocols import Fill, Liquidity, OrderReconciled, OrderStatus, OrderTrackingChanged, VenueEvent

D = Decimal


class QuietVenue(TestAdapter):
    """A scripted venue that can fill a resting order without pushing the event (a lost event),
    and push it later."""

    __test__ = False

    def fill_silently(self, client_order_id: str, qty: str) -> Fill:
        with self._lock:
            state = self._book[client_order_id]
            fill = Fill(trade_id=f"q-{client_order_id}-{len(state.fills) + 1}", qty=D(qty), price=self.price,
                        fee=D("0.01"), fee_currency="USDT", liquidity=Liquidity.MAKER, ts=state.ts)
            fills = state.fills + (fill,)
            cum = sum((f.qty for f in fills), D(0))
            status = OrderStatus.FILLED if cum >= state.quantity else OrderStatus.PARTIALLY_FILLED
            self._book[client_order_id] = state.model_copy(update={
                "fills": fills, "cum_qty": cum, "leaves_qty": state.quantity - cum if not status.is_terminal else D(0),
                "status": status, "avg_px": self.price})
            return fill

    def push_event(self, client_order_id: str, fill: Fill) -> None:
        self._sink(VenueEvent(adapter_id=self.adapter_id, kind="fill", state=self.book(client_order_id), fill=fill))

    def tracked(self) -> list[str]:
        with self._lock:
            return list(self.fetch_calls)


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def start(make_runtime, clock, venue, tracking: dict, **overrides):
    overrides.setdefault("reconcile", {"interval_s": 50.0, "quiet_threshold_s": 1000.0})
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": venue.adapter_id}},
                      tracking={"enabled": True, **tracking}, **overrides)
    log = EventLog()
    rt.subscribe(log)
    return rt, log


def accept(rt, cl_id: str, qty: str = "0.002", strategy: str = "") -> None:
    context = ctx().model_copy(update={"strategy_id": strategy}) if strategy else ctx()
    assert rt.submit(limit(cl_id, qty=qty), context).result(timeout=5).status is OrderStatus.ACCEPTED


def test_a_fill_no_event_reported_is_found_by_tracking_and_applied_once(make_runtime, clock) -> None:
    venue = QuietVenue("test", default="accept")
    rt, log = start(make_runtime, clock, venue, {"interval_s": 10, "silence_s": 1000})
    accept(rt, "tr-1", strategy="ma-cross")
    settle(rt)
    fill = venue.fill_silently("tr-1", "0.0005")
    clock.wait_timer(lambda d: d == 10.0, what="the tracking timer")
    clock.advance(10.0)
    wait_until(lambda: rt.order("tr-1").status is OrderStatus.PARTIALLY_FILLED, what="the fill found by a lookup")
    # announced like every reconciliation, attributed to its strategy (it went through the one path)
    found = log.wait_for(lambda evs: [e for e in evs if isinstance(e, OrderReconciled) and e.client_order_id == "tr-1"],
                         what="OrderReconciled of tr-1")[0]
    assert found.strategy_id == "ma-cross" and found.reason.startswith("live tracking")
    assert venue.tracked() == ["tr-1"] and rt.order("tr-1").cum_qty == D("0.0005")
    venue.push_event("tr-1", fill)  # the lost event turns up after all: the same trade id, not booked again
    settle(rt)
    assert rt.order("tr-1").cum_qty == D("0.0005") and len(rt.order("tr-1").fills) == 1
    assert next(p for p in rt.positions()).net_qty == D("0.0005")
    # the order is still working: looked up again one interval later; a filled order is not
    clock.advance(10.0)
    wait_until(lambda: venue.tracked() == ["tr-1", "tr-1"], what="the second lookup")
    venue.fill_silently("tr-1", "0.0015")
    clock.advance(10.0)
    wait_until(lambda: rt.order("tr-1").status is OrderStatus.FILLED, what="the rest found")
    settle(rt)
    clock.advance(30.0)
    settle(rt)
    assert venue.tracked() == ["tr-1"] * 3


def test_a_silent_stream_tightens_the_schedule_and_raises_an_alert(make_runtime, clock) -> None:
    venue = QuietVenue("test", default="accept")
    rt, log = start(make_runtime, clock, venue, {"interval_s": 10, "silent_interval_s": 0.5, "silence_s": 30})
    accept(rt, "ts-1")
    settle(rt)
    for _ in range(3):
        clock.wait_timer(lambda d: d == 10.0, what="a normal tracking round")
        clock.advance(10.0)
        settle(rt)
    # 30 s without an event while an order works: polling every 0.5 s, with an alert
    alert = log.wait_for(lambda evs: [e for e in evs if isinstance(e, OrderTrackingChanged)], what="the alert")[0]
    assert alert.adapter_id == "test" and alert.polling and "polling every 0.5 s" in alert.reason
    clock.wait_timer(lambda d: d == 0.5, what="the tight schedule")
    calls = len(venue.tracked())
    clock.advance(0.5)
    wait_until(lambda: len(venue.tracked()) == calls + 1, what="a lookup 0.5 s later")
    # an event arrives: the stream is alive again, back to the normal schedule
    venue.push_event("ts-1", venue.fill_silently("ts-1", "0.0005"))
    settle(rt)
    clock.advance(0.5)
    restored = log.wait_for(lambda evs: [e for e in evs if isinstance(e, OrderTrackingChanged) and not e.polling],
                            what="the all-clear")
    assert restored[0].adapter_id == "test"
    clock.wait_timer(lambda d: d == 10.0, what="the normal schedule again")


def test_many_working_orders_are_paged(make_runtime, clock) -> None:
    venue = QuietVenue("test", default="accept")
    rt, _log = start(make_runtime, clock, venue, {"interval_s": 9, "page_size": 2, "silence_s": 1000})
    for k in range(5):
        accept(rt, f"tp-{k}")
    settle(rt)
    # 5 orders, 2 per round: once the first round saw them, three rounds per interval (3 s), so
    # every order is looked up once per 9 s, least recently looked up first
    clock.wait_timer(lambda d: d == 9.0, what="the first round")
    clock.advance(9.0)
    wait_until(lambda: len(venue.tracked()) == 2, what="the first page")
    clock.wait_timer(lambda d: d == pytest.approx(3.0), what="a round of a third of the interval")
    clock.advance(3.0)
    wait_until(lambda: len(venue.tracked()) == 4, what="the second page")
    clock.wait_timer(lambda d: d == pytest.approx(3.0), what="the next round")
    clock.advance(3.0)
    wait_until(lambda: len(venue.tracked()) == 5, what="the last page")
    assert sorted(venue.tracked()) == [f"tp-{k}" for k in range(5)]
    settle(rt)
    assert len(venue.tracked()) == 5  # the first two are not due again before 18 s


def test_lookups_stay_within_their_share_of_the_throttle(make_runtime, clock) -> None:
    venue = QuietVenue("test", default="accept")
    rt, _log = start(make_runtime, clock, venue, {"interval_s": 10, "page_size": 50, "silence_s": 1000, "budget_share": 0.5},
                    throttle={"max_calls": 8, "window_s": 600.0})
    for k in range(3):
        accept(rt, f"tb-{k}")  # 3 of the 8 calls per window
    settle(rt)
    clock.wait_timer(lambda d: d == 10.0, what="the tracking timer")
    clock.advance(10.0)
    settle(rt)
    wait_until(lambda: len(venue.tracked()) == 1, what="one lookup")
    settle(rt)
    assert len(venue.tracked()) == 1  # 3 + 1 = half of 8: the rest of the budget is left to orders
    assert rt.submit(limit("tb-new"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED


def test_tracking_is_a_per_adapter_setting() -> None:
    from config import load_settings

    s = load_settings(adapters={"paper": {"tracking": {"interval_s": 1}}})
    assert s.for_adapter("paper").tracking.interval_s == 1.0 and s.for_adapter("shadow").tracking.interval_s == 10.0
    assert load_settings("test").tracking.enabled is False and load_settings().tracking.silent_interval_s == 0.5
