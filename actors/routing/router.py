"""The router: picks the route from the execution mode (README.md, Topology).

The policy is configuration (mode → adapter id). Blocked modes (live by default) are
DENIED with E_EXEC_POLICY_BLOCKED; any other unknown mode is DENIED with
E_EXEC_ROUTE_CONFIG_INVALID — never a silent fallback.

The router actor owns the routing table, a frozen :class:`RouteTable` whose decisions are
precomputed per mode. Routing a new order is a pure lookup in that table, so
``Runtime.submit`` does it in the sender's thread and hands the routed order straight to
the idempotency store (one actor hop less on every order: the table is immutable, so
reading it needs no message and no lock). The actor routes everything else by message:
cancels (to the adapter's breaker actor) and reconciliation requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType

import pykka

from protocols import ErrorCode, ExecutionMode, RouteDecision

from ..kernel.base import FlowActor, resolve, tell
from ..orders.messages import BrokerStateFetched, CancelFinished, CancelOrder, CancelOutcome, RecordDenied, SubmitOrder
from ..orders.reporting import error_report
from ..supervision.messages import Wire
from .messages import FetchBrokerState, ForwardReconcile, TrackOrders

_REASONS = {
    "paper": "paper mode",
    "shadow": "shadow mode",
    "dry_run": "dry-run: validated and acknowledged, never filled",
}


@dataclass(frozen=True, slots=True)
class RouteDenied:
    """Why an order cannot be routed: ``code``, a message naming the mode (or adapter), and the
    route that was decided when only its adapter is missing."""

    code: ErrorCode
    message: str
    route: RouteDecision | None = None


def decide_route(mode: str, policy: Mapping[str, str], blocked_modes: frozenset[str] | set[str] | tuple[str, ...]) -> RouteDecision | RouteDenied:
    """Route ``mode`` under ``policy`` (mode → adapter id): a ``RouteDecision`` or a ``RouteDenied``.

    Rules (README.md, Topology): a blocked mode → E_EXEC_POLICY_BLOCKED; a mode missing from the
    policy → E_EXEC_ROUTE_CONFIG_INVALID. ``route_id`` is ``route_<adapter_id>``.
    """
    if mode in blocked_modes:
        return RouteDenied(ErrorCode.E_EXEC_POLICY_BLOCKED, f"mode '{mode}' is blocked by policy: live routes are disabled")
    adapter_id = policy.get(mode)
    if adapter_id is None:
        known = ", ".join(sorted(policy))
        return RouteDenied(ErrorCode.E_EXEC_ROUTE_CONFIG_INVALID, f"unknown or unroutable mode '{mode}' (routable: {known})")
    reason = _REASONS.get(adapter_id, f"{mode} mode")
    return RouteDecision(route_id=f"route_{adapter_id}", adapter_id=adapter_id, routing_reason=reason)


KNOWN_MODES = tuple(m.value for m in ExecutionMode)


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The router's immutable table: mode → decision, adapter id → its breaker actor.

    Built once from the policy; never mutated, so any thread may read it. ``lookup(mode)``
    gives the decision and the adapter's breaker actor, or a ``RouteDenied``
    (E_EXEC_POLICY_BLOCKED, E_EXEC_ROUTE_CONFIG_INVALID, or E_EXEC_NO_ADAPTER when the policy
    names an adapter that has no breaker actor).

    Example::

        table = RouteTable.build({"paper": "paper"}, ("live",), {"paper": breaker_ref})
        decision, breaker = table.lookup("paper")   # decision.adapter_id == 'paper', breaker is breaker_ref
        table.lookup("live").code                # ErrorCode.E_EXEC_POLICY_BLOCKED
    """

    policy: Mapping[str, str]
    blocked: frozenset[str]
    breakers: Mapping[str, pykka.ActorRef]
    #: mode → (decision, breaker actor) or why it cannot be routed
    routes: Mapping[str, tuple[RouteDecision, pykka.ActorRef] | RouteDenied]

    @classmethod
    def build(cls, policy: Mapping[str, str], blocked_modes: tuple[str, ...] | frozenset[str],
              breakers: Mapping[str, pykka.ActorRef]) -> RouteTable:
        """Precompute the route of every configured, blocked and known mode."""
        policy, blocked, breakers = dict(policy), frozenset(blocked_modes), dict(breakers)
        routes = {mode: _resolve(decide_route(mode, policy, blocked), breakers)
                  for mode in set(policy) | blocked | set(KNOWN_MODES)}
        return cls(MappingProxyType(policy), blocked, MappingProxyType(breakers), MappingProxyType(routes))

    def lookup(self, mode: str) -> tuple[RouteDecision, pykka.ActorRef] | RouteDenied:
        """``(decision, breaker actor)`` for ``mode``, or why it cannot be routed (a mode outside the
        table is decided on the spot: denied)."""
        found = self.routes.get(mode)
        return found if found is not None else _resolve(decide_route(mode, self.policy, self.blocked), self.breakers)


def _resolve(decision: RouteDecision | RouteDenied, breakers: Mapping[str, pykka.ActorRef]) -> tuple[RouteDecision, pykka.ActorRef] | RouteDenied:
    if isinstance(decision, RouteDenied):
        return decision
    breaker = breakers.get(decision.adapter_id)
    if breaker is None:
        return RouteDenied(ErrorCode.E_EXEC_NO_ADAPTER, f"no adapter registered for '{decision.adapter_id}'", decision)
    return decision, breaker


def deny_unrouted(order: SubmitOrder, denied: RouteDenied, ledger: pykka.ActorRef | None, *, ts: datetime | None = None) -> None:
    """Answer an order that cannot be routed (nothing journaled) and record it in the ledger; the
    report is stamped ``ts`` (the runtime's clock; default: the wall clock)."""
    report = error_report(order.evolve(route=denied.route) if denied.route is not None else order, denied.code, denied.message, ts=ts)
    resolve(order.reply, report)
    tell(ledger, RecordDenied(report=report, intent=order.intent, context=order.context))


class RouterActor(FlowActor):
    """Owns the routing table; routes cancels and reconciliation requests to breaker actors.

    A handler that raises crashes this actor (its state is the frozen table, rebuilt from the
    policy): the supervisor restarts it and rewires the ledger to the new one.

    ``table`` is the :class:`RouteTable` ``Runtime.submit`` reads to route new orders (they
    never pass through this actor); ``ledger`` hears of cancels that cannot be routed.
    """

    crash_on_error = True
    answer_on_crash = True
    keeps_mailbox = True

    def __init__(self, *, table: RouteTable, ledger: pykka.ActorRef, **kw) -> None:
        super().__init__(**kw)
        self._table = table
        self._ledger = ledger

    def handle_Wire(self, message: Wire) -> None:
        """The supervisor's wiring: the ledger after its restart, the route table after a breaker's."""
        if message.ledger is not None:
            self._ledger = message.ledger
        if message.table is not None:
            self._table = message.table

    def handle_CancelOrder(self, cancel: CancelOrder) -> None:
        breaker = self._table.breakers.get(cancel.adapter_id)
        if breaker is None or not tell(breaker, replace(cancel, breaker=breaker)):
            tell(self._ledger, CancelFinished(cancel, cancel.adapter_id, CancelOutcome.NOT_SENT, code=ErrorCode.E_EXEC_NO_ADAPTER,
                                              reason=f"no adapter '{cancel.adapter_id}'"))

    def handle_ForwardReconcile(self, message: ForwardReconcile) -> None:
        tell(self._table.breakers.get(message.adapter_id), message)

    def handle_TrackOrders(self, message: TrackOrders) -> None:
        tell(self._table.breakers.get(message.adapter_id), message)

    def handle_FetchBrokerState(self, message: FetchBrokerState) -> None:
        if not tell(self._table.breakers.get(message.adapter_id), message):
            tell(self._ledger, BrokerStateFetched(message.adapter_id, message.sync_id, error=f"no adapter '{message.adapter_id}'"))
