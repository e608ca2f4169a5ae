"""One rate limit per venue key, shared by every process on one PostgreSQL journal (docs/DESIGN.md).

A venue counts calls per API key, not per process. With ``journal.url`` set, each adapter
actor's throttle is a :class:`SharedThrottle`: the same interface as
:class:`~actors.execution.throttle.SlidingLogThrottle` (``try_admit``/``force_admit``/``retry_after``),
answered from calls *granted* to this process by a sliding window in the database.

The window (``flowroute.throttle_grants``): a grant of ``n`` calls made at server time ``g``
occupies ``[g, g + window_s + grant_ttl_s)``. A background thread (never the actor: a database
call blocks) asks for grants in one transaction that locks the venue key's row, drops expired
grants and grants ``k = min(wanted, max_calls - calls in the window, share cap - this process's
calls in the window)``. Grants are checked at their start and all have the same length, so no
instant is covered by more than ``max_calls`` granted calls.

Locally a grant must be used within ``grant_ttl_s`` of the moment it was *requested* (before
``g``), so a call admitted under it at ``t`` occupies ``[t, t + window_s)`` inside the grant's
interval: any rolling ``window_s`` holds at most ``max_calls`` calls of the whole fleet. What was
not used in time is handed back (the grant's ``n`` is decreased: those calls never happened).

``share`` (``throttle.share``, 0 < share <= 1): the most of the window one process may hold, so
one busy process cannot starve the others. Cancels are never throttled (as with the local
throttle): they use a grant when one is at hand, else are logged as extra calls with the next
grant (the window may then exceed ``max_calls`` by cancels, never by new orders).

A value the database refuses (SQLSTATE class 22, or one the driver cannot bind, e.g. a NUL in
the venue key) raises :class:`~actors.journal.sqlite.JournalValueRefused` as the journals do
(:func:`~actors.journal.sqlite.refused_value`): at construction, which writes the venue key's
row first, so such a key fails the start naming it instead of failing every refill for ever.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger

from .sqlite import _UNBINDABLE, JournalValueRefused, refused_value

__all__ = ["SharedThrottle"]


class SharedThrottle:
    """The fleet-wide throttle of one venue key (see the module docstring).

    ``backend``: a ``PostgresBackend``; ``venue_key``: what the venue counts by (default the
    adapter id); ``max_calls`` per rolling ``window_s`` seconds; ``share``: (0, 1] of
    ``max_calls`` this process may hold; ``grant_ttl_s``: how long a grant may wait for its call;
    ``batch_max``: most calls asked for at once. ``monotonic``: local clock (seconds).
    Thread-safe: the actor calls admit methods, the refill thread adds grants. Raises
    ``ValueError`` for a bad ``share`` and :class:`JournalValueRefused` (a ``ValueError``) when the
    database refuses ``venue_key``; a database that fails otherwise is retried by the refill thread.
    """

    def __init__(self, backend: Any, venue_key: str, max_calls: int, window_s: float, share: float = 1.0, *,
                 grant_ttl_s: float = 0.25, batch_max: int = 64, monotonic: Callable[[], float] = time.monotonic) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"throttle.share must be in (0, 1], got {share!r}")
        self._backend = backend
        self.venue_key = venue_key
        self.max_calls = int(max_calls)
        self.window_s = float(window_s)
        self.cap = max(1, math.floor(share * self.max_calls))
        self._ttl = float(grant_ttl_s)
        self._batch_max = max(1, min(int(batch_max), self.cap))
        self._now = monotonic
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: live grants: [use-by (local monotonic), grant id, calls left]
        self._grants: deque[list] = deque()
        self._returns: list[tuple[int, int]] = []
        self._demand = 0
        self._forced = 0
        self._hint = 0.002
        self._admitted: deque[float] = deque()
        self.granted = 0
        self.returned = 0
        self.db_calls = 0
        self.failures = 0
        #: called (from the refill thread) when new grants arrive for calls that waited: the actor's tick
        self.waker: Callable[[], None] | None = None
        try:  # the venue key's row: a key the database refuses is refused here, not at every refill
            self._grant(0, 0, [])
        except JournalValueRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - the database may come back: the refill thread retries
            self.failures += 1
            logger.warning("shared throttle {}: first grant failed: {}", venue_key, exc)
        self._thread = threading.Thread(target=self._run, name=f"flowroute-throttle-{venue_key}", daemon=True)
        self._thread.start()

    # -- the SlidingLogThrottle interface (actor side; never blocks on the database) --------
    def _expire(self, now: float) -> None:
        grants = self._grants
        while grants and grants[0][0] <= now:
            _, gid, left = grants.popleft()
            if left:
                self._returns.append((gid, left))
        admitted, horizon = self._admitted, now - self.window_s
        while admitted and admitted[0] <= horizon:
            admitted.popleft()

    def _take(self, now: float) -> bool:
        for grant in self._grants:
            if grant[2]:
                grant[2] -= 1
                self._admitted.append(now)
                return True
        return False

    def try_admit(self) -> float | None:
        """Admit one call now (None) or say in how many seconds to ask again (> 0)."""
        with self._lock:
            now = self._now()
            self._expire(now)
            if self._take(now):
                if not any(g[2] for g in self._grants):
                    self._wake.set()  # ran dry: ask for more before the next order
                return None
            self._demand += 1
            hint = self._hint
        self._wake.set()
        return hint

    def force_admit(self) -> None:
        """A cancel: admitted at once; it uses a grant if one is at hand, else is logged as an extra call."""
        with self._lock:
            now = self._now()
            self._expire(now)
            if not self._take(now):
                self._forced += 1
                self._admitted.append(now)
        self._wake.set()

    def retry_after(self) -> float:
        """0.0 when a grant is at hand, else the refill thread's estimate (seconds)."""
        with self._lock:
            self._expire(self._now())
            return 0.0 if any(g[2] for g in self._grants) else self._hint

    def in_window(self) -> int:
        """Calls this process admitted in the last ``window_s`` seconds."""
        with self._lock:
            self._expire(self._now())
            return len(self._admitted)

    # -- the refill thread -----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._ttl / 2)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._refill()
            except Exception as exc:  # noqa: BLE001 - the database may come back; orders wait (or are denied) meanwhile
                self.failures += 1
                with self._lock:
                    self._hint = 0.05
                logger.warning("shared throttle {}: refill failed: {}", self.venue_key, exc)
                self._stop.wait(0.05)

    def _refill(self) -> None:
        with self._lock:
            now = self._now()
            self._expire(now)
            usable = sum(g[2] for g in self._grants)
            # what the last grant period used, or what is waiting now; nothing when idle (no churn)
            recent = sum(1 for t in self._admitted if t > now - self._ttl)
            target = min(self._batch_max, max(self._demand, recent))
            want = max(0, target - usable)
            forced, self._forced = self._forced, 0
            returns, self._returns = self._returns, []
            self._demand = 0
        if not (want or forced or returns):
            return
        asked_at = self._now()
        gid, k, wait_s = self._grant(want, forced, returns)
        with self._lock:
            self.returned += sum(n for _, n in returns)
            if k:
                self.granted += k
                self._grants.append([asked_at + self._ttl, gid, k])
            self._hint = max(0.002, wait_s) if k < want else 0.002
        waker = self.waker
        if k and waker is not None:
            waker()  # calls are waiting in the actor's queue: wake it now, whatever clock its timers run on
        if k < want:
            # nothing (or not enough) free: ask again when the window frees room, not in a busy loop
            self._stop.wait(min(max(0.002, wait_s), self._ttl))
            self._wake.set()

    def _grant(self, want: int, forced: int, returns: list[tuple[int, int]]) -> tuple[int | None, int, float]:
        """One transaction: hand back ``returns``, grant up to ``want`` calls (+ ``forced`` cancels).
        Raises :class:`JournalValueRefused` for a value the database refuses (rolled back)."""
        import psycopg

        self.db_calls += 1
        try:
            return self._grant_txn(want, forced, returns)
        except (*_UNBINDABLE, psycopg.DataError) as exc:  # SQLSTATE class 22 or unbindable: the value, not the database
            raise refused_value("shared throttle grant", exc) from exc

    def _grant_txn(self, want: int, forced: int, returns: list[tuple[int, int]]) -> tuple[int | None, int, float]:
        owner, key = self._backend.owner_id, self.venue_key
        with self._backend.pool.connection() as conn:
            with conn.cursor() as cur:
                for returned_id, n in returns:
                    cur.execute("UPDATE flowroute.throttle_grants SET n = n - %s WHERE id = %s AND n >= %s", (n, returned_id, n))
                cur.execute("INSERT INTO flowroute.throttle_keys (venue_key) VALUES (%s) ON CONFLICT DO NOTHING", (key,))
                cur.execute("SELECT 1 FROM flowroute.throttle_keys WHERE venue_key = %s FOR UPDATE", (key,))
                cur.execute("DELETE FROM flowroute.throttle_grants WHERE venue_key = %s AND until_ts <= clock_timestamp()", (key,))
                total, mine, wait_s = cur.execute(
                    "SELECT coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE owner_id = %s), 0), "
                    "coalesce(extract(epoch FROM min(until_ts) - clock_timestamp()), 0) "
                    "FROM flowroute.throttle_grants WHERE venue_key = %s", (owner, key)).fetchone()
                k = max(0, min(want, self.max_calls - int(total), self.cap - int(mine)))
                gid: int | None = None
                if k + forced:
                    gid = cur.execute(
                        "INSERT INTO flowroute.throttle_grants (venue_key, owner_id, n, granted_at, until_ts) "
                        "VALUES (%s, %s, %s, clock_timestamp(), clock_timestamp() + make_interval(secs => %s)) RETURNING id",
                        (key, owner, k + forced, self.window_s + self._ttl)).fetchone()[0]
            conn.commit()
        return gid, k, float(wait_s)

    def close(self) -> None:
        """Stop the refill thread and hand back what is unused (best effort)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5.0)
        with self._lock:
            returns = self._returns + [(g[1], g[2]) for g in self._grants if g[2]]
            self._grants.clear()
            self._returns = []
        if returns:
            try:
                self._grant(0, 0, returns)
            except Exception as exc:  # noqa: BLE001 - closing: the slots expire on the server anyway
                logger.warning("shared throttle {}: could not hand back {} call(s): {}", self.venue_key,
                               sum(n for _, n in returns), exc)

    def __repr__(self) -> str:
        return f"SharedThrottle({self.venue_key}, {self.max_calls}/{self.window_s:g}s, cap={self.cap})"
