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

When one receiver should pass the wake-up on (the ledger wakes the idempotency store and the
breaker once it has applied an order's outcome, so only one thread wakes on the caller's
path), :func:`tell_quiet_then_wake` queues the message in a :class:`WakeAfter` relay: the
receiving ``FlowActor`` runs the message, then wakes those actors. The wake-up order is the
kernel's business; no domain message carries it.

Every flowroute actor uses :class:`Inbox` (``FlowActor._create_actor_inbox``): besides the
quiet put, its put and get are C calls (a deque and a lock as a doorbell) instead of
``queue.Queue``'s Python-level condition variable, which is most of pykka's cost per hop.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import pykka

from protocols.model.dataclass_compat import builder

# pykka's own envelope type, so its actor loop handles our messages exactly like a tell
from .pykka_compat import ActorStop, Envelope


class Inbox:
    """An unbounded FIFO actor inbox: pykka's ``put``/``get``/``empty``/``qsize`` plus a quiet put.

    A ``collections.deque`` (append and popleft are atomic) and a ``threading.Lock`` used as a
    doorbell: the one consumer (the actor's thread) blocks on the bell only when the deque is
    empty; a producer appends, then rings (releases the bell if it is held). A ring with
    nobody waiting leaves the bell open, so the consumer's next wait returns at once and
    re-checks the deque: a spurious wake-up, never a lost one. Every operation is a C call,
    where ``queue.Queue`` runs a Python-level ``Condition`` on each put and get.

    ``put_quiet(item)`` appends without ringing; ``wake()`` rings.

    Example::

        inbox = Inbox()
        inbox.put_quiet("a"); inbox.put("b")
        inbox.get(), inbox.get()     # ('a', 'b')
        inbox.empty()                # True
    """

    __slots__ = ("_items", "_bell", "_linger_s", "_late", "held")

    def __init__(self, *, linger_s: float = 0.0) -> None:
        self._items: deque[Any] = deque()
        self._bell = threading.Lock()
        self._bell.acquire()  # held = nothing to announce
        #: seconds the consumer waits after a :meth:`wake` (quiet messages: an answer just went out)
        self._linger_s = linger_s
        self._late = False
        #: set when the actor crashed: its :class:`Mailbox`, which keeps what is told to it for the next generation
        self.held: Mailbox | None = None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Append ``item`` and wake the consumer (never blocks: the inbox is unbounded)."""
        self._items.append(item)
        self._late = False  # a told message may be on an order's path: no linger
        bell = self._bell  # wake(), inlined: this is every tell's path
        if bell.locked():
            try:
                bell.release()
            except RuntimeError:  # another producer rang first
                pass

    def put_quiet(self, item: Any) -> None:
        """Append ``item`` without waking the consumer."""
        self._items.append(item)

    def wake(self) -> None:
        """Wake the consumer if it waits (a no-op while it is busy, or when already rung).

        With ``linger_s``, a consumer woken this way first yields the CPU and waits up to
        ``linger_s`` (a told message ends the wait at once) before it takes the quiet messages, as the dispatcher's after thread does
        (actors/kernel/dispatcher.py): the caller just answered takes the GIL before this thread's
        bookkeeping does."""
        self._late = True
        ring(self._bell)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The oldest item; blocks while empty (``queue.Empty`` after ``timeout`` s or if not ``block``)."""
        items, bell = self._items, self._bell
        while True:
            if items:  # one consumer: nobody else pops between the check and the pop
                return items.popleft()
            if not block:
                raise queue.Empty
            if timeout is None:
                bell.acquire()
                if self._late:  # woken by wake(): an answer just went out
                    self._late = False
                    if self._linger_s:
                        # let the answered caller take the GIL first; a told message ends the wait
                        sched_yield()
                        bell.acquire(timeout=self._linger_s)
            elif not bell.acquire(timeout=timeout):
                try:
                    return items.popleft()
                except IndexError:
                    raise queue.Empty from None

    def empty(self) -> bool:
        """True when no item is queued (a snapshot). A crashed actor's inbox reads empty: what is
        left in it belongs to its :class:`Mailbox` (pykka's teardown must not drop it)."""
        return not self._items or self.held is not None

    def take_all(self) -> list[Any]:
        """Remove and return every queued envelope, oldest first (a crashed actor's leftovers)."""
        out = []
        items = self._items
        while items:
            out.append(items.popleft())
        return out

    def qsize(self) -> int:
        """Number of items queued (a snapshot)."""
        return len(self._items)


#: give up the CPU to another runnable thread (a no-op where the platform has no sched_yield)
sched_yield = getattr(os, "sched_yield", lambda: None)


def ring(bell: threading.Lock) -> None:
    """Release a doorbell lock if it is held; a ring with nobody waiting leaves it open."""
    if bell.locked():
        try:
            bell.release()
        except RuntimeError:  # another producer rang first
            pass


def tell_quiet(ref: pykka.ActorRef | None, message: Any) -> bool:
    """Queue ``message`` for ``ref`` without waking it; False (never raises) when it is gone.

    Falls back to a plain ``tell`` for an actor whose inbox is not an :class:`Inbox`.
    """
    return _deliver(ref, message, True)


def tell(ref: pykka.ActorRef | None, message: Any) -> bool:
    """Tell ``message`` to ``ref``; return False (never raise) when the actor is gone.

    What ``ActorRef.tell`` does (refuse a stopped actor, put an envelope in its inbox) without
    its two extra calls, since every stage of every order tells; an actor whose inbox is not
    an :class:`Inbox` gets a plain ``ActorRef.tell``. Re-exported by ``actors.kernel.base``.
    """
    return _deliver(ref, message, False)


def _deliver(ref: pykka.ActorRef | None, message: Any, quiet: bool) -> bool:
    if ref is None:
        return False
    inbox = ref.actor_inbox
    if ref.actor_stopped.is_set():  # ActorRef.is_alive(), inlined
        held = getattr(inbox, "held", None)
        if held is None:
            return False
        return held.put(message)  # a crashed supervised actor: kept for its next generation
    if isinstance(inbox, Inbox):
        if quiet:
            inbox.put_quiet(Envelope(message))
        else:
            inbox.put(Envelope(message))
        return True
    try:
        ref.tell(message)
        return True
    except pykka.ActorDeadError:
        return False


@dataclass(frozen=True, slots=True)
class WakeAfter:
    """Kernel relay (never a domain message): the receiving ``FlowActor`` handles ``message`` as
    if it had been told alone, then wakes ``refs`` (:func:`wake`), also when the handler fails."""

    message: Any
    refs: tuple[pykka.ActorRef | None, ...]


#: WakeAfter(message, refs) without the frozen dataclass __init__ (one per order: protocols/model/dataclass_compat.py)
_new_wake_after = builder(WakeAfter)


def tell_quiet_then_wake(ref: pykka.ActorRef | None, message: Any, wake_after: tuple[pykka.ActorRef | None, ...]) -> bool:
    """:func:`tell_quiet` ``message`` to ``ref``, which wakes ``wake_after`` once it has handled it
    (their quiet messages then run behind ``ref``'s). False (never raises) when ``ref`` is gone:
    the caller then wakes ``wake_after`` itself."""
    return _deliver(ref, _new_wake_after(message, wake_after), True)


class Mailbox:
    """What a crashed supervised actor leaves for its next generation: the messages queued to it
    and those told to it while it restarts (Akka's rule: a restart keeps the mailbox).

    The crashed actor makes it in ``on_failure`` (``FlowActor``), takes its queued envelopes into it
    and hangs it on its inbox (``Inbox.held``), so a :func:`tell` to the dead reference lands here
    instead of being dropped. The supervisor then either :meth:`connect` hands it to the next
    generation (every message kept is put into the new inbox in order, and later tells are
    forwarded) or :meth:`refuse` answers it when the child cannot be restarted (``answer(message)``
    answers each message's reply future). A pykka ask is not kept: it gets ``ActorDeadError`` at
    once, as pykka answers asks to a dead actor (its caller waits with a timeout and may ask the
    next generation); our own messages carry their reply future in the message and are kept.
    The message whose handler raised is not in it: it would crash the next generation the same
    way (its reply future was answered E_EXEC_INTERNAL).
    """

    __slots__ = ("_lock", "_held", "_to", "_refuse", "_inbox")

    def __init__(self, inbox: Any, queued: list[Any]) -> None:
        self._lock = threading.Lock()
        self._held: list[Any] = list(queued)
        self._to: pykka.ActorRef | None = None
        self._refuse: Any = None
        self._inbox = inbox

    def put(self, message: Any) -> bool:
        """Keep (or forward) one told message; True (it is never dropped silently)."""
        self._put_envelope(Envelope(message))
        return True

    def _put_envelope(self, envelope: Any) -> None:
        if envelope.reply_to is not None:  # an ask: its caller waits with a timeout; it gets ActorDeadError now
            _answer_refused(envelope, None)
            return
        with self._lock:
            if self._to is None and self._refuse is None:
                self._held.append(envelope)
                return
            self._send((envelope,))

    def keep(self, envelopes: list[Any]) -> None:
        """Put the crashed actor's queued envelopes ahead of everything told since (they came first)."""
        asks = [e for e in envelopes if e.reply_to is not None]
        for envelope in asks:
            _answer_refused(envelope, None)
        envelopes = [e for e in envelopes if e.reply_to is None]
        with self._lock:
            if self._to is None and self._refuse is None:
                self._held[:0] = envelopes
                return
        self._send_locked(envelopes)

    def _send_locked(self, envelopes: list[Any]) -> None:
        with self._lock:
            self._send(envelopes)

    def pending(self) -> int:
        """Envelopes kept so far (not yet connected or refused)."""
        with self._lock:
            return len(self._held)

    def connect(self, ref: pykka.ActorRef) -> int:
        """Hand every kept envelope to ``ref`` (the next generation), in order, and forward what
        comes later; returns how many were handed over."""
        with self._lock:
            self._to = ref
            held, self._held = self._held + self._leftovers(), []
            self._send(held)
        return len(held)

    def refuse(self, answer: Any) -> int:
        """The child will not come back: answer every kept and later message with ``answer(message)``
        (called for a message with a ``reply`` future); an ask's future gets ``ActorDeadError``."""
        with self._lock:
            self._refuse = answer
            held, self._held = self._held + self._leftovers(), []
            self._send(held)
        return len(held)

    def _leftovers(self) -> list[Any]:
        take = getattr(self._inbox, "take_all", None)
        return take() if callable(take) else []

    def _send(self, envelopes: Any) -> None:  # lock held: keeps the order of what is handed over
        for envelope in envelopes:
            if self._to is not None:
                if not self._to.actor_stopped.is_set():
                    self._to.actor_inbox.put(envelope)
                    continue
                held = getattr(self._to.actor_inbox, "held", None)
                if held is not None:  # the next generation crashed too: its own mailbox keeps it
                    held._put_envelope(envelope)
                    continue
            _answer_refused(envelope, self._refuse)


def _answer_refused(envelope: Any, answer: Any) -> None:
    message = envelope.message
    if isinstance(message, ActorStop):  # a stop of a dead actor: done
        if envelope.reply_to is not None:
            envelope.reply_to.set(None)
        return
    if envelope.reply_to is not None:
        envelope.reply_to.set_exception(exc_info=(pykka.ActorDeadError, pykka.ActorDeadError(
            "the actor crashed and could not be restarted"), None))
        return
    if answer is not None:
        try:
            answer(message)
        except Exception:  # noqa: BLE001 - answering a refused message never breaks the supervisor
            from loguru import logger

            logger.opt(exception=True).error("could not answer a message of a child that was given up")


def wake(ref: pykka.ActorRef | None) -> None:
    """Wake ``ref``'s thread for messages queued with :func:`tell_quiet` (no-op if gone)."""
    if ref is not None:
        inbox = ref.actor_inbox
        if isinstance(inbox, Inbox):
            inbox.wake()


__all__ = ["Inbox", "Mailbox", "WakeAfter", "tell", "tell_quiet", "tell_quiet_then_wake", "wake"]
