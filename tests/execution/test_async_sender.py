"""A blocking adapter that can send without waiting (``capabilities.sends_async``): the adapter
actor writes the request itself and the adapter hands the outcome back from its own thread,
with no hop to the worker thread and back (protocols.AsyncSender, benchmarks/README.md)."""

from __future__ import annotations

import threading

from _adapters import TestAdapter
from conftest import ctx, limit, registry_of, wait_until

from actors import FakeClock
from protocols import AdapterCapabilities, ErrorCode, OrderStatus


class AsyncVenue(TestAdapter):
    """A ``TestAdapter`` with the non-blocking half: ``send_order`` answers from a thread of its
    own (what ``submit_order`` would), unless ``offline`` (not sent: False), ``silent`` (never
    answers; ``answer_late`` answers afterwards) or ``at_once`` (answers before ``send_order``
    returns, from the sending thread)."""

    __test__ = False

    def __init__(self, **kwargs) -> None:
        super().__init__(capabilities=AdapterCapabilities(blocking=True, lookup_covers_closed=True, absence_window_s=0,
                                                          sends_async=True), **kwargs)
        self.offline = False
        self.silent = False
        self.at_once = False  # answers inside send_order, before it returns
        self.sent_on: list[str] = []
        self.blocking_on: list[str] = []
        self.cancels_sent: list[str] = []
        self._late: list = []

    def submit_order(self, order):
        self.blocking_on.append(threading.current_thread().name)
        return super().submit_order(order)

    def send_order(self, order, done) -> bool:
        if self.offline:
            return False
        self.sent_on.append(threading.current_thread().name)
        if self.silent:
            self._late.append((order, done))
            return True
        if self.at_once:
            self._answer(lambda: TestAdapter.submit_order(self, order), done)
            return True
        threading.Thread(target=self._answer, args=(lambda: TestAdapter.submit_order(self, order), done)).start()
        return True

    def send_cancel(self, client_order_id, done) -> bool:
        self.cancels_sent.append(client_order_id)
        threading.Thread(target=self._answer, args=(lambda: self.cancel_order(client_order_id), done)).start()
        return True

    @staticmethod
    def _answer(call, done) -> None:
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - handed back as the blocking call would raise it
            done(None, exc)
        else:
            done(result, None)

    def answer_late(self) -> None:
        for order, done in self._late:
            self._answer(lambda order=order: TestAdapter.submit_order(self, order), done)


def test_orders_and_cancels_are_sent_from_the_actor_and_answered_without_the_worker(make_runtime) -> None:
    venue = AsyncVenue(default="fill")
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}})
    report = rt.submit(limit("as-1"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.FILLED and report.cum_qty == limit().quantity
    assert venue.blocking_on == [] and len(venue.sent_on) == 1
    assert not venue.sent_on[0].startswith("venue-")  # the worker threads' names
    venue.default = "accept"
    assert rt.submit(limit("as-2"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED
    canceled = rt.cancel("as-2").result(timeout=5)
    assert canceled.status is OrderStatus.CANCELED and venue.cancels_sent == ["as-2"] and venue.cancel_calls == ["as-2"]
    assert venue.blocking_on == []


def test_a_request_the_adapter_cannot_send_now_goes_to_the_worker(make_runtime) -> None:
    venue = AsyncVenue(default="fill")
    venue.offline = True
    rt = make_runtime(registry=registry_of(venue), routing={"policy": {"paper": "test"}})
    assert rt.submit(limit("as-off"), ctx()).result(timeout=5).status is OrderStatus.FILLED
    assert venue.sent_on == [] and len(venue.blocking_on) == 1 and venue.blocking_on[0].startswith("venue-test")
    assert venue.delivered["as-off"] == 1


def test_an_unanswered_send_times_out_unknown_without_restarting_the_actor(make_runtime) -> None:
    """No worker is stuck, so the attempt timeout leaves the order UNKNOWN (reconciled) and the
    actor keeps its generation; the answer that comes after the timeout is ignored."""
    clock = FakeClock()
    venue = AsyncVenue(default="accept")
    venue.silent = True
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}},
                      timeouts={"attempt_s": 0.5, "deadline_s": 5.0})
    future = rt.submit(limit("as-quiet"), ctx())
    wait_until(lambda: venue.sent_on, what="the order sent")
    clock.advance(0.6)
    report = future.result(timeout=5)
    assert report.status is OrderStatus.UNKNOWN and report.error.code is ErrorCode.E_EXEC_BROKER_TIMEOUT
    venue.answer_late()  # too late: reconciliation, not this answer, settles the order
    rt.flush()
    assert rt.order("as-quiet").status is OrderStatus.UNKNOWN
    (child,) = [c for c in rt.health().children if c.name == "test"]
    assert (child.generation, child.restarts) == (1, 0)
    for _ in range(50):
        clock.advance(1.0)
        rt.flush()
        if rt.order("as-quiet").status is OrderStatus.ACCEPTED:
            break
    assert rt.order("as-quiet").status is OrderStatus.ACCEPTED  # found by the lookup
    assert venue.submit_calls == ["as-quiet"] and venue.blocking_on == []  # sent once, never re-sent


def test_the_thread_answering_a_send_runs_the_outcome_itself_when_the_dispatcher_is_free(make_runtime) -> None:
    """The venue's reader thread hands the outcome to the adapter actor and helps its dispatcher
    (a few entries at most): the caller's future is resolved on that thread, with no wake-up of
    the dispatcher's order thread (actors/kernel/dispatcher.tell_then_help)."""
    clock = FakeClock()  # no timer fires: the dispatcher is idle once flushed
    venue = AsyncVenue(default="fill")
    venue.silent = True
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}})
    future = rt.submit(limit("as-reader"), ctx())
    wait_until(lambda: venue.sent_on, what="the order sent")
    rt.flush()
    resolved_on: list[str] = []
    future.add_done_callback(lambda f: resolved_on.append(threading.current_thread().name))
    reader = threading.Thread(target=venue.answer_late, name="venue-reader")
    reader.start()
    reader.join(10)
    assert future.done() and resolved_on == ["venue-reader"]  # answered before the reader went back
    assert future.result(timeout=0).status is OrderStatus.FILLED


def test_the_venue_worker_runs_a_calls_outcome_itself_when_the_dispatcher_is_free(make_runtime) -> None:
    """A blocking venue's call runs on the adapter's worker thread; the worker hands the outcome to
    the adapter actor and helps its dispatcher (a few entries at most), so the caller's future is
    resolved on the worker thread, with no wake-up of the dispatcher's order thread. Fails
    without it (resolved on the dispatcher's thread)."""
    clock = FakeClock()  # no timer fires: the dispatcher is idle once flushed
    venue = TestAdapter(script=[("block", "fill")])
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}})
    future = rt.submit(limit("vw-helps"), ctx())
    wait_until(lambda: venue.submit_calls, what="the call on the worker")
    rt.flush(venue_calls=False)
    resolved_on: list[str] = []
    future.add_done_callback(lambda f: resolved_on.append(threading.current_thread().name))
    venue.release()
    assert future.result(timeout=10).status is OrderStatus.FILLED
    assert resolved_on == ["venue-test-g1"]


def test_the_ledger_hears_the_send_before_the_outcome_and_an_answered_call_never_times_out(make_runtime) -> None:
    """The adapter tells the ledger that an order was sent, and arms the attempt timeout, after
    the request is written (off the order's critical path). Both still come before the call's
    outcome, also when the venue answers inside ``send_order`` itself: the order's trail reads
    SUBMITTING then FILLED, and the answered call's timeout never fires."""
    clock = FakeClock()
    venue = AsyncVenue(default="fill")
    venue.at_once = True
    rt = make_runtime(registry=registry_of(venue), clock=clock, routing={"policy": {"paper": "test"}},
                      timeouts={"attempt_s": 0.5, "deadline_s": 5.0})
    report = rt.submit(limit("as-now"), ctx()).result(timeout=5)
    assert report.status is OrderStatus.FILLED and venue.blocking_on == [] and len(venue.sent_on) == 1
    rt.flush()
    statuses = [r.data["to"] for r in rt.history("as-now") if r.kind == "transition"]
    assert statuses[-2:] == ["SUBMITTING", "FILLED"], statuses
    clock.advance(2.0)  # past the attempt timeout and the deadline
    rt.flush()
    assert rt.order("as-now").status is OrderStatus.FILLED and rt.order("as-now").attempts == 1
    statuses_after = [r.data["to"] for r in rt.history("as-now") if r.kind == "transition"]
    assert statuses_after == statuses
    # and a send that is not answered still times out, counted from before the write
    venue.at_once, venue.silent = False, True
    future = rt.submit(limit("as-never"), ctx())
    wait_until(lambda: len(venue.sent_on) == 2, what="the second order sent")
    rt.flush()
    clock.advance(0.6)
    assert future.result(timeout=5).status is OrderStatus.UNKNOWN
