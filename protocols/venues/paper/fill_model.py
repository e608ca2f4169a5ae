"""The paper fill model, version ``FILL_MODEL_VERSION`` (pure, deterministic, Decimal only).

Simulated venues (``PaperVenue``, ``ShadowVenue``) decide every fill with this module; it
keeps no state of its own (only a memo that never changes a result): the venue hands it the
top of book and its resting orders and gets back planned executions. Same inputs, same
executions, byte for byte (README.md, Write an adapter).

Rules (version 2.0). "Touch" is the venue's best price on the side an order takes from: ask for
a BUY, bid for a SELL. It comes from the last *good* quote (rule 11) and, with
``trades_move_touch``, from trades since that quote (rule 5). Prices are in quote currency,
quantities in base units. Two modes (``fill_model``): ``"flowroute"`` (rules 1-14, the default)
and ``"nautilus_l1"`` (rule 15, NautilusTrader 1.221's L1 matching engine); rules 1-3 and 11-14
hold in both.

1. **Venue time** is market-data time: the ``ts`` of the last Quote/Trade fed to the venue,
   never the wall clock. Latency (``latency_us``) is modelled only in timestamps: fills made on
   arrival are stamped ``venue time + latency_us``; nothing ever sleeps, and which quote an
   order meets does not change.
2. **Validation** (Binance spot filters, see ``protocols.Instrument``), in this order, each a
   reject with a code: unknown symbol (``UNKNOWN_SYMBOL``); quantity below or not a multiple of
   the lot size (``LOT_SIZE``); limit price not a multiple of the tick size (``TICK_SIZE``);
   market order while the book is halted (``MARKET_HALTED``, rule 11) or before any good quote
   (``NO_MARKET_DATA``, "no market data"; trades alone never make a market); notional below the
   instrument's min notional (``MIN_NOTIONAL``; a limit order uses its limit price, a market
   order the touch price).
3. **Rounding.** Every fill price is rounded to the instrument's tick toward the worse side for
   us (up for a BUY, down for a SELL); every fill quantity is rounded down to the lot size.
4. **Displayed size.** The size available at the touch is its displayed size rounded down to
   the lot; a displayed size below one lot (including 0) counts as one lot. Our own taker fills
   deplete the touch, and the depth levels of rule 6, until the next good quote replaces them
   (a second order at the same quote sees only what the first left).
5. **Trades move the touch** (``trades_move_touch``, on by default). A trade print after the
   first good quote is evidence of where its aggressor's side of the book is now. A BUY print
   at ``P``: ``P`` above the ask (through it) or below it (the quote was stale) makes ``P`` the
   ask with the print's quantity as its size (rule 4); ``P`` at the ask takes the print's
   quantity from the ask's size (at least one lot stays); ``P`` below the bid moves the bid to
   ``P`` too. A SELL print mirrors this on the bid. A print without aggressor acts as a BUY
   print when ``P >= ask`` and as a SELL print when ``P <= bid``. The next good quote replaces
   the touch. Off: trades never change the touch. (NautilusTrader calls this
   ``trade_execution``; it always moves the touch, rule 15.)
6. **Depth beyond the touch is evidence, never invented.** The levels worse than the touch
   that an order may take are the prices at which the market showed liquidity within the last
   ``depth_window_s`` seconds of venue time (at most the 10,000 most recent entries,
   :class:`DepthEvidence`): the asks (for a BUY; bids for a SELL) of good quotes with their
   displayed size, and trade prints with their quantity; and the levels configured for the
   instrument (``depth``: ``(ticks, size)`` pairs, a level ``ticks`` ticks beyond the touch, an
   explicit statement by the user, e.g. from a venue's depth snapshot). A level's size is the
   largest of the largest displayed size, the total traded quantity and the configured size at
   that price, less what our own fills took there since the last quote (rule 4). Levels are taken best price first, at most
   ``max_walk_levels`` of them. Beyond the last level there is no evidence and nothing fills.
7. **Market orders** take the touch as TAKER at the touch price up to its size, then (with
   ``market_remainder = "walk"``) the depth levels of rule 6 at each level's price;
   ``"expire"`` takes the touch only. What is still left is EXPIRED: a market order never
   rests, so GTC/DAY and IOC (FIX ``TimeInForce(59)=3``: fill what is available now, cancel the
   rest) behave the same. A fully filled order is FILLED, one with a remainder EXPIRED (with
   its fills). FOK (``59=4``) fills entirely or not at all, judged on that available
   quantity: EXPIRED with no fill when it is short.
8. **Marketable limit orders** (BUY limit >= touch, SELL limit <= touch on arrival) fill at
   once as TAKER at the touch price (not the limit), then at the depth levels of rule 6 priced
   no worse than the limit. The remainder rests (GTC, DAY) or is EXPIRED (IOC). FOK fills
   completely at once or is EXPIRED with no fill. A non-marketable IOC/FOK is EXPIRED with no
   fill. A limit order that arrives before any quote simply rests (IOC/FOK expire).
9. **Resting limit orders on trades** fill as MAKER at their limit price when a later trade
   prints through the limit (BUY: price < limit; SELL: price > limit) or at the limit (queue
   rule: we assume the front of the queue, so a print *at* the limit fills too). The print's
   side (aggressor) is not used. Fill size is capped by the print's quantity, and a print's
   quantity is consumed once across all our resting orders of the symbol, in price-time
   priority (most aggressive limit first, then arrival order). A market trade id that already
   produced fills is never used again (replays after a restart cannot double-fill).
10. **Resting limit orders on quotes**: a later good quote that crosses a resting order (ask
   <= limit for a BUY, bid >= limit for a SELL) fills it as MAKER at the limit price up to the
   quote's displayed size (rule 4), shared across our resting orders in price-time priority;
   what they consume depletes that touch for orders arriving next.
11. **Crossed or locked quotes** (bid >= ask) are never used as a touch. ``locked_crossed_rule``:
   ``"skip"``: the quote is ignored and the last good touch stays in force;
   ``"halt"``: the symbol is halted until the next good quote: market orders are rejected
   (``MARKET_HALTED``), limit orders are accepted but not matched on arrival (IOC/FOK expire,
   GTC/DAY rest), the crossed quote fills nothing. Trades still fill resting orders (rules 9,
   15) under both rules. Never a crash.
12. **Fees** are ``notional * bps / 10000`` in the quote currency (``maker_fee_bps`` or
   ``taker_fee_bps``), rounded half-up to 8 decimal places. Fees are never negative (no rebates).
13. **Trade ids** of our fills are ``f"{venue_prefix}-{n}"`` with ``n`` the venue's own fill
   counter (1, 2, ...), so the same input gives the same ids.
14. **DAY orders** expire when the market-data clock passes a UTC date change: the first event
   whose UTC date is later than the venue date at acceptance expires them (before that event is
   matched). The acceptance date is the venue time's date, or the order's own ``ts`` before
   any market data.
15. **``fill_model = "nautilus_l1"``** reproduces the L1 rules of NautilusTrader 1.221's
   ``OrderMatchingEngine`` (``book_type=L1_MBP``, ``trade_execution=True``, default
   ``FillModel``: no random slippage, limits always fill when touched), so that a strategy
   moving from Nautilus sees the same fills (``docs/FILL_MODEL.md`` compares the two). It
   keeps two views of the market: the *L1 level* (price and size of the last quote, or of the
   last trade on both sides) and the *matching prices* (bid/ask of the last quote, moved by
   trades as in rule 5 but with no size). Our fills never deplete either (rule 4 does not
   apply); sizes are not rounded to the lot.
   N1. A market order fills ``min(qty, level size)`` at the matching price, then (GTC/DAY) the
   whole remainder one tick worse; IOC expires the remainder; FOK expires with no fill when
   the level size is short.
   N2. A limit order is marketable when the matching price reaches it. It then fills as TAKER
   ``min(qty, level size)`` at the *level* price; IOC expires the rest; FOK needs the level
   size; the remainder rests when the limit equals the matching price, else it fills in full
   one tick worse than the level price.
   N3. On every quote and trade, resting orders are matched bids first (highest limit first)
   then asks (lowest first), arrival order within a price. A resting BUY matches when the
   matching ask is at or below its limit (SELL: bid at or above). It fills as MAKER at its
   limit ``min(leaves, level size)``; when the level price is strictly through the limit, the
   whole order fills ("the market moved through the limit") and, as in Nautilus, the matching
   ask (bid) is held at that limit for the rest of that pass; otherwise the remainder rests.

Nautilus behaviours deliberately not reproduced in either mode: a market created by trades
before the first quote (rule 2), its random fill and slippage probabilities, and fees (rule 12
applies).

Example::

    >>> from decimal import Decimal
    >>> cfg = FillModelConfig(taker_fee_bps=Decimal("10"))
    >>> FillModel(cfg).fee(Decimal("0.5"), Decimal("100"), Liquidity.TAKER)
    Decimal('0.05000000')
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_serializer, model_validator

from ...adapter import VenueOrder
from ...market.values import Quote, Trade
from ...model.base import Frozen, NonNegDec
from ...model.dataclass_compat import builder
from ...model.enums import Liquidity, OrderStatus, OrderType, Side, TimeInForce
from ...model.instruments import DEFAULT_INSTRUMENTS, Instrument

FILL_MODEL_VERSION = "2.0"
"""Version of the rules above; bump it whenever any rule changes a fill."""

_BPS = Decimal(10000)
_FEE_QUANTUM = Decimal("0.00000001")
_ZERO = Decimal(0)
# Enum members the per-order path compares against, bound once: looking a member up on its
# Enum class costs ~70 ns each time, and an order takes a dozen of them.
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT = OrderType.MARKET, OrderType.LIMIT
_IOC, _FOK = TimeInForce.IOC, TimeInForce.FOK
_MAKER, _TAKER = Liquidity.MAKER, Liquidity.TAKER
_ACCEPTED, _PARTIALLY_FILLED = OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED
_FILLED, _EXPIRED = OrderStatus.FILLED, OrderStatus.EXPIRED
# kinds of evidence entries (rule 6)
_EV_BID, _EV_ASK, _EV_TRADE = 0, 1, 2


def _freeze_instruments(value: Mapping[str, Instrument]) -> Mapping[str, Instrument]:
    for key, inst in value.items():
        if key != inst.symbol:
            raise ValueError(f"instrument key {key!r} does not match its symbol {inst.symbol!r}")
    return MappingProxyType(dict(value))


InstrumentMap = Annotated[Mapping[str, Instrument], AfterValidator(_freeze_instruments)]


def _freeze_depth(value: Mapping[str, Sequence[tuple[int, Decimal]]]) -> Mapping[str, tuple[tuple[int, Decimal], ...]]:
    out = {}
    for symbol, levels in value.items():
        for ticks, size in levels:
            if ticks < 1:
                raise ValueError(f"depth of {symbol}: ticks must be >= 1, got {ticks}")
            if size <= 0:
                raise ValueError(f"depth of {symbol}: size must be > 0, got {size}")
        out[symbol] = tuple(sorted((int(t), Decimal(z)) for t, z in levels))
    return MappingProxyType(out)


DepthMap = Annotated[Mapping[str, Sequence[tuple[int, Decimal]]], AfterValidator(_freeze_depth)]


class FillModelConfig(Frozen):
    """Parameters of the fill model (frozen; pydantic errors name the bad field).

    ``fill_model``: ``"flowroute"`` (rules 1-14) or ``"nautilus_l1"`` (rule 15).
    ``maker_fee_bps`` / ``taker_fee_bps``: fees in basis points of notional (>= 0, rule 12).
    ``market_remainder``: ``"walk"`` (take the evidence depth of rule 6) or ``"expire"``
    (touch only), rule 7.
    ``trades_move_touch``: rule 5 (on by default).
    ``depth_window_s``: how far back (seconds of venue time) quotes and trades count as depth
    evidence, rule 6 (> 0, at most one day).
    ``max_walk_levels``: cap on depth levels taken beyond the touch (rule 6).
    ``depth``: symbol -> configured ``(ticks, size)`` levels beyond the touch (rule 6; ticks >= 1,
    size > 0 in base units; read-only).
    ``locked_crossed_rule``: ``"skip"`` or ``"halt"`` (rule 11).
    ``latency_us``: added to the timestamps of fills made on arrival (rule 1), microseconds.
    ``instruments``: symbol -> ``Instrument`` (read-only mapping; keys must match the symbols).
    """

    fill_model: Literal["flowroute", "nautilus_l1"] = "flowroute"
    maker_fee_bps: NonNegDec = Decimal("2")
    taker_fee_bps: NonNegDec = Decimal("5")
    market_remainder: Literal["walk", "expire"] = "walk"
    trades_move_touch: bool = True
    depth_window_s: Decimal = Field(default=Decimal("2"), gt=0, le=86400)
    locked_crossed_rule: Literal["skip", "halt"] = "skip"
    max_walk_levels: int = Field(default=100, ge=1, le=100_000)
    latency_us: int = Field(default=0, ge=0)
    instruments: InstrumentMap = Field(default_factory=lambda: dict(DEFAULT_INSTRUMENTS), validate_default=True)
    depth: DepthMap = Field(default_factory=dict, validate_default=True)

    @model_validator(mode="after")
    def _has_instruments(self) -> FillModelConfig:
        if not self.instruments:
            raise ValueError("instruments must name at least one instrument")
        unknown = sorted(set(self.depth) - set(self.instruments))
        if unknown:
            raise ValueError(f"depth names symbols that are not instruments: {', '.join(unknown)}")
        return self

    @field_serializer("depth")
    def _dump_depth(self, depth: Mapping[str, tuple[tuple[int, Decimal], ...]]) -> dict[str, list[list[Any]]]:
        return {symbol: [[ticks, str(size)] for ticks, size in levels] for symbol, levels in depth.items()}

    @classmethod
    def from_settings(cls, settings: Any) -> FillModelConfig:
        """Build from the paper settings object (``config.PaperSettings``), tolerant of absent fields.

        Reads the attributes ``fill_model``, ``maker_fee_bps``, ``taker_fee_bps``,
        ``market_remainder``, ``trades_move_touch``, ``depth_window_s``, ``locked_crossed_rule``,
        ``max_walk_levels``, ``latency_us`` when present (defaults otherwise),
        ``settings.instrument_map()`` when that method exists (``DEFAULT_INSTRUMENTS``
        otherwise) and ``settings.depth_map()`` when it exists. Raises ``pydantic.ValidationError`` naming a bad value.
        """
        values: dict[str, Any] = {}
        for name in (
            "fill_model",
            "maker_fee_bps",
            "taker_fee_bps",
            "market_remainder",
            "trades_move_touch",
            "depth_window_s",
            "locked_crossed_rule",
            "max_walk_levels",
            "latency_us",
        ):
            if hasattr(settings, name):
                values[name] = getattr(settings, name)
        instrument_map = getattr(settings, "instrument_map", None)
        values["instruments"] = instrument_map() if callable(instrument_map) else dict(DEFAULT_INSTRUMENTS)
        depth_map = getattr(settings, "depth_map", None)
        if callable(depth_map):
            values["depth"] = depth_map()
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


class DepthEvidence:
    """Recent quotes and trades of one symbol, the evidence of rule 6: ``(ts, kind, price, size)``
    entries in time order (``kind`` 0 a quote's bid, 1 a quote's ask, 2 a trade print).

    Entries older than ``window`` before the newest are dropped as entries arrive, and at most
    ``max_entries`` (the most recent) are kept, so memory stays bounded in any burst. Mutable and
    owned by one venue, which records into it under its own lock (:meth:`FillModel.observe`).
    """

    __slots__ = ("window", "entries", "version")

    def __init__(self, window: timedelta, max_entries: int = 10_000) -> None:
        self.window = window
        self.entries: deque[tuple[datetime, int, Decimal, Decimal]] = deque(maxlen=max_entries)
        self.version = 0  # counts additions: a memo of what was derived from the entries stays valid while it holds

    def add(self, ts: datetime, kind: int, price: Decimal, size: Decimal) -> None:
        """Record one entry at ``ts`` and drop what fell out of the window."""
        entries = self.entries
        self.version += 1
        entries.append((ts, kind, price, size))
        cutoff = ts - self.window
        while entries[0][0] < cutoff:
            entries.popleft()

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """The venue's view of one symbol.

    ``quote``: the last good quote (None before any, rule 11); ``bid``/``ask``: the touch prices
    (the quote's, or moved by trades, rule 5; None before any quote); ``bid_avail``/``ask_avail``:
    what is left at each touch (rule 4); ``halted``: rule 11; ``used``: ``(side, price, qty)``
    our fills took beyond the touch since the last quote (rules 4, 6).
    """

    quote: Quote | None = None
    bid_avail: Decimal = Decimal(0)
    ask_avail: Decimal = Decimal(0)
    halted: bool = False
    bid: Decimal | None = None
    ask: Decimal | None = None
    used: tuple[tuple[Side, Decimal, Decimal], ...] = ()

    @property
    def usable(self) -> bool:
        """True when there is a good touch and the symbol is not halted."""
        return self.quote is not None and not self.halted


# A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` by name;
# :func:`_new_top_of_book` (one per order that takes liquidity) is the generated builder of
# protocols/model/dataclass_compat.py instead: the same frozen object in about half the time.
_new_top_of_book = builder(TopOfBook)


@dataclass(frozen=True, slots=True)
class L1Book(TopOfBook):
    """The ``nautilus_l1`` view (rule 15): ``bid``/``ask`` are the matching prices,
    ``level_bid``/``level_ask`` with ``bid_avail``/``ask_avail`` the L1 level (price, size)."""

    level_bid: Decimal | None = None
    level_ask: Decimal | None = None


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


def make_fill_model(config: FillModelConfig) -> FillModel:
    """The model for ``config.fill_model``: :class:`FillModel` or :class:`NautilusL1Model`."""
    return NautilusL1Model(config) if config.fill_model == "nautilus_l1" else FillModel(config)


class FillModel:
    """The rules of this module (``fill_model = "flowroute"``) bound to one :class:`FillModelConfig`.
    Thread-safe, and stateless but for a memo of the last rounded touch price that never
    changes a result."""

    version = FILL_MODEL_VERSION

    def __init__(self, config: FillModelConfig) -> None:
        self.config = config
        self._window = timedelta(seconds=float(config.depth_window_s))
        self._walk = config.market_remainder == "walk"
        # One-entry memo of the rounded touch price (rule 3) of the last touch an order took
        # from (:meth:`_touch_price`): ``(price, tick, side, rounded)``, matched by identity.
        # Decimals are immutable and the memo holds them (their ids cannot be reused), so a
        # hit is always the value ``round_price`` would give; the tuple is replaced whole, so
        # concurrent readers never see a torn entry.
        self._touch_memo: tuple[Decimal | None, Decimal | None, Side | None, Decimal] = (None, None, None, Decimal(0))
        # Memo of the aggregated evidence levels per side (:meth:`_levels`), each entry keyed by
        # the evidence object, its version and the tick; entries are replaced whole.
        self._levels_memo: dict[Side, tuple[Any, ...]] = {}

    # -- helpers ------------------------------------------------------------------------
    def instrument(self, symbol: str) -> Instrument | None:
        """The instrument for ``symbol`` or None when the venue does not list it."""
        return self.config.instruments.get(symbol)

    def fee(self, qty: Decimal, price: Decimal, liquidity: Liquidity) -> Decimal:
        """Fee in quote currency for a fill (rule 12): ``qty*price*bps/10000`` rounded half-up to 8 dp."""
        bps = self.config.maker_fee_bps if liquidity is _MAKER else self.config.taker_fee_bps
        return (qty * price * bps / _BPS).quantize(_FEE_QUANTUM, ROUND_HALF_UP)  # rounding positionally (faster)

    def _displayed(self, size: Decimal, lot: Decimal) -> Decimal:
        return max(floor_lot(size, lot), lot)

    @staticmethod
    def is_bad_quote(quote: Quote) -> bool:
        """True for a crossed or locked quote (bid >= ask), rule 11."""
        return quote.bid >= quote.ask

    def new_evidence(self) -> DepthEvidence:
        """An empty :class:`DepthEvidence` with this model's window (rule 6)."""
        return DepthEvidence(self._window)

    def observe(self, evidence: DepthEvidence, data: Quote | Trade) -> None:
        """Record ``data`` in ``evidence`` (rule 6): a good quote's bid and ask, a trade print."""
        if isinstance(data, Trade):
            evidence.add(data.ts, _EV_TRADE, data.price, data.qty)
        elif not self.is_bad_quote(data):
            evidence.add(data.ts, _EV_BID, data.bid, data.bid_size)
            evidence.add(data.ts, _EV_ASK, data.ask, data.ask_size)

    # -- market data ---------------------------------------------------------------------
    def on_quote(self, book: TopOfBook | None, quote: Quote) -> TopOfBook:
        """The symbol's top of book after ``quote`` (rule 11 for crossed/locked quotes)."""
        if self.is_bad_quote(quote):
            book = book or TopOfBook()
            if self.config.locked_crossed_rule == "halt":
                return replace(book, halted=True)
            return book
        inst = self.instrument(quote.symbol)
        if inst is None:
            return _new_top_of_book(quote, quote.bid_size, quote.ask_size, False, quote.bid, quote.ask)
        lot = inst.lot_size
        return _new_top_of_book(
            quote, self._displayed(quote.bid_size, lot), self._displayed(quote.ask_size, lot), False, quote.bid, quote.ask
        )

    def on_trade(self, book: TopOfBook | None, trade: Trade) -> TopOfBook | None:
        """The symbol's top of book after ``trade``: with ``trades_move_touch``, the touch moved
        by rule 5 (None stays None: trades alone make no market)."""
        price = trade.price
        if book is None or not self.config.trades_move_touch:
            return book
        bid, ask, bid_avail, ask_avail = book.bid, book.ask, book.bid_avail, book.ask_avail
        used = book.used
        if book.quote is not None and bid is not None and ask is not None:
            inst = self.instrument(trade.symbol)
            size = self._displayed(trade.qty, inst.lot_size) if inst is not None else trade.qty
            aggressor = trade.aggressor_side
            if aggressor is _BUY or (aggressor is None and price >= ask):
                if price == ask:  # a print at the touch takes from it
                    ask_avail = max(floor_lot(ask_avail - trade.qty, inst.lot_size), inst.lot_size) if inst else ask_avail
                else:
                    used = self._left_touch(book, _BUY, used)
                    ask, ask_avail = price, size
                if price < bid:
                    used = self._left_touch(book, _SELL, used)
                    bid, bid_avail = price, size
            if aggressor is _SELL or (aggressor is None and price <= bid):
                if price == bid:
                    bid_avail = max(floor_lot(bid_avail - trade.qty, inst.lot_size), inst.lot_size) if inst else bid_avail
                else:
                    used = self._left_touch(book, _SELL, used)
                    bid, bid_avail = price, size
                if price > ask:
                    used = self._left_touch(book, _BUY, used)
                    ask, ask_avail = price, size
        return _new_top_of_book(book.quote, bid_avail, ask_avail, book.halted, bid, ask, used)

    def _left_touch(
        self, book: TopOfBook, side: Side, used: tuple[tuple[Side, Decimal, Decimal], ...]
    ) -> tuple[tuple[Side, Decimal, Decimal], ...]:
        """When a print moves the touch off the quote's price, what our fills took there stays
        taken: it becomes a ``used`` entry of that (now deeper) level (rules 4, 6)."""
        quote = book.quote
        inst = self.instrument(quote.symbol) if quote is not None else None
        if quote is None or inst is None:
            return used
        buy = side is _BUY
        if (book.ask if buy else book.bid) != (quote.ask if buy else quote.bid):
            return used  # already moved: the quote's level was recorded then
        shown = self._displayed(quote.ask_size if buy else quote.bid_size, inst.lot_size)
        taken = shown - (book.ask_avail if buy else book.bid_avail)
        if taken <= _ZERO:
            return used
        return used + ((side, round_price(quote.ask if buy else quote.bid, inst.tick_size, side), taken),)

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
            price = book.ask if order.side is _BUY else book.bid
            if price is None:  # (never once a quote arrived: the quote sets both sides)
                return Rejection("NO_MARKET_DATA", "no market data")
        notional = qty * price
        if notional < inst.min_notional:
            return Rejection("MIN_NOTIONAL", f"notional {notional:f} is below min notional {inst.min_notional:f}")
        return None

    # -- arrival -------------------------------------------------------------------------
    def arrival(self, order: VenueOrder, book: TopOfBook | None, evidence: DepthEvidence | None = None) -> Arrival:
        """Match a validated ``order`` on arrival (rules 7, 8, 11) against ``book`` and the
        symbol's depth ``evidence`` (rule 6; None: none). Call :meth:`check` first."""
        executions, status, book = self._plan_arrival(order, book, evidence)
        return Arrival(tuple(Execution(qty, price, liq) for qty, price, liq in executions), status, book)

    def _plan_arrival(
        self, order: VenueOrder, book: TopOfBook | None, evidence: DepthEvidence | None = None
    ) -> tuple[PlannedFills, OrderStatus, TopOfBook | None]:
        """:meth:`arrival` as a plain ``(executions, status, book)`` tuple, each execution a
        ``(qty, price, liquidity)`` triple: the same outcome without building ``Execution`` and
        ``Arrival`` objects (the venue's per-order path uses this form)."""
        inst = self.instrument(order.symbol)
        assert inst is not None
        if order.order_type is _MARKET:
            assert book is not None and book.usable
            return self._take(order, book, inst, None, evidence)
        tif = order.time_in_force
        if book is None or not book.usable:
            status = _EXPIRED if tif in (_IOC, _FOK) else _ACCEPTED
            return (), status, book
        assert order.limit_price is not None
        return self._take(order, book, inst, order.limit_price, evidence)

    def _touch_price(self, price: Decimal, tick: Decimal, side: Side) -> Decimal:
        """``round_price(price, tick, side)`` (rules 3, 7, 8), memoised for the last touch."""
        memo = self._touch_memo
        if memo[0] is price and memo[1] is tick and memo[2] is side:
            return memo[3]
        rounded = round_price(price, tick, side)
        self._touch_memo = (price, tick, side, rounded)
        return rounded

    def _depth(
        self,
        book: TopOfBook,
        evidence: DepthEvidence | None,
        side: Side,
        inst: Instrument,
        touch: Decimal,
        limit: Decimal | None,
    ) -> list[tuple[Decimal, Decimal]]:
        """The evidence levels beyond ``touch`` (rule 6) as ``(price, size)``, best first, no
        worse than ``limit`` (None: any), less what ``book.used`` records, at most
        ``max_walk_levels``."""
        buy = side is _BUY
        sizes: dict[Decimal, Decimal] = {}
        if evidence:
            for price, size in self._levels(evidence, side, inst.tick_size):
                if (price <= touch) if buy else (price >= touch):
                    continue
                if limit is not None and ((price > limit) if buy else (price < limit)):
                    break
                sizes[price] = size
        configured = self.config.depth.get(inst.symbol)
        if configured:
            step = inst.tick_size if buy else -inst.tick_size
            for ticks, size in configured:
                price = touch + ticks * step
                if price <= _ZERO or (limit is not None and ((price > limit) if buy else (price < limit))):
                    continue
                if size > sizes.get(price, _ZERO):
                    sizes[price] = size
        if not sizes:
            return []
        lot = inst.lot_size
        levels = []
        for price in sorted(sizes, reverse=not buy):
            size = sizes[price]
            for s, p, q in book.used:
                if s is side and p == price:
                    size -= q
            size = floor_lot(size, lot)
            if size > _ZERO:
                levels.append((price, size))
                if len(levels) == self.config.max_walk_levels:
                    break
        return levels

    def _levels(self, evidence: DepthEvidence, side: Side, tick: Decimal) -> tuple[tuple[Decimal, Decimal], ...]:
        """Every evidence level of ``side`` (rule 6) as ``(price, size)``, best first: prices
        rounded to ``tick`` toward the worse side, size the larger of the largest displayed
        size and the total traded quantity there. Memoised per evidence version."""
        memo = self._levels_memo.get(side)
        if memo is not None and memo[0] is evidence and memo[1] == evidence.version and memo[2] is tick:
            return memo[3]
        kind = _EV_ASK if side is _BUY else _EV_BID
        shown: dict[Decimal, Decimal] = {}
        traded: dict[Decimal, Decimal] = {}
        for _, k, raw, size in evidence.entries:  # (entries out of the window are gone already)
            if k != kind and k != _EV_TRADE:
                continue
            price = round_price(raw, tick, side)
            if k == _EV_TRADE:
                traded[price] = traded.get(price, _ZERO) + size
            elif size > shown.get(price, _ZERO):
                shown[price] = size
        levels = tuple(
            (price, max(shown.get(price, _ZERO), traded.get(price, _ZERO)))
            for price in sorted(shown.keys() | traded.keys(), reverse=side is not _BUY)
        )
        self._levels_memo[side] = (evidence, evidence.version, tick, levels)
        return levels

    def _take(
        self,
        order: VenueOrder,
        book: TopOfBook,
        inst: Instrument,
        limit: Decimal | None,
        evidence: DepthEvidence | None = None,
    ) -> tuple[PlannedFills, OrderStatus, TopOfBook]:
        """Rules 7 (``limit`` None) and 8: take the touch, then evidence depth."""
        side = order.side
        buy = side is _BUY
        raw_touch = book.ask if buy else book.bid
        assert raw_touch is not None
        touch = self._touch_price(raw_touch, inst.tick_size, side)
        tif = order.time_in_force
        remaining = order.quantity
        take0 = _ZERO
        if limit is None or ((limit >= touch) if buy else (limit <= touch)):
            take0 = min(remaining, floor_lot(book.ask_avail if buy else book.bid_avail, inst.lot_size))
        elif tif is _IOC or tif is _FOK:  # not marketable
            return (), _EXPIRED, book
        else:
            return (), _ACCEPTED, book
        execs: PlannedFills = ()
        if take0 > _ZERO:  # (a Decimal zero compares faster than the int 0)
            execs = ((take0, touch, _TAKER),)
            remaining -= take0
        taken: list[tuple[Side, Decimal, Decimal]] = []
        if remaining > _ZERO and (self._walk or limit is not None):
            more = []
            for price, size in self._depth(book, evidence, side, inst, touch, limit):
                take = min(remaining, size)
                more.append((take, price, _TAKER))
                taken.append((side, price, take))
                remaining -= take
                if remaining == _ZERO:
                    break
            execs = execs + tuple(more)
        if tif is _FOK and remaining > _ZERO:
            return (), _EXPIRED, book
        if execs:
            book = self._deplete(book, side, take0, taken)
        if remaining == _ZERO:
            status = _FILLED
        elif limit is None or tif is _IOC:
            status = _EXPIRED
        else:
            status = _PARTIALLY_FILLED if execs else _ACCEPTED
        return execs, status, book

    @staticmethod
    def _deplete(
        book: TopOfBook, side: Side, qty: Decimal, taken: Sequence[tuple[Side, Decimal, Decimal]] = ()
    ) -> TopOfBook:
        used = book.used + tuple(taken) if taken else book.used
        if type(book) is not TopOfBook:  # a subclass: let ``replace`` build its own kind
            if side is _BUY:
                return replace(book, ask_avail=max(book.ask_avail - qty, _ZERO), used=used)
            return replace(book, bid_avail=max(book.bid_avail - qty, _ZERO), used=used)
        # what ``replace`` builds, without its per-field introspection
        bid_avail, ask_avail = book.bid_avail, book.ask_avail
        if side is _BUY:
            ask_avail = max(ask_avail - qty, _ZERO)
        else:
            bid_avail = max(bid_avail - qty, _ZERO)
        return _new_top_of_book(
            book.quote, bid_avail, ask_avail, book.halted, book.bid, book.ask, used
        )

    # -- resting orders ------------------------------------------------------------------
    @staticmethod
    def _priority(resting: Iterable[Resting], ref: Decimal) -> list[Resting]:
        """Price-time priority: most aggressive limit relative to ``ref`` first, then arrival."""

        def key(r: Resting) -> tuple[Decimal, int]:
            through = (r.limit_price - ref) if r.side is Side.BUY else (ref - r.limit_price)
            return (-through, r.seq)

        return sorted(resting, key=key)

    def match_trade(
        self, trade: Trade, resting: Sequence[Resting], book: TopOfBook | None = None
    ) -> list[tuple[int, Execution]]:
        """Fills of resting orders caused by ``trade`` (rule 9): ``[(seq, Execution), ...]`` in fill order.
        ``book`` (the book after :meth:`on_trade`) is not used by this mode."""
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

    def resting_bounds(self, book: TopOfBook | None, trade: Trade | None = None) -> tuple[Decimal | None, Decimal | None]:
        """``(buy_floor, sell_cap)``: no resting BUY limit below ``buy_floor`` and no SELL limit above
        ``sell_cap`` can fill in :meth:`match_quote` on ``book`` (``trade`` None) or :meth:`match_trade`
        of ``trade``, so a venue may leave them out of ``resting`` (None: no bound on that side).
        Here the quote's ask / bid (rule 10) or the trade's price (rule 9); quote currency."""
        if trade is not None:
            return trade.price, trade.price
        quote = book.quote if book is not None else None
        if quote is None:
            return None, None
        return quote.ask, quote.bid

    def match_quote(self, book: TopOfBook, resting: Sequence[Resting]) -> tuple[TopOfBook, list[tuple[int, Execution]]]:
        """Fills of resting orders crossed by the book's (new, good) quote (rule 10) and the depleted book."""
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
        """True when a DAY order accepted on ``accepted_day`` expires at an event on ``event_day`` (rule 14)."""
        return event_day > accepted_day


class NautilusL1Model(FillModel):
    """``fill_model = "nautilus_l1"``: rule 15, NautilusTrader 1.221's L1 ``OrderMatchingEngine``
    (``book_type=L1_MBP``, ``trade_execution=True``, default ``FillModel``). Rules 1-3 and 11-14
    as in :class:`FillModel`; the book is an :class:`L1Book`. Source of each step: Nautilus
    ``backtest/engine.pyx`` ``OrderMatchingEngine`` (``process_quote_tick``,
    ``process_trade_tick``, ``determine_market_price_and_volume``,
    ``determine_limit_price_and_volume``, ``apply_fills``) and ``execution/matching_core.pyx``."""

    def on_quote(self, book: TopOfBook | None, quote: Quote) -> TopOfBook:
        """L1 level and matching prices from a good ``quote``; rule 11 for a bad one."""
        if self.is_bad_quote(quote):
            return super().on_quote(book, quote)
        return L1Book(quote, quote.bid_size, quote.ask_size, False, quote.bid, quote.ask, level_bid=quote.bid, level_ask=quote.ask)

    def on_trade(self, book: TopOfBook | None, trade: Trade) -> TopOfBook | None:
        """The trade becomes the L1 level on both sides; it moves the matching price of its
        aggressor's side (``process_trade_tick`` with ``trade_execution``). No market before
        the first good quote (rule 2)."""
        if not isinstance(book, L1Book) or book.bid is None or book.ask is None:
            return book
        price, qty = trade.price, trade.qty
        bid, ask = book.bid, book.ask
        aggressor = trade.aggressor_side
        if aggressor is _BUY:
            ask = price
            if price < bid:
                bid = price
        elif aggressor is _SELL:
            bid = price
            if price > ask:
                ask = price
        else:  # NO_AGGRESSOR: iterate() then takes both matching prices from the L1 level
            bid = ask = price
        return L1Book(book.quote, qty, qty, book.halted, bid, ask, level_bid=price, level_ask=price)

    def observe(self, evidence: DepthEvidence, data: Quote | Trade) -> None:
        """No depth evidence in this mode (rule 15)."""

    def _take(
        self,
        order: VenueOrder,
        book: TopOfBook,
        inst: Instrument,
        limit: Decimal | None,
        evidence: DepthEvidence | None = None,
    ) -> tuple[PlannedFills, OrderStatus, TopOfBook]:
        assert isinstance(book, L1Book)
        side = order.side
        buy = side is _BUY
        tick = inst.tick_size
        tif = order.time_in_force
        qty = order.quantity
        match_px = book.ask if buy else book.bid
        level_px = book.level_ask if buy else book.level_bid
        size = book.ask_avail if buy else book.bid_avail
        assert match_px is not None and level_px is not None
        worse = tick if buy else -tick
        if limit is None:  # N1: determine_market_price_and_volume + apply_fills
            take = min(qty, size)
            if take <= _ZERO or (tif is _FOK and take < qty):
                return (), _EXPIRED, book
            first = (take, match_px, _TAKER)
            if take == qty:
                return (first,), _FILLED, book
            if tif is _IOC:
                return (first,), _EXPIRED, book
            return (first, (qty - take, match_px + worse, _TAKER)), _FILLED, book
        # N2: _process_limit_order -> fill_limit_order as TAKER
        if not ((match_px <= limit) if buy else (match_px >= limit)):
            return (), (_EXPIRED if tif is _IOC or tif is _FOK else _ACCEPTED), book
        fills: list[tuple[Decimal, Decimal, Liquidity]] = []
        if (level_px <= limit) if buy else (level_px >= limit):
            take = min(qty, size)
            if take > _ZERO:
                fills.append((take, level_px, _TAKER))
        filled = sum((f[0] for f in fills), _ZERO)
        if tif is _FOK and filled < qty:
            return (), _EXPIRED, book
        if filled == qty:
            return tuple(fills), _FILLED, book
        if tif is _IOC:
            return tuple(fills), _EXPIRED, book
        if not fills or limit == match_px:  # "limit price is equal to top-of-book": the rest rests
            return tuple(fills), (_PARTIALLY_FILLED if fills else _ACCEPTED), book
        fills.append((qty - filled, fills[-1][1] + worse, _TAKER))
        return tuple(fills), _FILLED, book

    def _iterate(self, book: TopOfBook, resting: Sequence[Resting]) -> list[tuple[int, Execution]]:
        """N3: ``OrderMatchingEngine.iterate`` over our resting orders."""
        if not isinstance(book, L1Book) or book.halted:
            return []
        bid, ask = book.bid, book.ask
        has_targets = False
        out: list[tuple[int, Execution]] = []
        bids = sorted((r for r in resting if r.side is _BUY), key=lambda r: r.limit_price, reverse=True)
        asks = sorted((r for r in resting if r.side is _SELL), key=lambda r: r.limit_price)
        for r in bids + asks:
            limit, leaves = r.limit_price, r.leaves_qty
            if r.side is _BUY:
                if ask is None or ask > limit:
                    continue
                level, size = book.level_ask, book.ask_avail
                if level is None or level > limit or size <= _ZERO:
                    continue
                if level < limit:
                    has_targets, ask = True, limit
                at_touch = limit == ask
            else:
                if bid is None or bid < limit:
                    continue
                level, size = book.level_bid, book.bid_avail
                if level is None or level < limit or size <= _ZERO:
                    continue
                if level > limit:
                    has_targets, bid = True, limit
                at_touch = limit == bid
            take = min(leaves, size)
            out.append((r.seq, Execution(take, limit, _MAKER)))
            leaves -= take
            if leaves > _ZERO and (has_targets or not at_touch):
                out.append((r.seq, Execution(leaves, limit, _MAKER)))
        return out

    def resting_bounds(self, book: TopOfBook | None, trade: Trade | None = None) -> tuple[Decimal | None, Decimal | None]:
        """N3 skips a BUY whose limit is below the book's matching ask and a SELL above its matching bid
        (they only move away from the resting orders as :meth:`_iterate` goes), after a quote or a
        trade alike (``book``: the book after :meth:`on_quote` / :meth:`on_trade`)."""
        if not isinstance(book, L1Book):
            return None, None
        return book.ask, book.bid

    def match_quote(self, book: TopOfBook, resting: Sequence[Resting]) -> tuple[TopOfBook, list[tuple[int, Execution]]]:
        """N3 after a quote; the book is not depleted."""
        return book, self._iterate(book, resting)

    def match_trade(
        self, trade: Trade, resting: Sequence[Resting], book: TopOfBook | None = None
    ) -> list[tuple[int, Execution]]:
        """N3 after a trade, on ``book`` (the book after :meth:`on_trade`)."""
        return self._iterate(book, resting) if book is not None else []
