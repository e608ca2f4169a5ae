"""The order lifecycle state machine as one table of data (the lifecycle table in protocols/model/lifecycle.py).

``TRANSITIONS[(status, event)]`` gives the next status; :func:`apply_event` applies one
event and raises :class:`IllegalTransition` for anything the table does not allow.
Real-world rules encoded here (after NautilusTrader's ``OrderStatus`` table and FIX 4.4
OrdStatus semantics):

- fills are accepted during PENDING_CANCEL and after CANCELED (a fill can race a cancel);
  after CANCELED the status stays CANCELED;
- a rejected cancel restores the state before the cancel request (``PRIOR``);
- an event whose natural target equals the current status is an idempotent repeat
  (e.g. a second ``ACCEPTED``) and changes nothing;
- UNKNOWN leaves only through what reconciliation proves (any venue state), or back to
  SUBMITTING when the venue proved it does not have the order (resend, same id).

Example::

    >>> s = LifecycleState()
    >>> for ev in (OrderEventType.RESERVED, OrderEventType.SUBMITTED, OrderEventType.ACCEPTED):
    ...     s = apply_event(s, ev)
    >>> s.status
    <OrderStatus.ACCEPTED: 'ACCEPTED'>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .enums import OrderStatus as S
from .enums import _StrEnum
from .errors import IllegalTransition


class OrderEventType(_StrEnum):
    """Lifecycle events (past tense; the docs/DESIGN.md event names without the ``Order`` prefix)."""

    DENIED = "DENIED"
    RESERVED = "RESERVED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELED = "CANCELED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    EXPIRED = "EXPIRED"


E = OrderEventType


class _Prior:
    """Marker target: return to the status held before PENDING_CANCEL."""

    def __repr__(self) -> str:
        return "PRIOR"


PRIOR: Final = _Prior()

#: The natural target of each event (used for idempotent repeats).
EVENT_TARGET: dict[OrderEventType, S] = {
    E.DENIED: S.DENIED,
    E.RESERVED: S.RESERVED,
    E.SUBMITTED: S.SUBMITTING,
    E.ACCEPTED: S.ACCEPTED,
    E.REJECTED: S.REJECTED,
    E.FAILED: S.FAILED,
    E.UNKNOWN: S.UNKNOWN,
    E.PARTIALLY_FILLED: S.PARTIALLY_FILLED,
    E.FILLED: S.FILLED,
    E.CANCEL_REQUESTED: S.PENDING_CANCEL,
    E.CANCELED: S.CANCELED,
    E.EXPIRED: S.EXPIRED,
}

#: The whole lifecycle: (current status, event) -> next status (or PRIOR).
TRANSITIONS: dict[tuple[S, OrderEventType], S | _Prior] = {
    # intake
    (S.INITIALIZED, E.DENIED): S.DENIED,
    (S.INITIALIZED, E.RESERVED): S.RESERVED,
    # reserved: our own guards (breaker, throttle, persistence, no adapter) deny before any send
    (S.RESERVED, E.DENIED): S.DENIED,
    (S.RESERVED, E.FAILED): S.FAILED,
    (S.RESERVED, E.SUBMITTED): S.SUBMITTING,
    # in flight
    (S.SUBMITTING, E.ACCEPTED): S.ACCEPTED,
    (S.SUBMITTING, E.REJECTED): S.REJECTED,
    (S.SUBMITTING, E.FAILED): S.FAILED,
    (S.SUBMITTING, E.UNKNOWN): S.UNKNOWN,
    (S.SUBMITTING, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.SUBMITTING, E.FILLED): S.FILLED,
    (S.SUBMITTING, E.EXPIRED): S.EXPIRED,
    (S.SUBMITTING, E.CANCELED): S.CANCELED,
    # working
    (S.ACCEPTED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.ACCEPTED, E.FILLED): S.FILLED,
    (S.ACCEPTED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.ACCEPTED, E.CANCELED): S.CANCELED,
    (S.ACCEPTED, E.EXPIRED): S.EXPIRED,
    (S.ACCEPTED, E.UNKNOWN): S.UNKNOWN,
    (S.PARTIALLY_FILLED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, E.EXPIRED): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.UNKNOWN): S.UNKNOWN,
    (S.PARTIALLY_FILLED, E.ACCEPTED): S.PARTIALLY_FILLED,
    # cancel in flight: fills race the cancel; a rejected cancel restores the prior status
    (S.PENDING_CANCEL, E.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, E.CANCEL_REJECTED): PRIOR,
    (S.PENDING_CANCEL, E.PARTIALLY_FILLED): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.FILLED): S.FILLED,
    (S.PENDING_CANCEL, E.EXPIRED): S.EXPIRED,
    (S.PENDING_CANCEL, E.ACCEPTED): S.PENDING_CANCEL,
    # fills after CANCELED are recorded, the status stays
    (S.CANCELED, E.PARTIALLY_FILLED): S.CANCELED,
    (S.CANCELED, E.FILLED): S.CANCELED,
    (S.CANCELED, E.CANCEL_REJECTED): S.CANCELED,
    (S.FILLED, E.PARTIALLY_FILLED): S.FILLED,
    (S.FILLED, E.CANCEL_REJECTED): S.FILLED,
    (S.EXPIRED, E.PARTIALLY_FILLED): S.EXPIRED,
    # UNKNOWN: only what reconciliation proves, or a resend after the venue proved absence
    (S.UNKNOWN, E.SUBMITTED): S.SUBMITTING,
    (S.UNKNOWN, E.ACCEPTED): S.ACCEPTED,
    (S.UNKNOWN, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.UNKNOWN, E.FILLED): S.FILLED,
    (S.UNKNOWN, E.CANCELED): S.CANCELED,
    (S.UNKNOWN, E.EXPIRED): S.EXPIRED,
    (S.UNKNOWN, E.REJECTED): S.REJECTED,
    (S.UNKNOWN, E.FAILED): S.FAILED,
}


@dataclass(frozen=True, slots=True)
class LifecycleState:
    """An order's lifecycle position: ``status`` plus the ``prior`` status kept for a cancel reject."""

    status: S = S.INITIALIZED
    prior: S | None = None


#: One shared, immutable ``LifecycleState(status, None)`` per status: the states
#: :func:`apply_event` returns for every target but PENDING_CANCEL (frozen, so sharing is safe).
_PLAIN: dict[S, LifecycleState] = {status: LifecycleState(status, None) for status in S}
_PENDING_CANCEL = S.PENDING_CANCEL  # a module global reads faster than an enum class attribute


def apply_event(state: LifecycleState, event: OrderEventType) -> LifecycleState:
    """Apply ``event`` to ``state`` and return the new state (``state`` itself for a no-op repeat).

    States are frozen values: an equal result may be one shared instance. Raises
    :class:`protocols.IllegalTransition` when the table has no entry and the event is not an
    idempotent repeat of the current status.
    """
    status = state.status
    target = TRANSITIONS.get((status, event))
    if target is None:
        if EVENT_TARGET.get(event) is status:
            return state
        raise IllegalTransition(f"{event.value} is not allowed in state {status.value}")
    if target is PRIOR:
        prior = state.prior or S.ACCEPTED
        return _PLAIN.get(prior) or LifecycleState(prior, None)
    if target is _PENDING_CANCEL:
        kept: S | None  # the status a cancel reject returns to
        if status is not _PENDING_CANCEL:
            kept = status
        elif event is E.PARTIALLY_FILLED:
            kept = S.PARTIALLY_FILLED  # a cancel reject now restores PARTIALLY_FILLED
        else:
            kept = state.prior
        return LifecycleState(S.PENDING_CANCEL, kept)
    return _PLAIN[target]  # type: ignore[index]  # every target in the table is an OrderStatus


def can_apply(state: LifecycleState, event: OrderEventType) -> bool:
    """True when :func:`apply_event` would accept ``event`` in ``state``."""
    # the same decision as apply_event, without building the new state or raising
    status = state.status
    if TRANSITIONS.get((status, event)) is not None or EVENT_TARGET.get(event) is status:
        return True
    if isinstance(event, OrderEventType):
        return False
    try:  # not an OrderEventType: keep apply_event's exact behaviour (and errors) for odd input
        apply_event(state, event)
    except IllegalTransition:
        return False
    return True
