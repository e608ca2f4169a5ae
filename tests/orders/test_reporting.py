"""Tests for actors.orders.reporting and protocols.model.reports.report_from_valid: the reports built
without re-validation are exactly the ones the validating constructor builds."""

from __future__ import annotations

import pickle
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from actors.orders.books import slippage_bps
from actors.orders.messages import SubmitOrder
from actors.orders.reporting import error_report, venue_report
from protocols import (
    ErrorCode,
    ExecError,
    ExecutionContext,
    ExecutionReport,
    Fill,
    OrderIntent,
    RouteDecision,
    VenueOrderState,
)
from protocols import (
    OrderStatus as S,
)
from protocols.model.reports import REPORT_FIELDS, report_from_valid

T0 = datetime(2021, 1, 8, tzinfo=UTC)
ROUTE = RouteDecision(route_id="paper", adapter_id="paper", routing_reason="mode paper")
CTX = ExecutionContext(mode="paper", account_id="acc-1", strategy_id="ma-cross", session_id="s-7", correlation_id="c-1")


def intent(side: str = "BUY", qty: str = "0.0010", price: str | None = None) -> OrderIntent:
    return OrderIntent(client_order_id="r-1", symbol="BTC/USDT", side=side, order_type="LIMIT" if price else "MARKET",
                       quantity=D(qty), limit_price=D(price) if price else None)


def order(side: str = "BUY", *, route=ROUTE, attempt=1, arrival_px=D("39433.62")) -> SubmitOrder:
    return SubmitOrder(intent(side), CTX, Future(), time.perf_counter_ns(), route=route, attempt=attempt,
                       arrival_px=arrival_px)


def fill(tid: str, qty: str, price: str, fee: str = "0.0001") -> Fill:
    return Fill(trade_id=tid, qty=D(qty), price=D(price), fee=D(fee), fee_currency="USDT", ts=T0)


def state(status: S, fills=(), side: str = "BUY", reject_reason: str | None = None, **kw) -> VenueOrderState:
    cum = sum((f.qty for f in fills), D(0))
    avg = sum((f.qty * f.price for f in fills), D(0)) / cum if cum else None
    args = dict(client_order_id="r-1", venue_order_id="v-9", symbol="BTC/USDT", side=side, status=status,
                quantity=D("0.0010"), cum_qty=cum, leaves_qty=D(0) if status.is_terminal else D("0.0010") - cum,
                avg_px=avg, fills=tuple(fills), reject_reason=reject_reason, ts=T0)
    args.update(kw)
    return VenueOrderState(**args)


def assert_same_report(built: ExecutionReport, given: set[str]) -> None:
    """``built`` is what the validating constructor makes of the same values, field by field."""
    validated = ExecutionReport.model_validate(dict(built.__dict__))
    assert type(built) is ExecutionReport
    assert built == validated
    assert list(built.__dict__) == list(REPORT_FIELDS) == list(validated.__dict__)
    for name in REPORT_FIELDS:  # same values and types (Decimal exponents included)
        a, b = getattr(built, name), getattr(validated, name)
        assert type(a) is type(b) and repr(a) == repr(b), name
    assert built.model_fields_set == given
    assert built.__pydantic_extra__ is None and built.__pydantic_private__ is None
    assert repr(built) == repr(validated)
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert ExecutionReport.model_validate_json(built.model_dump_json()) == built
    assert pickle.loads(pickle.dumps(built)) == built
    assert built.model_copy(update={"replay": True}).replay is True and built.replay is False
    with pytest.raises(ValidationError):
        built.status = S.FILLED  # still frozen


VENUE_GIVEN = {"client_order_id", "account_id", "symbol", "side", "venue_order_id", "status", "route", "fills",
               "cum_qty", "leaves_qty", "avg_px", "fees", "slippage_bps", "error", "attempts", "latency_us",
               "raw_broker_ref", "strategy_id", "session_id", "correlation_id"}
ERROR_GIVEN = {"client_order_id", "account_id", "symbol", "side", "venue_order_id", "status", "route", "leaves_qty",
               "error", "attempts", "latency_us", "strategy_id", "session_id", "correlation_id"}


def reference_venue_report(o: SubmitOrder, st: VenueOrderState) -> ExecutionReport:
    """venue_report as it was written before the fast path (validating constructor)."""
    fees = sum((f.fee for f in st.fills), D(0))
    error = None
    if st.status is S.REJECTED:
        error = ExecError.of(ErrorCode.E_EXEC_BROKER_REJECTED, st.reject_reason or "rejected by venue")
    return ExecutionReport(
        client_order_id=st.client_order_id, account_id=o.context.account_id, symbol=st.symbol, side=st.side,
        venue_order_id=st.venue_order_id, status=st.status, route=o.route, fills=st.fills, cum_qty=st.cum_qty,
        leaves_qty=st.leaves_qty, avg_px=st.avg_px, fees=fees,
        slippage_bps=slippage_bps(st.side, st.avg_px, o.arrival_px), error=error, attempts=o.attempt,
        latency_us=0, raw_broker_ref=f"{o.route.adapter_id if o.route else '?'}:{st.venue_order_id}",
        strategy_id=o.intent.strategy_id or o.context.strategy_id, session_id=o.context.session_id,
        correlation_id=o.context.correlation_id,
    )


def reference_error_report(o: SubmitOrder, code, message, *, status=S.DENIED, retry_after_s=None, venue_order_id=None):
    """error_report as it was written before the fast path (validating constructor)."""
    return ExecutionReport(
        client_order_id=o.intent.client_order_id, account_id=o.context.account_id, symbol=o.intent.symbol,
        side=o.intent.side, venue_order_id=venue_order_id, status=status, route=o.route,
        leaves_qty=D(0) if status.is_terminal else o.intent.quantity,
        error=ExecError.of(code, message, retry_after_s=retry_after_s), attempts=o.attempt, latency_us=0,
        strategy_id=o.intent.strategy_id or o.context.strategy_id, session_id=o.context.session_id,
        correlation_id=o.context.correlation_id,
    )


def same_but_time(a: ExecutionReport, b: ExecutionReport) -> None:
    assert a.model_copy(update={"latency_us": 0, "ts": T0}) == b.model_copy(update={"latency_us": 0, "ts": T0})
    assert a.model_fields_set == b.model_fields_set
    assert a.latency_us >= 0 and a.ts.tzinfo is UTC


VENUE_CASES = [
    pytest.param(lambda: (order(), state(S.FILLED, [fill("p-1", "0.0010", "39433.62")])), id="market-filled"),
    pytest.param(lambda: (order(), state(S.ACCEPTED)), id="accepted-no-fills"),
    pytest.param(lambda: (order(), state(S.PARTIALLY_FILLED, [fill("p-1", "0.0004", "39433.6"),
                                                           fill("p-2", "0.0002", "39440.123", "0")])),
                 id="partial-two-fills"),
    pytest.param(lambda: (order("SELL"), state(S.FILLED, [fill("p-1", "0.0010", "39400")], side="SELL")),
                 id="sell-filled"),
    pytest.param(lambda: (order(), state(S.REJECTED, reject_reason="insufficient balance")), id="rejected-reason"),
    pytest.param(lambda: (order(), state(S.REJECTED)), id="rejected-no-reason"),
    pytest.param(lambda: (order(route=None, arrival_px=None), state(S.CANCELED)), id="no-route-no-arrival"),
    pytest.param(lambda: (order(attempt=3), state(S.EXPIRED, [fill("p-1", "0.0001", "1E+4")])), id="expired"),
]


@pytest.mark.parametrize("make", VENUE_CASES)
def test_venue_report_is_the_validated_report(make) -> None:
    o, st = make()
    built = venue_report(o, st)
    assert_same_report(built, VENUE_GIVEN)
    same_but_time(built, reference_venue_report(o, st))


ERROR_CASES = [
    pytest.param(dict(code=ErrorCode.E_EXEC_RISK_DENIED, message="min_notional: notional 3 < 5"), id="denied"),
    pytest.param(dict(code=ErrorCode.E_EXEC_BROKER_TIMEOUT, message="timed out", status=S.UNKNOWN), id="unknown"),
    pytest.param(dict(code=ErrorCode.E_EXEC_CIRCUIT_OPEN, message="open", status=S.DENIED, retry_after_s=1.5),
                 id="retry-after"),
    pytest.param(dict(code=ErrorCode.E_EXEC_BROKER_REJECTED, message="x" * 3000, status=S.REJECTED,
                      venue_order_id="v-1"), id="rejected-long-message"),
]


@pytest.mark.parametrize("kw", ERROR_CASES)
@pytest.mark.parametrize("route", [ROUTE, None])
def test_error_report_is_the_validated_report(kw, route) -> None:
    o = order(route=route)
    built = error_report(o, **kw)
    assert_same_report(built, ERROR_GIVEN)
    same_but_time(built, reference_error_report(o, **kw))


def outcome(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return exc


def test_odd_inputs_still_go_through_validation() -> None:
    # values the fast path cannot vouch for take the validating constructor: same report or same error
    st = state(S.FILLED, [fill("p-1", "0.0010", "39433.62")])
    odd_orders = [order(attempt=True), order(attempt=2.0), order(attempt="2"), order(route={"route_id": 1})]
    for o in odd_orders:
        got, want = outcome(venue_report, o, st), outcome(reference_venue_report, o, st)
        if isinstance(want, Exception):
            assert type(got) is type(want) and str(got).splitlines()[:2] == str(want).splitlines()[:2]
        else:
            same_but_time(got, want)
    for o in odd_orders[:3]:
        for kw in (dict(venue_order_id=123), dict(venue_order_id="v-1"), dict(status=S.FAILED)):
            got = outcome(error_report, o, ErrorCode.E_EXEC_NETWORK, "x", **kw)
            want = outcome(reference_error_report, o, ErrorCode.E_EXEC_NETWORK, "x", **kw)
            if isinstance(want, Exception):
                assert type(got) is type(want) and str(got).splitlines()[:2] == str(want).splitlines()[:2]
            else:
                same_but_time(got, want)
    assert isinstance(outcome(error_report, order(), ErrorCode.E_EXEC_NETWORK, "x", venue_order_id=123), ValidationError)


def test_report_from_valid_refuses_an_incomplete_field_map() -> None:
    with pytest.raises(TypeError):
        report_from_valid({"client_order_id": "x", "status": S.DENIED}, frozenset({"client_order_id", "status"}))


def test_reports_do_not_share_their_fields_set() -> None:
    o = order()
    a, b = error_report(o, ErrorCode.E_EXEC_NETWORK, "x"), error_report(o, ErrorCode.E_EXEC_NETWORK, "y")
    assert a.model_fields_set == b.model_fields_set and a.model_fields_set is not b.model_fields_set


@pytest.mark.parametrize("code", list(ErrorCode))
def test_exec_error_of_is_exec_error_of(code) -> None:
    from protocols.model.reports import exec_error_of

    for message in ("short", "", "é" * 2500):
        for retry in (None, 1.5, 0.0, -0.0, -1.0, -1e-9, float("inf"), float("-inf"), float("nan"), 2, -2, True):
            got = outcome(exec_error_of, code, message, retry_after_s=retry)
            want = outcome(ExecError.of, code, message, retry_after_s=retry)
            if isinstance(want, ValidationError):  # NaN, infinities: refused alike (ExecError's docstring)
                assert type(got) is type(want) and str(got).splitlines()[:2] == str(want).splitlines()[:2]
                continue
            assert type(got) is type(want) is ExecError
            assert got == want and repr(got) == repr(want)
            assert list(got.__dict__) == list(want.__dict__) and got.model_fields_set == want.model_fields_set
            assert type(got.retry_after_s) is type(want.retry_after_s)
            assert got.model_dump_json() == want.model_dump_json() and pickle.loads(pickle.dumps(got)) == want
            assert got.__pydantic_extra__ is None and got.__pydantic_private__ is None


def test_exec_error_of_odd_input_fails_like_exec_error_of() -> None:
    from protocols.model.reports import exec_error_of

    for args in (("E_EXEC_NETWORK", "x"), ("NOT_A_CODE", "x"), (ErrorCode.E_EXEC_NETWORK, 5), (ErrorCode.E_EXEC_NETWORK, None)):
        got, want = outcome(exec_error_of, *args), outcome(ExecError.of, *args)
        if isinstance(want, Exception):
            assert type(got) is type(want) and str(got).splitlines()[:2] == str(want).splitlines()[:2]
        else:
            assert got == want and got.model_fields_set == want.model_fields_set
    got = outcome(exec_error_of, ErrorCode.E_EXEC_NETWORK, "x", retry_after_s="soon")
    assert isinstance(got, ValidationError)


# ---------------------------------------------------------------- order_report (the ledger's view)

from datetime import timedelta, timezone  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

from actors.orders.books import OrderRecord  # noqa: E402
from actors.orders.reporting import order_report  # noqa: E402
from protocols import OrderEventType as E  # noqa: E402


def reference_order_report(rec: OrderRecord, *, replay=False, latency_us=0, raw_broker_ref=None, ts=None) -> ExecutionReport:
    """order_report as it was written before the fast path (validating constructor)."""
    from actors.orders.books import broker_ref

    return ExecutionReport(
        client_order_id=rec.client_order_id, account_id=rec.account_id, symbol=rec.symbol, side=rec.side,
        venue_order_id=rec.venue_order_id, status=rec.status, route=rec.route, fills=tuple(rec.fills), cum_qty=rec.cum_qty,
        leaves_qty=rec.leaves_qty, avg_px=rec.avg_px, fees=rec.fees, slippage_bps=rec.slippage_bps, error=rec.error,
        replay=replay, attempts=rec.attempts, latency_us=latency_us,
        raw_broker_ref=raw_broker_ref if raw_broker_ref is not None else broker_ref(rec.adapter_id, rec.venue_order_id),
        strategy_id=rec.strategy_id, session_id=rec.session_id, correlation_id=rec.correlation_id,
        ts=ts or rec.updated_ts or rec.created_ts,
    )


_decimals = hs.decimals(min_value=D("0.0001"), max_value=D("99999"), places=4, allow_nan=False, allow_infinity=False)


@hs.composite
def records(draw) -> OrderRecord:
    side = draw(hs.sampled_from(["BUY", "SELL"]))
    qty = draw(hs.decimals(min_value=D("0.001"), max_value=D("10"), places=3))
    ctx = draw(hs.sampled_from([CTX, ExecutionContext(mode="paper", account_id="acc-2")]))
    it = OrderIntent(client_order_id=draw(hs.sampled_from(["r-1", "o-77"])), symbol="BTC/USDT", side=side,
                     order_type="MARKET", quantity=qty, strategy_id=draw(hs.sampled_from(["", "momo"])))
    zone = draw(hs.sampled_from([UTC, timezone(timedelta(hours=2))]))  # another zone: validation converts it
    rec = OrderRecord.from_intent(it, ctx.account_id, route=draw(hs.sampled_from([ROUTE, None])),
                                  arrival_px=draw(hs.none() | _decimals), context=ctx, ts=T0.astimezone(zone))
    rec.apply_event(E.RESERVED, cause="reserved", ts=T0)
    if draw(hs.booleans()):
        rec.apply_event(E.SUBMITTED, cause="sent", ts=T0)
        rec.attempts = draw(hs.integers(1, 4))
        n = draw(hs.integers(0, 3))
        fills, left = [], qty
        for i in range(n):
            part = min(left, draw(hs.decimals(min_value=D("0.001"), max_value=D("10"), places=3)))
            if part <= 0:
                break
            fills.append(Fill(trade_id=f"t-{i}", qty=part, price=draw(_decimals), fee=draw(hs.sampled_from([D(0), D("0.0001")])),
                              fee_currency="USDT", ts=T0))
            left -= part
        cum = sum((f.qty for f in fills), D(0))
        status = draw(hs.sampled_from([S.ACCEPTED, S.CANCELED, S.REJECTED] if not fills else
                                      [S.PARTIALLY_FILLED if cum < qty else S.FILLED]))
        st = VenueOrderState(client_order_id=rec.client_order_id, venue_order_id="v-1", symbol="BTC/USDT", side=side,
                             status=status, quantity=qty, cum_qty=cum, leaves_qty=D(0) if status.is_terminal else qty - cum,
                             avg_px=sum((f.qty * f.price for f in fills), D(0)) / cum if cum else None,
                             fills=tuple(fills), reject_reason="no" if status is S.REJECTED else None, ts=T0)
        rec.apply_venue_state(st, ts=draw(hs.sampled_from([T0, T0.astimezone(zone)])))
    elif draw(hs.booleans()):
        rec.error = ExecError.of(ErrorCode.E_EXEC_RISK_DENIED, "max_notional")
        rec.apply_event(E.DENIED, cause="risk", ts=T0)
    return rec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=records(), replay=hs.booleans(), latency=hs.integers(0, 10**6), ref=hs.sampled_from([None, "paper:v-1"]),
       ts=hs.sampled_from([None, T0, T0.astimezone(timezone(timedelta(hours=-5)))]))
def test_order_report_is_the_validated_report(rec, replay, latency, ref, ts) -> None:
    built = order_report(rec, replay=replay, latency_us=latency, raw_broker_ref=ref, ts=ts)
    want = reference_order_report(rec, replay=replay, latency_us=latency, raw_broker_ref=ref, ts=ts)
    from protocols.model.pydantic_compat import same_instance

    if not replay:  # (assert_same_report checks a copy made with replay=True differs)
        assert_same_report(built, set(REPORT_FIELDS))
    assert same_instance(built, want)
    assert built == want and repr(built) == repr(want) and built.model_dump_json() == want.model_dump_json()
    assert rec.snapshot(replay=replay, latency_us=latency, raw_broker_ref=ref, ts=ts) == want


def test_order_report_of_odd_record_values_still_goes_through_validation() -> None:
    rec = OrderRecord.from_intent(intent(), "acc-1", route=ROUTE, ts=T0)
    rec.apply_event(E.RESERVED, cause="reserved", ts=T0)
    for name, value in (("attempts", True), ("attempts", "2"), ("cum_qty", D("-1")), ("cum_qty", D("NaN")),
                        ("avg_px", D("Infinity")), ("account_id", 7), ("venue_order_id", 12)):
        saved = getattr(rec, name)
        setattr(rec, name, value)
        try:
            got, want = outcome(order_report, rec), outcome(reference_order_report, rec)
            if isinstance(want, Exception):
                assert type(got) is type(want) and str(got).splitlines()[:2] == str(want).splitlines()[:2], name
            else:
                assert got == want and repr(got) == repr(want), name
        finally:
            setattr(rec, name, saved)


def test_order_report_of_a_ledger_record_is_built_without_validating(monkeypatch: pytest.MonkeyPatch) -> None:
    import actors.orders.reporting as reporting

    rec = OrderRecord.from_intent(intent(), "acc-1", route=ROUTE, arrival_px=D("39433.62"), context=CTX, ts=T0)
    for event in (E.RESERVED, E.SUBMITTED):
        rec.apply_event(event, cause="x", ts=T0)
    rec.apply_venue_state(state(S.FILLED, [fill("p-1", "0.0010", "39433.62")]), ts=T0)
    want = reference_order_report(rec)

    def validating(**kw):
        raise AssertionError("validated again")

    monkeypatch.setattr(reporting, "ExecutionReport", validating)
    assert reporting.order_report(rec) == want
