"""Building the venue's pydantic values from already-validated parts without validating them again.

The simulated venues make one ``Fill`` per execution and a ``VenueOrderState`` per answer (the
FIX venue too, per ExecutionReport: :func:`make_fill`, :func:`make_venue_state`).
Every part of those values comes from data pydantic has already validated (the ``VenueOrder``,
the ``Quote``, the ``FillModelConfig``) or is derived from it by the fill model in ways that keep
the field constraints (positive quantities and prices, fees >= 0, UTC timestamps), so
validating them again only costs time (~2 µs for a ``Fill``, ~3 µs for a ``VenueOrderState``).

``BaseModel.model_construct`` skips validation but is *slower* than validating in pydantic
2.x (it scans every field for aliases and defaults in Python); both use
:func:`protocols.model.pydantic_compat.construct_valid`, which does only what ``model_construct`` ends with
when every field is given (the fields in declaration order, all of them set, no extra, no
private state).

Safety nets, so the values are the same objects validation would build:

- :func:`make_fill` / :func:`make_state` take the trusted path only when the cheap guards
  hold that make validation a no-op (timestamp already in ``timezone.utc``; a ``Fill``'s
  quantity and price > 0, fee >= 0, trade id 1..64 characters); otherwise they call the
  validating constructor, which normalises or raises exactly as before.
- At import, :func:`_self_check` builds a sample of each model both ways and compares fields,
  field order, fields set, extra, private state, equality and JSON; on any difference (a
  pydantic release with other internals, a model that gained a field) the trusted path is
  switched off and every value is validated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ...adapter import VenueOrder, VenueOrderState
from ...model.enums import TERMINAL_STATUSES, Liquidity, OrderStatus, Side
from ...model.pydantic_compat import construct_valid, same_instance
from ...model.reports import Fill, summarize_fills

_UTC = UTC
_ZERO = Decimal(0)
_FILL_FIELDS = frozenset(Fill.model_fields)
_STATE_FIELDS = frozenset(VenueOrderState.model_fields)


def make_fill(
    trade_id: str, qty: Decimal, price: Decimal, fee: Decimal, fee_currency: str, liquidity: Liquidity, ts: datetime
) -> Fill:
    """``Fill(trade_id=..., qty=..., price=..., fee=..., fee_currency=..., liquidity=..., ts=...)``.

    The caller passes values of the field types (finite Decimals, a ``Liquidity`` member) derived
    from validated data; the field constraints are checked here, and values that miss one (or a
    timestamp outside ``timezone.utc``) go through validation, which normalises or raises.
    """
    # (comparisons with a Decimal zero: half the cost of comparing with the int 0)
    if _ENABLED and qty > _ZERO and price > _ZERO and fee >= _ZERO and 0 < len(trade_id) <= 64 and ts.tzinfo is _UTC:
        return construct_valid(
            Fill,
            {
                "trade_id": trade_id,
                "qty": qty,
                "price": price,
                "fee": fee,
                "fee_currency": fee_currency,
                "liquidity": liquidity,
                "ts": ts,
            },
            _FILL_FIELDS,
        )
    return Fill(
        trade_id=trade_id, qty=qty, price=price, fee=fee, fee_currency=fee_currency, liquidity=liquidity, ts=ts
    )


def make_state(
    order: VenueOrder,
    venue_order_id: str,
    status: OrderStatus,
    fills: tuple[Fill, ...],
    reject_reason: str | None,
    ts: datetime,
) -> VenueOrderState:
    """``VenueOrderState.of(order, venue_order_id=..., status=..., fills=..., reject_reason=..., ts=ts)``.

    Same derivation as ``VenueOrderState.of`` (cum_qty, avg_px from ``summarize_fills``; leaves
    0 when terminal). Every input is validated already: ``order`` is a ``VenueOrder``, ``fills``
    are ``Fill`` values, ``status`` an ``OrderStatus``; ``ts`` is checked here.
    """
    if not (_ENABLED and ts.tzinfo is _UTC):
        return VenueOrderState.of(
            order, venue_order_id=venue_order_id, status=status, fills=fills, reject_reason=reject_reason, ts=ts
        )
    cum, avg, _fees = summarize_fills(fills)
    leaves = _ZERO if status in TERMINAL_STATUSES else max(order.quantity - cum, _ZERO)  # status.is_terminal
    return construct_valid(
        VenueOrderState,
        {
            "client_order_id": order.client_order_id,
            "venue_order_id": venue_order_id,
            "symbol": order.symbol,
            "side": order.side,
            "status": status,
            "quantity": order.quantity,
            "cum_qty": cum,
            "leaves_qty": leaves,
            "avg_px": avg,
            "fills": fills,
            "reject_reason": reject_reason,
            "ts": ts,
        },
        _STATE_FIELDS,
    )


def make_venue_state(
    client_order_id: str,
    venue_order_id: str,
    symbol: str,
    side: Side,
    status: OrderStatus,
    quantity: Decimal,
    cum_qty: Decimal,
    leaves_qty: Decimal,
    avg_px: Decimal | None,
    fills: tuple[Fill, ...],
    reject_reason: str | None,
    ts: datetime,
) -> VenueOrderState:
    """``VenueOrderState(...)`` with every field given, for a venue that reads the cumulative
    view from its own wire (the FIX venue: CumQty 14, LeavesQty 151, AvgPx 6) rather than
    deriving it from fills. ``side`` / ``status`` are members, ``fills`` validated ``Fill`` s;
    the Decimal constraints (finite; quantity > 0, cum_qty and leaves_qty >= 0) and the UTC
    timestamp are checked here, and values that miss one are validated, which normalises or
    raises ``ValidationError`` exactly as ``VenueOrderState(...)`` does.
    """
    if (
        _ENABLED
        and ts.tzinfo is _UTC
        and quantity.__class__ is Decimal and quantity.is_finite() and quantity > _ZERO
        and cum_qty.__class__ is Decimal and cum_qty.is_finite() and cum_qty >= _ZERO
        and leaves_qty.__class__ is Decimal and leaves_qty.is_finite() and leaves_qty >= _ZERO
        and (avg_px is None or (avg_px.__class__ is Decimal and avg_px.is_finite()))
        and side.__class__ is Side and status.__class__ is OrderStatus and fills.__class__ is tuple
        and client_order_id.__class__ is str and venue_order_id.__class__ is str and symbol.__class__ is str
        and (reject_reason is None or reject_reason.__class__ is str)
        and all(f.__class__ is Fill for f in fills)
    ):
        return construct_valid(
            VenueOrderState,
            {
                "client_order_id": client_order_id,
                "venue_order_id": venue_order_id,
                "symbol": symbol,
                "side": side,
                "status": status,
                "quantity": quantity,
                "cum_qty": cum_qty,
                "leaves_qty": leaves_qty,
                "avg_px": avg_px,
                "fills": fills,
                "reject_reason": reject_reason,
                "ts": ts,
            },
            _STATE_FIELDS,
        )
    return VenueOrderState(
        client_order_id=client_order_id, venue_order_id=venue_order_id, symbol=symbol, side=side, status=status,
        quantity=quantity, cum_qty=cum_qty, leaves_qty=leaves_qty, avg_px=avg_px, fills=fills,
        reject_reason=reject_reason, ts=ts,
    )


def _self_check() -> bool:
    """True when :func:`make_fill` and :func:`make_state` on their trusted path build exactly
    what validation builds (called once at import with the trusted path on)."""
    try:
        ts = datetime(2021, 1, 8, tzinfo=_UTC)
        qty, price = Decimal("0.001"), Decimal("39433.62")
        args = ("check-1", qty, price, Decimal("0.00019717"), "USDT", Liquidity.TAKER, ts)
        fill = Fill(trade_id=args[0], qty=args[1], price=args[2], fee=args[3], fee_currency=args[4],
                    liquidity=args[5], ts=args[6])
        if not same_instance(make_fill(*args), fill):
            return False
        order = VenueOrder(
            client_order_id="check-c1", account_id="a", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
            quantity=Decimal("0.002"), limit_price=price, ts=ts,
        )
        for status, fills, reason in (
            (OrderStatus.PARTIALLY_FILLED, (fill,), None),
            (OrderStatus.FILLED, (fill, fill), None),
            (OrderStatus.REJECTED, (), "why"),
        ):
            slow = VenueOrderState.of(order, venue_order_id="check-o1", status=status, fills=fills,
                                      reject_reason=reason, ts=ts)
            if not same_instance(make_state(order, "check-o1", status, fills, reason, ts), slow):
                return False
            fast = make_venue_state(slow.client_order_id, slow.venue_order_id, slow.symbol, slow.side, slow.status,
                                    slow.quantity, slow.cum_qty, slow.leaves_qty, slow.avg_px, slow.fills,
                                    slow.reject_reason, slow.ts)
            if not same_instance(fast, slow):
                return False
        return True
    except Exception:  # noqa: BLE001 - any surprise means: validate everything
        return False


_ENABLED = True  # _self_check runs with the trusted path on
_ENABLED = _self_check()
