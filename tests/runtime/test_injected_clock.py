"""Domain timestamps come from the runtime's injected clock (docs/DESIGN.md "Testing": fake clocks
for every timer): a runtime on a ``FakeClock`` stamps every transition, report, event, audit line
and venue receipt with the fake time, so tests are deterministic and a replay is reproducible.
Fills keep the venue's own time (``Fill.ts``: a venue fact, FIX TransactTime), and latencies stay
on the monotonic counter (µs spans, not timestamps)."""

from __future__ import annotations

import json
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

from _adapters import TestAdapter
from conftest import ObservableClock, child, ctx, limit, market, quote, registry_of, wait_until

from actors import FakeClock
from actors.journal.sqlite import SQLiteJournal
from actors.orders.hooks import HookDenial
from actors.orders.messages import CancelOrder, SetTradingState
from actors.runtime.recovery import recover
from protocols import ErrorCode, ExecutionReport, OrderStatus

#: far from any wall-clock time this suite runs at: a wall-clock stamp cannot equal it by chance
T = datetime(2031, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def _deny_big(check) -> HookDenial | None:
    return HookDenial("max_qty", "too big") if check.intent.quantity > 1 else None


def test_transitions_reports_events_audit_and_receipts_carry_the_fake_time(make_runtime) -> None:
    clock = FakeClock(start=100.0, wall_start=T)
    rt = make_runtime(clock=clock, durable=True, hooks=[_deny_big], retention={"keep_receipts": True})
    events: list = []
    rt.subscribe(events.append)
    rt.on_market(quote())

    filled = rt.submit(market("clk-fill"), ctx()).result(timeout=10)
    denied = rt.submit(market("clk-deny", qty="5"), ctx()).result(timeout=10)
    unknown_symbol = rt.submit(market("clk-bad", symbol="NOPE/USDT"), ctx()).result(timeout=10)
    resting = rt.submit(limit("clk-rest", price="39000"), ctx()).result(timeout=10)
    canceled = rt.cancel("clk-rest", "acc-1").result(timeout=10)
    not_an_order = rt.cancel("clk-none", "acc-1").result(timeout=10)
    replay = rt.submit(market("clk-fill"), ctx()).result(timeout=10)
    assert (filled.status, denied.status, unknown_symbol.status, resting.status, canceled.status) == (
        OrderStatus.FILLED, OrderStatus.DENIED, OrderStatus.DENIED, OrderStatus.ACCEPTED, OrderStatus.CANCELED)
    assert replay.replay
    rt.flush(timeout=10)

    replies = [filled, denied, unknown_symbol, resting, canceled, not_an_order, replay]
    assert [r.ts for r in replies] == [T] * len(replies)
    stored = rt.orders()
    assert {r.client_order_id for r in stored} >= {"clk-fill", "clk-deny", "clk-rest"}
    assert {r.ts for r in stored} == {T}

    transitions = [line for cl in ("clk-fill", "clk-deny", "clk-rest") for line in rt.history(cl)]
    assert {line.kind for line in transitions} >= {"transition", "fill"}
    assert {line.ts for line in transitions} == {T}
    assert {line.data["ts"] for line in transitions if line.kind == "transition"} == {T.isoformat()}
    assert len([line for line in transitions if line.kind == "transition"]) >= 8

    audit = [json.loads(x) for x in (rt.settings.state_dir / "audit.jsonl").read_text().splitlines()]
    assert audit and {line["ts"] for line in audit} == {"2031-03-04T05:06:07.890000Z"}

    receipts = [json.loads(x) for x in (rt.settings.state_dir / "receipts.jsonl").read_text().splitlines()]
    assert receipts and {r["ts"] for r in receipts} == {"2031-03-04T05:06:07.890000Z"}

    wait_until(lambda: any(e.name == "OrderCanceled" for e in events), what="the cancel's event")
    assert {e.name for e in events} >= {"OrderFilled", "OrderDenied", "OrderCanceled"}
    assert {e.ts for e in events} == {T}
    assert {e.report.ts for e in events if getattr(e, "report", None) is not None} == {T}


def test_a_transition_after_the_clock_moved_carries_the_new_time(make_runtime) -> None:
    clock = FakeClock(wall_start=T)
    rt = make_runtime(clock=clock, durable=True)
    rt.on_market(quote())
    assert rt.submit(limit("clk-later", price="39000"), ctx()).result(timeout=10).status is OrderStatus.ACCEPTED
    rt.flush(timeout=10)
    clock.advance(42.5)
    rt.cancel("clk-later", "acc-1").result(timeout=10)
    rt.flush(timeout=10)
    lines = [line for line in rt.history("clk-later") if line.kind == "transition"]
    later = datetime.fromtimestamp(T.timestamp() + 42.5, UTC)
    assert [(line.data["to"], line.ts) for line in lines][-2:] == [("PENDING_CANCEL", later), ("CANCELED", later)]
    assert {line.ts for line in lines[:-2]} == {T}
    assert rt.order("clk-later").ts == later


def test_recoverys_cached_reports_carry_the_fake_time(make_runtime, settings_factory) -> None:
    """Recovery writes the report a retry of an id in doubt replays (the venue's state it found, or
    FAILED "never delivered"), stamped with the runtime's clock as every report. Run on the journal
    files a runtime left with two orders in doubt (the restarted ledger then completes the same
    ids with its own report, so what recovery wrote is read from its own run)."""
    settings = settings_factory(durable=True, routing={"policy": {"paper": "test"}})
    venue = TestAdapter(script=["ambiguous_sent", "ambiguous"], default="fill")  # one booked, one never delivered
    rt = make_runtime(settings, registry=registry_of(venue), clock=FakeClock(wall_start=datetime(2030, 1, 1, tzinfo=UTC)))
    for cl in ("clk-rec-held", "clk-rec-lost"):
        assert rt.submit(limit(cl), ctx()).result(timeout=10).status is OrderStatus.UNKNOWN
    rt.stop()

    clock = FakeClock(wall_start=T)
    journal, ledger_journal = SQLiteJournal(settings.state_dir / "journal.sqlite"), SQLiteJournal(settings.state_dir / "ledger.sqlite")
    try:
        report = recover(journal, {"test": venue}, ledger_journal, wall=lambda: clock.now().timestamp(), now=clock.now)
        records = {r.client_order_id: r for r in journal.load_records()}
    finally:
        journal.close()
        ledger_journal.close()
    assert report.counts() == {"reconciled": 1, "never_delivered": 1}
    cached = {cl: ExecutionReport.model_validate_json(records[cl].report_json) for cl in ("clk-rec-held", "clk-rec-lost")}
    assert (cached["clk-rec-held"].status, cached["clk-rec-lost"].status) == (OrderStatus.FILLED, OrderStatus.FAILED)
    assert {r.ts for r in cached.values()} == {T}


def test_crash_answers_carry_the_fake_time(make_runtime) -> None:
    """The kernel answers the reply future of a message whose handler raised (the actor crashes),
    and the supervisor those kept for a child it gave up: both with the runtime's clock."""
    clock = ObservableClock(wall_start=T)
    rt = make_runtime(registry=registry_of(TestAdapter(default="fill")), clock=clock, routing={"policy": {"paper": "test"}})
    rt.on_market(quote())
    crashed: Future = Future()  # an unhashable adapter id makes the router's handler raise: the router crashes
    rt.router.tell(CancelOrder("clk-x", "acc-1", crashed, 0, adapter_id=["unhashable"]))  # type: ignore[arg-type]
    report = crashed.result(timeout=10)
    assert report.error.code is ErrorCode.E_EXEC_INTERNAL and report.ts == T

    rt.ledger.tell(SetTradingState("BOGUS"))  # the ledger crashes; without a journal it is given up
    wait_until(lambda: child(rt, "ledger").state == "restarting", what="the ledger restarting")
    held = rt.submit(market("clk-held"), ctx())  # kept for the ledger, answered when it is given up
    clock.wait_timer(lambda delay: delay < 1.0, what="the restart timer of the ledger")
    clock.advance(1.0)
    wait_until(lambda: child(rt, "ledger").state == "failed", what="the ledger given up")
    report = held.result(timeout=10)
    assert report.error.code is ErrorCode.E_EXEC_INTERNAL and report.ts == T + timedelta(seconds=1)
