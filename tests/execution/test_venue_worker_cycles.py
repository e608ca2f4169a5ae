"""A venue call that raises leaves no reference cycle behind (actors/execution/adapter.py
``VenueWorker._run``; docs/DESIGN.md "The garbage collector"): its outcome, exception and
traceback are freed by reference counting once the outcome is handled, never left for the
garbage collector (with the group's calls in them)."""

from __future__ import annotations

import gc
import weakref

import pytest

from actors.execution.adapter import VenueWorker


class _Payload:
    """Something only the raised exception holds."""


@pytest.mark.parametrize("grouped", [False, True], ids=["single", "grouped"])
def test_a_venue_call_that_raises_is_freed_without_the_collector(grouped: bool) -> None:
    seen: list = []
    refs: list[weakref.ref] = []

    def payload() -> _Payload:
        p = _Payload()
        refs.append(weakref.ref(p))
        return p

    def reject() -> None:
        raise RuntimeError("order is already FILLED", payload())  # as a venue raises: no local holds it

    was_enabled = gc.isenabled()
    gc.disable()  # only reference counting frees anything below
    try:
        worker = VenueWorker("venue-test", seen.append, group=(lambda: None, lambda: None) if grouped else None)
        try:
            worker.submit(1, reject)
            worker.submit(2, lambda: "ok")
            worker.barrier().result(timeout=5)
            assert [type(m.error) for m in seen] == [RuntimeError, type(None)] and refs[0]() is not None
            seen.clear()
            assert refs[0]() is None, "the failed call's exception is kept alive by a reference cycle"
        finally:
            worker.retire()
    finally:
        if was_enabled:
            gc.enable()
