"""The order table, the ledger's lifecycle part (actors/orders/lifecycle.py; docs/DESIGN.md
"Bounded memory"): which terminal orders leave memory, and the totals that stay when they do."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from actors.orders.books import OrderRecord
from actors.orders.lifecycle import OrderTable
from protocols import Fill, OrderStatus
from protocols import OrderEventType as E

T0 = datetime(2021, 1, 8, tzinfo=UTC)


def filled(cl_id: str) -> OrderRecord:
    rec = OrderRecord(client_order_id=cl_id, account_id="a1", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                      quantity=D("1"), limit_price=D("100"))
    for ev in (E.RESERVED, E.SUBMITTED, E.ACCEPTED):
        rec.apply_event(ev, cause="test")
    rec.apply_fill(Fill(trade_id=f"t-{cl_id}", qty=D("1"), price=D("100"), fee=D("0"), fee_currency="USDT", ts=T0))
    assert rec.status is OrderStatus.FILLED
    return rec


def test_the_oldest_terminal_orders_beyond_the_limit_are_due_in_batches() -> None:
    table = OrderTable(keep_terminal=4)
    recs = [filled(f"o{i}") for i in range(7)]
    for rec in recs[:5]:
        table.add(rec)
        table.changed_terminal(rec)
    assert table.archive_due(batch=256) == []  # 1 over: less than a batch (a quarter of the limit + 1 = 2)
    assert [r.client_order_id for r in table.archive_due(batch=256, everything=True)] == ["o0"]  # at restore: all
    for rec in recs[5:]:
        table.add(rec)
        table.changed_terminal(rec)
    assert [r.client_order_id for r in table.archive_due(batch=256)] == ["o0", "o1", "o2"]
    table.changed_terminal(recs[0])  # o0 changed again: now the newest terminal order
    assert [r.client_order_id for r in table.archive_due(batch=256)] == ["o1", "o2", "o3"]

def test_a_retired_order_leaves_memory_but_not_the_totals_and_comes_back_whole() -> None:
    table = OrderTable(keep_terminal=0)
    rec = filled("o1")
    table.add(rec)
    table.changed_terminal(rec)
    table.retire(rec, "a1")
    assert table.get("o1") is None and table.total() == 1 and table.archived == 1
    assert table.retired_by_status == {"FILLED": 1} and table.retired_fills == 1
    table.bring_back(rec, "a1")
    assert table.get("o1") is rec and table.total() == 1 and table.archived == 0
    assert table.retired_fills == 0 and table.archive_current("o1")
    with pytest.raises(ValueError, match="keep_terminal"):
        OrderTable(keep_terminal=-1)
