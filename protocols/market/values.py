"""Market data values: top-of-book quotes and trade prints (frozen, Decimal).

Example::

    >>> from decimal import Decimal
    >>> q = Quote(ts="2021-01-08T00:00:01.076Z", symbol="BTC/USDT", bid=Decimal("39432.99"),
    ...           bid_size=Decimal("0.0031"), ask=Decimal("39433.62"), ask_size=Decimal("0.066851"))
    >>> q.is_crossed, q.is_locked, q.mid
    (False, False, Decimal('39433.305'))
"""

from __future__ import annotations

from decimal import Decimal

from ..model.base import Frozen, NonNegDec, PosDec, UtcDatetime
from ..model.enums import Side


class Quote(Frozen):
    """Top of book at ``ts`` (UTC): bid/ask prices in quote currency, sizes in base units.

    A quote may be crossed (bid > ask) or locked (bid == ask) in real data; it is still a
    valid ``Quote`` and consumers decide what to do with it (see the paper fill model).
    """

    ts: UtcDatetime
    symbol: str
    bid: PosDec
    bid_size: NonNegDec
    ask: PosDec
    ask_size: NonNegDec

    @property
    def mid(self) -> Decimal:
        """``(bid + ask) / 2``."""
        return (self.bid + self.ask) / 2

    @property
    def is_crossed(self) -> bool:
        """bid > ask."""
        return self.bid > self.ask

    @property
    def is_locked(self) -> bool:
        """bid == ask."""
        return self.bid == self.ask


class Trade(Frozen):
    """A trade print at ``ts`` (UTC): ``price`` in quote currency, ``qty`` in base units.

    ``aggressor_side`` is the taker's side (Binance ``buyer_maker=True`` means SELL).
    """

    ts: UtcDatetime
    symbol: str
    trade_id: str
    price: PosDec
    qty: PosDec
    aggressor_side: Side | None = None
