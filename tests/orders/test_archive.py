"""An archived ledger record (actors/orders/archive.py) comes back as it was archived."""

from __future__ import annotations

from decimal import Decimal

from actors.orders.archive import archive_json, archived_report, archived_transitions, restore_record
from actors.orders.books import OrderRecord
from protocols import Fill, OrderEventType, OrderIntent

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
