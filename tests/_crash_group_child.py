"""The crash suite's order script with concurrent senders, run as a real subprocess and killed by SIGKILL.

``python tests/_crash_group_child.py STATE_DIR SEED ORDERS``: as ``tests/_crash_child.py`` (same
durable settings, ``FR_CRASHPOINT`` arms a kill point), but :data:`SENDERS` threads submit at
once, so the orders cross the idempotency store, the ledger, the circuit breaker and the adapter
in groups (``SubmitOrders``, ``ExecuteOrders``, ``OrdersFinished``). The test re-runs the same
script in-process after the crash: the callers retrying every intent under the same ids.
"""

from __future__ import annotations

import random
import sys
import threading
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _crash_child import ACCOUNT, settings_for

from actors import Runtime
from protocols import ExecutionContext, ExecutionReport, OrderIntent, Quote

#: threads submitting at once (each waits for its answer before its next order)
SENDERS = 16


def run(rt: Runtime, seed: int, orders: int) -> dict[str, ExecutionReport]:
    """Submit ``orders`` intents (market, and limits that rest) from :data:`SENDERS` threads; their reports by id."""
    ctx = ExecutionContext(mode="paper", account_id=ACCOUNT, timestamp="2021-01-08T00:00:00Z")
    mid = Decimal("39433.00")
    rt.on_market(Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=mid - Decimal("0.50"), bid_size=Decimal("5"),
                       ask=mid + Decimal("0.50"), ask_size=Decimal("5")))
    reports: dict[str, ExecutionReport] = {}

    def sender(k: int) -> None:
        rng = random.Random(seed * 100 + k)
        for i in range(k, orders, SENDERS):
            cl_id, side = f"g{seed}-{i:04d}", rng.choice(("BUY", "SELL"))
            if rng.random() < 0.6:
                intent = OrderIntent(client_order_id=cl_id, symbol="BTC/USDT", side=side, order_type="MARKET", quantity=Decimal("0.001"))
            else:
                price = mid - Decimal("0.30") if side == "BUY" else mid + Decimal("0.30")
                intent = OrderIntent(client_order_id=cl_id, symbol="BTC/USDT", side=side, order_type="LIMIT",
                                     quantity=Decimal("0.001"), limit_price=price)
            reports[cl_id] = rt.submit(intent, ctx).result(timeout=30)

    threads = [threading.Thread(target=sender, args=(k,), name=f"sender-{k}") for k in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rt.flush()
    return reports


if __name__ == "__main__":
    state_dir, seed, orders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    runtime = Runtime.start(settings_for(state_dir))
    try:
        run(runtime, seed, orders)
    finally:
        runtime.stop()
