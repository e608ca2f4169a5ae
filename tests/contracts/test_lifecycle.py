"""The order lifecycle table (protocols/model/lifecycle.py): paths, real-world rules, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import (
    EVENT_TARGET,
    TERMINAL_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    LifecycleState,
    OrderEventType,
    OrderStatus,
    apply_event,
    can_apply,
)

S = OrderStatus
E = OrderEventType


def run(*events: OrderEventType, start: LifecycleState | None = None) -> LifecycleState:
    state = start or LifecycleState()
    for ev in events:
        state = apply_event(state, ev)
    return state


def at(status: OrderStatus, prior: OrderStatus | None = None) -> LifecycleState:
    return LifecycleState(status, prior)


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("events,expected", [
    ((E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.PARTIALLY_FILLED, E.FILLED), S.FILLED),
    ((E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.FILLED), S.FILLED),
    ((E.RESERVED, E.SUBMITTED, E.FILLED), S.FILLED),                      # immediate fill
    ((E.RESERVED, E.SUBMITTED, E.PARTIALLY_FILLED, E.FILLED), S.FILLED),  # immediate partial
    ((E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.PARTIALLY_FILLED, E.PARTIALLY_FILLED), S.PARTIALLY_FILLED),
    ((E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.CANCEL_REQUESTED, E.CANCELED), S.CANCELED),
    ((E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.PARTIALLY_FILLED, E.CANCEL_REQUESTED, E.CANCELED), S.CANCELED),
    ((E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.EXPIRED), S.EXPIRED),
    ((E.RESERVED, E.SUBMITTED, E.EXPIRED), S.EXPIRED),                     # IOC leftover
    ((E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.PARTIALLY_FILLED, E.EXPIRED), S.EXPIRED),
    ((E.RESERVED, E.SUBMITTED, E.REJECTED), S.REJECTED),
    ((E.RESERVED, E.SUBMITTED, E.FAILED), S.FAILED),
    ((E.RESERVED, E.SUBMITTED, E.UNKNOWN), S.UNKNOWN),
    ((E.RESERVED, E.DENIED), S.DENIED),
    ((E.RESERVED, E.FAILED), S.FAILED),
    ((E.DENIED,), S.DENIED),
])
def test_paths(events, expected) -> None:
    state = run(*events)
    assert state.status is expected
    assert state.prior is None


def test_initial_state() -> None:
    assert LifecycleState() == LifecycleState(S.INITIALIZED, None)


@pytest.mark.parametrize("events", [
    (E.SUBMITTED,),                       # must be reserved first
    (E.ACCEPTED,),
    (E.FILLED,),
    (E.RESERVED, E.ACCEPTED),             # not sent yet
    (E.RESERVED, E.REJECTED),             # a venue reject needs a send
    (E.RESERVED, E.SUBMITTED, E.DENIED),  # our own denial comes before the send
    (E.RESERVED, E.SUBMITTED, E.CANCEL_REQUESTED),
    (E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.RESERVED),
    (E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.SUBMITTED),
    (E.RESERVED, E.SUBMITTED, E.ACCEPTED, E.CANCEL_REJECTED),  # no cancel pending
])
def test_illegal_transitions_raise(events) -> None:
    with pytest.raises(IllegalTransition) as info:
        run(*events)
    assert isinstance(info.value, ValueError)
    assert events[-1].value in str(info.value)


def test_illegal_transition_names_event_and_state() -> None:
    with pytest.raises(IllegalTransition, match="ACCEPTED is not allowed in state RESERVED"):
        run(E.RESERVED, E.ACCEPTED)


# --------------------------------------------------------------------------- cancel rules


@pytest.mark.parametrize("working", [S.ACCEPTED, S.PARTIALLY_FILLED])
def test_cancel_reject_restores_the_prior_status(working: OrderStatus) -> None:
    pending = apply_event(at(working), E.CANCEL_REQUESTED)
    assert pending == LifecycleState(S.PENDING_CANCEL, working)
    restored = apply_event(pending, E.CANCEL_REJECTED)
    assert restored == LifecycleState(working, None)


def test_partial_fill_during_pending_cancel_then_reject_restores_partially_filled() -> None:
    pending = apply_event(at(S.ACCEPTED), E.CANCEL_REQUESTED)
    filled_some = apply_event(pending, E.PARTIALLY_FILLED)
    assert filled_some == LifecycleState(S.PENDING_CANCEL, S.PARTIALLY_FILLED)
    assert apply_event(filled_some, E.CANCEL_REJECTED).status is S.PARTIALLY_FILLED


def test_fills_during_pending_cancel() -> None:
    pending = apply_event(at(S.ACCEPTED), E.CANCEL_REQUESTED)
    assert apply_event(pending, E.FILLED).status is S.FILLED
    assert apply_event(pending, E.PARTIALLY_FILLED).status is S.PENDING_CANCEL
    assert apply_event(pending, E.CANCELED).status is S.CANCELED
    assert apply_event(pending, E.EXPIRED).status is S.EXPIRED
    # a late ack during the cancel keeps the cancel pending, with its prior
    assert apply_event(pending, E.ACCEPTED) == pending
    # a repeated cancel request is an idempotent repeat
    assert apply_event(pending, E.CANCEL_REQUESTED) == pending


@pytest.mark.parametrize("fill", [E.PARTIALLY_FILLED, E.FILLED])
def test_fills_after_canceled_keep_canceled(fill: OrderEventType) -> None:
    assert apply_event(at(S.CANCELED), fill) == LifecycleState(S.CANCELED, None)


def test_fill_after_expired_keeps_expired() -> None:
    assert apply_event(at(S.EXPIRED), E.PARTIALLY_FILLED).status is S.EXPIRED


def test_late_partial_fill_report_after_filled_keeps_filled() -> None:
    assert apply_event(at(S.FILLED), E.PARTIALLY_FILLED).status is S.FILLED


def test_cancel_reject_after_the_order_finished_changes_nothing() -> None:
    assert apply_event(at(S.FILLED), E.CANCEL_REJECTED).status is S.FILLED
    assert apply_event(at(S.CANCELED), E.CANCEL_REJECTED).status is S.CANCELED


def test_pending_cancel_without_a_prior_restores_accepted() -> None:
    # defensive default: a state built without a prior falls back to ACCEPTED
    assert apply_event(LifecycleState(S.PENDING_CANCEL, None), E.CANCEL_REJECTED).status is S.ACCEPTED


# --------------------------------------------------------------------------- idempotent repeats


@pytest.mark.parametrize("status,event", [
    (S.ACCEPTED, E.ACCEPTED),
    (S.SUBMITTING, E.SUBMITTED),
    (S.RESERVED, E.RESERVED),
    (S.UNKNOWN, E.UNKNOWN),
    (S.DENIED, E.DENIED),
    (S.REJECTED, E.REJECTED),
    (S.FAILED, E.FAILED),
    (S.FILLED, E.FILLED),
    (S.CANCELED, E.CANCELED),
    (S.EXPIRED, E.EXPIRED),
    (S.PARTIALLY_FILLED, E.PARTIALLY_FILLED),
])
def test_identical_repeats_are_no_ops(status: OrderStatus, event: OrderEventType) -> None:
    state = at(status)
    assert apply_event(state, event) == state
    assert can_apply(state, event)


def test_late_ack_after_partial_fill_keeps_partially_filled() -> None:
    assert apply_event(at(S.PARTIALLY_FILLED), E.ACCEPTED).status is S.PARTIALLY_FILLED


# --------------------------------------------------------------------------- terminal states

# the only (terminal, event) pairs the table accepts besides identical repeats: documented
# real-world rules (fills racing a cancel or an expiry, late reports), none changes the status
DOCUMENTED_TERMINAL = {
    (S.CANCELED, E.PARTIALLY_FILLED), (S.CANCELED, E.FILLED), (S.CANCELED, E.CANCEL_REJECTED),
    (S.EXPIRED, E.PARTIALLY_FILLED),
    (S.FILLED, E.PARTIALLY_FILLED), (S.FILLED, E.CANCEL_REJECTED),
}


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES, key=lambda s: s.value))
def test_terminal_states_never_leave(status: OrderStatus) -> None:
    accepted = set()
    for event in OrderEventType:
        try:
            new = apply_event(at(status), event)
        except IllegalTransition:
            continue
        assert new.status is status, (status, event, new)
        if EVENT_TARGET.get(event) is not status:
            accepted.add((status, event))
    assert accepted == {p for p in DOCUMENTED_TERMINAL if p[0] is status}


def test_terminal_set_is_the_spec_set() -> None:
    assert {S.DENIED, S.REJECTED, S.FAILED, S.CANCELED, S.EXPIRED, S.FILLED} == TERMINAL_STATUSES
    assert all(s.is_terminal for s in TERMINAL_STATUSES)
    assert not any(s.is_terminal for s in S if s not in TERMINAL_STATUSES)


def test_no_table_entry_leaves_a_terminal_state() -> None:
    for (src, _event), target in TRANSITIONS.items():
        if src in TERMINAL_STATUSES:
            assert target is src


# --------------------------------------------------------------------------- UNKNOWN


@pytest.mark.parametrize("event,expected", [
    (E.ACCEPTED, S.ACCEPTED), (E.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (E.FILLED, S.FILLED),
    (E.CANCELED, S.CANCELED), (E.EXPIRED, S.EXPIRED), (E.REJECTED, S.REJECTED), (E.FAILED, S.FAILED),
    (E.SUBMITTED, S.SUBMITTING),  # the venue proved absence: resend under the same id
])
def test_unknown_leaves_to_what_reconciliation_proves(event: OrderEventType, expected: OrderStatus) -> None:
    assert apply_event(at(S.UNKNOWN), event).status is expected


@pytest.mark.parametrize("event", [E.RESERVED, E.DENIED, E.CANCEL_REQUESTED, E.CANCEL_REJECTED])
def test_unknown_refuses_what_no_venue_can_prove(event: OrderEventType) -> None:
    with pytest.raises(IllegalTransition):
        apply_event(at(S.UNKNOWN), event)


def test_working_orders_can_become_unknown() -> None:
    assert apply_event(at(S.ACCEPTED), E.UNKNOWN).status is S.UNKNOWN
    assert apply_event(at(S.PARTIALLY_FILLED), E.UNKNOWN).status is S.UNKNOWN


# --------------------------------------------------------------------------- properties

NO_CHANGE_TERMINALS = {S.DENIED, S.REJECTED, S.FAILED, S.FILLED}


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(list(OrderEventType)), max_size=30))
def test_random_event_sequences_stay_valid(events: list[OrderEventType]) -> None:
    state = LifecycleState()
    for event in events:
        before = state
        try:
            state = apply_event(state, event)
        except IllegalTransition:
            assert not can_apply(before, event)
            continue  # the state is unchanged: a refused event
        assert can_apply(before, event)
        assert isinstance(state, LifecycleState)
        assert state.status in set(S)
        assert (state.prior is not None) == (state.status is S.PENDING_CANCEL), state
        if before.status.is_terminal:
            assert state.status.is_terminal, (before, event, state)
            assert state.status is before.status
        if before.status in NO_CHANGE_TERMINALS:
            assert state == before
        if state.status is S.PENDING_CANCEL:
            assert state.prior in (S.ACCEPTED, S.PARTIALLY_FILLED)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(S)), st.sampled_from(list(OrderEventType)))
def test_apply_is_deterministic_and_pure(status: OrderStatus, event: OrderEventType) -> None:
    prior = S.ACCEPTED if status is S.PENDING_CANCEL else None
    state = LifecycleState(status, prior)
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(apply_event(state, event))
        except IllegalTransition as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    assert state == LifecycleState(status, prior)  # the input was not mutated


# --------------------------------------------------------------------------- the table, exhaustively

PRIORS = [None, *S]


def _reference_apply(state: LifecycleState, event: OrderEventType) -> LifecycleState:
    """apply_event as the table defines it, building a fresh state every time."""
    from protocols.model.lifecycle import PRIOR

    target = TRANSITIONS.get((state.status, event))
    if target is None:
        if EVENT_TARGET.get(event) is state.status:
            return state
        raise IllegalTransition(f"{event.value} is not allowed in state {state.status.value}")
    if target is PRIOR:
        return LifecycleState(state.prior or S.ACCEPTED, None)
    if target is S.PENDING_CANCEL:
        if state.status is not S.PENDING_CANCEL:
            prior = state.status
        elif event is E.PARTIALLY_FILLED:
            prior = S.PARTIALLY_FILLED
        else:
            prior = state.prior
        return LifecycleState(S.PENDING_CANCEL, prior)
    return LifecycleState(target, None)


def _outcome(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return (type(exc), str(exc))


def _reference_can_apply(state: LifecycleState, event) -> bool:
    try:
        _reference_apply(state, event)
    except IllegalTransition:
        return False
    return True


@pytest.mark.parametrize("status", list(S))
def test_every_status_prior_and_event_matches_the_table(status: OrderStatus) -> None:
    for prior in PRIORS:
        state = LifecycleState(status, prior)
        for event in OrderEventType:
            for ev in (event, event.value, event.value.lower()):  # the enum, its value, a near miss
                want = _outcome(_reference_apply, state, ev)
                got = _outcome(apply_event, state, ev)
                assert got == want, (state, ev)
                if isinstance(want, LifecycleState):
                    assert type(got) is LifecycleState and type(got.status) is type(want.status)
                    if want is state:  # an idempotent repeat still returns the very same state
                        assert got is state
                assert _outcome(can_apply, state, ev) == _outcome(_reference_can_apply, state, ev), (state, ev)


def test_states_are_shared_only_because_they_are_frozen() -> None:
    a = apply_event(LifecycleState(), E.RESERVED)
    b = apply_event(LifecycleState(), E.RESERVED)
    assert a == b == LifecycleState(S.RESERVED, None)
    with pytest.raises(AttributeError):
        a.status = S.FILLED  # type: ignore[misc]
    assert b.status is S.RESERVED


def test_can_apply_with_a_string_event_behaves_as_before() -> None:
    assert can_apply(LifecycleState(), "RESERVED") is True
    assert can_apply(LifecycleState(S.FILLED), "FILLED") is True  # idempotent repeat
    # an unknown string is not an event: apply_event fails while building its message, as before
    with pytest.raises(AttributeError):
        can_apply(LifecycleState(), "NOT_AN_EVENT")
