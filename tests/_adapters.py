"""Scripted venue adapters for runtime-level tests (not collected by pytest).

:class:`TestAdapter` implements ``protocols.BrokerAdapter`` with a script: each
``submit_order`` call takes the next action from ``script`` (then ``default``), so a test
says exactly what the venue does on each attempt. It keeps its own book (what it really
received), counts every call and every *delivery* (an order that reached its book), can
block a call until the test releases it, can crash (``AdapterCrash``) or fail ``start()``,
and can run a hook at the start of each submit (e.g. to read the journal file from the
venue's side).

Actions (strings, or ``("block", then)`` tuples):

====================  ==============================================================  =========
action                what the caller sees                                            delivered
====================  ==============================================================  =========
``fill``              FILLED at the limit price (or ``price``), one fill              yes
``accept``            ACCEPTED, resting (no fill)                                     yes
``partial``           PARTIALLY_FILLED: half the quantity filled, the rest resting    yes
``partial_cum``       as ``partial``, the answer with cum_qty/avg_px but no trades    yes
``not_delivered``     ``NotDeliveredError``                                           no
``ambiguous``         ``AmbiguousError`` (the request never reached the book)         no
``ambiguous_sent``    ``AmbiguousError`` after booking the order as ``default`` would yes
``reject``            ``VenueRejectedError``                                          no
``fatal``             ``FatalAdapterError``                                           no
``crash``             ``AdapterCrash`` (a BaseException) before any delivery          no
``raise``             ``RuntimeError`` (an unclassified bug in the adapter)           no
``("block", then)``   blocks until :meth:`TestAdapter.release` (or ``close``), then   per then
                      does ``then``; a ``close`` makes it ``ambiguous`` instead
====================  ==============================================================  =========
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from protocols import (
    AdapterCapabilities,
    AdapterCrash,
    AmbiguousError,
    EventSink,
    FatalAdapterError,
    Fill,
    Liquidity,
    NotDeliveredError,
    OrderStatus,
    Quote,
    Trade,
    VenueEvent,
    VenueOrder,
    VenueOrderState,
    VenueRejectedError,
)

Action = str | tuple

DEFAULT_PRICE = Decimal("100")
#: what the scripted venue's book really is: every order it ever booked, visible at once
BOOK_CAPABILITIES = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=0)


class TestAdapter:
    """A scripted ``BrokerAdapter`` (see the module docstring for the actions).

    ``TestAdapter(adapter_id="test", *, script=(), default="fill", fetch_script=(),
    start_failures=0, price=Decimal("100"), block_timeout_s=30.0)``.

    ``start_failures``: how many ``start()`` calls raise ``RuntimeError`` (``-1`` = always).
    ``fetch_script``: answers of successive ``fetch_order`` calls (a ``VenueOrderState``,
    ``None``, an exception instance to raise, or ``"book"`` for the book's answer); after it
    runs out, ``fetch_order`` answers from the book.

    ``capabilities`` (default: blocking, lookup covers every order it ever booked, window 0,
    which is true of its book) is what it declares. ``lookup_lag_s`` with a ``clock``: the book
    answers None for an order until ``lookup_lag_s`` clock seconds after it booked it, as
    real order queries lag behind the order entry (declare ``capabilities`` to match).
    :meth:`fill` fills a booked order at the venue and pushes the ``VenueEvent`` to the sink.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        adapter_id: str = "test",
        *,
        script: Iterable[Action] = (),
        default: Action = "fill",
        fetch_script: Iterable[Any] = (),
        start_failures: int = 0,
        price: Decimal = DEFAULT_PRICE,
        block_timeout_s: float = 30.0,
        capabilities: AdapterCapabilities = BOOK_CAPABILITIES,
        lookup_lag_s: float = 0.0,
        clock: Any = None,
    ) -> None:
        self.adapter_id = adapter_id
        self.capabilities = capabilities
        self.lookup_lag_s = lookup_lag_s
        self._clock = clock
        self._booked_at: dict[str, float] = {}
        self.default = default
        self.price = price
        self.block_timeout_s = block_timeout_s
        self._script = list(script)
        self._fetch_script = list(fetch_script)
        self._start_failures = start_failures
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._release = threading.Event()
        self._closed = False
        self._sink: EventSink | None = None
        self._book: dict[str, VenueOrderState] = {}
        self._trade_ids = itertools.count(1)
        self._order_ids = itertools.count(1)
        self.submit_calls: list[str] = []
        self.delivered: Counter[str] = Counter()
        self.fetch_calls: list[str] = []
        self.cancel_calls: list[str] = []
        self.start_calls = 0
        self.blocked_now = 0
        self.entered = 0
        self.on_submit: Callable[[VenueOrder], None] | None = None
        self.hook_errors: list[BaseException] = []

    # ------------------------------------------------------------------ scripting
    def push(self, *actions: Action) -> None:
        """Append actions to the submit script."""
        with self._lock:
            self._script.extend(actions)

    def push_fetch(self, *answers: Any) -> None:
        """Append answers to the fetch script."""
        with self._lock:
            self._fetch_script.extend(answers)

    def release(self) -> None:
        """Let every blocked call (and later ``block`` actions) go on."""
        self._release.set()

    def release_hangs(self) -> None:
        """Called by ``Runtime.stop``: same as :meth:`release`."""
        self._release.set()

    def wait_entered(self, n: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``submit_order`` has been entered ``n`` times in total (True) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.entered >= n, timeout)

    def wait_blocked(self, n: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``n`` calls are blocked right now (True) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.blocked_now >= n, timeout)

    # ------------------------------------------------------------------ probes
    def delivered_count(self, client_order_id: str) -> int:
        """How many submits of ``client_order_id`` reached the book."""
        with self._lock:
            return self.delivered[client_order_id]

    def book(self, client_order_id: str) -> VenueOrderState | None:
        with self._lock:
            return self._book.get(client_order_id)

    def submit_count(self, client_order_id: str) -> int:
        """How many times ``submit_order`` was called for ``client_order_id`` (any outcome)."""
        with self._lock:
            return self.submit_calls.count(client_order_id)

    # ------------------------------------------------------------------ BrokerAdapter
    def start(self) -> None:
        """Called by every adapter-actor generation; fails ``start_failures`` times."""
        with self._lock:
            self.start_calls += 1
            if self._start_failures != 0:
                if self._start_failures > 0:
                    self._start_failures -= 1
                raise RuntimeError("scripted start-up failure")

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        with self._cond:
            self.submit_calls.append(order.client_order_id)
            self.entered += 1
            self._cond.notify_all()
            action = self._script.pop(0) if self._script else self.default
        hook = self.on_submit
        if hook is not None:
            try:
                hook(order)
            except BaseException as exc:  # noqa: BLE001 - the test asserts on it later
                self.hook_errors.append(exc)
        if isinstance(action, tuple):
            kind, then = action
            assert kind == "block", action
            with self._cond:
                self.blocked_now += 1
                self._cond.notify_all()
            try:
                released = self._release.wait(self.block_timeout_s)
            finally:
                with self._cond:
                    self.blocked_now -= 1
                    self._cond.notify_all()
            action = then if released and not self._closed else "ambiguous"
        return self._do(action, order)

    def _do(self, action: str, order: VenueOrder) -> VenueOrderState:
        if action == "fill":
            return self._book_order(order, OrderStatus.FILLED)
        if action == "accept":
            return self._book_order(order, OrderStatus.ACCEPTED)
        if action == "partial":
            return self._book_order(order, OrderStatus.PARTIALLY_FILLED)
        if action == "partial_cum":  # as "partial", but the answer carries cum_qty/avg_px, no trades
            return self._book_order(order, OrderStatus.PARTIALLY_FILLED).model_copy(update={"fills": ()})
        if action == "not_delivered":
            raise NotDeliveredError("scripted: connection refused")
        if action == "ambiguous":
            raise AmbiguousError("scripted: timeout, request lost")
        if action == "ambiguous_sent":
            default = self.default if isinstance(self.default, str) and self.default in ("fill", "accept", "partial") else "fill"
            self._do(default, order)
            raise AmbiguousError("scripted: timeout after send")
        if action == "reject":
            raise VenueRejectedError("scripted: insufficient balance", venue_code="SCRIPTED")
        if action == "fatal":
            raise FatalAdapterError("scripted: bad credentials")
        if action == "crash":
            raise AdapterCrash("scripted crash")
        if action == "raise":
            raise RuntimeError("scripted bug in the adapter")
        raise AssertionError(f"unknown scripted action {action!r}")

    def _book_order(self, order: VenueOrder, status: OrderStatus) -> VenueOrderState:
        with self._lock:
            if self._closed:
                raise NotDeliveredError("venue closed")
            if order.client_order_id in self._book:
                self.delivered[order.client_order_id] += 1
                raise VenueRejectedError("duplicate client order id", venue_code="DUPLICATE_CLIENT_ORDER_ID")
            price = order.limit_price or self.price
            fills: tuple[Fill, ...] = ()
            if status is OrderStatus.FILLED:
                fills = (self._fill(order.quantity, price, order),)
            elif status is OrderStatus.PARTIALLY_FILLED:
                fills = (self._fill(order.quantity / 2, price, order),)
            state = VenueOrderState.of(order, venue_order_id=f"{self.adapter_id}-o{next(self._order_ids)}",
                                       status=status, fills=fills)
            self._book[order.client_order_id] = state
            if self._clock is not None:
                self._booked_at[order.client_order_id] = self._clock.monotonic()
            self.delivered[order.client_order_id] += 1
            return state

    def _fill(self, qty: Decimal, price: Decimal, order: VenueOrder) -> Fill:
        return Fill(trade_id=f"{self.adapter_id}-t{next(self._trade_ids)}", qty=qty, price=price,
                    fee=Decimal("0.01"), fee_currency="USDT", liquidity=Liquidity.TAKER, ts=order.ts)

    def fill(self, client_order_id: str, qty: Decimal | None = None, price: Decimal | None = None) -> VenueOrderState:
        """Fill ``qty`` (default: all that is left) of a booked order at ``price`` (default: its
        average price so far, else ``self.price``) and push the ``"fill"`` event (the state after
        it, with every fill so far) to the sink."""
        with self._lock:
            state = self._book[client_order_id]
            left = state.quantity - state.cum_qty
            qty = left if qty is None else Decimal(qty)
            assert 0 < qty <= left, (qty, left)
            fill = Fill(trade_id=f"{self.adapter_id}-t{next(self._trade_ids)}", qty=qty, price=price or state.avg_px or self.price,
                        fee=Decimal("0.01"), fee_currency="USDT", liquidity=Liquidity.TAKER, ts=state.ts)
            fills = state.fills + (fill,)
            cum = sum((f.qty for f in fills), Decimal(0))
            status = OrderStatus.FILLED if cum == state.quantity else OrderStatus.PARTIALLY_FILLED
            new = state.model_copy(update={"fills": fills, "cum_qty": cum, "leaves_qty": state.quantity - cum,
                                           "avg_px": sum((f.qty * f.price for f in fills), Decimal(0)) / cum, "status": status})
            self._book[client_order_id] = new
            sink = self._sink
        if sink is not None:
            sink(VenueEvent(adapter_id=self.adapter_id, kind="fill", state=new, fill=fill))
        return new

    def emit(self, kind: str, state: VenueOrderState, fill: Fill | None = None) -> None:
        """Push a ``VenueEvent`` of ``kind`` with ``state`` (and ``fill``) to the sink as is."""
        sink = self._sink
        assert sink is not None, "no event sink set"
        sink(VenueEvent(adapter_id=self.adapter_id, kind=kind, state=state, fill=fill))

    def cancel_order(self, client_order_id: str) -> VenueOrderState:
        with self._lock:
            self.cancel_calls.append(client_order_id)
            state = self._book.get(client_order_id)
            if state is None:
                raise VenueRejectedError("unknown order", venue_code="UNKNOWN_ORDER")
            if state.status.is_terminal:
                raise VenueRejectedError(f"order is already {state.status.value}", venue_code="ORDER_CLOSED")
            new = state.model_copy(update={"status": OrderStatus.CANCELED, "leaves_qty": Decimal(0)})
            self._book[client_order_id] = new
            return new

    def fetch_order(self, client_order_id: str) -> VenueOrderState | None:
        with self._lock:
            self.fetch_calls.append(client_order_id)
            answer: Any = self._fetch_script.pop(0) if self._fetch_script else "book"
            if answer == "book":
                booked = self._booked_at.get(client_order_id)
                if booked is not None and self._clock.monotonic() - booked < self.lookup_lag_s:
                    return None  # the order query lags behind the order entry
                return self._book.get(client_order_id)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def fetch_open_orders(self) -> tuple[VenueOrderState, ...]:
        with self._lock:
            return tuple(s for s in self._book.values() if s.status.is_open)

    def fetch_positions(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        with self._lock:
            for s in self._book.values():
                out[s.symbol] = out.get(s.symbol, Decimal(0)) + s.side.sign * s.cum_qty
        return out

    def fetch_account(self) -> dict[str, Decimal]:
        return {}

    def set_event_sink(self, sink: EventSink | None) -> None:
        self._sink = sink

    def on_market(self, data: Quote | Trade) -> None:
        return None

    def close(self) -> None:
        self._closed = True
        self._release.set()

    def __repr__(self) -> str:
        return f"<TestAdapter {self.adapter_id!r} calls={len(self.submit_calls)} delivered={sum(self.delivered.values())}>"
