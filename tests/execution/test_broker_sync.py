"""``sync_broker_state`` (seed 001: "sync_broker_state", reconciliation hooks) and the automatic
trading state (seed 001: "Broker API down: CB opens; orders blocked; trigger kill-switch if
persistent").

The venue's positions and balances are compared with the ledger's; a difference seen
``sync.confirmations`` times in a row raises ``BrokerStateMismatch``, degrades ``health()`` and,
with ``safety.on_mismatch``, halts or reduces trading. Nothing is ever adjusted. A persistent
adapter outage moves trading to ``safety.on_outage`` after ``safety.outage_after_s`` (fake clock).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, ctx, limit, market, quote, registry_of, settle, wait_until

from actors.runtime.sync import VenueHoldings
from protocols import BrokerStateMatched, BrokerStateMismatch, Fill, OrderStatus, Side, TradingStateChanged

D = Decimal


def fill(qty: str, price: str = "100", fee: str = "0") -> Fill:
    return Fill(trade_id=f"t-{qty}-{price}", qty=D(qty), price=D(price), fee=D(fee), fee_currency="USDT")


# --------------------------------------------------------------------------- VenueHoldings (pure)


def test_venue_books_confirm_a_difference_only_when_it_persists() -> None:
    books = VenueHoldings(confirmations=2)
    books.on_fill("v", "BTC/USDT", Side.BUY, fill("0.5", fee="0.1"))
    expected_balances = {"BTC": D("0.5"), "USDT": D("-50.1")}
    assert books.compare("v", {"BTC/USDT": D("0.5")}, expected_balances).status == "match"
    first = books.compare("v", {"BTC/USDT": D("0.4")}, expected_balances)
    assert first.status == "unconfirmed" and [d.describe() for d in first.differences] == ["position BTC/USDT: venue 0.4, ledger 0.5"]
    assert books.compare("v", {"BTC/USDT": D("0.4")}, expected_balances).status == "mismatch"
    assert books.compare("v", {"BTC/USDT": D("0.5")}, expected_balances).status == "match"  # the streak resets
    assert books.compare("v", {"BTC/USDT": D("0.4")}, None).status == "unconfirmed"


def test_venue_books_tolerance_baseline_and_bad_values() -> None:
    books = VenueHoldings(confirmations=1, tolerance=D("0.001"))
    books.on_fill("v", "BTC/USDT", Side.SELL, fill("1"))
    assert books.compare("v", {"BTC/USDT": D("-1.0005")}, None).status == "match"
    assert books.compare("v", {"BTC/USDT": D("-1.01"), "ETH/USDT": D(0)}, None).status == "mismatch"
    real = VenueHoldings(confirmations=1, baseline="first_sync")
    # an account holding 2 BTC and 1000 USDT before the runtime traded: the first sync is the baseline
    assert real.compare("v", None, {"BTC": D(2), "USDT": D(1000)}).status == "match"
    real.on_fill("v", "BTC/USDT", Side.BUY, fill("1"))
    assert real.compare("v", None, {"BTC": D(3), "USDT": D(900)}).status == "match"
    assert real.compare("v", None, {"BTC": D(3), "USDT": D(800)}).status == "mismatch"
    with pytest.raises(ValueError, match="not a number"):
        books.compare("v", {"BTC/USDT": "lots"}, None)


# --------------------------------------------------------------------------- the runtime call


class BookedVenue(TestAdapter):
    """A scripted venue whose ``fetch_account`` books its fills like the paper venue; ``skew`` adds
    to what ``fetch_positions`` reports (a venue that disagrees with the ledger); ``fetch_error``
    makes both raise."""

    __test__ = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skew: dict[str, Decimal] = {}
        self.fetch_error: Exception | None = None

    def fetch_positions(self):
        if self.fetch_error is not None:
            raise self.fetch_error
        out = super().fetch_positions()
        for symbol, extra in self.skew.items():
            out[symbol] = out.get(symbol, D(0)) + extra
        return out

    def fetch_account(self):
        out: dict[str, Decimal] = {}
        with self._lock:
            for state in self._book.values():
                base, quote_ccy = state.symbol.split("/")
                for f in state.fills:
                    signed = f.qty if state.side is Side.BUY else -f.qty
                    out[base] = out.get(base, D(0)) + signed
                    out[quote_ccy] = out.get(quote_ccy, D(0)) - signed * f.price
                    out[f.fee_currency or quote_ccy] = out.get(f.fee_currency or quote_ccy, D(0)) - f.fee
        return out


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def start(make_runtime, clock, venue, **overrides):
    overrides.setdefault("reconcile", {"interval_s": 5.0})
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": venue.adapter_id}}, **overrides)
    log = EventLog()
    rt.subscribe(log)
    return rt, log


def test_paper_venues_match_the_ledger(make_runtime) -> None:
    rt = make_runtime()  # the embedded paper, shadow and dry_run venues
    rt.on_market(quote())
    for k, side in enumerate(("BUY", "BUY", "SELL")):
        assert rt.submit(market(f"sy-{k}", side=side), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    report = rt.sync_broker_state()
    assert report.ok, report
    assert {a.adapter_id for a in report.adapters} == set(rt.adapter_ids())


def test_a_mismatch_is_raised_once_confirmed_and_nothing_is_adjusted(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, log = start(make_runtime, clock, venue, sync={"confirmations": 2})
    assert rt.submit(limit("sm-1"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    assert rt.sync_broker_state().of("test").status == "match"
    venue.skew["BTC/USDT"] = D("0.5")
    first = rt.sync_broker_state().of("test")
    assert first.status == "unconfirmed" and rt.health().healthy
    second = rt.sync_broker_state().of("test")
    assert second.status == "mismatch"
    assert [d.describe() for d in second.differences] == ["position BTC/USDT: venue 0.501, ledger 0.001"]
    events = log.wait_for(lambda evs: [e for e in evs if isinstance(e, BrokerStateMismatch)], what="the mismatch event")
    assert len(events) == 1 and events[0].adapter_id == "test"
    health = rt.health()
    assert not health.healthy and health.broker_mismatches == ("test",)
    assert health.trading_state == "ACTIVE"  # safety.on_mismatch = none: alert only
    assert next(p for p in rt.positions()).net_qty == D("0.001")  # the ledger was not adjusted
    rt.sync_broker_state()  # the same mismatch again: no second event
    venue.skew.clear()
    assert rt.sync_broker_state().ok
    log.wait_for(lambda evs: any(isinstance(e, BrokerStateMatched) for e in evs), what="the matched event")
    assert len(log.of(BrokerStateMismatch)) == 1 and len(log.of(BrokerStateMatched)) == 1
    assert rt.health().healthy


def test_a_confirmed_mismatch_halts_trading_when_configured(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, log = start(make_runtime, clock, venue, sync={"confirmations": 1}, safety={"on_mismatch": "halted"})
    rt.submit(limit("sh-1"), ctx()).result(timeout=5)
    rt.flush()
    venue.skew["BTC/USDT"] = D("-1")
    assert rt.sync_broker_state().trading_state == "HALTED"
    health = rt.health()
    assert health.trading_state == "HALTED" and "broker state of test differs" in health.trading_reason
    denied = rt.submit(limit("sh-2"), ctx()).result(timeout=5)
    assert denied.status is OrderStatus.DENIED and "trading_halted" in denied.error.message
    venue.skew.clear()
    rt.sync_broker_state()
    assert rt.health().trading_state == "HALTED"  # resuming stays explicit
    changes = log.wait_for(lambda evs: [e for e in evs if isinstance(e, TradingStateChanged)], what="the state change")
    assert [(e.state, e.automatic) for e in changes] == [("HALTED", True)]


def test_auto_resume_after_the_mismatch_clears(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, _log = start(make_runtime, clock, venue, sync={"confirmations": 1},
                    safety={"on_mismatch": "REDUCING", "auto_resume": True})
    venue.skew["BTC/USDT"] = D("1")
    assert rt.sync_broker_state().trading_state == "REDUCING"
    venue.skew.clear()
    assert rt.sync_broker_state().trading_state == "ACTIVE"


def test_an_unanswering_venue_is_unavailable_not_a_mismatch(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, _log = start(make_runtime, clock, venue)
    venue.fetch_error = ConnectionError("venue down")
    result = rt.sync_broker_state().of("test")
    assert result.status == "unavailable" and "venue down" in result.error
    assert rt.health().healthy


def test_the_periodic_sync_runs_on_the_clock(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, log = start(make_runtime, clock, venue, sync={"interval_s": 60, "confirmations": 2})
    venue.skew["BTC/USDT"] = D("1")
    for _ in range(2):
        clock.wait_timer(lambda d: d == 60.0, what="the sync timer")
        clock.advance(60.0)
        settle(rt)
    wait_until(lambda: log.of(BrokerStateMismatch), what="the mismatch event")
    assert rt.health().broker_mismatches == ("test",)


# --------------------------------------------------------------------------- outage → trading state


def trip(rt, venue, n: int = 2) -> None:
    venue.push(*["fatal"] * n)
    for _k in range(n):
        rt.submit(limit(), ctx()).result(timeout=5)
    settle(rt)


def test_a_persistent_outage_halts_trading(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, log = start(make_runtime, clock, venue, breaker={"window_size": 2, "minimum_calls": 2, "open_duration_s": 1000},
                    safety={"on_outage": "HALTED", "outage_after_s": 30})
    trip(rt, venue)
    assert rt.breaker("test").state.value == "OPEN"
    clock.wait_timer(lambda d: d == 30.0, what="the outage timer")
    clock.advance(29.0)
    settle(rt)
    assert rt.health().trading_state == "ACTIVE"
    clock.advance(1.0)
    settle(rt)
    health = rt.health()
    assert health.trading_state == "HALTED"
    assert health.trading_reason == "adapter test unavailable for 30 s (breaker OPEN)"
    changes = log.wait_for(lambda evs: [e for e in evs if isinstance(e, TradingStateChanged)])
    assert changes[0].automatic and changes[0].previous == "ACTIVE"
    rt.reset_breaker("test")  # the venue is back: resuming is still the operator's act
    settle(rt)
    assert rt.health().trading_state == "HALTED"
    rt.resume()
    assert rt.health().trading_state == "ACTIVE" and rt.health().trading_reason == "set by the operator"


def test_a_short_outage_changes_nothing_and_auto_resume_follows_recovery(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, _log = start(make_runtime, clock, venue, breaker={"window_size": 2, "minimum_calls": 2, "open_duration_s": 1000},
                    safety={"on_outage": "REDUCING", "outage_after_s": 30, "auto_resume": True})
    trip(rt, venue)
    clock.wait_timer(lambda d: d == 30.0, what="the outage timer")
    rt.reset_breaker("test")
    settle(rt)
    clock.advance(30.0)
    settle(rt)
    assert rt.health().trading_state == "ACTIVE"  # back within the threshold: not an outage
    trip(rt, venue)
    clock.wait_timer(lambda d: d == 30.0, what="the second outage timer")
    clock.advance(30.0)
    settle(rt)
    assert rt.health().trading_state == "REDUCING"
    rt.reset_breaker("test")
    settle(rt)
    assert rt.health().trading_state == "ACTIVE"  # auto_resume: the only cause is gone


def test_a_safety_rule_never_loosens_the_operators_state(make_runtime, clock) -> None:
    venue = BookedVenue("test")
    rt, _log = start(make_runtime, clock, venue, breaker={"window_size": 2, "minimum_calls": 2, "open_duration_s": 1000},
                    safety={"on_outage": "REDUCING", "outage_after_s": 5, "auto_resume": True})
    trip(rt, venue)
    rt.halt()
    clock.wait_timer(lambda d: d == 5.0, what="the outage timer")
    clock.advance(5.0)
    settle(rt)
    assert rt.health().trading_state == "HALTED"
    rt.reset_breaker("test")
    settle(rt)
    assert rt.health().trading_state == "HALTED"  # auto_resume never undoes the operator's halt


def test_venue_books_follow_a_booking_that_reprices_synthetic_quantity() -> None:
    from actors.orders.books import FillBooking

    books = VenueHoldings(confirmations=1)
    # a cumulative report booked 1 BTC at 100 (synthetic); the real fill says 1 BTC at 101, fee 0.5
    books.on_fill("v", "BTC/USDT", Side.BUY, fill("1", "100"))
    real = fill("1", "101", fee="0.5")
    books.on_booking("v", "BTC/USDT", Side.BUY, FillBooking(real, None, ((D(1), D(100)),), D("0.5")))
    assert books.compare("v", {"BTC/USDT": D(1)}, {"BTC": D(1), "USDT": D("-101.5")}).status == "match"


def test_an_adapter_that_gave_up_is_a_persistent_outage(make_runtime, clock) -> None:
    venue = BookedVenue("test", start_failures=-1)  # every start fails: the supervisor gives up at once
    rt, _log = start(make_runtime, clock, venue, supervisor={"max_restarts": 0},
                    safety={"on_outage": "HALTED", "outage_after_s": 30})
    wait_until(lambda: any(c.state == "failed" for c in rt.health().children), what="the adapter given up")
    clock.wait_timer(lambda d: d == 30.0, what="the outage timer")
    clock.advance(30.0)
    settle(rt)
    health = rt.health()
    assert health.trading_state == "HALTED" and health.trading_reason == "adapter test unavailable for 30 s (adapter gave up)"
