"""Shared fixtures and helpers for the runtime-level tests.

- ``settings_factory(durable=False, **overrides)``: ``load_settings("test", ...)`` with
  ``state_dir`` in a fresh ``tmp_path`` subdirectory; ``durable=True`` writes real SQLite
  files there.
- ``make_runtime(settings=None, *, registry=None, clock=None, seed=0, **overrides)``: starts a
  runtime and always stops it at teardown.
- ``registry_of(*adapters)``: an ``AdapterRegistry`` that hands out the given adapter objects.
- ``ObservableClock``: a ``FakeClock`` that lets a test wait until an actor has scheduled a
  timer (so ``advance`` is only called once the timer exists: no races, no sleeps).
- ``EventLog``: a subscriber that records events and waits for conditions on them.
- ``wait_until(cond)``: a bounded poll of a condition (never a timed assertion).
- An autouse guard that fails a test when any reply future was resolved twice.
"""

from __future__ import annotations

import os

from hypothesis import settings as _hypothesis_settings

# Property-test profiles, chosen by HYPOTHESIS_PROFILE (no per-example deadline anywhere:
# CI machines are slower and noisier than a developer's):
# - "ci": derandomized, the same examples every run (.ci/run sets it: a CI failure is reproducible);
# - "dev" (the default): a fresh random search every run, so local runs keep finding new examples;
#   a failure prints the example's blob to replay it (@reproduce_failure);
# - "nightly": randomized, 1,000 examples for the tests that set no count of their own.
_hypothesis_settings.register_profile("ci", deadline=None, print_blob=True, database=None)
_hypothesis_settings.register_profile("dev", deadline=None, print_blob=True)
_hypothesis_settings.register_profile("nightly", deadline=None, print_blob=True, max_examples=1000)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

import itertools
import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from actors import AdapterRegistry, FakeClock, Runtime
from actors.kernel import interrupts
from actors.observability.logs import enable_logging
from config import load_settings
from protocols import Event, ExecutionContext, OrderIntent, Quote

# The suite is a host that opts in to flowroute's log records (the packages are silent by
# default): guards such as ``no_double_resolution`` below read them.
enable_logging()

SYM = "BTC/USDT"
BID = Decimal("39432.99")
ASK = Decimal("39433.62")
PRICE = Decimal("39433.62")  # a LIMIT price on the tick with notional 0.001 * PRICE = 39.43 > 5
QTY = Decimal("0.001")

_ids = itertools.count(1)


def uid(prefix: str = "t") -> str:
    """A client order id unique within the test session."""
    return f"{prefix}-{next(_ids)}"


def quote(bid: Decimal | str = BID, ask: Decimal | str = ASK, size: str = "1000", ts: str = "2021-01-08T00:00:01Z",
          symbol: str = SYM) -> Quote:
    return Quote(ts=ts, symbol=symbol, bid=Decimal(bid), bid_size=Decimal(size), ask=Decimal(ask), ask_size=Decimal(size))


def limit(cl: str | None = None, *, side: str = "BUY", qty: Decimal | str = QTY, price: Decimal | str = PRICE,
          tif: str = "GTC", symbol: str = SYM) -> OrderIntent:
    return OrderIntent(client_order_id=cl or uid("lim"), symbol=symbol, side=side, order_type="LIMIT",
                       quantity=Decimal(qty), limit_price=Decimal(price), time_in_force=tif)


def market(cl: str | None = None, *, side: str = "BUY", qty: Decimal | str = QTY, symbol: str = SYM) -> OrderIntent:
    return OrderIntent(client_order_id=cl or uid("mkt"), symbol=symbol, side=side, order_type="MARKET",
                       quantity=Decimal(qty))


def ctx(mode: str = "paper", account: str = "acc-1") -> ExecutionContext:
    return ExecutionContext(mode=mode, account_id=account)


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns a truthy value (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        pause.wait(0.002)


class ObservableClock(FakeClock):
    """A ``FakeClock`` that records every ``call_later`` so tests can wait for a timer to exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scheduled: list[tuple[float, Any]] = []  # (delay_s, handle)
        self._obs = threading.Condition()

    def call_later(self, delay_s: float, callback: Callable[[], None]):
        handle = super().call_later(delay_s, callback)
        with self._obs:
            self._scheduled.append((delay_s, handle))
            self._obs.notify_all()
        return handle

    def live_timers(self, match: Callable[[float], bool] = lambda d: True) -> int:
        """Timers not yet fired or cancelled whose delay satisfies ``match``."""
        with self._lock:
            waiting = {id(h) for _, _, h in self._heap if not h.cancelled}
        with self._obs:
            return sum(1 for delay, h in self._scheduled if id(h) in waiting and match(delay))

    def wait_timer(self, match: Callable[[float], bool], count: int = 1, timeout: float = 10.0, what: str = "timer") -> None:
        """Wait until ``count`` live timers whose delay satisfies ``match`` are scheduled."""
        wait_until(lambda: self.live_timers(match) >= count, timeout, what)


class EventLog:
    """A subscriber callback that records every event it gets (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def names(self, client_order_id: str | None = None) -> list[str]:
        return [e.name for e in self.snapshot()
                if client_order_id is None or getattr(e, "client_order_id", None) == client_order_id]

    def of(self, cls: type) -> list[Event]:
        return [e for e in self.snapshot() if isinstance(e, cls)]

    def wait_for(self, pred: Callable[[list[Event]], Any], timeout: float = 10.0, what: str = "events") -> Any:
        return wait_until(lambda: pred(self.snapshot()), timeout, what)


def registry_of(*adapters: Any) -> AdapterRegistry:
    """An ``AdapterRegistry`` whose builders return the given (already built) adapters."""
    registry = AdapterRegistry()
    for adapter in adapters:
        registry.register(adapter.adapter_id, lambda settings, a=adapter: a)
    return registry


@pytest.fixture
def settings_factory(tmp_path: Path):
    """``make(durable=False, **overrides)`` → test-profile ``Settings`` with a fresh state dir."""
    counter = itertools.count(1)

    def make(durable: bool = False, **overrides: Any):
        overrides.setdefault("state_dir", tmp_path / f"state{next(counter)}")
        journal = dict(overrides.pop("journal", {}))
        journal.setdefault("enabled", durable)
        return load_settings("test", journal=journal, **overrides)

    return make


@pytest.fixture
def make_runtime(settings_factory):
    """``make(settings=None, *, registry=None, clock=None, seed=0, durable=False, hooks=None,
    **overrides)``; every runtime it starts is stopped at teardown."""
    started: list[Runtime] = []

    def make(settings: Any = None, *, registry: AdapterRegistry | None = None, clock: Any = None, seed: int = 0,
             durable: bool = False, hooks: Any = None, **overrides: Any) -> Runtime:
        if settings is None:
            settings = settings_factory(durable=durable, **overrides)
        rt = Runtime.start(settings, registry=registry, clock=clock, seed=seed, hooks=hooks)
        started.append(rt)
        return rt

    yield make
    for rt in reversed(started):
        rt.stop(timeout=5.0)


@pytest.fixture
def main_thread_may_help():
    """As ``Runtime.start`` does: Ctrl-C deferred, so the main thread (pytest's) helps and reads
    for its orders. Under a launcher that starts the tests with SIGINT ignored (a background job of
    a shell without job control), Python installs no handler of its own: the fixture puts Python's
    in place first, as a terminal has it, and the ignored state back after."""
    inherited = signal.getsignal(signal.SIGINT)
    if inherited is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    release = interrupts.hold()
    yield
    release()
    if inherited is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def no_double_resolution():
    """Fail the test if any runtime stage resolved a reply future twice (logged by ``resolve``)."""
    seen: list[str] = []
    sink_id = logger.add(lambda m: seen.append(str(m)), level="ERROR",
                         filter=lambda r: "resolved twice" in r["message"])
    yield seen
    logger.remove(sink_id)
    assert not seen, f"reply futures resolved twice: {seen[:3]}"


def settle(rt: Runtime) -> None:
    """A barrier across every actor of ``rt``, the supervisor and adapter actors included:
    everything told to any of them before this call has been processed when it returns
    (``Runtime.flush(venue_calls=False)``: a call held inside a venue is not waited for; tests
    that hold one on purpose settle around it)."""
    rt.flush(timeout=5, venue_calls=False)


def child(rt: Runtime, name: str):
    """The ``ChildHealth`` of supervised child ``name``."""
    return next(c for c in rt.health().children if c.name == name)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the whole session (``tests/_pgcluster.py``): initdb +
    pg_ctl in a temp dir, unix socket only; stopped and removed at the end."""
    from _pgcluster import PgCluster

    cluster = PgCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """The URL of a fresh, empty database in the session's cluster (one per test)."""
    return pg_cluster.create_database()
