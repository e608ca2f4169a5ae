"""Tests for config: defaults, source priority, profiles, errors naming keys, secrets."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from config import (
    DEFAULT_PROFILE_DIR,
    BreakerSettings,
    ConfigError,
    InstrumentSettings,
    Settings,
    known_profiles,
    load_settings,
)
from protocols import DEFAULT_INSTRUMENTS, Instrument

SECRET = "sk-live-DO-NOT-LEAK-1234567890"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLOWROUTE_* variable from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("FLOWROUTE_"):
            monkeypatch.delenv(name)


# ---------------------------------------------------------------- defaults


def test_defaults_are_the_spec_values() -> None:
    s = load_settings()
    assert s.profile == "default"
    assert s.state_dir == Path("var")
    # §8 journal / idempotency
    assert s.journal.enabled is True and s.journal.synchronous == "FULL"
    assert s.journal.group_commit_max == 512 and s.journal.file_mode == 0o600
    assert s.idempotency.ttl_s == 3600.0
    # §6 routing
    assert s.routing.policy == {
        "paper": "paper",
        "simulated": "paper",
        "shadow": "shadow",
        "shadow_run": "shadow",
        "dry_run": "dry_run",
        "testnet_dry_run": "dry_run",
    }
    assert s.routing.blocked_modes == ("live_blocked", "live")
    # §9 resilience
    assert (s.timeouts.attempt_s, s.timeouts.deadline_s) == (2.0, 30.0)
    assert (s.retry.max_retries, s.retry.base_s, s.retry.cap_s, s.retry.jitter) == (3, 1.0, 30.0, 0.2)
    b = s.breaker
    assert (b.window_size, b.minimum_calls, b.failure_rate_threshold, b.slow_call_rate_threshold) == (20, 10, 50.0, 50.0)
    assert (b.slow_call_duration_s, b.open_duration_s, b.half_open_permits) == (1.0, 30.0, 1)
    t = s.throttle
    assert (t.max_calls, t.window_s, t.overflow, t.queue_size) == (120, 60.0, "queue", 1000)
    # §4 supervision
    sv = s.supervisor
    assert (sv.backoff_initial_s, sv.backoff_max_s, sv.jitter) == (0.1, 5.0, 0.2)
    assert (sv.max_restarts, sv.within_s, sv.when_restarting, sv.stash_size) == (5, 60.0, "stash", 1000)
    assert (s.reconcile.interval_s, s.reconcile.quiet_threshold_s, s.reconcile.max_attempts) == (1.0, 5.0, 10)
    # §10 risk
    assert s.risk.min_notional == Decimal("5.0") and s.risk.max_notional == Decimal("1000000")
    assert s.risk.slippage_bps == Decimal("20") and s.risk.slippage_action == "deny"
    assert s.risk.budgets == {} and s.risk.default_budget is None
    # §11 paper
    p = s.paper
    assert (p.maker_fee_bps, p.taker_fee_bps, p.depth_window_s) == (Decimal("1.0"), Decimal("1.0"), Decimal("2"))
    assert (p.fill_model, p.market_remainder, p.trades_move_touch) == ("flowroute", "walk", True)
    assert (p.locked_crossed_rule, p.latency_us) == ("skip", 0)
    assert p.instrument_map() == DEFAULT_INSTRUMENTS
    # §12
    assert s.metrics.port is None and s.metrics.host == "127.0.0.1"
    assert s.logging.level == "INFO" and s.logging.json_path is None
    assert s.venue_api_key is None and s.venue_api_secret is None


def test_decimal_fields_are_decimal_everywhere() -> None:
    s = load_settings("paper")
    for value in (s.risk.min_notional, s.risk.max_notional, s.risk.slippage_bps, s.paper.maker_fee_bps,
                  s.paper.taker_fee_bps, s.paper.depth_window_s):
        assert type(value) is Decimal
    for spec in s.paper.instruments.values():
        assert all(type(v) is Decimal for v in (spec.tick_size, spec.lot_size, spec.min_notional))


def test_decimal_inputs_str_int_float_are_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(risk={"min_notional": 0.1, "max_notional": 7, "slippage_bps": "12.5"})
    assert s.risk.min_notional == Decimal("0.1")  # float via repr, not Decimal(0.1)
    assert s.risk.max_notional == Decimal(7) and s.risk.slippage_bps == Decimal("12.5")
    monkeypatch.setenv("FLOWROUTE_RISK__BUDGETS", '{"acc-1": "1000.10", "acc-2": 5}')
    budgets = load_settings().risk.budgets
    assert budgets == {"acc-1": Decimal("1000.10"), "acc-2": Decimal(5)}
    assert all(type(v) is Decimal for v in budgets.values())


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.breaker.window_size = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.profile = "paper"  # type: ignore[misc]


# ---------------------------------------------------------------- sources and priority


def test_env_overrides_nested_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWROUTE_BREAKER__WINDOW_SIZE", "7")
    s = load_settings()
    assert s.breaker.window_size == 7
    assert s.breaker.minimum_calls == 10  # the rest of the section keeps its defaults


def test_profile_paper_sets_retry_base() -> None:
    s = load_settings("paper")
    assert s.profile == "paper"
    assert s.retry.base_s == 0.4
    assert s.retry.cap_s == 30.0


def test_env_profile_selects_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWROUTE_PROFILE", "paper")
    s = load_settings()
    assert s.profile == "paper" and s.retry.base_s == 0.4
    # the argument beats the environment
    assert load_settings("default").retry.base_s == 1.0
    # Settings() reads the same sources as load_settings()
    assert Settings().retry.base_s == 0.4


def test_priority_overrides_beat_env_beat_profile_beat_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "mine.toml").write_text(
        "[breaker]\nwindow_size = 30\nminimum_calls = 3\nopen_duration_s = 9.5\n"
        "[risk]\nmin_notional = 5.1\n"
    )
    monkeypatch.setenv("FLOWROUTE_BREAKER__WINDOW_SIZE", "40")
    monkeypatch.setenv("FLOWROUTE_BREAKER__MINIMUM_CALLS", "4")
    s = load_settings("mine", profile_dir=tmp_path, breaker={"window_size": 50})
    assert s.breaker.window_size == 50  # override > env
    assert s.breaker.minimum_calls == 4  # env > profile
    assert s.breaker.open_duration_s == 9.5  # profile > default
    assert s.breaker.half_open_permits == 1  # default
    assert s.risk.min_notional == Decimal("5.1") and type(s.risk.min_notional) is Decimal  # TOML float exact


def test_packaged_profiles_load_and_are_sane() -> None:
    assert {"default", "paper", "stress", "test"} <= set(known_profiles())
    assert (DEFAULT_PROFILE_DIR / "default.toml").is_file()
    stress = load_settings("stress")
    assert stress.throttle.max_calls >= 1_000_000
    assert stress.supervisor.max_restarts >= 1000 and stress.supervisor.within_s == 60.0
    assert stress.reconcile.interval_s <= 0.2 and stress.breaker.open_duration_s <= 1.0
    test = load_settings("test")
    assert test.journal.synchronous == "OFF"


def test_unknown_profile_lists_known_profiles() -> None:
    with pytest.raises(ValueError) as info:
        load_settings("no-such-profile")
    assert isinstance(info.value, ConfigError)
    message = str(info.value)
    assert "no-such-profile" in message
    for name in ("default", "paper", "stress", "test"):
        assert name in message


def test_profile_name_cannot_escape_the_directory() -> None:
    with pytest.raises(ConfigError, match="profile"):
        load_settings("../etc/passwd")


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[breaker\nwindow_size = ")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings("bad", profile_dir=tmp_path)


# ---------------------------------------------------------------- errors name the key


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"breaker": {"failure_rate_threshold": 150}}, "breaker.failure_rate_threshold", "(0, 100]"),
        ({"breaker": {"slow_call_rate_threshold": 0}}, "breaker.slow_call_rate_threshold", "(0, 100]"),
        ({"breaker": {"window_size": 0}}, "breaker.window_size", "greater than or equal to 1"),
        ({"timeouts": {"deadline_s": 1.0}}, "timeouts.deadline_s", "timeouts.attempt_s"),
        ({"retry": {"jitter": 1.5}}, "retry.jitter", "less than or equal to 1"),
        ({"retry": {"base_s": 0}}, "retry.base_s", "greater than 0"),
        ({"journal": {"synchronous": "SOMETIMES"}}, "journal.synchronous", "FULL"),
        ({"dispatch": {"mode": "fibers"}}, "dispatch.mode", "shared"),
        ({"dispatch": {"linger_us": -1}}, "dispatch.linger_us", "greater than or equal to 0"),
        ({"journal": {"file_mode": 0o400}}, "journal.file_mode", "owner read and write"),
        ({"journal": {"file_mode": "rw-"}}, "journal.file_mode", "octal"),
        ({"risk": {"min_notional": "NaN"}}, "risk.min_notional", "finite"),
        ({"risk": {"max_notional": "inf"}}, "risk.max_notional", "finite"),
        ({"risk": {"slippage_bps": -1}}, "risk.slippage_bps", "greater than or equal to 0"),
        ({"risk": {"budgets": {"acc-1": "-5"}}}, "risk.budgets.acc-1", "greater than or equal to 0"),
        ({"risk": {"min_notional": "abc"}}, "risk.min_notional", None),
        ({"paper": {"instruments": {"X/Y": {"tick_size": 0, "lot_size": 1}}}}, "paper.instruments.X/Y.tick_size", None),
        ({"paper": {"fill_model": "nautilus"}}, "paper.fill_model", "nautilus_l1"),
        ({"paper": {"depth_window_s": 0}}, "paper.depth_window_s", "greater than 0"),
        ({"paper": {"trades_move_touch": "sometimes"}}, "paper.trades_move_touch", None),
        ({"paper": {"market_slippage_bps": 5}}, "paper.market_slippage_bps", "unknown setting"),
        ({"paper": {"depth": {"BTC/USDT": [{"ticks": 0, "size": 1}]}}}, "paper.depth.BTC/USDT.0.ticks", None),
        ({"paper": {"depth": {"BTC/USDT": [{"ticks": 1, "size": 0}]}}}, "paper.depth.BTC/USDT.0.size", None),
        ({"paper": {"depth": {"ABC/DEF": [{"ticks": 1, "size": 1}]}}}, "paper.depth", "ABC/DEF"),
        ({"metrics": {"port": 70000}}, "metrics.port", None),
        ({"routing": {"blocked_modes": ["paper"]}}, "routing.blocked_modes", "paper"),
        ({"idempotency": {"ttl_s": float("nan")}}, "idempotency.ttl_s", None),
        ({"pnl": {"day_start": "25:00"}}, "pnl.day_start", "HH:MM"),
        ({"pnl": {"timezone": "Mars/Base"}}, "pnl.timezone", "IANA"),
        ({"alerts": {"reject_rate": 1.5}}, "alerts.reject_rate", "less than or equal to 1"),
        ({"alerts": {"latency_p99_us": 0}}, "alerts.latency_p99_us", "greater than or equal to 1"),
        ({"alerts": {"window_s": 0}}, "alerts.window_s", "greater than 0"),
        ({"retention": {"orders_days": 0}}, "retention.orders_days", "greater than 0"),
        ({"retention": {"receipts_days": -1}}, "retention.receipts_days", "greater than 0"),
        ({"throttle": {"venue_key": "key-\x00"}}, "throttle.venue_key", "a NUL character"),
        ({"throttle": {"venue_key": "key-\ud800"}}, "throttle.venue_key", "unicode string"),
        ({"adapters": {"paper": {"throttle": {"venue_key": "\x00"}}}}, "adapters.paper.throttle.venue_key", "NUL"),
    ],
)
def test_invalid_value_names_the_key(overrides: dict, key: str, fragment: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    message = str(info.value)
    assert message.startswith(f"{key}: "), message
    assert key in [k for k, _ in info.value.errors]
    if fragment is not None:
        assert fragment in message


def test_every_error_is_listed() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(breaker={"failure_rate_threshold": 150}, retry={"max_retries": -1})
    keys = [k for k, _ in info.value.errors]
    assert keys == ["retry.max_retries", "breaker.failure_rate_threshold"] or set(keys) == {
        "retry.max_retries",
        "breaker.failure_rate_threshold",
    }
    assert len(str(info.value).splitlines()) == 2


def test_invalid_env_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWROUTE_BREAKER__FAILURE_RATE_THRESHOLD", "150")
    with pytest.raises(ConfigError, match=r"^breaker\.failure_rate_threshold: must be in \(0, 100\]"):
        load_settings()


def test_unknown_keys_are_rejected_naming_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"breaker\.windw_size: unknown setting"):
        load_settings(breaker={"windw_size": 5})
    with pytest.raises(ConfigError, match=r"^bogus: unknown setting"):
        load_settings(bogus=1)
    (tmp_path / "typo.toml").write_text("[throttle]\nmax_call = 5\n")
    with pytest.raises(ConfigError, match=r"throttle\.max_call: unknown setting"):
        load_settings("typo", profile_dir=tmp_path)
    monkeypatch.setenv("FLOWROUTE_RETRY__BASE", "1")
    with pytest.raises(ConfigError, match=r"retry\.base: unknown setting"):
        load_settings()
    monkeypatch.delenv("FLOWROUTE_RETRY__BASE")
    monkeypatch.setenv("FLOWROUTE_BREAKR__WINDOW_SIZE", "5")
    with pytest.raises(ConfigError, match=r"FLOWROUTE_BREAKR__WINDOW_SIZE: unknown setting"):
        load_settings()


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_settings(retry={"max_retries": -1})


def test_case_insensitive_enums() -> None:
    s = load_settings(journal={"synchronous": "normal"}, logging={"level": "debug"}, throttle={"overflow": "DENY"})
    assert (s.journal.synchronous, s.logging.level, s.throttle.overflow) == ("NORMAL", "DEBUG", "deny")


def test_file_mode_strings_are_octal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWROUTE_JOURNAL__FILE_MODE", "0o640")
    assert load_settings().journal.file_mode == 0o640
    monkeypatch.setenv("FLOWROUTE_JOURNAL__FILE_MODE", "600")
    assert load_settings().journal.file_mode == 0o600


def test_breaker_minimum_may_exceed_window() -> None:
    """resilience4j allows minimumNumberOfCalls > slidingWindowSize."""
    assert BreakerSettings(window_size=5, minimum_calls=10).minimum_calls == 10


def test_instrument_map_builds_protocol_instruments() -> None:
    s = load_settings(paper={"instruments": {"ETH/USDT": {"tick_size": "0.01", "lot_size": "0.0001", "min_notional": 5}}})
    assert s.paper.instrument_map() == {
        "ETH/USDT": Instrument(symbol="ETH/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"), min_notional=Decimal(5))
    }
    assert isinstance(s.paper.instruments["ETH/USDT"], InstrumentSettings)


# ---------------------------------------------------------------- secrets


def test_secret_never_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWROUTE_VENUE_API_KEY", SECRET)
    s = load_settings(venue_api_secret=SECRET + "-2")
    assert s.venue_api_key is not None and s.venue_api_key.get_secret_value() == SECRET
    assert s.venue_api_secret is not None
    for text in (repr(s), str(s), s.model_dump_json(), json.dumps(s.redacted_dict())):
        assert SECRET not in text
    redacted = s.redacted_dict()
    assert redacted["venue_api_key"] == "**********" and redacted["venue_api_secret"] == "**********"


def test_secret_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(venue_api_key={"nested": SECRET})
    assert "venue_api_key" in str(info.value)
    assert SECRET not in str(info.value)


def test_redacted_dict_is_json_round_trippable() -> None:
    data = load_settings("stress").redacted_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["risk"]["min_notional"] == "5.0"
    assert data["venue_api_key"] is None


# ---------------------------------------------------------------- property


@settings(max_examples=50, deadline=None)
@given(
    window=st.integers(min_value=-5, max_value=200),
    rate=st.floats(min_value=-10, max_value=200, allow_nan=False),
)
def test_breaker_values_accepted_iff_valid(window: int, rate: float) -> None:
    valid = window >= 1 and 0 < rate <= 100
    try:
        s = load_settings(breaker={"window_size": window, "failure_rate_threshold": rate})
    except ConfigError as exc:
        assert not valid
        keys = {k for k, _ in exc.errors}
        assert keys <= {"breaker.window_size", "breaker.failure_rate_threshold"} and keys
    else:
        assert valid
        assert (s.breaker.window_size, s.breaker.failure_rate_threshold) == (window, rate)


def test_unparsable_env_json_names_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWROUTE_RISK__BUDGETS", "not-json")
    with pytest.raises(ConfigError, match=r"^risk: cannot parse the environment value"):
        load_settings()
