"""Tests for actors.orders.risk: trading state, notional limits, slippage guard, budget reservations."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors.orders.risk import RiskConfig, RiskDecision, RiskEngine, TradingState
from protocols import ErrorCode, Fill, OrderIntent, Quote

T0 = datetime(2021, 1, 8, tzinfo=UTC)
PROPS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
Q = Quote(ts=T0, symbol="BTC/USDT", bid=D("99"), bid_size=D(1), ask=D("100"), ask_size=D(1))

_n = 0


def intent(side="BUY", qty="1", price: str | None = "100", symbol="BTC/USDT", coid=None) -> OrderIntent:
    global _n
    _n += 1
    return OrderIntent(
        client_order_id=coid or f"c{_n}",
        symbol=symbol,
        side=side,
        order_type="LIMIT" if price is not None else "MARKET",
        quantity=D(qty),
        limit_price=D(price) if price is not None else None,
    )


def fill(qty: str, price: str, tid="t") -> Fill:
    return Fill(trade_id=tid, qty=D(qty), price=D(price), ts=T0)


def engine(**kw) -> RiskEngine:
    return RiskEngine(RiskConfig(**kw))


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------


def test_config_defaults_and_from_settings():
    cfg = RiskConfig()
    assert (cfg.min_notional, cfg.max_notional, cfg.slippage_bps, cfg.slippage_action) == (D("5.0"), D(1_000_000), D(20), "deny")
    assert RiskConfig.from_settings(None) == cfg
    c1 = RiskConfig.from_settings({"min_notional": 1, "slippage_action": "CAP", "budgets": {"a": "100"}, "other": 1})
    assert (c1.min_notional, c1.slippage_action, c1.budgets["a"]) == (D(1), "cap", D(100))
    c2 = RiskConfig.from_settings(SimpleNamespace(max_notional=0.1, min_notional=0, default_budget=50.5, budgets=None))
    assert (c2.max_notional, c2.default_budget, dict(c2.budgets)) == (D("0.1"), D("50.5"), {})
    assert c2.budget_for("x") == D("50.5") and c1.budget_for("x") is None
    with pytest.raises(TypeError):
        c1.budgets["b"] = D(1)  # type: ignore[index]


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"slippage_action": "clip"}, "slippage_action"),
        ({"min_notional": -1}, "min_notional"),
        ({"min_notional": "abc"}, "min_notional"),
        ({"slippage_bps": float("nan")}, "slippage_bps"),
        ({"max_notional": 0}, "max_notional"),
        ({"min_notional": 10, "max_notional": 5}, "max_notional"),
        ({"budgets": {"a": -5}}, "budgets.a"),
        ({"budgets": [1]}, "budgets"),
        ({"default_budget": True}, "default_budget"),
    ],
)
def test_bad_config_names_the_key(kw, key):
    with pytest.raises(ValueError, match=f"risk.{key}"):
        RiskConfig(**kw)


# ---------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------


def test_min_and_max_notional():
    eng = engine(max_notional=D("1000"))
    d = eng.check_and_reserve(intent(qty="0.031", price="100"), "a", touch=Q, position_qty=D(0))
    assert d == RiskDecision(approved=False, reason="min_notional: notional 3.100 < 5.0", rule="min_notional", notional=D("3.1"))
    err = d.to_error()
    assert err.code is ErrorCode.E_EXEC_RISK_DENIED and err.message == d.reason and not err.retryable
    d = eng.check_and_reserve(intent(qty="10.01", price="100"), "a", touch=Q, position_qty=D(0))
    assert not d.approved and d.rule == "max_notional" and d.reason.startswith("max_notional: notional 1001.00 > 1000")
    d = eng.check_and_reserve(intent(qty="10", price="100"), "a", touch=Q, position_qty=D(0))
    assert d.approved and d.reason == "" and d.reserved == D(1000) and d.adjusted_limit_price is None
    assert d.to_error() is None
    assert eng.exposure("a") == (D(1000), D(0), None)


def test_market_notional_at_worst_case_and_no_touch():
    eng = engine(slippage_bps=D(50))
    d = eng.check_and_reserve(intent(side="BUY", qty="1", price=None), "a", touch=Q)
    assert d.approved and d.reserved == D("100.5")  # ask * (1 + 50/1e4)
    d = eng.check_and_reserve(intent(side="SELL", qty="1", price=None), "a", touch=Q)
    assert d.approved and d.reserved == D("99")  # bid
    d = eng.check_and_reserve(intent(qty="1", price=None), "a", touch=None)
    assert not d.approved and d.reason == "no_market_price: no market price for MARKET notional"
    d = eng.check_and_reserve(intent(qty="1", price=None), "a", touch=Q.model_copy(update={"symbol": "XRP/ETH"}))
    assert not d.approved and d.rule == "no_market_price"


def test_a_restored_reservation_is_the_one_made_at_intake():
    """Recovery restores what check_and_reserve reserved (the journaled notional), for a MARKET
    order too; the fills then true it up exactly as before the restart."""
    live, restored = engine(slippage_bps=D(50)), engine(slippage_bps=D(50))
    order = intent(side="BUY", qty="2", price=None)
    made = live.check_and_reserve(order, "a", touch=Q).reserved
    assert restored.restore_reservation("a", order, made) == made == D("201.0")
    assert restored.restore_reservation("a", order, made) == 0  # idempotent
    assert restored.exposure("a") == live.exposure("a")
    for eng in (live, restored):
        eng.on_fill("a", order.client_order_id, fill("1", "100.2"))
    assert restored.exposure("a") == live.exposure("a")
    assert restored.check_invariants() == []
    assert engine().restore_reservation("a", intent(price=None)) == 0  # MARKET, nothing journaled
    assert engine().restore_reservation("a", intent(qty="2", price="100")) == D("200")  # LIMIT fallback
    with pytest.raises(ValueError, match="reserved notional must be >= 0"):
        engine().restore_reservation("a", intent(), D("-1"))


def test_slippage_guard_deny():
    eng = engine(slippage_bps=D(20), slippage_action="deny")
    # bound for BUY = 100 * 1.002 = 100.2 ; for SELL = 99 * 0.998 = 98.802
    assert eng.check_and_reserve(intent("BUY", price="100.2"), "a", touch=Q).approved
    d = eng.check_and_reserve(intent("BUY", price="100.21"), "a", touch=Q)
    assert not d.approved and d.rule == "slippage" and "above ask 100" in d.reason and d.reserved == 0
    assert eng.check_and_reserve(intent("SELL", price="98.802"), "a", touch=Q).approved
    d = eng.check_and_reserve(intent("SELL", price="98.8"), "a", touch=Q)
    assert not d.approved and "below bid 99" in d.reason
    # no touch: a limit bounds its own price, the guard is skipped
    assert eng.check_and_reserve(intent("BUY", price="150"), "a", touch=None).approved


def test_slippage_guard_cap():
    eng = engine(slippage_bps=D(20), slippage_action="cap")
    d = eng.check_and_reserve(intent("BUY", qty="2", price="105"), "a", touch=Q)
    assert d.approved and d.adjusted_limit_price == D("100.2") and d.reserved == D("200.4")
    d = eng.check_and_reserve(intent("SELL", qty="1", price="90"), "a", touch=Q)
    assert d.approved and d.adjusted_limit_price == D("98.802") and d.reserved == D("98.802")
    # with a tick size the cap is rounded toward the market
    q = Quote(ts=T0, symbol="BTC/USDT", bid=D("99.07"), bid_size=D(1), ask=D("100.07"), ask_size=D(1))
    d = eng.check_and_reserve(intent("BUY", price="105"), "a", touch=q, tick_size=D("0.1"))
    assert d.adjusted_limit_price == D("100.2")  # 100.27014 floored to the tick
    d = eng.check_and_reserve(intent("SELL", price="90"), "a", touch=q, tick_size=D("0.1"))
    assert d.adjusted_limit_price == D("98.9")  # 98.87186 ceiled to the tick
    # a limit inside the bound is untouched
    assert eng.check_and_reserve(intent("BUY", price="100.1"), "a", touch=Q).adjusted_limit_price is None


def test_halted_denies_everything_until_resume():
    eng = engine()
    eng.halt()
    assert eng.state is TradingState.HALTED
    for i in (intent("BUY"), intent("SELL"), intent("SELL", price=None)):
        d = eng.check_and_reserve(i, "a", touch=Q, position_qty=D(5))
        assert not d.approved and d.rule == "trading_halted"
    assert eng.exposure("a")[0] == 0
    eng.resume()
    assert eng.state is TradingState.ACTIVE
    assert eng.check_and_reserve(intent("BUY"), "a", touch=Q).approved


def test_reducing_admits_only_reductions_without_flip():
    eng = engine()
    eng.reduce_only()
    assert eng.state is TradingState.REDUCING
    long1 = D("1")
    assert not eng.check_and_reserve(intent("BUY", qty="0.1"), "a", touch=Q, position_qty=long1).approved
    d = eng.check_and_reserve(intent("SELL", qty="2", price="99"), "a", touch=Q, position_qty=long1)
    assert not d.approved and d.rule == "reduce_only" and "flipping" in d.reason
    assert not eng.check_and_reserve(intent("SELL", qty="0.1", price="99"), "a", touch=Q, position_qty=D(0)).approved
    assert eng.check_and_reserve(intent("SELL", qty="0.6", price="99"), "a", touch=Q, position_qty=long1).approved
    # 0.6 already working: another 0.6 would flip if both fill
    assert not eng.check_and_reserve(intent("SELL", qty="0.6", price="99"), "a", touch=Q, position_qty=long1).approved
    assert eng.check_and_reserve(intent("SELL", qty="0.4", price="99"), "a", touch=Q, position_qty=long1).approved
    # short position: only buys reduce
    assert eng.check_and_reserve(intent("BUY", qty="1"), "b", touch=Q, position_qty=D("-1")).approved
    assert not eng.check_and_reserve(intent("SELL", qty="1", price="99"), "b", touch=Q, position_qty=D("-1")).approved


def test_a_second_reservation_for_one_key_is_a_callers_bug_not_a_risk_rule():
    """Duplicate ids are the idempotency store's (tests/journal/test_idempotency.py); risk has no
    "duplicate" rule. Asked twice for one key it refuses loudly and changes nothing."""
    eng = engine()
    i = intent(coid="same")
    assert eng.check_and_reserve(i, "a", touch=Q).approved
    with pytest.raises(ValueError, match="already holds a reservation"):
        eng.check_and_reserve(i, "a", touch=Q)
    assert eng.exposure("a")[0] == D(100)
    assert eng.open_reservations() == 1


def test_budget_reserve_fill_true_up_and_release():
    eng = engine(budgets={"a": D("250")})
    i1, i2 = intent("BUY", qty="2", price="100"), intent("SELL", qty="1", price="100")
    assert eng.check_and_reserve(i1, "a", touch=Q).reserved == D(200)
    d = eng.check_and_reserve(i2, "a", touch=Q)  # both sides reserve
    assert not d.approved and d.rule == "budget"
    assert d.reason == "budget: reserved 200 + spent 0 + notional 100 > budget 250 for account a"
    # fill 1 of 2 at a better price: release 100 worst-case, spend 99
    assert eng.on_fill("a", i1.client_order_id, fill("1", "99")) == D(100)
    assert eng.exposure("a") == (D(100), D(99), D(250))
    assert eng.reservation("a", i1.client_order_id) == D(100)
    # terminal (canceled): the remainder is released, idempotently
    assert eng.release("a", i1.client_order_id) == D(100)
    assert eng.release("a", i1.client_order_id) == D(0)
    assert eng.exposure("a") == (D(0), D(99), D(250)) and eng.reservation("a", i1.client_order_id) is None
    assert eng.check_and_reserve(intent("SELL", qty="1.5", price="100"), "a", touch=Q).approved
    assert eng.check_invariants() == []


def test_fill_above_worst_case_is_absorbed_then_breach_recorded():
    eng = engine(budgets={"a": D("300")})
    i = intent("SELL", qty="2", price="100")
    eng.check_and_reserve(i, "a", touch=Q)
    eng.on_fill("a", i.client_order_id, fill("1", "120", "t1"))  # above the limit: 20 absorbed from the rest
    assert eng.exposure("a") == (D(80), D(120), D(300))
    eng.on_fill("a", i.client_order_id, fill("1", "120", "t2"))  # 80 left to release, 120 spent
    assert eng.exposure("a") == (D(0), D(240), D(300)) and not eng.breaches
    eng.release("a", i.client_order_id)
    # a fill racing a cancel after the release: booked as spent, the breach is recorded
    eng.on_fill("a", i.client_order_id, fill("1", "100", "t3"))
    assert eng.exposure("a") == (D(0), D(340), D(300))
    assert len(eng.breaches) == 1 and "340" in eng.breaches[0]
    assert eng.check_invariants() == []
    assert not eng.check_and_reserve(intent("BUY", qty="0.1", price="100"), "a", touch=Q).approved


def test_fill_beyond_reserved_qty_is_noted_and_never_negative():
    eng = engine()
    i = intent("BUY", qty="1", price="100")
    eng.check_and_reserve(i, "a", touch=Q)
    eng.on_fill("a", i.client_order_id, fill("2", "100"))
    assert eng.exposure("a")[0] == 0 and eng.reservation("a", i.client_order_id) == 0
    assert "exceeds reserved open qty" in eng.anomalies[0]
    assert eng.check_invariants() == []


# ---------------------------------------------------------------------------
# property: budget never overbooked, reservations never negative
# ---------------------------------------------------------------------------

_px = st.integers(min_value=5000, max_value=15000).map(lambda n: D(n) / 100)
_qty = st.integers(min_value=1, max_value=300).map(lambda n: D(n) / 100)


class BudgetMachine(RuleBasedStateMachine):
    """Random interleavings of reserve / fill / release / state changes over two accounts."""

    def __init__(self) -> None:
        super().__init__()
        self.eng = RiskEngine(
            RiskConfig(min_notional=D(1), max_notional=D(400), budgets={"a": D(1000)}, default_budget=D(600),
                       slippage_bps=D(20), slippage_action="cap")
        )
        self.open: dict[tuple[str, str], dict] = {}
        self.n = 0
        self.fills = 0
        self.beyond_worst = False

    @rule(acc=st.sampled_from(["a", "b"]), side=st.sampled_from(["BUY", "SELL"]), qty=_qty,
          price=st.one_of(st.none(), _px), bid=_px, spread=st.integers(0, 200))
    def reserve(self, acc, side, qty, price, bid, spread):
        self.n += 1
        coid = f"o{self.n}"
        ask = bid + D(spread) / 100
        q = Quote(ts=T0, symbol="BTC/USDT", bid=bid, bid_size=D(1), ask=ask, ask_size=D(1))
        i = OrderIntent(client_order_id=coid, symbol="BTC/USDT", side=side,
                        order_type="MARKET" if price is None else "LIMIT", quantity=qty, limit_price=price)
        before = self.eng.exposure(acc)
        d = self.eng.check_and_reserve(i, acc, touch=q, position_qty=D(0))
        after = self.eng.exposure(acc)
        if d.approved:
            assert d.reserved > 0 and after[0] == before[0] + d.reserved
            worst = d.reserved / qty
            self.open[(acc, coid)] = {"qty": qty, "worst": worst}
        else:
            assert after == before and d.reason.startswith(d.rule + ":")

    @precondition(lambda self: self.open)
    @rule(data=st.data(), frac=st.integers(1, 100), better=st.integers(0, 300))
    def fill(self, data, frac, better):
        key = data.draw(st.sampled_from(sorted(self.open)))
        o = self.open[key]
        qty = max((o["qty"] * frac / 100).quantize(D("0.01")), D("0.01"))
        qty = min(qty, o["qty"])
        price = o["worst"] * (1 - D(better) / 10000)  # at or better than the worst case
        self.fills += 1
        self.eng.on_fill(key[0], key[1], Fill(trade_id=f"f{self.fills}", qty=qty, price=price, ts=T0))
        o["qty"] -= qty
        if o["qty"] == 0:
            del self.open[key]
            self.eng.release(*key)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release(self, data):
        key = data.draw(st.sampled_from(sorted(self.open)))
        del self.open[key]
        self.eng.release(*key)
        assert self.eng.reservation(*key) is None

    @rule(state=st.sampled_from(["halt", "reduce_only", "resume"]))
    def trading_state(self, state):
        getattr(self.eng, state)()

    @invariant()
    def never_overbooked_never_negative(self):
        assert self.eng.check_invariants() == []
        assert not self.eng.breaches and not self.eng.anomalies
        for acc in ("a", "b"):
            reserved, spent, budget = self.eng.exposure(acc)
            assert reserved >= 0 and spent >= 0
            assert reserved + spent <= budget
        assert self.eng.open_reservations() >= len(self.open)


BudgetMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40, **PROPS)
TestBudgetMachine = BudgetMachine.TestCase


# ---------------------------------------------------------------------------
# the hot-path forms are the plain ones
# ---------------------------------------------------------------------------


def test_approved_decisions_are_plain_risk_decisions():
    import pickle

    eng = engine(slippage_bps=D(20), slippage_action="cap")
    for it, touch, adjusted in (
        (intent("BUY", qty="0.5", price=None), Q, None),
        (intent("SELL", qty="2", price="101"), Q, None),
        (intent("BUY", qty="2", price="105"), Q, D("100.2")),
    ):
        d = eng.check_and_reserve(it, "a", touch=touch)
        assert d.adjusted_limit_price == adjusted
        ref = RiskDecision(approved=True, reserved=d.reserved, adjusted_limit_price=d.adjusted_limit_price,
                           notional=d.reserved)
        assert d == ref and repr(d) == repr(ref) and hash(d) == hash(ref) and vars(d) == vars(ref)
        assert d.to_error() is None and pickle.loads(pickle.dumps(d)) == ref
        with pytest.raises(AttributeError):
            d.approved = False  # type: ignore[misc]


@pytest.mark.parametrize("bps", ["0", "20", "12.5", "0.0001", "333.3333", "10000"])
def test_worst_case_prices_use_the_configured_slippage(bps):
    import dataclasses

    cfg = RiskConfig(slippage_bps=D(bps), slippage_action="cap", max_notional=None, min_notional=D(0))
    factor = D(bps) / D(10000)
    eng = RiskEngine(cfg)
    d = eng.check_and_reserve(intent("BUY", qty="1", price=None), "a", touch=Q)
    assert repr(d.reserved) == repr(Q.ask * (1 + factor))
    d = eng.check_and_reserve(intent("BUY", qty="1", price="1000"), "a", touch=Q)
    assert repr(d.adjusted_limit_price) == repr(Q.ask * (1 + factor))
    d = eng.check_and_reserve(intent("SELL", qty="1", price="1"), "a", touch=Q)
    bound = Q.bid * (1 - factor)
    assert repr(d.adjusted_limit_price) == (repr(bound) if D(1) < bound else "None")
    # derived values follow a replaced config and stay out of eq / repr
    other = dataclasses.replace(cfg, slippage_bps=D("50"))
    eng.config = other
    d = eng.check_and_reserve(intent("BUY", qty="1", price=None), "a", touch=Q)
    assert d.reserved == Q.ask * D("1.005")
    assert cfg == RiskConfig(slippage_bps=D(bps), slippage_action="cap", max_notional=None, min_notional=D(0))
    assert "_buy_bound" not in repr(cfg) and [f.name for f in dataclasses.fields(cfg)] == [
        "min_notional", "max_notional", "slippage_bps", "slippage_action", "budgets", "default_budget"]


def test_account_books_are_created_on_first_use_only():
    eng = engine(budgets={"a": D("1000")})
    assert eng.release("a", "nothing") == 0 and eng.accounts() == ()
    eng.on_fill("b", "no-reservation", fill("1", "10"))
    assert eng.accounts() == ("b",) and eng.exposure("b") == (D(0), D(10), None)
    assert eng.anomalies == []


def test_restore_reservation_recreates_what_intake_reserved_and_fills_true_it_up() -> None:
    """Recovery (README.md, Features: reserved until terminal, across restarts): the limit order's full notional
    is reserved again, idempotently; a MARKET order (intake price not journaled) reserves nothing;
    replayed fills release and count as spent exactly as they did live."""
    risk = RiskEngine(RiskConfig(budgets={"a": D("1000")}))
    limit = intent(qty="2", price="100", coid="r-1")
    assert risk.restore_reservation("a", limit) == D("200")
    assert risk.restore_reservation("a", limit) == 0  # idempotent
    assert risk.restore_reservation("a", intent(price=None, coid="m-1")) == 0
    assert risk.exposure("a") == (D("200"), D("0"), D("1000"))
    fill = Fill(trade_id="t-1", qty=D("1"), price=D("99"), fee=D("0"), fee_currency="USDT", liquidity="MAKER",
                ts=datetime(2021, 1, 8, tzinfo=UTC))
    assert risk.on_fill("a", "r-1", fill) == D("100")  # one unit at its worst case released ...
    assert risk.exposure("a") == (D("100"), D("99"), D("1000"))  # ... and its actual notional spent
    assert risk.release("a", "r-1") == D("100")
    assert risk.exposure("a")[0] == 0 and risk.check_invariants() == []
