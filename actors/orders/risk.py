"""Pre-trade risk: trading state, notional limits, slippage guard, budget reservations (README.md, Features).

Pure, single-threaded domain logic owned by the ledger actor: the actor serialises every
call, so "parallel intents can never overbook" holds because each check-and-reserve is
one atomic step here. Denials become ``E_EXEC_RISK_DENIED`` reports (the ledger builds them
from :class:`RiskDecision`); cancels never come here, so they always pass.

Rules, in the order they are checked (the first failing one names the denial):

1. ``trading_halted``: state HALTED denies every new order (the kill switch).
2. ``reduce_only``: state REDUCING admits only an order on the side opposite the position
   whose quantity, plus the open quantity of this account's other reducing orders in that
   symbol, is at most ``|position|`` (it reduces and can never flip the position).
3. ``no_market_price``: a MARKET order needs a touch (or a quote for another symbol was given).
4. ``slippage``: a LIMIT BUY more than ``slippage_bps`` above the ask (a SELL below the bid)
   is capped to the bound (``slippage_action="cap"``; with ``tick_size`` the cap is rounded
   to a tick toward the market) or denied (``"deny"``). Without a touch the guard is skipped
   (a limit order bounds its own price).
5. ``min_notional`` / ``max_notional`` at the worst-case price: LIMIT at its (possibly
   capped) limit price; MARKET BUY at ``ask * (1 + slippage_bps/1e4)``, MARKET SELL at the bid.
6. ``budget``: ``reserved + spent + notional > budget`` denies.

Duplicate client order ids are not a risk rule: the idempotency store owns them
(``actors/idempotency/store.py``), and the ledger sends risk one intent per id. A second
reservation for a key that holds one is a caller's bug: ``ValueError``, nothing changed.

Budget model (decided and documented): the budget caps the gross notional an account
commits, reserved plus filled, in quote currency. **Both sides reserve** their worst-case
notional (simple and conservative: a SELL may open a short). A fill releases the worst-case
reservation of its quantity and adds its actual notional to ``spent`` (the true-up); if
the actual notional is higher (a SELL filled above its limit, a MARKET BUY beyond the
guard), the excess is absorbed from the order's remaining reservation first. A fill the
reservation cannot cover (e.g. a fill racing a cancel after the release) is still booked
as spent — it happened — and, if the total then exceeds the budget, recorded in
``breaches``. ``release`` on a terminal order frees what remains. Reservations never go
negative (clamped, recorded in ``anomalies``). Budgets are for the engine's lifetime
(a session); None means unlimited.

Example::

    >>> from decimal import Decimal as D
    >>> from protocols import OrderIntent, Quote
    >>> eng = RiskEngine(RiskConfig(min_notional=D("5"), budgets={"a1": D("100")}))
    >>> q = Quote(ts="2021-01-08T00:00:00Z", symbol="BTC/USDT", bid=D("99"), bid_size=D("1"),
    ...           ask=D("100"), ask_size=D("1"))
    >>> i = OrderIntent(client_order_id="c1", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
    ...                 quantity=D("0.5"), limit_price=D("100"))
    >>> eng.check_and_reserve(i, "a1", touch=q, position_qty=D(0)).reserved
    Decimal('50.0')
    >>> eng.exposure("a1")
    (Decimal('50.0'), Decimal('0'), Decimal('100'))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from config import RiskSettings
from protocols import ErrorCode, ExecError, Fill, OrderIntent, OrderType, Quote, Side
from protocols.model.dataclass_compat import builder

__all__ = ["TradingState", "RiskConfig", "RiskDecision", "RiskEngine"]

_ZERO = Decimal(0)
_BPS = Decimal(10000)


class TradingState(str, Enum):
    """Trading state (README.md, Features): ACTIVE trades, REDUCING only reduces positions, HALTED denies all new orders."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


# enum members as module globals: read per call on the hot path, faster than ``Enum.MEMBER``
_HALTED = TradingState.HALTED
_REDUCING = TradingState.REDUCING
_MARKET = OrderType.MARKET
_BUY = Side.BUY


def _to_dec(name: str, value: Any, *, allow_none: bool = False, positive: bool = False) -> Decimal | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"risk.{name} is required")
    if isinstance(value, bool):
        raise ValueError(f"risk.{name} must be a number, got a boolean")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except Exception as exc:  # decimal.InvalidOperation, TypeError
        raise ValueError(f"risk.{name} must be a number, got {value!r}") from exc
    if not dec.is_finite():
        raise ValueError(f"risk.{name} must be finite, got {value!r}")
    if dec < 0 or (positive and dec == 0):
        raise ValueError(f"risk.{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return dec


#: the one owner of the defaults (config); RiskConfig takes its defaults from here
_DEFAULTS = RiskSettings()


@dataclass(frozen=True)
class RiskConfig:
    """Risk settings (frozen). The defaults are ``config.RiskSettings``'s (config owns every
    default: docs/DESIGN.md "House plan").

    ``min_notional`` (quote ccy), ``max_notional`` per order (None = no limit),
    ``slippage_bps`` (the limit-price guard and the MARKET BUY worst case),
    ``slippage_action`` ``"cap"`` or ``"deny"`` (``"deny"`` by default: never change a price
    silently unless configured to), ``budgets`` account -> budget in quote ccy,
    ``default_budget`` for accounts not listed (None = unlimited).
    Raises ``ValueError`` naming the ``risk.<key>`` that is invalid.
    """

    min_notional: Decimal = _DEFAULTS.min_notional
    max_notional: Decimal | None = _DEFAULTS.max_notional
    slippage_bps: Decimal = _DEFAULTS.slippage_bps
    slippage_action: Literal["cap", "deny"] = _DEFAULTS.slippage_action
    budgets: Mapping[str, Decimal] = field(default_factory=dict)
    default_budget: Decimal | None = _DEFAULTS.default_budget
    #: derived per instance by ``__post_init__`` from ``slippage_bps``; declared ClassVar so they
    #: are not dataclass fields (no effect on init, eq, repr or fields(); ``replace()`` derives them again)
    _buy_bound: ClassVar[Decimal]
    _sell_bound: ClassVar[Decimal]

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "min_notional", _to_dec("min_notional", self.min_notional))
        set_(self, "max_notional", _to_dec("max_notional", self.max_notional, allow_none=True, positive=True))
        set_(self, "slippage_bps", _to_dec("slippage_bps", self.slippage_bps))
        action = str(self.slippage_action).strip().lower()
        if action not in ("cap", "deny"):
            raise ValueError(f"risk.slippage_action must be 'cap' or 'deny', got {self.slippage_action!r}")
        set_(self, "slippage_action", action)
        if self.max_notional is not None and self.max_notional < self.min_notional:
            raise ValueError(
                f"risk.max_notional ({self.max_notional}) must be >= risk.min_notional ({self.min_notional})"
            )
        if not isinstance(self.budgets, Mapping):
            raise ValueError(f"risk.budgets must be a mapping account -> amount, got {type(self.budgets).__name__}")
        budgets = {}
        for account, amount in self.budgets.items():
            if not isinstance(account, str) or not account:
                raise ValueError(f"risk.budgets keys must be non-empty account ids, got {account!r}")
            budgets[account] = _to_dec(f"budgets.{account}", amount)
        set_(self, "budgets", MappingProxyType(budgets))
        set_(self, "default_budget", _to_dec("default_budget", self.default_budget, allow_none=True))
        # derived once per config (the two ClassVar declarations above)
        factor = self.slippage_bps / _BPS
        set_(self, "_buy_bound", 1 + factor)  # ask * this: the MARKET BUY worst case / LIMIT BUY bound
        set_(self, "_sell_bound", 1 - factor)  # bid * this: the LIMIT SELL bound

    @classmethod
    def from_settings(cls, risk_settings: Any) -> RiskConfig:
        """Build from a settings object (attributes) or a mapping with the same keys; None = defaults.

        Keys read: ``min_notional``, ``max_notional``, ``slippage_bps``, ``slippage_action``,
        ``budgets``, ``default_budget``; missing ones take the defaults, others are ignored.
        """
        if risk_settings is None:
            return cls()
        names = ("min_notional", "max_notional", "slippage_bps", "slippage_action", "budgets", "default_budget")
        kwargs: dict[str, Any] = {}
        for name in names:
            if isinstance(risk_settings, Mapping):
                if name in risk_settings:
                    kwargs[name] = risk_settings[name]
            elif hasattr(risk_settings, name):
                kwargs[name] = getattr(risk_settings, name)
        if kwargs.get("budgets") is None:
            kwargs.pop("budgets", None)
        return cls(**kwargs)

    def budget_for(self, account_id: str) -> Decimal | None:
        """The budget of ``account_id`` (its own, else ``default_budget``; None = unlimited)."""
        return self.budgets.get(account_id, self.default_budget)


@dataclass(frozen=True)
class RiskDecision:
    """The outcome of :meth:`RiskEngine.check_and_reserve` (frozen).

    ``approved``; ``reason`` ("" when approved, else ``"<rule>: <detail>"``, e.g.
    ``"min_notional: notional 3.10 < 5.0"``); ``rule`` the rule name alone (for the
    ``exec_reject_total{reason}`` metric); ``reserved`` the notional now reserved (0 when
    denied); ``adjusted_limit_price`` the capped limit when the slippage guard capped it
    (the order must be sent at this price), else None; ``notional`` the worst-case notional
    evaluated (None if the check stopped before computing it).
    """

    approved: bool
    reason: str = ""
    reserved: Decimal = _ZERO
    adjusted_limit_price: Decimal | None = None
    rule: str = ""
    notional: Decimal | None = None

    def to_error(self) -> ExecError | None:
        """The ``E_EXEC_RISK_DENIED`` error for a denial (message = ``reason``); None when approved."""
        if self.approved:
            return None
        return ExecError.of(ErrorCode.E_EXEC_RISK_DENIED, self.reason)


#: ``RiskDecision(...)`` positionally, without the frozen dataclass __init__ (dataclass_compat)
_new_decision = builder(RiskDecision)


@dataclass(frozen=True)
class Reservation:
    """One order's budget reservation (``Runtime.reservations``): ``amount`` quote currency still
    reserved, for ``open_qty`` base units not yet filled at the worst-case ``price`` per unit."""

    account_id: str
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    open_qty: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Exposure:
    """An account's budget use (``Runtime.exposure``), quote currency: ``reserved`` by open orders,
    ``spent`` by fills, ``budget`` (None = unlimited); ``available`` is what is left (None = unlimited)."""

    account_id: str
    reserved: Decimal
    spent: Decimal
    budget: Decimal | None

    @property
    def available(self) -> Decimal | None:
        """``budget - reserved - spent`` (may be negative after a breach), None when unlimited."""
        return None if self.budget is None else self.budget - self.reserved - self.spent


@dataclass
class _Reservation:
    symbol: str
    side: Side
    price: Decimal  # worst-case price per unit
    open_qty: Decimal  # quantity not yet filled
    amount: Decimal  # notional still reserved


@dataclass
class _Account:
    reserved: Decimal = _ZERO
    spent: Decimal = _ZERO


def _f(value: Decimal) -> str:
    return format(value, "f")


class RiskEngine:
    """Pre-trade checks and per-account budget reservations (README.md, Features). See the module doc for the rules.

    Single-threaded; owned by the ledger actor. ``anomalies`` and ``breaches`` are lists of
    human-readable notes (the caller may log/alert on new entries).
    """

    def __init__(self, config: RiskConfig | None = None, *, state: TradingState = TradingState.ACTIVE) -> None:
        self.config = config or RiskConfig()
        self._state = TradingState(state)
        self._accounts: dict[str, _Account] = {}
        self._res: dict[tuple[str, str], _Reservation] = {}
        self.anomalies: list[str] = []
        self.breaches: list[str] = []
        self._breached: set[str] = set()
        #: a budget shared with other processes (``actors/journal/pg_budget.PgBudget``), or None: this engine's alone
        self.shared: Any = None

    # -- trading state -----------------------------------------------------------------

    @property
    def state(self) -> TradingState:
        """The current trading state."""
        return self._state

    def halt(self) -> None:
        """Kill switch: deny every new order (cancels are not checked here and always pass)."""
        self._state = TradingState.HALTED

    def reduce_only(self) -> None:
        """Admit only orders that reduce a position without flipping it."""
        self._state = TradingState.REDUCING

    def resume(self) -> None:
        """Back to ACTIVE."""
        self._state = TradingState.ACTIVE

    # -- queries -----------------------------------------------------------------------------

    def budget(self, account_id: str) -> Decimal | None:
        """The budget of ``account_id`` (None = unlimited)."""
        return self.config.budget_for(account_id)

    def exposure(self, account_id: str) -> tuple[Decimal, Decimal, Decimal | None]:
        """``(reserved, spent, budget)`` of ``account_id`` in quote ccy (budget None = unlimited)."""
        acct = self._accounts.get(account_id) or _Account()
        return acct.reserved, acct.spent, self.budget(account_id)

    def exposure_of(self, account_id: str) -> Exposure:
        """:meth:`exposure` as a frozen :class:`Exposure`."""
        reserved, spent, budget = self.exposure(account_id)
        return Exposure(account_id, reserved, spent, budget)

    def reservations(self, account_id: str | None = None) -> tuple[Reservation, ...]:
        """Every open reservation (of ``account_id`` only, if given), sorted by account and order id."""
        return tuple(
            Reservation(acc, coid, r.symbol, r.side, r.price, r.open_qty, r.amount)
            for (acc, coid), r in sorted(self._res.items())
            if account_id is None or acc == account_id
        )

    def accounts(self) -> tuple[str, ...]:
        """Accounts (risk books) that have reserved or spent anything, sorted."""
        return tuple(sorted(self._accounts))

    def reservation(self, account_id: str, client_order_id: str) -> Decimal | None:
        """The notional still reserved for one order, or None when it holds no reservation."""
        r = self._res.get((account_id, client_order_id))
        return r.amount if r else None

    def open_reservations(self) -> int:
        """How many orders hold a reservation."""
        return len(self._res)

    # -- the check ------------------------------------------------------------------------------

    @staticmethod
    def _deny(rule: str, detail: str, notional: Decimal | None = None) -> RiskDecision:
        return RiskDecision(approved=False, reason=f"{rule}: {detail}", rule=rule, notional=notional)

    def _pending_reducing(self, account_id: str, symbol: str, side: Side) -> Decimal:
        return sum(
            (r.open_qty for (acc, _), r in self._res.items() if acc == account_id and r.symbol == symbol and r.side is side),
            _ZERO,
        )

    def check_and_reserve(
        self,
        intent: OrderIntent,
        account_id: str,
        *,
        touch: Quote | None = None,
        position_qty: Decimal = _ZERO,
        tick_size: Decimal | None = None,
    ) -> RiskDecision:
        """Check ``intent`` for ``account_id`` and, when approved, reserve its worst-case notional.

        ``touch`` is the current top of book of ``intent.symbol`` (None if unknown);
        ``position_qty`` the account's signed net position in the symbol (base units);
        ``tick_size`` (optional) rounds a capped limit price to a tick toward the market.
        Never raises for a business denial: returns a :class:`RiskDecision` naming the rule.
        On approval the reservation is held until :meth:`release`. Raises ``ValueError`` when
        (``account_id``, ``intent.client_order_id``) already holds a reservation (duplicate ids
        are the idempotency store's to refuse, before risk; see the module docstring).
        """
        key = (account_id, intent.client_order_id)
        side, qty = intent.side, intent.quantity
        if key in self._res:
            raise ValueError(f"order {intent.client_order_id} already holds a reservation (one intent per id: "
                             "the idempotency store refuses duplicates before risk)")
        state = self._state
        if state is _HALTED:
            return self._deny("trading_halted", "trading is HALTED; new orders are denied")
        if state is _REDUCING:
            pos = Decimal(position_qty)
            pending = self._pending_reducing(account_id, intent.symbol, side)
            reduces = pos != 0 and side.sign == (-1 if pos > 0 else 1) and qty + pending <= abs(pos)
            if not reduces:
                return self._deny(
                    "reduce_only",
                    f"trading is REDUCING; {side.value} {_f(qty)} (with {_f(pending)} already working) "
                    f"does not reduce position {_f(pos)} without flipping it",
                )
        if touch is not None and touch.symbol != intent.symbol:
            return self._deny("no_market_price", f"quote is for {touch.symbol}, not {intent.symbol}")
        cfg = self.config
        adjusted: Decimal | None = None
        if intent.order_type is _MARKET:
            if touch is None:
                return self._deny("no_market_price", "no market price for MARKET notional")
            price = touch.ask * cfg._buy_bound if side is _BUY else touch.bid
        else:
            limit_price = intent.limit_price
            assert limit_price is not None  # a validated LIMIT intent has its limit price
            price = limit_price
            if touch is not None:
                if side is _BUY:
                    bound = touch.ask * cfg._buy_bound
                    through = price > bound
                else:
                    bound = touch.bid * cfg._sell_bound
                    through = price < bound
                if through:
                    where = f"above ask {_f(touch.ask)}" if side is Side.BUY else f"below bid {_f(touch.bid)}"
                    if cfg.slippage_action == "deny":
                        return self._deny(
                            "slippage",
                            f"limit {_f(price)} is more than {_f(cfg.slippage_bps)} bps {where} (bound {_f(bound)})",
                        )
                    if tick_size is not None and tick_size > 0:
                        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
                        bound = (bound / tick_size).to_integral_value(rounding=rounding) * tick_size
                    adjusted = price = bound
        notional = qty * price
        if notional < cfg.min_notional:
            return self._deny("min_notional", f"notional {_f(notional)} < {_f(cfg.min_notional)}", notional)
        if cfg.max_notional is not None and notional > cfg.max_notional:
            return self._deny("max_notional", f"notional {_f(notional)} > {_f(cfg.max_notional)}", notional)
        acct = self._accounts.get(account_id)
        if acct is None:
            acct = self._accounts[account_id] = _Account()
        budget = cfg.budgets.get(account_id, cfg.default_budget)  # cfg.budget_for(account_id), inline
        if budget is not None and acct.reserved + acct.spent + notional > budget:
            return self._deny(
                "budget",
                f"reserved {_f(acct.reserved)} + spent {_f(acct.spent)} + notional {_f(notional)} "
                f"> budget {_f(budget)} for account {account_id}",
                notional,
            )
        if budget is not None and self.shared is not None:
            # the fleet-wide check: one conditional update of the account's shared row
            detail = self.shared.reserve(account_id, intent.client_order_id, notional, budget)
            if detail is not None:
                return self._deny("budget", detail, notional)
        self._res[key] = _Reservation(intent.symbol, side, price, qty, notional)
        acct.reserved += notional
        # RiskDecision(approved=True, reserved=notional, adjusted_limit_price=adjusted, notional=notional),
        # built without the frozen dataclass __init__ (protocols/model/dataclass_compat.py)
        return _new_decision(True, "", notional, adjusted, "", notional)

    # -- true-up and release ----------------------------------------------------------------------

    def _clamp(self, account_id: str, acct: _Account) -> None:
        if acct.reserved < 0:
            self.anomalies.append(f"account {account_id}: reserved went negative ({_f(acct.reserved)}); clamped to 0")
            acct.reserved = _ZERO

    def on_fill(self, account_id: str, client_order_id: str, fill: Fill) -> Decimal:
        """True up on an applied fill: release the worst-case reservation of ``fill.qty`` and add the actual notional to spent.

        Excess actual notional (fill priced beyond the worst case) is absorbed from the
        order's remaining reservation first; a fill with no reservation left (or none at all,
        e.g. a fill after the release of a canceled order) still counts as spent, and a
        total above budget is recorded in ``breaches``. Returns the amount released.
        """
        acct = self._accounts.get(account_id)
        if acct is None:
            acct = self._accounts[account_id] = _Account()
        actual = fill.qty * fill.price
        released = _ZERO
        r = self._res.get((account_id, client_order_id))
        if r is not None:
            if fill.qty > r.open_qty:
                self.anomalies.append(
                    f"order {client_order_id}: fill {fill.trade_id} qty {_f(fill.qty)} exceeds reserved open qty "
                    f"{_f(r.open_qty)}"
                )
            # min(a, b) written out (b if b < a else a: the same pick, no call)
            qty, open_qty, amount = fill.qty, r.open_qty, r.amount
            part = open_qty if open_qty < qty else qty
            at_worst = part * r.price
            released = at_worst if at_worst < amount else amount
            if actual > released:
                room, excess = amount - released, actual - released
                released += excess if excess < room else room
            r.open_qty -= part
            r.amount -= released
            acct.reserved -= released
            if acct.reserved < 0:
                self._clamp(account_id, acct)
            if self.shared is not None:
                self.shared.on_fill(account_id, client_order_id, released, actual)
        acct.spent += actual
        cfg = self.config
        budget = cfg.budgets.get(account_id, cfg.default_budget)  # cfg.budget_for(account_id), inline
        if budget is not None and acct.reserved + acct.spent > budget:
            self._breached.add(account_id)
            self.breaches.append(
                f"account {account_id}: fill {fill.trade_id} of {client_order_id} took reserved+spent to "
                f"{_f(acct.reserved + acct.spent)} > budget {_f(budget)}"
            )
        return released

    def on_reprice(self, account_id: str, amount: Decimal) -> None:
        """A booked fill's price was corrected (a real fill covered a synthetic one at another
        price): move ``amount`` (quote currency, signed) into spent, never below 0."""
        acct = self._accounts.get(account_id)
        if acct is None:
            acct = self._accounts[account_id] = _Account()
        acct.spent = max(acct.spent + amount, _ZERO)

    def release(self, account_id: str, client_order_id: str) -> Decimal:
        """Release what remains reserved for a terminal order; idempotent. Returns the amount released."""
        r = self._res.pop((account_id, client_order_id), None)
        if r is None:
            return _ZERO
        acct = self._accounts.get(account_id)
        if acct is None:
            acct = self._accounts[account_id] = _Account()
        acct.reserved -= r.amount
        if acct.reserved < 0:
            self._clamp(account_id, acct)
        if self.shared is not None:
            self.shared.release(account_id, client_order_id, r.amount)
        return r.amount

    def transfer(self, account_id: str, from_id: str, to_id: str) -> Decimal:
        """Move what ``from_id`` still holds reserved to ``to_id``, unchecked (quote currency).

        For the remainder of a partly filled order re-sent as a child order: the child lives
        within its parent's reservation (open quantity and notional as the fills left them)
        and is not checked again. Returns the amount moved (0 when ``from_id`` holds nothing).
        Raises ``ValueError`` when ``to_id`` already holds a reservation.
        """
        if (account_id, to_id) in self._res:
            raise ValueError(f"order {to_id} already holds a reservation")
        r = self._res.pop((account_id, from_id), None)
        if r is None:
            return _ZERO
        self._res[(account_id, to_id)] = r
        return r.amount

    def restore_reservation(self, account_id: str, intent: OrderIntent, notional: Decimal | None = None) -> Decimal:
        """Re-create, at recovery, the reservation of an order admitted before a restart.

        README.md, Features: the notional stays reserved from intake until the order is terminal, and a
        process restart does not end an order. ``notional`` is what was reserved at intake
        (quote currency, from the journal): the full quantity is reserved again at
        ``notional / quantity`` — the intake's worst-case price, also for a MARKET order
        (touch ± slippage bound) and a limit the slippage guard capped. Without it (a journal
        from before it was recorded) a LIMIT order is reserved at its limit price and a
        MARKET order gets nothing (its fills still count as spent through :meth:`on_fill`).
        No check is made — the order was admitted already; replay its fills with
        :meth:`on_fill` and :meth:`release` it if terminal. Idempotent; returns the amount
        reserved (quote currency). Raises ValueError for a negative ``notional``.
        """
        key = (account_id, intent.client_order_id)
        if notional is not None and notional < 0:
            raise ValueError(f"reserved notional must be >= 0, got {notional} for {intent.client_order_id}")
        if key in self._res:
            return _ZERO
        if notional is not None and notional > 0:
            price = notional / intent.quantity
        elif intent.limit_price is not None:
            price = intent.limit_price
            notional = intent.quantity * price
        else:
            return _ZERO
        acct = self._accounts.get(account_id)
        if acct is None:
            acct = self._accounts[account_id] = _Account()
        self._res[key] = _Reservation(intent.symbol, intent.side, price, intent.quantity, notional)
        acct.reserved += notional
        if self.shared is not None and self.budget(account_id) is not None:
            self.shared.restored(account_id, intent.client_order_id, notional)
        return notional

    # -- invariants ---------------------------------------------------------------------------

    def check_invariants(self) -> list[str]:
        """Violations of the bookkeeping invariants (empty = OK).

        Every reservation and account total is >= 0; an account's reserved equals the sum
        of its orders' reservations; reserved + spent <= budget unless a breach was recorded for that account.
        """
        problems: list[str] = []
        sums: dict[str, Decimal] = {}
        for (acc, coid), r in self._res.items():
            if r.amount < 0 or r.open_qty < 0:
                problems.append(f"{acc}/{coid}: negative reservation {_f(r.amount)} / open qty {_f(r.open_qty)}")
            sums[acc] = sums.get(acc, _ZERO) + r.amount
        for acc, a in self._accounts.items():
            if a.reserved < 0 or a.spent < 0:
                problems.append(f"{acc}: negative reserved {_f(a.reserved)} or spent {_f(a.spent)}")
            if a.reserved != sums.get(acc, _ZERO):
                problems.append(f"{acc}: reserved {_f(a.reserved)} != sum of reservations {_f(sums.get(acc, _ZERO))}")
            budget = self.budget(acc)
            if budget is not None and a.reserved + a.spent > budget and acc not in self._breached:
                problems.append(f"{acc}: reserved {_f(a.reserved)} + spent {_f(a.spent)} > budget {_f(budget)}")
        return problems
