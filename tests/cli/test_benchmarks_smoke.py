"""Smoke test of the benchmark suite (benchmarks/README.md): it runs end to end and reports every figure.

No thresholds and no timing assertions: the benchmarks measure ratios on whatever machine
runs them, so this test only proves that ``python -m benchmarks.run --quick --both`` still
works (both the unpinned and the pinned subprocess), writes every section, and that each
figure is a positive number recorded with the CPU affinity it was measured under. It fails
when a benchmark rots (an import, a renamed API, a section that stops producing numbers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: section -> dotted paths of figures that must be positive numbers
REQUIRED = {
    "floor": ["p50_us", "p99_us", "pykka_ask.p50_us", "pykka_chain_4.p50_us"],
    "latency": ["p50_us", "p99_us", "F_p50_us", "p50_over_F", "p99_over_F", "n"],
    "latency_as_deployed": ["p50_us", "p99_us", "p50_over_F", "target_p50_us_max", "target_p99_us_max", "runs"],
    "latency_back_to_back": ["p50_us", "p99_us", "p50_over_F", "p99_over_F"],
    "throughput_8": [
        "runtime.orders_per_s", "runtime.orders", "baseline.orders_per_s", "baseline_1_sender.orders_per_s",
        "baseline_memory_journal.orders_per_s", "ratio", "ratio_memory_journal",
    ],
    "durable_64": [
        "full.orders_per_s", "off.orders_per_s", "ratio", "fsync_floor.fsyncs_per_s", "fsync_floor.p50_us",
        "full.journal_mean_items_per_txn",
    ],
    "durable_64_as_deployed": ["full.orders_per_s", "off.orders_per_s", "ratio", "journal_off.orders_per_s", "ratio_to_journal_off"],
    "stress_16": ["throughput_per_s", "throughput_8_senders_per_s", "ratio_to_8_senders", "cpu_us_per_op",
                  "cpu_us_per_op_by_thread.stress-senders"],
    "micro": [
        "decide_route_us", "journal_get_10k_us", "claim_batch_1_us", "intent_validate_us", "intent_fingerprint_us",
        "intent_context_dump_json_us", "venue_order_from_intent_us", "paper_submit_order_us",
        "venue_report_build_us", "report_dump_json_us",
    ],
}


def _get(data: dict, dotted: str):
    value = data
    for part in dotted.split("."):
        assert isinstance(value, dict) and part in value, f"missing {dotted!r}"
        value = value[part]
    return value


def _numbers(value, path: str = ""):
    """Every number in a JSON tree, with its path (bools excluded)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{path}[{i}]")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_quick_both_run_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--both", "--output", str(out), "--state-dir", str(tmp_path / "state")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"benchmark failed:\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}"
    data = json.loads(out.read_text(encoding="utf-8"))

    meta = data["meta"]
    assert meta["quick"] is True
    assert meta["python"] and meta["cpu_count"] >= 1 and meta["affinity_at_start"]

    runs = data["runs"]
    assert set(runs) == {"unpinned", "pinned"}
    assert len(runs["pinned"]["affinity"]) == 1, "the pinned run must run on exactly one CPU"
    assert runs["unpinned"]["affinity"] == meta["affinity_at_start"]
    for name, run in runs.items():
        for section, figures in REQUIRED.items():
            assert section in run, f"{name}: section {section!r} missing"
            assert run[section]["affinity"] == run["affinity"], f"{name}.{section}: affinity not recorded"
            for figure in figures:
                value = _get(run[section], figure)
                assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{name}.{section}.{figure} = {value!r}"
                assert value > 0, f"{name}.{section}.{figure} = {value!r} is not positive"
        negatives = [(path, v) for path, v in _numbers(run) if v < 0]
        assert not negatives, f"{name}: negative figures {negatives}"
        # the throughput figures count filled orders only (nothing denied, timed out or lost)
        for section, parts in (("throughput_8", ("runtime", "baseline", "baseline_memory_journal")),
                               ("durable_64", ("full", "off"))):
            for part in parts:
                figure = run[section][part]
                assert figure["statuses"] == {"FILLED": figure["orders"]}, f"{name}.{section}.{part}: {figure['statuses']}"
        assert run["latency"]["runs"] >= 3 and len(run["latency"]["runs_p50_us"]) == run["latency"]["runs"]
        for section in ("latency", "latency_as_deployed", "latency_back_to_back"):
            assert run[section]["statuses"] == {"FILLED": run[section]["n"]}

    assert "flowroute benchmarks" in proc.stdout  # the side-by-side table was printed


def test_hop_profile_stamps_every_stage_of_each_configuration() -> None:
    """``python -m benchmarks.hops`` wraps internal stages by name: it fails here when one moves."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.hops", "--orders", "10", "--warmup", "3", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    sections = {block.split("  ")[0]: block for block in proc.stdout.split("\n## ")[1:]}
    assert set(sections) == {"off", "deployed", "off_sync", "off_sync_mem"}
    common = ("submit", "idem.in", "ledger.in", "ledger.out", "breaker.in", "adapter.in", "venue.in", "venue.out",
              "adapter.done", "resolve", "answer")
    durable = ("claim.begin", "claim.end")
    book = ("book.commit", "book.done")
    for name, block in sections.items():
        stages = {line.split()[0] for line in block.splitlines()[2:] if line.strip()}
        expected = set(common) | (set(durable) if name != "off" else set()) | (set(book) if name in ("deployed", "off_sync") else set())
        assert expected <= stages, f"{name}: stages {sorted(expected - stages)} were never stamped"


def test_hop_profile_builds_the_intent_outside_the_timed_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``benchmarks.hops`` times from ``Runtime.submit`` as ``benchmarks.run`` does: every intent is
    built before its order's first stamp. Before, it was built inside the timed region (~40 µs
    more in the first step of every configuration). An order of events, not a timing."""
    import time

    import benchmarks.run
    from benchmarks.hops import run_config

    built: dict[str, int] = {}
    make = benchmarks.run._intent

    def intent(client_order_id: str):
        out = make(client_order_id)
        built[client_order_id] = time.perf_counter_ns()
        return out

    monkeypatch.setattr(benchmarks.run, "_intent", intent)
    stamps = run_config("off", 3, 1, tmp_path)
    assert len(stamps) == 3
    for coid, order in stamps.items():
        (first, t0, _), (last, _, _) = order[0], order[-1]
        assert (first, last) == ("submit", "answer") and built[coid] < t0, (coid, built[coid], t0)


def test_bytecode_profile_counts_the_order_path_and_compares_two_runs(tmp_path: Path) -> None:
    """``python -m benchmarks.opcount`` traces every thread: the order's own work is counted (the
    handlers of each room on its path appear), and ``--compare`` reads an earlier result."""
    first = tmp_path / "first.json"
    run = [sys.executable, "-m", "benchmarks.opcount", "--orders", "5", "--warmup", "2"]
    proc = subprocess.run([*run, "--output", str(first)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(first.read_text(encoding="utf-8"))
    assert data["statuses"] == {"FILLED": 5}
    assert data["ops_per_order"] > 0 and data["calls_per_order"] > 0
    assert set(data["phases_ops_per_order"]) == {"quote", "order", "drain"}
    names = {where.rsplit(":", 1)[1] for where in data["functions"]}
    for handler in ("IdempotencyStoreActor.handle_SubmitOrder", "LedgerActor.handle_SubmitOrder", "PaperVenue.submit_order",
                    "AdapterActor._finish"):
        assert handler in names, f"{handler} not counted"
    proc = subprocess.run([*run, "--compare", str(first), "--top", "5"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.startswith("bytecodes per order") and len(proc.stdout.splitlines()) == 6
