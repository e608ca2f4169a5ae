"""Shared pydantic building blocks: the frozen base model and validated Decimal types."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer


# -- building a model from values that are already valid ------------------------------------

_new_object = object.__new__
try:
    # BaseModel's own instance slots, set through their descriptors (what ``model_construct``
    # ends with, without its per-field Python loop and default deep copies)
    _set_dict, _set_fields_set, _set_extra, _set_private = (
        BaseModel.__dict__[name].__set__
        for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    )
except (KeyError, AttributeError):  # pragma: no cover - another pydantic layout
    _set_dict = None  # type: ignore[assignment]


def construct_valid(model: type, fields: dict[str, Any], given: frozenset[str] | set[str]) -> Any:
    """An instance of the pydantic model ``model`` holding ``fields``, which are already valid.

    ``fields`` maps EVERY field to its value in declaration order (defaults included);
    ``given`` names the fields the equivalent validating call would pass (its
    ``model_fields_set``). Only for values that passed validation as fields of the same or a
    stricter type, or whose exact types the caller checked: nothing is validated here. The
    instance is what ``model.model_construct(_fields_set=given, **fields)`` builds (same
    ``__dict__``, fields set, no extra, no private values), at a fraction of its cost
    (``model_construct`` is slower than validating in pydantic 2.x). For models without
    post-init hooks, private attributes or extra fields (callers check this once at import
    against validated instances). One place for the hot paths that need it: the reports
    (``protocols/model/reports.py``) and the simulated venues' fills and states
    (``protocols/venues/paper/trusted.py``).
    """
    if _set_dict is None:  # pragma: no cover - another pydantic layout: the documented equivalent
        return model.model_construct(_fields_set=set(given), **fields)
    obj = _new_object(model)
    _set_dict(obj, fields)
    _set_fields_set(obj, set(given))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


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
