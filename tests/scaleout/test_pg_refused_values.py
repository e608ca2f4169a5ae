"""A value PostgreSQL refuses is the row's fault, not the disk's (docs/DESIGN.md "What written means").

PostgreSQL refuses values SQLite takes: a NUL character in text (psycopg: "PostgreSQL text fields
cannot contain NUL (0x00) bytes", ``DataError``) and an integer beyond its column's range (SQLSTATE
22003, ``NumericValueOutOfRange``, a ``DataError``: SQL's class 22, "data exception"). The journal
raises :class:`~actors.journal.sqlite.JournalValueRefused` (a ``ValueError``; nothing written) for
them on every write, as it does on SQLite, and not :class:`~actors.journal.sqlite.JournalError` (a
failing write: trading HALTED until it goes through, which a refused value never does). Before,
one such value kept a PostgreSQL runtime HALTED for ever.
"""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from _adapters import TestAdapter
from conftest import EventLog, ctx, limit, registry_of, wait_until

from actors import FakeClock
from actors.journal.postgres import PostgresBackend
from actors.journal.sqlite import Claim, Completion, JournalError, JournalValueRefused, OrderEventRow
from actors.kernel.base import tell
from actors.orders.messages import VenueEventReceived
from protocols import DurableWriteFailed, ErrorCode, Fill, JournalRowRefused, Liquidity, OrderStatus, VenueEvent

NUL = "V-\x00-1"


@pytest.fixture
def journal(pg_url):
    backend = PostgresBackend.open(pg_url)
    try:
        yield backend.journal()
    finally:
        backend.close()


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def event(seq: int, **kw) -> OrderEventRow:
    return OrderEventRow(seq, 1000.0 + seq, "acc-1", "o-1", "NEW", "ACCEPTED", **kw)


@pytest.mark.parametrize("bad", [{"cause": "ok\x00"}, {"venue_order_id": NUL}, {"error_message": "x\x00"},
                                 {"attempts": 2**31}, {"attempts": 2**70}, {"venue_order_id": "V-\ud800"}],
                         ids=["nul-cause", "nul-venue-order-id", "nul-error", "int4-overflow", "huge-int", "surrogate"])
def test_a_refused_ledger_row_is_a_value_error_and_nothing_is_written(journal, pg_url, bad) -> None:
    with pytest.raises(JournalValueRefused, match="record_ledger refused a value") as info:
        journal.record_ledger([event(1), event(2, **bad)], [])
    assert isinstance(info.value, ValueError) and not isinstance(info.value, JournalError)
    assert rows(pg_url, "SELECT count(*) FROM flowroute.order_events") == [(0,)]  # the whole transaction rolled back
    assert journal.record_ledger([event(1), event(2)], []) == (2, [])  # the journal is fine
    assert journal.stats().failures == 1


def test_refused_claims_and_completions_are_value_errors(journal, pg_url) -> None:
    with pytest.raises(JournalValueRefused, match="claim_batch refused a value"):
        journal.claim_batch([Claim("acc-1", "c-1", "fp", "{}", "{}", "paper", 1000.0),
                             Claim("acc-1", "c-2", "fp", '{"x":"\x00"}', "{}", "paper", 1000.0)], 3600.0)
    assert rows(pg_url, "SELECT count(*) FROM flowroute.idempotency") == [(0,)]
    assert [r.outcome for r in journal.claim_batch([Claim("acc-1", "c-1", "fp", "{}", "{}", "paper", 1000.0)], 3600.0)] == ["CLAIMED"]
    with pytest.raises(JournalValueRefused, match="complete_batch refused a value"):
        journal.complete_batch([Completion("acc-1", "c-1", "COMPLETED", '{"s":"\x00"}', 1001.0)])
    assert rows(pg_url, "SELECT status FROM flowroute.idempotency") == [("IN_PROGRESS",)]
    with pytest.raises(JournalValueRefused, match="mark_unknown refused a value"):
        journal.mark_unknown("acc-1", "c-1", 1001.0, '{"s":"\x00"}')


def test_a_failing_write_is_still_a_journal_error(journal) -> None:
    journal.inject_failure(1)
    with pytest.raises(JournalError):
        journal.record_ledger([event(1)], [])


def test_a_row_postgresql_refuses_is_left_out_and_named_and_trading_goes_on(make_runtime, pg_url) -> None:
    """tests/execution/test_poisoned_row.py's story on PostgreSQL, with values only PostgreSQL refuses."""
    clock = FakeClock()
    venue = TestAdapter(script=["ambiguous_sent", "fill"], default="accept")
    rt = make_runtime(durable=True, journal={"url": pg_url}, routing={"policy": {"paper": "test"}},
                      registry=registry_of(venue), clock=clock)
    events = EventLog()
    rt.subscribe(events, (DurableWriteFailed, JournalRowRefused))
    assert rt.submit(limit("poison"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    rt.flush()
    resting = venue.fetch_order("poison")
    fill = Fill(trade_id="t-\x00", qty=resting.quantity, price=Decimal("100"), fee=Decimal("0.01"), fee_currency="USDT",
                liquidity=Liquidity.TAKER, ts=resting.ts)
    filled = resting.model_copy(update={"venue_order_id": NUL, "fills": (fill,), "cum_qty": resting.quantity,
                                        "leaves_qty": Decimal(0), "avg_px": Decimal("100"), "status": OrderStatus.FILLED})
    # handed to the ledger past the venue boundary (which escapes such text: tests/execution/test_venue_text.py),
    # as a value that got past every check would be: the ledger's own guard is what is tested here
    tell(rt.ledger, VenueEventReceived(VenueEvent(adapter_id=venue.adapter_id, kind="fill", state=filled, fill=fill)))
    wait_until(lambda: rt.order("poison").status is OrderStatus.FILLED, what="the venue's fill applied")
    rt.flush()
    events.wait_for(lambda evs: any(e.kind == "fill" for e in evs if isinstance(e, JournalRowRefused)), what="JournalRowRefused")
    clock.advance(10.0)
    rt.flush()
    health = rt.health()
    assert health.trading_state == "ACTIVE" and health.durable_writes == {}, health
    assert not events.of(DurableWriteFailed)
    refused = events.of(JournalRowRefused)
    assert {e.client_order_id for e in refused} == {"poison"} and {e.kind for e in refused} == {"transition", "fill"}
    assert all("NUL" in e.reason for e in refused)
    # the status history is whole, its last row without the venue order id; the fill is not there
    assert rows(pg_url, "SELECT to_status, venue_order_id FROM flowroute.order_events WHERE client_order_id = 'poison' "
                        "ORDER BY seq")[-1] == ("FILLED", None)
    assert rows(pg_url, "SELECT count(*) FROM flowroute.fills WHERE client_order_id = 'poison'") == [(0,)]
    assert rt.submit(limit("after"), ctx()).result(timeout=5).status is OrderStatus.FILLED  # trading goes on
    rt.flush()
    assert rows(pg_url, "SELECT to_status FROM flowroute.order_events WHERE client_order_id = 'after' ORDER BY seq")[-1] == ("FILLED",)


def test_a_claim_postgresql_refuses_denies_that_order_only(make_runtime, pg_url) -> None:
    """An intent whose id holds a NUL (past the models' checks: ``model_copy`` does not validate)
    is denied E_EXEC_VALIDATION naming the refusal, nothing sent; the orders claimed with it or
    after it go on. Before, the claim failed as a failing write: E_EXEC_PERSISTENCE for every
    order of its batch."""
    venue = TestAdapter(default="fill")
    rt = make_runtime(durable=True, journal={"url": pg_url}, routing={"policy": {"paper": "test"}},
                      registry=registry_of(venue))
    bad = limit("bad").model_copy(update={"client_order_id": "bad\x00"})
    futures = [rt.submit(limit("good-1"), ctx()), rt.submit(bad, ctx()), rt.submit(limit("good-2"), ctx())]
    good_1, denied, good_2 = (f.result(timeout=5) for f in futures)
    assert good_1.status is OrderStatus.FILLED and good_2.status is OrderStatus.FILLED
    assert denied.status is OrderStatus.DENIED and denied.error.code is ErrorCode.E_EXEC_VALIDATION, denied
    assert "cannot store" in denied.error.message and "NUL" in denied.error.message
    assert venue.submit_count("bad\x00") == 0
    rt.flush()
    assert rt.stats()["journal"]["refused_claims"] == 1
    health = rt.health()
    assert health.trading_state == "ACTIVE"
    # in the same health view as the refused rows (before: only in stats()); an operator clears it
    assert health.refused_claims["count"] == 1 and health.refused_claims["last_client_order_id"] == "bad\x00", health
    assert "NUL" in health.refused_claims["last_reason"]
    assert rt.acknowledge_refused()[1] == health.refused_claims and rt.health().refused_claims == {}
    assert rows(pg_url, "SELECT client_order_id FROM flowroute.idempotency ORDER BY 1") == [("good-1",), ("good-2",)]


def test_the_shared_budget_classifies_a_refused_value_as_the_journals_do(pg_url) -> None:
    """PgBudget (``actors/journal/pg_budget.py``) on a value PostgreSQL refuses: reserve denies
    that order naming the refusal (before: "unavailable (DataError)", as if the database were
    down), and a flush is written again key by key so only the refused order is left out. Before,
    the flush failed whole at every retry: no order's true-up reached the shared totals again."""
    from actors.journal.pg_budget import PgBudget

    backend = PostgresBackend.open(pg_url)
    try:
        budget = PgBudget(backend)
        detail = budget.reserve("acc-1", "c-\x00", Decimal("10"), Decimal("100"))
        assert detail is not None and "cannot store a value of this order" in detail and "NUL" in detail, detail
        assert "unavailable" not in detail
        assert budget.totals("acc-1") == (Decimal(0), Decimal(0))  # nothing reserved
        assert budget.reserve("acc-1", "good", Decimal("10"), Decimal("100")) is None
        budget.restored("acc-1", "bad-\x00", Decimal("5"))
        budget.on_fill("acc-1", "good", Decimal("10"), Decimal("9"))
        assert budget.flush() is True  # the good order written, the refused one left out
        assert budget.pending == 0 and budget.refused_values == 1 and budget.flush_failures == 0
        assert budget.totals("acc-1") == (Decimal(0), Decimal(9))
        assert rows(pg_url, "SELECT client_order_id, reserved, spent FROM flowroute.budget_orders") == [
            ("good", Decimal(0), Decimal(9))]
    finally:
        backend.close()


def test_the_shared_throttle_refuses_a_venue_key_the_database_refuses_at_construction(pg_url) -> None:
    """A venue key PostgreSQL refuses (a NUL: the settings refuse it, this builds the throttle directly) raises
    JournalValueRefused naming it when the throttle is built. Before, the refill thread failed at
    every grant for ever and no call was ever admitted."""
    from actors.journal.pg_throttle import SharedThrottle

    backend = PostgresBackend.open(pg_url)
    try:
        with pytest.raises(JournalValueRefused, match=r"shared throttle grant refused a value.*NUL"):
            SharedThrottle(backend, "key-\x00", max_calls=10, window_s=1.0)
        good = SharedThrottle(backend, "key-1", max_calls=10, window_s=1.0)
        try:
            wait_until(lambda: good.try_admit() is None, what="a call admitted")
        finally:
            good.close()
    finally:
        backend.close()


#: a real PostgreSQL refusal (SQLSTATE 22003, class 22) of chosen budget rows: the reservation of
#: ``refuse-reserve*``, and the true-up (an UPDATE: its fill) of ``refuse-flush*``
REFUSE_BUDGET_ROWS = """
CREATE FUNCTION flowroute.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.client_order_id LIKE 'refuse-reserve%' OR (TG_OP = 'UPDATE' AND NEW.client_order_id LIKE 'refuse-flush%') THEN
    RAISE EXCEPTION 'value out of range for this test' USING ERRCODE = '22003';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_refuse BEFORE INSERT OR UPDATE ON flowroute.budget_orders
  FOR EACH ROW EXECUTE FUNCTION flowroute.test_refuse();
"""


def test_the_shared_budgets_refused_values_show_in_health_until_acknowledged(make_runtime, settings_factory,
                                                                             pg_url) -> None:
    """A value the PostgreSQL shared budget refuses is in ``health().refused_budget``, beside the
    journals' refused rows and claims: a refused reservation (its order denied) is listed and does
    not make the runtime unhealthy; a refused true-up (that order's values left out of the fleet's
    totals) makes it unhealthy. Both outlive a runtime restart (``refused.json``) and clear with
    ``acknowledge_refused``. Before, they were only logged and counted in ``PgBudget.refused_values``."""
    venue = TestAdapter(default="fill")
    settings = settings_factory(durable=True, journal={"url": pg_url}, routing={"policy": {"paper": "test"}},
                                risk={"budgets": {"acc-1": "1000000"}})
    rt = make_runtime(settings, registry=registry_of(venue))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(REFUSE_BUDGET_ROWS)
    denied = rt.submit(limit("refuse-reserve-1"), ctx()).result(timeout=5)
    assert denied.status is OrderStatus.DENIED and "cannot store a value" in denied.error.message, denied
    health = rt.health()
    assert health.refused_budget["count"] == 1 and health.refused_budget["left_out"] == 0, health.refused_budget
    assert health.refused_budget["last_kind"] == "reserve"
    assert health.refused_budget["last_client_order_id"] == "refuse-reserve-1"
    assert "out of range for this test" in health.refused_budget["last_reason"]
    assert health.healthy, health  # that order was denied whole and answered
    assert rt.submit(limit("refuse-flush-1"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    wait_until(lambda: rt.health().refused_budget.get("left_out") == 1, what="the refused true-up in health()")
    health = rt.health()
    assert health.refused_budget["count"] == 2 and health.refused_budget["last_kind"] == "flush", health.refused_budget
    assert health.refused_budget["last_client_order_id"] == "refuse-flush-1"
    assert health.refused_budget["last_account_id"] == "acc-1"
    assert not health.healthy and health.refused_rows == {} and health.refused_claims == {}
    assert rt.submit(limit("after"), ctx()).result(timeout=5).status is OrderStatus.FILLED  # trading goes on
    rt.stop()
    again = make_runtime(settings, registry=registry_of(TestAdapter(default="fill")))
    assert again.health().refused_budget == health.refused_budget  # kept across a runtime restart
    acknowledged = again.acknowledge_refused()
    assert acknowledged.budget == health.refused_budget and acknowledged == ({}, {}, health.refused_budget)
    assert again.health().refused_budget == {} and again.health().healthy
    assert not (settings.state_dir / "refused.json").exists()
