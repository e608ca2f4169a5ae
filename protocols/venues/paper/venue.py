"""``PaperVenue``: a deterministic simulated venue over recorded quotes and trades (README.md, Write an adapter).

It implements ``protocols.BrokerAdapter`` with the fill model of ``fill_model`` (see its
numbered rules) and keeps its own book, in memory, durable in SQLite (``book``), or in
PostgreSQL shared by every process on that database (``pg_book``: N runtime processes trade
one book, as they would one exchange; docs/DESIGN.md "Scale-out").

Behaviour:

- **Time** is market-data time (the last Quote/Trade fed through :meth:`PaperVenue.on_market`),
  so a replay gives the same fills, trade ids and timestamps byte for byte.
- ``submit_order`` counts the call (:meth:`submission_counts`), refuses a client order id the
  book already knows (``VenueRejectedError("duplicate client order id")``, code
  ``DUPLICATE_CLIENT_ORDER_ID``; counted in :meth:`duplicate_submissions`), validates against
  the instrument (a failure is recorded as a REJECTED order and raised as ``VenueRejectedError``
  with the reason and a code), assigns ``venue_order_id`` ``f"{adapter_id}-o{n}"``, fills what is
  marketable, and returns the state. With a durable book the order and its immediate fills are
  committed in one transaction **before** the call returns, as a real venue knows what it received.
- **Group commit** (durable book): between :meth:`PaperVenue.begin_batch` and
  :meth:`PaperVenue.end_batch` the calls change memory and their change sets wait; ``end_batch``
  writes them all in one transaction. The caller (the adapter's venue worker, which declares
  ``group_commit`` in the capabilities) hands out none of their answers before ``end_batch``
  returned. A failed write fails the whole group closed: memory is reloaded from the book (which
  holds none of the group), ``end_batch`` raises ``FatalAdapterError``, and every later call of
  the group raises it too. Market data arriving during a group writes the group's waiting
  changes with its own before it pushes any event, so no event reports a change that is not
  in the book.
- **Refused values** (durable book, SQLite or shared): an order whose texts no book of flowroute's
  stores (a NUL character, a lone surrogate: ``pg_book.order_text_problem``) is rejected before it is matched,
  ``VenueRejectedError`` code ``VALUE_REFUSED`` naming the field, nothing booked, so it never
  fails the group it arrived in; a value the book's write refuses anyway (SQLSTATE class 22,
  ``protocols._refused.ValueRefused``) rejects that call the same way, and the book stays usable.
- ``on_market`` expires DAY orders at a UTC date change, fills resting orders and pushes
  ``VenueEvent`` values (``"fill"``, ``"expired"``) to the sink set by ``set_event_sink``.
- Thread safety: one internal lock guards the book (this simulator is outside the actor
  state rule); ``fetch_order`` of an order whose last change is written reads memory without it.
  Sink calls happen outside that lock, in order, under a separate delivery lock; a failing sink
  is logged and ignored.
- ``close()`` closes the book; later calls raise ``NotDeliveredError("venue closed")`` (market
  data is ignored).
- Balances are the net flows of fills and fees from zero (no funding, no insufficient-balance
  rejects); positions are net base quantities per symbol. Both are folded from the venue's fill
  log when they are read, not on every fill (same sums, off the per-order path).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

from loguru import logger

from ..._refused import ValueRefused
from ...adapter import AdapterCapabilities, EventSink, VenueEvent, VenueOrder, VenueOrderState
from ...market.values import Quote, Trade
from ...model.dataclass_compat import builder
from ...model.enums import OPEN_STATUSES, OrderStatus, OrderType, Side, TimeInForce
from ...model.errors import FatalAdapterError, NotDeliveredError, VenueRejectedError
from ...model.reports import Fill
from .book import BookChanges, BookStore, NullBook, SqliteBook, VenueOrderRecord, checkpoint_book, new_record
from .fill_model import (
    FILL_MODEL_VERSION,
    DepthEvidence,
    Execution,
    FillModel,
    FillModelConfig,
    PlannedFills,
    Resting,
    TopOfBook,
    base_currency,
    make_fill_model,
    quote_currency,
)
from .pg_book import MARKET_KEY, BookDelta, BookError, PgBook, market_from_json, market_to_json, order_text_problem
from .trusted import make_fill, make_state

#: ``VenueRejectedError.venue_code`` of an order the venue book cannot store (see the module docstring)
VALUE_REFUSED = "VALUE_REFUSED"
#: a resting order for the fill model, from values already checked (protocols/model/dataclass_compat.py)
_new_resting = builder(Resting)
#: in ``PaperVenue._limits`` entries ``(limit_price, position, client order id)``: the position of one,
#: and a position after every other (bisect past all the entries of one price)
_position = itemgetter(1)
_AFTER_ANY = float("inf")

_ACCEPTED, _REJECTED = OrderStatus.ACCEPTED, OrderStatus.REJECTED
_DURABLE_CAPS = AdapterCapabilities(blocking=True, lookup_covers_closed=True, absence_window_s=0, group_commit=True,
                                    in_process=True)
_MEMORY_CAPS = AdapterCapabilities(blocking=False, lookup_covers_closed=True, absence_window_s=0)
#: the book shared in PostgreSQL: its calls go over the network and wait for the book's row lock, so a
#: waiting caller never makes them itself (not ``in_process``)
_SHARED_CAPS = AdapterCapabilities(blocking=True, lookup_covers_closed=True, absence_window_s=0, group_commit=True)
#: a durable book whose last commits may have been lost (an OS crash or power cut, ``SqliteBook.tail_maybe_lost``):
#: "not found" proves nothing any more, so an order in doubt stays UNKNOWN rather than being taken as never sent
_LOST_TAIL_CAPS = AdapterCapabilities(blocking=True, lookup_covers_closed=False, absence_window_s=0, group_commit=True,
                                      in_process=True)
#: closed orders leave memory this many at a time (durable book only)
_EVICT_BATCH = 256


class PaperVenue:
    """A simulated venue with a documented, versioned fill model and its own (durable) book.

    ``PaperVenue(adapter_id="paper", *, config, book_path=None, account_id_prefix="", book=None)``:
    ``config`` is the :class:`FillModelConfig`; ``book_path`` a SQLite file for a durable book
    (None: in memory); ``book`` another durable :class:`~protocols.venues.paper.book.BookStore`
    instead of the file (not both; the venue closes it); ``account_id_prefix`` is put before
    each order's account id in the venue's own account naming (``ShadowVenue`` uses ``"shadow:"``).

    Raises ``ValueError`` when ``book_path`` holds another adapter's book or both a path and a
    store are given, ``sqlite3.Error`` when the file is not a database.

    With ``book`` a :class:`~protocols.venues.paper.pg_book.PgBook` (the book in PostgreSQL,
    shared by every process on that database) each change locks the book, first applies what
    other processes committed, then matches and commits; a group (``begin_batch``) holds that
    lock and writes once at ``end_batch``; reads apply it without locking. Fills and expiries are pushed to the sink of the process
    whose venue received the order: those caused by another process (its market data filled our
    resting order) are picked up by a poller thread every ``poll_interval_s``. Depth evidence
    (rule 6) is what this process's market data showed.
    """

    #: Whether orders are matched at all (``DryRunVenue`` turns it off).
    matching = True
    #: With a durable book, closed orders beyond the most recent this many leave memory (read back
    #: from the book on demand: ``fetch_order``, a duplicate id, a cancel), and so do booked fills
    #: (``fill_records`` reads the book), so a long session's memory stays flat.
    keep_closed = 10_000
    #: Shared book: how often other processes' changes are picked up when this venue is idle (s).
    poll_interval_s = 0.05

    def __init__(
        self,
        adapter_id: str = "paper",
        *,
        config: FillModelConfig | None = None,
        book_path: Path | str | None = None,
        account_id_prefix: str = "",
        book: BookStore | None = None,
    ) -> None:
        if not adapter_id:
            raise ValueError("adapter_id must not be empty")
        if book is not None and book_path is not None:
            raise ValueError("give book_path or book, not both")
        self.adapter_id = adapter_id
        self.config = config if config is not None else FillModelConfig()
        self.model: FillModel = make_fill_model(self.config)
        self._latency = timedelta(microseconds=self.config.latency_us)  # rule 1, for fills on arrival
        self.account_id_prefix = account_id_prefix
        self._lock = threading.Lock()
        self._deliver_lock = threading.RLock()
        self._sink: EventSink | None = None
        self._closed = False
        if book is None:
            book = (
                SqliteBook(book_path, adapter_id=adapter_id, fill_model_version=FILL_MODEL_VERSION)
                if book_path is not None
                else NullBook()
            )
        self._book: BookStore = book
        self._durable = not isinstance(book, NullBook)
        #: shared book: orders another process's venue received (their events are not ours to push)
        self._shared = isinstance(book, PgBook)
        self._foreign: set[str] = set()
        self._remote_events: list[VenueEvent] = []
        self._poller: threading.Thread | None = None
        self._poll_stop = threading.Event()
        #: shared book, group open: market data wrote the group's changes, which ended the lock
        self._relock = False
        self._fee_currency: dict[str, str] = {}  # symbol -> its quote currency
        #: group commit (begin_batch .. end_batch): the change sets waiting for the group's transaction
        self._held: BookChanges | None = None
        #: a group's change sets while its transaction is being written (set before ``_held`` lets go
        #: of them): what :meth:`fetch_order` must not answer from memory yet
        self._unwritten: BookChanges | None = None
        #: the group's write failed: every later call of the group fails with it (fail closed)
        self._group_error: FatalAdapterError | None = None
        #: the touch per symbol as of the last write (restored when a group's write fails)
        self._markets_written: dict[str, TopOfBook] = {}
        self._markets: dict[str, TopOfBook] = {}
        self._evidence: dict[str, DepthEvidence] = {}  # symbol -> recent quotes and trades (rule 6)
        self._now: datetime | None = None
        self._last_day: date | None = None
        self._reset_memory()
        try:
            self._load()
        except BaseException:
            self._book.close()
            raise
        if self._shared:
            self._poller = threading.Thread(target=self._poll_loop, name=f"paper-book-poll-{adapter_id}", daemon=True)
            self._poller.start()

    def _reset_memory(self) -> None:
        """The book's mirror in memory, empty (filled by :meth:`_load`)."""
        self._orders: dict[str, VenueOrderRecord] = {}
        self._by_seq: dict[int, str] = {}
        self._open: dict[str, dict[str, None]] = {}  # symbol -> client order ids, arrival order
        #: the open LIMIT orders of ``_open`` by price: (symbol, side) -> [(limit_price, position, client order id)]
        #: sorted, the position counting insertions into ``_open`` (so it gives ``_open``'s order back); see _resting
        self._limits: dict[tuple[str, Side], list[tuple[Decimal, int, str]]] = {}
        self._limit_of: dict[str, tuple[tuple[str, Side], tuple[Decimal, int, str]]] = {}  # coid -> its entry
        self._open_pos = 0
        self._fills: list[tuple[str, Fill]] = []
        self._booked = 0  # how many of ``_fills`` are in ``_positions``/``_balances`` (see _book_pending)
        self._submissions: dict[str, int] = {}
        self._duplicates = 0
        self._order_seq = 0
        self._fill_seq = 0
        self._consumed: set[tuple[str, str]] = set()
        #: durable book: closed orders in memory, oldest first (see ``keep_closed``); how many left
        self._closed_ids: dict[str, None] = {}
        self._evicted = 0
        self._loading = True
        self._positions: dict[str, dict[str, Decimal]] = {}
        self._balances: dict[str, dict[str, Decimal]] = {}

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        snap = self._book.load()
        for rec in snap.orders:
            self._put(rec)
            self._order_seq = max(self._order_seq, rec.seq)
        for seq, coid, fill in snap.fills:
            self._fills.append((coid, fill))
            self._fill_seq = max(self._fill_seq, seq)
        self._submissions = dict(snap.submissions)
        self._consumed = set(snap.consumed)
        meta = snap.meta
        self._order_seq = max(self._order_seq, int(meta.get("order_seq", 0)))
        self._fill_seq = max(self._fill_seq, int(meta.get("fill_seq", 0)))
        self._duplicates = int(meta.get("duplicates", 0))
        if meta.get("venue_time"):
            written = datetime.fromisoformat(meta["venue_time"])
            if self._now is None or written > self._now:  # (a reload keeps the later venue time)
                self._now = written
        if isinstance(snap, BookDelta):
            self._foreign = set(snap.foreign)
            self._apply_markets(meta)
        self._book_pending()
        self._loading = False
        if self._durable and len(self._closed_ids) > self.keep_closed:
            self._evict()

    # ------------------------------------------------------------------ shared book
    def _sync(self, lock: bool) -> None:
        """Shared book: apply what other processes committed; with ``lock`` the book stays locked
        until ``_commit`` (or ``PgBook.release``). Raises ``NotDeliveredError`` when the database
        cannot be reached (nothing was changed)."""
        if self._held is not None and not self._relock:
            return  # a group holds the book's lock and applied everything at begin_batch
        self._relock = False
        book = self._book
        assert isinstance(book, PgBook)
        try:
            delta = book.begin() if lock else book.refresh()
        except BookError as exc:
            raise NotDeliveredError(f"venue book unavailable: {exc}") from exc
        if delta is not None:
            self._apply_delta(delta)

    def _apply_delta(self, delta: BookDelta) -> None:
        """Bring memory up to what the shared book holds; queue the events of our own orders that
        another process changed (its market data filled or expired them)."""
        self._loading = True  # no eviction halfway through
        try:
            self._foreign |= delta.foreign
            push = self._sink is not None
            for rec in delta.orders:
                coid = rec.order.client_order_id
                if push and coid not in delta.foreign:
                    self._remote_events.extend(self._events_since(self._orders.get(coid), rec))
                self._put(rec)
                if rec.seq > self._order_seq:
                    self._order_seq = rec.seq
            for seq, coid, fill in delta.fills:
                self._fills.append((coid, fill))
                if seq > self._fill_seq:
                    self._fill_seq = seq
            self._submissions.update(delta.submissions)
            self._consumed |= delta.consumed
            meta = delta.meta
            self._order_seq = max(self._order_seq, int(meta.get("order_seq", 0)))
            self._fill_seq = max(self._fill_seq, int(meta.get("fill_seq", 0)))
            if "duplicates" in meta:
                self._duplicates = int(meta["duplicates"])
            if meta.get("venue_time"):
                venue_time = datetime.fromisoformat(meta["venue_time"])
                if self._now is None or venue_time > self._now:
                    self._now = venue_time
            self._apply_markets(meta)
        finally:
            self._loading = False
        if len(self._closed_ids) > self.keep_closed + _EVICT_BATCH and self._held is None:
            self._evict()

    def _apply_markets(self, meta: Mapping[str, str]) -> None:
        for key, value in meta.items():
            if key.startswith(MARKET_KEY):
                self._markets[key[len(MARKET_KEY):]] = market_from_json(value)

    def _events_since(self, old: VenueOrderRecord | None, new: VenueOrderRecord) -> list[VenueEvent]:
        """The events between two records of one of our orders: one per new fill, then an expiry."""
        events = []
        start = len(old.fills) if old is not None else 0
        for k in range(start, len(new.fills)):
            fills = new.fills[:k + 1]
            status = new.status if k + 1 == len(new.fills) and not new.status.is_open else (
                OrderStatus.FILLED if sum((f.qty for f in fills), Decimal(0)) >= new.order.quantity
                else OrderStatus.PARTIALLY_FILLED)
            state = make_state(new.order, new.venue_order_id, status, fills, new.reject_reason, fills[-1].ts)
            events.append(VenueEvent(adapter_id=self.adapter_id, kind="fill", state=state, fill=fills[-1]))
        if new.status is OrderStatus.EXPIRED and (old is None or old.status.is_open):
            events.append(VenueEvent(adapter_id=self.adapter_id, kind="expired", state=new.state()))
        return events

    def _poll_loop(self) -> None:
        while not self._poll_stop.wait(self.poll_interval_s):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - the database may come back; the next round tries again
                logger.warning("{}: shared venue book poll failed: {}", self.adapter_id, exc)

    def poll(self) -> None:
        """Shared book: pick up what other processes committed and push the events of this venue's
        orders they changed (the poller thread calls this every ``poll_interval_s``)."""
        if not self._shared:
            return
        with self._lock:
            if self._closed:
                return
            self._sync(lock=False)
            events, self._remote_events = self._remote_events, []
            self._deliver_lock.acquire()
        try:
            self._deliver(events)
        finally:
            self._deliver_lock.release()

    def _release(self) -> None:
        """Shared book: end the locked transaction without writing."""
        try:
            self._book.release()  # type: ignore[attr-defined]
        except BookError as exc:
            logger.warning("{}: {}", self.adapter_id, exc)

    # ------------------------------------------------------------------ group commit
    def begin_batch(self) -> None:
        """Open a group: until :meth:`end_batch`, each call changes memory and its change set waits.

        Called by the adapter's venue worker before a batch of queued calls (capability
        ``group_commit``); the answers of the group's calls must not be handed out before
        ``end_batch`` returned. Raises ``RuntimeError`` when a group is already open.
        """
        with self._lock:
            if self._held is not None:
                raise RuntimeError(f"{self.adapter_id}: a group is already open (begin_batch twice)")
            if self._shared:  # the group holds the book's lock until end_batch (NotDeliveredError: no group)
                self._sync(lock=True)
            self._held = BookChanges()
            self._group_error = None
            self._markets_written = dict(self._markets)

    def end_batch(self) -> None:
        """Write the group's change sets in one transaction and close the group.

        Raises ``FatalAdapterError`` when the write failed, now or earlier in the group (market
        data writing the group's changes): nothing of the group is in the book, memory has been
        reloaded from the book, and no answer of the group may be handed out as a success.
        A no-op when no group is open.
        """
        with self._lock:
            held, error = self._held, self._group_error
            if held:
                self._unwritten = held  # (before _held lets go of it: see fetch_order)
            self._held = self._group_error = None
            if held is None:
                return
            if error is not None:
                self._unwritten = None
                if self._shared:
                    self._release()
                raise FatalAdapterError(error.message)
            if held:
                self._write_group(held)
            elif self._shared:
                self._release()  # nothing to write: just end the lock
            if self._durable and len(self._closed_ids) > self.keep_closed + _EVICT_BATCH:
                self._evict()  # deferred while the group's orders were not in the book yet

    def after_batch(self) -> None:
        """Housekeeping between groups, called by the adapter's venue worker once a group's
        answers went out and no call waits: the durable book checkpoints its WAL here
        (``SqliteBook.checkpoint``), not inside an order's commit. Never needed for correctness."""
        with self._lock:
            if not self._closed and self._held is None:
                checkpoint_book(self._book)

    def _write_group(self, changes: BookChanges) -> None:
        """Write a group's changes (``_unwritten`` until written); on failure fail the group closed
        (see :meth:`end_batch`)."""
        try:
            self._book.commit(changes)
        except Exception as exc:  # any store failure is a failed write
            logger.opt(exception=exc).error("{}: venue book write of a group failed; reloading the book", self.adapter_id)
            error = FatalAdapterError(f"venue book write failed: {exc}")
            if self._held is not None:
                self._group_error = error  # the group's later calls fail too
            try:
                self._reload()
            finally:
                self._unwritten = None  # (only once memory holds the book again: see fetch_order)
            raise error from exc
        self._unwritten = None

    def _reload(self) -> None:
        """Memory := the book (after a failed group write: what the group changed is forgotten).

        Venue time and market data are not part of what failed and stay; the touch goes back to
        what it was at the last write (the group's fills no longer consumed it). A book that
        cannot be read back closes the venue (later calls: ``NotDeliveredError("venue closed")``).
        """
        now, last_day, markets = self._now, self._last_day, self._markets_written
        self._reset_memory()
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001 - the store is gone: stop serving rather than serve a guess
            logger.opt(exception=exc).error("{}: venue book cannot be read back; closing the venue", self.adapter_id)
            self._reset_memory()
            self._loading = False
            self._closed = True
        self._now, self._last_day = now, last_day
        self._markets = dict(markets)

    # ------------------------------------------------------------------ BrokerAdapter
    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        """Validate, book and match ``order``; return its state right after acceptance.

        Raises ``VenueRejectedError`` (duplicate client order id, instrument filters, no market
        data, halted market; ``venue_code`` says which), ``NotDeliveredError`` after ``close()``,
        ``FatalAdapterError`` when the durable book cannot be written (nothing was booked).
        """
        with self._lock:
            if self._closed:  # self._ensure_open(), inline
                raise NotDeliveredError("venue closed")
            if self._durable:
                problem = order_text_problem(order)
                if problem is not None:  # would fail the book's write (and with it a whole group): nothing booked
                    raise VenueRejectedError(f"the venue book cannot store this order: {problem}", venue_code=VALUE_REFUSED)
            if self._shared:
                self._sync(lock=True)
            coid = order.client_order_id
            count = self._submissions.get(coid, 0) + 1
            if coid not in self._orders and self._evicted and self._book.load_order(coid) is not None:
                count = self._book.submission_counts_of(coid) + 1  # a duplicate of an order no longer in memory
            if coid in self._orders or count > 1:
                changes = BookChanges(submissions={coid: count})
                changes.meta["duplicates"] = str(self._duplicates + 1)
                self._commit(changes)
                self._submissions[coid] = count
                self._duplicates += 1
                raise VenueRejectedError("duplicate client order id", venue_code="DUPLICATE_CLIENT_ORDER_ID")
            symbol = order.symbol
            book = self._markets.get(symbol)
            seq = self._order_seq + 1
            now = self._now if self._now is not None else order.ts
            rejection = self.model.check(order, book)
            executions: PlannedFills = ()
            if rejection is not None:
                status = _REJECTED
            elif not self.matching:
                status = _ACCEPTED
            else:
                executions, status, book = self.model._plan_arrival(order, book, self._evidence.get(symbol))
            fill_seq = self._fill_seq
            if executions:
                fill_ts = now + self._latency
                fills = self._make_fills(symbol, fill_seq, executions, fill_ts)
            else:
                fill_ts, fills = now, ()
            venue_order_id = f"{self.adapter_id}-o{seq}"
            reason = rejection.reason if rejection is not None else None
            rec = new_record(
                seq,
                order,
                venue_order_id,
                self.account_id_prefix + order.account_id,
                status,
                fills,
                reason,
                now.date(),
                fill_ts,
            )
            if self._durable:  # an in-memory book writes nothing: no change set to build
                changes = BookChanges(submissions={coid: count}, orders={coid: rec})
                changes.fills.extend((fill_seq + i + 1, coid, f) for i, f in enumerate(fills))
                changes.meta["order_seq"] = str(seq)
                changes.meta["fill_seq"] = str(fill_seq + len(fills))
                if self._shared and book is not None and book is not self._markets.get(symbol):
                    changes.meta[MARKET_KEY + symbol] = market_to_json(book)  # what this order took from the touch
                self._commit(changes)
            # apply
            self._submissions[coid] = count
            self._order_seq = seq
            self._put(rec)
            if fills:
                self._fill_seq = fill_seq + len(fills)
                append = self._fills.append
                for fill in fills:
                    append((coid, fill))
            if book is not None:
                self._markets[symbol] = book
            state = make_state(order, venue_order_id, status, fills, reason, fill_ts)  # rec.state()
        if rejection is not None:
            raise VenueRejectedError(rejection.reason, venue_code=rejection.code)
        return state

    def cancel_order(self, client_order_id: str) -> VenueOrderState:
        """Cancel a working order; return its CANCELED state (fills so far kept).

        Raises ``VenueRejectedError`` for an unknown order (``UNKNOWN_ORDER``) or one already
        final (``ORDER_CLOSED``), ``NotDeliveredError`` after ``close()``.
        """
        with self._lock:
            self._ensure_open()
            if self._shared:
                self._sync(lock=True)
            rec = self._get(client_order_id)
            if rec is None or rec.status.is_terminal:
                if self._shared and self._held is None:
                    self._release()
                if rec is None:
                    raise VenueRejectedError("unknown order", venue_code="UNKNOWN_ORDER")
                raise VenueRejectedError(f"order is already {rec.status.value}", venue_code="ORDER_CLOSED")
            new = replace(rec, status=OrderStatus.CANCELED, ts=self._now if self._now is not None else rec.ts)
            self._commit(BookChanges(orders={client_order_id: new}))
            self._put(new)
            return new.state()

    def fetch_order(self, client_order_id: str) -> VenueOrderState | None:
        """The venue's state of the order, or None: the venue proves it never received it.

        An order in memory whose last change is in the book (no open or unwritten group holds a
        change of it) is answered from memory without the venue's lock, so a lookup never waits
        behind a group's or a quote's book write; anything else (a change not written yet, an
        order not in memory, a shared book) takes the lock as every other call does."""
        if not self._shared:
            rec = self._orders.get(client_order_id)
            # checked after the record is read: a group merges its change set before it puts the
            # record and hands it to ``_unwritten`` before ``_held`` lets go of it (end_batch); a
            # failed write reloads memory (new records) before ``_unwritten`` lets go of it
            if (rec is not None and not self._closed and not self._unwritten_change(client_order_id)
                    and self._orders.get(client_order_id) is rec):
                return rec.state()
        with self._lock:
            self._ensure_open()
            if self._shared:
                self._sync(lock=False)
            rec = self._get(client_order_id)
            return rec.state() if rec is not None else None

    def fetch_open_orders(self) -> tuple[VenueOrderState, ...]:
        """All working orders (ACCEPTED, PARTIALLY_FILLED), in arrival order."""
        with self._lock:
            self._ensure_open()
            if self._shared:
                self._sync(lock=False)
            recs = [self._orders[c] for ids in self._open.values() for c in ids]
            return tuple(r.state() for r in sorted(recs, key=lambda r: r.seq))

    def fetch_positions(self, account_id: str | None = None) -> Mapping[str, Decimal]:
        """Net position per symbol in base units from the venue's own fills.

        ``account_id`` (the order's account id, without prefix) restricts to one account;
        None sums all accounts.
        """
        with self._lock:
            self._ensure_open()
            if self._shared:
                self._sync(lock=False)
            self._book_pending()
            return self._sum(self._positions, account_id)

    def fetch_account(self, account_id: str | None = None) -> Mapping[str, Decimal]:
        """Balance per currency: base bought minus sold, quote paid/received, minus fees (from zero)."""
        with self._lock:
            self._ensure_open()
            if self._shared:
                self._sync(lock=False)
            self._book_pending()
            return self._sum(self._balances, account_id)

    def set_event_sink(self, sink: EventSink | None) -> None:
        """Where fills/expiries of resting orders are pushed (``VenueEvent``); None stops pushing."""
        self._sink = sink

    def on_market(self, data: Quote | Trade) -> None:
        """Advance venue time to ``data.ts``, expire DAY orders at a date change, match resting orders.

        Pushes one ``VenueEvent`` per fill (``kind="fill"``) and per expiry (``kind="expired"``)
        after the book was committed. Ignored after ``close()``. Raises ``FatalAdapterError``
        when the durable book cannot be written (memory is then unchanged).
        """
        events: list[VenueEvent] = []
        with self._lock:
            if self._closed:
                return
            if self._shared:
                try:
                    self._sync(lock=True)
                except NotDeliveredError as exc:
                    raise FatalAdapterError(str(exc)) from exc
                prev = self._markets.get(data.symbol)
                if isinstance(data, Quote) and prev is not None and prev.quote == data:
                    if self._held is None:
                        self._release()  # the same quote, fed by another process too: the market moved once
                    return
            changes = BookChanges()
            updated: dict[str, VenueOrderRecord] = {}
            new_fills: list[tuple[str, Fill]] = []
            ts = data.ts
            now = ts if self._now is None or ts > self._now else self._now
            self._expire_day_orders(ts, updated, events)
            symbol = data.symbol
            market_update: TopOfBook | None = None
            matches: list[tuple[int, Execution]] = []
            consumed: tuple[str, str] | None = None
            if isinstance(data, Quote):
                market_update = self.model.on_quote(self._markets.get(symbol), data)
                if self.matching and market_update.quote is data and not market_update.halted:
                    resting = self._resting(symbol, updated, self.model.resting_bounds(market_update))
                    market_update, matches = self.model.match_quote(market_update, resting)
            else:
                market_update = self.model.on_trade(self._markets.get(symbol), data)
                key = (symbol, data.trade_id)
                if self.matching and key not in self._consumed:
                    resting = self._resting(symbol, updated, self.model.resting_bounds(market_update, data))
                    matches = self.model.match_trade(data, resting, market_update)
                    if matches:
                        consumed = key
            fill_seq = self._fill_seq
            for seq, ex in matches:
                coid = self._by_seq[seq]
                rec = updated.get(coid) or self._orders[coid]
                fill_seq += 1
                fill = self._fill(symbol, fill_seq, ex, ts)
                fills = rec.fills + (fill,)
                filled = sum((f.qty for f in fills), Decimal(0)) >= rec.order.quantity
                status = OrderStatus.FILLED if filled else OrderStatus.PARTIALLY_FILLED
                rec = replace(rec, fills=fills, status=status, ts=ts)
                updated[coid] = rec
                new_fills.append((coid, fill))
                changes.fills.append((fill_seq, coid, fill))
                events.append(VenueEvent(adapter_id=self.adapter_id, kind="fill", state=rec.state(), fill=fill))
            changes.orders = updated
            if consumed is not None:
                changes.consumed.append(consumed)
            if self._shared and market_update is not None and market_update is not self._markets.get(symbol):
                changes.meta[MARKET_KEY + symbol] = market_to_json(market_update)
            if changes:
                changes.meta["fill_seq"] = str(fill_seq)
                changes.meta["venue_time"] = now.isoformat()
            self._commit(changes, now=True)  # with a group open: the group's changes too, before any event
            # apply
            self._now = now
            self._last_day = max(self._last_day, ts.date()) if self._last_day is not None else ts.date()
            self._fill_seq = fill_seq
            for rec in updated.values():
                self._put(rec)
            self._fills.extend(new_fills)
            if consumed is not None:
                self._consumed.add(consumed)
            if market_update is not None:
                self._markets[symbol] = market_update
            evidence = self._evidence.get(symbol)
            if evidence is None:
                evidence = self._evidence[symbol] = self.model.new_evidence()
            self.model.observe(evidence, data)
            if self._shared:  # push only our own orders' events; and those other processes caused
                foreign = self._foreign
                events = self._remote_events + [e for e in events if e.state.client_order_id not in foreign]
                self._remote_events = []
                if self._relock:  # a group is open and this wrote its changes: lock the book again
                    try:
                        self._sync(lock=True)
                    except NotDeliveredError as exc:
                        self._group_error = FatalAdapterError(f"venue book write failed: {exc}")
            if self._held is not None:
                self._markets_written = dict(self._markets)  # everything so far is in the book
            self._deliver_lock.acquire()
        try:
            self._deliver(events)
        finally:
            self._deliver_lock.release()

    def start(self) -> None:
        """Nothing to connect: the book was opened by the constructor."""

    def release_hangs(self) -> None:
        """Nothing ever hangs here (no network); a no-op."""

    def close(self) -> None:
        """Close the book (idempotent). Further calls raise ``NotDeliveredError``."""
        with self._lock:
            if self._closed:
                return
            if self._held:  # a group is open: what its calls did reached the venue, write it
                try:
                    self._commit(BookChanges(), now=True)
                except FatalAdapterError:
                    pass  # end_batch raises it to the group's caller
            self._closed = True
            self._poll_stop.set()
            self._book.close()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5.0)

    # ------------------------------------------------------------------ probes
    def submission_counts(self) -> dict[str, int]:
        """Submit calls that reached the venue per client order id (duplicates and rejects included)."""
        with self._lock:
            if self._shared and not self._closed:
                self._sync(lock=False)
            if self._evicted:
                return self._book.submission_counts()
            return dict(self._submissions)

    def duplicate_submissions(self) -> int:
        """How many submit calls reused a client order id the book already knew."""
        with self._lock:
            if self._shared and not self._closed:
                self._sync(lock=False)
            return self._duplicates

    def fills(self) -> tuple[Fill, ...]:
        """All fills of this venue in the order they happened."""
        with self._lock:
            if self._shared and not self._closed:
                self._sync(lock=False)
            if self._evicted:
                return tuple(f for _, f in self._book.fill_records())
            return tuple(f for _, f in self._fills)

    def fill_records(self) -> tuple[tuple[str, Fill], ...]:
        """All fills as ``(client_order_id, Fill)`` in the order they happened."""
        with self._lock:
            if self._shared and not self._closed:
                self._sync(lock=False)
            if self._evicted:
                return tuple(self._book.fill_records())
            return tuple(self._fills)

    def market_time(self) -> datetime | None:
        """The venue clock: the ``ts`` of the latest market data seen (None before any)."""
        with self._lock:
            return self._now

    def touch(self, symbol: str) -> Quote | None:
        """The last good quote of ``symbol`` (fill-model rule 11), or None."""
        with self._lock:
            book = self._markets.get(symbol)
            return book.quote if book is not None else None

    @property
    def shared(self) -> bool:
        """True when the book lives in PostgreSQL, shared with other processes (``PgBook``)."""
        return self._shared

    @property
    def book_path(self) -> Path | None:
        """The durable book's file, or None for an in-memory book."""
        return self._book.path

    @property
    def capabilities(self) -> AdapterCapabilities:
        """What this venue declares (``protocols.AdapterCapabilities``):

        - ``blocking`` only with a durable book (it writes per call); an in-memory
          book never waits on I/O, so the adapter actor calls it inline;
        - ``group_commit`` with a durable book: the worker runs the calls queued together
          between :meth:`begin_batch` and :meth:`end_batch` (one transaction for all; a shared
          book is locked and brought up to date at ``begin_batch``);
        - ``lookup_covers_closed``: ``fetch_order`` answers from the book, which keeps every
          order it ever accepted (closed ones too);
        - ``absence_window_s = 0``: an order is in the book before ``submit_order`` returns, so
          "not found" is proof of absence at once;
        - ``in_process`` with a SQLite book (a local commit): a caller waiting for its order may make
          the call itself (docs/DESIGN.md "Threads"); not with the book shared in PostgreSQL;
        - except after an OS crash or power cut that may have cost the book its last commits
          (``SqliteBook.tail_maybe_lost``, docs/DESIGN.md "Durability"): then ``lookup_covers_closed``
          is False and "not found" proves nothing (the order stays UNKNOWN, for an operator).
        """
        if not self._durable:
            return _MEMORY_CAPS
        if self._shared:
            return _SHARED_CAPS
        return _LOST_TAIL_CAPS if getattr(self._book, "tail_maybe_lost", False) else _DURABLE_CAPS

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.adapter_id!r} orders={len(self._orders)} fills={len(self._fills)}"
            f" book={str(self._book.path) if self._book.path else 'postgresql' if self._shared else 'memory'}>"
        )

    # ------------------------------------------------------------------ internals
    def _ensure_open(self) -> None:
        if self._closed:
            raise NotDeliveredError("venue closed")

    def _commit(self, changes: BookChanges, *, now: bool = False) -> None:
        """Write one operation's ``changes`` before it is applied to memory (memory unchanged on failure).

        With a group open the changes wait for :meth:`end_batch`, unless ``now`` (market data:
        its events go out after this returns), which writes the group's waiting changes with
        them. Raises ``FatalAdapterError`` when the write failed or the group already failed.
        """
        held = self._held
        if held is not None:
            if self._group_error is not None:
                raise FatalAdapterError(self._group_error.message)
            held.merge(changes)
            if not now:
                return
            if held:
                self._unwritten = held  # (before _held lets go of it: see fetch_order)
            self._held = BookChanges()
            if held:
                self._write_group(held)
                self._relock = self._shared  # the write ended the book's lock: on_market takes it again
            return
        try:
            self._book.commit(changes)
        except ValueRefused as exc:  # the operation's values, not the store: that call is rejected, the book goes on
            logger.error("{}: {}", self.adapter_id, exc)
            raise VenueRejectedError(f"the venue book cannot store this order: {exc}", venue_code=VALUE_REFUSED) from exc
        except Exception as exc:  # any other store failure is a failed write
            logger.opt(exception=exc).error("{}: venue book write failed", self.adapter_id)
            raise FatalAdapterError(f"venue book write failed: {exc}") from exc

    def _unwritten_change(self, client_order_id: str) -> bool:
        """Whether a change of the order waits in an open group or in the group being written."""
        held = self._held
        if held is not None and client_order_id in held.orders:
            return True
        unwritten = self._unwritten
        return unwritten is not None and client_order_id in unwritten.orders

    def _put(self, rec: VenueOrderRecord) -> None:
        coid = rec.order.client_order_id
        self._orders[coid] = rec
        self._by_seq[rec.seq] = coid
        symbol = rec.order.symbol
        if rec.status in OPEN_STATUSES:  # status.is_open
            ids = self._open.setdefault(symbol, {})
            if coid not in ids:
                ids[coid] = None
                order = rec.order
                if order.order_type is OrderType.LIMIT and order.limit_price is not None:
                    self._open_pos += 1
                    key, entry = (symbol, order.side), (order.limit_price, self._open_pos, coid)
                    insort(self._limits.setdefault(key, []), entry)
                    self._limit_of[coid] = (key, entry)
        else:
            open_ids = self._open.get(symbol)
            if open_ids is not None:
                if coid in open_ids:
                    del open_ids[coid]
                    indexed = self._limit_of.pop(coid, None)
                    if indexed is not None:
                        book = self._limits[indexed[0]]
                        del book[bisect_left(book, indexed[1])]
                if not open_ids:
                    del self._open[symbol]
            if self._durable:  # (while loading, the fills of every order are not booked yet)
                closed = self._closed_ids
                closed[coid] = None
                if len(closed) > self.keep_closed + _EVICT_BATCH and not self._loading and self._held is None:
                    self._evict()  # (in a group: at end_batch, once its orders are in the book)

    def _get(self, client_order_id: str) -> VenueOrderRecord | None:
        """The order's record: in memory, or read back from the durable book."""
        rec = self._orders.get(client_order_id)
        if rec is None and self._evicted:
            rec = self._book.load_order(client_order_id)
        return rec

    def _evict(self) -> None:
        """Durable book: the oldest closed orders beyond ``keep_closed`` leave memory, and so do the
        fills already folded into positions (everything is in the book already)."""
        self._book_pending()  # positions hold every fill before the orders they need leave
        closed = self._closed_ids
        for _ in range(len(closed) - self.keep_closed):
            coid = next(iter(closed))
            del closed[coid]
            rec = self._orders.pop(coid, None)
            if rec is not None:
                if self._by_seq.get(rec.seq) == coid:
                    del self._by_seq[rec.seq]
                self._submissions.pop(coid, None)
                self._foreign.discard(coid)  # (shared book) a closed order's events are all pushed
                self._evicted += 1
        del self._fills[:self._booked]
        self._booked = 0

    def _resting(self, symbol: str, updated: Mapping[str, VenueOrderRecord],
                 bounds: tuple[Decimal | None, Decimal | None] = (None, None)) -> list[Resting]:
        """The open LIMIT orders of ``symbol`` as the fill model sees them, on every quote and trade:
        ``leaves_qty`` without the record's properties (an order with no fill leaves its quantity),
        ``Resting`` built without its ``__init__`` (``dataclass_compat.builder``), in arrival order
        (``_open``'s). ``bounds``: the model's ``resting_bounds`` (``(buy_floor, sell_cap)``): only the
        BUYs at or above the floor and the SELLs at or below the cap, found in ``_limits`` by price
        instead of visiting every open order (what can fill is a few of hundreds resting); with both
        None every open LIMIT order."""
        out: list[Resting] = []
        orders, limit, zero = self._orders, OrderType.LIMIT, Decimal(0)
        buy_floor, sell_cap = bounds
        if buy_floor is None and sell_cap is None:
            candidates: Any = self._open.get(symbol, ())
        else:
            buys: Sequence[tuple[Decimal, int, str]] = self._limits.get((symbol, Side.BUY), ())
            sells: Sequence[tuple[Decimal, int, str]] = self._limits.get((symbol, Side.SELL), ())
            if buy_floor is not None:
                buys = buys[bisect_left(buys, (buy_floor,)):]
            if sell_cap is not None:
                sells = sells[:bisect_right(sells, (sell_cap, _AFTER_ANY))]
            if not buys and not sells:
                return out
            candidates = [e[2] for e in sorted((*buys, *sells), key=_position)]
        for coid in candidates:
            rec = updated.get(coid) or orders[coid]
            order = rec.order
            if order.order_type is not limit or rec.status not in OPEN_STATUSES:  # status.is_open
                continue
            assert order.limit_price is not None
            fills = rec.fills
            leaves = order.quantity - sum((f.qty for f in fills), zero) if fills else order.quantity  # rec.leaves_qty
            out.append(_new_resting(rec.seq, order.side, order.limit_price, leaves))
        return out

    def _expire_day_orders(self, ts: datetime, updated: dict[str, VenueOrderRecord], events: list[VenueEvent]) -> None:
        day = ts.date()
        if self._last_day is not None and day <= self._last_day:
            return
        for ids in self._open.values():
            for coid in ids:
                rec = self._orders[coid]
                if rec.order.time_in_force is TimeInForce.DAY and self.model.day_expired(rec.day, day):
                    new = replace(rec, status=OrderStatus.EXPIRED, ts=ts)
                    updated[coid] = new
                    events.append(VenueEvent(adapter_id=self.adapter_id, kind="expired", state=new.state()))

    def _make_fills(self, symbol: str, seq: int, executions: PlannedFills, ts: datetime) -> tuple[Fill, ...]:
        """The fills of ``executions`` (``(qty, price, liquidity)``): trade ids numbered from
        ``seq + 1`` (rule 13), fees by rule 12 in the quote currency, stamped ``ts``."""
        prefix = self.adapter_id
        fee = self.model.fee
        currency = self._fee_currency.get(symbol)
        if currency is None:
            currency = self._fee_currency[symbol] = quote_currency(symbol)
        fills = []
        for qty, price, liquidity in executions:
            seq += 1
            # built without re-validation (``_trusted``): qty and price come from the fill model
            # (derived from the validated order, quote and instrument), the fee is >= 0 (rule 12)
            fills.append(make_fill(f"{prefix}-{seq}", qty, price, fee(qty, price, liquidity), currency, liquidity, ts))
        return tuple(fills)

    def _fill(self, symbol: str, seq: int, ex: Execution, ts: datetime) -> Fill:
        return self._make_fills(symbol, seq - 1, ((ex.qty, ex.price, ex.liquidity),), ts)[0]

    def _book_pending(self) -> None:
        """Bring positions and balances up to date with the fill log.

        They are a view of ``_fills`` folded in venue order, brought up to date when they are
        read (``fetch_positions``, ``fetch_account``) instead of on every fill: the same
        additions in the same order, kept off the per-order path. An order's account, symbol
        and side never change, so its current record books its fills as its first one would.
        """
        fills = self._fills
        for i in range(self._booked, len(fills)):
            coid, fill = fills[i]
            self._book_fill(self._orders[coid], fill)
        self._booked = len(fills)

    def _book_fill(self, rec: VenueOrderRecord, fill: Fill) -> None:
        symbol = rec.order.symbol
        sign = rec.order.side.sign
        pos = self._positions.setdefault(rec.account, {})
        pos[symbol] = pos.get(symbol, Decimal(0)) + sign * fill.qty
        bal = self._balances.setdefault(rec.account, {})
        base, quote = base_currency(symbol), quote_currency(symbol)
        bal[base] = bal.get(base, Decimal(0)) + sign * fill.qty
        bal[quote] = bal.get(quote, Decimal(0)) - sign * fill.qty * fill.price
        if fill.fee:
            ccy = fill.fee_currency or quote
            bal[ccy] = bal.get(ccy, Decimal(0)) - fill.fee

    def _sum(self, per_account: dict[str, dict[str, Decimal]], account_id: str | None) -> dict[str, Decimal]:
        if account_id is not None:
            return dict(sorted(per_account.get(self.account_id_prefix + account_id, {}).items()))
        out: dict[str, Decimal] = {}
        for values in per_account.values():
            for key, value in values.items():
                out[key] = out.get(key, Decimal(0)) + value
        return dict(sorted(out.items()))

    def _deliver(self, events: list[VenueEvent]) -> None:
        sink = self._sink
        if sink is None:
            return
        for event in events:
            try:
                sink(event)
            except Exception as exc:  # noqa: BLE001 - a failing sink never breaks the venue
                logger.opt(exception=exc).warning("{}: event sink failed on {}", self.adapter_id, event.kind)
