"""Building ExecutionReports: one place for every report shape.

``order_report`` is the ledger's view of an order (``rt.order()``, waits, events, replays);
``venue_report`` the reply to an order, built from the venue's answer before the ledger has
applied it (forward-only: the adapter answers first), by the same rules — the same fills (booked
by the one fill rule), the same broker reference — so the two are equal apart from the
per-request fields ``latency_us``, ``ts`` and ``replay`` (tests/orders/test_report_equals_order.py);
``error_report`` and ``cancel_error_report`` answer orders and cancels that end before a venue.

All functions are pure; ``latency_us`` is measured from ``SubmitOrder.t0_ns`` to the
moment the report is built (µs). ``ts`` (UTC) is the caller's: an actor passes its injected
clock's ``now()``, so a runtime on a ``FakeClock`` stamps every report with the fake time
(the wall clock only when no ``ts`` is given).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from protocols import ErrorCode, ExecError, ExecutionReport, Fill, OrderStatus, RouteDecision, Side, VenueOrderState
from protocols.model.reports import REPORT_FIELDS, exec_error_of, report_from_valid

from ..kernel.base import now_ns
from .books import OrderRecord, booked_fills, broker_ref, slippage_bps
from .messages import CancelOrder, SubmitOrder

_ZERO = Decimal(0)
_REJECTED = OrderStatus.REJECTED
# ``_now(_UTC)`` is ``utc_now()`` without the extra call
_now = datetime.now
_UTC = UTC


def latency_us(t0_ns: int) -> int:
    """Microseconds since ``t0_ns`` (perf_counter_ns)."""
    return max(0, (now_ns() - t0_ns) // 1000)


#: ExecutionReport's fields in declaration order with their defaults; the required ones are always
#: given by the callers below, and ``ts`` is set per report
_DEFAULTS = {name: None if info.is_required() else info.get_default(call_default_factory=True)
             for name, info in ExecutionReport.model_fields.items()}


def _report(fields: dict, trusted: bool, ts: datetime | None) -> ExecutionReport:
    """``ExecutionReport(**fields)``; built without validating again when ``trusted`` (every value
    comes from a validated model, ``exec_error_of`` or ``slippage_bps``, or was type-checked by
    the caller): same instance, same ``model_fields_set`` (``protocols.model.reports.report_from_valid``)."""
    if trusted:
        return report_from_valid({**_DEFAULTS, **fields, "ts": ts or _now(_UTC)}, fields.keys())
    if ts is not None:
        fields["ts"] = ts
    return ExecutionReport(**fields)


def _attribution(order: SubmitOrder) -> dict[str, str]:
    """The report fields that attribute ``order``: strategy (the intent's, else the context's),
    session and correlation ids (validated ``Ident`` strings of the intent and context)."""
    context = order.context
    return {"strategy_id": order.intent.strategy_id or context.strategy_id, "session_id": context.session_id,
            "correlation_id": context.correlation_id}


def order_report(rec: OrderRecord, *, replay: bool = False, latency_us: int = 0, raw_broker_ref: str | None = None,
                 ts: datetime | None = None) -> ExecutionReport:
    """The report of order ``rec`` as the ledger holds it now (``OrderRecord.snapshot``); ``ts``
    default: its last update time; ``raw_broker_ref`` default: ``broker_ref`` of its venue order id.

    Built without validating again (``protocols.model.reports.report_from_valid``) when every
    value already has the exact type and range validation would keep as it is (:func:`_valid_as_is`:
    the record's values come from validated intents, fills and venue states); anything else goes
    through ``ExecutionReport``'s validation, which raises ``ValidationError`` as before."""
    fields = {
        "client_order_id": rec.client_order_id,
        "account_id": rec.account_id,
        "symbol": rec.symbol,
        "side": rec.side,
        "venue_order_id": rec.venue_order_id,
        "status": rec.status,
        "route": rec.route,
        "fills": tuple(rec.fills),
        "cum_qty": rec.cum_qty,
        "leaves_qty": rec.leaves_qty,
        "avg_px": rec.avg_px,
        "fees": rec.fees,
        "slippage_bps": rec.slippage_bps,
        "error": rec.error,
        "replay": replay,
        "attempts": rec.attempts,
        "latency_us": latency_us,
        "raw_broker_ref": raw_broker_ref if raw_broker_ref is not None else broker_ref(rec.adapter_id, rec.venue_order_id),
        "strategy_id": rec.strategy_id,
        "session_id": rec.session_id,
        "correlation_id": rec.correlation_id,
        "ts": ts or rec.updated_ts or rec.created_ts,
    }
    if _valid_as_is(fields):
        return report_from_valid(fields, _ORDER_REPORT_GIVEN)
    return ExecutionReport(**fields)


#: ``order_report`` passes every field (its ``model_fields_set``)
_ORDER_REPORT_GIVEN = frozenset(REPORT_FIELDS)
_str, _int, _bool, _Decimal, _datetime = str, int, bool, Decimal, datetime


def _valid_as_is(f: dict) -> bool:
    """True when validating ``f`` (every ExecutionReport field) as an ``ExecutionReport`` would keep
    each value as it is: exact types (no subclass to convert), finite Decimals (``>= 0`` where the
    field says so), a UTC time (``UtcDatetime`` converts any other zone). Held equal to the
    validating constructor by tests/orders/test_reporting.py."""
    side, route, error, avg_px, slip, ts = f["side"], f["route"], f["error"], f["avg_px"], f["slippage_bps"], f["ts"]
    vid, ref, cum, leaves, fees = f["venue_order_id"], f["raw_broker_ref"], f["cum_qty"], f["leaves_qty"], f["fees"]
    if not (f["status"].__class__ is OrderStatus and (side is None or side.__class__ is Side)
            and (route is None or route.__class__ is RouteDecision) and (error is None or error.__class__ is ExecError)
            and f["replay"].__class__ is _bool and f["attempts"].__class__ is _int and f["latency_us"].__class__ is _int
            and ts.__class__ is _datetime and ts.tzinfo is _UTC
            and f["client_order_id"].__class__ is _str and f["account_id"].__class__ is _str and f["symbol"].__class__ is _str
            and f["strategy_id"].__class__ is _str and f["session_id"].__class__ is _str and f["correlation_id"].__class__ is _str
            and (vid is None or vid.__class__ is _str) and (ref is None or ref.__class__ is _str)
            and cum.__class__ is _Decimal and leaves.__class__ is _Decimal and fees.__class__ is _Decimal
            and cum.is_finite() and leaves.is_finite() and fees.is_finite() and cum >= _ZERO and leaves >= _ZERO and fees >= _ZERO
            and (avg_px is None or (avg_px.__class__ is _Decimal and avg_px.is_finite()))
            and (slip is None or (slip.__class__ is _Decimal and slip.is_finite()))):
        return False
    return all(fill.__class__ is Fill for fill in f["fills"])


def error_report(
    order: SubmitOrder,
    code: ErrorCode,
    message: str,
    *,
    status: OrderStatus = OrderStatus.DENIED,
    retry_after_s: float | None = None,
    venue_order_id: str | None = None,
    ts: datetime | None = None,
) -> ExecutionReport:
    """A report for ``order`` that ends with ``code`` (DENIED by default; UNKNOWN/FAILED/REJECTED as given),
    stamped ``ts`` (default: the wall clock)."""
    intent = order.intent
    route = order.route
    attempts = order.attempt
    fields = {
        "client_order_id": intent.client_order_id,
        "account_id": order.context.account_id,
        "symbol": intent.symbol,
        "side": intent.side,
        "venue_order_id": venue_order_id,
        "status": status,
        "route": route,
        "leaves_qty": _ZERO if status.is_terminal else intent.quantity,
        "error": exec_error_of(code, message, retry_after_s=retry_after_s),  # ExecError.of, no re-validation
        "attempts": attempts,
        "latency_us": latency_us(order.t0_ns),
        **_attribution(order),
    }
    return _report(fields, status.__class__ is OrderStatus and attempts.__class__ is int
                   and (route is None or route.__class__ is RouteDecision)
                   and (venue_order_id is None or venue_order_id.__class__ is str), ts)


def venue_report(order: SubmitOrder, state: VenueOrderState, *, ts: datetime | None = None) -> ExecutionReport:
    """The report for a venue answer: status, fills, cum/leaves/avg_px and fees from ``state``;
    stamped ``ts`` (default: the wall clock).

    Every order's answer is built here, so when ``state`` is an exact ``VenueOrderState`` (every
    value validated) the report's fields are laid out once, in declaration order, and built
    without validating again (``report_from_valid``; ``model_fields_set`` as the validating call:
    every field but ``replay`` and ``ts``); anything else takes the validating constructor."""
    fills = state.fills
    fees = _ZERO
    booked = _ZERO
    for fill in fills:  # what sum(..., Decimal(0)) adds, in the same order
        fees = fees + fill.fee
        booked = booked + fill.qty
    if state.cum_qty > booked:  # a venue that reports (some) fills only cumulatively: as the books book them
        fills = booked_fills(order.intent, order.context.account_id, state)
    route = order.route
    attempts = order.attempt
    context = order.context
    status = state.status
    venue_order_id = state.venue_order_id
    error = (exec_error_of(ErrorCode.E_EXEC_BROKER_REJECTED, state.reject_reason or "rejected by venue")
             if status is _REJECTED else None)
    fields: dict[str, Any] = {  # in ExecutionReport's declaration order (the trusted build keeps it)
        "client_order_id": state.client_order_id,
        "account_id": context.account_id,
        "symbol": state.symbol,
        "side": state.side,
        "venue_order_id": venue_order_id,
        "status": status,
        "route": route,
        "fills": fills,
        "cum_qty": state.cum_qty,
        "leaves_qty": state.leaves_qty,
        "avg_px": state.avg_px,
        "fees": fees,
        "slippage_bps": slippage_bps(state.side, state.avg_px, order.arrival_px),
        "error": error,
        "replay": False,
        "attempts": attempts,
        "latency_us": latency_us(order.t0_ns),
        "raw_broker_ref": broker_ref(route.adapter_id if route else None, venue_order_id),
        "strategy_id": order.intent.strategy_id or context.strategy_id,
        "session_id": context.session_id,
        "correlation_id": context.correlation_id,
    }
    if state.__class__ is VenueOrderState and attempts.__class__ is int and (route is None or route.__class__ is RouteDecision):
        fields["ts"] = ts or _now(_UTC)
        return report_from_valid(fields, _VENUE_GIVEN)
    del fields["replay"]  # the validating call leaves it to its default, as before
    return _report(fields, False, ts)


#: the fields a venue report's validating call passes (its ``model_fields_set``): all but replay and ts
_VENUE_GIVEN = frozenset(REPORT_FIELDS) - {"replay", "ts"}


def cancel_error_report(cancel: CancelOrder, code: ErrorCode, message: str, *, status: OrderStatus,
                        ts: datetime | None = None) -> ExecutionReport:
    """A report answering a cancel that could not be carried out (``status`` = the order's status),
    stamped ``ts`` (default: the wall clock)."""
    return ExecutionReport(
        client_order_id=cancel.client_order_id,
        account_id=cancel.account_id or "",
        status=status,
        error=ExecError.of(code, message),
        latency_us=latency_us(cancel.t0_ns),
        ts=ts or _now(_UTC),
    )


def as_replay(report: ExecutionReport, t0_ns: int) -> ExecutionReport:
    """The cached ``report`` marked ``replay=True`` with this request's latency."""
    return report.model_copy(update={"replay": True, "latency_us": latency_us(t0_ns)})
