"""Enumerations shared by every contract: sides, order types, modes, statuses.

Values follow FIX 4.4 naming where one exists (Side tag 54, OrdType tag 40,
TimeInForce tag 59, OrdStatus tag 39); the string value is what appears in JSON.
"""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    """A str-valued enum that parses case-insensitively (``Side("buy") is Side.BUY``)."""

    @classmethod
    def _missing_(cls, value: object) -> _StrEnum | None:
        if isinstance(value, str):
            folded = value.strip().upper()
            for member in cls:
                if member.value.upper() == folded:
                    return member
        return None

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class Side(_StrEnum):
    """Order side (FIX tag 54: 1=Buy, 2=Sell)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL: the sign of the position change a fill causes."""
        return 1 if self is Side.BUY else -1


class OrderType(_StrEnum):
    """Order type (FIX tag 40: 1=Market, 2=Limit)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(_StrEnum):
    """Time in force (FIX tag 59: 0=Day, 1=GTC, 3=IOC, 4=FOK)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    DAY = "DAY"


class ExecutionMode(_StrEnum):
    """Execution modes known to the router (README.md, Topology).

    ``ExecutionContext.mode`` is a plain string so that an unknown mode reaches the
    router and is DENIED with ``E_EXEC_ROUTE_CONFIG_INVALID`` instead of failing
    validation: routing is never a silent fallback.
    """

    PAPER = "paper"
    SIMULATED = "simulated"
    SHADOW = "shadow"
    SHADOW_RUN = "shadow_run"
    DRY_RUN = "dry_run"
    TESTNET_DRY_RUN = "testnet_dry_run"
    LIVE_BLOCKED = "live_blocked"
    LIVE = "live"


class OrderStatus(_StrEnum):
    """Order lifecycle states (the lifecycle table in protocols/model/lifecycle.py). See ``protocols.lifecycle`` for the table."""

    INITIALIZED = "INITIALIZED"
    DENIED = "DENIED"
    RESERVED = "RESERVED"
    SUBMITTING = "SUBMITTING"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        """True for DENIED, REJECTED, FAILED, CANCELED, EXPIRED and FILLED."""
        return self in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """True while the order may still trade at the venue (ACCEPTED, PARTIALLY_FILLED, PENDING_CANCEL)."""
        return self in OPEN_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.REJECTED,
        OrderStatus.FAILED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.FILLED,
    }
)
OPEN_STATUSES = frozenset(
    {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL}
)


class Liquidity(_StrEnum):
    """Liquidity indicator of a fill (FIX tag 851: 1=Added/maker, 2=Removed/taker)."""

    MAKER = "MAKER"
    TAKER = "TAKER"
