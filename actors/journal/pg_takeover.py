"""Takeover while running: a live process adopts the orders of a process whose lease expired.

Recovery at start (``actors/runtime/recovery.py``) takes over expired owners once. A process that
keeps running must also notice a peer that died later: :class:`TakeoverLoop` (a thread, since
database calls block) asks every ``lease_s / 2`` seconds. The orders it adopts are restored
in the ledger as recovery restores them (``RestoreLedger``: in-flight ones become UNKNOWN) and
every order in doubt is handed to its adapter's reconciliation loop (``ForwardReconcile``):
the venue's state is adopted when found; proven absence (``protocols.classify_lookup``:
``OrderLookup.absent``) makes the order FAILED "never delivered"; anything else keeps it
UNKNOWN and looked up. Nothing adopted is ever re-sent: the intent belonged to a process
that died.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from protocols import ExecutionContext, OrderIntent, OrderStatus

from ..runtime.recovery import RecoveredOrder, RecoveryOutcome

__all__ = ["TakeoverLoop", "adopted_orders"]


def adopted_orders(journal: Any, keys: list[tuple[str, str]]) -> list[RecoveredOrder]:
    """``RecoveredOrder``s for the adopted ``keys``: ``unresolved`` when in doubt, else ``unchanged``."""
    records, events, fills = journal.load_adopted(keys)
    by_key_events: dict[tuple[str, str], list] = {}
    for e in events:
        by_key_events.setdefault((e.account_id, e.client_order_id), []).append(e)
    by_key_fills: dict[tuple[str, str], list] = {}
    for f in fills:
        by_key_fills.setdefault((f.account_id, f.client_order_id), []).append(f)
    out = []
    for rec in records:
        try:
            intent = OrderIntent.model_validate_json(rec.intent_json)
            context = ExecutionContext.model_validate_json(rec.context_json)
        except ValueError as exc:
            logger.error("takeover: unreadable journal record {}: {}", rec.client_order_id, exc)
            continue
        rows = tuple(sorted(by_key_events.get(rec.key, ()), key=lambda r: r.seq))
        last = OrderStatus(rows[-1].to_status) if rows else OrderStatus.INITIALIZED
        in_doubt = rec.status != "COMPLETED" or not last.is_terminal
        out.append(RecoveredOrder(intent, context, rec.adapter_id, rows, tuple(by_key_fills.get(rec.key, ())),
                                  RecoveryOutcome.UNRESOLVED if in_doubt else RecoveryOutcome.UNCHANGED, previous_status=last,
                                  idempotency_status=rec.status, note="taken over from an expired owner"))
    return out


class TakeoverLoop:
    """Every ``interval_s``: take over expired owners' orders and hand them to ``deliver``.

    ``journal``: a ``PostgresJournal``; ``deliver(orders)``: restores them in the ledger and
    starts their reconciliation (the runtime's). ``adopted``: how many orders were taken over.
    """

    def __init__(self, journal: Any, deliver: Callable[[list[RecoveredOrder]], None], interval_s: float) -> None:
        self._journal = journal
        self._deliver = deliver
        self._interval = max(0.05, interval_s)
        self._stop = threading.Event()
        self.adopted = 0
        self._thread = threading.Thread(target=self._run, name="flowroute-pg-takeover", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - the database may come back; the next round tries again
                logger.warning("takeover: {}", exc)

    def run_once(self) -> int:
        """One round; returns how many orders were taken over."""
        _, _dead, keys = self._journal.take_over_expired(time.time())
        if not keys:
            return 0
        orders = adopted_orders(self._journal, keys)
        self.adopted += len(orders)
        self._deliver(orders)
        return len(orders)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
