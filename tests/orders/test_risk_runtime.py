"""Risk at the runtime level (README.md, Features): no overbooking under 32 threads, the kill switch, denials by rule."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

from _adapters import TestAdapter
from conftest import registry_of

from actors import Runtime
from config import load_settings
from protocols import AmbiguousError, ExecutionContext, OrderIntent, OrderStatus, Quote

QUOTE = Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=Decimal("39432.99"), bid_size=Decimal("100"),
              ask=Decimal("39433.62"), ask_size=Decimal("100"))


def _limit(cl_id: str, side: str = "BUY", price: str = "39400.00", qty: str = "0.001") -> OrderIntent:
    return OrderIntent(client_order_id=cl_id, symbol="BTC/USDT", side=side, order_type="LIMIT",
                       quantity=Decimal(qty), limit_price=Decimal(price))


def test_32_threads_on_one_account_never_overbook(tmp_path: Path) -> None:
    budget = Decimal("1000")  # room for 25 resting orders of ~39.4 USDT each
    settings = load_settings("test", state_dir=str(tmp_path), journal={"enabled": False},
                             risk={"budgets": {"acct": str(budget)}})
    ctx = ExecutionContext(mode="paper", account_id="acct")
    results: list = []
    lock = threading.Lock()
    with Runtime.start(settings) as rt:
        rt.on_market(QUOTE)
        barrier = threading.Barrier(32)

        def sender(n: int) -> None:
            barrier.wait()
            futures = [rt.submit(_limit(f"t{n}-{i}"), ctx) for i in range(10)]
            got = [f.result(timeout=30) for f in futures]
            with lock:
                results.extend(got)

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        rt.flush()
        stats = rt.stats()
    accepted = [r for r in results if r.status.value == "ACCEPTED"]
    denied = [r for r in results if r.error is not None and r.error.code.value == "E_EXEC_RISK_DENIED"]
    assert len(results) == 320
    assert len(accepted) + len(denied) == 320
    reserved = sum(Decimal("0.001") * Decimal("39400.00") for _ in accepted)
    assert reserved <= budget
    assert len(accepted) == 25, "exactly what fits the budget is admitted, whatever the interleaving"
    assert all(r.error.message.startswith("budget") for r in denied)
    assert stats["risk_invariants"] == []


def test_halt_denies_new_orders_at_once_while_cancels_pass(tmp_path: Path) -> None:
    settings = load_settings("test", state_dir=str(tmp_path), journal={"enabled": False})
    ctx = ExecutionContext(mode="paper", account_id="acct")
    with Runtime.start(settings) as rt:
        rt.on_market(QUOTE)
        resting = rt.submit(_limit("rest-1"), ctx).result(timeout=5)
        assert resting.status.value == "ACCEPTED"
        stop = threading.Event()
        before_halt: list = []

        def flood() -> None:
            i = 0
            while not stop.is_set() and i < 3000:
                before_halt.append(rt.submit(_limit(f"flood-{i}"), ctx))
                i += 1

        thread = threading.Thread(target=flood)
        thread.start()
        assert rt.halt() == "HALTED"
        after = [rt.submit(_limit(f"after-{i}"), ctx).result(timeout=5) for i in range(20)]
        stop.set()
        thread.join(timeout=10)
        assert all(r.status.value == "DENIED" and r.error.code.value == "E_EXEC_RISK_DENIED" for r in after)
        assert all("trading_halted" in r.error.message for r in after)
        canceled = rt.cancel("rest-1").result(timeout=5)
        assert canceled.status.value == "CANCELED", canceled
        assert rt.resume() == "ACTIVE"
        assert rt.submit(_limit("again-1"), ctx).result(timeout=5).status.value == "ACCEPTED"
        for f in before_halt:
            assert f.result(timeout=10).status.value in ("ACCEPTED", "DENIED")


def test_min_notional_and_slippage_denials_name_the_rule(tmp_path: Path) -> None:
    settings = load_settings("test", state_dir=str(tmp_path), journal={"enabled": False})
    ctx = ExecutionContext(mode="paper", account_id="acct")
    with Runtime.start(settings) as rt:
        rt.on_market(QUOTE)
        tiny = rt.submit(_limit("tiny", qty="0.0001"), ctx).result(timeout=5)
        assert tiny.error.code.value == "E_EXEC_RISK_DENIED" and tiny.error.message.startswith("min_notional")
        through = rt.submit(_limit("through", price="39600.00"), ctx).result(timeout=5)  # 42 bps through the ask
        assert through.error.code.value == "E_EXEC_RISK_DENIED" and through.error.message.startswith("slippage")
        assert rt.venue("paper").submission_counts().get("tiny") is None


def test_reservations_and_spent_survive_a_restart(tmp_path: Path) -> None:
    """README.md, Features: an order's notional stays reserved until it is terminal, and a restart does not end
    an order. After a stop and a start on the same state dir, the resting LIMIT's reservation and the
    filled MARKET's spend are back (from the journal), so the budget still binds; the cancel of the
    resting order releases its reservation."""
    settings = load_settings("test", state_dir=str(tmp_path), journal={"enabled": True, "synchronous": "FULL"},
                             risk={"budgets": {"acct": "100"}})
    ctx = ExecutionContext(mode="paper", account_id="acct")
    market = OrderIntent(client_order_id="m-1", symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=Decimal("0.001"))
    with Runtime.start(settings) as rt:
        rt.on_market(QUOTE)
        assert rt.submit(_limit("rest-1"), ctx).result(timeout=10).status.value == "ACCEPTED"
        filled = rt.submit(market, ctx).result(timeout=10)
        assert filled.status.value == "FILLED"
        rt.flush()
        before = rt.stats()["exposure"]["acct"]
    with Runtime.start(settings) as rt:
        rt.flush()
        after = rt.stats()["exposure"]["acct"]
        assert {k: Decimal(v) for k, v in after.items()} == {k: Decimal(v) for k, v in before.items()}
        assert Decimal(after["reserved"]) == Decimal("0.001") * Decimal("39400.00")
        assert Decimal(after["spent"]) == filled.cum_qty * filled.avg_px
        # 100 USDT budget: 39.4 reserved + ~39.43 spent leave no room for another ~39.4
        rt.on_market(QUOTE)
        denied = rt.submit(_limit("rest-2"), ctx).result(timeout=10)
        assert denied.error is not None and denied.error.message.startswith("budget")
        canceled = rt.cancel("rest-1", "acct").result(timeout=10)
        assert canceled.status.value == "CANCELED"
        rt.flush()
        stats = rt.stats()
    assert Decimal(stats["exposure"]["acct"]["reserved"]) == 0
    assert stats["risk_invariants"] == []


def test_an_in_doubt_market_order_keeps_its_reservation_across_a_restart(make_runtime, settings_factory) -> None:
    """README.md, Features across a restart for a MARKET order: its intake price is not in the intent, so the
    reservation is restored from the notional the RESERVED transition journaled. The venue's
    answer is ambiguous and every lookup fails, so the order stays UNKNOWN (not terminal) before
    and after the restart, and its worst-case notional stays reserved: the budget still binds."""
    settings = settings_factory(durable=True, journal={"enabled": True, "synchronous": "FULL"},
                                risk={"budgets": {"acct": "60"}}, routing={"policy": {"paper": "test"}})
    ctx = ExecutionContext(mode="paper", account_id="acct")
    lookups_fail = [AmbiguousError("venue unreachable")] * 1_000
    market = OrderIntent(client_order_id="m-doubt", symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=Decimal("0.001"))
    rt = make_runtime(settings, registry=registry_of(TestAdapter("test", script=["ambiguous_sent"], fetch_script=lookups_fail)))
    rt.on_market(QUOTE)
    assert rt.submit(market, ctx).result(timeout=10).status is OrderStatus.UNKNOWN
    rt.flush()
    before = rt.stats()["exposure"]["acct"]
    reserved = Decimal(before["reserved"])
    assert reserved >= Decimal("0.001") * QUOTE.ask  # worst case: the ask plus the slippage bound
    rt.stop()

    rt = make_runtime(settings, registry=registry_of(TestAdapter("test", fetch_script=lookups_fail)))
    rt.flush()
    assert rt.order("m-doubt").status is OrderStatus.UNKNOWN
    after = rt.stats()["exposure"]["acct"]
    assert Decimal(after["reserved"]) == reserved
    assert Decimal(after["spent"]) == 0
    rt.on_market(QUOTE)
    denied = rt.submit(_limit("rest-after"), ctx).result(timeout=10)  # 39.4 + ~39.5 > 60
    assert denied.error is not None and denied.error.message.startswith("budget")
    assert rt.stats()["risk_invariants"] == []
