"""A child process on a shared (PostgreSQL) paper book, for tests/scaleout/test_pg_book.py.

``python tests/_book_child.py URL quote BID ASK SIZE T``: feed one quote; print the events this
process's sink received (JSON). ``python tests/_book_child.py URL buy PREFIX N QTY SHARED``:
wait for ``URL``'s go-file, submit N MARKET BUYs ``PREFIX-i`` and SHARED ids ``shared-i``; print
what each answered (JSON).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import Instrument, Quote, VenueOrder, VenueRejectedError
from protocols.venues import FILL_MODEL_VERSION, FillModelConfig, PaperVenue
from protocols.venues.paper.pg_book import PgBook

T0 = datetime(2021, 1, 8, 0, 0, 1, tzinfo=UTC)
SYM = "BTC/USDT"
CFG = FillModelConfig(maker_fee_bps=D("1"), taker_fee_bps=D("10"), market_remainder="expire",
                      instruments={SYM: Instrument(symbol=SYM, tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D("1"))})


def shared_venue(url: str) -> PaperVenue:
    """A paper venue on the shared book at ``url``."""
    return PaperVenue("paper", config=CFG, book=PgBook(url, adapter_id="paper", fill_model_version=FILL_MODEL_VERSION))


def main() -> None:
    url, mode, *rest = sys.argv[1:]
    venue = shared_venue(url)
    events: list[str] = []
    venue.set_event_sink(lambda e: events.append(f"{e.kind}:{e.state.client_order_id}"))
    out: dict = {}
    try:
        if mode == "quote":
            bid, ask, size, t = rest
            venue.on_market(Quote(ts=T0 + timedelta(seconds=float(t)), symbol=SYM, bid=D(bid), bid_size=D(size),
                                  ask=D(ask), ask_size=D(size)))
            time.sleep(0.3)  # a poll round or more: nothing of another process's orders may arrive
        else:
            prefix, n, qty, shared, go = rest
            deadline = time.monotonic() + 30
            while not Path(go).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            ids = [f"{prefix}-{i}" for i in range(int(n))]
            ids[::3] = [f"shared-{i}" for i in range(len(ids[::3]))][: int(shared)] + ids[::3][int(shared):]
            answers = {}
            for coid in ids:
                o = VenueOrder(client_order_id=coid, account_id="acc", symbol=SYM, side="BUY", order_type="MARKET",
                               quantity=D(qty), ts=T0)
                try:
                    st = venue.submit_order(o)
                    answers[coid] = [st.status.value, str(st.cum_qty), st.venue_order_id]
                except VenueRejectedError as exc:
                    answers[coid] = ["REJECTED", exc.venue_code, None]
            out["answers"] = answers
        out["events"] = events
    finally:
        venue.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
