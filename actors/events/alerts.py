"""Alert events over a sliding window of finished orders (README "Features"; seed 001 "Alerts").

:class:`AlertMonitor` is pure and single-threaded, owned by the ledger actor: the ledger
records every finished order (refused or not) and the latency of every order answered by its
venue adapter, and evaluates the window on a timer of the runtime's clock every
``alerts.interval_s``. Two alerts, each raised once when its value crosses the threshold and
cleared once when it is back at or below it (so a subscriber sees one event per episode):

- ``reject_rate``: REJECTED + DENIED orders / finished orders in the last ``alerts.window_s``
  seconds, above ``alerts.reject_rate`` → ``RejectRateSpiked``;
- ``latency_p99``: the p99 (nearest rank) of the submit-to-answer latencies of the window, above
  ``alerts.latency_p99_us`` → ``LatencySpiked``.

Neither fires before ``alerts.min_orders`` orders finished in the window (too few to be a rate);
an active alert whose window has fallen below that many orders is cleared. ``AlertCleared``
names the alert that ended. The same alerts for Prometheus: ``docs/alerts.rules.yml``.

Example::

    >>> mon = AlertMonitor(window_s=60, min_orders=2, reject_rate=0.5, latency_p99_us=1000)
    >>> mon.record_outcome(0.0, rejected=True); mon.record_outcome(1.0, rejected=True)
    >>> [e.name for e in mon.evaluate(2.0)]
    ['RejectRateSpiked']
    >>> mon.evaluate(3.0)   # still above: no second event
    []
    >>> [e.name for e in mon.evaluate(100.0)]   # the window emptied
    ['AlertCleared']
"""

from __future__ import annotations

import math
from collections import deque

from protocols import AlertCleared, Event, LatencySpiked, RejectRateSpiked

__all__ = ["AlertMonitor", "REJECT_RATE", "LATENCY_P99"]

REJECT_RATE = "reject_rate"
LATENCY_P99 = "latency_p99"


class AlertMonitor:
    """Reject-rate and latency-p99 alerts over a sliding window (see the module docstring).

    ``window_s`` seconds of the clock's monotonic time; ``min_orders`` >= 1; ``reject_rate`` a
    fraction in [0, 1]; ``latency_p99_us`` µs. Raises ``ValueError`` for values out of range.
    """

    def __init__(self, *, window_s: float, min_orders: int, reject_rate: float, latency_p99_us: int) -> None:
        if not window_s > 0 or min_orders < 1 or not 0 <= reject_rate <= 1 or latency_p99_us < 1:
            raise ValueError("alerts: window_s > 0, min_orders >= 1, 0 <= reject_rate <= 1, latency_p99_us >= 1")
        self.window_s = float(window_s)
        self.min_orders = int(min_orders)
        self.reject_rate = float(reject_rate)
        self.latency_p99_us = int(latency_p99_us)
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._latencies: deque[tuple[float, int]] = deque()
        self._active: set[str] = set()

    @property
    def idle(self) -> bool:
        """True when the window holds nothing and no alert is active (the timer may stop)."""
        return not self._outcomes and not self._latencies and not self._active

    @property
    def active(self) -> frozenset[str]:
        """The alerts raised and not cleared yet."""
        return frozenset(self._active)

    def record_outcome(self, now: float, *, rejected: bool) -> None:
        """One finished order at monotonic ``now``: refused (REJECTED/DENIED) or not."""
        self._outcomes.append((now, rejected))

    def record_latency(self, now: float, latency_us: int) -> None:
        """The submit-to-answer latency (µs) of one order answered by its venue adapter."""
        self._latencies.append((now, latency_us))

    def evaluate(self, now: float) -> list[Event]:
        """Drop samples older than the window and return the events of alerts that changed state."""
        horizon = now - self.window_s
        for samples in (self._outcomes, self._latencies):
            while samples and samples[0][0] < horizon:
                samples.popleft()
        events: list[Event] = []
        n = len(self._outcomes)
        rejected = sum(1 for _, r in self._outcomes if r)
        rate = rejected / n if n else 0.0
        if n >= self.min_orders and rate > self.reject_rate:
            if REJECT_RATE not in self._active:
                self._active.add(REJECT_RATE)
                events.append(RejectRateSpiked(reject_rate=rate, threshold=self.reject_rate, orders=n, rejected=rejected,
                                               window_s=self.window_s))
        elif REJECT_RATE in self._active:
            self._active.discard(REJECT_RATE)
            events.append(AlertCleared(alert=REJECT_RATE, value=rate, threshold=self.reject_rate, orders=n,
                                       window_s=self.window_s))
        m = len(self._latencies)
        p99 = 0
        if m:
            ordered = sorted(us for _, us in self._latencies)
            p99 = ordered[max(0, math.ceil(0.99 * m) - 1)]
        if m >= self.min_orders and p99 > self.latency_p99_us:
            if LATENCY_P99 not in self._active:
                self._active.add(LATENCY_P99)
                events.append(LatencySpiked(p99_us=p99, threshold_us=self.latency_p99_us, orders=m, window_s=self.window_s))
        elif LATENCY_P99 in self._active:
            self._active.discard(LATENCY_P99)
            events.append(AlertCleared(alert=LATENCY_P99, value=float(p99), threshold=float(self.latency_p99_us), orders=m,
                                       window_s=self.window_s))
        return events
