"""Write-transaction bookkeeping shared by every journal backend (SQLite, PostgreSQL, memory).

:class:`JournalStats` is the frozen snapshot ``JournalStore.stats()`` returns; :class:`TxnStats`
is the one place its counters are kept: a backend calls :meth:`TxnStats.committed` after each
COMMIT and :meth:`TxnStats.failed` after each rollback. :class:`InjectedFailures` is the test
hook behind ``inject_failure`` (``actors.testing.inject_journal_failure``): the next ``n``
writes fail as a full disk would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["InjectedFailures", "JournalStats", "TxnStats"]


@dataclass(frozen=True, slots=True)
class JournalStats:
    """Counters of committed write transactions (frozen).

    ``batches``: committed write transactions; ``items``: items handed to them (claims,
    completions, events, fills); ``rows``: rows actually inserted or updated;
    ``max_batch``: the most items in one transaction (the group-commit size);
    ``commit_us_total``/``commit_us_max``: time in the COMMIT statement (the fsync), µs;
    ``txn_us_total``: time from BEGIN to the end of COMMIT, µs; ``failures``: write
    transactions rolled back (each raised ``JournalError``).
    """

    batches: int = 0
    items: int = 0
    rows: int = 0
    max_batch: int = 0
    commit_us_total: int = 0
    commit_us_max: int = 0
    txn_us_total: int = 0
    failures: int = 0

    @property
    def mean_batch(self) -> float:
        """Average items per committed transaction (0.0 before the first)."""
        return self.items / self.batches if self.batches else 0.0


class TxnStats:
    """The running counters behind :class:`JournalStats` (mutable; used by its journal's one
    writing thread, as the journal itself is).

    Times are ``time.perf_counter_ns()`` readings; the counters keep whole µs.
    """

    __slots__ = ("_batches", "_commit_us_max", "_commit_us_total", "_failures", "_items", "_max_batch", "_rows",
                 "_txn_us_total")

    def __init__(self) -> None:
        self._batches = self._items = self._rows = self._max_batch = 0
        self._commit_us_total = self._commit_us_max = self._txn_us_total = self._failures = 0

    def committed(self, items: int, rows: int, begin_ns: int, commit_ns: int, end_ns: int) -> None:
        """One committed transaction of ``items`` items that wrote ``rows`` rows; ``begin_ns``,
        ``commit_ns`` and ``end_ns`` are taken at BEGIN, just before COMMIT and after it."""
        self.counted(items, rows)
        commit_us = (end_ns - commit_ns) // 1000
        self._commit_us_total += commit_us
        if commit_us > self._commit_us_max:
            self._commit_us_max = commit_us
        self._txn_us_total += (end_ns - begin_ns) // 1000

    def counted(self, items: int, rows: int) -> None:
        """One batch of ``items`` items, ``rows`` rows, with no time to count (a journal without
        transactions: the in-memory store, on every order's path when the journal is off)."""
        self._batches += 1
        self._items += items
        self._rows += rows
        if items > self._max_batch:
            self._max_batch = items

    def failed(self) -> None:
        """One write transaction rolled back."""
        self._failures += 1

    def snapshot(self) -> JournalStats:
        """The counters now, frozen."""
        return JournalStats(batches=self._batches, items=self._items, rows=self._rows, max_batch=self._max_batch,
                            commit_us_total=self._commit_us_total, commit_us_max=self._commit_us_max,
                            txn_us_total=self._txn_us_total, failures=self._failures)


class InjectedFailures:
    """The journals' failure-injection hook: :meth:`add` arms the next ``n`` writes,
    :meth:`due` says whether this write must fail (consuming one armed failure), also when the
    journal's ``fail_writes`` callable says so. ``armed`` is False when :meth:`due` cannot be
    True (nothing added, no ``fail_writes``): a hot path tests it before calling."""

    __slots__ = ("_fail_writes", "_pending", "armed")

    def __init__(self, fail_writes: Callable[[], bool] | None = None) -> None:
        self._pending = 0
        self._fail_writes = fail_writes
        self.armed = fail_writes is not None

    def add(self, n: int) -> None:
        """Fail the next ``n`` writes; ``ValueError`` unless ``n`` is an int >= 0."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        self._pending += n
        self.armed = self._pending > 0 or self._fail_writes is not None

    def due(self) -> bool:
        """True when this write must fail."""
        if self._pending > 0:
            self._pending -= 1
            self.armed = self._pending > 0 or self._fail_writes is not None
            return True
        return bool(self._fail_writes is not None and self._fail_writes())
