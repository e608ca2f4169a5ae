"""An injected hang holds only its own call (protocols/venues/faults.py). Around a venue that commits
its calls in groups (the durable paper book: ``group_commit``, docs/DESIGN.md "Durability"), the
fault adapter does not group calls while its plan can block one (``hang`` or ``slow``): a real venue
that hangs one call still answers the calls sent before it. When it passed ``begin_batch`` /
``end_batch`` through, the calls grouped with a hung one waited for it (a group's answers go out only
after its ``end_batch``) and ended UNKNOWN once the worker was abandoned at the attempt timeout."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from conftest import ctx, market, quote, settle

from actors import AdapterRegistry
from protocols import OrderStatus, VenueOrder, VenueOrderState
from protocols.venues import FaultInjectingAdapter, FaultPlan, PaperVenue


class _HoldOne:
    """The durable paper venue, whose submit of one client order id waits until the test releases it,
    so the orders sent meanwhile queue up behind it at the adapter's venue worker."""

    def __init__(self, inner: PaperVenue, held: str) -> None:
        self._inner, self._held = inner, held
        self.entered, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def adapter_id(self) -> str:
        return self._inner.adapter_id

    @property
    def capabilities(self):
        return self._inner.capabilities

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        if order.client_order_id == self._held:
            self.entered.set()
            self.release.wait(30)
        return self._inner.submit_order(order)


def test_a_hung_call_does_not_hold_the_calls_queued_with_it(make_runtime, settings_factory, tmp_path: Path) -> None:
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, timeouts={"attempt_s": 20.0, "deadline_s": 30.0},
                                routing={"policy": {"paper": "paper"}})
    paper = PaperVenue("paper", book_path=tmp_path / "paper_book.sqlite")
    assert paper.capabilities.group_commit  # the venue groups calls; the fault adapter must not, with hangs planned
    held = _HoldOne(paper, "grp-first")
    faulty = FaultInjectingAdapter(held, FaultPlan(hang=0.5, seed=2))  # seed 2: no fault, no fault, then a hang
    registry = AdapterRegistry()
    registry.register("paper", lambda s: faulty, rebuild=False)
    rt = make_runtime(settings, registry=registry)
    rt.on_market(quote())
    first = rt.submit(market("grp-first"), ctx())
    assert held.entered.wait(10)
    a = rt.submit(market("grp-a"), ctx())
    b = rt.submit(market("grp-b"), ctx())
    settle(rt)  # both handed to the venue worker: queued behind the held call
    held.release.set()
    assert first.result(timeout=10).status is OrderStatus.FILLED
    assert faulty.wait_for_hangs(1, timeout=10)  # grp-b hangs at the venue ...
    assert a.result(timeout=10).status is OrderStatus.FILLED  # ... and grp-a, sent before it, is answered meanwhile
    assert not b.done()
    faulty.release_hangs()
    assert b.result(timeout=30).status is OrderStatus.UNKNOWN  # no answer: in doubt, reconciled
    assert faulty.stats()["hang"] == 1 and faulty.stats()["calls"] == 3
