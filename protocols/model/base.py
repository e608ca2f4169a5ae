"""Shared pydantic building blocks: the frozen base model and validated Decimal types."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer


class Frozen(BaseModel):
    """Base of every message and value object: frozen, no extra fields, strict about shape."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)


def _decimal_str(value: Decimal) -> str:
    return format(value, "f")


_DecimalSer = PlainSerializer(_decimal_str, return_type=str, when_used="json")

# pydantic-core validates these natively (no Python callback per field): float input is
# converted through its shortest repr (0.1 stays Decimal('0.1')), bools are refused, and
# NaN / infinity fail with "Input should be a finite number".
#: A finite Decimal; JSON as a plain string.
Dec = Annotated[Decimal, Field(allow_inf_nan=False), _DecimalSer]
#: A finite Decimal > 0.
PosDec = Annotated[Decimal, Field(allow_inf_nan=False, gt=0), _DecimalSer]
#: A finite Decimal >= 0.
NonNegDec = Annotated[Decimal, Field(allow_inf_nan=False, ge=0), _DecimalSer]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware (UTC)")
    return value.astimezone(UTC)


#: A timezone-aware datetime normalised to UTC.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _freeze_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, item in value.items():  # what no journal can hold is refused here, naming the key
        problem = text_problem(key) or (text_problem(item) if isinstance(item, str) else None)
        if problem is not None:
            raise ValueError(f"key {storable_text(key)!r}: text holds {problem}, which the journal cannot store")
    return MappingProxyType(dict(value))


#: An immutable str-keyed mapping (a read-only view over a private copy); JSON as an object. Text a
#: journal cannot store (:func:`text_problem`: NUL, a lone surrogate) in a key or value is refused.
FrozenMapping = Annotated[
    Mapping[str, str | int | float | bool | None],
    AfterValidator(_freeze_mapping),
    PlainSerializer(lambda m: dict(m), return_type=dict),
]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def text_problem(text: str) -> str | None:
    """What in ``text`` no journal of flowroute's can store, or None: a NUL character
    (PostgreSQL's text refuses it) or a lone UTF-16 surrogate (UTF-8 cannot encode it: SQLite,
    PostgreSQL and JSON refuse it; ``json.loads('"\\ud800"')`` makes one)."""
    if "\x00" in text:
        return "a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone surrogate"
    return None


def storable_text(text: str) -> str:
    """``text`` as every journal can store it: ``text`` itself when :func:`text_problem` finds
    nothing (the common case, no copy), else with each lone surrogate written as its Python
    escape ``\\udXXX`` and each NUL as ``\\x00`` (backslash escapes; other text unchanged, so a
    value that held neither is never altered and the same value always gives the same text)."""
    if text_problem(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")

