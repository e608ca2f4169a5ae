"""The invariants a ``flowroute stress`` run is checked against (names and rules in
:func:`flowroute.cli.stress.run_stress`): every intent one final report, no duplicate venue
submission, duplicates replayed or refused, invalid input rejected, positions equal fills,
the budget never overbooked; with faults also every UNKNOWN resolved, adapters healthy, restarts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flowroute import ExecutionReport

from ._common import SYMBOL

if TYPE_CHECKING:
    from .stress import Op, SoakChecks

STRESS_ACCOUNT = "stress"
#: A first attempt answered DENIED never reached a venue and its idempotency claim was released
#: (README, "Idempotency"), so a later duplicate of that id is legitimately a fresh order.
_CLAIM_RELEASED_STATUS = "DENIED"


@dataclass
class Invariant:
    """A named check of a stress run: ``ok`` and a short ``detail``."""

    name: str
    ok: bool
    detail: str = ""


def _code(report: Any) -> str | None:
    return None if report is None or report.error is None else report.error.code.value


def check_stress(rt: Any, ops: list[Op], *, faults: Any, resolved_in_time: bool, sender_errors: list[str],
                 unknown_settled: bool, healthy_settled: bool, venue_positions: bool = True) -> list[Invariant]:
    """Evaluate the stress invariants (names and rules in :func:`run_stress`); ``venue_positions=False``
    (a fleet's process on a shared book): the venue's positions are the fleet's, compared by the parent."""
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

    out.append(positions_invariant(rt, venue=venue_positions))
    out.append(budget_invariant(rt, ops))

    if faults is not None:
        out.extend(fault_invariants(rt, faults, unknown_settled=unknown_settled, healthy_settled=healthy_settled))
    return out


def check_soak(rt: Any, checks: list[SoakChecks], *, faults: Any, resolved_in_time: bool, sender_errors: list[str],
               unknown_settled: bool, healthy_settled: bool) -> list[Invariant]:
    """The stress invariants of a soak run (``--soak``): the per-operation rules were applied as
    each operation completed (:class:`flowroute.cli.stress.SoakChecks`); here they are summed, and
    the runtime-wide ones are checked as in :func:`check_stress`, except that positions are checked
    against the venue and the ledger's own book invariants (not by listing every order)."""
    out: list[Invariant] = []
    sent = sum(sum(c.kinds.values()) for c in checks)
    unresolved = sum(c.unresolved for c in checks)
    bad_type = sum(c.bad_type for c in checks)
    out.append(Invariant(
        "every_intent_one_final_report", unresolved == 0 and bad_type == 0 and resolved_in_time and not sender_errors,
        f"{sent - unresolved}/{sent} resolved" + (f"; sender errors: {sender_errors}" if sender_errors else "")))
    venue = rt.venue("paper")
    dups = venue.duplicate_submissions()
    counts = venue.submission_counts()
    most = max(counts.values(), default=0)
    out.append(Invariant("no_duplicate_venue_submission", dups == 0 and most <= 1,
                         f"duplicate submissions {dups}, max submissions per id {most}, ids {len(counts)}"))
    del counts
    bad = [b for c in checks for b in c.bad]
    n_bad = sum(c.bad_count for c in checks)
    n_dup, n_conf, n_inv = (sum(c.dups_checked for c in checks), sum(c.conflicts_checked for c in checks),
                            sum(c.inputs_checked for c in checks))
    out.append(Invariant("duplicates_replayed_or_conflict", not any("dup " in b or "conflict " in b for b in bad),
                         f"{n_dup} exact, {n_conf} conflicting checked" + (f"; {n_bad} bad: {bad[:5]}" if bad else "")))
    out.append(Invariant("invalid_rejected", not any(b.startswith(("invalid ", "live ")) for b in bad), f"{n_inv} checked"))
    out.append(positions_invariant(rt, from_orders=False))
    out.append(budget_invariant(rt, [], denied=sum(c.budget_denied for c in checks)))
    if faults is not None:
        out.extend(fault_invariants(rt, faults, unknown_settled=unknown_settled, healthy_settled=healthy_settled))
    return out


def budget_invariant(rt: Any, ops: list[Op], denied: int | None = None) -> Invariant:
    """``budget_never_overbooked``: for every risk book with a budget, nothing is reserved below
    zero and reserved + spent stays within the budget (README, "Risk"), and the risk engine found no
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
    if denied is None:
        reports = [op.future.result() for op in ops if op.future.done() and op.future.exception() is None]
        denied = sum(1 for r in reports if r.error is not None and r.error.code.value == "E_EXEC_RISK_DENIED"
                     and r.error.message.startswith("budget"))
    detail = "; ".join(checked) + f"; {denied} order(s) denied by the budget" if checked else "no budget configured"
    return Invariant("budget_never_overbooked", not problems, detail if not problems else "; ".join(problems[:5]))


def positions_invariant(rt: Any, *, from_orders: bool = True, venue: bool = True) -> Invariant:
    """``positions_equal_fills``: the ledger's net positions equal the signed sum of the fills
    in ``rt.orders()`` per (account, symbol), the paper venue's own ``fetch_positions`` for the
    stress account agrees (asked on the inner venue, past any fault wrapper), and the ledger's
    book and risk invariant lists are empty. ``from_orders=False`` (soak) skips the sum over
    ``rt.orders()`` (the ledger's book invariants check the same sums over every fill it booked);
    ``venue=False`` skips the venue (a shared book holds the whole fleet's fills: stress_fleet.py checks it)."""
    st = rt.stats()
    from_fills: dict[tuple[str, str], Decimal] = {}
    for r in (rt.orders() if from_orders else ()):
        for f in r.fills:
            key = (r.account_id, r.symbol)
            from_fills[key] = from_fills.get(key, Decimal(0)) + r.side.sign * f.qty
    ledger = {(p.account_id, p.symbol): p.net_qty for p in rt.positions()}
    problems: list[str] = []
    for key in sorted(set(from_fills) | set(ledger)) if from_orders else ():
        a, b = ledger.get(key, Decimal(0)), from_fills.get(key, Decimal(0))
        if a != b:
            problems.append(f"{key}: ledger {a} != fills {b}")
    adapter = rt.venue("paper")
    inner = getattr(adapter, "inner", adapter)
    venue_pos = inner.fetch_positions(STRESS_ACCOUNT) if venue else {}
    venue_symbols = set(venue_pos) | {s for (a, s) in ledger if a == STRESS_ACCOUNT} if venue else set()
    for symbol in sorted(venue_symbols):
        a, v = ledger.get((STRESS_ACCOUNT, symbol), Decimal(0)), venue_pos.get(symbol, Decimal(0))
        if a != v:
            problems.append(f"{symbol}: ledger {a} != venue {v}")
    problems += [f"book: {x}" for x in st["book_invariants"]] + [f"risk: {x}" for x in st["risk_invariants"]]
    net = ledger.get((STRESS_ACCOUNT, SYMBOL), Decimal(0))
    return Invariant("positions_equal_fills", not problems,
                     f"{STRESS_ACCOUNT} {SYMBOL} net {net}" if not problems else "; ".join(problems[:5]))


def fault_invariants(rt: Any, faults: Any, *, unknown_settled: bool, healthy_settled: bool) -> list[Invariant]:
    """The invariants of a run with injected faults: every order in doubt resolved, every child
    running at the end, and restarts seen when crashes or hangs were injected."""
    out: list[Invariant] = []
    st = rt.stats(invariants=False)
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
