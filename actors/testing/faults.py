"""Durable-write failure injection: what a full or read-only disk does, on demand (tests only).

:func:`inject_journal_failure` is the one entry point: it tells the runtime's durable writer an
:class:`~actors.testing.messages.InjectJournalFailure`. The idempotency store hands it to its
journal (``inject_failure``: the next ``n`` write transactions roll back and raise
``JournalError``, so claims fail closed: E_EXEC_PERSISTENCE, nothing sent); the ledger arms its
:class:`WriteFaults`, which its ledger-journal and audit writes consult (each failure HALTS
trading until the retried write goes through: docs/DESIGN.md "Durability").
"""

from __future__ import annotations

from typing import Any

from ..kernel.base import ASK_TIMEOUT_S
from .messages import InjectJournalFailure

#: the durable writes a test can make fail
STORES = ("idempotency", "ledger", "audit")


class WriteFaults:
    """The ledger's injected write failures: store (``"ledger"`` journal or ``"audit"`` log) →
    writes still to fail. Inert (false) until a test arms it; one per ledger actor."""

    __slots__ = ("_left",)

    def __init__(self) -> None:
        self._left: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self._left)

    def arm(self, store: str, n: int) -> None:
        """Make the next ``n`` writes of ``store`` fail; ``n`` = 0 repairs it."""
        if n > 0:
            self._left[store] = n
        else:
            self._left.pop(store, None)

    def check(self, store: str) -> None:
        """Raise ``OSError`` (ENOSPC, as a full disk) when a write of ``store`` is to fail now."""
        left = self._left.get(store, 0)
        if left > 0:
            self.arm(store, left - 1)
            raise OSError(28, f"injected failure of the {store} write (test hook)")


def inject_journal_failure(runtime: Any, n: int = 1, store: str = "idempotency") -> None:
    """Make the next ``n`` durable writes of ``store`` in ``runtime`` (an ``actors.Runtime``) fail.

    ``"idempotency"``: claims fail closed (E_EXEC_PERSISTENCE, nothing sent). ``"ledger"`` (the
    ledger journal) or ``"audit"`` (the audit log): each failure is what a full or read-only
    disk does: trading HALTED until the retried write goes through; ``n`` = 0 repairs it.
    Raises ``ValueError`` for another store or a negative ``n``.
    """
    if store not in STORES:
        raise ValueError(f"store must be 'idempotency', 'ledger' or 'audit', got {store!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    target = runtime.idempotency if store == "idempotency" else runtime.ledger
    target.ask(InjectJournalFailure(n, store), timeout=ASK_TIMEOUT_S)
