"""Instrument specifications for venue-like validation (tick size, lot size, min notional).

Rules follow Binance spot filters (PRICE_FILTER tickSize, LOT_SIZE stepSize,
MIN_NOTIONAL minNotional): a price must be a multiple of ``tick_size``, a quantity a
multiple of ``lot_size`` and at least ``lot_size``, and ``price * qty`` at least
``min_notional`` (quote currency).

Example::

    >>> from decimal import Decimal
    >>> btc = Instrument(symbol="BTC/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.000001"),
    ...                  min_notional=Decimal("5"))
    >>> btc.check(qty=Decimal("0.001"), price=Decimal("39433.62")) is None
    True
    >>> btc.check(qty=Decimal("0.001"), price=Decimal("39433.625"))
    'price 39433.625 is not a multiple of tick size 0.01'
"""

from __future__ import annotations

from decimal import Decimal

from .base import Frozen, NonNegDec, PosDec


class Instrument(Frozen):
    """A tradable symbol's venue filters. Prices in quote currency, quantities in base units."""

    symbol: str
    tick_size: PosDec
    lot_size: PosDec
    min_notional: NonNegDec = Decimal(0)

    def check(self, *, qty: Decimal, price: Decimal | None) -> str | None:
        """Return None when ``qty`` (and ``price`` if given) pass the filters, else the reason."""
        if qty < self.lot_size:
            return f"quantity {qty} is below lot size {self.lot_size}"
        if qty % self.lot_size != 0:
            return f"quantity {qty} is not a multiple of lot size {self.lot_size}"
        if price is not None:
            if price % self.tick_size != 0:
                return f"price {price} is not a multiple of tick size {self.tick_size}"
            if qty * price < self.min_notional:
                return f"notional {qty * price} is below min notional {self.min_notional}"
        return None


DEFAULT_INSTRUMENTS: dict[str, Instrument] = {
    i.symbol: i
    for i in (
        Instrument(symbol="BTC/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.000001"), min_notional=Decimal("5")),
        Instrument(symbol="XRP/ETH", tick_size=Decimal("0.00000001"), lot_size=Decimal("1"), min_notional=Decimal("0.001")),
        Instrument(symbol="EUR/USD", tick_size=Decimal("0.00001"), lot_size=Decimal("1"), min_notional=Decimal("1")),
        Instrument(symbol="SPY/USD", tick_size=Decimal("0.01"), lot_size=Decimal("1"), min_notional=Decimal("1")),
    )
}
