"""A deterministic order script for the crash suite, run as a real subprocess and killed by SIGKILL.

``python tests/_crash_child.py STATE_DIR SEED ORDERS``: starts a durable runtime on STATE_DIR
(SQLite journal, synchronous=FULL, durable paper book) and runs :func:`run`. With
``FR_CRASHPOINT=<point>:<n>`` in the environment the process SIGKILLs itself at that point
(see ``actors/testing/crashpoints.py``). The test re-runs the same script in-process after the
crash: the caller retrying every intent under the same client order ids.
"""

from __future__ import annotations

import random
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Runtime
from config import load_settings
from protocols import ExecutionContext, OrderIntent, Quote, Trade

ACCOUNT = "crash"


def settings_for(state_dir: str | Path):
    """The durable test settings the child and the recovering parent share."""
    return load_settings("test", state_dir=str(state_dir), journal={"enabled": True, "synchronous": "FULL"})


def run(rt: Runtime, seed: int, orders: int) -> list:
    """Drive ``orders`` intents with quotes, trades that partially fill resting limits, and cancels."""
    rng = random.Random(seed)
    ctx = ExecutionContext(mode="paper", account_id=ACCOUNT, timestamp="2021-01-08T00:00:00Z")
    mid = Decimal("39433.00")
    resting: list[str] = []
    reports = []
    for i in range(orders):
        sec = i + 1
        mid += Decimal(rng.randint(-20, 20)) / 100
        ts = f"2021-01-08T00:{sec // 60:02d}:{sec % 60:02d}Z"
        rt.on_market(Quote(ts=ts, symbol="BTC/USDT", bid=mid - Decimal("0.50"), bid_size=Decimal("0.002"),
                           ask=mid + Decimal("0.50"), ask_size=Decimal("0.002")))
        kind = rng.random()
        cl_id = f"c{seed}-{i:04d}"
        side = rng.choice(("BUY", "SELL"))
        qty = Decimal(rng.randint(1, 4)) / 1000
        if kind < 0.4:
            intent = OrderIntent(client_order_id=cl_id, symbol="BTC/USDT", side=side, order_type="MARKET", quantity=qty)
        else:
            offset = Decimal(rng.randint(1, 5)) / 10
            price = mid - offset if side == "BUY" else mid + offset
            intent = OrderIntent(client_order_id=cl_id, symbol="BTC/USDT", side=side, order_type="LIMIT",
                                 quantity=qty, limit_price=price.quantize(Decimal("0.01")))
        report = rt.submit(intent, ctx).result(timeout=20)
        reports.append(report)
        if intent.order_type.value == "LIMIT" and report.status.value in ("ACCEPTED", "PARTIALLY_FILLED"):
            resting.append(cl_id)
        if rng.random() < 0.5:
            # a print through the resting limits, smaller than them: partial fills
            price = mid - Decimal("0.60") if rng.random() < 0.5 else mid + Decimal("0.60")
            rt.on_market(Trade(ts=ts, symbol="BTC/USDT", trade_id=f"t{seed}-{i}", price=price, qty=Decimal("0.001")))
        if resting and rng.random() < 0.15:
            rt.cancel(resting.pop(rng.randrange(len(resting)))).result(timeout=20)
    rt.flush()
    return reports


if __name__ == "__main__":
    state_dir, seed, orders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    runtime = Runtime.start(settings_for(state_dir))
    try:
        run(runtime, seed, orders)
    finally:
        runtime.stop()
