"""Building ExecutionReports from an order in flight: one place for every report shape.

All functions are pure; ``latency_us`` is measured from ``SubmitOrder.t0_ns`` to the
moment the report is built (µs).
"""

from __future__ import annotations

from decimal import Decimal

from protocols import ErrorCode, ExecError, ExecutionReport, OrderStatus, VenueOrderState

from ._base import now_ns
from ._books import slippage_bps
from ._messages import CancelOrder, SubmitOrder

def latency_us(t0_ns: int) -> int:
    """Microseconds since ``t0_ns`` (perf_counter_ns)."""
    return max(0, (now_ns() - t0_ns) // 1000)


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
    return ExecutionReport(
        client_order_id=intent.client_order_id,
        account_id=order.context.account_id,
        symbol=intent.symbol,
        side=intent.side,
        venue_order_id=venue_order_id,
        status=status,
        route=order.route,
        leaves_qty=Decimal(0) if status.is_terminal else intent.quantity,
        error=ExecError.of(code, message, retry_after_s=retry_after_s),
        attempts=order.attempt,
        latency_us=latency_us(order.t0_ns),
    )


def venue_report(order: SubmitOrder, state: VenueOrderState) -> ExecutionReport:
    """The report for a venue answer: status, fills, cum/leaves/avg_px and fees from ``state``."""
    fees = sum((f.fee for f in state.fills), Decimal(0))
    error = None
    if state.status is OrderStatus.REJECTED:
        error = ExecError.of(ErrorCode.E_EXEC_BROKER_REJECTED, state.reject_reason or "rejected by venue")
    return ExecutionReport(
        client_order_id=state.client_order_id,
        account_id=order.context.account_id,
        symbol=state.symbol,
        side=state.side,
        venue_order_id=state.venue_order_id,
        status=state.status,
        route=order.route,
        fills=state.fills,
        cum_qty=state.cum_qty,
        leaves_qty=state.leaves_qty,
        avg_px=state.avg_px,
        fees=fees,
        slippage_bps=slippage_bps(state.side, state.avg_px, order.arrival_px),
        error=error,
        attempts=order.attempt,
        latency_us=latency_us(order.t0_ns),
        raw_broker_ref=f"{order.route.adapter_id if order.route else '?'}:{state.venue_order_id}",
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
