"""Refused values in the SQLite paper book (protocols/venues/paper/book.py, venue.py), as the PostgreSQL
book (tests/scaleout/test_pg_book.py) and the journals classify them (``protocols._refused``).

An order whose texts no book of flowroute's stores (a NUL character, a lone surrogate) is rejected
``VALUE_REFUSED`` naming the field before it is matched, nothing booked, and in a group only that
order is left out; a value the book's write refuses anyway is a ``ValueRefused`` after the
rollback, that one call is rejected ``VALUE_REFUSED``, and the book stays usable. Before, a lone
surrogate failed the write as a broken venue (``FatalAdapterError``, a breaker failure) and, in a
group, every order of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from protocols import Instrument, OrderStatus, Quote, VenueOrder, VenueRejectedError
from protocols._refused import ValueRefused
from protocols.venues import FillModelConfig, PaperVenue
from protocols.venues.paper import venue as venue_mod
from protocols.venues.paper.book import BookChanges, SqliteBook, new_record

T0 = datetime(2021, 1, 8, 0, 0, 1, tzinfo=UTC)
SYM = "BTC/USDT"
CFG = FillModelConfig(maker_fee_bps=D("1"), taker_fee_bps=D("10"),
                      instruments={SYM: Instrument(symbol=SYM, tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D("5"))})


def quote() -> Quote:
    return Quote(ts=T0, symbol=SYM, bid=D("99.99"), bid_size=D("5"), ask=D("100.00"), ask_size=D("5"))


def order(coid: str, price: str | None = None, account: str = "acc") -> VenueOrder:
    return VenueOrder(client_order_id=coid, account_id=account, symbol=SYM, side="BUY",
                      order_type="LIMIT" if price else "MARKET", quantity=D("0.1"),
                      limit_price=D(price) if price else None, ts=T0)


def test_an_order_the_book_cannot_store_is_rejected_naming_it_and_a_group_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite"
    v = PaperVenue(config=CFG, book_path=path)
    try:
        v.on_market(quote())
        bad = [(order("sur-\ud800"), "client_order_id holds a lone surrogate"),
               (order("nul-\x00"), "client_order_id holds a NUL character"),
               (order("acc-bad", account="a\udc80c"), "account_id holds a lone surrogate")]
        for o, named in bad:
            with pytest.raises(VenueRejectedError, match=named) as info:
                v.submit_order(o)
            assert info.value.venue_code == venue_mod.VALUE_REFUSED
        assert v.submission_counts() == {} and v.fetch_order("acc-bad") is None
        assert v.submit_order(order("ok")).status is OrderStatus.FILLED  # the book stays usable
        v.begin_batch()  # a group: only the refused order is left out
        assert v.submit_order(order("g1")).status is OrderStatus.FILLED
        with pytest.raises(VenueRejectedError, match="lone surrogate") as info:
            v.submit_order(order("g-\ud83d"))
        assert info.value.venue_code == venue_mod.VALUE_REFUSED
        assert v.submit_order(order("g3", "99.00")).status is OrderStatus.ACCEPTED
        v.end_batch()
    finally:
        v.close()
    again = PaperVenue(config=CFG, book_path=path)  # what the file holds
    try:
        assert again.fetch_order("g1").status is OrderStatus.FILLED
        assert again.fetch_order("g3").status is OrderStatus.ACCEPTED
        assert again.submission_counts() == {"ok": 1, "g1": 1, "g3": 1}
    finally:
        again.close()


def test_a_value_the_books_write_refuses_is_a_value_refused_and_the_book_stays_usable(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    book = SqliteBook(tmp_path / "direct.sqlite", adapter_id="direct", fill_model_version="test")
    try:
        rec = new_record(1, order("r-1", "99.00"), "direct-o1", "acc", OrderStatus.REJECTED, (), "bad \ud800 reason",
                         T0.date(), T0)
        with pytest.raises(ValueRefused, match=r"paper venue book '.*direct\.sqlite' write refused a value"):
            book.commit(BookChanges(orders={"r-1": rec}))
        good = new_record(1, order("r-2", "99.00"), "direct-o1", "acc", OrderStatus.ACCEPTED, (), None, T0.date(), T0)
        book.commit(BookChanges(orders={"r-2": good}))  # rolled back, not left in a transaction
        assert book.load_order("r-2") is not None and book.load_order("r-1") is None
    finally:
        book.close()
    # the venue, for a value its own check does not catch (that check switched off here)
    monkeypatch.setattr(venue_mod, "order_text_problem", lambda order: None)
    v = PaperVenue(config=CFG, book_path=tmp_path / "venue.sqlite")
    try:
        v.on_market(quote())
        with pytest.raises(VenueRejectedError, match="refused a value") as info:
            v.submit_order(order("sur-\ud800"))
        assert info.value.venue_code == venue_mod.VALUE_REFUSED
        assert v.submit_order(order("after")).status is OrderStatus.FILLED
        assert v.submission_counts() == {"after": 1}
    finally:
        v.close()
