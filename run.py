"""flowroute command line: replay recorded market data (default), stress, REPL, audit verify.

Usage (from the repository root)::

    python run.py                         # same as: python run.py replay
    python run.py --json                  # replay, one JSON object on stdout
    python run.py replay --quotes Q.csv --trades T.csv --strategy ma_cross --state-dir var
    python run.py stress --senders 8 --orders 20000 --faults "crash=0.001,transient=0.02" --seed 7
    python run.py stress --senders 4 --orders 400 --window 0   # open loop: no bound on unanswered ops
    python run.py repl                    # interactive console with a running paper runtime
    python run.py audit verify var/audit.jsonl

Exit codes: 0 success; 1 an invariant or an audit verification failed; 2 bad input (missing
or unreadable data file, unknown strategy/profile, runtime refused to start).

**State.** Each command runs against a state directory (``--state-dir``; replay ``./var``,
stress ``./var/stress``, repl ``./var/repl``) that holds the runtime's journal
(``journal.sqlite``), its hash-chained audit log (``audit.jsonl`` + ``.head``) and the simulated
venues' durable books (``paper_book.sqlite`` …). By default a command starts from a clean
state: it deletes **only flowroute's own files** there (``journal.sqlite*``, ``ledger.sqlite*``, ``audit.jsonl*``,
``*_book.sqlite*``; nothing else, no sub-directories) before starting. ``--keep-state`` keeps
them (a replay then meets its own earlier client order ids and gets idempotent replays).

**Logging.** loguru goes to stderr: at ``--log-level`` when given, else at WARNING with
``--json``, else at the profile's ``logging.level``. With ``--json`` stdout carries exactly one
JSON object and nothing else.

The module is organised in sections: common helpers; the replay (strategy, driver, summary);
the stress run (senders, invariants, summary); the REPL; the audit command; the typer app.
"""

from __future__ import annotations

import code
import hashlib
import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import typer
from loguru import logger
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent
DATA_DIR = ROOT.parent / "shared" / "data"
DEFAULT_QUOTES = DATA_DIR / "binance_btcusdt_quotes_20210108.csv"
DEFAULT_TRADES = DATA_DIR / "binance_btcusdt_trades_20210108.csv"

#: Files of flowroute's own in a state directory; the only ones a clean start removes.
OWN_STATE_PATTERNS: tuple[str, ...] = ("journal.sqlite*", "ledger.sqlite*", "audit.jsonl*", "*_book.sqlite*")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
FUTURE_TIMEOUT_S = 10.0
SYMBOL = "BTC/USDT"


# =====================================================================================
# common helpers
# =====================================================================================
class CliError(Exception):
    """A user-facing error: printed as one clear message, exit code ``code`` (default 2)."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def configure_logging(level: str) -> None:
    """Send loguru output to stderr at ``level`` (TRACE … ERROR); drop every other sink."""
    logger.remove()
    logger.add(sys.stderr, level=level.upper())


def log_level_for(explicit: str | None, as_json: bool, settings: Any) -> str:
    """``explicit`` if given; WARNING for ``--json``; else the profile's ``logging.level``."""
    if explicit:
        return explicit
    if as_json:
        return "WARNING"
    return str(getattr(getattr(settings, "logging", None), "level", "WARNING"))


def clean_state(state_dir: Path) -> list[Path]:
    """Delete flowroute's own files (:data:`OWN_STATE_PATTERNS`) directly in ``state_dir``.

    Returns the removed paths. Nothing else is touched: other files and sub-directories stay
    (``./var/stress`` survives a replay cleaning ``./var``). A missing directory is fine.
    """
    removed: list[Path] = []
    if not state_dir.is_dir():
        return removed
    for pattern in OWN_STATE_PATTERNS:
        for path in sorted(state_dir.glob(pattern)):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def load_cli_settings(profile: str, state_dir: Path, **overrides: Any) -> Any:
    """``config.load_settings(profile, state_dir=state_dir, **overrides)``; a ``CliError`` naming the problem."""
    from config import load_settings

    try:
        return load_settings(profile, state_dir=state_dir, **overrides)
    except Exception as exc:  # ConfigError (a ValueError) or an unknown profile
        raise CliError(f"cannot load settings for profile {profile!r}: {exc}") from exc


def start_runtime(settings: Any, *, registry: Any = None, seed: int = 0) -> Any:
    """``Runtime.start`` with a ``CliError`` (exit 2) when the runtime refuses to start."""
    from actors import Runtime

    try:
        return Runtime.start(settings, registry=registry, seed=seed)
    except Exception as exc:
        raise CliError(f"the runtime refused to start: {exc}") from exc


def percentile(values: Sequence[int], pct: float) -> int | None:
    """Nearest-rank percentile (``pct`` in (0, 100]) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values: Sequence[int]) -> dict[str, int | None]:
    """``{"p50", "p99", "max", "n"}`` in microseconds (nearest rank) of ``values``."""
    return {"p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values) if values else None, "n": len(values)}


def to_jsonable(value: Any) -> Any:
    """Recursively turn Decimals into strings, datetimes into ISO text, enums into values,
    dataclasses/pydantic models into dicts, tuples/sets into lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump())
    return value


def print_json(obj: dict) -> None:
    """Write ``obj`` as exactly one JSON line on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(obj), sort_keys=False) + "\n")
    sys.stdout.flush()


def fill_line(client_order_id: str, side: Any, fill: Any) -> str:
    """The canonical text of one fill for :func:`fills_digest`:
    ``trade_id|client_order_id|side|qty|price|fee|liquidity|ts`` (Decimals as ``str``,
    ``ts`` as ``datetime.isoformat()``)."""
    side_text = getattr(side, "value", side) or ""
    liquidity = getattr(fill.liquidity, "value", fill.liquidity)
    return "|".join((fill.trade_id, client_order_id, str(side_text), str(fill.qty), str(fill.price),
                     str(fill.fee), str(liquidity), fill.ts.isoformat()))


def fills_digest(reports: Iterable[Any]) -> tuple[int, str]:
    """``(count, sha256 hex)`` of every fill in ``reports`` (ExecutionReports).

    Fills are sorted by ``(ts, trade_id)`` and hashed as one canonical line each
    (:func:`fill_line`) followed by ``\\n``. Same fills, same digest, whatever the order of
    the reports.
    """
    rows = [(f.ts, f.trade_id, fill_line(r.client_order_id, r.side, f)) for r in reports for f in r.fills]
    rows.sort(key=lambda row: (row[0], row[1]))
    digest = hashlib.sha256()
    for _, _, line in rows:
        digest.update(line.encode() + b"\n")
    return len(rows), digest.hexdigest()


def position_dict(p: Any) -> dict[str, Any]:
    """A ``actors.Position`` as a JSON-ready dict (decimals as strings, ``None`` kept)."""
    def s(v: Decimal | None) -> str | None:
        return None if v is None else str(v)

    return {"account_id": p.account_id, "symbol": p.symbol, "net_qty": s(p.net_qty),
            "avg_entry_px": s(p.avg_entry_px), "realized_pnl": s(p.realized_pnl),
            "unrealized_pnl": s(p.unrealized_pnl), "fees": s(p.fees), "net_pnl": s(p.net_pnl),
            "last_px": s(p.last_px), "buy_qty": s(p.buy_qty), "sell_qty": s(p.sell_qty)}


def short_decimal(text: str | None, places: int = 8) -> str:
    """A decimal string for humans: at most ``places`` decimals (half-even), ``-`` for None.
    JSON output keeps the exact values; only the tables round."""
    if text is None:
        return "-"
    d = Decimal(text)
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        d = d.quantize(Decimal(1).scaleb(-places))
    return format(d, "f")


def make_console(*, stderr: bool = False) -> Console:
    """A rich console; 120 columns when the output is not a terminal (pipes, CI logs)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=120)
    return console


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout_s`` wall seconds pass (False).
    Only the CLI polls; the runtime itself never sleeps."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def to_decimal_input(value: Any) -> Any:
    """A user number for an intent field: floats go through ``str`` (``0.1`` → ``Decimal('0.1')``,
    never binary noise); everything else is passed on for the runtime to validate."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


# =====================================================================================
# replay: clock, strategy
# =====================================================================================
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
       (fill-model rule 7) or a later quote crosses it (rule 8).
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

    # -- ids ------------------------------------------------------------------------------
    def _next_id(self) -> str:
        self._seq += 1
        return f"{self.name}-{self._seq:05d}"

    def _intent(self, side: str, order_type: str, price: Decimal | None = None) -> Any:
        from protocols import OrderIntent

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
        actions = [CancelAction(c, "end of data") for c in self._resting if self._is_open(view, c)]
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


STRATEGIES: dict[str, Callable[[Any], Strategy]] = {
    "ma_cross": lambda settings: MaCrossStrategy(
        tick=settings.paper.instrument_map()[SYMBOL].tick_size if SYMBOL in settings.paper.instrument_map() else Decimal("0.01")),
    "none": lambda settings: NoStrategy(),
}


# =====================================================================================
# replay: bad-input probes
# =====================================================================================
@dataclass
class Probe:
    """One deliberately bad submission and the error code it must get."""

    label: str
    intent: Any
    context: Any
    expected: str
    got: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the report carried the expected code."""
        return self.got == self.expected


def bad_input_probes(account_id: str, ts: datetime) -> list[Probe]:
    """The four bad submissions every replay demonstrates (ids ``probe-00001`` …), all of which
    must be answered with a coded error while the replay goes on:

    negative quantity (a dict) → E_EXEC_VALIDATION; LIMIT without a price (a dict) →
    E_EXEC_VALIDATION; unknown mode ``warp`` → E_EXEC_ROUTE_CONFIG_INVALID; mode ``live`` →
    E_EXEC_POLICY_BLOCKED.
    """
    from protocols import ExecutionContext, OrderIntent

    def ctx(mode: str) -> Any:
        return ExecutionContext(mode=mode, account_id=account_id, strategy_id="probe", session_id="replay", timestamp=ts)

    def market(n: int) -> Any:
        return OrderIntent(client_order_id=f"probe-{n:05d}", symbol=SYMBOL, side="BUY", order_type="MARKET",
                           quantity=Decimal("0.001"), strategy_id="probe")

    base = {"symbol": SYMBOL, "side": "BUY", "strategy_id": "probe"}
    return [
        Probe("negative quantity", {**base, "client_order_id": "probe-00001", "order_type": "MARKET", "quantity": "-0.001"},
              ctx("paper"), "E_EXEC_VALIDATION"),
        Probe("LIMIT without price", {**base, "client_order_id": "probe-00002", "order_type": "LIMIT", "quantity": "0.001"},
              ctx("paper"), "E_EXEC_VALIDATION"),
        Probe("unknown mode 'warp'", market(3), ctx("warp"), "E_EXEC_ROUTE_CONFIG_INVALID"),
        Probe("live mode", market(4), ctx("live"), "E_EXEC_POLICY_BLOCKED"),
    ]


# =====================================================================================
# replay: driver
# =====================================================================================
@dataclass
class ReplayStats:
    """What the replay driver counted while feeding events (the rest comes from the runtime)."""

    quotes: int = 0
    trades: int = 0
    submits: int = 0
    cancels: int = 0
    cancel_errors: Counter = field(default_factory=Counter)
    timeouts: list[str] = field(default_factory=list)
    submit_latency_us: list[int] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    malformed: list[Any] = field(default_factory=list)
    seconds: float = 0.0


class _LedgerView:
    """``OrderView`` over a runtime: ``status(id)`` asks the ledger (which has already seen every
    venue event pushed during the previous ``on_market`` call, so the answer is deterministic)."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt

    def status(self, client_order_id: str) -> Any:
        report = self._rt.order(client_order_id)
        return None if report is None else report.status


class ReplayDriver:
    """Feeds a merged quote/trade stream into a runtime and drives ``strategy`` on it.

    For every event, in timestamp order: advance the :class:`ReplayClock`, ``rt.on_market``,
    then let the strategy react and carry out its actions one by one, waiting for each
    submit/cancel future (``FUTURE_TIMEOUT_S``) before the next action or event, so a replay
    is deterministic. After ``probe_after`` events the bad-input probes are submitted.
    """

    def __init__(self, rt: Any, strategy: Strategy, *, mode: str, account_id: str = "replay",
                 probe_after: int = 100) -> None:
        self.rt = rt
        self.strategy = strategy
        self.mode = mode
        self.account_id = account_id
        self.probe_after = probe_after
        self.clock = ReplayClock()
        self.view = _LedgerView(rt)
        self.stats = ReplayStats()

    def context(self) -> Any:
        """The ``ExecutionContext`` of the strategy's orders at the current market time."""
        from protocols import ExecutionContext

        return ExecutionContext(mode=self.mode, account_id=self.account_id, strategy_id=self.strategy.name,
                                session_id="replay", timestamp=self.clock.now())

    def run(self, events: Iterable[Any]) -> ReplayStats:
        """Feed every event, then the strategy's end-of-data actions; return the counts."""
        from protocols import Quote

        t0 = time.perf_counter()
        probed = False
        for n, event in enumerate(events, start=1):
            self.clock.advance(event.ts)
            self.rt.on_market(event)
            if isinstance(event, Quote):
                self.stats.quotes += 1
                actions = self.strategy.on_quote(event, self.clock, self.view)
            else:
                self.stats.trades += 1
                actions = self.strategy.on_trade(event, self.clock, self.view)
            self._act(actions)
            if not probed and n >= self.probe_after:
                self._probe()
                probed = True
        if not probed and self.clock.started:
            self._probe()
        if self.clock.started:
            self._act(self.strategy.on_end(self.clock, self.view))
        self.stats.seconds = time.perf_counter() - t0
        return self.stats

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SubmitAction):
                self.stats.submits += 1
                report = self._wait(self.rt.submit(action.intent, self.context()), action.intent.client_order_id)
                if report is None:
                    continue
                if not report.replay and report.latency_us:
                    self.stats.submit_latency_us.append(report.latency_us)
                self.strategy.on_report(report)
            else:
                self.stats.cancels += 1
                report = self._wait(self.rt.cancel(action.client_order_id, self.account_id), action.client_order_id)
                if report is not None and report.error is not None:
                    self.stats.cancel_errors[report.error.code.value] += 1

    def _probe(self) -> None:
        self.stats.probes = bad_input_probes(self.account_id, self.clock.now())
        for probe in self.stats.probes:
            report = self._wait(self.rt.submit(probe.intent, probe.context), probe.label)
            if report is not None and report.error is not None:
                probe.got, probe.message = report.error.code.value, report.error.message
            elif report is not None:
                probe.got, probe.message = f"no error ({report.status.value})", ""

    def _wait(self, future: Future, what: str) -> Any:
        try:
            return future.result(timeout=FUTURE_TIMEOUT_S)
        except Exception as exc:  # a timeout must not stop the replay; it is reported
            self.stats.timeouts.append(f"{what}: {type(exc).__name__}")
            logger.warning("no report for {} within {} s", what, FUTURE_TIMEOUT_S)
            return None


def resolve_data_paths(quotes: Path | None, trades: Path | None) -> tuple[Path, Path]:
    """The quote and trade files to replay; ``CliError`` (exit 2) when one does not exist.

    Defaults are the BTC/USDT files in ``../shared/data`` beside the repository.
    """
    if quotes is None and trades is None and not DATA_DIR.is_dir():
        raise CliError(
            f"market data directory {DATA_DIR} (../shared/data beside the repository) is missing; "
            "pass --quotes QUOTES.csv and --trades TRADES.csv")
    q = quotes if quotes is not None else DEFAULT_QUOTES
    t = trades if trades is not None else DEFAULT_TRADES
    for label, path in (("--quotes", q), ("--trades", t)):
        if not path.is_file():
            hint = "" if (quotes is not None and label == "--quotes") or (trades is not None and label == "--trades") \
                else f" (default from {DATA_DIR}); pass {label} explicitly"
            raise CliError(f"{label}: market data file {path} does not exist{hint}")
    return q, t


def run_replay(*, quotes: Path, trades: Path, mode: str, strategy_name: str, state_dir: Path,
               keep_state: bool, profile: str, seed: int, log_level: str | None, as_json: bool) -> dict:
    """Replay ``quotes`` + ``trades`` through a paper runtime driven by ``strategy_name``;
    return the session summary (see :func:`build_replay_summary`). Raises ``CliError``."""
    from actors import default_registry
    from actors._audit import verify
    from protocols._readers import ErrorCollector, read_market

    if strategy_name not in STRATEGIES:
        raise CliError(f"--strategy: unknown strategy {strategy_name!r} (known: {', '.join(STRATEGIES)})")
    settings = load_cli_settings(profile, state_dir)
    configure_logging(log_level_for(log_level, as_json, settings))
    errors = ErrorCollector()
    try:
        events = read_market(quotes, trades, on_error=errors)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read market data: {exc}") from exc
    removed = [] if keep_state else clean_state(state_dir)
    strategy = STRATEGIES[strategy_name](settings)
    rt = start_runtime(settings, registry=default_registry(), seed=seed)
    try:
        driver = ReplayDriver(rt, strategy, mode=mode)
        stats = driver.run(events)
        stats.malformed = list(errors)
        rt.flush()
        summary = build_replay_summary(rt, stats, strategy=strategy, mode=mode, state_dir=state_dir,
                                       quotes=quotes, trades=trades, removed=removed)
    finally:
        rt.stop()
    audit_path = summary.get("audit_path")
    if audit_path:
        result = verify(audit_path)
        summary["audit_ok"] = result.ok
        summary["audit_lines"] = result.lines
    return summary


def build_replay_summary(rt: Any, stats: ReplayStats, *, strategy: Strategy, mode: str, state_dir: Path,
                         quotes: Path, trades: Path, removed: Sequence[Path] = ()) -> dict:
    """The session summary of a replay as a JSON-ready dict.

    Keys: ``orders_total``, ``orders_by_status``, ``routed_to_paper`` (distinct client order ids
    the paper venue received), ``fills_total``, ``fills_sha256`` (:func:`fills_digest`),
    ``positions`` (list of :func:`position_dict`), ``realized_pnl`` / ``unrealized_pnl`` /
    ``fees`` / ``net_pnl`` (sums over positions, quote currency, strings), ``latency_us``
    (``p50``/``p99``/``max``/``n`` of the strategy's submit reports, µs), ``errors_by_code``,
    ``probes``, ``cancels``, ``breaker_states``, ``restarts`` (total) and ``children_restarts``,
    ``malformed_rows`` (``count`` + ``first`` five with file:line: column), ``events``,
    ``timeouts``, ``state_dir``, ``journal_path``, ``audit_path``, ``strategy``, ``mode``,
    ``seconds`` (wall time of the feed).
    """
    st = rt.stats()
    reports = rt.orders()
    fills_total, sha = fills_digest(reports)
    positions = sorted(rt.positions(), key=lambda p: (p.account_id, p.symbol))
    health = rt.health()
    paper = rt.venue("paper") if "paper" in rt.adapter_ids() else None
    zero = Decimal(0)
    realized = sum((p.realized_pnl for p in positions), zero)
    unrealized = sum((p.unrealized_pnl for p in positions), zero)
    fees = sum((p.fees for p in positions), zero)
    return {
        "command": "replay",
        "strategy": strategy.name,
        "strategy_stats": strategy.stats() if hasattr(strategy, "stats") else {},
        "mode": mode,
        "data": {"quotes": str(quotes), "trades": str(trades)},
        "events": {"quotes": stats.quotes, "trades": stats.trades},
        "orders_total": st["orders_total"],
        "orders_by_status": st["orders_by_status"],
        "routed_to_paper": len(paper.submission_counts()) if paper is not None else 0,
        "routed_by_adapter": {aid: len(rt.venue(aid).submission_counts()) for aid in rt.adapter_ids()
                              if hasattr(rt.venue(aid), "submission_counts")},
        "submits": stats.submits,
        "cancels": {"requested": stats.cancels, "errors": dict(stats.cancel_errors)},
        "fills_total": fills_total,
        "fills_sha256": sha,
        "positions": [position_dict(p) for p in positions],
        "realized_pnl": str(realized),
        "unrealized_pnl": str(unrealized),
        "fees": str(fees),
        "net_pnl": str(realized + unrealized - fees),
        "latency_us": latency_summary(stats.submit_latency_us),
        "errors_by_code": dict(sorted(st["errors_by_code"].items())),
        "probes": [{"label": p.label, "expected": p.expected, "got": p.got, "ok": p.ok, "message": p.message}
                   for p in stats.probes],
        "breaker_states": dict(health.breakers),
        "restarts": sum(c.restarts for c in health.children),
        "children_restarts": {c.name: c.restarts for c in health.children},
        "unknown_open": st["unknown_open"],
        "book_invariants": list(st["book_invariants"]),
        "risk_invariants": list(st["risk_invariants"]),
        "malformed_rows": {"count": len(stats.malformed), "first": [str(e) for e in stats.malformed[:5]]},
        "timeouts": list(stats.timeouts),
        "state_dir": str(state_dir),
        "state_files_removed": [p.name for p in removed],
        "journal_path": str(rt.journal_path) if rt.journal_path else None,
        "audit_path": str(rt.audit_path) if rt.audit_path else None,
        "seconds": round(stats.seconds, 3),
    }


def render_replay_summary(console: Console, s: dict) -> None:
    """Print the replay summary ``s`` (from :func:`build_replay_summary`) as rich tables."""
    console.rule(f"[bold]flowroute replay[/] — strategy {s['strategy']}, mode {s['mode']}")
    if s["strategy_stats"]:
        console.print("strategy: " + ", ".join(f"{k} {v}" for k, v in s["strategy_stats"].items()))
    console.print(f"events: {s['events']['quotes']} quotes, {s['events']['trades']} trades in {s['seconds']} s; "
                  f"orders {s['orders_total']} (routed to paper: {s['routed_to_paper']}), fills {s['fills_total']}")
    if s["malformed_rows"]["count"]:
        console.print(f"[yellow]malformed rows skipped: {s['malformed_rows']['count']}[/]")
        for line in s["malformed_rows"]["first"]:
            console.print(f"  {line}")
    else:
        console.print("malformed rows: 0")

    t = Table(title="orders by status")
    t.add_column("status")
    t.add_column("count", justify="right")
    for status, n in s["orders_by_status"].items():
        t.add_row(status, str(n))
    console.print(t)

    t = Table(title="positions (quote currency)")
    for col in ("account", "symbol", "net qty", "avg entry", "realized", "unrealized", "fees", "net pnl"):
        t.add_column(col, justify="left" if col in ("account", "symbol") else "right")
    for p in s["positions"]:
        t.add_row(p["account_id"], p["symbol"], *(short_decimal(p[k]) for k in
                  ("net_qty", "avg_entry_px", "realized_pnl", "unrealized_pnl", "fees", "net_pnl")))
    console.print(t)
    console.print(f"PnL: realized {short_decimal(s['realized_pnl'])}, unrealized {short_decimal(s['unrealized_pnl'])}, "
                  f"fees {short_decimal(s['fees'])}, net {short_decimal(s['net_pnl'])}")
    lat = s["latency_us"]
    console.print(f"submit latency (µs, n={lat['n']}): p50 {lat['p50']}  p99 {lat['p99']}  max {lat['max']}")

    t = Table(title="errors by code")
    t.add_column("code")
    t.add_column("count", justify="right")
    for c, n in s["errors_by_code"].items():
        t.add_row(c, str(n))
    console.print(t)
    for p in s["probes"]:
        mark = "[green]ok[/]" if p["ok"] else "[red]UNEXPECTED[/]"
        console.print(f"  probe {p['label']}: {p['got']} (expected {p['expected']}) {mark}")
    if s["cancels"]["requested"]:
        console.print(f"cancels requested: {s['cancels']['requested']}, errors: {s['cancels']['errors'] or 0}")
    console.print("breakers: " + ", ".join(f"{k} {v}" for k, v in s["breaker_states"].items()))
    console.print(f"restarts: {s['restarts']}  unknown open: {s['unknown_open']}  timeouts: {len(s['timeouts'])}")
    if s["book_invariants"] or s["risk_invariants"]:
        console.print(f"[red]invariant violations: {s['book_invariants'] + s['risk_invariants']}[/]")
    console.print(f"fills sha256: {s['fills_sha256']}")
    console.print(f"state dir: {s['state_dir']}  journal: {s['journal_path']}  audit: {s['audit_path']} "
                  f"(verified: {'ok' if s.get('audit_ok') else 'FAILED' if 'audit_ok' in s else 'n/a'})")


# =====================================================================================
# stress
# =====================================================================================
STRESS_ACCOUNT = "stress"
#: A first attempt answered DENIED never reached a venue and its idempotency claim was released
#: (SPEC §8), so a later duplicate of that id is legitimately a fresh order.
_CLAIM_RELEASED_STATUS = "DENIED"


@dataclass
class StressConfig:
    """Parameters of a stress run (see :func:`run_stress`)."""

    senders: int
    orders: int
    faults: str | None
    seed: int
    state_dir: Path
    profile: str
    keep_state: bool = False
    as_json: bool = False
    #: at most this many unanswered operations per sender (0: open loop, no bound)
    window: int = 8
    #: mix thresholds (cumulative probabilities per operation)
    p_dup: float = 0.05
    p_conflict: float = 0.02
    p_invalid: float = 0.02
    p_live: float = 0.01
    p_cancel: float = 0.05
    #: budget of the stress account in quote currency (None: unlimited); checked, not binding, by default
    budget: Decimal | None = Decimal("10000000")


@dataclass
class Op:
    """One stress operation: ``kind`` in new/dup/conflict/invalid/live/cancel; ``future`` its
    answer; ``original`` the op a duplicate repeats; ``intent`` what was submitted."""

    kind: str
    client_order_id: str
    future: Future
    intent: Any = None
    original: "Op | None" = None


class StressSender:
    """One sender thread: ``count`` operations with a seeded mix (see :func:`run_stress`).

    Randomness comes only from ``random.Random(f"{seed}:{index}")``; the interleaving of
    threads (and so the runtime's order of arrival) is of course not deterministic.
    """

    def __init__(self, rt: Any, index: int, count: int, cfg: StressConfig, on_done: Callable[[Future], None]) -> None:
        self.rt, self.index, self.count, self.cfg = rt, index, count, cfg
        self.rng = random.Random(f"{cfg.seed}:{index}")
        self.on_done = on_done
        self.ops: list[Op] = []
        self._originals: list[Op] = []
        self._limits: list[Op] = []
        self._n = 0
        self._outstanding: deque[Future] = deque()
        self.quote_every = max(25, 1000 // max(1, cfg.senders))
        self.error: BaseException | None = None

    def _id(self) -> str:
        self._n += 1
        return f"s{self.index:02d}-{self._n:06d}"

    def _ctx(self, mode: str = "paper") -> Any:
        from protocols import ExecutionContext

        return ExecutionContext(mode=mode, account_id=STRESS_ACCOUNT, strategy_id=f"sender{self.index}", session_id="stress")

    def _quote(self) -> None:
        """Feed one synthetic BTC/USDT quote around 39433 (±5.00, from this sender's rng)."""
        bid = Decimal("39433.00") + Decimal(self.rng.randint(-500, 500)) * Decimal("0.01")
        self.rt.on_market(synthetic_quote(bid))

    def _new_intent(self) -> Any:
        from protocols import OrderIntent

        rng = self.rng
        side = "BUY" if rng.random() < 0.5 else "SELL"
        qty = Decimal(rng.choice(("0.001", "0.002", "0.005")))
        if rng.random() < 0.6:
            return OrderIntent(client_order_id=self._id(), symbol=SYMBOL, side=side, order_type="MARKET", quantity=qty)
        touch = self.rt.venue("paper").touch(SYMBOL)
        ticks = Decimal(rng.randint(1, 200)) * Decimal("0.01")
        if touch is None:
            price = Decimal("39433.00") - ticks if side == "BUY" else Decimal("39433.01") + ticks
        else:
            price = touch.bid - ticks if side == "BUY" else touch.ask + ticks
        return OrderIntent(client_order_id=self._id(), symbol=SYMBOL, side=side, order_type="LIMIT", quantity=qty,
                           limit_price=price)

    def _submit(self, kind: str, intent: Any, ctx: Any, original: Op | None = None) -> Op:
        coid = intent["client_order_id"] if isinstance(intent, dict) else intent.client_order_id
        future = self.rt.submit(intent, ctx)
        return self._track(Op(kind, coid, future, intent, original))

    def _track(self, op: Op) -> Op:
        op.future.add_done_callback(self.on_done)
        self.ops.append(op)
        self._outstanding.append(op.future)
        return op

    def _respect_window(self) -> None:
        """Block until fewer than ``cfg.window`` of this sender's operations are unanswered
        (each wait bounded by ``FUTURE_TIMEOUT_S``; an unanswered one is left to the invariants)."""
        window = self.cfg.window
        if window <= 0:
            return
        outstanding = self._outstanding
        while outstanding and outstanding[0].done():
            outstanding.popleft()
        while len(outstanding) >= window:
            try:
                outstanding[0].result(timeout=FUTURE_TIMEOUT_S)
            except Exception:
                pass
            outstanding.popleft()
            while outstanding and outstanding[0].done():
                outstanding.popleft()

    def run(self) -> None:
        """Send every operation (thread body); a crash is kept in ``self.error``."""
        try:
            self._run()
        except BaseException as exc:  # reported as a failed invariant, never silently lost
            self.error = exc
            logger.opt(exception=exc).error("stress sender {} crashed", self.index)

    def _run(self) -> None:
        cfg, rng = self.cfg, self.rng
        c_dup = cfg.p_dup
        c_conflict = c_dup + cfg.p_conflict
        c_invalid = c_conflict + cfg.p_invalid
        c_live = c_invalid + cfg.p_live
        c_cancel = c_live + cfg.p_cancel
        for k in range(self.count):
            self._respect_window()
            if k and k % self.quote_every == 0:
                self._quote()
            u = rng.random()
            if u < c_dup and self._originals:
                orig = rng.choice(self._originals)
                self._submit("dup", orig.intent, self._ctx(), orig)
            elif u < c_conflict and self._originals:
                orig = rng.choice(self._originals)
                changed = orig.intent.model_copy(update={"quantity": orig.intent.quantity + Decimal("0.001")})
                self._submit("conflict", changed, self._ctx(), orig)
            elif c_conflict <= u < c_invalid:
                base = {"client_order_id": self._id(), "symbol": SYMBOL, "side": "BUY"}
                if rng.random() < 0.5:
                    bad = {**base, "order_type": "MARKET", "quantity": "-0.001"}
                else:
                    bad = {**base, "order_type": "LIMIT", "quantity": "0.001"}
                self._submit("invalid", bad, self._ctx())
            elif c_invalid <= u < c_live:
                self._submit("live", self._new_intent(), self._ctx("live"))
            elif c_live <= u < c_cancel and self._cancelable():
                target = self._cancelable()
                self._limits.remove(target)
                future = self.rt.cancel(target.client_order_id, STRESS_ACCOUNT)
                self._track(Op("cancel", target.client_order_id, future, None, target))
            else:
                op = self._submit("new", self._new_intent(), self._ctx())
                self._originals.append(op)
                if op.intent.order_type.value == "LIMIT":
                    self._limits.append(op)

    def _cancelable(self) -> Op | None:
        """The oldest of this sender's LIMIT orders whose report says it is resting, or None.

        Like a trader, the sender only cancels what it knows is working: it waits (at most
        ``FUTURE_TIMEOUT_S``) for the report of its oldest unanswered LIMIT; LIMITs that turn
        out not to rest (filled, rejected, denied) are dropped from the candidates.
        """
        while self._limits:
            op = self._limits[0]
            try:
                report = op.future.result(timeout=FUTURE_TIMEOUT_S)
            except Exception:
                return None  # still unanswered: no cancel now (the wait is the invariants' business)
            if report.status.is_open:
                return op
            self._limits.pop(0)
        return None


def synthetic_quote(bid: Decimal) -> Any:
    """A BTC/USDT quote at ``bid`` / ``bid + 0.01``, 50 BTC each side, stamped now (UTC)."""
    from protocols import Quote, utc_now

    return Quote(ts=utc_now(), symbol=SYMBOL, bid=bid, bid_size=Decimal(50), ask=bid + Decimal("0.01"),
                 ask_size=Decimal(50))


@dataclass
class Invariant:
    """A named check of a stress run: ``ok`` and a short ``detail``."""

    name: str
    ok: bool
    detail: str = ""


def _code(report: Any) -> str | None:
    return None if report is None or report.error is None else report.error.code.value


def check_stress(rt: Any, ops: list[Op], *, faults: Any, resolved_in_time: bool, sender_errors: list[str],
                 unknown_settled: bool, healthy_settled: bool) -> list[Invariant]:
    """Evaluate the stress invariants (names and rules in :func:`run_stress`)."""
    from protocols import ExecutionReport

    out: list[Invariant] = []
    reports = {id(op): (op.future.result() if op.future.done() else None) for op in ops}
    unresolved = sum(1 for op in ops if not op.future.done())
    bad_type = sum(1 for r in reports.values() if r is not None and not isinstance(r, ExecutionReport))
    out.append(Invariant(
        "every_intent_one_final_report",
        unresolved == 0 and bad_type == 0 and resolved_in_time and not sender_errors,
        f"{len(ops) - unresolved}/{len(ops)} resolved" + (f"; sender errors: {sender_errors}" if sender_errors else "")))

    venue = rt.venue("paper")
    dups = venue.duplicate_submissions()
    counts = venue.submission_counts()
    most = max(counts.values(), default=0)
    out.append(Invariant("no_duplicate_venue_submission", dups == 0 and most <= 1,
                         f"duplicate submissions {dups}, max submissions per id {most}, ids {len(counts)}"))

    bad_dups: list[str] = []
    n_dup = n_conf = 0
    for op in ops:
        if op.kind not in ("dup", "conflict"):
            continue
        report, orig = reports[id(op)], reports[id(op.original)] if op.original else None
        if report is None:
            bad_dups.append(f"{op.kind} {op.client_order_id}: no report")
            continue
        if orig is not None and orig.status.value == _CLAIM_RELEASED_STATUS:
            continue  # the first was denied before any venue call and its claim released: any answer is legitimate
        if op.kind == "dup":
            n_dup += 1
            if not (report.replay or _code(report) == "E_EXEC_DUPLICATE_IN_FLIGHT"):
                bad_dups.append(f"dup {op.client_order_id}: {report.status.value} {_code(report)} replay={report.replay}")
        else:
            n_conf += 1
            if _code(report) != "E_EXEC_IDEMPOTENCY_CONFLICT":
                bad_dups.append(f"conflict {op.client_order_id}: {report.status.value} {_code(report)}")
    out.append(Invariant("duplicates_replayed_or_conflict", not bad_dups,
                         f"{n_dup} exact, {n_conf} conflicting checked" + (f"; bad: {bad_dups[:5]}" if bad_dups else "")))

    bad_inv: list[str] = []
    for op in ops:
        want = {"invalid": "E_EXEC_VALIDATION", "live": "E_EXEC_POLICY_BLOCKED"}.get(op.kind)
        if want and _code(reports[id(op)]) != want:
            bad_inv.append(f"{op.kind} {op.client_order_id}: {_code(reports[id(op)])}")
    n_inv = sum(1 for op in ops if op.kind in ("invalid", "live"))
    out.append(Invariant("invalid_rejected", not bad_inv, f"{n_inv} checked" + (f"; bad: {bad_inv[:5]}" if bad_inv else "")))

    out.append(positions_invariant(rt))
    out.append(budget_invariant(rt, ops))

    if faults is not None:
        st = rt.stats()
        out.append(Invariant("all_unknown_resolved", st["unknown_open"] == 0 and unknown_settled,
                             f"unknown open {st['unknown_open']}, resolved {st['unknown_resolved']}"))
        health = rt.health()
        not_running = [f"{c.name}={c.state}" for c in health.children if c.state != "running"]
        out.append(Invariant("adapters_healthy_at_end", not not_running and healthy_settled,
                             "all running" if not not_running else ", ".join(not_running)))
        if faults.crash > 0 or faults.hang > 0:
            restarts = sum(c.restarts for c in health.children)
            out.append(Invariant("restarts_happened", restarts > 0, f"{restarts} restarts"))
    return out


def budget_invariant(rt: Any, ops: list[Op]) -> Invariant:
    """``budget_never_overbooked``: for every risk book with a budget, nothing is reserved below
    zero and reserved + spent stays within the budget (SPEC §10), and the risk engine found no
    breach; the detail counts the orders denied by the budget rule."""
    st = rt.stats()
    problems = [f"risk: {x}" for x in st["risk_invariants"]]
    checked = []
    for acct, e in st.get("exposure", {}).items():
        if e["budget"] is None:
            continue
        reserved, spent, budget = Decimal(e["reserved"]), Decimal(e["spent"]), Decimal(e["budget"])
        checked.append(f"{acct}: reserved {reserved:.2f} + spent {spent:.2f} <= {budget:.2f}")
        if reserved < 0:
            problems.append(f"{acct}: reservation negative ({reserved})")
        if reserved + spent > budget:
            problems.append(f"{acct}: reserved + spent {reserved + spent} > budget {budget}")
    reports = [op.future.result() for op in ops if op.future.done() and op.future.exception() is None]
    denied = sum(1 for r in reports if r.error is not None and r.error.code.value == "E_EXEC_RISK_DENIED"
                 and r.error.message.startswith("budget"))
    detail = "; ".join(checked) + f"; {denied} order(s) denied by the budget" if checked else "no budget configured"
    return Invariant("budget_never_overbooked", not problems, detail if not problems else "; ".join(problems[:5]))


def positions_invariant(rt: Any) -> Invariant:
    """``positions_equal_fills``: the ledger's net positions equal the signed sum of the fills
    in ``rt.orders()`` per (account, symbol), the paper venue's own ``fetch_positions`` for the
    stress account agrees (asked on the inner venue, past any fault wrapper), and the ledger's
    book and risk invariant lists are empty."""
    st = rt.stats()
    from_fills: dict[tuple[str, str], Decimal] = {}
    for r in rt.orders():
        for f in r.fills:
            key = (r.account_id, r.symbol)
            from_fills[key] = from_fills.get(key, Decimal(0)) + r.side.sign * f.qty
    ledger = {(p.account_id, p.symbol): p.net_qty for p in rt.positions()}
    problems: list[str] = []
    for key in sorted(set(from_fills) | set(ledger)):
        a, b = ledger.get(key, Decimal(0)), from_fills.get(key, Decimal(0))
        if a != b:
            problems.append(f"{key}: ledger {a} != fills {b}")
    venue = rt.venue("paper")
    inner = getattr(venue, "inner", venue)
    venue_pos = inner.fetch_positions(STRESS_ACCOUNT)
    for symbol in sorted(set(venue_pos) | {s for (a, s) in ledger if a == STRESS_ACCOUNT}):
        a, v = ledger.get((STRESS_ACCOUNT, symbol), Decimal(0)), venue_pos.get(symbol, Decimal(0))
        if a != v:
            problems.append(f"{symbol}: ledger {a} != venue {v}")
    problems += [f"book: {x}" for x in st["book_invariants"]] + [f"risk: {x}" for x in st["risk_invariants"]]
    net = ledger.get((STRESS_ACCOUNT, SYMBOL), Decimal(0))
    return Invariant("positions_equal_fills", not problems,
                     f"{STRESS_ACCOUNT} {SYMBOL} net {net}" if not problems else "; ".join(problems[:5]))


def run_stress(cfg: StressConfig, console: Console, log_level: str | None) -> tuple[dict, bool]:
    """Drive a runtime (profile ``cfg.profile``) from ``cfg.senders`` threads; return
    ``(summary, all_invariants_ok)``.

    Mix per operation (each sender's own seeded rng): ~5% exact duplicates of an earlier order
    of the same sender, ~2% conflicting duplicates (same id, quantity + 0.001), ~2% invalid
    dict intents (negative quantity / LIMIT without price), ~1% live-mode intents, ~5% cancels
    of the sender's resting LIMIT orders, the rest new paper orders (60% MARKET, 40% LIMIT
    1–200 ticks behind the touch; 0.001/0.002/0.005 BTC). One synthetic quote is fed before the
    senders start and each sender feeds another every ``max(25, 1000 // senders)`` operations.
    Each sender keeps at most ``cfg.window`` operations unanswered (closed loop, like a real
    order sender; ``0`` = open loop: fire everything and collect at the end).

    Invariants: every_intent_one_final_report, no_duplicate_venue_submission,
    duplicates_replayed_or_conflict (a duplicate of an order that was DENIED before any venue
    call is exempt: its claim was released, so the id is free again), invalid_rejected,
    positions_equal_fills; with faults also all_unknown_resolved, adapters_healthy_at_end and,
    when crash or hang rates are > 0, restarts_happened.
    """
    from actors import default_registry
    from protocols import CircuitStateChanged
    from protocols.venues import FaultPlan

    if cfg.senders < 1 or cfg.orders < 1:
        raise CliError("--senders and --orders must be >= 1")
    plan = None
    if cfg.faults:
        try:
            plan = FaultPlan.parse(cfg.faults, seed=cfg.seed)
        except ValueError as exc:
            raise CliError(f"--faults: {exc}") from exc
    overrides = {"risk": {"budgets": {STRESS_ACCOUNT: str(cfg.budget)}}} if cfg.budget is not None else {}
    settings = load_cli_settings(cfg.profile, cfg.state_dir, **overrides)
    configure_logging(log_level_for(log_level, cfg.as_json, settings))
    removed = [] if cfg.keep_state else clean_state(cfg.state_dir)
    rt = start_runtime(settings, registry=default_registry(faults=plan), seed=cfg.seed)
    transitions: list[str] = []
    sub = rt.subscribe(lambda e: transitions.append(f"{e.from_state}->{e.to_state}"), CircuitStateChanged)
    done_lock = threading.Lock()
    done = [0]

    def on_done(_: Future) -> None:
        with done_lock:
            done[0] += 1

    try:
        rt.on_market(synthetic_quote(Decimal("39433.00")))
        per = [cfg.orders // cfg.senders + (1 if i < cfg.orders % cfg.senders else 0) for i in range(cfg.senders)]
        senders = [StressSender(rt, i, n, cfg, on_done) for i, n in enumerate(per)]
        threads = [threading.Thread(target=s.run, name=f"stress-sender-{s.index}", daemon=True) for s in senders]
        budget_s = 120.0 + cfg.orders / 200.0
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]stress"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=make_console(stderr=True), disable=cfg.as_json, transient=False)
        t0 = time.perf_counter()
        with progress:
            task = progress.add_task("reports", total=cfg.orders)
            for th in threads:
                th.start()
            deadline = time.monotonic() + budget_s
            while time.monotonic() < deadline:
                with done_lock:
                    n = done[0]
                progress.update(task, completed=n)
                if n >= cfg.orders and not any(th.is_alive() for th in threads):
                    break
                if not any(th.is_alive() for th in threads) and n >= sum(len(s.ops) for s in senders):
                    break
                time.sleep(0.05)
            for th in threads:
                th.join(timeout=max(0.1, deadline - time.monotonic()))
            ops = [op for s in senders for op in s.ops]
            for op in ops:
                try:
                    op.future.result(timeout=max(0.01, deadline - time.monotonic()))
                except Exception:
                    pass
            progress.update(task, completed=sum(1 for op in ops if op.future.done()))
        elapsed = time.perf_counter() - t0
        resolved_in_time = all(op.future.done() for op in ops) and len(ops) == cfg.orders
        rt.flush()
        unknown_settled = wait_until(lambda: rt.stats()["unknown_open"] == 0, 30.0, 0.1)
        healthy_settled = wait_until(lambda: all(c.state == "running" for c in rt.health().children), 10.0, 0.1)
        rt.flush()
        sender_errors = [f"sender {s.index}: {s.error!r}" for s in senders if s.error is not None]
        invariants = check_stress(rt, ops, faults=plan, resolved_in_time=resolved_in_time, sender_errors=sender_errors,
                                  unknown_settled=unknown_settled, healthy_settled=healthy_settled)
        st = rt.stats()
        health = rt.health()
        latencies = [r.latency_us for op in ops if op.kind != "cancel" and op.future.done()
                     for r in (op.future.result(),)
                     if not r.replay and r.status.value != "DENIED" and r.latency_us]
        venue = rt.venue("paper")
        fault_stats = venue.stats() if plan is not None and hasattr(type(venue), "stats") else None
        kinds = Counter(op.kind for op in ops)
        summary = {
            "command": "stress",
            "senders": cfg.senders,
            "window": cfg.window,
            "intents": len(ops),
            "requested": cfg.orders,
            "mix": dict(sorted(kinds.items())),
            "final_reports": sum(1 for op in ops if op.future.done()),
            "venue_duplicate_submissions": venue.duplicate_submissions(),
            "venue_submissions": sum(venue.submission_counts().values()),
            "invariants": {i.name: i.ok for i in invariants},
            "invariant_details": {i.name: i.detail for i in invariants},
            "throughput_per_s": round(len(ops) / elapsed, 1) if elapsed > 0 else None,
            "latency_us": latency_summary(latencies),
            "restarts": sum(c.restarts for c in health.children),
            "unknown_resolved": st["unknown_resolved"],
            "unknown_open": st["unknown_open"],
            "pending_cancel_at_end": st["orders_by_status"].get("PENDING_CANCEL", 0),
            "breaker_transitions": len(transitions),
            "breaker_states": dict(health.breakers),
            "orders_by_status": st["orders_by_status"],
            "fills_total": st["fills_total"],
            "errors_by_code": dict(sorted(st["errors_by_code"].items())),
            "faults": str(plan) if plan is not None else None,
            "fault_stats": fault_stats,
            "seed": cfg.seed,
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cpu_count": os.cpu_count(),
            "seconds": round(elapsed, 3),
            "state_dir": str(cfg.state_dir),
            "state_files_removed": [p.name for p in removed],
        }
    finally:
        try:
            sub.unsubscribe()
        finally:
            rt.stop()
    return summary, all(i.ok for i in invariants)


def render_stress_summary(console: Console, s: dict) -> None:
    """Print the stress summary ``s`` with one PASS/FAIL line per invariant."""
    console.rule(f"[bold]flowroute stress[/] — {s['senders']} senders, {s['intents']} intents, faults {s['faults'] or 'none'}")
    console.print(f"mix: {s['mix']}")
    console.print(f"final reports: {s['final_reports']}/{s['intents']}  venue submissions: {s['venue_submissions']}"
                  f"  venue duplicate submissions: {s['venue_duplicate_submissions']}")
    console.print(f"orders by status: {s['orders_by_status']}  fills: {s['fills_total']}")
    console.print(f"errors by code: {s['errors_by_code']}")
    if s["fault_stats"]:
        console.print(f"injected: {s['fault_stats']}")
    if s["pending_cancel_at_end"]:
        console.print(f"[yellow]orders still PENDING_CANCEL at the end: {s['pending_cancel_at_end']}[/]")
    console.print(f"restarts: {s['restarts']}  unknown resolved: {s['unknown_resolved']}  breaker transitions: "
                  f"{s['breaker_transitions']}  breakers: {s['breaker_states']}")
    lat = s["latency_us"]
    console.print(f"throughput: {s['throughput_per_s']} intents/s over {s['seconds']} s; latency µs p50 {lat['p50']} "
                  f"p99 {lat['p99']} (n={lat['n']}); CPU affinity {s['affinity']} of {s['cpu_count']}")
    t = Table(title="invariants")
    t.add_column("invariant")
    t.add_column("result")
    t.add_column("detail")
    for name, ok in s["invariants"].items():
        t.add_row(name, "[green]PASS[/]" if ok else "[red]FAIL[/]", s["invariant_details"][name])
    console.print(t)


# =====================================================================================
# REPL
# =====================================================================================
def _dec(value: Any) -> str:
    return "-" if value is None else str(value)


class ReportView:
    """An ``ExecutionReport`` with a one-line rich rendering (the report is ``.report``)."""

    def __init__(self, report: Any) -> None:
        self.report = report

    def __getattr__(self, name: str) -> Any:
        return getattr(self.report, name)

    def __rich__(self) -> str:
        r = self.report
        color = "red" if r.error else "green"
        text = (f"[{color}]{r.status.value}[/] {r.client_order_id} {r.side.value if r.side else ''} {r.symbol} "
                f"cum {r.cum_qty} avg {_dec(r.avg_px)} fees {r.fees} leaves {r.leaves_qty}")
        if r.replay:
            text += " (replay)"
        if r.error:
            text += f"\n  {r.error.code.value}: {r.error.message}"
        return text

    def __repr__(self) -> str:
        r = self.report
        err = f" {r.error.code.value}: {r.error.message}" if r.error else ""
        return f"<{r.status.value} {r.client_order_id} cum {r.cum_qty} avg {_dec(r.avg_px)}{err}>"


class OrdersView(tuple):
    """The runtime's orders (``ExecutionReport`` tuple) rendered as a table."""

    def __rich__(self) -> Table:
        t = Table(title=f"orders ({len(self)})")
        for col in ("client order id", "side", "symbol", "status", "cum qty", "leaves", "avg px", "fees", "error"):
            t.add_column(col)
        for r in self:
            t.add_row(r.client_order_id, r.side.value if r.side else "", r.symbol, r.status.value, str(r.cum_qty),
                      str(r.leaves_qty), _dec(r.avg_px), str(r.fees), r.error.code.value if r.error else "")
        return t

    def __repr__(self) -> str:
        return "\n".join(f"{r.client_order_id} {r.status.value} cum {r.cum_qty} avg {_dec(r.avg_px)}" for r in self) or "(no orders)"


class PositionsView(tuple):
    """Positions (``actors.Position`` tuple) rendered as a table."""

    def __rich__(self) -> Table:
        t = Table(title="positions")
        for col in ("account", "symbol", "net qty", "avg entry", "realized", "unrealized", "fees", "last px"):
            t.add_column(col)
        for p in self:
            t.add_row(p.account_id, p.symbol, str(p.net_qty), _dec(p.avg_entry_px), str(p.realized_pnl),
                      str(p.unrealized_pnl), str(p.fees), _dec(p.last_px))
        return t

    def __repr__(self) -> str:
        return "\n".join(f"{p.account_id} {p.symbol} net {p.net_qty} avg {_dec(p.avg_entry_px)} "
                         f"rpnl {p.realized_pnl} upnl {p.unrealized_pnl}" for p in self) or "(no positions)"


class HealthView:
    """A ``Health`` snapshot rendered as a table (the snapshot is ``.health``)."""

    def __init__(self, health: Any) -> None:
        self.health = health

    def __getattr__(self, name: str) -> Any:
        return getattr(self.health, name)

    def __rich__(self) -> Table:
        h = self.health
        t = Table(title=f"health: {'healthy' if h.healthy else 'DEGRADED'}, trading {h.trading_state}, "
                        f"breakers {dict(h.breakers)}")
        for col in ("child", "kind", "state", "generation", "restarts", "last failure"):
            t.add_column(col)
        for c in h.children:
            t.add_row(c.name, c.kind, c.state, str(c.generation), str(c.restarts), c.last_failure)
        return t

    def __repr__(self) -> str:
        h = self.health
        return f"<Health healthy={h.healthy} trading={h.trading_state} breakers={dict(h.breakers)}>"


class ReplHelpers:
    """The helpers preloaded in ``python run.py repl`` (account ``repl``, mode ``paper``).

    Numbers may be int, str, Decimal or float (floats go through ``repr``, so ``0.001`` is
    exactly ``Decimal('0.001')``). Every order helper waits up to ``FUTURE_TIMEOUT_S`` for the
    report; a bad argument comes back as a DENIED report naming the field.
    """

    def __init__(self, rt: Any, account_id: str = "repl", mode: str = "paper") -> None:
        self.rt, self.account_id, self.mode = rt, account_id, mode

    def _order(self, side: str, qty: Any, price: Any, symbol: str, tif: str) -> ReportView:
        from protocols import ExecutionContext, new_client_order_id

        intent = {"client_order_id": new_client_order_id("repl"), "symbol": symbol, "side": side,
                  "order_type": "MARKET" if price is None else "LIMIT", "quantity": to_decimal_input(qty),
                  "time_in_force": tif}
        if price is not None:
            intent["limit_price"] = to_decimal_input(price)
        ctx = ExecutionContext(mode=self.mode, account_id=self.account_id, session_id="repl")
        return ReportView(self.rt.submit(intent, ctx).result(timeout=FUTURE_TIMEOUT_S))

    def buy(self, qty: Any, price: Any = None, symbol: str = SYMBOL, tif: str = "GTC") -> ReportView:
        """BUY ``qty`` of ``symbol``: MARKET without ``price``, else LIMIT at ``price``."""
        return self._order("BUY", qty, price, symbol, tif)

    def sell(self, qty: Any, price: Any = None, symbol: str = SYMBOL, tif: str = "GTC") -> ReportView:
        """SELL ``qty`` of ``symbol``: MARKET without ``price``, else LIMIT at ``price``."""
        return self._order("SELL", qty, price, symbol, tif)

    def cancel(self, client_order_id: Any) -> ReportView:
        """Cancel an open order by client order id (or pass the report buy/sell returned)."""
        coid = getattr(client_order_id, "client_order_id", client_order_id)
        return ReportView(self.rt.cancel(str(coid), self.account_id).result(timeout=FUTURE_TIMEOUT_S))

    def orders(self) -> OrdersView:
        """Every order the runtime has seen."""
        return OrdersView(self.rt.orders())

    def positions(self) -> PositionsView:
        """Positions per account and symbol."""
        return PositionsView(self.rt.positions())

    def health(self) -> HealthView:
        """Children, breakers and trading state."""
        return HealthView(self.rt.health())

    def quote(self, bid: Any, ask: Any, size: Any = 1, symbol: str = SYMBOL) -> Any:
        """Feed a top-of-book quote (stamped now, UTC) to the runtime; returns the ``Quote``."""
        from protocols import Quote, utc_now

        q = Quote(ts=utc_now(), symbol=symbol, bid=to_decimal_input(bid), bid_size=to_decimal_input(size),
                  ask=to_decimal_input(ask), ask_size=to_decimal_input(size))
        self.rt.on_market(q)
        return q

    def namespace(self) -> dict[str, Any]:
        """The console's globals: the helpers, ``rt``, ``Decimal``."""
        return {"buy": self.buy, "sell": self.sell, "cancel": self.cancel, "orders": self.orders,
                "positions": self.positions, "health": self.health, "quote": self.quote, "rt": self.rt,
                "Decimal": Decimal, "__name__": "__flowroute_repl__", "__doc__": None}


REPL_BANNER = """flowroute REPL — paper runtime (account 'repl', journal in {state_dir})
helpers:
  buy(qty, price=None, symbol="BTC/USDT")   MARKET without price, LIMIT with one
  sell(qty, price=None, symbol="BTC/USDT")
  cancel(id)                                 cancel an open order (id or report)
  orders()  positions()  health()            tables
  quote(bid, ask, size=1)                    feed a BTC/USDT quote (stamped now)
  rt                                         the Runtime itself
{market}
Ctrl-D (or exit()) stops the runtime and leaves."""


def run_repl(state_dir: Path, profile: str, keep_state: bool, log_level: str | None) -> int:
    """Open ``code.InteractiveConsole`` over a running paper runtime; stop it on exit.

    Works with a terminal (rich reprs, tab completion via ``rlcompleter`` + ``readline`` when
    available) and with piped stdin (each line is executed; end of input exits cleanly).
    Returns the exit code (0).
    """
    import rich.pretty

    settings = load_cli_settings(profile, state_dir)
    configure_logging(log_level or "WARNING")
    if not keep_state:
        clean_state(state_dir)
    rt = start_runtime(settings)
    try:
        helpers = ReplHelpers(rt)
        namespace = helpers.namespace()
        rich.pretty.install(console=make_console(), max_length=50)
        try:
            import readline
            import rlcompleter

            readline.set_completer(rlcompleter.Completer(namespace).complete)
            readline.parse_and_bind("tab: complete")
        except ImportError:  # no readline on this platform: no completion, still usable
            pass
        market = "no market data yet: feed one with quote(bid, ask)"
        if DEFAULT_QUOTES.is_file():
            try:
                from protocols._readers import read_quotes

                first = next(read_quotes(DEFAULT_QUOTES), None)
                if first is not None:
                    rt.on_market(first)
                    market = (f"market: first recorded quote of {DEFAULT_QUOTES.name} fed "
                              f"(bid {first.bid} / ask {first.ask}); quote(bid, ask) feeds more")
            except (OSError, ValueError) as exc:
                market = f"could not read {DEFAULT_QUOTES}: {exc}"
        console = code.InteractiveConsole(namespace)
        console.interact(banner=REPL_BANNER.format(state_dir=state_dir, market=market), exitmsg="")
    except SystemExit:  # exit() / quit() inside the console
        pass
    finally:
        sys.displayhook = sys.__displayhook__
        rt.stop()
    sys.stderr.write("flowroute: runtime stopped\n")
    return EXIT_OK


# =====================================================================================
# typer app
# =====================================================================================
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0], no_args_is_help=False,
                  pretty_exceptions_enable=False)
audit_app = typer.Typer(add_completion=False, help="Audit-log tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _fail(exc: CliError) -> None:
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(exc.code)


@app.command()
def replay(
    quotes: Path = typer.Option(None, "--quotes", help=f"Quotes CSV (default {DEFAULT_QUOTES})."),
    trades: Path = typer.Option(None, "--trades", help=f"Trades CSV (default {DEFAULT_TRADES})."),
    mode: str = typer.Option("paper", "--mode", help="Execution mode of the strategy's orders."),
    strategy: str = typer.Option("ma_cross", "--strategy", help="ma_cross or none."),
    state_dir: Path = typer.Option(Path("var"), "--state-dir", help="Journal, audit log and venue books."),
    keep_state: bool = typer.Option(False, "--keep-state", help="Keep flowroute's files from an earlier run."),
    profile: str = typer.Option("paper", "--profile", help="Settings profile."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    seed: int = typer.Option(0, "--seed", help="Seed of retry/restart jitter."),
    log_level: str = typer.Option(None, "--log-level", help="loguru level on stderr."),
) -> None:
    """Replay recorded quotes and trades through the paper venue and print the session summary."""
    try:
        q, t = resolve_data_paths(quotes, trades)
        summary = run_replay(quotes=q, trades=t, mode=mode, strategy_name=strategy, state_dir=state_dir,
                             keep_state=keep_state, profile=profile, seed=seed, log_level=log_level, as_json=as_json)
    except CliError as exc:
        _fail(exc)
        return
    if as_json:
        print_json(summary)
    else:
        render_replay_summary(make_console(), summary)


@app.command()
def stress(
    senders: int = typer.Option(8, "--senders", help="Concurrent sender threads."),
    orders: int = typer.Option(10000, "--orders", help="Operations in total (submits, duplicates, cancels, bad input)."),
    faults: str = typer.Option(None, "--faults", help='Fault plan, e.g. "crash=0.001,hang=0.0005,ambiguous=0.002,transient=0.02,reject=0.01".'),
    seed: int = typer.Option(0, "--seed", help="Seed of the mix, the faults and the jitter."),
    state_dir: Path = typer.Option(None, "--state-dir", help="State directory (default: the profile's, var/stress)."),
    keep_state: bool = typer.Option(False, "--keep-state", help="Keep flowroute's files from an earlier run."),
    window: int = typer.Option(8, "--window", help="Max unanswered operations per sender (0 = open loop)."),
    budget: str = typer.Option("10000000", "--budget", help="Budget of the stress account in USDT ('none' = unlimited)."),
    profile: str = typer.Option("stress", "--profile", help="Settings profile."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    log_level: str = typer.Option(None, "--log-level", help="loguru level on stderr."),
) -> None:
    """Drive the runtime from many threads with duplicates, cancels, bad input and faults; check invariants."""
    try:
        if state_dir is None:
            state_dir = Path(load_cli_settings(profile, Path("var/stress")).state_dir)
        try:
            budget_value = None if budget.lower() == "none" else Decimal(budget)
        except ArithmeticError:
            raise CliError(f"--budget must be a number of USDT or 'none', got {budget!r}") from None
        cfg = StressConfig(senders=senders, orders=orders, faults=faults, seed=seed, state_dir=state_dir,
                           profile=profile, keep_state=keep_state, as_json=as_json, window=window, budget=budget_value)
        summary, ok = run_stress(cfg, make_console(stderr=as_json), log_level)
    except CliError as exc:
        _fail(exc)
        return
    if as_json:
        print_json(summary)
    else:
        render_stress_summary(make_console(), summary)
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


@app.command()
def repl(
    state_dir: Path = typer.Option(Path("var/repl"), "--state-dir", help="Journal, audit log and venue books."),
    keep_state: bool = typer.Option(False, "--keep-state", help="Keep flowroute's files from an earlier session."),
    profile: str = typer.Option("paper", "--profile", help="Settings profile."),
    log_level: str = typer.Option(None, "--log-level", help="loguru level on stderr (default WARNING)."),
) -> None:
    """Interactive console with a running paper runtime and short helpers (SPEC §1.2)."""
    try:
        code_ = run_repl(state_dir, profile, keep_state, log_level)
    except CliError as exc:
        _fail(exc)
        return
    raise typer.Exit(code_)


def run_recover(state_dir: Path, profile: str) -> tuple[dict, bool]:
    """Start a runtime on ``state_dir`` (recovery runs at start), report what it resolved, check, stop.

    Checks: no client order id reached the paper venue twice, no journaled intent left
    unresolved (idempotency IN_PROGRESS/UNKNOWN or an order UNKNOWN/SUBMITTING/RESERVED),
    and the ledger's positions equal the paper venue's.
    """
    from actors._journal import SQLiteJournal

    if not (state_dir / "journal.sqlite").exists():
        raise CliError(f"no journal at {state_dir / 'journal.sqlite'}: nothing to recover")
    settings = load_cli_settings(profile, state_dir)
    rt = start_runtime(settings)
    try:
        report = rt.recovery
        ok_wait = wait_until(lambda: rt.stats()["unknown_open"] == 0, timeout_s=30.0)
        rt.flush()
        stats = rt.stats()
        orders = rt.orders()
        stuck = sorted(r.client_order_id for r in orders if r.status.value in ("UNKNOWN", "SUBMITTING", "RESERVED", "INITIALIZED"))
        venue = rt.venue("paper")
        counts = venue.submission_counts()
        duplicates = venue.duplicate_submissions() + sum(1 for n in counts.values() if n > 1)
        ledger_pos: dict[tuple[str, str], Decimal] = {}
        for p in rt.positions():
            if "@" not in p.account_id and p.net_qty != 0:
                ledger_pos[("*", p.symbol)] = ledger_pos.get(("*", p.symbol), Decimal(0)) + p.net_qty
        venue_pos = {("*", sym): qty for sym, qty in venue.fetch_positions().items() if qty != 0}
    finally:
        rt.stop()
    journal = SQLiteJournal(state_dir / "journal.sqlite")
    try:
        unresolved = [r.client_order_id for r in journal.load_unresolved()]
    finally:
        journal.close()
    resolved = [
        {"client_order_id": o.intent.client_order_id, "adapter_id": o.adapter_id, "outcome": o.outcome,
         "previous_status": o.previous_status.value,
         "venue_status": o.venue_state.status.value if o.venue_state is not None else None, "note": o.note}
        for o in (report.in_doubt if report is not None else [])
    ]
    checks = {
        "every_order_resolved": ok_wait and not stuck and not unresolved,
        "no_duplicate_delivery": duplicates == 0,
        "positions_equal_venue": ledger_pos == venue_pos,
        "book_invariants": stats["book_invariants"] == [],
    }
    summary = {
        "command": "recover",
        "state_dir": str(state_dir),
        "journaled_orders": len(report.orders) if report is not None else 0,
        "marked_unknown_at_start": report.marked_unknown if report is not None else 0,
        "outcomes": report.counts() if report is not None else {},
        "resolved": resolved,
        "unresolved": unresolved,
        "stuck_orders": stuck,
        "venue_duplicate_submissions": duplicates,
        "orders_by_status": stats["orders_by_status"],
        "checks": checks,
    }
    return summary, all(checks.values())


@app.command()
def recover(
    state_dir: Path = typer.Option(..., "--state-dir", help="The state directory of the run to recover."),
    profile: str = typer.Option("stress", "--profile", help="Settings profile the run used."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    log_level: str = typer.Option(None, "--log-level", help="loguru level on stderr."),
) -> None:
    """Recover a crashed run: reconcile every order in doubt with its venue and report what was resolved."""
    configure_logging(log_level or ("WARNING" if as_json else "INFO"))
    try:
        summary, ok = run_recover(state_dir, profile)
    except CliError as exc:
        _fail(exc)
        return
    if as_json:
        print_json(summary)
    else:
        console = make_console()
        console.print(f"[bold]recovered[/] {summary['state_dir']}: {summary['journaled_orders']} journaled order(s), "
                      f"{summary['marked_unknown_at_start']} in flight at the crash")
        console.print(f"outcomes: {summary['outcomes']}")
        for item in summary["resolved"][:50]:
            console.print(f"  {item['client_order_id']}: {item['previous_status']} -> {item['outcome']}"
                          f" ({item['venue_status'] or '-'}) {item['note']}")
        if len(summary["resolved"]) > 50:
            console.print(f"  ... and {len(summary['resolved']) - 50} more")
        console.print(f"orders by status: {summary['orders_by_status']}")
        for name, passed in summary["checks"].items():
            console.print(f"  {'[green]PASS[/]' if passed else '[red]FAIL[/]'} {name}")
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


@audit_app.command("verify")
def audit_verify(path: Path = typer.Argument(..., help="The audit log (audit.jsonl).")) -> None:
    """Verify a hash-chained audit log: prints ok or every problem with its line number; exit 0 if ok, else 1."""
    from actors._audit import verify

    result = verify(path)
    console = Console(highlight=False, soft_wrap=True)  # one problem per line, never wrapped
    if result.ok:
        console.print(f"[green]ok[/]: {path}: {result.lines} line(s), last seq {result.last_seq}"
                      + (f", anchor seq {result.head_seq}" if result.head_seq is not None else ""))
    else:
        console.print(f"[red]FAILED[/]: {path}: {len(result.problems)} problem(s) in {result.lines} line(s)")
        for p in result.problems:
            console.print(f"  line {p.line_no}: {p.kind}: {p.message}")
    for w in result.warnings:
        console.print(f"  [yellow]warning[/] line {w.line_no}: {w.kind}: {w.message}")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point. Without a command (or when the first argument is an option other than
    ``--help``) the ``replay`` command runs: ``python run.py --json`` == ``python run.py replay --json``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("--help", "-h")):
        args.insert(0, "replay")
    app(args=args, prog_name="run.py")


if __name__ == "__main__":
    main()
