"""The asynchronous adapter's park path (actors/execution/adapter.py ``_send`` / ``handle_ClaimSettled``,
actors/idempotency/ticket.py).

An adapter that sends without blocking (``capabilities.sends_async``: the FIX venue) never waits in
its actor for a claim's COMMIT: an order forwarded before its claim's COMMIT is parked until the
store's ``ClaimSettled``, then sent (durable) or answered DENIED E_EXEC_PERSISTENCE with nothing
sent (failed). The COMMIT is held, or failed as a disk would fail it, at its true boundary (inside
``SQLiteJournal.claim_batch``, after the store forwarded the orders: ``journal.test_claim_ticket.HeldCommit``). First with an asynchronous
fake venue (the ``AsyncSender`` boundary), then through a real QuickFIX executor.
"""

from __future__ import annotations

import threading

import pytest
from _adapters import TestAdapter
from conftest import ctx, registry_of, wait_until
from conftest import limit as paper_limit
from journal.test_claim_ticket import HeldCommit

from actors.idempotency.ticket import ClaimTicket
from protocols import AdapterCapabilities, ErrorCode, OrderStatus, VenueOrder

from .conftest import incoming, limit, live, needs_peers

ASYNC = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=0, sends_async=True)


@pytest.fixture
def parked(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set when the adapter actor parks an order on its claim ticket (``ClaimTicket.on_settled``)."""
    event = threading.Event()
    on_settled = ClaimTicket.on_settled

    def park(ticket: ClaimTicket, fn) -> None:
        on_settled(ticket, fn)
        event.set()

    monkeypatch.setattr(ClaimTicket, "on_settled", park)
    return event


class AsyncVenue(TestAdapter):
    """A blocking test venue that also sends without waiting: ``send_order`` books the order as
    ``submit_order`` would and answers ``done`` from a thread of its own, as a venue's reader does."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__("paper", capabilities=ASYNC)
        self.sent: list[str] = []

    def send_order(self, order: VenueOrder, done) -> bool:
        self.sent.append(order.client_order_id)

        def answer() -> None:
            try:
                result = self.submit_order(order)
            except Exception as exc:  # noqa: BLE001 - handed to the runtime as the venue's error
                done(None, exc)
            else:
                done(result, None)

        threading.Thread(target=answer, name="async-venue-reader", daemon=True).start()
        return True

    def send_cancel(self, client_order_id: str, done) -> bool:
        return False  # the worker's blocking cancel instead


@pytest.mark.parametrize("fail", [False, True], ids=["durable", "failed"])
def test_an_asynchronous_venue_is_parked_until_the_claim_settles(make_runtime, monkeypatch, parked, fail) -> None:
    held = HeldCommit(monkeypatch, "ap-1", fail=fail)
    venue = AsyncVenue()
    rt = make_runtime(durable=True, journal={"synchronous": "FULL"}, registry=registry_of(venue),
                      routing={"policy": {"paper": "paper"}})
    try:
        reply = rt.submit(paper_limit("ap-1"), ctx())
        assert held.forwarded.wait(10)
        assert parked.wait(10), "the adapter did not park the order while its claim's COMMIT was held"
        assert venue.sent == [] and venue.submit_count("ap-1") == 0 and not reply.done()
    finally:
        held.let_go()
    report = reply.result(timeout=10)
    rt.flush()
    if fail:
        assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_PERSISTENCE
        assert "nothing was sent" in report.error.message
        assert venue.sent == [] and venue.submit_count("ap-1") == 0
    else:
        assert report.status is OrderStatus.FILLED
        assert venue.sent == ["ap-1"] and venue.submit_count("ap-1") == 1  # sent once, asynchronously


@needs_peers
@pytest.mark.parametrize("fail", [False, True], ids=["durable", "failed"])
def test_a_fix_order_is_parked_until_the_claim_settles(peer, fix_runtime, monkeypatch, parked, fail) -> None:
    executor = peer("executor")
    rt = fix_runtime(executor, "CLIENT1", "EXECUTOR", durable=True)
    assert rt.submit(limit("BUY", "0.5", "100", tif="GTC"), live()).result(timeout=10).status is OrderStatus.FILLED  # logged on
    intent = limit("BUY", "0.25", "101", tif="GTC")
    held = HeldCommit(monkeypatch, intent.client_order_id, fail=fail)
    parked.clear()
    try:
        reply = rt.submit(intent, live())
        assert held.forwarded.wait(10)
        assert parked.wait(10), "the FIX adapter did not park the order while its claim's COMMIT was held"
        assert incoming(executor, "D", intent.client_order_id) == 0 and not reply.done()
    finally:
        held.let_go()
    report = reply.result(timeout=10)
    rt.flush()
    if fail:
        assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_PERSISTENCE
        assert incoming(executor, "D", intent.client_order_id) == 0
    else:
        assert report.status is OrderStatus.FILLED
        wait_until(lambda: incoming(executor, "D", intent.client_order_id) == 1, what="the executor's log of the order")
        assert incoming(executor, "D", intent.client_order_id) == 1
