"""Circuit breaker state machine (actors/breaker/breaker.py), after resilience4j's COUNT_BASED window."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actors.breaker.breaker import (
    BreakerConfig,
    BreakerPermit,
    BreakerSnapshot,
    BreakerState,
    CallOutcome,
    CircuitBreaker,
    Denied,
)
from actors.kernel.clock import FakeClock
from protocols import CircuitClosed, CircuitHalfOpened, CircuitOpened, CircuitStateChanged

S, F, I = CallOutcome.SUCCESS, CallOutcome.FAILURE, CallOutcome.IGNORED  # noqa: E741 - read as outcome sequences below


def make(**overrides) -> tuple[CircuitBreaker, FakeClock]:
    cfg = dict(window_size=5, minimum_calls=5, open_duration_s=5.0, slow_call_duration_s=1.0)
    cfg.update(overrides)
    clock = FakeClock(start=100.0)
    return CircuitBreaker("paper", BreakerConfig(**cfg), clock), clock


def call(cb: CircuitBreaker, outcome: CallOutcome, duration_s: float = 0.01) -> list[CircuitStateChanged]:
    permit = cb.try_acquire()
    assert isinstance(permit, BreakerPermit), permit
    return cb.record(permit, outcome, duration_s)


def run(cb: CircuitBreaker, outcomes: list[CallOutcome], duration_s: float = 0.01) -> list[CircuitStateChanged]:
    events: list[CircuitStateChanged] = []
    for o in outcomes:
        events += call(cb, o, duration_s)
    return events


def trip(cb: CircuitBreaker) -> None:
    run(cb, [F] * cb.config.window_size)
    assert cb.state is BreakerState.OPEN


# -- config ------------------------------------------------------------------------------------


def test_config_defaults_match_spec():
    c = BreakerConfig()
    assert (c.window_size, c.minimum_calls, c.failure_rate_threshold, c.slow_call_rate_threshold) == (20, 10, 50.0, 50.0)
    assert (c.slow_call_duration_s, c.open_duration_s, c.half_open_permits) == (1.0, 30.0, 1)


@pytest.mark.parametrize(
    "field,value",
    [
        ("window_size", 0),
        ("window_size", 2.5),
        ("window_size", True),
        ("minimum_calls", 0),
        ("failure_rate_threshold", 0),
        ("failure_rate_threshold", 100.1),
        ("slow_call_rate_threshold", float("nan")),
        ("slow_call_duration_s", 0),
        ("open_duration_s", -1),
        ("open_duration_s", float("inf")),
        ("open_duration_s", "30"),
        ("half_open_permits", 0),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        BreakerConfig(**{field: value})


def test_config_is_frozen_and_normalises_ints():
    c = BreakerConfig(open_duration_s=5)
    assert isinstance(c.open_duration_s, float)
    with pytest.raises(FrozenInstanceError):
        c.window_size = 3  # type: ignore[misc]


def test_config_from_settings_object_and_mapping():
    obj = SimpleNamespace(window_size=7, minimum_calls=3, open_duration_s=2.5, unrelated="x")
    c = BreakerConfig.from_settings(obj)
    assert (c.window_size, c.minimum_calls, c.open_duration_s, c.half_open_permits) == (7, 3, 2.5, 1)
    assert BreakerConfig.from_settings({"half_open_permits": 3}).half_open_permits == 3
    with pytest.raises(ValueError, match="minimum_calls"):
        BreakerConfig.from_settings(SimpleNamespace(minimum_calls=-1))


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="adapter_id"):
        CircuitBreaker("", BreakerConfig(), FakeClock())
    with pytest.raises(TypeError, match="clock"):
        CircuitBreaker("a", BreakerConfig(), object())
    with pytest.raises(TypeError, match="config"):
        CircuitBreaker("a", {"window_size": 3}, FakeClock())  # type: ignore[arg-type]


# -- closed → open -----------------------------------------------------------------------------


def test_sixty_percent_failures_open_with_one_event():
    cb, _ = make()
    events = run(cb, [F, S, F, S, F])
    assert cb.state is BreakerState.OPEN
    assert len(events) == 1
    ev = events[0]
    assert type(ev) is CircuitOpened
    assert (ev.adapter_id, ev.from_state, ev.to_state) == ("paper", "CLOSED", "OPEN")
    assert ev.failure_rate == pytest.approx(60.0)
    assert ev.slow_call_rate == pytest.approx(0.0)


def test_forty_percent_failures_stay_closed():
    cb, _ = make()
    assert run(cb, [F, S, F, S, S]) == []
    assert cb.state is BreakerState.CLOSED
    snap = cb.snapshot()
    assert (snap.failure_rate, snap.buffered_calls, snap.failed_calls) == (40.0, 5, 2)


def test_exactly_at_threshold_opens():
    cb, _ = make(window_size=4, minimum_calls=4)
    run(cb, [F, S, F, S])
    assert cb.state is BreakerState.OPEN  # 50% >= 50%


def test_fewer_than_minimum_calls_never_open():
    cb, _ = make(window_size=10, minimum_calls=5)
    assert run(cb, [F, F, F, F]) == []
    assert cb.state is BreakerState.CLOSED
    assert cb.snapshot().failure_rate == -1.0
    run(cb, [F])
    assert cb.state is BreakerState.OPEN


def test_minimum_calls_is_capped_at_window_size():
    cb, _ = make(window_size=3, minimum_calls=10)
    run(cb, [F, F, F])
    assert cb.state is BreakerState.OPEN


def test_window_slides_old_failures_out():
    cb, _ = make(window_size=5, minimum_calls=5)
    run(cb, [F, F, S, S, S])  # 40%
    run(cb, [S, S])  # window now S,S,S,S,S
    assert cb.snapshot().failed_calls == 0
    run(cb, [F, F])  # S,S,S,F,F = 40%
    assert cb.state is BreakerState.CLOSED
    run(cb, [F])  # S,S,F,F,F = 60%
    assert cb.state is BreakerState.OPEN


def test_slow_calls_open_it():
    cb, _ = make()
    events = run(cb, [S, S, S], duration_s=1.0) + run(cb, [S, S], duration_s=0.2)
    assert cb.state is BreakerState.OPEN
    assert events[0].slow_call_rate == pytest.approx(60.0)
    assert events[0].failure_rate == 0.0


def test_fast_calls_below_slow_threshold_do_not_count_as_slow():
    cb, _ = make()
    run(cb, [S] * 5, duration_s=0.999)
    assert cb.state is BreakerState.CLOSED
    assert cb.snapshot().slow_calls == 0


def test_ignored_outcomes_are_not_recorded():
    cb, _ = make()
    run(cb, [I] * 10)
    assert cb.snapshot().buffered_calls == 0
    run(cb, [F, F, F, F, I])
    assert cb.state is BreakerState.CLOSED


# -- open --------------------------------------------------------------------------------------


def test_open_denies_with_remaining_time_then_half_opens():
    cb, clock = make()
    trip(cb)
    clock.advance(3.0)
    d = cb.try_acquire()
    assert isinstance(d, Denied)
    assert d.state is BreakerState.OPEN
    assert d.retry_after_s == pytest.approx(2.0)
    assert cb.drain_events() == []
    clock.advance(3.0)
    p = cb.try_acquire()
    assert isinstance(p, BreakerPermit) and p.state_at_acquire is BreakerState.HALF_OPEN
    assert cb.state is BreakerState.HALF_OPEN
    events = cb.drain_events()
    assert [type(e) for e in events] == [CircuitHalfOpened]
    assert (events[0].from_state, events[0].to_state) == ("OPEN", "HALF_OPEN")
    assert cb.drain_events() == []  # handed out once


def test_retry_after_is_exact():
    cb, clock = make(open_duration_s=0.3)
    trip(cb)
    clock.advance(0.1)
    d = cb.try_acquire()
    assert isinstance(d, Denied)
    clock.advance(d.retry_after_s)
    assert isinstance(cb.try_acquire(), BreakerPermit)


def test_tick_moves_open_to_half_open_only_when_due():
    cb, clock = make()
    trip(cb)
    clock.advance(4.999)
    assert cb.tick() == []
    assert cb.state is BreakerState.OPEN
    clock.advance(0.001)
    events = cb.tick()
    assert [type(e) for e in events] == [CircuitHalfOpened]
    assert cb.tick() == []


def test_tick_works_with_clock_timer():
    cb, clock = make()
    published: list[CircuitStateChanged] = []
    published += run(cb, [F] * 5)
    clock.call_later(cb.config.open_duration_s, lambda: published.extend(cb.tick()))
    clock.advance(5.0)
    assert [e.name for e in published] == ["CircuitOpened", "CircuitHalfOpened"]


def test_results_arriving_while_open_change_nothing():
    cb, clock = make()
    late = [cb.try_acquire() for _ in range(3)]
    run(cb, [F] * 5)
    gen = cb.generation
    before = cb.snapshot()
    for p in late:
        assert cb.record(p, S, 0.01) == []
    assert cb.snapshot() == before
    assert cb.state is BreakerState.OPEN and cb.generation == gen
    # ...and also after the breaker moved on to half-open
    clock.advance(5.0)
    assert cb.tick()
    for p in late:
        assert cb.record(p, F, 5.0) == []
    assert cb.state is BreakerState.HALF_OPEN


# -- half-open ---------------------------------------------------------------------------------


def half_open(**overrides) -> tuple[CircuitBreaker, FakeClock]:
    cb, clock = make(**overrides)
    trip(cb)
    clock.advance(cb.config.open_duration_s)
    assert cb.tick()
    assert cb.state is BreakerState.HALF_OPEN
    return cb, clock


def test_exactly_half_open_permits_are_admitted():
    cb, _ = half_open(half_open_permits=3)
    permits = [cb.try_acquire() for _ in range(3)]
    assert all(isinstance(p, BreakerPermit) for p in permits)
    assert len({p.permit_id for p in permits}) == 3
    d = cb.try_acquire()
    assert isinstance(d, Denied) and d.state is BreakerState.HALF_OPEN
    assert d.retry_after_s > 0
    assert cb.snapshot().not_permitted_calls == 1


def test_half_open_failure_reopens():
    cb, clock = half_open()
    p = cb.try_acquire()
    events = cb.record(p, F, 0.01)
    assert [type(e) for e in events] == [CircuitOpened]
    assert (events[0].from_state, events[0].failure_rate) == ("HALF_OPEN", 100.0)
    assert cb.state is BreakerState.OPEN
    clock.advance(4.0)  # a fresh open period started at the reopening
    d = cb.try_acquire()
    assert isinstance(d, Denied) and d.retry_after_s == pytest.approx(1.0)


def test_half_open_decides_after_all_trials_over_the_trial_rates():
    cb, _ = half_open(half_open_permits=3)
    p1, p2, p3 = (cb.try_acquire() for _ in range(3))
    assert cb.record(p1, F, 0.01) == []  # undecided until every trial reports
    assert cb.record(p2, S, 0.01) == []
    assert cb.state is BreakerState.HALF_OPEN
    assert cb.snapshot().failure_rate == -1.0
    events = cb.record(p3, F, 0.01)  # 2/3 failed
    assert [type(e) for e in events] == [CircuitOpened]
    assert events[0].failure_rate == pytest.approx(200 / 3)


def test_half_open_one_failure_in_three_closes():
    cb, _ = half_open(half_open_permits=3)
    p1, p2, p3 = (cb.try_acquire() for _ in range(3))
    cb.record(p1, F, 0.01)
    cb.record(p2, S, 0.01)
    events = cb.record(p3, S, 0.01)
    assert [type(e) for e in events] == [CircuitClosed]
    assert cb.state is BreakerState.CLOSED


def test_all_trials_succeed_closes_with_fresh_window():
    cb, _ = half_open(half_open_permits=2)
    p1, p2 = cb.try_acquire(), cb.try_acquire()
    assert cb.record(p1, S, 0.01) == []
    events = cb.record(p2, S, 0.01)
    assert [type(e) for e in events] == [CircuitClosed]
    assert (events[0].from_state, events[0].to_state, events[0].failure_rate) == ("HALF_OPEN", "CLOSED", 0.0)
    snap = cb.snapshot()
    assert snap.state is BreakerState.CLOSED and snap.buffered_calls == 0 and snap.opened_at is None
    assert run(cb, [F] * 4) == []  # the fresh window needs minimum_calls again


def test_slow_trial_reopens():
    cb, _ = half_open()
    events = cb.record(cb.try_acquire(), S, 2.0)
    assert [type(e) for e in events] == [CircuitOpened]
    assert events[0].slow_call_rate == 100.0


def test_ignored_trial_returns_its_permit():
    cb, _ = half_open()
    p = cb.try_acquire()
    assert isinstance(cb.try_acquire(), Denied)
    assert cb.record(p, I, 0.0) == []
    assert cb.state is BreakerState.HALF_OPEN
    p2 = cb.try_acquire()
    assert isinstance(p2, BreakerPermit)
    assert [type(e) for e in cb.record(p2, S, 0.01)] == [CircuitClosed]


def test_duplicate_trial_report_counts_once():
    cb, _ = half_open(half_open_permits=2)
    p1, p2 = cb.try_acquire(), cb.try_acquire()
    assert cb.record(p1, S, 0.01) == []
    assert cb.record(p1, S, 0.01) == []  # duplicate: ignored
    assert cb.state is BreakerState.HALF_OPEN
    assert [type(e) for e in cb.record(p2, S, 0.01)] == [CircuitClosed]


def test_lazy_half_open_event_is_returned_by_next_record_if_not_drained():
    cb, clock = make()
    trip(cb)
    clock.advance(5.0)
    p = cb.try_acquire()
    events = cb.record(p, S, 0.01)
    assert [type(e) for e in events] == [CircuitHalfOpened, CircuitClosed]


# -- operator controls -------------------------------------------------------------------------


def test_forced_open_denies_until_reset():
    cb, clock = make()
    events = cb.force_open()
    assert len(events) == 1 and type(events[0]) is CircuitStateChanged
    assert (events[0].from_state, events[0].to_state) == ("CLOSED", "FORCED_OPEN")
    for _ in range(3):
        clock.advance(1000.0)
        assert cb.tick() == []
        d = cb.try_acquire()
        assert isinstance(d, Denied) and d.state is BreakerState.FORCED_OPEN
        assert d.retry_after_s == cb.config.open_duration_s
    assert cb.force_open() == []  # already forced: no transition, no event
    events = cb.reset()
    assert [type(e) for e in events] == [CircuitClosed]
    assert (events[0].from_state, events[0].to_state) == ("FORCED_OPEN", "CLOSED")
    assert isinstance(cb.try_acquire(), BreakerPermit)


def test_disabled_always_permits_and_records_nothing():
    cb, _ = make()
    events = cb.disable()
    assert len(events) == 1 and type(events[0]) is CircuitStateChanged and events[0].to_state == "DISABLED"
    assert run(cb, [F] * 50, duration_s=10.0) == []
    snap = cb.snapshot()
    assert snap.state is BreakerState.DISABLED and snap.buffered_calls == 0
    assert cb.disable() == []
    assert [type(e) for e in cb.reset()] == [CircuitClosed]


def test_reset_from_open_and_half_open_discards_in_flight_results():
    cb, _clock = half_open(half_open_permits=2)
    p = cb.try_acquire()
    assert [type(e) for e in cb.reset()] == [CircuitClosed]
    assert cb.record(p, F, 0.01) == []
    assert cb.snapshot().buffered_calls == 0
    trip(cb)
    assert [e.to_state for e in cb.reset()] == ["CLOSED"]


def test_reset_while_closed_clears_window_without_event():
    cb, _ = make()
    run(cb, [F, F, F, F])
    p = cb.try_acquire()
    gen = cb.generation
    assert cb.reset() == []
    assert cb.generation == gen + 1 and cb.snapshot().buffered_calls == 0
    assert cb.record(p, F, 0.0) == []
    assert cb.snapshot().buffered_calls == 0


def test_force_open_from_open_and_disable_from_forced_open():
    cb, _ = make()
    trip(cb)
    assert [(e.from_state, e.to_state) for e in cb.force_open()] == [("OPEN", "FORCED_OPEN")]
    assert [(e.from_state, e.to_state) for e in cb.disable()] == [("FORCED_OPEN", "DISABLED")]


# -- bad input, events, snapshot ----------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome,duration,exc,match",
    [
        ("BOOM", 0.1, TypeError, "outcome must be a CallOutcome"),
        ("FAILURE", 0.1, TypeError, "outcome must be a CallOutcome"),  # the enum, never its string
        (S, -0.1, ValueError, "duration_s"),
        (S, float("nan"), ValueError, "duration_s"),
        (S, "1", ValueError, "duration_s"),
    ],
)
def test_record_rejects_bad_input_without_changing_state(outcome, duration, exc, match):
    cb, _ = make()
    run(cb, [F, F])
    p = cb.try_acquire()
    before = cb.snapshot()
    with pytest.raises(exc, match=match):
        cb.record(p, outcome, duration)
    assert cb.snapshot() == before
    assert cb.record(p, F, 0.1) == []  # the permit is still usable
    assert cb.snapshot().failed_calls == 3


def test_record_rejects_non_permit():
    cb, _ = make()
    with pytest.raises(TypeError, match="BreakerPermit"):
        cb.record("p-1", S, 0.1)  # type: ignore[arg-type]


def test_event_ts_comes_from_clock_now():
    cb, clock = make()
    clock.advance(7.0)
    (ev,) = run(cb, [F] * 5)
    assert ev.ts == clock.now()


def test_event_ts_without_clock_now_is_utc():
    class MonoOnly:
        def monotonic(self) -> float:
            return 1.0

    cb = CircuitBreaker("x", BreakerConfig(window_size=1, minimum_calls=1), MonoOnly())
    (ev,) = run(cb, [F])
    assert ev.ts.utcoffset() is not None and ev.ts.utcoffset().total_seconds() == 0


def test_snapshot_when_open():
    cb, clock = make()
    run(cb, [F, F, F, S, S])
    clock.advance(1.5)
    d = cb.try_acquire()
    snap = cb.snapshot()
    assert isinstance(snap, BreakerSnapshot)
    assert snap.state is BreakerState.OPEN
    assert snap.failure_rate == 60.0 and snap.failed_calls == 3 and snap.buffered_calls == 5
    assert snap.opened_at == 100.0  # FakeClock starts at 100 and had not moved when it tripped
    assert snap.retry_after_s == pytest.approx(3.5) == d.retry_after_s
    assert snap.not_permitted_calls == 1 and snap.transitions == 1
    with pytest.raises(FrozenInstanceError):
        snap.state = BreakerState.CLOSED  # type: ignore[misc]


# -- property-based ----------------------------------------------------------------------------

TARGET_EVENT = {
    "OPEN": CircuitOpened,
    "HALF_OPEN": CircuitHalfOpened,
    "CLOSED": CircuitClosed,
    "FORCED_OPEN": CircuitStateChanged,
    "DISABLED": CircuitStateChanged,
}


class BreakerMachine(RuleBasedStateMachine):
    """Random acquire/record/advance/tick/operator sequences against the breaker's invariants."""

    @initialize(
        window=st.integers(1, 6),
        minimum=st.integers(1, 8),
        permits=st.integers(1, 3),
        open_s=st.sampled_from([0.5, 1.0, 5.0]),
        threshold=st.sampled_from([1.0, 34.0, 50.0, 100.0]),
    )
    def setup(self, window, minimum, permits, open_s, threshold):
        self.clock = FakeClock()
        self.cfg = BreakerConfig(
            window_size=window,
            minimum_calls=minimum,
            half_open_permits=permits,
            open_duration_s=open_s,
            failure_rate_threshold=threshold,
            slow_call_rate_threshold=threshold,
            slow_call_duration_s=1.0,
        )
        self.cb = CircuitBreaker("prop", self.cfg, self.clock)
        self.permits: list[BreakerPermit] = []
        self.state = "CLOSED"  # as reconstructed from the events
        self.opened_at: float | None = None
        self.n_events = 0

    def consume(self, before: BreakerState, events: list[CircuitStateChanged]) -> None:
        for ev in events:
            assert type(ev) is TARGET_EVENT[ev.to_state]
            assert ev.from_state == self.state, (ev, self.state)
            assert ev.from_state != ev.to_state
            self.state = ev.to_state
            self.n_events += 1
            if ev.to_state == "OPEN":
                self.opened_at = self.clock.monotonic()
        assert self.state == self.cb.state.value
        assert len(events) <= 2  # at most the lazy half-open plus one more

    @rule()
    def acquire(self):
        before = self.cb.state
        now = self.clock.monotonic()
        r = self.cb.try_acquire()
        self.consume(before, self.cb.drain_events())
        if isinstance(r, BreakerPermit):
            assert before is not BreakerState.FORCED_OPEN
            if before is BreakerState.OPEN:
                assert self.opened_at is not None
                assert now >= self.opened_at + self.cfg.open_duration_s  # OPEN never admits early
            self.permits.append(r)
        else:
            assert isinstance(r, Denied)
            assert r.retry_after_s > 0 and math.isfinite(r.retry_after_s)
            assert r.state in (BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.FORCED_OPEN)

    @precondition(lambda self: self.permits)
    @rule(data=st.data(), outcome=st.sampled_from(list(CallOutcome)), duration=st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    def record(self, data, outcome, duration):
        idx = data.draw(st.integers(0, len(self.permits) - 1))
        permit = self.permits.pop(idx)
        before = self.cb.state
        gen = self.cb.generation
        events = self.cb.record(permit, outcome, duration)
        self.consume(before, events)
        if permit.generation != gen or before in (BreakerState.OPEN, BreakerState.FORCED_OPEN):
            assert events == [] and self.cb.state is before  # late results never change state

    @rule(seconds=st.sampled_from([0.0, 0.1, 0.5, 1.0, 5.0]))
    def advance(self, seconds):
        self.clock.advance(seconds)

    @rule()
    def tick(self):
        before = self.cb.state
        self.consume(before, self.cb.tick())

    @rule(op=st.sampled_from(["force_open", "disable", "reset"]))
    def operator(self, op):
        before = self.cb.state
        self.consume(before, getattr(self.cb, op)())

    @invariant()
    def consistent(self):
        snap = self.cb.snapshot()
        assert snap.state in set(BreakerState)
        assert snap.transitions == self.n_events
        assert 0 <= snap.failed_calls <= snap.buffered_calls
        assert 0 <= snap.slow_calls <= snap.buffered_calls
        if snap.state is BreakerState.HALF_OPEN:
            assert snap.buffered_calls <= self.cfg.half_open_permits
        elif snap.state is BreakerState.CLOSED:
            assert snap.buffered_calls <= self.cfg.window_size
        else:  # OPEN after a failed half-open period still shows the trial window that reopened it
            assert snap.buffered_calls <= max(self.cfg.window_size, self.cfg.half_open_permits)
        for rate in (snap.failure_rate, snap.slow_call_rate):
            assert rate == -1.0 or 0.0 <= rate <= 100.0
        if snap.state is BreakerState.CLOSED and snap.failure_rate >= 0:
            # a CLOSED breaker with computed rates is below both thresholds
            assert snap.failure_rate < self.cfg.failure_rate_threshold
            assert snap.slow_call_rate < self.cfg.slow_call_rate_threshold


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@given(
    outcomes=st.lists(st.booleans(), min_size=0, max_size=60),
    window=st.integers(1, 10),
    minimum=st.integers(1, 12),
)
@settings(max_examples=200, deadline=None)
def test_closed_opens_iff_window_rate_reaches_threshold(outcomes, window, minimum):
    """Reference model: the breaker opens at the first call where the last `window` calls fail >= 50%."""
    cb = CircuitBreaker("m", BreakerConfig(window_size=window, minimum_calls=minimum), FakeClock())
    need = min(window, minimum)
    for i, failed in enumerate(outcomes):
        call(cb, F if failed else S)
        last = outcomes[max(0, i + 1 - window) : i + 1]
        should_open = len(last) >= need and sum(last) * 100.0 / len(last) >= 50.0
        assert (cb.state is BreakerState.OPEN) == should_open
        if should_open:
            break


@given(
    calls=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=60),
    window=st.integers(1, 10),
    minimum=st.integers(1, 12),
    failure_threshold=st.sampled_from([0.5, 10.0, 50.0, 100.0]),
    slow_threshold=st.sampled_from([0.5, 30.0, 100.0]),
)
@settings(max_examples=300, deadline=None)
def test_closed_opens_iff_either_window_rate_reaches_its_threshold(calls, window, minimum, failure_threshold, slow_threshold):
    """Reference model with slow calls and any thresholds: the breaker opens at the first call where
    the last `window` calls (at least the minimum) fail, or are slow, at or above the threshold,
    a success included (a window of only successes is never checked: both rates are 0)."""
    cfg = BreakerConfig(window_size=window, minimum_calls=minimum, failure_rate_threshold=failure_threshold,
                        slow_call_rate_threshold=slow_threshold, slow_call_duration_s=1.0)
    cb = CircuitBreaker("m", cfg, FakeClock())
    need = min(window, minimum)
    for i, (failed, slow) in enumerate(calls):
        call(cb, F if failed else S, 2.0 if slow else 0.01)
        last = calls[max(0, i + 1 - window) : i + 1]
        n = len(last)
        should_open = n >= need and (sum(f for f, _ in last) * 100.0 / n >= failure_threshold
                                     or sum(s for _, s in last) * 100.0 / n >= slow_threshold)
        assert (cb.state is BreakerState.OPEN) == should_open
        if should_open:
            break
