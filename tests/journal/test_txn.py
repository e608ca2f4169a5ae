"""The journals' shared write bookkeeping (actors/journal/txn.py): TxnStats and InjectedFailures,
and the in-memory store that uses both on every order's path when the journal is off."""

from __future__ import annotations

import pytest

from actors.journal.sqlite import Claim, JournalError, MemoryJournal
from actors.journal.txn import InjectedFailures, JournalStats, TxnStats


def _claim(coid: str) -> Claim:
    return Claim("acc-1", coid, "fp", "{}", "{}", "paper", 1.0)


def test_txn_stats_count_items_rows_and_commit_times() -> None:
    stats = TxnStats()
    stats.committed(3, 2, begin_ns=0, commit_ns=4_000, end_ns=10_000)  # 10 µs in all, 6 µs in COMMIT
    stats.committed(5, 5, begin_ns=0, commit_ns=1_000, end_ns=2_000)
    stats.counted(1, 0)
    stats.failed()
    assert stats.snapshot() == JournalStats(batches=3, items=9, rows=7, max_batch=5, commit_us_total=7,
                                            commit_us_max=6, txn_us_total=12, failures=1)
    assert stats.snapshot().mean_batch == 3.0


def test_injected_failures_arm_the_next_n_writes_only() -> None:
    faults = InjectedFailures()
    assert not faults.armed and not faults.due()
    faults.add(2)
    assert faults.armed
    assert [faults.due(), faults.due()] == [True, True]
    assert not faults.armed and not faults.due()
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="n must be an int >= 0"):
            faults.add(bad)  # type: ignore[arg-type]


def test_a_fail_writes_callable_keeps_the_hook_armed() -> None:
    failing = [False]
    faults = InjectedFailures(lambda: failing[0])
    assert faults.armed and not faults.due()
    failing[0] = True
    assert faults.due()
    faults.add(1)
    failing[0] = False
    assert faults.due() and faults.armed and not faults.due()


def test_the_memory_store_fails_closed_once_per_armed_failure_and_counts_its_batches() -> None:
    store = MemoryJournal()
    store.inject_failure(1)
    with pytest.raises(JournalError, match="injected"):
        store.claim_batch([_claim("a"), _claim("b")], ttl_s=None)
    assert store.get("acc-1", "a") is None
    assert [r.outcome for r in store.claim_batch([_claim("a"), _claim("a")], ttl_s=None)] == ["CLAIMED", "IN_FLIGHT"]
    s = store.stats()
    assert (s.batches, s.items, s.max_batch, s.failures) == (1, 2, 2, 1)
