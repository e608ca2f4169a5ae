"""Route decisions, fills and execution reports: what flowroute answers (SPEC §5).

Example::

    >>> from decimal import Decimal
    >>> f = Fill(trade_id="p-1", qty=Decimal("0.5"), price=Decimal("100"), fee=Decimal("0.05"),
    ...          fee_currency="USDT", liquidity="TAKER", ts="2021-01-08T00:00:01Z")
    >>> f.notional
    Decimal('50.0')
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, StringConstraints

from ._enums import Liquidity, OrderStatus, Side
from ._errors import ExecError
from ._model import Dec, Frozen, NonNegDec, PosDec, UtcDatetime, utc_now


class RouteDecision(Frozen):
    """The router's choice for one intent (SPEC §6): ``route_id``, ``adapter_id``, ``routing_reason``."""

    route_id: str
    adapter_id: str
    routing_reason: str


class Fill(Frozen):
    """One execution at the venue (FIX ExecutionReport with ExecType=F).

    ``trade_id`` (FIX tag 1003) is unique per venue and is the key that makes fills
    apply exactly once; ``qty`` is this fill's quantity in base units (FIX LastQty, 32),
    ``price`` its price in quote currency (FIX LastPx, 31), ``fee`` the commission in
    ``fee_currency``, ``liquidity`` maker or taker (FIX 851), ``ts`` the venue time (UTC).
    """

    trade_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    qty: PosDec
    price: PosDec
    fee: NonNegDec = Decimal(0)
    fee_currency: str = ""
    liquidity: Liquidity = Liquidity.TAKER
    ts: UtcDatetime = Field(default_factory=utc_now)

    @property
    def notional(self) -> Decimal:
        """``qty * price`` in quote currency."""
        return self.qty * self.price


class ExecutionReport(Frozen):
    """The answer to one submitted intent, and the state of an order at a point in time.

    Quantities in base units, prices in quote currency, all Decimal:
    ``cum_qty`` (FIX 14) filled so far, ``leaves_qty`` (FIX 151) still working (0 once
    terminal), ``avg_px`` (FIX 6) volume-weighted fill price or None before any fill,
    ``fees`` sum of fill fees, ``slippage_bps`` of ``avg_px`` against the arrival touch
    (positive = worse for us). ``error`` is None on success, otherwise a coded
    :class:`ExecError`. ``replay`` is True when this is a cached idempotent answer (the
    venue was not called). ``attempts`` counts venue submit attempts, ``latency_us`` the
    time from submit to this report in microseconds. ``raw_broker_ref`` is a redacted
    venue reference, never credentials.
    """

    client_order_id: str
    account_id: str = ""
    symbol: str = ""
    side: Side | None = None
    venue_order_id: str | None = None
    status: OrderStatus
    route: RouteDecision | None = None
    fills: tuple[Fill, ...] = ()
    cum_qty: NonNegDec = Decimal(0)
    leaves_qty: NonNegDec = Decimal(0)
    avg_px: Dec | None = None
    fees: NonNegDec = Decimal(0)
    slippage_bps: Dec | None = None
    error: ExecError | None = None
    replay: bool = False
    attempts: int = 0
    latency_us: int = 0
    raw_broker_ref: str | None = None
    ts: UtcDatetime = Field(default_factory=utc_now)

    @property
    def ok(self) -> bool:
        """True when the report carries no error."""
        return self.error is None


def summarize_fills(fills: tuple[Fill, ...] | list[Fill]) -> tuple[Decimal, Decimal | None, Decimal]:
    """Return ``(cum_qty, avg_px, fees)`` of ``fills`` (avg_px None when there are none)."""
    cum = Decimal(0)
    notional = Decimal(0)
    fees = Decimal(0)
    for fill in fills:
        cum += fill.qty
        notional += fill.qty * fill.price
        fees += fill.fee
    return cum, (notional / cum if cum else None), fees
