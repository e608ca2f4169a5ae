"""The claim ticket's crash window, as a real subprocess killed by SIGKILL (tests/journal/test_claim_awaited.py).

``python tests/_claim_window_child.py STATE_DIR``: a durable runtime (the crash suite's settings: SQLite
journal FULL, durable paper book) takes one order, then order ``ct-kill`` whose claim's COMMIT
is held at its true boundary (inside ``SQLiteJournal.claim_batch``, after the idempotency store
forwarded the order). Meanwhile the ledger is made to write its batch (``Runtime.flush``'s ping
to the ledger), so the order's RESERVED row is durable in ``ledger.sqlite`` while its claim is
not, and the process SIGKILLs itself there.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _crash_child import ACCOUNT, settings_for

from actors import Runtime
from actors.journal.sqlite import SQLiteJournal
from actors.runtime.runtime import _PING
from protocols import ExecutionContext, OrderIntent, Quote

HELD = "ct-kill"


def intent(client_order_id: str) -> OrderIntent:
    return OrderIntent(client_order_id=client_order_id, symbol="BTC/USDT", side="BUY", order_type="MARKET",
                       quantity=Decimal("0.001"))


def context() -> ExecutionContext:
    return ExecutionContext(mode="paper", account_id=ACCOUNT, timestamp="2021-01-08T00:00:00Z")


def quote() -> Quote:
    return Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=Decimal("39432.50"), bid_size=Decimal("1"),
                 ask=Decimal("39433.50"), ask_size=Decimal("1"))


def main(state_dir: str) -> None:
    forwarded = threading.Event()
    original = SQLiteJournal.claim_batch

    def claim_batch(journal, claims, ttl_s, before_commit=None):
        if before_commit is None or all(c.client_order_id != HELD for c in claims):
            return original(journal, claims, ttl_s, before_commit)

        def hold(results) -> None:
            before_commit(results)
            forwarded.set()
            threading.Event().wait(60)  # never committed: the main thread kills the process first

        return original(journal, claims, ttl_s, hold)

    SQLiteJournal.claim_batch = claim_batch  # type: ignore[method-assign]
    rt = Runtime.start(settings_for(state_dir))
    rt.on_market(quote())
    assert rt.submit(intent("ct-first"), context()).result(timeout=20).status.value == "FILLED"
    rt.submit(intent(HELD), context())
    assert forwarded.wait(20), "the held order was never forwarded"
    deadline = time.monotonic() + 20
    while not any(r.client_order_id == HELD for r in rt.orders()):  # the ledger's intake has it
        assert time.monotonic() < deadline, "the ledger never took the held order"
        time.sleep(0.005)
    rt.ledger.ask(_PING, timeout=20)  # the ledger writes its batch: the RESERVED row, durable
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1])
