"""Alerts (seed 001 "Alerts: reject spike, order submit latency spike"): the runtime's RejectRateSpiked /
LatencySpiked / AlertCleared events over a window on the injected clock, and the Prometheus
alerting rules in docs/alerts.rules.yml (checked and unit-tested with promtool)."""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, ctx, limit, registry_of, settle

from actors.events.alerts import AlertMonitor
from actors.observability.metrics import Metrics
from protocols import AlertCleared, ExecutionReport, LatencySpiked, OrderStatus, RejectRateSpiked

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "alerts.rules.yml"
TICK = 5.0


def names(events) -> list[str]:
    return [e.name for e in events]


# --------------------------------------------------------------------------- AlertMonitor


def test_reject_rate_fires_once_per_episode_and_clears() -> None:
    mon = AlertMonitor(window_s=60, min_orders=4, reject_rate=0.5, latency_p99_us=10_000)
    for t in range(3):
        mon.record_outcome(float(t), rejected=True)
    assert mon.evaluate(3.0) == []                      # 3 < min_orders: no rate yet
    mon.record_outcome(3.0, rejected=True)
    (spike,) = mon.evaluate(4.0)
    assert isinstance(spike, RejectRateSpiked)
    assert (spike.reject_rate, spike.threshold, spike.orders, spike.rejected, spike.window_s) == (1.0, 0.5, 4, 4, 60.0)
    assert mon.evaluate(5.0) == [] and mon.active == {"reject_rate"}
    for t in range(6, 10):
        mon.record_outcome(float(t), rejected=False)
    (cleared,) = mon.evaluate(10.0)                      # 4 of 8: 0.5 is not above 0.5
    assert isinstance(cleared, AlertCleared) and (cleared.alert, cleared.value, cleared.orders) == ("reject_rate", 0.5, 8)
    assert not mon.idle
    assert mon.evaluate(100.0) == [] and mon.idle        # the window emptied


def test_latency_p99_is_the_nearest_rank_over_the_window() -> None:
    mon = AlertMonitor(window_s=10, min_orders=100, reject_rate=1.0, latency_p99_us=1000)
    for _i in range(99):
        mon.record_latency(0.0, 100)
    mon.record_latency(0.0, 5000)                       # 1 slow of 100: p99 (rank 99) is still 100
    assert mon.evaluate(1.0) == []
    mon.record_latency(1.0, 5000)                       # 2 of 101: rank ceil(99.99) = 100 is slow
    (spike,) = mon.evaluate(2.0)
    assert isinstance(spike, LatencySpiked) and (spike.p99_us, spike.threshold_us, spike.orders) == (5000, 1000, 101)
    (cleared,) = mon.evaluate(10.5)                      # the first 100 samples left the window
    assert isinstance(cleared, AlertCleared) and cleared.alert == "latency_p99" and cleared.orders == 1


def test_bad_alert_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="alerts"):
        AlertMonitor(window_s=0, min_orders=1, reject_rate=0.5, latency_p99_us=1)


# --------------------------------------------------------------------------- in the runtime


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def is_tick(delay: float) -> bool:
    return delay == TICK


def test_runtime_raises_and_clears_the_reject_spike_on_its_clock(make_runtime, clock) -> None:
    venue = TestAdapter(default="reject")
    rt = make_runtime(registry=registry_of(venue), clock=clock, durable=True, routing={"policy": {"paper": "test"}},
                      alerts={"window_s": 60, "interval_s": TICK, "min_orders": 4, "reject_rate": 0.5},
                      reconcile={"interval_s": 1.0, "quiet_threshold_s": 2.5})
    log = EventLog()
    rt.subscribe(log)
    for i in range(4):
        assert rt.submit(limit(f"al-{i}"), ctx()).result(timeout=5).status is OrderStatus.REJECTED
    settle(rt)
    clock.wait_timer(is_tick, what="alert timer")
    clock.advance(TICK)
    (spike,) = log.wait_for(lambda events: [e for e in events if isinstance(e, RejectRateSpiked)])
    assert (spike.orders, spike.rejected, spike.reject_rate) == (4, 4, 1.0)
    settle(rt)
    clock.wait_timer(is_tick, what="alert timer re-armed while the alert is active")
    clock.advance(60.0)                                  # the window empties: the alert ends
    log.wait_for(lambda events: [e for e in events if isinstance(e, AlertCleared)])
    settle(rt)
    assert len(log.of(RejectRateSpiked)) == 1
    assert clock.live_timers(is_tick) == 0                # nothing left to watch: the timer stops
    lines = [r.data["event"] for r in _audit_lines(rt) if r.kind == "alert"]
    assert lines == ["RejectRateSpiked", "AlertCleared"]


def _audit_lines(rt):
    from actors.audit.log import read_records

    rt.history("flush")  # flushes the audit log
    return list(read_records(rt.audit_path))


def test_runtime_raises_the_latency_spike(make_runtime, clock) -> None:
    venue = TestAdapter(default="fill", price=Decimal("39433.62"))
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}},
                      alerts={"interval_s": TICK, "min_orders": 3, "latency_p99_us": 1},
                      reconcile={"interval_s": 1.0, "quiet_threshold_s": 2.5})
    log = EventLog()
    rt.subscribe(log)
    for i in range(3):
        assert rt.submit(limit(f"lat-{i}"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    settle(rt)
    clock.wait_timer(is_tick, what="alert timer")
    clock.advance(TICK)
    (spike,) = log.wait_for(lambda events: [e for e in events if isinstance(e, LatencySpiked)])
    assert spike.orders == 3 and spike.p99_us > spike.threshold_us == 1
    assert not log.of(RejectRateSpiked)


# --------------------------------------------------------------------------- Prometheus rules


def test_rules_name_only_metrics_the_runtime_exports() -> None:
    m = Metrics()
    m.order_finished("paper", ExecutionReport(client_order_id="x", status=OrderStatus.FILLED, latency_us=10))
    m.rejected("risk:min_notional")
    m.set_breaker_state("paper", "OPEN")
    exported = {s.name for fam in m.registry.collect() for s in fam.samples}
    rules = "\n".join(line for line in RULES.read_text().splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\bexec_[a-z_]+\b", rules))
    assert used and used <= exported, used - exported


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed; .ci/run installs it")
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "4 rules found" in check.stdout
    test = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=ROOT / "tests" / "prometheus",
                          capture_output=True, text=True, timeout=60)
    assert test.returncode == 0, test.stdout + test.stderr
