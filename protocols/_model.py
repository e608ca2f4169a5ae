"""Shared pydantic building blocks: the frozen base model and validated Decimal types."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Mapping

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer


class Frozen(BaseModel):
    """Base of every message and value object: frozen, no extra fields, strict about shape."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)


def _to_decimal(value: Any) -> Any:
    """Accept Decimal, int, str and float (via its shortest repr) and refuse bools."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _decimal_str(value: Decimal) -> str:
    return format(value, "f")


_DecimalSer = PlainSerializer(_decimal_str, return_type=str, when_used="json")

#: A finite Decimal (float input goes through ``repr`` so 0.1 stays 0.1); JSON as a plain string.
Dec = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_finite), _DecimalSer]
#: A finite Decimal > 0.
PosDec = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_finite), AfterValidator(_positive), _DecimalSer]
#: A finite Decimal >= 0.
NonNegDec = Annotated[Decimal, BeforeValidator(_to_decimal), AfterValidator(_finite), AfterValidator(_non_negative), _DecimalSer]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware (UTC)")
    return value.astimezone(timezone.utc)


#: A timezone-aware datetime normalised to UTC.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _freeze_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


#: An immutable str-keyed mapping (a read-only view over a private copy); JSON as an object.
FrozenMapping = Annotated[
    Mapping[str, str | int | float | bool | None],
    AfterValidator(_freeze_mapping),
    PlainSerializer(lambda m: dict(m), return_type=dict),
]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)
