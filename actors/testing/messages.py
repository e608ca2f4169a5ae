"""Messages of the testing seam: fault injection into the durable writers (tests only).

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InjectJournalFailure:
    """Test hook: make the next ``n`` journal writes fail (fail-closed checks); ``store``
    ``"ledger"`` or ``"audit"`` when sent to the ledger (there ``n`` = 0 repairs it)."""

    n: int = 1
    store: str = "idempotency"
