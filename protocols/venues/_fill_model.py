"""The paper fill model, version ``FILL_MODEL_VERSION`` (pure, deterministic, Decimal only).

Simulated venues (``PaperVenue``, ``ShadowVenue``) decide every fill with this module; it
keeps no state of its own (only a memo that never changes a result): the venue hands it the
top of book and its resting orders and gets back planned executions. Same inputs, same
executions, byte for byte (SPEC §11).

Rules (version 1.0). "Touch" is the last *good* quote of the symbol: ask for a BUY, bid for a
SELL. Prices are in quote currency, quantities in base units.

1. **Venue time** is market-data time: the ``ts`` of the last Quote/Trade fed to the venue,
   never the wall clock. Latency (``latency_us``) is modelled only in timestamps: fills made on
   arrival are stamped ``venue time + latency_us``; nothing ever sleeps, and which quote an
   order meets does not change.
2. **Validation** (Binance spot filters, see ``protocols.Instrument``), in this order, each a
   reject with a code: unknown symbol (``UNKNOWN_SYMBOL``); quantity below or not a multiple of
   the lot size (``LOT_SIZE``); limit price not a multiple of the tick size (``TICK_SIZE``);
   market order while the book is halted (``MARKET_HALTED``, rule 9) or before any good quote
   (``NO_MARKET_DATA``, "no market data"); notional below the instrument's min notional
   (``MIN_NOTIONAL``; a limit order uses its limit price, a market order the touch price).
3. **Rounding.** Every fill price is rounded to the instrument's tick toward the worse side for
   us (up for a BUY, down for a SELL); every fill quantity is rounded down to the lot size.
4. **Displayed size.** The size available at a quote's touch is its displayed size rounded
   down to the lot; a displayed size below one lot (including 0) counts as one lot. Our own
   taker fills deplete the touch until the next quote replaces it (a second order at the same
   quote sees only what the first left); deeper modelled levels (rule 5) are not depleted.
5. **Market orders** take the touch as TAKER at the touch price up to the available touch size.
   The remainder follows ``market_remainder``:
   ``"walk"``: further levels, each ``market_slippage_bps`` worse than the previous one
   (compounded: ``p[k] = round_worse(p[k-1] * (1 ± bps/10000))``), each of the touch's displayed
   size (rule 4), until the order is filled; at most ``max_walk_levels`` levels are walked and a
   SELL never walks to a price <= 0; whatever is still left then is EXPIRED.
   ``"expire"``: the remainder is EXPIRED at once (IOC semantics).
   A fully filled market order is FILLED; one with a remainder is EXPIRED (with its fills).
   A FOK market order that the rule cannot fill completely is EXPIRED with no fill.
6. **Marketable limit orders** (BUY limit >= ask, SELL limit <= bid on arrival) fill at once as
   TAKER at the touch price (not the limit) up to the available touch size (one level, no
   walk). The remainder rests (GTC, DAY) or is EXPIRED (IOC). FOK fills completely at once or
   is EXPIRED with no fill. A non-marketable IOC/FOK is EXPIRED with no fill. A limit order that
   arrives before any quote simply rests (IOC/FOK expire).
7. **Resting limit orders on trades** fill as MAKER at their limit price when a later trade
   prints through the limit (BUY: price < limit; SELL: price > limit) or at the limit (queue
   rule: we assume the front of the queue, so a print *at* the limit fills too). The print's
   side (aggressor) is not used. Fill size is capped by the print's quantity, and a print's
   quantity is consumed once across all our resting orders of the symbol, in price-time
   priority (most aggressive limit first, then arrival order). A market trade id that already
   produced fills is never used again (replays after a restart cannot double-fill).
8. **Resting limit orders on quotes**: a later good quote that crosses a resting order (ask <=
   limit for a BUY, bid >= limit for a SELL) fills it as MAKER at the limit price up to the
   quote's displayed size (rule 4), shared across our resting orders in price-time priority;
   what they consume depletes that touch for orders arriving next.
9. **Crossed or locked quotes** (bid >= ask) are never used as a touch. ``locked_crossed_rule``:
   ``"skip"``: the quote is ignored and the last good touch stays in force;
   ``"halt"``: the symbol is halted until the next good quote: market orders are rejected
   (``MARKET_HALTED``), limit orders are accepted but not matched on arrival (IOC/FOK expire,
   GTC/DAY rest), the crossed quote fills nothing. Trades still fill resting orders (rule 7)
   under both rules. Never a crash.
10. **Fees** are ``notional * bps / 10000`` in the quote currency (``maker_fee_bps`` or
   ``taker_fee_bps``), rounded half-up to 8 decimal places. Fees are never negative (no rebates).
11. **Trade ids** of our fills are ``f"{venue_prefix}-{n}"`` with ``n`` the venue's own fill
   counter (1, 2, ...), so the same input gives the same ids.
12. **DAY orders** expire when the market-data clock passes a UTC date change: the first event
   whose UTC date is later than the venue date at acceptance expires them (before that event is
   matched). The acceptance date is the venue time's date, or the order's own ``ts`` before
   any market data.

Example::

    >>> from decimal import Decimal
    >>> cfg = FillModelConfig(taker_fee_bps=Decimal("10"))
    >>> FillModel(cfg).fee(Decimal("0.5"), Decimal("100"), Liquidity.TAKER)
    Decimal('0.05000000')
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Annotated, Any, Iterable, Literal, Mapping, Sequence

from pydantic import AfterValidator, Field, model_validator

from .._adapter import VenueOrder
from .._enums import Liquidity, OrderStatus, OrderType, Side, TimeInForce
from .._instruments import DEFAULT_INSTRUMENTS, Instrument
from .._market import Quote, Trade
from .._model import Frozen, NonNegDec

FILL_MODEL_VERSION = "1.0"
"""Version of the rules above; bump it whenever any rule changes a fill."""

_BPS = Decimal(10000)
_FEE_QUANTUM = Decimal("0.00000001")
_ZERO = Decimal(0)
# Enum members the per-order path compares against, bound once: looking a member up on its
# Enum class costs ~70 ns each time, and an order takes a dozen of them.
_BUY = Side.BUY
_MARKET, _LIMIT = OrderType.MARKET, OrderType.LIMIT
_IOC, _FOK = TimeInForce.IOC, TimeInForce.FOK
_MAKER, _TAKER = Liquidity.MAKER, Liquidity.TAKER
_ACCEPTED, _PARTIALLY_FILLED = OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED
_FILLED, _EXPIRED = OrderStatus.FILLED, OrderStatus.EXPIRED


def _freeze_instruments(value: Mapping[str, Instrument]) -> Mapping[str, Instrument]:
    for key, inst in value.items():
        if key != inst.symbol:
            raise ValueError(f"instrument key {key!r} does not match its symbol {inst.symbol!r}")
    return MappingProxyType(dict(value))


InstrumentMap = Annotated[Mapping[str, Instrument], AfterValidator(_freeze_instruments)]


class FillModelConfig(Frozen):
    """Parameters of the fill model (frozen; pydantic errors name the bad field).

    ``maker_fee_bps`` / ``taker_fee_bps``: fees in basis points of notional (>= 0).
    ``market_slippage_bps``: how much worse each walked level is than the previous (>= 0).
    ``market_remainder``: ``"walk"`` or ``"expire"`` (rule 5).
    ``locked_crossed_rule``: ``"skip"`` or ``"halt"`` (rule 9).
    ``max_walk_levels``: cap on walked levels beyond the touch (rule 5).
    ``latency_us``: added to the timestamps of fills made on arrival (rule 1), microseconds.
    ``instruments``: symbol -> ``Instrument`` (read-only mapping; keys must match the symbols).
    """

    maker_fee_bps: NonNegDec = Decimal("2")
    taker_fee_bps: NonNegDec = Decimal("5")
    market_slippage_bps: NonNegDec = Decimal("5")
    market_remainder: Literal["walk", "expire"] = "walk"
    locked_crossed_rule: Literal["skip", "halt"] = "skip"
    max_walk_levels: int = Field(default=100, ge=1, le=100_000)
    latency_us: int = Field(default=0, ge=0)
    instruments: InstrumentMap = Field(default_factory=lambda: dict(DEFAULT_INSTRUMENTS), validate_default=True)

    @model_validator(mode="after")
    def _has_instruments(self) -> "FillModelConfig":
        if not self.instruments:
            raise ValueError("instruments must name at least one instrument")
        return self

    @classmethod
    def from_settings(cls, settings: Any) -> "FillModelConfig":
        """Build from the paper settings object (``config.PaperSettings``), tolerant of absent fields.

        Reads the attributes ``maker_fee_bps``, ``taker_fee_bps``, ``market_slippage_bps``,
        ``market_remainder``, ``locked_crossed_rule``, ``max_walk_levels``, ``latency_us`` when
        present (defaults otherwise) and ``settings.instrument_map()`` when that method exists
        (``DEFAULT_INSTRUMENTS`` otherwise). Raises ``pydantic.ValidationError`` naming a bad value.
        """
        values: dict[str, Any] = {}
        for name in (
            "maker_fee_bps",
            "taker_fee_bps",
            "market_slippage_bps",
            "market_remainder",
            "locked_crossed_rule",
            "max_walk_levels",
            "latency_us",
        ):
            if hasattr(settings, name):
                values[name] = getattr(settings, name)
        instrument_map = getattr(settings, "instrument_map", None)
        values["instruments"] = instrument_map() if callable(instrument_map) else dict(DEFAULT_INSTRUMENTS)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the venue refuses an order: a stable ``code`` (e.g. ``TICK_SIZE``) and a readable ``reason``."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Execution:
    """One planned fill: ``qty`` (base units) at ``price`` (quote currency) with ``liquidity``."""

    qty: Decimal
    price: Decimal
    liquidity: Liquidity


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """The venue's view of one symbol: last good ``quote`` (or None), what is left at each touch
    (``bid_avail``/``ask_avail``, rule 4) and whether the symbol is ``halted`` (rule 9)."""

    quote: Quote | None = None
    bid_avail: Decimal = Decimal(0)
    ask_avail: Decimal = Decimal(0)
    halted: bool = False

    @property
    def usable(self) -> bool:
        """True when there is a good touch and the symbol is not halted."""
        return self.quote is not None and not self.halted


# A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` by name;
# :func:`_new_top_of_book` (one per order that takes liquidity) sets the slots through their
# descriptors instead: the same frozen object in about half the time.
if tuple(f.name for f in fields(TopOfBook)) != ("quote", "bid_avail", "ask_avail", "halted"):  # pragma: no cover
    raise AssertionError("_new_top_of_book() must set every TopOfBook field")
_set_quote, _set_bid_avail, _set_ask_avail, _set_halted = (
    TopOfBook.__dict__[name].__set__ for name in ("quote", "bid_avail", "ask_avail", "halted")
)
_new_object = object.__new__


def _new_top_of_book(quote: Quote | None, bid_avail: Decimal, ask_avail: Decimal, halted: bool) -> TopOfBook:
    """``TopOfBook(quote, bid_avail, ask_avail, halted)``, faster."""
    book = _new_object(TopOfBook)
    _set_quote(book, quote)
    _set_bid_avail(book, bid_avail)
    _set_ask_avail(book, ask_avail)
    _set_halted(book, halted)
    return book


@dataclass(frozen=True, slots=True)
class Resting:
    """A resting limit order as the model sees it: arrival ``seq``, ``side``, ``limit_price``, ``leaves_qty``."""

    seq: int
    side: Side
    limit_price: Decimal
    leaves_qty: Decimal


@dataclass(frozen=True, slots=True)
class Arrival:
    """Outcome of an order's arrival: ``executions`` (taker fills), final or working ``status``,
    and the ``book`` after our fills depleted the touch."""

    executions: tuple[Execution, ...]
    status: OrderStatus
    book: TopOfBook | None


def round_price(price: Decimal, tick: Decimal, side: Side) -> Decimal:
    """Round ``price`` to a multiple of ``tick`` toward the worse side for ``side`` (rule 3)."""
    # rounding passed positionally: the keyword costs ~0.1 µs per call
    steps = (price / tick).to_integral_value(ROUND_CEILING if side is _BUY else ROUND_FLOOR)
    return steps * tick


def floor_lot(qty: Decimal, lot: Decimal) -> Decimal:
    """Round ``qty`` down to a multiple of ``lot`` (rule 3)."""
    return (qty / lot).to_integral_value(ROUND_FLOOR) * lot  # rounding positionally (faster)


def quote_currency(symbol: str) -> str:
    """``USDT`` for ``BTC/USDT`` (the whole symbol when it has no ``/``)."""
    return symbol.split("/", 1)[1] if "/" in symbol else symbol


def base_currency(symbol: str) -> str:
    """``BTC`` for ``BTC/USDT``."""
    return symbol.split("/", 1)[0]


PlannedFills = tuple[tuple[Decimal, Decimal, Liquidity], ...]
"""Planned executions as ``(qty, price, liquidity)`` triples (see :meth:`FillModel._plan_arrival`)."""


class FillModel:
    """The rules of this module bound to one :class:`FillModelConfig`. Thread-safe, and stateless
    but for a memo of the last rounded touch price that never changes a result."""

    version = FILL_MODEL_VERSION

    def __init__(self, config: FillModelConfig) -> None:
        self.config = config
        # One-entry memo of the rounded touch price (rule 3) of the last quote an order took
        # from (:meth:`_touch_price`): ``(quote, tick, side, price)``, matched by identity. Quotes
        # and ticks are immutable and the memo holds them (their ids cannot be reused), so a hit
        # is always the value ``round_price`` would give; the tuple is replaced whole, so
        # concurrent readers never see a torn entry.
        self._touch_memo: tuple[Quote | None, Decimal | None, Side | None, Decimal] = (None, None, None, Decimal(0))

    # -- helpers ------------------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument for ``symbol`` or None when the venue does not list it."""
        return self.config.instruments.get(symbol)

    def fee(self, qty: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        """Fee in quote currency for a fill (rule 10): ``qty*price*bps/10000`` rounded half-up to 8 dp."""
        bps = self.config.maker_fee_bps if liquidity is _MAKER else self.config.taker_fee_bps
        return (qty * price * bps / _BPS).quantize(_FEE_QUANTUM, ROUND_HALF_UP)  # rounding positionally (faster)

    def _displayed(self, size: Decimal, lot: Decimal) -> Decimal:
        return max(floor_lot(size, lot), lot)

    @staticmethod
    def is_bad_quote(quote: Quote) -> bool:
        """True for a crossed or locked quote (bid >= ask), rule 9."""
        return quote.bid >= quote.ask

    # -- market data ---------------------------------------------------------------------
    def on_quote(self, book: TopOfBook | None, quote: Quote) -> TopOfBook:
        """The symbol's top of book after ``quote`` (rule 9 for crossed/locked quotes)."""
        if self.is_bad_quote(quote):
            book = book or TopOfBook()
            if self.config.locked_crossed_rule == "halt":
                return replace(book, halted=True)
            return book
        inst = self.instrument(quote.symbol)
        if inst is None:
            return TopOfBook(quote, quote.bid_size, quote.ask_size, False)
        return TopOfBook(
            quote, self._displayed(quote.bid_size, inst.lot_size), self._displayed(quote.ask_size, inst.lot_size), False
        )

    # -- validation ----------------------------------------------------------------------
    def check(self, order: VenueOrder, book: TopOfBook | None) -> Rejection | None:
        """Validate ``order`` against its instrument and the book (rule 2); None when it passes."""
        inst = self.instrument(order.symbol)
        if inst is None:
            return Rejection("UNKNOWN_SYMBOL", f"unknown symbol {order.symbol!r}")
        qty = order.quantity
        if qty < inst.lot_size:
            return Rejection("LOT_SIZE", f"quantity {qty:f} is below lot size {inst.lot_size:f}")
        if qty % inst.lot_size != _ZERO:  # (a Decimal zero compares faster than the int 0)
            return Rejection("LOT_SIZE", f"quantity {qty:f} is not a multiple of lot size {inst.lot_size:f}")
        if order.order_type is _LIMIT:
            price = order.limit_price
            assert price is not None  # VenueOrder from a validated intent
            if price % inst.tick_size != _ZERO:
                return Rejection("TICK_SIZE", f"price {price:f} is not a multiple of tick size {inst.tick_size:f}")
        else:
            if book is not None and book.halted:
                return Rejection("MARKET_HALTED", "market halted: crossed or locked quote")
            if book is None or book.quote is None:
                return Rejection("NO_MARKET_DATA", "no market data")
            price = book.quote.ask if order.side is _BUY else book.quote.bid
        notional = qty * price
        if notional < inst.min_notional:
            return Rejection("MIN_NOTIONAL", f"notional {notional:f} is below min notional {inst.min_notional:f}")
        return None

    # -- arrival -------------------------------------------------------------------------
    def arrival(self, order: VenueOrder, book: TopOfBook | None) -> Arrival:
        """Match a validated ``order`` on arrival (rules 5, 6, 9). Call :meth:`check` first."""
        executions, status, book = self._plan_arrival(order, book)
        return Arrival(tuple(Execution(qty, price, liq) for qty, price, liq in executions), status, book)

    def _plan_arrival(
        self, order: VenueOrder, book: TopOfBook | None
    ) -> tuple[PlannedFills, OrderStatus, TopOfBook | None]:
        """:meth:`arrival` as a plain ``(executions, status, book)`` tuple, each execution a
        ``(qty, price, liquidity)`` triple: the same outcome without building ``Execution`` and
        ``Arrival`` objects (the venue's per-order path uses this form)."""
        inst = self.instrument(order.symbol)
        assert inst is not None
        if order.order_type is _MARKET:
            assert book is not None and book.usable
            return self._market(order, book, inst)
        tif = order.time_in_force
        if book is None or not book.usable:
            status = _EXPIRED if tif in (_IOC, _FOK) else _ACCEPTED
            return (), status, book
        quote = book.quote
        assert quote is not None and order.limit_price is not None
        side = order.side
        buy = side is _BUY
        touch = quote.ask if buy else quote.bid
        marketable = order.limit_price >= touch if buy else order.limit_price <= touch
        take = _ZERO
        if marketable:
            avail = floor_lot(book.ask_avail if buy else book.bid_avail, inst.lot_size)
            take = min(order.quantity, avail)
        if tif is _FOK and take < order.quantity:
            return (), _EXPIRED, book
        execs: PlannedFills = ()
        if take > 0:
            execs = ((take, self._touch_price(quote, inst.tick_size, side), _TAKER),)
            book = self._deplete(book, side, take)
        if take == order.quantity:
            status = _FILLED
        elif tif is _IOC or tif is _FOK:
            status = _EXPIRED
        else:
            status = _PARTIALLY_FILLED if take > 0 else _ACCEPTED
        return execs, status, book

    def _touch_price(self, quote: Quote, tick: Decimal, side: Side) -> Decimal:
        """``round_price(touch, tick, side)`` (rules 3, 5, 6), memoised for the last quote."""
        memo = self._touch_memo
        if memo[0] is quote and memo[1] is tick and memo[2] is side:
            return memo[3]
        price = round_price(quote.ask if side is _BUY else quote.bid, tick, side)
        self._touch_memo = (quote, tick, side, price)
        return price

    def _market(
        self, order: VenueOrder, book: TopOfBook, inst: Instrument
    ) -> tuple[PlannedFills, OrderStatus, TopOfBook]:
        quote = book.quote
        assert quote is not None
        side = order.side
        buy = side is _BUY
        touch = self._touch_price(quote, inst.tick_size, side)
        avail = floor_lot(book.ask_avail if buy else book.bid_avail, inst.lot_size)
        remaining = order.quantity
        execs: list[tuple[Decimal, Decimal, Liquidity]] = []
        take0 = min(remaining, avail)
        if take0 > _ZERO:  # (a Decimal zero compares faster than the int 0)
            execs.append((take0, touch, _TAKER))
            remaining -= take0
        if remaining > _ZERO and self.config.market_remainder == "walk":
            level = self._displayed(quote.ask_size if buy else quote.bid_size, inst.lot_size)
            step = self.config.market_slippage_bps / _BPS
            factor = (1 + step) if buy else (1 - step)
            price = touch
            for _ in range(self.config.max_walk_levels):
                price = round_price(price * factor, inst.tick_size, side)
                if price <= 0:
                    break
                take = min(remaining, level)
                execs.append((take, price, _TAKER))
                remaining -= take
                if remaining == 0:
                    break
        if order.time_in_force is _FOK and remaining > 0:
            return (), _EXPIRED, book
        if take0 > _ZERO:
            book = self._deplete(book, side, take0)
        status = _FILLED if remaining == _ZERO else _EXPIRED
        return tuple(execs), status, book

    @staticmethod
    def _deplete(book: TopOfBook, side: Side, qty: Decimal) -> TopOfBook:
        if type(book) is not TopOfBook:  # a subclass: let ``replace`` build its own kind
            if side is _BUY:
                return replace(book, ask_avail=max(book.ask_avail - qty, Decimal(0)))
            return replace(book, bid_avail=max(book.bid_avail - qty, Decimal(0)))
        # what ``replace`` builds, without its per-field introspection
        if side is _BUY:
            return _new_top_of_book(book.quote, book.bid_avail, max(book.ask_avail - qty, _ZERO), book.halted)
        return _new_top_of_book(book.quote, max(book.bid_avail - qty, _ZERO), book.ask_avail, book.halted)

    # -- resting orders ------------------------------------------------------------------
    @staticmethod
    def _priority(resting: Iterable[Resting], ref: Decimal) -> list[Resting]:
        """Price-time priority: most aggressive limit relative to ``ref`` first, then arrival."""

        def key(r: Resting) -> tuple[Decimal, int]:
            through = (r.limit_price - ref) if r.side is Side.BUY else (ref - r.limit_price)
            return (-through, r.seq)

        return sorted(resting, key=key)

    def match_trade(self, trade: Trade, resting: Sequence[Resting]) -> list[tuple[int, Execution]]:
        """Fills of resting orders caused by ``trade`` (rule 7): ``[(seq, Execution), ...]`` in fill order."""
        inst = self.instrument(trade.symbol)
        if inst is None:
            return []
        eligible = [
            r
            for r in resting
            if (r.limit_price >= trade.price if r.side is Side.BUY else r.limit_price <= trade.price)
        ]
        pool = trade.qty
        out: list[tuple[int, Execution]] = []
        for r in self._priority(eligible, trade.price):
            take = floor_lot(min(r.leaves_qty, pool), inst.lot_size)
            if take <= 0:
                break
            out.append((r.seq, Execution(take, r.limit_price, Liquidity.MAKER)))
            pool -= take
        return out

    def match_quote(self, book: TopOfBook, resting: Sequence[Resting]) -> tuple[TopOfBook, list[tuple[int, Execution]]]:
        """Fills of resting orders crossed by the book's (new, good) quote (rule 8) and the depleted book."""
        quote = book.quote
        if quote is None or book.halted:
            return book, []
        inst = self.instrument(quote.symbol)
        if inst is None:
            return book, []
        out: list[tuple[int, Execution]] = []
        for side, touch in ((Side.BUY, quote.ask), (Side.SELL, quote.bid)):
            crossed = [
                r
                for r in resting
                if r.side is side and (r.limit_price >= touch if side is Side.BUY else r.limit_price <= touch)
            ]
            if not crossed:
                continue
            pool = book.ask_avail if side is Side.BUY else book.bid_avail
            used = Decimal(0)
            for r in self._priority(crossed, touch):
                take = floor_lot(min(r.leaves_qty, pool - used), inst.lot_size)
                if take <= 0:
                    break
                out.append((r.seq, Execution(take, r.limit_price, Liquidity.MAKER)))
                used += take
            if used:
                book = self._deplete(book, side, used)
        return book, out

    @staticmethod
    def day_expired(accepted_day: date, event_day: date) -> bool:
        """True when a DAY order accepted on ``accepted_day`` expires at an event on ``event_day`` (rule 12)."""
        return event_day > accepted_day
