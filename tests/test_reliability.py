"""Reliability defects found by reading the code (issue 11): every venue call has a timeout,
an inline call that overruns its budget is reported, durable-write failures fail closed."""

from __future__ import annotations

import threading

from actors import FakeClock
from protocols import AdapterCapabilities, InlineCallOverran, OrderStatus

from _adapters import TestAdapter
from conftest import EventLog, ctx, limit, registry_of


class HangingLookups(TestAdapter):
    """A venue whose ``fetch_order`` never returns (until the test lets it go at the end)."""

    __test__ = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.let_go = threading.Event()
        self.lookups = 0

    def fetch_order(self, client_order_id: str):
        self.lookups += 1
        self.let_go.wait()
        return None


def test_a_hung_venue_lookup_does_not_hang_start(settings_factory, make_runtime) -> None:
    """Start-up recovery bounds each fetch_order: a venue that never answers leaves its orders
    UNKNOWN (reconciled later by the adapter actor) and Runtime.start returns."""
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, routing={"policy": {"paper": "test"}},
                                timeouts={"attempt_s": 0.2, "deadline_s": 5.0})
    first = TestAdapter(script=["ambiguous_sent", "ambiguous_sent"])
    rt = make_runtime(settings, registry=registry_of(first), clock=FakeClock())
    ids = ["hang-1", "hang-2"]
    for cl_id in ids:
        assert rt.submit(limit(cl_id), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    rt.stop()

    hung = HangingLookups()
    started: list = []
    boot = threading.Thread(target=lambda: started.append(make_runtime(settings, registry=registry_of(hung), clock=FakeClock())),
                            daemon=True)
    try:
        boot.start()
        boot.join(timeout=60)
        assert not boot.is_alive(), "Runtime.start hung on a venue lookup"
        rt2 = started[0]
        assert rt2.recovery.counts() == {"unresolved": 2}
        assert all("no answer within 0.2 s" in o.note for o in rt2.recovery.orders)
        assert hung.lookups == 1  # a venue that missed a deadline is not asked again during start
        for cl_id in ids:
            assert rt2.order(cl_id).status is OrderStatus.UNKNOWN
    finally:
        hung.let_go.set()


class SlowInlineVenue(TestAdapter):
    """A non-blocking (inline) venue whose submit takes ``cost_s`` on the runtime's fake clock."""

    __test__ = False
    blocking = False
    capabilities = AdapterCapabilities(blocking=False, inline_budget_us=1_000)

    def __init__(self, clock: FakeClock, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.cost_s = 0.0

    def submit_order(self, order):
        self.clock.advance(self.cost_s)  # time passes inside the call, as a slow simulator's would
        return super().submit_order(order)


def test_an_inline_call_over_its_budget_is_reported(make_runtime) -> None:
    """An inline call cannot be pre-empted: it is measured on the runtime's clock and an overrun of
    ``inline_budget_us`` is reported as an InlineCallOverran event, a log line and a metric."""
    clock = FakeClock()
    venue = SlowInlineVenue(clock)
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}})
    events = EventLog()
    rt.subscribe(events, InlineCallOverran)
    assert rt.submit(limit("inline-fast"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    venue.cost_s = 0.005
    assert rt.submit(limit("inline-slow"), ctx()).result(timeout=5).status is OrderStatus.FILLED  # still answered
    events.wait_for(lambda evs: evs, what="InlineCallOverran")
    rt.flush()
    (event,) = events.of(InlineCallOverran)
    assert (event.adapter_id, event.call, event.client_order_id) == ("test", "submit", "inline-slow")
    assert (event.elapsed_us, event.budget_us) == (5_000, 1_000)
    assert b'exec_inline_overruns_total{adapter="test"} 1.0' in rt.metrics.exposition()
