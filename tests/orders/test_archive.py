"""An archived ledger record (actors/orders/archive.py) comes back as it was archived."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.orders.archive import archive_json, archived_report, archived_transitions, restore_record
from actors.orders.books import OrderRecord
from protocols import ExecutionContext, Fill, OrderEventType, OrderIntent

E = OrderEventType


def test_a_record_round_trips_through_its_archive_json() -> None:
    intent = OrderIntent(client_order_id="arc-1", symbol="BTC/USDT", side="SELL", order_type="LIMIT",
                         quantity=Decimal("0.003"), limit_price=Decimal("39433.62"))
    rec = OrderRecord.from_intent(intent, "acc-1", adapter_id="paper", arrival_px=Decimal("39433.00"))
    for event in (E.RESERVED, E.SUBMITTED, E.ACCEPTED):
        rec.apply_event(event, cause=event.value)
    for i, qty in enumerate(("0.001", "0.002")):
        rec.apply_fill(Fill(trade_id=f"t{i}", qty=Decimal(qty), price=Decimal("39433.62") + i, fee=Decimal("0.01"),
                            fee_currency="USDT"))
    assert rec.status.is_terminal
    text = archive_json(rec)
    back = restore_record(text)
    assert back.snapshot() == rec.snapshot() == archived_report(text)
    assert back.transitions == rec.transitions and back.trade_ids == rec.trade_ids
    assert (back.notional, back.arrival_px, back.limit_price, back.order_type) == (rec.notional, rec.arrival_px, rec.limit_price, rec.order_type)
    assert [t[0] for t in archived_transitions(text)] == [t.seq for t in rec.transitions]


def test_the_archive_text_is_json_of_the_report_and_any_cause() -> None:
    """The report part is the report's JSON dump; causes of any text (non-ASCII, a lone surrogate,
    which orjson refuses and json.dumps escapes) round-trip."""
    intent = OrderIntent(client_order_id="arc-2", symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=Decimal("0.002"))
    rec = OrderRecord.from_intent(intent, "acc-1", adapter_id="paper")
    for event, cause in ((E.RESERVED, "réservé"), (E.SUBMITTED, "lone \ud800 surrogate"), (E.ACCEPTED, "del \x7f \U0001f600")):
        rec.apply_event(event, cause=cause)
    rec.apply_fill(Fill(trade_id="t0", qty=Decimal("0.002"), price=Decimal("39433.62"), fee=Decimal("0"), fee_currency="USDT"))
    text = archive_json(rec)
    assert json.loads(text)["report"] == rec.snapshot().model_dump(mode="json")
    back = restore_record(text)
    assert back.transitions == rec.transitions and back.snapshot() == rec.snapshot() == archived_report(text)


def test_an_archived_record_comes_back_with_its_attribution() -> None:
    """strategy, session and correlation ids come back: a late fill of an archived order books to
    its strategy's position and PnL, and the record archived again keeps them (before, they came
    back empty: the fill went to no strategy and the re-archived report lost its attribution)."""
    intent = OrderIntent(client_order_id="arc-3", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                         quantity=Decimal("0.002"), limit_price=Decimal("39433.00"), strategy_id="mm-1")
    context = ExecutionContext(mode="paper", account_id="acc-1", session_id="sess-9", correlation_id="corr-4")
    rec = OrderRecord.from_intent(intent, "acc-1", adapter_id="paper", context=context)
    for event in (E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.CANCEL_REQUESTED, E.CANCELED):
        rec.apply_event(event, cause=event.value)
    back = restore_record(archive_json(rec))
    assert back.attribution == rec.attribution == {"strategy_id": "mm-1", "session_id": "sess-9", "correlation_id": "corr-4"}
    assert back.snapshot() == rec.snapshot()
    assert archive_json(back) == archive_json(rec)


# -- any record: the archive text holds what it held before, and restores the record -----------

_ZONES = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-4)), timezone(timedelta(seconds=3725)))


@st.composite
def _archived_records(draw) -> OrderRecord:
    """A terminal record: causes of any text (lone surrogates too), times in UTC or another zone
    (one with an offset in seconds, which orjson would round), microseconds or none, a capped
    price and synthetic fills or none."""
    def when() -> datetime:
        ts = draw(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)))
        return ts.replace(tzinfo=draw(st.sampled_from(_ZONES)), microsecond=draw(st.sampled_from((0, ts.microsecond))))

    limit = draw(st.one_of(st.none(), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2)))
    intent = OrderIntent(client_order_id=f"arc-{draw(st.integers(0, 10**6))}", symbol="BTC/USDT",
                         side=draw(st.sampled_from(("BUY", "SELL"))), order_type="MARKET" if limit is None else "LIMIT",
                         quantity=Decimal("0.004"), limit_price=limit, strategy_id=draw(st.sampled_from(("", "mm-1"))))
    rec = OrderRecord.from_intent(intent, "acc-1", adapter_id="paper",
                                  arrival_px=draw(st.one_of(st.none(), st.just(Decimal("39433.10")))))
    rec.created_ts = when()
    rec.price_capped_from = draw(st.one_of(st.none(), st.just(Decimal("39500.5"))))
    cause = st.text(max_size=12)
    for event in (E.RESERVED, E.SUBMITTED, E.ACCEPTED):
        rec.apply_event(event, cause=draw(cause), ts=when())
    if draw(st.booleans()):
        rec.apply_event(E.CANCEL_REQUESTED, cause=draw(cause), ts=when())
        rec.apply_event(E.CANCELED, cause=draw(cause), ts=when())
    else:
        for i, qty in enumerate(("0.001", "0.003")):
            rec.apply_fill(Fill(trade_id=f"t{i}", qty=Decimal(qty), price=Decimal("39433.62"), fee=Decimal("0.01"),
                                fee_currency="USDT", ts=datetime(2026, 12, 7, 9, 30, i, tzinfo=UTC)),
                           cause=draw(cause), ts=when())
    if draw(st.booleans()):
        rec.synthetic = [Fill(trade_id="syn-1", qty=Decimal("0.001"), price=Decimal("39433"), fee=Decimal(0),
                              fee_currency="USDT", ts=datetime(2026, 12, 7, 9, 30, tzinfo=UTC))]
    assert rec.status.is_terminal
    return rec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_archived_records())
def test_any_record_archives_to_the_same_content_and_restores_equal(rec: OrderRecord) -> None:
    """The archive text parses to what it held when every time was written by ``isoformat()`` (the
    layout every reader of ``order_archive`` knows), and the record restored from it equals the
    record archived (but for the overfill and anomaly notes and the reservation, not archived)."""
    text = archive_json(rec)
    expected = {
        "report": rec.snapshot().model_dump(mode="json"),
        "order_type": rec.order_type.value, "quantity": str(rec.quantity),
        "limit_price": None if rec.limit_price is None else str(rec.limit_price),
        "time_in_force": rec.time_in_force, "adapter_id": rec.adapter_id,
        "arrival_px": None if rec.arrival_px is None else str(rec.arrival_px), "notional": str(rec.notional),
        "price_capped_from": None if rec.price_capped_from is None else str(rec.price_capped_from),
        "synthetic": None if rec.synthetic is None else [f.model_dump(mode="json") for f in rec.synthetic],
        "created_ts": rec.created_ts.isoformat(),
        "prior": None if rec.lifecycle.prior is None else rec.lifecycle.prior.value,
        "transitions": [[t.seq, t.ts.isoformat(), t.from_status.value, t.to_status.value, t.cause] for t in rec.transitions],
    }
    assert json.loads(text) == expected
    back = restore_record(text)
    not_archived = {"overfills", "anomalies", "reserved_at_intake", "last_booking"}
    assert {f.name: getattr(back, f.name) for f in fields(rec) if f.name not in not_archived} == \
        {f.name: getattr(rec, f.name) for f in fields(rec) if f.name not in not_archived}
    assert archived_report(text) == rec.snapshot()
    assert [t[:1] + t[2:] for t in archived_transitions(text)] == [(t.seq, t.from_status.value, t.to_status.value, t.cause)
                                                                    for t in rec.transitions]
