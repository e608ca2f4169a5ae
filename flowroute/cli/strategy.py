"""The replay's trading strategies: the market-data clock they read, the actions they return,
the ``Strategy`` protocol, ``none`` and ``ma_cross`` (a moving-average crossover plus passive
limits). Deterministic: the same events give the same actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from ._common import SYMBOL


class ReplayClock:
    """The strategy's clock during a replay: market-data time, never wall time.

    :meth:`advance` moves it to each event's ``ts`` (it never goes backwards). The runtime
    itself keeps its real clock for venue timeouts and retries (those measure real work);
    everything the strategy decides, and every ``ExecutionContext.timestamp``, uses this one.
    """

    def __init__(self) -> None:
        self._now: datetime | None = None

    def advance(self, ts: datetime) -> None:
        """Move to ``ts`` (ignored when earlier than the current time)."""
        if self._now is None or ts > self._now:
            self._now = ts

    @property
    def started(self) -> bool:
        """True once the clock has seen market data."""
        return self._now is not None

    def now(self) -> datetime:
        """The current market-data time (UTC). Raises ``RuntimeError`` before the first event."""
        if self._now is None:
            raise RuntimeError("the replay clock has not seen any market data yet")
        return self._now


@dataclass(frozen=True)
class SubmitAction:
    """A strategy's request to submit ``intent`` (an ``OrderIntent``)."""

    intent: Any


@dataclass(frozen=True)
class CancelAction:
    """A strategy's request to cancel ``client_order_id``; ``reason`` is for the summary."""

    client_order_id: str
    reason: str = ""


Action = SubmitAction | CancelAction


class OrderView(Protocol):
    """What a strategy may ask about its orders: the current status (``OrderStatus``) or None."""

    def status(self, client_order_id: str) -> Any: ...


class Strategy(Protocol):
    """A replay strategy: market events in, actions out; deterministic given the same events.

    ``on_quote``/``on_trade`` return the actions to take after that event; ``on_report`` gets the
    final report of every submit the strategy asked for; ``on_end`` the actions at end of data.
    """

    name: str

    def on_quote(self, quote: Any, clock: ReplayClock, view: OrderView) -> list[Action]: ...

    def on_trade(self, trade: Any, clock: ReplayClock, view: OrderView) -> list[Action]: ...

    def on_report(self, report: Any) -> None: ...

    def on_end(self, clock: ReplayClock, view: OrderView) -> list[Action]: ...


class NoStrategy:
    """``--strategy none``: market data only, no orders (the bad-input probes still run)."""

    name = "none"

    def on_quote(self, quote: Any, clock: ReplayClock, view: OrderView) -> list[Action]:
        return []

    def on_trade(self, trade: Any, clock: ReplayClock, view: OrderView) -> list[Action]:
        return []

    def on_report(self, report: Any) -> None:
        return None

    def on_end(self, clock: ReplayClock, view: OrderView) -> list[Action]:
        return []

    def stats(self) -> dict[str, int]:
        """Nothing to count."""
        return {}


class MaCrossStrategy:
    """``ma_cross`` (version 1): moving-average crossover on the quote mid plus passive limits.

    Deterministic: decisions depend only on the sequence of quotes and on the statuses of its
    own orders (which the paper venue derives from the same data). Rules, in the order they are
    applied at each *good* quote of ``symbol`` (``bid < ask``; crossed or locked quotes are
    skipped and counted, like the fill model's ``skip`` rule); trades are not used directly:

    1. **Cancel stale limits.** Every resting LIMIT of this strategy placed ``cancel_after``
       good quotes ago or more that is still open (ACCEPTED/PARTIALLY_FILLED) is canceled.
    2. **Crossover.** ``mid = (bid + ask) / 2``; ``fast`` / ``slow`` are the simple averages
       of the last ``fast`` / ``slow`` mids (Decimal). Once ``slow`` mids are known the regime is
       ``sign(fast - slow)`` (0 keeps the previous regime). A change of regime is a crossover:
       a MARKET order of ``qty``, BUY when fast crosses above slow, SELL when below. The first
       regime only initialises the state (no order).
    3. **Passive limits.** Every ``limit_every``-th good quote a GTC LIMIT of ``qty`` is placed
       on alternating sides (BUY first), ``offset`` ticks behind the touch on its own side
       (BUY at ``bid - offset·tick``, SELL at ``ask + offset·tick``), ``offset`` cycling through
       ``offsets``: it rests and fills as MAKER when a later trade prints at or through it
       (fill-model rule 9) or a later quote crosses it (rule 10).
    4. **End of data.** Every limit still open is canceled.

    Client order ids are ``f"{name}-{n:05d}"`` (``n`` = 1, 2, … in submission order).
    """

    name = "ma_cross"
    version = "1"

    def __init__(
        self,
        *,
        symbol: str = SYMBOL,
        tick: Decimal = Decimal("0.01"),
        qty: Decimal = Decimal("0.001"),
        fast: int = 10,
        slow: int = 30,
        limit_every: int = 12,
        cancel_after: int = 25,
        offsets: tuple[int, ...] = (1, 3, 10, 30),
    ) -> None:
        if not 0 < fast < slow:
            raise ValueError("need 0 < fast < slow")
        self.symbol, self.tick, self.qty = symbol, tick, qty
        self.fast, self.slow = fast, slow
        self.limit_every, self.cancel_after, self.offsets = limit_every, cancel_after, offsets
        self._mids: list[Decimal] = []
        self._regime = 0
        self._quotes = 0
        self._limits = 0
        self._seq = 0
        self._resting: dict[str, int] = {}  # client order id -> good-quote index when placed
        self._placed_at: dict[str, int] = {}
        self.skipped_quotes = 0
        self.crossovers = 0
        #: crossovers as LIMIT orders at the touch (replay --venue fix: executor refuses MARKET)
        self.limits_only = False

    # -- ids ------------------------------------------------------------------------------
    def _next_id(self) -> str:
        self._seq += 1
        return f"{self.name}-{self._seq:05d}"

    def _intent(self, side: str, order_type: str, price: Decimal | None = None) -> Any:
        from flowroute import OrderIntent

        return OrderIntent(client_order_id=self._next_id(), symbol=self.symbol, side=side, order_type=order_type,
                           quantity=self.qty, limit_price=price, strategy_id=self.name)

    # -- events ---------------------------------------------------------------------------
    def on_quote(self, quote: Any, clock: ReplayClock, view: OrderView) -> list[Action]:
        if quote.symbol != self.symbol:
            return []
        if quote.bid >= quote.ask:
            self.skipped_quotes += 1
            return []
        self._quotes += 1
        k = self._quotes
        actions: list[Action] = []
        # 1. stale limits
        for coid, placed in list(self._resting.items()):
            if k - placed >= self.cancel_after:
                del self._resting[coid]
                if self._is_open(view, coid):
                    actions.append(CancelAction(coid, f"stale after {self.cancel_after} quotes"))
        # 2. crossover
        self._mids.append(quote.mid)
        if len(self._mids) > self.slow:
            del self._mids[0]
        if len(self._mids) == self.slow:
            fast = sum(self._mids[-self.fast:], Decimal(0)) / self.fast
            slow = sum(self._mids, Decimal(0)) / self.slow
            regime = (fast > slow) - (fast < slow)
            if regime and self._regime and regime != self._regime:
                self.crossovers += 1
                if self.limits_only:  # a venue without market orders: a limit at the touch instead
                    side = "BUY" if regime > 0 else "SELL"
                    actions.append(SubmitAction(self._intent(side, "LIMIT", quote.ask if side == "BUY" else quote.bid)))
                else:
                    actions.append(SubmitAction(self._intent("BUY" if regime > 0 else "SELL", "MARKET")))
            if regime:
                self._regime = regime
        # 3. passive limits
        if k % self.limit_every == 0:
            offset = self.offsets[self._limits % len(self.offsets)] * self.tick
            side = "BUY" if self._limits % 2 == 0 else "SELL"
            price = quote.bid - offset if side == "BUY" else quote.ask + offset
            self._limits += 1
            intent = self._intent(side, "LIMIT", price)
            self._placed_at[intent.client_order_id] = k
            actions.append(SubmitAction(intent))
        return actions

    def on_trade(self, trade: Any, clock: ReplayClock, view: OrderView) -> list[Action]:
        return []

    def on_report(self, report: Any) -> None:
        placed = self._placed_at.pop(report.client_order_id, None)
        if placed is not None and report.status.is_open:
            self._resting[report.client_order_id] = placed

    def on_end(self, clock: ReplayClock, view: OrderView) -> list[Action]:
        actions: list[Action] = [CancelAction(c, "end of data") for c in self._resting if self._is_open(view, c)]
        self._resting.clear()
        return actions

    def stats(self) -> dict[str, int]:
        """``good_quotes``, ``skipped_quotes`` (crossed/locked), ``crossovers``, ``limits`` placed."""
        return {"good_quotes": self._quotes, "skipped_quotes": self.skipped_quotes,
                "crossovers": self.crossovers, "limits": self._limits}

    @staticmethod
    def _is_open(view: OrderView, coid: str) -> bool:
        status = view.status(coid)
        return status is not None and status.is_open


#: ``--strategy`` choices: name -> builder from the settings (the tick size of BTC/USDT).
STRATEGIES: dict[str, Callable[[Any], Strategy]] = {
    "ma_cross": lambda settings: MaCrossStrategy(
        tick=settings.paper.instrument_map()[SYMBOL].tick_size if SYMBOL in settings.paper.instrument_map() else Decimal("0.01")),
    "none": lambda settings: NoStrategy(),
}

