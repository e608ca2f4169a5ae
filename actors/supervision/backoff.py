"""Exponential backoff with jitter, and restart intensity for supervision (docs/DESIGN.md, Failure handling, docs/DESIGN.md, Failure handling).

Pure functions and a small single-threaded value; nothing here sleeps: the owner schedules
``clock.call_later(delay, ...)`` with the delay computed here.

* :func:`backoff_delay`: ``min(base_s · 2^(attempt-1), cap_s) × U(1 - jitter, 1 + jitter)``
  (docs/DESIGN.md, Failure handling retry delay: base 1 s, cap 30 s, ±20 %). The cap applies *before* jitter, so a
  delay can reach ``cap_s × (1 + jitter)``.
* :class:`RestartBackoff`: supervisor restart delays (0.1 s doubling to 5 s, ±20 %) with an
  Erlang/OTP restart intensity: more than ``max_restarts`` restarts within ``within_s``
  seconds and the child is given up (OTP supervisor ``intensity``/``period``; Akka
  ``maxNrOfRetries``/``withinTimeRange``).

Example::

    >>> import random
    >>> backoff_delay(3, base_s=1.0, cap_s=30.0, jitter=0.0, rng=random.Random(1))
    4.0
    >>> rb = RestartBackoff(max_restarts=2, within_s=60.0, jitter=0.0)
    >>> rb.next_delay(0.0), rb.next_delay(1.0), rb.next_delay(2.0)
    (0.1, 0.2, None)
    >>> rb.next_delay(60.5)  # the restart at 0.0 has aged out
    0.2
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

__all__ = ["RestartBackoff", "backoff_delay"]

_MAX_EXPONENT = 1000  # 2.0 ** 1000 is finite; beyond that the cap always wins


def _check_seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)


def _check_jitter(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < 1.0):
        raise ValueError(f"jitter must be a fraction in [0, 1), got {value!r}")
    return float(value)


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, jitter: float, rng: random.Random) -> float:
    """Delay in seconds before retry number ``attempt`` (1 = first retry).

    ``min(base_s · 2^(attempt-1), cap_s) × U(1 - jitter, 1 + jitter)`` with ``U`` drawn from
    ``rng`` (pass a seeded ``random.Random`` for determinism). Raises ``ValueError`` when
    ``attempt`` is not an int ≥ 1, ``base_s``/``cap_s`` are not finite and > 0, ``cap_s <
    base_s``, or ``jitter`` is outside [0, 1).
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
    base = _check_seconds("base_s", base_s)
    cap = _check_seconds("cap_s", cap_s)
    if cap < base:
        raise ValueError(f"cap_s ({cap_s!r}) must be >= base_s ({base_s!r})")
    j = _check_jitter(jitter)
    nominal = min(base * 2.0 ** min(attempt - 1, _MAX_EXPONENT), cap)
    if j == 0.0:
        return nominal
    return nominal * rng.uniform(1.0 - j, 1.0 + j)


class RestartBackoff:
    """Restart delays for one supervised child, with an intensity limit (docs/DESIGN.md, Failure handling).

    ``initial_s`` (s, > 0) doubling up to ``max_s`` (s, ≥ initial_s), ``jitter`` fraction in
    [0, 1), ``max_restarts`` (int ≥ 0) allowed within ``within_s`` seconds (> 0); ``rng`` a
    ``random.Random`` (a fresh unseeded one if omitted). Bad arguments raise ``ValueError``.

    The n-th restart inside the current period waits ``backoff_delay(n, base_s=initial_s,
    cap_s=max_s, ...)``, so the delay shrinks again as old restarts age out of the period.
    Counting follows OTP ``supervisor``: restarts at times ``>= now - within_s`` are in the
    period; if recording this one would make more than ``max_restarts``, the child is given up
    (``None``) and the refused restart is not recorded.
    """

    def __init__(
        self,
        initial_s: float = 0.1,
        max_s: float = 5.0,
        jitter: float = 0.2,
        max_restarts: int = 5,
        within_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self._initial = _check_seconds("initial_s", initial_s)
        self._max = _check_seconds("max_s", max_s)
        if self._max < self._initial:
            raise ValueError(f"max_s ({max_s!r}) must be >= initial_s ({initial_s!r})")
        self._jitter = _check_jitter(jitter)
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an integer >= 0, got {max_restarts!r}")
        self._max_restarts = max_restarts
        self._within = _check_seconds("within_s", within_s)
        self._rng = rng if rng is not None else random.Random()
        self._times: deque[float] = deque()
        self._total = 0
        self._last: float | None = None

    @property
    def restarts(self) -> int:
        """Restarts granted since construction or :meth:`reset` (for health: ``restarts``)."""
        return self._total

    @property
    def max_restarts(self) -> int:
        """Intensity: restarts allowed within :attr:`within_s`."""
        return self._max_restarts

    @property
    def within_s(self) -> float:
        """Period of the intensity limit, seconds."""
        return self._within

    def recent(self, now: float) -> int:
        """Restarts granted within the period ending at ``now`` (monotonic seconds)."""
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ValueError(f"now must be a finite monotonic time in seconds, got {now!r}")
        return sum(1 for t in self._times if t >= now - self._within)

    def next_delay(self, now: float) -> float | None:
        """Record a restart at ``now`` (monotonic seconds) and return its delay, or ``None`` to give up.

        Raises ``ValueError`` if ``now`` is not finite or is earlier than a previous call's ``now``.
        """
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ValueError(f"now must be a finite monotonic time in seconds, got {now!r}")
        if self._last is not None and now < self._last:
            raise ValueError(f"now went backwards: {now!r} < {self._last!r}")
        self._last = float(now)
        threshold = now - self._within
        while self._times and self._times[0] < threshold:
            self._times.popleft()
        count = len(self._times) + 1
        if count > self._max_restarts:
            return None
        self._times.append(float(now))
        self._total += 1
        return backoff_delay(count, base_s=self._initial, cap_s=self._max, jitter=self._jitter, rng=self._rng)

    def reset(self) -> None:
        """Forget every recorded restart (e.g. after the operator re-enables a given-up child)."""
        self._times.clear()
        self._total = 0
        self._last = None

    def __repr__(self) -> str:
        return (
            f"RestartBackoff(restarts={self._total}, max_restarts={self._max_restarts}, "
            f"within_s={self._within})"
        )
