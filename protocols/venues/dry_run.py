"""``DryRunVenue``: full validation and acknowledgement, never a fill (README.md, Topology, README.md, Write an adapter).

It runs the same checks as the paper venue (instrument filters: unknown symbol, tick size,
lot size, min notional; "no market data" for a market order before any quote; halted market;
duplicate client order ids, counted like the paper venue) and then acknowledges every valid
order as ACCEPTED, whatever its type or time in force. Nothing ever fills: the order stays
ACCEPTED until it is canceled (``cancel_order`` works) or, for DAY orders, the market-data
clock passes a UTC date change. ``fetch_order`` answers from its own book (memory or SQLite).
Market data still feeds it (venue time, the touch for market-order min notional).
"""

from __future__ import annotations

from pathlib import Path

from .paper.fill_model import FillModelConfig
from .paper.venue import PaperVenue


class DryRunVenue(PaperVenue):
    """``DryRunVenue(adapter_id="dry_run", *, config=None, book_path=None, account_id_prefix="")``.

    Same API as :class:`PaperVenue`; ``matching`` is off, so positions and balances stay empty.
    """

    matching = False

    def __init__(
        self,
        adapter_id: str = "dry_run",
        *,
        config: FillModelConfig | None = None,
        book_path: Path | str | None = None,
        account_id_prefix: str = "",
    ) -> None:
        super().__init__(adapter_id, config=config, book_path=book_path, account_id_prefix=account_id_prefix)
