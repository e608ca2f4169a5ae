"""The ledger's quiet check also watches RESERVED orders (actors/orders/ledger.py ``handle_QuietCheck``).

A group-commit venue's first attempt stays RESERVED in the ledger while it is in flight: its outcome
carries the SUBMITTED step (no separate ``OrderSent``). Before, the quiet check watched SUBMITTING
and PENDING_CANCEL only, so an order of such a venue whose outcome never reached the ledger stayed
RESERVED for good, its reservation held. Now it is asked about at its venue once quiet, like a
quiet SUBMITTING order, and the venue's answer is adopted. An order that is RESERVED because it is
legitimately waiting (in the throttle queue; parked until its claim's COMMIT) is still in the
adapter's hands: it is not looked up.

Time moves only in ``clock.advance`` (the fake clock); the lost outcome is dropped at the ledger's
boundary (its ``OrderFinished`` handler), the claim's COMMIT held inside ``SQLiteJournal.claim_batch``.
"""

from __future__ import annotations

import threading

import pytest
from _adapters import TestAdapter
from conftest import ObservableClock, ctx, limit, registry_of, settle, wait_until

from actors.execution.adapter import AdapterActor
from actors.journal.sqlite import SQLiteJournal
from actors.orders.ledger import LedgerActor
from protocols import AdapterCapabilities, OrderStatus

INTERVAL_S = 1.0
QUIET_S = 2.5
GROUP = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=0, group_commit=True)
INLINE = AdapterCapabilities(blocking=False, lookup_covers_closed=True, absence_window_s=0)


class GroupVenue(TestAdapter):
    """A test venue that declares group commit: its calls run in groups on the venue worker."""

    __test__ = False

    def begin_batch(self) -> None:
        pass

    def end_batch(self) -> None:
        pass


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def start(make_runtime, clock, venue, **overrides):
    overrides.setdefault("timeouts", {"attempt_s": 1.0, "deadline_s": 300.0})
    return make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": venue.adapter_id}},
                        reconcile={"interval_s": INTERVAL_S, "quiet_threshold_s": QUIET_S}, **overrides)


def test_a_group_commit_order_whose_outcome_never_came_is_found_by_the_quiet_check(make_runtime, clock, monkeypatch) -> None:
    lost: list[str] = []
    handle = LedgerActor.handle_OrderFinished

    def drop_once(ledger, message) -> None:
        if message.report.client_order_id == "qr-lost" and not lost:
            lost.append(message.report.client_order_id)  # the outcome never reaches the ledger
            return None
        return handle(ledger, message)

    monkeypatch.setattr(LedgerActor, "handle_OrderFinished", drop_once)
    venue = GroupVenue(default="fill", capabilities=GROUP)
    rt = start(make_runtime, clock, venue)
    assert rt.submit(limit("qr-lost"), ctx()).result(timeout=5).status is OrderStatus.FILLED  # the caller's answer
    settle(rt)
    assert lost == ["qr-lost"] and rt.order("qr-lost").status is OrderStatus.RESERVED
    for _ in range(20):  # quiet past the threshold: asked about at the venue, which has it FILLED
        clock.advance(INTERVAL_S)
        settle(rt)
        if rt.order("qr-lost").status is OrderStatus.FILLED:
            break
    report = rt.order("qr-lost")
    assert report.status is OrderStatus.FILLED and len(report.fills) == 1
    assert "qr-lost" in venue.fetch_calls and venue.submit_count("qr-lost") == 1


def test_an_order_waiting_in_the_throttle_queue_is_not_looked_up(make_runtime, clock) -> None:
    venue = GroupVenue(default="fill", capabilities=GROUP)
    rt = start(make_runtime, clock, venue, throttle={"max_calls": 1, "window_s": 60.0, "overflow": "queue"})
    assert rt.submit(limit("qr-first"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    waiting = rt.submit(limit("qr-queued"), ctx())  # the window's one call is spent: it waits in the queue
    settle(rt)
    assert rt.order("qr-queued").status is OrderStatus.RESERVED
    for _ in range(int(3 * QUIET_S / INTERVAL_S)):  # quiet well past the threshold, inside the window
        clock.advance(INTERVAL_S)
        settle(rt)
    assert "qr-queued" not in venue.fetch_calls and venue.submit_count("qr-queued") == 0
    assert rt.order("qr-queued").status is OrderStatus.RESERVED
    clock.advance(60.0)  # the window moves on: it is sent, once
    assert waiting.result(timeout=5).status is OrderStatus.FILLED
    settle(rt)
    assert venue.submit_count("qr-queued") == 1 and rt.order("qr-queued").status is OrderStatus.FILLED


def test_an_order_parked_until_its_claim_commits_is_not_looked_up(make_runtime, clock, monkeypatch) -> None:
    forwarded, go = threading.Event(), threading.Event()
    claim_batch = SQLiteJournal.claim_batch

    def held(journal, claims, ttl_s, before_commit=None):
        if before_commit is None or forwarded.is_set() or all(c.client_order_id != "qr-parked" for c in claims):
            return claim_batch(journal, claims, ttl_s, before_commit)

        def hold(results) -> None:
            before_commit(results)
            forwarded.set()
            assert go.wait(30), "the test never let the commit go"

        return claim_batch(journal, claims, ttl_s, hold)

    asked = threading.Event()
    tracked: list[bool] = []
    reconcile = AdapterActor.handle_ReconcileOrders

    def spy_reconcile(adapter, message) -> None:
        reconcile(adapter, message)
        if "qr-parked" in message.client_order_ids:  # what the adapter decided, on its own thread
            tracked.append("qr-parked" in adapter._recon)
            asked.set()

    monkeypatch.setattr(SQLiteJournal, "claim_batch", held)
    monkeypatch.setattr(AdapterActor, "handle_ReconcileOrders", spy_reconcile)
    venue = TestAdapter("paper", capabilities=INLINE)  # inline: parked in the adapter actor, which never waits
    rt = start(make_runtime, clock, venue, durable=True, journal={"synchronous": "FULL"})
    try:
        reply = rt.submit(limit("qr-parked"), ctx())
        assert forwarded.wait(10)
        wait_until(lambda: rt.order("qr-parked") is not None and rt.order("qr-parked").status is OrderStatus.RESERVED,
                   what="the order RESERVED, its claim's COMMIT held")
        for _ in range(12):  # quiet past the threshold: the ledger asks the adapter about it
            clock.advance(INTERVAL_S)
            if asked.wait(0.5):
                break
        assert asked.is_set(), "the quiet check never asked about the RESERVED order"
        assert tracked == [False]  # parked until its claim commits: in the adapter's hands, not looked up
        assert venue.submit_count("qr-parked") == 0 and not reply.done()
    finally:
        go.set()
    assert reply.result(timeout=10).status is OrderStatus.FILLED
    settle(rt)
    assert venue.submit_count("qr-parked") == 1 and "qr-parked" not in venue.fetch_calls
