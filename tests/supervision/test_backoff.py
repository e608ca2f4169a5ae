"""Retry backoff and restart intensity (actors/supervision/backoff.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.supervision.backoff import RestartBackoff, backoff_delay

# -- backoff_delay -----------------------------------------------------------------------------


@pytest.mark.parametrize("base_s,cap_s", [(1.0, 30.0), (0.4, 30.0)])  # docs/DESIGN.md, Failure handling default and paper profile
def test_delays_stay_within_jitter_and_hit_both_halves(base_s, cap_s):
    rng = random.Random(20210108)
    for attempt in range(1, 8):
        nominal = min(base_s * 2 ** (attempt - 1), cap_s)
        samples = [backoff_delay(attempt, base_s=base_s, cap_s=cap_s, jitter=0.2, rng=rng) for _ in range(10_000)]
        assert min(samples) >= nominal * 0.8
        assert max(samples) <= nominal * 1.2
        below = sum(1 for s in samples if s < nominal)
        above = sum(1 for s in samples if s > nominal)
        assert below > 4_000 and above > 4_000  # uniform: about half on each side
        assert min(samples) < nominal * 0.81 and max(samples) > nominal * 1.19  # the whole range is used
        mean = sum(samples) / len(samples)
        assert mean == pytest.approx(nominal, rel=0.01)


def test_doubling_and_cap_without_jitter():
    rng = random.Random(0)
    got = [backoff_delay(n, base_s=1.0, cap_s=30.0, jitter=0.0, rng=rng) for n in range(1, 9)]
    assert got == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_cap_applies_before_jitter_and_huge_attempts_do_not_overflow():
    rng = random.Random(7)
    for attempt in (6, 50, 2_000, 10**9):
        d = backoff_delay(attempt, base_s=1.0, cap_s=30.0, jitter=0.2, rng=rng)
        assert 24.0 <= d <= 36.0


def test_same_seed_same_delays():
    a = [backoff_delay(3, base_s=1.0, cap_s=30.0, jitter=0.2, rng=r) for r in [random.Random(5)] * 5]
    b = [backoff_delay(3, base_s=1.0, cap_s=30.0, jitter=0.2, rng=r) for r in [random.Random(5)] * 5]
    assert a == b


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(attempt=0), "attempt"),
        (dict(attempt=-1), "attempt"),
        (dict(attempt=1.0), "attempt"),
        (dict(attempt=True), "attempt"),
        (dict(base_s=0.0), "base_s"),
        (dict(base_s=float("nan")), "base_s"),
        (dict(cap_s=float("inf")), "cap_s"),
        (dict(cap_s=0.5), "cap_s"),
        (dict(jitter=1.0), "jitter"),
        (dict(jitter=-0.1), "jitter"),
    ],
)
def test_backoff_delay_rejects_bad_arguments(kwargs, match):
    args = dict(attempt=1, base_s=1.0, cap_s=30.0, jitter=0.2, rng=random.Random(0))
    args.update(kwargs)
    attempt = args.pop("attempt")
    with pytest.raises(ValueError, match=match):
        backoff_delay(attempt, **args)


@given(
    attempt=st.integers(1, 10_000),
    base=st.floats(0.001, 10.0),
    cap_factor=st.floats(1.0, 1000.0),
    jitter=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=300, deadline=None)
def test_backoff_delay_bounds(attempt, base, cap_factor, jitter, seed):
    cap = base * cap_factor
    d = backoff_delay(attempt, base_s=base, cap_s=cap, jitter=jitter, rng=random.Random(seed))
    nominal = min(base * 2.0 ** min(attempt - 1, 1000), cap)
    assert nominal * (1 - jitter) * (1 - 1e-12) <= d <= nominal * (1 + jitter) * (1 + 1e-12)
    assert d > 0


# -- RestartBackoff ----------------------------------------------------------------------------


def test_restart_defaults_match_spec():
    rb = RestartBackoff(rng=random.Random(1))
    assert (rb.max_restarts, rb.within_s) == (5, 60.0)
    delays = [rb.next_delay(float(t)) for t in range(5)]
    for n, d in enumerate(delays, start=1):
        nominal = min(0.1 * 2 ** (n - 1), 5.0)
        assert d is not None and nominal * 0.8 <= d <= nominal * 1.2
    assert rb.next_delay(5.0) is None  # a sixth restart within 60 s: give up
    assert rb.restarts == 5


def test_delay_doubles_to_the_cap():
    rb = RestartBackoff(initial_s=0.1, max_s=0.5, jitter=0.0, max_restarts=10, within_s=60.0)
    assert [rb.next_delay(float(t)) for t in range(6)] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


def test_gives_up_after_n_restarts_in_t_and_recovers_when_they_age_out():
    rb = RestartBackoff(jitter=0.0, max_restarts=3, within_s=10.0)
    assert rb.next_delay(0.0) == 0.1
    assert rb.next_delay(1.0) == 0.2
    assert rb.next_delay(2.0) == 0.4
    assert rb.next_delay(3.0) is None
    assert rb.next_delay(9.9) is None  # all three still within [now - 10, now]
    assert rb.restarts == 3 and rb.recent(9.9) == 3
    assert rb.next_delay(10.0) is None  # the restart at 0.0 is exactly at the period boundary: still counts
    assert rb.next_delay(10.5) == 0.4  # the restart at 0.0 aged out: third in the period again
    assert rb.restarts == 4
    assert rb.recent(100.0) == 0
    assert rb.next_delay(100.0) == 0.1  # all aged out: back to the initial delay


def test_refused_restart_is_not_recorded():
    rb = RestartBackoff(jitter=0.0, max_restarts=1, within_s=10.0)
    assert rb.next_delay(0.0) == 0.1
    for t in (1.0, 2.0, 3.0):
        assert rb.next_delay(t) is None
    assert rb.next_delay(10.5) == 0.1  # refusals at 1, 2, 3 did not count
    assert rb.restarts == 2


def test_zero_intensity_never_restarts():
    rb = RestartBackoff(max_restarts=0)
    assert rb.next_delay(0.0) is None


def test_reset_forgets_everything():
    rb = RestartBackoff(jitter=0.0, max_restarts=2, within_s=60.0)
    rb.next_delay(0.0)
    rb.next_delay(1.0)
    assert rb.next_delay(2.0) is None
    rb.reset()
    assert rb.restarts == 0
    assert rb.next_delay(0.5) == 0.1  # time may restart from anywhere after reset


def test_now_going_backwards_is_rejected_without_recording():
    rb = RestartBackoff(jitter=0.0)
    rb.next_delay(5.0)
    with pytest.raises(ValueError, match="backwards"):
        rb.next_delay(4.0)
    with pytest.raises(ValueError, match="now"):
        rb.next_delay(float("nan"))
    assert rb.restarts == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(initial_s=0), "initial_s"),
        (dict(max_s=0.05), "max_s"),
        (dict(jitter=1.5), "jitter"),
        (dict(max_restarts=-1), "max_restarts"),
        (dict(max_restarts=2.0), "max_restarts"),
        (dict(within_s=0), "within_s"),
    ],
)
def test_restart_backoff_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RestartBackoff(**kwargs)


@given(
    gaps=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=60),
    max_restarts=st.integers(0, 6),
    within_s=st.sampled_from([1.0, 10.0, 60.0]),
)
@settings(max_examples=300, deadline=None)
def test_restart_intensity_matches_otp_model(gaps, max_restarts, within_s):
    """Granted iff fewer than max_restarts granted restarts lie in [now - within_s, now]."""
    rb = RestartBackoff(jitter=0.0, max_restarts=max_restarts, within_s=within_s, rng=random.Random(0))
    granted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        in_period = [g for g in granted if g >= now - within_s]
        d = rb.next_delay(now)
        if len(in_period) < max_restarts:
            assert d == pytest.approx(min(0.1 * 2 ** len(in_period), 5.0))
            granted.append(now)
        else:
            assert d is None
        assert rb.restarts == len(granted)
