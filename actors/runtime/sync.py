"""Broker-state sync: the venue's positions and balances against the ledger's (seed 001 ``sync_broker_state``).

Pure logic owned by the ledger actor. :class:`VenueHoldings` keeps, per adapter, what the venue
should hold according to the fills the ledger applied: the net position per symbol (base units)
and the balance change per currency (base bought minus sold, quote paid or received, minus fees
in their currency — the paper venue's own ``fetch_account`` convention). :meth:`VenueHoldings.compare`
checks one venue answer (``fetch_positions``, ``fetch_account``) against it.

A difference is *confirmed* only when ``confirmations`` syncs in a row find one: a fill the
venue booked but whose event is still on its way to the ledger makes a single sync differ
without anything being wrong. Nothing is ever adjusted: a confirmed mismatch is reported
(``BrokerStateMismatch``), degrades ``health()`` and, by setting, reduces or halts trading.

Baselines: ``"zero"`` (default) expects the venue's figures to start from zero with the
ledger's (a paper venue, an account used only by this runtime); ``"first_sync"`` takes the
first successful sync's differences as the accounts' starting holdings and compares changes
from then on (a real account that held assets before).

Example::

    >>> from decimal import Decimal as D
    >>> from protocols import Fill, Side
    >>> books = VenueHoldings(confirmations=1)
    >>> books.on_fill("paper", "BTC/USDT", Side.BUY, Fill(trade_id="t1", qty=D("0.5"), price=D("100"), fee=D("0")))
    >>> books.compare("paper", {"BTC/USDT": D("0.5")}, {"BTC": D("0.5"), "USDT": D("-50")}).status
    'match'
    >>> books.compare("paper", {"BTC/USDT": D("0.4")}, None).differences[0].describe()
    'position BTC/USDT: venue 0.4, ledger 0.5'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from protocols import Fill, Side

from ..orders.books import FillBooking, _split_symbol

__all__ = ["AdapterSync", "BrokerSyncReport", "StateDifference", "VenueHoldings"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class StateDifference:
    """One figure on which the venue and the ledger differ: ``kind`` ``"position"`` (``key`` a
    symbol, base units) or ``"balance"`` (``key`` a currency); ``venue`` and ``ledger`` values."""

    kind: Literal["position", "balance"]
    key: str
    venue: Decimal
    ledger: Decimal

    def describe(self) -> str:
        """``"position BTC/USDT: venue 0.4, ledger 0.5"``."""
        return f"{self.kind} {self.key}: venue {self.venue}, ledger {self.ledger}"


@dataclass(frozen=True, slots=True)
class AdapterSync:
    """One adapter's result of a sync.

    ``status``: ``"match"``; ``"unconfirmed"`` (differences found, fewer than ``confirmations``
    syncs in a row); ``"mismatch"`` (confirmed); ``"unavailable"`` (the venue did not answer:
    ``error`` says why). ``differences`` as found by this sync.
    """

    adapter_id: str
    status: Literal["match", "unconfirmed", "mismatch", "unavailable"]
    differences: tuple[StateDifference, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class BrokerSyncReport:
    """The answer of ``Runtime.sync_broker_state()``: one :class:`AdapterSync` per adapter, the
    trading state after the sync, and when it finished (UTC)."""

    ts: datetime
    adapters: tuple[AdapterSync, ...]
    trading_state: str = "ACTIVE"

    @property
    def ok(self) -> bool:
        """True when every adapter answered and matched the ledger."""
        return all(a.status == "match" for a in self.adapters)

    def of(self, adapter_id: str) -> AdapterSync:
        """The result of ``adapter_id`` (raises ``KeyError``)."""
        for item in self.adapters:
            if item.adapter_id == adapter_id:
                return item
        raise KeyError(adapter_id)


@dataclass
class _Expected:
    positions: dict[str, Decimal] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    #: "first_sync" baseline: venue minus ledger at the first successful sync, per figure
    offsets: dict[tuple[str, str], Decimal] | None = None
    differing: int = 0  # syncs in a row that found differences


class VenueHoldings:
    """Per adapter: the positions and balances the ledger expects at the venue; the comparison.

    ``tolerance``: differences up to this absolute amount are ignored (units of the figure);
    ``confirmations``: syncs in a row that must differ before a mismatch is confirmed;
    ``baseline``: ``"zero"`` or ``"first_sync"`` (module docstring). Single-threaded.
    """

    def __init__(self, *, tolerance: Decimal = _ZERO, confirmations: int = 2,
                 baseline: Literal["zero", "first_sync"] = "zero") -> None:
        if confirmations < 1:
            raise ValueError(f"confirmations must be >= 1, got {confirmations}")
        self._tolerance = Decimal(tolerance)
        self._confirmations = confirmations
        self._baseline = baseline
        self._by_adapter: dict[str, _Expected] = {}

    def on_fill(self, adapter_id: str, symbol: str, side: Side, fill: Fill) -> None:
        """Book one applied fill of an order on ``adapter_id``."""
        exp = self._by_adapter.get(adapter_id)
        if exp is None:
            exp = self._by_adapter[adapter_id] = _Expected()
        signed = fill.qty if side is Side.BUY else -fill.qty
        base, quote = _split_symbol(symbol)
        pos, bal = exp.positions, exp.balances
        pos[symbol] = pos.get(symbol, _ZERO) + signed
        bal[base] = bal.get(base, _ZERO) + signed
        bal[quote] = bal.get(quote, _ZERO) - signed * fill.price
        if fill.fee:
            ccy = fill.fee_currency or quote
            bal[ccy] = bal.get(ccy, _ZERO) - fill.fee

    def on_booking(self, adapter_id: str, symbol: str, side: Side, booking: Fill | FillBooking) -> None:
        """Book what the ledger booked for one applied fill: a ``Fill`` as :meth:`on_fill`; a
        ``FillBooking`` (a real fill covering synthetic quantity booked from a cumulative report)
        as its new part, the price correction of the covered quantity and its fee change."""
        if booking.__class__ is Fill:
            self.on_fill(adapter_id, symbol, side, booking)
            return
        if booking.new is not None:  # type: ignore[union-attr]
            self.on_fill(adapter_id, symbol, side, booking.new)  # type: ignore[union-attr]
        exp = self._by_adapter.setdefault(adapter_id, _Expected())
        fill = booking.fill  # type: ignore[union-attr]
        _, quote = _split_symbol(symbol)
        sign = 1 if side is Side.BUY else -1
        bal = exp.balances
        for qty, booked_px in booking.repriced:  # type: ignore[union-attr]
            bal[quote] = bal.get(quote, _ZERO) - sign * qty * (fill.price - booked_px)
        if booking.fee_delta:  # type: ignore[union-attr]
            ccy = fill.fee_currency or quote
            bal[ccy] = bal.get(ccy, _ZERO) - booking.fee_delta  # type: ignore[union-attr]

    def compare(self, adapter_id: str, positions: Mapping[str, Decimal] | None,
                balances: Mapping[str, Decimal] | None) -> AdapterSync:
        """Compare the venue's answer (None: that figure is not compared) with the expected books.

        Returns ``"match"``, ``"unconfirmed"`` or ``"mismatch"`` (see :class:`AdapterSync`).
        Raises ``ValueError`` for a value that is not a number.
        """
        exp = self._by_adapter.get(adapter_id)
        if exp is None:
            exp = self._by_adapter[adapter_id] = _Expected()
        seen: list[tuple[str, str, Decimal, Decimal]] = []
        for kind, venue_figures, ledger_figures in (("position", positions, exp.positions), ("balance", balances, exp.balances)):
            if venue_figures is None:
                continue
            venue = {str(k): _decimal(kind, k, v) for k, v in venue_figures.items()}
            for key in sorted(set(venue) | set(ledger_figures)):
                seen.append((kind, key, venue.get(key, _ZERO), ledger_figures.get(key, _ZERO)))
        if self._baseline == "first_sync" and exp.offsets is None:
            exp.offsets = {(kind, key): v - led for kind, key, v, led in seen}
        offsets = exp.offsets or {}
        differences = tuple(
            StateDifference(kind, key, v, led)  # type: ignore[arg-type]
            for kind, key, v, led in seen
            if abs(v - offsets.get((kind, key), _ZERO) - led) > self._tolerance
        )
        if not differences:
            exp.differing = 0
            return AdapterSync(adapter_id, "match")
        exp.differing += 1
        status = "mismatch" if exp.differing >= self._confirmations else "unconfirmed"
        return AdapterSync(adapter_id, status, differences)  # type: ignore[arg-type]


def _decimal(kind: str, key: object, value: object) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except Exception as exc:
        raise ValueError(f"venue {kind} {key!r} is not a number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"venue {kind} {key!r} is not finite: {value!r}")
    return number
