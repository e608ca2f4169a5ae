"""Routing (README.md, Topology): the decision table, and each mode end to end through a runtime."""

from __future__ import annotations

from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import ctx, limit, market, quote, registry_of, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import Runtime
from actors.routing.router import RouteDenied, RouteTable, decide_route
from protocols import ErrorCode, ExecutionMode, OrderStatus, RouteDecision

POLICY = {"paper": "paper", "simulated": "paper", "shadow": "shadow", "shadow_run": "shadow",
          "dry_run": "dry_run", "testnet_dry_run": "dry_run"}
BLOCKED = ("live_blocked", "live")

# README.md, Topology, copied by hand
TABLE = {
    "paper": ("paper", "route_paper", "paper mode"),
    "simulated": ("paper", "route_paper", "paper mode"),
    "shadow": ("shadow", "route_shadow", "shadow mode"),
    "shadow_run": ("shadow", "route_shadow", "shadow mode"),
    "dry_run": ("dry_run", "route_dry_run", "dry-run: validated and acknowledged, never filled"),
    "testnet_dry_run": ("dry_run", "route_dry_run", "dry-run: validated and acknowledged, never filled"),
}


def test_route_table_gives_the_decision_and_the_breaker_actor_or_why_not() -> None:
    """The immutable table Runtime.submit routes with: same decisions as decide_route, plus the
    adapter's breaker actor; an adapter without one is E_EXEC_NO_ADAPTER carrying the route."""
    breakers = {"paper": object(), "shadow": object()}  # stand-ins for the breaker actor refs
    table = RouteTable.build(POLICY, BLOCKED, breakers)
    for mode, (adapter, route_id, reason) in TABLE.items():
        found = table.lookup(mode)
        if adapter in breakers:
            decision, breaker = found
            assert (decision.adapter_id, decision.route_id, decision.routing_reason) == (adapter, route_id, reason)
            assert breaker is breakers[adapter]
        else:
            assert isinstance(found, RouteDenied) and found.code is ErrorCode.E_EXEC_NO_ADAPTER
            assert found.route is not None and found.route.adapter_id == adapter
    assert table.lookup("live").code is ErrorCode.E_EXEC_POLICY_BLOCKED
    assert table.lookup("warp").code is ErrorCode.E_EXEC_ROUTE_CONFIG_INVALID
    with pytest.raises(TypeError):
        table.routes["warp"] = None  # read-only: shared by every sender thread


@pytest.mark.parametrize("mode", sorted(TABLE))
def test_routable_modes(mode: str) -> None:
    adapter, route_id, reason = TABLE[mode]
    decision = decide_route(mode, POLICY, BLOCKED)
    assert decision == RouteDecision(route_id=route_id, adapter_id=adapter, routing_reason=reason)


@pytest.mark.parametrize("mode", ["live", "live_blocked"])
def test_live_modes_are_blocked(mode: str) -> None:
    decision = decide_route(mode, POLICY, BLOCKED)
    assert isinstance(decision, RouteDenied)
    assert decision.code is ErrorCode.E_EXEC_POLICY_BLOCKED
    assert mode in decision.message


@pytest.mark.parametrize("mode", ["moon", "", "PAPER", "paper ", "backtest", "livee"])
def test_unknown_modes_are_invalid_never_a_fallback(mode: str) -> None:
    decision = decide_route(mode, POLICY, BLOCKED)
    assert isinstance(decision, RouteDenied)
    assert decision.code is ErrorCode.E_EXEC_ROUTE_CONFIG_INVALID
    assert repr(mode)[1:-1] in decision.message


def test_every_execution_mode_is_covered() -> None:
    assert set(TABLE) | set(BLOCKED) == {m.value for m in ExecutionMode}


def test_blocked_wins_even_if_a_policy_routes_the_mode() -> None:
    decision = decide_route("live", {**POLICY, "live": "paper"}, BLOCKED)
    assert isinstance(decision, RouteDenied) and decision.code is ErrorCode.E_EXEC_POLICY_BLOCKED


def test_decision_is_deterministic() -> None:
    assert all(decide_route(m, POLICY, BLOCKED) == decide_route(m, POLICY, BLOCKED) for m in list(TABLE) + ["x", "live"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_other_mode_is_route_config_invalid(mode: str) -> None:
    decision = decide_route(mode, POLICY, BLOCKED)
    if mode in TABLE:
        assert isinstance(decision, RouteDecision)
    elif mode in BLOCKED:
        assert decision.code is ErrorCode.E_EXEC_POLICY_BLOCKED
    else:
        assert isinstance(decision, RouteDenied) and decision.code is ErrorCode.E_EXEC_ROUTE_CONFIG_INVALID


# --------------------------------------------------------------------------- runtime level


@pytest.mark.parametrize("mode", sorted(TABLE))
def test_each_mode_end_to_end_uses_its_adapter(make_runtime, mode: str) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    report = rt.submit(market(f"route-{mode}"), ctx(mode)).result(timeout=5)
    adapter, route_id, reason = TABLE[mode]
    assert report.route == RouteDecision(route_id=route_id, adapter_id=adapter, routing_reason=reason)
    expected = OrderStatus.ACCEPTED if adapter == "dry_run" else OrderStatus.FILLED
    assert report.status is expected, report
    rt.flush()
    for venue_id in ("paper", "shadow", "dry_run"):
        counts = rt.venue(venue_id).submission_counts()
        assert counts == ({f"route-{mode}": 1} if venue_id == adapter else {}), venue_id


def test_mode_is_case_insensitive_at_the_boundary(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    report = rt.submit(market("route-upper"), {"mode": "PAPER", "account_id": "acc-1"}).result(timeout=5)
    assert report.route.route_id == "route_paper" and report.status is OrderStatus.FILLED


@pytest.mark.parametrize("mode", ["live", "live_blocked"])
def test_live_is_denied_policy_blocked_end_to_end(make_runtime, mode: str) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    report = rt.submit(market(f"live-{mode}"), ctx(mode)).result(timeout=5)
    assert report.status is OrderStatus.DENIED
    assert report.error.code is ErrorCode.E_EXEC_POLICY_BLOCKED
    assert report.error.category.value == "policy_error" and report.error.retryable is False
    assert report.route is None and report.attempts == 0
    rt.flush()
    assert all(rt.venue(v).submission_counts() == {} for v in rt.adapter_ids())
    assert rt.order(f"live-{mode}").status is OrderStatus.DENIED


def test_unknown_mode_is_denied_route_config_invalid_end_to_end(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    report = rt.submit(market("mode-moon"), ctx("moon")).result(timeout=5)
    assert report.status is OrderStatus.DENIED
    assert report.error.code is ErrorCode.E_EXEC_ROUTE_CONFIG_INVALID
    assert "moon" in report.error.message
    rt.flush()
    assert all(rt.venue(v).submission_counts() == {} for v in rt.adapter_ids())
    # the runtime goes on
    assert rt.submit(market("mode-after"), ctx("paper")).result(timeout=5).status is OrderStatus.FILLED


def test_policy_naming_an_unregistered_adapter_refuses_to_start(settings_factory) -> None:
    s = settings_factory(routing={"policy": {"paper": "paper", "shadow": "fix_testnet"}})
    with pytest.raises(ValueError) as info:
        Runtime.start(s)
    assert "fix_testnet" in str(info.value)
    assert "shadow -> fix_testnet" in str(info.value)


def test_failed_start_leaves_nothing_running(settings_factory) -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    s = settings_factory(routing={"policy": {"paper": "nowhere"}})
    with pytest.raises(ValueError, match="nowhere"):
        Runtime.start(s)
    def leftover() -> list:
        return [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]

    # the timer thread was told to close; it must end (bounded poll, not a timed assertion)
    wait_until(lambda: leftover() == [], timeout=5, what=f"threads of the refused runtime to end: {leftover()}")


def test_custom_policy_routes_to_a_registered_adapter(make_runtime) -> None:
    venue = TestAdapter("venue_x")
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "venue_x"}})
    report = rt.submit(limit("custom-1"), ctx("paper")).result(timeout=5)
    assert report.route.adapter_id == "venue_x" and report.route.route_id == "route_venue_x"
    assert report.status is OrderStatus.FILLED
    assert venue.delivered_count("custom-1") == 1
    # a mode the custom policy does not list is invalid, not defaulted to paper
    other = rt.submit(limit("custom-2"), ctx("shadow")).result(timeout=5)
    assert other.error.code is ErrorCode.E_EXEC_ROUTE_CONFIG_INVALID


def test_dry_run_never_fills(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    mkt = rt.submit(market("dry-m"), ctx("dry_run")).result(timeout=5)
    lim = rt.submit(limit("dry-l", price="39500.00"), ctx("dry_run")).result(timeout=5)  # marketable
    for report in (mkt, lim):
        assert report.status is OrderStatus.ACCEPTED
        assert report.fills == () and report.cum_qty == 0 and report.error is None
        assert report.leaves_qty == Decimal("0.001")
    # later market data that would fill a paper order still fills nothing
    rt.on_market(quote(bid="39000.00", ask="39001.00", ts="2021-01-08T00:00:05Z"))
    rt.flush()
    assert rt.order("dry-l").status is OrderStatus.ACCEPTED
    assert rt.venue("dry_run").fills() == ()
    assert rt.positions() == ()


def test_shadow_fills_on_its_own_book(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    shadow = rt.submit(market("sh-1"), ctx("shadow")).result(timeout=5)
    paper = rt.submit(market("pa-1", qty="0.002"), ctx("paper")).result(timeout=5)
    assert shadow.status is OrderStatus.FILLED and paper.status is OrderStatus.FILLED
    shadow_fills = rt.venue("shadow").fill_records()
    paper_fills = rt.venue("paper").fill_records()
    assert [c for c, _ in shadow_fills] == ["sh-1"]
    assert [c for c, _ in paper_fills] == ["pa-1"]
    assert shadow_fills[0][1].trade_id.startswith("shadow-")
    assert paper_fills[0][1].trade_id.startswith("paper-")
    # the paper venue's books only know the paper order; the shadow's only the shadow order
    assert rt.venue("paper").fetch_positions("acc-1") == {"BTC/USDT": Decimal("0.002")}
    assert rt.venue("shadow").fetch_positions("acc-1") == {"BTC/USDT": Decimal("0.001")}
    assert rt.venue("paper").fetch_order("sh-1") is None
    assert rt.venue("shadow").fetch_order("pa-1") is None


# regression (found by this suite, fixed in actors/): the ledger books shadow fills into the primary account's
# positions (README.md, Write an adapter)
def test_shadow_fills_do_not_touch_primary_positions(make_runtime) -> None:
    rt = make_runtime()
    rt.on_market(quote())
    rt.submit(market("pa-only", qty="0.002"), ctx("paper")).result(timeout=5)
    rt.flush()
    before = {(p.account_id, p.symbol): p.net_qty for p in rt.positions()}
    rt.submit(market("sh-only"), ctx("shadow")).result(timeout=5)
    rt.flush()
    after = {(p.account_id, p.symbol): p.net_qty for p in rt.positions()}
    assert after.get(("acc-1", "BTC/USDT")) == before[("acc-1", "BTC/USDT")] == Decimal("0.002")
