"""Venue implementations of ``protocols.BrokerAdapter`` (README.md, Write an adapter) and fault injection (docs/DESIGN.md, Testing).

- :class:`PaperVenue`: the deterministic, versioned fill model (``_fill_model``) over quotes
  and trades, with its own book (memory or a durable SQLite file).
- :class:`ShadowVenue`: the same model on a separate book and account.
- :class:`DryRunVenue`: validation and acknowledgement, never a fill.
- :class:`FaultInjectingAdapter` + :class:`FaultPlan`: crash / hang / ambiguous / transient /
  reject / slow faults around any adapter, deterministic by seed.

Example::

    >>> from decimal import Decimal
    >>> from protocols import Quote, VenueOrder
    >>> venue = PaperVenue(config=FillModelConfig(taker_fee_bps=Decimal("10")))
    >>> venue.on_market(Quote(ts="2021-01-08T00:00:01Z", symbol="BTC/USDT", bid=Decimal("100.00"),
    ...                       bid_size=Decimal("1"), ask=Decimal("100.01"), ask_size=Decimal("1")))
    >>> state = venue.submit_order(VenueOrder(client_order_id="c1", account_id="a", symbol="BTC/USDT",
    ...                                       side="BUY", order_type="MARKET", quantity=Decimal("0.5")))
    >>> state.status.value, state.avg_px, state.fills[0].trade_id
    ('FILLED', Decimal('100.01'), 'paper-1')
"""

from .dry_run import DryRunVenue
from .faults import FAULTS, FaultInjectingAdapter, FaultPlan
from .paper.fill_model import (
    FILL_MODEL_VERSION,
    Arrival,
    DepthEvidence,
    Execution,
    FillModel,
    FillModelConfig,
    L1Book,
    NautilusL1Model,
    Rejection,
    Resting,
    TopOfBook,
    floor_lot,
    make_fill_model,
    round_price,
)
from .paper.venue import PaperVenue
from .shadow import ShadowVenue

__all__ = [
    "FAULTS",
    "FILL_MODEL_VERSION",
    "Arrival",
    "DepthEvidence",
    "DryRunVenue",
    "Execution",
    "FaultInjectingAdapter",
    "FaultPlan",
    "FillModel",
    "FillModelConfig",
    "L1Book",
    "NautilusL1Model",
    "PaperVenue",
    "Rejection",
    "Resting",
    "ShadowVenue",
    "TopOfBook",
    "floor_lot",
    "make_fill_model",
    "round_price",
]
