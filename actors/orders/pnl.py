"""Attribution books: positions per strategy and daily PnL (README "Features"), owned by the ledger actor.

Pure and single-threaded like ``_books.py``: the ledger actor calls :meth:`PnlAttribution.on_fill`
once for every fill it books (live and when it rebuilds from the journal after a restart, so
both survive restarts) and hands out frozen values only.

- **Per strategy**: a second :class:`~actors.orders.books.Positions` keyed by ``(book, strategy)``
  holds the positions of fills whose order carries a ``strategy_id`` (average-cost accounting,
  the same rules as the account book); each strategy's realized PnL comes from its own entry
  price, so two strategies trading one symbol each see their own PnL.
- **Daily PnL**: realized PnL and fees per day, account, strategy and symbol, in the symbol's
  quote currency. A fill belongs to the day its venue time ``fill.ts`` falls in, where a day
  begins at ``pnl.day_start`` (HH:MM) in ``pnl.timezone`` (IANA). A day is named after the
  date most of it falls on: its own start date when it begins at or before noon, else the next
  date. With ``17:00`` and ``America/New_York`` (the FX convention) the day from Thursday 17:00
  to Friday 17:00 New York time is Friday's, so a fill at 17:30 on Thursday counts for Friday.
  Unrealized PnL is a mark-to-market figure of now, not of a day: read it from the positions.

Example::

    >>> from datetime import datetime, timezone
    >>> from decimal import Decimal as D
    >>> from protocols import Fill
    >>> book = PnlAttribution(day_start="17:00", timezone="America/New_York")
    >>> ts = datetime(2021, 1, 8, 23, 0, tzinfo=timezone.utc)        # 18:00 in New York
    >>> book.day_of(ts).isoformat()
    '2021-01-09'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from protocols import Fill, Side

from .books import FillBooking, Position, Positions

__all__ = ["DailyPnl", "PnlAttribution"]

_ZERO = Decimal(0)
#: separates account and strategy in the strategy book's keys (never in an id: ids are [A-Za-z0-9._:/-])
_SEP = "|"


@dataclass(frozen=True)
class DailyPnl:
    """One day's PnL of one account (and strategy) in one symbol (frozen; quote currency).

    ``day``: the PnL day (see the module docstring for the boundary); ``account_id`` (a shadow
    adapter's book is ``<account>@<adapter>``); ``strategy_id`` ("" for orders without one);
    ``symbol``; ``realized_pnl`` (average-cost, fees not subtracted); ``fees`` (quote ccy);
    ``net_pnl`` = ``realized_pnl - fees``; ``fills``: fills booked that day; ``bought`` /
    ``sold``: base quantity bought / sold that day.
    """

    day: date
    account_id: str
    strategy_id: str
    symbol: str
    realized_pnl: Decimal = _ZERO
    fees: Decimal = _ZERO
    fills: int = 0
    bought: Decimal = _ZERO
    sold: Decimal = _ZERO

    @property
    def net_pnl(self) -> Decimal:
        """``realized_pnl - fees`` (quote ccy)."""
        return self.realized_pnl - self.fees


class _Day:
    __slots__ = ("realized", "fees", "fills", "bought", "sold")

    def __init__(self) -> None:
        self.realized = _ZERO
        self.fees = _ZERO
        self.fills = 0
        self.bought = _ZERO
        self.sold = _ZERO


class PnlAttribution:
    """Per-strategy positions and daily PnL (see the module docstring).

    ``day_start``: ``"HH:MM"``; ``timezone``: an IANA name. Raises ``ValueError`` for either
    being malformed (the settings validate them first: ``[pnl]``).
    """

    def __init__(self, *, day_start: str = "00:00", timezone: str = "UTC") -> None:
        try:
            hours, minutes = (int(x) for x in day_start.split(":"))
            if not (0 <= hours < 24 and 0 <= minutes < 60):
                raise ValueError
        except ValueError:
            raise ValueError(f"day_start must be HH:MM, got {day_start!r}") from None
        self._offset = timedelta(hours=hours, minutes=minutes)
        #: a day that begins after noon is named after the next date, where most of it falls (FX: 17:00 New York)
        self._label_shift = timedelta(days=1 if self._offset > timedelta(hours=12) else 0)
        self._tz = ZoneInfo(timezone)
        self._strategies = Positions()
        self._days: dict[tuple[date, str, str, str], _Day] = {}
        self._day_cache: tuple[datetime, datetime, date] | None = None

    def day_of(self, ts: datetime) -> date:
        """The PnL day an aware ``ts`` belongs to."""
        cache = self._day_cache
        if cache is not None and cache[0] <= ts < cache[1]:
            return cache[2]
        local = ts.astimezone(self._tz).replace(tzinfo=None)
        began = (local - self._offset).date()  # the local date the PnL day began on
        # the day's bounds (aware), so the next fills of the same day skip the time-zone arithmetic
        start = (datetime.combine(began, datetime.min.time()) + self._offset).replace(tzinfo=self._tz)
        end = (datetime.combine(began + timedelta(days=1), datetime.min.time()) + self._offset).replace(tzinfo=self._tz)
        day = began + self._label_shift
        self._day_cache = (start, end, day)
        return day

    def on_fill(self, book: str, strategy_id: str, symbol: str, side: Side, booking: Fill | FillBooking,
                account_share: tuple[Decimal, Decimal]) -> None:
        """Record one booking of ``book`` (an account, or ``<account>@<adapter>``): a ``Fill``, or a
        ``FillBooking`` (a real fill that covered synthetic quantity: its new part, a price
        correction, a fee change), as the account book took it.

        ``account_share``: ``(realized, fees)`` the booking added to the account book (what
        ``Positions.realized_and_fees`` moved by); used for orders without a strategy. With a
        ``strategy_id`` it is also booked in the strategy's own position and the day gets the
        strategy's realized share.
        """
        if isinstance(booking, FillBooking):
            fill, new = booking.fill, booking.new
        else:
            fill = new = booking
        if strategy_id:
            key = f"{book}{_SEP}{strategy_id}"
            strategies = self._strategies
            r0, f0 = strategies.realized_and_fees(key, symbol)
            strategies.apply_booking(key, symbol, side, booking)
            r1, f1 = strategies.realized_and_fees(key, symbol)
            realized, fees = r1 - r0, f1 - f0
        else:
            realized, fees = account_share
        day_key = (self.day_of(fill.ts), book, strategy_id, symbol)
        day = self._days.get(day_key)
        if day is None:
            day = self._days[day_key] = _Day()
        day.realized += realized
        day.fees += fees
        if new is not None:  # a booking that only re-prices synthetic quantity adds no fill
            day.fills += 1
            if side is Side.BUY:
                day.bought += new.qty
            else:
                day.sold += new.qty

    def mark(self, symbol: str, price: Decimal) -> None:
        """The mark of ``symbol`` for the strategies' unrealized PnL (as ``Positions.mark``)."""
        self._strategies.mark(symbol, price)

    def positions(self, strategy_id: str | None = None) -> tuple[Position, ...]:
        """Positions per account, strategy and symbol (``Position.strategy_id`` set), sorted;
        only ``strategy_id``'s when given."""
        out = []
        for pos in self._strategies.positions():
            account, _, strategy = pos.account_id.rpartition(_SEP)
            if strategy_id is None or strategy == strategy_id:
                out.append(Position(
                    account_id=account, symbol=pos.symbol, net_qty=pos.net_qty, avg_entry_px=pos.avg_entry_px,
                    realized_pnl=pos.realized_pnl, unrealized_pnl=pos.unrealized_pnl, fees=pos.fees,
                    last_px=pos.last_px, buy_qty=pos.buy_qty, sell_qty=pos.sell_qty, strategy_id=strategy,
                ))
        return tuple(out)

    def daily(self, *, day: date | None = None, account_id: str | None = None,
              strategy_id: str | None = None) -> tuple[DailyPnl, ...]:
        """Daily PnL rows matching every filter given, sorted by (day, account, strategy, symbol)."""
        return tuple(
            DailyPnl(d, acct, strat, sym, v.realized, v.fees, v.fills, v.bought, v.sold)
            for (d, acct, strat, sym), v in sorted(self._days.items(), key=lambda kv: kv[0])
            if (day is None or d == day) and (account_id is None or acct == account_id)
            and (strategy_id is None or strat == strategy_id)
        )
