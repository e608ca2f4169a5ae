"""One journal row the ledger journal refuses for its values must not halt trading for ever.

A venue's event can carry a value the report models accept and the journal cannot hold: here a
fill and a venue order id whose text holds a lone UTF-16 surrogate (what ``json.loads('"\\ud800"')``
gives for a JSON venue's escaped text), which SQLite refuses to encode. The venue boundary escapes
such text now (tests/execution/test_venue_text.py); the event is handed to the ledger past it, as
any value that got past every check would be, to hold the ledger's own guard. Before, the ledger's batch
failed at every retry and trading stayed HALTED; now the batch is written row by row, a refused
transition without its report fields and a refused fill not at all, the order is named (a
``JournalRowRefused`` event, a ``journal_row_refused`` audit line, an error log) and trading goes
on (docs/DESIGN.md "What written means, per record, and what happens when a write fails")."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, child, ctx, limit, registry_of, wait_until

from actors import FakeClock
from actors.audit.log import verify
from actors.kernel.base import tell
from actors.orders.messages import SetTradingState, VenueEventReceived
from protocols import DurableWriteFailed, Fill, JournalRowRefused, Liquidity, OrderStatus, VenueEvent

BAD = "US\ud800"


def journal_rows(path, table: str, client_order_id: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        if table == "fills":
            return conn.execute("SELECT trade_id FROM fills WHERE client_order_id = ?", (client_order_id,)).fetchall()
        return conn.execute("SELECT to_status, venue_order_id FROM order_events WHERE client_order_id = ? ORDER BY seq",
                            (client_order_id,)).fetchall()
    finally:
        conn.close()


def poison_a_fill(rt, venue, events: EventLog) -> None:
    """Order "poison" filled by a venue event whose fill and venue order id the journal refuses
    (``fee_currency`` and ``venue_order_id`` hold a lone surrogate). The event is handed to the
    ledger past the venue boundary (which escapes such text: tests/execution/test_venue_text.py),
    as a value that got past every check would be: the ledger's own guard is what is tested."""
    assert rt.submit(limit("poison"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    rt.flush()
    resting = venue.fetch_order("poison")
    fill = Fill(trade_id="t-poison", qty=resting.quantity, price=Decimal("100"), fee=Decimal("0.01"), fee_currency=BAD,
                liquidity=Liquidity.TAKER, ts=resting.ts)
    filled = resting.model_copy(update={"venue_order_id": "V-" + BAD, "fills": (fill,), "cum_qty": resting.quantity,
                                        "leaves_qty": Decimal(0), "avg_px": Decimal("100"), "status": OrderStatus.FILLED})
    tell(rt.ledger, VenueEventReceived(VenueEvent(adapter_id=venue.adapter_id, kind="fill", state=filled, fill=fill)))
    wait_until(lambda: rt.order("poison").status is OrderStatus.FILLED, what="the venue's fill applied")
    rt.flush()
    events.wait_for(lambda evs: any(e.kind == "fill" for e in evs if isinstance(e, JournalRowRefused)), what="JournalRowRefused")


def test_a_row_the_journal_refuses_is_left_out_and_named_and_trading_goes_on(settings_factory, make_runtime) -> None:
    clock = FakeClock()
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, routing={"policy": {"paper": "test"}})
    venue = TestAdapter(script=["fill", "ambiguous_sent", "fill"], default="accept")
    rt = make_runtime(settings, registry=registry_of(venue), clock=clock)
    events = EventLog()
    rt.subscribe(events, (DurableWriteFailed, JournalRowRefused))
    assert rt.submit(limit("before"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert rt.health().refused_rows == {}  # none refused yet
    # booked, but the answer was lost: UNKNOWN, no venue order id yet (it comes with the venue's event); the venue's
    # fill then carries values the journal refuses
    poison_a_fill(rt, venue, events)
    clock.advance(10.0)  # a retry timer, had one been armed, has run
    rt.flush()
    health = rt.health()
    assert health.trading_state == "ACTIVE" and health.durable_writes == {}, health
    # an operator sees the refused rows in health(): how many, and the last one's order and reason
    assert health.refused_rows["count"] == len(events.of(JournalRowRefused)) >= 2, health.refused_rows
    assert health.refused_rows["last_client_order_id"] == "poison"
    assert health.refused_rows["last_reason"] == events.of(JournalRowRefused)[-1].reason
    assert "UnicodeEncodeError" in health.refused_rows["last_reason"]
    assert not events.of(DurableWriteFailed)
    refused = events.of(JournalRowRefused)
    assert {e.client_order_id for e in refused} == {"poison"} and all("UnicodeEncodeError" in e.reason for e in refused)
    assert {e.kind for e in refused} == {"transition", "fill"}
    assert all(e.reason.endswith("written without its report fields") for e in refused if e.kind == "transition")
    path = rt.ledger_journal_path
    # the order's status history is whole (its last row without the venue order id it carried); the fill is not there
    assert journal_rows(path, "order_events", "poison")[-1] == ("FILLED", None)
    assert journal_rows(path, "fills", "poison") == []
    assert journal_rows(path, "order_events", "before")[-1][0] == "FILLED" and len(journal_rows(path, "fills", "before")) == 1
    assert rt.submit(limit("after"), ctx()).result(timeout=5).status is OrderStatus.FILLED  # trading goes on
    rt.flush()
    assert journal_rows(path, "order_events", "after")[-1][0] == "FILLED"
    audit = rt.audit_path
    rt.stop()
    result = verify(audit)
    assert result.ok, result
    refused_lines = [line for line in audit.read_text().splitlines() if '"journal_row_refused"' in line]
    assert refused_lines and all('"client_order_id":"poison"' in line for line in refused_lines)


def test_refused_rows_degrade_health_outlive_a_ledger_restart_and_clear_when_acknowledged(settings_factory, make_runtime) -> None:
    """A refused row is data the runtime could not keep: ``healthy`` is False while it is listed,
    a ledger restart keeps the list (its handover), so does a runtime restart (``refused.json`` in
    the state dir), and only an operator's ``acknowledge_refused`` clears it (a
    ``refused_acknowledged`` audit line). Before, trading went on with ``healthy`` True and the
    ledger's next generation, or the next runtime, started with no refused row."""
    clock = ObservableClock()
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, routing={"policy": {"paper": "test"}})
    venue = TestAdapter(script=["ambiguous_sent", "fill"], default="accept")
    rt = make_runtime(settings, registry=registry_of(venue), clock=clock)
    events = EventLog()
    rt.subscribe(events, JournalRowRefused)
    assert rt.health().healthy
    poison_a_fill(rt, venue, events)
    health = rt.health()
    assert health.trading_state == "ACTIVE" and health.refused_rows["count"] >= 2, health
    assert not health.healthy and health.refused_claims == {}
    old = rt.ledger
    tell(old, SetTradingState("BOGUS"))  # the ledger's handler raises: the supervisor restarts it from the journal
    wait_until(lambda: child(rt, "ledger").state == "restarting", what="the ledger restarting")
    clock.wait_timer(lambda delay: delay < 1.0, what="the ledger's restart timer")
    clock.advance(1.0)
    wait_until(lambda: child(rt, "ledger").state == "running" and rt.ledger is not old, what="the ledger running again")
    again = rt.health()
    assert child(rt, "ledger").generation == 2 and again.trading_state == "ACTIVE", again
    assert again.refused_rows == health.refused_rows and not again.healthy
    audit = rt.audit_path
    rt.stop()
    # a runtime restart keeps them too (state_dir/refused.json), until an operator acknowledges them
    rt = make_runtime(settings, registry=registry_of(TestAdapter(default="accept")), clock=FakeClock())
    restarted = rt.health()
    assert restarted.refused_rows == health.refused_rows and not restarted.healthy, restarted
    assert rt.acknowledge_refused() == (health.refused_rows, {}, {})  # rows, claims, shared budget
    cleared = rt.health()
    assert cleared.refused_rows == {} and cleared.healthy, cleared
    assert rt.acknowledge_refused() == ({}, {}, {})  # nothing left: no second audit line
    rt.stop()
    rt = make_runtime(settings, registry=registry_of(TestAdapter(default="accept")), clock=FakeClock())
    assert rt.health().refused_rows == {} and rt.health().healthy  # acknowledged stays acknowledged
    rt.stop()
    (Path(settings.state_dir) / "refused.json").write_text("{not json")  # damaged: logged, the runtime starts
    rt = make_runtime(settings, registry=registry_of(TestAdapter(default="accept")), clock=FakeClock())
    assert rt.health().refused_rows == {}
    rt.stop()
    assert verify(audit).ok
    acknowledged = [line for line in audit.read_text().splitlines() if '"refused_acknowledged"' in line]
    assert len(acknowledged) == 1 and f'"rows":{health.refused_rows["count"]}' in acknowledged[0]

