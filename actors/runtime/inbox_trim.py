"""The venues' inboxes trimmed while the runtime runs (``protocols.KeepsInbox``: the FIX session's).

A venue that keeps what it received until the effect is journaled (protocols/venues/fix/_store.py)
would otherwise keep it until the next start or clean stop. :class:`InboxTrimmer` runs the
runtime's trim (a barrier through the adapters and the ledger, then each venue trims up to the
mark it named before the barrier: ``Runtime._trim_inboxes``) on a thread of its own — the
barrier waits on actors, which neither an actor nor the clock's timer thread may — when a venue
says ``wake_at`` messages are kept, and at least every ``every_s`` seconds while any is. So a long
session's inbox holds about what arrived since the last trim, not the last ``inbox_keep``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger

from ..kernel.base import exc_summary

#: kept messages that wake the trimmer at once
WAKE_AT = 64
#: how often the trimmer looks while fewer are kept (seconds)
EVERY_S = 1.0


class InboxTrimmer:
    """Calls ``trim()`` from its own thread when woken by :meth:`listener` (``kept >= wake_at``)
    or every ``every_s`` seconds while ``kept()`` (the messages kept by every venue) is above 0.
    ``trim`` must not raise past its own handling (an exception is logged, the loop goes on)."""

    def __init__(self, trim: Callable[[], None], kept: Callable[[], int], *, wake_at: int = WAKE_AT,
                 every_s: float = EVERY_S, name: str = "inbox-trim") -> None:
        self._trim = trim
        self._kept = kept
        self.wake_at = wake_at
        self.every_s = every_s
        self._name = name
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: trims run (for tests and health)
        self.trims = 0

    def listener(self, kept: int) -> None:
        """A venue kept a message and now keeps ``kept``: wake the trimmer when that is ``wake_at``
        or more (never blocks: called from the venue's session thread)."""
        if kept >= self.wake_at:
            self._wanted.set()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the thread; waits up to ``timeout`` seconds for a trim under way. Idempotent."""
        self._stopping.set()
        self._wanted.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wanted.wait(self.every_s)
            if self._stopping.is_set():
                return
            try:
                if self._kept() > 0:
                    self._trim()
                    self.trims += 1
            except Exception as exc:  # noqa: BLE001 - trimming is housekeeping: the next round tries again
                logger.warning("inbox trim failed (the messages stay kept): {}", exc_summary(exc))
            # cleared after the trim: the wake-ups of messages kept during it are covered by it (a
            # second trim right after would find one or two); wake_at more kept after it wake it again
            self._wanted.clear()
