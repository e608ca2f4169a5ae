"""``run.py stress`` keeps each operation's outcome for its final checks as an ``Answered`` once the
sender saw it done, in place of the future (whose lock, condition and callback list the garbage
collector would walk for the whole run): it answers every call the checks make as the future did."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from flowroute.cli.stress import Answered


def _done(result: object = None, exc: BaseException | None = None) -> Future:
    future: Future = Future()
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)
    return future


def test_an_answer_is_what_its_future_said() -> None:
    report = object()
    future = _done(report)
    answered = Answered.of(future)
    assert type(answered) is Answered
    for f in (future, answered):
        assert f.done() and not f.cancelled()
        assert f.result() is report and f.result(timeout=0.01) is report
        assert f.exception() is None
    seen: list[object] = []
    answered.add_done_callback(seen.append)  # a done future calls back at once, with itself
    assert seen == [answered]
    assert Answered.of(answered) is answered


def test_a_failed_answer_raises_what_its_future_raised() -> None:
    error = TimeoutError("no answer")
    future = _done(exc=error)
    answered = Answered.of(future)
    for f in (future, answered):
        assert f.done() and f.exception() is error
        with pytest.raises(TimeoutError) as caught:
            f.result()
        assert caught.value is error


def test_a_future_not_done_or_cancelled_stays_itself() -> None:
    pending: Future = Future()
    assert Answered.of(pending) is pending
    cancelled: Future = Future()
    cancelled.cancel()
    assert Answered.of(cancelled) is cancelled
