"""``FixVenue``: the ``BrokerAdapter`` that trades over a FIX 4.2 / 4.4 initiator session.

Application messages (FIX 4.4 Vol 4; FIX 4.2 "Application Messages: Orders and Executions"):

- ``submit_order`` → NewOrderSingle (D), ClOrdID (11) = ``client_order_id``; it waits for the
  first answer about that ClOrdID: an ExecutionReport (8) gives the state (Rejected →
  ``VenueRejectedError`` with Text 58); a session Reject (3) or BusinessMessageReject (j) of
  the message (RefSeqNum 45) → ``VenueRejectedError`` with the reason; no answer within
  ``request_timeout_s`` → ``AmbiguousError`` (the order goes UNKNOWN and is reconciled).
  Not logged on → ``NotDeliveredError`` (nothing was written).
- ``cancel_order`` → OrderCancelRequest (F), answered by ExecutionReport ExecType=4 (with
  OrigClOrdID 41, or — QuickFIX ordermatch — ClOrdID 11 = the original id and no 41) or
  OrderCancelReject (9): "too late to cancel" (CxlRejReason 102=0) and others →
  ``VenueRejectedError``.
- ``fetch_order`` → OrderStatusRequest (H) when ``order_status_request`` is on. An
  ExecutionReport answers it (4.4 ExecType=I; 4.2 ExecTransType=3). A Reject / BusinessMessage
  Reject / timeout → what this adapter was told about the order by the venue if anything,
  else ``AmbiguousError``: the lookup is *unknown*, never *absent* (``None`` is never
  returned: no FIX peer here proves it does not know an order).
- ExecutionReports nobody waits for (fills of resting orders, cancels, the ones recovered by
  a ResendRequest after a reconnect) go to the event sink as ``VenueEvent`` s whose
  ``state`` is the cumulative view (CumQty 14, LeavesQty 151, AvgPx 6, every fill seen) and
  whose ``fill`` is the incremental one (LastQty 32 / LastShares, LastPx 31, trade_id = ExecID
  17). A repeated ExecutionReport (PossDupFlag, or the same ExecID again) is applied once.

ExecType (150) / OrdStatus (39) mapping: 4.4 0=New, F=Trade, 4=Canceled, 8=Rejected,
C=Expired, I=Order status; 4.2 0=New, 1=Partial fill, 2=Fill, 4=Canceled, 8=Rejected,
C=Expired with ExecTransType (20) 0=New, 3=Status (1=Cancel / 2=Correct of an execution are
logged and not applied: a booked fill is never taken back).
"""

from __future__ import annotations

import itertools
import ssl
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from loguru import logger

from ...adapter import AdapterCapabilities, AsyncDone, EventSink, VenueEvent, VenueOrder, VenueOrderState
from ...model.enums import TERMINAL_STATUSES, Liquidity, OrderStatus, OrderType, Side, TimeInForce
from ...model.errors import (
    DUPLICATE_CLIENT_ORDER_ID,
    AmbiguousError,
    FatalAdapterError,
    NotDeliveredError,
    VenueRejectedError,
)
from ...model.reports import Fill
from ..paper.trusted import make_fill, make_venue_state
from ._codec import Frame, Framer, fix_decimal, utc_timestamp
from ._dictionary import DataDictionary
from ._driver import Backoff, Connector, FixConnection, SendFailed
from ._session import ACTIVE, Deliver, FixSession, GapFilled, NotLoggedOn, SessionConfig, SystemClock
from ._store import SeqStore, keeps_message

_SIDE = {Side.BUY: "1", Side.SELL: "2"}
_SIDE_BACK = {"1": Side.BUY, "2": Side.SELL}
_ORD_TYPE = {OrderType.MARKET: "1", OrderType.LIMIT: "2"}
_TIF = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
_ORD_STATUS = {
    "0": OrderStatus.ACCEPTED, "1": OrderStatus.PARTIALLY_FILLED, "2": OrderStatus.FILLED,
    "4": OrderStatus.CANCELED, "8": OrderStatus.REJECTED, "C": OrderStatus.EXPIRED,
    "3": OrderStatus.EXPIRED,  # Done for day: nothing more will execute today
    "A": OrderStatus.ACCEPTED, "E": OrderStatus.ACCEPTED,
}
_SIDE_BYTES = {k: v.encode() for k, v in _SIDE.items()}
_ORD_TYPE_BYTES = {k: v.encode() for k, v in _ORD_TYPE.items()}
_TIF_BYTES = {k: v.encode() for k, v in _TIF.items()}
_FILL_EXEC_TYPES = frozenset({"F", "1", "2"})
_ZERO = Decimal(0)
_CXL_REJ_REASON = {"0": "too late to cancel", "1": "unknown order", "2": "broker option",
                   "3": "order already pending cancel or replace"}


@dataclass(frozen=True)
class FixVenueConfig:
    """Everything ``FixVenue`` needs (built from ``[venues.fix]`` by ``config``).

    ``symbols``: runtime symbol → venue Symbol (55), unmapped symbols are sent as they are;
    ``store_dir``: where the session's sequence numbers live; times in seconds.
    """

    host: str
    port: int
    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    store_dir: Path
    heartbeat_s: int = 30
    reset_on_logon: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    symbols: Mapping[str, str] = field(default_factory=dict)
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 10.0
    request_timeout_s: float = 1.5
    logon_wait_s: float = 1.0
    order_status_request: bool = True
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_server_name: str | None = None
    store_fsync: bool = False
    account: str | None = None
    #: finished orders (filled, canceled, rejected, expired) kept in memory, the latest ones; older
    #: ones leave (their fills stay in ``fetch_positions``); live orders are always kept
    max_finished_orders: int = 10_000
    #: received application messages kept on disk and replayed at start (see ``_store.py``)
    inbox_keep: int = 1_000
    #: QuickFIX-format XML data dictionary received messages are checked against (None: off)
    data_dictionary: Path | None = None
    #: with a dictionary: tags 5000+ it does not define are rejected (QuickFIX ValidateUserDefinedFields)
    validate_user_defined_fields: bool = True
    #: a thread waiting for an order's answer reads the socket itself (``FixConnection.read_for``)
    caller_reads: bool = True


class _Waiter:
    """One request waiting for its answer (answered once). A blocking caller waits on ``event``;
    an asynchronous one (``done``) is called back with ``(result, error)`` from the thread that
    answers (it has no ``event``: one per order costs ~3 µs). ``release`` takes it out of the
    venue's tables when it is answered."""

    __slots__ = ("event", "answered", "result", "error", "kind", "client_order_id", "seq", "done", "deadline", "release",
                 "_once")

    def __init__(self, kind: str, client_order_id: str, done: AsyncDone | None = None, deadline: float = 0.0) -> None:
        self.event = threading.Event() if done is None else None
        self.answered = False
        self.result: VenueOrderState | None = None
        self.error: Exception | None = None
        self.kind = kind
        self.client_order_id = client_order_id
        self.seq: int | None = None
        self.done = done
        self.deadline = deadline  # clock seconds (asynchronous requests): answered ambiguous after it
        self.release: Callable[[_Waiter], None] | None = None
        self._once = threading.Lock()

    def answer(self, result: VenueOrderState | None = None, error: Exception | None = None) -> None:
        """Set the answer unless one was set already; never call it holding the venue's lock."""
        if not self._once.acquire(blocking=False):
            return
        self.result, self.error = result, error
        self.answered = True
        if self.event is not None:
            self.event.set()
        if self.release is not None:
            self.release(self)
        if self.done is not None:
            self.done(result, error)


@dataclass(slots=True)
class _Order:
    """What the venue has told us about one order. Slotted, and no list until it has a cancel:
    the venue keeps the latest ``max_finished_orders`` of them, so each is two objects fewer for
    the garbage collector to track (an instance ``__dict__``, an empty ``cancel_ids`` list)."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    venue_order_id: str = ""
    status: OrderStatus = OrderStatus.ACCEPTED
    cum_qty: Decimal = Decimal(0)
    leaves_qty: Decimal = Decimal(0)
    avg_px: Decimal | None = None
    fills: list[Fill] = field(default_factory=list)
    exec_ids: set[str] = field(default_factory=set)
    reject_reason: str | None = None
    heard: bool = False  # an ExecutionReport about it arrived
    cancel_ids: tuple[str, ...] = ()  # ClOrdIDs of its OrderCancelRequests

    def state(self, ts: datetime) -> VenueOrderState:
        # the values come from the wire: make_venue_state checks their constraints and validates
        # whatever misses one (one per ExecutionReport: validating all of it costs ~5 µs)
        return make_venue_state(self.client_order_id, self.venue_order_id or self.client_order_id, self.symbol,
                                self.side, self.status, self.quantity, self.cum_qty, self.leaves_qty, self.avg_px,
                                tuple(self.fills), self.reject_reason, ts)


class FixVenue:
    """A FIX initiator venue (see the module docstring). Thread-safe; blocking calls.

    ``connector`` makes the TCP connection (default ``socket.create_connection``);
    ``clock`` gives ``monotonic()`` / ``now()`` (default the system clock).
    """


    def __init__(self, adapter_id: str, config: FixVenueConfig, *, connector: Connector | None = None,
                 clock=None, seed: int = 0) -> None:
        self.adapter_id = adapter_id
        self.config = config
        #: blocking I/O; lookups never prove absence (the QuickFIX examples keep no closed-order
        #: lookup and reject OrderStatusRequest); no lookup at all when OrderStatusRequest is off
        #: orders and cancels are also sent without waiting (send_order / send_cancel): their
        #: answers come back from the session's reader thread, with no worker-thread hop
        self.capabilities = AdapterCapabilities(blocking=True, lookup_covers_closed=False, absence_window_s=5.0,
                                                supports_lookup=config.order_status_request, sends_async=True)
        self.clock = clock or SystemClock()
        session_config = SessionConfig(
            begin_string=config.begin_string, sender_comp_id=config.sender_comp_id,
            target_comp_id=config.target_comp_id, heartbeat_s=config.heartbeat_s,
            reset_on_logon=config.reset_on_logon, username=config.username, password=config.password,
            dictionary=(DataDictionary.load(config.data_dictionary, validate_user_defined_fields=config.validate_user_defined_fields)
                        if config.data_dictionary is not None else None))
        self._store = SeqStore.open(config.store_dir, config.begin_string, config.sender_comp_id,
                                    config.target_comp_id, fsync=config.store_fsync, inbox=config.inbox_keep)
        self.session = FixSession(session_config, self._store, self.clock)
        tls_context = None
        if config.tls:
            tls_context = ssl.create_default_context(cafile=str(config.tls_ca_file) if config.tls_ca_file else None)
        self.connection = FixConnection(
            self.session, config.host, config.port, on_app=self._on_app, on_state=self._on_state,
            connector=connector, tls=tls_context, tls_server_name=config.tls_server_name, on_tick=self._expire_waiters,
            backoff=Backoff(config.reconnect_initial_s, config.reconnect_max_s), seed=seed, name=adapter_id,
            caller_reads=config.caller_reads)
        #: the connection a caller waiting for an order's or a cancel's answer may read itself
        #: (``caller_reads``; the adapter actor hands it to the reply future: actors/kernel/dispatcher.py)
        self.caller_reader: FixConnection | None = self.connection if self.connection.caller_reads_on else None
        self._lock = threading.Lock()
        self._orders: dict[str, _Order] = {}
        self._sent: set[str] = set()
        self._by_seq: dict[int, _Waiter] = {}
        self._submits: dict[str, _Waiter] = {}
        self._cancels: dict[str, _Waiter] = {}  # by original client order id
        self._cancel_ids: dict[str, str] = {}  # cancel ClOrdID -> original
        self._statuses: dict[str, _Waiter] = {}
        self._tables = {"submit": self._submits, "cancel": self._cancels, "status": self._statuses}
        #: asynchronous requests (orders, cancels) in the order they were made, i.e. of their deadlines
        self._pending: deque[_Waiter] = deque()
        self._finished: OrderedDict[str, None] = OrderedDict()  # finished orders still in memory, oldest first
        self._retired_positions: dict[str, Decimal] = {}  # net fills of the orders that left memory
        self._sink: EventSink | None = None
        self._held: list[VenueEvent] = []  # events before a sink was set (bounded)
        #: the last kept message (the inbox's) whose handling has finished: its event pushed or held,
        #: its waiter answered; the mark up to which the runtime may trim the inbox (``inbox_mark``)
        self._handled_raw: bytes | None = None
        self._mark_stuck = False  # a message whose handling raised: the mark stays before it (replayed)
        self._state_listeners: list[Callable[[str, str, str], None]] = []
        self._cancel_seq = itertools.count(1)
        self._symbol_back = {v: k for k, v in config.symbols.items()}
        self._venue_symbols: dict[str, bytes] = {}  # runtime symbol -> Symbol (55) encoded
        account = b"1=" + config.account.encode().replace(b"%", b"%%") + b"\x01" if config.account else b""
        #: a NewOrderSingle's fields: ClOrdID, [Account], HandlInst, Symbol, Side, TransactTime,
        #: OrderQty, OrdType, [Price], TimeInForce
        self._nos_format = b"11=%b\x01" + account + b"21=1\x0155=%b\x0154=%b\x0160=%b\x0138=%b\x0140=%b\x01%b59=%b\x01"
        self.counters = {"execution_reports": 0, "duplicates_dropped": 0, "events_pushed": 0,
                         "unmatched": 0, "rejects": 0, "business_rejects": 0, "gap_filled_app": 0, "orders_retired": 0,
                         "replayed_at_start": 0}
        self.session_state = self.session.state
        self._closed = False
        self._replay_kept()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect and log on in the background (idempotent; the runtime calls it per actor generation)."""
        if self._closed:
            raise FatalAdapterError("the FIX venue is closed")
        self.connection.start()

    def close(self) -> None:
        """Logout and disconnect; fail every waiting request as ambiguous. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.connection.close()
        self._fail_waiters("FIX venue closed while waiting for the answer")
        self._store.close()

    def release_hangs(self) -> None:
        """Fail every request still waiting for its answer as ambiguous (``AmbiguousError``: the
        order goes UNKNOWN and is reconciled); the runtime calls it when it retires this
        instance, before :meth:`close`. Never blocks."""
        self._fail_waiters("FIX venue retired while waiting for the answer")

    def _fail_waiters(self, why: str) -> None:
        with self._lock:
            waiters = [*self._submits.values(), *self._cancels.values(), *self._statuses.values()]
        for w in waiters:
            w.answer(error=AmbiguousError(why))

    def set_event_sink(self, sink: EventSink | None) -> None:
        """Where ExecutionReports nobody waits for go (as ``VenueEvent``); events that arrived
        before a sink was set (e.g. resent during recovery) are handed to it now, in order."""
        with self._lock:
            self._sink = sink
            held, self._held = self._held, []
        if sink is not None:
            for event in held:
                sink(event)

    def add_state_listener(self, listener: Callable[[str, str, str], None]) -> None:
        """``listener(adapter_id, state, detail)`` on every session state change."""
        self._state_listeners.append(listener)

    def on_market(self, data) -> None:
        """A real venue has its own market: market data is ignored."""

    def health(self) -> dict:
        """The session's state for ``Runtime.health()``: state, sequence numbers, counters, last error."""
        return {
            "session": f"{self.config.begin_string}:{self.config.sender_comp_id}->{self.config.target_comp_id}",
            "state": self.session.state,
            "next_sender_seq": self._store.next_sender,
            "next_target_seq": self._store.next_target,
            "connects": self.connection.connects,
            "disconnects": self.connection.disconnects,
            "last_disconnect": self.connection.last_disconnect,
            "caller_reads": self.connection.caller_reads,
            "last_error": self.session.last_error,
            "orders_in_memory": len(self._orders),
            **{f"session_{k}": v for k, v in self.session.counters.items()},
            **self.counters,
        }

    # ------------------------------------------------------------------ BrokerAdapter

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        """NewOrderSingle; see the module docstring for answers and errors."""
        waiter = self._submit_waiter(order)
        body = self._order_body(order, utc_timestamp(self.clock.now()).encode())
        self._send("D", body, waiter, sent_id=order.client_order_id)
        return self._wait(waiter, "NewOrderSingle", order.client_order_id)

    def send_order(self, order: VenueOrder, done: AsyncDone) -> bool:
        """NewOrderSingle without waiting (``protocols.AsyncSender``): ``done`` gets what
        ``submit_order`` would return or raise, from the session's reader thread (or at once for
        a refusal). False, with nothing sent, when the session is not logged on right now."""
        if not self._can_send_now():
            return False
        try:
            waiter = self._submit_waiter(order, done)
        except VenueRejectedError as exc:
            done(None, exc)
            return True
        now = utc_timestamp(self.clock.now()).encode()  # TransactTime 60 and SendingTime 52
        return self._send_now("D", self._order_body(order, now), waiter, sent_id=order.client_order_id, sending_time=now)

    def cancel_order(self, client_order_id: str) -> VenueOrderState:
        """OrderCancelRequest; the state after the cancel, or ``VenueRejectedError`` (e.g. too late to cancel)."""
        waiter, body = self._cancel_request(client_order_id)
        self._send("F", body, waiter)
        return self._wait(waiter, "OrderCancelRequest", client_order_id)

    def send_cancel(self, client_order_id: str, done: AsyncDone) -> bool:
        """OrderCancelRequest without waiting (``protocols.AsyncSender``; see ``send_order``)."""
        if not self._can_send_now():
            return False
        try:
            waiter, body = self._cancel_request(client_order_id, done)
        except VenueRejectedError as exc:
            done(None, exc)
            return True
        return self._send_now("F", body, waiter)

    def _order_body(self, order: VenueOrder, transact_time: bytes) -> bytes:
        """The NewOrderSingle's fields, encoded: ClOrdID 11, Account 1 (when set), HandlInst 21=1,
        Symbol 55, Side 54, TransactTime 60, OrderQty 38, OrdType 40, Price 44 (a limit order),
        TimeInForce 59. The constant parts are encoded once per venue (``_NOS_FORMAT``); per
        order only the values (tests/fix/test_hot_path.py holds it to ``encode_fields`` of the pairs)."""
        symbol = self._venue_symbols.get(order.symbol)
        if symbol is None:
            symbol = self.config.symbols.get(order.symbol, order.symbol).encode()
            if len(self._venue_symbols) < 10_000:
                self._venue_symbols[order.symbol] = symbol
        price = (b"44=" + _decimal_field(order.limit_price) + b"\x01"
                 if order.order_type is OrderType.LIMIT and order.limit_price is not None else b"")
        return self._nos_format % (order.client_order_id.encode(), symbol, _SIDE_BYTES[order.side], transact_time,
                                   _decimal_field(order.quantity), _ORD_TYPE_BYTES[order.order_type], price,
                                   _TIF_BYTES[order.time_in_force])

    def _submit_waiter(self, order: VenueOrder, done: AsyncDone | None = None) -> _Waiter:
        """Register the wait for a NewOrderSingle's answer; ``VenueRejectedError`` for an id
        already sent (executor would fill it again: the contract's duplicate-id refusal). One
        pass under the lock: the refusal, the order's entry (made only when it has none) and, for
        an asynchronous request, its place among the pending ones (``_new_waiter``)."""
        cid = order.client_order_id
        waiter = _Waiter("submit", cid, done, self.clock.monotonic() + self.config.request_timeout_s)
        waiter.release = self._release
        with self._lock:
            known = self._orders.get(cid)
            if cid in self._sent or (known is not None and known.heard):
                raise VenueRejectedError(f"{cid} was already sent on this FIX session: not sending it again",
                                         venue_code=DUPLICATE_CLIENT_ORDER_ID)
            if known is None:
                self._orders[cid] = _Order(cid, order.symbol, order.side, order.quantity, leaves_qty=order.quantity)
            self._submits[cid] = waiter
            if done is not None:
                self._pending.append(waiter)
        return waiter

    def _cancel_request(self, client_order_id: str, done: AsyncDone | None = None) -> tuple[_Waiter, list[tuple[int, object]]]:
        """Register the wait for a cancel's answer and build the OrderCancelRequest;
        ``VenueRejectedError`` for an unknown order or one the venue reported finished."""
        with self._lock:
            known = self._orders.get(client_order_id)
        if known is None:
            raise VenueRejectedError(f"unknown order {client_order_id} on this FIX session", venue_code="unknown order")
        if known.heard and known.status.is_terminal:  # too late to cancel: the venue said it is over
            raise VenueRejectedError(f"too late to cancel: {client_order_id} is {known.status.value} at the venue",
                                     venue_code="too late to cancel")
        cancel_id = f"{client_order_id}-c{next(self._cancel_seq)}"
        body: list[tuple[int, object]] = [
            (41, client_order_id), (11, cancel_id), (55, self.config.symbols.get(known.symbol, known.symbol)),
            (54, _SIDE[known.side]), (60, utc_timestamp(self.clock.now())), (38, fix_decimal(known.quantity))]
        if known.venue_order_id:
            body.insert(0, (37, known.venue_order_id))
        waiter = self._new_waiter("cancel", client_order_id, done)
        with self._lock:
            self._cancels[client_order_id] = waiter
            self._cancel_ids[cancel_id] = client_order_id
            known.cancel_ids += (cancel_id,)
        return waiter, body

    def fetch_order(self, client_order_id: str) -> VenueOrderState | None:
        """OrderStatusRequest; never None (see the module docstring): unknown → ``AmbiguousError``."""
        error: Exception | None = None
        if self.config.order_status_request:
            with self._lock:
                known = self._orders.get(client_order_id)
            body: list[tuple[int, object]] = [(11, client_order_id)]
            if known is not None:
                body += [(55, self.config.symbols.get(known.symbol, known.symbol)), (54, _SIDE[known.side])]
                if known.venue_order_id:
                    body.insert(0, (37, known.venue_order_id))
            waiter = self._new_waiter("status", client_order_id)
            with self._lock:
                self._statuses[client_order_id] = waiter
            try:
                self._send("H", body, waiter)
                return self._wait(waiter, "OrderStatusRequest", client_order_id)
            except (AmbiguousError, VenueRejectedError, NotDeliveredError) as exc:
                error = exc
        with self._lock:
            known = self._orders.get(client_order_id)
            if known is not None and known.heard:
                return known.state(self.clock.now())
        reason = f"{error}" if error is not None else "OrderStatusRequest is off for this venue"
        raise AmbiguousError(f"the FIX venue did not tell the state of {client_order_id}: {reason}")

    def fetch_open_orders(self) -> tuple[VenueOrderState, ...]:
        """Orders the venue last reported as working (from its ExecutionReports on this session)."""
        now = self.clock.now()
        with self._lock:
            return tuple(o.state(now) for o in self._orders.values()
                         if o.heard and o.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED))

    def fetch_positions(self) -> Mapping[str, Decimal]:
        """Net position per symbol from the fills the venue reported on this session (base units;
        retired finished orders included)."""
        with self._lock:
            out = dict(self._retired_positions)
            for o in self._orders.values():
                qty = sum((f.qty for f in o.fills), Decimal(0))
                if qty:
                    out[o.symbol] = out.get(o.symbol, Decimal(0)) + o.side.sign * qty
        return out

    def fetch_account(self) -> Mapping[str, Decimal]:
        """FIX order sessions carry no balances: empty."""
        return {}

    # ------------------------------------------------------------------ requests

    def _new_waiter(self, kind: str, cid: str, done: AsyncDone | None = None) -> _Waiter:
        waiter = _Waiter(kind, cid, done, self.clock.monotonic() + self.config.request_timeout_s)
        waiter.release = self._release
        if done is not None:
            with self._lock:
                self._pending.append(waiter)
        return waiter

    def _release(self, waiter: _Waiter) -> None:
        """Take an answered (or abandoned) request out of the tables; never held past its answer."""
        table = self._tables[waiter.kind]
        with self._lock:
            if table.get(waiter.client_order_id) is waiter:
                del table[waiter.client_order_id]
            if waiter.seq is not None and self._by_seq.get(waiter.seq) is waiter:
                del self._by_seq[waiter.seq]

    def _can_send_now(self) -> bool:
        return not self._closed and self.session.state == ACTIVE

    def _send(self, msg_type: str, body, waiter: _Waiter, sent_id: str | None = None) -> None:
        """Send for a blocking caller: waits up to ``logon_wait_s`` for the session to be logged on."""
        try:
            if self._closed:
                raise NotDeliveredError(f"the FIX venue is closed: {msg_type} not sent")
            self.connection.start()  # recovery asks before any actor generation called start()
            if not self.connection.wait_active(self.config.logon_wait_s):
                raise NotDeliveredError(f"FIX session {self.session.state}: {msg_type} not sent")
            self._write(msg_type, body, waiter, sent_id)
        except BaseException:
            self._release(waiter)
            raise

    def _send_now(self, msg_type: str, body, waiter: _Waiter, sent_id: str | None = None,
                  sending_time: bytes | None = None) -> bool:
        """Send for an asynchronous caller: False (nothing sent, ``done`` never called) when the
        session is not logged on; a failed write answers ``done`` at once."""
        try:
            self._write(msg_type, body, waiter, sent_id, sending_time)
        except NotDeliveredError:
            self._release(waiter)
            return False
        except AmbiguousError as exc:
            waiter.answer(error=exc)
        self._expire_waiters()
        return True

    def _write(self, msg_type: str, body, waiter: _Waiter, sent_id: str | None, sending_time: bytes | None = None) -> None:
        """Write the request; under the session lock, before its bytes exist, the waiter gets its
        MsgSeqNum (a Reject 45 finds it) and ``sent_id`` (a NewOrderSingle's ClOrdID) counts as
        sent on this session (a second submit of it is refused)."""
        def on_seq(seq: int) -> None:
            waiter.seq = seq
            self._by_seq[seq] = waiter
            if sent_id is not None:
                self._sent.add(sent_id)

        try:
            self.connection.send_app(msg_type, body, on_seq=on_seq, sending_time=sending_time)
        except NotLoggedOn as exc:
            raise NotDeliveredError(f"FIX session not logged on: {msg_type} not sent ({exc})") from None
        except SendFailed as exc:
            raise AmbiguousError(str(exc)) from None

    def _wait(self, waiter: _Waiter, what: str, cid: str) -> VenueOrderState:
        assert waiter.event is not None, "a blocking request's waiter has an event"
        if not waiter.event.wait(self.config.request_timeout_s):
            self._release(waiter)
            raise AmbiguousError(f"no answer to {what} for {cid} within {self.config.request_timeout_s:g} s")
        if waiter.error is not None:
            raise waiter.error
        assert waiter.result is not None
        return waiter.result

    def _expire_waiters(self) -> None:
        """Answer asynchronous requests unanswered past ``request_timeout_s`` as ambiguous, as a
        blocking call would have raised (after each send, and on the session thread's ticks, at
        least every 0.5 s while connected; the runtime's attempt timeout covers the rest)."""
        now = self.clock.monotonic()
        late = []
        with self._lock:
            # oldest first: every deadline is its creation time + request_timeout_s, so the
            # scan stops at the first one not due (not a scan of every request in flight)
            pending, tables = self._pending, self._tables
            while pending:
                w = pending[0]
                if w.deadline > now and not w.answered:
                    break
                pending.popleft()
                if not w.answered and tables[w.kind].get(w.client_order_id) is w:  # not taken back unsent
                    late.append(w)
        for w in late:
            w.answer(error=AmbiguousError(f"no answer for {w.client_order_id} within {self.config.request_timeout_s:g} s"))

    # ------------------------------------------------------------------ from the session thread

    def _on_state(self, state: str, detail: str) -> None:
        self.session_state = state
        if state != ACTIVE:
            logger.info("FIX {} session {}{}", self.adapter_id, state, f": {detail}" if detail else "")
        else:
            logger.info("FIX {} session logged on ({} -> {})", self.adapter_id, self.config.sender_comp_id, self.config.target_comp_id)
        for listener in list(self._state_listeners):
            try:
                listener(self.adapter_id, state, detail)
            except Exception as exc:  # noqa: BLE001 - a listener's bug must not stop the others
                logger.exception("FIX {}: state listener failed: {}", self.adapter_id, exc)

    def inbox_mark(self) -> bytes | None:
        """The last received message the inbox keeps whose effect this venue has handed on (to the
        runtime's event sink, or to the call waiting for it); None when there is none or no sink is
        set yet (events of replayed messages are held until then). The runtime passes it to
        :meth:`trim_inbox` once everything it was handed before is journaled (``KeepsInbox``)."""
        with self._lock:
            return self._handled_raw if self._sink is not None else None

    def trim_inbox(self, mark: bytes) -> int:
        """The runtime journaled the effect of every message handed on up to ``mark`` (an
        :meth:`inbox_mark`): they leave the inbox, so no later start replays them. Returns how many."""
        return self._store.trim_inbox(mark)

    def kept_count(self) -> int:
        """How many received messages the inbox keeps now (0 without an inbox)."""
        return self._store.kept_count()

    def set_inbox_listener(self, listener: Callable[[int], None] | None) -> None:
        """``listener(kept)`` after each received message the inbox keeps, with how many it keeps
        (from the session's thread; it must not block): the runtime trims when they pile up."""
        self._store.set_inbox_listener(listener)

    def _on_app(self, item) -> None:
        try:
            self._handle_app(item)
        except BaseException:
            self._mark_stuck = True
            raise
        if self._store.keeps and isinstance(item, Deliver) and not self._mark_stuck and keeps_message(item.frame.msg_type):
            with self._lock:
                self._handled_raw = item.frame.raw

    def _handle_app(self, item) -> None:
        if isinstance(item, GapFilled):
            self.counters["gap_filled_app"] += 1
            logger.warning("FIX {}: the peer asked to resend {}..{}: gap-filled; application messages in it are "
                           "never re-sent (their orders are reconciled)", self.adapter_id, item.begin, item.end or "now")
            return
        assert isinstance(item, Deliver)
        frame = item.frame
        kind = frame.msg_type
        if kind == "8":
            self._on_execution_report(frame, item.poss_dup)
        elif kind == "9":
            self._on_cancel_reject(frame)
        elif kind in ("3", "j"):
            self._on_reject(frame)
        else:
            logger.debug("FIX {}: ignored message type {}", self.adapter_id, kind)

    def _on_reject(self, frame: Frame) -> None:
        session_level = frame.msg_type == "3"
        self.counters["rejects" if session_level else "business_rejects"] += 1
        ref = frame.get(45)
        text = frame.get(58) or ""
        detail = [f"{'Reject' if session_level else 'BusinessMessageReject'}"]
        if session_level and frame.get(373):
            detail.append(f"SessionRejectReason {frame.get(373)}")
        if not session_level and frame.get(380):
            detail.append(f"BusinessRejectReason {frame.get(380)}")
        if frame.get(371):
            detail.append(f"tag {frame.get(371)}")
        reason = f"{text} ({', '.join(detail)})" if text else ", ".join(detail)
        waiter = self._by_seq.pop(int(ref), None) if ref and ref.isdigit() else None
        if waiter is None:
            logger.error("FIX {}: {} of MsgSeqNum {} that no request waits for: {}", self.adapter_id, frame.msg_type, ref, reason)
            return
        if waiter.kind == "status":
            waiter.answer(error=AmbiguousError(f"OrderStatusRequest refused: {reason}"))
            return
        if waiter.kind == "submit":
            with self._lock:
                order = self._orders.get(waiter.client_order_id)
                if order is not None and not order.heard:
                    order.status, order.reject_reason, order.heard = OrderStatus.REJECTED, reason, True
                    order.leaves_qty = Decimal(0)
                    self._note_finished(order)
        waiter.answer(error=VenueRejectedError(f"venue rejected the message: {reason}", venue_code=frame.get(373) or frame.get(380)))

    def _on_cancel_reject(self, frame: Frame) -> None:
        orig = frame.get(41) or self._cancel_ids.get(frame.get(11) or "", "")
        reason_code = frame.get(102) or ""
        reason = _CXL_REJ_REASON.get(reason_code, f"CxlRejReason {reason_code}" if reason_code else "cancel rejected")
        text = frame.get(58)
        message = f"{reason}: {text}" if text else reason
        with self._lock:
            waiter = self._cancels.get(orig)
            order = self._orders.get(orig)
            status = frame.get(39)
            if order is not None and status in _ORD_STATUS:
                order.status = _ORD_STATUS[status]
                if order.status.is_terminal:
                    self._note_finished(order)
        if waiter is not None:
            waiter.answer(error=VenueRejectedError(message, venue_code=reason_code or None))
            return
        if order is not None:
            self._push("cancel_rejected", order, None)

    def _on_execution_report(self, frame: Frame, poss_dup: bool) -> None:
        self.counters["execution_reports"] += 1
        get = frame.first.get
        exec_type = get(150) or ""
        trans = get(20)
        if trans in ("1", "2"):
            logger.error("FIX {}: ExecTransType {} (execution {}) for {} not applied: a booked fill is never taken back",
                         self.adapter_id, trans, "cancel" if trans == "1" else "correct", get(11))
            return
        cid = get(11) or ""
        orig = get(41)
        if orig and exec_type in ("4", "5", "6"):
            cid = orig
        elif cid in self._cancel_ids and exec_type in ("4", "6"):
            cid = self._cancel_ids[cid]
        exec_id = get(17) or ""
        now = self.clock.now()
        fill: Fill | None = None
        with self._lock:
            order = self._orders.get(cid)
            if order is None:
                order = self._order_from(frame, cid)
                if order is None:
                    self.counters["unmatched"] += 1
                    logger.error("FIX {}: ExecutionReport for unknown order {!r} cannot be read: {}", self.adapter_id, cid, frame.redacted())
                    return
                self._orders[cid] = order
            if exec_id and exec_id in order.exec_ids:
                self.counters["duplicates_dropped"] += 1
                return
            if exec_id:
                order.exec_ids.add(exec_id)
            order.heard = True
            venue_order_id = get(37)
            if venue_order_id:
                order.venue_order_id = venue_order_id
            # each value as _dec reads it: a text seen before is one dict hit (no call), the
            # rest (new, empty or not a number) goes through _dec
            cached = _DECIMALS.get
            last_qty = cached(v) or _dec(v) if (v := get(32)) else None
            last_px = cached(v) or _dec(v) if (v := get(31)) else None
            if exec_type in _FILL_EXEC_TYPES and last_qty and last_qty > _ZERO and last_px and last_px > _ZERO:
                fill = make_fill((exec_id or f"{cid}-{len(order.fills) + 1}")[:64], last_qty, last_px, _ZERO, "", Liquidity.TAKER, now)
                order.fills.append(fill)
            status = _ORD_STATUS.get(get(39) or "")
            if status is not None:
                order.status = status
            cum = cached(v) or _dec(v) if (v := get(14)) else None
            if cum is not None:
                order.cum_qty = cum
            leaves = cached(v) or _dec(v) if (v := get(151)) else None
            if leaves is not None:
                order.leaves_qty = leaves
            avg = cached(v) or _dec(v) if (v := get(6)) else None
            order.avg_px = avg if avg and order.cum_qty > _ZERO else None
            if status is OrderStatus.REJECTED:
                order.reject_reason = get(58) or "rejected by the venue"
            terminal = order.status in TERMINAL_STATUSES  # OrderStatus.is_terminal
            if terminal:
                self._note_finished(order)
            state = order.state(now)
            crossed = None  # a cancel in flight for an order this report finishes: it can no longer succeed
            if terminal and exec_type not in ("4", "6", "I") and trans != "3":
                crossed = self._cancels.get(cid)
            waiter = None
            if exec_type == "I" or trans == "3":
                waiter = self._statuses.get(cid)
            elif exec_type in ("4", "6") and cid in self._cancels:
                waiter = self._cancels[cid] if exec_type == "4" else None
            elif cid in self._submits:
                waiter = self._submits[cid]
        try:
            if waiter is not None and not waiter.answered:
                if waiter.kind == "submit" and state.status is OrderStatus.REJECTED:
                    waiter.answer(error=VenueRejectedError(state.reject_reason or "rejected by the venue", venue_code=get(103)))
                else:
                    waiter.answer(result=state)
                return
            if exec_type == "I" or trans == "3":
                return  # a status answer that came too late changes nothing
            kind = {"8": "rejected", "4": "canceled", "C": "expired", "3": "expired"}.get(exec_type)
            if fill is not None:
                kind = "fill"
            elif kind is None:
                kind = "accepted"
            self._push(kind, order, fill, state)
        finally:
            if crossed is not None:
                # the cancel crossed this report on the wire; a venue may drop a cancel of a finished order
                # without an answer (QuickFIX ordermatch does): too late to cancel, said now, not at a
                # timeout, and only once the report itself is handed on (the runtime books the fill
                # before the cancel's answer: the answering thread may run that answer at once)
                crossed.answer(error=VenueRejectedError(
                    f"too late to cancel: {cid} is {state.status.value} at the venue (the cancel crossed its "
                    f"ExecutionReport {exec_id or '?'})", venue_code="too late to cancel"))

    def _replay_kept(self) -> None:
        """Apply the application messages the store kept from before a restart (they are held
        as events until the runtime sets the sink): an ExecutionReport whose MsgSeqNum was passed
        just before the process died, its effect not yet durable, is not lost. Each is applied
        as a repeat (PossDup): this adapter drops what it saw, the runtime books each trade once."""
        kept = self._store.kept()
        if not kept:
            return
        framer = Framer()
        for raw in kept:
            for frame in framer.feed(raw):
                self._on_app(Deliver(frame, True))
        self.counters["replayed_at_start"] = len(kept)
        logger.info("FIX {}: {} application message(s) kept from before the restart applied again", self.adapter_id, len(kept))

    def _note_finished(self, order: _Order) -> None:
        """(Under the lock.) ``order`` is finished at the venue: keep it among the latest
        ``max_finished_orders`` finished ones; the oldest beyond that leave memory (its fills go to
        the retired positions), unless a request about it still waits. A later report about a
        retired order (a resend) rebuilds it from the report; the runtime books each trade once."""
        finished, cid = self._finished, order.client_order_id
        if cid in finished:
            finished.move_to_end(cid)  # a later report about a finished order: the latest again
        else:
            finished[cid] = None
        while len(finished) > self.config.max_finished_orders:
            cid = next(iter(finished))
            if cid in self._submits or cid in self._cancels or cid in self._statuses:
                break  # answered soon: retired with a later one
            del finished[cid]
            old = self._orders.pop(cid, None)
            self._sent.discard(cid)
            if old is None:
                continue
            for cancel_id in old.cancel_ids:
                self._cancel_ids.pop(cancel_id, None)
            qty = sum((f.qty for f in old.fills), Decimal(0))
            if qty:
                self._retired_positions[old.symbol] = self._retired_positions.get(old.symbol, Decimal(0)) + old.side.sign * qty
            self.counters["orders_retired"] += 1

    def _push(self, kind: str, order: _Order, fill: Fill | None, state: VenueOrderState | None = None) -> None:
        event = VenueEvent(adapter_id=self.adapter_id, kind=kind, state=state or order.state(self.clock.now()), fill=fill)
        with self._lock:
            sink = self._sink
            if sink is None:
                if len(self._held) < 100_000:
                    self._held.append(event)
                else:
                    logger.error("FIX {}: no event sink and 100000 events held: {} for {} dropped", self.adapter_id, kind, order.client_order_id)
                return
        self.counters["events_pushed"] += 1
        sink(event)

    def _order_from(self, frame: Frame, cid: str) -> _Order | None:
        """An order this process did not send (recovered by a resend after a restart), from its report."""
        side = _SIDE_BACK.get(frame.get(54) or "")
        venue_symbol = frame.get(55)
        qty = _dec(frame.get(38))
        if qty is None:
            cum, leaves = _dec(frame.get(14)), _dec(frame.get(151))
            qty = (cum or Decimal(0)) + (leaves or Decimal(0))
        if not cid or side is None or not venue_symbol or not qty or qty <= 0:
            return None
        symbol = self._symbol_back.get(venue_symbol, venue_symbol)
        return _Order(cid, symbol, side, qty)


#: Decimal -> its FIX float field text encoded (``fix_decimal``), for the quantities and prices sent
#: (a few per instrument): a dict hit per order instead of a normalize and a format. Equal Decimals
#: normalize alike, so one entry serves them all; zero (whose sign shows) is never cached
_DECIMAL_FIELDS: dict[Decimal, bytes] = {}


def _decimal_field(value: Decimal) -> bytes:
    """``fix_decimal(value).encode()``, cached (tests/fix/test_hot_path.py holds the two equal)."""
    out = _DECIMAL_FIELDS.get(value)
    if out is None:
        out = fix_decimal(value).encode()
        if value and len(_DECIMAL_FIELDS) < _DECIMALS_MAX:
            _DECIMAL_FIELDS[value] = out
    return out


#: field text -> its finite Decimal, for the texts seen (a few per instrument: quantities, prices);
#: Decimals are immutable, so one value serves every report (a dict hit instead of a parse)
_DECIMALS: dict[str, Decimal] = {}
_DECIMALS_MAX = 4096


def _dec(value: str | None) -> Decimal | None:
    """The finite Decimal a FIX float field holds; None when missing, empty, not a number or not
    finite (tests/fix/test_hot_path.py holds the cached answers to ``_dec_parse``)."""
    if value is None:
        return None
    out = _DECIMALS.get(value)
    if out is not None:
        return out
    out = _dec_parse(value)
    if out is not None and len(_DECIMALS) < _DECIMALS_MAX:
        _DECIMALS[value] = out
    return out


def _dec_parse(value: str) -> Decimal | None:
    if value == "":
        return None
    try:
        out = Decimal(value)
    except InvalidOperation:
        return None
    return out if out.is_finite() else None
