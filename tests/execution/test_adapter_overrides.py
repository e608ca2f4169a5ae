"""Per-adapter settings: ``[adapters.<id>.timeouts|retry|throttle|breaker]`` override the global
sections for one adapter; cancels have their own timeout (``timeouts.cancel_s``).

Two scripted venues run side by side on a fake clock, so each test shows one adapter behaving
by its own settings while the other keeps the global ones.
"""

from __future__ import annotations

import threading

import pytest
from _adapters import TestAdapter
from conftest import ObservableClock, ctx, limit, registry_of, settle, wait_until

from config import ConfigError, load_settings
from protocols import ErrorCode, OrderStatus

ATTEMPT_S = 30.0


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


@pytest.fixture
def start(make_runtime, clock):
    """``start(live, sim, **overrides)``: mode ``live_test`` routes to ``live``, ``paper`` to ``sim``."""

    def make(live: TestAdapter, sim: TestAdapter, **overrides):
        overrides.setdefault("timeouts", {"attempt_s": ATTEMPT_S, "deadline_s": 10 * ATTEMPT_S})
        overrides.setdefault("reconcile", {"interval_s": 5.0})  # its timers never match a retry's (< 1 s)
        routing = {"policy": {"live_test": live.adapter_id, "paper": sim.adapter_id}, "blocked_modes": []}
        return make_runtime(registry=registry_of(live, sim), clock=clock, routing=routing, **overrides)

    return make


def test_settings_merge_the_override_into_the_global_section() -> None:
    s = load_settings("test", adapters={"paper": {"retry": {"max_retries": 0}, "timeouts": {"cancel_s": 4}}})
    own = s.for_adapter("paper")
    assert own.retry.max_retries == 0 and own.retry.base_s == s.retry.base_s  # unset keys inherit
    assert own.timeouts.cancel_s == 4.0 and own.timeouts.attempt_s == s.timeouts.attempt_s
    assert s.for_adapter("shadow").retry == s.retry  # adapters without overrides: the global sections
    assert load_settings().timeouts.cancel_s == 10.0  # seed 000: cancels time out after 10 s


def test_override_from_a_toml_profile(tmp_path) -> None:
    (tmp_path / "live.toml").write_text("[retry]\nmax_retries = 3\n[adapters.paper.retry]\nmax_retries = 0\n"
                                       "[adapters.paper.breaker]\nwindow_size = 5\n")
    s = load_settings("live", profile_dir=tmp_path)
    assert s.for_adapter("paper").retry.max_retries == 0 and s.for_adapter("paper").breaker.window_size == 5
    assert s.for_adapter("shadow").retry.max_retries == 3


def test_override_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("FLOWROUTE_ADAPTERS__PAPER__THROTTLE__MAX_CALLS", "7")
    assert load_settings().for_adapter("paper").throttle.max_calls == 7


@pytest.mark.parametrize(
    ("adapters", "key", "fragment"),
    [
        ({"nowhere": {"retry": {"max_retries": 0}}}, "adapters.nowhere", "no route uses adapter"),
        ({"paper": {"retry": {"max_retrys": 0}}}, "adapters.paper.retry.max_retrys", "unknown setting"),
        ({"paper": {"retry": {"max_retries": -1}}}, "adapters.paper.retry.max_retries", "greater than or equal to 0"),
        # the merged section is validated as a whole: 0.5 s < the global attempt_s of 2 s
        ({"paper": {"timeouts": {"deadline_s": 0.5}}}, "adapters.paper.timeouts.deadline_s", "timeouts.attempt_s"),
        ({"paper": {"fees": {}}}, "adapters.paper.fees", "unknown setting"),
        ({"paper": {"timeouts": {"cancel_s": 0}}}, "adapters.paper.timeouts.cancel_s", "greater than 0"),
    ],
)
def test_bad_override_names_the_key(adapters: dict, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(adapters=adapters)
    assert key in [k for k, _ in info.value.errors], str(info.value)
    assert fragment in str(info.value)


def test_no_retries_for_live_retries_for_the_simulator(start, clock) -> None:
    # seed 001: EXEC_MAX_RETRIES 0 for live, the simulator may retry
    live = TestAdapter("live", script=["not_delivered"], default="fill")
    sim = TestAdapter("sim", script=["not_delivered"], default="fill")
    rt = start(live, sim, retry={"max_retries": 3}, adapters={"live": {"retry": {"max_retries": 0}}})
    live_report = rt.submit(limit("ov-live"), ctx("live_test")).result(timeout=5)
    assert live_report.status is OrderStatus.FAILED and live_report.error.code is ErrorCode.E_EXEC_RETRY_EXHAUSTED
    assert live.submit_calls == ["ov-live"]
    sim_future = rt.submit(limit("ov-sim"), ctx("paper"))
    clock.wait_timer(lambda d: d < 1.0, what="the simulator's retry timer")
    clock.advance(1.0)
    assert sim_future.result(timeout=5).status is OrderStatus.FILLED
    assert sim.submit_calls == ["ov-sim", "ov-sim"]


def test_throttle_override_limits_one_adapter_only(start, clock) -> None:
    live, sim = TestAdapter("live"), TestAdapter("sim")
    rt = start(live, sim, adapters={"live": {"throttle": {"max_calls": 1, "overflow": "deny"}}})
    assert rt.submit(limit("th-1"), ctx("live_test")).result(timeout=5).status is OrderStatus.FILLED
    second = rt.submit(limit("th-2"), ctx("live_test")).result(timeout=5)
    assert second.status is OrderStatus.DENIED and second.error.code is ErrorCode.E_EXEC_THROTTLED
    for k in range(3):
        assert rt.submit(limit(f"th-s{k}"), ctx("paper")).result(timeout=5).status is OrderStatus.FILLED


def test_breaker_override_per_adapter(start) -> None:
    live, sim = TestAdapter("live"), TestAdapter("sim")
    rt = start(live, sim, adapters={"live": {"breaker": {"window_size": 4, "minimum_calls": 2}}})
    live.push("fatal", "fatal")
    for k in range(2):
        rt.submit(limit(f"br-{k}"), ctx("live_test")).result(timeout=5)
    settle(rt)
    # two failures of two calls trip the live breaker (minimum 2); the global minimum of 10 would not
    assert rt.breaker("live").state.value == "OPEN"
    sim.push("fatal", "fatal")
    for k in range(2):
        rt.submit(limit(f"bs-{k}"), ctx("paper")).result(timeout=5)
    settle(rt)
    assert rt.breaker("sim").state.value == "CLOSED"


class _HangingCancel(TestAdapter):
    """Cancels block until released (the venue does not answer)."""

    __test__ = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cancel_release = threading.Event()
        self.cancel_entered = threading.Event()

    def cancel_order(self, client_order_id: str):
        self.cancel_entered.set()
        self.cancel_release.wait(30)
        return super().cancel_order(client_order_id)

    def release_hangs(self) -> None:
        self.cancel_release.set()
        super().release_hangs()


def test_cancel_has_its_own_timeout(start, clock) -> None:
    live = _HangingCancel("live", default="accept")
    sim = TestAdapter("sim")
    rt = start(live, sim, timeouts={"attempt_s": 0.5, "cancel_s": 10.0, "deadline_s": 5.0})
    assert rt.submit(limit("cx-1"), ctx("live_test")).result(timeout=5).status is OrderStatus.ACCEPTED
    pending = rt.cancel("cx-1")
    assert live.cancel_entered.wait(5)
    clock.wait_timer(lambda d: d == 10.0, what="the cancel's 10 s timer")
    assert clock.live_timers(lambda d: d == 0.5) == 0  # not the 0.5 s attempt timeout
    clock.advance(9.9)
    settle(rt)
    assert not pending.done()
    clock.advance(0.1)
    report = pending.result(timeout=5)
    assert report.error is not None and report.error.code is ErrorCode.E_EXEC_BROKER_TIMEOUT
    assert "10 s" in report.error.message
    live.cancel_release.set()
    wait_until(lambda: rt.order("cx-1") is not None)
