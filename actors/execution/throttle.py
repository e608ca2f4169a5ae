"""Per-adapter throttle: a sliding-log rate limiter and the admission queue (docs/DESIGN.md, Failure handling).

Pure, single-threaded values owned by the adapter's actor (no threads, locks or pykka); time
comes from an injected clock with ``monotonic() -> float`` seconds.

:class:`SlidingLogThrottle` keeps the admission time of every call in the last ``window_s``
seconds and admits a call only while fewer than ``max_calls`` are logged, so no rolling window
of ``window_s`` ever holds more than ``max_calls`` admissions from :meth:`~SlidingLogThrottle.try_admit`
(an entry logged at ``t`` occupies ``[t, t + window_s)``). Unlike a token bucket it has no burst
allowance beyond ``max_calls``; memory is O(max_calls).

Cancels (decision). docs/DESIGN.md, Failure handling: "cancels are never throttled behind new orders". A cancel reduces
risk, so the actor sends it at once: :meth:`SlidingLogThrottle.force_admit` logs it without
checking the limit, and in :class:`AdmissionQueue` cancels have their own unbounded priority lane
that is always served before new orders. Logging cancels is conservative: they use up room that
new orders would otherwise get (new orders wait longer, never cancels). The log may therefore
exceed ``max_calls`` by the number of cancels; new orders are still admitted only while fewer
than ``max_calls`` calls of any kind are in the window.

Example::

    >>> from actors.kernel.clock import FakeClock
    >>> clock = FakeClock()
    >>> t = SlidingLogThrottle(2, 60.0, clock)
    >>> t.try_admit(), t.try_admit(), t.try_admit()
    (None, None, 60.0)
    >>> clock.advance(60.0); t.try_admit() is None
    True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..kernel.clock import time_until

__all__ = ["AdmissionQueue", "SlidingLogThrottle"]

T = TypeVar("T")


class SlidingLogThrottle:
    """At most ``max_calls`` admissions in any rolling ``window_s`` seconds (sliding log).

    ``max_calls``: int ≥ 1 (default 120); ``window_s``: seconds, finite > 0 (default 60);
    ``clock``: has ``monotonic() -> float``. Raises ``ValueError`` naming a bad argument.
    """

    __slots__ = ("_max", "_window", "_clock", "_log")

    def __init__(self, max_calls: int, window_s: float, clock: Any) -> None:
        if isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 1:
            raise ValueError(f"max_calls must be an integer >= 1, got {max_calls!r}")
        if (
            isinstance(window_s, bool)
            or not isinstance(window_s, (int, float))
            or not math.isfinite(window_s)
            or window_s <= 0
        ):
            raise ValueError(f"window_s must be a finite number of seconds > 0, got {window_s!r}")
        if clock is None or not callable(getattr(clock, "monotonic", None)):
            raise TypeError("clock must provide monotonic() -> float")
        self._max = max_calls
        self._window = float(window_s)
        self._clock = clock
        self._log: deque[float] = deque()

    @property
    def max_calls(self) -> int:
        """The limit per window."""
        return self._max

    @property
    def window_s(self) -> float:
        """The rolling window, seconds."""
        return self._window

    def try_admit(self) -> float | None:
        """Admit one call now: ``None`` if admitted (the time is logged), else ``retry_after_s`` (> 0).

        ``retry_after_s`` is exact: after that many seconds the call would be admitted (absent
        other admissions), and not before.
        """
        now = self._clock.monotonic()
        self._evict(now)
        if len(self._log) < self._max:
            self._log.append(now)
            return None
        return self._retry_after(now)

    def force_admit(self) -> None:
        """Log a call without checking the limit (cancels: never throttled behind new orders)."""
        now = self._clock.monotonic()
        self._evict(now)
        self._log.append(now)

    def retry_after(self) -> float:
        """Seconds until :meth:`try_admit` would admit (0.0 when it would admit now)."""
        now = self._clock.monotonic()
        self._evict(now)
        return self._retry_after(now)

    def in_window(self) -> int:
        """Calls logged in the current window ``(now - window_s, now]``."""
        self._evict(self._clock.monotonic())
        return len(self._log)

    def _evict(self, now: float) -> None:
        log, window = self._log, self._window
        while log and log[0] + window <= now:
            log.popleft()

    def _retry_after(self, now: float) -> float:
        n = len(self._log)
        if n < self._max:
            return 0.0
        # fewer than max_calls remain once the entry at index n - max_calls has left the window
        return time_until(now, self._log[n - self._max] + self._window)

    def __repr__(self) -> str:
        return f"SlidingLogThrottle(max_calls={self._max}, window_s={self._window}, logged={len(self._log)})"


class AdmissionQueue(Generic[T]):
    """Calls waiting for the throttle: a bounded FIFO of new orders plus a priority lane for cancels.

    ``capacity``: int ≥ 0, the most new orders that may wait (0 = deny-only policy: nothing
    queues). Cancels are always accepted and always served first (docs/DESIGN.md, Failure handling). Items must not be
    ``None`` (``pop`` uses ``None`` for "empty").
    """

    __slots__ = ("_capacity", "_new", "_cancels")

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be an integer >= 0, got {capacity!r}")
        self._capacity = capacity
        self._new: deque[T] = deque()
        self._cancels: deque[T] = deque()

    @property
    def capacity(self) -> int:
        """The most new orders that may wait."""
        return self._capacity

    @property
    def waiting_new(self) -> int:
        """New orders waiting."""
        return len(self._new)

    @property
    def waiting_cancels(self) -> int:
        """Cancels waiting."""
        return len(self._cancels)

    def offer(self, item: T, *, is_cancel: bool) -> bool:
        """Enqueue ``item``; ``False`` (nothing changed) when it is a new order and the FIFO is full."""
        if item is None:
            raise ValueError("item must not be None")
        if is_cancel:
            self._cancels.append(item)
            return True
        if len(self._new) >= self._capacity:
            return False
        self._new.append(item)
        return True

    def pop(self) -> T | None:
        """The next item (oldest cancel first, then oldest new order), or ``None`` when empty."""
        if self._cancels:
            return self._cancels.popleft()
        if self._new:
            return self._new.popleft()
        return None

    def remove_if(self, predicate: Callable[[T], bool]) -> list[T]:
        """Remove and return (cancels first, each lane in order) every item matching ``predicate``.

        E.g. a cancel for an order still waiting here: drop the order instead of sending it.
        """
        # evaluate the predicate on everything first: if it raises, the queue is unchanged
        marks = [[bool(predicate(x)) for x in lane] for lane in (self._cancels, self._new)]
        removed: list[T] = []
        for lane, lane_marks in zip((self._cancels, self._new), marks, strict=False):
            kept = [x for x, hit in zip(lane, lane_marks, strict=False) if not hit]
            removed.extend(x for x, hit in zip(lane, lane_marks, strict=False) if hit)
            lane.clear()
            lane.extend(kept)
        return removed

    def waiting(self) -> tuple[T, ...]:
        """The new orders waiting, oldest first (a copy; the queue is unchanged)."""
        return tuple(self._new)

    def drain(self) -> list[T]:
        """Remove and return everything (cancels first), e.g. to fail them on shutdown or restart."""
        items = [*self._cancels, *self._new]
        self._cancels.clear()
        self._new.clear()
        return items

    def __len__(self) -> int:
        return len(self._cancels) + len(self._new)

    def __repr__(self) -> str:
        return f"AdmissionQueue(capacity={self._capacity}, new={len(self._new)}, cancels={len(self._cancels)})"
