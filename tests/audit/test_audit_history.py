"""A gapless audit (seed 004: NEW → … → FILLED|FAILED without gaps): every attempt and its error,
reject reasons, route decisions, risk denials with their rule, slippage caps and guard denials are
in the audit log; ``Runtime.history`` and ``run.py audit show`` read them back."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from _adapters import TestAdapter
from conftest import ObservableClock, ctx, limit, market, quote, registry_of, settle

from actors.audit.log import read_records, verify
from protocols import OrderStatus

ROOT = Path(__file__).resolve().parents[2]
RETRY_MAX = 0.5


def events(history) -> list[str]:
    return [r.event for r in history]


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def test_retried_order_history_shows_every_attempt_and_error(make_runtime, clock) -> None:
    venue = TestAdapter(script=["not_delivered", "not_delivered"], default="fill")
    rt = make_runtime(registry=registry_of(venue), clock=clock, durable=True, routing={"policy": {"paper": "test"}},
                      timeouts={"attempt_s": 30.0, "deadline_s": 300.0}, reconcile={"interval_s": 1.0, "quiet_threshold_s": 2.5})
    fut = rt.submit(limit("au-retry"), ctx())
    for attempt in (1, 2):
        assert venue.wait_entered(attempt)
        clock.wait_timer(lambda d: d < RETRY_MAX, what=f"retry timer after attempt {attempt}")
        clock.advance(RETRY_MAX)
    assert fut.result(timeout=5).status is OrderStatus.FILLED
    settle(rt)
    history = rt.history("au-retry")
    assert events(history)[0] == "RESERVED"
    first = history[0].data
    assert (first["route_id"], first["adapter_id"], first["symbol"], first["side"]) == ("route_test", "test", "BTC/USDT", "BUY")
    assert first["routing_reason"]
    failed = [r.data for r in history if r.kind == "attempt_failed"]
    assert [f["attempt"] for f in failed] == [1, 2]
    assert all(f["code"] == "E_EXEC_NETWORK" and f["error"] and f["retry_in_s"] > 0 for f in failed)
    assert [r.data["attempt"] for r in history if r.kind == "attempt"] == [2, 3]
    assert events(history) == ["RESERVED", "SUBMITTING", "attempt_failed", "attempt", "attempt_failed", "attempt",
                               "fill", "FILLED"]
    assert [r.seq for r in history] == sorted(r.seq for r in history)
    assert verify(rt.audit_path).ok


def test_reject_reason_risk_rule_and_guard_denials_are_audited(make_runtime) -> None:
    venue = TestAdapter(script=["reject"], default="fill")
    rt = make_runtime(registry=registry_of(venue), durable=True, routing={"policy": {"paper": "test"}})
    rt.on_market(quote())
    assert rt.submit(limit("au-rej"), ctx()).result(timeout=5).status is OrderStatus.REJECTED
    assert rt.submit(limit("au-risk", qty="0.0001"), ctx()).result(timeout=5).status is OrderStatus.DENIED  # < min notional
    assert rt.submit(limit("au-rej", qty="0.002"), ctx()).result(timeout=5).error.code.value == "E_EXEC_IDEMPOTENCY_CONFLICT"
    settle(rt)
    rejected = [r for r in rt.history("au-rej") if r.event == "REJECTED"]
    assert len(rejected) == 1
    assert rejected[0].data["code"] == "E_EXEC_BROKER_REJECTED" and "insufficient balance" in rejected[0].data["reason"]
    denied = [r for r in rt.history("au-risk") if r.event == "DENIED"]
    assert denied[0].data["cause"] == "risk: min_notional" and "min_notional" in denied[0].data["reason"]
    assert denied[0].data["code"] == "E_EXEC_RISK_DENIED"
    conflict = [r for r in rt.history("au-rej") if r.kind == "denied"]
    assert conflict and conflict[0].data["code"] == "E_EXEC_IDEMPOTENCY_CONFLICT"


def test_slippage_cap_is_audited_with_the_original_limit(make_runtime) -> None:
    rt = make_runtime(durable=True, risk={"slippage_action": "cap", "slippage_bps": "20"})
    rt.on_market(quote())
    report = rt.submit(limit("au-cap", price="41000.00"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.FILLED
    settle(rt)
    reserved = next(r for r in rt.history("au-cap") if r.event == "RESERVED").data
    assert reserved["slippage_cap"]["limit_price"] == "41000.00"
    assert Decimal(reserved["slippage_cap"]["capped_to"]) < Decimal("41000")
    assert reserved["limit_price"] == reserved["slippage_cap"]["capped_to"]


def test_history_without_a_durable_journal_comes_from_memory(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    rt.submit(market("au-mem"), ctx()).result(timeout=5)
    settle(rt)
    history = rt.history("au-mem")
    assert events(history) == ["RESERVED", "SUBMITTING", "fill", "FILLED"]
    assert [r.seq for r in history] == [0, 0, 0, 0]
    assert history[0].data["route_id"] == "route_paper" and any(r.kind == "fill" for r in history)
    assert rt.history("never-seen") == ()


def test_read_records_filters_by_order_time_and_event(make_runtime) -> None:
    rt = make_runtime(durable=True)
    rt.on_market(quote())
    for cl in ("au-f1", "au-f2"):
        rt.submit(market(cl), ctx()).result(timeout=5)
    rt.halt()
    settle(rt)
    rt.flush()
    rt.history("au-f1")  # flushes the audit log
    path = rt.audit_path
    assert {r.client_order_id for r in read_records(path, event="filled")} == {"au-f1", "au-f2"}
    assert [r.kind for r in read_records(path, event="trading_state")] == ["trading_state"]
    fills = list(read_records(path, client_order_id="au-f2", event="fill"))
    assert len(fills) == 1 and fills[0].data["trade_id"]
    every = list(read_records(path))
    later = list(read_records(path, since=every[-1].ts))
    assert later and all(r.ts >= every[-1].ts for r in later)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_audit_show_cli(make_runtime) -> None:
    rt = make_runtime(durable=True)
    rt.on_market(quote())
    rt.submit(market("au-cli-1"), ctx()).result(timeout=5)
    rt.submit(limit("au-cli-2", qty="0.0001"), ctx()).result(timeout=5)
    settle(rt)
    path = rt.audit_path
    rt.stop()
    proc = _cli("show", str(path), "--order", "au-cli-1", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = json.loads(proc.stdout)["lines"]
    assert lines and {x["data"]["client_order_id"] for x in lines} == {"au-cli-1"}
    assert [x["data"]["to"] for x in lines if x["kind"] == "transition"][-1] == "FILLED"
    proc = _cli("show", str(path), "--event", "DENIED")
    assert proc.returncode == 0 and "au-cli-2" in proc.stdout and "au-cli-1" not in proc.stdout
    assert "risk: min_notional" in proc.stdout
    proc = _cli("show", str(path), "--since", "2999-01-01")
    assert proc.returncode == 0 and proc.stdout.strip() == "" and "0 line(s)" in proc.stderr
    bad = _cli("show", str(path), "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("show", str(path.parent / "nope.jsonl"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_guard_actions_that_do_not_end_an_order_are_audited(make_runtime, clock) -> None:
    rt = make_runtime(durable=True, clock=clock, throttle={"max_calls": 1, "window_s": 60.0},
                      reconcile={"interval_s": 1.0, "quiet_threshold_s": 2.5})
    rt.on_market(quote())
    assert rt.submit(market("au-g1"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    replay = rt.submit(market("au-g1"), ctx()).result(timeout=5)       # the same intent again: answered from the journal
    assert replay.replay
    queued = rt.submit(market("au-g2"), ctx())                          # over the rate limit: waits for a slot
    clock.wait_timer(lambda d: 0 < d <= 60.0 and d != 1.0, what="throttle timer")
    settle(rt)
    guard = [r.data for r in rt.history("au-g2") if r.kind == "guard"]
    assert [(g["guard"], g["action"]) for g in guard] == [("throttle", "queued")] and "rate limit" in guard[0]["detail"]
    clock.advance(61.0)
    assert queued.result(timeout=5).status is OrderStatus.FILLED
    settle(rt)
    replayed = [r.data for r in rt.history("au-g1") if r.kind == "guard"]
    assert [(g["guard"], g["action"]) for g in replayed] == [("idempotency", "replayed")] and "FILLED" in replayed[0]["detail"]
    assert events(rt.history("au-g2"))[-1] == "FILLED"
