"""The young-generation GC threshold while a runtime runs (actors/kernel/gctune.py, ``[dispatch] gc_threshold``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import Runtime
from actors.kernel import gctune
from config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _default_threshold() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_hold_raises_the_young_threshold_and_release_puts_it_back() -> None:
    release = gctune.hold(20_000)
    assert gc.get_threshold() == (20_000, 10, 10)
    release()
    assert gc.get_threshold() == (700, 10, 10)
    release()  # idempotent: a second release changes nothing
    assert gc.get_threshold() == (700, 10, 10)


def test_the_threshold_stays_raised_until_the_last_holder_releases() -> None:
    first, second = gctune.hold(20_000), gctune.hold(50_000)
    assert gc.get_threshold()[0] == 50_000
    first()
    assert gc.get_threshold()[0] == 50_000
    second()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_larger_threshold_of_the_host_is_kept() -> None:
    gc.set_threshold(100_000, 20, 20)
    release = gctune.hold(20_000)
    assert gc.get_threshold() == (100_000, 20, 20)
    release()
    assert gc.get_threshold() == (100_000, 20, 20)


def test_a_threshold_changed_by_the_host_meanwhile_is_not_overwritten() -> None:
    release = gctune.hold(20_000)
    gc.set_threshold(3_000, 10, 10)
    release()
    assert gc.get_threshold() == (3_000, 10, 10)


def test_zero_leaves_the_interpreter_alone_and_a_negative_value_is_refused() -> None:
    gctune.hold(0)()
    assert gc.get_threshold() == (700, 10, 10)
    with pytest.raises(ValueError, match="gc threshold must be >= 0"):
        gctune.hold(-1)


def test_a_runtime_holds_its_setting_while_running(tmp_path: Path) -> None:
    rt = Runtime.start(load_settings("test", state_dir=tmp_path, journal={"enabled": False}, dispatch={"gc_threshold": 25_000}))
    try:
        assert gc.get_threshold()[0] >= 25_000
    finally:
        rt.stop()
    assert gc.get_threshold() == (700, 10, 10)
    rt = Runtime.start(load_settings("test", state_dir=tmp_path, journal={"enabled": False}, dispatch={"gc_threshold": 0}))
    try:
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        rt.stop()


def test_the_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="gc_threshold"):
        load_settings("test", dispatch={"gc_threshold": -5})


def test_an_embedded_runtime_leaves_the_threshold_alone_by_default(tmp_path: Path) -> None:
    """Process-wide, so the embedding process's call: unset, ``Runtime.start`` changes nothing."""
    settings = load_settings("test", state_dir=tmp_path, journal={"enabled": False})
    assert settings.dispatch.gc_threshold is None
    rt = Runtime.start(settings)
    try:
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        rt.stop()


def test_the_command_line_takes_its_threshold_unless_the_settings_set_one(tmp_path: Path) -> None:
    """``run.py`` owns its process: unset, its runtime runs at ``CLI_THRESHOLD``; a set value wins."""
    from flowroute.cli._common import start_runtime

    rt = start_runtime(load_settings("test", state_dir=tmp_path, journal={"enabled": False}))
    try:
        assert gc.get_threshold() == (gctune.CLI_THRESHOLD, 10, 10)
    finally:
        rt.stop()
    assert gc.get_threshold() == (700, 10, 10)
    rt = start_runtime(load_settings("test", state_dir=tmp_path, journal={"enabled": False}, dispatch={"gc_threshold": 0}))
    try:
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        rt.stop()
