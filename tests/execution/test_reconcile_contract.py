"""Adapter contract v2 in reconciliation: a lookup is found, proven absent, or unknown.

Story 1 of issue 11: a venue whose order query lags ("order does not exist" for a while after
accepting) and that refuses duplicate client order ids. "Not found" used to be taken as proof
of absence: the runtime re-sent the id, the venue refused the duplicate, the order was
recorded REJECTED while it rested at the venue, and its later fill was refused. Now an order
that may have reached the venue is re-sent only on proof of absence; otherwise it stays
UNKNOWN with its reservation, is looked up on a backoff schedule, escalates after
``reconcile.max_attempts`` lookups, and is settled by positive evidence from any source.

Fake clock throughout (``ObservableClock``); ``settle`` lets the actors process what the
timers told them.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ObservableClock, ctx, limit, registry_of, settle, wait_until

from actors import Runtime
from actors.runtime.recovery import RecoveryOutcome, _ask_venue
from protocols import (
    DEFAULT_CAPABILITIES,
    AdapterCapabilities,
    OrderReconciled,
    OrderStatus,
    ReconciliationEscalated,
    adapter_capabilities,
)
from protocols.venues import FaultInjectingAdapter, FaultPlan, PaperVenue

ATTEMPT_S = 30.0
INTERVAL_S = 1.0
QUIET_S = 2.5
MAX_ATTEMPTS = 4


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


@pytest.fixture
def start(make_runtime, clock):
    def make(*adapters, **overrides):
        overrides.setdefault("timeouts", {"attempt_s": ATTEMPT_S, "deadline_s": 10 * ATTEMPT_S})
        overrides.setdefault("reconcile", {"interval_s": INTERVAL_S, "quiet_threshold_s": QUIET_S,
                                           "max_attempts": MAX_ATTEMPTS, "backoff_cap_s": 8.0})
        return make_runtime(registry=registry_of(*adapters), clock=clock,
                            routing={"policy": {"paper": adapters[0].adapter_id}}, **overrides)

    return make


def run_for(rt: Runtime, clock: ObservableClock, seconds: float, step: float = INTERVAL_S) -> None:
    """Advance the fake clock ``seconds`` in ``step`` s ticks; after each, wait until the actors
    and the venue workers are idle (a lookup due at a tick runs, and is answered, before the
    clock moves on: under load a worker could otherwise run it ticks later, at a later time)."""
    for _ in range(round(seconds / step)):
        clock.advance(step)
        rt.flush(timeout=5, venue_calls=True)


def timed_fetches(venue: TestAdapter, clock: ObservableClock) -> list[float]:
    """Record the clock time of every ``fetch_order`` call of ``venue`` (returns the live list)."""
    times: list[float] = []
    inner = venue.fetch_order

    def fetch_order(client_order_id: str):
        times.append(clock.monotonic())
        return inner(client_order_id)

    venue.fetch_order = fetch_order  # type: ignore[method-assign]
    return times


# --------------------------------------------------------------------------- story 1


def test_story1_lagging_lookup_is_never_taken_as_absence_and_the_later_fill_is_booked(start, clock) -> None:
    # a real exchange: accepts, loses the answer, its order query says "does not exist" for 20 s,
    # refuses duplicate ids; it declares nothing (lookups never prove absence)
    venue = TestAdapter(script=["ambiguous_sent"], default="accept", capabilities=DEFAULT_CAPABILITIES,
                        lookup_lag_s=20.0, clock=clock)
    rt = start(venue)
    first = rt.submit(limit("story1"), ctx()).result(timeout=5)
    assert first.status is OrderStatus.UNKNOWN
    settle(rt)
    run_for(rt, clock, 15.0)
    assert len(venue.fetch_calls) >= 2  # asked, answered "not found" ...
    assert venue.submit_calls == ["story1"]  # ... and never re-sent
    assert rt.order("story1").status is OrderStatus.UNKNOWN
    venue.fill("story1")  # the venue fills the resting order and pushes the fill
    wait_until(lambda: rt.order("story1").status is OrderStatus.FILLED, what="FILLED from the venue's fill")
    settle(rt)
    assert {p.account_id: p.net_qty for p in rt.positions()} == {"acc-1": Decimal("0.001")}
    assert venue.submit_calls == ["story1"] and venue.delivered_count("story1") == 1
    again = rt.submit(limit("story1"), ctx()).result(timeout=5)  # a retry replays the settled report
    assert again.replay and again.status is OrderStatus.FILLED


def test_lagging_lookup_inside_the_declared_window_is_found_later_never_resent(start, clock) -> None:
    caps = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=30.0)
    venue = TestAdapter(script=["ambiguous_sent"], default="accept", capabilities=caps, lookup_lag_s=12.0, clock=clock)
    rt = start(venue)
    assert rt.submit(limit("lag-w"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    log = EventLog()
    rt.subscribe(log, OrderReconciled)
    run_for(rt, clock, 30.0)
    wait_until(lambda: rt.order("lag-w").status is OrderStatus.ACCEPTED, what="ACCEPTED once the query caught up")
    assert venue.submit_calls == ["lag-w"]
    assert log.wait_for(lambda evs: evs, what="OrderReconciled")[0].previous_status is OrderStatus.UNKNOWN


def test_proof_of_absence_only_after_the_window_then_resent_once_with_the_same_id(start, clock) -> None:
    caps = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=10.0)
    venue = TestAdapter(script=["ambiguous"], default="fill", capabilities=caps)  # the request never arrived
    fetched = timed_fetches(venue, clock)
    rt = start(venue)
    t0 = clock.monotonic()
    assert rt.submit(limit("absent-w"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    run_for(rt, clock, 9.0)
    assert fetched and venue.submit_calls == ["absent-w"]  # looked up inside the window: not proof
    assert rt.order("absent-w").status is OrderStatus.UNKNOWN
    run_for(rt, clock, 12.0)
    wait_until(lambda: rt.order("absent-w").status is OrderStatus.FILLED, what="FILLED after the re-send")
    assert venue.submit_calls == ["absent-w", "absent-w"] and venue.delivered_count("absent-w") == 1
    resend_after = [t - t0 for t in fetched][-1]
    assert resend_after >= 10.0


def test_duplicate_reject_of_a_resend_keeps_the_order_in_doubt_never_rejected(start, clock) -> None:
    # a venue that wrongly claims authority: "not found", then refuses the re-send as a duplicate
    venue = TestAdapter(script=["ambiguous_sent"], default="accept", fetch_script=[None])
    rt = start(venue)
    assert rt.submit(limit("dup-rs"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    run_for(rt, clock, 4.0)
    wait_until(lambda: venue.submit_count("dup-rs") == 2, what="the re-send")
    settle(rt)
    assert rt.order("dup-rs").status is OrderStatus.UNKNOWN
    run_for(rt, clock, 4.0)
    wait_until(lambda: rt.order("dup-rs").status is OrderStatus.ACCEPTED, what="ACCEPTED from the next lookup")
    venue.fill("dup-rs")
    wait_until(lambda: rt.order("dup-rs").status is OrderStatus.FILLED, what="the fill booked")


# --------------------------------------------------------------------------- backoff, escalation, evidence


def test_unknown_lookups_back_off_escalate_degrade_health_and_evidence_settles_it(start, clock) -> None:
    venue = TestAdapter(script=["ambiguous_sent"], default="accept", capabilities=DEFAULT_CAPABILITIES,
                        lookup_lag_s=10_000.0, clock=clock)
    fetched = timed_fetches(venue, clock)
    rt = start(venue)
    log = EventLog()
    rt.subscribe(log, ReconciliationEscalated)
    assert rt.submit(limit("esc-1"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    run_for(rt, clock, 40.0)
    assert len(fetched) >= MAX_ATTEMPTS + 1  # the lookups go on after the escalation
    gaps = [b - a for a, b in itertools.pairwise(fetched)]
    assert gaps[0] < 2.0 and max(gaps) >= 6.0 and max(gaps) <= 8.0 * 1.2 + INTERVAL_S  # doubling, capped
    ev = log.wait_for(lambda evs: evs, what="ReconciliationEscalated")
    assert len(ev) == 1 and ev[0].client_order_id == "esc-1" and ev[0].attempts == MAX_ATTEMPTS
    assert ev[0].status is OrderStatus.UNKNOWN and "does not cover closed orders" in ev[0].reason
    health = rt.health()
    assert health.escalated == {"esc-1": MAX_ATTEMPTS} and not health.healthy
    assert rt.stats()["risk_invariants"] == [] and venue.submit_calls == ["esc-1"]
    # positive evidence from another source (a pushed fill) settles it at any time
    venue.fill("esc-1", Decimal("0.0004"))
    wait_until(lambda: rt.order("esc-1").status is OrderStatus.PARTIALLY_FILLED, what="evidence applied")
    settle(rt)
    assert rt.health().escalated == {} and rt.health().healthy
    n = len(fetched)
    run_for(rt, clock, 40.0)
    assert len(fetched) == n  # the adapter stopped looking it up
    assert venue.submit_calls == ["esc-1"]


def test_a_venue_without_lookup_is_never_asked_and_still_escalates(start, clock) -> None:
    venue = TestAdapter(script=["ambiguous_sent"], default="accept",
                        capabilities=AdapterCapabilities(supports_lookup=False))
    rt = start(venue)
    assert rt.submit(limit("nolookup"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    run_for(rt, clock, 40.0)
    assert venue.fetch_calls == [] and venue.submit_calls == ["nolookup"]
    assert rt.health().escalated == {"nolookup": MAX_ATTEMPTS}


def test_an_unknown_order_keeps_its_reservation_until_settled(start, clock) -> None:
    venue = TestAdapter(script=["ambiguous_sent"], default="accept", capabilities=DEFAULT_CAPABILITIES,
                        lookup_lag_s=10_000.0, clock=clock)
    rt = start(venue, risk={"default_budget": "1000"})
    assert rt.submit(limit("resv"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    settle(rt)
    run_for(rt, clock, 20.0)
    reserved = Decimal(rt.stats()["exposure"]["acc-1"]["reserved"])
    assert reserved > 0
    venue.fill("resv")
    wait_until(lambda: rt.order("resv").status is OrderStatus.FILLED, what="FILLED")
    settle(rt)
    assert Decimal(rt.stats()["exposure"]["acc-1"]["reserved"]) == 0


# --------------------------------------------------------------------------- after a restart


def test_after_a_restart_absence_is_proven_after_the_window_then_failed_not_resent(make_runtime, settings_factory, clock) -> None:
    settings = settings_factory(durable=True, journal={"enabled": True, "synchronous": "FULL"},
                                timeouts={"attempt_s": ATTEMPT_S, "deadline_s": 10 * ATTEMPT_S},
                                reconcile={"interval_s": INTERVAL_S, "quiet_threshold_s": QUIET_S}, routing={"policy": {"paper": "test"}})
    first = TestAdapter(script=[("block", "ambiguous")], block_timeout_s=0.01)  # the send never arrives
    rt = make_runtime(settings, registry=registry_of(first), clock=clock)
    fut = rt.submit(limit("rst-1"), ctx())
    assert first.wait_entered(1)
    rt.stop(timeout=5)
    assert fut.result(timeout=5).status is OrderStatus.UNKNOWN
    caps = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=10.0)
    second = TestAdapter(capabilities=caps)  # its book has no such order
    clock2 = ObservableClock()
    rt2 = make_runtime(settings, registry=registry_of(second), clock=clock2)
    assert rt2.recovery.counts() == {"unresolved": 1}  # not proof inside the window
    run_for(rt2, clock2, 8.0)
    assert rt2.order("rst-1").status is OrderStatus.UNKNOWN
    run_for(rt2, clock2, 10.0)
    wait_until(lambda: rt2.order("rst-1").status is OrderStatus.FAILED, what="FAILED after proof of absence")
    assert second.submit_calls == []  # never re-sent after a restart (docs/DESIGN.md)
    assert "never delivered" in rt2.order("rst-1").error.message


@pytest.mark.parametrize(("caps", "outcome"), [
    (AdapterCapabilities(lookup_covers_closed=True, absence_window_s=0), RecoveryOutcome.NEVER_DELIVERED),
    (AdapterCapabilities(lookup_covers_closed=True, absence_window_s=3), RecoveryOutcome.UNRESOLVED),
    (DEFAULT_CAPABILITIES, RecoveryOutcome.UNRESOLVED),
    (AdapterCapabilities(supports_lookup=False, lookup_covers_closed=True, absence_window_s=0), RecoveryOutcome.UNRESOLVED),
])
def test_recovery_classifies_not_found_with_the_adapter_capabilities(caps, outcome) -> None:
    venue = TestAdapter(capabilities=caps)
    state, got, note = _ask_venue(venue, "never-seen")
    assert state is None and got is outcome, note  # the typed outcome, not a string equal to it


# --------------------------------------------------------------------------- declarations


def test_capabilities_are_read_in_one_place_and_a_wrong_declaration_is_refused() -> None:
    class Bare:
        adapter_id = "bare"

    assert adapter_capabilities(Bare()) is DEFAULT_CAPABILITIES
    wrong = Bare()
    wrong.capabilities = {"blocking": False}  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"bare.*AdapterCapabilities"):
        adapter_capabilities(wrong)


def test_built_in_venues_declare_their_capabilities_and_the_fault_wrapper_forwards_them(tmp_path) -> None:
    memory = PaperVenue("paper")
    durable = PaperVenue("paper", book_path=tmp_path / "b.sqlite")
    try:
        assert adapter_capabilities(memory) == AdapterCapabilities(blocking=False, lookup_covers_closed=True, absence_window_s=0)
        assert adapter_capabilities(durable).blocking and adapter_capabilities(durable).lookup_covers_closed
        wrapped = adapter_capabilities(FaultInjectingAdapter(memory, FaultPlan()))
        assert wrapped.blocking and wrapped.lookup_covers_closed and wrapped.absence_window_s == 0
    finally:
        memory.close()
        durable.close()
