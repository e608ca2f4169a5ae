"""Tests for protocols.market.readers: malformed rows are reported with line and column, reading
continues; the real files in ../shared/data read cleanly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from protocols import Quote, Side, Trade
from protocols.market.readers import ErrorCollector, RowError, read_market, read_quotes, read_trades

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(
    not (DATA / "binance_btcusdt_quotes_20210108.csv").exists(),
    reason=f"real market data not found at {DATA} (../shared/data beside the project root)",
)

BQ_HEADER = "ts_utc,symbol,bid,bid_size,ask,ask_size"
BT_HEADER = "ts_utc,trade_id,price,qty,aggressor_side,buyer_maker"
XRP_HEADER = "ts_utc,trade_id,taker_side,price,qty,cost"


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def only(errors: ErrorCollector) -> RowError:
    assert len(errors) == 1, errors.errors
    return errors.errors[0]


# ---------------------------------------------------------------- malformed rows


def test_bad_decimal_reported_with_line_and_column_and_reading_continues(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "q.csv",
        BQ_HEADER,
        "2021-01-08T00:00:01.000000Z,BTC/USDT,100,1,101,1",
        "2021-01-08T00:00:02.000000Z,BTC/USDT,abc,1,101,1",
        "2021-01-08T00:00:03.000000Z,BTC/USDT,100.5,1,101,2",
    )
    errors = ErrorCollector()
    quotes = list(read_quotes(path, on_error=errors))
    assert [q.bid for q in quotes] == [Decimal("100"), Decimal("100.5")]
    err = only(errors)
    assert (err.line, err.column, err.value) == (3, "bid", "abc")
    assert str(err) == "q.csv:3: column 'bid': 'abc' is not a decimal"


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("2021-01-08T00:00:02Z,BTC/USDT,0,1,101,1", "bid", "greater than 0"),
        ("2021-01-08T00:00:02Z,BTC/USDT,-5,1,101,1", "bid", "greater than 0"),
        ("2021-01-08T00:00:02Z,BTC/USDT,100,-1,101,1", "bid_size", "negative"),
        ("2021-01-08T00:00:02Z,BTC/USDT,100,1,101,-0.5", "ask_size", "negative"),
        ("2021-01-08T00:00:02Z,BTC/USDT,100,1,NaN,1", "ask", "finite"),
        ("2021-01-08T00:00:02Z,BTC/USDT,100,1,Infinity,1", "ask", "finite"),
        ("2021-01-08T00:00:02Z,BTC/USDT,1_00,1,101,1", "bid", "not a decimal"),
        ("yesterday,BTC/USDT,100,1,101,1", "ts_utc", "ISO-8601"),
        ("2021-01-08T00:00:02,BTC/USDT,100,1,101,1", "ts_utc", "UTC offset"),
        ("2021-01-08T00:00:02Z,,100,1,101,1", "symbol", "empty"),
    ],
)
def test_each_bad_cell_names_its_column(tmp_path: Path, row: str, column: str, fragment: str) -> None:
    path = write(tmp_path, "q.csv", BQ_HEADER, row, "2021-01-08T00:00:03Z,BTC/USDT,100,1,101,1")
    errors = ErrorCollector()
    quotes = list(read_quotes(path, on_error=errors))
    assert len(quotes) == 1
    err = only(errors)
    assert err.line == 2
    assert err.column == column
    assert fragment in err.message


def test_wrong_column_count_is_a_row_shape_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "q.csv",
        BQ_HEADER,
        "2021-01-08T00:00:01Z,BTC/USDT,100,1,101",
        "2021-01-08T00:00:02Z,BTC/USDT,100,1,101,1,extra",
        "2021-01-08T00:00:03Z,BTC/USDT,100,1,101,1",
    )
    errors = ErrorCollector()
    assert len(list(read_quotes(path, on_error=errors))) == 1
    assert [(e.line, e.column) for e in errors] == [(2, ""), (3, "")]
    assert "expected 6 columns" in errors.errors[0].message and "got 5" in errors.errors[0].message
    assert "got 7" in errors.errors[1].message
    assert str(errors.errors[0]).startswith("q.csv:2: expected 6 columns")


def test_line_numbers_are_physical_lines_with_blank_lines_and_multiline_cells(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.csv",
        BT_HEADER,
        "",
        '2021-01-08T00:00:00Z,"1\n2",100,1,BUY,False',  # lines 3-4: a quoted cell spanning 2 lines
        "2021-01-08T00:00:01Z,3,oops,1,BUY,False",  # line 5
    )
    errors = ErrorCollector()
    trades = list(read_trades(path, on_error=errors))
    assert [t.trade_id for t in trades] == ["1\n2"]
    err = only(errors)
    assert (err.line, err.column) == (5, "price")


def test_crossed_and_locked_quotes_are_not_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fx.csv",
        "ts_utc,bid,ask",
        "2014-05-01T05:00:01Z,1.38730,1.38729",
        "2014-05-01T05:00:02Z,1.38729,1.38729",
    )
    errors = ErrorCollector()
    crossed, locked = read_quotes(path, on_error=errors)
    assert len(errors) == 0
    assert crossed.is_crossed and not crossed.is_locked
    assert locked.is_locked
    assert crossed.symbol == "EUR/USD" and crossed.bid_size == 0 and crossed.ask_size == 0


def test_tick_file_symbol_override(tmp_path: Path) -> None:
    path = write(tmp_path, "fx.csv", "ts_utc,bid,ask", "2014-05-01T05:00:01Z,1.1,1.2")
    (quote,) = read_quotes(path, symbol="GBP/USD")
    assert quote.symbol == "GBP/USD"


def test_symbol_cell_must_match_requested_symbol(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "q.csv",
        BQ_HEADER,
        "2021-01-08T00:00:01Z,ETH/USDT,100,1,101,1",
        "2021-01-08T00:00:02Z,BTC/USDT,100,1,101,1",
    )
    errors = ErrorCollector()
    quotes = list(read_quotes(path, symbol="BTC/USDT", on_error=errors))
    assert [q.symbol for q in quotes] == ["BTC/USDT"]
    assert (only(errors).line, only(errors).column) == (2, "symbol")


def test_binance_trades_parse_and_check_buyer_maker(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.csv",
        BT_HEADER,
        "2021-01-08T00:00:00.278000Z,553287559,39432.48,0.000263,SELL,True",
        "2021-01-08T00:00:00.310000Z,553287560,39439.44,0.004376,BUY,True",
        "2021-01-08T00:00:00.311000Z,553287561,39439.44,0,BUY,False",
        "2021-01-08T00:00:00.312000Z,553287562,39439.44,1,HOLD,False",
        "2021-01-08T00:00:00.313000Z,553287563,39439.44,1,BUY,maybe",
        "2021-01-08T00:00:00.314000Z,553287564,39439.45,0.5,buy,false",
    )
    errors = ErrorCollector()
    trades = list(read_trades(path, on_error=errors))
    assert trades == [
        Trade(
            ts=datetime(2021, 1, 8, 0, 0, 0, 278000, tzinfo=UTC),
            symbol="BTC/USDT",
            trade_id="553287559",
            price=Decimal("39432.48"),
            qty=Decimal("0.000263"),
            aggressor_side=Side.SELL,
        ),
        Trade(
            ts=datetime(2021, 1, 8, 0, 0, 0, 314000, tzinfo=UTC),
            symbol="BTC/USDT",
            trade_id="553287564",
            price=Decimal("39439.45"),
            qty=Decimal("0.5"),
            aggressor_side=Side.BUY,
        ),
    ]
    assert [(e.line, e.column) for e in errors] == [
        (3, "buyer_maker"),
        (4, "qty"),
        (5, "aggressor_side"),
        (6, "buyer_maker"),
    ]


def test_xrp_trades_format(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.csv",
        XRP_HEADER,
        "2019-10-11T00:00:11.620000Z,13519807,sell,0.00141342,23,0.03250866",
        "2019-10-11T00:00:11.620000Z,13519808,sell,0.00141266,54,-1",
    )
    errors = ErrorCollector()
    (trade,) = read_trades(path, on_error=errors)
    assert trade.symbol == "XRP/ETH" and trade.aggressor_side is Side.SELL
    assert trade.price == Decimal("0.00141342") and isinstance(trade.qty, Decimal)
    assert (only(errors).line, only(errors).column) == (3, "cost")


def test_unknown_header_raises_naming_expected_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", "time,price", "2021-01-08T00:00:00Z,1")
    with pytest.raises(ValueError) as info:
        read_quotes(path)
    assert BQ_HEADER in str(info.value) and "ts_utc,bid,ask" in str(info.value)
    assert "time,price" in str(info.value)
    with pytest.raises(ValueError, match="ts_utc,trade_id,taker_side,price,qty,cost"):
        read_trades(path)
    # a quotes file is not a trades file
    quotes = write(tmp_path, "q.csv", BQ_HEADER)
    with pytest.raises(ValueError, match="aggressor_side"):
        read_trades(quotes)


def test_empty_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ValueError, match="empty file"):
        read_quotes(path)


def test_missing_file_raises_at_call_time(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_quotes(tmp_path / "nope.csv")


def test_default_on_error_logs_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", BQ_HEADER, "2021-01-08T00:00:01Z,BTC/USDT,abc,1,101,1")
    messages: list[str] = []
    sink_id = logger.add(messages.append, level="WARNING", format="{message}")
    try:
        assert list(read_quotes(path)) == []
    finally:
        logger.remove(sink_id)
    assert len(messages) == 1
    assert "q.csv:2: column 'bid': 'abc' is not a decimal" in messages[0]


def test_read_market_tie_break_quote_before_trade_then_file_order(tmp_path: Path) -> None:
    quotes = write(
        tmp_path,
        "q.csv",
        BQ_HEADER,
        "2021-01-08T00:00:01Z,BTC/USDT,100,1,101,1",
        "2021-01-08T00:00:02Z,BTC/USDT,100,1,101,2",
        "2021-01-08T00:00:02Z,BTC/USDT,100,1,101,3",
    )
    trades = write(
        tmp_path,
        "t.csv",
        BT_HEADER,
        "2021-01-08T00:00:00Z,a,100,1,BUY,False",
        "2021-01-08T00:00:02Z,b,100,1,BUY,False",
        "2021-01-08T00:00:02Z,c,100,1,BUY,False",
        "2021-01-08T00:00:03Z,d,100,1,BUY,False",
    )
    events = list(read_market(quotes, trades))
    labels = [e.trade_id if isinstance(e, Trade) else f"q{e.ask_size}" for e in events]
    assert labels == ["a", "q1", "q2", "q3", "b", "c", "d"]


def test_read_market_reports_rows_that_go_back_in_time(tmp_path: Path) -> None:
    quotes = write(
        tmp_path,
        "q.csv",
        BQ_HEADER,
        "2021-01-08T00:00:02Z,BTC/USDT,100,1,101,1",
        "2021-01-08T00:00:01Z,BTC/USDT,100,1,101,2",
        "2021-01-08T00:00:03Z,BTC/USDT,100,1,101,3",
    )
    trades = write(tmp_path, "t.csv", BT_HEADER, "2021-01-08T00:00:02Z,a,100,1,BUY,False")
    errors = ErrorCollector()
    events = list(read_market(quotes, trades, on_error=errors))
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert len(events) == 3
    err = only(errors)
    assert (err.path, err.line, err.column) == (str(quotes), 3, "ts_utc")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10**9),
            st.integers(min_value=0, max_value=12),
            st.booleans(),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_decimal_round_trip_and_bad_rows_never_stop_the_read(tmp_path_factory, rows) -> None:  # type: ignore[no-untyped-def]
    """Each generated price survives exactly; every 'bad' row is reported at its own line."""
    tmp = tmp_path_factory.mktemp("prop")
    lines = [BQ_HEADER]
    expected_prices, expected_bad_lines = [], []
    for i, (mantissa, exponent, bad) in enumerate(rows):
        price = Decimal(mantissa).scaleb(-exponent)
        text = format(price, "f")
        if bad:
            lines.append(f"2021-01-08T00:00:{i % 60:02d}Z,BTC/USDT,{text}x,1,{text},1")
            expected_bad_lines.append(i + 2)
        else:
            lines.append(f"2021-01-08T00:00:{i % 60:02d}Z,BTC/USDT,{text},1,{text},1")
            expected_prices.append(price)
    path = write(tmp, "q.csv", *lines)
    errors = ErrorCollector()
    quotes = list(read_quotes(path, on_error=errors))
    assert [q.bid for q in quotes] == expected_prices
    assert all(q.is_locked for q in quotes)
    assert [e.line for e in errors] == expected_bad_lines
    assert all(e.column == "bid" for e in errors)


# ---------------------------------------------------------------- real data


@needs_data
def test_real_binance_quotes_and_trades_read_cleanly() -> None:
    errors = ErrorCollector()
    quotes = list(read_quotes(DATA / "binance_btcusdt_quotes_20210108.csv", on_error=errors))
    trades = list(read_trades(DATA / "binance_btcusdt_trades_20210108.csv", on_error=errors))
    assert len(errors) == 0, errors.errors[:5]
    assert len(quotes) == 451 and len(trades) == 2001
    assert all(q.symbol == "BTC/USDT" for q in quotes) and all(t.symbol == "BTC/USDT" for t in trades)
    assert quotes[0].bid == Decimal("39432.99") and quotes[0].ask_size == Decimal("0.066851")
    assert trades[0].aggressor_side is Side.SELL and trades[0].trade_id == "553287559"


@needs_data
def test_real_merged_stream_is_sorted_and_complete() -> None:
    errors = ErrorCollector()
    events = list(
        read_market(
            DATA / "binance_btcusdt_quotes_20210108.csv",
            DATA / "binance_btcusdt_trades_20210108.csv",
            on_error=errors,
        )
    )
    assert len(errors) == 0
    assert len(events) == 451 + 2001
    keys = [(e.ts, 0 if isinstance(e, Quote) else 1) for e in events]
    assert keys == sorted(keys)
    assert sum(isinstance(e, Quote) for e in events) == 451


@needs_data
def test_real_fxcm_file_has_crossed_and_locked_quotes_without_errors() -> None:
    errors = ErrorCollector()
    quotes = list(read_quotes(DATA / "lean_fxcm_eurusd_20140501_tick_quote.csv", on_error=errors))
    assert len(errors) == 0
    assert len(quotes) == 51053
    assert sum(q.is_crossed for q in quotes) == 3991
    assert sum(q.is_locked for q in quotes) == 5409
    assert all(q.symbol == "EUR/USD" for q in quotes)


@needs_data
def test_real_xrp_and_histdata_files_read_cleanly() -> None:
    errors = ErrorCollector()
    trades = list(read_trades(DATA / "binance_xrpeth_trades_20191011.csv", on_error=errors))
    ticks = list(read_quotes(DATA / "histdata_eurusd_ticks_20200101.csv", on_error=errors))
    assert len(errors) == 0
    assert len(trades) == 12477 and len(ticks) == 9500
    assert {t.aggressor_side for t in trades} == {Side.BUY, Side.SELL}
    assert not any(q.is_crossed for q in ticks)
