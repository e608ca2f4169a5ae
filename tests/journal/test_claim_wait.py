"""``journal.claim_wait_s``: how long a venue call forwarded before its claim's COMMIT waits for that
commit on the venue worker (actors/execution/adapter.py ``VenueWorker``, actors/idempotency/ticket.py).

A setting (config ``JournalSettings``, environment ``FLOWROUTE_JOURNAL__CLAIM_WAIT_S``), validated at
start, and the bound the worker really uses: the COMMIT is held past it at its true boundary (inside
``SQLiteJournal.claim_batch``, after the orders went on), so the call is answered DENIED
E_EXEC_PERSISTENCE naming the configured bound, and nothing is sent.
"""

from __future__ import annotations

import threading

import pytest
from _adapters import TestAdapter
from conftest import ctx, limit, registry_of

from actors.execution.adapter import VenueWorker
from actors.journal.sqlite import SQLiteJournal
from config import ConfigError, load_settings
from protocols import ErrorCode, OrderStatus


def test_the_setting_has_its_default_and_an_environment_form(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().journal.claim_wait_s == 10.0
    monkeypatch.setenv("FLOWROUTE_JOURNAL__CLAIM_WAIT_S", "2.5")
    assert load_settings().journal.claim_wait_s == 2.5


@pytest.mark.parametrize("bad", [0, -1, "nan", "inf", "soon"])
def test_a_bad_claim_wait_is_refused_naming_the_key(bad) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(journal={"claim_wait_s": bad})
    assert [key for key, _ in info.value.errors] == ["journal.claim_wait_s"]


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), True, "1"])
def test_the_venue_worker_refuses_a_bad_bound(bad) -> None:
    with pytest.raises(ValueError, match="claim_wait_s"):
        VenueWorker("test-worker", lambda outcome: None, claim_wait_s=bad)


def test_the_worker_waits_for_the_claim_at_most_the_configured_bound(make_runtime, monkeypatch) -> None:
    forwarded, go = threading.Event(), threading.Event()
    original = SQLiteJournal.claim_batch

    def claim_batch(journal, claims, ttl_s, before_commit=None):
        if before_commit is None or forwarded.is_set() or all(c.client_order_id != "cw-1" for c in claims):
            return original(journal, claims, ttl_s, before_commit)

        def hold(results) -> None:
            before_commit(results)  # the order goes on to the ledger, breaker and adapter
            forwarded.set()
            assert go.wait(30), "the test never let the commit go"

        return original(journal, claims, ttl_s, hold)

    monkeypatch.setattr(SQLiteJournal, "claim_batch", claim_batch)
    venue = TestAdapter("paper")  # blocking: its calls run on the venue worker, which waits for the claim
    rt = make_runtime(durable=True, journal={"synchronous": "FULL", "claim_wait_s": 0.05}, registry=registry_of(venue),
                      routing={"policy": {"paper": "paper"}})
    reply = rt.submit(limit("cw-1"), ctx())
    assert forwarded.wait(10)
    try:
        report = reply.result(timeout=30)  # the COMMIT is held until after the answer: the wait ran out
    finally:
        go.set()
    assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_PERSISTENCE
    assert "not durable within 0.05 s" in report.error.message
    rt.flush()
    assert venue.submit_count("cw-1") == 0
