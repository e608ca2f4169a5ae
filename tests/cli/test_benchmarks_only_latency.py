"""``python -m benchmarks.run --only latency`` (benchmarks/README.md, Running): the one-sender figures
alone, journal off and as deployed, with F and the fsync floor they are judged against.

No timing assertions: only that the run works, writes those sections (positive numbers, the
targets computed from this run's own fsync floor and F), leaves the throughput sections out, and
that ``--show`` renders such a results file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_latency_runs_the_one_sender_figures_and_their_floors(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--only", "latency", "--output", str(out),
         "--state-dir", str(tmp_path / "state")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"benchmark failed:\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}"
    run = json.loads(out.read_text(encoding="utf-8"))["runs"]["unpinned"]
    assert {"floor", "latency", "latency_as_deployed", "fsync_floor"} <= set(run)
    assert not {"throughput_8", "durable_64", "durable_64_as_deployed", "stress_16", "micro"} & set(run)
    dep, fs, f50 = run["latency_as_deployed"], run["fsync_floor"], run["floor"]["p50_us"]
    assert dep["runs"] == 3 and dep["p50_us"] > 0 and dep["statuses"] == {"FILLED": dep["n"]}
    assert dep["target_p50_us_max"] == round(fs["p50_us"] + 4 * f50, 1) > 0
    assert dep["target_p99_us_max"] == round(2 * fs["p99_us"] + 12 * f50, 1) > 0
    assert run["latency"]["p50_over_F"] > 0 and run["loadavg_end"]
    assert fs["idle"]["n"] >= 20 and fs["idle"]["p50_us"] > 0 and fs["idle"]["gap_ms"] == 2.0  # a lone fsync, as a claim's
    shown = subprocess.run([sys.executable, "-m", "benchmarks.run", "--show", str(out), "--markdown"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "as deployed" in shown.stdout and "fsync floor" in shown.stdout and "8 senders" not in shown.stdout
    assert "ms idle" in shown.stdout
