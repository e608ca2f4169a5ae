"""Fixtures shared by the kernel's tests."""

from __future__ import annotations

import signal

import pytest

from actors.kernel import interrupts


@pytest.fixture
def main_thread_may_help():
    """As ``Runtime.start`` does: Ctrl-C deferred, so the main thread (pytest's) helps and reads
    for its orders. Under a launcher that starts the tests with SIGINT ignored (a background job of
    a shell without job control), Python installs no handler of its own: the fixture puts Python's
    in place first, as a terminal has it, and the ignored state back after."""
    inherited = signal.getsignal(signal.SIGINT)
    if inherited is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    release = interrupts.hold()
    yield
    release()
    if inherited is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
