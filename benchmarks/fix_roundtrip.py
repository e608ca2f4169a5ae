"""FIX round trip: the runtime over FIX to a local QuickFIX ``executor`` vs a bare simplefix
round trip on one socket, measured in the same run (README "A FIX venue", benchmarks/README.md).

- **bare**: one socket, simplefix encode → ``sendall`` → read until the ExecutionReport of that
  ClOrdID is parsed (NewOrderSingle → ExecutionReport, no session layer of ours, no runtime).
- **runtime**: ``rt.submit(LIMIT).result()`` through the whole runtime (idempotency, ledger,
  breaker, adapter actor, our session layer, the socket) to the same executor, journal off;
  ``rt.flush()`` between orders, outside the timed region. The FIX venue sends without
  waiting (``capabilities.sends_async``): the adapter actor writes the order and the session's
  reader thread hands the answer back.
- **runtime, worker path**: the same through a second runtime whose FIX venue declares
  ``sends_async=False`` (FIX.4.2 session): each call goes to the adapter's worker thread,
  which waits for the answer (the path every blocking adapter takes), for comparison.
- The three are measured in interleaved blocks (bare, runtime, worker path, repeated), so a
  change of load on the shared machine hits all three alike.
- **8 senders**: 8 threads submitting through the runtime at once, one order in flight each:
  orders per second over the whole run (both paths).

Target: runtime p50 ≤ 2 × bare p50. Needs ``apt-get install -y libquickfix17 libquickfix-doc``.

    python -m benchmarks.fix_roundtrip [--orders 2000] [--pin CPU] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import simplefix


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bare_round_trips(connect, port: int, n: int) -> list[float]:
    """µs per NewOrderSingle → ExecutionReport on one simplefix socket (CLIENT2, FIX.4.4)."""
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
        cid = f"bare-{os.getpid()}-{i}".encode()
        t0 = time.perf_counter_ns()
        send("D", (11, cid.decode()), (21, 1), (55, "BTCUSDT"), (54, 1), (60, "20260101-00:00:00.000"),
             (38, "0.5"), (40, 2), (44, "100"), (59, 1))
        read_until(lambda m, cid=cid: m.get(35) == b"8" and m.get(11) == cid)
        out.append((time.perf_counter_ns() - t0) / 1000)
    send("5")
    sock.close()
    return out


def runtime_round_trips(rt, n: int, prefix: str) -> list[float]:
    from protocols import ExecutionContext, OrderIntent

    ctx = ExecutionContext(mode="live", account_id="bench")
    out = []
    for i in range(n):
        intent = OrderIntent(client_order_id=f"{prefix}-{i}", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                             quantity=Decimal("0.5"), limit_price=Decimal("100"), time_in_force="GTC")
        rt.flush()
        t0 = time.perf_counter_ns()
        report = rt.submit(intent, ctx).result(timeout=10)
        out.append((time.perf_counter_ns() - t0) / 1000)
        if report.status.value != "FILLED":
            raise RuntimeError(f"order {intent.client_order_id}: {report.status.value} {report.error}")
    return out


def throughput(rt, senders: int, per_sender: int, prefix: str) -> float:
    from protocols import ExecutionContext, OrderIntent

    errors: list[str] = []

    def run(k: int) -> None:
        ctx = ExecutionContext(mode="live", account_id=f"bench-{k}")
        for i in range(per_sender):
            intent = OrderIntent(client_order_id=f"{prefix}-{k}-{i}", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                                 quantity=Decimal("0.5"), limit_price=Decimal("100"), time_in_force="GTC")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fix_roundtrip", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=2000, help="round trips per measurement (default %(default)s)")
    p.add_argument("--per-sender", type=int, default=500, help="orders per sender in the 8-sender run (default %(default)s)")
    p.add_argument("--pin", type=int, default=None, help="pin the process to this CPU first")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = p.parse_args(argv)
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    from actors import Runtime, default_registry
    from config import load_settings
    from protocols.venues.fix import build_fix_venue
    from protocols.venues.fix._peer import INSTALL_HINT, Peer, available

    if not available():
        print(f"QuickFIX example acceptors not installed ({INSTALL_HINT})", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="fix-bench-"))
    results: dict = {"affinity": sorted(os.sched_getaffinity(0)), "load_start": os.getloadavg()[0], "orders": args.orders}
    with Peer.start("executor", work / "peer") as peer:
        connect = peer.connector()

        def runtime(name: str, begin_string: str, sends_async: bool):
            settings = load_settings(
                "default", state_dir=work / name, journal={"enabled": False}, logging={"level": "WARNING"},
                venues={"fix": {"port": peer.port, "sender_comp_id": "CLIENT1", "target_comp_id": "EXECUTOR",
                                "begin_string": begin_string, "reset_on_logon": True}},
                routing={"policy": {"live": "fix"}, "blocked_modes": ["live_blocked"]},
                throttle={"max_calls": 10_000_000, "queue_size": 1_000_000})

            def build(s):
                venue = build_fix_venue(s, connector=connect)
                if not sends_async:
                    venue.capabilities = venue.capabilities.model_copy(update={"sends_async": False})
                return venue

            registry = default_registry(settings=settings)
            registry.register("fix", build)
            return Runtime.start(settings, registry=registry)

        rt = runtime("state", "FIX.4.4", True)
        rt_worker = runtime("state-worker", "FIX.4.2", False)
        bare: list[float] = []
        fast: list[float] = []
        worker: list[float] = []
        try:
            runtime_round_trips(rt, min(200, args.orders), "warm")  # warm-up, not reported
            runtime_round_trips(rt_worker, min(200, args.orders), "warm")
            bare_round_trips(connect, peer.port, min(200, args.orders))
            blocks = 4
            for b in range(blocks):
                size = args.orders // blocks
                bare += bare_round_trips(connect, peer.port, size)
                fast += runtime_round_trips(rt, size, f"rt{b}")
                worker += runtime_round_trips(rt_worker, size, f"wk{b}")
            tput = throughput(rt, 8, args.per_sender, "tp")
            tput_worker = throughput(rt_worker, 8, args.per_sender, "tpw")
        finally:
            rt.stop()
            rt_worker.stop()
    results.update({
        "bare_p50_us": statistics.median(bare), "bare_p99_us": _pct(bare, 0.99),
        "runtime_p50_us": statistics.median(fast), "runtime_p99_us": _pct(fast, 0.99),
        "worker_path_p50_us": statistics.median(worker), "worker_path_p99_us": _pct(worker, 0.99),
        "ratio_p50": statistics.median(fast) / statistics.median(bare),
        "worker_path_ratio_p50": statistics.median(worker) / statistics.median(bare),
        "senders8_orders_per_s": tput, "worker_path_senders8_orders_per_s": tput_worker,
        "load_end": os.getloadavg()[0],
    })
    results["target_met"] = results["ratio_p50"] <= 2.0
    if args.json:
        print(json.dumps(results))
    else:
        print(f"affinity {results['affinity']}, load {results['load_start']:.2f} -> {results['load_end']:.2f}, {args.orders} orders each")
        print(f"bare simplefix round trip   p50 {results['bare_p50_us']:8.1f} µs  p99 {results['bare_p99_us']:8.1f} µs")
        print(f"runtime over FIX round trip p50 {results['runtime_p50_us']:8.1f} µs  p99 {results['runtime_p99_us']:8.1f} µs")
        print(f"  (worker path)             p50 {results['worker_path_p50_us']:8.1f} µs  p99 {results['worker_path_p99_us']:8.1f} µs")
        print(f"runtime / bare p50 = {results['ratio_p50']:.2f} (target <= 2: {'met' if results['target_met'] else 'NOT met'}); "
              f"worker path / bare = {results['worker_path_ratio_p50']:.2f}")
        print(f"8 senders through the runtime: {tput:,.0f} orders/s (worker path {tput_worker:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
