"""The order table: every order the ledger holds, and which terminal ones may leave memory.

A pure part of the ledger (docs/DESIGN.md "House plan": one actor, pure parts beside it; "Bounded
memory"): no threads, no I/O. Each order is an :class:`~actors.orders.books.OrderRecord` (the
lifecycle table applied to one order: transitions, fills once per trade id); the table keeps
them by client order id, the terminal ones in the order they last changed (oldest first), and
the totals of the orders archived out of memory, so counts and book invariants stay whole.

Example::

    table = OrderTable(keep_terminal=10_000)
    table.add(rec)
    table.changed_terminal(rec)           # rec became (or changed while) terminal
    for rec in table.archive_due(batch=256):
        ...                               # write its archive row, then
        table.retire(rec, book)           # it leaves memory; its fills stay in the totals
"""

from __future__ import annotations

from collections import Counter

from .books import OrderRecord, RetiredFills


class OrderTable:
    """Orders by client order id; terminal ones beyond ``keep_terminal`` (count >= 0) are due for
    archiving. ``orders`` is the table itself (a dict the ledger reads directly on its hot path);
    ``retired``: the fills of archived orders per book (``RetiredFills``), ``retired_by_status``
    and ``retired_fills``: their counts, ``archived``: how many are archived."""

    __slots__ = ("orders", "terminal", "keep_terminal", "retired", "retired_by_status", "retired_fills", "archived")

    def __init__(self, *, keep_terminal: int = 10_000) -> None:
        if keep_terminal < 0:
            raise ValueError(f"keep_terminal must be >= 0, got {keep_terminal}")
        self.orders: dict[str, OrderRecord] = {}
        #: terminal orders in memory, least recently changed first: client order id -> True when
        #: its archive row is current (it may leave memory without a write)
        self.terminal: dict[str, bool] = {}
        self.keep_terminal = keep_terminal
        self.retired = RetiredFills()
        self.retired_by_status: Counter[str] = Counter()
        self.retired_fills = 0
        self.archived = 0

    def get(self, client_order_id: str) -> OrderRecord | None:
        """The order in memory, or None."""
        return self.orders.get(client_order_id)

    def add(self, rec: OrderRecord) -> None:
        """Hold ``rec`` (replacing any record of the same client order id)."""
        self.orders[rec.client_order_id] = rec

    def changed_terminal(self, rec: OrderRecord, *, archive_current: bool = False) -> None:
        """``rec`` is terminal and changed (or was restored): it becomes the newest terminal order;
        ``archive_current``: its archive row already says what it holds."""
        cl_id = rec.client_order_id
        self.terminal.pop(cl_id, None)
        self.terminal[cl_id] = archive_current

    def archive_current(self, client_order_id: str) -> bool:
        """True when the order's archive row is current (nothing to write before it leaves)."""
        return self.terminal.get(client_order_id, False)

    def archive_due(self, *, batch: int, everything: bool = False) -> list[OrderRecord]:
        """The oldest terminal orders beyond ``keep_terminal``, once a batch of them is due
        (``batch`` orders, or a quarter of ``keep_terminal`` when that is fewer), or all of them
        (``everything``, at restore)."""
        excess = len(self.terminal) - self.keep_terminal
        if excess <= 0 or (excess < min(batch, self.keep_terminal // 4 + 1) and not everything):
            return []
        due = []
        for cl_id in self.terminal:
            rec = self.orders.get(cl_id)
            if rec is not None:
                due.append(rec)
            if len(due) >= excess:
                break
        return due

    def retire(self, rec: OrderRecord, book: str) -> None:
        """``rec`` is archived: it leaves memory; its count and fills (in account book ``book``) stay in the totals."""
        cl_id = rec.client_order_id
        self.terminal.pop(cl_id, None)
        if self.orders.get(cl_id) is rec:
            del self.orders[cl_id]
        self.archived += 1
        self.retired_by_status[rec.status.value] += 1
        self.retired_fills += len(rec.fills)
        if rec.fills:
            self.retired.add(book, rec.symbol, rec.side, rec.fills)

    def bring_back(self, rec: OrderRecord, book: str) -> None:
        """An archived order read back (a late fact about it): in memory again, out of the totals;
        its archive row is current until it changes."""
        self.archived -= 1
        self.retired_by_status[rec.status.value] -= 1
        self.retired_fills -= len(rec.fills)
        if rec.fills:
            self.retired.add(book, rec.symbol, rec.side, rec.fills, sign=-1)
        self.orders[rec.client_order_id] = rec
        self.terminal[rec.client_order_id] = True

    def total(self) -> int:
        """Orders in memory plus archived ones."""
        return len(self.orders) + self.archived


__all__ = ["OrderTable"]
