"""Building ExecutionReports from an order in flight: one place for every report shape.

All functions are pure; ``latency_us`` is measured from ``SubmitOrder.t0_ns`` to the
moment the report is built (µs).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import Decimal

from protocols import ErrorCode, ExecError, ExecutionReport, OrderStatus, RouteDecision, VenueOrderState
from protocols._reports import exec_error_of, report_from_valid

from ._base import now_ns
from ._books import slippage_bps
from ._messages import CancelOrder, SubmitOrder

_ZERO = Decimal(0)
_REJECTED = OrderStatus.REJECTED
# inlined on the hot path (no extra Python call): ``_now(_UTC)`` is ``utc_now()`` and
# ``_perf_counter_ns()`` is ``now_ns()``, the latency clock
_now = datetime.now
_UTC = timezone.utc
_perf_counter_ns = time.perf_counter_ns


def latency_us(t0_ns: int) -> int:
    """Microseconds since ``t0_ns`` (perf_counter_ns)."""
    return max(0, (now_ns() - t0_ns) // 1000)


#: the fields error_report / venue_report pass (the reports' ``model_fields_set``)
_ERROR_GIVEN = frozenset(
    ("client_order_id", "account_id", "symbol", "side", "venue_order_id", "status", "route", "leaves_qty", "error",
     "attempts", "latency_us")
)
_VENUE_GIVEN = frozenset(
    ("client_order_id", "account_id", "symbol", "side", "venue_order_id", "status", "route", "fills", "cum_qty",
     "leaves_qty", "avg_px", "fees", "slippage_bps", "error", "attempts", "latency_us", "raw_broker_ref")
)


def error_report(
    order: SubmitOrder,
    code: ErrorCode,
    message: str,
    *,
    status: OrderStatus = OrderStatus.DENIED,
    retry_after_s: float | None = None,
    venue_order_id: str | None = None,
) -> ExecutionReport:
    """A report for ``order`` that ends with ``code`` (DENIED by default; UNKNOWN/FAILED/REJECTED as given)."""
    intent = order.intent
    route = order.route
    attempts = order.attempt
    leaves_qty = _ZERO if status.is_terminal else intent.quantity
    error = exec_error_of(code, message, retry_after_s=retry_after_s)  # ExecError.of, no re-validation
    if (
        status.__class__ is OrderStatus
        and attempts.__class__ is int
        and (route is None or route.__class__ is RouteDecision)
        and (venue_order_id is None or venue_order_id.__class__ is str)
    ):
        # every value is a field of a validated model (intent, context), an ExecError built as
        # ExecError.of builds it, or was type-checked just above: validating again changes nothing
        return report_from_valid(
            {
                "client_order_id": intent.client_order_id,
                "account_id": order.context.account_id,
                "symbol": intent.symbol,
                "side": intent.side,
                "venue_order_id": venue_order_id,
                "status": status,
                "route": route,
                "fills": (),
                "cum_qty": _ZERO,
                "leaves_qty": leaves_qty,
                "avg_px": None,
                "fees": _ZERO,
                "slippage_bps": None,
                "error": error,
                "replay": False,
                "attempts": attempts,
                "latency_us": max(0, (_perf_counter_ns() - order.t0_ns) // 1000),  # latency_us(order.t0_ns)
                "raw_broker_ref": None,
                "ts": _now(_UTC),
            },
            _ERROR_GIVEN,
        )
    return ExecutionReport(
        client_order_id=intent.client_order_id,
        account_id=order.context.account_id,
        symbol=intent.symbol,
        side=intent.side,
        venue_order_id=venue_order_id,
        status=status,
        route=route,
        leaves_qty=leaves_qty,
        error=error,
        attempts=attempts,
        latency_us=latency_us(order.t0_ns),
    )


def venue_report(order: SubmitOrder, state: VenueOrderState) -> ExecutionReport:
    """The report for a venue answer: status, fills, cum/leaves/avg_px and fees from ``state``."""
    fills = state.fills
    fees = _ZERO
    for fill in fills:  # what sum(..., Decimal(0)) adds, in the same order
        fees = fees + fill.fee
    status = state.status
    error = None
    if status is _REJECTED:
        error = exec_error_of(ErrorCode.E_EXEC_BROKER_REJECTED, state.reject_reason or "rejected by venue")
    route = order.route
    attempts = order.attempt
    side, avg_px, venue_order_id = state.side, state.avg_px, state.venue_order_id
    slippage = slippage_bps(side, avg_px, order.arrival_px)
    raw_broker_ref = f"{route.adapter_id if route else '?'}:{venue_order_id}"
    if (
        state.__class__ is VenueOrderState
        and attempts.__class__ is int
        and (route is None or route.__class__ is RouteDecision)
    ):
        # every value is a field of a validated model (the venue state, the context), an ExecError
        # built as ExecError.of builds it, a sum of the state's validated non-negative fees,
        # slippage_bps' finite Decimal, or was type-checked just above: validating again changes nothing
        return report_from_valid(
            {
                "client_order_id": state.client_order_id,
                "account_id": order.context.account_id,
                "symbol": state.symbol,
                "side": side,
                "venue_order_id": venue_order_id,
                "status": status,
                "route": route,
                "fills": fills,
                "cum_qty": state.cum_qty,
                "leaves_qty": state.leaves_qty,
                "avg_px": avg_px,
                "fees": fees,
                "slippage_bps": slippage,
                "error": error,
                "replay": False,
                "attempts": attempts,
                "latency_us": max(0, (_perf_counter_ns() - order.t0_ns) // 1000),  # latency_us(order.t0_ns)
                "raw_broker_ref": raw_broker_ref,
                "ts": _now(_UTC),
            },
            _VENUE_GIVEN,
        )
    return ExecutionReport(
        client_order_id=state.client_order_id,
        account_id=order.context.account_id,
        symbol=state.symbol,
        side=side,
        venue_order_id=venue_order_id,
        status=status,
        route=route,
        fills=fills,
        cum_qty=state.cum_qty,
        leaves_qty=state.leaves_qty,
        avg_px=avg_px,
        fees=fees,
        slippage_bps=slippage,
        error=error,
        attempts=attempts,
        latency_us=latency_us(order.t0_ns),
        raw_broker_ref=raw_broker_ref,
    )


def cancel_error_report(cancel: CancelOrder, code: ErrorCode, message: str, *, status: OrderStatus) -> ExecutionReport:
    """A report answering a cancel that could not be carried out (``status`` = the order's status)."""
    return ExecutionReport(
        client_order_id=cancel.client_order_id,
        account_id=cancel.account_id or "",
        status=status,
        error=ExecError.of(code, message),
        latency_us=latency_us(cancel.t0_ns),
    )


def as_replay(report: ExecutionReport, t0_ns: int) -> ExecutionReport:
    """The cached ``report`` marked ``replay=True`` with this request's latency."""
    return report.model_copy(update={"replay": True, "latency_us": latency_us(t0_ns)})
