"""The ledger's own durable writes (ledger journal rows, audit lines) are never on an order's path
to its venue: the RESERVED row goes with the next batch, after the order is told onward
(docs/DESIGN.md "Durability"; benchmarks/README.md "The durable path")."""

from __future__ import annotations

import threading

from conftest import ctx, market, quote, settle

from actors.journal.sqlite import SQLiteJournal
from protocols import OrderStatus


def test_an_order_reaches_its_venue_while_the_ledgers_journal_write_is_stalled(make_runtime, monkeypatch) -> None:
    release = threading.Event()
    stalled = threading.Event()
    original = SQLiteJournal.record_ledger_params  # what the ledger's batch writes with

    def slow_record_ledger(self, events, fills, archive=()):
        stalled.set()
        release.wait(10)  # a commit stuck on a slow disk
        return original(self, events, fills, archive)

    rt = make_runtime(durable=True)
    rt.on_market(quote())
    settle(rt)
    monkeypatch.setattr(SQLiteJournal, "record_ledger_params", slow_record_ledger)
    try:
        first = rt.submit(market("off-path-1"), ctx())
        # answered by the venue although the ledger's write for it is (or will be) stalled
        assert first.result(timeout=5).status is OrderStatus.FILLED
        assert stalled.wait(5)
    finally:
        release.set()
    settle(rt)
    history = [r.event for r in rt.history("off-path-1") if r.kind == "transition"]
    assert history[:2] == ["RESERVED", "SUBMITTING"] and history[-1] == "FILLED"
