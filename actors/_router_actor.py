"""The router actor: picks the route from the execution mode (SPEC §6).

The policy is configuration (mode → adapter id). Blocked modes (live by default) are
DENIED with E_EXEC_POLICY_BLOCKED; any other unknown mode is DENIED with
E_EXEC_ROUTE_CONFIG_INVALID — never a silent fallback. Decisions are precomputed per
mode at start, so routing one order is one dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import pykka

from protocols import ErrorCode, ExecutionMode, RouteDecision

from ._base import FlowActor, tell
from ._messages import CancelFinished, CancelOrder, ForwardReconcile, RecordDenied, SubmitOrder
from ._reporting import error_report
from ._base import resolve

_REASONS = {
    "paper": "paper mode",
    "shadow": "shadow mode",
    "dry_run": "dry-run: validated and acknowledged, never filled",
}


@dataclass(frozen=True, slots=True)
class RouteDenied:
    """Why a mode cannot be routed: ``code`` and a message naming the mode."""

    code: ErrorCode
    message: str


def decide_route(mode: str, policy: Mapping[str, str], blocked_modes: frozenset[str] | set[str] | tuple[str, ...]) -> RouteDecision | RouteDenied:
    """Route ``mode`` under ``policy`` (mode → adapter id): a ``RouteDecision`` or a ``RouteDenied``.

    Rules (SPEC §6): a blocked mode → E_EXEC_POLICY_BLOCKED; a mode missing from the
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


class RouterActor(FlowActor):
    """Routes each ``SubmitOrder`` to its adapter's circuit-breaker actor via the idempotency store.

    Holds: the routing policy, the blocked modes, and the breaker actor per adapter id.
    Forwards: ``SubmitOrder`` (with ``route`` and ``gate`` set) to the idempotency store;
    ``CancelOrder`` (with ``adapter_id`` set by the ledger) to the adapter's breaker actor.
    """

    def __init__(
        self,
        *,
        policy: Mapping[str, str],
        blocked_modes: tuple[str, ...],
        gates: Mapping[str, pykka.ActorRef],
        idempotency: pykka.ActorRef,
        ledger: pykka.ActorRef,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self._policy = dict(policy)
        self._blocked = frozenset(blocked_modes)
        self._gates = dict(gates)
        self._idempotency = idempotency
        self._ledger = ledger
        self._cache: dict[str, RouteDecision | RouteDenied] = {}

    def handle_SubmitOrder(self, order: SubmitOrder) -> None:
        mode = order.context.mode
        decision = self._cache.get(mode)
        if decision is None:
            decision = decide_route(mode, self._policy, self._blocked)
            if len(self._cache) < 1024:
                self._cache[mode] = decision
        if isinstance(decision, RouteDenied):
            self._deny(order, decision.code, decision.message)
            return
        gate = self._gates.get(decision.adapter_id)
        if gate is None:
            self._deny(order.evolve(route=decision), ErrorCode.E_EXEC_NO_ADAPTER, f"no adapter registered for '{decision.adapter_id}'")
            return
        if not tell(self._idempotency, order.evolve(route=decision, gate=gate)):
            self._deny(order, ErrorCode.E_EXEC_INTERNAL, "idempotency store unavailable")

    def handle_CancelOrder(self, cancel: CancelOrder) -> None:
        gate = self._gates.get(cancel.adapter_id)
        if gate is None or not tell(gate, replace(cancel, gate=gate)):
            tell(self._ledger, CancelFinished(cancel, cancel.adapter_id, "not_sent", code=ErrorCode.E_EXEC_NO_ADAPTER,
                                              reason=f"no adapter '{cancel.adapter_id}'"))

    def handle_ForwardReconcile(self, message: ForwardReconcile) -> None:
        tell(self._gates.get(message.adapter_id), message)

    def _deny(self, order: SubmitOrder, code: ErrorCode, message: str) -> None:
        report = error_report(order, code, message)
        resolve(order.reply, report)
        tell(self._ledger, RecordDenied(report=report, intent=order.intent, context=order.context))
