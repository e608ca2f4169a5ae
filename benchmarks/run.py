"""flowroute benchmarks (benchmarks/README.md): every figure is a ratio against a floor or a baseline
measured in the same run, and every figure carries the CPU affinity it was measured with.

Usage::

    python -m benchmarks.run [--quick] [--output PATH] [--pin CPU | --no-pin] [--both]
                             [--state-dir DIR] [--markdown | --json]
    python -m benchmarks.run --show RESULTS.json [--markdown | --json]

- ``--quick``: small sample sizes (CI smoke; ``--both --quick`` finishes in well under 60 s).
- ``--output PATH``: where the results file goes (default ``benchmarks/results.json``).
- ``--json``: print the results as one JSON object on stdout instead of the table (as in every
  ``flowroute`` command: stdout carries that object only, progress goes to stderr).
- ``--pin CPU``: pin this process to one CPU (``os.sched_setaffinity(0, {CPU})``) at start,
  before any thread exists; ``--no-pin`` (default) keeps the inherited affinity.
- ``--both``: run the whole suite twice, each in a fresh subprocess: unpinned (every CPU of
  the current affinity set) and pinned to one CPU (``--pin``'s CPU, default the lowest
  allowed one); print both side by side.
- ``--state-dir DIR``: parent of the temporary directories of the durable runs and of the
  fsync floor (default: the system temp dir). Its filesystem is recorded: on tmpfs an fsync
  costs nothing and the durable figures mean little.
- ``--show JSON``: print the table of an earlier results file and run nothing;
  ``--markdown``: print the table as markdown (for ``benchmarks/README.md``).

Sections (units: µs for latencies, orders/s for throughput):

1. ``floor``: F = the median round trip of a bare ``queue.Queue`` ping-pong between two
   threads of this process (p50/p99). A pykka ``ask`` round trip to a no-op actor and a
   ``Future`` told through 4 pykka actors in a row, and through 4 flowroute actors on one
   dispatcher, are measured the same way for reference.
2. ``latency``: one sender, journal off (in-memory idempotency store), one MARKET BTC/USDT
   order at a time: ``perf_counter_ns`` around ``submit(...).result()``. A fresh quote is fed
   with ``rt.on_market`` before each order and the runtime is drained (``rt.flush()``)
   outside the timed region, so each order meets an idle runtime. Ratios ``p50/F_p50`` and
   ``p99/F_p50`` (≤ 4 and ≤ 12). ``latency_back_to_back`` is the same without the
   drain (the previous order's trailing work — ledger, journal completion, events — still
   runs while the next order is in flight). ``latency_threads`` is ``latency`` with
   ``[dispatch] mode = "threads"`` (a thread per actor), for comparison in the same run.
   ``latency`` and ``latency_as_deployed`` (journal on, ``synchronous=FULL``, the default
   registry's durable paper book: what ``Runtime.start()`` runs) are each 3 full runs,
   interleaved; each reports its median-p50 run and the spread of the p50s. Targets as
   deployed: p50 ≤ fsync p50 + 4·F, p99 ≤ 2·fsync p99 + 12·F (the fsync floor of section 4).
3. ``throughput_8``: 8 sender threads, each submitting M orders (futures collected, then all
   waited) into a runtime with the journal off, against a lock-based baseline doing the
   same domain work with direct calls under one ``threading.Lock`` from 8 threads. Ratio
   runtime/baseline (≥ 0.5). For context also: the baseline from 1 sender, and a
   baseline on the ``MemoryJournal`` the runtime itself uses with the journal off.
4. ``durable_64``: 64 sender threads against a runtime with the journal on, ``synchronous``
   FULL vs OFF (same files, no fsync), in fresh temp dirs; ratio FULL/OFF (≥ 0.7);
   plus the disk's bare fsync floor (write 64 bytes + ``os.fsync`` for ~1 s in the same
   directory). The paper venue's own book is kept in memory here (``paper_book:
   "memory"``) so that the figure isolates the runtime's journal; ``durable_64_as_deployed``
   repeats the pair with the default registry, whose paper book is a durable SQLite file
   (WAL) whenever the journal is on, and adds the journal off (64 senders, in-memory books):
   as deployed / journal off, target ≥ 0.8.
5. ``stress_16``: ``python run.py stress --senders 16 --orders N`` (durable: the stress profile's
   journal, ledger journal, audit and durable paper book; its mix of new orders, duplicates,
   cancels and bad input) in a child process with this process's affinity; its throughput over
   the 8-sender journal-off runtime figure of section 3, same run (target ≥ 0.5).
6. ``micro``: one ``decide_route`` call, one ``SQLiteJournal.get`` on an in-memory journal
   holding 10k records, one ``claim_batch`` of one claim, plus the per-order helpers the
   hot path calls (intent validation, fingerprint, JSON dumps, paper submit), in µs.

The results JSON holds ``meta`` (python, cores, affinity at start, filesystem) and ``runs``
(``unpinned`` and/or ``pinned``), each run holding the sections above, each section its
``affinity``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Nothing that starts a thread is imported at module level: ``--pin`` must take effect
# before the first thread of the process exists. flowroute, pykka, loguru and rich are
# imported inside the functions that use them.

_HERE = Path(__file__).resolve().parent
DEFAULT_JSON = _HERE / "results.json"
SYMBOL = "BTC/USDT"
BID = "39432.99"
ASK = "39433.62"
QTY = "0.001"  # 0.001 BTC ≈ 39 USDT > min_notional 5
T0 = datetime(2021, 1, 8, tzinfo=UTC)


@dataclass(frozen=True)
class Sizes:
    """Sample sizes of one suite (counts)."""

    floor_n: int
    pykka_n: int
    latency_n: int
    latency_warmup: int
    senders_8_per_thread: int
    senders_64_per_thread: int
    as_deployed_per_thread: int
    fsync_seconds: float
    micro_number: int
    stress_orders: int


QUICK = Sizes(floor_n=3_000, pykka_n=1_000, latency_n=400, latency_warmup=50, senders_8_per_thread=100,
              senders_64_per_thread=10, as_deployed_per_thread=3, fsync_seconds=0.3, micro_number=2_000,
              stress_orders=1_000)
FULL = Sizes(floor_n=100_000, pykka_n=20_000, latency_n=10_000, latency_warmup=500, senders_8_per_thread=2_500,
             senders_64_per_thread=250, as_deployed_per_thread=80, fsync_seconds=1.0, micro_number=20_000,
             stress_orders=20_000)


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 1]) of an ascending list; raises ``ValueError`` when empty."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize_ns(samples_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/max/mean in µs of a list of nanosecond samples."""
    s = sorted(samples_ns)
    us = 1000.0
    return {
        "n": len(s),
        "p50_us": round(percentile(s, 0.50) / us, 2),
        "p90_us": round(percentile(s, 0.90) / us, 2),
        "p99_us": round(percentile(s, 0.99) / us, 2),
        "max_us": round(s[-1] / us, 2),
        "mean_us": round(sum(s) / len(s) / us, 2),
    }


def affinity() -> list[int]:
    """CPUs this process may run on (``os.sched_getaffinity(0)``), sorted."""
    return sorted(os.sched_getaffinity(0))


def fs_type(path: Path) -> str:
    """Filesystem type of ``path`` from /proc/mounts (longest mount-point prefix), or ``"?"``."""
    try:
        target = str(path.resolve())
        best, kind = "", "?"
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
        return kind
    except OSError:
        return "?"


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _quiet_logging() -> None:
    """Keep loguru's default stderr sink but only from WARNING (the runtime logs start/stop at INFO)."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def _settings(state_dir: Path, *, journal: dict[str, Any], dispatch: str = "shared", help: bool = True) -> Any:
    from actors.kernel import gctune
    from config import load_settings

    return load_settings(
        "test",
        state_dir=state_dir,
        journal=journal,
        # the GC threshold run.py (and so the stress row) runs at, on every side of every ratio:
        # the runtimes here, and the lock baseline while it runs (docs/DESIGN.md "The garbage collector")
        dispatch={"mode": dispatch, "help": help, "gc_threshold": gctune.CLI_THRESHOLD},
        throttle={"max_calls": 10**9, "queue_size": 10**6},
        # defaults (the test profile's 0.5 s attempt timeout is for fault tests)
        timeouts={"attempt_s": 2.0, "deadline_s": 30.0},
    )


def _quote(i: int, size: str = "1") -> Any:
    from decimal import Decimal

    from protocols import Quote

    return Quote(ts=T0 + timedelta(milliseconds=i), symbol=SYMBOL, bid=Decimal(BID), bid_size=Decimal(size),
                 ask=Decimal(ASK), ask_size=Decimal(size))


def _intent(client_order_id: str) -> Any:
    from decimal import Decimal

    from protocols import OrderIntent

    return OrderIntent(client_order_id=client_order_id, symbol=SYMBOL, side="BUY", order_type="MARKET",
                       quantity=Decimal(QTY))


def _memory_registry() -> Any:
    """The default adapters with in-memory books (the venue simulator does no fsync of its own)."""
    from actors import AdapterRegistry
    from protocols.venues import DryRunVenue, FillModelConfig, PaperVenue, ShadowVenue

    registry = AdapterRegistry()
    registry.register("paper", lambda s: PaperVenue("paper", config=FillModelConfig.from_settings(s.paper)))
    registry.register("shadow", lambda s: ShadowVenue("shadow", config=FillModelConfig.from_settings(s.paper)))
    registry.register("dry_run", lambda s: DryRunVenue("dry_run", config=FillModelConfig.from_settings(s.paper)))
    return registry


# --------------------------------------------------------------------------------------
# 1. floor
# --------------------------------------------------------------------------------------
def bench_floor(n: int, pykka_n: int) -> dict[str, Any]:
    """F: round trips of a bare ``queue.Queue`` ping-pong between two threads (µs)."""
    ping: queue.Queue = queue.Queue()
    pong: queue.Queue = queue.Queue()

    def echo() -> None:
        get, put = ping.get, pong.put
        while True:
            item = get()
            put(item)
            if item is None:
                return

    thread = threading.Thread(target=echo, name="bench-echo", daemon=True)
    thread.start()
    put, get, clock = ping.put, pong.get, time.perf_counter_ns
    warmup = max(100, n // 10)
    samples: list[int] = []
    for i in range(warmup + n):
        t0 = clock()
        put(i)
        get()
        t1 = clock()
        if i >= warmup:
            samples.append(t1 - t0)
    put(None)
    get()
    thread.join()
    out = summarize_ns(samples)
    out["what"] = "queue.Queue ping-pong round trip between two threads (F = p50)"
    out["pykka_ask"] = _pykka_ask(pykka_n)
    out["pykka_chain_4"] = _pykka_chain(4, pykka_n)
    out["dispatcher_chain_4"] = _dispatcher_chain(4, pykka_n)
    return out


def _pykka_chain(hops: int, n: int) -> dict[str, Any]:
    """A ``Future`` told through ``hops`` pykka actors in a row, the last one resolving it: the cost
    of the runtime's topology alone, with pykka's own inbox (idempotency → ledger → breaker →
    adapter is 4 since routing moved into ``Runtime.submit``)."""
    import pykka

    class Stage(pykka.ThreadingActor):
        use_daemon_thread = True

        def __init__(self, nxt: Any) -> None:
            super().__init__()
            self.nxt = nxt

        def on_receive(self, message: Any) -> None:
            if self.nxt is None:
                message.set_result(True)
            else:
                self.nxt.tell(message)

    refs: list[Any] = []
    head = None
    for _ in range(hops):
        head = Stage.start(head)
        refs.append(head)
    try:
        out = _future_round_trips(head.tell, n)
    finally:
        for ref in refs:
            ref.stop(block=True, timeout=5)
    out["hops"] = hops
    return out


def _dispatcher_chain(hops: int, n: int) -> dict[str, Any]:
    """The same chain as flowroute runs it (``[dispatch] mode = "shared"``): ``hops`` FlowActors on
    one ``Dispatcher``, a ``Future`` told from one to the next, the last resolving it."""
    from concurrent.futures import Future

    from actors.kernel.base import FlowActor, tell
    from actors.kernel.dispatcher import Dispatcher

    class Stage(FlowActor):
        def __init__(self, nxt: Any, **kw: Any) -> None:
            super().__init__(**kw)
            self.nxt = nxt

        def handle_Future(self, future: Future) -> None:
            if self.nxt is None:
                future.set_result(True)
            else:
                tell(self.nxt, future)

    dispatcher = Dispatcher("bench-chain")
    head = None
    for _ in range(hops):
        head = Stage.start(head, dispatcher=dispatcher)
    try:
        out = _future_round_trips(lambda future: tell(head, future), n)
    finally:
        dispatcher.close()
    out["hops"] = hops
    return out


def _future_round_trips(send: Callable[[Any], Any], n: int) -> dict[str, Any]:
    """µs summary of ``n`` round trips (after max(50, n/10) warm-up ones): a fresh
    ``concurrent.futures.Future`` passed to ``send``, then waited for (5 s timeout)."""
    from concurrent.futures import Future

    clock = time.perf_counter_ns
    warmup = max(50, n // 10)
    samples: list[int] = []
    for i in range(warmup + n):
        future: Future = Future()
        t0 = clock()
        send(future)
        future.result(timeout=5)
        t1 = clock()
        if i >= warmup:
            samples.append(t1 - t0)
    return summarize_ns(samples)


def _pykka_ask(n: int) -> dict[str, Any]:
    """Round trip of ``ActorRef.ask`` to a pykka ThreadingActor that returns at once (reference only)."""
    import pykka

    class Echo(pykka.ThreadingActor):
        use_daemon_thread = True

        def on_receive(self, message: Any) -> Any:
            return message

    ref = Echo.start()
    try:
        clock = time.perf_counter_ns
        warmup = max(50, n // 10)
        samples: list[int] = []
        for i in range(warmup + n):
            t0 = clock()
            ref.ask(i, timeout=5)
            t1 = clock()
            if i >= warmup:
                samples.append(t1 - t0)
    finally:
        ref.stop(block=True, timeout=5)
    return summarize_ns(samples)


# --------------------------------------------------------------------------------------
# 2. end-to-end latency, one sender
# --------------------------------------------------------------------------------------
def bench_latency(n: int, warmup: int, state_dir: Path, *, drain: bool, dispatch: str = "shared",
                  as_deployed: bool = False, help: bool = True) -> dict[str, Any]:
    """One sender, journal off: µs from ``submit`` to ``result()`` of a MARKET order (sender's clock).

    ``dispatch`` is the runtime's ``[dispatch] mode``: "shared" (the default) or "threads".
    ``as_deployed``: the journal on (``synchronous=FULL``) with the default registry, whose paper
    book is a durable SQLite file: what ``Runtime.start()`` and ``run.py`` run. ``help``: the
    ``[dispatch] help`` setting (False: the sender only waits; docs/DESIGN.md "Threads")."""
    from protocols import ExecutionContext

    journal = {"enabled": True, "synchronous": "FULL"} if as_deployed else {"enabled": False}
    rt, start_errors = _start_durable(_settings(state_dir, journal=journal, dispatch=dispatch, help=help), None)
    statuses: Counter[str] = Counter()
    samples: list[int] = []
    try:
        ctx = ExecutionContext(mode="paper", account_id="bench-latency")
        clock = time.perf_counter_ns
        tag = "d" if drain else "b"
        for i in range(warmup + n):
            intent = _intent(f"lat{tag}-{i}")
            rt.on_market(_quote(i))
            if drain:
                rt.flush()
            t0 = clock()
            report = rt.submit(intent, ctx).result(timeout=30)
            t1 = clock()
            if i >= warmup:
                samples.append(t1 - t0)
                statuses[report.status.value] += 1
        rt.flush()
    finally:
        rt.stop()
    out = summarize_ns(samples)
    out["statuses"] = dict(statuses)
    out["drained_between_orders"] = drain
    if start_errors:
        out["start_errors"] = start_errors
    return out


def bench_latency_rounds(n: int, warmup: int, root: Path, rounds: int = 3) -> dict[str, Any]:
    """One sender, drained: journal off and as deployed, each with the waiting sender helping (the
    default) and without (``[dispatch] help = false``, for information), ``rounds`` full runs of
    each, interleaved (off, deployed, off without help, deployed without help, off, ...) so that
    all meet the same background load.

    Each configuration's figure is the run with the median p50 (its p50 and p99 are that run's),
    with every run's p50/p99 and the spread (max - min of the p50s) beside it."""
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "as_deployed": [], "off_no_help": [], "as_deployed_no_help": []}
    for r in range(rounds):
        for key in runs:
            d = Path(tempfile.mkdtemp(prefix=f"lat-{key}-{r}-", dir=root))
            try:
                runs[key].append(bench_latency(n, warmup, d, drain=True, as_deployed=key.startswith("as_deployed"),
                                               help=not key.endswith("_no_help")))
            finally:
                shutil.rmtree(d, ignore_errors=True)
    out: dict[str, Any] = {}
    for key, results in runs.items():
        ranked = sorted(results, key=lambda x: x["p50_us"])
        figure = dict(ranked[len(ranked) // 2])
        figure["runs"] = len(results)
        figure["runs_p50_us"] = [x["p50_us"] for x in results]
        figure["runs_p99_us"] = [x["p99_us"] for x in results]
        figure["p50_spread_us"] = round(ranked[-1]["p50_us"] - ranked[0]["p50_us"], 2)
        out[key] = figure
    return out


# --------------------------------------------------------------------------------------
# 3. throughput, 8 senders, runtime vs lock-based baseline
# --------------------------------------------------------------------------------------
def _drive(submit: Callable[[Any, Any], Any], n_threads: int, per_thread: int, prefix: str) -> dict[str, Any]:
    """``n_threads`` senders each submit ``per_thread`` prebuilt intents (futures collected, then
    all waited); returns orders/s over the wall time from the common start to the last answer."""
    from protocols import ExecutionContext

    intents = [[_intent(f"{prefix}-{t}-{i}") for i in range(per_thread)] for t in range(n_threads)]
    contexts = [ExecutionContext(mode="paper", account_id=f"{prefix}-acct-{t}") for t in range(n_threads)]
    barrier = threading.Barrier(n_threads + 1)
    results: list[list[Any]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    def sender(t: int) -> None:
        try:
            ctx = contexts[t]
            futures = []
            barrier.wait()
            for intent in intents[t]:
                futures.append(submit(intent, ctx))
            results[t] = [f.result(timeout=300) for f in futures]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(t,), name=f"bench-sender-{t}", daemon=True) for t in range(n_threads)]
    for th in threads:
        th.start()
    gc.collect()
    barrier.wait()
    t0 = time.perf_counter_ns()
    for th in threads:
        th.join()
    t1 = time.perf_counter_ns()
    if errors:
        raise RuntimeError(f"{len(errors)} sender(s) failed: {errors[0]!r}") from errors[0]
    reports = [r for rs in results for r in rs]
    seconds = (t1 - t0) / 1e9
    lat = sorted(r.latency_us for r in reports if r.latency_us is not None)
    return {
        "senders": n_threads,
        "orders": len(reports),
        "seconds": round(seconds, 4),
        "orders_per_s": round(len(reports) / seconds, 1),
        "statuses": dict(Counter(r.status.value for r in reports)),
        "report_latency_p50_us": percentile(lat, 0.5) if lat else None,
        "report_latency_p99_us": percentile(lat, 0.99) if lat else None,
    }


class LockBaseline:
    """The same per-order domain work as the runtime, as direct calls under ONE ``threading.Lock``.

    Per order: route (``decide_route``), idempotency claim in an in-memory
    ``SQLiteJournal`` (fingerprint + intent/context JSON, ``claim_batch`` of one), risk
    ``check_and_reserve``, ``OrderRecord`` RESERVED → SUBMITTING, ``PaperVenue.submit_order``
    (``VenueOrder.from_intent``), the ``ExecutionReport``, ``apply_venue_state`` + position
    book + risk true-up and release, journal completion with the report JSON; the caller
    gets a resolved ``Future``. Not done (the runtime does them): lifecycle events on the
    bus, metrics, circuit breaker, throttle, timeout timers.
    """

    def __init__(self, settings: Any, quote: Any, *, journal: str = "sqlite") -> None:
        from actors.journal.sqlite import SQLiteJournal
        from actors.orders.books import Positions
        from actors.orders.risk import RiskConfig, RiskEngine
        from protocols.venues import FillModelConfig, PaperVenue

        if journal == "sqlite":
            self._journal: Any = SQLiteJournal(None, synchronous="OFF")
            self._json = True
        elif journal == "memory":
            from actors.journal.sqlite import MemoryJournal

            self._journal = MemoryJournal()
            self._json = False
        else:
            raise ValueError(f"journal must be 'sqlite' or 'memory', got {journal!r}")
        self._lock = threading.Lock()
        self._policy = dict(settings.routing.policy)
        self._blocked = frozenset(settings.routing.blocked_modes)
        self._ttl = settings.idempotency.ttl_s
        self._risk = RiskEngine(RiskConfig.from_settings(settings.risk))
        self._venue = PaperVenue("paper", config=FillModelConfig.from_settings(settings.paper))
        self._venue.on_market(quote)
        self._books = Positions()
        self._orders: dict[str, Any] = {}
        self._instruments = settings.paper.instrument_map()
        self._touch = quote

    def close(self) -> None:
        self._journal.close()
        self._venue.close()

    def submit(self, intent: Any, ctx: Any) -> Any:
        from concurrent.futures import Future

        from actors.journal.sqlite import Claim
        from actors.orders.books import OrderRecord, arrival_price
        from actors.orders.messages import SubmitOrder
        from actors.orders.reporting import venue_report
        from actors.routing.router import RouteDenied, decide_route
        from protocols import OrderEventType, VenueOrder

        t0 = time.perf_counter_ns()
        future: Future = Future()
        account, coid = ctx.account_id, intent.client_order_id
        with self._lock:
            decision = decide_route(ctx.mode, self._policy, self._blocked)
            if isinstance(decision, RouteDenied):
                raise RuntimeError(decision.message)
            claim = Claim(account, coid, intent.fingerprint(), intent.model_dump_json() if self._json else "",
                          ctx.model_dump_json() if self._json else "", decision.adapter_id, time.time())
            outcome = self._journal.claim_batch([claim], self._ttl)[0].outcome
            if outcome != "CLAIMED":
                raise RuntimeError(f"claim {coid}: {outcome}")
            instrument = self._instruments.get(intent.symbol)
            risk = self._risk.check_and_reserve(
                intent, account, touch=self._touch, position_qty=self._books.net_qty(account, intent.symbol),
                tick_size=instrument.tick_size if instrument is not None else None)
            if not risk.approved:
                raise RuntimeError(f"risk denied {coid}: {risk.reason}")
            rec = OrderRecord.from_intent(intent, account, route=decision, arrival_px=arrival_price(intent.side, self._touch))
            self._orders[coid] = rec
            rec.apply_event(OrderEventType.RESERVED, cause=f"reserved {risk.reserved}")
            rec.apply_event(OrderEventType.SUBMITTED, cause="attempt 1 sent to paper")
            state = self._venue.submit_order(VenueOrder.from_intent(intent, ctx))
            order = SubmitOrder(intent, ctx, future, t0, route=decision, attempt=1, arrival_px=rec.arrival_px)
            report = venue_report(order, state)
            for fill in rec.apply_venue_state(state):
                self._books.apply_fill(account, rec.symbol, rec.side, fill)
                self._risk.on_fill(account, coid, fill)
            if rec.is_terminal:
                self._risk.release(account, coid)
            self._journal.complete(account, coid, "COMPLETED", report.model_dump_json() if self._json else None, time.time())
        future.set_result(report)
        return future


def bench_throughput_8(per_thread: int, state_dir: Path) -> dict[str, Any]:
    """8 senders: runtime (journal off) vs the lock-based baseline; orders/s and the ratio."""
    from actors import Runtime
    from actors.kernel import gctune

    n_threads = 8
    big_quote = _quote(0, size="1000000")  # deep enough that no order walks the book
    rt = Runtime.start(_settings(state_dir, journal={"enabled": False}))
    try:
        rt.on_market(big_quote)
        rt.flush()
        _drive(rt.submit, n_threads, max(5, per_thread // 10), "warm8")  # warm-up (imports, caches)
        rt.flush()
        runtime = _drive(rt.submit, n_threads, per_thread, "rt8")
        rt.flush()
    finally:
        rt.stop()
    baselines = {}
    for kind in ("sqlite", "memory"):
        impl = LockBaseline(_settings(state_dir, journal={"enabled": False}), big_quote, journal=kind)
        release_gc = gctune.hold(gctune.CLI_THRESHOLD)  # what the runtime side ran at
        try:
            _drive(impl.submit, n_threads, max(5, per_thread // 10), f"warm{kind}")
            baselines[kind] = _drive(impl.submit, n_threads, per_thread, f"base8{kind}")
            baselines[kind + "_1_sender"] = _drive(impl.submit, 1, per_thread, f"base1{kind}")
        finally:
            release_gc()
            impl.close()
    return {
        "runtime": runtime,
        "baseline": baselines["sqlite"],
        "baseline_1_sender": baselines["sqlite_1_sender"],
        "ratio": round(runtime["orders_per_s"] / baselines["sqlite"]["orders_per_s"], 3),
        "target_ratio_min": 0.5,
        # like for like with the runtime's non-durable mode (MemoryJournal, no JSON)
        "baseline_memory_journal": baselines["memory"],
        "baseline_memory_journal_1_sender": baselines["memory_1_sender"],
        "ratio_memory_journal": round(runtime["orders_per_s"] / baselines["memory"]["orders_per_s"], 3),
    }


# --------------------------------------------------------------------------------------
# 4. durable vs non-durable journal, 64 senders
# --------------------------------------------------------------------------------------
def _start_durable(settings: Any, registry: Any) -> tuple[Any, list[str]]:
    """``Runtime.start`` with one retry: a durable start on a fresh directory has been seen to fail
    once with "database is locked" (two actors open the new journal file at the same time);
    the failure is recorded in the results, never hidden."""
    from actors import Runtime

    errors: list[str] = []
    for attempt in range(2):
        try:
            return (Runtime.start(settings) if registry is None else Runtime.start(settings, registry=registry)), errors
        except Exception as exc:  # noqa: BLE001 - recorded and retried once
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            _progress(f"WARNING: runtime start failed ({errors[-1]}); {'retrying' if attempt == 0 else 'giving up'}")
            shutil.rmtree(settings.state_dir, ignore_errors=True)
    raise RuntimeError(f"durable runtime did not start: {errors}")


def _durable_run(state_dir: Path, sync: str, per_thread: int, *, memory_book: bool) -> dict[str, Any]:
    settings = _settings(state_dir, journal={"enabled": True, "synchronous": sync})
    rt, start_errors = _start_durable(settings, _memory_registry() if memory_book else None)
    try:
        rt.on_market(_quote(0, size="1000000"))
        rt.flush()
        _drive(rt.submit, 8, 3, f"warm{sync}")
        rt.flush()
        out = _drive(rt.submit, 64, per_thread, f"d{sync}")
        rt.flush()
        journal = rt.stats()["journal"]
    finally:
        rt.stop()
    store = journal.get("store")
    out["synchronous"] = sync
    if start_errors:
        out["start_errors"] = start_errors
    out["claim_batches"] = journal.get("batches")
    if store is not None:
        out["journal_transactions"] = store.batches
        out["journal_mean_items_per_txn"] = round(store.mean_batch, 2)
        out["journal_commit_us_mean"] = round(store.commit_us_total / store.batches, 1) if store.batches else None
        out["journal_txn_us_mean"] = round(store.txn_us_total / store.batches, 1) if store.batches else None
    return out


#: the pause before each fsync of the floor's ``idle`` figure (seconds): about what one sender's
#: claims leave between two commits (a quote and a drain between orders, as the latency figures)
FSYNC_IDLE_GAP_S = 0.002


def fsync_floor(directory: Path, seconds: float) -> dict[str, Any]:
    """The disk's bare fsync rate: append 64 bytes + ``os.fsync`` in a loop for ``seconds``.

    ``idle`` (info): the same append + fsync, each after a pause of :data:`FSYNC_IDLE_GAP_S`, as one
    sender's claim commit meets the disk (measured on this 2-core VM: a lone fsync costs well
    above a back-to-back one, benchmarks/README.md "Where the time went"); ``max(20, seconds · 200)``
    samples (p50/p99 µs)."""
    path = directory / "fsync-floor.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples: list[int] = []
    payload = b"x" * 63 + b"\n"
    try:
        clock = time.perf_counter_ns
        start = clock()
        end = start + int(seconds * 1e9)
        while True:
            t0 = clock()
            os.write(fd, payload)
            os.fsync(fd)
            t1 = clock()
            samples.append(t1 - t0)
            if t1 >= end:
                break
        total = (clock() - start) / 1e9
        lone: list[int] = []
        for _ in range(max(20, int(seconds * 200))):
            time.sleep(FSYNC_IDLE_GAP_S)
            t0 = clock()
            os.write(fd, payload)
            os.fsync(fd)
            lone.append(clock() - t0)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    out = summarize_ns(samples)
    out["fsyncs_per_s"] = round(len(samples) / total, 1)
    idle = summarize_ns(lone)
    out["idle"] = {"gap_ms": FSYNC_IDLE_GAP_S * 1e3, "n": len(lone), "p50_us": idle["p50_us"], "p99_us": idle["p99_us"]}
    return out


def _journal_off_64(state_dir: Path, per_thread: int) -> dict[str, Any]:
    """64 senders against the runtime with the journal off (default registry: in-memory books)."""
    from actors import Runtime

    rt = Runtime.start(_settings(state_dir, journal={"enabled": False}))
    try:
        rt.on_market(_quote(0, size="1000000"))
        rt.flush()
        _drive(rt.submit, 8, 3, "warmoff")
        rt.flush()
        out = _drive(rt.submit, 64, per_thread, "doff")
        rt.flush()
    finally:
        rt.stop()
    out["synchronous"] = "journal off"
    return out


def bench_durable_64(per_thread: int, root: Path, fsync_seconds: float, *, memory_book: bool,
                     rounds: int = 1) -> dict[str, Any]:
    """64 senders, journal on: synchronous FULL vs OFF (fresh dirs under ``root``) and the fsync floor.

    As deployed (``memory_book=False``) also the journal off, and the ratio FULL / journal off
    (target ≥ 0.8). ``rounds`` > 1: the modes run interleaved (OFF, FULL, journal off, then again),
    so load that drifts during the section hits each mode alike; each mode reports its median run
    (``runs_orders_per_s``: every run's rate, in order)."""
    tag = "mem" if memory_book else "dep"
    modes = ("OFF", "FULL") if memory_book else ("OFF", "FULL", "disabled")
    every: dict[str, list[dict[str, Any]]] = {sync: [] for sync in modes}
    for _ in range(rounds):
        for sync in modes:
            d = Path(tempfile.mkdtemp(prefix=f"durable-{tag}-{sync.lower()}-", dir=root))
            try:
                every[sync].append(_journal_off_64(d, per_thread) if sync == "disabled"
                                   else _durable_run(d, sync, per_thread, memory_book=memory_book))
            finally:
                shutil.rmtree(d, ignore_errors=True)
    runs = {}
    for sync, outs in every.items():
        ranked = sorted(outs, key=lambda o: o["orders_per_s"])
        runs[sync] = ranked[len(ranked) // 2]
        if rounds > 1:
            every_status: Counter[str] = Counter()
            for o in outs:
                every_status.update(o["statuses"])
            runs[sync] = {**runs[sync], "runs_orders_per_s": [o["orders_per_s"] for o in outs],
                          "statuses_all_runs": dict(every_status)}
    d = Path(tempfile.mkdtemp(prefix="fsync-", dir=root))
    try:
        floor = fsync_floor(d, fsync_seconds)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    extra: dict[str, Any] = {}
    if "disabled" in runs:
        extra = {"journal_off": runs["disabled"], "target_ratio_to_journal_off_min": 0.8,
                 "ratio_to_journal_off": round(runs["FULL"]["orders_per_s"] / runs["disabled"]["orders_per_s"], 3)}
    return {
        **extra,
        "paper_book": "memory" if memory_book else "durable (SQLite, WAL)",
        "full": runs["FULL"],
        "off": runs["OFF"],
        "ratio": round(runs["FULL"]["orders_per_s"] / runs["OFF"]["orders_per_s"], 3),
        "target_ratio_min": 0.7,
        "fsync_floor": floor,
        "directory": str(root),
        "filesystem": fs_type(root),
    }


def bench_stress_16(orders: int, state_dir: Path) -> dict[str, Any]:
    """``python run.py stress --senders 16 --orders N`` (durable, the stress profile) in a child
    process, which inherits this process's CPU affinity; its JSON's throughput (operations/s)."""
    cmd = [sys.executable, str(_HERE.parent / "run.py"), "stress", "--senders", "16", "--orders", str(orders),
           "--json", "--fresh", "--state-dir", str(state_dir)]
    proc = subprocess.run(cmd, cwd=_HERE.parent, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"run.py stress exited {proc.returncode}: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    return {
        "command": " ".join(["run.py", *cmd[2:-2]]),
        "throughput_per_s": report["throughput_per_s"],
        "seconds": report["seconds"],
        # the stress process's CPU (all threads) per operation over its timed window: the figure
        # to compare across changes on a shared machine, where wall time is noisy
        "cpu_us_per_op": report.get("cpu_us_per_op"),
        # the same window's CPU per operation by thread (the ledger's, the store's, the venue's, the senders')
        "cpu_us_per_op_by_thread": report.get("cpu_us_per_op_by_thread"),
        "intents": report["intents"],
        "claims_per_transaction": report.get("claims_per_transaction"),
        "venue_duplicate_submissions": report.get("venue_duplicate_submissions"),
    }


# --------------------------------------------------------------------------------------
# 5. micro costs
# --------------------------------------------------------------------------------------
def _per_call_us(stmt: str, env: dict[str, Any], number: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of ``number`` executions of ``stmt``, in µs per call."""
    import timeit

    timer = timeit.Timer(stmt, globals=env)
    runs = timer.repeat(repeat=repeat, number=number)
    runs.sort()
    return round(runs[len(runs) // 2] / number * 1e6, 3)


def bench_micro(number: int) -> dict[str, Any]:
    """µs per call of routing, idempotency look-up, claim, and the per-order helpers."""
    import itertools

    from actors.journal.sqlite import Claim, SQLiteJournal
    from actors.routing.router import decide_route
    from config import load_settings
    from protocols import ExecutionContext, VenueOrder
    from protocols.venues import FillModelConfig, PaperVenue

    settings = load_settings("test")
    policy = dict(settings.routing.policy)
    blocked = frozenset(settings.routing.blocked_modes)
    out: dict[str, Any] = {}
    out["decide_route_us"] = _per_call_us("decide_route('paper', policy, blocked)",
                                          {"decide_route": decide_route, "policy": policy, "blocked": blocked}, number * 5)

    journal = SQLiteJournal(None, synchronous="OFF")
    try:
        now = time.time()
        keys = [("acct-micro", f"get-{i}") for i in range(10_000)]
        for start in range(0, len(keys), 1000):
            journal.claim_batch([Claim(a, c, "f" * 64, "{}", "{}", "paper", now) for a, c in keys[start:start + 1000]], 3600.0)
        cycle = itertools.cycle(keys)
        out["journal_get_10k_us"] = _per_call_us("get(*next(cycle))", {"get": journal.get, "cycle": cycle}, number)
        claims = iter([Claim("acct-micro", f"claim-{i}", "f" * 64, "{}", "{}", "paper", now) for i in range(number * 5 + 10)])
        out["claim_batch_1_us"] = _per_call_us("claim_batch([next(claims)], 3600.0)",
                                               {"claim_batch": journal.claim_batch, "claims": claims}, number)
    finally:
        journal.close()

    # per-order helpers of the hot path (for the cost ranking; not target figures)
    from decimal import Decimal

    from protocols import OrderIntent

    intent = _intent("micro-1")
    ctx = ExecutionContext(mode="paper", account_id="acct-micro")
    env = {"OrderIntent": OrderIntent, "Decimal": Decimal, "intent": intent, "ctx": ctx, "VenueOrder": VenueOrder,
           "q": Decimal(QTY)}
    out["intent_validate_us"] = _per_call_us(
        "OrderIntent(client_order_id='m-1', symbol='BTC/USDT', side='BUY', order_type='MARKET', quantity=q)", env, number)
    # first call on a fresh intent with its own quantity (the digest is cached per intent and memoised
    # per economic text, so repeating one intent would time a cache hit)
    fresh = iter([OrderIntent(client_order_id=f"fp-{i}", symbol=SYMBOL, side="BUY", order_type="MARKET",
                              quantity=Decimal(QTY) + Decimal(i) / 10**8) for i in range(number * 5 + 10)])
    out["intent_fingerprint_us"] = _per_call_us("next(fresh).fingerprint()", {**env, "fresh": fresh}, number)
    out["intent_context_dump_json_us"] = _per_call_us("intent.model_dump_json(); ctx.model_dump_json()", env, number)
    out["venue_order_from_intent_us"] = _per_call_us("VenueOrder.from_intent(intent, ctx)", env, number)
    venue = PaperVenue("paper", config=FillModelConfig.from_settings(settings.paper))
    try:
        venue.on_market(_quote(0, size="1000000000"))
        orders = iter([VenueOrder.from_intent(_intent(f"pv-{i}"), ctx) for i in range(number + 10)])
        out["paper_submit_order_us"] = _per_call_us("submit(next(orders))", {"submit": venue.submit_order, "orders": orders},
                                                    number // 5, repeat=5)
        state = venue.submit_order(VenueOrder.from_intent(_intent("pv-report"), ctx))
    finally:
        venue.close()
    from concurrent.futures import Future

    from actors.orders.messages import SubmitOrder
    from actors.orders.reporting import venue_report
    from actors.routing.router import decide_route as _dr

    order = SubmitOrder(intent, ctx, Future(), time.perf_counter_ns(), route=_dr("paper", policy, blocked), attempt=1)
    env.update({"venue_report": venue_report, "order": order, "state": state})
    out["venue_report_build_us"] = _per_call_us("venue_report(order, state)", env, number)
    report = venue_report(order, state)
    env["report"] = report
    out["report_dump_json_us"] = _per_call_us("report.model_dump_json()", env, number)
    return out


# --------------------------------------------------------------------------------------
# suite, rendering, entry point
# --------------------------------------------------------------------------------------
def run_suite(sizes: Sizes, state_root: Path, only: str | None = None) -> dict[str, Any]:
    """Run every section once in this process; every section records the affinity it ran with.

    ``only="latency"``: just F, the one-sender latency rounds (journal off and as deployed) and the
    disk's fsync floor they are judged against (section ``fsync_floor``), not the throughput runs."""
    _quiet_logging()
    suite: dict[str, Any] = {"affinity": affinity(), "pid": os.getpid(), "loadavg_start": list(os.getloadavg())}

    def section(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        _progress(f"{name} (affinity {affinity()}) ...")
        gc.collect()
        started = time.perf_counter()
        result = fn()
        result["affinity"] = affinity()
        result["elapsed_s"] = round(time.perf_counter() - started, 2)
        suite[name] = result
        _progress(f"{name} done in {result['elapsed_s']} s")

    work = Path(tempfile.mkdtemp(prefix="flowroute-bench-", dir=state_root))
    try:
        section("floor", lambda: bench_floor(sizes.floor_n, sizes.pykka_n))
        work.joinpath("lat").mkdir()
        section("latency_rounds", lambda: bench_latency_rounds(sizes.latency_n, sizes.latency_warmup, work / "lat"))
        rounds = suite.pop("latency_rounds")
        for key, name in (("off", "latency"), ("as_deployed", "latency_as_deployed"),
                          ("off_no_help", "latency_no_help"), ("as_deployed_no_help", "latency_as_deployed_no_help")):
            suite[name] = {**rounds[key], "affinity": rounds["affinity"], "elapsed_s": rounds["elapsed_s"]}
        if only != "latency":
            section("latency_back_to_back",
                    lambda: bench_latency(sizes.latency_n, sizes.latency_warmup, work / "lat2", drain=False))
            section("latency_threads",
                    lambda: bench_latency(sizes.latency_n, sizes.latency_warmup, work / "lat3", drain=True, dispatch="threads"))
        f50 = suite["floor"]["p50_us"]
        for key in ("latency", "latency_as_deployed", "latency_back_to_back", "latency_threads",
                    "latency_no_help", "latency_as_deployed_no_help"):
            if key not in suite:
                continue
            lat = suite[key]
            lat["F_p50_us"] = f50
            lat["p50_over_F"] = round(lat["p50_us"] / f50, 2)
            lat["p99_over_F"] = round(lat["p99_us"] / f50, 2)
        suite["latency"]["target_p50_over_F_max"] = 4
        suite["latency"]["target_p99_over_F_max"] = 12
        if only == "latency":
            section("fsync_floor", lambda: fsync_floor(work, sizes.fsync_seconds))
            _deployed_targets(suite, suite["fsync_floor"], f50)
            return suite
        section("throughput_8", lambda: bench_throughput_8(sizes.senders_8_per_thread, work / "tp8"))
        section("durable_64", lambda: bench_durable_64(sizes.senders_64_per_thread, work, sizes.fsync_seconds, memory_book=True))
        section("durable_64_as_deployed",
                lambda: bench_durable_64(sizes.as_deployed_per_thread, work, sizes.fsync_seconds, memory_book=False,
                                         rounds=3))
        section("stress_16", lambda: bench_stress_16(sizes.stress_orders, work / "stress16"))
        section("micro", lambda: bench_micro(sizes.micro_number))
        st = suite["stress_16"]
        st["throughput_8_senders_per_s"] = suite["throughput_8"]["runtime"]["orders_per_s"]
        st["ratio_to_8_senders"] = round(st["throughput_per_s"] / st["throughput_8_senders_per_s"], 3)
        st["target_ratio_min"] = 0.5
        _deployed_targets(suite, suite["durable_64"]["fsync_floor"], f50)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        suite["loadavg_end"] = list(os.getloadavg())
    return suite


def _deployed_targets(suite: dict[str, Any], fs: dict[str, Any], f50: float) -> None:
    """The as-deployed one-sender targets from the run's fsync floor and F (µs)."""
    dep = suite["latency_as_deployed"]
    dep["fsync_p50_us"], dep["fsync_p99_us"] = fs["p50_us"], fs["p99_us"]
    dep["target_p50_us_max"] = round(fs["p50_us"] + 4 * f50, 1)
    dep["target_p99_us_max"] = round(2 * fs["p99_us"] + 12 * f50, 1)


def _meta(args: argparse.Namespace, state_root: Path) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_HERE.parent, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "affinity_at_start": affinity(),
        "loadavg_at_start": list(os.getloadavg()),
        "quick": bool(args.quick),
        "state_root": str(state_root),
        "state_root_filesystem": fs_type(state_root),
        "git_commit": commit,
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _check(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def _not_filled(run: dict[str, Any]) -> str:
    """``"0"`` or the non-FILLED outcomes per run, e.g. ``durable_64_as_deployed.full: UNKNOWN=3``."""
    parts = []
    for section, keys in (("throughput_8", ("runtime", "baseline", "baseline_memory_journal")),
                          ("durable_64", ("full", "off")), ("durable_64_as_deployed", ("full", "off", "journal_off"))):
        for key in keys:
            if key not in run[section]:
                continue
            figures = run[section][key]
            bad = {k: v for k, v in figures.get("statuses_all_runs", figures["statuses"]).items() if k != "FILLED"}
            if bad:
                parts.append(f"{section}.{key}: " + ", ".join(f"{k}={v}" for k, v in sorted(bad.items())))
    return "; ".join(parts) or "0"


def rows_for(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(figure, value, target)`` rows of one suite (value strings with their pass marks)."""
    fl, lat = run["floor"], run["latency"]
    rows = [
        ("affinity", ",".join(map(str, run["affinity"])), ""),
        ("load average 1 min, start → end", f"{run['loadavg_start'][0]:.2f} → {run['loadavg_end'][0]:.2f}", "(info)"),
        ("F: queue ping-pong RTT p50 / p99 (µs)", f"{_fmt(fl['p50_us'])} / {_fmt(fl['p99_us'])}", "F = p50"),
        ("  pykka ask RTT p50 / p99 (µs)", f"{_fmt(fl['pykka_ask']['p50_us'])} / {_fmt(fl['pykka_ask']['p99_us'])}", "(info)"),
        ("  4 pykka actors in a row + Future p50 / p99 (µs)",
         f"{_fmt(fl['pykka_chain_4']['p50_us'])} / {_fmt(fl['pykka_chain_4']['p99_us'])}", "(info)"),
        ("  4 flowroute actors on one dispatcher + Future p50 / p99 (µs)",
         f"{_fmt(fl['dispatcher_chain_4']['p50_us'])} / {_fmt(fl['dispatcher_chain_4']['p99_us'])}", "(info)"),
        ("E2E 1 sender p50 / p99 (µs)", f"{_fmt(lat['p50_us'])} / {_fmt(lat['p99_us'])}", ""),
        ("  p50 / F", f"{_fmt(lat['p50_over_F'], 2)} {_check(lat['p50_over_F'] <= 4)}", "≤ 4"),
        ("  p99 / F", f"{_fmt(lat['p99_over_F'], 2)} {_check(lat['p99_over_F'] <= 12)}", "≤ 12"),
    ]
    if "runs_p50_us" in lat:
        rows.append(("  p50 of each run, spread (µs)",
                     f"{', '.join(_fmt(v) for v in lat['runs_p50_us'])}; {_fmt(lat['p50_spread_us'])}", "median of ≥ 3"))
    dep = run.get("latency_as_deployed")
    if dep is not None:
        rows += [
            ("E2E 1 sender as deployed (journal FULL, durable paper book) p50 / p99 (µs)",
             f"{_fmt(dep['p50_us'])} / {_fmt(dep['p99_us'])}", ""),
            ("  p50 of each run, spread (µs)",
             f"{', '.join(_fmt(v) for v in dep['runs_p50_us'])}; {_fmt(dep['p50_spread_us'])}", "median of ≥ 3"),
            ("  p50 vs fsync p50 + 4·F (µs)",
             f"{_fmt(dep['p50_us'])} ≤ {_fmt(dep['target_p50_us_max'])} {_check(dep['p50_us'] <= dep['target_p50_us_max'])}",
             "≤ fsync p50 + 4·F"),
            ("  p99 vs 2·fsync p99 + 12·F (µs)",
             f"{_fmt(dep['p99_us'])} ≤ {_fmt(dep['target_p99_us_max'])} {_check(dep['p99_us'] <= dep['target_p99_us_max'])}",
             "≤ 2·fsync p99 + 12·F"),
            ("  p50 / F, p99 / F", f"{_fmt(dep['p50_over_F'], 2)}, {_fmt(dep['p99_over_F'], 2)}", ""),
        ]
    for key, what in (("latency_no_help", "journal off"), ("latency_as_deployed_no_help", "as deployed")):
        nh = run.get(key)  # absent in results files from before [dispatch] help
        if nh is not None:
            rows.append((f"E2E 1 sender {what}, sender only waiting (dispatch.help false) p50 / p99 (µs)",
                         f"{_fmt(nh['p50_us'])} / {_fmt(nh['p99_us'])}; runs {', '.join(_fmt(v) for v in nh['runs_p50_us'])}",
                         "(info)"))
    if "fsync_floor" in run:  # a latency-only run (--only latency) measures the floor itself
        fs = run["fsync_floor"]
        rows.append(("fsync floor (fsyncs/s, p50 / p99 µs)",
                     f"{_fmt(fs['fsyncs_per_s'])}, {_fmt(fs['p50_us'])} / {_fmt(fs['p99_us'])}", "(info)"))
        idle = fs.get("idle")  # absent in results files from before it
        if idle is not None:
            rows.append((f"  fsync after {_fmt(idle['gap_ms'])} ms idle, as one sender's claim meets it (p50 / p99 µs)",
                         f"{_fmt(idle['p50_us'])} / {_fmt(idle['p99_us'])}", "(info)"))
    if "throughput_8" not in run:
        return rows
    b2b, tp, du, mi = run["latency_back_to_back"], run["throughput_8"], run["durable_64"], run["micro"]
    rows += [
        ("E2E back-to-back p50 / p99 (µs)", f"{_fmt(b2b['p50_us'])} / {_fmt(b2b['p99_us'])}", ""),
        ("  p50 / F, p99 / F", f"{_fmt(b2b['p50_over_F'], 2)}, {_fmt(b2b['p99_over_F'], 2)}", ""),
    ]
    thr = run.get("latency_threads")  # absent in results files from before the dispatcher
    if thr is not None:
        rows += [
            ("E2E 1 sender, a thread per actor p50 / p99 (µs)", f"{_fmt(thr['p50_us'])} / {_fmt(thr['p99_us'])}", "(info)"),
            ("  p50 / F, p99 / F", f"{_fmt(thr['p50_over_F'], 2)}, {_fmt(thr['p99_over_F'], 2)}", "(info)"),
        ]
    rows += [
        ("8 senders runtime (orders/s)", _fmt(tp["runtime"]["orders_per_s"]), ""),
        ("8 senders lock baseline (orders/s)", _fmt(tp["baseline"]["orders_per_s"]), ""),
        ("  runtime / baseline", f"{_fmt(tp['ratio'], 3)} {_check(tp['ratio'] >= 0.5)}", "≥ 0.5"),
        ("  lock baseline, 1 sender (orders/s)", _fmt(tp["baseline_1_sender"]["orders_per_s"]), "(info)"),
        ("8 senders lock baseline, MemoryJournal (orders/s)", _fmt(tp["baseline_memory_journal"]["orders_per_s"]), ""),
        ("  runtime / MemoryJournal baseline", _fmt(tp["ratio_memory_journal"], 3), "(info)"),
        ("  MemoryJournal baseline, 1 sender (orders/s)",
         _fmt(tp["baseline_memory_journal_1_sender"]["orders_per_s"]), "(info)"),
        ("64 senders journal FULL (orders/s)", _fmt(du["full"]["orders_per_s"]), ""),
        ("64 senders journal OFF (orders/s)", _fmt(du["off"]["orders_per_s"]), ""),
        ("  FULL / OFF", f"{_fmt(du['ratio'], 3)} {_check(du['ratio'] >= 0.7)}", "≥ 0.7"),
        ("  claims per txn FULL / OFF", f"{_fmt(du['full'].get('journal_mean_items_per_txn'), 2)} / "
                                        f"{_fmt(du['off'].get('journal_mean_items_per_txn'), 2)}", ""),
        ("  fsync floor (fsyncs/s, p50 µs)", f"{_fmt(du['fsync_floor']['fsyncs_per_s'])}, {_fmt(du['fsync_floor']['p50_us'])}",
         du["filesystem"]),
    ]
    dep = run["durable_64_as_deployed"]
    rows += [
        ("64 senders, durable paper book: FULL / OFF (orders/s)",
         f"{_fmt(dep['full']['orders_per_s'])} / {_fmt(dep['off']['orders_per_s'])}", ""),
        ("  FULL / OFF (as deployed)", _fmt(dep["ratio"], 3), "(info)"),
    ]
    if "journal_off" in dep:
        rows += [
            ("64 senders journal off (orders/s)", _fmt(dep["journal_off"]["orders_per_s"]), ""),
            ("  as deployed (FULL, durable book) / journal off",
             f"{_fmt(dep['ratio_to_journal_off'], 3)} {_check(dep['ratio_to_journal_off'] >= 0.8)}", "≥ 0.8"),
        ]
    st = run.get("stress_16")  # absent in results files from before it
    if st is not None:
        rows += [
            ("run.py stress --senders 16, durable (operations/s)", _fmt(st["throughput_per_s"]), ""),
            ("  stress 16 / 8 senders journal off",
             f"{_fmt(st['ratio_to_8_senders'], 3)} {_check(st['ratio_to_8_senders'] >= 0.5)}", "≥ 0.5"),
        ]
        if st.get("cpu_us_per_op") is not None:
            rows.append(("  stress CPU per operation (µs, all threads)", _fmt(st["cpu_us_per_op"]), "(info)"))
    rows += [
        ("orders not FILLED (all throughput runs)", _not_filled(run), "0"),
    ]
    rows += [
        ("decide_route (µs)", _fmt(mi["decide_route_us"], 3), ""),
        ("journal get, 10k records (µs)", _fmt(mi["journal_get_10k_us"], 2), ""),
        ("claim_batch of 1 (µs)", _fmt(mi["claim_batch_1_us"], 2), ""),
        ("  intent validate / fingerprint (µs)", f"{_fmt(mi['intent_validate_us'], 2)} / {_fmt(mi['intent_fingerprint_us'], 2)}", ""),
        ("  intent+context JSON / report JSON (µs)",
         f"{_fmt(mi['intent_context_dump_json_us'], 2)} / {_fmt(mi['report_dump_json_us'], 2)}", ""),
        ("  VenueOrder.from_intent / venue_report (µs)",
         f"{_fmt(mi['venue_order_from_intent_us'], 2)} / {_fmt(mi['venue_report_build_us'], 2)}", ""),
        ("  PaperVenue.submit_order (µs)", _fmt(mi["paper_submit_order_us"], 2), ""),
    ]
    return rows


def render(results: dict[str, Any]) -> None:
    """Print the runs as one rich table, side by side."""
    from rich.console import Console
    from rich.table import Table

    meta, runs = results["meta"], results["runs"]
    names = [n for n in ("unpinned", "pinned") if n in runs]
    table = Table(title=f"flowroute benchmarks — Python {meta['python']}, {meta['cpu_count']} CPUs, "
                        f"affinity at start {meta['affinity_at_start']}{' (quick)' if meta['quick'] else ''}")
    table.add_column("figure")
    for name in names:
        table.add_column(f"{name} (CPUs {','.join(map(str, runs[name]['affinity']))})", justify="right")
    table.add_column("target")
    per_run = [rows_for(runs[n]) for n in names]
    for i, (label, _, target) in enumerate(per_run[0]):
        table.add_row(label, *[rows[i][1] for rows in per_run], target)
    Console(width=None if sys.stdout.isatty() else 140).print(table)


def render_markdown(results: dict[str, Any]) -> str:
    """The same table as :func:`render`, as GitHub markdown (for benchmarks/README.md)."""
    import re

    runs = results["runs"]
    names = [n for n in ("unpinned", "pinned") if n in runs]
    head = ["figure"] + [f"{n} (CPUs {','.join(map(str, runs[n]['affinity']))})" for n in names] + ["target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    per_run = [rows_for(runs[n]) for n in names]
    plain = lambda text: re.sub(r"\[/?[a-z ]*\]", "", text)  # noqa: E731 - drop rich markup
    for i, (label, _, target) in enumerate(per_run[0]):
        cells = [label.strip() if not label.startswith("  ") else "&nbsp;&nbsp;" + label.strip()]
        cells += [plain(rows[i][1]) for rows in per_run] + [target]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pin(cpu: int) -> None:
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise SystemExit(f"--pin {cpu}: CPU {cpu} is not in this process's affinity set {sorted(allowed)}")
    if threading.active_count() != 1:
        raise SystemExit("--pin must take effect before any thread exists")
    os.sched_setaffinity(0, {cpu})


def _child(args: argparse.Namespace, pinned: bool, cpu: int | None, out: Path, state_root: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", "--output", str(out), "--state-dir", str(state_root)]
    cmd += ["--pin", str(cpu)] if pinned else ["--no-pin"]
    if args.quick:
        cmd.append("--quick")
    if args.only:
        cmd += ["--only", args.only]
    _progress(f"subprocess: {' '.join(cmd[1:])}")
    proc = subprocess.run(cmd, cwd=_HERE.parent, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed with exit code {proc.returncode}: {' '.join(cmd)}")
    data = json.loads(out.read_text(encoding="utf-8"))
    return next(iter(data["runs"].values()))


def main(argv: list[str] | None = None) -> int:
    from flowroute.cli import CliParser  # one CLI style with the flowroute commands (starts no thread)

    parser = CliParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sample sizes (CI smoke)")
    parser.add_argument("--output", type=Path, default=DEFAULT_JSON, metavar="PATH",
                        help="results file (default benchmarks/results.json)")
    parser.add_argument("--json", action=argparse.BooleanOptionalAction, default=False,
                        help="print the results as one JSON object on stdout instead of the table")
    pin = parser.add_mutually_exclusive_group()
    pin.add_argument("--pin", type=int, metavar="CPU", help="pin to this CPU at start (with --both: the pinned run's CPU)")
    pin.add_argument("--no-pin", action="store_true", help="keep the inherited affinity (default)")
    parser.add_argument("--both", action="store_true", help="run unpinned and pinned, each in a subprocess")
    parser.add_argument("--state-dir", type=Path, default=None, help="parent dir for durable runs (default: temp dir)")
    parser.add_argument("--show", type=Path, metavar="JSON", help="print the table of an earlier results file; run nothing")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown instead of a rich table")
    parser.add_argument("--only", choices=["latency"], default=None,
                        help="latency: only F, the one-sender figures (journal off and as deployed, 3 interleaved runs each) "
                             "and the fsync floor they are judged against (~1 min)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.show is not None:
        try:
            results = json.loads(args.show.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            parser.error(f"--show: cannot read {args.show}: {exc}")
        _output(results, args)
        return 0

    if args.pin is not None and not args.both:
        _pin(args.pin)  # first thing: before any thread exists
    state_root = (args.state_dir or Path(tempfile.gettempdir())).resolve()
    state_root.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if args.quick else FULL
    meta = _meta(args, state_root)
    meta["sizes"] = asdict(sizes)

    if args.both:
        cpu = args.pin if args.pin is not None else min(os.sched_getaffinity(0))
        runs = {}
        with tempfile.TemporaryDirectory(prefix="flowroute-bench-json-") as tmp:
            runs["unpinned"] = _child(args, False, None, Path(tmp) / "unpinned.json", state_root)
            runs["pinned"] = _child(args, True, cpu, Path(tmp) / "pinned.json", state_root)
    else:
        name = "pinned" if args.pin is not None else "unpinned"
        runs = {name: run_suite(sizes, state_root, args.only)}

    results = {"meta": meta, "runs": runs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if not args.child:
        _output(results, args)
        print(f"results written to {args.output}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _output(results: dict[str, Any], args: argparse.Namespace) -> None:
    """The results on stdout: one JSON object (``--json``), markdown, or the rich table."""
    if args.json:
        print(json.dumps(results, default=str))
    elif args.markdown:
        print(render_markdown(results))
    else:
        render(results)


if __name__ == "__main__":
    sys.exit(main())
