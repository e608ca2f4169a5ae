"""Market-data files: one bad timestamp costs one row (never the rest of the file), rows within
a tolerance are put back in order, problems group by cause, a directory is a clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import Quote
from protocols.market.readers import ErrorCollector, group_problems, read_market, read_quotes

BQ_HEADER = "ts_utc,symbol,bid,bid_size,ask,ask_size"
BT_HEADER = "ts_utc,trade_id,price,qty,aggressor_side,buyer_maker"
T0 = datetime(2021, 1, 8, tzinfo=UTC)


def quote_row(seconds: float, size: int) -> str:
    ts = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return f"{ts},BTC/USDT,100,{size},101,{size}"


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def market(tmp_path: Path, seconds: list[float], **kw) -> tuple[list[Quote], ErrorCollector]:
    """Quotes at ``seconds`` (sizes 1, 2, … mark file order) and no trades, merged."""
    quotes = write(tmp_path, "q.csv", [BQ_HEADER] + [quote_row(s, i + 1) for i, s in enumerate(seconds)])
    trades = write(tmp_path, "t.csv", [BT_HEADER])
    errors = ErrorCollector()
    events = list(read_market(quotes, trades, on_error=errors, **kw))
    return events, errors


def sizes(events: list[Quote]) -> list[int]:
    return [int(e.bid_size) for e in events]


def test_one_timestamp_jumping_forward_costs_that_row_only(tmp_path: Path) -> None:
    # the case: one wrong timestamp early in a 451-row file used to drop 402 rows
    seconds = [float(i) for i in range(451)]
    seconds[48] = 10_000.0  # a wrong date, far ahead
    events, errors = market(tmp_path, seconds)
    assert len(events) == 450
    assert 49 not in sizes(events)
    (err,) = errors.errors
    assert (err.line, err.column) == (50, "ts_utc") and "jumps forward" in err.message


def test_one_timestamp_going_backwards_costs_that_row_only(tmp_path: Path) -> None:
    events, errors = market(tmp_path, [0, 1, 2, 3, 0.5, 4, 5])
    assert sizes(events) == [1, 2, 3, 4, 6, 7]
    (err,) = errors.errors
    assert err.line == 6 and "goes backwards" in err.message


def test_a_wrong_first_row_does_not_drop_the_file(tmp_path: Path) -> None:
    events, errors = market(tmp_path, [99, 1, 2, 3])
    assert sizes(events) == [2, 3, 4]
    assert [e.line for e in errors] == [2]


def test_rows_within_the_tolerance_are_put_back_in_order(tmp_path: Path) -> None:
    seconds = [0, 1, 2.5, 2.0, 3, 4.9, 4.5, 6]
    events, errors = market(tmp_path, seconds, reorder_tolerance=timedelta(seconds=1))
    assert len(errors) == 0 and len(events) == len(seconds)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    # beyond the tolerance the rule skips the row instead
    events, errors = market(tmp_path, seconds, reorder_tolerance=timedelta(seconds=0.1))
    assert len(events) == len(seconds) - 2 and len(errors) == 2


@settings(max_examples=80, deadline=None)
@given(n=st.integers(min_value=1, max_value=40), data=st.data())
def test_any_single_wrong_timestamp_costs_at_most_one_row(tmp_path_factory, n: int, data) -> None:  # type: ignore[no-untyped-def]
    seconds = [float(i) for i in range(n)]
    k = data.draw(st.integers(min_value=0, max_value=n - 1))
    seconds[k] = data.draw(st.floats(min_value=-1000, max_value=1000, allow_nan=False))
    events, errors = market(tmp_path_factory.mktemp("q"), seconds)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert len(events) + len(errors) == n and len(errors) <= 1


def test_problems_group_by_cause_with_counts_and_first_lines(tmp_path: Path) -> None:
    lines = [BQ_HEADER]
    for i in range(20):
        lines.append(quote_row(i, 1) if i % 3 else f"{quote_row(i, 1).split(',')[0]},BTC/USDT,abc{i},1,101,1")
    lines.append("2021-01-08T00:01:00Z,BTC/USDT,100")
    lines.append("2021-01-08T00:01:01Z,BTC/USDT,100")
    path = write(tmp_path, "q.csv", lines)
    errors = ErrorCollector()
    assert len(list(read_quotes(path, on_error=errors))) == 13
    groups = errors.groups()
    assert [(g.cause, g.count) for g in groups] == [
        ("column 'bid' is not a decimal", 7),
        ("expected 6 columns (ts_utc,symbol,bid,bid_size,ask,ask_size), got 3", 2),
    ]
    assert groups[0].first_lines == (2, 5, 8, 11, 14)
    assert str(groups[0]) == "q.csv: 7 row(s): column 'bid' is not a decimal (lines 2, 5, 8, 11, 14, …)"
    assert group_problems(errors.errors, first=2)[1].first_lines == (22, 23)


def test_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory, not a market data file"):
        read_quotes(tmp_path)
