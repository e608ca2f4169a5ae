"""``flowroute stress --processes N --journal-url postgresql://…``: N runtime processes on one
PostgreSQL journal, and the invariants that only hold across processes (README "Scale-out").

The parent starts N ``flowroute stress`` child processes (each its own state dir, its own paper
venue, its own id prefix), all on the same journal, with the same ``--shared-ids`` fleet-wide
intents mixed in (about 5 % of each process's operations: the same client order id and intent
from every process, so duplicates reach different processes at the same time). Each child
checks its own invariants; the parent then checks the fleet's:

- ``no_id_sent_twice_fleet``: every client order id reached a venue at most once in total;
- ``shared_ids_executed_once``: each fleet-wide id was executed by exactly one process, and every
  other submission of it was replayed or refused (in flight / conflict);
- ``budget_never_overbooked_fleet``: the shared account row and the sum of every process's fills
  stay within the budget;
- ``rate_within_shared_throttle`` (with ``--rate``): no rolling window holds more venue hand-overs
  of all processes together than the shared limit (hand-over times are the processes'
  ``OrderSubmitted`` events, so they trail the calls by a few ms: the check allows that much);
- ``every_process_ok``: each child's own invariants (positions = fills = its venue's book, …).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._common import EXIT_FAILED, EXIT_OK, CliError, make_console, print_json
from .stress_invariants import STRESS_ACCOUNT

#: OrderSubmitted trails the venue call: how much a window may be shortened when counting
_RATE_SLACK_S = 0.05


def _max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


def _child_args(args: argparse.Namespace, index: int, orders: int, state_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "flowroute", "stress", "--json", "--fresh", "--senders", str(args.senders),
           "--orders", str(orders), "--seed", str(args.seed), "--window", str(args.window),
           "--state-dir", str(state_dir), "--journal-url", args.journal_url, "--id-prefix", f"p{index}-",
           "--p-shared", "0.05", "--shared-ids", str(args.shared_ids),
           "--budget", "none" if args.budget is None else str(args.budget)]
    if args.rate is not None:
        cmd += ["--rate", f"{args.rate[0]}/{args.rate[1]:g}"]
    if args.faults:
        cmd += ["--faults", args.faults]
    if getattr(args, "profile", None):
        cmd += ["--profile", args.profile]
    return cmd


def run_fleet(args: argparse.Namespace) -> int:
    """Run the fleet (see the module docstring); the exit code (1 when an invariant failed)."""
    if not args.journal_url or not args.journal_url.startswith(("postgresql://", "postgres://")):
        raise CliError("--processes needs --journal-url postgresql://… (the journal the processes share)")
    n = args.processes
    base = Path(args.state_dir or "var/stress-fleet")
    _prepare_journal(args.journal_url, args.fresh)
    per = [args.orders // n + (1 if i < args.orders % n else 0) for i in range(n)]
    t0 = time.perf_counter()
    procs = []
    for i in range(n):
        cmd = _child_args(args, i, per[i], base / f"p{i}")
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    children: list[dict[str, Any]] = []
    failures = []
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        try:
            children.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            failures.append(f"process {i} exited {p.returncode} without a summary: {err.strip()[-500:]}")
    if failures:
        raise CliError("; ".join(failures))
    summary = fleet_summary(args, children, wall)
    ok = all(summary["invariants"].values())
    if args.json:
        print_json(summary)
    else:
        console = make_console()
        console.print(f"[bold]stress fleet[/]: {n} processes, {summary['intents']} operations in {summary['seconds']} s "
                      f"({summary['throughput_per_s']} ops/s), claims per PostgreSQL transaction "
                      f"{summary['claims_per_transaction']}")
        for name, good in summary["invariants"].items():
            console.print(f"  {'[green]ok[/]' if good else '[red]FAILED[/]'} {name}: {summary['invariant_details'][name]}")
    return EXIT_OK if ok else EXIT_FAILED


def fleet_summary(args: argparse.Namespace, children: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """The fleet's figures and cross-process invariants from the children's JSON summaries."""
    inv: dict[str, bool] = {}
    detail: dict[str, str] = {}
    # every id at most once at any venue, across processes
    sent: dict[str, int] = {}
    for c in children:
        for coid, k in c["fleet"]["venue_ids"].items():
            sent[coid] = sent.get(coid, 0) + k
    twice = sorted(k for k, v in sent.items() if v > 1)
    inv["no_id_sent_twice_fleet"] = not twice
    detail["no_id_sent_twice_fleet"] = f"{len(sent)} ids sent, {len(twice)} more than once {twice[:5]}"
    # fleet-wide ids: decided once (executed, or denied by risk) by one process; every other
    # submission of the id, in any process, was replayed or refused (in flight / conflict)
    decided: dict[str, list[str]] = {}
    refused_ok = {"E_EXEC_DUPLICATE_IN_FLIGHT", "E_EXEC_IDEMPOTENCY_CONFLICT"}
    n_shared = replayed = refused = 0
    for i, c in enumerate(children):
        for coid, status, replay, code in c["fleet"]["shared"]:
            n_shared += 1
            if replay:
                replayed += 1
            elif code in refused_ok:
                refused += 1
            else:
                decided.setdefault(coid, []).append(f"p{i}:{status}")
    ids = {coid for c in children for coid, *_ in c["fleet"]["shared"]}
    twice_decided = sorted((k, v) for k, v in decided.items() if len(v) > 1)
    venue_twice = sorted(k for k in ids if sent.get(k, 0) > 1)
    executed = sum(1 for k in ids if sent.get(k, 0) == 1)
    inv["shared_ids_executed_once"] = not twice_decided and not venue_twice
    detail["shared_ids_executed_once"] = (
        f"{n_shared} submissions of {len(ids)} fleet-wide ids in {len(children)} processes: {len(decided)} decided "
        f"once ({executed} reached the venue), {replayed} replayed, {refused} refused in flight or as a conflict; "
        f"decided twice {twice_decided[:3]}")
    # budget across processes
    budget = args.budget
    spent = sum((Decimal(c["fleet"]["spent"]) for c in children), Decimal(0))
    shared_row = _shared_budget_row(args.journal_url)
    if budget is None:
        inv["budget_never_overbooked_fleet"] = True
        detail["budget_never_overbooked_fleet"] = f"no budget; fleet spent {spent:.2f}"
    else:
        reserved_db, spent_db = shared_row
        good = spent <= budget and reserved_db + spent_db <= budget and reserved_db >= 0
        inv["budget_never_overbooked_fleet"] = good
        detail["budget_never_overbooked_fleet"] = (f"fleet spent {spent:.2f}, shared row reserved {reserved_db:.2f} + "
                                                   f"spent {spent_db:.2f} <= budget {budget:.2f}")
    # shared rate limit
    times = [t for c in children for t in c["fleet"]["sent_at"]]
    if args.rate is not None:
        limit, window = args.rate
        peak = _max_in_window(times, max(window - _RATE_SLACK_S, window / 2))
        inv["rate_within_shared_throttle"] = peak <= limit
        detail["rate_within_shared_throttle"] = f"peak {peak} hand-overs in a {window:g} s window (limit {limit})"
    inv["every_process_ok"] = all(all(c["invariants"].values()) for c in children)
    detail["every_process_ok"] = "; ".join(
        f"p{i}: " + (", ".join(k for k, v in c["invariants"].items() if not v) or "all ok") for i, c in enumerate(children))
    intents = sum(c["intents"] for c in children)
    run_s = max(c["seconds"] for c in children)
    batches = sum(c["fleet"]["claim_batches"] for c in children)
    claims = sum(sum(1 for k in ("new", "dup", "conflict", "shared") for _ in range(c["mix"].get(k, 0))) for c in children)
    return {
        "command": "stress",
        "processes": len(children),
        "senders_per_process": args.senders,
        "intents": intents,
        "seconds": round(run_s, 3),
        "wall_seconds_with_startup": round(wall, 3),
        "throughput_per_s": round(intents / run_s, 1) if run_s else None,
        "per_process_throughput_per_s": [c["throughput_per_s"] for c in children],
        "claims_per_transaction": round(claims / batches, 2) if batches else None,
        "venue_submissions": sum(sent.values()),
        "invariants": inv,
        "invariant_details": detail,
        "children": [{k: v for k, v in c.items() if k != "fleet"} for c in children],
    }


def _shared_budget_row(url: str) -> tuple[Decimal, Decimal]:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT reserved, spent FROM flowroute.budget_accounts WHERE account_id = %s",
                           (STRESS_ACCOUNT,)).fetchone()
    return (row[0], row[1]) if row else (Decimal(0), Decimal(0))


_STRESS_TABLES = ("idempotency", "order_events", "fills", "budget_orders", "budget_accounts")


def _prepare_journal(url: str, fresh: bool) -> None:
    """Refuse a journal that already holds the stress account's orders (their ids would replay and
    their budget would count), unless ``--fresh``: then delete that account's rows, and only those."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            has_schema = conn.execute("SELECT to_regclass('flowroute.idempotency') IS NOT NULL").fetchone()[0]
            if not has_schema:
                return
            held = conn.execute("SELECT count(*) FROM flowroute.idempotency WHERE account_id = %s",
                                (STRESS_ACCOUNT,)).fetchone()[0]
            budget = conn.execute("SELECT to_regclass('flowroute.budget_accounts') IS NOT NULL").fetchone()[0]
            if not held and not budget:
                return
            if not fresh:
                if held:
                    raise CliError(f"the journal already holds {held} order(s) of account {STRESS_ACCOUNT} from an earlier "
                                   "run: pass --fresh to delete that account's rows, or use an empty database")
                return
            for table in _STRESS_TABLES:
                if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"flowroute.{table}",)).fetchone()[0]:
                    conn.execute(f"DELETE FROM flowroute.{table} WHERE account_id = %s", (STRESS_ACCOUNT,))
    except psycopg.Error as exc:
        raise CliError(f"--journal-url: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
