"""Tests for actors.orders.books: OrderRecord (lifecycle, fills once, cumulative, venue state) and Positions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from actors.orders.books import (
    FillOutcome,
    OrderRecord,
    Position,
    Positions,
    Transition,
    arrival_price,
    fill_cash_flows,
)
from protocols import (
    ErrorCode,
    Fill,
    IllegalTransition,
    OrderIntent,
    Quote,
    Side,
    VenueOrderState,
)
from protocols import (
    OrderEventType as E,
)
from protocols import (
    OrderStatus as S,
)

T0 = datetime(2021, 1, 8, tzinfo=UTC)
#: property tests: no example database (the search itself is the profile's: tests/conftest.py)
PROPS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def ts(i: int = 0) -> datetime:
    return T0 + timedelta(seconds=i)


def fill(tid: str, qty: str, price: str, fee: str = "0", ccy: str = "USDT", i: int = 0) -> Fill:
    return Fill(trade_id=tid, qty=D(qty), price=D(price), fee=D(fee), fee_currency=ccy, ts=ts(i))


def record(qty: str = "2", side: str = "BUY", arrival: str | None = "100", upto: tuple = (E.RESERVED, E.SUBMITTED, E.ACCEPTED)) -> OrderRecord:
    rec = OrderRecord(
        client_order_id="c1",
        account_id="a1",
        symbol="BTC/USDT",
        side=side,
        order_type="LIMIT",
        quantity=D(qty),
        limit_price=D("200"),
        arrival_px=D(arrival) if arrival else None,
        created_ts=ts(),
    )
    for i, ev in enumerate(upto):
        rec.apply_event(ev, cause=f"step {i}", ts=ts(i))
    return rec


def venue_state(rec: OrderRecord, status: S, fills=(), **kw) -> VenueOrderState:
    cum = sum((f.qty for f in fills), D(0))
    avg = (sum((f.qty * f.price for f in fills), D(0)) / cum) if cum else None
    args = dict(
        client_order_id=rec.client_order_id,
        venue_order_id="v-1",
        symbol=rec.symbol,
        side=rec.side,
        status=status,
        quantity=rec.quantity,
        cum_qty=cum,
        avg_px=avg,
        fills=tuple(fills),
        ts=ts(9),
    )
    args.update(kw)
    return VenueOrderState(**args)


# ---------------------------------------------------------------------------
# lifecycle
# ---------------------------------------------------------------------------


def test_transitions_are_recorded_with_seq_cause_and_ts():
    rec = record()
    assert rec.status is S.ACCEPTED
    assert rec.transitions == [
        Transition(1, ts(0), S.INITIALIZED, S.RESERVED, "step 0"),
        Transition(2, ts(1), S.RESERVED, S.SUBMITTING, "step 1"),
        Transition(3, ts(2), S.SUBMITTING, S.ACCEPTED, "step 2"),
    ]


def test_repeated_event_is_idempotent_and_returns_false():
    rec = record()
    assert rec.apply_event(E.ACCEPTED, cause="dup", ts=ts(5)) is False
    assert len(rec.transitions) == 3


def test_explicit_seq_is_used():
    rec = record(upto=())
    assert rec.apply_event("RESERVED", cause="intake", ts=ts(), seq=42)
    assert rec.transitions[-1].seq == 42


def test_illegal_transition_raises_names_order_and_changes_nothing():
    rec = record()
    before = (rec.lifecycle, list(rec.transitions))
    with pytest.raises(IllegalTransition, match="order c1: RESERVED is not allowed in state ACCEPTED"):
        rec.apply_event(E.RESERVED, cause="bad")
    assert (rec.lifecycle, rec.transitions) == before


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="quantity"):
        OrderRecord(client_order_id="c", account_id="a", symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=D(0))
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        OrderRecord(client_order_id="c", account_id="a", symbol="BTCUSDT", side="BUY", order_type="MARKET", quantity=D(1))
    with pytest.raises(ValueError):
        OrderRecord(client_order_id="c", account_id="a", symbol="BTC/USDT", side="HOLD", order_type="MARKET", quantity=D(1))


def test_from_intent_and_arrival_price():
    intent = OrderIntent(client_order_id="x-1", symbol="BTC/USDT", side="SELL", order_type="LIMIT",
                         quantity=D("0.5"), limit_price=D("100"), time_in_force="IOC")
    q = Quote(ts=ts(), symbol="BTC/USDT", bid=D("99"), bid_size=D(1), ask=D("101"), ask_size=D(1))
    rec = OrderRecord.from_intent(intent, "acc", adapter_id="paper", arrival_px=arrival_price(intent.side, q), ts=ts())
    assert (rec.client_order_id, rec.account_id, rec.side, rec.quantity, rec.limit_price, rec.time_in_force) == (
        "x-1", "acc", Side.SELL, D("0.5"), D("100"), "IOC")
    assert rec.arrival_px == D("99") and rec.status is S.INITIALIZED and rec.adapter_id == "paper"
    assert arrival_price("BUY", q) == D("101") and arrival_price(Side.BUY, None) is None


# ---------------------------------------------------------------------------
# fills
# ---------------------------------------------------------------------------


def test_fill_once_per_trade_id_and_lifecycle():
    rec = record()
    assert rec.apply_fill(fill("t1", "0.5", "100", fee="0.05")) is FillOutcome.APPLIED
    assert rec.status is S.PARTIALLY_FILLED
    assert rec.apply_fill(fill("t1", "0.5", "100", fee="0.05")) is FillOutcome.DUPLICATE
    assert rec.apply_fill(fill("t2", "1.5", "104", fee="0.1")) is FillOutcome.APPLIED
    assert rec.status is S.FILLED
    assert rec.cum_qty == D("2") and rec.avg_px == D("103") and rec.fees == D("0.15")
    assert rec.leaves_qty == 0
    assert [t.to_status for t in rec.transitions][-2:] == [S.PARTIALLY_FILLED, S.FILLED]
    assert rec.transitions[-1].cause == "fill t2"


def test_overfill_is_recorded_not_applied():
    rec = record(qty="1")
    assert rec.apply_fill(fill("t1", "0.6", "100")) is FillOutcome.APPLIED
    snap = (rec.cum_qty, rec.avg_px, rec.status, len(rec.fills))
    assert rec.apply_fill(fill("t2", "0.6", "100")) is FillOutcome.OVERFILL
    assert (rec.cum_qty, rec.avg_px, rec.status, len(rec.fills)) == snap
    assert [f.trade_id for f in rec.overfills] == ["t2"]
    # the same overfill reported again is a duplicate, not a second alert
    assert rec.apply_fill(fill("t2", "0.6", "100")) is FillOutcome.DUPLICATE
    assert len(rec.overfills) == 1
    assert rec.cum_qty <= rec.quantity


def test_fill_during_pending_cancel_then_cancel_reject_restores_partially_filled():
    rec = record()
    rec.apply_event(E.CANCEL_REQUESTED, cause="user cancel", ts=ts(3))
    assert rec.apply_fill(fill("t1", "1", "100")) is FillOutcome.APPLIED
    assert rec.status is S.PENDING_CANCEL and rec.cum_qty == 1
    rec.apply_event(E.CANCEL_REJECTED, cause="venue refused cancel", ts=ts(4))
    assert rec.status is S.PARTIALLY_FILLED


def test_fill_completing_during_pending_cancel_is_filled():
    rec = record()
    rec.apply_event(E.CANCEL_REQUESTED, cause="user cancel", ts=ts(3))
    assert rec.apply_fill(fill("t1", "2", "100")) is FillOutcome.APPLIED
    assert rec.status is S.FILLED


def test_fill_after_canceled_is_booked_status_stays():
    rec = record()
    rec.apply_event(E.CANCELED, cause="venue", ts=ts(3))
    assert rec.leaves_qty == 0
    assert rec.apply_fill(fill("t1", "1", "100")) is FillOutcome.APPLIED
    assert rec.status is S.CANCELED and rec.cum_qty == 1 and rec.leaves_qty == 0
    assert rec.apply_fill(fill("t2", "1", "100")) is FillOutcome.APPLIED
    assert rec.status is S.CANCELED and rec.cum_qty == 2


def test_late_fill_after_expired_even_completing_keeps_expired():
    rec = record()
    rec.apply_event(E.EXPIRED, cause="IOC remainder", ts=ts(3))
    assert rec.apply_fill(fill("t1", "2", "100")) is FillOutcome.APPLIED
    assert rec.status is S.EXPIRED and rec.cum_qty == 2


@pytest.mark.parametrize("upto", [(E.RESERVED,), (E.RESERVED, E.SUBMITTED, E.REJECTED), (E.RESERVED, E.FAILED), (E.DENIED,)])
def test_fill_in_a_status_that_allows_none_is_refused(upto):
    rec = record(upto=upto)
    status = rec.status
    assert rec.apply_fill(fill("t1", "1", "100")) is FillOutcome.REFUSED
    assert rec.cum_qty == 0 and rec.status is status and not rec.fills
    assert "no fill is allowed" in rec.anomalies[-1]


def test_fill_from_submitting_and_unknown():
    rec = record(upto=(E.RESERVED, E.SUBMITTED))
    assert rec.apply_fill(fill("t1", "2", "100")) is FillOutcome.APPLIED
    assert rec.status is S.FILLED
    rec = record(upto=(E.RESERVED, E.SUBMITTED, E.UNKNOWN))
    assert rec.apply_fill(fill("t1", "1", "100")) is FillOutcome.APPLIED
    assert rec.status is S.PARTIALLY_FILLED


def test_slippage_and_leaves():
    buy = record(side="BUY", arrival="100")
    assert buy.slippage_bps is None and buy.leaves_qty == 2
    buy.apply_fill(fill("t1", "1", "100.5"))
    assert buy.slippage_bps == D("50") and buy.leaves_qty == 1
    sell = record(side="SELL", arrival="100")
    sell.apply_fill(fill("t1", "1", "100.5"))
    assert sell.slippage_bps == D("-50")  # sold above arrival: better for us
    sell.apply_fill(fill("t2", "1", "99.5"))
    assert sell.avg_px == D("100") and sell.slippage_bps == 0
    assert record(arrival=None).slippage_bps is None


def test_snapshot_is_a_frozen_report():
    rec = record()
    rec.apply_fill(fill("t1", "0.5", "101", fee="0.01"))
    rec.attempts = 1
    rep = rec.snapshot(latency_us=123)
    assert rep.client_order_id == "c1" and rep.status is S.PARTIALLY_FILLED
    assert rep.cum_qty == D("0.5") and rep.leaves_qty == D("1.5") and rep.avg_px == D("101")
    assert rep.fees == D("0.01") and rep.slippage_bps == D("100") and rep.attempts == 1 and rep.latency_us == 123
    assert rep.fills == tuple(rec.fills) and rep.account_id == "a1" and rep.side is Side.BUY
    assert rep.replay is False and rec.snapshot(replay=True).replay is True
    rec.apply_fill(fill("t2", "0.5", "101"))
    assert rep.cum_qty == D("0.5")  # the report does not follow the record
    with pytest.raises(ValidationError):
        rep.cum_qty = D(9)  # type: ignore[misc]


# ---------------------------------------------------------------------------
# cumulative reports
# ---------------------------------------------------------------------------


def test_cumulative_is_converted_to_per_fill_amounts():
    rec = record(qty="3")
    out, f1 = rec.apply_cumulative(D("1"), D("100"), trade_id_prefix="v-1", ts=ts(1), cum_fees=D("0.1"), fee_currency="USDT")
    assert out is FillOutcome.APPLIED and (f1.qty, f1.price, f1.fee, f1.trade_id) == (D(1), D(100), D("0.1"), "cum:v-1:1")
    out, f2 = rec.apply_cumulative(D("3"), D("102"), trade_id_prefix="v-1", ts=ts(2), cum_fees=D("0.3"))
    assert out is FillOutcome.APPLIED and (f2.qty, f2.price, f2.fee) == (D(2), D(103), D("0.2"))
    assert rec.cum_qty == 3 and rec.avg_px == D(102) and rec.fees == D("0.3") and rec.status is S.FILLED
    # old and repeated reports are stale
    assert rec.apply_cumulative(D("1"), D("100"), trade_id_prefix="v-1") == (FillOutcome.STALE, None)
    assert rec.apply_cumulative(D("3"), D("102"), trade_id_prefix="v-1") == (FillOutcome.STALE, None)
    assert len(rec.fills) == 2


def test_cumulative_overfill_and_bad_reports():
    rec = record(qty="1")
    out, f = rec.apply_cumulative(D("1.5"), D("100"), trade_id_prefix="v")
    assert out is FillOutcome.OVERFILL and f is not None and rec.overfills == [f] and rec.cum_qty == 0
    with pytest.raises(ValueError, match="avg_px"):
        rec.apply_cumulative(D("0.5"), D("0"), trade_id_prefix="v")
    with pytest.raises(ValueError, match="cum_qty"):
        rec.apply_cumulative(D("NaN"), D("1"), trade_id_prefix="v")
    rec.apply_cumulative(D("0.5"), D("100"), trade_id_prefix="v")
    # a report that disagrees with what is booked (implies a negative last price): the quantity is
    # still booked, at the venue's avg_px, and the disagreement noted
    out, f = rec.apply_cumulative(D("0.6"), D("10"), trade_id_prefix="v")
    assert out is FillOutcome.APPLIED and f.price == D(10) and rec.cum_qty == D("0.6")
    assert "implies last_px" in rec.anomalies[-1]


# ---------------------------------------------------------------------------
# venue states
# ---------------------------------------------------------------------------


def test_venue_state_adopts_new_fills_then_status():
    rec = record(upto=(E.RESERVED, E.SUBMITTED))
    f1, f2 = fill("t1", "0.5", "100"), fill("t2", "0.5", "101")
    assert rec.apply_venue_state(venue_state(rec, S.ACCEPTED, [f1])) == [f1]
    assert rec.venue_order_id == "v-1" and rec.status is S.PARTIALLY_FILLED
    # the venue's fills are cumulative: f1 again is not re-applied
    assert rec.apply_venue_state(venue_state(rec, S.CANCELED, [f1, f2])) == [f2]
    assert rec.status is S.CANCELED and rec.cum_qty == 1 and rec.avg_px == D("100.5")
    assert rec.apply_venue_state(venue_state(rec, S.CANCELED, [f1, f2])) == []
    assert not rec.anomalies


def test_venue_state_stale_accepted_is_ignored_contradiction_is_noted():
    rec = record()
    rec.apply_fill(fill("t1", "2", "100"))
    assert rec.apply_venue_state(venue_state(rec, S.ACCEPTED)) == []
    assert rec.status is S.FILLED and not rec.anomalies
    rec.apply_venue_state(venue_state(rec, S.REJECTED))
    assert rec.status is S.FILLED and "REJECTED not applied" in rec.anomalies[-1]


def test_venue_state_rejected_sets_error_and_unknown_is_reconciled():
    rec = record(upto=(E.RESERVED, E.SUBMITTED, E.UNKNOWN))
    rec.apply_venue_state(venue_state(rec, S.REJECTED, reject_reason="insufficient balance"))
    assert rec.status is S.REJECTED and rec.error.code is ErrorCode.E_EXEC_BROKER_REJECTED
    assert "insufficient balance" in rec.error.message
    rec = record(upto=(E.RESERVED, E.SUBMITTED, E.UNKNOWN))
    f1, f2 = fill("t1", "1", "100"), fill("t2", "1", "100")
    assert rec.apply_venue_state(venue_state(rec, S.FILLED, [f1, f2])) == [f1, f2]
    assert rec.status is S.FILLED


def test_venue_state_without_fills_uses_cumulative_and_wrong_order_is_refused():
    rec = record(upto=(E.RESERVED, E.SUBMITTED))
    st1 = venue_state(rec, S.PARTIALLY_FILLED, cum_qty=D("1"), avg_px=D("100"))
    new = rec.apply_venue_state(st1)
    assert len(new) == 1 and new[0].qty == 1 and new[0].trade_id == "cum:v-1:1" and rec.status is S.PARTIALLY_FILLED
    assert rec.apply_venue_state(st1) == []
    other = venue_state(rec, S.ACCEPTED, client_order_id="zzz")
    with pytest.raises(ValueError, match="zzz"):
        rec.apply_venue_state(other)
    assert rec.cum_qty == 1


def test_venue_state_reporting_more_than_booked_is_noted():
    rec = record(qty="1")
    rec.apply_venue_state(venue_state(rec, S.FILLED, [fill("t1", "0.6", "100"), fill("t2", "0.6", "100")], quantity=D("1.2")))
    assert rec.cum_qty == D("0.6") and [f.trade_id for f in rec.overfills] == ["t2"]
    assert any("exceeds booked" in a for a in rec.anomalies)


# ---------------------------------------------------------------------------
# property: any order and duplication of fill reports gives the same books
# ---------------------------------------------------------------------------

_qty = st.integers(min_value=1, max_value=5000).map(lambda n: D(n) / 1000)
_px = st.integers(min_value=9000, max_value=11000).map(lambda n: D(n) / 100)
_fee = st.integers(min_value=0, max_value=100).map(lambda n: D(n) / 10000)


@st.composite
def fill_sets(draw):
    n = draw(st.integers(min_value=1, max_value=8))
    fills = [
        Fill(trade_id=f"t{i}", qty=draw(_qty), price=draw(_px), fee=draw(_fee), fee_currency="USDT", ts=ts(i))
        for i in range(n)
    ]
    total = sum((f.qty for f in fills), D(0))
    extra = draw(st.integers(min_value=0, max_value=3)) * D("0.001")
    return fills, total + extra


def _deliveries(fills, seed: int):
    """A shuffled, duplicated stream of per-fill reports and venue snapshots (cumulative fill lists)."""
    rnd = random.Random(seed)
    reports: list = []
    for f in fills:
        reports.extend([("fill", f)] * rnd.randint(1, 3))
    for _k in range(rnd.randint(0, 3)):
        cut = rnd.randint(0, len(fills))
        reports.append(("state", tuple(fills[:cut])))
    rnd.shuffle(reports)
    return reports


def _run(fills, quantity, seed, side="BUY"):
    rec = record(qty=str(quantity), side=side)
    book = Positions()
    applied = []
    for kind, payload in _deliveries(fills, seed):
        if kind == "fill":
            new = [payload] if rec.apply_fill(payload) is FillOutcome.APPLIED else []
        else:
            new = rec.apply_venue_state(venue_state(rec, S.ACCEPTED, payload))
        for f in new:
            book.apply_fill(rec.account_id, rec.symbol, rec.side, f)
            applied.append(f)
    return rec, book, applied


@settings(max_examples=150, **PROPS)
@given(fill_sets(), st.integers(0, 2**32), st.integers(0, 2**32), st.sampled_from(["BUY", "SELL"]))
def test_any_order_and_duplication_of_fills_gives_the_same_books(fs, seed1, seed2, side):
    fills, quantity = fs
    rec1, book1, applied1 = _run(fills, quantity, seed1, side)
    rec2, book2, applied2 = _run(fills, quantity, seed2, side)
    exp_cum = sum((f.qty for f in fills), D(0))
    exp_notional = sum((f.qty * f.price for f in fills), D(0))
    for rec, book, applied in ((rec1, book1, applied1), (rec2, book2, applied2)):
        assert rec.cum_qty == exp_cum  # no double count, nothing lost
        assert rec.avg_px == exp_notional / exp_cum
        assert rec.fees == sum((f.fee for f in fills), D(0))
        assert sorted(f.trade_id for f in applied) == sorted(f.trade_id for f in fills)
        assert rec.status is (S.FILLED if exp_cum == quantity else S.PARTIALLY_FILLED)
        assert not rec.overfills and not rec.anomalies
        assert book.check_invariants({(rec.account_id, rec.symbol): [(rec.side, f) for f in rec.fills]}) == []
    assert rec1.avg_px == rec2.avg_px and rec1.leaves_qty == rec2.leaves_qty
    assert book1.positions() == book2.positions()
    assert book1.cash("a1") == book2.cash("a1")


@settings(max_examples=150, **PROPS)
@given(fill_sets(), st.integers(0, 2**32))
def test_overfill_is_never_applied(fs, seed):
    fills, _ = fs
    quantity = sum((f.qty for f in fills), D(0)) - D("0.0005")  # strictly less than the fills
    rec, book, applied = _run(fills, quantity, seed)
    assert rec.cum_qty <= quantity
    assert rec.overfills  # at least one fill could not fit
    assert book.net_qty("a1", "BTC/USDT") == rec.cum_qty == sum((f.qty for f in applied), D(0))


@st.composite
def cumulative_reports(draw):
    fills, quantity = draw(fill_sets())
    reports = []
    cum = notional = D(0)
    for f in fills:
        cum += f.qty
        notional += f.qty * f.price
        reports.append((cum, notional / cum))
    return reports, quantity


@settings(max_examples=150, **PROPS)
@given(cumulative_reports(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_any_order_and_duplication_of_cumulative_reports_converges(rs, seed1, seed2):
    reports, quantity = rs
    final_cum, final_avg = reports[-1]
    results = []
    for seed in (seed1, seed2):
        rnd = random.Random(seed)
        stream = [r for r in reports for _ in range(rnd.randint(1, 3))]
        rnd.shuffle(stream)
        rec = record(qty=str(quantity))
        book = Positions()
        for cum, avg in stream:
            out, f = rec.apply_cumulative(cum, avg, trade_id_prefix="v-1", ts=ts(1))
            if out is FillOutcome.APPLIED:
                book.apply_fill("a1", "BTC/USDT", "BUY", f)
        assert rec.cum_qty == final_cum  # exact: no double count
        assert abs(rec.avg_px - final_avg) <= D("1e-12")  # synthetic prices are rounded to 1e-12
        assert sum((f.qty for f in rec.fills), D(0)) == final_cum
        assert book.check_invariants({("a1", "BTC/USDT"): [("BUY", f) for f in rec.fills]}) == []
        results.append((rec, book))
    (_r1, b1), (_r2, b2) = results
    assert b1.net_qty("a1", "BTC/USDT") == b2.net_qty("a1", "BTC/USDT") == final_cum
    c1, c2 = b1.cash("a1"), b2.cash("a1")
    assert c1["BTC"] == c2["BTC"] == final_cum
    assert abs(c1["USDT"] - c2["USDT"]) <= final_cum * D("1e-12")


# ---------------------------------------------------------------------------
# Positions: hand-computed examples
# ---------------------------------------------------------------------------


def B(book: Positions, side: str, qty: str, price: str, fee: str = "0", ccy: str = "USDT", account="a1", symbol="BTC/USDT"):
    book.apply_fill(account, symbol, side, Fill(trade_id="x", qty=D(qty), price=D(price), fee=D(fee), fee_currency=ccy, ts=T0))
    return book.position(account, symbol)


def test_vwap_entry_reduce_and_flips_by_hand():
    book = Positions()
    p = B(book, "BUY", "1", "100")
    p = B(book, "BUY", "3", "104")
    assert (p.net_qty, p.avg_entry_px, p.realized_pnl) == (D(4), D(103), D(0))
    p = B(book, "SELL", "2", "110")  # realize (110-103)*2 = 14
    assert (p.net_qty, p.avg_entry_px, p.realized_pnl) == (D(2), D(103), D(14))
    p = B(book, "SELL", "5", "100")  # close 2 at 100: (100-103)*2 = -6; open short 3 at 100
    assert (p.net_qty, p.avg_entry_px, p.realized_pnl) == (D(-3), D(100), D(8))
    p = B(book, "BUY", "1", "90")  # cover 1 short: (100-90)*1 = 10
    assert (p.net_qty, p.avg_entry_px, p.realized_pnl) == (D(-2), D(100), D(18))
    p = B(book, "SELL", "2", "94")  # add to short: VWAP (2*100 + 2*94)/4 = 97
    assert (p.net_qty, p.avg_entry_px) == (D(-4), D(97))
    p = B(book, "BUY", "6", "95")  # cover 4: (97-95)*4 = 8; open long 2 at 95
    assert (p.net_qty, p.avg_entry_px, p.realized_pnl) == (D(2), D(95), D(26))
    p = B(book, "SELL", "2", "96")  # flat: +2
    assert (p.net_qty, p.avg_entry_px, p.realized_pnl, p.is_flat) == (D(0), None, D(28), True)
    assert (p.buy_qty, p.sell_qty) == (D(11), D(11))


def test_unrealized_from_mark_long_and_short():
    book = Positions()
    B(book, "BUY", "2", "100")
    assert book.position("a1", "BTC/USDT").unrealized_pnl == 0 and book.position("a1", "BTC/USDT").last_px is None
    book.mark("BTC/USDT", D("103"))
    p = book.position("a1", "BTC/USDT")
    assert (p.last_px, p.unrealized_pnl) == (D(103), D(6))
    B(book, "SELL", "5", "101")  # realize 2, short 3 at 101
    p = book.position("a1", "BTC/USDT")
    assert (p.realized_pnl, p.unrealized_pnl) == (D(2), D(-6))  # (103-101) * -3
    with pytest.raises(ValueError, match="mark price"):
        book.mark("BTC/USDT", D("-1"))


def test_fees_cash_and_net_pnl():
    book = Positions()
    B(book, "BUY", "2", "100", fee="0.2", ccy="USDT")
    B(book, "BUY", "1", "100", fee="0.001", ccy="BTC")  # base-currency fee: 0.1 USDT at the fill price
    B(book, "SELL", "1", "110", fee="0.05", ccy="BNB")  # third currency: cash only
    p = book.position("a1", "BTC/USDT")
    assert p.fees == D("0.3") and p.realized_pnl == D(10)
    book.mark("BTC/USDT", D("105"))
    p = book.position("a1", "BTC/USDT")
    assert p.unrealized_pnl == D(10) and p.net_pnl == D("19.7")
    assert book.cash("a1") == {"BTC": D("1.999"), "USDT": D("-190.2"), "BNB": D("-0.05")}
    assert fill_cash_flows("BTC/USDT", "SELL", Fill(trade_id="q", qty=D(1), price=D(10), fee=D("0.1"))) == {
        "BTC": D(-1), "USDT": D("9.9")}


def test_partial_close_with_repeating_vwap():
    book = Positions()
    B(book, "BUY", "1", "100")
    B(book, "BUY", "2", "101")
    p = B(book, "SELL", "1", "102")
    # entry 302/3; realized = 102 - 302/3 = 4/3
    assert abs(p.realized_pnl - D(4) / 3) < D("1e-25")
    p = B(book, "SELL", "2", "102")
    assert p.net_qty == 0 and abs(p.realized_pnl - D(4)) < D("1e-25")


def test_bad_symbol_is_refused_and_book_unchanged():
    book = Positions()
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        book.apply_fill("a1", "BTCUSDT", "BUY", fill("t", "1", "1"))
    with pytest.raises(ValueError):
        book.apply_fill("a1", "BTC/USDT", "HOLD", fill("t", "1", "1"))
    assert book.positions() == () and book.cash("a1") == {} and book.accounts() == ()


def test_positions_sorted_and_unknown_position_is_flat():
    book = Positions()
    B(book, "BUY", "1", "1", account="b", symbol="XRP/ETH")
    B(book, "BUY", "1", "1", account="a", symbol="XRP/ETH")
    B(book, "BUY", "1", "1", account="a", symbol="BTC/USDT")
    assert [(p.account_id, p.symbol) for p in book.positions()] == [("a", "BTC/USDT"), ("a", "XRP/ETH"), ("b", "XRP/ETH")]
    assert [p.symbol for p in book.positions("b")] == ["XRP/ETH"]
    assert book.position("zz", "SPY/USD") == Position(account_id="zz", symbol="SPY/USD")
    assert book.accounts() == ("a", "b")


def test_check_invariants_detects_a_missing_or_extra_fill():
    book = Positions()
    f1, f2 = fill("t1", "1", "100"), fill("t2", "2", "101")
    book.apply_fill("a1", "BTC/USDT", "BUY", f1)
    book.apply_fill("a1", "BTC/USDT", "SELL", f2)
    assert book.check_invariants({("a1", "BTC/USDT"): [("BUY", f1), ("SELL", f2)]}) == []
    problems = book.check_invariants({("a1", "BTC/USDT"): [("BUY", f1)]})
    assert any("net_qty" in p for p in problems) and any("cash" in p for p in problems)
    assert book.check_invariants({}) != []


_side = st.sampled_from(["BUY", "SELL"])
_acct = st.sampled_from(["a1", "a2"])
_sym = st.sampled_from(["BTC/USDT", "XRP/ETH"])


@settings(max_examples=200, **PROPS)
@given(st.lists(st.tuples(_acct, _sym, _side, _qty, _px, _fee), min_size=1, max_size=30), _px)
def test_books_equal_fills_and_pnl_equals_cash(trades, mark):
    book = Positions()
    by_key: dict = {}
    for i, (acc, sym, side, qty, px, fee) in enumerate(trades):
        f = Fill(trade_id=f"t{i}", qty=qty, price=px, fee=fee, fee_currency=sym.split("/")[1], ts=T0)
        book.apply_fill(acc, sym, side, f)
        by_key.setdefault((acc, sym), []).append((side, f))
    assert book.check_invariants(by_key) == []
    for sym in ("BTC/USDT", "XRP/ETH"):
        book.mark(sym, mark)
    for (acc, sym), items in by_key.items():
        p = book.position(acc, sym)
        # average-cost PnL must equal the mark-to-market of the trades' cash flows (before fees)
        trade_cash = sum((-Side(s).sign * f.qty * f.price for s, f in items), D(0))
        assert abs(p.realized_pnl + p.unrealized_pnl - (trade_cash + p.net_qty * mark)) < D("1e-18")
        assert p.fees == sum((f.fee for _, f in items), D(0))
        assert (p.avg_entry_px is None) == (p.net_qty == 0)
        if p.avg_entry_px is not None:
            assert p.avg_entry_px > 0


# ---------------------------------------------------------------------------
# the hot-path forms are the plain ones: construction, position and cash arithmetic
# ---------------------------------------------------------------------------


def test_from_intent_is_the_keyword_constructor():
    from protocols import RouteDecision

    route = RouteDecision(route_id="paper", adapter_id="paper", routing_reason="mode paper")
    for it in (
        OrderIntent(client_order_id="i1", symbol="BTC/USDT", side="SELL", order_type="LIMIT", quantity=D("0.50"),
                    limit_price=D("39000.10"), time_in_force="FOK"),
        OrderIntent(client_order_id="i2", symbol="ETH/BTC", side="BUY", order_type="MARKET", quantity=D("3")),
    ):
        for kw in (dict(route=route, arrival_px=D("39433.62")), dict(adapter_id="other"), {}):
            rec = OrderRecord.from_intent(it, "a1", ts=ts(), **kw)
            ref = OrderRecord(
                client_order_id=it.client_order_id, account_id="a1", symbol=it.symbol, side=it.side,
                order_type=it.order_type, quantity=it.quantity, limit_price=it.limit_price,
                time_in_force=it.time_in_force.value,
                adapter_id=kw.get("adapter_id") or (route.adapter_id if kw.get("route") else ""),
                route=kw.get("route"), arrival_px=kw.get("arrival_px"), created_ts=ts(),
            )
            assert list(vars(rec)) == list(vars(ref)) and vars(rec) == vars(ref)
            assert type(rec.time_in_force) is str and rec.updated_ts == ts()
            assert rec.lifecycle.status is S.INITIALIZED and rec.lifecycle.prior is None
        a, b = OrderRecord.from_intent(it, "a1"), OrderRecord.from_intent(it, "a1")
        for name in ("fills", "trade_ids", "transitions"):
            assert getattr(a, name) is not getattr(b, name)  # never shared between records
        # overfills / anomalies start as the shared empty tuple (immutable: safe to share); the
        # first entry gives the record a list of its own
        assert a.overfills == () and a.anomalies == () and b.overfills == () and b.anomalies == ()
        assert a.created_ts.tzinfo is UTC


def test_constructor_still_validates_what_it_is_given():
    base = dict(client_order_id="c", account_id="a", symbol="BTC/USDT", side="buy", order_type="limit",
                quantity=D("1"), limit_price=D("2"))
    rec = OrderRecord(**base)
    assert rec.side is Side.BUY and rec.order_type.value == "LIMIT"
    for bad, msg in (
        (dict(symbol="BTCUSDT"), "BASE/QUOTE"),
        (dict(side="HOLD"), "HOLD"),
        (dict(quantity=D("NaN")), "quantity"),
        (dict(quantity=1), "quantity"),
        (dict(limit_price=D("-1")), "limit_price"),
        (dict(arrival_px=D("0")), "arrival_px"),
    ):
        for _ in range(2):  # the second time a symbol is seen it is memoised: still refused
            with pytest.raises(ValueError, match=msg):
                OrderRecord(**{**base, **bad})


def test_arrival_price_for_enum_string_and_bad_sides():
    q = Quote(ts=T0, symbol="BTC/USDT", bid=D("99"), bid_size=D(1), ask=D("100"), ask_size=D(1))
    assert arrival_price(Side.BUY, q) == arrival_price("buy", q) == arrival_price("BUY", q) == D("100")
    assert arrival_price(Side.SELL, q) == arrival_price("sell", q) == D("99")
    assert arrival_price("HOLD", None) is None
    with pytest.raises(ValueError):
        arrival_price("HOLD", q)


class _ReferenceBook(Positions):
    """Positions.apply_fill written the plain way (fill_cash_flows and one setdefault per book)."""

    def apply_fill(self, account_id, symbol, side, fill):  # type: ignore[override]
        from actors.orders.books import _PosState, _split_symbol

        side = Side(side)
        flows = fill_cash_flows(symbol, side, fill)
        base, quote = _split_symbol(symbol)
        st = self._pos.setdefault((account_id, symbol), _PosState())
        signed = side.sign * fill.qty
        net = st.net_qty
        if net == 0 or (net > 0) == (signed > 0):
            st.cost += fill.qty * fill.price
            st.net_qty = net + signed
        else:
            pos_sign = 1 if net > 0 else -1
            closed = min(fill.qty, abs(net))
            closed_cost = st.cost if closed == abs(net) else st.cost * closed / abs(net)
            st.realized += pos_sign * (closed * fill.price - closed_cost)
            st.cost -= closed_cost
            st.net_qty = net + signed
            remainder = fill.qty - closed
            if st.net_qty == 0:
                st.cost = D(0)
            if remainder > 0:
                st.cost = remainder * fill.price
        if side is Side.BUY:
            st.buy_qty += fill.qty
        else:
            st.sell_qty += fill.qty
        if fill.fee:
            ccy = fill.fee_currency or quote
            if ccy == quote:
                st.fees += fill.fee
            elif ccy == base:
                st.fees += fill.fee * fill.price
        cash = self._cash.setdefault(account_id, {})
        for ccy, amount in flows.items():
            cash[ccy] = cash.get(ccy, D(0)) + amount


_money = st.decimals(min_value=D("0.00000001"), max_value=D("100000"), places=8, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, **PROPS)
@given(st.lists(
    st.tuples(
        st.sampled_from(["BTC/USDT", "BTC/BTC", "ETH/BTC"]),
        st.sampled_from([Side.BUY, Side.SELL, "buy", "SELL"]),
        _money, _money,
        st.sampled_from(["0", "0.001", "1.5"]),
        st.sampled_from(["", "USDT", "BTC", "ETH", "BNB"]),
        st.sampled_from(["a1", "a2"]),
    ),
    max_size=25,
))
def test_position_book_matches_the_plain_arithmetic(trades):
    book, ref = Positions(), _ReferenceBook()
    for i, (symbol, side, qty, price, fee, ccy, acc) in enumerate(trades):
        f = Fill(trade_id=f"t{i}", qty=qty, price=price, fee=D(fee), fee_currency=ccy, ts=ts(i))
        book.apply_fill(acc, symbol, side, f)
        ref.apply_fill(acc, symbol, side, f)
    assert repr(book.positions()) == repr(ref.positions())  # exact Decimals, exponents included
    for acc in ("a1", "a2"):
        assert repr(book.cash(acc)) == repr(ref.cash(acc))  # same amounts, same currency order
    assert book.accounts() == ref.accounts()


def test_position_book_refuses_bad_input_and_stays_unchanged():
    book = Positions()
    f = fill("t1", "1", "100")
    for symbol, side, err in (("BTCUSDT", "BUY", "BASE/QUOTE"), ("BTC/", "BUY", "BASE/QUOTE"), ("BTC/USDT", "HOLD", "HOLD")):
        for _ in range(2):
            with pytest.raises(ValueError, match=err):
                book.apply_fill("a1", symbol, side, f)
    assert book.positions() == () and book.cash("a1") == {} and book.accounts() == ()


# -- the intake's fast construction (actors/orders/books.py _plain_intake) --------------------------

_odd_decimals = st.one_of(st.decimals(allow_nan=True, allow_infinity=True, places=4), st.sampled_from([D("0.001"), D("39433.62")]),
                          st.integers(min_value=-2, max_value=3), st.sampled_from([1.5, "1"]))


@st.composite
def _intakes(draw) -> tuple:
    from protocols import ExecutionContext, OrderIntent, OrderType, RouteDecision, Side, TimeInForce

    intent = OrderIntent.model_construct(
        client_order_id=draw(st.sampled_from(["c-1", "c-2"])),
        symbol=draw(st.sampled_from(["BTC/USDT", "ETH/USDT", "BTCUSDT", 5])),
        side=draw(st.sampled_from([Side.BUY, Side.SELL, "BUY", "sell", "nonsense"])),
        order_type=draw(st.sampled_from([OrderType.MARKET, OrderType.LIMIT, "LIMIT", "nonsense"])),
        quantity=draw(_odd_decimals),
        limit_price=draw(st.one_of(st.none(), _odd_decimals)),
        time_in_force=draw(st.sampled_from(list(TimeInForce))),
        strategy_id=draw(st.sampled_from(["", "ma-cross"])),
    )
    context = draw(st.sampled_from([None, ExecutionContext(mode="paper", account_id="a", strategy_id="ctx", session_id="s-1")]))
    route = draw(st.sampled_from([None, RouteDecision(adapter_id="paper", route_id="route_paper", routing_reason="paper mode")]))
    return intent, draw(st.sampled_from(["a", "b"])), draw(st.sampled_from(["", "shadow"])), route, \
        draw(st.one_of(st.none(), _odd_decimals)), context


def _intake_outcome(args: tuple) -> tuple:
    intent, account_id, adapter_id, route, arrival_px, context = args
    try:
        rec = OrderRecord.from_intent(intent, account_id, adapter_id=adapter_id, route=route, arrival_px=arrival_px,
                                      ts=datetime(2021, 1, 8, tzinfo=UTC), context=context)
    except Exception as exc:  # noqa: BLE001 - the outcome compared is the exception's type and text
        return ("raised", type(exc), str(exc))
    return ("built", type(rec), [(k, type(v), repr(v)) for k, v in rec.__dict__.items()])


def _plain(**changes) -> tuple:
    from protocols import ExecutionContext, OrderIntent

    fields = {"client_order_id": "c-1", "symbol": "BTC/USDT", "side": "BUY", "order_type": "LIMIT", "quantity": D("0.001"),
              "limit_price": D("39433.62")}
    intent = OrderIntent(**fields)
    odd = {k: changes.pop(k) for k in list(changes) if k in OrderIntent.model_fields}
    if odd:
        intent = OrderIntent.model_construct(**{**intent.model_dump(), **odd})
    return (intent, "a", "", None, changes.get("arrival_px", D("39433.62")), ExecutionContext(mode="paper", account_id="a"))


@given(_intakes())
@example(_plain())
@example(_plain(arrival_px=None))
@example(_plain(arrival_px=D("-1")))
@example(_plain(arrival_px=D("NaN")))
@example(_plain(arrival_px=D(0)))
@example(_plain(arrival_px=7))
@example(_plain(quantity=D("-0.001")))
@example(_plain(quantity=D("Infinity")))
@example(_plain(quantity=1))
@example(_plain(limit_price=D("-1")))
@example(_plain(limit_price=2))
@example(_plain(side="SELL"))
@example(_plain(order_type="MARKET", limit_price=None))
@example(_plain(symbol="BTCUSDT"))
def test_the_intake_fast_path_builds_the_record_the_constructor_builds(args: tuple) -> None:
    """``OrderRecord.from_intent`` without the generated ``__init__`` (every order's intake) gives
    the record the constructor and ``__post_init__`` give, every field in declaration order, or
    the same error."""
    import actors.orders.books as books

    fast = _intake_outcome(args)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(books, "_plain_intake", lambda intent, arrival_px: False)
        full = _intake_outcome(args)
    assert fast == full


def test_a_validated_intent_takes_the_intake_fast_path() -> None:
    import actors.orders.books as books
    from protocols import OrderIntent

    intent = OrderIntent(client_order_id="c-1", symbol="BTC/USDT", side="BUY", order_type="LIMIT", quantity=D("0.001"),
                         limit_price=D("39433.62"))
    OrderRecord.from_intent(intent, "a")  # the symbol is seen once
    assert books._plain_intake(intent, D("39433.62")) and books._plain_intake(intent, None)


def test_an_order_record_at_rest_holds_no_empty_tracked_container():
    """overfills and anomalies are rare: until the first entry they are the untracked empty tuple, so
    an order record in memory holds two containers fewer that every GC collection it survives
    traverses (docs/DESIGN.md "Threads"); the first entry gives the record a list of its own."""
    import gc

    a, b = record(qty="1"), record(qty="1")
    assert a.apply_fill(fill("t1", "1", "100")) is FillOutcome.APPLIED and a.status is S.FILLED
    for rec in (a, b):
        assert not gc.is_tracked(rec.overfills) and not gc.is_tracked(rec.anomalies)
    assert a.apply_fill(fill("t2", "1", "100")) is FillOutcome.OVERFILL
    assert [f.trade_id for f in a.overfills] == ["t2"] and b.overfills == ()
    c = record(upto=(E.RESERVED,))
    assert c.apply_fill(fill("t3", "1", "100")) is FillOutcome.REFUSED
    assert "no fill is allowed" in c.anomalies[-1] and a.anomalies == () and b.anomalies == ()
