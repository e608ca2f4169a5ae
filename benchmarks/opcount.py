"""Bytecodes per order, per function, on every thread: a load-independent profile of the
journal-off one-sender path (benchmarks/README.md, "Work per order").

Usage::

    python -m benchmarks.opcount [--orders N] [--warmup W] [--output PATH] [--compare OLD.json] [--top K]

The case is ``benchmarks.run``'s ``latency`` figure: one sender, journal off, a fresh quote and
a drain (``rt.flush()``) before each MARKET order. Every Python function that runs on any
thread is traced with ``sys.settrace`` opcode events, and each measured order is counted in
three phases: ``quote`` (``rt.on_market`` and a drain), ``order`` (``rt.submit(...).result()``
and a drain, so that what the order leaves behind after its answer is counted too) and
``drain`` (one more drain with nothing left to do). The order's own work is ``order`` less
``drain``: the bytecodes and calls per order, in total and per function.

Unlike wall or CPU time these counts do not move with the machine's load (the other engineers'
processes on a shared machine): two checkouts measured an hour apart compare directly. They do
not see work done in C (pydantic-core, sqlite3, the interpreter's own GC), and a bytecode is not
a fixed cost; use them to find *where* a change added work, then confirm with
``benchmarks.run``. Tracing makes the run about 50x slower: keep ``--orders`` small.

``--compare OLD.json`` prints the functions whose bytecodes per order changed the most between
``OLD.json`` (an earlier ``--output``, e.g. from another checkout) and this run, matched by
qualified name so that moved modules still match. To measure another checkout with this tool,
put it first on the path: ``PYTHONPATH=/path/to/old python benchmarks/opcount.py --output
old.json`` (the commit recorded is the measured checkout's). Not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any


def _where(code: Any, root: Path) -> str:
    """``path:qualname`` with the path relative to the checkout measured or to site-packages."""
    f = code.co_filename
    try:
        f = str(Path(f).resolve().relative_to(root))
    except ValueError:
        for marker in ("site-packages/", "/lib/python"):
            if marker in f:
                f = f.split(marker, 1)[1]
                break
    return f"{f}:{code.co_qualname}"


def measure(orders: int, warmup: int) -> dict[str, Any]:
    """Run ``warmup`` + ``orders`` orders traced; counts of the last ``orders`` (see the module docstring)."""
    from benchmarks.run import _intent, _quiet_logging, _quote, _settings

    _quiet_logging()
    import actors
    from actors import Runtime
    from protocols import ExecutionContext

    root = Path(actors.__file__).resolve().parents[1]  # the checkout measured (PYTHONPATH may name another)

    phases = ("quote", "order", "drain")
    ops: dict[str, Counter[Any]] = {p: Counter() for p in phases}
    calls: dict[str, Counter[Any]] = {p: Counter() for p in phases}
    on: list[Any] = [None]  # the phase being counted, None: not counting

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode" and on[0] is not None:
            ops[on[0]][frame.f_code] += 1
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if on[0] is not None:
            calls[on[0]][frame.f_code] += 1
        return local

    statuses: Counter[str] = Counter()
    threading.settrace(tracer)  # every thread the runtime starts from here on
    try:
        with tempfile.TemporaryDirectory(prefix="flowroute-opcount-") as state:
            rt = Runtime.start(_settings(Path(state), journal={"enabled": False}))
            ctx = ExecutionContext(mode="paper", account_id="bench-opcount")
            sys.settrace(tracer)
            try:
                for i in range(warmup + orders):
                    measured = i >= warmup
                    on[0] = "quote" if measured else None
                    rt.on_market(_quote(i))
                    rt.flush()
                    on[0] = "order" if measured else None
                    report = rt.submit(_intent(f"opc-{i}"), ctx).result(timeout=30)
                    rt.flush()
                    on[0] = "drain" if measured else None
                    rt.flush()
                    on[0] = None
                    if measured:
                        statuses[report.status.value] += 1
            finally:
                on[0] = None
                sys.settrace(None)
                rt.stop()
    finally:
        threading.settrace(None)  # type: ignore[arg-type]
    by_ops: Counter[str] = Counter()  # the order's own: order phase less a drain (may be < 0 per function)
    by_calls: Counter[str] = Counter()
    for phase, sign in (("order", 1), ("drain", -1)):
        for code, n in ops[phase].items():
            by_ops[_where(code, root)] += sign * n
        for code, n in calls[phase].items():
            by_calls[_where(code, root)] += sign * n
    return {
        "meta": {"commit": _commit(root), "python": sys.version.split()[0], "orders": orders, "warmup": warmup},
        "statuses": dict(statuses),
        "ops_per_order": round(sum(by_ops.values()) / orders, 1),
        "calls_per_order": round(sum(by_calls.values()) / orders, 1),
        "phases_ops_per_order": {p: round(sum(ops[p].values()) / orders, 1) for p in phases},
        "functions": {k: {"ops": round(by_ops[k] / orders, 2), "calls": round(by_calls[k] / orders, 2)}
                      for k in sorted(set(by_ops) | set(by_calls), key=lambda k: -abs(by_ops[k])) if by_ops[k] or by_calls[k]},
    }


def _commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def compare(old: dict[str, Any], new: dict[str, Any], top: int) -> list[str]:
    """Lines: the totals, then the ``top`` functions whose bytecodes per order changed the most
    (matched by qualified name: a function whose module moved still matches)."""

    def by_name(result: dict[str, Any]) -> tuple[Counter[str], Counter[str]]:
        ops: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        for where, v in result["functions"].items():
            name = where.rsplit(":", 1)[1]
            ops[name] += v["ops"]
            calls[name] += v["calls"]
        return ops, calls

    (a, ac), (b, bc) = by_name(old), by_name(new)
    lines = [f"bytecodes per order {old['ops_per_order']:,.0f} ({old['meta']['commit']}) -> "
             f"{new['ops_per_order']:,.0f} ({new['meta']['commit']}); calls {old['calls_per_order']:,.0f} -> "
             f"{new['calls_per_order']:,.0f}"]
    for name in sorted(set(a) | set(b), key=lambda k: -abs(b[k] - a[k]))[:top]:
        lines.append(f"{b[name] - a[name]:+9.1f}  {a[name]:9.1f} -> {b[name]:9.1f}   calls {ac[name]:6.2f} -> {bc[name]:6.2f}  {name}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.opcount", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200, help="measured orders (default 200)")
    parser.add_argument("--warmup", type=int, default=30, help="orders before the measured ones (default 30)")
    parser.add_argument("--output", type=Path, help="write the result as JSON here")
    parser.add_argument("--compare", type=Path, metavar="OLD.json", help="an earlier --output to compare with")
    parser.add_argument("--top", type=int, default=30, help="functions listed (default 30)")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.warmup < 0:
        parser.error("--orders must be >= 1 and --warmup >= 0")
    old = None
    if args.compare is not None:
        try:
            old = json.loads(args.compare.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--compare {args.compare}: {exc}")
    result = measure(args.orders, args.warmup)
    if args.output is not None:
        args.output.write_text(json.dumps(result, indent=1) + "\n")
    if old is not None:
        print("\n".join(compare(old, result, args.top)))
    else:
        print(f"{result['ops_per_order']:,.0f} bytecodes and {result['calls_per_order']:,.0f} calls per order "
              f"({result['meta']['commit']}, {args.orders} orders: {result['statuses']}; by phase, drains included: "
              f"{result['phases_ops_per_order']})")
        for where, v in list(result["functions"].items())[:args.top]:
            print(f"{v['ops']:9.1f} ops {v['calls']:7.2f} calls  {where}")
    return 0


if __name__ == "__main__":
    # run as a file (python benchmarks/opcount.py): this checkout after anything PYTHONPATH names
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
