"""The actor inbox, and telling a message now while waking its receiver later.

Why: when the adapter actor finishes an order it must hand the outcome to the ledger, the
idempotency store and the breaker *before* it answers the caller (read-your-writes: a query
or a retry of the id made right after the answer is queued behind those facts, inboxes are
FIFO). A plain ``tell`` also wakes each receiver thread at once, so on CPython their work
takes the GIL ahead of the caller's wake-up (measured: ~90 µs of ledger bookkeeping on the
caller's path when all threads share one core). :func:`tell_quiet` puts the message in the
inbox without waking the receiver; :func:`wake` wakes it after the answer is out. The order
of messages is exactly that of ``tell``: only the wake-up moves.

Example::

    sent = tell_quiet(ledger, OrderFinished(...))   # queued, ledger not woken
    resolve(order.reply, report)                    # the caller wakes first
    wake(ledger)                                    # now the ledger runs it

A receiver that is never woken still runs the message when its next message arrives;
callers wake in a ``finally`` so that never happens.
"""

from __future__ import annotations

import queue
from typing import Any

import pykka

try:  # pykka's own envelope type, so its actor loop handles our messages exactly like a tell
    from pykka._envelope import Envelope
except ImportError:  # pragma: no cover - pykka moved it; see test_inbox
    Envelope = None  # type: ignore[assignment,misc]


class Inbox(queue.Queue):
    """A ``queue.Queue`` (pykka's own inbox type) with a put that does not wake the consumer.

    ``put_quiet(item)`` appends under the queue's mutex without notifying ``not_empty``;
    ``wake()`` notifies one waiting consumer (a no-op when the consumer is busy: it will
    find the item at its next ``get``). Unbounded, like pykka's default inbox.
    """

    def put_quiet(self, item: Any) -> None:
        """Append ``item`` without waking the consumer."""
        with self.mutex:
            self._put(item)
            self.unfinished_tasks += 1

    def wake(self) -> None:
        """Wake the consumer if it waits for an item."""
        with self.mutex:
            self.not_empty.notify()


def tell_quiet(ref: pykka.ActorRef | None, message: Any) -> bool:
    """Queue ``message`` for ``ref`` without waking it; False (never raises) when it is gone.

    Falls back to a plain ``tell`` for an actor whose inbox is not an :class:`Inbox`.
    """
    if ref is None or not ref.is_alive():
        return False
    inbox = ref.actor_inbox
    if Envelope is not None and isinstance(inbox, Inbox):
        inbox.put_quiet(Envelope(message))
        return True
    try:
        ref.tell(message)
        return True
    except pykka.ActorDeadError:
        return False


def wake(ref: pykka.ActorRef | None) -> None:
    """Wake ``ref``'s thread for messages queued with :func:`tell_quiet` (no-op if gone)."""
    if ref is not None:
        inbox = ref.actor_inbox
        if isinstance(inbox, Inbox):
            inbox.wake()


__all__ = ["Inbox", "tell_quiet", "wake"]
