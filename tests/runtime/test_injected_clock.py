"""Domain timestamps come from the runtime's injected clock (docs/DESIGN.md "Testing": fake clocks
for every timer): a runtime on a ``FakeClock`` stamps every transition, report, event, audit line
and venue receipt with the fake time, so tests are deterministic and a replay is reproducible.
Fills keep the venue's own time (``Fill.ts``: a venue fact, FIX TransactTime), and latencies stay
on the monotonic counter (µs spans, not timestamps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conftest import ctx, limit, market, quote, wait_until

from actors import FakeClock
from actors.orders.hooks import HookDenial
from protocols import OrderStatus

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
