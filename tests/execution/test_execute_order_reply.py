"""A lone order's breaker → adapter hop (``ExecuteOrder``) follows its reply future like every
stage before it (actors/execution/messages.py ``ExecuteOrder.replies``; docs/DESIGN.md "Threads",
"The waiting thread helps"): the dispatcher marks the future queued with it, so the caller waiting
for the order runs the adapter's handler itself, and a stage the caller runs queues it there
without ringing the dispatcher's thread (woken, that thread only contends for the GIL and the CPU
on the order's path: the FIX venue's send runs in this handler).

Nothing depends on timing: a parked dispatcher thread makes "the caller ran it" certain; waits have
timeouts.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ctx, limit
from kernel.test_helping import ParkedDispatcher

import actors.kernel.dispatcher as dispatcher_mod
from actors.execution.messages import ExecuteOrder, ExecuteOrders, new_execute_order
from actors.kernel.base import FlowActor, ReplyFuture, tell
from actors.orders.messages import SubmitOrder

pytestmark = pytest.mark.usefixtures("main_thread_may_help")  # as Runtime.start: the main thread helps


@dataclass(frozen=True)
class Permit:
    """The breaker's step, reduced: tell the adapter ``ExecuteOrder(order)``."""

    order: SubmitOrder
    adapter: Any

    @property
    def reply(self) -> Any:
        return self.order.reply


class Breaker(FlowActor):
    def handle_Permit(self, message: Permit) -> None:
        tell(message.adapter, new_execute_order(message.order))


class Adapter(FlowActor):
    """Answers each order with the name of the thread that ran its ``ExecuteOrder``."""

    def handle_ExecuteOrder(self, message: ExecuteOrder) -> None:
        message.order.reply.set_result(threading.current_thread().name)


def _order(cl: str) -> SubmitOrder:
    return SubmitOrder(limit(cl), ctx(), ReplyFuture(), time.perf_counter_ns())


def test_a_lone_execute_order_marks_its_reply_queued_so_the_waiting_caller_runs_it() -> None:
    """Fails without ``ExecuteOrder.replies``: the future is not marked queued, the caller only waits,
    and the parked dispatcher's thread never runs the order (TimeoutError)."""
    d = ParkedDispatcher("exec-follow")
    try:
        adapter = Adapter.start(child_name="adapter", dispatcher=d)
        order = _order("eo-follow")
        tell(adapter, new_execute_order(order))
        assert order.reply.queued_on is d
        assert order.reply.result(timeout=5) == threading.current_thread().name
    finally:
        d.close()


def test_a_breaker_run_by_the_waiting_caller_queues_the_execute_order_without_ringing(monkeypatch) -> None:
    """The caller runs the breaker's step, which tells the adapter on the same dispatcher: no ring of
    the dispatcher's thread for that hop (the caller runs it next). Fails without
    ``ExecuteOrder.replies``: that tell rings the order thread."""
    d = ParkedDispatcher("exec-unrung")
    try:
        adapter = Adapter.start(child_name="adapter", dispatcher=d)
        breaker = Breaker.start(child_name="breaker", dispatcher=d)
        order = _order("eo-unrung")
        tell(breaker, Permit(order, adapter))  # the caller's first tell rings, as Runtime.submit's does
        rung: list[Any] = []
        real_ring = dispatcher_mod.ring
        monkeypatch.setattr(dispatcher_mod, "ring", lambda bell: (rung.append(bell), real_ring(bell)))
        assert order.reply.result(timeout=5) == threading.current_thread().name
        assert [bell for bell in rung if bell is d._bell] == []
    finally:
        d.close()


def test_execute_order_names_its_one_order_as_a_group_names_its_orders() -> None:
    """A message with ``replies`` has ``orders`` (the supervisor answers a given-up child's kept
    messages by them); one order, one reply, as in ``ExecuteOrders``."""
    order = _order("eo-shape")
    lone = ExecuteOrder(order)
    assert lone.orders == (order,) and list(lone.replies) == [order.reply]
    group = ExecuteOrders((order, _order("eo-shape-2")))
    assert list(group.replies) == [o.reply for o in group.orders]
    with pytest.raises(FutureTimeout):
        order.reply.result(timeout=0)  # nothing queued it anywhere: no help, just the timeout
