"""Partial fills (seed 004: "Partial Fills: retry for remaining_qty; after max_retries:
PARTIAL_SUCCESS + release"): what happens to the unfilled remainder of an order that expired
partly filled is a setting, ``[orders] remainder``.

``partial_success`` (default): the order ends EXPIRED with its fills, the rest of its reservation
is released. ``resubmit``: the remainder goes out again as a child order with a derived client
order id (``<id>.r1``, ``<id>.r2``, ...), within the parent's reservation, at most
``max_resubmits`` times.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ctx, limit, registry_of, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.journal.sqlite import Claim, Completion, SQLiteJournal
from protocols import (
    ErrorCode,
    ExecutionReport,
    OrderIntent,
    OrderStatus,
    RemainderResubmitted,
    VenueOrder,
    VenueOrderState,
    remainder_client_order_id,
    reserved_client_order_id_problem,
)

LOT = Decimal("0.001")


class IocVenue(TestAdapter):
    """Fills at most ``LOT`` of every order and expires the rest (an IOC against a thin book)."""

    __test__ = False

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        with self._lock:
            self.submit_calls.append(order.client_order_id)
            qty = min(order.quantity, LOT)
            fills = (self._fill(qty, order.limit_price or self.price, order),)
            status = OrderStatus.FILLED if qty == order.quantity else OrderStatus.EXPIRED
            state = VenueOrderState.of(order, venue_order_id=f"v-{order.client_order_id}", status=status, fills=fills)
            self._book[order.client_order_id] = state
            self.delivered[order.client_order_id] += 1
            return state


def start(make_runtime, risk=None, **orders):
    venue = IocVenue("test")
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}}, orders=orders, risk=risk or {})
    log = EventLog()
    rt.subscribe(log)
    return rt, venue, log


def test_default_policy_ends_as_a_partial_success(make_runtime) -> None:
    rt, venue, log = start(make_runtime)
    report = rt.submit(limit("pf-1", qty="0.003", tif="IOC"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.EXPIRED and report.cum_qty == LOT
    rt.flush()
    assert venue.submit_calls == ["pf-1"] and not log.of(RemainderResubmitted)
    stats = rt.stats()
    assert Decimal(stats["exposure"]["acc-1"]["reserved"]) == 0  # the remainder's reservation is released
    assert stats["risk_invariants"] == []


def test_resubmit_sends_the_remainder_as_children_within_the_reservation(make_runtime) -> None:
    intent = limit("pf-2", qty="0.003", tif="IOC")
    # a budget the parent uses up: a fresh order for the remainder would be denied, the children are not
    budget = intent.quantity * intent.limit_price
    rt, venue, log = start(make_runtime, risk={"default_budget": str(budget)}, remainder="resubmit", max_resubmits=3)
    report = rt.submit(intent, ctx()).result(timeout=5)
    assert report.status is OrderStatus.EXPIRED and report.cum_qty == LOT  # the caller's answer: the parent
    wait_until(lambda: (rt.order("pf-2.r2") or report).status is OrderStatus.FILLED, what="the second child filled")
    assert venue.submit_calls == ["pf-2", "pf-2.r1", "pf-2.r2"]
    first, second = rt.order("pf-2.r1"), rt.order("pf-2.r2")
    assert (first.status, first.cum_qty) == (OrderStatus.EXPIRED, LOT)
    assert second.cum_qty == LOT
    events = log.wait_for(lambda evs: [e for e in evs if isinstance(e, RemainderResubmitted)][1:] and
                          [e for e in evs if isinstance(e, RemainderResubmitted)], what="both resubmit events")
    assert [(e.client_order_id, e.child_client_order_id, e.remaining_qty) for e in events] == [
        ("pf-2", "pf-2.r1", Decimal("0.002")), ("pf-2.r1", "pf-2.r2", Decimal("0.001"))]
    position = next(p for p in rt.positions() if p.symbol == intent.symbol)
    assert position.net_qty == Decimal("0.003")
    stats = rt.stats()
    # the children never reserved anything of their own: the parent's reservation was moved, then trued up
    assert Decimal(stats["exposure"]["acc-1"]["reserved"]) == 0
    assert Decimal(stats["exposure"]["acc-1"]["spent"]) == Decimal("0.003") * intent.limit_price
    assert stats["risk_invariants"] == []
    fresh = rt.submit(limit("pf-2b", qty="0.001"), ctx()).result(timeout=5)
    assert fresh.status is OrderStatus.DENIED and fresh.error.message.startswith("budget")


def test_the_chain_stops_at_max_resubmits(make_runtime) -> None:
    rt, venue, _log = start(make_runtime, remainder="resubmit", max_resubmits=1)
    rt.submit(limit("pf-3", qty="0.004", tif="IOC"), ctx()).result(timeout=5)
    wait_until(lambda: rt.order("pf-3.r1") is not None and rt.order("pf-3.r1").status.is_terminal, what="the child")
    rt.flush()
    assert venue.submit_calls == ["pf-3", "pf-3.r1"]
    assert rt.order("pf-3.r1").status is OrderStatus.EXPIRED  # ends as a partial success
    assert Decimal(rt.stats()["exposure"]["acc-1"]["reserved"]) == 0


def test_no_resubmit_while_halted(make_runtime) -> None:
    rt, _venue, _log = start(make_runtime, remainder="resubmit")
    rt.halt()
    rt.resume()
    rt.submit(limit("pf-4", qty="0.002", tif="IOC"), ctx()).result(timeout=5)
    wait_until(lambda: rt.order("pf-4.r1") is not None, what="the child")
    rt.halt()
    rt.submit(limit("pf-5", qty="0.002", tif="IOC"), ctx()).result(timeout=5)  # denied: halted
    rt.flush()
    assert rt.order("pf-5").status is OrderStatus.DENIED and rt.order("pf-5.r1") is None


def test_a_filled_order_or_an_expiry_without_fills_gets_no_child(make_runtime) -> None:
    rt, venue, log = start(make_runtime, remainder="resubmit")
    assert rt.submit(limit("pf-6", qty="0.001", tif="IOC"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    rt.flush()
    assert venue.submit_calls == ["pf-6"] and not log.of(RemainderResubmitted)


def test_derived_ids_are_deterministic_and_fit_the_client_order_id_limit() -> None:
    assert remainder_client_order_id("ord-7", 1) == "ord-7.r1"
    long_id = "x" * 36
    child = remainder_client_order_id(long_id, 2)
    assert len(child) <= 36 and child.endswith(".r2") and child == remainder_client_order_id(long_id, 2)
    assert remainder_client_order_id(long_id, 1) != child


def test_settings_validate_the_policy() -> None:
    from config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"orders\.remainder"):
        load_settings(orders={"remainder": "retry_forever"})
    assert load_settings().orders.remainder == "partial_success"


class IocThenRest(IocVenue):
    """The original order fills ``LOT`` and expires; a remainder child rests at the venue."""

    __test__ = False

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        if ".r" not in order.client_order_id:
            return super().submit_order(order)
        with self._lock:
            self.submit_calls.append(order.client_order_id)
        return self._book_order(order, OrderStatus.ACCEPTED)


def test_a_resting_child_keeps_its_reservation_across_a_restart(make_runtime, settings_factory) -> None:
    settings = settings_factory(durable=True, journal={"enabled": True, "synchronous": "FULL"},
                                routing={"policy": {"paper": "test"}}, orders={"remainder": "resubmit"})
    venue = IocThenRest("test")
    intent = limit("pr-1", qty="0.003", tif="IOC")
    rt = make_runtime(settings, registry=registry_of(venue))
    rt.submit(intent, ctx()).result(timeout=5)
    wait_until(lambda: (rt.order("pr-1.r1") or rt.order("pr-1")).status is OrderStatus.ACCEPTED, what="the resting child")
    rt.flush()
    before = rt.stats()["exposure"]["acc-1"]
    assert Decimal(before["reserved"]) == Decimal("0.002") * intent.limit_price  # the parent's, moved to the child
    rt.stop()

    rt = make_runtime(settings, registry=registry_of(venue))
    rt.flush()
    assert rt.order("pr-1.r1").status is OrderStatus.ACCEPTED and rt.order("pr-1").status is OrderStatus.EXPIRED
    after = rt.stats()["exposure"]["acc-1"]
    assert {k: Decimal(v) for k, v in after.items() if k != "budget"} == {k: Decimal(v) for k, v in before.items() if k != "budget"}
    assert venue.submit_calls == ["pr-1", "pr-1.r1"]  # nothing sent again
    assert rt.cancel("pr-1.r1").result(timeout=5).status is OrderStatus.CANCELED
    rt.flush()
    assert Decimal(rt.stats()["exposure"]["acc-1"]["reserved"]) == 0


# -- derived ids never collide with a caller's (the reserved namespace) -------------------------


def test_a_caller_cannot_submit_an_id_of_the_remainder_namespace(make_runtime) -> None:
    rt, venue, _log = start(make_runtime, remainder="resubmit")
    for taken in ("pf-10.r1", "x.r0", "a.b.r12"):
        report = rt.submit(limit(taken, qty="0.001"), ctx()).result(timeout=5)
        assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_VALIDATION, taken
        assert f"'{taken}' is reserved" in report.error.message and ".r' and digits" in report.error.message
    for free in ("pf-10.r", "pf-10.rx1", "pf-10.r1a", "pf-10-r1", "r1"):  # not the reserved form: ordinary ids
        assert rt.submit(limit(free, qty="0.001"), ctx()).result(timeout=5).status is OrderStatus.FILLED, free
    rt.flush()
    assert venue.submit_calls == ["pf-10.r", "pf-10.rx1", "pf-10.r1a", "pf-10-r1", "r1"]
    assert rt.order("pf-10.r1") is None  # nothing was journaled or booked for a refused id


_ROOTS = st.text(alphabet="abcXYZ019._:/-", min_size=1, max_size=36).filter(
    lambda s: reserved_client_order_id_problem(s) is None)


@given(root=_ROOTS, n=st.integers(1, 10_000), other=_ROOTS, m=st.integers(1, 10_000))
@settings(max_examples=300, deadline=None)
def test_derived_ids_are_valid_reserved_and_name_one_root_and_number(root: str, n: int, other: str, m: int) -> None:
    child = remainder_client_order_id(root, n)
    OrderIntent(client_order_id=child, symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=Decimal(1))  # a valid id
    assert reserved_client_order_id_problem(child) is not None  # no caller can submit it
    assert (remainder_client_order_id(other, m) == child) == ((other, m) == (root, n))


def test_a_long_roots_hashed_child_is_not_a_short_roots_child() -> None:
    long_root = "L" * 36
    hashed = remainder_client_order_id(long_root, 1)
    prefix = hashed.split(".")[0]
    assert reserved_client_order_id_problem(prefix) is None  # a caller may use the hash's hex as an id...
    assert remainder_client_order_id(prefix, 1) != hashed  # ...and its child is another id


def _journal_an_id_before_the_rule(state_dir, intent, account: str = "acc-1") -> None:
    """What a journal written before the reserved namespace may hold: a caller's completed order
    under an id of the children's form (here through the journal's own API, as that runtime did)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    journal = SQLiteJournal(state_dir / "journal.sqlite")
    try:
        context = ctx(account=account)
        now = time.time()
        [claimed] = journal.claim_batch([Claim(account, intent.client_order_id, intent.fingerprint(), intent.journal_json(),
                                               context.journal_json(), "test", now)], None)
        assert claimed.outcome == "CLAIMED"
        report = ExecutionReport(client_order_id=intent.client_order_id, account_id=account, status=OrderStatus.CANCELED,
                                 ts=datetime.now(UTC))
        journal.complete_batch([Completion(account, intent.client_order_id, "COMPLETED", report.model_dump_json(), now)])
    finally:
        journal.close()


@pytest.mark.parametrize("legacy_qty", ["0.002", "0.005"], ids=["replayed", "conflict"])
def test_a_child_whose_id_is_taken_releases_its_parents_reservation(make_runtime, settings_factory, legacy_qty) -> None:
    """A journal from before the rule holds the child's id: the store answers the child as a replay
    of that order (same economics) or refuses it (a conflict). Either way the child never reaches
    the ledger, nothing is sent, and the parent's reservation is released."""
    settings = settings_factory(durable=True, journal={"enabled": True}, routing={"policy": {"paper": "test"}},
                                orders={"remainder": "resubmit"})
    _journal_an_id_before_the_rule(settings.state_dir, limit("pf-11.r1", qty=legacy_qty, tif="IOC"))
    venue = IocVenue("test")
    rt = make_runtime(settings, registry=registry_of(venue))
    report = rt.submit(limit("pf-11", qty="0.003", tif="IOC"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.EXPIRED and report.cum_qty == LOT
    # the store tells the ledger the child was answered before it tells it the guard's or denial's line
    wait_until(lambda: [r for r in rt.history("pf-11.r1") if r.kind in ("guard", "denied")], what="the child answered")
    rt.flush()
    assert venue.submit_calls == ["pf-11"]
    assert Decimal(rt.stats()["exposure"]["acc-1"]["reserved"]) == 0
    assert rt.stats()["risk_invariants"] == []


def test_a_child_on_its_way_across_a_ledger_restart_keeps_its_parents_reservation(make_runtime, monkeypatch) -> None:
    """The ledger crashes after re-submitting a remainder and before the child comes back from the
    idempotency store (held there: its claim's commit waits until the test lets it through, after
    the restart, however long the restart takes). The
    next generation rebuilds the books from the journal, where the parent is EXPIRED and holds
    nothing; the crashed one hands over the parent's reservation left for the child, so the child
    arriving there lives within it, unchecked, as it would have without the restart (README.md,
    Features: Partial fills). Before, it took a fresh risk check and a reservation of its own."""
    import threading

    from conftest import ObservableClock, child

    from actors.orders.messages import SetTradingState

    backoff_max = 0.5  # above every restart delay of the test profile
    intent = limit("pf-rs", qty="0.003", tif="IOC")
    held, let_through = threading.Event(), threading.Event()
    commit_claims = SQLiteJournal.claim_batch

    def claim_batch(journal: SQLiteJournal, claims, ttl_s, *before_commit):
        """The child's claim waits in the store's thread until the test lets it through (a guard
        against a hang, not a timing: the test sets it right after the restart)."""
        if any(c.client_order_id == "pf-rs.r1" for c in claims):
            held.set()
            assert let_through.wait(60), "the child's claim was never let through"
        return commit_claims(journal, claims, ttl_s, *before_commit)

    monkeypatch.setattr(SQLiteJournal, "claim_batch", claim_batch)
    clock = ObservableClock()
    venue = IocVenue("test")
    rt = make_runtime(registry=registry_of(venue), clock=clock, durable=True, routing={"policy": {"paper": "test"}},
                      orders={"remainder": "resubmit", "max_resubmits": 1})
    try:
        assert rt.submit(intent, ctx()).result(timeout=5).status is OrderStatus.EXPIRED
        wait_until(held.is_set, what="the remainder's claim held in the idempotency store")
        rt.ledger.tell(SetTradingState("BOGUS"))  # the ledger crashes (TradingState("BOGUS") raises)
        wait_until(lambda: child(rt, "ledger").state == "restarting", what="the ledger restarting")
        clock.wait_timer(lambda delay: delay < backoff_max, what="the ledger's restart timer")
        clock.advance(backoff_max)
        wait_until(lambda: child(rt, "ledger").state == "running", what="the ledger running again")
    finally:
        let_through.set()
    wait_until(lambda: (rt.order("pf-rs.r1") or rt.order("pf-rs")).client_order_id == "pf-rs.r1"
               and rt.order("pf-rs.r1").status.is_terminal, what="the child done")
    rt.flush()
    assert child(rt, "ledger").generation == 2 and venue.submit_calls == ["pf-rs", "pf-rs.r1"]
    reserved = [r.data for r in rt.history("pf-rs.r1") if r.kind == "transition" and r.data.get("to") == "RESERVED"]
    # the child's own path: the parent's reservation moved to it (a fresh check would say "reserved at intake")
    assert [r["cause"] for r in reserved] == ["reserved at intake (the remainder of pf-rs)"], reserved
    stats = rt.stats()
    assert Decimal(stats["exposure"]["acc-1"]["reserved"]) == 0
    assert Decimal(stats["exposure"]["acc-1"]["spent"]) == 2 * LOT * intent.limit_price
    assert stats["risk_invariants"] == []
