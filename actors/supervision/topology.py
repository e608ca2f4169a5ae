"""How the supervisor's children are built, wired and found (docs/DESIGN.md "House plan").

The supervisor creates every child from a :class:`Blueprint` (the settings, the adapter
registry and the runtime's shared services), wires them in one typed step (references passed at
construction; the two a child cannot have yet — the ledger's idempotency store and router — by
one :class:`~actors.supervision.messages.Wire`), and keeps the current reference of each in
:class:`Peers`, a frozen snapshot replaced whole when a child restarts and published through a
:class:`TopologyView` (read by ``Runtime`` and the venues' event sinks, written only by the
supervisor).

Which child holds which reference (rewired by the supervisor after a restart, :data:`HOLDERS`):

============  =====================================================
child         held by
============  =====================================================
event_bus     ledger, breakers, adapters, supervisor
ledger        idempotency store, router, breakers, adapters
idempotency   ledger, breakers, adapters
router        ledger
breaker:<a>   router (its route table), adapter <a>
============  =====================================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pykka
from loguru import logger

from ..audit.log import AuditLog
from ..audit.retention import RetentionJob
from ..breaker.actor import CircuitBreakerActor
from ..breaker.breaker import BreakerConfig
from ..events.bus import EventBusActor
from ..execution.adapter import AdapterActor, AdapterPolicy
from ..idempotency.store import IdempotencyStoreActor
from ..journal.sqlite import JournalStore
from ..kernel.dispatcher import Dispatcher
from ..orders.ledger import LedgerActor
from ..orders.risk import RiskConfig, RiskEngine
from ..routing.router import RouterActor, RouteTable
from ..runtime.recovery import journaled_orders


class RestartRefused(Exception):
    """Raised by a child factory that cannot build a next generation (e.g. a ledger without a
    journal to rebuild from): the child is given up at once, with this message as the reason."""


@dataclass(frozen=True)
class Peers:
    """The current reference of every core child (a snapshot, replaced whole on a restart).

    ``breakers``: the circuit-breaker actor per adapter id; ``routes``: the frozen route table
    ``Runtime.submit`` reads (built over ``breakers``)."""

    bus: pykka.ActorRef
    ledger: pykka.ActorRef
    idempotency: pykka.ActorRef
    router: pykka.ActorRef
    breakers: Mapping[str, pykka.ActorRef]
    routes: RouteTable


class TopologyView:
    """The one place the current :class:`Peers` are read from outside the supervisor.

    ``peers`` is replaced (one reference assignment, atomic) by the supervisor only; readers on
    any thread get a consistent snapshot. None until the supervisor has started the children."""

    __slots__ = ("peers",)

    def __init__(self) -> None:
        self.peers: Peers | None = None

    def current(self) -> Peers:
        """The current peers. Before the supervisor has started the children: ``AttributeError``,
        as reading an attribute of the ``None`` it replaces raised (``getattr(runtime, "ledger",
        None)`` stays None while a failed start is cleaned up)."""
        peers = self.peers
        if peers is None:
            raise AttributeError("the runtime's children are not started yet")
        return peers


@dataclass
class Blueprint:
    """Everything the supervisor builds its children from (made by ``Runtime._boot``).

    ``settings``: a ``config.Settings``; ``registry``: the ``AdapterRegistry``; ``venues``:
    adapter id -> the venue instance built at start; ``journal_factory`` /
    ``ledger_journal_factory``: the stores of the idempotency records and of the ledger's rows
    (None when not durable); ``core``: the shared dispatcher (None: a thread per actor);
    ``store_on`` / ``ledger_on``: the idempotency store's and the ledger's dispatcher (``core``
    when they write no durable journal; when they do, each its own solo dispatcher, since their
    commits block on fsync; None with a thread per actor); ``track(ref)``: the runtime keeps every actor it must stop; ``fresh_venue(adapter_id,
    new, old)``: the runtime connects a venue rebuilt for an adapter restart; ``in_doubt``: adapter
    id -> orders recovery left in doubt (the first generation reconciles them)."""

    settings: Any
    registry: Any
    venues: dict
    clock: Any
    metrics: Any
    journal_factory: Callable[[], JournalStore]
    ledger_journal_factory: Callable[[], JournalStore] | None
    durable: bool
    state_dir: Path
    audit_path: Path | None
    archive_dir: Path | None
    core: Dispatcher | None
    store_on: Dispatcher | None
    ledger_on: Dispatcher | None
    hooks: tuple
    seed: int
    order_detail: Any
    prefix: str
    boot_errors: list
    track: Callable[[pykka.ActorRef], pykka.ActorRef]
    fresh_venue: Callable[[str, Any, Any], None]
    pg: Any = None
    in_doubt: dict = field(default_factory=dict)
    shared_throttles: list = field(default_factory=list)

    # -- one builder per kind of child ---------------------------------------------------------
    def bus(self, generation: int = 0, inherited: tuple = (), supervisor: pykka.ActorRef | None = None) -> pykka.ActorRef:
        """The event bus (a restarted one keeps the subscriptions and ``seq`` it ``inherited``)."""
        return self.track(EventBusActor.start(
            inherited=inherited, child_name=f"{self.prefix}-event_bus", generation=generation, supervisor=supervisor,
            supervised_as="event_bus", startup_errors=self.boot_errors, dispatcher=self.core, clock=self.clock))

    def ledger(self, *, bus: pykka.ActorRef, idempotency: pykka.ActorRef | None = None, router: pykka.ActorRef | None = None,
               generation: int = 0, inherited: tuple = (), supervisor: pykka.ActorRef | None = None) -> pykka.ActorRef:
        """The ledger; a next generation (``generation`` > 1) is rebuilt from the journal before
        any message (``RestartRefused`` when there is none: nothing to rebuild the books from)."""
        s, durable = self.settings, self.durable
        restore_from = None
        if generation > 1:
            if not durable:
                raise RestartRefused("the ledger keeps no journal (journal.enabled = false), so its books cannot be "
                                     "rebuilt; trading stays HALTED: restart the runtime")
            journal_factory, ledger_journal_factory = self.journal_factory, self.ledger_journal_factory
            if ledger_journal_factory is None:  # (never when durable: the ledger journals to it)
                raise RestartRefused("the ledger has no journal to be rebuilt from; trading stays HALTED: restart the runtime")

            def restore_from(pending: tuple = ()) -> list:
                journal, ledger_journal = journal_factory(), ledger_journal_factory()
                try:
                    return journaled_orders(journal, ledger_journal, pending)
                finally:
                    journal.close()
                    ledger_journal.close()
        risk = RiskEngine(RiskConfig.from_settings(s.risk))
        if self.pg is not None:  # budgets are the fleet's: checked in the shared database
            from ..journal.pg_budget import PgBudget

            risk.shared = PgBudget(self.pg)
        policy = dict(s.routing.policy)
        audit_path, archive_dir, mode, clock = self.audit_path, self.archive_dir, s.journal.file_mode, self.clock
        return self.track(LedgerActor.start(
            risk=risk, bus=bus, idempotency=idempotency, router=router, instruments=s.paper.instrument_map(),
            audit_factory=(lambda: AuditLog(audit_path, file_mode=mode, archive_dir=archive_dir, clock=clock))
            if durable and audit_path is not None else None,
            journal_factory=self.ledger_journal_factory if durable else None,
            metrics=self.metrics, clock=self.clock, quiet_interval_s=s.reconcile.interval_s,
            shadow_adapters=frozenset(a for m, a in policy.items() if m in ("shadow", "shadow_run")),
            quiet_threshold_s=max([s.reconcile.quiet_threshold_s, *(s.for_adapter(a).timeouts.attempt_s * 2 for a in self.venues)]),
            hooks=self.hooks, max_open_age_s=s.orders.max_open_age_s,
            remainder=s.orders.remainder, max_resubmits=s.orders.max_resubmits,
            adapter_ids=tuple(self.venues), sync=s.sync, safety=s.safety,
            tracking={a: s.for_adapter(a).tracking for a in self.venues},
            pnl={"day_start": s.pnl.day_start, "timezone": s.pnl.timezone}, alerts=s.alerts,
            receipts_path=self.state_dir / "receipts.jsonl" if durable and s.retention.keep_receipts else None,
            refused_path=self.state_dir / "refused.json" if durable else None,
            keep_terminal=s.journal.keep_terminal_orders, compact_interval_s=s.journal.compact_interval_s,
            ttl_s=s.idempotency.ttl_s, restore_from=restore_from,
            retention=RetentionJob(self.state_dir, self.archive_dir, s.retention.orders_days, s.retention.receipts_days,
                                   s.retention.interval_s, mode, self.pg) if durable and self.archive_dir is not None else None,
            inherited=inherited, generation=generation,
            supervisor=supervisor, supervised_as="ledger", child_name=f"{self.prefix}-ledger",
            startup_errors=self.boot_errors, dispatcher=self.ledger_on))

    def store(self, *, ledger: pykka.ActorRef, generation: int = 0, inherited: tuple = (),
              supervisor: pykka.ActorRef | None = None) -> pykka.ActorRef:
        """The idempotency store; a next generation reopens the same journal."""
        s = self.settings
        return self.track(IdempotencyStoreActor.start(
            store_factory=self.journal_factory, ttl_s=s.idempotency.ttl_s, ledger=ledger,
            group_commit_max=s.journal.group_commit_max, metrics=self.metrics, clock=self.clock,
            inherited=inherited, generation=generation, supervisor=supervisor, supervised_as="idempotency",
            child_name=f"{self.prefix}-idempotency", startup_errors=self.boot_errors, dispatcher=self.store_on))

    def breaker(self, adapter_id: str, *, ledger: pykka.ActorRef, idempotency: pykka.ActorRef, bus: pykka.ActorRef,
                generation: int = 0, inherited: tuple = (), supervisor: pykka.ActorRef | None = None) -> pykka.ActorRef:
        """The circuit-breaker actor of ``adapter_id`` (a restarted one starts CLOSED)."""
        s = self.settings
        self.metrics.set_breaker_state(adapter_id, "CLOSED")
        return self.track(CircuitBreakerActor.start(
            adapter_id=adapter_id, config=BreakerConfig.from_settings(s.for_adapter(adapter_id).breaker), clock=self.clock,
            ledger=ledger, idempotency=idempotency, bus=bus, when_restarting=s.supervisor.when_restarting,
            stash_size=s.supervisor.stash_size, metrics=self.metrics, child_name=f"breaker:{adapter_id}",
            generation=generation, supervisor=supervisor, inherited=inherited,
            startup_errors=self.boot_errors, dispatcher=self.core))

    def routes(self, breakers: Mapping[str, pykka.ActorRef]) -> RouteTable:
        """The frozen route table over the current breaker actors (from ``[routing]``)."""
        return RouteTable.build(dict(self.settings.routing.policy), tuple(self.settings.routing.blocked_modes), breakers)

    def router(self, *, table: RouteTable, ledger: pykka.ActorRef, generation: int = 0,
               supervisor: pykka.ActorRef | None = None) -> pykka.ActorRef:
        """The router actor over ``table``."""
        return self.track(RouterActor.start(
            table=table, ledger=ledger, child_name=f"{self.prefix}-router", generation=generation, supervisor=supervisor,
            supervised_as="router", startup_errors=self.boot_errors, dispatcher=self.core, clock=self.clock))

    def adapter_factory(self, adapter_id: str, view: TopologyView,
                        supervisor: pykka.ActorRef) -> Callable[[int, tuple], pykka.ActorRef]:
        """The factory of ``adapter_id``'s actor generations. Generation 1 runs on the venue built
        at start; every restart gets a fresh instance from the registry's builder (when the
        registry rebuilds this adapter, ``AdapterRegistry.register(rebuild=...)``), so a crashed
        generation's broken state is not reused; ``fresh_venue`` connects it and retires the old
        one. A builder that fails makes that generation fail at start-up (restarted with
        backoff, as any start-up crash). Each generation gets the current peers from ``view``."""
        s, registry = self.settings, self.registry
        policy = AdapterPolicy.from_settings(s, adapter_id)
        base_seed = self.seed * 1_000_003 + sum(map(ord, adapter_id))
        throttle = None
        if self.pg is not None:  # the venue counts calls per key, not per process: one window for the fleet
            from ..journal.pg_throttle import SharedThrottle

            own = s.for_adapter(adapter_id).throttle
            throttle = SharedThrottle(self.pg, own.venue_key or adapter_id, own.max_calls, own.window_s, own.share)
            self.shared_throttles.append(throttle)
        current = [self.venues[adapter_id]]

        def factory(generation: int, inherited: tuple) -> pykka.ActorRef:
            start_error = None
            if generation > 1 and registry.rebuilds(adapter_id, s):
                try:
                    fresh = registry.build(adapter_id, s)
                except Exception as exc:  # noqa: BLE001 - a start-up failure of this generation
                    logger.opt(exception=exc).error("{}: building a fresh adapter for g{} failed", adapter_id, generation)
                    start_error = exc
                else:
                    if fresh is not current[0]:
                        old, current[0] = current[0], fresh
                        self.fresh_venue(adapter_id, fresh, old)
            peers = view.peers
            assert peers is not None
            return self.track(AdapterActor.start(
                adapter_id=adapter_id, venue=current[0], policy=policy, clock=self.clock, breaker=peers.breakers[adapter_id],
                ledger=peers.ledger, idempotency=peers.idempotency, rng=random.Random(base_seed + generation),
                inherited=inherited, metrics=self.metrics, order_detail=self.order_detail, child_name=adapter_id,
                generation=generation, supervisor=supervisor, dispatcher=self.core, throttle=throttle,
                start_error=start_error, bus=peers.bus))

        return factory


def with_child(peers: Peers, name: str, ref: pykka.ActorRef, blueprint: Blueprint) -> Peers:
    """``peers`` with child ``name`` replaced by ``ref`` (a breaker also rebuilds the route table)."""
    if name.startswith("breaker:"):
        breakers = {**peers.breakers, name.split(":", 1)[1]: ref}
        return replace(peers, breakers=breakers, routes=blueprint.routes(breakers))
    field_name = {"event_bus": "bus", "ledger": "ledger", "idempotency": "idempotency", "router": "router"}[name]
    changes: dict[str, Any] = {field_name: ref}
    return replace(peers, **changes)


__all__ = ["Blueprint", "Peers", "RestartRefused", "TopologyView", "with_child"]
