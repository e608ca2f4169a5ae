"""``flowroute repl``: an interactive session over a running paper runtime.

The command shell lives in ``shell.py``; ``--python`` opens a Python console with the helpers
below (``buy(qty, price=None)``, ``sell``, ``cancel``, ``orders()``, ``positions()``,
``health()``, ``quote(bid, ask)``, ``rt``)."""

from __future__ import annotations

import argparse
import code
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.table import Table

from flowroute import ErrorCollector, ExecutionContext, Quote, new_client_order_id, read_quotes, utc_now

from ._common import (
    EXIT_OK,
    FUTURE_TIMEOUT_S,
    SYMBOL,
    announce,
    configure_logging,
    default_quotes,
    load_cli_settings,
    make_console,
    prepare_state,
    start_runtime,
    to_decimal_input,
)


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
    """The helpers preloaded in ``flowroute repl --python`` (account ``repl``, mode ``paper``).

    Numbers may be int, str, Decimal or float (floats go through ``repr``, so ``0.001`` is
    exactly ``Decimal('0.001')``). Every order helper waits up to ``FUTURE_TIMEOUT_S`` for the
    report; a bad argument comes back as a DENIED report naming the field.
    """

    def __init__(self, rt: Any, account_id: str = "repl", mode: str = "paper") -> None:
        self.rt, self.account_id, self.mode = rt, account_id, mode

    def _order(self, side: str, qty: Any, price: Any, symbol: str, tif: str) -> ReportView:
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


def run_python_console(rt: Any, state_dir: Path) -> None:
    """``--python``: a ``code.InteractiveConsole`` over the running runtime with the helpers of
    :class:`ReplHelpers` (rich reprs; tab completion via ``rlcompleter`` + ``readline`` when
    available). Works with piped stdin too (each line is executed; end of input leaves)."""
    import rich.pretty

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
    try:
        console = code.InteractiveConsole(namespace)
        console.interact(banner=REPL_BANNER.format(state_dir=state_dir, market=feed_first_quote(rt.on_market)), exitmsg="")
    except SystemExit:  # exit() / quit() inside the console
        pass
    finally:
        sys.displayhook = sys.__displayhook__


def feed_first_quote(feed: Any) -> str:
    """Feed (``feed(quote)``) the first recorded quote of the default data file, when there is
    one; a sentence saying what the market is."""
    path = default_quotes()
    if not path.is_file():
        return "no market data yet: feed a quote (quote BID ASK)"
    try:
        first = next(iter(read_quotes(path, on_error=ErrorCollector())), None)
    except (OSError, ValueError) as exc:
        return f"could not read {path}: {exc}"
    if first is None:
        return f"no usable quote in {path}"
    feed(first)
    return f"market: first recorded quote of {path.name} fed (bid {first.bid} / ask {first.ask})"


def run_repl(state_dir: Path | None, profile: str, fresh: bool, log_level: str | None, python: bool = False) -> int:
    """Start a paper runtime on ``state_dir``, open the REPL (the command shell, or the Python
    console with ``python``) and stop the runtime on exit. Returns the exit code (0)."""
    settings = load_cli_settings(profile, state_dir)
    configure_logging(log_level or "WARNING")
    prepare_state(Path(settings.state_dir), fresh)
    rt = start_runtime(settings)
    announce("repl", rt, settings, profile)
    try:
        if python:
            run_python_console(rt, Path(settings.state_dir))
        else:
            from .shell import run_shell

            run_shell(rt, Path(settings.state_dir), market=lambda shell: feed_first_quote(shell.feed))
    finally:
        rt.stop()
    sys.stderr.write("flowroute: runtime stopped\n")
    return EXIT_OK


def add_parser(subparsers: Any, parents: Any) -> argparse.ArgumentParser:
    """Register ``repl``."""
    p = subparsers.add_parser(
        "repl", parents=[parents.log, parents.settings, parents.fresh],
        help="interactive shell over a running paper runtime: buy, sell, cancel, orders …",
        description="An interactive command shell over a running paper runtime (account 'repl'): "
                    "buy, sell, cancel, orders, positions, health, breaker, halt, resume, quote, help, exit. "
                    "Fills, cancels and breaker changes are printed as they happen.")
    p.add_argument("--python", action="store_true",
                   help="a Python console with helper functions (buy(qty, price=None), orders() …) instead")
    p.set_defaults(handler=run, default_profile="paper", default_state_dir=Path("var/repl"))
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``repl`` with parsed ``args``."""
    return run_repl(args.state_dir, args.profile, args.fresh, args.log_level, python=args.python)
