"""The claim ticket: a claim batch's durability, told by the idempotency store to the venue call (docs/DESIGN.md, Durability).

Persist-before-submit: no venue call before its order's claim is durable. On a journal that
can decide its claims before committing them (``SQLiteJournal.claim_batch``'s ``before_commit``),
the idempotency store forwards the claimed orders to the ledger *before* the COMMIT, each
carrying its batch's :class:`ClaimTicket` (``SubmitOrder.claim``), so the ledger's intake, the
circuit breaker and the adapter's preparation run while the commit's fsync is in flight. The one
step that must wait, the venue call, waits on the ticket:

- the venue worker's thread waits (``VenueWorker``; at most the setting ``journal.claim_wait_s``) before it calls
  the venue; or, when the order's caller waits for its answer and makes the call itself (an
  in-process venue: "The waiting thread calls the venue" in actors/execution/adapter.py), the
  settle wakes that caller (:meth:`ClaimTicket.on_settled`) instead of the worker;
- the adapter actor, which never blocks, parks an order whose ticket is not settled when it
  would call the venue from its own thread (inline or asynchronous venues) and sends it once
  the ticket's :meth:`ClaimTicket.on_settled` tells it so.

The store settles every ticket it hands out: durable once the COMMIT returned, failed (with the
reason) when the commit failed or the store crashed before settling it. A failed (or, past the
wait, unsettled) ticket makes the call :class:`ClaimNotDurable` without calling the venue: the
adapter answers the order DENIED (E_EXEC_PERSISTENCE, nothing sent) and releases its claim.

A ledger row of an order whose claim never became durable (a SIGKILL inside the window) is the
same as the rows of an order whose claim was released (a retryable denial): recovery rebuilds the
ledger's orders from the claims (actors/runtime/recovery.py), so such a row names an order that
was never sent and is not rebuilt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger


class ClaimNotDurable(Exception):
    """The venue call was not made: its order's claim did not become durable (the reason says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClaimTicket:
    """One claim batch's durability: unsettled until the store calls :meth:`settle` once.

    Thread-safe: settled on the store's thread, read and waited on by the adapter actor and the
    venue worker threads. ``failure`` is None once durable, the reason (str) once failed."""

    __slots__ = ("_event", "_lock", "_callbacks", "failure")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []
        self.failure: str | None = None

    def settle(self, failure: str | None = None) -> None:
        """Durable (``failure`` None) or failed; the first call counts, later ones are ignored.
        Runs the :meth:`on_settled` callbacks on the calling thread."""
        with self._lock:
            if self._event.is_set():
                return
            self.failure = failure
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a waiter's failure is its own: the others still hear
                logger.opt(exception=True).error("a claim ticket's settle callback failed")

    def on_settled(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` once settled: now (this thread) when it is already, else on the settling thread."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(fn)
                return
        fn()

    @property
    def settled(self) -> bool:
        """True once durable or failed."""
        return self._event.is_set()

    def wait(self, timeout_s: float) -> str | None:
        """Block up to ``timeout_s`` seconds for the outcome: None when durable, else why not
        (the commit's failure, or that it was not settled in time)."""
        if not self._event.wait(timeout_s):
            return f"the claim was not durable within {timeout_s:g} s"
        return self.failure

    def __repr__(self) -> str:
        state = "pending" if not self.settled else "durable" if self.failure is None else f"failed: {self.failure}"
        return f"ClaimTicket({state})"
