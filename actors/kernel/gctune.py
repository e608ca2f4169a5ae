"""CPython's young-generation collection threshold while a runtime runs (``[dispatch] gc_threshold``).

Why: with a durable journal, group commit keeps an order's short-lived objects (the claim, the
evolved ``SubmitOrder``, the batch's rows and audit lines, the reply) alive for the length of a
batch — several milliseconds, hundreds of orders at 64 senders. At CPython's default threshold
(700 net new container objects) young collections run every few orders, find those objects
still alive and promote them; the interpreter counts every promotion towards its next *full*
collection (``long_lived_pending``, which frees never decrement), so the whole heap — every
order record in memory — was traversed again and again. Measured at 64 senders as deployed
(docs/DESIGN.md "Threads"; benchmarks/README.md): 11 full collections in 16,000 orders, ~1.1 s,
and ~90 µs of CPU per order more than with the threshold at 20,000.

What: :func:`hold` raises the first value of ``gc.set_threshold`` to at least the given one while
any runtime that asked is running, and puts back what it found when the last of them stops
(unless someone else changed it meanwhile). It only ever raises the threshold: a host that set a
larger one, or disabled the collector (``gc.disable``, a separate switch), keeps its choice.
Process-wide by nature: one setting for the whole interpreter, so it is the embedding process's
call: unset (the default), ``Runtime.start`` leaves it alone; the command line (``run.py``) owns its
process and uses :data:`CLI_THRESHOLD`; ``gc_threshold = 0`` leaves it alone everywhere.
Measured at 64 senders as deployed (2026-12-07, 2 cores under load, 5,120 orders, 2 runs each):
GC ~52-54 µs of CPU per order at 700 (4 full collections of ~47 ms) vs ~20 µs at 20,000 (one),
and 285-322 vs 248-256 µs of process CPU per order. The price: each young collection at 20,000
traverses ~30 times as many objects at once (~3 ms each in ``run.py stress --senders 16``, and
every 10th, the middle generation's, 150-290 ms of wall time under load: a pause for every thread),
where 700 pays in more frequent full collections instead.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

__all__ = ["CLI_THRESHOLD", "hold"]

#: ``[dispatch] gc_threshold`` when unset, for the command line (``run.py``), which owns its process;
#: an embedded ``Runtime`` leaves the interpreter's threshold alone unless its settings set one
CLI_THRESHOLD = 20_000

_lock = threading.Lock()
_holders = 0
#: the thresholds found when the first holder came, and the ones set (None: nothing was set)
_saved: tuple[int, int, int] | None = None
_set: tuple[int, int, int] | None = None


def hold(threshold: int) -> Callable[[], None]:
    """Raise the young-generation threshold to at least ``threshold`` (objects; 0: leave it) until
    the returned release is called (idempotent). Raises ``ValueError`` for a negative threshold."""
    global _holders, _saved, _set
    if threshold < 0:
        raise ValueError(f"gc threshold must be >= 0 (0 = leave the interpreter's), got {threshold}")
    if threshold == 0:
        return _nothing
    with _lock:
        current = gc.get_threshold()
        if _holders == 0:
            _saved, _set = current, None
        _holders += 1
        if current[0] < threshold:
            _set = (threshold, current[1], current[2])
            gc.set_threshold(*_set)
    released = False

    def release() -> None:
        nonlocal released
        global _holders, _saved, _set
        with _lock:
            if released:
                return
            released = True
            _holders -= 1
            if _holders == 0:
                if _set is not None and _saved is not None and gc.get_threshold() == _set:
                    gc.set_threshold(*_saved)
                _saved = _set = None

    return release


def _nothing() -> None:
    return None
