"""Smoke test of ``python -m benchmarks.fix_roundtrip`` (README "FIX round trip"): it runs end to
end against the real executor and reports every figure, so the benchmark cannot rot. No
thresholds, no timing assertions: only that each figure is there and positive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from actors.kernel.gctune import CLI_THRESHOLD

from .conftest import needs_peers

ROOT = Path(__file__).resolve().parents[2]

FIGURES = ["bare_p50_us", "runtime_p50_us", "as_deployed_p50_us", "worker_path_p50_us", "ratio_p50",
           "as_deployed_ratio_p50", "bare_cpu_us_per_order", "runtime_cpu_us_per_order", "senders8_orders_per_s",
           "worker_path_senders8_orders_per_s"]
STAGES = ["submit", "idempotency", "ledger", "breaker", "adapter", "fix venue: order", "fix session: frame",
          "socket write", "written", "report read", "session done", "report mapped", "venue done", "adapter: outcome",
          "caller answered", "answer"]


@needs_peers
def test_fix_roundtrip_reports_every_figure_and_every_hop() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.fix_roundtrip", "--orders", "8", "--per-sender", "2",
                           "--hops", "3", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    for name in FIGURES:
        assert result[name] > 0, name
    assert result["runtime_config"].startswith("journal off") and "fsync" in result["as_deployed_config"]
    # both sides at the GC threshold benchmarks.run and run.py use (before: the interpreter's 700 on both)
    assert result["gc_threshold"] == {"bare": [CLI_THRESHOLD], "runtime": [CLI_THRESHOLD]}, result["gc_threshold"]
    assert sorted(row["stage"] for row in result["hops"]) == sorted(STAGES)
    assert all(row["at_us"] >= 0 for row in result["hops"])
