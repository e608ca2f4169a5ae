"""Order intents and execution contexts: what a trading process hands to flowroute (SPEC §5).

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
import os
import re
import threading
import time
from typing import Annotated

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from ._enums import OrderType, Side, TimeInForce
from ._model import FrozenMapping, Frozen, PosDec, UtcDatetime, utc_now

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:/-]{1,36}$"
ClientOrderId = Annotated[str, StringConstraints(pattern=CLIENT_ORDER_ID_PATTERN, max_length=36)]
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,15}/[A-Z0-9]{1,15}$")]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{0,64}$")]


class OrderIntent(Frozen):
    """An order the trading process wants (frozen).

    Fields: ``client_order_id`` (FIX ClOrdID tag 11; 1–36 chars of ``[A-Za-z0-9._:/-]``),
    ``symbol`` (``BASE/QUOTE``, e.g. ``BTC/USDT``), ``side``, ``order_type``,
    ``quantity`` (Decimal > 0, base units), ``limit_price`` (Decimal > 0 in quote currency;
    required for LIMIT, forbidden for MARKET), ``time_in_force`` (default GTC; FOK/IOC
    allowed for both types), ``strategy_id``, ``metadata`` (immutable mapping of scalars).

    Raises ``pydantic.ValidationError`` naming the field for any bad input.
    """

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
        idempotency conflict (SPEC §8). Decimals are normalised, so ``1.0`` and ``1.00`` match.
        """
        price = "" if self.limit_price is None else _norm(self.limit_price)
        text = "|".join(
            (self.symbol, self.side.value, self.order_type.value, _norm(self.quantity), price, self.time_in_force.value)
        )
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def base_currency(self) -> str:
        """``BTC`` for ``BTC/USDT``."""
        return self.symbol.split("/", 1)[0]

    @property
    def quote_currency(self) -> str:
        """``USDT`` for ``BTC/USDT``."""
        return self.symbol.split("/", 1)[1]


def _norm(value) -> str:
    normalized = value.normalize()
    return format(normalized, "f")


class ExecutionContext(Frozen):
    """Where and for whom an intent executes (frozen).

    ``mode`` is a string (see :class:`protocols.ExecutionMode` for the known ones); an
    unknown mode is DENIED by the router with E_EXEC_ROUTE_CONFIG_INVALID. ``timestamp``
    is an aware UTC datetime (default: now).
    """

    mode: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=32)]
    account_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
    strategy_id: Ident = ""
    session_id: Ident = ""
    timestamp: UtcDatetime = Field(default_factory=utc_now)


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


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
