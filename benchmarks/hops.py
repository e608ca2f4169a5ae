"""Per-hop profile of one sender's order path (benchmarks/README.md, "Where the time went").

Usage::

    python -m benchmarks.hops [--orders N] [--rounds R] [--config NAME ...] [--pin CPU]

One sender, the intent built, a fresh quote and a drain (``rt.flush()``) before each order, all
outside the timed region, as ``benchmarks.run``'s ``latency`` figures. Each stage of the path is wrapped to stamp
``perf_counter_ns`` (with the thread it ran on) per client order id; the report gives, per
configuration, the median of each stamp measured from ``Runtime.submit`` and the median step
between consecutive stamps. Configurations (interleaved, ``--rounds`` times each):

- ``off``: journal off (in-memory idempotency store, in-memory paper book);
- ``deployed``: what ``Runtime.start()`` runs: journal FULL, ledger journal, audit, durable paper book;
- ``off_sync``: journal ``synchronous=OFF`` with the durable paper book (no fsync of ours);
- ``off_sync_mem``: journal ``synchronous=OFF`` with the paper book in memory.

The wrappers add a few µs per stamp; compare configurations with each other, in one run, and
take ``benchmarks.run`` for the figures themselves. Not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STAMPS: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
_ON = [False]
#: the order in flight (one sender): stages that are not per order (a ledger batch, the claim's fsync) stamp under it
_CUR: list[str] = [""]


def _stamp(coid: str, what: str) -> None:
    if _ON[0]:
        _STAMPS[coid].append((what, time.perf_counter_ns(), threading.current_thread().name))


def _wrap(owner: Any, name: str, key: Callable[..., Any], before: str, after: str | None = None) -> None:
    """Replace ``owner.name`` by a wrapper stamping ``before`` (and ``after``) for the ids ``key(*args)`` gives."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kw: Any) -> Any:
        ids = key(*args) if _ON[0] else ()
        if isinstance(ids, str):
            ids = (ids,)
        for coid in ids:
            _stamp(coid, before)
        try:
            return original(*args, **kw)
        finally:
            if after is not None:
                for coid in ids:
                    _stamp(coid, after)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def install() -> None:
    """Wrap each stage of the order path (class attributes: every instance started afterwards)."""
    import actors.execution.adapter as adapter_mod
    from actors.breaker.actor import CircuitBreakerActor
    from actors.execution.adapter import AdapterActor
    from actors.idempotency.store import IdempotencyStoreActor
    from actors.idempotency.ticket import ClaimTicket
    from actors.journal.sqlite import SQLiteJournal
    from actors.orders.ledger import LedgerActor
    from protocols.venues.paper import book as _book
    from protocols.venues.paper.venue import PaperVenue

    coid_of_order = lambda self, order: order.client_order_id  # noqa: E731
    _wrap(IdempotencyStoreActor, "handle_SubmitOrder", coid_of_order, "idem.in")
    _wrap(SQLiteJournal, "claim_batch", lambda self, claims, ttl, *a: [c.client_order_id for c in claims], "claim.begin", "claim.end")
    _wrap(LedgerActor, "handle_SubmitOrder", coid_of_order, "ledger.in", "ledger.out")
    _wrap(CircuitBreakerActor, "handle_SubmitOrder", coid_of_order, "breaker.in", "breaker.out")
    _wrap(AdapterActor, "handle_ExecuteOrder", lambda self, m: m.order.client_order_id, "adapter.in", "adapter.out")
    _wrap(PaperVenue, "submit_order", lambda self, o: o.client_order_id, "venue.in", "venue.out")
    for book_cls in [c for c in vars(_book).values() if isinstance(c, type) and hasattr(c, "commit") and c.__module__ == _book.__name__]:
        _wrap(book_cls, "commit", lambda self, ch, *a: list(getattr(ch, "orders", {}) or ()), "book.commit", "book.done")
    _wrap(AdapterActor, "_submit_done", lambda self, order, *a: order.client_order_id, "adapter.done")
    _wrap(adapter_mod, "resolve", lambda future, report: report.client_order_id, "resolve")
    # work that is not one order's but may overlap it (one sender: stamped under the order in flight)
    current = lambda *a: _CUR[0]  # noqa: E731
    _wrap(LedgerActor, "_flush", current, "ledger.flush", "ledger.flushed")
    _wrap(ClaimTicket, "settle", current, "claim.settled")  # the venue calls may go (orders forwarded before the COMMIT)


def run_config(name: str, n: int, warmup: int, root: Path) -> dict[str, list[tuple[str, int, str]]]:
    """``n`` orders (after ``warmup``) through a fresh runtime of configuration ``name``; their stamps."""
    from actors import Runtime
    from benchmarks.run import _intent, _memory_registry, _quote, _settings
    from protocols import ExecutionContext

    journal = {"off": {"enabled": False}, "deployed": {"enabled": True, "synchronous": "FULL"},
               "off_sync": {"enabled": True, "synchronous": "OFF"}, "off_sync_mem": {"enabled": True, "synchronous": "OFF"}}[name]
    registry = _memory_registry() if name == "off_sync_mem" else None
    state = Path(tempfile.mkdtemp(prefix=f"hops-{name}-", dir=root))
    rt = Runtime.start(_settings(state, journal=journal), registry=registry) if registry else Runtime.start(_settings(state, journal=journal))
    ctx = ExecutionContext(mode="paper", account_id="hops")
    out: dict[str, list[tuple[str, int, str]]] = {}
    try:
        for i in range(warmup + n):
            coid = f"h{name}-{i}-{time.monotonic_ns()}"
            intent = _intent(coid)  # built outside the timed region, as benchmarks.run's latency figures
            rt.on_market(_quote(i))
            rt.flush()
            _ON[0] = i >= warmup
            _CUR[0] = coid
            t0 = time.perf_counter_ns()
            rt.submit(intent, ctx).result(timeout=30)
            t1 = time.perf_counter_ns()
            _ON[0] = False
            if i >= warmup:
                stamps = _STAMPS.pop(coid, [])
                out[coid] = [("submit", t0, "sender")] + stamps + [("answer", t1, "sender")]
            else:
                _STAMPS.pop(coid, None)
        rt.flush()
    finally:
        rt.stop()
    return out


def summarize(per_order: dict[str, list[tuple[str, int, str]]]) -> list[tuple[str, str, float, float]]:
    """``(stage, thread, median µs from submit, median µs since the previous stage)`` in path order."""
    at: dict[str, list[float]] = defaultdict(list)
    step: dict[str, list[float]] = defaultdict(list)
    threads: dict[str, str] = {}
    order: dict[str, float] = {}
    for stamps in per_order.values():
        t0 = stamps[0][1]
        prev = t0
        seen: set[str] = set()
        for what, t, thread in sorted(stamps, key=lambda s: s[1]):
            if what in seen:
                continue  # a stage stamped twice (e.g. a second resolve) counts once
            seen.add(what)
            at[what].append((t - t0) / 1000)
            step[what].append((t - prev) / 1000)
            threads[what] = thread.split("-g")[0]
            prev = t
    for what, values in at.items():
        order[what] = statistics.median(values)
    return [(w, threads[w], round(order[w], 1), round(statistics.median(step[w]), 1))
            for w in sorted(order, key=order.get)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hops", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per round and configuration (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed orders first (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--config", action="append", choices=["off", "deployed", "off_sync", "off_sync_mem"],
                        help="configurations (default: all four)")
    parser.add_argument("--pin", type=int, default=None, help="pin to this CPU first")
    parser.add_argument("--state-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    from benchmarks.run import _quiet_logging

    _quiet_logging()
    install()
    configs = args.config or ["off", "deployed", "off_sync", "off_sync_mem"]
    results: dict[str, dict[str, list]] = {c: {} for c in configs}
    for _ in range(args.rounds):
        for name in configs:
            results[name].update(run_config(name, args.orders, args.warmup, args.state_dir))
    load = os.getloadavg()
    print(f"# per-hop profile, {args.rounds} x {args.orders} orders per configuration, affinity "
          f"{sorted(os.sched_getaffinity(0))}, load {load[0]:.2f} {load[1]:.2f}")
    for name in configs:
        rows = summarize(results[name])
        print(f"\n## {name}  (n={len(results[name])})")
        print(f"{'stage':<16} {'thread':<22} {'at µs':>9} {'step µs':>9}")
        for what, thread, at_us, step_us in rows:
            print(f"{what:<16} {thread:<22} {at_us:>9.1f} {step_us:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
