"""Route decisions, fills and execution reports: what flowroute answers (README.md, Using it).

Example::

    >>> from decimal import Decimal
    >>> f = Fill(trade_id="p-1", qty=Decimal("0.5"), price=Decimal("100"), fee=Decimal("0.05"),
    ...          fee_currency="USDT", liquidity="TAKER", ts="2021-01-08T00:00:01Z")
    >>> f.notional
    Decimal('50.0')
"""

from __future__ import annotations

from collections.abc import Set
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from .base import Dec, Frozen, NonNegDec, PosDec, UtcDatetime, storable_text, utc_now
from .enums import Liquidity, OrderStatus, Side
from .errors import ERROR_TABLE, ErrorCategory, ErrorCode, ExecError
from .pydantic_compat import construct_valid, constructible


class RouteDecision(Frozen):
    """The router's choice for one intent (README.md, Topology): ``route_id``, ``adapter_id``, ``routing_reason``."""

    route_id: str
    adapter_id: str
    routing_reason: str


class Fill(Frozen):
    """One execution at the venue (FIX ExecutionReport with ExecType=F).

    ``trade_id`` (FIX tag 1003) is unique per venue and is the key that makes fills
    apply exactly once; ``qty`` is this fill's quantity in base units (FIX LastQty, 32),
    ``price`` its price in quote currency (FIX LastPx, 31), ``fee`` the commission in
    ``fee_currency``, ``liquidity`` maker or taker (FIX 851), ``ts`` the venue time (UTC).
    """

    trade_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    qty: PosDec
    price: PosDec
    fee: NonNegDec = Decimal(0)
    fee_currency: str = ""
    liquidity: Liquidity = Liquidity.TAKER
    ts: UtcDatetime = Field(default_factory=utc_now)

    @property
    def notional(self) -> Decimal:
        """``qty * price`` in quote currency."""
        return self.qty * self.price


class ExecutionReport(Frozen):
    """The answer to one submitted intent, and the state of an order at a point in time.

    Quantities in base units, prices in quote currency, all Decimal:
    ``cum_qty`` (FIX 14) filled so far, ``leaves_qty`` (FIX 151) still working (0 once
    terminal), ``avg_px`` (FIX 6) volume-weighted fill price or None before any fill,
    ``fees`` sum of fill fees, ``slippage_bps`` of ``avg_px`` against the arrival touch
    (positive = worse for us). ``error`` is None on success, otherwise a coded
    :class:`ExecError`. ``replay`` is True when this is a cached idempotent answer (the
    venue was not called). ``attempts`` counts venue submit attempts, ``latency_us`` the
    time from submit to this report in microseconds. ``raw_broker_ref`` is a redacted
    venue reference, never credentials. ``strategy_id``, ``session_id``, ``correlation_id``:
    the order's attribution (from its intent and ``ExecutionContext``; "" when not given).
    """

    client_order_id: str
    account_id: str = ""
    symbol: str = ""
    side: Side | None = None
    venue_order_id: str | None = None
    status: OrderStatus
    route: RouteDecision | None = None
    fills: tuple[Fill, ...] = ()
    cum_qty: NonNegDec = Decimal(0)
    leaves_qty: NonNegDec = Decimal(0)
    avg_px: Dec | None = None
    fees: NonNegDec = Decimal(0)
    slippage_bps: Dec | None = None
    error: ExecError | None = None
    replay: bool = False
    attempts: int = 0
    latency_us: int = 0
    raw_broker_ref: str | None = None
    strategy_id: str = ""
    session_id: str = ""
    correlation_id: str = ""
    ts: UtcDatetime = Field(default_factory=utc_now)

    @property
    def ok(self) -> bool:
        """True when the report carries no error."""
        return self.error is None


# -- building reports and errors from values that are already valid --------------------------

# a guard for whoever changes these models: the fast paths below would no longer be exact
if not (constructible(ExecutionReport) and constructible(ExecError)):  # pragma: no cover
    raise RuntimeError("protocols.model.reports: report_from_valid / exec_error_of no longer match their models")

#: the field names of ExecutionReport in declaration order
REPORT_FIELDS: tuple[str, ...] = tuple(ExecutionReport.model_fields)
_N_REPORT_FIELDS = len(REPORT_FIELDS)


def report_from_valid(fields: dict[str, Any], given: Set[str]) -> ExecutionReport:
    """The :class:`ExecutionReport` holding ``fields``, which are already valid, built without validating them again.

    ``fields`` maps EVERY field to its value, in declaration order (:data:`REPORT_FIELDS`),
    defaults included (``ts``: the caller's ``utc_now()``); ``given`` names the fields the
    equivalent ``ExecutionReport(**kwargs)`` call would pass (its ``model_fields_set``).
    Only for values that passed validation as fields of the same or a stricter type (they
    come from validated models: an ``OrderIntent``, a ``VenueOrderState``, ``ExecError.of``)
    or whose exact types the caller checked. Validating them again costs more than the rest
    of building a report, and ``model_construct`` is slower still (it deep-copies defaults):
    this does what ``model_construct`` does for this one model, so the instance is the one
    the validating constructor would build (same ``__dict__``, fields set, no extra and no
    private values): ``==``, ``repr``, ``model_dump``, JSON and pickling are unchanged.
    Raises ``TypeError`` when ``fields`` does not hold one value per field (the names and
    their order are the caller's contract, checked by the tests).
    """
    if len(fields) != _N_REPORT_FIELDS:
        raise TypeError(f"report_from_valid needs every ExecutionReport field in order, got {tuple(fields)}")
    return construct_valid(ExecutionReport, fields, given)


_ERROR_GIVEN = frozenset(ExecError.model_fields)  # ExecError.of passes every field
#: ERROR_TABLE holds exact enum / bool values (what validating them would keep as they are)
_INF = float("inf")
_TABLE_EXACT = all(
    spec.category.__class__ is ErrorCategory and spec.retryable.__class__ is bool for spec in ERROR_TABLE.values()
)


def exec_error_of(code: ErrorCode, message: str, *, retry_after_s: float | None = None) -> ExecError:
    """``ExecError.of(code, message, retry_after_s=retry_after_s)``, built without validating again.

    Category and retryability come from ``ERROR_TABLE`` and the message is cut to 2000
    characters, as ``ExecError.of`` does; when ``code`` is an ``ErrorCode``, ``message`` a
    ``str`` and ``retry_after_s`` None or a finite ``float`` >= 0, every value is already what
    validation would keep, so the error is built as ``model_construct`` would; any other
    input goes through ``ExecError.of`` (same result, same errors: a negative wait clamped to
    0.0, NaN or infinity refused). Raises ``KeyError`` for
    a code missing from the table, like ``ExecError.of``.
    """
    if (
        _TABLE_EXACT
        and code.__class__ is ErrorCode
        and message.__class__ is str
        # a float in [0, inf): what validation keeps as it is (NaN fails the comparison)
        and (retry_after_s is None or (retry_after_s.__class__ is float and 0.0 <= retry_after_s < _INF))
    ):
        spec = ERROR_TABLE[code]
        return construct_valid(
            ExecError,
            {
                "code": code,
                "category": spec.category,
                "message": storable_text(message[:2000])[:2000],
                "retryable": spec.retryable,
                "retry_after_s": retry_after_s,
            },
            _ERROR_GIVEN,
        )
    return ExecError.of(code, message, retry_after_s=retry_after_s)


def summarize_fills(fills: tuple[Fill, ...] | list[Fill]) -> tuple[Decimal, Decimal | None, Decimal]:
    """Return ``(cum_qty, avg_px, fees)`` of ``fills`` (avg_px None when there are none)."""
    cum = Decimal(0)
    notional = Decimal(0)
    fees = Decimal(0)
    for fill in fills:
        cum += fill.qty
        notional += fill.qty * fill.price
        fees += fill.fee
    return cum, (notional / cum if cum else None), fees
