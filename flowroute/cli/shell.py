"""The REPL's command shell (``flowroute repl``), on the standard :mod:`cmd` module.

Commands (``help COMMAND`` shows one)::

    buy QTY [SYMBOL] [@PRICE] [ioc|fok|day|gtc]     MARKET without a price, LIMIT with one
    sell QTY [SYMBOL] [@PRICE] [ioc|fok|day|gtc]
    cancel ID                                       cancel an open order by client order id
    orders [open]                                   every order of the session (or the open ones)
    positions                                       positions per account and symbol
    health                                          children, breakers, trading state
    breaker ID                                      one adapter's circuit breaker
    halt | resume                                   kill switch: deny new orders | back to ACTIVE
    quote [BID ASK [SIZE] [SYMBOL]]                 show the last quotes, or feed one (stamped now)
    help [COMMAND] | exit

Every error is one line starting ``error:``; the session goes on. Fills, cancels and breaker
changes are printed as they happen (lines starting ``*``), also for orders that rest and fill
later. With a terminal the shell keeps a history (``repl_history`` in the state directory) and
completes commands, symbols, time-in-force values, order ids and adapter ids with Tab.
"""

from __future__ import annotations

import cmd
import shlex
import sys
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from flowroute import (
    CircuitStateChanged,
    ExecutionContext,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    Quote,
    new_client_order_id,
    utc_now,
)
from protocols import OPEN_STATUSES

from ._common import FUTURE_TIMEOUT_S, SYMBOL, wait_until

TIME_IN_FORCE: tuple[str, ...] = ("gtc", "ioc", "fok", "day")
HISTORY_FILE = "repl_history"
HISTORY_LENGTH = 1000


class ShellError(Exception):
    """A user's mistake in a command: printed as ``error: MESSAGE``, the session goes on."""


def _dec(value: Any) -> str:
    return "-" if value is None else format(value, "f")


def report_line(r: Any) -> str:
    """One line for an ``ExecutionReport``: status, id, side, symbol, quantities, error."""
    side = r.side.value if r.side is not None else ""
    line = (f"{r.status.value} {r.client_order_id} {side} {r.symbol} cum {_dec(r.cum_qty)} "
            f"leaves {_dec(r.leaves_qty)} avg {_dec(r.avg_px)} fees {_dec(r.fees)}")
    if r.replay:
        line += " (replay)"
    if r.error is not None:
        line += f" — {r.error.code.value}: {r.error.message}"
    return line


def event_line(event: Any) -> str | None:
    """The ``*`` line printed when a fill, a cancel or a breaker change happens; None for others."""
    if isinstance(event, CircuitStateChanged):
        return f"* breaker {event.adapter_id}: {event.from_state} -> {event.to_state}"
    if isinstance(event, (OrderFilled, OrderPartiallyFilled)):
        fill = getattr(event, "fill", None)
        what = "filled" if isinstance(event, OrderFilled) else "partially filled"
        if fill is not None:
            return f"* {what} {event.client_order_id}: {_dec(fill.qty)} @ {_dec(fill.price)}"
        return f"* {what} {event.client_order_id}"
    if isinstance(event, OrderCanceled):
        return f"* canceled {event.client_order_id}"
    return None


class FlowrouteShell(cmd.Cmd):
    """The command shell over a running runtime ``rt`` (orders as ``account_id`` in ``mode``).

    ``stdin``/``stdout``: the streams (default the process's). With a terminal the prompt is
    ``flowroute> ``; with piped input there is no prompt and each command is echoed after
    ``> `` so a transcript reads well.
    """

    intro = ""
    doc_header = "commands (help COMMAND for one):"
    ruler = ""

    def __init__(self, rt: Any, *, account_id: str = "repl", mode: str = "paper", stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None, history: Path | None = None) -> None:
        stdin = stdin or sys.stdin
        stdout = stdout or sys.stdout
        super().__init__(stdin=stdin, stdout=stdout)
        self.rt, self.account_id, self.mode = rt, account_id, mode
        self.interactive = bool(getattr(stdin, "isatty", lambda: False)())
        self.use_rawinput = self.interactive and stdin is sys.stdin
        self.prompt = "flowroute> " if self.interactive else ""
        self.history = history
        self._out_lock = threading.Lock()
        self._quotes: dict[str, Any] = {}
        self._subscription = rt.subscribe(self._on_event, (OrderFilled, OrderPartiallyFilled, OrderCanceled,
                                                           CircuitStateChanged))

    # -- output ----------------------------------------------------------------------------
    def say(self, text: str) -> None:
        """Print one line (thread-safe: events arrive on the runtime's subscriber thread)."""
        with self._out_lock:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def _on_event(self, event: Any) -> None:
        line = event_line(event)
        if line is not None:
            self.say(line)

    # -- the loop --------------------------------------------------------------------------
    def preloop(self) -> None:
        if self.use_rawinput and self.history is not None:
            try:
                import readline

                readline.set_history_length(HISTORY_LENGTH)
                if self.history.is_file():
                    readline.read_history_file(self.history)
            except (ImportError, OSError):
                pass

    def postloop(self) -> None:
        if self.use_rawinput and self.history is not None:
            try:
                import readline

                readline.write_history_file(self.history)
            except (ImportError, OSError):
                pass
        self._subscription.unsubscribe()

    def precmd(self, line: str) -> str:
        if not self.interactive and line.strip() and line != "EOF":
            self.say(f"> {line.rstrip()}")
        return line

    def onecmd(self, line: str) -> bool:
        """Run one command; a :class:`ShellError` or any other exception is one ``error:`` line."""
        try:
            return super().onecmd(line)
        except ShellError as exc:
            self.say(f"error: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug or a runtime failure: one error line, the session goes on
            self.say(f"error: {type(exc).__name__}: {exc}")
        return False

    def postcmd(self, stop: bool, line: str) -> bool:
        self.settle()
        return stop

    def settle(self, timeout_s: float = 2.0) -> None:
        """Let the events a command caused be printed before the next prompt: a barrier across
        the runtime, then wait (bounded) until this shell's subscriber has nothing pending."""
        try:
            self.rt.flush(timeout=timeout_s)
            token = self._subscription.token
            wait_until(lambda: self.rt.stats(invariants=False)["bus"]["subscribers"].get(token, {}).get("pending", 0) == 0,
                       timeout_s, 0.01)
        except Exception:  # noqa: BLE001 - a stopped or busy runtime: the events still print when they come
            pass

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> bool:  # type: ignore[override]  # cmd.Cmd.onecmd returns it as the stop flag; typeshed says None
        if line == "EOF":
            return self.do_exit("")
        word = line.split()[0] if line.split() else line
        raise ShellError(f"unknown command {word!r} (commands: {', '.join(self.commands())})")

    def commands(self) -> list[str]:
        """The command names, sorted."""
        return sorted(name[3:] for name in self.get_names() if name.startswith("do_") and name not in ("do_EOF", "do_quit"))

    def do_help(self, arg: str) -> bool | None:
        """help [COMMAND]: list the commands, or show one command's usage."""
        name = arg.strip()
        if not name:
            self.say("commands: " + ", ".join(self.commands()) + "  (help COMMAND for one)")
            for command in self.commands():
                doc = getattr(self, f"do_{command}").__doc__ or ""
                self.say(f"  {doc.splitlines()[0]}")
            return None
        method = getattr(self, f"do_{name}", None)
        if method is None:
            raise ShellError(f"help: unknown command {name!r} (commands: {', '.join(self.commands())})")
        self.say((method.__doc__ or name).strip())
        return None

    # -- orders ----------------------------------------------------------------------------
    def _order(self, side: str, arg: str) -> None:
        usage = f"usage: {side.lower()} QTY [SYMBOL] [@PRICE] [ioc|fok|day|gtc]"
        words = shlex.split(arg)
        if not words:
            raise ShellError(usage)
        qty = _number(words[0], "quantity", usage)
        symbol, price, tif = SYMBOL, None, "GTC"
        for word in words[1:]:
            if word.startswith("@"):
                price = _number(word[1:], "price", usage)
            elif word.lower() in TIME_IN_FORCE:
                tif = word.upper()
            elif "/" in word:
                symbol = word.upper()
            else:
                raise ShellError(f"{side.lower()}: {word!r} is not a symbol (BASE/QUOTE), @PRICE or "
                                 f"a time in force ({'|'.join(TIME_IN_FORCE)}); {usage}")
        intent = {"client_order_id": new_client_order_id("repl"), "symbol": symbol, "side": side,
                  "order_type": "MARKET" if price is None else "LIMIT", "quantity": qty, "time_in_force": tif}
        if price is not None:
            intent["limit_price"] = price
        ctx = ExecutionContext(mode=self.mode, account_id=self.account_id, session_id="repl")
        self.say(report_line(self.rt.submit(intent, ctx).result(timeout=FUTURE_TIMEOUT_S)))

    def do_buy(self, arg: str) -> None:
        """buy QTY [SYMBOL] [@PRICE] [ioc|fok|day|gtc]: BUY QTY (default BTC/USDT), MARKET without @PRICE, else LIMIT."""
        self._order("BUY", arg)

    def do_sell(self, arg: str) -> None:
        """sell QTY [SYMBOL] [@PRICE] [ioc|fok|day|gtc]: SELL QTY (default BTC/USDT), MARKET without @PRICE, else LIMIT."""
        self._order("SELL", arg)

    def do_cancel(self, arg: str) -> None:
        """cancel ID: cancel an open order by its client order id (orders lists them)."""
        words = arg.split()
        if len(words) != 1:
            raise ShellError("usage: cancel ID")
        coid = words[0]
        if self.rt.order(coid) is None:
            raise ShellError(f"cancel: no order {coid!r} in this runtime (orders lists the ids)")
        self.say(report_line(self.rt.cancel(coid, self.account_id).result(timeout=FUTURE_TIMEOUT_S)))

    def do_orders(self, arg: str) -> None:
        """orders [open]: every order of this runtime, or only the open ones."""
        words = arg.split()
        if words not in ([], ["open"]):
            raise ShellError("usage: orders [open]")
        reports = self.rt.orders(OPEN_STATUSES if words else None)
        if not reports:
            self.say("(no open orders)" if words else "(no orders)")
        for r in reports:
            self.say(report_line(r))

    def do_positions(self, arg: str) -> None:
        """positions: net quantity, average entry and PnL per account and symbol."""
        if arg.strip():
            raise ShellError("usage: positions")
        positions = self.rt.positions()
        if not positions:
            self.say("(no positions)")
        for p in positions:
            self.say(f"{p.account_id} {p.symbol} net {_dec(p.net_qty)} avg {_dec(p.avg_entry_px)} "
                     f"realized {_dec(p.realized_pnl)} unrealized {_dec(p.unrealized_pnl)} fees {_dec(p.fees)}")

    # -- the runtime -----------------------------------------------------------------------
    def do_health(self, arg: str) -> None:
        """health: healthy or degraded, trading state, breakers, and every supervised child."""
        h = self.rt.health()
        self.say(f"{'healthy' if h.healthy else 'DEGRADED'}, trading {h.trading_state}, breakers "
                 + ", ".join(f"{k} {v}" for k, v in h.breakers.items()))
        for c in h.children:
            failure = f", last failure: {c.last_failure}" if c.last_failure else ""
            self.say(f"  {c.name} ({c.kind}) {c.state}, generation {c.generation}, restarts {c.restarts}{failure}")
        for what, refused in (("journal rows", h.refused_rows), ("idempotency claims", h.refused_claims),
                              ("shared budget values", h.refused_budget)):
            if refused:
                self.say(f"  {what} refused for their values: {refused['count']}, last {refused['last_client_order_id']!r}: "
                         f"{refused['last_reason']} (rt.acknowledge_refused() once dealt with)")

    def do_breaker(self, arg: str) -> None:
        """breaker ID: the circuit breaker of adapter ID (paper, shadow, dry_run …)."""
        words = arg.split()
        ids = self.rt.adapter_ids()
        if len(words) != 1:
            raise ShellError(f"usage: breaker ID (adapters: {', '.join(ids)})")
        if words[0] not in ids:
            raise ShellError(f"breaker: no adapter {words[0]!r} (adapters: {', '.join(ids)})")
        b = self.rt.breaker(words[0])
        rate = "n/a" if b.failure_rate < 0 else f"{b.failure_rate:.1f} %"
        self.say(f"breaker {b.adapter_id}: {b.state.value}, failure rate {rate}, calls in window "
                 f"{b.buffered_calls} ({b.failed_calls} failed, {b.slow_calls} slow), not permitted "
                 f"{b.not_permitted_calls}, transitions {b.transitions}")

    def do_halt(self, arg: str) -> None:
        """halt: the kill switch — every new order is denied; cancels still pass."""
        self.say(f"trading {self.rt.halt()}")

    def do_resume(self, arg: str) -> None:
        """resume: trading back to ACTIVE after halt."""
        self.say(f"trading {self.rt.resume()}")

    def do_quote(self, arg: str) -> None:
        """quote [BID ASK [SIZE] [SYMBOL]]: show the last quote of each symbol, or feed one (stamped now, size 1)."""
        words = arg.split()
        usage = "usage: quote [BID ASK [SIZE] [SYMBOL]]"
        if not words:
            if not self._quotes:
                self.say("(no quote fed in this session: quote BID ASK)")
            for q in self._quotes.values():
                self.say(f"{q.symbol} bid {_dec(q.bid)} x {_dec(q.bid_size)} / ask {_dec(q.ask)} x {_dec(q.ask_size)} at {q.ts.isoformat()}")
            return
        if len(words) < 2:
            raise ShellError(usage)
        bid, ask = _number(words[0], "bid", usage), _number(words[1], "ask", usage)
        size, symbol = Decimal(1), SYMBOL
        for word in words[2:]:
            if "/" in word:
                symbol = word.upper()
            else:
                size = _number(word, "size", usage)
        try:
            q = Quote(ts=utc_now(), symbol=symbol, bid=bid, bid_size=size, ask=ask, ask_size=size)
        except ValueError as exc:
            raise ShellError(f"quote: {_first_line(exc)}") from None
        self.feed(q)
        self.say(f"quote {symbol} bid {_dec(bid)} / ask {_dec(ask)} fed")

    def feed(self, quote: Any) -> None:
        """Feed ``quote`` to the runtime and remember it for ``quote``."""
        self.rt.on_market(quote)
        self._quotes[quote.symbol] = quote

    def do_exit(self, arg: str) -> bool:
        """exit: stop the runtime and leave (Ctrl-D too)."""
        return True

    do_quit = do_exit

    # -- completion ------------------------------------------------------------------------
    def _complete_order(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        if len(line[:begidx].split()) < 2:
            return []
        options = [*TIME_IN_FORCE, *{SYMBOL, *self._quotes}]
        return [o for o in options if o.lower().startswith(text.lower())]

    complete_buy = complete_sell = _complete_order

    def complete_cancel(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return [r.client_order_id for r in self.rt.orders(OPEN_STATUSES) if r.client_order_id.startswith(text)]

    def complete_breaker(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return [a for a in self.rt.adapter_ids() if a.startswith(text)]

    def complete_orders(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return ["open"] if "open".startswith(text) else []

    def complete_help(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return [c for c in self.commands() if c.startswith(text)]


def _number(text: str, what: str, usage: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ShellError(f"{what} {text!r} is not a number; {usage}") from None
    if not value.is_finite():
        raise ShellError(f"{what} {text!r} is not a finite number; {usage}")
    return value


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:3]) if lines else type(exc).__name__


def run_shell(rt: Any, state_dir: Path, *, market: Callable[[FlowrouteShell], str] | None = None,
              stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
    """Run the shell until ``exit`` or end of input; ``market`` may feed a first quote and
    returns the sentence the banner shows about the market."""
    shell = FlowrouteShell(rt, stdin=stdin, stdout=stdout, history=state_dir / HISTORY_FILE)
    about = market(shell) if market is not None else ""
    shell.say(f"flowroute repl — paper runtime, account 'repl', state dir {state_dir}")
    if about:
        shell.say(about)
    shell.say("type help for the commands, exit (or Ctrl-D) to leave")
    while True:
        try:
            shell.cmdloop()
            return
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed; exit or Ctrl-D leaves
            if not shell.interactive:
                shell.say("interrupted")
                shell.postloop()
                return
            shell.say("^C (exit or Ctrl-D leaves)")
