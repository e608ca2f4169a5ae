"""Text no journal can hold is decided where it enters (docs/DESIGN.md "What written means").

Two kinds of text cannot be stored everywhere: a NUL character (PostgreSQL's text refuses it) and a
lone UTF-16 surrogate (UTF-8 cannot encode it, so neither SQLite, PostgreSQL nor JSON can; a JSON
venue's ``"\\ud800"`` escape makes one). From a venue (its reject reason, FIX Text(58), the ids and
symbol of its reports and fills) such text is kept, escaped (``protocols.storable_text``: ``\\x00``,
``\\udXXX``): the order's report, its journal rows and its cached idempotency answer all hold it,
nothing is refused, nothing lost. From the user (an intent's metadata, a context's mode) it is
refused: E_EXEC_VALIDATION naming the field, and ``Runtime.submit`` never raises.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from _adapters import TestAdapter
from conftest import EventLog, ctx, limit, registry_of, wait_until
from hypothesis import given
from hypothesis import strategies as st

from protocols import (
    ErrorCode,
    Fill,
    JournalRowRefused,
    Liquidity,
    OrderStatus,
    Side,
    VenueEvent,
    VenueOrder,
    VenueOrderState,
    VenueRejectedError,
    storable_text,
    storable_venue_event,
    storable_venue_state,
    text_problem,
)

BAD = "bad \x00 and \ud800 here"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
SHOWN = "bad \\x00 and \\ud800 here"


class RejectingVenue(TestAdapter):
    """Rejects ``state-*`` orders with a REJECTED state, ``raise-*`` ones with VenueRejectedError; both say :data:`BAD`."""

    def submit_order(self, order: VenueOrder) -> VenueOrderState:
        if order.client_order_id.startswith("state-"):
            return VenueOrderState.of(order, venue_order_id="V-1", status=OrderStatus.REJECTED, reject_reason=BAD)
        if order.client_order_id.startswith("raise-"):
            raise VenueRejectedError(BAD, venue_code="X")
        return super().submit_order(order)


def ledger_rows(path, sql: str, params: tuple) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_storable_text_escapes_only_what_no_journal_can_hold() -> None:
    assert text_problem("fine é ü 日本") is None and storable_text("plain") == "plain"
    assert text_problem("a\x00b") == "a NUL character" and text_problem("a\udc80") == "a lone surrogate"
    assert storable_text(BAD) == SHOWN and text_problem(storable_text(BAD)) is None
    assert storable_text("ok ü \U0001f600") == "ok ü \U0001f600"  # a real (paired) character is kept


@pytest.mark.parametrize("cl", ["state-1", "raise-1"])
def test_a_venue_reject_reason_no_journal_can_hold_is_kept_escaped(settings_factory, make_runtime, cl) -> None:
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, routing={"policy": {"paper": "test"}})
    rt = make_runtime(settings, registry=registry_of(RejectingVenue()))
    events = EventLog()
    rt.subscribe(events, (JournalRowRefused,))
    report = rt.submit(limit(cl), ctx()).result(timeout=5)
    assert report.status is OrderStatus.REJECTED and report.error.code is ErrorCode.E_EXEC_BROKER_REJECTED
    assert SHOWN in report.error.message, report.error.message
    report.model_dump_json()  # JSON holds it
    rt.flush()
    assert events.of(JournalRowRefused) == []
    messages = ledger_rows(rt.ledger_journal_path, "SELECT error_message FROM order_events WHERE client_order_id = ? "
                                                   "AND error_message IS NOT NULL", (cl,))
    assert messages and all(m == (report.error.message,) for m in messages)
    # the completion was cached: the same intent again is a replay of the answer, not "in flight"
    again = rt.submit(limit(cl), ctx()).result(timeout=5)
    assert again.replay is True and again.error.message == report.error.message, again


def test_venue_ids_no_journal_can_hold_are_kept_escaped_and_a_fill_counts_once(settings_factory, make_runtime) -> None:
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, routing={"policy": {"paper": "test"}})
    venue = TestAdapter(script=["ambiguous_sent"], default="accept")
    rt = make_runtime(settings, registry=registry_of(venue))
    events = EventLog()
    rt.subscribe(events, (JournalRowRefused,))
    # booked, but the answer was lost: UNKNOWN, no venue order id yet (it comes with the venue's event)
    assert rt.submit(limit("ids"), ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    rt.flush()
    resting = venue.fetch_order("ids")
    # an adapter that builds its models without validation (model_construct, model_copy) can hand on any text
    fill = Fill(trade_id="t-1", qty=resting.quantity, price=Decimal("100"), fee=Decimal("0.01"), fee_currency="US\x00",
                liquidity=Liquidity.TAKER, ts=resting.ts).model_copy(update={"trade_id": "t-\ud800"})
    filled = resting.model_copy(update={"venue_order_id": "V-\x00\udfff", "fills": (fill,), "cum_qty": resting.quantity,
                                        "leaves_qty": Decimal(0), "avg_px": Decimal("100"), "status": OrderStatus.FILLED})
    venue.emit("fill", filled, fill)
    venue.emit("fill", filled, fill)  # the same trade again: counted once (the same escape both times)
    wait_until(lambda: rt.order("ids").status is OrderStatus.FILLED, what="the venue's fill applied")
    rt.flush()
    order = rt.order("ids")
    assert order.venue_order_id == "V-\\x00\\udfff" and order.cum_qty == resting.quantity
    assert [f.trade_id for f in order.fills] == ["t-\\ud800"]
    assert events.of(JournalRowRefused) == []
    path = rt.ledger_journal_path
    assert ledger_rows(path, "SELECT trade_id, fee_currency FROM fills WHERE client_order_id = ?", ("ids",)) == [("t-\\ud800", "US\\x00")]
    assert ledger_rows(path, "SELECT venue_order_id FROM order_events WHERE client_order_id = ? ORDER BY seq",
                       ("ids",))[-1] == ("V-\\x00\\udfff",)


@pytest.mark.parametrize(("intent_update", "context", "field"), [
    ({"metadata": {"note": "x\ud800"}}, None, "intent.metadata"),
    ({"metadata": {"no\x00te": "x"}}, None, "intent.metadata"),
    ({"metadata": {"note": "x\x00"}}, None, "intent.metadata"),
    ({}, {"mode": "pa\x00per", "account_id": "acc-1"}, "context.mode"),
])
def test_user_text_no_journal_can_hold_is_refused_naming_the_field(make_runtime, intent_update, context, field) -> None:
    rt = make_runtime(durable=True)
    intent = {**limit("u-1").model_dump(), **intent_update}
    report = rt.submit(intent, context or ctx()).result(timeout=5)  # never raises
    assert report.status is OrderStatus.DENIED and report.error.code is ErrorCode.E_EXEC_VALIDATION, report
    assert report.error.message.startswith(field) and ("NUL" in report.error.message or "surrogate" in report.error.message)
    report.model_dump_json()
    assert rt.submit(limit("u-2"), ctx()).result(timeout=5).status is OrderStatus.ACCEPTED  # nothing else is affected


def test_a_venue_answer_at_start_up_recovery_is_kept_escaped(settings_factory, make_runtime) -> None:
    """The third way a venue's text enters: recovery's lookup at start (``actors/runtime/recovery.py``)."""
    settings = settings_factory(durable=True, journal={"synchronous": "NORMAL"}, routing={"policy": {"paper": "test"}})
    rt = make_runtime(settings, registry=registry_of(TestAdapter(script=["ambiguous_sent"], default="accept")))
    intent = limit("rec-1")
    assert rt.submit(intent, ctx()).result(timeout=5).status is OrderStatus.UNKNOWN
    rt.flush()
    rt.stop()
    order = VenueOrder.from_intent(intent, ctx())
    fill = Fill(trade_id="t-1", qty=intent.quantity, price=Decimal("100"), fee=Decimal("0.01"), fee_currency="USDT",
                liquidity=Liquidity.TAKER, ts=order.ts).model_copy(update={"trade_id": "t-\x00"})
    found = VenueOrderState.of(order, venue_order_id="V-\ud800", status=OrderStatus.FILLED, fills=(fill,))
    rt = make_runtime(settings, registry=registry_of(TestAdapter(fetch_script=[found] * 5)))
    events = EventLog()
    rt.subscribe(events, (JournalRowRefused,))
    rt.flush()
    recovered = rt.order("rec-1")
    assert recovered.status is OrderStatus.FILLED and recovered.venue_order_id == "V-\\ud800", recovered
    assert [f.trade_id for f in recovered.fills] == ["t-\\x00"]
    assert events.of(JournalRowRefused) == [] and rt.health().refused_rows == {}
    assert ledger_rows(rt.ledger_journal_path, "SELECT trade_id FROM fills WHERE client_order_id = ?", ("rec-1",)) == [("t-\\x00",)]


def _storable_venue_state_field_by_field(state: VenueOrderState) -> tuple[VenueOrderState, tuple[str, ...]]:
    """What ``storable_venue_state`` did before it told the common case at once: every field checked."""
    fields: list[str] = []
    update: dict = {}
    for name in ("client_order_id", "venue_order_id", "symbol", "reject_reason"):
        value = getattr(state, name)
        if value is not None and text_problem(value) is not None:
            update[name] = storable_text(value)
            fields.append(name)
    fills = []
    for i, f in enumerate(state.fills):
        fill_update = {name: storable_text(getattr(f, name)) for name in ("trade_id", "fee_currency")
                       if text_problem(getattr(f, name)) is not None}
        fields.extend(f"fills[{i}].{name}" for name in fill_update)
        fills.append(f.model_copy(update=fill_update) if fill_update else f)
    if any(a is not b for a, b in zip(fills, state.fills, strict=True)):
        update["fills"] = tuple(fills)
    if not update:
        return state, ()
    return state.model_copy(update=update), tuple(fields)


# ASCII mostly, with what the shortcut must step aside for: NUL, a lone surrogate, other non-ASCII
_TEXT = st.text(alphabet=st.one_of(st.characters(min_codepoint=32, max_codepoint=126),
                                   st.sampled_from(["\x00", "\ud800", "\udfff", "é", "日", "\U0001f600"])),
                min_size=1, max_size=12)


@given(cid=_TEXT, vid=_TEXT, symbol=_TEXT, reason=st.none() | _TEXT,
       fills=st.lists(st.tuples(_TEXT, st.sampled_from(["", "USDT", "\x00", "é", "\udc80"])), max_size=3))
def test_storable_venue_state_tells_the_common_case_as_checking_every_field_does(cid, vid, symbol, reason, fills) -> None:
    """The joined-text shortcut gives exactly the field-by-field answer: the same state (itself,
    not a copy, when nothing needed escaping) and the same field names."""
    # built without validation, as a venue's trusted builders do (pydantic refuses a lone surrogate)
    state = VenueOrderState.model_construct(
        client_order_id=cid, venue_order_id=vid, symbol=symbol, side=Side.BUY, status=OrderStatus.ACCEPTED,
        quantity=Decimal("1"), cum_qty=Decimal(0), leaves_qty=Decimal("1"), avg_px=None, reject_reason=reason,
        ts=T0, fills=tuple(Fill.model_construct(trade_id=t, qty=Decimal("0.1"), price=Decimal("100"), fee=Decimal(0),
                                                fee_currency=c, liquidity=Liquidity.TAKER, ts=T0) for t, c in fills))
    fast, fast_fields = storable_venue_state(state)
    slow, slow_fields = _storable_venue_state_field_by_field(state)
    assert fast_fields == slow_fields
    assert fast == slow
    assert (fast is state) == (slow is state)
    # a pushed event: its state and its own fill (the FIX venue's fill of the report)
    if state.fills:
        event = VenueEvent(adapter_id="v", kind="fill", state=slow, fill=state.fills[-1]).model_copy(update={"state": state})
        out, event_fields = storable_venue_event(event)
        extra = [f"fill.{n}" for n in ("trade_id", "fee_currency") if text_problem(getattr(state.fills[-1], n)) is not None]
        assert event_fields == slow_fields + tuple(extra)
        assert out.state == slow and (out is event) == (not event_fields)
