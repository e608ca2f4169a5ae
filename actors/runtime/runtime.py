"""The ``Runtime`` facade: start the topology, submit, cancel, query, subscribe, stop (README.md).

Every method is safe to call from any thread. Nothing a caller gets back is mutable
runtime state: reports, positions and health are frozen snapshots. Every ask has a
timeout; all threads are daemons, so the interpreter never hangs at exit; two runtimes in
one process share nothing (each has its own actors, clock, metrics registry and files).

Example::

    >>> from decimal import Decimal
    >>> from actors import Runtime
    >>> from config import load_settings
    >>> from protocols import ExecutionContext, OrderIntent, Quote
    >>> with Runtime.start(load_settings("test", journal={"enabled": False})) as rt:
    ...     rt.on_market(Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=Decimal("39432.99"),
    ...                        bid_size=Decimal("1"), ask=Decimal("39433.62"), ask_size=Decimal("1")))
    ...     report = rt.submit(OrderIntent(client_order_id="demo-1", symbol="BTC/USDT", side="BUY",
    ...                                    order_type="MARKET", quantity=Decimal("0.001")),
    ...                        ExecutionContext(mode="paper", account_id="acc-1")).result(timeout=5)
    >>> report.status.value, str(report.avg_px)
    ('FILLED', '39433.62')
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pykka
from loguru import logger
from pydantic import ValidationError

from protocols import (
    CLIENT_ORDER_ID_PATTERN,
    ORDER_EVENT_BY_STATUS,
    ErrorCode,
    Event,
    ExecError,
    ExecutionContext,
    ExecutionReport,
    HasSession,
    KeepsInbox,
    OrderIntent,
    OrderStatus,
    Quote,
    ReportsHealth,
    Trade,
    VenueEvent,
    VenueSessionChanged,
    reserved_client_order_id_problem,
    retire_adapter,
    storable_venue_event,
)

from ..audit.log import AuditRecord, parse_since, read_records
from ..audit.retention import apply_retention
from ..breaker.messages import BreakerCommand, GetBreaker
from ..events.messages import GetBusStats, Publish, Subscribe, Unsubscribe
from ..execution.adapter import InDoubt
from ..execution.messages import FlushWorker
from ..idempotency.messages import GetJournalStats
from ..journal.sqlite import RECORD_PAGE_SIZE, JournalError, JournalStore, MemoryJournal, SQLiteJournal, Synchronous
from ..kernel import gctune, interrupts
from ..kernel.base import ASK_TIMEOUT_S, OWN_THREAD_LINGER_S, ReplyFuture, exc_summary, now_ns, resolve, tell
from ..kernel.clock import Clock, RealClock
from ..kernel.dispatcher import Dispatcher
from ..observability.logs import RuntimeLogging
from ..observability.metrics import Metrics
from ..orders.books import Position
from ..orders.hooks import PreTradeHook, validate_hooks
from ..orders.messages import (
    AcknowledgeRefused,
    CancelOrder,
    ForgetWait,
    GetDailyPnl,
    GetDurability,
    GetEscalated,
    GetExposure,
    GetHistory,
    GetLedgerStats,
    GetOrder,
    GetPositions,
    GetRefusedRows,
    GetReservations,
    GetTradingStatus,
    ListOrders,
    MarketData,
    RefusedValues,
    RestoreLedger,
    SetPublishing,
    SetTradingState,
    SubmitOrder,
    SyncBrokerState,
    VenueEventReceived,
    WaitTerminal,
    new_submit_order,
)
from ..orders.pnl import DailyPnl
from ..orders.risk import Exposure, Reservation
from ..routing.messages import ForwardReconcile
from ..routing.router import RouteDenied, deny_unrouted
from ..supervision.messages import GetAdapterRefs, GetHealth, StartChildren, StopChildren
from ..supervision.supervisor import Health, SupervisorActor
from ..supervision.topology import Blueprint, TopologyView
from .inbox_trim import InboxTrimmer
from .recovery import RecoveredOrder, RecoveryOutcome, recover
from .registry import AdapterRegistry, default_registry
from .statelock import StateDirLock
from .sync import BrokerSyncReport

_runtime_ids = itertools.count(1)


def _abandoned_report(future: ReplyFuture, ts: datetime) -> ExecutionReport:
    """The UNKNOWN report ``Runtime.stop`` answers an order still in flight with: the order's own
    ids, symbol, side and attribution (``future.intent`` / ``future.context``, set by ``submit``)."""
    intent, context = future.intent, future.context
    error = ExecError.of(ErrorCode.E_EXEC_BROKER_TIMEOUT, "runtime stopped before the order finished; reconcile after restart")
    if intent is None or context is None:  # not an order's future (never handed out by submit without them)
        return ExecutionReport(client_order_id="", status=OrderStatus.UNKNOWN, ts=ts, error=error)
    return ExecutionReport(client_order_id=intent.client_order_id, account_id=context.account_id, symbol=intent.symbol,
                           side=intent.side, status=OrderStatus.UNKNOWN, ts=ts, error=error,
                           strategy_id=intent.strategy_id or context.strategy_id, session_id=context.session_id,
                           correlation_id=context.correlation_id)


def _storable_event(adapter_id: str, event: Any) -> Any:
    """A venue's pushed event as every journal can store it (``protocols.storable_venue_event``:
    text no journal can hold escaped, a warning naming the fields); anything else as it is."""
    if event.__class__ is not VenueEvent:
        return event
    event, fields = storable_venue_event(event)
    if fields:
        logger.warning("venue {}: an event for order {} held text no journal can store (a NUL character or a lone "
                       "surrogate) in {}; kept escaped (\\x00, \\udXXX)", adapter_id, event.state.client_order_id,
                       ", ".join(fields))
    return event


def _validation_message(exc: ValidationError, what: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or what
        parts.append(f"{what}.{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)[:1500]


_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)


def _cancel_argument_problem(client_order_id: Any, account_id: Any) -> str | None:
    """Why ``Runtime.cancel``'s arguments are unusable, or None when they are fine."""
    if not isinstance(client_order_id, str):
        return f"cancel: client_order_id must be a string, not {type(client_order_id).__name__}"
    if not _CLIENT_ORDER_ID.match(client_order_id):
        return f"cancel: client_order_id {client_order_id[:64]!r} is not a client order id (1-36 of [A-Za-z0-9._:/-])"
    if account_id is not None and not isinstance(account_id, str):
        return f"cancel: account_id must be a string or None, not {type(account_id).__name__}"
    return None


class Subscription:
    """A live subscription; :meth:`unsubscribe` stops deliveries (idempotent)."""

    def __init__(self, runtime: Runtime, token: int, lifecycle: bool = True) -> None:
        self._runtime = runtime
        self.token = token
        #: whether its filter may accept the ledger's order lifecycle events (the ledger builds them only then)
        self.lifecycle = lifecycle
        self._active = True

    def unsubscribe(self) -> None:
        if self._active:
            self._active = False
            self._runtime._unsubscribed(self.token, self.lifecycle)


#: the event classes the ledger builds per order change only while a subscription may accept them
_LIFECYCLE_EVENTS: Final = tuple(set(ORDER_EVENT_BY_STATUS.values()))


def _accepts_lifecycle(classes: type | tuple[type, ...]) -> bool:
    """Whether a class filter (a class or a tuple of classes) accepts any order lifecycle event."""
    wanted = classes if isinstance(classes, tuple) else (classes,)
    return any(issubclass(event_type, wanted) for event_type in _LIFECYCLE_EVENTS)


#: the fewest futures :class:`_Unanswered` holds before it prunes the answered ones
PRUNE_FLOOR: Final = 64


class _Unanswered:
    """The reply futures handed out by ``submit`` that may still be unanswered (for ``stop``).

    ``add`` is one ``list.append`` (atomic under the GIL; far cheaper per order than a
    done-callback on every future, which would run in the adapter's thread as it answers).
    Answered futures are pruned in bulk whenever the list has doubled since the last prune (and
    holds at least :data:`PRUNE_FLOOR`), so its size stays within about twice the number of
    orders in flight. One pruner at a time (a non-blocking lock); the prune replaces only the
    prefix it scanned, in one slice assignment, so futures appended meanwhile are kept.

    The floor is small because an answered future kept here outlives the garbage collector's
    young generation: each is eleven GC-tracked objects (the future, its ``Condition`` and
    ``RLock``, five bound lock methods, its waiter deque and lists) that a young collection
    traverses and promotes, and that count towards the next one
    (docs/DESIGN.md "The garbage collector"). At a floor of 1,024 a lone sender kept ~500
    answered futures alive on average; at 64, ~32. The scans cost the same per order either way
    (each future is looked at about once: ``HelpingFuture.done`` is one attribute read)."""

    def __init__(self) -> None:
        self._futures: list[ReplyFuture] = []
        self._prune_at = PRUNE_FLOOR
        self._pruning = threading.Lock()

    def add(self, future: ReplyFuture) -> None:
        futures = self._futures
        futures.append(future)
        if len(futures) >= self._prune_at and self._pruning.acquire(blocking=False):
            try:
                n = len(futures)
                futures[:n] = [f for f in futures[:n] if not f.done()]
                self._prune_at = max(PRUNE_FLOOR, 2 * len(futures))
            finally:
                self._pruning.release()

    def unanswered(self) -> list[ReplyFuture]:
        """The futures not answered yet (a snapshot)."""
        return [f for f in list(self._futures) if not f.done()]



def _statuses(status: Any) -> frozenset[OrderStatus]:
    """``status`` (an ``OrderStatus``, its name, or an iterable of them) as a set of statuses;
    ``ValueError`` naming what is not a status."""
    items = (status,) if isinstance(status, (str, OrderStatus)) else tuple(status)
    out = set()
    for item in items:
        try:
            out.add(item if isinstance(item, OrderStatus) else OrderStatus(str(item).upper()))
        except ValueError:
            raise ValueError(f"unknown order status {item!r}; one of {', '.join(s.value for s in OrderStatus)}") from None
    return frozenset(out)

class Runtime:
    """A running flowroute topology. Create it with :meth:`Runtime.start`; see the module docstring.

    ``metrics_port``: the port ``/metrics`` is served on (the one chosen when ``metrics.port``
    is 0), None without a server. ``journal_path`` / ``audit_path``: the files in the state dir.
    """

    metrics_port: int | None = None

    def __init__(self) -> None:  # use Runtime.start
        self._stopped = True
        self._pending = _Unanswered()
        #: the current children, published by the supervisor (read by the properties below)
        self._view = TopologyView()

    # ------------------------------------------------------------------------------------
    # start
    # ------------------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        settings: Any = None,
        *,
        registry: AdapterRegistry | None = None,
        clock: Clock | None = None,
        seed: int = 0,
        hooks: Iterable[PreTradeHook] | None = None,
    ) -> Runtime:
        """Start a runtime with ``settings`` (a ``config.Settings``; default: ``load_settings()``).

        ``registry``: adapter builders (default: paper, shadow, dry_run); ``clock``: injected
        time source (default: a real clock with its own timer thread); ``seed``: seeds retry
        and restart jitter; ``hooks``: pre-trade hooks ``hook(PreTradeCheck) -> HookDenial | None``
        run in the risk step after the built-in rules (``actors/orders/hooks.py``; README "Features").
        Raises ``ValueError`` for a hook that is not callable, when the routing policy names an adapter
        that is not registered, or when an adapter cannot be built; :class:`StateDirInUse`
        (``state dir X is in use by pid N``) when another runtime holds ``state_dir`` (a durable
        runtime locks it for its whole life, see ``actors/runtime/statelock.py``); nothing is left running.
        """
        if settings is None:
            from config import load_settings

            settings = load_settings()
        checked_hooks = validate_hooks(hooks)
        rt = cls()
        rt._boot(settings, registry or default_registry(settings=settings), clock, seed, checked_hooks)
        return rt

    def _boot(self, settings: Any, registry: AdapterRegistry, clock: Clock | None, seed: int, hooks: tuple = ()) -> None:
        self.settings = settings
        self.runtime_id = next(_runtime_ids)
        self._own_clock = clock is None
        self.clock = clock or RealClock(f"flowroute-{self.runtime_id}-timers")
        self.metrics = Metrics()
        secrets = tuple(v.get_secret_value() for v in (getattr(settings, "venue_api_key", None), getattr(settings, "venue_api_secret", None))
                        if v is not None)
        self.logging = RuntimeLogging(settings.logging, secrets)
        self._refs: list[pykka.ActorRef] = []
        self._venues: dict[str, Any] = {}
        #: trims the venues' inboxes while running (a journal and a venue that keeps one: FIX)
        self._trimmer = InboxTrimmer(lambda: self._trim_inboxes(ASK_TIMEOUT_S), self._kept_in_inboxes,
                                     name=f"flowroute-{self.runtime_id}-inbox-trim")
        self._quotes: dict[str, Quote] = {}
        self._tokens = itertools.count(1)
        self._validation_errors = 0
        self._subscriptions = 0
        #: instruments the runtime trades (README.md, Using it: an unknown symbol is a validation error at intake)
        self._symbols = frozenset(settings.paper.instrument_map())
        #: a durable journal claims the intent and context as JSON: made in the sender's thread (submit), after the tell
        self._claims_json = bool(settings.journal.enabled)
        self._lock = threading.Lock()
        self._state_lock: StateDirLock | None = None
        if settings.journal.enabled:
            # before anything opens a file there (the venues' books included); raises StateDirInUse
            try:
                self._state_lock = StateDirLock.acquire(Path(settings.state_dir), file_mode=settings.journal.file_mode)
            except BaseException:
                if self._own_clock:
                    self.clock.close()
                raise
        policy = dict(settings.routing.policy)
        try:
            registry.validate(policy)
            for adapter_id in sorted(set(policy.values())):
                self._venues[adapter_id] = registry.build(adapter_id, settings)
        except Exception as exc:
            self._close_venues()
            self._release_state_dir()
            if self._own_clock:
                self.clock.close()
            raise ValueError(f"runtime refused to start: {exc}") from exc

        state_dir = Path(settings.state_dir)
        durable = settings.journal.enabled
        if durable:
            state_dir.mkdir(parents=True, exist_ok=True)
        journal_path = state_dir / "journal.sqlite" if durable else None
        self.journal_path = journal_path
        self.audit_path = state_dir / "audit.jsonl" if durable else None
        sync: Synchronous = settings.journal.synchronous if durable else "OFF"
        mode = settings.journal.file_mode
        # the ledger's transitions and fills go to a file of their own: one writer per file, so the
        # idempotency store's group commits never wait on the ledger's lock (and vice versa)
        ledger_path = state_dir / "ledger.sqlite" if durable else None
        self.ledger_journal_path = ledger_path

        memory_journal = MemoryJournal() if journal_path is None else None  # one for the runtime's life (store restarts)

        def journal_factory() -> JournalStore:
            if memory_journal is not None:
                return memory_journal
            # the store checkpoints between batches, not inside a claim's commit (IdempotencyStoreActor._flush)
            return SQLiteJournal(journal_path, synchronous=sync, file_mode=mode, checkpoint_off_path=True,
                                 page_size=RECORD_PAGE_SIZE)

        def ledger_journal_factory() -> JournalStore:
            return SQLiteJournal(ledger_path, synchronous=sync, file_mode=mode)

        self._shared_throttles: list = []
        #: the shared PostgreSQL journal (journal.url), else None: the SQLite files above
        self.pg = self._open_pg(settings) if durable and settings.journal.url else None
        if self.pg is not None:
            self.journal_path = self.ledger_journal_path = None
            journal_factory = ledger_journal_factory = self.pg.journal

        archive_dir = Path(settings.retention.archive_dir)
        if not archive_dir.is_absolute():
            archive_dir = state_dir / archive_dir
        self.archive_dir = archive_dir if durable else None
        self.retention = None
        if durable:
            # past their keep time: archived and pruned before recovery reads them (actors/audit/retention.py)
            try:
                self.retention = apply_retention(state_dir, now=self.clock.now(), orders_days=settings.retention.orders_days,
                                                 receipts_days=settings.retention.receipts_days, archive_dir=archive_dir,
                                                 file_mode=mode, pg=self.pg)
            except Exception as exc:  # noqa: BLE001 - retention is housekeeping: the runtime starts without it
                logger.error("retention run failed, nothing was pruned that was not archived: {}", exc)
        boot_errors: list[str] = []
        try:
            self.recovery = None
            if durable:
                # opened here first: creates the schemas before the actors open them
                journal = journal_factory()
                ledger_journal = ledger_journal_factory()
                try:
                    self.recovery = recover(journal, self._venues, ledger_journal, wall=lambda: self.clock.now().timestamp(),
                                            lookup_timeout_s=settings.timeouts.attempt_s, budget_s=settings.timeouts.deadline_s,
                                            now=self.clock.now)
                finally:
                    journal.close()
                    ledger_journal.close()
            inherited: dict[str, list] = {}
            if self.recovery is not None:
                for order in self.recovery.orders:
                    if order.outcome is RecoveryOutcome.UNRESOLVED:
                        inherited.setdefault(order.adapter_id, []).append(InDoubt(order.intent.client_order_id, None))
            p = f"rt{self.runtime_id}"
            # one dispatcher for the actors that never block (docs/DESIGN.md "Threads"); an actor
            # writing a durable journal gets its own (solo) one below, since its fsync blocks
            shared = settings.dispatch.mode == "shared"
            # the young-generation GC threshold while this runtime runs (actors/kernel/gctune.py):
            # process-wide, so only when the settings ask (unset: the embedding process's choice)
            self._gc_release = gctune.hold(settings.dispatch.gc_threshold or 0)
            helping = settings.dispatch.help
            self._core = Dispatcher(f"{p}-core", linger_s=settings.dispatch.linger_us / 1e6, helpable=helping) if shared else None
            core = self._core
            # a caller waiting for a reply runs its order's messages itself (docs/DESIGN.md "Threads");
            # in the main thread only with Ctrl-C deferred to the end of the message it runs
            self._sigint_release = interrupts.hold() if shared and helping else None
            # the journal-writing actors: each its own solo dispatcher when durable (a commit blocks on
            # fsync: never the core's thread), where a waiting caller helps them too
            self._solo: tuple[Dispatcher, ...] = ()
            store_on: Dispatcher | None = core
            ledger_on: Dispatcher | None = core
            if durable and shared:
                # helped with [dispatch] help_journaled (the default; docs/DESIGN.md "Threads", benchmarks/README.md)
                helped = helping and settings.dispatch.help_journaled
                self._solo = (Dispatcher(f"{p}-idempotency", linger_s=OWN_THREAD_LINGER_S, solo=True, helpable=helped),
                              Dispatcher(f"{p}-ledger", linger_s=OWN_THREAD_LINGER_S, solo=True, helpable=helped))
                store_on, ledger_on = self._solo
            # the supervisor creates, wires and watches every child from this blueprint (docs/DESIGN.md "House plan")
            self._blueprint = Blueprint(
                settings=settings, registry=registry, venues=self._venues, clock=self.clock, metrics=self.metrics,
                journal_factory=journal_factory, ledger_journal_factory=ledger_journal_factory if durable else None,
                durable=durable, state_dir=state_dir, audit_path=self.audit_path, archive_dir=self.archive_dir,
                core=core, store_on=store_on, ledger_on=ledger_on, hooks=hooks, seed=seed, order_detail=self.logging.order_detail, prefix=p,
                boot_errors=boot_errors, track=self._track, fresh_venue=self._fresh_venue, pg=self.pg,
                in_doubt=inherited, shared_throttles=self._shared_throttles)
            self.supervisor = self._track(SupervisorActor.start(
                clock=self.clock, supervisor_settings=settings.supervisor, blueprint=self._blueprint, view=self._view,
                seed=seed, metrics=self.metrics, child_name=f"{p}-supervisor", startup_errors=boot_errors))
            for adapter_id, venue in self._venues.items():  # before the adapter actors start them
                self._wire_venue(adapter_id, venue)
            restore = tuple(self.recovery.orders) if self.recovery is not None else ()
            self.supervisor.ask(StartChildren(restore), timeout=ASK_TIMEOUT_S)
            for name, ref in (("event bus", self.bus), ("ledger", self.ledger), ("idempotency store", self.idempotency),
                              ("router", self.router), *((f"breaker:{a}", g) for a, g in self.breakers.items())):
                try:
                    ref.ask(_PING, timeout=ASK_TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 - any failure to answer is a start failure, named
                    cause = "; ".join(boot_errors) or type(exc).__name__
                    raise ValueError(f"the {name} actor failed to start: {cause}") from None
            if settings.metrics.port is not None:
                self.metrics_port = self.metrics.serve(settings.metrics.port, settings.metrics.host)
            else:
                self.metrics_port = None
        except BaseException as exc:
            self._stopped = False
            self.stop(timeout=5.0)
            if isinstance(exc, pykka.ActorDeadError) and boot_errors:
                raise ValueError(f"runtime refused to start: {'; '.join(boot_errors)}") from None
            raise
        self._stopped = False
        self._takeover = None
        if self.pg is not None:  # peers that die later: adopt their orders while running
            from ..journal.pg_takeover import TakeoverLoop

            # a process that stalled past its lease has lost its orders to a survivor: it stops trading
            self.pg.on_lease_lost = lambda: tell(self.ledger, SetTradingState("HALTED"))

            self._takeover = TakeoverLoop(self.pg.journal(), self._adopt, self.pg.lease_s / 2)
        self._trim_inboxes(ASK_TIMEOUT_S)  # what a venue replayed at start is applied now: not again next time
        if settings.journal.enabled and any(isinstance(v, KeepsInbox) for v in self._venues.values()):
            self._trimmer.start()  # and while running, what was applied and journaled since
        if self.logging.allows("INFO"):
            logger.info("runtime {} started: adapters {}, state dir {}, journal {}", self.runtime_id, ", ".join(self._venues),
                        settings.state_dir, self.pg if self.pg is not None else journal_path if journal_path else "in memory")
        if self.logging.allows("DEBUG"):
            logger.debug("runtime {} settings: {}", self.runtime_id, settings.redacted_dict())

    @property
    def orders_taken_over(self) -> int:
        """PostgreSQL journal: how many orders this runtime took over from peers whose lease
        expired while it ran (0 without a shared journal)."""
        takeover = getattr(self, "_takeover", None)
        return takeover.adopted if takeover is not None else 0

    def _adopt(self, orders: list[RecoveredOrder]) -> None:
        """Orders taken over from a dead peer: restore them in the ledger, reconcile those in doubt."""
        tell(self.ledger, RestoreLedger(tuple(orders)))
        by_adapter: dict[str, list[str]] = {}
        for order in orders:
            if order.outcome is RecoveryOutcome.UNRESOLVED:
                by_adapter.setdefault(order.adapter_id, []).append(order.intent.client_order_id)
        for adapter_id, ids in by_adapter.items():
            if adapter_id in self.breakers:
                tell(self.router, ForwardReconcile(adapter_id, tuple(ids)))
            else:
                logger.error("takeover: adapter '{}' is not configured here; {} order(s) stay UNKNOWN", adapter_id, len(ids))

    def _open_pg(self, settings: Any) -> Any:
        """Open the shared PostgreSQL journal (``journal.url``); a clear ValueError when it cannot be used."""
        from ..journal.postgres import PostgresBackend

        j = settings.journal
        try:
            return PostgresBackend.open(j.url, lease_s=j.lease_s, pool_max=j.pool_max, connect_timeout_s=j.connect_timeout_s)
        except ImportError as exc:
            error = f"journal.url needs psycopg and psycopg-pool (pip install 'psycopg[binary]' psycopg-pool): {exc}"
        except JournalError as exc:
            error = str(exc)
        self._close_venues()
        if self._own_clock:
            self.clock.close()
        raise ValueError(f"runtime refused to start: {error}") from None

    def _trim_inboxes(self, timeout: float) -> None:
        """Venues that keep received messages to replay them at start (``KeepsInbox``: FIX) drop
        those whose effect is journaled: each venue names the last one it handed on; then every
        adapter's finished calls are applied and the ledger writes its batch (a barrier, as
        ``flush``); if no durable write is failing, each venue trims up to its mark. On any doubt
        (a timeout, a failing write, an actor gone) nothing is trimmed: the next start replays
        the messages again, which the ledger applies once (docs/DESIGN.md "Durability")."""
        settings = getattr(self, "settings", None)
        if settings is None or not settings.journal.enabled or getattr(self, "supervisor", None) is None:
            return  # without a journal nothing is durable, and the venue keeps no inbox
        marks = [(v, v.inbox_mark()) for v in list(self._venues.values()) if isinstance(v, KeepsInbox)]
        marks = [(v, m) for v, m in marks if m is not None]
        if not marks:
            return
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.05, deadline - time.monotonic())

        try:
            for ref in self.supervisor.ask(GetAdapterRefs(), block=True, timeout=left()).values():
                if ref is not None:
                    ref.ask(FlushWorker(), timeout=left()).result(timeout=left())
                    ref.ask(_PING, timeout=left())
            for _ in range(2):  # the facts the adapters told the ledger, then its batch written
                self.ledger.ask(_PING, timeout=left())
            if self.ledger.ask(GetDurability(), timeout=left()):
                return  # a journal or audit write is failing: not durable yet
        except Exception as exc:  # noqa: BLE001 - trimming is an optimisation: keep everything
            logger.debug("received messages kept for replay (not trimmed): {}", exc_summary(exc))
            return
        for venue, mark in marks:
            try:
                n = venue.trim_inbox(mark)
            except OSError as exc:
                logger.warning("{}: the kept received messages could not be trimmed: {}", getattr(venue, "adapter_id", "?"), exc)
                continue
            if n:
                logger.debug("{}: {} received message(s) applied and journaled: no longer kept for replay",
                             getattr(venue, "adapter_id", "?"), n)

    def _kept_in_inboxes(self) -> int:
        """Received messages the venues keep until their effect is journaled (``KeepsInbox``)."""
        return sum(v.kept_count() for v in list(self._venues.values()) if isinstance(v, KeepsInbox))

    def _wire_venue(self, adapter_id: str, venue: Any) -> None:
        """Connect a venue instance to this runtime: its events to the ledger, its session state
        (a venue with a session, e.g. FIX) to the metrics and the bus, its inbox (``KeepsInbox``,
        with a journal) to the trimmer."""
        venue.set_event_sink(lambda ev: tell(self._peer("ledger"), VenueEventReceived(_storable_event(adapter_id, ev))))
        if isinstance(venue, KeepsInbox) and self.settings.journal.enabled:
            venue.set_inbox_listener(self._trimmer.listener)
        if isinstance(venue, HasSession):  # a venue with a session (FIX): its state as metric and event
            metrics = self.metrics
            metrics.set_venue_session(adapter_id, venue.session_state)

            def on_session(aid: str, state: str, detail: str, metrics=metrics) -> None:
                metrics.set_venue_session(aid, state)
                tell(self._peer("bus"), Publish(VenueSessionChanged(adapter_id=aid, state=state, detail=detail)))

            venue.add_state_listener(on_session)

    # -- the current children (published by the supervisor, which replaces them on a restart) ---
    @property
    def ledger(self) -> pykka.ActorRef:
        """The ledger actor's current reference."""
        return self._view.current().ledger

    @property
    def idempotency(self) -> pykka.ActorRef:
        """The idempotency store actor's current reference."""
        return self._view.current().idempotency

    @property
    def router(self) -> pykka.ActorRef:
        """The router actor's current reference."""
        return self._view.current().router

    @property
    def bus(self) -> pykka.ActorRef:
        """The event bus actor's current reference."""
        return self._view.current().bus

    @property
    def breakers(self) -> dict[str, pykka.ActorRef]:
        """The circuit-breaker actor per adapter id (a copy)."""
        return dict(self._view.current().breakers)

    def _peer(self, name: str) -> pykka.ActorRef | None:
        """A child's current reference, or None before the supervisor started the children."""
        peers = self._view.peers
        return getattr(peers, name) if peers is not None else None

    def _fresh_venue(self, adapter_id: str, fresh: Any, old: Any) -> None:
        """An adapter restart built a fresh venue instance: connect it (events, session state),
        give it the last quote per symbol as the old one had it, and retire the old one on a
        thread of its own (``release_hangs``, ``close``: a stuck venue never blocks the supervisor)."""
        self._wire_venue(adapter_id, fresh)
        for quote in list(self._quotes.values()):
            try:
                fresh.on_market(quote)
            except Exception:  # noqa: BLE001 - market data never breaks a restart
                logger.opt(exception=True).warning("{}: replaying the last quote failed", adapter_id)
        self._venues[adapter_id] = fresh
        threading.Thread(target=_retire, args=(old,), name=f"retire-{adapter_id}", daemon=True).start()

    def _track(self, ref: pykka.ActorRef) -> pykka.ActorRef:
        self._refs.append(ref)
        return ref

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------
    # orders
    # ------------------------------------------------------------------------------------
    def submit(self, intent: OrderIntent | dict, context: ExecutionContext | dict) -> Future[ExecutionReport]:
        """Submit ``intent`` under ``context``; return a ``Future`` resolved with exactly one final report.

        Never raises for bad input: an intent or context that fails validation (including a symbol
        that is not a configured instrument) resolves at once with a DENIED report carrying
        E_EXEC_VALIDATION and a message naming each bad field (nothing is journaled). The future can be awaited with ``asyncio.wrap_future``.
        """
        t0 = now_ns()
        future = ReplyFuture()
        try:
            if not isinstance(intent, OrderIntent):
                intent = OrderIntent.model_validate(intent)
            if not isinstance(context, ExecutionContext):
                context = ExecutionContext.model_validate(context)
        except ValidationError as exc:
            what = "intent" if not isinstance(intent, OrderIntent) else "context"
            return self._reject_input(future, intent, context, _validation_message(exc, what))
        except Exception as exc:  # noqa: BLE001 - a caller's bad input of any kind is answered, never raised
            return self._reject_input(future, intent, context, f"invalid input: {type(exc).__name__}: {exc}"[:500])
        if intent.symbol not in self._symbols:
            return self._reject_input(future, intent, context,
                                      f"intent.symbol: unknown symbol '{intent.symbol}' (known: {', '.join(sorted(self._symbols))})")
        if ".r" in intent.client_order_id:  # the remainder children's reserved ids (cheap test first: on every order)
            reserved = reserved_client_order_id_problem(intent.client_order_id)
            if reserved is not None:
                return self._reject_input(future, intent, context, reserved)
        if self._stopped:
            resolve(future, ExecutionReport(client_order_id=intent.client_order_id, account_id=context.account_id,
                                            status=OrderStatus.DENIED, ts=self.clock.now(),
                                            error=ExecError.of(ErrorCode.E_EXEC_NO_ADAPTER, "runtime is stopped")))
            return future
        # routing is a lookup in the router's immutable table, done here: no hop through the router actor
        peers = self._view.current()
        route = peers.routes.lookup(context.mode)
        if isinstance(route, RouteDenied):
            deny_unrouted(SubmitOrder(intent, context, future, t0), route, self.ledger, ts=self.clock.now())
            return future
        order = new_submit_order(intent, context, future, t0, route[0], route[1])
        future.intent = intent  # what stop's answer names, should it have to give one
        future.context = context
        self._pending.add(future)
        if not tell(peers.idempotency, order):
            deny_unrouted(order, RouteDenied(ErrorCode.E_EXEC_INTERNAL, "idempotency store is not running"), peers.ledger,
                          ts=self.clock.now())
        elif self._claims_json:
            # the claim's fingerprint and JSON (cached on the intent and context), made here while the
            # store's thread wakes up (tens of µs): off the order's path, where the store's thread made
            # them cold after its wake-up (~35 µs). Should the store get there first it makes them
            # itself; both make the same text (docs/DESIGN.md, Durability)
            intent.fingerprint()
            intent.journal_json()
            context.journal_json()
        return future

    def _reject_input(self, future: Future, intent: Any, context: Any, message: str) -> Future:
        with self._lock:
            self._validation_errors += 1
        self.metrics.rejected(ErrorCode.E_EXEC_VALIDATION.value)
        cl_id = getattr(intent, "client_order_id", None) or (intent.get("client_order_id") if isinstance(intent, dict) else None)
        account = getattr(context, "account_id", None) or (context.get("account_id") if isinstance(context, dict) else None)
        resolve(future, ExecutionReport(
            client_order_id=str(cl_id)[:64] if cl_id is not None else "",
            account_id=str(account)[:64] if account is not None else "",
            status=OrderStatus.DENIED,
            error=ExecError.of(ErrorCode.E_EXEC_VALIDATION, message),
            ts=self.clock.now(),
        ))
        return future

    def cancel(self, client_order_id: str, account_id: str | None = None) -> Future[ExecutionReport]:
        """Cancel an open order; the future resolves with the order's report after the venue's answer
        (an error report names why a cancel could not be made). Cancels are never throttled
        behind new orders and pass even when trading is HALTED.

        Never raises for bad input: a ``client_order_id`` that is not a string of the intent's
        id format, or an ``account_id`` that is neither a string nor None, resolves at once
        with an E_EXEC_VALIDATION report naming the argument; nothing reaches an actor.
        """
        future: Future = Future()
        problem = _cancel_argument_problem(client_order_id, account_id)
        if problem is not None:
            with self._lock:
                self._validation_errors += 1
            self.metrics.rejected(ErrorCode.E_EXEC_VALIDATION.value)
            shown = client_order_id if isinstance(client_order_id, str) else ""
            resolve(future, ExecutionReport(client_order_id=shown[:64], status=OrderStatus.UNKNOWN, ts=self.clock.now(),
                                            error=ExecError.of(ErrorCode.E_EXEC_VALIDATION, problem)))
            return future
        cancel = CancelOrder(client_order_id, account_id, future, now_ns())
        if self._stopped or not tell(self.ledger, cancel):
            resolve(future, ExecutionReport(client_order_id=str(client_order_id), status=OrderStatus.UNKNOWN, ts=self.clock.now(),
                                            error=ExecError.of(ErrorCode.E_EXEC_NO_ADAPTER, "runtime is stopped")))
        return future

    def on_market(self, data: Quote | Trade) -> None:
        """Feed one quote or trade: simulated venues match against it (in this thread, under their
        own lock), the ledger marks positions and keeps the touch for risk checks.
        Raises ``TypeError`` for anything that is not a ``Quote`` or ``Trade``."""
        if not isinstance(data, (Quote, Trade)):
            raise TypeError(f"on_market takes a protocols.Quote or protocols.Trade, not {type(data).__name__}")
        if self._stopped:
            return
        tell(self.ledger, MarketData(data))
        if data.__class__ is Quote:
            self._quotes[data.symbol] = data  # the touch a rebuilt venue starts from
        for venue in list(self._venues.values()):
            venue.on_market(data)

    # ------------------------------------------------------------------------------------
    # queries and controls (asks with timeouts)
    # ------------------------------------------------------------------------------------
    def _ask(self, ref: pykka.ActorRef, message: Any, timeout: float | None = None) -> Any:
        return ref.ask(message, timeout=timeout or ASK_TIMEOUT_S)

    def order(self, client_order_id: str) -> ExecutionReport | None:
        """The current report of one order, or None when the runtime never saw it."""
        return self._ask(self.ledger, GetOrder(client_order_id))

    def wait(self, client_order_id: str, timeout: float) -> ExecutionReport:
        """Wait until order ``client_order_id`` is terminal and return its report (the seeds' ``wait_for_fill``).

        For orders that outlive their submit future's answer, e.g. a GTC limit order answered
        ACCEPTED that fills later: returns the report once the order is FILLED, CANCELED,
        EXPIRED, REJECTED, FAILED or DENIED (at once if it already is). An order in UNKNOWN is
        not terminal: the wait goes on until reconciliation proves its outcome.
        ``timeout``: seconds (> 0). Nothing polls: the ledger answers the moment the order
        reaches a terminal status.

        Raises ``KeyError`` when the runtime never saw the order, ``TimeoutError`` (naming
        the order and its status then) when it is still not terminal after ``timeout`` s,
        ``ValueError`` for a timeout that is not a positive number.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        reply: Future = Future()
        if self._stopped or not tell(self.ledger, WaitTerminal(str(client_order_id), reply)):
            raise RuntimeError("runtime is stopped")
        try:
            report = reply.result(timeout=timeout)
        except TimeoutError:
            tell(self.ledger, ForgetWait(str(client_order_id), reply))
            current = self.order(client_order_id) if not self._stopped else None
            status = current.status.value if current is not None else "unknown"
            raise TimeoutError(f"order {client_order_id} is still {status} after {timeout:g} s") from None
        if report is None:
            raise KeyError(f"unknown order {client_order_id!r}: this runtime never saw it")
        return report

    def history(self, client_order_id: str) -> tuple[AuditRecord, ...]:
        """The audit trail of one order, oldest first: every line the audit log holds about it
        (``actors.audit.log.AuditRecord``: seq, ts, kind, data), archived segments included.

        The first line is the intent with its route (``route_id``, ``routing_reason``), then
        every status change with its cause (risk denials name their rule; rejects, failures and
        UNKNOWN carry the error code and reason; a slippage cap shows the original limit), every
        retried attempt and its error, every fill, cancels and reconciliation. Empty for an
        order the log never saw. Without a durable journal there is no audit log: the records
        are then built from the ledger's memory (transitions and fills, ``seq`` 0).
        """
        path, records = self._ask(self.ledger, GetHistory(str(client_order_id)), timeout=30.0)
        if path is None:
            return tuple(AuditRecord(0, parse_since(data["ts"]), kind, data) for kind, data in records)
        return tuple(read_records(path, client_order_id=str(client_order_id), archive_dir=self.archive_dir))

    def orders(self, status: Any = None, *, account_id: str | None = None) -> tuple[ExecutionReport, ...]:
        """Reports of the orders the runtime has seen (frozen snapshots; archived orders first):
        every one, or those whose status is ``status`` (an ``OrderStatus`` or its name, or
        several of them, e.g. ``rt.orders(OPEN_STATUSES)`` for the working ones) and of
        ``account_id``. Filtered in the ledger before any report is built: a query of open orders
        reads no archived order back. Raises ``ValueError`` naming an unknown status."""
        statuses = None if status is None else _statuses(status)
        return self._ask(self.ledger, ListOrders(statuses, None if account_id is None else str(account_id)), timeout=30.0)

    def positions(self, strategy_id: str | None = None, *, by_strategy: bool = False) -> tuple[Position, ...]:
        """Positions per account and symbol (frozen); ``by_strategy=True``: per account, strategy and
        symbol for orders that carry a strategy id (``Position.strategy_id`` set); ``strategy_id``:
        only that strategy's (implies ``by_strategy``). Each strategy's PnL comes from its own
        entry prices (README "Features")."""
        if strategy_id is not None or by_strategy:
            return self._ask(self.ledger, GetPositions(strategy_id, True))
        return self._ask(self.ledger, GetPositions())

    def daily_pnl(self, day: Any = None, *, account_id: str | None = None, strategy_id: str | None = None) -> tuple[DailyPnl, ...]:
        """Daily PnL (``actors.DailyPnl``: realized PnL, fees, net, fills, bought/sold per day, account,
        strategy and symbol, quote currency), sorted; filtered by ``day`` (a ``datetime.date``),
        ``account_id`` and ``strategy_id`` when given ("" selects orders without a strategy). A
        fill counts for the day its venue time falls in; the day begins at ``[pnl] day_start``
        in ``[pnl] timezone`` (README "Features"). Rebuilt from the journal after a restart."""
        return self._ask(self.ledger, GetDailyPnl(day, account_id, strategy_id))

    def stats(self, *, invariants: bool = True) -> dict:
        """Counters from the ledger (orders by status, errors by code, invariants), the journal and the bus.
        ``invariants=False``: without ``book_invariants`` and ``risk_invariants`` (each recomputes
        the books from every fill and reservation), for polling a counter such as ``unknown_open``."""
        ledger = self._ask(self.ledger, GetLedgerStats(invariants), timeout=30.0)
        ledger["errors_by_code"] = dict(ledger["errors_by_code"])
        if self._validation_errors:
            ledger["errors_by_code"]["E_EXEC_VALIDATION"] = ledger["errors_by_code"].get("E_EXEC_VALIDATION", 0) + self._validation_errors
        ledger["journal"] = self._ask(self.idempotency, GetJournalStats())
        ledger["bus"] = self._ask(self.bus, GetBusStats())
        return ledger

    def health(self) -> Health:
        """Children (state, generation, restarts, last failure), breaker states, trading state and the
        orders in doubt whose reconciliation escalated (``Health.healthy`` is False while any is)."""
        children = self._ask(self.supervisor, GetHealth())
        breakers = {}
        for aid, breaker in self.breakers.items():
            try:
                breakers[aid] = self._ask(breaker, GetBreaker()).state.value
            except pykka.ActorDeadError:  # crashed; the supervisor is restarting it
                breakers[aid] = "RESTARTING"
        try:
            trading, reason, mismatched = self._ask(self.ledger, GetTradingStatus())
            escalated = self._ask(self.ledger, GetEscalated())
            durable_writes = self._ask(self.ledger, GetDurability())
            refused_rows, refused_claims, refused_budget = self._ask(self.ledger, GetRefusedRows())
        except pykka.ActorDeadError:  # crashed: no order passes until it is rebuilt from the journal
            ledger = next((c for c in children if c.name == "ledger"), None)
            state = ledger.state if ledger is not None else "stopped"
            trading, mismatched, escalated, durable_writes = "HALTED", (), {}, {}
            refused_rows, refused_claims, refused_budget = {}, {}, {}
            reason = (f"the ledger failed ({ledger.last_failure if ledger else ''}); "
                      + ("restarting it from the journal" if state == "restarting" else "it could not be restarted: restart the runtime"))
        venues = {}
        for adapter_id, venue in self._venues.items():
            if isinstance(venue, ReportsHealth):
                try:
                    venues[adapter_id] = venue.health()
                except Exception as exc:  # noqa: BLE001 - a venue's probe must not break the runtime's health
                    venues[adapter_id] = {"error": f"{type(exc).__name__}: {exc}"}
        return Health(children=children, breakers=breakers, trading_state=trading, escalated=escalated, venues=venues,
                      trading_reason=reason, broker_mismatches=mismatched,
                      durable_writes=durable_writes, refused_rows=refused_rows, refused_claims=refused_claims,
                      refused_budget=refused_budget)

    def acknowledge_refused(self) -> RefusedValues:
        """An operator has dealt with the values the journals refused (``health().refused_rows``:
        each such order's journaled history lacks a row, the audit log has it; ``refused_claims``:
        orders denied because their claim could not be journaled; ``refused_budget``: values the
        PostgreSQL shared budget refused, an order denied or its values left out of the fleet's
        totals): clear the lists, so ``healthy`` no longer counts them, and write a
        ``refused_acknowledged`` audit line. Returns them as they were, a ``RefusedValues``
        ``(rows, claims, budget)``. Raises ``RuntimeError`` when stopped, ``pykka.Timeout`` when
        the ledger does not answer in time."""
        if self._stopped:
            raise RuntimeError("runtime is stopped")
        return self._ask(self.ledger, AcknowledgeRefused())

    def sync_broker_state(self, timeout: float = 30.0) -> BrokerSyncReport:
        """Compare every venue's positions and balances (``fetch_positions``, ``fetch_account``)
        with the ledger's books; returns a :class:`~actors.runtime.sync.BrokerSyncReport` (one result per
        adapter: match, unconfirmed, mismatch or unavailable, with the differences).

        Nothing is adjusted. A difference found ``sync.confirmations`` times in a row publishes
        ``BrokerStateMismatch``, degrades :meth:`health` and, with ``safety.on_mismatch``, moves
        trading to REDUCING or HALTED. ``[sync] interval_s`` runs the same sync periodically.
        Raises ``TimeoutError`` after ``timeout`` seconds (an adapter that does not answer within
        ``sync.timeout_s`` is reported unavailable before that) and ``RuntimeError`` when stopped.
        """
        future: Future = Future()
        if self._stopped or not tell(self.ledger, SyncBrokerState(future)):
            raise RuntimeError("runtime is stopped")
        return future.result(timeout=timeout)

    def breaker(self, adapter_id: str):
        """The breaker snapshot of ``adapter_id`` (raises ``KeyError`` for an unknown adapter)."""
        return self._ask(self.breakers[adapter_id], GetBreaker())

    def force_open(self, adapter_id: str):
        """Operator: force the breaker of ``adapter_id`` OPEN until reset (resilience4j FORCED_OPEN)."""
        return self._ask(self.breakers[adapter_id], BreakerCommand("force_open"))

    def disable_breaker(self, adapter_id: str):
        """Operator: disable the breaker of ``adapter_id`` (every call permitted, nothing recorded)."""
        return self._ask(self.breakers[adapter_id], BreakerCommand("disable"))

    def reset_breaker(self, adapter_id: str):
        """Operator: reset the breaker of ``adapter_id`` to CLOSED with a fresh window."""
        return self._ask(self.breakers[adapter_id], BreakerCommand("reset"))

    def halt(self) -> str:
        """Kill switch: deny every new order (E_EXEC_RISK_DENIED); cancels still pass. Returns the state."""
        return self._ask(self.ledger, SetTradingState("HALTED"))

    def reduce_only(self) -> str:
        """Admit only orders that reduce a position; cancels pass."""
        return self._ask(self.ledger, SetTradingState("REDUCING"))

    def resume(self) -> str:
        """Back to ACTIVE."""
        return self._ask(self.ledger, SetTradingState("ACTIVE"))

    def subscribe(self, callback: Callable[[Event], None], filter: Any = None, *, max_pending: int = 10_000) -> Subscription:
        """Call ``callback(event)`` for every published event that passes ``filter`` (None: all;
        an event class or tuple of classes; or a predicate). The callback runs on its own thread:
        a slow or raising subscriber never blocks or breaks the pipeline (it is reported with a
        ``SubscriberFailed`` event and, past ``max_pending`` queued events, skipped)."""
        lifecycle = True  # a predicate may accept anything
        if filter is None:
            accepts: Callable[[Event], bool] = lambda e: True  # noqa: E731
        elif isinstance(filter, type) or (isinstance(filter, tuple) and all(isinstance(t, type) for t in filter)):
            classes = filter
            accepts = lambda e: isinstance(e, classes)  # noqa: E731
            lifecycle = _accepts_lifecycle(classes)
        elif callable(filter):
            accepts = filter
        else:
            raise TypeError("filter must be None, an event class, a tuple of classes or a predicate")
        token = next(self._tokens)
        self._ask(self.bus, Subscribe(token, callback, accepts, max_pending))
        if lifecycle:  # the ledger builds order lifecycle events while one subscription may accept them
            with self._lock:
                self._subscriptions += 1
                if self._subscriptions == 1:
                    self._ask(self.ledger, SetPublishing(True))
        return Subscription(self, token, lifecycle)

    def _unsubscribed(self, token: int, lifecycle: bool = True) -> None:
        tell(self.bus, Unsubscribe(token))
        if not lifecycle:
            return
        with self._lock:
            self._subscriptions -= 1
            if self._subscriptions == 0:
                tell(self.ledger, SetPublishing(False))

    def venue(self, adapter_id: str) -> Any:
        """The venue adapter object of ``adapter_id`` (for probes like ``submission_counts()``)."""
        return self._venues[adapter_id]

    def adapter_ids(self) -> tuple[str, ...]:
        """Adapter ids of this runtime."""
        return tuple(self._venues)

    def flush(self, timeout: float = 10.0, *, venue_calls: bool = True) -> None:
        """A barrier: when it returns, everything sent to any actor of this runtime before the call
        has been processed — the core actors, the supervisor, the adapter actors — and (with
        ``venue_calls``, the default) every venue call their worker threads had queued has
        finished and its outcome has been applied (the ledger, the idempotency store and the bus
        have the facts it produced). ``venue_calls=False`` does not wait for calls running in a
        venue (e.g. a test that holds one on purpose). Raises ``TimeoutError`` when the barrier is
        not reached within ``timeout`` seconds (e.g. a venue call hangs); an adapter that is
        restarting has nothing in flight and is skipped."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.05, deadline - time.monotonic())

        core = (self.router, self.idempotency, *self.breakers.values(), self.ledger, self.bus)
        for ref in core:
            ref.ask(_PING, timeout=left())
        self.supervisor.ask(_PING, timeout=left())
        for adapter_id, ref in self.supervisor.ask(GetAdapterRefs(), block=True, timeout=left()).items():
            if ref is None:
                continue
            try:
                if venue_calls:
                    done = ref.ask(FlushWorker(), timeout=left())
                    try:
                        done.result(timeout=left())
                    except FutureTimeout:
                        raise TimeoutError(f"flush: a venue call of '{adapter_id}' is still running after {timeout:g} s") from None
                ref.ask(_PING, timeout=left())
            except pykka.ActorDeadError:
                continue  # crashed or restarting: its calls were handed on
        for _ in range(2):  # the facts the adapters told, then the facts those told (ledger -> store, bus)
            for ref in core:
                ref.ask(_PING, timeout=left())

    def reservations(self, account_id: str | None = None) -> tuple[Reservation, ...]:
        """Open budget reservations (of ``account_id``, or every account) as frozen values, sorted by
        account and client order id (README.md, Features: an order's notional is reserved until it is terminal)."""
        return self._ask(self.ledger, GetReservations(account_id))

    def exposure(self, account_id: str) -> Exposure:
        """``account_id``'s budget use: reserved, spent and budget (quote currency), frozen."""
        return self._ask(self.ledger, GetExposure(account_id))

    # ------------------------------------------------------------------------------------
    # stop
    # ------------------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        """Stop every actor and thread of this runtime (idempotent, bounded by ``timeout`` seconds).

        Orders still unanswered are resolved UNKNOWN (E_EXEC_BROKER_TIMEOUT: the venue may have
        them; recovery reconciles after a restart), so no caller waits forever.
        """
        if getattr(self, "_stop_done", False) or not hasattr(self, "clock"):
            return
        self._stop_done = True
        self._stopped = True
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.05, deadline - time.monotonic())

        trimmer = getattr(self, "_trimmer", None)
        if trimmer is not None:  # the last trim is stop's own, below
            trimmer.stop(min(remaining(), timeout / 4))
        # phase 1: no new orders in; let what is in the pipeline finish (bounded by half the timeout)
        router = getattr(self, "router", None)
        if router is not None:
            try:
                router.stop(block=True, timeout=remaining())
            except Exception:  # noqa: BLE001 - stop goes on whatever one actor does
                logger.warning("router did not stop in time")
        drain_until = time.monotonic() + timeout / 2
        while self._pending.unanswered() and time.monotonic() < drain_until:
            time.sleep(0.005)
        if self._pending.unanswered():
            logger.warning("{} order(s) still unanswered at stop; they are answered UNKNOWN", len(self._pending.unanswered()))
        self._trim_inboxes(max(0.05, (deadline - time.monotonic()) / 2))
        # phase 2: stop every actor, adapters before the stores they report to
        sup = getattr(self, "supervisor", None)
        adapters: dict = {}
        if sup is not None and sup.is_alive():
            try:
                sup.ask(StopChildren(), timeout=remaining())
                adapters = sup.ask(GetAdapterRefs(), timeout=remaining())
            except Exception:  # noqa: BLE001 - stop goes on whatever one actor does
                logger.warning("supervisor did not answer during stop")
        order = list(getattr(self, "breakers", {}).values())
        order += [ref for ref in adapters.values() if ref is not None]
        order += [getattr(self, "idempotency", None), getattr(self, "ledger", None), sup, getattr(self, "bus", None)]
        for ref in order:
            if ref is None:
                continue
            try:
                ref.stop(block=True, timeout=remaining())
            except Exception:  # noqa: BLE001 - stop goes on whatever one actor does
                logger.warning("{} did not stop in time", ref)
        for ref in getattr(self, "_refs", []):
            if ref.is_alive():
                ref.stop(block=False)
        for future in self._pending.unanswered():
            if not future.done():
                future.abandon(_abandoned_report(future, self.clock.now()))
        # stop() also cleans up after a start that failed part-way: an attribute may not exist yet
        for dispatcher in (getattr(self, "_core", None), *getattr(self, "_solo", ())):
            if dispatcher is not None:
                dispatcher.close(timeout=remaining())
        sigint_release = getattr(self, "_sigint_release", None)
        if sigint_release is not None:
            sigint_release()
        takeover = getattr(self, "_takeover", None)
        if takeover is not None:
            takeover.close()
        for throttle in getattr(self, "_shared_throttles", ()):
            throttle.close()
        pg = getattr(self, "pg", None)
        if pg is not None:
            pg.close()
        if getattr(self, "_own_clock", False):
            self.clock.close()
        gc_release = getattr(self, "_gc_release", None)
        if gc_release is not None:
            gc_release()
        self._close_venues()
        if getattr(self, "metrics", None) is not None:
            self.metrics.close()
        self._release_state_dir()
        own_logging = getattr(self, "logging", None)
        if own_logging is None or own_logging.allows("INFO"):
            logger.info("runtime {} stopped", getattr(self, "runtime_id", "?"))
        if own_logging is not None:
            own_logging.close()

    def _release_state_dir(self) -> None:
        lock = getattr(self, "_state_lock", None)
        if lock is not None:
            try:
                lock.release()
            except OSError:
                logger.opt(exception=True).warning("releasing the state dir lock failed")

    def _close_venues(self) -> None:
        for venue in list(getattr(self, "_venues", {}).values()):
            _retire(venue)


def _retire(venue: Any) -> None:
    """Release a venue instance for good (``retire_adapter``); a failure is logged, never raised."""
    try:
        retire_adapter(venue)
    except Exception:  # noqa: BLE001 - a venue's close must not stop the others'
        logger.opt(exception=True).warning("closing venue {} failed", getattr(venue, "adapter_id", venue))


class _Ping:
    """Barrier message: every FlowActor answers it after what was queued before."""


_PING = _Ping()
