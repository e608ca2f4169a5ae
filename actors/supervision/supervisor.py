"""The supervisor actor: creates, wires, watches and restarts every child (docs/DESIGN.md "House plan", "Failure handling").

At boot one ``StartChildren`` ask builds the whole topology from the runtime's ``Blueprint``
(``topology.py``: how each child is built from Settings and the registry), passing each child
its peers at construction and the ledger its store and router in one typed ``Wire``; the current
references are published as ``Peers`` in the ``TopologyView`` the runtime reads.

Modelled on Erlang/OTP's one-for-one supervisor: each adapter actor is a child with a
generation number. A child reports its own failure (a crash in a handler, a failure in
start-up, or a worker hung past its deadline all end in ``ChildFailed``); the supervisor
tells the adapter's circuit-breaker actor that the adapter is down (orders wait in its
stash), publishes ``AdapterCrashed``, and schedules a restart after an exponential backoff
with jitter (a timer message, never a sleep). More than ``max_restarts`` restarts within
``within_s`` seconds and the child is given up: ``ChildGaveUp`` is published and its route
answers ``E_EXEC_NO_ADAPTER``. Reports about an older generation are ignored. The new
generation inherits the orders in doubt and reconciles them before anything is re-sent.

The router, the breakers and the event bus are watched core children: the supervisor tells
each :class:`Supervise` at registration, a handler that raises stops that actor alone (no
carrying on with half-applied state) and pykka's ``on_failure`` path brings ``ChildFailed`` here.
The supervisor restarts it with the same backoff and intensity limit, from the blueprint, with
its state rebuilt: a breaker starts CLOSED and gets the adapter's
current actor, the router gets the current route table, the bus keeps its subscriptions (handed
over by the crashed bus). ``_rewire`` then tells every holder of the old reference the new one
(a typed ``Wire``) and publishes the new ``Peers``. A breaker restart also rewires its adapter child. Given up: ``ChildGaveUp``.

The ledger and the idempotency store are restarted the same way but FROM THE JOURNAL (their
state is durable): the ledger's next generation replays the journaled orders before any message;
while the store restarts the ledger holds trading HALTED (``HoldTrading``), released by the new
store once it has reopened the journal. A restart that fails is retried with the backoff; given up
(or refused: ``RestartRefused``, a ledger without a journal), trading stays HALTED with the reason.
Messages queued to a crashed core child are kept in its ``Mailbox`` and redelivered to the next
generation (docs/DESIGN.md "Failure handling").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pykka
from loguru import logger

from protocols import AdapterCrashed, AdapterRestarted, ChildGaveUp

from ..breaker.messages import AdapterChanged
from ..events.messages import Publish
from ..idempotency.store import RESTART_HOLD
from ..kernel.base import FlowActor, internal_error_report, resolve, tell
from ..orders.messages import HoldTrading, RestoreLedger
from .backoff import RestartBackoff
from .messages import ChildFailed, GetHealth, RestartChild, StartChildren, Supervise, Wire
from .topology import Blueprint, Peers, RestartRefused, TopologyView, with_child


@dataclass(frozen=True)
class ChildHealth:
    """One supervised child: ``name``, ``kind`` (adapter/core), ``state`` (running, restarting,
    failed, stopped), ``generation``, ``restarts`` (total), ``last_failure`` (text or "")."""

    name: str
    kind: str
    state: str
    generation: int
    restarts: int
    last_failure: str = ""


@dataclass(frozen=True)
class Health:
    """A runtime health snapshot: children, breaker states by adapter, trading state, and the
    orders in doubt whose reconciliation escalated (``escalated``: client order id -> lookups
    made, after ``reconcile.max_attempts``; see ``ReconciliationEscalated``), why trading is in its
    state (``trading_reason``: the operator or a safety rule), the adapters whose venue books
    differ from the ledger (``broker_mismatches``, from ``Runtime.sync_broker_state``) and the
    durable writes that are failing (``durable_writes``: store -> ``{"error", "attempts",
    "pending"}``; while any is there trading is HALTED, see docs/DESIGN.md "Durability"), the
    ledger journal's rows refused for their values (``refused_rows``: ``{}`` when none, else
    ``{"count", "last_client_order_id", "last_kind", "last_reason"}``; each was a
    ``JournalRowRefused`` event and a ``journal_row_refused`` audit line; the journal lacks that
    row of a live order, so ``healthy`` is False while any is listed; trading goes on) and the
    idempotency journal's refused claims (``refused_claims``: ``{}`` or ``{"count",
    "last_client_order_id", "last_reason"}``; each order was denied E_EXEC_VALIDATION whole,
    nothing sent, so ``healthy`` does not count them) and the PostgreSQL shared budget's refused
    values (``refused_budget``: ``{}`` or ``{"count", "left_out", "last_client_order_id",
    "last_account_id", "last_kind", "last_reason"}``; a refused reservation ("reserve") denied its
    order, which ``healthy`` does not count; a refused true-up ("flush") left that order's values
    out of the fleet's totals, ``left_out``, so ``healthy`` is False while any is). The lists are
    kept until an operator clears them (``Runtime.acknowledge_refused``), across a ledger restart
    and, in a durable runtime, across a runtime restart (``state_dir/refused.json``)."""

    children: tuple[ChildHealth, ...]
    breakers: dict = field(default_factory=dict)
    trading_state: str = "ACTIVE"
    escalated: dict = field(default_factory=dict)
    #: per adapter with a session (FIX): its ``health()`` dict (state, sequence numbers, counters)
    venues: dict = field(default_factory=dict)
    trading_reason: str = ""
    broker_mismatches: tuple[str, ...] = ()
    durable_writes: dict = field(default_factory=dict)
    refused_rows: dict = field(default_factory=dict)
    refused_claims: dict = field(default_factory=dict)
    refused_budget: dict = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when every child is running, no breaker is open, no order in doubt is escalated,
        no venue's books differ from the ledger, every durable write went through and no journal
        row or shared-budget value left out for its values waits for an operator (``refused_rows``,
        ``refused_budget["left_out"]``)."""
        return not self.escalated and not self.broker_mismatches and not self.durable_writes and not self.refused_rows and (
            not self.refused_budget.get("left_out")) and all(
            c.state == "running" for c in self.children) and all(
            b in ("CLOSED", "DISABLED") for b in self.breakers.values()
        )


@dataclass
class _Child:
    name: str
    kind: str
    ref: pykka.ActorRef | None
    generation: int
    factory: Callable[[int, tuple], pykka.ActorRef] | None = None
    breaker: pykka.ActorRef | None = None
    backoff: RestartBackoff | None = None
    state: str = "running"
    restarts: int = 0
    last_failure: str = ""
    in_doubt: tuple = ()
    last_delay: float = 0.0
    #: what a crashed core child handed over for its successor
    inherited: tuple = ()
    #: the messages kept for the next generation (``actors.kernel.inbox.Mailbox``), until it starts
    mailbox: Any = None


def _answer_given_up(message: Any, now: Callable[[], datetime]) -> None:
    # a group commit's orders in one message (SubmitOrders, ExecuteOrders: they have ``replies``): each of them
    for each in message.orders if getattr(message, "replies", None) is not None else (message,):
        reply = getattr(each, "reply", None)
        if isinstance(reply, Future) and not reply.done():
            resolve(reply, internal_error_report(each, ts=now()))


class SupervisorActor(FlowActor):
    """Creates, wires, watches and restarts every child (docs/DESIGN.md "House plan").

    ``blueprint`` (:class:`~actors.supervision.topology.Blueprint`): what the children are built
    from; ``view``: where the current :class:`~actors.supervision.topology.Peers` are published.
    :class:`StartChildren` (an ask, once, at boot) builds the topology; every restart builds the
    next generation from the same blueprint and rewires its holders with a typed ``Wire``."""

    def __init__(self, *, clock: Any, supervisor_settings: Any, blueprint: Blueprint | None = None,
                 view: TopologyView | None = None, seed: int = 0, metrics: Any = None, **kw) -> None:
        super().__init__(clock=clock, **kw)
        self._clock = clock
        self._bus: pykka.ActorRef | None = None
        self._blueprint = blueprint
        self._view = view if view is not None else TopologyView()
        self._s = supervisor_settings
        self._rng = random.Random(seed)
        self._metrics = metrics
        self._children: dict[str, _Child] = {}

    def _backoff(self) -> RestartBackoff:
        return RestartBackoff(initial_s=self._s.backoff_initial_s, max_s=self._s.backoff_max_s, jitter=self._s.jitter,
                              max_restarts=self._s.max_restarts, within_s=self._s.within_s, rng=self._rng)

    # -- creating the children (an ask at boot, from the runtime's thread) --------------------
    def handle_StartChildren(self, message: StartChildren) -> Peers:
        """Build every child from the blueprint in dependency order (bus → ledger → store →
        breakers → router → adapters), pass each its peers at construction, give the ledger the
        two it could not have yet in one ``Wire``, watch each (``Supervise``) and publish the
        :class:`Peers`. Start-up failures show in the runtime's boot ping."""
        bp, me = self._blueprint, self.actor_ref
        assert bp is not None, "a supervisor without a blueprint has no children to start"
        bus = bp.bus()
        self._bus = bus
        ledger = bp.ledger(bus=bus)
        store = bp.store(ledger=ledger)
        breakers = {a: bp.breaker(a, ledger=ledger, idempotency=store, bus=bus) for a in bp.venues}
        routes = bp.routes(breakers)
        router = bp.router(table=routes, ledger=ledger)
        tell(ledger, Wire(idempotency=store, router=router))  # the one wiring step: the rest came at construction
        if message.restore:
            tell(ledger, RestoreLedger(message.restore))  # journaled orders, before any new order
        self._view.peers = Peers(bus=bus, ledger=ledger, idempotency=store, router=router, breakers=breakers, routes=routes)
        # each restarted FROM ITS STATE: ledger and store from the journal, the rest rebuilt
        # (docs/DESIGN.md "Failure handling"); a factory reads the current peers when it runs
        view = self._view
        self._watch("event_bus", bus, lambda g, inh: bp.bus(g, inh, me))
        self._watch("ledger", ledger, lambda g, inh: bp.ledger(
            bus=view.current().bus, idempotency=view.current().idempotency, router=view.current().router, generation=g,
            inherited=inh, supervisor=me))
        self._watch("idempotency", store, lambda g, inh: bp.store(ledger=view.current().ledger, generation=g, inherited=inh,
                                                                  supervisor=me))
        self._watch("router", router, lambda g, inh: bp.router(table=view.current().routes, ledger=view.current().ledger,
                                                               generation=g, supervisor=me))

        def restart_breaker(a: str) -> Callable[[int, tuple], pykka.ActorRef]:
            return lambda g, inh: bp.breaker(a, ledger=view.current().ledger, idempotency=view.current().idempotency,
                                             bus=view.current().bus, generation=g, inherited=inh, supervisor=me)

        for adapter_id, breaker in breakers.items():
            self._watch(f"breaker:{adapter_id}", breaker, restart_breaker(adapter_id))
        for adapter_id in bp.venues:
            child = _Child(adapter_id, "adapter", None, 0, factory=bp.adapter_factory(adapter_id, view, me),
                           breaker=breakers[adapter_id], backoff=self._backoff())
            self._children[adapter_id] = child
            self._start(child, tuple(bp.in_doubt.get(adapter_id, ())))
        return self._view.current()

    def _watch(self, name: str, ref: pykka.ActorRef, factory: Callable[[int, tuple], pykka.ActorRef]) -> None:
        child = _Child(name, "core", ref, 1, factory=factory, backoff=self._backoff())
        self._children[name] = child
        tell(ref, Supervise(self.actor_ref, child.generation, child.name))

    def _rewire(self, name: str, ref: pykka.ActorRef) -> None:
        """Child ``name`` restarted as ``ref``: publish the new peers and tell every holder of the
        old reference the new one (module docstring of ``topology``: who holds what)."""
        assert self._blueprint is not None, "only a supervisor with a blueprint restarts children"
        peers = with_child(self._view.current(), name, ref, self._blueprint)
        self._view.peers = peers
        adapters = [c.ref for c in self._children.values() if c.kind == "adapter"]
        if name == "event_bus":
            self._bus = ref
            for holder in (peers.ledger, *peers.breakers.values(), *adapters):
                tell(holder, Wire(bus=ref))
        elif name == "ledger":
            for holder in (peers.idempotency, peers.router, *peers.breakers.values(), *adapters):
                tell(holder, Wire(ledger=ref))
        elif name == "idempotency":
            for holder in (peers.ledger, *peers.breakers.values(), *adapters):
                tell(holder, Wire(idempotency=ref))
        elif name == "router":
            tell(peers.ledger, Wire(router=ref))
        elif name.startswith("breaker:"):
            tell(peers.router, Wire(table=peers.routes))

    def _start(self, child: _Child, inherited: tuple) -> None:
        child.generation += 1
        child.state = "running"
        assert child.factory is not None, "an adapter child is registered with its factory"
        child.ref = child.factory(child.generation, inherited)
        tell(child.breaker, AdapterChanged(child.ref, child.generation))

    # -- failures ----------------------------------------------------------------------
    def handle_ChildFailed(self, message: ChildFailed) -> None:
        child = self._children.get(message.child)
        if child is not None and child.kind == "core" and child.factory is not None:
            self._core_failed(child, message)
            return
        if child is None or child.kind != "adapter":
            logger.error("unsupervised child {} failed: {}", message.child, message.error)
            return
        if message.generation != child.generation or child.state != "running":
            logger.debug("ignoring a stale failure report of {} g{}", message.child, message.generation)
            return
        in_doubt = tuple(message.details.get("in_doubt", ()))
        child.in_doubt = child.in_doubt + in_doubt
        child.state = "restarting"
        child.last_failure = message.error
        child.ref = None
        tell(child.breaker, AdapterChanged(None, child.generation))
        logger.warning("{} g{} failed{}: {} ({} order(s) in doubt)", child.name, child.generation,
                       " during start-up" if message.during_startup else "", message.error, len(in_doubt))
        tell(self._bus, Publish(AdapterCrashed(child=child.name, error=message.error[:300], generation=child.generation,
                                               orders_in_doubt=tuple(d.client_order_id for d in in_doubt))))
        assert child.backoff is not None, "a restartable child has a backoff"
        delay = child.backoff.next_delay(self._clock.monotonic())
        if delay is None:
            child.state = "failed"
            logger.error("{} gave up: more than {} restarts in {:g} s", child.name, self._s.max_restarts, self._s.within_s)
            tell(child.breaker, AdapterChanged(None, child.generation, gave_up=True))
            if child.in_doubt:
                logger.error("{} order(s) stay UNKNOWN on {}: {}", len(child.in_doubt), child.name,
                             ", ".join(d.client_order_id for d in child.in_doubt[:20]))
            tell(self._bus, Publish(ChildGaveUp(child=child.name, restarts=child.restarts, within_s=self._s.within_s,
                                                last_error=message.error[:300])))
            return
        ref = self.actor_ref
        generation = child.generation
        self._clock.call_later(delay, lambda: tell(ref, RestartChild(child.name, generation)))
        child.last_delay = delay

    def _ledger_ref(self) -> pykka.ActorRef | None:
        ledger = self._children.get("ledger")
        return ledger.ref if ledger is not None else None

    def _core_failed(self, child: _Child, message: ChildFailed) -> None:
        if message.generation != child.generation or child.state != "running":
            logger.debug("ignoring a stale failure report of {} g{}", message.child, message.generation)
            return
        child.state, child.last_failure, child.ref = "restarting", message.error, None
        child.inherited = tuple(message.details.get("inherited", ()))
        mailbox = message.details.get("mailbox")
        if mailbox is not None:  # the newest generation's mailbox holds everything kept so far
            child.mailbox = mailbox
        logger.warning("{} g{} failed{}: {}", child.name, child.generation,
                       " during start-up" if message.during_startup else "", message.error)
        if child.name == "idempotency":  # no order passes until the store has reopened the journal
            tell(self._ledger_ref(), HoldTrading(RESTART_HOLD, f"the idempotency store failed ({message.error[:200]}); "
                                                               "restarting it from the journal"))
        assert child.backoff is not None, "a restartable child has a backoff"
        delay = child.backoff.next_delay(self._clock.monotonic())
        if delay is None:
            self._give_up(child, message.error, f"more than {self._s.max_restarts} restarts in {self._s.within_s:g} s")
            return
        ref, generation = self.actor_ref, child.generation
        self._clock.call_later(delay, lambda: tell(ref, RestartChild(child.name, generation)))
        child.last_delay = delay

    def _give_up(self, child: _Child, error: str, why: str) -> None:
        """A core child that will not come back: ``ChildGaveUp``; the messages kept for it are answered
        (a reply future E_EXEC_INTERNAL, an ask ``ActorDeadError``); a durable child leaves trading
        HALTED with the reason (docs/DESIGN.md "Failure handling")."""
        child.state, child.ref = "failed", None
        logger.error("{} gave up: {}", child.name, why)
        if child.mailbox is not None:
            answered = child.mailbox.refuse(lambda message: _answer_given_up(message, self.report_now))
            child.mailbox = None
            if answered:
                logger.error("{}: {} message(s) kept for it answered (given up)", child.name, answered)
        if child.name == "idempotency":
            tell(self._ledger_ref(), HoldTrading(RESTART_HOLD, f"the idempotency store could not be restarted ({why}: {error[:200]}); "
                                                               "restart the runtime"))
        tell(self._bus, Publish(ChildGaveUp(child=child.name, restarts=child.restarts, within_s=self._s.within_s,
                                            last_error=error[:300])))

    def _restart_core(self, child: _Child) -> None:
        inherited, child.inherited = child.inherited, ()
        child.generation += 1
        child.restarts += 1
        assert child.factory is not None, "only a core child with a factory is restarted"
        try:
            ref = child.factory(child.generation, inherited)
        except RestartRefused as exc:
            child.last_failure = f"{child.last_failure}; not restarted: {exc}"[:800]
            self._give_up(child, str(exc), "it cannot be restarted")
            return
        except Exception as exc:  # noqa: BLE001 - a factory that cannot build: a failure of this generation
            logger.opt(exception=exc).error("{} could not be restarted", child.name)
            child.state = "running"
            self._core_failed(child, ChildFailed(child.name, child.generation, repr(exc)[:500], during_startup=True))
            return
        child.ref = ref
        child.state = "running"
        tell(child.ref, Supervise(self.actor_ref, child.generation, child.name))
        if child.mailbox is not None:  # behind the new generation's start-up: what was queued to the old one
            handed = child.mailbox.connect(child.ref)
            child.mailbox = None
            if handed:
                logger.warning("{} g{}: {} message(s) kept from the crashed generation redelivered", child.name,
                               child.generation, handed)
        self._rewire(child.name, child.ref)
        for adapter in self._children.values():  # a breaker's adapter: point it and its factory's breaker at the new one
            if adapter.kind == "adapter" and adapter.breaker is not None and f"breaker:{adapter.name}" == child.name:
                adapter.breaker = child.ref
                tell(adapter.ref, Wire(breaker=child.ref))
                if adapter.state == "failed":
                    tell(child.ref, AdapterChanged(None, adapter.generation, gave_up=True))
                else:
                    tell(child.ref, AdapterChanged(adapter.ref, adapter.generation))
        if self._metrics is not None:
            self._metrics.restart(child.name)
        logger.info("{} restarted as g{} (restart {})", child.name, child.generation, child.restarts)

    def handle_RestartChild(self, message: RestartChild) -> None:
        child = self._children.get(message.child)
        if child is None or child.generation != message.generation or child.state != "restarting":
            return
        if child.kind == "core":
            self._restart_core(child)
            return
        inherited, child.in_doubt = child.in_doubt, ()
        child.restarts += 1
        self._start(child, inherited)
        if self._metrics is not None:
            self._metrics.restart(child.name)
        logger.info("{} restarted as g{} (restart {})", child.name, child.generation, child.restarts)
        tell(self._bus, Publish(AdapterRestarted(child=child.name, generation=child.generation, restarts=child.restarts,
                                                 delay_s=round(child.last_delay, 4))))

    # -- queries -----------------------------------------------------------------------
    def handle_GetHealth(self, message: GetHealth) -> tuple[ChildHealth, ...]:
        out = []
        for child in self._children.values():
            state = child.state
            if state == "running" and child.ref is not None and not child.ref.is_alive():
                state = "stopped"
            out.append(ChildHealth(child.name, child.kind, state, child.generation, child.restarts, child.last_failure))
        return tuple(out)

    def handle_GetAdapterRefs(self, message: Any) -> dict:
        return {name: c.ref for name, c in self._children.items() if c.kind == "adapter"}

    def handle_StopChildren(self, message: Any) -> None:
        for child in self._children.values():  # a restart timer that fires now finds nothing to restart
            if child.kind == "adapter" or child.factory is not None:
                child.state = "stopped"
