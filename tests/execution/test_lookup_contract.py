"""Adapter contract v2: a lookup answer is found, proven absent, or unknown."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import (
    AdapterCapabilities,
    AmbiguousError,
    LookupOutcome,
    OrderStatus,
    VenueOrder,
    VenueOrderState,
    classify_lookup,
)

AUTHORITATIVE = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=2.0)


def _state() -> VenueOrderState:
    order = VenueOrder(client_order_id="c-1", account_id="a", symbol="BTC/USDT", side="BUY",
                       order_type="LIMIT", quantity=Decimal("1"), limit_price=Decimal("10"))
    return VenueOrderState.of(order, venue_order_id="v-1", status=OrderStatus.ACCEPTED)


def test_a_state_is_found_whatever_the_capabilities():
    lookup = classify_lookup("c-1", _state(), AdapterCapabilities(supports_lookup=False), None)
    assert lookup.found and lookup.state is not None and lookup.state.venue_order_id == "v-1"


@pytest.mark.parametrize(
    ("caps", "since", "why"),
    [
        (AdapterCapabilities(), 100.0, "does not cover closed orders"),
        (AdapterCapabilities(supports_lookup=False, lookup_covers_closed=True), 100.0, "no order lookup"),
        (AUTHORITATIVE, 1.999, "propagation window"),
        (AUTHORITATIVE, None, "time of the last send is unknown"),
    ],
)
def test_not_found_without_authority_or_inside_the_window_is_unknown(caps, since, why):
    lookup = classify_lookup("c-1", None, caps, since)
    assert lookup.outcome is LookupOutcome.UNKNOWN and not lookup.absent
    assert why in lookup.reason


def test_not_found_after_the_window_from_an_authoritative_lookup_proves_absence():
    assert classify_lookup("c-1", None, AUTHORITATIVE, 2.0).absent


@given(st.sampled_from([TimeoutError("t"), ConnectionResetError("r"), AmbiguousError("a"), RuntimeError("x")]),
       st.floats(min_value=0, max_value=1e6))
def test_every_exception_is_unknown(exc, since):
    lookup = classify_lookup("c-1", exc, AUTHORITATIVE, since)
    assert lookup.outcome is LookupOutcome.UNKNOWN and type(exc).__name__ in lookup.reason
