"""The ledger writes its transition and fill audit lines straight from the record.

``_transition_line`` / ``_fill_line`` (``actors/orders/ledger.py``) make a line's ``data`` as its
canonical JSON text without the dict ``LedgerActor._transition_data`` / ``_fill_data`` build, and
``AuditLog.append_encoded`` chains them as ``append_many`` chains the dicts. The hash chain is only
as good as those bytes, so these tests hold the shortcut to the code it replaced over any record
hypothesis finds (every code point in every text field, lone surrogates and DEL included): the
same data text, and the same log file, byte for byte.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.audit.log import AuditLog, _data_json, verify
from actors.orders.books import OrderRecord
from actors.orders.ledger import LedgerActor, _fill_line, _transition_line
from protocols import ErrorCode, ExecError, Fill, Liquidity, OrderIntent, RouteDecision
from protocols.model.lifecycle import E

TS = datetime(2026, 12, 7, 11, 0, 0, 123456, tzinfo=UTC)

# every code point, lone surrogates, control characters and DEL included
_any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12)
_text = st.one_of(_any_text, st.sampled_from(["", "paper", "d-acct-1", "caf\u00e9", "a\x7fb", "q\"\\/", "\ud800"]))
_money = st.decimals(min_value=Decimal("0"), max_value=Decimal("1e12"), places=8, allow_nan=False) | st.sampled_from(
    [Decimal("1E+3"), Decimal("0E-8"), Decimal("-0.5"), Decimal("42000.50")])
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
    intent = OrderIntent(client_order_id="c-1", symbol="BTC/USDT", side=draw(st.sampled_from(["BUY", "SELL"])),
                         order_type="MARKET", quantity=Decimal("0.001"))
    route = draw(st.none() | st.builds(RouteDecision, route_id=_text.filter(bool), adapter_id=st.just("paper"), routing_reason=_text))
    rec = OrderRecord.from_intent(intent, "acct", adapter_id="paper", route=route, arrival_px=draw(st.none() | _money.filter(lambda d: d > 0)), ts=TS)
    # any text in every field a line holds (the model checks them at intake; the encoder must not rely on it)
    rec.client_order_id, rec.account_id, rec.symbol, rec.adapter_id = draw(_text), draw(_text), draw(_text), draw(_text)
    rec.time_in_force = draw(st.sampled_from(["GTC", "IOC", "FOK", "DAY"]) | _text)
    rec.quantity = draw(_money)
    rec.limit_price = draw(st.none() | _money)
    if draw(st.booleans()):
        rec.strategy_id, rec.session_id, rec.correlation_id = draw(_text), draw(_text), draw(_text)
    rec.reserved_at_intake = draw(st.none() | _money)
    rec.price_capped_from = draw(st.none() | _money)
    if draw(st.booleans()):
        rec.error = ExecError.of(draw(st.sampled_from(list(ErrorCode))), draw(_model_text) or "x")
    for event in draw(st.sampled_from(_PATHS)):
        rec.apply_event(event, cause=draw(_text), ts=draw(_ts))
    return rec


_model_text = st.text(st.characters(codec="utf-8"), max_size=12)  # what the pydantic models take: no lone surrogate
_fills = st.builds(Fill, trade_id=_model_text.filter(bool), qty=_money.filter(lambda d: d > 0), price=_money.filter(lambda d: d > 0),
                   fee=_money.filter(lambda d: d >= 0),
                   fee_currency=st.sampled_from(["USDT", "BTC", ""]) | _model_text, liquidity=st.sampled_from(list(Liquidity)),
                   ts=_ts)


@settings(max_examples=400, deadline=None)
@given(records())
def test_a_transitions_line_is_its_dicts_canonical_json(rec: OrderRecord) -> None:
    for t in rec.transitions:
        assert _transition_line(rec, t) == _data_json(LedgerActor._transition_data(rec, t))


@settings(max_examples=300, deadline=None)
@given(records(), _fills)
def test_a_fills_line_is_its_dicts_canonical_json(rec: OrderRecord, fill: Fill) -> None:
    assert _fill_line(rec, fill) == _data_json(LedgerActor._fill_data(rec, fill))


class _Clock:
    def now(self) -> datetime:
        return TS


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(records(), _fills), min_size=1, max_size=3))
def test_the_encoded_log_is_the_append_many_log_byte_for_byte(tmp_path_factory, orders: list) -> None:
    d = Path(tmp_path_factory.mktemp("audit"))
    by_dict, by_text = AuditLog(d / "dict.jsonl", fsync="never", clock=_Clock()), AuditLog(d / "text.jsonl", fsync="never", clock=_Clock())
    for rec, fill in orders:
        other = {"event": "alert", "n": 1, "px": Decimal("1.5")}
        by_dict.append_many([*(("transition", LedgerActor._transition_data(rec, t)) for t in rec.transitions),
                             ("fill", LedgerActor._fill_data(rec, fill)), ("alert", other)])
        by_text.append_encoded([*(("transition", _transition_line(rec, t)) for t in rec.transitions),
                                ("fill", _fill_line(rec, fill)), ("alert", _data_json(other))])
    by_dict.close()
    by_text.close()
    assert (d / "text.jsonl").read_bytes() == (d / "dict.jsonl").read_bytes()
    assert verify(d / "text.jsonl").ok


def test_append_encoded_refuses_a_bad_kind_or_text_and_appends_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", fsync="never", clock=_Clock())
    with pytest.raises(ValueError, match="kind"):
        log.append_encoded([("ok", "{}"), ("", "{}")])
    with pytest.raises(ValueError, match="kind"):
        log.append_encoded([("k" * 65, "{}")])
    with pytest.raises(TypeError, match="data_json"):
        log.append_encoded([("ok", "{}"), ("ok", {"a": 1})])  # type: ignore[list-item]
    with pytest.raises(UnicodeEncodeError):
        log.append_encoded([("ok", "{}"), ("ok", '{"a":"caf\u00e9"}')])
    assert log.seq == 0
    assert log.append_encoded([("ok", "{}"), ("ok", '{"a":1}')]) == [1, 2]
    log.close()
    assert verify(tmp_path / "audit.jsonl").ok
