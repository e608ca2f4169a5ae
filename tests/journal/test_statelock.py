"""The exclusive state-dir lock (actors/runtime/statelock.py): one runtime per state directory, for its
whole life; released at stop and by the OS when the holder is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actors import Runtime, StateDirInUse
from actors.runtime.statelock import LOCK_NAME, StateDirLock
from config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def durable(state: Path):
    return load_settings("test", state_dir=str(state), journal={"enabled": True, "synchronous": "NORMAL"})


def test_a_second_runtime_on_the_same_dir_is_refused_until_the_first_stops(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Runtime.start(durable(state))
    try:
        with pytest.raises(StateDirInUse) as caught:
            Runtime.start(durable(state))
        assert str(caught.value) == f"state dir {state} is in use by pid {os.getpid()}"
        assert caught.value.pid == os.getpid()
        # the refused runtime touched nothing: the first one's journal is still there and working
        assert (state / "journal.sqlite").exists()
        assert (state / LOCK_NAME).read_text().strip() == str(os.getpid())
    finally:
        first.stop()
    second = Runtime.start(durable(state))  # released at stop
    second.stop()


def test_a_non_durable_runtime_takes_no_lock(tmp_path: Path) -> None:
    state = tmp_path / "state"
    lock = StateDirLock.acquire(state)
    try:
        rt = Runtime.start(load_settings("test", state_dir=str(state), journal={"enabled": False}))
        rt.stop()
    finally:
        lock.release()


_HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from actors import Runtime
    from config import load_settings
    rt = Runtime.start(load_settings("test", state_dir={state!r}, journal={{"enabled": True, "synchronous": "NORMAL"}}))
    print("ready", flush=True)
    time.sleep(120)
""")


def test_the_lock_dies_with_a_sigkilled_holder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(root=str(ROOT), state=str(state))],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(StateDirInUse, match=f"is in use by pid {proc.pid}$"):
            Runtime.start(durable(state))
        # the CLI says the same in one line (exit 2), no traceback
        cli = subprocess.run([sys.executable, "run.py", "recover", "--state-dir", str(state)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 2
        assert f"state dir {state} is in use by pid {proc.pid}" in cli.stdout + cli.stderr
        assert "Traceback" not in cli.stdout + cli.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    rt = Runtime.start(durable(state))  # the OS dropped the lock with the process; recovery runs
    try:
        assert rt.recovery is not None
    finally:
        rt.stop()
