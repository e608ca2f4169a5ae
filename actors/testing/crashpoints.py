"""Named kill points for crash tests: ``FR_CRASHPOINT=name:n`` SIGKILLs the process at the n-th hit.

Used only by the crash suite (tests/journal/test_crash.py), which runs a real subprocess with the
variable set and restarts on the same state directory. Production code calls the one hook
:func:`crash_point` at each point; it returns at once unless the variable armed this process.

Points (in the order an order meets them):

- ``before_claim``: the idempotency actor is about to commit a batch of claims;
- ``claim_forwarded``: the batch's claimed orders went on to the ledger, before the COMMIT
  (durable SQLite journal; nothing can be sent until the COMMIT returned: actors/idempotency/ticket.py);
- ``claim_awaited``: the adapter actor is about to send an order forwarded before its claim's
  COMMIT (which may not have returned yet; nothing sent);
- ``after_claim``: the claims committed (orders forwarded before the COMMIT may be at their venue);
- ``after_send``: the venue accepted the call, before the adapter actor hears of it;
- ``after_ack``: the adapter handled the venue's answer and told the ledger and journal;
- ``between_fills``: the ledger is about to apply a fill pushed by the venue.
"""

from __future__ import annotations

import os
import signal

#: the claim ticket's two come last: the crash suite's seeded sampling of the others stays as it was
POINTS = ("before_claim", "after_claim", "after_send", "after_ack", "between_fills", "claim_forwarded", "claim_awaited")
ARMED = False
_target: tuple[str, int] | None = None
_hits = 0


def _configure() -> None:
    global ARMED, _target
    spec = os.environ.get("FR_CRASHPOINT", "")
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name not in POINTS or not n.isdigit() or int(n) < 1:
        raise ValueError(f"FR_CRASHPOINT must be '<point>:<n>' with point in {POINTS} and n >= 1, got {spec!r}")
    _target = (name, int(n))
    ARMED = True


def crash_point(name: str) -> None:
    """The hook production code calls at crash point ``name``: inert unless ``FR_CRASHPOINT``
    armed this process (then :func:`hit`)."""
    if ARMED:
        hit(name)


def hit(name: str) -> None:
    """Count a pass through ``name``; SIGKILL this process at the configured hit."""
    global _hits
    if _target is None or _target[0] != name:
        return
    _hits += 1
    if _hits >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


_configure()
