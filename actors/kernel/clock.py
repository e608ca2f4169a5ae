"""Clocks and timers: the only way anything in flowroute waits (docs/DESIGN.md, One order, docs/DESIGN.md, Failure handling).

Actors never sleep. A retry, backoff, restart or timeout is ``clock.call_later(delay,
callback)`` where the callback only *tells* an actor a message. :class:`RealClock` runs
callbacks on one daemon scheduler thread per runtime; :class:`FakeClock` runs them
synchronously inside :meth:`FakeClock.advance`, so tests are deterministic and never sleep.

Example::

    >>> clock = FakeClock()
    >>> fired = []
    >>> _ = clock.call_later(5.0, lambda: fired.append(clock.monotonic()))
    >>> clock.advance(4.9); fired
    []
    >>> clock.advance(0.1); fired
    [5.0]
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from loguru import logger


def time_until(now: float, deadline: float) -> float:
    """Seconds from ``now`` to ``deadline`` (≥ 0) such that ``now + result >= deadline`` holds in
    floats, so a clock advanced by the result has really reached the deadline."""
    delta = deadline - now
    if delta <= 0.0:
        return 0.0
    while now + delta < deadline:
        delta = math.nextafter(delta, math.inf)
    return delta


class TimerHandle:
    """A scheduled callback; :meth:`cancel` makes it a no-op if it has not fired yet."""

    __slots__ = ("due", "callback", "cancelled")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Prevent the callback from running (idempotent, thread-safe enough: a bool store)."""
        self.cancelled = True


class Clock(Protocol):
    """Time source and timer service injected into every component that waits."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    def now(self) -> datetime:
        """Wall-clock time as an aware UTC datetime."""
        ...

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once after ``delay_s`` seconds (≥ 0). The callback must not block."""
        ...

    def close(self) -> None:
        """Stop the timer service; pending callbacks are dropped."""
        ...


def _run_safely(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - a timer callback only tells; a dead actor must not kill the scheduler
        logger.opt(exception=True).debug("timer callback failed")


class RealClock:
    """Wall clock plus one daemon scheduler thread (heap of due times, one condition variable).

    Cancelled timers never wake the thread: each time it wakes it drops the cancelled ones at
    the head of the heap before it waits for the next live one. Every order arms an attempt
    timeout that its answer cancels a moment later; without this the thread woke once per
    order, at each dead timeout's due time (a thread wake-up and the GIL, 10-20 µs of CPU per
    order). ``wakeups`` counts the times the thread woke (for tests)."""

    def __init__(self, name: str = "flowroute-timers") -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.wakeups = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    #: ``time.monotonic`` itself (no Python frame per call: the order path reads it ~6 times)
    monotonic = staticmethod(time.monotonic)

    #: ``datetime.now(UTC)`` with no Python frame per call (the order path reads it ~6 times); an aware UTC datetime
    now = staticmethod(functools.partial(datetime.now, UTC))

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + max(0.0, delay_s), callback)
        with self._cond:
            if self._closed:
                handle.cancelled = True
                return handle
            heapq.heappush(self._heap, (handle.due, next(self._seq), handle))
            if self._heap[0][2] is handle:
                self._cond.notify()
        return handle

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()

    def _loop(self) -> None:
        heap = self._heap
        while True:
            with self._cond:
                while not self._closed:
                    while heap and heap[0][2].cancelled:  # dead timers: dropped without a wait
                        heapq.heappop(heap)
                    if not heap:
                        self._cond.wait()
                        self.wakeups += 1
                        continue
                    wait = heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                    self.wakeups += 1
                if self._closed:
                    return
                _, _, handle = heapq.heappop(heap)
            if not handle.cancelled:
                _run_safely(handle.callback)


class FakeClock:
    """A manual clock for tests: time moves only in :meth:`advance`, which fires due timers in order.

    ``start`` is the initial monotonic value; ``wall_start`` the UTC time at that moment.
    """

    def __init__(self, start: float = 0.0, wall_start: datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall_start = wall_start or datetime(2021, 1, 8, tzinfo=UTC)
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime:
        return self._wall_start + timedelta(seconds=self._now - self._start)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(self._now + max(0.0, delay_s), callback)
        with self._lock:
            heapq.heappush(self._heap, (handle.due, next(self._seq), handle))
        return handle

    def pending(self) -> int:
        """Number of timers not yet fired or cancelled."""
        with self._lock:
            return sum(1 for _, _, h in self._heap if not h.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (≥ 0), firing every due timer at its due time."""
        if seconds < 0:
            raise ValueError("FakeClock cannot go backwards")
        target = self._now + seconds
        while True:
            with self._lock:
                if not self._heap or self._heap[0][0] > target:
                    break
                due, _, handle = heapq.heappop(self._heap)
            self._now = max(self._now, due)
            if not handle.cancelled:
                _run_safely(handle.callback)
        self._now = target

    def close(self) -> None:
        with self._lock:
            self._heap.clear()
