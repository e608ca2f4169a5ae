"""`run.py stress` killed with SIGKILL midway, then `run.py recover`: every order resolved, none sent twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _journaled(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM idempotency").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_stress_killed_midway_then_recover_resolves_everything(tmp_path: Path) -> None:
    state = tmp_path / "stress"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "stress", "--senders", "4", "--orders", "100000", "--seed", "11",
         "--faults", "transient=0.02,reject=0.01,ambiguous=0.002", "--state-dir", str(state), "--json"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _journaled(state / "journal.sqlite") < 800 and time.monotonic() < deadline:
            assert proc.poll() is None, "stress ended before it could be killed"
            time.sleep(0.05)
        assert _journaled(state / "journal.sqlite") >= 800
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "recover", "--state-dir", str(state), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    summary = json.loads(done.stdout)
    assert done.returncode == 0, (summary["checks"], done.stderr[-2000:])
    assert summary["journaled_orders"] >= 800
    assert summary["checks"] == {"every_order_resolved": True, "no_duplicate_delivery": True,
                                 "positions_equal_venue": True, "book_invariants": True}
    assert summary["venue_duplicate_submissions"] == 0
    assert summary["unresolved"] == [] and summary["stuck_orders"] == []
    # a second recovery finds nothing left in doubt from the crash
    again = subprocess.run([sys.executable, str(ROOT / "run.py"), "recover", "--state-dir", str(state), "--json"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout)["marked_unknown_at_start"] == 0
