"""Contracts (README.md, Using it): intent validation, the error table, frozen values, fingerprints, ids, JSON."""

from __future__ import annotations

import re
import sqlite3
import threading
from decimal import Decimal
from types import MappingProxyType

import pytest
from conftest import ctx, limit, quote
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocols import (
    CLIENT_ORDER_ID_PATTERN,
    ERROR_TABLE,
    ErrorCategory,
    ErrorCode,
    ExecError,
    ExecutionContext,
    ExecutionReport,
    Fill,
    OrderIntent,
    OrderStatus,
    RouteDecision,
    new_client_order_id,
)

BASE = dict(client_order_id="c-1", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
            quantity=Decimal("0.01"), limit_price=Decimal("39400.00"))


def intent(**changes) -> OrderIntent:
    data = dict(BASE)
    data.update(changes)
    return OrderIntent(**data)


def error_fields(exc: ValidationError) -> set[str]:
    """The top-level field names the validation errors point at."""
    return {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}


# --------------------------------------------------------------------------- OrderIntent


@pytest.mark.parametrize("qty", [Decimal("-1"), Decimal("0"), Decimal("-0.0001"), Decimal("NaN"), Decimal("Infinity"),
                                 float("nan"), float("inf"), -1, 0, "-5", "abc", None])
def test_bad_quantity_is_refused_naming_quantity(qty) -> None:
    with pytest.raises(ValidationError) as info:
        intent(quantity=qty)
    assert error_fields(info.value) == {"quantity"}
    assert "quantity" in str(info.value)


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_a_quantity(value) -> None:
    with pytest.raises(ValidationError) as info:
        intent(quantity=value)
    assert error_fields(info.value) == {"quantity"}
    assert "bool" in str(info.value)


def test_float_quantity_keeps_its_decimal_repr() -> None:
    i = intent(quantity=0.1, limit_price=39400.1)
    assert i.quantity == Decimal("0.1")
    assert str(i.quantity) == "0.1"  # not 0.1000000000000000055511151231257827...
    assert isinstance(i.quantity, Decimal)
    assert i.limit_price == Decimal("39400.1")


def test_int_and_str_quantities_become_decimal() -> None:
    assert intent(quantity=3).quantity == Decimal(3)
    assert intent(quantity="0.00100").quantity == Decimal("0.00100")


def test_limit_without_price_is_refused_naming_limit_price() -> None:
    with pytest.raises(ValidationError) as info:
        intent(limit_price=None)
    assert "limit_price is required for a LIMIT order" in str(info.value)


def test_market_with_price_is_refused_naming_limit_price() -> None:
    with pytest.raises(ValidationError) as info:
        intent(order_type="MARKET", limit_price=Decimal("1"))
    assert "limit_price is forbidden for a MARKET order" in str(info.value)


def test_market_without_price_is_fine() -> None:
    i = intent(order_type="MARKET", limit_price=None)
    assert i.limit_price is None and i.order_type.value == "MARKET"


@pytest.mark.parametrize("price", [Decimal("0"), Decimal("-1"), Decimal("NaN"), True])
def test_bad_limit_price_is_refused_naming_it(price) -> None:
    with pytest.raises(ValidationError) as info:
        intent(limit_price=price)
    assert error_fields(info.value) == {"limit_price"}


@pytest.mark.parametrize("cl", ["", "a b", "a#b", "ordre-é", "a\nb", "x" * 37, "semi;colon", "quote'", "a\x00b"])
def test_bad_client_order_id_is_refused_naming_it(cl: str) -> None:
    with pytest.raises(ValidationError) as info:
        intent(client_order_id=cl)
    assert error_fields(info.value) == {"client_order_id"}


@pytest.mark.parametrize("cl", ["x" * 36, "a", "A.b_c:d/e-f", "0123456789"])
def test_good_client_order_ids_pass(cl: str) -> None:
    assert intent(client_order_id=cl).client_order_id == cl


@pytest.mark.parametrize("symbol", ["BTCUSDT", "btc/usdt", "BTC-USDT", "BTC/", "/USDT", "BTC/USDT/X", "", "B TC/USDT",
                                    "A" * 16 + "/USDT"])
def test_bad_symbol_format_is_refused_naming_symbol(symbol: str) -> None:
    with pytest.raises(ValidationError) as info:
        intent(symbol=symbol)
    assert error_fields(info.value) == {"symbol"}


@pytest.mark.parametrize("field,value", [
    ("strategy_id", "s" * 65),
    ("client_order_id", "c" * 10_000),
    ("side", "HOLD"),
    ("order_type", "STOP"),
    ("time_in_force", "GTX"),
    ("metadata", {"k": [1, 2]}),
    ("metadata", "not a mapping"),
])
def test_other_bad_fields_are_named(field: str, value) -> None:
    with pytest.raises(ValidationError) as info:
        intent(**{field: value})
    assert field in error_fields(info.value)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        intent(leverage=10)
    assert "leverage" in error_fields(info.value)


@pytest.mark.parametrize("field,value", [("account_id", "a" * 65), ("account_id", ""), ("account_id", "a b"),
                                         ("mode", ""), ("mode", "m" * 33), ("session_id", "s" * 65)])
def test_context_bad_fields_are_named(field: str, value: str) -> None:
    data = {"mode": "paper", "account_id": "acc-1", field: value}
    with pytest.raises(ValidationError) as info:
        ExecutionContext(**data)
    assert error_fields(info.value) == {field}


def test_context_mode_is_normalised_and_unknown_modes_pass_validation() -> None:
    assert ExecutionContext(mode="  PAPER ", account_id="a").mode == "paper"
    # an unknown mode is not a validation error: the router denies it (never a silent fallback)
    assert ExecutionContext(mode="moon", account_id="a").mode == "moon"


def test_naive_timestamp_is_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValidationError) as info:
        ExecutionContext(mode="paper", account_id="a", timestamp=datetime(2021, 1, 8))
    assert error_fields(info.value) == {"timestamp"}


# --------------------------------------------------------------------------- frozen values


def test_frozen_models_refuse_mutation() -> None:
    i = intent()
    with pytest.raises(ValidationError):
        i.quantity = Decimal("5")  # type: ignore[misc]
    c = ExecutionContext(mode="paper", account_id="a")
    with pytest.raises(ValidationError):
        c.mode = "live"  # type: ignore[misc]
    f = Fill(trade_id="t1", qty=Decimal("1"), price=Decimal("2"))
    with pytest.raises(ValidationError):
        f.qty = Decimal("3")  # type: ignore[misc]
    r = ExecutionReport(client_order_id="c", status=OrderStatus.FILLED)
    with pytest.raises(ValidationError):
        r.status = OrderStatus.CANCELED  # type: ignore[misc]
    d = RouteDecision(route_id="route_paper", adapter_id="paper", routing_reason="paper mode")
    with pytest.raises(ValidationError):
        d.adapter_id = "live"  # type: ignore[misc]
    e = ExecError.of(ErrorCode.E_EXEC_NETWORK, "x")
    with pytest.raises(ValidationError):
        e.retryable = False  # type: ignore[misc]
    assert i.quantity == Decimal("0.01") and r.status is OrderStatus.FILLED and e.retryable is True


def test_metadata_is_an_immutable_private_copy() -> None:
    source = {"signal": "ema-cross", "score": 3}
    i = intent(metadata=source)
    source["signal"] = "changed"
    source["new"] = 1
    assert dict(i.metadata) == {"signal": "ema-cross", "score": 3}
    assert isinstance(i.metadata, MappingProxyType)
    with pytest.raises(TypeError):
        i.metadata["signal"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        del i.metadata["score"]  # type: ignore[attr-defined]
    # JSON still works
    assert '"signal":"ema-cross"' in i.model_dump_json()


# --------------------------------------------------------------------------- errors


# the README.md, Using it table, copied by hand: code -> (category, retryable)
SPEC_TABLE = {
    "E_EXEC_VALIDATION": ("validation_error", False),
    "E_EXEC_POLICY_BLOCKED": ("policy_error", False),
    "E_EXEC_ROUTE_CONFIG_INVALID": ("policy_error", False),
    "E_EXEC_NO_ADAPTER": ("unavailable", True),
    "E_EXEC_CIRCUIT_OPEN": ("unavailable", True),
    "E_EXEC_THROTTLED": ("unavailable", True),
    "E_EXEC_RISK_DENIED": ("risk_error", False),
    "E_EXEC_IDEMPOTENCY_CONFLICT": ("conflict", False),
    "E_EXEC_DUPLICATE_IN_FLIGHT": ("conflict", True),
    "E_EXEC_BROKER_REJECTED": ("rejected_by_exchange", False),
    "E_EXEC_NETWORK": ("network_error", True),
    "E_EXEC_BROKER_TIMEOUT": ("timeout_error", False),
    "E_EXEC_RETRY_EXHAUSTED": ("network_error", False),
    "E_EXEC_ADAPTER_CRASHED": ("unknown_error", False),
    "E_EXEC_PERSISTENCE": ("unknown_error", True),
    "E_EXEC_INTERNAL": ("unknown_error", False),
}


def test_error_table_has_all_16_codes_with_one_category_each() -> None:
    assert len(ErrorCode) == 16
    assert set(ERROR_TABLE) == set(ErrorCode)
    assert {c.value for c in ErrorCode} == set(SPEC_TABLE)
    for code, spec in ERROR_TABLE.items():
        assert isinstance(spec.category, ErrorCategory)
        assert (spec.category.value, spec.retryable) == SPEC_TABLE[code.value], code
        assert spec.meaning


@pytest.mark.parametrize("code", list(ErrorCode))
def test_exec_error_of_uses_the_table(code: ErrorCode) -> None:
    err = ExecError.of(code, "something happened", retry_after_s=1.5)
    assert err.code is code
    assert err.category is ERROR_TABLE[code].category
    assert err.retryable is ERROR_TABLE[code].retryable
    assert err.message == "something happened"
    assert err.retry_after_s == 1.5


def test_exec_error_message_is_bounded() -> None:
    err = ExecError.of(ErrorCode.E_EXEC_INTERNAL, "x" * 5000)
    assert len(err.message) == 2000
    assert ExecError.of(ErrorCode.E_EXEC_THROTTLED, "t").retry_after_s is None


# --------------------------------------------------------------------------- fingerprints


def test_fingerprint_normalises_decimal_scale() -> None:
    a = intent(quantity=Decimal("1.0"), limit_price=Decimal("100"))
    b = intent(quantity=Decimal("1.00"), limit_price=Decimal("100.000"))
    c = intent(quantity=1, limit_price=Decimal("1E2"))
    assert a.fingerprint() == b.fingerprint() == c.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint())


@pytest.mark.parametrize("change", [
    {"side": "SELL"},
    {"quantity": Decimal("1.01")},
    {"limit_price": Decimal("100.01")},
    {"time_in_force": "IOC"},
    {"symbol": "XRP/ETH"},
    {"order_type": "MARKET", "limit_price": None},
])
def test_fingerprint_differs_on_economic_fields(change) -> None:
    base = intent(quantity=Decimal("1"), limit_price=Decimal("100"))
    other = intent(**{"quantity": Decimal("1"), "limit_price": Decimal("100"), **change})
    assert base.fingerprint() != other.fingerprint()


def test_fingerprint_ignores_non_economic_fields() -> None:
    base = intent()
    assert base.fingerprint() == intent(client_order_id="other", strategy_id="s9", metadata={"a": 1}).fingerprint()


# --------------------------------------------------------------------------- client order ids


def test_new_client_order_id_is_unique_and_matches_the_pattern() -> None:
    ids = [new_client_order_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    pattern = re.compile(CLIENT_ORDER_ID_PATTERN)
    assert all(pattern.fullmatch(i) for i in ids)
    assert all(i.startswith("fr-") for i in ids)
    # usable as an intent id
    assert intent(client_order_id=ids[-1]).client_order_id == ids[-1]


def test_new_client_order_id_is_unique_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(8)]

    def work(k: int) -> None:
        out[k] = [new_client_order_id("thr") for _ in range(1000)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for chunk in out for i in chunk]
    assert len(flat) == 8000 and len(set(flat)) == 8000


@pytest.mark.parametrize("prefix", ["", "with-dash", "toolongprefix", "a b"])
def test_new_client_order_id_refuses_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_client_order_id(prefix)


def test_longest_prefix_still_fits_36_chars() -> None:
    assert len(new_client_order_id("abcdefgh")) <= 36


# --------------------------------------------------------------------------- JSON


def test_execution_report_json_round_trip_keeps_decimals_exact() -> None:
    fills = (
        Fill(trade_id="p-1", qty=Decimal("0.123456789012345678"), price=Decimal("39433.62"),
             fee=Decimal("0.00000001"), fee_currency="USDT", liquidity="MAKER", ts="2021-01-08T00:00:01.076Z"),
        Fill(trade_id="p-2", qty=Decimal("1E-8"), price=Decimal("39433.630000000"), fee=Decimal("0"),
             fee_currency="USDT", ts="2021-01-08T00:00:02Z"),
    )
    report = ExecutionReport(
        client_order_id="c-1", account_id="acc-1", symbol="BTC/USDT", side="BUY", venue_order_id="paper-o1",
        status=OrderStatus.PARTIALLY_FILLED,
        route=RouteDecision(route_id="route_paper", adapter_id="paper", routing_reason="paper mode"),
        fills=fills, cum_qty=Decimal("0.123456799012345678"), leaves_qty=Decimal("0.876543200987654322"),
        avg_px=Decimal("39433.620000000000000000001"), fees=Decimal("0.00000001"), slippage_bps=Decimal("-0.25"),
        error=ExecError.of(ErrorCode.E_EXEC_THROTTLED, "slow down", retry_after_s=12.5), attempts=2, latency_us=1234,
    )
    text = report.model_dump_json()
    back = ExecutionReport.model_validate_json(text)
    assert back == report
    assert back.avg_px == Decimal("39433.620000000000000000001") and isinstance(back.avg_px, Decimal)
    assert str(back.fills[1].price) == "39433.630000000"  # scale kept, not just value
    assert back.fills[1].qty == Decimal("1E-8")
    assert '"cum_qty":"0.123456799012345678"' in text  # a JSON string, never a float
    assert '"qty":"0.00000001"' in text
    assert back.error.code is ErrorCode.E_EXEC_THROTTLED and back.error.retry_after_s == 12.5


# --------------------------------------------------------------------------- runtime: bad input


BAD_INTENTS = [
    ({"quantity": "-1"}, "intent.quantity"),
    ({"quantity": "NaN"}, "intent.quantity"),
    ({"quantity": True}, "intent.quantity"),
    ({"limit_price": None}, "limit_price is required"),
    ({"client_order_id": "x" * 37}, "intent.client_order_id"),
    ({"symbol": "BTCUSDT"}, "intent.symbol"),
    ({"strategy_id": "s" * 1000}, "intent.strategy_id"),
]


def test_runtime_turns_bad_input_into_validation_reports_and_keeps_working(make_runtime) -> None:
    rt = make_runtime(durable=True)
    for change, needle in BAD_INTENTS:
        data = {**BASE, "client_order_id": "bad-1", **change}
        report = rt.submit(data, {"mode": "paper", "account_id": "acc-1"}).result(timeout=5)
        assert report.status is OrderStatus.DENIED, change
        assert report.error.code is ErrorCode.E_EXEC_VALIDATION
        assert needle in report.error.message, (change, report.error.message)
    bad_ctx = rt.submit(dict(BASE, client_order_id="bad-ctx"), {"mode": "paper", "account_id": "a" * 65}).result(timeout=5)
    assert bad_ctx.error.code is ErrorCode.E_EXEC_VALIDATION and "context.account_id" in bad_ctx.error.message
    not_a_mapping = rt.submit(42, ctx()).result(timeout=5)  # type: ignore[arg-type]
    assert not_a_mapping.error.code is ErrorCode.E_EXEC_VALIDATION
    # the runtime still works, and nothing was journaled or sent for the bad intents
    rt.on_market(quote())
    good = rt.submit(limit("good-1"), ctx()).result(timeout=5)
    assert good.status is OrderStatus.FILLED
    rt.flush()
    assert rt.venue("paper").submission_counts() == {"good-1": 1}
    with sqlite3.connect(rt.journal_path) as conn:
        ids = {row[0] for row in conn.execute("SELECT client_order_id FROM idempotency")}
    assert ids == {"good-1"}
    assert rt.order("bad-1") is None and rt.order("bad-ctx") is None
    assert rt.stats()["errors_by_code"]["E_EXEC_VALIDATION"] == len(BAD_INTENTS) + 2


def test_well_formed_but_unlisted_symbol_never_fills(make_runtime) -> None:
    """A symbol of the right shape that the venue does not list is refused by name, never filled."""
    rt = make_runtime()
    report = rt.submit(limit("unlisted-1", symbol="FOO/BAR", price="1.00", qty="10"), ctx()).result(timeout=5)
    assert report.status in (OrderStatus.DENIED, OrderStatus.REJECTED)
    assert report.error is not None and "symbol" in report.error.message.lower()
    assert report.cum_qty == 0 and report.fills == ()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_client_order_id_validation_matches_the_pattern(text: str) -> None:
    ok = re.fullmatch(CLIENT_ORDER_ID_PATTERN, text) is not None
    try:
        intent(client_order_id=text)
        accepted = True
    except ValidationError as exc:
        accepted = False
        assert error_fields(exc) == {"client_order_id"}
    assert accepted == ok


@settings(max_examples=200)
@given(
    order_type=st.sampled_from(["MARKET", "LIMIT"]),
    side=st.sampled_from(["BUY", "SELL"]),
    tif=st.sampled_from(["GTC", "IOC", "FOK", "DAY"]),
    qty=st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000"), places=8),
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
)
def test_venue_order_from_intent_is_what_validation_builds(order_type, side, tif, qty, price) -> None:
    """VenueOrder.from_intent skips re-validation (construct_valid): the result must be the very
    instance the validating constructor builds (fields, order, fields set, JSON, equality)."""
    from protocols import ExecutionContext, OrderIntent, VenueOrder

    intent = OrderIntent(client_order_id="c-1", symbol="BTC/USDT", side=side, order_type=order_type, quantity=qty,
                         limit_price=price if order_type == "LIMIT" else None, time_in_force=tif)
    context = ExecutionContext(mode="paper", account_id="acct-1")
    fast = VenueOrder.from_intent(intent, context)
    slow = VenueOrder(client_order_id=intent.client_order_id, account_id=context.account_id, symbol=intent.symbol,
                      side=intent.side, order_type=intent.order_type, quantity=intent.quantity,
                      limit_price=intent.limit_price, time_in_force=intent.time_in_force, ts=context.timestamp)
    assert list(fast.__dict__.items()) == list(slow.__dict__.items())
    assert fast.model_fields_set == slow.model_fields_set
    assert fast == slow and hash(fast) == hash(slow)
    assert fast.model_dump_json() == slow.model_dump_json()
