"""The error-code table (README.md, Using it) and the typed adapter errors (README.md, Write an adapter).

Every failure that reaches a caller is an :class:`ExecError` inside an
``ExecutionReport``; no raw exception ever crosses the runtime boundary.

Example::

    >>> err = ExecError.of(ErrorCode.E_EXEC_CIRCUIT_OPEN, "breaker open", retry_after_s=4.5)
    >>> err.category, err.retryable
    (<ErrorCategory.UNAVAILABLE: 'unavailable'>, True)
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import storable_text


class ErrorCategory(str, Enum):
    """Category of an error code; exactly one per code."""

    VALIDATION_ERROR = "validation_error"
    POLICY_ERROR = "policy_error"
    UNAVAILABLE = "unavailable"
    RISK_ERROR = "risk_error"
    CONFLICT = "conflict"
    REJECTED_BY_EXCHANGE = "rejected_by_exchange"
    NETWORK_ERROR = "network_error"
    TIMEOUT_ERROR = "timeout_error"
    UNKNOWN_ERROR = "unknown_error"


class ErrorCode(str, Enum):
    """Execution error codes; see :data:`ERROR_TABLE` for category, meaning and retryability."""

    E_EXEC_VALIDATION = "E_EXEC_VALIDATION"
    E_EXEC_POLICY_BLOCKED = "E_EXEC_POLICY_BLOCKED"
    E_EXEC_ROUTE_CONFIG_INVALID = "E_EXEC_ROUTE_CONFIG_INVALID"
    E_EXEC_NO_ADAPTER = "E_EXEC_NO_ADAPTER"
    E_EXEC_CIRCUIT_OPEN = "E_EXEC_CIRCUIT_OPEN"
    E_EXEC_THROTTLED = "E_EXEC_THROTTLED"
    E_EXEC_RISK_DENIED = "E_EXEC_RISK_DENIED"
    E_EXEC_IDEMPOTENCY_CONFLICT = "E_EXEC_IDEMPOTENCY_CONFLICT"
    E_EXEC_DUPLICATE_IN_FLIGHT = "E_EXEC_DUPLICATE_IN_FLIGHT"
    E_EXEC_BROKER_REJECTED = "E_EXEC_BROKER_REJECTED"
    E_EXEC_NETWORK = "E_EXEC_NETWORK"
    E_EXEC_BROKER_TIMEOUT = "E_EXEC_BROKER_TIMEOUT"
    E_EXEC_RETRY_EXHAUSTED = "E_EXEC_RETRY_EXHAUSTED"
    E_EXEC_ADAPTER_CRASHED = "E_EXEC_ADAPTER_CRASHED"
    E_EXEC_PERSISTENCE = "E_EXEC_PERSISTENCE"
    E_EXEC_INTERNAL = "E_EXEC_INTERNAL"


class ErrorSpec(NamedTuple):
    """One row of the error table."""

    category: ErrorCategory
    meaning: str
    retryable: bool


_C = ErrorCategory
ERROR_TABLE: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.E_EXEC_VALIDATION: ErrorSpec(_C.VALIDATION_ERROR, "intent failed validation", False),
    ErrorCode.E_EXEC_POLICY_BLOCKED: ErrorSpec(_C.POLICY_ERROR, "route blocked by policy (live)", False),
    ErrorCode.E_EXEC_ROUTE_CONFIG_INVALID: ErrorSpec(_C.POLICY_ERROR, "unknown or unroutable mode", False),
    ErrorCode.E_EXEC_NO_ADAPTER: ErrorSpec(_C.UNAVAILABLE, "no adapter registered / adapter given up", True),
    ErrorCode.E_EXEC_CIRCUIT_OPEN: ErrorSpec(_C.UNAVAILABLE, "breaker open, call not made", True),
    ErrorCode.E_EXEC_THROTTLED: ErrorSpec(_C.UNAVAILABLE, "rate limit reached", True),
    ErrorCode.E_EXEC_RISK_DENIED: ErrorSpec(_C.RISK_ERROR, "budget, min notional, slippage guard, trading halted", False),
    ErrorCode.E_EXEC_IDEMPOTENCY_CONFLICT: ErrorSpec(_C.CONFLICT, "same key, different intent", False),
    ErrorCode.E_EXEC_DUPLICATE_IN_FLIGHT: ErrorSpec(_C.CONFLICT, "same key still in progress", True),
    ErrorCode.E_EXEC_BROKER_REJECTED: ErrorSpec(_C.REJECTED_BY_EXCHANGE, "venue said no, definitively", False),
    ErrorCode.E_EXEC_NETWORK: ErrorSpec(_C.NETWORK_ERROR, "call provably not delivered", True),
    ErrorCode.E_EXEC_BROKER_TIMEOUT: ErrorSpec(_C.TIMEOUT_ERROR, "outcome unknown: order goes UNKNOWN and is reconciled", False),
    ErrorCode.E_EXEC_RETRY_EXHAUSTED: ErrorSpec(_C.NETWORK_ERROR, "not-delivered retries used up", False),
    ErrorCode.E_EXEC_ADAPTER_CRASHED: ErrorSpec(_C.UNKNOWN_ERROR, "adapter died mid-call: UNKNOWN, reconciled", False),
    ErrorCode.E_EXEC_PERSISTENCE: ErrorSpec(_C.UNKNOWN_ERROR, "journal write failed: fail closed, nothing sent", True),
    ErrorCode.E_EXEC_INTERNAL: ErrorSpec(_C.UNKNOWN_ERROR, "bug; full detail in the log, none in the report", False),
}
del _C


class ExecError(BaseModel):
    """The error carried by an ``ExecutionReport`` (frozen).

    Fields: ``code``; ``category`` and ``retryable`` from :data:`ERROR_TABLE`;
    ``message`` (human readable, never a raw traceback or a secret);
    ``retry_after_s`` (seconds, for E_EXEC_CIRCUIT_OPEN and E_EXEC_THROTTLED; None or a
    finite float >= 0).
    Build it with :meth:`ExecError.of` so category and retryability always match the table.

    ``retry_after_s`` is the one source of truth for what the journals accept
    (``OrderEventRow.error_retry_after_s``, the idempotency record's report JSON): a negative
    value is **clamped to 0.0** (the message is kept as given). It is advice to the caller —
    "not before this many seconds" — and a negative wait (a venue's Retry-After computed
    against a skewed clock, a deadline already past) means "now"; refusing it would turn
    the venue's real answer into an internal error, and letting it through would make the
    ledger journal refuse the order's rows (docs/DESIGN.md "What written means"). NaN and
    ±infinity are **refused** (``ValidationError``, where the error is built): they carry no
    wait at all, JSON cannot hold them (the idempotency record would read back something
    else), and no component of flowroute makes one, so one is a bug in the code that built it.

    ``message`` often quotes a venue (its reject reason, FIX Text(58), an exception's text): what
    in it no journal can store (a NUL character, a lone surrogate) is **escaped**
    (``protocols.storable_text``: ``\\x00``, ``\\udXXX``), so the report, its journal rows and its
    cached idempotency answer hold the same text and nothing is refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ErrorCode
    category: ErrorCategory
    message: str = Field(max_length=2000)
    retryable: bool
    retry_after_s: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("retry_after_s")
    @classmethod
    def _wait_not_negative(cls, value: float | None) -> float | None:
        """A negative wait is clamped to 0.0 (see the class docstring)."""
        return 0.0 if value is not None and value < 0 else value

    @field_validator("message")
    @classmethod
    def _storable(cls, value: str) -> str:
        """Text no journal can store escaped (see the class docstring), still at most 2000 characters."""
        return storable_text(value)[:2000]

    @classmethod
    def of(cls, code: ErrorCode, message: str, *, retry_after_s: float | None = None) -> ExecError:
        """Make the error for ``code`` with the table's category and retryability."""
        spec = ERROR_TABLE[code]
        return cls(
            code=code,
            category=spec.category,
            message=message[:2000],
            retryable=spec.retryable,
            retry_after_s=retry_after_s,
        )


# ---------------------------------------------------------------------------
# Typed adapter errors: what a BrokerAdapter raises (README.md, Write an adapter, docs/DESIGN.md, Failure handling classification)
# ---------------------------------------------------------------------------


class AdapterError(Exception):
    """Base of every error a ``BrokerAdapter`` may raise.

    Subclasses classify the outcome for the resilience layer (docs/DESIGN.md, Failure handling):
    :class:`NotDeliveredError` is retried under the same client order id,
    :class:`AmbiguousError` makes the order UNKNOWN and triggers reconciliation,
    :class:`VenueRejectedError` and :class:`FatalAdapterError` are final.
    """

    kind = "adapter_error"

    def __init__(self, message: str, *, venue_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.venue_code = venue_code


class NotDeliveredError(AdapterError):
    """The request provably never reached the venue (connect refused, send failed): safe to retry."""

    kind = "not_delivered"


class AmbiguousError(AdapterError):
    """The request may have reached the venue (timeout after send, connection reset, 5xx)."""

    kind = "ambiguous"


class VenueRejectedError(AdapterError):
    """The venue answered no, definitively (bad tick size, insufficient balance, unknown symbol).

    A venue that refuses a client order id it already holds raises it with
    ``venue_code=DUPLICATE_CLIENT_ORDER_ID``: on a re-send (attempt 2 and later) that means the
    venue *has* the order, so the runtime keeps it UNKNOWN and reconciles instead of recording
    REJECTED (FIX: OrdRejReason=6, duplicate order).
    """

    kind = "rejected"


#: ``VenueRejectedError.venue_code`` of a venue that already holds this client order id.
DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"


class FatalAdapterError(AdapterError):
    """The adapter cannot work at all (bad credentials, protocol violation): final, counts as failure."""

    kind = "fatal"


class AdapterCrash(BaseException):
    """Raised by fault injection to crash the adapter actor itself (never escapes a handler).

    It derives from BaseException on purpose: ordinary ``except Exception`` inside an
    adapter cannot swallow it, which is how a real interpreter-level crash behaves.
    The adapter actor converts it into a supervised failure; pykka never sees it.
    """


class IllegalTransition(ValueError):
    """An order event that the lifecycle table does not allow in the current state."""
