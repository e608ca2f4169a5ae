"""The FIX venue's per-order tables, driven through its asynchronous path over a socket pair (no
peer process): what a NewOrderSingle's write records, and what retiring a finished order drops.

The write records the order's ClOrdID as sent before its bytes exist, so a second submit of the
same id is refused as a duplicate even while the first is unanswered; retiring a finished order
(``max_finished_orders``) drops it with the ClOrdIDs of its OrderCancelRequests and keeps its
fills in the venue's positions.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from actors import FakeClock
from protocols import OrderStatus, VenueOrder, VenueRejectedError
from protocols.venues.fix._codec import Framer, encode
from protocols.venues.fix._session import ACTIVE
from protocols.venues.fix._venue import DUPLICATE_CLIENT_ORDER_ID, FixVenue, FixVenueConfig

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def _order(cid: str, side: str = "BUY", qty: str = "1") -> VenueOrder:
    return VenueOrder(client_order_id=cid, account_id="a", symbol="BTC/USDT", side=side, order_type="LIMIT",
                      quantity=D(qty), limit_price=D("100"), ts=T0)


@pytest.fixture
def wired(tmp_path: Path):
    """A venue whose connection writes into one end of a socket pair (the other end is returned)."""
    clock = FakeClock(wall_start=T0)
    venue = FixVenue("fix", FixVenueConfig(host="127.0.0.1", port=1, begin_string="FIX.4.4", sender_comp_id="CLIENT1",
                                           target_comp_id="EXEC", store_dir=tmp_path, request_timeout_s=30,
                                           max_finished_orders=1), clock=clock)
    ours, theirs = socket.socketpair()
    venue.session.state = ACTIVE
    venue.connection._sock = ours
    try:
        yield venue, theirs
    finally:
        venue.connection._sock = None
        ours.close()
        theirs.close()
        venue.close()


def _sent_frames(theirs: socket.socket) -> list:
    theirs.settimeout(2)
    return Framer().feed(theirs.recv(65536))


def _fill_report(venue: FixVenue, cid: str, qty: str, exec_id: str) -> None:
    raw = encode("FIX.4.4", "8", [(34, 1), (49, "EXEC"), (52, "20260105-12:00:00.000"), (56, "CLIENT1"), (11, cid),
                                  (17, exec_id), (150, "F"), (39, "2"), (32, qty), (31, "100"), (14, qty), (151, "0"),
                                  (6, "100"), (55, "BTC/USDT"), (54, "1"), (38, qty), (37, f"V-{cid}")])
    (frame,) = Framer().feed(raw)
    venue._on_execution_report(frame, False)


def test_a_written_order_id_is_refused_again_before_its_answer(wired) -> None:
    venue, theirs = wired
    answers: list = []
    assert venue.send_order(_order("o-1"), lambda result, error: answers.append((result, error))) is True
    (frame,) = _sent_frames(theirs)
    assert frame.msg_type == "D" and frame.get(11) == "o-1" and frame.seq() == venue._submits["o-1"].seq
    assert venue._by_seq[frame.seq()] is venue._submits["o-1"]
    assert answers == []  # unanswered: only the write recorded it as sent
    venue._submits.pop("o-1")  # the first request's wait no longer shields the id: the sent set alone refuses it
    venue._orders.pop("o-1")
    assert venue.send_order(_order("o-1"), lambda result, error: answers.append((result, error))) is True
    (_, error), = answers
    assert isinstance(error, VenueRejectedError) and error.venue_code == DUPLICATE_CLIENT_ORDER_ID


def test_a_retired_order_takes_its_cancel_ids_along_and_leaves_its_fills_in_the_positions(wired) -> None:
    venue, theirs = wired
    answers: dict[str, list] = {}
    for cid in ("o-1", "o-2"):
        assert venue.send_order(_order(cid), lambda result, error, cid=cid: answers.setdefault(cid, []).append(result))
    assert venue.send_cancel("o-1", lambda result, error: answers.setdefault("cancel", []).append(error)) is True
    assert venue.send_cancel("o-1", lambda result, error: answers.setdefault("cancel", []).append(error)) is True
    cancel_ids = venue._orders["o-1"].cancel_ids
    assert len(cancel_ids) == 2 and all(venue._cancel_ids[c] == "o-1" for c in cancel_ids)
    assert [f.msg_type for f in _sent_frames(theirs)] == ["D", "D", "F", "F"]
    _fill_report(venue, "o-1", "1", "E-1")
    assert answers["o-1"][0].status is OrderStatus.FILLED
    # the cancels cannot succeed any more: answered as too late, so nothing waits on o-1
    assert [type(e) for e in answers["cancel"]] == [VenueRejectedError]
    venue._cancels.pop("o-1", None)
    _fill_report(venue, "o-2", "0.5", "E-2")  # the second finished order: o-1 is the oldest beyond the one kept
    assert "o-1" not in venue._orders and not any(c in venue._cancel_ids for c in cancel_ids)
    assert venue.counters["orders_retired"] == 1
    assert dict(venue.fetch_positions()) == {"BTC/USDT": D("1.5")}
