"""Metrics over real HTTP, structured logging, and secrets never leaking (docs/DESIGN.md, docs/DESIGN.md, Testing)."""

from __future__ import annotations

import json
import socket
import urllib.request
from decimal import Decimal
from pathlib import Path

from loguru import logger

from actors import Runtime
from config import load_settings
from protocols import ExecutionContext, OrderIntent, Quote

SECRET = "sk-live-DO-NOT-LEAK-7f3a9c"


def _quote() -> Quote:
    return Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=Decimal("39432.99"), bid_size=Decimal("1"),
                 ask=Decimal("39433.62"), ask_size=Decimal("1"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _orders(rt: Runtime, n: int, prefix: str) -> list:
    ctx = ExecutionContext(mode="paper", account_id="obs")
    futures = [rt.submit(OrderIntent(client_order_id=f"{prefix}-{i}", symbol="BTC/USDT", side="BUY", order_type="MARKET",
                                     quantity=Decimal("0.001")), ctx) for i in range(n)]
    futures.append(rt.submit(OrderIntent(client_order_id=f"{prefix}-live", symbol="BTC/USDT", side="BUY", order_type="MARKET",
                                         quantity=Decimal("0.001")), ExecutionContext(mode="live", account_id="obs")))
    return [f.result(timeout=10) for f in futures]


def test_metrics_endpoint_serves_named_series_with_counts(tmp_path: Path) -> None:
    port = _free_port()
    settings = load_settings("test", state_dir=str(tmp_path), journal={"enabled": False}, metrics={"port": port})
    with Runtime.start(settings) as rt:
        rt.on_market(_quote())
        reports = _orders(rt, 5, "m")
        assert [r.status.value for r in reports] == ["FILLED"] * 5 + ["DENIED"]
        rt.flush()
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in body.splitlines() if line and not line.startswith("#")}
    assert lines['exec_orders_total{adapter="paper",status="FILLED"}'] == 5.0
    assert lines['exec_reject_total{reason="E_EXEC_POLICY_BLOCKED"}'] == 1.0
    assert lines['exec_latency_ms_count{adapter="paper"}'] == 5.0
    assert lines['exec_circuit_state{adapter="paper"}'] == 0.0
    assert lines["exec_journal_batch_size_count"] == 0.0  # an in-memory store has no transactions
    assert "# TYPE exec_restarts_total counter" in body and "# TYPE exec_replays_total counter" in body


def test_journal_batch_size_counts_durable_transactions(tmp_path: Path) -> None:
    settings = load_settings("test", state_dir=str(tmp_path), journal={"enabled": True})
    with Runtime.start(settings) as rt:
        rt.on_market(_quote())
        assert [r.status.value for r in _orders(rt, 3, "j")] == ["FILLED"] * 3 + ["DENIED"]
        rt.flush()
        body = rt.metrics.exposition().decode()
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in body.splitlines() if line and not line.startswith("#")}
    assert 1.0 <= lines["exec_journal_batch_size_count"] <= 3.0  # one transaction per group of claims
    assert lines["exec_journal_batch_size_sum"] == 3.0  # the three claims (the live one is never claimed)


def test_secret_never_appears_in_logs_audit_reports_or_journal(tmp_path: Path) -> None:
    json_log = tmp_path / "log.jsonl"
    captured: list[str] = []
    handler = logger.add(lambda message: captured.append(str(message)), level="DEBUG")
    try:
        settings = load_settings("test", state_dir=str(tmp_path / "state"), journal={"enabled": True},
                                 logging={"level": "DEBUG", "json_path": str(json_log)}, venue_api_key=SECRET)
        assert SECRET not in repr(settings) and SECRET not in json.dumps(settings.redacted_dict())
        with Runtime.start(settings) as rt:
            rt.on_market(_quote())
            reports = _orders(rt, 3, "s")
            rt.flush()
            events_blob = json.dumps([r.model_dump(mode="json") for r in rt.orders()])
    finally:
        logger.remove(handler)
    assert captured, "the DEBUG sink received nothing: the test would prove nothing"
    assert any("s-0" in line for line in captured), "per-order detail is logged at DEBUG"
    assert json_log.exists() and json_log.stat().st_size > 0
    haystacks = {
        "log lines": "\n".join(captured),
        "json log": json_log.read_text(),
        "reports": "\n".join(r.model_dump_json() for r in reports) + events_blob,
        "audit": (tmp_path / "state" / "audit.jsonl").read_text(),
        "journal": (tmp_path / "state" / "journal.sqlite").read_bytes().decode("latin-1"),
        "ledger journal": (tmp_path / "state" / "ledger.sqlite").read_bytes().decode("latin-1"),
    }
    for where, text in haystacks.items():
        assert SECRET not in text, f"the secret leaked into {where}"


def test_unknown_symbol_is_a_validation_error_at_intake(tmp_path: Path) -> None:
    settings = load_settings("test", state_dir=str(tmp_path), journal={"enabled": False})
    with Runtime.start(settings) as rt:
        report = rt.submit(OrderIntent(client_order_id="doge-1", symbol="DOGE/USDT", side="BUY", order_type="MARKET",
                                       quantity=Decimal("10")), ExecutionContext(mode="paper", account_id="a")).result(timeout=5)
        assert report.status.value == "DENIED" and report.error.code.value == "E_EXEC_VALIDATION"
        assert "symbol" in report.error.message and "DOGE/USDT" in report.error.message
        assert rt.order("doge-1") is None, "nothing is recorded for an intent that failed validation"
        assert rt.venue("paper").submission_counts() == {}
