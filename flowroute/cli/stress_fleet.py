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
- ``every_process_ok``: each child's own invariants (positions = its fills, …);
- ``positions_equal_venue_book_fleet`` (the paper book shared in PostgreSQL, README "Scale-out"):
  the book's fills of the stress account are the journal's, trade id for trade id, and the
  book's net positions equal the processes' ledgers together (plus the journaled fills of a
  killed process's finished orders, which stay its history). Each process cancels its resting
  orders before it checks, so no fill can land after its check.

``--kill-one``: the last process is SIGKILLed once it has claimed half its orders (read from the
journal). The survivors run with a short lease (``--lease-s``, 2 s by default) and, once they
have sent everything, wait until the parent says it killed one and no expired owner is left:
a survivor took the dead process's unfinished orders over and reconciled them with the shared
book (never re-sending). ``every_order_resolved_fleet``: no journal record of the stress account
is still in flight or UNKNOWN, and every unfinished order belongs to a live process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from contextlib import suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

from protocols import OrderStatus

from ._common import EXIT_FAILED, EXIT_OK, CliError, make_console, print_json
from .stress_invariants import STRESS_ACCOUNT

#: OrderSubmitted trails the venue call: how much a window may be shortened when counting
_RATE_SLACK_S = 0.05
#: --kill-one: the processes' lease unless --lease-s (short, so survivors take over quickly)
_KILL_ONE_LEASE_S = 2.0
#: the paper venue's book id in the shared book (its adapter id)
_BOOK = "paper"


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
    if args.kill_one:
        cmd += ["--await-takeover", str(state_dir.parent / "killed")]
    lease = args.lease_s if args.lease_s is not None else _KILL_ONE_LEASE_S if args.kill_one else None
    if lease is not None:
        cmd += ["--lease-s", f"{lease:g}"]
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
    killed_file = base / "killed"
    with suppress(FileNotFoundError):
        killed_file.unlink()
    procs = []
    try:
        for i in range(n):
            cmd = _child_args(args, i, per[i], base / f"p{i}")
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        killed = _kill_midway(args.journal_url, procs[-1], n - 1, per[-1], killed_file) if args.kill_one else None
        outs = [p.communicate() for p in procs]
    finally:
        for p in procs:  # an interrupted parent leaves no process behind
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = time.perf_counter() - t0
    children: list[dict[str, Any]] = []
    failures = []
    for i, (p, (out, err)) in enumerate(zip(procs, outs, strict=False)):
        with suppress(OSError):  # each process's log, for a look after the run
            (base / f"p{i}.stderr.log").write_text(err)
        if killed is not None and i == killed["process"]:
            continue
        try:
            children.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            failures.append(f"process {i} exited {p.returncode} without a summary: {err.strip()[-500:]}")
    if failures:
        raise CliError("; ".join(failures))
    summary = fleet_summary(args, children, wall, killed=killed)
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


def _kill_midway(url: str, proc: subprocess.Popen, index: int, orders: int, killed_file: Path) -> dict[str, Any]:
    """SIGKILL ``proc`` once the journal holds half of its ``orders`` claims (or it ended first);
    then create ``killed_file`` (the survivors wait for it). What was done, for the summary."""
    import psycopg

    half = max(1, orders // 2)
    claims = 0
    deadline = time.monotonic() + 120.0
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        while proc.poll() is None and time.monotonic() < deadline:
            if not _scalar(conn, "SELECT to_regclass('flowroute.idempotency') IS NOT NULL"):
                time.sleep(0.05)  # the processes have not migrated the journal yet
                continue
            claims = _scalar(conn, "SELECT count(*) FROM flowroute.idempotency WHERE account_id = %s "
                             "AND client_order_id LIKE %s", (STRESS_ACCOUNT, f"p{index}-%"))
            if claims >= half:
                break
            time.sleep(0.02)
        was_running = proc.poll() is None
        proc.kill()  # SIGKILL: no cleanup, no lease release, orders in flight
        proc.wait()
        owner = conn.execute("SELECT owner_id FROM flowroute.owners WHERE pid = %s", (proc.pid,)).fetchone()
    killed_file.parent.mkdir(parents=True, exist_ok=True)
    killed_file.write_text(owner[0] if owner else "-")  # the survivors wait until this owner was taken over
    return {"process": index, "owner_id": owner[0] if owner else None, "claims_at_kill": claims, "of_orders": orders,
            "killed_while_running": was_running}


def fleet_summary(args: argparse.Namespace, children: list[dict[str, Any]], wall: float,
                  killed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fleet's figures and cross-process invariants from the children's JSON summaries
    (``killed``: the process ``--kill-one`` killed, which has none)."""
    inv: dict[str, bool] = {}
    detail: dict[str, str] = {}
    shared = any(c["fleet"].get("shared_book") for c in children)
    book = _shared_book_state(args.journal_url) if shared else None
    # every id at most once at any venue, across processes (a shared book counts every process's calls)
    sent: dict[str, int] = {}
    for c in children if book is None else ():
        for coid, k in c["fleet"]["venue_ids"].items():
            sent[coid] = sent.get(coid, 0) + k
    if book is not None:
        sent = dict(book["submissions"])
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
    if book is not None:
        _book_invariants(book, children, inv, detail)
    if killed is not None:
        adopted = sum(c["fleet"].get("adopted", 0) for c in children)
        killed["orders_taken_over"] = adopted
        open_ = book["unresolved"] if book is not None else _journal_state(args.journal_url)["unresolved"]
        live = {c["fleet"]["owner_id"] for c in children}
        stranded = [k for k, owner in open_.get("unfinished_owners", {}).items() if owner not in live]
        inv["every_order_resolved_fleet"] = not open_["in_doubt"] and not stranded and killed["killed_while_running"]
        detail["every_order_resolved_fleet"] = (
            f"process p{killed['process']} SIGKILLed after {killed['claims_at_kill']} of {killed['of_orders']} claims "
            f"(while running: {killed['killed_while_running']}); survivors took over {adopted} order(s); "
            f"records in flight or UNKNOWN: {open_['in_doubt']}; unfinished orders of dead owners: {len(stranded)} "
            f"{stranded[:3]}")
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
        "shared_book": shared,
        "killed": killed,
        "invariants": inv,
        "invariant_details": detail,
        "children": [{k: v for k, v in c.items() if k != "fleet"} for c in children],
    }


def _journal_state(url: str) -> dict[str, Any]:
    """The stress account's journal at the end: records in doubt, unfinished orders and their owners."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        in_doubt = _scalar(conn, "SELECT count(*) FROM flowroute.idempotency WHERE account_id = %s "
                           "AND status IN ('IN_PROGRESS', 'UNKNOWN')", (STRESS_ACCOUNT,))
        unfinished: dict[str, str] = dict(conn.execute(
            "SELECT i.client_order_id, i.owner_id FROM flowroute.idempotency i WHERE i.account_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM flowroute.order_events e WHERE e.account_id = i.account_id AND e.client_order_id = "
            "i.client_order_id AND e.to_status = ANY(%s)) AND EXISTS (SELECT 1 FROM flowroute.order_events e "
            "WHERE e.account_id = i.account_id AND e.client_order_id = i.client_order_id)",
            (STRESS_ACCOUNT, [st.value for st in OrderStatus if st.is_terminal])).fetchall())
    return {"in_doubt": int(in_doubt), "unfinished_owners": unfinished}


def _shared_book_state(url: str) -> dict[str, Any]:
    """The shared paper book and the journal's fills of the stress account, for the fleet checks."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        submissions = {c: int(n) for c, n in conn.execute(
            "SELECT client_order_id, count FROM flowroute_paper.submissions WHERE book_id = %s", (_BOOK,))}
        book_fills = {t: (sym, Decimal(q) if side == "BUY" else -Decimal(q)) for t, sym, side, q in conn.execute(
            "SELECT f.trade_id, o.order_json::json->>'symbol', o.order_json::json->>'side', f.fill_json::json->>'qty' "
            "FROM flowroute_paper.fills f JOIN flowroute_paper.orders o USING (book_id, client_order_id) "
            "WHERE f.book_id = %s AND o.account = %s", (_BOOK, STRESS_ACCOUNT))}
        journal_fills = {t: (sym, Decimal(q) if side == "BUY" else -Decimal(q), coid) for t, sym, side, q, coid in conn.execute(
            "SELECT trade_id, symbol, side, qty, client_order_id FROM flowroute.fills WHERE adapter_id = %s "
            "AND account_id = %s", (_BOOK, STRESS_ACCOUNT))}
        owners: dict[str, str] = dict(conn.execute("SELECT client_order_id, owner_id FROM flowroute.idempotency WHERE account_id = %s",
                                   (STRESS_ACCOUNT,)).fetchall())
    return {"submissions": submissions, "book_fills": book_fills, "journal_fills": journal_fills, "owners": owners,
            "unresolved": _journal_state(url)}


def _book_invariants(book: dict[str, Any], children: list[dict[str, Any]], inv: dict[str, bool],
                     detail: dict[str, str]) -> None:
    """``positions_equal_venue_book_fleet`` (module docstring)."""
    def net(fills: Any) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for sym, signed, *_ in fills:
            out[sym] = out.get(sym, Decimal(0)) + signed
        return {k: v for k, v in out.items() if v}

    book_pos = net(book["book_fills"].values())
    live = {c["fleet"]["owner_id"] for c in children}
    ledgers: dict[str, Decimal] = {}
    for c in children:
        for sym, q in c["fleet"]["positions"].items():
            ledgers[sym] = ledgers.get(sym, Decimal(0)) + Decimal(q)
    # a dead process's finished orders stay its history in the journal: their fills count too
    history = [f for f in book["journal_fills"].values() if book["owners"].get(f[2]) not in live]
    for sym, q in net(history).items():
        ledgers[sym] = ledgers.get(sym, Decimal(0)) + q
    ledgers = {k: v for k, v in ledgers.items() if v}
    missing = sorted(set(book["book_fills"]) - set(book["journal_fills"]))
    extra = sorted(set(book["journal_fills"]) - set(book["book_fills"]))
    inv["positions_equal_venue_book_fleet"] = not missing and not extra and book_pos == ledgers
    detail["positions_equal_venue_book_fleet"] = (
        f"{len(book['book_fills'])} fills in the shared book, {len(book['journal_fills'])} journaled "
        f"(not journaled {missing[:3]}, not in the book {extra[:3]}); net positions book {_fmt(book_pos)} = "
        f"ledgers {_fmt(ledgers)} (of which {len(history)} fills are a killed process's history)")


def _fmt(pos: dict[str, Decimal]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(pos.items())) + "}"


def _shared_budget_row(url: str) -> tuple[Decimal, Decimal]:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT reserved, spent FROM flowroute.budget_accounts WHERE account_id = %s",
                           (STRESS_ACCOUNT,)).fetchone()
    return (row[0], row[1]) if row else (Decimal(0), Decimal(0))


_STRESS_TABLES = ("idempotency", "order_events", "fills", "budget_orders", "budget_accounts")


def _scalar(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the one row ``sql`` returns (an aggregate or ``to_regclass``: always a row)."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql!r}")
    return row[0]


def _prepare_journal(url: str, fresh: bool) -> None:
    """Refuse a journal that already holds the stress account's orders (their ids would replay and
    their budget would count), unless ``--fresh``: then delete that account's rows, and only those,
    and the shared paper book (``flowroute_paper``, book ``paper``)."""
    import psycopg

    from protocols.venues.paper.pg_book import delete_book

    try:
        _prepare_journal_rows(url, fresh)
        if fresh:
            delete_book(url, _BOOK)  # the shared paper book of an earlier run: its ids would be duplicates
    except psycopg.Error as exc:
        raise CliError(f"--journal-url: {type(exc).__name__}: {' '.join(str(exc).split())}") from None


def _prepare_journal_rows(url: str, fresh: bool) -> None:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        has_schema = _scalar(conn, "SELECT to_regclass('flowroute.idempotency') IS NOT NULL")
        if not has_schema:
            return
        held = _scalar(conn, "SELECT count(*) FROM flowroute.idempotency WHERE account_id = %s", (STRESS_ACCOUNT,))
        budget = _scalar(conn, "SELECT to_regclass('flowroute.budget_accounts') IS NOT NULL")
        if not held and not budget:
            return
        if not fresh:
            if held:
                raise CliError(f"the journal already holds {held} order(s) of account {STRESS_ACCOUNT} from an earlier "
                               "run: pass --fresh to delete that account's rows, or use an empty database")
            return
        for table in _STRESS_TABLES:
            if _scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (f"flowroute.{table}",)):
                conn.execute(f"DELETE FROM flowroute.{table} WHERE account_id = %s", (STRESS_ACCOUNT,))
