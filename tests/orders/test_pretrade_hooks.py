"""Pre-trade hooks (seed 003: risk hook integration, validation hooks before order creation) and
the open-age limit (seed 002: an order not done within its timeout is ended).

Hooks run in the ledger's risk step after the built-in rules and deny with their own reason code;
``orders.max_open_age_s`` makes the runtime cancel a working order at its venue (fake clock).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import ObservableClock, ctx, limit, quote, registry_of, settle, wait_until

from actors import HookDenial, PreTradeCheck, Runtime
from protocols import ErrorCode, OrderStatus


def max_qty(check: PreTradeCheck) -> HookDenial | None:
    if check.intent.quantity > Decimal("0.002"):
        return HookDenial("max_qty", f"quantity {check.intent.quantity} > 0.002")
    return None


def test_a_hook_denies_with_its_own_reason_code(make_runtime) -> None:
    venue = TestAdapter("test")
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}}, hooks=[max_qty])
    denied = rt.submit(limit("hk-big", qty="0.005"), ctx()).result(timeout=5)
    assert denied.status is OrderStatus.DENIED and denied.error.code is ErrorCode.E_EXEC_RISK_DENIED
    assert denied.error.message == "max_qty: quantity 0.005 > 0.002"
    assert venue.submit_calls == []  # never reached the venue
    allowed = rt.submit(limit("hk-ok", qty="0.001"), ctx()).result(timeout=5)
    assert allowed.status is OrderStatus.FILLED
    stats = rt.stats()
    assert stats["errors_by_code"].get("risk:max_qty") == 1
    assert Decimal(stats["exposure"]["acc-1"]["reserved"]) == 0  # the denied order's reservation was released
    assert stats["risk_invariants"] == []


def test_hooks_run_in_order_after_the_built_in_rules_and_see_the_order_as_sent(make_runtime) -> None:
    seen: list[tuple[str, PreTradeCheck]] = []

    def first(check):
        seen.append(("first", check))

    def second(check):
        seen.append(("second", check))
        return HookDenial("second_says_no", "") if check.intent.client_order_id == "hk-2" else None

    venue = TestAdapter("test")
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}}, hooks=[first, second],
                      risk={"slippage_action": "cap", "min_notional": 5})
    rt.on_market(quote())
    # a limit far through the ask is capped by the slippage guard before any hook sees it
    report = rt.submit(limit("hk-1", price="45000"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.FILLED
    assert [name for name, _ in seen] == ["first", "second"]
    check = seen[0][1]
    assert check.intent.limit_price < Decimal("40000") and check.touch is not None
    assert check.trading_state == "ACTIVE" and check.position_qty == 0 and check.reserved > 0
    assert rt.submit(limit("hk-2"), ctx()).result(timeout=5).error.message == "second_says_no: "
    # a built-in denial comes first: the hooks never see an order below min_notional
    seen.clear()
    tiny = rt.submit(limit("hk-3", qty="0.00001"), ctx()).result(timeout=5)
    assert tiny.error.message.startswith("min_notional") and seen == []


def test_a_broken_hook_fails_closed(make_runtime) -> None:
    def raises(check):
        raise KeyError("boom")

    def answers_garbage(check):
        return "yes"

    for hook in (raises, answers_garbage):
        venue = TestAdapter("test")
        rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}}, hooks=[hook])
        report = rt.submit(limit(), ctx()).result(timeout=5)
        assert report.status is OrderStatus.DENIED and report.error.message.startswith("hook_error: ")
        assert hook.__name__ in report.error.message and venue.submit_calls == []


def test_hooks_are_checked_at_start(settings_factory) -> None:
    with pytest.raises(ValueError, match=r"hooks\[1\] must be callable"):
        Runtime.start(settings_factory(), hooks=[max_qty, "not a hook"])
    with pytest.raises(ValueError, match="hook denial code"):
        HookDenial("Max Qty!", "bad code")


# --------------------------------------------------------------------------- max open age


@pytest.fixture
def clock() -> ObservableClock:
    return ObservableClock()


def audit_causes(rt, client_order_id: str) -> list[str]:
    rt.flush()
    lines = [json.loads(line) for line in rt.audit_path.read_text().splitlines() if line.strip()]
    return [entry.get("data", entry).get("cause", "") for entry in lines
            if entry.get("data", entry).get("client_order_id") == client_order_id]


def test_an_order_open_past_its_max_age_is_canceled_at_the_venue(make_runtime, clock) -> None:
    venue = TestAdapter("test", default="accept")
    rt = make_runtime(registry=registry_of(venue), clock=clock, durable=True, routing={"policy": {"paper": "test"}},
                      orders={"max_open_age_s": 60}, reconcile={"interval_s": 5.0})
    assert rt.submit(limit("age-1"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    settle(rt)
    clock.wait_timer(lambda d: d == 60.0, what="the open-age timer")
    clock.advance(30.0)
    assert rt.submit(limit("age-2"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    settle(rt)  # the ledger has recorded the acceptance (its age counts from now)
    clock.advance(29.9)
    settle(rt)
    assert venue.cancel_calls == []
    clock.advance(0.1)
    wait_until(lambda: rt.order("age-1").status is OrderStatus.CANCELED, what="age-1 canceled")
    assert venue.cancel_calls == ["age-1"] and rt.order("age-2").status is OrderStatus.ACCEPTED
    assert any("max_open_age_s (60 s)" in cause for cause in audit_causes(rt, "age-1"))
    # the next one is due 30 s later, from its own acceptance
    clock.wait_timer(lambda d: d == pytest.approx(30.0), what="the timer of the next oldest order")
    clock.advance(30.0)
    wait_until(lambda: rt.order("age-2").status is OrderStatus.CANCELED, what="age-2 canceled")


def test_an_order_that_ends_in_time_is_not_canceled(make_runtime, clock) -> None:
    venue = TestAdapter("test", default="accept")
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}},
                      orders={"max_open_age_s": 10}, reconcile={"interval_s": 5.0})
    assert rt.submit(limit("aged-ok"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    assert rt.cancel("aged-ok").result(timeout=5).status is OrderStatus.CANCELED
    assert rt.submit(limit("aged-work"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    settle(rt)
    venue.cancel_calls.clear()
    clock.advance(10.0)
    wait_until(lambda: venue.cancel_calls == ["aged-work"], what="only the working order canceled")
    assert rt.order("aged-ok").status is OrderStatus.CANCELED
