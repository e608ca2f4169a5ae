"""Whatever the report models accept, the journals accept and read back equal.

The models (``protocols/model``: ``ExecError``, ``ExecutionReport``, ``Fill``) are the one source
of truth for each field's constraints; the ledger journal's rows (``OrderEventRow``, ``FillRow``,
SQLite and the memory journal) and the idempotency record's report JSON (read back with
``model_validate_json``) must never refuse a value the models let through: a refused row makes
the ledger's batch write fail at every retry and keeps trading HALTED (docs/DESIGN.md "What
written means, per record, and what happens when a write fails"). Any float is drawn for
``retry_after_s`` (negative, NaN, infinities included): the model either refuses it where the
error is built or holds a value the journals take.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from actors.journal.sqlite import FillRow, MemoryJournal, OrderEventRow, SQLiteJournal
from actors.orders.books import OrderRecord
from actors.orders.ledger import _event_params, _event_row
from protocols import ErrorCode, ExecError, ExecutionReport, Fill, Liquidity, OrderIntent, OrderStatus
from protocols.model.lifecycle import E
from protocols.model.reports import exec_error_of

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
_ts = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
_any_float = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-1.0, -0.0, -1e-300, -5.5, 1e308])
_money = st.decimals(min_value=Decimal("1e-8"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False)


@st.composite
def errors(draw) -> ExecError | None:
    """An ExecError as the models build it from any float, or None when they refuse it."""
    code = draw(st.sampled_from(list(ErrorCode)))
    message = draw(_text)
    retry = draw(st.none() | _any_float)
    build = draw(st.sampled_from([ExecError.of, exec_error_of]))
    try:
        error = build(code, message, retry_after_s=retry)
    except ValidationError:
        assert retry is not None and not math.isfinite(retry), f"the model refused a finite wait {retry!r}"
        return None
    # both builders give the same error for the same input
    assert error == ExecError.of(code, message, retry_after_s=retry)
    return error


@st.composite
def records(draw) -> OrderRecord:
    intent = OrderIntent(client_order_id=draw(st.from_regex(r"[A-Za-z0-9]{1,36}", fullmatch=True)), symbol="BTC/USDT",
                         side="BUY", order_type="MARKET", quantity=Decimal("0.001"))
    rec = OrderRecord.from_intent(intent, "acct-1", adapter_id="paper", route=None, arrival_px=None, ts=draw(_ts))
    rec.error = draw(errors())
    rec.venue_order_id = draw(st.none() | _text)
    rec.attempts = draw(st.integers(0, 10))
    for event in draw(st.sampled_from([[E.RESERVED, E.SUBMITTED, E.REJECTED], [E.DENIED],
                                       [E.RESERVED, E.SUBMITTED, E.UNKNOWN]])):
        rec.apply_event(event, cause=draw(_text), ts=draw(_ts))
    return rec


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4, unique_by=lambda r: r.client_order_id))
def test_every_error_the_models_accept_is_journaled_and_read_back(recs: list[OrderRecord]) -> None:
    rows = [_event_row(OrderEventRow, rec, t) for rec in recs for t in rec.transitions]  # raised before the fix
    assert MemoryJournal().record_ledger(rows, []) == (0, [])
    by_rows, by_params = SQLiteJournal(None), SQLiteJournal(None)
    try:
        by_rows.record_ledger(rows, [])
        by_params.record_ledger_params([_event_params(rec, t) for rec in recs for t in rec.transitions], [])
        assert by_params.load_orders() == by_rows.load_orders() == rows
        for row in by_rows.load_orders():  # the error read back is the error journaled
            rec = next(r for r in recs if r.client_order_id == row.client_order_id)
            if rec.error is not None:
                assert ExecError.of(ErrorCode(row.error_code), row.error_message or "",
                                    retry_after_s=row.error_retry_after_s) == rec.error
    finally:
        by_rows.close()
        by_params.close()


@settings(max_examples=300, deadline=None)
@given(errors(), st.integers(0, 10), st.lists(st.builds(
    Fill, trade_id=st.from_regex(r"[A-Za-z0-9-]{1,64}", fullmatch=True), qty=_money, price=_money,
    fee=_money | st.just(Decimal(0)), fee_currency=_text, liquidity=st.sampled_from(list(Liquidity)), ts=_ts),
    max_size=3, unique_by=lambda f: f.trade_id))
def test_a_report_the_models_accept_reads_back_from_its_json_and_its_fills_from_the_journal(
        error: ExecError | None, attempts: int, fills: list[Fill]) -> None:
    """The idempotency record's report JSON (``model_dump_json`` / ``model_validate_json``) and the fill rows."""
    report = ExecutionReport(client_order_id="c-1", account_id="acct-1", symbol="BTC/USDT", status=OrderStatus.FAILED,
                             fills=tuple(fills), error=error, attempts=attempts)
    assert ExecutionReport.model_validate_json(report.model_dump_json()) == report
    rows = [FillRow(adapter_id="paper", account_id="acct-1", client_order_id="c-1", symbol="BTC/USDT", side="BUY", fill=f)
            for f in fills]
    journal = SQLiteJournal(None)
    try:
        assert journal.record_ledger([], rows) == (0, [True] * len(rows))
        assert journal.load_fills() == rows
    finally:
        journal.close()


@pytest.mark.parametrize("wait", [-1.0, -0.001, -3600.0, float("-inf")])
def test_a_negative_wait_is_clamped_to_zero_and_keeps_the_venues_text(wait: float) -> None:
    if math.isinf(wait):
        with pytest.raises(ValidationError, match="finite"):
            ExecError.of(ErrorCode.E_EXEC_THROTTLED, "Retry-After in the past", retry_after_s=wait)
        return
    for build in (ExecError.of, exec_error_of):
        error = build(ErrorCode.E_EXEC_THROTTLED, "Retry-After in the past", retry_after_s=wait)
        assert error.retry_after_s == 0.0 and error.message == "Retry-After in the past"


@pytest.mark.parametrize("wait", [float("nan"), float("inf")])
def test_a_wait_that_is_no_number_is_refused_where_the_error_is_built(wait: float) -> None:
    for build in (ExecError.of, exec_error_of):
        with pytest.raises(ValidationError, match="retry_after_s"):
            build(ErrorCode.E_EXEC_CIRCUIT_OPEN, "open", retry_after_s=wait)
