"""The portfolio: positions, cash and per-strategy PnL, booked from fills by one rule (docs/DESIGN.md "Fills").

A pure part of the ledger (docs/DESIGN.md "House plan": one actor, pure parts beside it): no
threads, no I/O, no risk. The ledger hands it every fill the lifecycle applied; it books the
account's position and cash (:class:`~actors.orders.books.Positions`, average cost) and the
strategy's position and daily PnL (:class:`~actors.orders.pnl.PnlAttribution`) from the same booking,
and answers what risk must be told (:class:`Posting`), so the ledger keeps risk in step without
the portfolio knowing it.

Example::

    p = Portfolio()
    booked = p.book("acc-1", "ma-cross", "BTC/USDT", Side.BUY, fill)
    booked.fill          # the fill as reported
    booked.spent         # the fill risk counts as spent (None: nothing new)
    p.positions()        # (Position(account_id='acc-1', symbol='BTC/USDT', net_qty=..., ...),)
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from protocols import Fill, Side

from .books import FillBooking, Position, Positions
from .pnl import DailyPnl, PnlAttribution

_ZERO = Decimal(0)


class Posting(NamedTuple):
    """What one booking means outside the portfolio: ``fill`` (as reported on the order),
    ``spent`` (the fill risk counts against the budget; None when the booking only re-priced
    quantity booked before) and ``correction`` (quote currency: how much a real fill that covered
    synthetic quantity changed the notional already counted; 0 for none)."""

    fill: Fill
    spent: Fill | None
    correction: Decimal = _ZERO


class Portfolio:
    """Positions and cash per (account book, symbol), positions and daily PnL per strategy.

    ``day_start`` / ``timezone``: the ``[pnl]`` settings of :class:`~actors.orders.pnl.PnlAttribution`.
    Raises ``ValueError`` for a bad day start or time zone (as PnlAttribution does)."""

    __slots__ = ("positions_book", "pnl")

    def __init__(self, *, day_start: str = "00:00", timezone: str = "UTC") -> None:
        #: the accounts' positions and cash (average cost)
        self.positions_book = Positions()
        #: the strategies' positions and the daily PnL
        self.pnl = PnlAttribution(day_start=day_start, timezone=timezone)

    def book(self, book: str, strategy_id: str, symbol: str, side: Side, booking: Fill | FillBooking) -> Posting:
        """Book one applied fill — or a real fill that covered synthetic quantity (a
        :class:`~actors.orders.books.FillBooking`: its new part, the price correction, the fee
        change) — in the account book ``book`` and strategy ``strategy_id``'s books."""
        positions = self.positions_book
        before = positions.realized_and_fees(book, symbol)
        if not isinstance(booking, FillBooking):  # a plain Fill
            positions.apply_fill(book, symbol, side, booking)
            self._book_pnl(book, strategy_id, symbol, side, booking, before)
            return Posting(booking, booking)
        positions.apply_booking(book, symbol, side, booking)
        self._book_pnl(book, strategy_id, symbol, side, booking, before)
        fill = booking.fill
        correction = sum((qty * (fill.price - px) for qty, px in booking.repriced), _ZERO)
        return Posting(fill, booking.new, correction)

    def _book_pnl(self, book: str, strategy_id: str, symbol: str, side: Side, booking: Fill | FillBooking,
                  before: tuple[Decimal, Decimal]) -> None:
        after = self.positions_book.realized_and_fees(book, symbol)
        self.pnl.on_fill(book, strategy_id, symbol, side, booking, (after[0] - before[0], after[1] - before[1]))

    def mark(self, symbol: str, price: Decimal) -> None:
        """The last price of ``symbol`` (quote currency): unrealized PnL of both views."""
        self.positions_book.mark(symbol, price)
        self.pnl.mark(symbol, price)

    def net_qty(self, book: str, symbol: str) -> Decimal:
        """The account book's net position in ``symbol`` (base units, signed)."""
        return self.positions_book.net_qty(book, symbol)

    def positions(self, strategy_id: str | None = None, *, by_strategy: bool = False) -> tuple[Position, ...]:
        """Per account (default), or per strategy (``by_strategy``; only ``strategy_id``'s when given)."""
        if by_strategy:
            return self.pnl.positions(strategy_id)
        return self.positions_book.positions()

    def daily(self, *, day: date | None = None, account_id: str | None = None,
              strategy_id: str | None = None) -> tuple[DailyPnl, ...]:
        """Realized PnL, fees and volume per day, account, strategy and symbol."""
        return self.pnl.daily(day=day, account_id=account_id, strategy_id=strategy_id)

    def cash(self, book: str) -> dict[str, Decimal]:
        """The account book's cash per currency."""
        return self.positions_book.cash(book)

    def accounts(self) -> tuple[str, ...]:
        """The account books with positions or cash."""
        return self.positions_book.accounts()

    def check_invariants(self, grouped: Any, retired: Any = None) -> list[str]:
        """The account books against the orders' fills (``Positions.check_invariants``)."""
        return list(self.positions_book.check_invariants(grouped, retired))


__all__ = ["Posting", "Portfolio"]
