"""The actor inbox (actors/kernel/inbox.py): FIFO, quiet puts, no lost wake-ups, pykka compatibility."""

from __future__ import annotations

import queue
import threading

import pykka
import pytest

from actors.kernel.base import FlowActor
from actors.kernel.inbox import Inbox, tell_quiet, wake


def test_fifo_across_quiet_and_normal_puts() -> None:
    inbox = Inbox()
    inbox.put_quiet(1)
    inbox.put(2)
    inbox.put_quiet(3)
    assert inbox.qsize() == 3 and not inbox.empty()
    assert [inbox.get(), inbox.get(), inbox.get()] == [1, 2, 3]
    assert inbox.empty()


def test_get_times_out_and_non_blocking_get_raises_empty() -> None:
    inbox = Inbox()
    with pytest.raises(queue.Empty):
        inbox.get(block=False)
    with pytest.raises(queue.Empty):
        inbox.get(timeout=0.01)
    inbox.wake()  # a ring with nothing queued: the next wait returns, finds nothing, waits again
    with pytest.raises(queue.Empty):
        inbox.get(timeout=0.01)


def test_quiet_put_waits_for_its_wake() -> None:
    inbox = Inbox()
    got: list = []
    consumer = threading.Thread(target=lambda: got.append(inbox.get(timeout=5)), daemon=True)
    consumer.start()
    inbox.put_quiet("quiet")
    consumer.join(timeout=0.05)
    assert consumer.is_alive() and got == []  # queued, not woken
    inbox.wake()
    consumer.join(timeout=5)
    assert got == ["quiet"]


def test_many_producers_one_consumer_lose_nothing() -> None:
    """8 producers × 5,000 items (mixed quiet puts + wakes and plain puts) against a consumer that
    blocks whenever the inbox runs dry: every item arrives once, each producer's items in order."""
    inbox = Inbox()
    n, producers = 5000, 8
    seen: dict[int, list[int]] = {p: [] for p in range(producers)}

    def produce(p: int) -> None:
        for i in range(n):
            if i % 3 == 0:
                inbox.put_quiet((p, i))
                inbox.wake()
            else:
                inbox.put((p, i))

    def consume() -> None:
        for _ in range(n * producers):
            p, i = inbox.get(timeout=10)
            seen[p].append(i)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(p,), daemon=True) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    consumer.join(timeout=30)
    assert not consumer.is_alive()
    assert all(seen[p] == list(range(n)) for p in range(producers))
    assert inbox.empty()


def _recorder(base: type) -> type:
    """An actor on ``base`` that records what it is told and answers "get" with the record."""

    class Recorder(base):  # type: ignore[misc,valid-type]
        use_daemon_thread = True

        def __init__(self) -> None:
            super().__init__()
            self.seen: list = []

        def on_receive(self, message):  # noqa: ANN001
            if message == "get":
                return list(self.seen)
            self.seen.append(message)
            return None

    return Recorder


def test_flow_actor_runs_quiet_tells_in_order_with_asks() -> None:
    ref = _recorder(FlowActor).start()
    try:
        assert isinstance(ref.actor_inbox, Inbox)
        assert tell_quiet(ref, "a")
        ref.tell("b")  # a normal tell wakes the actor: it runs "a" first
        tell_quiet(ref, "c")
        wake(ref)
        assert ref.ask("get", timeout=5) == ["a", "b", "c"]
    finally:
        ref.stop(timeout=5)
    assert tell_quiet(ref, "late") is False  # a dead actor: False, never an exception


def test_tell_quiet_falls_back_to_tell_for_a_plain_pykka_actor() -> None:
    ref = _recorder(pykka.ThreadingActor).start()
    try:
        assert tell_quiet(ref, "x")
        wake(ref)  # no-op for a queue.Queue inbox
        assert ref.ask("get", timeout=5) == ["x"]
    finally:
        ref.stop(timeout=5)
    assert tell_quiet(None, "x") is False


def test_a_lingering_consumer_takes_a_told_message_at_once() -> None:
    """An own-thread actor woken by ``wake`` lingers (so the answered caller runs first), but a
    message told meanwhile may be on an order's path: it ends the linger at once."""
    inbox = Inbox(linger_s=30.0)
    got: list = []

    def consume() -> None:
        got.append(inbox.get())
        got.append(inbox.get())

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    inbox.put_quiet("fact")
    inbox.wake()  # the consumer wakes and starts its 30 s linger
    threading.Event().wait(0.2)
    inbox.put("order")
    consumer.join(timeout=5)
    assert got == ["fact", "order"]


def test_own_thread_actors_linger_and_dispatched_ones_do_not_need_to() -> None:
    from actors.kernel.base import OWN_THREAD_LINGER_S

    class Own(FlowActor):
        pass

    ref = Own.start()
    try:
        inbox = ref.actor_inbox
        assert isinstance(inbox, Inbox) and inbox._linger_s == OWN_THREAD_LINGER_S > 0
    finally:
        ref.stop()
