"""The circuit-breaker actor: one per adapter, every venue call passes through it (docs/DESIGN.md, Failure handling).

It owns the adapter's :class:`~actors.breaker.breaker.CircuitBreaker` and the adapter's current
actor reference. Forward flow for an order: ``SubmitOrder`` (from the ledger stage, or a
``RetryOrder`` timer) → permit → ``ExecuteOrder`` to the adapter actor; the adapter answers
``CallFinished`` with the outcome, which the breaker records. While the adapter restarts,
orders wait in a bounded stash (or fail fast, by setting); after the supervisor gives up
they are answered ``E_EXEC_NO_ADAPTER``. Cancels pass without a permit: reducing exposure
is never blocked by our own breaker (the venue may still refuse).

Orders this actor has handed to an adapter actor stay in ``_outstanding`` until the adapter
reports ``CallFinished``. When the adapter dies, whatever is still outstanding never reached
the adapter's handler (the crash handler reports every order it touched first), so it is
provably unsent and is re-dispatched to the next generation.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pykka
from loguru import logger

from protocols import ErrorCode, OrderStatus

from ..events.messages import Publish
from ..execution.messages import ExecuteCancel, ExecuteOrders, ReconcileOrders, new_execute_order
from ..idempotency.messages import CompleteOrder, ReleaseClaim
from ..kernel.base import FlowActor, resolve, tell
from ..orders.messages import (
    AdapterAvailability,
    BrokerStateFetched,
    CancelFinished,
    CancelOrder,
    CancelOutcome,
    GuardActed,
    OrderFinished,
    SubmitOrder,
    SubmitOrders,
)
from ..orders.reporting import error_report
from ..routing.messages import FetchBrokerState, ForwardReconcile, TrackOrders
from ..supervision.messages import Wire
from .breaker import BreakerConfig, BreakerState, CallOutcome, CircuitBreaker, Denied
from .messages import (
    AdapterChanged,
    BreakerCommand,
    BreakerTick,
    CallFinished,
    CallsFinished,
    CancelTaken,
    GetBreaker,
    RetryOrder,
    ReturnOrder,
)


class CircuitBreakerActor(FlowActor):
    """The circuit breaker of one adapter: breaker permits, stash while restarting, re-dispatch after a crash.

    A handler that raises crashes this actor; the supervisor restarts it with a fresh breaker
    (CLOSED, an empty window) and rewires the router's table, the adapter actor and the runtime to
    it. What is not breaker state is handed over (``failure_details`` → ``inherited``): an
    operator's ``force_open``/``disable`` (kept until ``reset``), the stash, and the orders and
    cancels handed to the adapter (their outcomes are not recorded in the new window: their permits
    were the old breaker's).
    """

    crash_on_error = True
    answer_on_crash = True
    keeps_mailbox = True

    def __init__(
        self,
        *,
        adapter_id: str,
        config: BreakerConfig,
        clock: Any,
        ledger: pykka.ActorRef,
        idempotency: pykka.ActorRef,
        bus: pykka.ActorRef,
        when_restarting: str = "stash",
        stash_size: int = 1000,
        metrics: Any = None,
        inherited: tuple = (),
        **kw,
    ) -> None:
        super().__init__(clock=clock, **kw)
        self.adapter_id = adapter_id
        self._breaker = CircuitBreaker(adapter_id, config, clock)
        #: from the crashed predecessor (see the class docstring), applied in start_child
        self._inherited = dict(inherited)
        #: orders handed to the adapter by the predecessor: their permits are not this breaker's
        self._foreign_permits: set[str] = set()
        self._clock = clock
        self._ledger = ledger
        self._idempotency = idempotency
        self._bus = bus
        self._when_restarting = when_restarting
        self._stash: deque[SubmitOrder | CancelOrder] = deque()
        self._stash_size = stash_size
        self._adapter: pykka.ActorRef | None = None
        self._adapter_generation = -1
        #: what the ledger was last told about this adapter's availability (README "Features":
        #: automatic trading state); available = an adapter actor runs and the breaker is CLOSED/DISABLED
        self._availability: tuple[bool, str] = (True, "")
        self._gave_up = False
        self._outstanding: dict[str, SubmitOrder] = {}
        self._outstanding_cancels: dict[int, CancelOrder] = {}
        self._cancel_tokens = 0
        self._tick_handle = None
        self._metrics = metrics
        self.transitions = 0
        #: while a ``SubmitOrders`` runs: the permitted orders, told to the adapter when it is done
        self._onward: list | None = None

    # -- orders ------------------------------------------------------------------------
    def handle_SubmitOrder(self, order: SubmitOrder) -> None:
        if self._adapter is None:
            self._hold(order)
            return
        decision = self._breaker.try_acquire()
        if isinstance(decision, Denied):
            self._publish(self._breaker.drain_events())
            self._deny(order, ErrorCode.E_EXEC_CIRCUIT_OPEN,
                       f"circuit breaker for '{self.adapter_id}' is {decision.state.value}; call not made",
                       retry_after_s=round(decision.retry_after_s, 3))
            return
        # the permit and the outstanding record are one step: whatever raises between taking the
        # permit and handing the order on gives the permit back (a half-open trial is not lost)
        permitted: SubmitOrder | None = None
        try:
            permitted = order.with_permit(decision)
            self._outstanding[order.client_order_id] = permitted
            self._publish(self._breaker.drain_events())
        except BaseException:
            if permitted is not None and self._outstanding.get(order.client_order_id) is permitted:
                del self._outstanding[order.client_order_id]
            self._breaker.record(decision, CallOutcome.IGNORED, 0.0)
            raise
        onward = self._onward
        if onward is not None:  # inside a SubmitOrders: told with the others when it is done
            onward.append((order, permitted))
        elif not tell(self._adapter, new_execute_order(permitted)):
            self._adapter_gone(order, permitted)

    def handle_SubmitOrders(self, message: SubmitOrders) -> None:
        """The orders of one group commit (the ledger): each handled as its own :class:`SubmitOrder`,
        in order; those permitted go on to the adapter as one ``ExecuteOrders``. When one crashes
        this actor, the ones before it still go on (``FlowActor.run_each``)."""
        onward: list[tuple[SubmitOrder, SubmitOrder]] = []
        self._onward = onward
        try:
            self.run_each(message.orders, self.handle_SubmitOrder)
        finally:
            self._onward = None
            if onward:
                execute = new_execute_order(onward[0][1]) if len(onward) == 1 else ExecuteOrders(tuple(p for _, p in onward))
                if not tell(self._adapter, execute):
                    for order, permitted in onward:
                        self._adapter_gone(order, permitted)

    def answer_crashed(self, message: Any) -> None:
        """A handler raised on ``message`` and this actor crashes. An order it was handling that
        never went on to the adapter (not outstanding, not stashed) was provably not sent: it is
        answered as any order this breaker does not send (:meth:`_deny`: DENIED E_EXEC_INTERNAL and
        its claim released on a first attempt, FAILED on a retry; the ledger told, so its
        reservation is released), not left RESERVED with its claim in progress. Anything else is
        answered as every crashed actor answers (E_EXEC_INTERNAL on its reply future)."""
        order = message.order if isinstance(message, RetryOrder) else message
        if (isinstance(order, SubmitOrder) and order.client_order_id not in self._outstanding
                and not any(isinstance(item, SubmitOrder) and item.client_order_id == order.client_order_id
                            for item in self._stash)):
            try:
                self._deny(order, ErrorCode.E_EXEC_INTERNAL,
                           f"internal error in the circuit breaker of '{self.adapter_id}'; not sent (see the runtime log)")
                return
            except Exception:  # noqa: BLE001 - a crashing actor's answer must not escape; the plain answer follows
                logger.opt(exception=True).error("breaker {} could not answer {}", self.adapter_id, order.client_order_id)
        super().answer_crashed(message)

    def _adapter_gone(self, order: SubmitOrder, permitted: SubmitOrder) -> None:
        """The adapter died between its report and ours: keep the order for the next generation."""
        self._outstanding.pop(order.client_order_id, None)
        if permitted.permit is not None:
            self._breaker.record(permitted.permit, CallOutcome.IGNORED, 0.0)
        self._adapter = None
        self._hold(order)

    def handle_RetryOrder(self, message: RetryOrder) -> None:
        self.handle_SubmitOrder(message.order)

    def handle_CancelOrder(self, cancel: CancelOrder) -> None:
        if self._adapter is not None:
            self._cancel_tokens += 1
            token = self._cancel_tokens
            self._outstanding_cancels[token] = cancel
            if tell(self._adapter, ExecuteCancel(cancel, token)):
                return
            del self._outstanding_cancels[token]
            self._adapter = None
        self._hold(cancel)

    def handle_ReturnOrder(self, message: ReturnOrder) -> None:
        order = message.order
        self._outstanding.pop(order.client_order_id, None)
        if order.permit is not None and not self._foreign(order.client_order_id):
            self._publish(self._breaker.record(order.permit, CallOutcome.IGNORED, 0.0))
        self._stash.appendleft(order.evolve(permit=None))

    def handle_CancelTaken(self, message: CancelTaken) -> None:
        self._outstanding_cancels.pop(message.token, None)

    def handle_CallFinished(self, message: CallFinished) -> None:
        self._outstanding.pop(message.client_order_id, None)
        if message.permit is None or self._foreign(message.client_order_id):
            return
        events = self._breaker.record(message.permit, message.outcome, message.duration_s)
        self._publish(events)

    def handle_CallsFinished(self, message: CallsFinished) -> None:
        """How the calls of one group of venue outcomes ended (the adapter): each recorded as its own
        :class:`CallFinished`, in order."""
        self.run_each(message.calls, self.handle_CallFinished)

    def _foreign(self, client_order_id: str) -> bool:
        if not self._foreign_permits or client_order_id not in self._foreign_permits:
            return False
        self._foreign_permits.discard(client_order_id)
        return True

    # -- supervision: hand over what is not breaker state ---------------------------------
    def start_child(self) -> None:
        inherited, self._inherited = self._inherited, {}
        override = inherited.get("override")
        if override == BreakerState.FORCED_OPEN.value:
            self._publish(self._breaker.force_open())
        elif override == BreakerState.DISABLED.value:
            self._publish(self._breaker.disable())
        self._stash.extend(inherited.get("stash", ()))
        self._outstanding.update(inherited.get("outstanding", {}))
        self._foreign_permits.update(inherited.get("outstanding", {}))
        self._outstanding_cancels.update(inherited.get("cancels", {}))
        self._cancel_tokens = max([0, *self._outstanding_cancels])

    def failure_details(self) -> dict:
        """The operator's override, the stash and the calls in flight, for the restarted breaker."""
        state = self._breaker.snapshot().state
        override = state.value if state in (BreakerState.FORCED_OPEN, BreakerState.DISABLED) else None
        return {"inherited": (("override", override), ("stash", tuple(self._stash)),
                              ("outstanding", dict(self._outstanding)), ("cancels", dict(self._outstanding_cancels)))}

    def handle_ForwardReconcile(self, message: ForwardReconcile) -> None:
        tell(self._adapter, ReconcileOrders(message.client_order_ids, reason="resolved" if message.resolved else "quiet"))

    def handle_TrackOrders(self, message: TrackOrders) -> None:
        tell(self._adapter, message)  # no adapter now: this round is skipped, the next one asks again

    def handle_FetchBrokerState(self, message: FetchBrokerState) -> None:
        if self._adapter is None or not tell(self._adapter, message):
            state = "gave up" if self._gave_up else "is restarting"
            tell(self._ledger, BrokerStateFetched(message.adapter_id, message.sync_id, error=f"adapter '{self.adapter_id}' {state}"))

    # -- breaker timers and operator ---------------------------------------------------
    def handle_BreakerTick(self, message: BreakerTick) -> None:
        self._tick_handle = None
        self._publish(self._breaker.tick())

    def handle_BreakerCommand(self, message: BreakerCommand) -> Any:
        command = message.command
        if command == "force_open":
            events = self._breaker.force_open()
        elif command == "disable":
            events = self._breaker.disable()
        elif command == "reset":
            events = self._breaker.reset()
        else:
            raise ValueError(f"unknown breaker command {command!r}; use force_open, disable or reset")
        self._publish(events)
        return self._breaker.snapshot()

    def handle_GetBreaker(self, message: GetBreaker) -> Any:
        self._publish(self._breaker.tick())
        return self._breaker.snapshot()

    # -- supervision -------------------------------------------------------------------
    def handle_Wire(self, message: Wire) -> None:
        """The supervisor's wiring: the ledger, the idempotency store or the bus after a restart."""
        if message.ledger is not None:
            self._ledger = message.ledger
        if message.idempotency is not None:
            self._idempotency = message.idempotency
        if message.bus is not None:
            self._bus = message.bus

    def handle_AdapterChanged(self, message: AdapterChanged) -> None:
        try:
            self._adapter_changed(message)
        finally:
            self._report_availability()

    def _adapter_changed(self, message: AdapterChanged) -> None:
        if message.gave_up:
            self._gave_up = True
            self._adapter = None
            self._release_outstanding()
            while self._stash:
                item = self._stash.popleft()
                self._fail_no_adapter(item, f"adapter '{self.adapter_id}' gave up after repeated crashes")
            return
        if message.ref is None:
            if message.generation >= self._adapter_generation:
                self._adapter = None
                self._release_outstanding()
            return
        self._gave_up = False
        self._adapter = message.ref
        self._adapter_generation = message.generation
        pending = list(self._stash)
        self._stash.clear()
        for item in pending:
            if isinstance(item, CancelOrder):
                self.handle_CancelOrder(item)
            else:
                self.handle_SubmitOrder(item)

    def _release_outstanding(self) -> None:
        """Orders and cancels handed to a dead adapter that it never took were never sent: re-dispatch."""
        cancels = list(self._outstanding_cancels.values())
        self._outstanding_cancels.clear()
        for cancel in reversed(cancels):
            if self._gave_up:
                self._fail_no_adapter(cancel, f"adapter '{self.adapter_id}' gave up")
            else:
                self._stash.appendleft(cancel)
        lost = list(self._outstanding.values())
        self._outstanding.clear()
        for order in lost:
            if order.permit is not None:
                self._breaker.record(order.permit, CallOutcome.IGNORED, 0.0)
            plain = order.evolve(permit=None)
            if self._gave_up:
                self._fail_no_adapter(plain, f"adapter '{self.adapter_id}' gave up")
            else:
                self._stash.appendleft(plain)

    def _hold(self, item: SubmitOrder | CancelOrder) -> None:
        if self._gave_up:
            self._fail_no_adapter(item, f"adapter '{self.adapter_id}' gave up after repeated crashes")
        elif self._when_restarting == "fail_fast":
            self._fail_no_adapter(item, f"adapter '{self.adapter_id}' is restarting")
        elif len(self._stash) >= self._stash_size:
            self._fail_no_adapter(item, f"adapter '{self.adapter_id}' is restarting and its stash is full")
        else:
            self._stash.append(item)
            if isinstance(item, SubmitOrder):
                tell(self._ledger, GuardActed(item.client_order_id, item.account_id, "breaker", "stashed",
                                              f"adapter '{self.adapter_id}' is restarting; sent when it is back"))

    def _fail_no_adapter(self, item: SubmitOrder | CancelOrder, message: str) -> None:
        if isinstance(item, CancelOrder):
            tell(self._ledger, CancelFinished(item, self.adapter_id, CancelOutcome.NOT_SENT, code=ErrorCode.E_EXEC_NO_ADAPTER, reason=message))
        else:
            self._deny(item, ErrorCode.E_EXEC_NO_ADAPTER, message)

    def _deny(self, order: SubmitOrder, code: ErrorCode, message: str, *, retry_after_s: float | None = None) -> None:
        """Answer an order that was never sent. A first attempt is DENIED and its claim released
        (the caller may retry under the same id); a retry (attempt > 0) has been tried before and
        ends FAILED, its report cached."""
        if order.attempt == 0:
            report = error_report(order, code, message, status=OrderStatus.DENIED, retry_after_s=retry_after_s, ts=self._clock.now())
            tell(self._idempotency, ReleaseClaim(order.account_id, order.client_order_id))
        else:
            report = error_report(order, code, message, status=OrderStatus.FAILED, retry_after_s=retry_after_s, ts=self._clock.now())
            tell(self._idempotency, CompleteOrder(order.account_id, order.client_order_id, report))
        resolve(order.reply, report)
        tell(self._ledger, OrderFinished(report=report, adapter_id=self.adapter_id, cause=code.value))

    def _publish(self, events: list) -> None:
        for event in events:
            self.transitions += 1
            logger.info("breaker {}: {} -> {}", self.adapter_id, event.from_state, event.to_state)
            tell(self._bus, Publish(event))
            if event.to_state == "OPEN":
                self._schedule_tick()
        if self._metrics is not None and events:
            self._metrics.set_breaker_state(self.adapter_id, self._breaker.state.value)
        if events:
            self._report_availability()

    def _report_availability(self) -> None:
        """Tell the ledger when this adapter becomes unavailable or available again (or is unavailable
        for another reason: restarting, then given up)."""
        state = self._breaker.state.value
        if self._adapter is None:
            available, reason = False, "adapter gave up" if self._gave_up else "adapter restarting"
        else:
            available, reason = state in ("CLOSED", "DISABLED"), f"breaker {state}"
        if available:
            reason = ""
        if (available, reason) != self._availability:
            self._availability = (available, reason)
            tell(self._ledger, AdapterAvailability(self.adapter_id, available, reason))

    def _schedule_tick(self) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        ref = self.actor_ref
        generation = self._breaker.generation
        delay = self._breaker.config.open_duration_s
        self._tick_handle = self._clock.call_later(delay, lambda: tell(ref, BreakerTick(generation)))
