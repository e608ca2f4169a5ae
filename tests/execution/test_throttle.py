"""Sliding-log throttle and admission queue (actors/execution/throttle.py)."""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.execution.throttle import AdmissionQueue, SlidingLogThrottle
from actors.kernel.clock import FakeClock


class SetClock:
    """A clock whose time is set directly (lets tests hit exact float boundaries)."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def monotonic(self) -> float:
        return self.t


# -- throttle ----------------------------------------------------------------------------------


def test_admits_up_to_max_then_reports_retry_after():
    clock = FakeClock()
    t = SlidingLogThrottle(3, 60.0, clock)
    assert [t.try_admit() for _ in range(3)] == [None, None, None]
    clock.advance(10.0)
    assert t.try_admit() == pytest.approx(50.0)
    assert t.retry_after() == pytest.approx(50.0)
    assert t.in_window() == 3
    clock.advance(49.0)
    r = t.try_admit()
    assert r == pytest.approx(1.0)
    clock.advance(r)  # t=60: the three admissions from t=0 leave together
    assert t.in_window() == 0
    assert t.try_admit() is None
    assert t.in_window() == 1


def test_entries_leave_exactly_at_window_end():
    clock = SetClock(0.0)
    t = SlidingLogThrottle(1, 60.0, clock)
    assert t.try_admit() is None
    clock.t = math.nextafter(60.0, 0.0)
    assert t.try_admit() is not None
    clock.t = 60.0
    assert t.try_admit() is None


def test_retry_after_is_zero_when_room_and_counts_logged_calls():
    clock = FakeClock()
    t = SlidingLogThrottle(2, 1.0, clock)
    assert t.retry_after() == 0.0 and t.in_window() == 0
    t.try_admit()
    assert t.retry_after() == 0.0 and t.in_window() == 1
    clock.advance(0.25)
    t.try_admit()
    assert t.retry_after() == pytest.approx(0.75)
    clock.advance(0.75)
    assert t.in_window() == 1
    assert t.retry_after() == 0.0


def test_force_admit_logs_beyond_the_limit_and_delays_new_orders():
    clock = FakeClock()
    t = SlidingLogThrottle(2, 10.0, clock)
    t.try_admit()  # t=0
    clock.advance(1.0)
    t.force_admit()  # cancel at t=1
    t.force_admit()  # cancel at t=1
    assert t.in_window() == 3
    # a new order needs fewer than 2 in the window: wait until both t=0 and one t=1 entry left
    assert t.try_admit() == pytest.approx(10.0)
    clock.advance(9.0)  # t=10: the t=0 entry left, still two cancels
    assert t.try_admit() == pytest.approx(1.0)
    clock.advance(1.0)
    assert t.try_admit() is None


@pytest.mark.parametrize(
    "max_calls,window_s,match",
    [(0, 60.0, "max_calls"), (1.5, 60.0, "max_calls"), (True, 60.0, "max_calls"), (5, 0, "window_s"),
     (5, -1.0, "window_s"), (5, float("inf"), "window_s"), (5, "60", "window_s")],
)
def test_throttle_rejects_bad_arguments(max_calls, window_s, match):
    with pytest.raises(ValueError, match=match):
        SlidingLogThrottle(max_calls, window_s, FakeClock())


def test_throttle_requires_a_clock():
    with pytest.raises(TypeError, match="clock"):
        SlidingLogThrottle(1, 1.0, None)


def _gaps():
    return st.lists(st.floats(min_value=0.0, max_value=30.0, allow_nan=False), min_size=1, max_size=120)


@given(gaps=_gaps(), max_calls=st.integers(1, 10), window_s=st.sampled_from([0.5, 1.0, 7.3, 60.0]))
@settings(max_examples=300, deadline=None)
def test_never_more_than_max_calls_in_any_window(gaps, max_calls, window_s):
    clock = SetClock(0.0)
    t = SlidingLogThrottle(max_calls, window_s, clock)
    now = 0.0
    admitted: list[float] = []
    for gap in gaps:
        now += gap
        clock.t = now
        if t.try_admit() is None:
            admitted.append(now)
    # any window [a, a + w) that holds admissions can be aligned to start at an admission
    for i, a in enumerate(admitted):
        j = bisect.bisect_left(admitted, a + window_s)
        assert j - i <= max_calls, (admitted[i:j], window_s)


@given(gaps=_gaps(), max_calls=st.integers(1, 6), window_s=st.sampled_from([0.5, 1.0, 7.3, 60.0]))
@settings(max_examples=300, deadline=None)
def test_admits_whenever_the_window_has_room(gaps, max_calls, window_s):
    """Liveness against a reference model: denial only when max_calls admissions are in the window."""
    clock = SetClock(0.0)
    t = SlidingLogThrottle(max_calls, window_s, clock)
    now = 0.0
    admitted: list[float] = []
    for gap in gaps:
        now += gap
        clock.t = now
        in_window = sum(1 for a in admitted if a + window_s > now)
        result = t.try_admit()
        assert (result is None) == (in_window < max_calls)
        if result is None:
            admitted.append(now)


@given(gaps=_gaps(), max_calls=st.integers(1, 6), window_s=st.sampled_from([0.5, 1.0, 7.3, 60.0]))
@settings(max_examples=300, deadline=None)
def test_retry_after_is_exact(gaps, max_calls, window_s):
    """retry_after is the time until the oldest blocking admission leaves the window.

    Waiting it admits; every clock time before that moment is still denied; it exceeds the
    real remaining time by float rounding at most.
    """
    clock = SetClock(0.0)
    t = SlidingLogThrottle(max_calls, window_s, clock)
    now = 0.0
    admitted: list[float] = []
    for gap in gaps:
        now += gap
        clock.t = now
        r = t.try_admit()
        if r is None:
            admitted.append(now)
            continue
        deadline = admitted[-max_calls] + window_s  # when the blocking admission leaves
        assert r > 0
        assert t.retry_after() == r  # the query agrees and has no side effect
        assert now + r >= deadline
        assert r - (deadline - now) <= 4 * math.ulp(deadline)
        before = math.nextafter(deadline, 0.0)
        if before > now:
            clock.t = before
            assert t.retry_after() > 0  # not yet
        now += r
        clock.t = now
        assert t.retry_after() == 0.0  # now it would admit
        assert t.try_admit() is None
        admitted.append(now)


# -- admission queue ---------------------------------------------------------------------------


def test_queue_serves_cancels_first_then_fifo():
    q: AdmissionQueue[str] = AdmissionQueue(3)
    assert q.offer("n1", is_cancel=False)
    assert q.offer("n2", is_cancel=False)
    assert q.offer("c1", is_cancel=True)
    assert q.offer("n3", is_cancel=False)
    assert q.offer("c2", is_cancel=True)
    assert len(q) == 5 and (q.waiting_new, q.waiting_cancels) == (3, 2)
    assert [q.pop() for _ in range(6)] == ["c1", "c2", "n1", "n2", "n3", None]
    assert len(q) == 0 and not q


def test_queue_capacity_bounds_new_orders_only():
    q: AdmissionQueue[str] = AdmissionQueue(2)
    assert q.offer("n1", is_cancel=False) and q.offer("n2", is_cancel=False)
    assert q.offer("n3", is_cancel=False) is False
    assert all(q.offer(f"c{i}", is_cancel=True) for i in range(50))
    assert q.waiting_new == 2 and len(q) == 52
    q.pop()  # a cancel: new-order lane is still full
    assert q.offer("n3", is_cancel=False) is False


def test_queue_capacity_zero_is_deny_only_but_cancels_pass():
    q: AdmissionQueue[str] = AdmissionQueue(0)
    assert q.offer("n", is_cancel=False) is False
    assert q.offer("c", is_cancel=True)
    assert q.pop() == "c"


def test_queue_remove_if_and_drain():
    q: AdmissionQueue[tuple[str, str]] = AdmissionQueue(10)
    for i in range(4):
        q.offer(("new", f"o{i}"), is_cancel=False)
    q.offer(("cancel", "o9"), is_cancel=True)
    assert q.remove_if(lambda item: item[1] in {"o1", "o9"}) == [("cancel", "o9"), ("new", "o1")]
    assert len(q) == 3

    def boom(item):
        if item[1] == "o3":
            raise RuntimeError("predicate failed")
        return True

    with pytest.raises(RuntimeError):
        q.remove_if(boom)
    assert len(q) == 3  # unchanged
    assert q.drain() == [("new", "o0"), ("new", "o2"), ("new", "o3")]
    assert len(q) == 0 and q.pop() is None


def test_queue_rejects_bad_input():
    with pytest.raises(ValueError, match="capacity"):
        AdmissionQueue(-1)
    with pytest.raises(ValueError, match="capacity"):
        AdmissionQueue(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="None"):
        AdmissionQueue(1).offer(None, is_cancel=False)


@given(
    ops=st.lists(st.one_of(st.tuples(st.just("offer"), st.booleans()), st.just(("pop", None))), max_size=80),
    capacity=st.integers(0, 5),
)
@settings(max_examples=300, deadline=None)
def test_queue_matches_reference_model(ops, capacity):
    q: AdmissionQueue[int] = AdmissionQueue(capacity)
    cancels: list[int] = []
    news: list[int] = []
    for n, (op, is_cancel) in enumerate(ops):
        if op == "offer":
            accepted = q.offer(n, is_cancel=is_cancel)
            if is_cancel:
                assert accepted
                cancels.append(n)
            else:
                assert accepted == (len(news) < capacity)
                if accepted:
                    news.append(n)
        else:
            expected = cancels.pop(0) if cancels else news.pop(0) if news else None
            assert q.pop() == expected
        assert q.waiting_new <= capacity
        assert len(q) == len(cancels) + len(news)
