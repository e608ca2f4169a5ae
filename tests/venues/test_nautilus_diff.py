"""Differential test: our paper fills vs NautilusTrader 1.221's matching engine on real data.

The scenarios of ``benchmarks/nautilus_diff.py`` (markets within and beyond the touch, two
orders on one quote, resting limits that fill and never fill, marketable limits with a
remainder, IOC/FOK on limit and market, trade-through-touch, a 20-order sequence) run on the
recorded BTC/USDT session through NautilusTrader's ``BacktestEngine`` and through our
``PaperVenue`` in both fill models:

- ``fill_model = "nautilus_l1"``: every fill identical (price, qty, time, liquidity) and every
  final status the same;
- the default model: a scenario differs exactly when it names the rules that predict the
  difference, and each named rule's prediction is checked.

Needs ``pip install -e '.[nautilus]'`` (CI installs it) and ``../shared/data``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("nautilus_trader", reason="NautilusTrader not installed: pip install -e '.[nautilus]'")

from benchmarks.nautilus_diff import (
    BEGIN,
    DATA,
    END,
    QUOTES,
    R6,
    R9,
    R10,
    SCENARIOS,
    TICK,
    Outcome,
    Scenario,
    explain,
    last_quotes,
    limit_price,
    load_events,
    markdown,
    run_all,
)
from protocols import Quote, Trade

pytestmark = pytest.mark.skipif(
    not (DATA / QUOTES).exists(), reason=f"real market data not found at {DATA} (../shared/data beside the repo)"
)
DOC = Path(__file__).resolve().parents[2] / "docs" / "FILL_MODEL.md"
WINDOW = timedelta(seconds=2)  # FillModelConfig.depth_window_s default (rule 6)


@pytest.fixture(scope="module")
def events():
    return load_events()


@pytest.fixture(scope="module")
def results(events):
    return run_all(events)


def _orders(s: Scenario, outcome: Outcome, tag: str):
    return [f for f in outcome.fills if f.order == tag]


def test_scenarios_cover_what_the_comparison_must_show(results):
    names = {s.name for s in SCENARIOS}
    assert {"market_within_touch", "market_beyond_touch", "two_orders_one_quote", "resting_limit_fills",
            "resting_limit_never_fills", "marketable_limit_remainder", "ioc_limit", "fok_limit", "ioc_market",
            "fok_market", "trade_through_touch", "sequence_20"} <= names
    assert len(next(s for s in SCENARIOS if s.name == "sequence_20").orders) == 20
    nautilus = [results[s.name]["nautilus"] for s in SCENARIOS]
    assert sum(len(o.fills) for o in nautilus) > 20
    assert {f.liquidity for o in nautilus for f in o.fills} == {"MAKER", "TAKER"}
    assert not results["resting_limit_never_fills"]["nautilus"].fills


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_nautilus_l1_mode_gives_nautilus_fills(results, scenario):
    theirs, ours = results[scenario.name]["nautilus"], results[scenario.name]["nautilus_l1"]
    assert ours.fills == theirs.fills
    assert ours.status == theirs.status


def _evidence_bound(events, at: int, side: str) -> Decimal:
    """The worst price the market showed within the depth window before event ``at`` (rule 6)."""
    t = events[at].ts
    prices = []
    for e in events[: at + 1]:
        if e.ts < t - WINDOW:
            continue
        if isinstance(e, Trade):
            prices.append(e.price)
        else:
            prices.append(e.ask if side == "BUY" else e.bid)
    return max(prices) if side == "BUY" else min(prices)


def _maker_fill_is_backed(events, fill, side: str, limit: Decimal) -> bool:
    """Rules 9/10: a MAKER fill at ``ts`` uses one print at/through the limit, or one crossing
    quote, no larger than it."""
    for e in events:
        if e.ts != fill.ts:
            continue
        if isinstance(e, Trade) and (e.price <= limit if side == "BUY" else e.price >= limit) and fill.qty <= e.qty:
            return True
        if isinstance(e, Quote):
            crossing = e.ask <= limit if side == "BUY" else e.bid >= limit
            if crossing and fill.qty <= (e.ask_size if side == "BUY" else e.bid_size):
                return True
    return False


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_default_mode_differs_only_by_the_named_rules(events, results, scenario):
    res = results[scenario.name]
    theirs, ours = res["nautilus"], res["flowroute"]
    seen: set[str] = set()
    for k in range(1, len(scenario.orders) + 1):
        tag = f"o{k}"
        differs = _orders(scenario, ours, tag) != _orders(scenario, theirs, tag) or (
            ours.status.get(tag) != theirs.status.get(tag)
        )
        rules = explain(events, scenario, k, ours, theirs)
        assert bool(rules) == differs, f"{scenario.name} {tag}: a difference no rule accounts for"
        assert rules <= set(scenario.rules), f"{scenario.name} {tag}: {sorted(rules)} not named by the scenario"
        seen |= rules
    assert seen == set(scenario.rules), f"{scenario.name}: named rules that predict no difference here"
    quotes = last_quotes(events)
    for k, o in enumerate(scenario.orders, 1):
        tag = f"o{k}"
        mine = _orders(scenario, ours, tag)
        limit = limit_price(o, quotes[o.at])
        buy = o.side == "BUY"
        assert sum((f.qty for f in mine), Decimal(0)) <= Decimal(o.qty)
        for f in mine:
            if limit is not None:  # never worse than the limit
                assert f.price <= limit if buy else f.price >= limit
            if f.liquidity == "TAKER":  # rule 6: no price the market did not show
                bound = _evidence_bound(events, o.at, o.side)
                assert f.price <= bound if buy else f.price >= bound, (tag, f, bound)
                assert f.ts == events[o.at].ts
            else:  # rules 9 and 10: capped by the print or quote that filled it
                assert {R9, R10} & set(scenario.rules)
                assert limit is not None and f.price == limit and _maker_fill_is_backed(events, f, o.side, limit)
        if R6 in scenario.rules and o.price is None:
            their = _orders(scenario, theirs, tag)
            if their and mine and k == 1:  # the touch itself is the same in both
                assert mine[0] == their[0]
            # Nautilus puts the rest one tick beyond the touch; we only use levels the market showed
            assert all(f.price == their[0].price + (TICK if buy else -TICK) for f in their[1:])
    if scenario.name == "two_orders_one_quote":  # R4: the second order sees what the first left
        quote = quotes[scenario.orders[0].at]
        first, second = _orders(scenario, ours, "o1"), _orders(scenario, ours, "o2")
        assert second[0].qty == quote.ask_size - first[0].qty and second[0].price == quote.ask
        assert [f.qty for f in _orders(scenario, theirs, "o2")] == [Decimal(scenario.orders[1].qty)]


def test_fill_model_doc_table_is_generated_from_this_run(events, results):
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC} lost its generated-section markers"
    section = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
    assert section == markdown(events, results).strip("\n"), (
        "docs/FILL_MODEL.md is stale: run `python -m benchmarks.nautilus_diff --write docs/FILL_MODEL.md`"
    )
    assert "unexplained" not in section
