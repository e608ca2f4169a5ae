"""Order records and positions: pure, single-threaded domain logic owned by the ledger actor
(the lifecycle table in protocols/model/lifecycle.py, docs/DESIGN.md).

Names: "book" means only an order book (the venue's, and its top: ``TopOfBook``); the
ledger's side is order records, :class:`Positions`, attribution (``PnlAttribution``) and what
a venue should hold (``VenueHoldings``).

Nothing here is thread-safe and nothing here needs to be: the ledger actor is the only
owner, so every call is serialised by its inbox. Outside the ledger only frozen values
leave (:meth:`OrderRecord.snapshot` -> ``protocols.ExecutionReport``, :class:`Position`).

Two parts:

- :class:`OrderRecord` — one order's mutable record: lifecycle (through
  ``protocols.apply_event``, every status change recorded with a sequence number and a
  cause), one fill-accounting rule for every reporting style (docs/DESIGN.md "Fills"): fills
  applied exactly once per ``trade_id``, cumulative venue reports (FIX CumQty/AvgPx, tags
  14/6) booked as synthetic fills that later per-trade fills cover, overfills recorded and
  not applied, venue states (``fetch_order`` answers) adopted.
- :class:`Positions` — net position per account and symbol with a VWAP entry price,
  realized PnL (average-cost method, as NautilusTrader's ``Position``), unrealized PnL
  from the last mark, fees, cash per currency, and long<->short flips.

Money and quantities are ``Decimal`` (default context, 28 significant digits). Sums and
products of fill quantities and prices are exact at that precision; only divisions
(VWAP, average price, a cumulative report's per-fill price) round.

Example::

    >>> from decimal import Decimal as D
    >>> from protocols import Fill, OrderEventType as E
    >>> rec = OrderRecord(client_order_id="c1", account_id="a1", symbol="BTC/USDT", side="BUY",
    ...                   order_type="LIMIT", quantity=D("2"), limit_price=D("101"), arrival_px=D("100"))
    >>> for ev in (E.RESERVED, E.SUBMITTED, E.ACCEPTED):
    ...     _ = rec.apply_event(ev, cause="test")
    >>> rec.apply_fill(Fill(trade_id="t1", qty=D("1"), price=D("100.5"), fee_currency="USDT"))
    <FillOutcome.APPLIED: 'APPLIED'>
    >>> rec.apply_fill(Fill(trade_id="t1", qty=D("1"), price=D("100.5"), fee_currency="USDT"))
    <FillOutcome.DUPLICATE: 'DUPLICATE'>
    >>> rec.status.value, rec.cum_qty, rec.leaves_qty, rec.slippage_bps
    ('PARTIALLY_FILLED', Decimal('1'), Decimal('1'), Decimal('50.0000'))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, NamedTuple

from protocols import (
    TERMINAL_STATUSES,
    ErrorCode,
    ExecError,
    ExecutionReport,
    Fill,
    IllegalTransition,
    LifecycleState,
    Liquidity,
    OrderEventType,
    OrderIntent,
    OrderStatus,
    OrderType,
    Quote,
    RouteDecision,
    Side,
    VenueOrderState,
    apply_event,
    can_apply,
    utc_now,
)

__all__ = [
    "FillBooking",
    "FillOutcome",
    "SYNTHETIC_TRADE_PREFIX",
    "Transition",
    "OrderRecord",
    "Position",
    "Positions",
    "arrival_price",
    "attribution_of",
    "fill_cash_flows",
]

_ZERO = Decimal(0)
_BPS = Decimal(10000)
_INITIAL = LifecycleState()
# enum members as module globals: read per call on the hot path, faster than ``Enum.MEMBER``
_BUY = Side.BUY
_SELL = Side.SELL
_EV_FILLED = OrderEventType.FILLED
_EV_PARTIALLY_FILLED = OrderEventType.PARTIALLY_FILLED
_ST_FILLED = OrderStatus.FILLED
#: ``_now(_UTC)`` is ``protocols.utc_now()`` without the extra call
_now = datetime.now
_UTC = UTC
_SLIPPAGE_QUANTUM = Decimal("0.0001")
#: statuses an order reaches only after the venue accepted it
_PAST_ACCEPTED = frozenset(
    {
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
    }
)


class FillOutcome(str, Enum):
    """What :meth:`OrderRecord.apply_fill` / :meth:`OrderRecord.apply_cumulative` did with a fill.

    - ``APPLIED``: booked (cum_qty, avg_px, fees, lifecycle updated); hand it to the Positions.
    - ``DUPLICATE``: this ``trade_id`` was already applied (or already recorded as an overfill); nothing changed.
    - ``STALE``: a cumulative report whose cum_qty does not exceed what is booked; nothing changed.
    - ``OVERFILL``: would push cum_qty above quantity (FIX: CumQty > OrderQty); recorded in
      ``OrderRecord.overfills``, NOT applied. The caller alerts (``OverfillDetected``).
    - ``REFUSED``: the lifecycle table allows no fill in the current status (e.g. REJECTED,
      FAILED, RESERVED); recorded in ``OrderRecord.anomalies``, NOT applied. The caller alerts.
      (Per-trade and cumulative reports of one order mix freely: docs/DESIGN.md "Fills".)
    """

    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"
    STALE = "STALE"
    OVERFILL = "OVERFILL"
    REFUSED = "REFUSED"


_APPLIED = FillOutcome.APPLIED

#: trade ids of synthetic fills (booked from cumulative reports) start with this; recovery replays
#: a journaled fill with it through :meth:`OrderRecord.apply_synthetic`. Venue trade ids must not.
SYNTHETIC_TRADE_PREFIX = "cum:"
#: a synthetic fill's price is rounded to this (quote currency; see OrderRecord.apply_cumulative)
SYNTHETIC_PRICE_QUANTUM = Decimal("1e-12")


class FillBooking(NamedTuple):
    """What the books do for a real fill that covered synthetic quantity (:meth:`OrderRecord.apply_fill`).

    ``fill`` is the fill as reported (journaled, audited, published); ``new`` the part of it that
    adds quantity (a ``Fill`` without fee; None when synthetic quantity covered all of it);
    ``repriced`` the covered synthetic quantity booked at another price, as
    ``((qty, booked_px), ...)``, to be moved to ``fill.price``; ``fee_delta`` the fee change
    (the real fee minus the covered synthetic fee) in ``fill.fee_currency``.
    """

    fill: Fill
    new: Fill | None
    repriced: tuple[tuple[Decimal, Decimal], ...]
    fee_delta: Decimal


class Transition(NamedTuple):
    """One recorded status change of an order: ``(seq, ts, from_status, to_status, cause)``."""

    seq: int
    ts: datetime
    from_status: OrderStatus
    to_status: OrderStatus
    cause: str


#: ``_new_transition(Transition, (seq, ts, from, to, cause))`` is ``Transition(seq, ts, from, to, cause)``
#: without the Python-level ``__new__`` frame (what ``Transition._make`` does, minus its length check)
_new_transition = tuple.__new__


def broker_ref(adapter_id: str | None, venue_order_id: str | None) -> str | None:
    """``ExecutionReport.raw_broker_ref``: ``"<adapter id>:<venue order id>"`` ("?" for an unknown
    adapter), None while the venue has given no order id. The reply and ``rt.order()`` both use it.

    Example::

        broker_ref("paper", "p-17")   # 'paper:p-17'
    """
    if venue_order_id is None:
        return None
    return f"{adapter_id or '?'}:{venue_order_id}"


def slippage_bps(side: Side, avg_px: Decimal | None, arrival_px: Decimal | None) -> Decimal | None:
    """Slippage of ``avg_px`` against the arrival touch in bps, positive = worse for us, quantised
    to 0.0001 bps (BUY: ``(avg - arrival) / arrival * 1e4``; SELL the opposite). None without both."""
    if avg_px is None or not arrival_px:
        return None
    diff = avg_px - arrival_px
    if side is Side.SELL:
        diff = -diff
    return (diff / arrival_px * _BPS).quantize(_SLIPPAGE_QUANTUM)


def arrival_price(side: Side | str, touch: Quote | None) -> Decimal | None:
    """The arrival price of an order at intake: the touch it would take (ask for BUY, bid for SELL).

    Returns None when there is no quote. Used as ``OrderRecord.arrival_px`` for slippage.
    """
    if touch is None:
        return None
    if side is _BUY:
        return touch.ask
    if side is _SELL:
        return touch.bid
    return touch.ask if Side(side) is Side.BUY else touch.bid


#: symbols already split (a few per process; bounded so odd input cannot grow it without limit)
_SPLIT: dict[str, tuple[str, str]] = {}
_SPLIT_MAX = 4096


def _split_symbol(symbol: str) -> tuple[str, str]:
    exact_str = symbol.__class__ is str
    if exact_str:
        parts = _SPLIT.get(symbol)
        if parts is not None:
            return parts
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {symbol!r} must look like BASE/QUOTE (e.g. BTC/USDT)")
    if exact_str and len(_SPLIT) < _SPLIT_MAX:
        _SPLIT[symbol] = (base, quote)
    return base, quote


def _side(side: Side | str) -> Side:
    """``Side(side)`` without the enum call when ``side`` already is one (same errors otherwise)."""
    return side if side.__class__ is Side else Side(side)


def fill_cash_flows(symbol: str, side: Side | str, fill: Fill) -> dict[str, Decimal]:
    """The cash movements one fill causes, per currency (signed; + means we receive).

    BUY ``qty`` of ``BASE/QUOTE`` at ``price``: BASE ``+qty``, QUOTE ``-qty*price``; SELL the
    reverse; the fee is paid in ``fill.fee_currency`` (the quote currency when empty).
    Raises ``ValueError`` for a symbol that is not ``BASE/QUOTE``.
    """
    base, quote = _split_symbol(symbol)
    return _cash_flows(base, quote, 1 if _side(side) is Side.BUY else -1, fill)


def _cash_flows(base: str, quote: str, sign: int, fill: Fill) -> dict[str, Decimal]:
    qty = fill.qty
    flows: dict[str, Decimal] = {base: sign * qty}
    flows[quote] = flows.get(quote, _ZERO) - sign * qty * fill.price
    fee = fill.fee
    if fee:
        ccy = fill.fee_currency or quote
        flows[ccy] = flows.get(ccy, _ZERO) - fee
    return flows


def attribution_of(intent: OrderIntent | None, context: Any) -> dict[str, str]:
    """An order's attribution: ``strategy_id`` (the intent's, else the context's), ``session_id``
    and ``correlation_id`` (the context's); "" for whatever is missing (README "Features")."""
    strategy = getattr(intent, "strategy_id", "") or getattr(context, "strategy_id", "") or ""
    return {"strategy_id": strategy, "session_id": getattr(context, "session_id", "") or "",
            "correlation_id": getattr(context, "correlation_id", "") or ""}


# ---------------------------------------------------------------------------
# OrderRecord
# ---------------------------------------------------------------------------

_new_object = object.__new__


def _plain_intake(intent: Any, arrival_px: Any) -> bool:
    """True when ``OrderRecord.__post_init__`` would keep the record of ``intent`` (arriving at
    ``arrival_px``) as built and raise nothing: side and order type already members, a symbol seen
    before, exact finite Decimals > 0 (a validated ``OrderIntent`` always; anything else is
    built, checked and normalised by the constructor)."""
    symbol, quantity, limit_price = intent.symbol, intent.quantity, intent.limit_price
    return (intent.side.__class__ is Side and intent.order_type.__class__ is OrderType
            and symbol.__class__ is str and symbol in _SPLIT
            and quantity.__class__ is Decimal and quantity.is_finite() and quantity > _ZERO
            and (limit_price is None or (limit_price.__class__ is Decimal and limit_price.is_finite() and limit_price > _ZERO))
            and (arrival_px is None or (arrival_px.__class__ is Decimal and arrival_px.is_finite() and arrival_px > _ZERO)))



@dataclass(eq=False)
class OrderRecord:
    """One order's mutable record, private to the ledger actor (the lifecycle table in protocols/model/lifecycle.py, docs/DESIGN.md).

    Identity and economics: ``client_order_id``, ``account_id``, ``symbol`` (BASE/QUOTE),
    ``side``, ``order_type``, ``quantity`` (base units, > 0), ``limit_price`` (quote ccy or
    None), ``time_in_force``. Routing: ``adapter_id``, ``route``, ``venue_order_id``,
    ``attempts`` (venue submit attempts), ``error`` (the coded error of a failed order).
    State: ``lifecycle`` (``protocols.LifecycleState``), ``fills`` (applied fills, in
    application order), ``trade_ids`` (applied trade ids), ``cum_qty`` (FIX 14),
    ``avg_px`` (FIX 6; None before any fill), ``fees`` (sum of fill fees, numeric, whatever
    the currency), ``arrival_px`` (touch at intake, for slippage), ``transitions`` (every
    status change as a :class:`Transition`), ``overfills`` (fills refused because they
    would exceed ``quantity``), ``anomalies`` (human-readable notes of venue reports that
    contradicted the book and were not applied; the caller alerts on new entries).

    Mutators never leave half-written state: they validate first, then change.
    Hand out :meth:`snapshot` (a frozen ``ExecutionReport``), never the record itself.
    """

    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    time_in_force: str = "GTC"
    adapter_id: str = ""
    route: RouteDecision | None = None
    venue_order_id: str | None = None
    lifecycle: LifecycleState = _INITIAL  # frozen, so one shared instance is safe
    fills: list[Fill] = field(default_factory=list)
    trade_ids: set[str] = field(default_factory=set)
    cum_qty: Decimal = _ZERO
    avg_px: Decimal | None = None
    fees: Decimal = _ZERO
    arrival_px: Decimal | None = None
    error: ExecError | None = None
    attempts: int = 0
    transitions: list[Transition] = field(default_factory=list)
    #: the empty tuple until the first entry (then a list): an order at rest holds no empty list the
    #: garbage collector would traverse at every collection it survives (docs/DESIGN.md "Threads")
    overfills: Sequence[Fill] = ()
    anomalies: Sequence[str] = ()
    created_ts: datetime = field(default_factory=utc_now)
    updated_ts: datetime | None = None
    #: exact sum of qty*price of the applied fills (avg_px = notional / cum_qty)
    notional: Decimal = _ZERO
    #: the intent's limit price when the slippage guard capped it to ``limit_price`` (for the audit)
    price_capped_from: Decimal | None = None
    #: the notional reserved at intake (quote currency; risk's typed journaled field: the RESERVED
    #: row's ``reserved`` column, from which recovery restores the reservation), None before
    reserved_at_intake: Decimal | None = None
    #: synthetic fills (from cumulative reports) not yet covered by real per-trade fills, oldest
    #: first, each as currently booked (a partly covered one with its remaining qty); None: none yet
    synthetic: list[Fill] | None = None
    #: what the books must do for the fill last APPLIED by :meth:`apply_fill` (None: book it as is)
    last_booking: FillBooking | None = None
    #: attribution (README "Features"): from the intent and its ExecutionContext
    strategy_id: str = ""
    session_id: str = ""
    correlation_id: str = ""

    def __post_init__(self) -> None:
        if self.side.__class__ is not Side:
            self.side = Side(self.side)
        if self.order_type.__class__ is not OrderType:
            self.order_type = OrderType(self.order_type)
        symbol = self.symbol
        if not (symbol.__class__ is str and symbol in _SPLIT):  # a symbol seen before is valid
            _split_symbol(symbol)
        quantity = self.quantity
        if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity <= 0:
            raise ValueError(f"quantity must be a finite Decimal > 0, got {quantity!r}")
        limit_price = self.limit_price
        if limit_price is not None and (not limit_price.is_finite() or limit_price <= 0):
            raise ValueError(f"limit_price must be a finite Decimal > 0 or None, got {limit_price!r}")
        arrival_px = self.arrival_px
        if arrival_px is not None and (not arrival_px.is_finite() or arrival_px <= 0):
            raise ValueError(f"arrival_px must be a finite Decimal > 0 or None, got {arrival_px!r}")
        if self.updated_ts is None:
            self.updated_ts = self.created_ts

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_intent(
        cls,
        intent: OrderIntent,
        account_id: str,
        *,
        adapter_id: str = "",
        route: RouteDecision | None = None,
        arrival_px: Decimal | None = None,
        ts: datetime | None = None,
        context: Any = None,
    ) -> OrderRecord:
        """A new INITIALIZED record for ``intent`` under ``account_id`` (``ts`` default: now);
        ``context`` (an ``ExecutionContext`` or None) gives the attribution."""
        ids = attribution_of(intent, context)
        if cls is OrderRecord and _plain_intake(intent, arrival_px):
            # every order's intake: the values __post_init__ would keep as they are, set without the
            # generated __init__ (32 fields, 6 default factories); the record it would build
            # (tests/orders/test_books.py holds the two to each other)
            rec = _new_object(OrderRecord)
            created = ts or _now(_UTC)
            rec.__dict__.update({
                "client_order_id": intent.client_order_id, "account_id": account_id, "symbol": intent.symbol,
                "side": intent.side, "order_type": intent.order_type, "quantity": intent.quantity,
                "limit_price": intent.limit_price, "time_in_force": intent.time_in_force._value_,
                "adapter_id": adapter_id or (route.adapter_id if route else ""), "route": route, "venue_order_id": None,
                "lifecycle": _INITIAL, "fills": [], "trade_ids": set(), "cum_qty": _ZERO, "avg_px": None, "fees": _ZERO,
                "arrival_px": arrival_px, "error": None, "attempts": 0, "transitions": [], "overfills": (), "anomalies": (),
                "created_ts": created, "updated_ts": created, "notional": _ZERO, "price_capped_from": None,
                "reserved_at_intake": None, "synthetic": None, "last_booking": None, "strategy_id": ids["strategy_id"],
                "session_id": ids["session_id"], "correlation_id": ids["correlation_id"],
            })
            return rec
        return cls(
            intent.client_order_id,
            account_id,
            intent.symbol,
            intent.side,
            intent.order_type,
            intent.quantity,
            intent.limit_price,
            intent.time_in_force._value_,
            adapter_id or (route.adapter_id if route else ""),
            route,
            arrival_px=arrival_px,
            created_ts=ts or _now(_UTC),
            strategy_id=ids["strategy_id"],
            session_id=ids["session_id"],
            correlation_id=ids["correlation_id"],
        )

    @property
    def attribution(self) -> dict[str, str]:
        """``{"strategy_id", "session_id", "correlation_id"}`` of this order (keyword arguments of events)."""
        return {"strategy_id": self.strategy_id, "session_id": self.session_id, "correlation_id": self.correlation_id}

    # -- derived values -------------------------------------------------------------------

    @property
    def status(self) -> OrderStatus:
        """The current lifecycle status."""
        return self.lifecycle.status

    @property
    def is_terminal(self) -> bool:
        """True in DENIED, REJECTED, FAILED, CANCELED, EXPIRED, FILLED."""
        return self.lifecycle.status in TERMINAL_STATUSES  # OrderStatus.is_terminal, without its call

    @property
    def leaves_qty(self) -> Decimal:
        """FIX LeavesQty (151): ``quantity - cum_qty`` while not terminal, 0 once terminal."""
        if self.lifecycle.status in TERMINAL_STATUSES:
            return _ZERO
        return max(self.quantity - self.cum_qty, _ZERO)

    @property
    def slippage_bps(self) -> Decimal | None:
        """Slippage of ``avg_px`` against ``arrival_px`` in basis points (positive = worse for us).

        BUY: ``(avg_px - arrival_px) / arrival_px * 1e4``; SELL: ``(arrival_px - avg_px) / arrival_px * 1e4``.
        Quantised to 0.0001 bps. None before any fill or without an arrival price.
        """
        return slippage_bps(self.side, self.avg_px, self.arrival_px)

    # -- lifecycle ----------------------------------------------------------------------------

    def apply_event(
        self,
        event: OrderEventType | str,
        *,
        cause: str,
        ts: datetime | None = None,
        seq: int | None = None,
    ) -> bool:
        """Apply one lifecycle event through ``protocols.apply_event`` (the lifecycle table in protocols/model/lifecycle.py).

        Returns True when the status changed (a :class:`Transition` is then appended with
        ``seq`` — default: this order's next sequence number, 1-based — ``ts`` (default now)
        and ``cause``); False for an idempotent repeat or a change that keeps the status
        (e.g. a fill during PENDING_CANCEL, which only updates the status a cancel reject
        would restore). Raises ``protocols.IllegalTransition`` (naming the order) when the
        table forbids the event; the record is then unchanged.
        """
        if event.__class__ is not OrderEventType:
            event = OrderEventType(event)
        old = self.lifecycle
        try:
            new = apply_event(old, event)
        except IllegalTransition as exc:
            raise IllegalTransition(f"order {self.client_order_id}: {exc}") from exc
        self.lifecycle = new
        old_status, new_status = old.status, new.status
        if new_status is old_status:
            return False
        when = ts or _now(_UTC)
        transitions = self.transitions
        transitions.append(
            _new_transition(
                Transition,
                (seq if seq is not None else len(transitions) + 1, when, old_status, new_status, cause),
            )
        )
        self.updated_ts = when
        return True

    # -- fills --------------------------------------------------------------------------------

    def _fill_event(self, new_cum: Decimal) -> OrderEventType | None:
        """The lifecycle event a fill bringing cum_qty to ``new_cum`` applies, or None if none is legal."""
        preferred = _EV_FILLED if new_cum == self.quantity else _EV_PARTIALLY_FILLED
        lifecycle = self.lifecycle
        if can_apply(lifecycle, preferred):
            return preferred
        # EXPIRED accepts a late partial fill but not FILLED: the fill is booked, the status stays
        if preferred is _EV_FILLED and lifecycle.status.is_terminal and can_apply(lifecycle, _EV_PARTIALLY_FILLED):
            return _EV_PARTIALLY_FILLED
        return None

    def _book(self, fill: Fill, event: OrderEventType, cause: str, ts: datetime | None) -> None:
        qty = fill.qty
        self.fills.append(fill)
        self.trade_ids.add(fill.trade_id)
        self.cum_qty = cum_qty = self.cum_qty + qty
        self.notional = notional = self.notional + qty * fill.price
        self.avg_px = notional / cum_qty
        self.fees += fill.fee
        when = ts or fill.ts
        self.updated_ts = when
        self.apply_event(event, cause=cause, ts=when)

    def _add_overfill(self, fill: Fill) -> None:
        self.overfills = [*self.overfills, fill]  # rare: a copy keeps the common case an untracked ()

    def _note_anomaly(self, note: str) -> None:
        self.anomalies = [*self.anomalies, note]

    def _refuse(self, note: str) -> FillOutcome:
        self._note_anomaly(note)
        return FillOutcome.REFUSED

    def _seen(self, trade_id: str) -> bool:
        return trade_id in self.trade_ids or bool(self.overfills and any(o.trade_id == trade_id for o in self.overfills))

    def apply_fill(self, fill: Fill, *, cause: str | None = None, ts: datetime | None = None) -> FillOutcome:
        """Apply one real per-trade fill exactly once per ``trade_id`` (FIX ExecType=F, LastQty/LastPx).

        The one fill-accounting rule (docs/DESIGN.md "Fills"), per-trade side:

        - a ``trade_id`` already applied, or already recorded as an overfill: ``DUPLICATE``, no change;
        - quantity already booked by a synthetic fill (a cumulative report, :meth:`apply_cumulative`)
          is *covered* first, oldest synthetic first: it is matched, not counted again. What the
          fill brings beyond the covered quantity is new quantity;
        - new quantity that would push cum_qty above quantity: ``OVERFILL``, appended to
          ``overfills``, nothing of the fill applied;
        - new quantity with no fill event legal in the current status: ``REFUSED``, noted in
          ``anomalies``, not applied;
        - otherwise ``APPLIED``: the fill joins ``fills`` and replaces the synthetic quantity it
          covered (so ``fills`` always sums to cum_qty, and to the real fills once they cover
          every synthetic one); cum_qty, avg_px (VWAP of ``fills``), fees and the lifecycle
          follow. :attr:`last_booking` says what the books must do: ``None`` when the fill only
          added quantity (book the fill as is), else a :class:`FillBooking` with the new part
          and the price correction of the covered quantity.

        ``cause`` defaults to ``"fill <trade_id>"``, ``ts`` to ``fill.ts``.
        """
        trade_id = fill.trade_id
        if trade_id in self.trade_ids or (self.overfills and any(o.trade_id == trade_id for o in self.overfills)):
            return FillOutcome.DUPLICATE
        self.last_booking = None
        if self.synthetic:
            return self._apply_covering(fill, cause, ts)
        new_cum = self.cum_qty + fill.qty
        if new_cum > self.quantity:
            self._add_overfill(fill)
            return FillOutcome.OVERFILL
        event = self._fill_event(new_cum)
        if event is None:
            return self._refuse(
                f"fill {fill.trade_id} refused: no fill is allowed in status {self.status.value}"
            )
        self._book(fill, event, cause or f"fill {fill.trade_id}", ts)
        return _APPLIED

    def _apply_covering(self, fill: Fill, cause: str | None, ts: datetime | None) -> FillOutcome:
        """:meth:`apply_fill` while synthetic quantity is outstanding: match it, then book the rest."""
        synthetic = self.synthetic
        assert synthetic is not None
        left = fill.qty
        covered: list[tuple[Fill, Decimal]] = []  # (synthetic fill, qty of it covered)
        for syn in synthetic:
            if left <= 0:
                break
            part = syn.qty if syn.qty < left else left
            covered.append((syn, part))
            left -= part
        new_qty = left
        new_cum = self.cum_qty + new_qty
        if new_cum > self.quantity:
            self._add_overfill(fill)
            return FillOutcome.OVERFILL
        event = None
        if new_qty > 0:
            event = self._fill_event(new_cum)
            if event is None:
                return self._refuse(f"fill {fill.trade_id} refused: no fill is allowed in status {self.status.value}")
        # apply: the covered synthetic quantity leaves ``fills``, the real fill joins it
        repriced: list[tuple[Decimal, Decimal]] = []
        fee_back = _ZERO
        for syn, part in covered:
            index = next(i for i, f in enumerate(self.fills) if f.trade_id == syn.trade_id)
            # the covered share of the synthetic fee, on the synthetic price's quantum, so every
            # sum of it stays exact (a raw quotient carries 28 significant digits into cash,
            # whose sums then round: cash drifted from the fills by 1e-25)
            if not syn.fee:
                syn_fee = _ZERO
            elif part == syn.qty:
                syn_fee = syn.fee
            else:
                syn_fee = (syn.fee * part / syn.qty).quantize(SYNTHETIC_PRICE_QUANTUM)
            if part == syn.qty:
                del self.fills[index]
                synthetic.remove(syn)
            else:
                rest = syn.model_copy(update={"qty": syn.qty - part, "fee": syn.fee - syn_fee})
                self.fills[index] = rest
                synthetic[synthetic.index(syn)] = rest
            self.notional += part * (fill.price - syn.price)
            self.fees -= syn_fee
            fee_back += syn_fee
            if syn.price != fill.price:
                repriced.append((part, syn.price))
        self.fills.append(fill)
        self.trade_ids.add(fill.trade_id)
        self.fees += fill.fee
        self.cum_qty = new_cum
        self.notional += new_qty * fill.price
        self.avg_px = self.notional / new_cum
        when = ts or fill.ts
        self.updated_ts = when
        new_part = None
        if new_qty > 0:
            new_part = fill if new_qty == fill.qty else fill.model_copy(update={"qty": new_qty, "fee": _ZERO})
            self.apply_event(event, cause=cause or f"fill {fill.trade_id}", ts=when)  # type: ignore[arg-type]
        fee_delta = fill.fee - fee_back  # the new part, if any, is booked without fee
        self.last_booking = FillBooking(fill, new_part, tuple(repriced), fee_delta)
        return _APPLIED

    def apply_cumulative(
        self,
        cum_qty: Decimal,
        avg_px: Decimal,
        *,
        trade_id_prefix: str,
        ts: datetime | None = None,
        cum_fees: Decimal | None = None,
        fee_currency: str = "",
        liquidity: Liquidity | str = Liquidity.TAKER,
        cause: str | None = None,
        booked_ts: datetime | None = None,
    ) -> tuple[FillOutcome, Fill | None]:
        """Book a cumulative venue report (FIX CumQty 14 / AvgPx 6, no trade ids) as one synthetic fill.

        The one fill-accounting rule (docs/DESIGN.md "Fills"), cumulative side: a snapshot
        larger than what is booked books the difference as a synthetic fill,
        ``last_qty = cum_qty - self.cum_qty`` at
        ``last_px = (cum_qty * avg_px - self.notional) / last_qty`` (self.notional is the exact
        notional booked so far), so avg_px stays the venue's, rounded to
        :data:`SYNTHETIC_PRICE_QUANTUM` (1e-12 quote currency): every product of it with a
        quantity is then exact, so cash and positions balance to the unit when real fills
        later replace it, and avg_px is the venue's to within 1e-12. Its ``trade_id`` is
        ``f"{SYNTHETIC_TRADE_PREFIX}{trade_id_prefix}:{cum_qty}"`` (a repeated report is a
        duplicate); its fee ``cum_fees - self.fees`` (clamped at 0; 0 when ``cum_fees`` is
        None). Real per-trade fills that arrive later cover it (:meth:`apply_fill`). When the
        booked fills already imply a non-positive ``last_px`` (they disagree with the venue's
        avg_px), the quantity is still booked, at ``avg_px``, and the disagreement is noted in
        ``anomalies``.

        Returns ``(outcome, fill)``: ``(STALE, None)`` when ``cum_qty`` does not exceed the
        booked cum_qty (an old or repeated report; ignored), ``(OVERFILL, fill)`` when
        ``cum_qty > quantity`` (recorded, not applied), ``(REFUSED, None)`` when no fill is
        legal in the status, else ``(APPLIED, fill)`` — hand ``fill`` to the Positions.

        ``ts`` is the synthetic fill's time (the venue's; default now), ``booked_ts`` the time of
        the transition it makes (the ledger's clock; default ``ts``).

        Raises ``ValueError`` (record unchanged) for a non-finite or negative ``cum_qty`` or a
        non-positive ``avg_px``.
        """
        cum_qty = Decimal(cum_qty)
        avg_px = Decimal(avg_px)
        if not cum_qty.is_finite() or cum_qty < 0:
            raise ValueError(f"cum_qty must be a finite Decimal >= 0, got {cum_qty!r}")
        if cum_qty <= self.cum_qty:
            return FillOutcome.STALE, None
        if not avg_px.is_finite() or avg_px <= 0:
            raise ValueError(f"avg_px must be a finite Decimal > 0, got {avg_px!r}")
        last_qty = cum_qty - self.cum_qty
        last_px = ((cum_qty * avg_px - self.notional) / last_qty).quantize(SYNTHETIC_PRICE_QUANTUM)
        if last_px <= 0:
            self._note_anomaly(
                f"cumulative report cum_qty={cum_qty} avg_px={avg_px} implies last_px={last_px} <= 0 after booked "
                f"cum_qty={self.cum_qty} avg_px={self.avg_px}; the new quantity is booked at avg_px"
            )
            # on the same quantum as every synthetic price: the venue's avg_px may carry 28 digits
            # (a quotient), and its products with quantities would round in cash (drift of 1e-25)
            last_px = max(avg_px.quantize(SYNTHETIC_PRICE_QUANTUM), SYNTHETIC_PRICE_QUANTUM)
        fee = _ZERO
        if cum_fees is not None:
            fee = max(Decimal(cum_fees) - self.fees, _ZERO)
        trade_id = f"{SYNTHETIC_TRADE_PREFIX}{trade_id_prefix}:{format(cum_qty.normalize(), 'f')}"
        if len(trade_id) > 64:
            raise ValueError(f"synthetic trade id {trade_id!r} is longer than 64 characters; shorten trade_id_prefix")
        fill = Fill(
            trade_id=trade_id,
            qty=last_qty,
            price=last_px,
            fee=fee,
            fee_currency=fee_currency,
            liquidity=Liquidity(liquidity),
            ts=ts or utc_now(),
        )
        if self._seen(fill.trade_id):
            return FillOutcome.DUPLICATE, None
        if cum_qty > self.quantity:
            self._add_overfill(fill)
            return FillOutcome.OVERFILL, fill
        outcome = self.apply_synthetic(fill, cause=cause or f"cumulative fill to {cum_qty}", ts=booked_ts or ts)
        return outcome, fill if outcome is _APPLIED else None

    def apply_synthetic(self, fill: Fill, *, cause: str | None = None, ts: datetime | None = None) -> FillOutcome:
        """Book a synthetic fill made by :meth:`apply_cumulative` (also how recovery replays a
        journaled one, recognised by :data:`SYNTHETIC_TRADE_PREFIX`). Outcomes as :meth:`apply_fill`."""
        if self._seen(fill.trade_id):
            return FillOutcome.DUPLICATE
        new_cum = self.cum_qty + fill.qty
        if new_cum > self.quantity:
            self._add_overfill(fill)
            return FillOutcome.OVERFILL
        event = self._fill_event(new_cum)
        if event is None:
            return self._refuse(
                f"cumulative fill to {new_cum} refused: no fill is allowed in status {self.status.value}"
            )
        self._book(fill, event, cause or f"cumulative fill {fill.trade_id}", ts)
        if self.synthetic is None:
            self.synthetic = []
        self.synthetic.append(fill)
        return _APPLIED

    # -- venue state --------------------------------------------------------------------------

    _VENUE_STATUS_EVENT: ClassVar[dict[OrderStatus, OrderEventType]] = {
        OrderStatus.ACCEPTED: OrderEventType.ACCEPTED,
        OrderStatus.CANCELED: OrderEventType.CANCELED,
        OrderStatus.EXPIRED: OrderEventType.EXPIRED,
        OrderStatus.REJECTED: OrderEventType.REJECTED,
    }

    def apply_venue_state(self, state: VenueOrderState, *, ts: datetime | None = None,
                          fill: Fill | None = None) -> list[Fill | FillBooking]:
        """Adopt the venue's view of this order (a submit ack, an event's state, a ``fetch_order`` answer).

        ``fill`` is the fill the report carries besides ``state`` (``VenueEvent.fill``: FIX
        LastQty/LastPx with its ExecID), applied first, once per trade id like every other.

        1. ``venue_order_id`` is adopted when not yet known (a different one is an anomaly).
        2. Fills: the venue's ``fills`` are cumulative (all fills so far); only unseen
           ``trade_id`` s are applied (via :meth:`apply_fill`). A ``cum_qty`` still above ours
           after them (a venue that reports no or only some trades) is booked with
           :meth:`apply_cumulative` (prefix ``venue_order_id``): one rule for every reporting style.
        3. Status: ACCEPTED / CANCELED / EXPIRED / REJECTED are applied as lifecycle events
           (after the fills, so a partially filled then canceled order ends CANCELED with its
           fills). PARTIALLY_FILLED and FILLED come from the fills themselves. A status the
           table forbids here is not applied and never raises: a stale ACCEPTED (the order is
           already further along) is ignored, anything else is a contradiction noted in
           ``anomalies``. REJECTED sets ``error``
           (E_EXEC_BROKER_REJECTED with the venue's reason) when none is set.

        ``ts``: when the ledger applies it (its clock), the time of every transition this makes;
        default: the venue's ``state.ts`` (a fill's own transition: its ``fill.ts``). Fills keep
        the venue's times (a synthetic one ``state.ts``) whatever ``ts`` is.

        Returns what was newly applied, in order: a ``Fill`` to book as is, or a
        :class:`FillBooking` (a real fill that covered synthetic quantity; see
        :meth:`Positions.apply_booking`). Raises ``ValueError``
        (record unchanged) when the state belongs to another client order id.
        """
        if state.client_order_id != self.client_order_id:
            raise ValueError(
                f"venue state for {state.client_order_id!r} applied to order {self.client_order_id!r}"
            )
        when = ts or state.ts
        if self.venue_order_id is None:
            self.venue_order_id = state.venue_order_id
        elif state.venue_order_id and state.venue_order_id != self.venue_order_id:
            self._note_anomaly(
                f"venue_order_id {state.venue_order_id!r} differs from booked {self.venue_order_id!r}"
            )
        applied: list[Fill | FillBooking] = []
        if fill is not None and self.apply_fill(fill, ts=ts) is _APPLIED:  # an event's own fill (VenueEvent.fill)
            applied.append(self.last_booking or fill)
        itemized = _ZERO  # the quantity this report accounts for trade by trade
        for f in state.fills:
            itemized += f.qty
            if self.apply_fill(f, ts=ts) is _APPLIED:
                applied.append(self.last_booking or f)
        if fill is not None and all(f.trade_id != fill.trade_id for f in state.fills):
            itemized += fill.qty
        # only quantity the report does not itemize is booked from its cum_qty (what an itemized
        # trade could not book is an overfill or a refusal, flagged already)
        if state.cum_qty > self.cum_qty and state.cum_qty > itemized and state.avg_px is not None:
            outcome, fill = self.apply_cumulative(
                state.cum_qty,
                state.avg_px,
                trade_id_prefix=(state.venue_order_id or self.client_order_id)[:36],
                ts=state.ts,
                booked_ts=when,
            )
            if outcome is FillOutcome.APPLIED and fill is not None:
                applied.append(fill)
        event = self._VENUE_STATUS_EVENT.get(state.status)
        if event is not None:
            if can_apply(self.lifecycle, event):
                self.apply_event(event, cause=f"venue state {state.status.value}", ts=when)
                if event is OrderEventType.REJECTED and self.error is None:
                    self.error = ExecError.of(
                        ErrorCode.E_EXEC_BROKER_REJECTED, state.reject_reason or "rejected by the venue"
                    )
            elif not (event is OrderEventType.ACCEPTED and self.status in _PAST_ACCEPTED):
                # a stale ACCEPTED (e.g. the submit ack processed after a pushed fill) is silently
                # ignored; anything else the table forbids contradicts the book
                self._note_anomaly(
                    f"venue status {state.status.value} not applied in status {self.status.value}"
                )
        elif state.status is _ST_FILLED and self.cum_qty != self.quantity:
            self._note_anomaly(
                f"venue says FILLED but booked cum_qty {self.cum_qty} != quantity {self.quantity}"
            )
        if state.cum_qty > self.cum_qty:
            self._note_anomaly(f"venue cum_qty {state.cum_qty} exceeds booked cum_qty {self.cum_qty}")
        return applied

    # -- output ---------------------------------------------------------------------------------

    def snapshot(
        self,
        *,
        replay: bool = False,
        latency_us: int = 0,
        raw_broker_ref: str | None = None,
        ts: datetime | None = None,
    ) -> ExecutionReport:
        """A frozen ``ExecutionReport`` of this order now (``ts`` default: the last update time),
        built by ``actors.orders.reporting.order_report`` (the one place reports are built)."""
        from .reporting import order_report  # reporting builds on this module

        return order_report(self, replay=replay, latency_us=latency_us, raw_broker_ref=raw_broker_ref, ts=ts)


def booked_fills(intent: OrderIntent, account_id: str, state: VenueOrderState) -> tuple[Fill, ...]:
    """The fills a venue's first answer ``state`` books for a new order, by the one fill-accounting
    rule (:meth:`OrderRecord.apply_venue_state` on a fresh record in flight): ``state.fills`` when
    they cover ``cum_qty``, else with the synthetic fill for the rest (docs/DESIGN.md "Fills"). So the
    reply to the order (``reporting.venue_report``) lists the fills ``rt.order()`` lists."""
    rec = OrderRecord.from_intent(intent, account_id)
    rec.lifecycle = LifecycleState(OrderStatus.SUBMITTING)  # as the ledger's record is when the venue answers
    rec.apply_venue_state(state)
    return tuple(rec.fills)


class RetiredFills:
    """Running totals of the fills of orders the ledger no longer holds in memory (archived):
    ``qty[(book, symbol)] = (net, buys, sells)`` in base units and ``cash[book][currency]`` (the
    sum of :func:`fill_cash_flows`), so :meth:`Positions.check_invariants` still checks
    every position. :meth:`add` folds an order's fills in, ``add(..., sign=-1)`` takes them out again
    (an archived order brought back into memory)."""

    def __init__(self) -> None:
        self.qty: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]] = {}
        self.cash: dict[str, dict[str, Decimal]] = {}

    def add(self, book: str, symbol: str, side: Side | str, fills: Iterable[Fill], sign: int = 1) -> None:
        """Fold ``fills`` of one ``side`` into the totals of ``(book, symbol)`` (``sign`` -1: remove)."""
        side = Side(side)
        net, buys, sells = self.qty.get((book, symbol), (_ZERO, _ZERO, _ZERO))
        cash = self.cash.setdefault(book, {})
        for fill in fills:
            qty = sign * fill.qty
            net += side.sign * qty
            if side is Side.BUY:
                buys += qty
            else:
                sells += qty
            for ccy, amount in fill_cash_flows(symbol, side, fill).items():
                cash[ccy] = cash.get(ccy, _ZERO) + sign * amount
        self.qty[(book, symbol)] = (net, buys, sells)


# ---------------------------------------------------------------------------
# Positions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """A frozen view of one account's position in one symbol (docs/DESIGN.md).

    ``net_qty`` base units (+ long, - short); ``avg_entry_px`` VWAP of the open position in
    quote ccy (None when flat); ``realized_pnl`` quote ccy, average-cost method, fees NOT
    subtracted; ``unrealized_pnl`` ``(last_px - avg_entry_px) * net_qty`` (0 without a mark);
    ``fees`` paid in quote ccy (fees charged in the base currency are converted at the fill
    price; fees in a third currency only show in the cash book); ``last_px`` the last mark
    (None until :meth:`Positions.mark`); ``buy_qty`` / ``sell_qty`` total bought / sold;
    ``strategy_id`` the strategy it belongs to ("" for the account's whole position).
    """

    account_id: str
    symbol: str
    net_qty: Decimal = _ZERO
    avg_entry_px: Decimal | None = None
    realized_pnl: Decimal = _ZERO
    unrealized_pnl: Decimal = _ZERO
    fees: Decimal = _ZERO
    last_px: Decimal | None = None
    buy_qty: Decimal = _ZERO
    sell_qty: Decimal = _ZERO
    #: the strategy this position belongs to ("" for an account's whole position)
    strategy_id: str = ""

    @property
    def net_pnl(self) -> Decimal:
        """``realized_pnl + unrealized_pnl - fees`` (quote ccy)."""
        return self.realized_pnl + self.unrealized_pnl - self.fees

    @property
    def is_flat(self) -> bool:
        """True when ``net_qty == 0``."""
        return self.net_qty == 0


@dataclass
class _PosState:
    net_qty: Decimal = _ZERO
    #: exact cost of the open position, always >= 0: sum of qty*price of the open lots
    cost: Decimal = _ZERO
    realized: Decimal = _ZERO
    fees: Decimal = _ZERO
    buy_qty: Decimal = _ZERO
    sell_qty: Decimal = _ZERO


class Positions:
    """Positions per (account, symbol) and cash per (account, currency), from fills (docs/DESIGN.md).

    Rules (average-cost accounting, as NautilusTrader's ``Position``):

    - adding to a position (or opening from flat): the entry price becomes the VWAP of the
      open quantity (kept as exact cost; ``avg_entry_px = cost / |net_qty|``);
    - reducing: ``realized += (exit_px - entry_px) * closed_qty * sign`` (sign +1 long, -1 short);
      the entry price of the remainder does not change;
    - flipping (a fill larger than the position, opposite side): the whole old position is
      closed at the fill price, the remainder opens a new position at the fill price;
    - fees accumulate separately (``Position.fees``; ``net_pnl`` subtracts them);
    - cash: see :func:`fill_cash_flows`.

    Positions do not deduplicate: the ledger applies each fill once (``OrderRecord.apply_fill``
    decides). Single-threaded; owned by the ledger actor.
    """

    def __init__(self) -> None:
        self._pos: dict[tuple[str, str], _PosState] = {}
        self._cash: dict[str, dict[str, Decimal]] = {}
        self._marks: dict[str, Decimal] = {}

    def apply_fill(self, account_id: str, symbol: str, side: Side | str, fill: Fill) -> None:
        """Book one applied fill of ``account_id`` in ``symbol`` (BASE/QUOTE) on ``side``.

        Raises ``ValueError`` (nothing changed) for a symbol that is not ``BASE/QUOTE`` or an
        unknown side.
        """
        if side.__class__ is not Side:
            side = Side(side)
        parts = _SPLIT.get(symbol) if symbol.__class__ is str else None
        base, quote = parts if parts is not None else _split_symbol(symbol)  # validates the symbol
        buy = side is _BUY
        sign = 1 if buy else -1
        qty, price, fee = fill.qty, fill.price, fill.fee
        # the cash flows first (as fill_cash_flows computes them), without building its dict
        # unless base == quote (odd but well-formed)
        flows = _cash_flows(base, quote, sign, fill) if base == quote else None
        base_flow = sign * qty
        quote_flow = _ZERO - sign * qty * price
        fee_ccy = None
        if fee:
            fee_ccy = fill.fee_currency or quote
            if fee_ccy == quote:
                quote_flow = quote_flow - fee
                fee_ccy = None
            elif fee_ccy == base:
                base_flow = base_flow - fee
                fee_ccy = None
        key = (account_id, symbol)
        st = self._pos.get(key)
        if st is None:
            st = self._pos[key] = _PosState()
        signed = sign * qty
        net = st.net_qty
        if net == 0 or (net > 0) == (signed > 0):
            st.cost += qty * price
            st.net_qty = net + signed
        else:
            pos_sign = 1 if net > 0 else -1
            closed = min(qty, abs(net))
            if closed == abs(net):
                closed_cost = st.cost
            else:
                closed_cost = st.cost * closed / abs(net)
            st.realized += pos_sign * (closed * price - closed_cost)
            st.cost -= closed_cost
            st.net_qty = net + signed
            remainder = qty - closed
            if st.net_qty == 0:
                st.cost = _ZERO
            if remainder > 0:  # flip: open the rest at the fill price
                st.cost = remainder * price
        if buy:
            st.buy_qty += qty
        else:
            st.sell_qty += qty
        if fee:
            ccy = fill.fee_currency or quote
            if ccy == quote:
                st.fees += fee
            elif ccy == base:
                st.fees += fee * price
        cash = self._cash.get(account_id)
        if cash is None:
            cash = self._cash[account_id] = {}
        if flows is not None:
            for ccy, amount in flows.items():
                cash[ccy] = cash.get(ccy, _ZERO) + amount
            return
        # the same amounts fill_cash_flows gives, added in the same order (base, quote, fee ccy)
        cash[base] = cash.get(base, _ZERO) + base_flow
        cash[quote] = cash.get(quote, _ZERO) + quote_flow
        if fee_ccy is not None:
            cash[fee_ccy] = cash.get(fee_ccy, _ZERO) + (_ZERO - fee)

    def apply_booking(self, account_id: str, symbol: str, side: Side | str, booking: Fill | FillBooking) -> None:
        """Book what :meth:`OrderRecord.apply_venue_state` returned: a ``Fill`` as :meth:`apply_fill`;
        a :class:`FillBooking` as its new part (if any), the price correction of the synthetic
        quantity it covered, and its fee change, so that position and cash equal the real fills
        once they cover every synthetic one.

        A correction of ``qty`` units from ``booked_px`` to ``px`` moves cash by
        ``-sign * qty * (px - booked_px)`` (sign +1 BUY, -1 SELL) and total PnL by the same
        amount: to the open cost for the units still open on the fill's side (up to the open
        quantity), to realized PnL for the rest (average-cost method).
        """
        if booking.__class__ is Fill:
            self.apply_fill(account_id, symbol, side, booking)
            return
        if side.__class__ is not Side:
            side = Side(side)
        fill = booking.fill  # type: ignore[union-attr]
        if booking.new is not None:  # type: ignore[union-attr]
            self.apply_fill(account_id, symbol, side, booking.new)  # type: ignore[union-attr]
        base, quote = _split_symbol(symbol)
        sign = 1 if side is _BUY else -1
        key = (account_id, symbol)
        st = self._pos.get(key)
        if st is None:
            st = self._pos[key] = _PosState()
        cash = self._cash.setdefault(account_id, {})
        for qty, booked_px in booking.repriced:  # type: ignore[union-attr]
            amount = qty * (fill.price - booked_px)  # extra paid (BUY) / received (SELL), quote ccy
            cash[quote] = cash.get(quote, _ZERO) - sign * amount
            net = st.net_qty
            open_part = _ZERO
            if net != 0 and (net > 0) == (sign > 0):
                open_part = qty if qty < abs(net) else abs(net)
            cost_change = open_part * (fill.price - booked_px)
            if st.cost + cost_change < 0:  # never a negative open cost: the excess is realized
                cost_change = -st.cost
            st.cost += cost_change
            # total PnL moves by -sign * amount: what the open cost does not carry is realized
            # unrealized moves by -sign * cost_change (long: net*mark - cost; short: net*mark + cost)
            st.realized -= sign * (amount - cost_change)
        fee_delta = booking.fee_delta  # type: ignore[union-attr]
        if fee_delta:
            ccy = fill.fee_currency or quote
            cash[ccy] = cash.get(ccy, _ZERO) - fee_delta
            if ccy == quote:
                st.fees += fee_delta
            elif ccy == base:
                st.fees += fee_delta * fill.price
    def realized_and_fees(self, account_id: str, symbol: str) -> tuple[Decimal, Decimal]:
        """``(realized_pnl, fees)`` of ``account_id`` in ``symbol`` so far (quote ccy; zeros if it never
        traded): read before and after :meth:`apply_fill` to get one fill's share (daily PnL)."""
        st = self._pos.get((account_id, symbol))
        return (st.realized, st.fees) if st is not None else (_ZERO, _ZERO)

    def mark(self, symbol: str, price: Decimal) -> None:
        """Set the mark (last price, quote ccy) of ``symbol`` for unrealized PnL in every account.

        Raises ``ValueError`` for a non-finite or non-positive price.
        """
        price = Decimal(price)
        if not price.is_finite() or price <= 0:
            raise ValueError(f"mark price for {symbol} must be a finite Decimal > 0, got {price!r}")
        self._marks[symbol] = price

    def _view(self, account_id: str, symbol: str, st: _PosState) -> Position:
        mark = self._marks.get(symbol)
        net = st.net_qty
        entry = st.cost / abs(net) if net else None
        signed_cost = st.cost if net > 0 else -st.cost
        unrealized = (net * mark - signed_cost) if (mark is not None and net) else _ZERO
        return Position(
            account_id=account_id,
            symbol=symbol,
            net_qty=net,
            avg_entry_px=entry,
            realized_pnl=st.realized,
            unrealized_pnl=unrealized,
            fees=st.fees,
            last_px=mark,
            buy_qty=st.buy_qty,
            sell_qty=st.sell_qty,
        )

    def position(self, account_id: str, symbol: str) -> Position:
        """The position of ``account_id`` in ``symbol`` (a flat, zero Position if it never traded)."""
        st = self._pos.get((account_id, symbol))
        if st is None:
            return Position(account_id=account_id, symbol=symbol, last_px=self._marks.get(symbol))
        return self._view(account_id, symbol, st)

    def positions(self, account_id: str | None = None) -> tuple[Position, ...]:
        """All positions ever traded (flat ones included), sorted by (account, symbol); optionally one account."""
        return tuple(
            self._view(acc, sym, st)
            for (acc, sym), st in sorted(self._pos.items())
            if account_id is None or acc == account_id
        )

    def net_qty(self, account_id: str, symbol: str) -> Decimal:
        """Signed net quantity (base units) of ``account_id`` in ``symbol`` (0 if never traded)."""
        st = self._pos.get((account_id, symbol))
        return st.net_qty if st else _ZERO

    def cash(self, account_id: str) -> dict[str, Decimal]:
        """Cash movements of ``account_id`` per currency since the positions started (a copy)."""
        return dict(self._cash.get(account_id, {}))

    def accounts(self) -> tuple[str, ...]:
        """Accounts with any booked fill, sorted."""
        return tuple(sorted(set(self._cash) | {acc for acc, _ in self._pos}))

    def check_invariants(
        self, fills_by_account_symbol: Mapping[tuple[str, str], Iterable[tuple[Side | str, Fill]]],
        retired: RetiredFills | None = None,
    ) -> list[str]:
        """Check the positions against the fills it should hold (docs/DESIGN.md). Returns violations (empty = OK).

        ``fills_by_account_symbol[(account_id, symbol)]`` is every applied ``(side, fill)``
        of that account and symbol (e.g. from the ledger's OrderRecords); ``retired`` the totals
        of the fills of orders no longer held in memory (archived, see :class:`RetiredFills`).
        Checked: net_qty equals the signed sum of fill quantities, buy_qty/sell_qty equal the
        sums per side, cash per account and currency equals the sum of :func:`fill_cash_flows`,
        they hold no position that the fills lack, and no open position has a negative cost.
        """
        problems: list[str] = []
        expected_cash: dict[str, dict[str, Decimal]] = {}
        if retired is not None:
            for account_id, flows in retired.cash.items():
                expected_cash[account_id] = dict(flows)
        seen: set[tuple[str, str]] = set()
        keys = dict.fromkeys(fills_by_account_symbol)
        if retired is not None:
            keys.update(dict.fromkeys(retired.qty))
        for account_id, symbol in keys:
            items = fills_by_account_symbol.get((account_id, symbol), ())
            seen.add((account_id, symbol))
            net, buys, sells = retired.qty.get((account_id, symbol), (_ZERO, _ZERO, _ZERO)) if retired is not None else (_ZERO, _ZERO, _ZERO)
            acc_cash = expected_cash.setdefault(account_id, {})
            for side, fill in items:
                side = Side(side)
                net += side.sign * fill.qty
                if side is Side.BUY:
                    buys += fill.qty
                else:
                    sells += fill.qty
                for ccy, amount in fill_cash_flows(symbol, side, fill).items():
                    acc_cash[ccy] = acc_cash.get(ccy, _ZERO) + amount
            st = self._pos.get((account_id, symbol), _PosState())
            if st.net_qty != net:
                problems.append(f"{account_id} {symbol}: net_qty {st.net_qty} != signed sum of fills {net}")
            if st.buy_qty != buys or st.sell_qty != sells:
                problems.append(
                    f"{account_id} {symbol}: buy/sell qty {st.buy_qty}/{st.sell_qty} != fills {buys}/{sells}"
                )
            if st.cost < 0:
                problems.append(f"{account_id} {symbol}: negative open cost {st.cost}")
            if st.net_qty == 0 and st.cost != 0:
                problems.append(f"{account_id} {symbol}: flat position with open cost {st.cost}")
        for key, st in self._pos.items():
            if key not in seen and (st.net_qty != 0 or st.buy_qty or st.sell_qty):
                problems.append(f"{key[0]} {key[1]}: booked position has no fills")
        for account_id in set(expected_cash) | set(self._cash):
            want = {c: a for c, a in expected_cash.get(account_id, {}).items() if a != 0}
            have = {c: a for c, a in self._cash.get(account_id, {}).items() if a != 0}
            if want != have:
                problems.append(f"{account_id}: cash {have} != sum of fill cash flows {want}")
        return problems
