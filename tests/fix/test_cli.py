"""``fix-peer`` and ``replay --venue fix`` as a user runs them (subprocesses, real acceptor).

Where the acceptor runs in a private network namespace, the CLI runs in it too (``nsenter``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocols.venues.fix._driver import tcp_connect
from protocols.venues.fix._peer import _connect_in_netns, can_unshare, free_port

from .conftest import needs_peers

pytestmark = needs_peers
ROOT = Path(__file__).resolve().parents[2]
DATA = next((p for p in (ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data") if p.exists()),
            ROOT.parent / "shared" / "data")
QUOTES, TRADES = DATA / "binance_btcusdt_quotes_20210108.csv", DATA / "binance_btcusdt_trades_20210108.csv"


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWROUTE_")}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


@pytest.mark.skipif(not QUOTES.exists(), reason=f"market data not found at {DATA} (../shared/data beside the repo)")
def test_replay_trades_through_the_executor_with_limit_orders(peer, tmp_path) -> None:
    executor = peer("executor")
    prefix = ["nsenter", f"--net=/proc/{executor.process.pid}/ns/net"] if executor.netns else []
    if prefix and not shutil.which("nsenter"):
        pytest.skip("nsenter not found")
    env = _env(FLOWROUTE_VENUES__FIX__PORT=str(executor.port), FLOWROUTE_VENUES__FIX__SENDER_COMP_ID="CLIENT1",
               FLOWROUTE_VENUES__FIX__TARGET_COMP_ID="EXECUTOR")
    out = subprocess.run([*prefix, sys.executable, "run.py", "replay", "--venue", "fix", "--json", "--state-dir",
                          str(tmp_path / "state"), "--quotes", str(QUOTES), "--trades", str(TRADES)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    assert summary["orders_by_status"].get("FILLED", 0) > 0
    assert summary["timeouts"] == [] and summary["audit_ok"] is True
    assert all(p["got"] == p["expected"] for p in summary["probes"]), summary["probes"]
    sent = re.findall(r"\x0135=D\x01.*?\x0111=([^\x01]+)\x01", _incoming_lines(executor))
    assert len(sent) == summary["orders_by_status"]["FILLED"] + summary["orders_by_status"].get("REJECTED", 0)
    assert len(sent) == len(set(sent))  # no client order id reached the executor twice


def _incoming_lines(executor) -> str:
    blocks = executor.log_path.read_text(errors="replace").split("<")
    return "\n".join(b for b in blocks if ", incoming>" in b.split("\n", 1)[0])


def test_replay_without_a_fix_section_says_what_is_missing(tmp_path) -> None:
    out = subprocess.run([sys.executable, "run.py", "replay", "--venue", "fix", "--state-dir", str(tmp_path / "s"),
                          "--quotes", str(tmp_path / "q.csv"), "--trades", str(tmp_path / "t.csv")],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "does not exist" in out.stderr or "[venues.fix]" in out.stderr


def test_fix_peer_command_runs_an_acceptor_until_stopped(tmp_path) -> None:
    netns = can_unshare()
    port = 56001 if netns else free_port()
    argv = [sys.executable, "run.py", "fix-peer", "executor", "--port", str(port), "--dir", str(tmp_path / "peer")]
    if netns:
        argv = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"executor listening on port {port}" in line, line
        connect = (lambda: _connect_in_netns(proc.pid, "127.0.0.1", port, 2.0)) if netns else (lambda: tcp_connect("127.0.0.1", port, 2.0))
        connect().close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    time.sleep(0.2)
    binary = str(tmp_path / "peer" / "executor")
    assert not any(Path(f"/proc/{p}").exists() and binary in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                   for p in os.listdir("/proc") if p.isdigit()), "the acceptor outlived its command"
