"""Messages the circuit-breaker actor accepts: retries, call outcomes, ticks, operator commands.

Frozen dataclasses; the only mutable thing a message may carry is its reply future
(docs/DESIGN.md "House plan": each room holds the messages it accepts).
"""

from __future__ import annotations

from dataclasses import dataclass

import pykka

from protocols.model.dataclass_compat import builder

from ..orders.messages import SubmitOrder
from .breaker import BreakerPermit, CallOutcome


@dataclass(frozen=True, slots=True)
class RetryOrder:
    """Timer message: resend ``order`` (same client order id) after a not-delivered error."""

    order: SubmitOrder


@dataclass(frozen=True, slots=True)
class CallFinished:
    """Adapter → breaker: how a permitted venue call ended. ``permit``: the breaker's permit the
    call ran under (None: an order sent without one, recorded nowhere); ``duration_s``: the
    call's duration in seconds (for the slow-call rate)."""

    permit: BreakerPermit | None
    outcome: CallOutcome
    duration_s: float
    client_order_id: str


@dataclass(frozen=True, slots=True)
class CallsFinished:
    """Adapter → breaker: how the calls of one group of venue outcomes ended, each handled as its
    own :class:`CallFinished`, in order (recorded in the window one by one, as before)."""

    calls: tuple[CallFinished, ...]


@dataclass(frozen=True, slots=True)
class BreakerTick:
    """Timer: the breaker's open period may have ended."""

    generation: int


@dataclass(frozen=True, slots=True)
class BreakerCommand:
    """Operator: ``force_open``, ``disable`` or ``reset``."""

    command: str


@dataclass(frozen=True, slots=True)
class GetBreaker:
    """Ask: the breaker snapshot."""


@dataclass(frozen=True, slots=True)
class AdapterChanged:
    """Supervisor → breaker: the adapter actor for this route is ``ref`` (None while restarting)."""

    ref: pykka.ActorRef | None
    generation: int
    gave_up: bool = False
    in_doubt: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelTaken:
    """Adapter → breaker: the adapter took cancel ``token`` (it now answers for it)."""

    token: int


@dataclass(frozen=True, slots=True)
class ReturnOrder:
    """Crashed adapter → breaker: this order was never sent (still queued on the worker); re-dispatch it."""

    order: SubmitOrder


#: ``CallFinished(...)`` without the frozen dataclass ``__init__`` (made on every order; protocols/model/dataclass_compat.py)
new_call_finished = builder(CallFinished)
