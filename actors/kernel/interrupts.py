"""Ctrl-C while the main thread runs an actor's message: deferred to the end of the message.

Why: a thread that waits for an order's reply runs the order's queued messages itself
(:meth:`actors.kernel.dispatcher.Dispatcher.help`, docs/DESIGN.md "Threads"). Python runs signal
handlers in the main thread only, between any two bytecodes, and its default SIGINT handler
raises ``KeyboardInterrupt`` there: in the middle of an actor's handler, if the main thread was
running one, leaving the actor half-updated (``FlowActor`` would turn it into a crash). So while
a runtime runs, SIGINT goes to :func:`_on_sigint` (installed by :func:`hold` at
``Runtime.start`` only where Python's own handler is installed, put back by the last release):
outside a help it raises ``KeyboardInterrupt`` exactly as Python's does; during one it is noted
and raised by :func:`end_help` once the message being run is done and the dispatcher is free
again. The main thread helps only while :func:`main_may_help` (this handler, or SIGINT ignored
or left to the OS).

Other signals with a Python handler that raises (a host's own SIGTERM handler raising
``SystemExit``) are not deferred: such a host should not wait on replies in its main thread.

Example::

    release = hold()            # Runtime.start, in the main thread
    begin_help()
    try:
        ...                     # run a member's message; a Ctrl-C now waits
    finally:
        end_help()              # raises KeyboardInterrupt if one came in
    release()                   # Runtime.stop
"""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Callable
from typing import Any


def _c_getsignal() -> Callable[[int], object]:
    """The C getter ``signal.getsignal`` wraps: the handler as installed (SIG_DFL / SIG_IGN as the
    ints 0 / 1, equal to ``signal.SIG_DFL`` / ``signal.SIG_IGN``), without ``signal.getsignal``'s
    enum conversion, which raises and catches a ValueError for every Python handler (~2 µs; it ran
    on every help, ~4 per order read by its waiting caller). ``signal.getsignal`` itself where the
    interpreter has no ``_signal`` module (not CPython)."""
    try:
        return importlib.import_module("_signal").getsignal
    except (ImportError, AttributeError):
        return signal.getsignal


_raw_getsignal: Callable[[int], object] = _c_getsignal()

_lock = threading.Lock()
_holders = 0
#: how deep the main thread is in deferring stretches (a help, a venue read for a waiting caller,
#: a help inside that read): they nest; only the main thread reads or sets it
_helping = 0
#: a SIGINT came in during a help: raised by end_help
_pending = False


def _on_sigint(signum: int, frame: Any) -> None:
    """SIGINT while a runtime runs: ``KeyboardInterrupt`` now, or at the end of the current help."""
    global _pending
    if _helping:
        _pending = True
        return
    signal.default_int_handler(signum, frame)


def hold() -> Callable[[], None]:
    """Install the deferring SIGINT handler (from the main thread, over Python's default one only;
    otherwise nothing changes and the main thread does not help); returns the release, which
    puts Python's handler back when the last holder releases (from the main thread; elsewhere
    the handler stays, behaving as Python's own outside a help). Idempotent per returned release."""
    global _holders
    with _lock:
        held = False
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGINT)
            if current is signal.default_int_handler:
                signal.signal(signal.SIGINT, _on_sigint)
            held = signal.getsignal(signal.SIGINT) is _on_sigint
            if held:
                _holders += 1
    done = not held

    def release() -> None:
        nonlocal done
        global _holders
        with _lock:
            if done:
                return
            done = True
            _holders -= 1
            if (_holders == 0 and threading.current_thread() is threading.main_thread()
                    and signal.getsignal(signal.SIGINT) is _on_sigint):
                signal.signal(signal.SIGINT, signal.default_int_handler)

    return release


def main_may_help() -> bool:
    """True when a SIGINT cannot interrupt a handler run by the main thread: the deferring
    handler is installed, or SIGINT is ignored or left to the OS (no Python code runs)."""
    return _raw_getsignal(signal.SIGINT) in (_on_sigint, signal.SIG_IGN, signal.SIG_DFL)  # signal.getsignal's answer


def begin_help() -> None:
    """The main thread starts running members' messages (or reading a venue's socket for a waiting
    caller: protocols/venues/fix/_driver.py): a SIGINT from now on waits. Nests: each call is
    paired with one :func:`end_help`, and only the outermost end raises."""
    global _helping
    _helping += 1


def pending() -> bool:
    """True when a Ctrl-C came in during the current deferring stretch (raised at its end)."""
    return _pending


def end_help() -> None:
    """The main thread is done running members' messages: raise the ``KeyboardInterrupt`` that
    came in meanwhile, if any, once the outermost stretch ends."""
    global _helping, _pending
    _helping = max(0, _helping - 1)
    if _pending and not _helping:
        _pending = False
        raise KeyboardInterrupt


__all__ = ["begin_help", "end_help", "hold", "main_may_help", "pending"]
