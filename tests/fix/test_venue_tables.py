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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import FakeClock
from protocols import OrderStatus, Side, VenueOrder, VenueRejectedError
from protocols.venues.fix._codec import Framer, encode
from protocols.venues.fix._session import ACTIVE
from protocols.venues.fix._venue import DUPLICATE_CLIENT_ORDER_ID, FixVenue, FixVenueConfig, _dec, _Order

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


_DECIMAL_TEXTS = st.sampled_from(["", "0", "0.5", "0.50", "1", "100", "1e2", "-1", "abc", "NaN", "Infinity", "-0", "101.25", "00.5"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([None, *"0", "1", "2", "F"]), st.fixed_dictionaries(
    {tag: st.one_of(st.none(), _DECIMAL_TEXTS if tag in (32, 31, 6) else _DECIMAL_TEXTS.filter(lambda t: t != "-1"))
     for tag in (32, 31, 14, 151, 6)})), min_size=1, max_size=4))
def test_an_execution_reports_decimal_fields_are_what_dec_reads(wired, reports) -> None:
    """LastQty 32, LastPx 31, CumQty 14, LeavesQty 151 and AvgPx 6, missing, empty, not numbers,
    not finite, zero or signed (a negative CumQty or LeavesQty is refused by the state's
    validation, with or without the cache: not drawn), read through the cache: the order holds what ``_dec`` reads of
    each, and a fill is booked exactly when both LastQty and LastPx read above zero."""
    venue, _theirs = wired
    cid = f"o-{len(venue._orders)}"
    venue._orders[cid] = _Order(cid, "BTC/USDT", Side.BUY, D("5"), leaves_qty=D("5"))
    want_fills = 0
    for k, (exec_type, values) in enumerate(reports):
        fields: list[tuple[int, object]] = [(34, 1), (49, "EXEC"), (52, "20260105-12:00:00.000"), (56, "CLIENT1"), (11, cid),
                                            (17, f"E-{k}"), (39, "1")]
        if exec_type is not None:
            fields.append((150, exec_type))
        fields += [(tag, text) for tag, text in values.items() if text is not None]
        raw = encode("FIX.4.4", "8", fields)
        (frame,) = Framer().feed(raw)
        order = venue._orders[cid]
        before = (order.cum_qty, order.leaves_qty)
        venue._on_execution_report(frame, False)
        order = venue._orders[cid]
        qty, px = (_dec(values[32]) if values[32] is not None else None), (_dec(values[31]) if values[31] is not None else None)
        want_fills += bool(exec_type in ("1", "2", "F") and qty and qty > 0 and px and px > 0)
        cum = _dec(values[14]) if values[14] is not None else None
        leaves = _dec(values[151]) if values[151] is not None else None
        avg = _dec(values[6]) if values[6] is not None else None
        assert order.cum_qty == (cum if cum is not None else before[0])
        assert order.leaves_qty == (leaves if leaves is not None else before[1])
        assert order.avg_px == (avg if avg and order.cum_qty > 0 else None)
        assert len(order.fills) == want_fills
