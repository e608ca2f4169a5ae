"""Crash suite (docs/DESIGN.md, Testing): a real subprocess SIGKILLed at seeded points across the submit path.

For each kill point: run ``tests/_crash_child.py`` with ``FR_CRASHPOINT=<point>:<n>`` until it
kills itself, restart on the same state directory (recovery reconciles with the durable paper
book), re-run the same script (the caller retrying every intent under the same ids), and check:

- no client order id was delivered twice to the venue (the venue's durable submission counts);
- every journaled intent is resolved (no order left UNKNOWN, SUBMITTING or RESERVED; no
  idempotency record left IN_PROGRESS or UNKNOWN);
- the books equal the venue's fills (positions and the set of trade ids per order);
- the audit chain verifies (a torn last line is handled by the documented rule: moved to
  ``audit.jsonl.torn``, reported as a warning).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from actors import Runtime
from actors.audit.log import verify
from actors.journal.sqlite import SQLiteJournal
from actors.testing.crashpoints import POINTS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _crash_child as child

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 24
KILLS_PER_POINT = 10


def _kill_points() -> list[tuple[str, int, int]]:
    rng = random.Random(20261121)
    points = []
    for point in POINTS:
        # every order passes the submit-path points once; resting-order fills are fewer per run
        upper = 8 if point == "between_fills" else ORDERS
        hits = sorted(rng.sample(range(1, upper), min(KILLS_PER_POINT, upper - 1)))
        if point == "between_fills":
            hits += sorted(rng.sample(range(1, upper), KILLS_PER_POINT - len(hits)))
        for n in hits:
            points.append((point, n, rng.randrange(1000)))
    return points


KILL_POINTS = _kill_points()


def _check_books(rt: Runtime) -> None:
    venue = rt.venue("paper")
    counts = venue.submission_counts()
    assert venue.duplicate_submissions() == 0, "a client order id reached the venue twice"
    assert not counts or max(counts.values()) == 1
    orders = {r.client_order_id: r for r in rt.orders() if r.account_id == child.ACCOUNT}
    stuck = {cl: r.status.value for cl, r in orders.items() if r.status.value in ("UNKNOWN", "SUBMITTING", "RESERVED", "INITIALIZED")}
    assert not stuck, f"orders not resolved after recovery: {stuck}"
    venue_fills: dict[str, set[str]] = {}
    for cl_id, fill in venue.fill_records():
        venue_fills.setdefault(cl_id, set()).add(fill.trade_id)
    for cl_id, trade_ids in venue_fills.items():
        assert cl_id in orders, f"venue filled {cl_id} which the ledger does not know"
        assert {f.trade_id for f in orders[cl_id].fills} == trade_ids, f"fills of {cl_id} differ from the venue's"
    ledger_positions = {p.symbol: p.net_qty for p in rt.positions() if p.account_id == child.ACCOUNT and p.net_qty != 0}
    venue_positions = {sym: qty for sym, qty in venue.fetch_positions().items() if qty != 0}
    assert ledger_positions == venue_positions
    stats = rt.stats()
    assert stats["book_invariants"] == []


@pytest.mark.slow
@pytest.mark.parametrize("point,n,seed", KILL_POINTS, ids=[f"{p}-{n}" for p, n, _ in KILL_POINTS])
def test_sigkill_then_recover(tmp_path: Path, point: str, n: int, seed: int) -> None:
    state = tmp_path / "state"
    env = dict(os.environ, FR_CRASHPOINT=f"{point}:{n}")
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "_crash_child.py"), str(state), str(seed), str(ORDERS)],
                          env=env, cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"not killed at {point}:{n}: rc={proc.returncode} {proc.stderr.decode()[-2000:]}"
    rt = Runtime.start(child.settings_for(state))
    try:
        _check_books(rt)
        child.run(rt, seed, ORDERS)  # the caller retries everything under the same ids
        _check_books(rt)
        reports = {r.client_order_id for r in rt.orders() if r.account_id == child.ACCOUNT}
        assert len(reports) == ORDERS
    finally:
        rt.stop()
    journal = SQLiteJournal(state / "journal.sqlite")
    try:
        assert journal.load_unresolved() == []
    finally:
        journal.close()
    result = verify(state / "audit.jsonl")
    assert result.ok, result.problems


def test_kill_points_cover_every_point_at_least_fifty_times_in_total() -> None:
    per_point = Counter(p for p, _, _ in KILL_POINTS)
    assert set(per_point) == set(POINTS)
    assert sum(per_point.values()) >= 50
