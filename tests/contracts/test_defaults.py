"""config owns every default (docs/DESIGN.md "House plan"): ``BreakerConfig`` and ``RiskConfig``
take theirs from ``config``'s sections, ``AdapterPolicy`` has none, and the defaults documented in
``config/profiles/default.toml`` (commented out: that profile sets nothing) are the code's."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from decimal import Decimal

import pytest

from actors.breaker.breaker import BreakerConfig
from actors.execution.adapter import AdapterPolicy
from actors.orders.risk import RiskConfig
from config import (
    DEFAULT_PROFILE_DIR,
    BreakerSettings,
    RiskSettings,
    Settings,
    load_settings,
)


def _fields(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def test_the_breaker_config_defaults_are_configs() -> None:
    assert _fields(BreakerConfig()) == BreakerSettings().model_dump()
    assert BreakerConfig.from_settings(load_settings("default").breaker) == BreakerConfig()


def test_the_risk_config_defaults_are_configs() -> None:
    ours = _fields(RiskConfig())
    ours["budgets"] = dict(ours["budgets"])
    assert ours == RiskSettings().model_dump()
    assert RiskConfig.from_settings(load_settings("default").risk) == RiskConfig()


def test_the_adapter_policy_has_no_defaults_of_its_own() -> None:
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(AdapterPolicy))
    s = Settings()
    policy = AdapterPolicy.from_settings(s)
    assert (policy.attempt_timeout_s, policy.max_retries, policy.throttle_max_calls, policy.reconcile_interval_s) == (
        s.timeouts.attempt_s, s.retry.max_retries, s.throttle.max_calls, s.reconcile.interval_s)


def _documented_defaults() -> list[tuple[str, str, object]]:
    """``(section, key, value)`` of every ``# key = value`` line under a plain ``# [section]``
    header of default.toml (the per-adapter and table examples are examples, not defaults)."""
    out, section = [], None
    for line in (DEFAULT_PROFILE_DIR / "default.toml").read_text().splitlines():
        header = re.match(r"#\s*(\[\[?[^\]]+\]\]?)", line)
        if header:
            name = header.group(1)
            section = name[1:-1] if re.fullmatch(r"\[[a-z_]+\]", name) else None
            continue
        item = re.match(r"#\s*([a-z_]+)\s*=\s*(.+?)\s*(?:#.*)?$", line)
        if item and section is not None:
            key, text = item.groups()
            out.append((section, key, tomllib.loads(f"v = {text}")["v"]))
        elif item and section is None and re.match(r"#\s*state_dir", line):
            out.append(("", item.group(1), tomllib.loads(f"v = {item.group(2)}")["v"]))
    return out


DOCUMENTED = _documented_defaults()


def test_default_toml_documents_many_defaults() -> None:
    assert len(DOCUMENTED) > 60  # the parser found the file's lines (a format change must not pass silently)


@pytest.mark.parametrize("section,key,value", DOCUMENTED, ids=[f"{s}.{k}" for s, k, _ in DOCUMENTED])
def test_default_toml_agrees_with_the_code(section: str, key: str, value: object) -> None:
    settings = Settings()
    holder = getattr(settings, section) if section else settings
    if section and holder is None:
        pytest.skip(f"[{section}] is absent by default: its lines show an example")
    actual = getattr(holder, key)
    if actual is None:
        return  # absent by default: the line shows an example value ("absent = ...")
    if isinstance(actual, (int, float, Decimal)) and not isinstance(actual, bool):
        assert Decimal(str(actual)) == Decimal(str(value)), f"{section}.{key}: default.toml says {value!r}, the code {actual!r}"
    elif isinstance(actual, (list, tuple)):
        assert list(actual) == list(value), f"{section}.{key}"
    else:
        assert str(getattr(actual, "value", actual)) == str(value), f"{section}.{key}: default.toml says {value!r}, the code {actual!r}"
