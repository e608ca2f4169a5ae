"""Order intents and execution contexts: what a trading process hands to flowroute (README.md, Using it).

Example::

    >>> from decimal import Decimal
    >>> intent = OrderIntent(client_order_id="s1-0001", symbol="BTC/USDT", side="BUY",
    ...                      order_type="LIMIT", quantity=Decimal("0.01"),
    ...                      limit_price=Decimal("39400.00"))
    >>> ctx = ExecutionContext(mode="paper", account_id="acc-1")
    >>> len(intent.fingerprint())
    64
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator

from .base import Frozen, FrozenMapping, PosDec, UtcDatetime, text_problem, utc_now
from .enums import OrderType, Side, TimeInForce
from .pydantic_compat import slot_accessors

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:/-]{1,36}$"
ClientOrderId = Annotated[str, StringConstraints(pattern=CLIENT_ORDER_ID_PATTERN, max_length=36)]
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,15}$")]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{0,64}$")]


class OrderIntent(Frozen):
    """An order the trading process wants (frozen).

    Fields: ``client_order_id`` (FIX ClOrdID tag 11; 1–36 chars of ``[A-Za-z0-9._:/-]``;
    ``Runtime.submit`` refuses ids ending in ``.r`` and digits, reserved for remainder child
    orders: :func:`reserved_client_order_id_problem`),
    ``symbol`` (``BASE/QUOTE``, e.g. ``BTC/USDT``), ``side``, ``order_type``,
    ``quantity`` (Decimal > 0, base units), ``limit_price`` (Decimal > 0 in quote currency;
    required for LIMIT, forbidden for MARKET), ``time_in_force`` (default GTC; FOK/IOC
    allowed for both types), ``strategy_id``, ``metadata`` (immutable mapping of scalars).

    Raises ``pydantic.ValidationError`` naming the field for any bad input.
    """

    # Not a field and not a pydantic private attribute: a plain slot holding the digest once
    # fingerprint() computed it. Pydantic's ==, hash, model_dump, JSON, pickling and copies
    # (model_copy, copy, deepcopy) only see fields and private attributes, so they ignore the
    # slot, and a copy made with ``model_copy(update=...)`` starts without it (its own digest).
    __slots__ = ("_fingerprint", "_json")

    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    order_type: OrderType
    quantity: PosDec
    limit_price: PosDec | None = Field(None, validate_default=True)
    time_in_force: TimeInForce = TimeInForce.GTC
    strategy_id: Ident = ""
    metadata: FrozenMapping = Field(default_factory=dict)

    @field_validator("limit_price", mode="after")
    @classmethod
    def _price_matches_type(cls, value, info: ValidationInfo):
        order_type = info.data.get("order_type")
        if order_type is OrderType.LIMIT and value is None:
            raise ValueError("limit_price is required for a LIMIT order")
        if order_type is OrderType.MARKET and value is not None:
            raise ValueError("limit_price is forbidden for a MARKET order")
        return value

    def fingerprint(self) -> str:
        """SHA-256 hex digest of the economic fields (symbol, side, type, qty, price, TIF).

        Two intents with the same client order id but a different fingerprint are an
        idempotency conflict (docs/DESIGN.md, Durability). Decimals are normalised, so ``1.0`` and ``1.00`` match.
        Computed once per intent (the intent is frozen) and cached.
        """
        try:
            return _cached_fingerprint(self)
        except AttributeError:  # not computed yet on this instance (the slot's own error: no __getattr__ detour)
            pass
        limit_price = self.limit_price
        text = (
            f"{self.symbol}|{self.side._value_}|{self.order_type._value_}|{_norm(self.quantity)}|"
            f"{'' if limit_price is None else _norm(limit_price)}|{self.time_in_force._value_}"
        )
        digest = _DIGESTS.get(text)
        if digest is None:
            digest = _sha256(text.encode()).hexdigest()
            if len(_DIGESTS) >= _DIGESTS_MAX:
                _DIGESTS.clear()
            _DIGESTS[text] = digest
        _set_cached_fingerprint(self, digest)
        return digest

    def journal_json(self) -> str:
        """``model_dump_json()``: the text the idempotency claim journals (docs/DESIGN.md, Durability).
        Computed once per intent (the intent is frozen) and cached, as :meth:`fingerprint`."""
        try:
            return _cached_json(self)
        except AttributeError:
            text = self.model_dump_json()
            _set_cached_json(self, text)
            return text

    @property
    def base_currency(self) -> str:
        """``BTC`` for ``BTC/USDT``."""
        return self.symbol.split("/", 1)[0]

    @property
    def quote_currency(self) -> str:
        """``USDT`` for ``BTC/USDT``."""
        return self.symbol.split("/", 1)[1]


def _norm(value) -> str:
    """``format(value.normalize(), "f")``: Decimals normalised, so ``1.0`` and ``1.00`` give the same text."""
    normalized = value.normalize()
    text = str(normalized)  # the same text unless str() chose scientific notation (then it has an E)
    return format(normalized, "f") if "E" in text else text


#: the slot's descriptor: reading it raises AttributeError straight away while it is empty
_cached_fingerprint, _set_cached_fingerprint = slot_accessors(OrderIntent, "_fingerprint")
_cached_json, _set_cached_json = slot_accessors(OrderIntent, "_json")
_sha256 = hashlib.sha256
#: digests of recent fingerprint texts (many intents share their economic fields); bounded
_DIGESTS: dict[str, str] = {}
_DIGESTS_MAX = 4096


def _storable_mode(mode: str) -> str:
    problem = text_problem(mode)
    if problem is not None:
        raise ValueError(f"text holds {problem}, which the journal cannot store")
    return mode


class ExecutionContext(Frozen):
    """Where and for whom an intent executes (frozen).

    ``mode`` is a string (see :class:`protocols.ExecutionMode` for the known ones); an
    unknown mode is DENIED by the router with E_EXEC_ROUTE_CONFIG_INVALID. ``timestamp``
    is an aware UTC datetime (default: now). Attribution (README "Features"): ``strategy_id``
    (the intent's own ``strategy_id`` wins when set), ``session_id`` and ``correlation_id``
    (0-64 chars of ``[A-Za-z0-9._:/-]``) are carried on the order's reports, events, fill and
    audit lines, so subscribers can filter and PnL can be read per strategy.
    """

    mode: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=32),
                    AfterValidator(_storable_mode)]
    account_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
    strategy_id: Ident = ""
    session_id: Ident = ""
    correlation_id: Ident = ""
    timestamp: UtcDatetime = Field(default_factory=utc_now)

    # the cached journal_json() text: a plain slot, as OrderIntent's (pydantic ignores it)
    __slots__ = ("_json",)

    def journal_json(self) -> str:
        """``model_dump_json()``: the text the idempotency claim journals, computed once per context
        (frozen; a sender usually reuses one for many orders) and cached."""
        try:
            return _cached_context_json(self)
        except AttributeError:
            text = self.model_dump_json()
            _set_cached_context_json(self, text)
            return text


_cached_context_json, _set_cached_context_json = slot_accessors(ExecutionContext, "_json")

_counter = itertools.count(1)
_counter_lock = threading.Lock()
_PREFIX_RE = re.compile(r"^[A-Za-z0-9]{1,8}$")


def new_client_order_id(prefix: str = "fr") -> str:
    """Return a client order id unique across processes and restarts (≤ 36 chars).

    Shape: ``{prefix}-{ms since epoch, base36}-{pid, base36}-{counter, base36}``.
    ``prefix`` is 1–8 alphanumerics; raises ``ValueError`` otherwise.
    """
    if not _PREFIX_RE.match(prefix):
        raise ValueError("prefix must be 1-8 letters or digits")
    with _counter_lock:
        n = next(_counter)
    return f"{prefix}-{_b36(time.time_ns() // 1_000_000)}-{_b36(os.getpid())}-{_b36(n)}"


_SIGNAL_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]{1,11}$")


def _signal_value(name: str, value: Any) -> Any:
    """A signal input as a canonical JSON value (the same input always gives the same text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"signal input {name!r}: non-finite Decimal {value}")
        return {"d": _norm(value)}
    if isinstance(value, float):
        raise TypeError(f"signal input {name!r}: a float ({value!r}) is not exact; pass a Decimal or a string")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"signal input {name!r}: datetime must be timezone-aware (UTC), got {value!r}")
        return {"t": value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {"t": value.isoformat()}
    if isinstance(value, Enum):
        return _signal_value(name, value.value)
    if isinstance(value, (list, tuple)):
        return [_signal_value(name, v) for v in value]
    raise TypeError(f"signal input {name!r}: {type(value).__name__} is not supported "
                    "(str, int, bool, None, Decimal, aware datetime, date, enum, or a list/tuple of them)")


def signal_client_order_id(strategy_id: str, **signal: Any) -> str:
    """A deterministic client order id for one trading signal: the same inputs, the same id.

    A strategy that derives its ids with this helper cannot turn one signal seen twice (a
    re-delivered message, a restarted strategy replaying its inputs) into two orders: the
    second intent carries the same ``client_order_id`` and flowroute's idempotency store
    answers it with the first order's report (README "Using it"; docs/DESIGN.md).

    ``strategy_id``: 1-11 characters of ``[A-Za-z0-9._-]``, the id's readable prefix.
    ``signal``: the inputs that identify the signal, as keywords (e.g. ``symbol``, ``side``,
    ``bar_ts``, ``reason``). Values: ``str``, ``int``, ``bool``, ``None``, ``Decimal``
    (normalised: ``1.0`` and ``1.00`` are the same input), timezone-aware ``datetime``
    (compared in UTC), ``date``, enums, or lists/tuples of these. Floats are refused
    (``TypeError``): their text is not an exact value. Keyword order does not matter.

    Shape: ``{strategy_id}-{24 hex digits}``, at most 36 characters (the ClOrdID limit of
    :class:`OrderIntent`): the hex is the first 96 bits of the SHA-256 of the canonical JSON
    of ``strategy_id`` and the inputs. Include whatever makes two
    *different* signals different (typically the bar or event time): identical inputs are
    one intent by design.

    Raises ``ValueError`` for a bad ``strategy_id``, no inputs, or a naive datetime;
    ``TypeError`` for an unsupported value.

    Example::

        >>> signal_client_order_id("ma-cross", symbol="BTC/USDT", side="BUY",
        ...                        bar_ts=datetime(2021, 1, 8, tzinfo=timezone.utc))
        'ma-cross-dd8826afec4e498234eb3064'
    """
    if not isinstance(strategy_id, str) or not _SIGNAL_PREFIX_RE.match(strategy_id):
        raise ValueError(f"strategy_id must be 1-11 characters of [A-Za-z0-9._-], got {strategy_id!r}")
    if not signal:
        raise ValueError("signal_client_order_id needs at least one signal input (e.g. symbol=..., bar_ts=...)")
    canonical = {name: _signal_value(name, value) for name, value in signal.items()}
    text = json.dumps([strategy_id, canonical], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{strategy_id}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


#: the reserved form of a client order id: its last dot-separated part is ``r`` and digits
#: (``.r1``, ``.r12``): the runtime's remainder child orders (README.md, Features: Partial fills)
_REMAINDER_SUFFIX_RE = re.compile(r"\.r[0-9]+\Z")
#: the longest client order id (FIX ClOrdID as flowroute sends it; ``ClientOrderId``)
_MAX_CLIENT_ORDER_ID = 36


def reserved_client_order_id_problem(client_order_id: str) -> str | None:
    """Why ``client_order_id`` may not be submitted by a caller, or None when it may.

    Ids ending in ``.r`` and digits (``ord-7.r1``) are reserved for the remainder child orders
    the runtime derives itself (:func:`remainder_client_order_id`, ``[orders] remainder =
    "resubmit"``), so a caller's id can never be taken for a child's (or a child's for a
    caller's) by the idempotency store. ``Runtime.submit`` answers such an id E_EXEC_VALIDATION
    with this message. Cancels and queries of a child's id are not affected.
    """
    if _REMAINDER_SUFFIX_RE.search(client_order_id) is None:
        return None
    return (f"intent.client_order_id: '{client_order_id}' is reserved: ids ending in '.r' and digits name the "
            "remainder child orders the runtime derives (README.md, Features: Partial fills); use another id")


def remainder_client_order_id(root: str, n: int) -> str:
    """The client order id of the ``n``-th (``n >= 1``) remainder child of order ``root``: ``"<root>.r<n>"``.

    When that would exceed 36 characters (the ClOrdID limit here) the root is replaced by
    ``"<sha256(root)[:24]>.r0"``, itself a reserved id, giving ``"<sha256(root)[:24]>.r0.r<n>"``.
    Deterministic, so the same remainder is always the same intent (never sent twice), and
    disjoint from every id a caller may submit (:func:`reserved_client_order_id_problem`): a
    derived id always ends in ``.r<n>``, and it determines its ``(root, n)`` (a hashed root is
    reserved, so no caller's root equals it). Raises ``ValueError`` for ``n < 1``.

    Example::

        remainder_client_order_id("ord-7", 1)   # 'ord-7.r1'
    """
    if n < 1:
        raise ValueError(f"a remainder child's number starts at 1, got {n}")
    candidate = f"{root}.r{n}"
    if len(candidate) <= _MAX_CLIENT_ORDER_ID:
        return candidate
    return f"{hashlib.sha256(root.encode()).hexdigest()[:24]}.r0.r{n}"


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
