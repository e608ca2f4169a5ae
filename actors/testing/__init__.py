"""The one testing seam: named crash points and durable-write failure injection, inert unless a
test arms them.

Production code calls one hook, :func:`crash_point` (``crashpoints.py``: armed only by the
``FR_CRASHPOINT`` variable of a crash-suite subprocess), and the ledger consults its
:class:`WriteFaults` (armed only by :func:`inject_journal_failure`, which tests call with a
runtime). Nothing here is part of the runtime's API.
"""

from .crashpoints import POINTS, crash_point
from .faults import STORES, WriteFaults, inject_journal_failure
from .messages import InjectJournalFailure

__all__ = ["POINTS", "STORES", "InjectJournalFailure", "WriteFaults", "crash_point", "inject_journal_failure"]
