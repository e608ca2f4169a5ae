"""The venue contract: ``BrokerAdapter`` and the values that cross it (README.md, Write an adapter; README "Write an adapter").

A venue adapter is plain, synchronous, possibly blocking code. flowroute never calls it from
an actor's inbox: the adapter actor runs each call on the adapter's own worker thread with a
per-attempt timeout and turns the outcome into a message (docs/DESIGN.md, One order), unless the adapter
declares ``capabilities.blocking = False`` (in-process simulators: called inline).

What an outcome means (``protocols.AdapterError`` subclasses; the adapter actor's table):

====================================  =============================================================
the call                              the order
====================================  =============================================================
returns a ``VenueOrderState``         the venue's answer (ACCEPTED, PARTIALLY_FILLED, FILLED, ...)
raises ``NotDeliveredError``          *not delivered*: provably never reached the venue; retried
                                      under the same client order id with backoff, then FAILED
raises ``AmbiguousError``,            *ambiguous*: may have reached the venue; UNKNOWN, reconciled
``TimeoutError``,                     by lookups (``fetch_order``, three-valued: see
``ConnectionResetError`` or any       :func:`classify_lookup`); never re-sent unless the venue
other exception, or overruns the      proves absence
attempt timeout
raises ``VenueRejectedError``         *rejected*: REJECTED, final (a re-send refused as
                                      ``DUPLICATE_CLIENT_ORDER_ID`` means the venue has it: UNKNOWN)
raises ``FatalAdapterError``          *fatal*: FAILED, final; counts as a breaker failure
raises ``AdapterCrash`` (a            *crash*: the adapter actor crashes; every call the worker had
``BaseException``), or the actor's    picked up goes UNKNOWN and is reconciled, calls it had not
own code fails                        picked up go to the next generation
====================================  =============================================================

The supervisor restarts the adapter's actor (one-for-one, backoff, intensity limit) after a
crash, a call hung past its attempt timeout (the worker is abandoned), or a failure in
``start()``; every restart runs on a fresh instance from the registry's builder
(``actors.AdapterRegistry``), the old one is retired with ``release_hangs()`` and ``close()``.
One crash counts once in the adapter's circuit breaker, however many orders it leaves in doubt.

Fills are reported one way: in ``VenueOrderState`` — ``fills`` (each with a unique
``trade_id``: FIX ExecID) and/or ``cum_qty``/``avg_px`` (FIX CumQty/AvgPx) — returned by a call
or pushed in a ``VenueEvent`` (whose ``fill``, when set, is applied too). The ledger books every
style by one rule (docs/DESIGN.md "Fills"): per-trade fills once per trade id, cumulative
quantity beyond them as synthetic fills that later trades cover, overfills flagged.

Example (a minimal adapter; README "Write an adapter" has a complete one that passes the
conformance suite in ``tests/conformance``)::

    class Nop:
        adapter_id = "nop"
        capabilities = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=0)
        def submit_order(self, order):
            return VenueOrderState.of(order, venue_order_id="n-1", status=OrderStatus.ACCEPTED)
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import Field

from .market.values import Quote, Trade
from .model.base import Dec, Frozen, NonNegDec, PosDec, UtcDatetime, storable_text, text_problem, utc_now
from .model.enums import OrderStatus, OrderType, Side, TimeInForce
from .model.intents import ExecutionContext, OrderIntent
from .model.pydantic_compat import construct_valid
from .model.reports import Fill, summarize_fills


class VenueOrder(Frozen):
    """An order as sent to a venue (FIX NewOrderSingle, MsgType=D).

    ``client_order_id`` (tag 11) is the idempotency key the venue sees; flowroute
    guarantees it is never sent twice unless the venue proved it does not know it.
    """

    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: PosDec
    limit_price: PosDec | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    ts: UtcDatetime = Field(default_factory=utc_now)

    @classmethod
    def from_intent(cls, intent: OrderIntent, context: ExecutionContext) -> VenueOrder:
        """Build the venue order for ``intent`` under ``context`` (timestamp from the context).

        Every field comes from a validated ``OrderIntent`` / ``ExecutionContext`` field with the
        same or a stricter constraint, so it is built without validating again
        (``construct_valid``; checked field by field against the validating constructor in
        tests/contracts/test_contracts.py). A subclass is validated as usual.
        """
        fields = {
            "client_order_id": intent.client_order_id,
            "account_id": context.account_id,
            "symbol": intent.symbol,
            "side": intent.side,
            "order_type": intent.order_type,
            "quantity": intent.quantity,
            "limit_price": intent.limit_price,
            "time_in_force": intent.time_in_force,
            "ts": context.timestamp,
        }
        if cls is VenueOrder and type(intent) is OrderIntent and type(context) is ExecutionContext:
            return construct_valid(VenueOrder, fields, _VENUE_ORDER_FIELDS)
        return cls(**fields)


_VENUE_ORDER_FIELDS = frozenset(VenueOrder.model_fields)


class VenueOrderState(Frozen):
    """What the venue knows about one order (FIX ExecutionReport / OrderStatusRequest answer).

    ``status`` is one of ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED;
    ``fills`` are all fills so far in venue order (each with a unique ``trade_id``);
    ``cum_qty``/``leaves_qty`` in base units, ``avg_px`` in quote currency.
    """

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    status: OrderStatus
    quantity: PosDec
    cum_qty: NonNegDec = Decimal(0)
    leaves_qty: NonNegDec = Decimal(0)
    avg_px: Dec | None = None
    fills: tuple[Fill, ...] = ()
    reject_reason: str | None = None
    ts: UtcDatetime = Field(default_factory=utc_now)

    @classmethod
    def of(
        cls,
        order: VenueOrder,
        *,
        venue_order_id: str,
        status: OrderStatus,
        fills: tuple[Fill, ...] = (),
        reject_reason: str | None = None,
        ts=None,
    ) -> VenueOrderState:
        """Derive cum_qty, leaves_qty and avg_px from ``fills`` (leaves 0 when terminal)."""
        cum, avg, _fees = summarize_fills(fills)
        leaves = Decimal(0) if status.is_terminal else max(order.quantity - cum, Decimal(0))
        return cls(
            client_order_id=order.client_order_id,
            venue_order_id=venue_order_id,
            symbol=order.symbol,
            side=order.side,
            status=status,
            quantity=order.quantity,
            cum_qty=cum,
            leaves_qty=leaves,
            avg_px=avg,
            fills=fills,
            reject_reason=reject_reason,
            ts=ts if ts is not None else order.ts,
        )


# -- the optional members of the contract, each a typed protocol of its own -------------------
# (the runtime asks ``isinstance(adapter, StartsUp)`` and the like once per adapter generation,
# never reads an attribute by name)


@runtime_checkable
class StartsUp(Protocol):
    """Optional member: ``start()`` connects (log on, open files) before any other call."""

    def start(self) -> None: ...


@runtime_checkable
class ReleasesHangs(Protocol):
    """Optional member: ``release_hangs()`` unblocks calls stuck inside the venue when the
    instance is retired (called from another thread; must not block)."""

    def release_hangs(self) -> None: ...


@runtime_checkable
class HasSession(Protocol):
    """Optional members of a venue with a session (e.g. FIX logon): ``session_state`` (e.g.
    ``"DISCONNECTED"``, ``"ACTIVE"``) and ``add_state_listener(listener)``, which calls
    ``listener(adapter_id, state, detail)`` on every session state change. The runtime shows
    the state as a metric and publishes ``VenueSessionChanged``."""

    session_state: str

    def add_state_listener(self, listener: Callable[[str, str, str], None]) -> None: ...


@runtime_checkable
class ReportsHealth(Protocol):
    """Optional member: ``health()`` returns the venue's own health facts (JSON-like mapping)
    for ``Runtime.health().venues``; an exception there is shown as the venue's error."""

    def health(self) -> Mapping[str, object]: ...


@runtime_checkable
class KeepsInbox(Protocol):
    """Optional members of a venue that keeps the messages it received until their effect is
    durable, and replays them at start (FIX: the session's inbox, protocols/venues/fix/_store.py):
    ``inbox_mark()`` names the last kept message whose effect it has handed on (to the event sink
    or a waiting call; None: none), ``trim_inbox(mark)`` drops the kept messages up to it and
    returns how many. The runtime trims once everything handed on before the mark is journaled
    (at start, after the replay, at a clean stop, and while running: ``kept_count()`` says how
    many are kept, ``set_inbox_listener(listener)`` registers ``listener(kept)``, called after
    each message kept without blocking, which wakes the runtime's trimmer when they pile up)."""

    def inbox_mark(self) -> Any: ...

    def trim_inbox(self, mark: Any) -> int: ...

    def kept_count(self) -> int: ...

    def set_inbox_listener(self, listener: Callable[[int], None] | None) -> None: ...


def start_adapter(adapter: object) -> None:
    """Call ``adapter.start()`` (:class:`StartsUp`, an optional member of the contract; raises what it raises)."""
    if isinstance(adapter, StartsUp):
        adapter.start()


def retire_adapter(adapter: BrokerAdapter) -> None:
    """Release ``adapter`` for good: ``release_hangs()`` (:class:`ReleasesHangs`, optional) then
    ``close()``. Raises what they raise (the caller logs it)."""
    if isinstance(adapter, ReleasesHangs):
        adapter.release_hangs()
    adapter.close()


class AdapterCapabilities(Frozen):
    """What an adapter declares about itself (adapter contract v2; README "Write an adapter").

    The runtime reads it once per adapter generation, never guesses from attributes.

    - ``blocking``: True (default) when calls may block on I/O: the runtime runs them on the
      adapter's own worker thread with a per-attempt timeout. False only for in-process
      simulators whose every call returns in microseconds: they run inline on the dispatcher
      thread, and a call that overruns ``inline_budget_us`` is reported (``InlineCallOverran``).
    - ``lookup_covers_closed``: True when ``fetch_order`` answers for every order the venue
      ever accepted under this adapter, closed ones included (a durable venue book). Only then
      can a "not found" prove absence.
    - ``absence_window_s``: the venue's propagation window in seconds: how long after a send
      an order may still be invisible to ``fetch_order``. "Not found" proves absence only once
      this much time has passed since the last send of that client order id.
    - ``supports_lookup``: False when the venue has no order lookup at all (e.g. a FIX
      acceptor without OrderStatusRequest): every lookup is *unknown*.
    - ``group_commit``: True when the adapter persists its calls in groups: it has
      ``begin_batch()`` and ``end_batch()``, and the worker runs the calls queued together
      between the two (at most ``VenueWorker.batch_max``) and hands out none of their outcomes
      before ``end_batch()`` returned. ``end_batch()`` raises ``FatalAdapterError`` when the
      group's write failed: then every call of the group failed and none is durable (each
      answers that error). Only for a blocking adapter. Optional: ``after_batch()``, which the
      worker calls after a group's outcomes went out when no call waits (housekeeping off the
      order's path, e.g. the durable paper book's WAL checkpoint).
    - ``sends_async``: True when a blocking adapter can also *send* a new order or a cancel
      without waiting for the answer (:class:`AsyncSender`: ``send_order`` / ``send_cancel``),
      e.g. a FIX session whose answers arrive on its own reader thread. The runtime then
      writes the request from the adapter actor (measured against ``inline_budget_us``, like
      an inline call) and the adapter hands the outcome back through ``done`` from any
      thread, with no worker-thread hop either way; the attempt timeout still guards the
      answer. A request the adapter cannot send at once (not logged on) goes to the worker.
    - ``in_process``: True when a blocking adapter's calls touch only this process and its
      local files (no network, e.g. the durable paper book's SQLite commit): a thread waiting
      for an order's answer may then make that order's call itself instead of the worker
      thread (docs/DESIGN.md "Threads"), so a call must not block for long.

    Example::

        >>> AdapterCapabilities(blocking=False, lookup_covers_closed=True, absence_window_s=0).blocking
        False
    """

    blocking: bool = True
    lookup_covers_closed: bool = False
    absence_window_s: float = Field(default=5.0, ge=0, allow_inf_nan=False)
    supports_lookup: bool = True
    inline_budget_us: int = Field(default=2_000, gt=0)
    group_commit: bool = False
    sends_async: bool = False
    in_process: bool = False


#: What an adapter that declares nothing is taken to be: blocking, lookups never prove absence.
DEFAULT_CAPABILITIES = AdapterCapabilities()


def adapter_capabilities(adapter: object) -> AdapterCapabilities:
    """The capabilities ``adapter`` declares in its ``capabilities`` attribute, or
    :data:`DEFAULT_CAPABILITIES` when it declares none (the one place the runtime reads them).

    Raises ``TypeError`` naming the adapter when ``capabilities`` is set to anything but an
    :class:`AdapterCapabilities` (a typo there must not silently mean "no authority").
    """
    caps = getattr(adapter, "capabilities", None)
    if caps is None:
        return DEFAULT_CAPABILITIES
    if not isinstance(caps, AdapterCapabilities):
        raise TypeError(
            f"adapter {getattr(adapter, 'adapter_id', adapter)!r}: capabilities must be a "
            f"protocols.AdapterCapabilities, not {type(caps).__name__}"
        )
    return caps


class LookupOutcome(str, Enum):
    """The three values of an order lookup (adapter contract v2)."""

    FOUND = "FOUND"  # the venue knows the order: ``OrderLookup.state`` is its state
    ABSENT = "ABSENT"  # proven: the venue's lookup covers closed orders and the window has passed
    UNKNOWN = "UNKNOWN"  # anything else: not found too early, no authority, an error, no lookup


class OrderLookup(Frozen):
    """One classified answer of ``fetch_order`` (see :func:`classify_lookup`)."""

    client_order_id: str
    outcome: LookupOutcome
    state: VenueOrderState | None = None
    reason: str = ""

    @property
    def found(self) -> bool:
        """True when the venue returned a state."""
        return self.outcome is LookupOutcome.FOUND

    @property
    def absent(self) -> bool:
        """True only on proof of absence: the one answer that allows a re-send."""
        return self.outcome is LookupOutcome.ABSENT


def classify_lookup(
    client_order_id: str,
    answer: VenueOrderState | BaseException | None,
    capabilities: AdapterCapabilities,
    since_last_send_s: float | None,
) -> OrderLookup:
    """Classify one ``fetch_order`` answer as found, proven absent or unknown.

    ``answer`` is what ``fetch_order`` returned (a state or None) or the exception it raised;
    ``since_last_send_s`` is the time in seconds since the id was last handed to the venue
    (None when unknown). "Not found" is proof of absence only when the adapter declares
    ``lookup_covers_closed`` and at least ``absence_window_s`` has passed since the last send
    (with a window of 0 the time does not matter: the venue shows an order as soon as it
    answers the send); every exception is *unknown*.

    Example::

        >>> caps = AdapterCapabilities(lookup_covers_closed=True, absence_window_s=2)
        >>> classify_lookup("c-1", None, caps, 0.5).outcome.value
        'UNKNOWN'
        >>> classify_lookup("c-1", None, caps, 3.0).outcome.value
        'ABSENT'
    """
    if isinstance(answer, BaseException):
        return OrderLookup(
            client_order_id=client_order_id,
            outcome=LookupOutcome.UNKNOWN,
            reason=f"lookup failed: {type(answer).__name__}: {answer}",
        )
    if answer is not None:
        return OrderLookup(client_order_id=client_order_id, outcome=LookupOutcome.FOUND, state=answer)
    if not capabilities.supports_lookup:
        reason = "the venue has no order lookup"
    elif not capabilities.lookup_covers_closed:
        reason = "not found, but the venue's lookup does not cover closed orders"
    elif since_last_send_s is None and capabilities.absence_window_s > 0:
        reason = "not found, but the time of the last send is unknown"
    elif since_last_send_s is not None and since_last_send_s < capabilities.absence_window_s:
        reason = (
            f"not found {since_last_send_s:.3f} s after the last send, inside the venue's "
            f"{capabilities.absence_window_s:g} s propagation window"
        )
    else:
        return OrderLookup(
            client_order_id=client_order_id,
            outcome=LookupOutcome.ABSENT,
            reason=(f"not found {since_last_send_s:.3f} s after the last send (window {capabilities.absence_window_s:g} s)"
                    if since_last_send_s is not None else "not found, and the venue shows every order at once (window 0 s)"),
        )
    return OrderLookup(client_order_id=client_order_id, outcome=LookupOutcome.UNKNOWN, reason=reason)


VenueEventKind = Literal["accepted", "rejected", "fill", "canceled", "cancel_rejected", "expired"]


class VenueEvent(Frozen):
    """An execution event pushed by a venue after the submit call returned (FIX ExecutionReport).

    ``kind`` says what happened; ``state`` is the order's venue state right after it (its
    ``fills`` so far and/or ``cum_qty``/``avg_px``); ``fill`` is the trade this event reports
    (FIX LastQty/LastPx/ExecID), set for ``kind == "fill"``. The ledger applies ``fill`` and
    then ``state``, each trade once by ``trade_id`` (so a ``fill`` already listed in
    ``state.fills`` counts once).
    """

    adapter_id: str
    kind: VenueEventKind
    state: VenueOrderState
    fill: Fill | None = None


EventSink = Callable[[VenueEvent], None]


def _storable_fill(fill: Fill, fields: list[str], where: str) -> Fill:
    joined = fill.trade_id + fill.fee_currency
    if joined.isascii() and "\x00" not in joined:  # neither holds a problem (see storable_venue_state)
        return fill
    update = {name: storable_text(value) for name in ("trade_id", "fee_currency")
              if text_problem(value := getattr(fill, name)) is not None}
    if not update:
        return fill
    fields.extend(f"{where}.{name}" for name in update)
    return fill.model_copy(update=update)


def storable_venue_state(state: VenueOrderState) -> tuple[VenueOrderState, tuple[str, ...]]:
    """``state`` as every journal can store it, and the names of the fields that were not.

    Where a venue's text enters flowroute (an adapter's answer, a pushed :class:`VenueEvent`) what
    no journal can store (``protocols.text_problem``: a NUL character, a lone surrogate) in
    ``client_order_id``, ``venue_order_id``, ``symbol``, ``reject_reason`` or a fill's
    ``trade_id`` / ``fee_currency`` is escaped (``protocols.storable_text``: ``\\x00``,
    ``\\udXXX``), never refused: the venue's answer (a fill) is kept, not lost, and its report,
    journal rows and cached answer all hold the same text. The escape is deterministic, so a fill
    reported again keeps its ``trade_id`` and counts once. ``()`` and ``state`` itself (no copy)
    when every field was fine, the common case.

    The common case is told at once: all the texts joined are ASCII and hold no NUL, so none of
    them holds either problem (a lone surrogate is not ASCII); only otherwise is each field
    checked on its own (tests/execution/test_venue_text.py holds the two equal).
    """
    joined = "".join([state.client_order_id, state.venue_order_id, state.symbol, state.reject_reason or "",
                      *[f.trade_id + f.fee_currency for f in state.fills]])
    if joined.isascii() and "\x00" not in joined:
        return state, ()
    fields: list[str] = []
    update: dict[str, Any] = {}
    for name in ("client_order_id", "venue_order_id", "symbol", "reject_reason"):
        value = getattr(state, name)
        if value is not None and text_problem(value) is not None:
            update[name] = storable_text(value)
            fields.append(name)
    if state.fills:
        fills = tuple(_storable_fill(f, fields, f"fills[{i}]") for i, f in enumerate(state.fills))
        if any(a is not b for a, b in zip(fills, state.fills, strict=True)):
            update["fills"] = fills
    if not update:
        return state, ()
    return state.model_copy(update=update), tuple(fields)


def storable_venue_event(event: VenueEvent) -> tuple[VenueEvent, tuple[str, ...]]:
    """:func:`storable_venue_state` for a pushed event: its ``state`` and its ``fill``."""
    state, fields = storable_venue_state(event.state)
    extra: list[str] = []
    fill = _storable_fill(event.fill, extra, "fill") if event.fill is not None else None
    if state is event.state and fill is event.fill:
        return event, ()
    return event.model_copy(update={"state": state, "fill": fill}), fields + tuple(extra)


#: ``done(result, error)``: how an :class:`AsyncSender` hands back the outcome of one request,
#: exactly once, from any thread: what the blocking call would have returned (``error`` None) or
#: raised (``result`` None).
AsyncDone = Callable[[Any, "BaseException | None"], None]


class AsyncSender(Protocol):
    """The optional non-blocking half of a blocking adapter (``capabilities.sends_async``).

    Each method writes its request and returns at once, without waiting for the venue's answer:
    True when the request was handed to the venue's transport, and ``done`` will be called
    exactly once, from any thread (possibly before the method returns), with what
    ``submit_order`` / ``cancel_order`` would have returned or raised (the same typed errors,
    e.g. ``NotDeliveredError`` when the write failed with nothing sent). False when it cannot
    send at once (e.g. not logged on): nothing was sent, ``done`` is never called, and the
    runtime makes the blocking call on the adapter's worker instead. Never blocks beyond one
    socket write; the runtime's attempt timeout covers an answer that never comes (a later
    ``done`` is ignored).
    """

    def send_order(self, order: VenueOrder, done: AsyncDone) -> bool:
        """Send a new order (as ``submit_order``); ``done`` gets its state after the acknowledgement."""
        ...

    def send_cancel(self, client_order_id: str, done: AsyncDone) -> bool:
        """Send a cancel (as ``cancel_order``); ``done`` gets the state after the cancel."""
        ...


@runtime_checkable
class BrokerAdapter(Protocol):
    """The contract every venue implements (README.md, Write an adapter; the module docstring says what each
    outcome means, README "Write an adapter" shows a complete adapter).

    Calls may block (unless ``capabilities.blocking`` is False) and may raise the typed
    ``AdapterError`` subclasses: ``NotDeliveredError`` (safe to retry), ``AmbiguousError``
    (order goes UNKNOWN), ``VenueRejectedError`` (final), ``FatalAdapterError`` (final, counts
    as failure); anything else is ambiguous. One instance serves one adapter-actor generation;
    the runtime calls ``start()`` first, runs every order call on one worker thread (in FIFO
    order), and retires it with ``release_hangs()`` and ``close()``. ``start()`` and
    ``release_hangs()`` are optional (no-ops when absent; see :func:`start_adapter`,
    :func:`retire_adapter`), as is ``capabilities`` (:data:`DEFAULT_CAPABILITIES`); a venue
    with a session or its own health facts implements :class:`HasSession` /
    :class:`ReportsHealth` too.
    """

    @property
    def adapter_id(self) -> str:
        """The id the adapter is routed by (``routing.policy`` values); a plain attribute will do."""
        ...

    @property
    def capabilities(self) -> AdapterCapabilities:
        """What the adapter declares about itself (blocking, lookup authority, propagation
        window); read once per adapter generation through :func:`adapter_capabilities`, which
        gives :data:`DEFAULT_CAPABILITIES` to an adapter that declares none."""
        ...

    def start(self) -> None:
        """Connect (log on, open files). Called once per adapter-actor generation, before any
        other call, on the actor's thread; raising is a start-up crash (restarted with backoff)."""
        ...

    def release_hangs(self) -> None:
        """Unblock every call stuck inside the venue (they should raise ``AmbiguousError``
        soon). Called from another thread when the instance is retired; must not block."""
        ...

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        """Send a new order; return its state right after the venue's acknowledgement.

        Must refuse a ``client_order_id`` it already holds (``VenueRejectedError`` with
        ``venue_code=DUPLICATE_CLIENT_ORDER_ID``): the runtime only ever re-sends an id after the
        venue proved absence, and relies on that refusal if the proof was wrong.
        """
        ...

    def cancel_order(self, client_order_id: str) -> VenueOrderState:
        """Cancel an open order; return its state after the cancel (CANCELED or a fill-terminal state).

        Raises ``VenueRejectedError`` when the venue refuses the cancel (unknown or already final).
        """
        ...

    def fetch_order(self, client_order_id: str) -> VenueOrderState | None:
        """The venue's state of the order, or None when the venue does not find it.

        None proves absence only as far as ``capabilities`` says (``lookup_covers_closed`` and
        ``absence_window_s``; see :func:`classify_lookup`); otherwise the order stays UNKNOWN
        and is looked up again. Any exception means "unknown".
        """
        ...

    def fetch_open_orders(self) -> tuple[VenueOrderState, ...]:
        """All orders still working at the venue."""
        ...

    def fetch_positions(self) -> Mapping[str, Decimal]:
        """Net position per symbol in base units, as the venue books it."""
        ...

    def fetch_account(self) -> Mapping[str, Decimal]:
        """Balance per currency, as the venue books it."""
        ...

    def set_event_sink(self, sink: EventSink | None) -> None:
        """Where to push execution events that happen after a call returned (fills of resting orders)."""
        ...

    def on_market(self, data: Quote | Trade) -> None:
        """Feed market data (simulated venues fill against it; real venues ignore it)."""
        ...

    def close(self) -> None:
        """Release connections and files; later calls raise ``NotDeliveredError``. Idempotent,
        called from any thread (after ``release_hangs``)."""
        ...
