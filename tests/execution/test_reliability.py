"""Reliability defects found by reading the code (issue 11): every venue call has a timeout,
an inline call that overruns its budget is reported, durable-write failures fail closed."""

from __future__ import annotations

import sqlite3
import threading

from _adapters import TestAdapter
from conftest import EventLog, ctx, limit, market, quote, registry_of, wait_until

from actors import FakeClock
from actors.audit.log import verify
from actors.testing import inject_journal_failure
from protocols import AdapterCapabilities, DurableWriteFailed, DurableWriteRecovered, ErrorCode, InlineCallOverran, OrderStatus


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

    def __init__(self, clock: FakeClock, **kwargs) -> None:
        super().__init__(capabilities=AdapterCapabilities(blocking=False, inline_budget_us=1_000), **kwargs)
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


# --------------------------------------------------------------------------- fail closed on durable writes
def journal_rows(path, client_order_id: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT COUNT(*) FROM order_events WHERE client_order_id = ?", (client_order_id,)).fetchone()[0]
    finally:
        conn.close()


def test_a_failed_ledger_journal_write_halts_trading_until_it_is_written(settings_factory, make_runtime) -> None:
    clock = FakeClock()
    rt = make_runtime(settings_factory(durable=True, journal={"synchronous": "NORMAL"}), clock=clock)
    events = EventLog()
    rt.subscribe(events, (DurableWriteFailed, DurableWriteRecovered))
    rt.on_market(quote())
    assert rt.submit(market("dw-0"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    inject_journal_failure(rt, 1000, store="ledger")  # the disk is full: every ledger journal write fails
    assert rt.submit(market("dw-1"), ctx()).result(timeout=5).status is OrderStatus.FILLED  # the venue's answer
    rt.flush()
    health = rt.health()
    assert health.trading_state == "HALTED" and not health.healthy
    failing = health.durable_writes["ledger_journal"]
    assert failing["pending"] >= 1 and "injected failure" in failing["error"]
    assert journal_rows(rt.ledger_journal_path, "dw-1") == 0  # not written, and not reported as written
    assert b'exec_durable_write_failures_total{store="ledger_journal"}' in rt.metrics.exposition()
    denied = rt.submit(market("dw-2"), ctx()).result(timeout=5)
    assert denied.status is OrderStatus.DENIED and denied.error.code is ErrorCode.E_EXEC_RISK_DENIED
    assert rt.resume() == "HALTED"  # no new order on top of unwritten state, whoever asks
    clock.advance(1.0)  # a retry fails too: still halted, tried again later
    rt.flush()
    assert rt.health().trading_state == "HALTED"
    inject_journal_failure(rt, 0, store="ledger")  # the disk is repaired
    clock.advance(10.0)  # the retry timer writes what was left
    events.wait_for(lambda evs: any(isinstance(e, DurableWriteRecovered) for e in evs), what="DurableWriteRecovered")
    rt.flush()
    failed = [e.attempt for e in events.of(DurableWriteFailed) if e.store == "ledger_journal"]
    assert failed[0] == 1 and len(failed) >= 2
    assert journal_rows(rt.ledger_journal_path, "dw-1") >= 3 and journal_rows(rt.ledger_journal_path, "dw-2") >= 1
    health = rt.health()
    assert health.trading_state == "ACTIVE" and health.durable_writes == {} and health.healthy
    assert rt.submit(market("dw-3"), ctx()).result(timeout=5).status is OrderStatus.FILLED


def test_a_failed_audit_write_halts_trading_and_the_chain_stays_whole(settings_factory, make_runtime) -> None:
    clock = FakeClock()
    rt = make_runtime(settings_factory(durable=True, journal={"synchronous": "NORMAL"}), clock=clock)
    events = EventLog()
    rt.subscribe(events, (DurableWriteFailed, DurableWriteRecovered))
    rt.on_market(quote())
    assert rt.submit(market("da-0"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    inject_journal_failure(rt, 1000, store="audit")
    assert rt.submit(market("da-1"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    health = rt.health()
    assert health.trading_state == "HALTED" and "audit" in health.durable_writes
    assert rt.submit(market("da-2"), ctx()).result(timeout=5).error.code is ErrorCode.E_EXEC_RISK_DENIED
    rt.flush()
    inject_journal_failure(rt, 0, store="audit")
    clock.advance(10.0)
    events.wait_for(lambda evs: any(isinstance(e, DurableWriteRecovered) for e in evs), what="DurableWriteRecovered")
    rt.flush()
    assert rt.health().trading_state == "ACTIVE"
    path = rt.audit_path
    rt.stop()
    result = verify(path)
    assert result.ok, result
    logged = path.read_text()
    assert '"client_order_id":"da-1"' in logged and '"client_order_id":"da-2"' in logged  # nothing lost, in order


def test_a_real_ledger_journal_failure_is_not_swallowed(settings_factory, make_runtime) -> None:
    """No test hook: another process holds the ledger journal's write lock past the busy timeout
    (SQLite: "database is locked"), as a wedged disk or a stray tool would. Trading halts until the
    write goes through; before, the error was logged and the rows were lost."""
    clock = FakeClock()
    rt = make_runtime(settings_factory(durable=True, journal={"synchronous": "NORMAL"}), clock=clock)
    rt.on_market(quote())
    assert rt.submit(market("dl-0"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    other = sqlite3.connect(rt.ledger_journal_path, isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    try:
        # the ledger waits out its busy timeout (5 s) on the order's RESERVED row, fails closed, goes on
        assert rt.submit(market("dl-1"), ctx()).result(timeout=30).status is OrderStatus.FILLED
        rt.flush(timeout=30.0)
        health = rt.health()
        assert health.trading_state == "HALTED"
        assert "locked" in health.durable_writes["ledger_journal"]["error"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    clock.advance(10.0)
    wait_until(lambda: rt.health().trading_state == "ACTIVE", what="the retried write")
    assert journal_rows(rt.ledger_journal_path, "dl-1") >= 3
