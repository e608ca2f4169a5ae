"""Crash suite with concurrent senders: a real subprocess SIGKILLed while orders cross the actors in
groups (one message per group commit: ``SubmitOrders``, ``ExecuteOrders``, ``OrdersFinished``; a
group-commit venue's first attempt tells the ledger no separate ``OrderSent``).

The checks are tests/journal/test_crash.py's: after recovery and after the callers retry every
intent under the same ids, no client order id reached the venue twice, every order is resolved,
the books equal the venue's fills, and the audit chain verifies; an order answered before the
crash is replayed with the same status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors import Runtime
from actors.audit.log import verify
from actors.journal.sqlite import SQLiteJournal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _crash_child as child
import _crash_group_child as group_child

from .test_crash import _check_books

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 64
#: (point, n, seed): kill points met inside groups (claims committed, venue took the call, outcome told)
KILL_POINTS = [("after_claim", 3, 11), ("after_send", 9, 12), ("after_send", 30, 13), ("after_ack", 20, 14)]


@pytest.mark.slow
@pytest.mark.parametrize("point,n,seed", KILL_POINTS, ids=[f"{p}-{n}" for p, n, _ in KILL_POINTS])
def test_sigkill_with_concurrent_senders_then_recover(tmp_path: Path, point: str, n: int, seed: int) -> None:
    state = tmp_path / "state"
    env = dict(os.environ, FR_CRASHPOINT=f"{point}:{n}")
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "_crash_group_child.py"), str(state), str(seed), str(ORDERS)],
                          env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"not killed at {point}:{n}: rc={proc.returncode} {proc.stderr.decode()[-2000:]}"
    rt = Runtime.start(child.settings_for(state))
    try:
        _check_books(rt)
        before = {r.client_order_id: r.status for r in rt.orders() if r.account_id == child.ACCOUNT}
        reports = group_child.run(rt, seed, ORDERS)
        _check_books(rt)
        assert len(reports) == ORDERS
        replayed = {cl: (status, reports[cl].status) for cl, status in before.items() if reports[cl].status is not status}
        assert not replayed, f"a retry answered otherwise than the order recovered: {replayed}"
        assert len({r.client_order_id for r in rt.orders() if r.account_id == child.ACCOUNT}) == ORDERS
    finally:
        rt.stop()
    journal = SQLiteJournal(state / "journal.sqlite")
    try:
        assert journal.load_unresolved() == []
    finally:
        journal.close()
    result = verify(state / "audit.jsonl")
    assert result.ok, result.problems
