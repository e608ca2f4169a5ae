"""CSV readers for the recorded market data in ``../shared/data`` (see its README.md).

Formats (detected from the header row; cells are stripped, a UTF-8 BOM is tolerated):

================================================  =========================================
header                                            yields
================================================  =========================================
``ts_utc,symbol,bid,bid_size,ask,ask_size``       ``Quote`` (Binance top of book)
``ts_utc,bid,ask``                                ``Quote`` (tick quotes; sizes 0, symbol
                                                  from ``symbol=`` or ``"EUR/USD"``)
``ts_utc,trade_id,price,qty,aggressor_side,``     ``Trade`` (Binance BTC/USDT; symbol
``buyer_maker``                                   ``"BTC/USDT"`` unless given)
``ts_utc,trade_id,taker_side,price,qty,cost``     ``Trade`` (Binance XRP/ETH via freqtrade;
                                                  symbol ``"XRP/ETH"`` unless given)
================================================  =========================================

Rules:

- Numbers are parsed from the cell text with ``Decimal`` (never through ``float``); NaN and
  infinity are refused. Prices must be > 0; quote sizes >= 0; trade quantities > 0;
  XRP/ETH ``cost`` >= 0.
- ``ts_utc`` is ISO-8601 with an explicit offset (``Z``); a naive timestamp is an error.
- Crossed (bid > ask) and locked (bid == ask) quotes are **not** errors: they are valid
  ``Quote`` values (``is_crossed`` / ``is_locked``) and consumers decide (the paper fill model
  skips them: README, "Fill model").
- A malformed row (wrong column count, bad number, bad timestamp, inconsistent Binance
  ``aggressor_side``/``buyer_maker``, a ``symbol`` cell that contradicts ``symbol=``) becomes a
  ``RowError`` passed to ``on_error`` and the row is skipped; reading continues. With
  ``on_error=None`` each error is logged as a loguru warning (never silently dropped).
  Completely blank lines carry no data and are skipped without an error.
- Time order (``read_market``): rows out of order by at most ``reorder_tolerance`` (default 0)
  are put back in order; beyond it only the offending row is skipped and reported — the one
  that goes backwards, or the one that jumps forward past the rows after it (the row after
  the pair decides) — never the rest of the file.
- Problems group by cause: ``RowError.cause`` leaves out the row's own data and
  ``group_problems`` / ``ErrorCollector.groups()`` give one ``ProblemGroup`` per file and cause
  with its count and first line numbers.
- An unknown header (or an empty file) raises ``ValueError`` naming the expected headers, and a
  directory ``IsADirectoryError``, eagerly, when the reader function is called; rows are then
  read lazily. A file with a header and no usable row is not an error here: the caller decides
  (``flowroute replay`` refuses it).

Example::

    >>> from protocols.market.readers import ErrorCollector, read_market  # doctest: +SKIP
    >>> errors = ErrorCollector()                                   # doctest: +SKIP
    >>> for event in read_market("quotes.csv", "trades.csv", on_error=errors):  # doctest: +SKIP
    ...     ...
    >>> len(errors)                                                 # doctest: +SKIP
    0
"""

from __future__ import annotations

import csv
import heapq
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from loguru import logger
from pydantic import ValidationError

from ..model.base import Frozen
from ..model.enums import Side
from .values import Quote, Trade

__all__ = [
    "ErrorCollector",
    "ProblemGroup",
    "group_problems",
    "QUOTE_HEADERS",
    "TRADE_HEADERS",
    "RowError",
    "read_market",
    "read_quotes",
    "read_trades",
]

PathLike = str | os.PathLike[str]
OnError = Callable[["RowError"], None]


class RowError(Frozen):
    """One malformed row in a data file; the row was skipped.

    ``line`` is the 1-based physical line in the file (the header is line 1); ``column`` is the
    column name, or ``""`` for a row-shape problem (then ``value`` is the raw row joined by
    commas). ``str(err)`` reads like
    ``binance_btcusdt_quotes.csv:17: column 'bid': 'abc' is not a decimal``.
    """

    path: str
    line: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        where = f"{Path(self.path).name}:{self.line}"
        if self.column:
            return f"{where}: column {self.column!r}: {self.value!r} {self.message}"
        return f"{where}: {self.message}"

    @property
    def cause(self) -> str:
        """The problem without the row's own data, to group rows by: ``column 'bid' is not a
        decimal``, ``expected 6 columns (…), got 3``, ``column 'ts_utc' goes backwards …``."""
        if self.column:
            return f"column {self.column!r} {_CAUSE_DETAIL.sub('', self.message)}"
        return _CAUSE_DETAIL.sub("", self.message)


#: Row-specific detail in a message (``(previous 2021-…)``, ``(next …)``) left out of its cause.
_CAUSE_DETAIL = re.compile(r" \((?:previous|next) [^)]*\)")


@dataclass(frozen=True)
class ProblemGroup:
    """Skipped rows of one file with one cause: ``count`` rows, the ``first_lines`` (up to 5)."""

    path: str
    cause: str
    count: int
    first_lines: tuple[int, ...]

    def __str__(self) -> str:
        lines = ", ".join(map(str, self.first_lines)) + (", …" if self.count > len(self.first_lines) else "")
        return f"{Path(self.path).name}: {self.count} row(s): {self.cause} (line{'s' if self.count > 1 else ''} {lines})"


def group_problems(errors: Iterable[RowError], first: int = 5) -> list[ProblemGroup]:
    """Group ``errors`` by (file, cause): most rows first, then file and first line; each group
    keeps its first ``first`` line numbers. So one cause that hit 400 rows reads as one line."""
    groups: dict[tuple[str, str], list[int]] = {}
    for error in errors:
        groups.setdefault((error.path, error.cause), []).append(error.line)
    out = [ProblemGroup(path, cause, len(lines), tuple(sorted(lines)[:first])) for (path, cause), lines in groups.items()]
    out.sort(key=lambda g: (-g.count, g.path, g.first_lines))
    return out


class ErrorCollector:
    """An ``on_error`` callback that keeps every ``RowError`` it receives, in order.

    ``collector.errors`` is the list; ``len(collector)`` its length; iterable.
    """

    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def __call__(self, error: RowError) -> None:
        self.errors.append(error)

    def __len__(self) -> int:
        return len(self.errors)

    def __iter__(self) -> Iterator[RowError]:
        return iter(self.errors)

    def __repr__(self) -> str:
        return f"ErrorCollector({len(self.errors)} errors)"

    def groups(self, first: int = 5) -> list[ProblemGroup]:
        """The errors grouped by file and cause (:func:`group_problems`)."""
        return group_problems(self.errors, first)


def _log_error(error: RowError) -> None:
    logger.warning("skipped malformed market-data row: {}", error)


# --------------------------------------------------------------------------- formats

_BINANCE_QUOTES = ("ts_utc", "symbol", "bid", "bid_size", "ask", "ask_size")
_TICK_QUOTES = ("ts_utc", "bid", "ask")
_BINANCE_TRADES = ("ts_utc", "trade_id", "price", "qty", "aggressor_side", "buyer_maker")
_XRP_TRADES = ("ts_utc", "trade_id", "taker_side", "price", "qty", "cost")

#: Headers ``read_quotes`` accepts, with the default symbol when the file has no symbol column.
QUOTE_HEADERS: dict[tuple[str, ...], str | None] = {_BINANCE_QUOTES: None, _TICK_QUOTES: "EUR/USD"}
#: Headers ``read_trades`` accepts, with the default symbol for each.
TRADE_HEADERS: dict[tuple[str, ...], str] = {_BINANCE_TRADES: "BTC/USDT", _XRP_TRADES: "XRP/ETH"}


class _BadCell(Exception):
    """A cell failed to parse: carries (column, value, message)."""

    def __init__(self, column: str, value: str, message: str) -> None:
        super().__init__(message)
        self.column, self.value, self.message = column, value, message


@dataclass
class _Row:
    line: int
    cells: dict[str, str]


_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _decimal(row: _Row, column: str, *, positive: bool = False) -> Decimal:
    text = row.cells[column]
    if not _DECIMAL_TEXT.fullmatch(text):
        try:
            special = not Decimal(text).is_finite()
        except (InvalidOperation, ValueError):
            special = False
        raise _BadCell(column, text, "is not a finite decimal" if special else "is not a decimal")
    value = Decimal(text)
    if positive and value <= 0:
        raise _BadCell(column, text, "must be greater than 0")
    if value < 0:
        raise _BadCell(column, text, "must not be negative")
    return value


def _timestamp(row: _Row, column: str = "ts_utc") -> datetime:
    text = row.cells[column]
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _BadCell(column, text, "is not an ISO-8601 timestamp") from None
    if value.tzinfo is None:
        raise _BadCell(column, text, "has no UTC offset (expected e.g. '...Z')")
    return value


def _text(row: _Row, column: str) -> str:
    text = row.cells[column]
    if not text:
        raise _BadCell(column, text, "must not be empty")
    return text


def _side(row: _Row, column: str) -> Side:
    text = row.cells[column]
    try:
        return Side(text)
    except ValueError:
        raise _BadCell(column, text, "is not a side (BUY or SELL)") from None


_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _bool(row: _Row, column: str) -> bool:
    text = row.cells[column]
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise _BadCell(column, text, "is not a boolean (True or False)") from None


def _symbol(row: _Row, expected: str | None) -> str:
    text = _text(row, "symbol")
    if expected is not None and text != expected:
        raise _BadCell("symbol", text, f"does not match the requested symbol {expected!r}")
    return text


def _binance_quote(row: _Row, symbol: str | None) -> Quote:
    return Quote(
        ts=_timestamp(row),
        symbol=_symbol(row, symbol),
        bid=_decimal(row, "bid", positive=True),
        bid_size=_decimal(row, "bid_size"),
        ask=_decimal(row, "ask", positive=True),
        ask_size=_decimal(row, "ask_size"),
    )


def _tick_quote(row: _Row, symbol: str) -> Quote:
    return Quote(
        ts=_timestamp(row),
        symbol=symbol,
        bid=_decimal(row, "bid", positive=True),
        bid_size=Decimal(0),
        ask=_decimal(row, "ask", positive=True),
        ask_size=Decimal(0),
    )


def _binance_trade(row: _Row, symbol: str) -> Trade:
    ts = _timestamp(row)
    trade_id = _text(row, "trade_id")
    price = _decimal(row, "price", positive=True)
    qty = _decimal(row, "qty", positive=True)
    side = _side(row, "aggressor_side")
    buyer_maker = _bool(row, "buyer_maker")
    # Binance: isBuyerMaker=true means the buyer was resting, so the seller was the taker.
    if (side is Side.SELL) != buyer_maker:
        raise _BadCell(
            "buyer_maker",
            row.cells["buyer_maker"],
            f"contradicts aggressor_side {side.value} (buyer_maker=True means SELL aggressor)",
        )
    return Trade(ts=ts, symbol=symbol, trade_id=trade_id, price=price, qty=qty, aggressor_side=side)


def _xrp_trade(row: _Row, symbol: str) -> Trade:
    ts = _timestamp(row)
    trade_id = _text(row, "trade_id")
    side = _side(row, "taker_side")
    price = _decimal(row, "price", positive=True)
    qty = _decimal(row, "qty", positive=True)
    _decimal(row, "cost")  # validated (finite, >= 0) but not carried: it is price * qty
    return Trade(ts=ts, symbol=symbol, trade_id=trade_id, price=price, qty=qty, aggressor_side=side)


# --------------------------------------------------------------------------- file reading


def _read_header(path: Path) -> tuple[int, tuple[str, ...] | None]:
    """Return (header line number, header cells) or (0, None) for a file with no rows.
    Raises ``IsADirectoryError`` naming ``path`` when it is a directory."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a market data file")
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        for cells in reader:
            if any(c.strip() for c in cells):
                return reader.line_num, tuple(c.strip() for c in cells)
    return 0, None


def _unknown_header(path: Path, header: tuple[str, ...] | None, expected: list[tuple[str, ...]]) -> ValueError:
    wanted = " or ".join(repr(",".join(h)) for h in expected)
    got = "no header (empty file)" if header is None else f"header {','.join(header)!r}"
    return ValueError(f"{path}: unknown format, {got}; expected {wanted}")


def _rows(path: Path, header: tuple[str, ...], on_error: OnError) -> Iterator[_Row]:
    """Yield the data rows of ``path`` as ``_Row`` (first physical line, cells by column).

    Rows with the wrong number of cells are reported and skipped; blank lines are skipped.
    """
    width = len(header)
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        seen_header = False
        previous_end = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. NUL byte, unterminated quote at EOF
                start = previous_end + 1
                previous_end = reader.line_num
                on_error(RowError(path=str(path), line=start, column="", value="", message=f"unreadable row: {exc}"))
                continue
            start, previous_end = previous_end + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if not seen_header:
                seen_header = True
                continue
            if len(cells) != width:
                on_error(
                    RowError(
                        path=str(path),
                        line=start,
                        column="",
                        value=",".join(cells),
                        message=f"expected {width} columns ({','.join(header)}), got {len(cells)}",
                    )
                )
                continue
            yield _Row(line=start, cells={name: cell.strip() for name, cell in zip(header, cells, strict=False)})


def _parse_all(
    path: Path, header: tuple[str, ...], parse: Callable[[_Row], Quote | Trade], on_error: OnError
) -> Iterator[tuple[int, Quote | Trade]]:
    """Yield ``(line, value)`` for every good row; report and skip the rest."""
    for row in _rows(path, header, on_error):
        try:
            yield row.line, parse(row)
        except _BadCell as bad:
            on_error(RowError(path=str(path), line=row.line, column=bad.column, value=bad.value, message=bad.message))
        except ValidationError as exc:  # defensive: the contract refused a value we accepted
            first = exc.errors()[0]
            column = str(first["loc"][0]) if first.get("loc") else ""
            value = row.cells.get(column, "")
            on_error(RowError(path=str(path), line=row.line, column=column, value=value, message=first["msg"]))


def _quotes(path: PathLike, symbol: str | None, on_error: OnError | None) -> Iterator[tuple[int, Quote]]:
    p = Path(path)
    _, header = _read_header(p)
    if header not in QUOTE_HEADERS:
        raise _unknown_header(p, header, list(QUOTE_HEADERS))
    assert header is not None
    sink = on_error if on_error is not None else _log_error
    if header == _BINANCE_QUOTES:
        return _parse_all(p, header, lambda row: _binance_quote(row, symbol), sink)  # type: ignore[return-value]
    fixed = symbol if symbol is not None else QUOTE_HEADERS[header]
    assert fixed is not None
    return _parse_all(p, header, lambda row: _tick_quote(row, fixed), sink)  # type: ignore[return-value]


def _trades(path: PathLike, symbol: str | None, on_error: OnError | None) -> Iterator[tuple[int, Trade]]:
    p = Path(path)
    _, header = _read_header(p)
    if header not in TRADE_HEADERS:
        raise _unknown_header(p, header, list(TRADE_HEADERS))
    assert header is not None
    sink = on_error if on_error is not None else _log_error
    sym = symbol if symbol is not None else TRADE_HEADERS[header]
    parse = _binance_trade if header == _BINANCE_TRADES else _xrp_trade
    return _parse_all(p, header, lambda row: parse(row, sym), sink)  # type: ignore[return-value]


def read_quotes(path: PathLike, *, symbol: str | None = None, on_error: OnError | None = None) -> Iterator[Quote]:
    """Read top-of-book quotes from ``path``, lazily, in file order.

    Accepts ``ts_utc,symbol,bid,bid_size,ask,ask_size`` (Binance; each row's symbol must equal
    ``symbol`` when given) and ``ts_utc,bid,ask`` (tick files; symbol ``symbol`` or
    ``"EUR/USD"``, sizes 0). Malformed rows go to ``on_error`` (default: loguru warning) and are
    skipped. Crossed/locked quotes are yielded as they are.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for an unknown header,
    both at call time.
    """
    return (quote for _, quote in _quotes(path, symbol, on_error))


def read_trades(path: PathLike, *, symbol: str | None = None, on_error: OnError | None = None) -> Iterator[Trade]:
    """Read trade prints from ``path``, lazily, in file order.

    Accepts ``ts_utc,trade_id,price,qty,aggressor_side,buyer_maker`` (Binance BTC/USDT, default
    symbol ``"BTC/USDT"``; ``buyer_maker=True`` must go with ``aggressor_side=SELL``) and
    ``ts_utc,trade_id,taker_side,price,qty,cost`` (XRP/ETH, default symbol ``"XRP/ETH"``).
    ``aggressor_side`` of the yielded ``Trade`` is the taker's side. Malformed rows go to
    ``on_error`` (default: loguru warning) and are skipped.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for an unknown header,
    both at call time.
    """
    return (trade for _, trade in _trades(path, symbol, on_error))


def _within_tolerance(
    events: Iterator[tuple[int, Quote | Trade]], tolerance: timedelta
) -> Iterator[tuple[int, Quote | Trade]]:
    """Put rows back in time order when they are late by at most ``tolerance`` (earlier than the
    newest row read before them by no more than that). Rows are held until a row later than them
    by more than ``tolerance`` has been read (or the file ends); a row later than that is passed
    on where it stands, for :func:`_in_order` to judge."""
    if tolerance <= timedelta(0):
        yield from events
        return
    held: list[tuple[datetime, int, Quote | Trade]] = []
    newest: datetime | None = None
    for line, event in events:
        if newest is not None and event.ts < newest - tolerance:
            while held:
                _, held_line, held_event = heapq.heappop(held)
                yield held_line, held_event
            yield line, event
            continue
        newest = event.ts if newest is None or event.ts > newest else newest
        heapq.heappush(held, (event.ts, line, event))
        while held and held[0][0] < newest - tolerance:
            _, held_line, held_event = heapq.heappop(held)
            yield held_line, held_event
    while held:
        _, held_line, held_event = heapq.heappop(held)
        yield held_line, held_event


def _in_order(
    path: PathLike, events: Iterator[tuple[int, Quote | Trade]], kind: int, on_error: OnError
) -> Iterator[tuple[datetime, int, int, Quote | Trade]]:
    """Key ``events`` as (ts, kind, line, event), skipping just the rows that are out of time order.

    The rule (``read_market``): a row is out of order when its ``ts`` is earlier than the row
    before it. One row of the two is wrong, and the row after them decides which: when it
    agrees with the earlier row, the later-read row went **backwards** and is skipped; when it
    agrees with the later-read row, the earlier one **jumped forward** (e.g. a wrong date) and
    is skipped. A row earlier than a row already passed on is skipped as backwards; at the end
    of the file an undecided conflict skips the later-read row. So one bad timestamp costs one
    row, never the rest of the file.
    """

    def skipped(line: int, event: Quote | Trade, message: str) -> None:
        on_error(RowError(path=str(path), line=line, column="ts_utc", value=event.ts.isoformat(), message=message))

    passed: datetime | None = None  # ts of the last row passed on
    held: tuple[int, Quote | Trade] | None = None  # the newest agreed row, passed on once the next agrees
    doubt: tuple[int, Quote | Trade] | None = None  # a row earlier than ``held``, waiting for the next
    for line, event in events:
        if passed is not None and event.ts < passed:
            skipped(line, event, f"goes backwards (previous {passed.isoformat()})")
            continue
        if held is None:
            held = (line, event)
            continue
        if doubt is None:
            if event.ts >= held[1].ts:
                passed = held[1].ts
                yield held[1].ts, kind, held[0], held[1]
                held = (line, event)
            else:
                doubt = (line, event)
            continue
        if event.ts >= held[1].ts:  # agrees with the held row: the doubtful one went backwards
            skipped(doubt[0], doubt[1], f"goes backwards (previous {held[1].ts.isoformat()})")
            doubt = None
            passed = held[1].ts
            yield held[1].ts, kind, held[0], held[1]
            held = (line, event)
        elif event.ts >= doubt[1].ts:  # agrees with the doubtful row: the held one jumped forward
            skipped(held[0], held[1], f"jumps forward (next {doubt[1].ts.isoformat()})")
            passed = doubt[1].ts
            yield doubt[1].ts, kind, doubt[0], doubt[1]
            held, doubt = (line, event), None
        else:  # earlier than both: the doubtful row is out; this one is the new doubt
            skipped(doubt[0], doubt[1], f"goes backwards (previous {held[1].ts.isoformat()})")
            doubt = (line, event)
    if doubt is not None and held is not None:
        skipped(doubt[0], doubt[1], f"goes backwards (previous {held[1].ts.isoformat()})")
    if held is not None:
        yield held[1].ts, kind, held[0], held[1]


def read_market(
    quotes_path: PathLike,
    trades_path: PathLike,
    *,
    quote_symbol: str | None = None,
    trade_symbol: str | None = None,
    on_error: OnError | None = None,
    reorder_tolerance: timedelta = timedelta(0),
) -> Iterator[Quote | Trade]:
    """Merge ``read_quotes(quotes_path)`` and ``read_trades(trades_path)`` into one stream by ``ts``.

    Ties are broken deterministically: at equal ``ts`` every quote comes before every trade,
    then file order. Each file should be in non-decreasing time order. Rows out of order by at
    most ``reorder_tolerance`` are put back in order; beyond it just the offending row is
    reported to ``on_error`` and skipped — one that goes backwards, or one that jumps forward
    past the rows after it (the rule: :func:`_in_order`) — so the merged stream is always
    sorted and one bad timestamp never drops the rest of a file. Symbols default as in the
    two readers. Raises like the two readers, at call time.
    """
    sink = on_error if on_error is not None else _log_error
    quotes = _in_order(quotes_path, _within_tolerance(_quotes(quotes_path, quote_symbol, sink), reorder_tolerance), 0, sink)
    trades = _in_order(trades_path, _within_tolerance(_trades(trades_path, trade_symbol, sink), reorder_tolerance), 1, sink)
    return (item[3] for item in heapq.merge(quotes, trades, key=lambda item: item[:3]))
