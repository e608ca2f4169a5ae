"""``AuditLog.close()`` waits, bounded, for the compression its last rotation started (actors/audit/log.py).

Before, ``close`` released the file and returned while the compressor thread (a daemon) could still
be writing the segment's ``.gz``: a stopped runtime left a thread behind, and a process ending
right after the stop cut the compression short (safe: the next start finished it). The compressor
is held here at its true boundary, the module's ``_COMPRESSING`` lock it takes first.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loguru import logger

import actors.audit.log as audit
from actors.audit.log import AuditLog, verify

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class StepClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


def rotated_log(path: Path) -> tuple[AuditLog, Path]:
    """A log of three lines rotated whole (its compression starts, and waits for ``_COMPRESSING``)."""
    clock = StepClock()
    log = AuditLog(path, clock=clock)
    for i, day in enumerate([0, 10, 20]):
        clock.t = T0 + timedelta(days=day)
        log.append("transition", {"client_order_id": f"o-{i}", "day": day})
    log.flush()
    res = log.rotate(T0 + timedelta(days=400))
    assert res.segment is not None
    return log, res.segment


def test_close_returns_only_once_the_rotated_segment_is_compressed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    seen: dict[str, bool] = {}
    with audit._COMPRESSING:
        log, segment = rotated_log(path)

        def close() -> None:
            log.close()
            seen["plain_left"] = segment.exists()
            seen["compressed"] = segment.with_name(segment.name + ".gz").exists()
            seen["compressor_running"] = not log.wait_compressed(0)

        closer = threading.Thread(target=close, name="test-closer")
        closer.start()
        closer.join(0.3)  # a close that does not wait has returned by now, the compression still held
    closer.join(30)
    assert not closer.is_alive()
    assert seen == {"plain_left": False, "compressed": True, "compressor_running": False}
    assert verify(path).ok


def test_close_waits_at_most_its_bound_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", filter="actors.audit")
    try:
        with audit._COMPRESSING:  # never released while close waits: its bound ends the wait
            log, segment = rotated_log(path)
            log.close(compress_wait_s=0.05)
            assert log.closed and segment.exists()
            assert any("still being compressed after 0.05 s" in w for w in warnings), warnings
    finally:
        logger.remove(sink)
    assert log.wait_compressed(30)
    assert not segment.exists() and verify(path).ok
