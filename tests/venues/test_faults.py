"""FaultPlan parsing and FaultInjectingAdapter behaviour (deterministic by seed)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from protocols import (
    AdapterCrash,
    AmbiguousError,
    BrokerAdapter,
    NotDeliveredError,
    OrderStatus,
    Quote,
    Trade,
    VenueOrder,
    VenueRejectedError,
)
from protocols.venues import FAULTS, FaultInjectingAdapter, FaultPlan, FillModelConfig, PaperVenue

T0 = datetime(2021, 1, 8, tzinfo=UTC)
_n = itertools.count(1)


def order(coid=None) -> VenueOrder:
    return VenueOrder(
        client_order_id=coid or f"f{next(_n)}",
        account_id="a",
        symbol="BTC/USDT",
        side="BUY",
        order_type="LIMIT",
        quantity=D("0.01"),
        limit_price=D("39000.00"),
        ts=T0,
    )


def inner() -> PaperVenue:
    v = PaperVenue(config=FillModelConfig())
    v.on_market(Quote(ts=T0, symbol="BTC/USDT", bid=D("39400"), bid_size=D(1), ask=D("39401"), ask_size=D(1)))
    return v


def outcome(call) -> str:
    try:
        call()
    except AdapterCrash:
        return "crash"
    except AmbiguousError:
        return "ambiguous"
    except NotDeliveredError:
        return "transient"
    except VenueRejectedError:
        return "reject"
    return "ok"


# ---------------------------------------------------------------- plan


def test_parse_full_plan():
    plan = FaultPlan.parse("crash=0.001,hang=0.0005,ambiguous=0.002,transient=0.02,reject=0.01", seed=7)
    assert plan.rates() == {
        "crash": 0.001, "hang": 0.0005, "ambiguous": 0.002, "transient": 0.02, "reject": 0.01, "slow": 0.0,
    }
    assert plan.seed == 7 and plan.hang_s == 3600.0 and plan.slow_s == 0.05
    assert FaultPlan.parse(" slow = 0.5 , slow_s=0 , hang_s=2").slow_s == 0.0
    assert FaultPlan.parse("") == FaultPlan()
    assert str(FaultPlan()) == "none"


@pytest.mark.parametrize(
    "text,match",
    [
        ("crash=0.1,boom=0.2", "unknown fault 'boom'"),
        ("crash=abc", "fault rate for 'crash' must be a number in \\[0, 1\\], got 'abc'"),
        ("reject=1.5", "fault rate for 'reject'"),
        ("hang=-0.1", "fault rate for 'hang'"),
        ("transient=nan", "fault rate for 'transient'"),
        ("crash", "not of the form name=rate"),
        ("crash=0.1,crash=0.2", "given twice"),
        ("crash=0.6,transient=0.6", "more than 1"),
        ("hang_s=-1", "hang_s must be a number of seconds"),
    ],
)
def test_parse_errors_name_the_problem(text, match):
    with pytest.raises(ValueError, match=match):
        FaultPlan.parse(text)


def test_plan_is_frozen_and_validates_direct_construction():
    plan = FaultPlan(crash=0.1)
    with pytest.raises(FrozenInstanceError):
        plan.crash = 0.2  # type: ignore[misc]
    with pytest.raises(ValueError, match="seed"):
        FaultPlan(seed="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'slow'"):
        FaultPlan(slow=True)  # type: ignore[arg-type]


# ---------------------------------------------------------------- determinism and rates


MIX = "crash=0.05,hang=0.05,ambiguous=0.1,transient=0.2,reject=0.1,slow=0.05,slow_s=0"


def _sequence(seed: int, n: int = 300) -> list[str]:
    adapter = FaultInjectingAdapter(inner(), FaultPlan.parse(MIX, seed=seed))
    adapter.release_hangs()  # hangs return at once (still ambiguous)
    return [outcome(lambda: adapter.submit_order(order())) for _ in range(n)]


def test_same_seed_same_sequence_different_seed_differs():
    assert _sequence(7) == _sequence(7)
    assert _sequence(7) != _sequence(8)


def test_rates_roughly_honored_over_10k_calls():
    plan = FaultPlan.parse(MIX, seed=11)
    adapter = FaultInjectingAdapter(inner(), plan)
    adapter.release_hangs()
    n = 10_000
    for i in range(n):
        outcome(lambda i=i: adapter.submit_order(order()) if i % 2 else adapter.cancel_order("nope"))
    stats = adapter.stats()
    assert stats["calls"] == n
    assert sum(stats[f] for f in FAULTS) + stats["ok"] == n
    for name, rate in plan.rates().items():
        sigma = (n * rate * (1 - rate)) ** 0.5
        assert abs(stats[name] - n * rate) <= 5 * sigma + 1, (name, stats[name])
    assert abs(stats["hang_delivered"] - stats["hang"] / 2) <= 5 * (stats["hang"] / 4) ** 0.5 + 1


def test_deterministic_across_threads_in_total():
    """Draws are serialised: with many threads the multiset of faults equals the sequential run."""
    plan = FaultPlan.parse(MIX, seed=3)
    seq = FaultInjectingAdapter(inner(), plan)
    seq.release_hangs()
    for _ in range(400):
        outcome(lambda: seq.submit_order(order()))
    par = FaultInjectingAdapter(inner(), plan)
    par.release_hangs()

    def worker():
        for _ in range(100):
            outcome(lambda: par.submit_order(order()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert par.stats() == seq.stats()


# ---------------------------------------------------------------- each fault


def test_ambiguous_delivers_to_inner():
    venue = inner()
    adapter = FaultInjectingAdapter(venue, FaultPlan(ambiguous=1.0))
    o = order()
    with pytest.raises(AmbiguousError, match="timeout after send"):
        adapter.submit_order(o)
    assert venue.fetch_order(o.client_order_id).status is OrderStatus.ACCEPTED  # the order exists!
    assert venue.submission_counts() == {o.client_order_id: 1}
    # cancel: delivered too
    with pytest.raises(AmbiguousError):
        adapter.cancel_order(o.client_order_id)
    assert venue.fetch_order(o.client_order_id).status is OrderStatus.CANCELED


@pytest.mark.parametrize(
    "plan,exc",
    [
        (FaultPlan(transient=1.0), NotDeliveredError),
        (FaultPlan(reject=1.0), VenueRejectedError),
        (FaultPlan(crash=1.0), AdapterCrash),
    ],
    ids=["transient", "reject", "crash"],
)
def test_faults_before_delivery_never_reach_inner(plan, exc):
    venue = inner()
    adapter = FaultInjectingAdapter(venue, plan)
    o = order()
    with pytest.raises(exc):
        adapter.submit_order(o)
    assert venue.fetch_order(o.client_order_id) is None
    assert venue.submission_counts() == {}


def test_crash_is_a_base_exception_not_an_exception():
    adapter = FaultInjectingAdapter(inner(), FaultPlan(crash=1.0))
    with pytest.raises(BaseException) as info:
        try:
            adapter.submit_order(order())
        except Exception:  # noqa: BLE001 - must not catch it
            pytest.fail("AdapterCrash was caught by except Exception")
    assert isinstance(info.value, AdapterCrash)


def test_reject_has_injected_code():
    adapter = FaultInjectingAdapter(inner(), FaultPlan(reject=1.0))
    with pytest.raises(VenueRejectedError, match="injected reject") as info:
        adapter.submit_order(order())
    assert info.value.venue_code == "INJECTED"


def test_slow_delivers():
    venue = inner()
    adapter = FaultInjectingAdapter(venue, FaultPlan(slow=1.0, slow_s=0))
    o = order()
    assert adapter.submit_order(o).status is OrderStatus.ACCEPTED
    assert adapter.stats()["slow"] == 1


def test_hang_blocks_until_released_then_ambiguous():
    venue = inner()
    adapter = FaultInjectingAdapter(venue, FaultPlan(hang=1.0, seed=1))
    result: list[BaseException] = []

    def call():
        try:
            adapter.submit_order(order("hung-1"))
        except BaseException as exc:  # noqa: BLE001 - whatever the hung call raises is asserted
            result.append(exc)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    assert adapter.wait_for_hangs(1, timeout=30)  # safety bound only; returns as soon as it hangs
    assert adapter.hanging() == 1 and result == []
    adapter.release_hangs()
    t.join(timeout=30)
    assert not t.is_alive()
    assert len(result) == 1 and isinstance(result[0], AmbiguousError)
    assert adapter.hanging() == 0
    delivered = venue.fetch_order("hung-1") is not None
    assert delivered == (adapter.stats()["hang_delivered"] == 1)


def test_hang_delivery_decided_per_draw():
    venue = inner()
    adapter = FaultInjectingAdapter(venue, FaultPlan(hang=1.0, seed=5))
    adapter.release_hangs()
    ids = [f"h{i}" for i in range(200)]
    for coid in ids:
        with pytest.raises(AmbiguousError):
            adapter.submit_order(order(coid))
    delivered = sum(venue.fetch_order(c) is not None for c in ids)
    assert delivered == adapter.stats()["hang_delivered"]
    assert 0 < delivered < 200


def test_rearm_makes_hangs_block_again():
    adapter = FaultInjectingAdapter(inner(), FaultPlan(hang=1.0))
    adapter.release_hangs()
    adapter.rearm_hangs()
    t = threading.Thread(target=lambda: outcome(lambda: adapter.submit_order(order())), daemon=True)
    t.start()
    assert adapter.wait_for_hangs(1, timeout=30)
    adapter.close()  # shutdown frees hung threads
    t.join(timeout=30)
    assert not t.is_alive()


def test_fetches_get_only_transient_faults_from_their_own_stream():
    venue = inner()
    adapter = FaultInjectingAdapter(venue, FaultPlan(crash=0.3, reject=0.3, transient=0.3, seed=2))
    kinds = set()
    for _i in range(300):
        kinds.add(outcome(lambda: adapter.fetch_order("x")))
        kinds.add(outcome(adapter.fetch_open_orders))
        kinds.add(outcome(adapter.fetch_positions))
        kinds.add(outcome(adapter.fetch_account))
    assert kinds == {"ok", "transient"}
    stats = adapter.stats()
    assert stats["calls"] == 0 and stats["fetch_calls"] == 1200
    assert 1200 * 0.3 - 100 < stats["fetch_transient"] < 1200 * 0.3 + 100
    # reads do not shift the write stream
    a = FaultInjectingAdapter(inner(), FaultPlan(crash=0.3, reject=0.3, transient=0.3, seed=2))
    b = FaultInjectingAdapter(inner(), FaultPlan(crash=0.3, reject=0.3, transient=0.3, seed=2))
    seq_a, seq_b = [], []
    for _i in range(50):
        seq_a.append(outcome(lambda: a.submit_order(order())))
        outcome(lambda: b.fetch_order("x"))
        seq_b.append(outcome(lambda: b.submit_order(order())))
    assert seq_a == seq_b


def test_no_fault_plan_is_transparent_and_delegates():
    venue = inner()
    adapter = FaultInjectingAdapter(venue, FaultPlan())
    assert isinstance(adapter, BrokerAdapter)
    assert adapter.adapter_id == "paper" and adapter.inner is venue
    o = order()
    assert adapter.submit_order(o) == venue.fetch_order(o.client_order_id)
    assert adapter.submission_counts() == {o.client_order_id: 1}  # __getattr__
    events = []
    adapter.set_event_sink(events.append)
    adapter.on_market(
        Trade(ts=T0, symbol="BTC/USDT", trade_id="t", price=D("38000"), qty=D("1"))
    )
    assert [e.kind for e in events] == ["fill"]
    assert adapter.fetch_positions("a") == {"BTC/USDT": D("0.01")}
    with pytest.raises(VenueRejectedError, match="already FILLED"):
        adapter.cancel_order(o.client_order_id)
    adapter.close()
    with pytest.raises(NotDeliveredError):
        venue.submit_order(order())
