"""``flowroute replay``: recorded quotes and trades through the paper venue, driven by a
strategy (``strategy.py``), with four deliberately bad submissions on the way; prints the
session summary (``--json``: one JSON object)."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger
from rich.console import Console
from rich.table import Table

from flowroute import ErrorCollector, ExecutionContext, OrderIntent, Quote, default_registry, group_problems, read_market, verify_audit_log

from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    FUTURE_TIMEOUT_S,
    QUOTES_FILE,
    SYMBOL,
    TRADES_FILE,
    CliError,
    announce,
    configure_logging,
    data_dir,
    default_quotes,
    default_trades,
    fills_digest,
    json_decimal,
    latency_summary,
    latency_text,
    load_cli_settings,
    log_level_for,
    make_console,
    position_dict,
    prepare_state,
    print_json,
    short_decimal,
    start_runtime,
)
from .strategy import STRATEGIES, Action, ReplayClock, Strategy, SubmitAction


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


def bad_input_probes(account_id: str, ts: datetime, blocked_mode: str = "live") -> list[Probe]:
    """The four bad submissions every replay demonstrates (ids ``probe-00001`` …), all of which
    must be answered with a coded error while the replay goes on:

    negative quantity (a dict) → E_EXEC_VALIDATION; LIMIT without a price (a dict) →
    E_EXEC_VALIDATION; unknown mode ``warp`` → E_EXEC_ROUTE_CONFIG_INVALID; mode ``live`` →
    E_EXEC_POLICY_BLOCKED (``blocked_mode``: ``live_blocked`` when ``live`` is routed, ``--venue fix``).
    """
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
        Probe(f"{blocked_mode} mode", market(4), ctx(blocked_mode), "E_EXEC_POLICY_BLOCKED"),
    ]


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
    #: rows for symbols that are not configured instruments: ``{"quotes"|"trades": {symbol: count}}``
    unconfigured: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    #: Ctrl-C stopped the feed early: the summary covers the events fed so far
    interrupted: bool = False


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
        return ExecutionContext(mode=self.mode, account_id=self.account_id, strategy_id=self.strategy.name,
                                session_id="replay", timestamp=self.clock.now())

    def run(self, events: Iterable[Any]) -> ReplayStats:
        """Feed every event, then the strategy's end-of-data actions; return the counts.

        Ctrl-C (``KeyboardInterrupt``) stops the feed: ``stats.interrupted`` is set, the
        end-of-data actions are skipped and the counts so far are returned.
        """
        t0 = time.perf_counter()
        probed = False
        try:
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
        except KeyboardInterrupt:
            self.stats.interrupted = True
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
        self.stats.probes = bad_input_probes(self.account_id, self.clock.now(),
                                             "live_blocked" if self.mode == "live" else "live")
        for probe in self.stats.probes:
            report = self._wait(self.rt.submit(probe.intent, probe.context), probe.label)
            if report is not None and report.error is not None:
                probe.got, probe.message = report.error.code.value, report.error.message
            elif report is not None:
                probe.got, probe.message = f"no error ({report.status.value})", ""

    def _wait(self, future: Future, what: str) -> Any:
        try:
            return future.result(timeout=FUTURE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a timeout or failure must not stop the replay; it is reported
            self.stats.timeouts.append(f"{what}: {type(exc).__name__}")
            logger.warning("no report for {} within {} s", what, FUTURE_TIMEOUT_S)
            return None


#: ``--mode`` choices: the execution modes the default routing policy sends to a venue (``live``
#: and ``live_blocked`` are blocked by policy; the replay's probes show that separately).
REPLAY_MODES: tuple[str, ...] = ("paper", "simulated", "shadow", "shadow_run", "dry_run", "testnet_dry_run")


def resolve_data_paths(quotes: Path | None, trades: Path | None) -> tuple[Path, Path]:
    """The quote and trade files to replay; ``CliError`` (exit 2) when one does not exist or is
    a directory. Defaults are the BTC/USDT files in ``../shared/data`` beside the repository.
    """
    directory = data_dir()
    if quotes is None and trades is None and not directory.is_dir():
        raise CliError(
            f"market data directory {directory} (../shared/data beside the repository) is missing; "
            "pass --quotes QUOTES.csv and --trades TRADES.csv")
    q = quotes if quotes is not None else default_quotes()
    t = trades if trades is not None else default_trades()
    for label, path, given in (("--quotes", q, quotes is not None), ("--trades", t, trades is not None)):
        hint = "" if given else f" (default from {directory}); pass {label} explicitly"
        if path.is_dir():
            raise CliError(f"{label}: {path} is a directory, not a market data file; name a CSV file in it")
        if not path.is_file():
            raise CliError(f"{label}: market data file {path} does not exist{hint}")
    return q, t


def load_market(quotes: Path, trades: Path, instruments: set[str], reorder_ms: int = 0) -> tuple[list[Any], ErrorCollector, dict]:
    """Read and merge both files before anything starts; ``(events, errors, unconfigured)``.

    Malformed and out-of-order rows are skipped into ``errors`` (the readers' rules); rows of a
    symbol that is no configured instrument are left out and counted in ``unconfigured``
    (``{"quotes"|"trades": {symbol: count}}``). ``CliError`` (exit 2) when a file cannot be
    read, or when either file has no usable row, naming the causes.
    """
    errors = ErrorCollector()
    try:
        merged = list(read_market(quotes, trades, on_error=errors, reorder_tolerance=timedelta(milliseconds=reorder_ms)))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read market data: {exc}") from exc
    events: list[Any] = []
    unconfigured: dict[str, dict[str, int]] = {}
    usable = {"quotes": 0, "trades": 0}
    for event in merged:
        kind = "quotes" if isinstance(event, Quote) else "trades"
        if event.symbol in instruments:
            usable[kind] += 1
            events.append(event)
        else:
            counts = unconfigured.setdefault(kind, {})
            counts[event.symbol] = counts.get(event.symbol, 0) + 1
    for kind, path in (("quotes", quotes), ("trades", trades)):
        if usable[kind] == 0:
            why = problems_text(ErrorCollector(), {kind: unconfigured[kind]}) if kind in unconfigured else ""
            mine = [g for g in errors.groups() if Path(g.path) == path]
            if mine:
                why = "; ".join(filter(None, [why, "; ".join(str(g) for g in mine)]))
            raise CliError(f"--{kind}: {path} has no usable row" + (f": {why}" if why else " (a header and nothing else)")
                           + f" (configured instruments: {', '.join(sorted(instruments))})")
    return events, errors, unconfigured


def problems_text(errors: ErrorCollector, unconfigured: dict[str, dict[str, int]]) -> str:
    """The skipped rows grouped by cause, in one line (``; ``-separated)."""
    parts = [str(g) for g in errors.groups()]
    parts += [f"{n} {kind} row(s) for {sym!r}, not a configured instrument"
              for kind, counts in unconfigured.items() for sym, n in counts.items()]
    return "; ".join(parts)


def run_replay(*, quotes: Path, trades: Path, mode: str, strategy_name: str, state_dir: Path | None,
               fresh: bool, profile: str, seed: int, log_level: str | None, as_json: bool,
               strict: bool = False, venue: str = "paper", reorder_ms: int = 0) -> dict:
    """Replay ``quotes`` + ``trades`` through a paper runtime driven by ``strategy_name``;
    return the session summary (see :func:`build_replay_summary`). Raises ``CliError``."""
    if strategy_name not in STRATEGIES:
        raise CliError(f"--strategy: unknown strategy {strategy_name!r} (known: {', '.join(STRATEGIES)})")
    settings = load_cli_settings(profile, state_dir)
    if venue == "fix":  # a real FIX acceptor: live orders, limit orders only (executor refuses MARKET)
        from protocols.venues.fix import live_routing

        try:
            settings = load_cli_settings(profile, state_dir, routing=live_routing(settings))
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        mode = "live"
    state_dir = Path(settings.state_dir)
    if mode in settings.routing.blocked_modes or mode not in settings.routing.policy:
        routable = ", ".join(m for m in settings.routing.policy if m not in settings.routing.blocked_modes)
        raise CliError(f"--mode {mode!r} is not routed to a venue by profile {profile!r} (routed: {routable})")
    configure_logging(log_level_for(log_level, as_json, settings))
    events, errors, unconfigured = load_market(quotes, trades, set(settings.paper.instrument_map()), reorder_ms)
    if strict and (len(errors) or unconfigured):
        raise CliError(f"--strict: {len(errors) + sum(sum(c.values()) for c in unconfigured.values())} market-data "
                       f"row(s) would be skipped: {problems_text(errors, unconfigured)}", code=EXIT_FAILED)
    removed = prepare_state(state_dir, fresh)
    strategy = STRATEGIES[strategy_name](settings)
    if venue == "fix" and hasattr(strategy, "limits_only"):
        strategy.limits_only = True
    rt = start_runtime(settings, registry=default_registry(settings=settings), seed=seed)
    announce("replay", rt, settings, profile)
    try:
        driver = ReplayDriver(rt, strategy, mode=mode)
        stats = driver.run(events)
        stats.malformed = list(errors)
        stats.unconfigured = unconfigured
        rt.flush()
        summary = build_replay_summary(rt, stats, strategy=strategy, mode=mode, state_dir=state_dir,
                                       quotes=quotes, trades=trades, removed=removed)
    finally:
        rt.stop()
    audit_path = summary.get("audit_path")
    if audit_path:
        result = verify_audit_log(audit_path)
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
    ``malformed_rows`` (``count``, ``first`` five as file:line: column), ``malformed_by_cause`` (one
    ``{"file", "cause", "count", "first_lines"}`` per file and cause, most rows first),
    ``unconfigured`` (rows of symbols that are no configured instrument, not fed), ``events``,
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
        "interrupted": stats.interrupted,
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
        "realized_pnl": json_decimal(realized),
        "unrealized_pnl": json_decimal(unrealized),
        "fees": json_decimal(fees),
        "net_pnl": json_decimal(realized + unrealized - fees),
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
        "malformed_by_cause": [{"file": Path(g.path).name, "cause": g.cause, "count": g.count,
                                "first_lines": list(g.first_lines)} for g in group_problems(stats.malformed)],
        "unconfigured": stats.unconfigured,
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
    if s.get("interrupted"):
        console.print("[yellow]interrupted[/]: partial summary of the events fed before Ctrl-C")
    if s["strategy_stats"]:
        console.print("strategy: " + ", ".join(f"{k} {v}" for k, v in s["strategy_stats"].items()))
    console.print(f"events: {s['events']['quotes']} quotes, {s['events']['trades']} trades in {s['seconds']} s; "
                  f"orders {s['orders_total']} (routed to paper: {s['routed_to_paper']}), fills {s['fills_total']}")
    if s["malformed_rows"]["count"]:
        console.print(f"[yellow]malformed rows skipped: {s['malformed_rows']['count']}[/] (by cause)")
        for g in s["malformed_by_cause"]:
            more = ", …" if g["count"] > len(g["first_lines"]) else ""
            console.print(f"  {g['file']}: {g['count']} row(s): {g['cause']} "
                          f"(line{'s' if g['count'] > 1 else ''} {', '.join(map(str, g['first_lines']))}{more})",
                          highlight=False, markup=False)
    else:
        console.print("malformed rows: 0")
    for kind, counts in s.get("unconfigured", {}).items():
        console.print(f"[yellow]{kind} not fed (no configured instrument):[/] "
                      + ", ".join(f"{sym} {n}" for sym, n in counts.items()))

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
    console.print(f"submit latency (µs): {latency_text(lat)}")

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



# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------
def _non_negative_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of milliseconds >= 0, got {text!r}")
    return value


def add_parser(subparsers: Any, parents: Any) -> argparse.ArgumentParser:
    """Register ``replay`` (also the command run when none is named)."""
    p = subparsers.add_parser(
        "replay", parents=[parents.json, parents.log, parents.settings, parents.fresh],
        help="replay recorded market data through the paper venue (the default)",
        description="Replay recorded quotes and trades through the paper venue, driven by a strategy, "
                    "and print the session summary.")
    p.add_argument("--quotes", type=Path, metavar="CSV", help=f"quotes file (default {QUOTES_HELP})")
    p.add_argument("--trades", type=Path, metavar="CSV", help=f"trades file (default {TRADES_HELP})")
    p.add_argument("--mode", choices=REPLAY_MODES, default="paper", help="execution mode of the strategy's orders "
                   "(default %(default)s)")
    p.add_argument("--strategy", choices=tuple(STRATEGIES), default="ma_cross", help="default %(default)s")
    p.add_argument("--venue", choices=("paper", "fix"), default="paper",
                   help="paper (default), or fix: live orders to the [venues.fix] acceptor, crossovers as limit orders "
                        "at the touch (README \"A FIX venue\"; python run.py fix-peer executor starts one)")
    p.add_argument("--seed", type=int, default=0, help="seed of retry/restart jitter (default %(default)s)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any market-data row was skipped")
    p.add_argument("--reorder-ms", type=_non_negative_ms, default=0, metavar="MS",
                   help="put rows back in time order when they are late by at most MS milliseconds; later ones "
                        "are skipped one by one (default 0: README, 'Market data files')")
    p.set_defaults(handler=run, default_profile="paper")
    return p


QUOTES_HELP = "../shared/data/" + QUOTES_FILE
TRADES_HELP = "../shared/data/" + TRADES_FILE


def run(args: argparse.Namespace) -> int:
    """Run ``replay`` with parsed ``args``; the exit code."""
    q, t = resolve_data_paths(args.quotes, args.trades)
    summary = run_replay(quotes=q, trades=t, mode=args.mode, strategy_name=args.strategy, state_dir=args.state_dir,
                         fresh=args.fresh, profile=args.profile, seed=args.seed, log_level=args.log_level,
                         as_json=args.json, strict=args.strict, venue=args.venue,
                         reorder_ms=args.reorder_ms)
    if args.json:
        print_json(summary)
    else:
        render_replay_summary(make_console(), summary)
    if summary.get("interrupted"):
        return EXIT_INTERRUPTED
    return EXIT_OK
