"""The one testing seam (actors/testing/): crash points and durable-write failure injection are
inert unless a test arms them, production code calls one hook, and the runtime's API carries no
test hook."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from actors import Runtime
from actors.testing import (
    POINTS,
    WriteFaults,
    crash_point,
    crashpoints,
    inject_journal_failure,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_runtime_api_has_no_test_hook() -> None:
    assert not hasattr(Runtime, "inject_journal_failure")


def test_production_code_only_calls_the_one_hook() -> None:
    """Outside actors/testing, the crash machinery is reached through ``crash_point(name)`` only."""
    offenders = []
    for path in (ROOT / "actors").rglob("*.py"):
        if "testing" in path.relative_to(ROOT).parts:
            continue
        text = path.read_text()
        for name in re.findall(r'crash_point\("(\w+)"\)', text):
            assert name in POINTS, f"{path}: unknown crash point {name!r}"
        if re.search(r"crashpoints|\bARMED\b|\bhit\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_a_crash_point_is_inert_until_armed(monkeypatch: pytest.MonkeyPatch) -> None:
    kills: list[tuple[int, int]] = []
    monkeypatch.setattr(crashpoints.os, "kill", lambda pid, sig: kills.append((pid, sig)))
    monkeypatch.setattr(crashpoints, "_hits", 0)
    for name in POINTS:
        crash_point(name)
    assert kills == []  # not armed (no FR_CRASHPOINT in the test process)
    monkeypatch.setattr(crashpoints, "_target", ("after_ack", 2))
    monkeypatch.setattr(crashpoints, "ARMED", True)
    crash_point("after_send")  # another point: not counted
    crash_point("after_ack")
    assert kills == []
    crash_point("after_ack")  # the 2nd hit of the armed point: SIGKILL
    assert kills == [(crashpoints.os.getpid(), signal.SIGKILL)]


def test_write_faults_fail_the_armed_number_of_writes_then_repair() -> None:
    faults = WriteFaults()
    assert not faults
    faults.check("ledger")  # inert
    faults.arm("ledger", 2)
    assert faults
    faults.check("audit")  # another store: fine
    for _ in range(2):
        with pytest.raises(OSError, match="injected failure of the ledger write"):
            faults.check("ledger")
    faults.check("ledger")
    assert not faults
    faults.arm("audit", 1000)
    faults.arm("audit", 0)  # repaired
    faults.check("audit")
    assert not faults


@pytest.mark.parametrize("n,store,match", [(1, "disk", "store must be"), (-1, "ledger", "n must be"), (True, "audit", "n must be")])
def test_inject_journal_failure_names_bad_arguments(make_runtime, n, store, match) -> None:
    rt = make_runtime()
    with pytest.raises(ValueError, match=match):
        inject_journal_failure(rt, n, store)
