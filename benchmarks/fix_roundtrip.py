"""FIX round trip: the runtime over FIX to a local QuickFIX ``executor`` vs a bare simplefix
round trip on one socket, measured in the same run (README "A FIX venue", benchmarks/README.md).

- **bare**: one socket, simplefix encode → ``sendall`` → read until the ExecutionReport of that
  ClOrdID is parsed (NewOrderSingle → ExecutionReport, no session layer of ours, no runtime,
  nothing persisted on our side).
- **runtime** (the target's figure): ``rt.submit(LIMIT).result()`` through the whole runtime
  (idempotency, ledger, breaker, adapter actor, our session layer, the socket) to the same
  executor, **journal off** (in-memory idempotency store, no ledger journal, no audit log). The
  FIX session still persists its sequence numbers per message (a mapped two-slot record each
  way, no fsync: ``store_fsync = false``, as QuickFIX's own FileStore writes them without
  ``FileStoreSync``); no inbox (it is kept only with a journal). ``rt.flush()`` between orders,
  outside the timed region. The FIX venue sends without waiting (``capabilities.sends_async``):
  the adapter actor writes the order and the session's reader thread hands the answer back.
- **as deployed** (information): the same with the runtime as ``Runtime.start()`` runs it:
  journal on (``synchronous=FULL``: each order's idempotency claim is fsynced before it is
  sent), ledger journal, audit log, and the FIX inbox (each received ExecutionReport written
  before its MsgSeqNum is passed).
- **runtime, worker path** (information): the journal-off runtime whose FIX venue declares
  ``sends_async=False`` (FIX.4.2 session): each call goes to the adapter's worker thread,
  which waits for the answer (the path every blocking adapter takes).
- The four are measured in interleaved blocks (bare, runtime, as deployed, worker path,
  repeated), so a change of load on the shared machine hits all alike; every runtime is
  drained (``rt.flush()``) before each bare block, so none of their trailing bookkeeping
  (journal commits, audit fsyncs) runs beside the bare loop.
- **CPU per order**: this process's CPU time (``time.process_time``, every thread) over a
  block of orders sent one after the other (no flush), per order; for the runtime also per
  thread (Linux ``/proc/self/task``). The executor's CPU is in neither.
- **8 senders**: 8 threads submitting through the runtime at once, one order in flight each:
  orders per second over the whole run (journal off, both paths).
- ``--caller-reads on|off`` (``[venues.fix] caller_reads``, default on): whether the thread
  waiting for an order's answer reads the FIX socket itself (leader/follower) or is woken by
  the session's reader thread; compare the two in alternating runs.
- **GC threshold**: both sides run at ``gctune.CLI_THRESHOLD`` (20,000), as in ``benchmarks.run``
  and ``run.py``: the runtimes by ``[dispatch] gc_threshold``, the bare loop by holding the same
  threshold while it runs (docs/DESIGN.md "The garbage collector"). The threshold each side ran
  at is reported (``gc_threshold``: what ``gc.get_threshold()`` said during its blocks).
- ``--hops N``: afterwards, N more orders through the journal-off runtime with each stage
  stamped (``perf_counter_ns`` and the thread's CPU time): where one order's time goes, per
  hop and per thread. The stamps add ~1 µs each; the figures above are measured without them.

Target: runtime p50 ≤ 2 × bare p50. Needs ``apt-get install -y libquickfix17 libquickfix-doc``.

    python -m benchmarks.fix_roundtrip [--orders 2000] [--pin CPU] [--hops 500] [--caller-reads off] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


#: the young-generation GC threshold each side ran at, as seen during its blocks (reported)
_GC_SEEN: dict[str, set[int]] = defaultdict(set)


def bare_round_trips(connect, port: int, n: int) -> list[float]:
    """µs per NewOrderSingle → ExecutionReport on one simplefix socket (CLIENT2, FIX.4.4)."""
    _GC_SEEN["bare"].add(gc.get_threshold()[0])
    sock = connect("127.0.0.1", port, 5.0)
    parser = simplefix.FixParser()
    seq = 0

    def send(msg_type: str, *fields) -> None:
        nonlocal seq
        seq += 1
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(34, seq, header=True)
        m.append_pair(49, "CLIENT2", header=True)
        m.append_utc_timestamp(52, precision=3, header=True)
        m.append_pair(56, "EXECUTOR", header=True)
        for tag, value in fields:
            m.append_pair(tag, value)
        sock.sendall(m.encode())

    def read_until(pred):
        while True:
            msg = parser.get_message()
            if msg is not None:
                if pred(msg):
                    return msg
                continue
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("executor closed the connection")
            parser.append_buffer(data)

    send("A", (98, 0), (108, 30), (141, "Y"))
    read_until(lambda m: m.get(35) == b"A")
    out = []
    for i in range(n):
        cid = f"bare-{os.getpid()}-{time.monotonic_ns()}-{i}".encode()
        t0 = time.perf_counter_ns()
        send("D", (11, cid.decode()), (21, 1), (55, "BTCUSDT"), (54, 1), (60, "20260101-00:00:00.000"),
             (38, "0.5"), (40, 2), (44, "100"), (59, 1))
        read_until(lambda m, cid=cid: m.get(35) == b"8" and m.get(11) == cid)
        out.append((time.perf_counter_ns() - t0) / 1000)
    send("5")
    sock.close()
    return out


def _intent(cid: str):
    from protocols import OrderIntent

    return OrderIntent(client_order_id=cid, symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                       quantity=Decimal("0.5"), limit_price=Decimal("100"), time_in_force="GTC")


def runtime_round_trips(rt, n: int, prefix: str, *, flush: bool = True) -> list[float]:
    """µs per ``rt.submit(...).result()`` of ``n`` limit orders, one at a time (``flush``:
    ``rt.flush()`` before each, outside the timed region)."""
    from protocols import ExecutionContext

    _GC_SEEN["runtime"].add(gc.get_threshold()[0])
    ctx = ExecutionContext(mode="live", account_id="bench")
    intents = [_intent(f"{prefix}-{i}") for i in range(n)]
    out = []
    for intent in intents:
        if flush:
            rt.flush()
        t0 = time.perf_counter_ns()
        report = rt.submit(intent, ctx).result(timeout=10)
        out.append((time.perf_counter_ns() - t0) / 1000)
        if report.status.value != "FILLED":
            raise RuntimeError(f"order {intent.client_order_id}: {report.status.value} {report.error}")
    return out


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each thread of this process (Linux ``/proc``; empty elsewhere)."""
    out: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    names = {t.native_id: t.name for t in threading.enumerate()}
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (names.get(int(tid), "?"), (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_per_order(run: Callable[[], object], n: int) -> tuple[float, dict[str, float]]:
    """This process's CPU µs per order over ``run()`` (``n`` orders), and per thread (by name,
    generation suffixes dropped)."""
    before, c0 = _thread_cpu(), time.process_time()
    run()
    c1, after = time.process_time(), _thread_cpu()
    per_thread: dict[str, float] = defaultdict(float)
    for tid, (name, cpu) in after.items():
        used = cpu - before.get(tid, (name, 0.0))[1]
        if used > 0:
            per_thread[name.split("-g")[0]] += used * 1e6 / n
    return (c1 - c0) * 1e6 / n, dict(sorted(per_thread.items(), key=lambda kv: -kv[1]))


def throughput(rt, senders: int, per_sender: int, prefix: str) -> float:
    from protocols import ExecutionContext

    errors: list[str] = []

    def run(k: int) -> None:
        ctx = ExecutionContext(mode="live", account_id=f"bench-{k}")
        for i in range(per_sender):
            intent = _intent(f"{prefix}-{k}-{i}")
            report = rt.submit(intent, ctx).result(timeout=30)
            if report.status.value != "FILLED":
                errors.append(f"{intent.client_order_id}: {report.status.value}")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(senders)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} orders not filled, e.g. {errors[:3]}")
    return senders * per_sender / elapsed


# ---------------------------------------------------------------------- per-hop stamps

_HOPS: list[tuple[str, int, int, str]] = []
_HOPS_ON = [False]


def _install_hops() -> None:
    """Stamp each stage of the FIX order path (class attributes: instances made afterwards too).
    One order is in flight at a time, so every stamp belongs to it."""
    import actors.execution.adapter as adapter_mod
    from actors.breaker.actor import CircuitBreakerActor
    from actors.execution.adapter import AdapterActor
    from actors.idempotency.store import IdempotencyStoreActor
    from actors.orders.ledger import LedgerActor
    from protocols.venues.fix._driver import FixConnection
    from protocols.venues.fix._session import FixSession
    from protocols.venues.fix._venue import FixVenue

    def stamp(what: str) -> None:
        if _HOPS_ON[0]:
            _HOPS.append((what, time.perf_counter_ns(), time.thread_time_ns(), threading.current_thread().name))

    def wrap(owner: Any, name: str, before: str, after: str | None = None) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kw: Any) -> Any:
            stamp(before)
            try:
                return original(*args, **kw)
            finally:
                if after is not None:
                    stamp(after)

        setattr(owner, name, wrapper)

    wrap(IdempotencyStoreActor, "handle_SubmitOrder", "idempotency")
    wrap(LedgerActor, "handle_SubmitOrder", "ledger")
    wrap(CircuitBreakerActor, "handle_SubmitOrder", "breaker")
    wrap(AdapterActor, "handle_ExecuteOrder", "adapter")
    wrap(FixVenue, "send_order", "fix venue: order")
    wrap(FixSession, "send_app", "fix session: frame")
    wrap(FixConnection, "_write", "socket write", "written")
    wrap(FixSession, "receive", "report read", "session done")
    wrap(FixVenue, "_on_execution_report", "report mapped", "venue done")
    wrap(AdapterActor, "handle_VenueCallCompleted", "adapter: outcome")
    wrap(adapter_mod, "resolve", "caller answered")


def hops(rt, n: int) -> list[dict]:
    """Per stage of ``n`` orders: median µs from submit (wall), median wall step from the stage
    before, and the mean thread CPU µs spent since the stage before when both ran on the same thread."""
    from protocols import ExecutionContext

    ctx = ExecutionContext(mode="live", account_id="bench")
    per: list[list[tuple[str, int, int, str]]] = []
    for i in range(n):
        intent = _intent(f"hop-{time.monotonic_ns()}-{i}")
        rt.flush()
        _HOPS.clear()
        _HOPS_ON[0] = True
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        rt.submit(intent, ctx).result(timeout=10)
        t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        _HOPS_ON[0] = False
        main = threading.current_thread().name
        per.append([("submit", t0, c0, main), *sorted(_HOPS, key=lambda s: s[1]), ("answer", t1, c1, main)])
    at: dict[str, list[float]] = defaultdict(list)
    step: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    thread: dict[str, str] = {}
    for stamps in per:
        t0 = stamps[0][1]
        prev_t, prev_c, prev_thread = t0, stamps[0][2], stamps[0][3]
        seen: set[str] = set()
        for what, t, c, name in stamps:
            if what in seen:
                continue
            seen.add(what)
            at[what].append((t - t0) / 1000)
            step[what].append((t - prev_t) / 1000)
            if name == prev_thread and what != "submit":
                cpu[what].append((c - prev_c) / 1000)
            thread[what] = name.split("-g")[0]
            prev_t, prev_c, prev_thread = t, c, name
    rows = []
    for what in sorted(at, key=lambda w: statistics.median(at[w])):
        rows.append({"stage": what, "thread": thread[what], "at_us": round(statistics.median(at[what]), 1),
                     "step_us": round(statistics.median(step[what]), 1),
                     "cpu_us": round(statistics.mean(cpu[what]), 1) if cpu[what] else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fix_roundtrip", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=2000, help="round trips per measurement (default %(default)s)")
    p.add_argument("--per-sender", type=int, default=500, help="orders per sender in the 8-sender run (default %(default)s)")
    p.add_argument("--pin", type=int, default=None, help="pin the process to this CPU first")
    p.add_argument("--hops", type=int, default=0, help="then stamp each stage of this many orders (default: off)")
    p.add_argument("--caller-reads", choices=("on", "off"), default="on",
                   help="[venues.fix] caller_reads: the waiting caller reads the FIX socket itself (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = p.parse_args(argv)
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    from actors import Runtime, default_registry
    from actors.kernel import gctune
    from config import load_settings
    from protocols.venues.fix import build_fix_venue
    from protocols.venues.fix._peer import INSTALL_HINT, Peer, available

    if not available():
        print(f"QuickFIX example acceptors not installed ({INSTALL_HINT})", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fix-bench-"))
    results: dict = {"affinity": sorted(os.sched_getaffinity(0)), "load_start": os.getloadavg()[0], "orders": args.orders,
                     "runtime_config": "journal off; FIX sequence numbers written per message (mapped store, no fsync); no inbox",
                     "caller_reads": args.caller_reads == "on",
                     "as_deployed_config": "journal FULL (claim fsynced per order), ledger journal, audit log, FIX inbox"}
    with Peer.start("executor", work / "peer") as peer:
        connect = peer.connector()

        def runtime(name: str, sender: str, begin_string: str, sends_async: bool, journal: bool):
            settings = load_settings(
                "default", state_dir=work / name, journal={"enabled": journal}, logging={"level": "WARNING"},
                venues={"fix": {"port": peer.port, "sender_comp_id": sender, "target_comp_id": "EXECUTOR",
                                "begin_string": begin_string, "reset_on_logon": True,
                                "caller_reads": args.caller_reads == "on"}},
                routing={"policy": {"live": "fix"}, "blocked_modes": ["live_blocked"]},
                dispatch={"gc_threshold": gctune.CLI_THRESHOLD},  # as benchmarks.run and run.py (module docstring)
                throttle={"max_calls": 10_000_000, "queue_size": 1_000_000})

            def build(s):
                venue = build_fix_venue(s, connector=connect)
                if not sends_async:
                    venue.capabilities = venue.capabilities.model_copy(update={"sends_async": False})
                return venue

            registry = default_registry(settings=settings)
            registry.register("fix", build)
            return Runtime.start(settings, registry=registry)

        # the bare loop runs at the runtimes' GC threshold too, not at the interpreter's (700)
        release_gc = gctune.hold(gctune.CLI_THRESHOLD)
        # executor's sessions: CLIENT1 and CLIENT2 on FIX.4.2 and FIX.4.4 (CLIENT2 FIX.4.4 is the bare loop's)
        rt = runtime("state", "CLIENT1", "FIX.4.4", True, False)
        rt_deployed = runtime("state-deployed", "CLIENT2", "FIX.4.2", True, True)
        rt_worker = runtime("state-worker", "CLIENT1", "FIX.4.2", False, False)
        bare: list[float] = []
        fast: list[float] = []
        deployed: list[float] = []
        worker: list[float] = []
        try:
            warm = min(200, args.orders)
            for r, prefix in ((rt, "warm"), (rt_deployed, "warmd"), (rt_worker, "warmw")):
                runtime_round_trips(r, warm, prefix)  # warm-up, not reported
            bare_round_trips(connect, peer.port, warm)
            blocks = 4
            size = max(1, args.orders // blocks)
            runtimes = (rt, rt_deployed, rt_worker)
            for b in range(blocks):
                for r in runtimes:  # no runtime's trailing bookkeeping (journal, audit) runs into the bare block
                    r.flush()
                bare += bare_round_trips(connect, peer.port, size)
                fast += runtime_round_trips(rt, size, f"rt{b}")
                deployed += runtime_round_trips(rt_deployed, size, f"dp{b}")
                worker += runtime_round_trips(rt_worker, size, f"wk{b}")
            cpu_n = max(1, min(args.orders, 1000))
            for r in runtimes:
                r.flush()
            bare_cpu, _ = cpu_per_order(lambda: bare_round_trips(connect, peer.port, cpu_n), cpu_n)
            rt_cpu, rt_threads = cpu_per_order(lambda: (runtime_round_trips(rt, cpu_n, "cpu", flush=False), rt.flush()), cpu_n)
            tput = throughput(rt, 8, args.per_sender, "tp")
            tput_worker = throughput(rt_worker, 8, args.per_sender, "tpw")
            hop_rows = []
            if args.hops:
                _install_hops()
                rt_hops = runtime("state-hops", "CLIENT2", "FIX.4.4", True, False)
                try:
                    runtime_round_trips(rt_hops, min(100, args.hops), "warmh")
                    hop_rows = hops(rt_hops, args.hops)
                finally:
                    rt_hops.stop()
        finally:
            rt.stop()
            rt_deployed.stop()
            rt_worker.stop()
            release_gc()
    results.update({
        "bare_p50_us": statistics.median(bare), "bare_p99_us": _pct(bare, 0.99),
        "runtime_p50_us": statistics.median(fast), "runtime_p99_us": _pct(fast, 0.99),
        "as_deployed_p50_us": statistics.median(deployed), "as_deployed_p99_us": _pct(deployed, 0.99),
        "worker_path_p50_us": statistics.median(worker), "worker_path_p99_us": _pct(worker, 0.99),
        "ratio_p50": statistics.median(fast) / statistics.median(bare),
        "as_deployed_ratio_p50": statistics.median(deployed) / statistics.median(bare),
        "worker_path_ratio_p50": statistics.median(worker) / statistics.median(bare),
        "bare_cpu_us_per_order": bare_cpu, "runtime_cpu_us_per_order": rt_cpu, "runtime_cpu_us_per_thread": rt_threads,
        "senders8_orders_per_s": tput, "worker_path_senders8_orders_per_s": tput_worker,
        "hops": hop_rows, "load_end": os.getloadavg()[0],
        "gc_threshold": {side: sorted(seen) for side, seen in sorted(_GC_SEEN.items())},
    })
    results["target_met"] = results["ratio_p50"] <= 2.0
    if args.json:
        print(json.dumps(results))
        return 0
    r = results
    print(f"affinity {r['affinity']}, load {r['load_start']:.2f} -> {r['load_end']:.2f}, {args.orders} orders each, "
          f"caller reads {args.caller_reads}, GC threshold "
          + ", ".join(f"{side} {'/'.join(map(str, seen))}" for side, seen in r["gc_threshold"].items()))
    print(f"bare simplefix round trip        p50 {r['bare_p50_us']:8.1f} µs  p99 {r['bare_p99_us']:9.1f} µs  "
          f"CPU {r['bare_cpu_us_per_order']:6.1f} µs/order")
    print(f"runtime over FIX (journal off)   p50 {r['runtime_p50_us']:8.1f} µs  p99 {r['runtime_p99_us']:9.1f} µs  "
          f"CPU {r['runtime_cpu_us_per_order']:6.1f} µs/order")
    print(f"  as deployed (journal FULL)     p50 {r['as_deployed_p50_us']:8.1f} µs  p99 {r['as_deployed_p99_us']:9.1f} µs")
    print(f"  worker path (journal off)      p50 {r['worker_path_p50_us']:8.1f} µs  p99 {r['worker_path_p99_us']:9.1f} µs")
    print(f"runtime / bare p50 = {r['ratio_p50']:.2f} (target <= 2: {'met' if r['target_met'] else 'NOT met'}); "
          f"as deployed / bare = {r['as_deployed_ratio_p50']:.2f}; worker path / bare = {r['worker_path_ratio_p50']:.2f}")
    print(f"8 senders through the runtime: {tput:,.0f} orders/s (worker path {tput_worker:,.0f})")
    print("runtime CPU µs per order by thread: " + ", ".join(f"{k} {v:.0f}" for k, v in rt_threads.items() if v >= 1))
    if hop_rows:
        print(f"\nper hop, {args.hops} orders (journal off; median µs from submit, median wall step, mean thread CPU of the step):")
        print(f"{'stage':<20} {'thread':<24} {'at µs':>8} {'step µs':>8} {'CPU µs':>8}")
        for row in hop_rows:
            cpu = f"{row['cpu_us']:8.1f}" if row["cpu_us"] is not None else f"{'-':>8}"
            print(f"{row['stage']:<20} {row['thread']:<24} {row['at_us']:8.1f} {row['step_us']:8.1f} {cpu}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
