"""The ledger's batch writes its rows as statement parameters made straight from its records
(``_event_params``, ``_fill_row_params`` in ``actors/orders/ledger.py``), skipping the
``OrderEventRow`` / ``FillRow`` objects. Held here to the row path over any record: the same
parameters as ``event_params(_event_row(...))`` / ``_fill_params(FillRow(...))``, and the same rows
read back from the journal, NULLs included (``NULL_PARAM`` bound for None, docs/DESIGN.md "Durability")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.journal.sqlite import FillRow, OrderEventRow, SQLiteJournal, _fill_params, event_params
from actors.orders.books import OrderRecord
from actors.orders.ledger import _event_params, _event_row, _fill_row_params
from protocols import ErrorCode, ExecError, Fill, Liquidity, OrderIntent, RouteDecision
from protocols.model.lifecycle import E

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=600)
_money = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e9"), places=8, allow_nan=False)
#: UTC times over every year (the runtime's clocks; orjson writes them, ledger._ts_json), and times in
#: other zones, second and microsecond offsets included (written by isoformat)
_ts = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)) | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))))
_PATHS = (
    [E.RESERVED, E.SUBMITTED, E.FILLED],
    [E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.PARTIALLY_FILLED, E.CANCEL_REQUESTED, E.CANCELED],
    [E.RESERVED, E.SUBMITTED, E.REJECTED],
    [E.RESERVED, E.SUBMITTED, E.UNKNOWN, E.FILLED],
    [E.DENIED],
)


@st.composite
def records(draw) -> OrderRecord:
    intent = OrderIntent(client_order_id=draw(st.from_regex(r"[A-Za-z0-9]{1,36}", fullmatch=True)), symbol="BTC/USDT",
                         side=draw(st.sampled_from(["BUY", "SELL"])), order_type="MARKET", quantity=Decimal("0.001"))
    route = draw(st.none() | st.builds(RouteDecision, route_id=_text.filter(bool), adapter_id=st.just("paper"),
                                       routing_reason=_text))
    rec = OrderRecord.from_intent(intent, draw(st.from_regex(r"[A-Za-z0-9._:/-]{1,64}", fullmatch=True)),
                                  adapter_id=draw(st.sampled_from(["", "paper"])), route=route,
                                  arrival_px=draw(st.none() | _money), ts=draw(_ts))
    rec.reserved_at_intake = draw(st.none() | _money | st.just(Decimal("0")))
    rec.venue_order_id = draw(st.none() | _text)
    rec.attempts = draw(st.integers(0, 5))
    if draw(st.booleans()):
        rec.error = ExecError.of(draw(st.sampled_from(list(ErrorCode))), draw(_text.map(lambda s: s[:2000])),
                                 retry_after_s=draw(st.none() | st.floats(0, 1e6)))
    for event in draw(st.sampled_from(_PATHS)):
        rec.apply_event(event, cause=draw(_text), ts=draw(_ts))
    return rec


@settings(max_examples=300, deadline=None)
@given(records())
def test_a_transitions_params_are_its_rows(rec: OrderRecord) -> None:
    for t in rec.transitions:
        assert _event_params(rec, t) == event_params(_event_row(OrderEventRow, rec, t))


@settings(max_examples=200, deadline=None)
@given(records(), _money, _money, _money, _text.filter(bool), st.sampled_from(list(Liquidity)), _ts)
def test_a_fills_params_are_its_rows(rec: OrderRecord, qty, price, fee, trade_id, liquidity, ts) -> None:
    fill = Fill(trade_id=trade_id[:64], qty=qty, price=price, fee=fee, fee_currency="USDT", liquidity=liquidity, ts=ts)
    row = FillRow(adapter_id=rec.adapter_id or "?", account_id=rec.account_id, client_order_id=rec.client_order_id,
                  symbol=rec.symbol, side=rec.side, fill=fill)
    assert _fill_row_params(rec, fill) == _fill_params(row)


@settings(max_examples=60, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4, unique_by=lambda r: r.client_order_id))
def test_rows_written_from_params_read_back_as_the_rows(recs: list[OrderRecord]) -> None:
    """Every nullable column, None or not, reads back as the row path writes it."""
    rows = [_event_row(OrderEventRow, rec, t) for rec in recs for t in rec.transitions]
    by_rows, by_params = SQLiteJournal(None), SQLiteJournal(None)
    try:
        assert by_rows.record_ledger(rows, []) == (len(rows), [])
        assert by_params.record_ledger_params([_event_params(rec, t) for rec in recs for t in rec.transitions], []) == (len(rows), [])
        assert by_params.load_orders() == by_rows.load_orders() == rows
    finally:
        by_rows.close()
        by_params.close()
