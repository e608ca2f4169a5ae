"""The paper venue's book in PostgreSQL (``protocols/venues/paper/pg_book.py``): one book for N processes.

Real processes on a throwaway cluster (``pg_url``): their orders rest in and match against one
book, the touch's displayed size is taken once in total, ids stay unique across processes, and
each process is pushed the events of its own orders only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from _book_child import CFG, SYM, T0, shared_venue

from protocols import OrderStatus, Quote, VenueOrder, VenueRejectedError
from protocols.venues.paper.pg_book import PgBook, market_from_json, market_to_json

CHILD = Path(__file__).resolve().parents[1] / "_book_child.py"


def quote(bid: str, ask: str, size: str, t: float) -> Quote:
    return Quote(ts=T0 + timedelta(seconds=t), symbol=SYM, bid=D(bid), bid_size=D(size), ask=D(ask), ask_size=D(size))


def order(coid: str, side: str, qty: str, price: str | None = None) -> VenueOrder:
    return VenueOrder(client_order_id=coid, account_id="acc", symbol=SYM, side=side,
                      order_type="LIMIT" if price else "MARKET", quantity=D(qty),
                      limit_price=D(price) if price else None, ts=T0)


def child(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), url, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def result(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_reopened_venue_sees_the_book_and_continues_its_sequences(pg_url: str) -> None:
    a = shared_venue(pg_url)
    try:
        a.on_market(quote("99.99", "100.00", "1", 0))
        filled = a.submit_order(order("m1", "BUY", "0.2"))
        resting = a.submit_order(order("l1", "BUY", "0.1", "99.00"))
        assert filled.status is OrderStatus.FILLED and resting.status is OrderStatus.ACCEPTED
        assert a.capabilities.blocking and a.book_path is None
    finally:
        a.close()
    b = shared_venue(pg_url)
    try:
        assert b.fetch_order("l1") == resting and b.fetch_order("m1") == filled
        assert b.fetch_order("never") is None  # proof of absence, across processes too
        with pytest.raises(VenueRejectedError, match="duplicate"):
            b.submit_order(order("m1", "BUY", "0.2"))
        assert b.submission_counts() == {"m1": 2, "l1": 1} and b.duplicate_submissions() == 1
        # the touch (what m1 took from it) is the book's: 0.8 left at 100.00
        st = b.submit_order(order("m2", "BUY", "1.0"))
        assert st.cum_qty == D("0.8") and st.venue_order_id == "paper-o3"
        assert [f.trade_id for f in b.fills()] == ["paper-1", "paper-2"]
        assert b.fetch_positions("acc") == {SYM: D("1.0")}
        assert b.cancel_order("l1").status is OrderStatus.CANCELED
        with pytest.raises(VenueRejectedError, match="unknown order"):
            b.cancel_order("never")
        with pytest.raises(VenueRejectedError, match="already CANCELED"):
            b.cancel_order("l1")
        assert b.submit_order(order("m3", "SELL", "0.1")).status is OrderStatus.FILLED  # the book is not left locked
    finally:
        b.close()


def test_another_process_fills_our_resting_order_and_we_get_the_event(pg_url: str) -> None:
    events = []
    v = shared_venue(pg_url)
    v.set_event_sink(events.append)
    try:
        v.on_market(quote("99.00", "101.00", "1", 0))
        assert v.submit_order(order("rest-1", "BUY", "0.5", "100.00")).status is OrderStatus.ACCEPTED
        other = result(child(pg_url, "quote", "99.98", "99.99", "2", "1"))  # crosses our 100.00 bid
        assert other["events"] == []  # not its order: no event in the other process
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(e.kind, e.state.client_order_id, e.state.status, e.fill.qty) for e in events] == [
            ("fill", "rest-1", OrderStatus.FILLED, D("0.5"))]
        assert v.fetch_order("rest-1").status is OrderStatus.FILLED
        assert v.touch(SYM).ask == D("99.99")  # the market the other process fed
    finally:
        v.close()


def test_processes_trading_at_once_take_the_displayed_size_once(pg_url: str, tmp_path: Path) -> None:
    """Two processes send 40 market BUYs of 0.05 each at one quote of size 1: together they fill
    exactly 1.0 (one book; per-process books would fill 2.0); each fleet-wide id is accepted once."""
    feeder = shared_venue(pg_url)
    try:
        feeder.on_market(quote("99.99", "100.00", "1", 0))
    finally:
        feeder.close()
    go = tmp_path / "go"
    kids = [child(pg_url, "buy", f"p{i}", "40", "0.05", "10", str(go)) for i in range(2)]
    time.sleep(1.0)
    go.touch()
    outs = [result(k) for k in kids]
    v = shared_venue(pg_url)
    try:
        fills = v.fill_records()
        assert sum(f.qty for _, f in fills) == D("1.0")
        assert len({f.trade_id for _, f in fills}) == len(fills) == 20
        answers = [a for o in outs for a in o["answers"].items()]
        shared = [(c, a) for c, a in answers if c.startswith("shared-")]
        assert len(shared) == 20
        for i in range(10):
            got = sorted(a[0] for c, a in shared if c == f"shared-{i}")
            assert got[1] == "REJECTED" and got[0] != "REJECTED", (i, got)  # one process got it, the other a duplicate
        vids = [a[2] for _, a in answers if a[2] is not None]
        assert len(vids) == len(set(vids)) == 70
        assert sorted(int(x.split("-o")[1]) for x in vids) == list(range(1, 71))  # gapless
        assert v.duplicate_submissions() == 10
        assert sum(D(a[1]) for _, a in answers if a[0] != "REJECTED") == D("1.0")
    finally:
        v.close()


def test_market_state_round_trips_as_json() -> None:
    from protocols.venues.paper.fill_model import FillModelConfig, L1Book, make_fill_model

    book = make_fill_model(CFG).on_quote(None, quote("99.99", "100.00", "1", 0))
    assert market_from_json(market_to_json(book)) == book
    l1 = make_fill_model(FillModelConfig(fill_model="nautilus_l1", instruments=CFG.instruments)).on_quote(
        None, quote("99.99", "100.00", "1", 0))
    assert isinstance(l1, L1Book) and market_from_json(market_to_json(l1)) == l1


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"paper venue book .*cannot reach the PostgreSQL server"):
        PgBook(f"postgresql://nobody@/x?host={tmp_path}", adapter_id="paper", fill_model_version="1")


def test_a_group_holds_the_book_and_writes_once(pg_url: str) -> None:
    """Group commit on a shared book (the adapter's venue worker): begin_batch locks the book and
    brings memory up to date, the calls write nothing until end_batch; market data inside the group
    writes the group's changes first and locks the book again; another venue sees it all after."""
    a, b = shared_venue(pg_url), shared_venue(pg_url)
    try:
        b.on_market(quote("99.99", "100.00", "1", 0))  # a has not seen this quote yet
        a.begin_batch()
        assert a.touch(SYM).ask == D("100.00")  # begin_batch applied b's market
        assert a.submit_order(order("g1", "BUY", "0.3")).cum_qty == D("0.3")
        assert a.submit_order(order("g2", "BUY", "0.1", "99.00")).status is OrderStatus.ACCEPTED
        assert b.fetch_order("g1") is None  # not written yet (and b does not wait on the lock to read)
        a.on_market(quote("98.99", "99.00", "1", 1))  # fills g2 and writes the group so far
        assert b.fetch_order("g2").status is OrderStatus.FILLED
        assert a.submit_order(order("g3", "SELL", "0.2")).status is OrderStatus.FILLED
        a.end_batch()
        assert b.fetch_order("g3").status is OrderStatus.FILLED
        assert b.submit_order(order("g4", "BUY", "0.5")).cum_qty == D("0.5")  # the book is not left locked
        a.begin_batch()
        a.end_batch()  # an empty group just ends the lock
        assert b.submit_order(order("g5", "BUY", "0.1")).status is OrderStatus.FILLED
        assert [f.trade_id for f in b.fills()] == [f"paper-{i}" for i in range(1, 6)]
    finally:
        a.close()
        b.close()


def test_an_order_the_book_cannot_store_is_rejected_naming_it_and_the_book_goes_on(pg_url: str) -> None:
    """Texts PostgreSQL refuses (a NUL character; a lone surrogate, which UTF-8 cannot encode) in
    an order are rejected ``VALUE_REFUSED`` naming the field, nothing booked, before matching; in
    a group the other orders are written. Before, such an order failed the venue's write
    (``FatalAdapterError``, a breaker failure) and in a group took every order of it down."""
    from protocols.venues.paper.venue import VALUE_REFUSED

    a, b = shared_venue(pg_url), shared_venue(pg_url)
    try:
        a.on_market(quote("99.99", "100.00", "5", 0))
        bad = [order("nul-\x00", "BUY", "0.1"), order("sur-\ud800", "BUY", "0.1"),
               order("acc", "BUY", "0.1").model_copy(update={"account_id": "a\x00c"})]
        for o, named in zip(bad, ["client_order_id holds a NUL character", "client_order_id holds a lone surrogate",
                                  "account_id holds a NUL character"], strict=True):
            with pytest.raises(VenueRejectedError, match=named) as info:
                a.submit_order(o)
            assert info.value.venue_code == VALUE_REFUSED
        assert a.submission_counts() == {} and a.fetch_order("acc") is None
        assert a.submit_order(order("ok", "BUY", "0.1")).status is OrderStatus.FILLED
        a.begin_batch()  # a group: only the refused order is left out
        assert a.submit_order(order("g1", "BUY", "0.1")).status is OrderStatus.FILLED
        with pytest.raises(VenueRejectedError, match="NUL") as info:
            a.submit_order(order("g-\x00", "BUY", "0.1"))
        assert info.value.venue_code == VALUE_REFUSED
        assert a.submit_order(order("g3", "BUY", "0.1", "99.00")).status is OrderStatus.ACCEPTED
        a.end_batch()
        assert b.fetch_order("g1").status is OrderStatus.FILLED and b.fetch_order("g3").status is OrderStatus.ACCEPTED
        assert b.submission_counts() == {"ok": 1, "g1": 1, "g3": 1}
    finally:
        a.close()
        b.close()


def test_a_value_the_books_write_refuses_is_a_value_refused_and_the_book_stays_usable(pg_url: str,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The write itself classifies what PostgreSQL refuses (SQLSTATE class 22 or unbindable, as the
    journals do: ``protocols._refused``): ``ValueRefused`` after the rollback, the lock released,
    the next change written; the venue rejects that one call ``VALUE_REFUSED``. Before: a
    ``BookError`` (or, for a lone surrogate, an unclassified error with the book left locked) and
    the order FAILED as a broken venue."""
    from protocols._refused import ValueRefused
    from protocols.venues.paper import venue as venue_mod
    from protocols.venues.paper.book import BookChanges, new_record
    from protocols.venues.paper.pg_book import BookError

    book = PgBook(pg_url, adapter_id="direct", fill_model_version="test")
    try:
        for coid, reason in (("r-1", "bad\x00reason"), ("r-2", "bad \ud800 reason")):
            o = order(coid, "BUY", "0.1", "99.00")
            rec = new_record(1, o, "direct-o1", "acc", OrderStatus.REJECTED, (), reason, T0.date(), T0)
            book.begin()
            with pytest.raises(ValueRefused, match="paper venue book 'direct' write refused a value") as info:
                book.commit(BookChanges(orders={coid: rec}))
            assert not isinstance(info.value, BookError)
        book.begin()  # not left locked, the connection usable
        good = new_record(1, order("r-3", "BUY", "0.1", "99.00"), "direct-o1", "acc", OrderStatus.ACCEPTED, (), None,
                          T0.date(), T0)
        book.commit(BookChanges(orders={"r-3": good}))
        assert book.load_order("r-3") is not None and book.load_order("r-1") is None
    finally:
        book.close()
    # the venue, for a value its own check does not catch (that check switched off here)
    monkeypatch.setattr(venue_mod, "order_text_problem", lambda order: None)
    a = shared_venue(pg_url)
    try:
        a.on_market(quote("99.99", "100.00", "5", 0))
        with pytest.raises(VenueRejectedError, match="refused a value") as info:
            a.submit_order(order("nul-\x00", "BUY", "0.1"))
        assert info.value.venue_code == venue_mod.VALUE_REFUSED
        assert a.submit_order(order("after", "BUY", "0.1")).status is OrderStatus.FILLED
        assert a.submission_counts() == {"after": 1}
    finally:
        a.close()
