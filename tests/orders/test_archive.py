"""An archived ledger record (actors/orders/archive.py) comes back as it was archived."""

from __future__ import annotations

import json
from decimal import Decimal

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
