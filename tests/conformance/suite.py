"""The adapter conformance suite: what every ``protocols.BrokerAdapter`` must do (README "Write an adapter").

Run it over your adapter by providing a ``harness`` fixture and importing the tests::

    # tests/test_my_adapter_conformance.py
    import pytest
    from conformance.suite import *  # noqa: F401,F403  (the test functions)
    from conformance.suite import Harness

    class MyHarness(Harness):
        name = "my_venue"
        def build(self): return MyVenue("my_venue")
        ...

    @pytest.fixture
    def harness(tmp_path):
        return MyHarness()

(``tests/`` is on ``sys.path`` under pytest, so the suite imports as ``conformance.suite``; the
runtime cases use the ``make_runtime`` fixture of ``tests/conftest.py``.)

The fixture interface, :class:`Harness` (subclass it; every member is documented there):

- ``name``: the adapter id the built adapters carry.
- ``fills``: whether the venue ever executes (a dry-run venue never does: fill cases skip).
- ``rebuild``: whether a restart gets a fresh instance (False when ``build`` returns the same one).
- ``build()``: a new adapter instance over the *same* venue state, as the registry's builder
  would give one for a restart (a durable venue reopens its book; an in-memory one may
  return the same instance).
- ``market()``: the ``Quote`` fed first (to the adapter and to the runtime).
- ``quantity``: the quantity of every order the suite sends (:data:`QTY` unless the venue
  cannot hold it, e.g. a whole-number venue).
- ``order(client_order_id, resting=...)``: a BTC/USDT LIMIT ``OrderIntent`` (quantity
  ``quantity``) that rests at the venue, or executes at once when the venue fills.
- ``fill_resting(adapter, client_order_id, feed)``: make a resting BUY of ``order`` fill at the
  venue; ``feed(data)`` delivers market data the way the caller does (straight to the
  adapter, or through ``Runtime.on_market``).

Cases (each adapter-only case uses the adapter directly; each runtime case runs it behind a
``Runtime`` with scripted faults around it):

========================  ================================================================
case                      what is checked
========================  ================================================================
capabilities              ``capabilities`` is an ``AdapterCapabilities`` (or absent)
submit / ack              the state of that order, ACCEPTED for a resting order
fill                      executions carry unique trade ids and sum to cum_qty; a resting
                          order's fill is pushed as a ``VenueEvent``
cancel                    CANCELED; a second cancel is ``VenueRejectedError``
lookup                    a known id is found; an unknown id is None (absence only as far
                          as the capabilities declare)
duplicate id              refused with ``DUPLICATE_CLIENT_ORDER_ID``, booked once
lost answer               the submit answer is lost after delivery: the runtime reconciles
                          it, never sends it twice
lagging lookup            "not found" for a while after the send: never re-sent, then found
mixed reporting           a cumulative-only answer then per-trade events: each unit booked once
cancel/fill race          a cancel of an order that filled at the venue: FILLED, once
crash                     the adapter crashes on a submit: restarted on a fresh instance,
                          nothing sent twice, the order settled
========================  ================================================================
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from conftest import wait_until

from actors import AdapterRegistry
from protocols import (
    DEFAULT_CAPABILITIES,
    DUPLICATE_CLIENT_ORDER_ID,
    AdapterCapabilities,
    AdapterCrash,
    AmbiguousError,
    BrokerAdapter,
    ExecutionContext,
    OrderIntent,
    OrderStatus,
    Quote,
    VenueEvent,
    VenueOrder,
    VenueRejectedError,
    adapter_capabilities,
)

SYMBOL = "BTC/USDT"
QTY = Decimal("0.001")
BID, ASK = Decimal("39432.99"), Decimal("39433.62")


class Harness:
    """How the suite drives one adapter (see the module docstring). Subclass and override."""

    #: the adapter id of every adapter ``build`` returns
    name: str = "venue"
    #: whether the venue ever executes an order (False: fill cases are skipped with a reason)
    fills: bool = True
    #: whether a restart gets a fresh instance (``AdapterRegistry.register(rebuild=...)``): False
    #: for an adapter whose state is the instance (``build`` returns the same one)
    rebuild: bool = True
    #: the quantity of every order the suite sends (base units)
    quantity: Decimal = QTY

    def build(self) -> BrokerAdapter:
        """A new adapter instance over the same venue state (what the registry builder returns)."""
        raise NotImplementedError

    def market(self) -> Quote:
        """The touch fed first: bid 39432.99 / ask 39433.62, size 1000."""
        return Quote(ts="2021-01-08T00:00:01Z", symbol=SYMBOL, bid=BID, bid_size=Decimal("1000"), ask=ASK,
                     ask_size=Decimal("1000"))

    def order(self, client_order_id: str, *, resting: bool) -> OrderIntent:
        """A BUY LIMIT of ``quantity``: at the ask (executes at once) or below the bid (rests)."""
        price = Decimal("39300.00") if resting else ASK
        return OrderIntent(client_order_id=client_order_id, symbol=SYMBOL, side="BUY", order_type="LIMIT",
                           quantity=self.quantity, limit_price=price)

    def fill_resting(self, adapter: Any, client_order_id: str, feed: Callable[[Any], None]) -> None:
        """Make the resting BUY ``client_order_id`` fill: by default a quote whose ask crosses it."""
        feed(Quote(ts="2021-01-08T00:00:05Z", symbol=SYMBOL, bid=Decimal("39200.00"), bid_size=Decimal("1000"),
                   ask=Decimal("39250.00"), ask_size=Decimal("1000")))


CTX = ExecutionContext(mode="paper", account_id="acc-1")


def _venue_order(harness: Harness, cl_id: str, *, resting: bool) -> VenueOrder:
    return VenueOrder.from_intent(harness.order(cl_id, resting=resting), CTX)


def _needs_fills(harness: Harness) -> None:
    if not harness.fills:
        pytest.skip(f"{harness.name} never fills an order")


@pytest.fixture
def venue(harness: Harness):
    """A fresh adapter with the market fed, closed after the test."""
    adapter = harness.build()
    events: list[VenueEvent] = []
    adapter.set_event_sink(events.append)
    adapter.on_market(harness.market())
    yield adapter, events
    try:
        adapter.close()
    except Exception:  # noqa: BLE001 - teardown: the test's verdict is already made
        pass


# ============================================================================ adapter only


def test_conformance_capabilities_are_declared(harness: Harness) -> None:
    adapter = harness.build()
    try:
        assert isinstance(adapter_capabilities(adapter), AdapterCapabilities)
        assert adapter.adapter_id == harness.name
    finally:
        adapter.close()


def test_conformance_submit_and_ack(harness: Harness, venue) -> None:
    adapter, _ = venue
    order = _venue_order(harness, "cf-ack", resting=True)
    state = adapter.submit_order(order)
    assert state.client_order_id == "cf-ack" and state.venue_order_id
    assert state.status is OrderStatus.ACCEPTED and state.cum_qty == 0 and state.quantity == harness.quantity


def test_conformance_fill(harness: Harness, venue) -> None:
    _needs_fills(harness)
    adapter, events = venue
    state = adapter.submit_order(_venue_order(harness, "cf-fill", resting=False))
    assert state.status is OrderStatus.FILLED and state.cum_qty == harness.quantity
    assert sum((f.qty for f in state.fills), Decimal(0)) == state.cum_qty
    resting = adapter.submit_order(_venue_order(harness, "cf-rest", resting=True))
    assert resting.status is OrderStatus.ACCEPTED
    harness.fill_resting(adapter, "cf-rest", adapter.on_market)
    wait_until(lambda: any(e.state.client_order_id == "cf-rest" and e.kind == "fill" for e in events), what="the pushed fill")
    pushed = [e for e in events if e.state.client_order_id == "cf-rest" and e.kind == "fill"][-1]
    assert pushed.state.status is OrderStatus.FILLED and pushed.state.cum_qty == harness.quantity
    ids = [f.trade_id for f in state.fills] + [f.trade_id for f in pushed.state.fills]
    assert len(ids) == len(set(ids)), "trade ids must be unique"


def test_conformance_cancel(harness: Harness, venue) -> None:
    adapter, _ = venue
    adapter.submit_order(_venue_order(harness, "cf-cxl", resting=True))
    state = adapter.cancel_order("cf-cxl")
    assert state.status is OrderStatus.CANCELED and state.client_order_id == "cf-cxl"
    with pytest.raises(VenueRejectedError):
        adapter.cancel_order("cf-cxl")


def test_conformance_lookup(harness: Harness, venue) -> None:
    adapter, _ = venue
    caps = adapter_capabilities(adapter)
    adapter.submit_order(_venue_order(harness, "cf-look", resting=True))
    if caps.supports_lookup:
        found = adapter.fetch_order("cf-look")
        assert found is not None and found.client_order_id == "cf-look" and found.status is OrderStatus.ACCEPTED
        assert adapter.fetch_order("cf-never-sent") is None
    assert any(s.client_order_id == "cf-look" for s in adapter.fetch_open_orders())


def test_conformance_duplicate_id(harness: Harness, venue) -> None:
    adapter, _ = venue
    order = _venue_order(harness, "cf-dup", resting=True)
    adapter.submit_order(order)
    with pytest.raises(VenueRejectedError) as err:
        adapter.submit_order(order)
    assert err.value.venue_code == DUPLICATE_CLIENT_ORDER_ID
    assert [s.client_order_id for s in adapter.fetch_open_orders()].count("cf-dup") == 1


# ============================================================================ behind a runtime


class _Scripted:
    """Wraps the adapter under test at the runtime's boundary and scripts what real venues do:
    lose the first submit answer after delivery, answer lookups "not found" for a while, strip
    trades from the submit answer, crash on the first submit. Everything else goes through."""

    def __init__(self, inner: Any, *, lose_answer: bool = False, lag_lookups: int = 0, cum_only: bool = False,
                 crash_first: bool = False, capabilities: AdapterCapabilities | None = None, shared: dict | None = None):
        self._inner = inner
        self._shared = shared if shared is not None else {}
        self._lose, self._lag, self._cum_only, self._crash = lose_answer, lag_lookups, cum_only, crash_first
        self._caps = capabilities
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def adapter_id(self) -> str:
        return self._inner.adapter_id

    @property
    def capabilities(self) -> AdapterCapabilities:
        caps = self._caps or adapter_capabilities(self._inner)
        return caps if caps.blocking else caps.model_copy(update={"blocking": True})

    def _once(self, key: str) -> bool:
        with self._lock:
            if self._shared.get(key):
                return False
            self._shared[key] = True
            return True

    def submit_order(self, order: VenueOrder):
        self._shared.setdefault("submits", []).append(order.client_order_id)
        if self._crash and self._once("crashed"):
            raise AdapterCrash("conformance: crash before sending")
        state = self._inner.submit_order(order)
        if self._lose and self._once("lost"):
            raise AmbiguousError("conformance: answer lost after delivery")
        if self._cum_only and state.fills:
            return state.model_copy(update={"fills": ()})
        return state

    def send_order(self, order: VenueOrder, done) -> bool:
        """The same script on the non-blocking path (``capabilities.sends_async``)."""
        submits = self._shared.setdefault("submits", [])
        submits.append(order.client_order_id)
        if self._crash and self._once("crashed"):
            raise AdapterCrash("conformance: crash before sending")

        def scripted(result, error) -> None:
            if error is None and self._lose and self._once("lost"):
                result, error = None, AmbiguousError("conformance: answer lost after delivery")
            elif error is None and self._cum_only and result.fills:
                result = result.model_copy(update={"fills": ()})
            done(result, error)

        taken = self._inner.send_order(order, scripted)
        if not taken:  # nothing sent: the runtime makes the blocking call (counted there)
            submits.remove(order.client_order_id)
        return taken

    def fetch_order(self, client_order_id: str):
        with self._lock:
            n = self._shared.get("lookups", 0)
            self._shared["lookups"] = n + 1
        if n < self._lag:
            return None
        return self._inner.fetch_order(client_order_id)

    def set_event_sink(self, sink) -> None:
        self._sink = sink
        self._inner.set_event_sink(sink)

    def emit(self, event: VenueEvent) -> None:
        """Push ``event`` to the runtime's sink, as the venue's stream would."""
        self._sink(event)

    def on_market(self, data) -> None:
        self._inner.on_market(data)

    def close(self) -> None:
        self._inner.close()


def _runtime(make_runtime, harness: Harness, **script):
    shared: dict = {}
    registry = AdapterRegistry()
    registry.register(harness.name, lambda settings: _Scripted(harness.build(), shared=shared, **script),
                      rebuild=harness.rebuild)
    rt = make_runtime(registry=registry, routing={"policy": {"paper": harness.name}},
                      reconcile={"interval_s": 0.05, "quiet_threshold_s": 0.2, "max_attempts": 1000, "backoff_cap_s": 0.2})
    rt.on_market(harness.market())
    return rt, shared


def test_conformance_lost_answer_is_reconciled_never_sent_twice(harness: Harness, make_runtime) -> None:
    rt, shared = _runtime(make_runtime, harness, lose_answer=True)
    first = rt.submit(harness.order("cf-lost", resting=True), CTX).result(timeout=10)
    assert first.status is OrderStatus.UNKNOWN
    wait_until(lambda: rt.order("cf-lost").status is OrderStatus.ACCEPTED, what="reconciled from the venue")
    assert shared["submits"] == ["cf-lost"]


def test_conformance_lagging_lookup_is_never_taken_as_absence(harness: Harness, make_runtime) -> None:
    rt, shared = _runtime(make_runtime, harness, lose_answer=True, lag_lookups=3, capabilities=DEFAULT_CAPABILITIES)
    assert rt.submit(harness.order("cf-lag", resting=True), CTX).result(timeout=10).status is OrderStatus.UNKNOWN
    wait_until(lambda: rt.order("cf-lag").status is OrderStatus.ACCEPTED, what="found once the lookup caught up")
    assert shared["lookups"] >= 4 and shared["submits"] == ["cf-lag"]


def test_conformance_mixed_reporting_books_each_unit_once(harness: Harness, make_runtime) -> None:
    _needs_fills(harness)
    rt, _ = _runtime(make_runtime, harness, cum_only=True)
    report = rt.submit(harness.order("cf-mix", resting=False), CTX).result(timeout=10)
    assert report.status is OrderStatus.FILLED and report.cum_qty == harness.quantity
    # the reply lists what the books booked of the cumulative answer: one synthetic fill (one fill rule)
    assert [f.trade_id.startswith("cum:") for f in report.fills] == [True] and report.fills[0].qty == harness.quantity
    wrapper = rt.venue(harness.name)
    venue_state = wrapper.fetch_order("cf-mix")  # the trades the answer did not carry ...
    for fill in venue_state.fills:  # ... now arrive on the venue's event stream, one by one
        wrapper.emit(VenueEvent(adapter_id=harness.name, kind="fill", state=venue_state, fill=fill))
    rt.flush()
    order = rt.order("cf-mix")
    assert order.cum_qty == harness.quantity and sorted(f.trade_id for f in order.fills) == sorted(f.trade_id for f in venue_state.fills)
    assert {p.account_id: p.net_qty for p in rt.positions()} == {"acc-1": harness.quantity}
    assert rt.stats()["book_invariants"] == []


def test_conformance_cancel_fill_race(harness: Harness, make_runtime) -> None:
    _needs_fills(harness)
    rt, _ = _runtime(make_runtime, harness)
    assert rt.submit(harness.order("cf-race", resting=True), CTX).result(timeout=10).status is OrderStatus.ACCEPTED
    harness.fill_resting(rt.venue(harness.name), "cf-race", rt.on_market)  # fills at the venue ...
    report = rt.cancel("cf-race").result(timeout=10)  # ... while the cancel is on its way
    wait_until(lambda: rt.order("cf-race").status is OrderStatus.FILLED, what="FILLED wins the race")
    rt.flush()
    assert rt.order("cf-race").cum_qty == harness.quantity and report.client_order_id == "cf-race"
    assert {p.account_id: p.net_qty for p in rt.positions()} == {"acc-1": harness.quantity}


def test_conformance_crash_restarts_on_a_fresh_instance_and_settles(harness: Harness, make_runtime) -> None:
    rt, shared = _runtime(make_runtime, harness, crash_first=True)
    first = rt.submit(harness.order("cf-crash", resting=True), CTX).result(timeout=10)
    assert first.status is OrderStatus.UNKNOWN
    wait_until(lambda: any(c.name == harness.name and c.generation >= 2 and c.state == "running" for c in rt.health().children),
               what="the adapter restarted")
    caps = adapter_capabilities(rt.venue(harness.name))
    if caps.lookup_covers_closed and caps.supports_lookup:  # absence provable: re-sent once, same id
        wait_until(lambda: rt.order("cf-crash").status is OrderStatus.ACCEPTED, what="re-sent after proof of absence")
        assert shared["submits"] == ["cf-crash", "cf-crash"]
    else:  # never proven absent: it stays in doubt, never re-sent
        rt.flush()
        assert rt.order("cf-crash").status is OrderStatus.UNKNOWN and shared["submits"] == ["cf-crash"]
