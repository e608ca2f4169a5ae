"""``run.py stress``'s CPU per operation by thread (flowroute/cli/stress.py ``thread_cpu_s``,
``cpu_by_thread``): the JSON's ``cpu_us_per_op_by_thread``, where the process total goes."""

from __future__ import annotations

import threading
import time

import pytest

from flowroute.cli.stress import cpu_by_thread, thread_cpu_s


def test_cpu_by_thread_per_operation_by_name_largest_first() -> None:
    before = {1: ("dispatcher-rt1-ledger", 1.0), 2: ("venue-paper-g1", 0.5), 3: ("stress-sender-0", 0.0),
              4: ("dispatcher-rt1-adapter", 0.2), 5: ("flowroute-1-timers", 0.0)}
    after = {1: ("dispatcher-rt1-ledger", 2.5), 2: ("venue-paper-g1", 1.0), 3: ("stress-sender-0", 9.0),
             4: ("dispatcher-rt1-adapter", 0.3),  # its first thread, before the adapter restarted
             6: ("dispatcher-rt1-adapter", 0.4),  # the restarted adapter's thread: started inside the window
             7: ("dispatcher-rt1-store", 0.25),  # a thread id reused by another thread: all of it counts
             5: ("flowroute-1-timers", 0.001)}
    got = cpu_by_thread(before, after, senders_cpu_s=2.0, ops=10_000)
    assert got == {"stress-senders": 200.0, "dispatcher-rt1-ledger": 150.0, "venue-paper-g1": 50.0,
                   "dispatcher-rt1-adapter": 50.0, "dispatcher-rt1-store": 25.0, "other": 0.1}
    assert list(got) == ["stress-senders", "dispatcher-rt1-ledger", "venue-paper-g1", "dispatcher-rt1-adapter",
                         "dispatcher-rt1-store", "other"]
    assert cpu_by_thread(before, after, senders_cpu_s=2.0, ops=0) == {}


def test_thread_cpu_s_names_this_process_threads() -> None:
    sample = thread_cpu_s()
    if not sample:
        pytest.skip("no /proc/self/task here")
    stop = threading.Event()

    def spin() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        stop.wait(5)

    worker = threading.Thread(target=spin, name="cpu-test-spinner")
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seen = {name: cpu for name, cpu in thread_cpu_s().values()}
            if seen.get("cpu-test-spinner", 0) > 0:
                break
            time.sleep(0.01)
        assert seen.get("cpu-test-spinner", 0) > 0, seen
        assert threading.main_thread().name in seen
    finally:
        stop.set()
        worker.join()
