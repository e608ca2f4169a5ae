"""The claim ticket (actors/idempotency/ticket.py): orders leave the idempotency store before their
claim's COMMIT, and no venue call is made before that COMMIT returned.

The journal is a real SQLite file; the COMMIT is held (or failed) at its true boundary, inside
``SQLiteJournal.claim_batch`` right after the store's ``before_commit`` forwarded the orders.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import _claim_window_child as window_child
import _crash_child as crash_child
import pytest
from _adapters import TestAdapter
from conftest import ctx, limit, registry_of, wait_until

from actors import Runtime
from actors.audit.log import verify
from actors.idempotency.ticket import ClaimTicket
from actors.journal.sqlite import SQLiteJournal
from protocols import AdapterCapabilities, ErrorCode, OrderStatus

FULL = {"synchronous": "FULL"}


class HeldCommit:
    """Wraps ``SQLiteJournal.claim_batch``: for the first batch holding ``client_order_id`` the store's
    ``before_commit`` runs (the orders go on), then the COMMIT waits until :meth:`let_go`, and
    commits or, with ``fail``, fails as a disk would (``sqlite3.OperationalError``: rolled back)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, client_order_id: str, *, fail: bool = False) -> None:
        self.forwarded, self._go, self.fail = threading.Event(), threading.Event(), fail
        original = SQLiteJournal.claim_batch

        def claim_batch(journal: SQLiteJournal, claims, ttl_s, before_commit=None):
            if before_commit is None or self.forwarded.is_set() or all(c.client_order_id != client_order_id for c in claims):
                return original(journal, claims, ttl_s, before_commit)  # held once: a retry of the id commits

            def hold(results) -> None:
                before_commit(results)
                self.forwarded.set()
                assert self._go.wait(30), "the test never let the commit go"
                if self.fail:
                    raise sqlite3.OperationalError("disk I/O error (test)")

            return original(journal, claims, ttl_s, hold)

        monkeypatch.setattr(SQLiteJournal, "claim_batch", claim_batch)

    def let_go(self) -> None:
        self._go.set()


@pytest.fixture
def at_wait(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set when a venue worker starts waiting on a claim ticket (the call waits for its claim)."""
    waiting = threading.Event()
    original = ClaimTicket.wait

    def wait(ticket: ClaimTicket, timeout_s: float):
        waiting.set()
        return original(ticket, timeout_s)

    monkeypatch.setattr(ClaimTicket, "wait", wait)
    return waiting


def journal_row(rt, client_order_id: str) -> tuple | None:
    conn = sqlite3.connect(f"file:{rt.journal_path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT status FROM idempotency WHERE client_order_id = ?", (client_order_id,)).fetchone()
    finally:
        conn.close()


def ledger_status(rt, client_order_id: str) -> OrderStatus | None:
    return next((r.status for r in rt.orders() if r.client_order_id == client_order_id), None)


def test_the_venue_call_waits_for_the_claims_commit(make_runtime, monkeypatch, at_wait) -> None:
    """The order reaches the ledger, the breaker and the adapter while its claim's COMMIT is held;
    the venue is called only after the COMMIT, and then the claim is on disk."""
    held = HeldCommit(monkeypatch, "ct-1")
    venue = TestAdapter("paper")  # blocking: its calls run on the venue worker, which waits for the claim
    rt = make_runtime(durable=True, journal=FULL, registry=registry_of(venue), routing={"policy": {"paper": "paper"}})
    seen: list = []
    venue.on_submit = lambda order: seen.append(journal_row(rt, order.client_order_id))
    reply = rt.submit(limit("ct-1"), ctx())
    assert held.forwarded.wait(10)
    wait_until(lambda: at_wait.is_set() or venue.submit_count("ct-1"), what="the order waiting for its claim (or at the venue)")
    assert venue.submit_count("ct-1") == 0, "the venue was called before the claim's COMMIT"
    assert ledger_status(rt, "ct-1") is OrderStatus.RESERVED and not reply.done()
    held.let_go()
    report = reply.result(timeout=10)
    assert report.status is OrderStatus.FILLED
    assert venue.hook_errors == []
    assert seen == [("IN_PROGRESS",)]  # the claim was durable when the venue was called
    assert venue.submit_count("ct-1") == 1


def test_a_failed_commit_after_forwarding_denies_the_order_never_sent(make_runtime, monkeypatch, at_wait) -> None:
    held = HeldCommit(monkeypatch, "ct-2", fail=True)
    venue = TestAdapter("paper")
    rt = make_runtime(durable=True, journal=FULL, registry=registry_of(venue), routing={"policy": {"paper": "paper"}})
    reply = rt.submit(limit("ct-2"), ctx())
    assert held.forwarded.wait(10)
    wait_until(lambda: at_wait.is_set() or venue.submit_count("ct-2"), what="the order waiting for its claim (or at the venue)")
    assert venue.submit_count("ct-2") == 0, "the venue was called before the claim's COMMIT"
    held.let_go()
    report = reply.result(timeout=10)
    assert report.status is OrderStatus.DENIED
    assert report.error.code is ErrorCode.E_EXEC_PERSISTENCE and "nothing was sent" in report.error.message
    assert "disk I/O error (test)" in report.error.message
    rt.flush()
    assert venue.submit_count("ct-2") == 0
    assert journal_row(rt, "ct-2") is None
    assert ledger_status(rt, "ct-2") is OrderStatus.DENIED
    assert rt.stats()["journal"]["persistence_failures"] == 1
    # never claimed: the same id goes through now
    again = rt.submit(limit("ct-2"), ctx()).result(timeout=10)
    assert again.status is OrderStatus.FILLED and not again.replay
    rt.flush()
    assert venue.submit_count("ct-2") == 1


INLINE = AdapterCapabilities(blocking=False, lookup_covers_closed=True, absence_window_s=0)


@pytest.mark.parametrize("fail", [False, True], ids=["durable", "failed"])
def test_an_inline_venue_is_parked_until_the_claim_settles(make_runtime, monkeypatch, fail) -> None:
    """An inline venue is called from the adapter actor's own thread, which never waits: the order
    is parked there until the store settles the claim (sent, or DENIED and never sent)."""
    held = HeldCommit(monkeypatch, "ct-3", fail=fail)
    parked = threading.Event()
    on_settled = ClaimTicket.on_settled

    def park(ticket: ClaimTicket, fn) -> None:
        on_settled(ticket, fn)
        parked.set()

    monkeypatch.setattr(ClaimTicket, "on_settled", park)
    venue = TestAdapter("paper", capabilities=INLINE)
    rt = make_runtime(durable=True, journal=FULL, registry=registry_of(venue), routing={"policy": {"paper": "paper"}})
    reply = rt.submit(limit("ct-3"), ctx())
    assert held.forwarded.wait(10)
    assert parked.wait(10), "the adapter did not park the order while its claim's commit was held"
    assert ledger_status(rt, "ct-3") is OrderStatus.RESERVED
    assert venue.submit_count("ct-3") == 0 and not reply.done()
    held.let_go()
    report = reply.result(timeout=10)
    rt.flush()
    if fail:
        assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_PERSISTENCE
        assert venue.submit_count("ct-3") == 0
    else:
        assert report.status is OrderStatus.FILLED
        assert venue.submit_count("ct-3") == 1


def test_a_sigkill_with_the_ledger_row_durable_and_its_claim_not(tmp_path) -> None:
    """The window the ticket opens: the order's RESERVED row reached ``ledger.sqlite`` and its claim
    never committed when the process was killed. After the restart the order was never sent and
    is not rebuilt (recovery rebuilds orders from claims, as for a released claim); the caller's
    retry under the same id is sent once, and a second restart rebuilds it FILLED."""
    root = Path(__file__).resolve().parents[2]
    state = tmp_path / "state"
    proc = subprocess.run([sys.executable, str(root / "tests" / "_claim_window_child.py"), str(state)], cwd=root,
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, f"rc={proc.returncode} {proc.stderr.decode()[-2000:]}"
    with sqlite3.connect(state / "ledger.sqlite") as ledger:
        rows = ledger.execute("SELECT to_status FROM order_events WHERE client_order_id = 'ct-kill'").fetchall()
    assert rows == [("RESERVED",)]
    with sqlite3.connect(state / "journal.sqlite") as journal:
        claims = dict(journal.execute("SELECT client_order_id, status FROM idempotency").fetchall())
    assert claims == {"ct-first": "COMPLETED"}
    rt = Runtime.start(crash_child.settings_for(state))
    try:
        venue = rt.venue("paper")
        assert "ct-kill" not in venue.submission_counts()
        assert "ct-kill" not in {r.client_order_id for r in rt.orders()}
        rt.on_market(window_child.quote())
        retry = rt.submit(window_child.intent("ct-kill"), window_child.context()).result(timeout=20)
        assert retry.status is OrderStatus.FILLED and not retry.replay, retry.error
        rt.flush()
        assert venue.submission_counts()["ct-kill"] == 1 and venue.duplicate_submissions() == 0
    finally:
        rt.stop()
    rt = Runtime.start(crash_child.settings_for(state))
    try:
        rebuilt = {r.client_order_id: r for r in rt.orders()}
        assert rebuilt["ct-kill"].status is OrderStatus.FILLED and len(rebuilt["ct-kill"].fills) == 1
        assert rt.venue("paper").submission_counts()["ct-kill"] == 1
    finally:
        rt.stop()
    result = verify(state / "audit.jsonl")
    assert result.ok, result.problems
