"""``OrderEventRow``'s, ``FillRow``'s and ``Completion``'s exact-type fast paths accept only what
their full checks accept unchanged.

The ledger writes ~3 rows per order and the idempotency store one completion; values whose fields
already have the exact normalised types skip the full checks (``actors/journal/sqlite``
``_plain_event_row``, ``_plain_completion``; every claim: ``_plain_claim``). Whatever the input, a value built with the fast
path is the one the full checks build, or both raise the same error.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import actors.journal.sqlite as journal_sqlite
from actors.journal.sqlite import Claim, Completion, FillRow, OrderEventRow
from protocols import Fill, OrderStatus, Side

_opt_text = st.one_of(st.none(), st.text(max_size=3), st.integers(), st.sampled_from([OrderStatus.FILLED]))
_ids = st.one_of(st.text(max_size=3), st.text(min_size=255, max_size=258), st.sampled_from([OrderStatus.FILLED]),
                 st.none(), st.integers())
_args = st.tuples(
    st.one_of(st.integers(min_value=-2, max_value=5), st.booleans(), st.floats(), st.none()),  # seq
    st.one_of(st.floats(), st.integers(min_value=-5, max_value=5), st.booleans(), st.text(max_size=2)),  # ts
    _ids, _ids, _ids, _ids,
    st.one_of(st.text(max_size=4), st.none(), st.integers()),  # cause
    st.one_of(st.none(), st.decimals(), st.integers(min_value=-3, max_value=3), st.floats(), st.text(max_size=3)),  # reserved
    _opt_text, _opt_text,  # route_id, routing_reason
    st.one_of(st.none(), st.decimals(), st.integers(min_value=-3, max_value=3), st.floats(), st.text(max_size=3)),  # arrival_px
    _opt_text,  # venue_order_id
    st.one_of(st.none(), st.integers(min_value=-2, max_value=3), st.booleans(), st.floats(), st.text(max_size=2)),  # attempts
    _opt_text, _opt_text,  # error_code, error_message
    st.one_of(st.none(), st.floats(), st.integers(min_value=-2, max_value=3), st.booleans(), st.text(max_size=2)),  # retry after
)


def _outcome(args: tuple, cls: type = OrderEventRow) -> tuple:
    try:
        row = cls(*args)
    except Exception as exc:  # noqa: BLE001 - the outcome compared is the exception's type and text
        return ("raised", type(exc), str(exc))
    return ("built", tuple((type(getattr(row, f)), repr(getattr(row, f))) for f in row.__slots__))


def _assert_fast_path_is_the_full_checks(cls: type, args: tuple, fast_path: str) -> None:
    """``cls(*args)`` gives the same outcome with the fast path ``fast_path`` (a predicate of
    actors/journal/sqlite.py) as with it always False, i.e. with the full checks only."""
    fast = _outcome(args, cls)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(journal_sqlite, fast_path, lambda value: False)
        full = _outcome(args, cls)
    assert fast == full


@given(_args)
@example((1, 10.5, "acc-1", "c-1", "RESERVED", "SUBMITTING", "sent", None))
@example((1, 10.5, "acc-1", "c-1", "INITIALIZED", "RESERVED", "", Decimal("39.4"), "route_paper", "paper mode",
          Decimal("39433.62"), None, 0, None, None, None))
@example((3, 10.5, "acc-1", "c-1", "SUBMITTING", "REJECTED", "", None, None, None, None, "v-1", 2,
          "E_EXEC_BROKER_REJECTED", "no", 1.5))
@example((3, 10.5, "acc-1", "c-1", "A", "B", "", None, None, None, Decimal("-1"), "v-1", True, None, None, 1))
@example((3, 10.5, "acc-1", "c-1", "A", "B", "", None, None, None, None, None, None, None, None, float("nan")))
@example((1, 10.5, "acc-1", "c-1", "INITIALIZED", "RESERVED", "", Decimal("39.43362")))
@example((1, 10.5, "acc-1", "c-1", "INITIALIZED", "RESERVED", "", Decimal("-1")))
@example((1, 10.5, "acc-1", "c-1", "INITIALIZED", "RESERVED", "", Decimal("NaN")))
@example((1, float("inf"), "acc-1", "c-1", "A", "B", "", None))
@example((True, 1.0, "acc-1", "c-1", "A", "B", "", None))
@example((-1, 1.0, "acc-1", "c-1", "A", "B", "", None))
@example((1, 1.0, "acc-1", "c-1", "A", "B", None, None))
@example((1, 1.0, "acc-1", "c-1", "", "B", "x", None))
@example((1, 1.0, "acc-1", "c-1", "A", "b" * 257, "x", None))
@example((1, 1.0, "acc-1", "", "A", "B", "x", None))
@example((1, 1.0, "", "c-1", "A", "B", "", None))
@example((1, 1.0, "a" * 257, "c-1", "A", "B", "", None))
@example((1, 1, "acc-1", "c-1", OrderStatus.INITIALIZED, OrderStatus.RESERVED, "", 5))
def test_fast_path_builds_what_the_full_checks_build(args: tuple) -> None:
    _assert_fast_path_is_the_full_checks(OrderEventRow, args, "_plain_event_row")


_completion_args = st.tuples(
    _ids, _ids,
    st.one_of(st.sampled_from(["COMPLETED", "UNKNOWN", "IN_PROGRESS", "FILLED", ""]), st.none(), st.integers()),  # status
    st.one_of(st.none(), st.text(max_size=4), st.integers(), st.binary(max_size=2)),  # report_json
    st.one_of(st.floats(), st.integers(min_value=-5, max_value=5), st.booleans(), st.text(max_size=2)),  # now
)


@given(_completion_args)
@example(("acc-1", "c-1", "COMPLETED", "{}", 2.0))
@example(("acc-1", "c-1", "UNKNOWN", None, 2.0))
@example(("acc-1", "c-1", "IN_PROGRESS", None, 2.0))
@example(("acc-1", "c-1", "COMPLETED", None, float("nan")))
@example(("acc-1", "c-1", "COMPLETED", None, 2))
@example(("acc-1", "c-1", "COMPLETED", 5, 2.0))
@example(("", "c-1", "COMPLETED", None, 2.0))
@example(("acc-1", "c" * 257, "COMPLETED", None, 2.0))
def test_completion_fast_path_builds_what_the_full_checks_build(args: tuple) -> None:
    _assert_fast_path_is_the_full_checks(Completion, args, "_plain_completion")


_text_or_not = st.one_of(st.text(max_size=3), st.none(), st.integers(), st.binary(max_size=2),
                         st.sampled_from([OrderStatus.FILLED]))
_claim_args = st.tuples(
    _ids, _ids, _ids,  # account_id, client_order_id, fingerprint
    _text_or_not, _text_or_not, _text_or_not,  # intent_json, context_json, adapter_id
    st.one_of(st.floats(), st.integers(min_value=-5, max_value=5), st.booleans(), st.text(max_size=2), st.none()),  # now
)


@given(_claim_args)
@example(("acc-1", "c-1", "f" * 64, "", "", "paper", 2.0))
@example(("acc-1", "c-1", "f" * 64, "{}", "{}", "", 2.0))
@example(("acc-1", "c-1", "f" * 64, "", "", "paper", 2))
@example(("acc-1", "c-1", "f" * 64, "", "", "paper", True))
@example(("acc-1", "c-1", "f" * 64, "", "", "paper", float("inf")))
@example(("acc-1", "c-1", "f" * 64, "", "", "paper", float("nan")))
@example(("acc-1", "c-1", "", "", "", "paper", 2.0))
@example(("acc-1", "c" * 257, "f", "", "", "paper", 2.0))
@example(("", "c-1", "f", "", "", "paper", 2.0))
@example(("acc-1", "c-1", "f", None, "", "paper", 2.0))
@example(("acc-1", "c-1", "f", "", "", OrderStatus.FILLED, 2.0))
@example((OrderStatus.FILLED, "c-1", "f", "", "", "paper", 2.0))
def test_claim_fast_path_builds_what_the_full_checks_build(args: tuple) -> None:
    _assert_fast_path_is_the_full_checks(Claim, args, "_plain_claim")


class _SubFill(Fill):
    pass


_FILL = Fill(trade_id="t-1", qty="0.001", price="39433.62", fee="0.01", fee_currency="USDT")
_fill_row_args = st.tuples(
    _ids, _ids, _ids, _ids,
    st.sampled_from([Side.BUY, Side.SELL, "BUY", "SELL", "HOLD", None]),
    st.sampled_from([_FILL, _SubFill.model_validate(_FILL.model_dump()), {"trade_id": "t"}, None]),
)


@given(_fill_row_args)
@example(("paper", "acc-1", "c-1", "BTC/USDT", Side.BUY, _FILL))
@example(("paper", "acc-1", "c-1", "BTC/USDT", "SELL", _FILL))
@example(("paper", "acc-1", "c-1", "", Side.BUY, _FILL))
@example(("paper", "acc-1", "c-1", "s" * 257, Side.BUY, _FILL))
@example(("", "acc-1", "c-1", "BTC/USDT", Side.BUY, _FILL))
@example(("paper", "", "c-1", "BTC/USDT", Side.BUY, _FILL))
@example(("paper", "acc-1", "", "BTC/USDT", Side.BUY, _FILL))
@example(("paper", "acc-1", "c-1", "BTC/USDT", Side.BUY, {"trade_id": "t"}))
def test_fill_row_fast_path_builds_what_the_full_checks_build(args: tuple) -> None:
    _assert_fast_path_is_the_full_checks(FillRow, args, "_plain_id")
