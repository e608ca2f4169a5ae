"""``flowroute recover``: after a crash, start a runtime on the crashed run's state directory
(recovery runs at start: every order in doubt is asked at its venue), report what changed,
and check that nothing was sent twice and the books agree with the venue."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.journal.sqlite import (
    SQLiteJournal,
)

from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    announce,
    configure_logging,
    load_cli_settings,
    make_console,
    print_json,
    start_runtime,
    wait_until,
)

#: How many changed orders the text output lists one by one.
LIST_LIMIT = 50


def order_changed(outcome: str, previous_status: str, venue_status: str | None) -> bool:
    """True when recovery changed what the journal said about an order: it was never
    delivered, is still unresolved, or the venue's status differs from the journaled one."""
    return outcome != "reconciled" or venue_status != previous_status


def run_recover(state_dir: Path, profile: str) -> tuple[dict, bool]:
    """Start a runtime on ``state_dir`` (recovery runs at start), report what it resolved, check, stop.

    Checks: no client order id reached the paper venue twice, no journaled intent left
    unresolved (idempotency IN_PROGRESS/UNKNOWN or an order UNKNOWN/SUBMITTING/RESERVED),
    and the ledger's positions equal the paper venue's.
    """
    if state_dir.exists() and not state_dir.is_dir():
        raise CliError(f"--state-dir: {state_dir} is not a directory")
    if not (state_dir / "journal.sqlite").exists():
        raise CliError(f"no journal at {state_dir / 'journal.sqlite'}: nothing to recover")
    settings = load_cli_settings(profile, state_dir)
    rt = start_runtime(settings)
    announce("recover", rt, settings, profile)
    try:
        report = rt.recovery
        ok_wait = wait_until(lambda: rt.stats(invariants=False)["unknown_open"] == 0, timeout_s=30.0)
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
        {"client_order_id": o.intent.client_order_id, "adapter_id": o.adapter_id, "outcome": o.outcome.value,
         "previous_status": o.previous_status.value,
         "venue_status": o.venue_state.status.value if o.venue_state is not None else None, "note": o.note,
         "changed": order_changed(o.outcome.value, o.previous_status.value,
                                  o.venue_state.status.value if o.venue_state is not None else None)}
        for o in (report.in_doubt if report is not None else [])
    ]
    resolved.sort(key=lambda item: not item["changed"])  # stable: changed ones first, each group in journal order
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
        "changed": sum(1 for item in resolved if item["changed"]),
        "confirmed_unchanged": sum(1 for item in resolved if not item["changed"]),
        "unresolved": unresolved,
        "stuck_orders": stuck,
        "venue_duplicate_submissions": duplicates,
        "orders_by_status": stats["orders_by_status"],
        "checks": checks,
    }
    return summary, all(checks.values())


def render_recover_summary(summary: dict[str, Any]) -> None:
    """The text report: the orders recovery changed first (at most :data:`LIST_LIMIT`), the
    unchanged ones as a count, then the checks."""
    console = make_console()
    console.print(f"[bold]recovered[/] {summary['state_dir']}: {summary['journaled_orders']} journaled order(s), "
                  f"{summary['marked_unknown_at_start']} in flight at the crash")
    console.print(f"outcomes: {summary['outcomes']}")
    changed = [item for item in summary["resolved"] if item["changed"]]
    if changed:
        console.print(f"changed by recovery: {len(changed)}")
    for item in changed[:LIST_LIMIT]:
        console.print(f"  {item['client_order_id']}: {item['previous_status']} -> {item['outcome']}"
                      f" ({item['venue_status'] or '-'}) {item['note']}".rstrip())
    if len(changed) > LIST_LIMIT:
        console.print(f"  ... and {len(changed) - LIST_LIMIT} more (--json lists every one)")
    if summary["confirmed_unchanged"]:
        console.print(f"confirmed unchanged at the venue: {summary['confirmed_unchanged']} order(s)")
    console.print(f"orders by status: {summary['orders_by_status']}")
    for name, passed in summary["checks"].items():
        console.print(f"  {'[green]PASS[/]' if passed else '[red]FAIL[/]'} {name}")


def add_parser(subparsers: Any, parents: Any) -> argparse.ArgumentParser:
    """Register ``recover``."""
    p = subparsers.add_parser(
        "recover", parents=[parents.json, parents.log, parents.settings], help="after a crash: reconcile every order in doubt with its venue",
        description="Recover a crashed run: start a runtime on its state directory, reconcile every order "
                    "in doubt with its venue, list what changed and check nothing was sent twice. "
                    "Exit 1 when a check fails.")
    p.set_defaults(handler=run, default_profile="stress", state_dir_required=True)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``recover`` with parsed ``args``."""
    if args.state_dir is None:
        raise CliError("recover needs --state-dir DIR: the state directory of the run to recover")
    configure_logging(args.log_level or ("WARNING" if args.json else "INFO"))
    summary, ok = run_recover(args.state_dir, args.profile)
    if args.json:
        print_json(summary)
    else:
        render_recover_summary(summary)
    return EXIT_OK if ok else EXIT_FAILED
