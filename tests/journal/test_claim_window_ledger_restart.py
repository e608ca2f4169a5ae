"""A ledger restarted inside the claim window (actors/idempotency/store.py ``_forward_early``,
actors/idempotency/ticket.py; actors/orders/ledger.py ``LedgerHandover.in_window``).

The store forwards claimed orders to the ledger before the claim's COMMIT. A ledger that crashes
after taking such an order in and restarts before the COMMIT returned reads only committed claims:
before, that order was not rebuilt and its later facts (the venue's fill, the outcome) arrived
unmatched, dropped until the next start's recovery, its position missing from the books. The
crashed ledger now hands such orders over and the next generation rebuilds them from the message
and the ledger journal's rows. The crash is a real handler exception in the ledger actor; the
COMMIT is held at its true boundary (inside ``SQLiteJournal.claim_batch``, after the forward);
the restart waits for its backoff timer on the fake clock.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import ObservableClock, child, ctx, limit, quote, registry_of, settle, wait_until

from actors.journal.sqlite import SQLiteJournal
from actors.orders.messages import SetTradingState
from protocols import OrderStatus

BACKOFF_MAX = 0.5  # above every restart delay of the test profile


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def test_a_ledger_restarted_before_the_claims_commit_rebuilds_the_forwarded_order(make_runtime, clock, monkeypatch) -> None:
    forwarded, go = threading.Event(), threading.Event()
    claim_batch = SQLiteJournal.claim_batch

    def held(journal, claims, ttl_s, before_commit=None):
        if before_commit is None or forwarded.is_set() or all(c.client_order_id != "lw-1" for c in claims):
            return claim_batch(journal, claims, ttl_s, before_commit)

        def hold(results) -> None:
            before_commit(results)  # the order goes on to the ledger, breaker and adapter
            forwarded.set()
            assert go.wait(30), "the test never let the commit go"

        return claim_batch(journal, claims, ttl_s, hold)

    monkeypatch.setattr(SQLiteJournal, "claim_batch", held)
    venue = TestAdapter("paper")  # blocking: the venue worker waits for the claim's COMMIT before calling it
    rt = make_runtime(durable=True, journal={"synchronous": "FULL"}, registry=registry_of(venue), clock=clock,
                      routing={"policy": {"paper": "paper"}})
    rt.on_market(quote())
    try:
        reply = rt.submit(limit("lw-1"), ctx())
        assert forwarded.wait(10)
        wait_until(lambda: rt.order("lw-1") is not None and rt.order("lw-1").status is OrderStatus.RESERVED,
                   what="the order taken in by the ledger, its claim's COMMIT held")
        rt.ledger.tell(SetTradingState("BOGUS"))  # the ledger's handler raises: it crashes inside the window
        wait_until(lambda: child(rt, "ledger").state == "restarting", what="the ledger restarting")
        clock.wait_timer(lambda delay: delay < BACKOFF_MAX, what="the restart timer of the ledger")
        clock.advance(BACKOFF_MAX)
        wait_until(lambda: child(rt, "ledger").state == "running", what="the ledger running again")
        assert venue.submit_count("lw-1") == 0 and not reply.done()  # still inside the window
        # the new generation read the committed claims only, and still knows the order
        assert rt.order("lw-1") is not None and rt.order("lw-1").status is OrderStatus.RESERVED
    finally:
        go.set()
    assert reply.result(timeout=10).status is OrderStatus.FILLED
    settle(rt)
    after = rt.order("lw-1")
    assert after.status is OrderStatus.FILLED and after.cum_qty == Decimal("0.001") and len(after.fills) == 1
    assert rt.positions()  # the fill reached the books of the restarted ledger
    assert rt.health().trading_state == "ACTIVE"
    assert venue.submit_count("lw-1") == 1
