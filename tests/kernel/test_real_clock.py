"""RealClock: timers fire once, in due order, never when cancelled; cancelled timers never wake its thread."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from actors.kernel.clock import RealClock


def test_timers_fire_in_due_order_and_cancelled_ones_never() -> None:
    clock = RealClock("test-timers")
    fired: list[str] = []
    done = threading.Event()
    try:
        clock.call_later(0.06, lambda: (fired.append("late"), done.set()))
        clock.call_later(0.02, lambda: fired.append("early"))
        clock.call_later(0.04, lambda: fired.append("cancelled")).cancel()
        assert done.wait(5.0)
        assert fired == ["early", "late"]
    finally:
        clock.close()


def test_cancelled_timers_do_not_wake_the_scheduler() -> None:
    """Each order arms a timeout its answer cancels; a dead timeout must not cost a wake-up."""
    clock = RealClock("test-timers")
    fired = threading.Event()
    try:
        for k in range(200):  # due every 1 ms from 20 ms on, each cancelled at once (as answered orders do)
            clock.call_later(0.02 + k * 0.001, lambda: None).cancel()
        clock.call_later(0.3, fired.set)
        assert fired.wait(5.0)
        assert clock.wakeups < 20, f"the scheduler woke {clock.wakeups} times for 200 cancelled timers and one live one"
    finally:
        clock.close()


def test_monotonic_and_now_read_the_clocks_without_a_python_frame() -> None:
    """``RealClock.monotonic`` and the FIX session's ``SystemClock.monotonic`` are
    ``time.monotonic`` itself, their ``now`` is ``datetime.now(UTC)`` (each read several times
    per order): a reading lies between two of the clock's own, from the class and from an
    instance alike, and ``now`` is aware UTC."""
    from protocols.venues.fix._session import SystemClock

    clock = RealClock(name="test-monotonic")
    try:
        for source in (clock, RealClock, SystemClock(), SystemClock):
            before = time.monotonic()
            reading = source.monotonic()
            assert before <= reading <= time.monotonic()
        assert clock.monotonic == time.monotonic and SystemClock().monotonic == time.monotonic
        # now: an aware UTC datetime between two readings of the wall clock
        for source in (clock, RealClock, SystemClock(), SystemClock):
            before = datetime.now(UTC)
            reading = source.now()
            assert reading.tzinfo is UTC and before <= reading <= datetime.now(UTC)
    finally:
        clock.close()
