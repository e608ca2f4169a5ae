"""The library internals the hot paths use live in one module per library and equal the public
constructors: pydantic's instance slots (protocols/model/pydantic_compat.py, pinned to the tested
pydantic versions) and building dataclasses without their ``__init__``
(protocols/model/dataclass_compat.py: ``SubmitOrder.evolve``, the paper venue's records, the risk
decision, the kernel's WakeAfter relay). Property-based: hypothesis draws the values (docs/DESIGN.md "House plan")."""

from __future__ import annotations

import dataclasses
import pickle
import re
from concurrent.futures import Future
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.orders.messages import SubmitOrder
from actors.orders.risk import RiskDecision, _new_decision
from protocols import (
    ErrorCode,
    ExecError,
    ExecutionContext,
    ExecutionReport,
    Fill,
    Liquidity,
    OrderIntent,
    OrderStatus,
    Quote,
    Side,
    VenueOrder,
    VenueOrderState,
)
from protocols.model.dataclass_compat import KEEP, builder, evolver, replacer
from protocols.model.pydantic_compat import (
    TESTED_PYDANTIC,
    check_pydantic_version,
    same_instance,
)
from protocols.model.reports import exec_error_of
from protocols.venues.paper.book import VenueOrderRecord, new_record
from protocols.venues.paper.fill_model import TopOfBook, _new_top_of_book
from protocols.venues.paper.trusted import make_fill, make_state

ROOT = Path(__file__).resolve().parents[2]

# -- strategies -----------------------------------------------------------------------------------

positive = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(1000000), places=8, allow_nan=False,
                       allow_infinity=False)
non_negative = st.decimals(min_value=Decimal(0), max_value=Decimal(1000), places=8, allow_nan=False,
                           allow_infinity=False)
stamps = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(lambda d: d.replace(tzinfo=UTC))
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=36)  # a client order id's limits


@st.composite
def fills(draw) -> Fill:
    return Fill(trade_id=draw(ids), qty=draw(positive), price=draw(positive), fee=draw(non_negative),
                fee_currency=draw(st.sampled_from(["USDT", "BTC"])), liquidity=draw(st.sampled_from(list(Liquidity))),
                ts=draw(stamps))


@st.composite
def venue_orders(draw) -> VenueOrder:
    limit = draw(st.one_of(st.none(), positive))
    return VenueOrder(client_order_id=draw(ids), account_id=draw(ids), symbol="BTC/USDT", side=draw(st.sampled_from(list(Side))),
                      order_type="MARKET" if limit is None else "LIMIT", quantity=draw(positive), limit_price=limit,
                      ts=draw(stamps))


# -- pydantic -------------------------------------------------------------------------------------


def test_the_installed_pydantic_is_a_tested_one() -> None:
    assert tuple(int(p) for p in metadata.version("pydantic").split(".")[:2]) in TESTED_PYDANTIC


@pytest.mark.parametrize("version", ["2.15.0", "3.0.0", "1.10.27", "2"])
def test_an_untested_pydantic_fails_loudly_at_import_naming_what_to_do(version: str) -> None:
    with pytest.raises(ImportError) as info:
        check_pydantic_version(version)
    assert f"pydantic {version} is installed" in str(info.value) and "TESTED_PYDANTIC" in str(info.value)


def test_only_the_compat_module_touches_pydantic_internals() -> None:
    private = re.compile(r"__pydantic_\w+__|BaseModel\.__dict__|__private_attributes__")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("actors", "protocols", "config", "flowroute")
        for path in (ROOT / folder).rglob("*.py") if path.name != "pydantic_compat.py"
        for n, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)
    ]
    assert offenders == []


@given(fill=fills())
def test_make_fill_equals_the_validating_constructor(fill: Fill) -> None:
    fast = make_fill(fill.trade_id, fill.qty, fill.price, fill.fee, fill.fee_currency, fill.liquidity, fill.ts)
    assert same_instance(fast, fill)
    assert pickle.loads(pickle.dumps(fast)) == fill


@given(order=venue_orders(), status=st.sampled_from([OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                                                       OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED]),
       fs=st.lists(fills(), max_size=3), reason=st.one_of(st.none(), st.text(max_size=20)), ts=stamps)
def test_make_state_equals_venue_order_state_of(order, status, fs, reason, ts) -> None:
    fs = tuple(fs)
    slow = VenueOrderState.of(order, venue_order_id="v-1", status=status, fills=fs, reject_reason=reason, ts=ts)
    assert same_instance(make_state(order, "v-1", status, fs, reason, ts), slow)


@given(code=st.sampled_from(list(ErrorCode)), message=st.text(max_size=2100),
       retry=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False)))
def test_exec_error_of_equals_exec_error_of_validating(code, message, retry) -> None:
    assert same_instance(exec_error_of(code, message, retry_after_s=retry), ExecError.of(code, message, retry_after_s=retry))


@given(cl=ids, account=ids, qty=positive, limit=st.one_of(st.none(), positive), ts=stamps, side=st.sampled_from(["BUY", "SELL"]))
def test_venue_order_from_intent_equals_validating(cl, account, qty, limit, ts, side) -> None:
    intent = OrderIntent(client_order_id=cl, symbol="BTC/USDT", side=side, order_type="MARKET" if limit is None else "LIMIT",
                         quantity=qty, limit_price=limit)
    context = ExecutionContext(mode="paper", account_id=account, timestamp=ts)
    slow = VenueOrder(client_order_id=cl, account_id=account, symbol="BTC/USDT", side=side, order_type=intent.order_type,
                      quantity=qty, limit_price=limit, time_in_force=intent.time_in_force, ts=ts)
    assert same_instance(VenueOrder.from_intent(intent, context), slow)


# -- dataclasses ----------------------------------------------------------------------------------


def _same_dataclass(fast, slow) -> bool:
    names = [f.name for f in dataclasses.fields(slow)]
    return (type(fast) is type(slow) and all(getattr(fast, n) is getattr(slow, n) for n in names)
            and fast == slow and repr(fast) == repr(slow) and hash(fast) == hash(slow)
            and pickle.loads(pickle.dumps(fast)) == slow)


_INTENT = OrderIntent(client_order_id="c-1", symbol="BTC/USDT", side="BUY", order_type="MARKET", quantity=Decimal(1))
_CONTEXT = ExecutionContext(mode="paper", account_id="a")


@st.composite
def submit_changes(draw) -> dict:
    pool = {
        "intent": st.just(_INTENT.model_copy(update={"client_order_id": "c-2"})),
        "context": st.just(ExecutionContext(mode="live", account_id="b")),
        "reply": st.builds(Future),
        "t0_ns": st.integers(min_value=0),
        "route": st.none(),
        "breaker": st.none(),
        "attempt": st.integers(min_value=0, max_value=10),
        "permit": st.none(),
        "arrival_px": st.one_of(st.none(), positive),
    }
    names = draw(st.lists(st.sampled_from(sorted(pool)), unique=True))
    return {name: draw(pool[name]) for name in names}


@given(changes=submit_changes(), attempt=st.integers(min_value=0, max_value=5))
def test_submit_order_evolve_equals_dataclasses_replace(changes: dict, attempt: int) -> None:
    order = SubmitOrder(_INTENT, _CONTEXT, Future(), 12345, None, None, attempt, None, Decimal("39433.62"))
    fast, slow = order.evolve(**changes), dataclasses.replace(order, **changes)
    assert type(fast) is SubmitOrder
    assert all(getattr(fast, f.name) is getattr(slow, f.name) for f in dataclasses.fields(SubmitOrder))
    assert fast == slow and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.attempt = 99  # type: ignore[misc]


@given(intent=st.sampled_from([_INTENT, _INTENT.model_copy(update={"client_order_id": "c-2"})]),
       px=st.one_of(st.none(), positive), attempt=st.integers(min_value=0, max_value=10), permit=st.sampled_from([None, "p"]),
       start=st.integers(min_value=0, max_value=5))
def test_the_stage_replacers_equal_dataclasses_replace(intent, px, attempt: int, permit, start: int) -> None:
    """The ledger's, the breaker's and the adapter's change of an order (``SubmitOrder.with_*``)
    are ``dataclasses.replace`` of those fields: every field the same object, frozen."""
    order = SubmitOrder(_INTENT, _CONTEXT, Future(), 12345, None, None, start, "held", Decimal("39433.62"))
    for fast, slow in ((order.with_intent_arrival_px(intent, px), dataclasses.replace(order, intent=intent, arrival_px=px)),
                       (order.with_permit(permit), dataclasses.replace(order, permit=permit)),
                       (order.with_attempt(attempt), dataclasses.replace(order, attempt=attempt))):
        assert type(fast) is SubmitOrder
        assert all(getattr(fast, f.name) is getattr(slow, f.name) for f in dataclasses.fields(SubmitOrder))
        assert fast == slow and repr(fast) == repr(slow)
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.attempt = 99  # type: ignore[misc]


def test_a_replacer_takes_fields_of_the_class_only_once() -> None:
    assert _same_dataclass(replacer(Point, "y")(Point(1, 2, ("a",)), 5), Point(1, 5, ("a",)))
    assert _same_dataclass(replacer(Point, "tags", "x")(Point(1, 2), ("b",), 3), Point(3, 2, ("b",)))
    for names in ((), ("z",), ("x", "x")):
        with pytest.raises(TypeError):
            replacer(Point, *names)


@given(t0=st.integers(min_value=0), attempt=st.integers(min_value=0, max_value=3), px=st.one_of(st.none(), positive),
       full=st.booleans())
def test_the_submit_order_builder_equals_submit_order(t0: int, attempt: int, px, full: bool) -> None:
    from actors.orders.messages import new_submit_order

    reply = Future()
    args: tuple = (_INTENT, _CONTEXT, reply, t0, None, None) + ((attempt, "permit", px) if full else ())
    fast, slow = new_submit_order(*args), SubmitOrder(*args)
    assert type(fast) is SubmitOrder
    assert all(getattr(fast, f.name) is getattr(slow, f.name) for f in dataclasses.fields(SubmitOrder))
    assert fast == slow and repr(fast) == repr(slow)


def test_evolve_refuses_an_unknown_field_as_replace_does() -> None:
    order = SubmitOrder(_INTENT, _CONTEXT, Future(), 1)
    with pytest.raises(TypeError):
        order.evolve(nonsense=1)  # type: ignore[call-arg]
    assert repr(KEEP) == "KEEP"


@given(seq=st.integers(min_value=0), order=venue_orders(), status=st.sampled_from(list(OrderStatus)),
       fs=st.lists(fills(), max_size=2), reason=st.one_of(st.none(), st.text(max_size=10)), ts=stamps)
def test_new_record_equals_order_record(seq, order, status, fs, reason, ts) -> None:
    args = (seq, order, "v-1", "x:" + order.account_id, status, tuple(fs), reason, ts.date(), ts)
    assert _same_dataclass(new_record(*args), VenueOrderRecord(*args))


@given(bid=positive, spread=positive, avail=st.tuples(non_negative, non_negative), halted=st.booleans(),
       full=st.booleans(), ts=stamps)
def test_new_top_of_book_equals_top_of_book(bid, spread, avail, halted, full, ts) -> None:
    quote = Quote(ts=ts, symbol="BTC/USDT", bid=bid, bid_size=Decimal(1), ask=bid + spread, ask_size=Decimal(1))
    args: tuple = (quote, avail[0], avail[1], halted)
    if full:
        args += (bid, bid + spread, ((Side.BUY, bid + spread, avail[1]),))
    assert _same_dataclass(_new_top_of_book(*args), TopOfBook(*args))


@given(reserved=non_negative, adjusted=st.one_of(st.none(), positive))
def test_the_risk_decision_builder_equals_risk_decision(reserved, adjusted) -> None:
    fast = _new_decision(True, "", reserved, adjusted, "", reserved)
    slow = RiskDecision(approved=True, reserved=reserved, adjusted_limit_price=adjusted, notional=reserved)
    assert _same_dataclass(fast, slow) and fast.__dict__ == slow.__dict__


@given(message=st.one_of(st.none(), st.integers(), st.text(max_size=5)), n=st.integers(min_value=0, max_value=3))
def test_the_wake_after_relay_builder_equals_wake_after(message, n) -> None:
    from actors.kernel.inbox import WakeAfter, _new_wake_after

    refs = tuple(None for _ in range(n))
    assert _same_dataclass(_new_wake_after(message, refs), WakeAfter(message, refs))


@given(fields=st.tuples(st.text(max_size=3), st.text(max_size=3), st.text(max_size=3), st.sampled_from(["IN_PROGRESS", "COMPLETED"]),
                        st.one_of(st.none(), st.text(max_size=3)), st.floats(allow_nan=False), st.floats(allow_nan=False),
                        st.text(max_size=2), st.text(max_size=2),
                        st.text(max_size=2)),
       status=st.sampled_from(["COMPLETED", "UNKNOWN"]), report=st.one_of(st.none(), st.text(max_size=3)), now=st.floats())
def test_the_memory_journals_record_builders_equal_idempotency_record(fields: tuple, status: str, report, now: float) -> None:
    from actors.journal.sqlite import IdempotencyRecord, _completed_record, _new_record

    record = IdempotencyRecord(*fields)
    assert _same_dataclass(_new_record(*fields), record)
    fast, slow = _completed_record(record, status, report, now), dataclasses.replace(record, status=status, report_json=report, updated_at=now)
    assert type(fast) is IdempotencyRecord and all(getattr(fast, f) is getattr(slow, f) for f in IdempotencyRecord.__slots__)


def _per_order_builders() -> list[tuple]:
    """(builder, class, positional args, keyword args) of the messages made on every order."""
    from actors.breaker.breaker import CallOutcome
    from actors.breaker.messages import CallFinished, new_call_finished
    from actors.execution.messages import ExecuteOrder, VenueCallCompleted, new_execute_order, new_venue_call_completed
    from actors.idempotency.messages import CompleteOrder, new_complete_order
    from actors.orders.messages import OrderFinished, OrderSent, new_order_finished, new_order_sent
    from protocols.venues.fix._codec import Framer, encode
    from protocols.venues.fix._session import Deliver, Send, _new_deliver, _new_send

    order = SubmitOrder(_INTENT, _CONTEXT, Future(), 1)
    report = ExecutionReport(client_order_id="c-1", account_id="a", status=OrderStatus.FILLED)
    state = VenueOrderState(client_order_id="c-1", venue_order_id="v-1", symbol="BTC/USDT", side=Side.BUY,
                            status=OrderStatus.FILLED, quantity=Decimal(1), cum_qty=Decimal(1), leaves_qty=Decimal(0))
    frame = Framer().feed(encode("FIX.4.4", "8", [(34, 2), (49, "EXEC"), (56, "US"), (11, "c-1")]))[0]
    return [
        (new_execute_order, ExecuteOrder, (order,), {}),
        (new_venue_call_completed, VenueCallCompleted, (7, state, None, 0.25), {}),
        (new_venue_call_completed, VenueCallCompleted, (8,), {"error": ValueError("x")}),
        (new_call_finished, CallFinished, ("permit", CallOutcome.SUCCESS, 0.001, "c-1"), {}),
        (new_complete_order, CompleteOrder, ("a", "c-1", report), {}),
        (new_complete_order, CompleteOrder, ("a", "c-1", report), {"unknown": True}),
        (new_order_finished, OrderFinished, (), {"report": report, "adapter_id": "fix", "venue_state": state, "metered": True}),
        (new_order_finished, OrderFinished, (report, "fix"), {"cause": "E_X"}),
        (new_order_sent, OrderSent, ("c-1", "a", "fix", 1), {}),
        (_new_send, Send, (b"8=FIX.4.4\x01", "D", 41), {}),
        (_new_deliver, Deliver, (frame, True), {}),
    ]


def test_the_per_order_message_builders_equal_their_constructors() -> None:
    """Every message an order's path makes with a builder (the adapter's outcome facts, the
    breaker's ExecuteOrder, the FIX session's Send and Deliver) is the constructor's: same class,
    fields, ==, repr, hash and pickling, with positional and keyword arguments and defaults."""
    from actors.execution.messages import ExecuteOrder as ExecuteOrder_
    from protocols.venues.fix._session import Deliver as Deliver_

    for build, cls, args, kwargs in _per_order_builders():
        fast, slow = build(*args, **kwargs), cls(*args, **kwargs)
        if cls not in (ExecuteOrder_, Deliver_) and "error" not in kwargs:
            assert _same_dataclass(fast, slow), cls
        else:  # a reply future, an exception or a received frame: not pickled
            names = [f.name for f in dataclasses.fields(slow)]
            assert type(fast) is cls and all(getattr(fast, n) is getattr(slow, n) for n in names) and fast == slow
            assert repr(fast) == repr(slow)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(fast, dataclasses.fields(slow)[0].name, None)


def test_a_builder_is_refused_for_a_class_whose_constructor_does_more() -> None:
    @dataclasses.dataclass(frozen=True)
    class Normalised:
        x: int

        def __post_init__(self) -> None:
            object.__setattr__(self, "x", abs(self.x))

    @dataclasses.dataclass
    class Derived:
        x: int
        y: int = dataclasses.field(init=False, default=0)

    for cls in (Normalised, Derived, int):
        with pytest.raises(TypeError):
            builder(cls)
        with pytest.raises(TypeError):
            evolver(cls)
        with pytest.raises(TypeError):
            replacer(cls, "x")


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 7
    tags: tuple = ()


def test_a_builder_keeps_the_defaults_of_the_constructor() -> None:
    build = builder(Point)
    assert _same_dataclass(build(1), Point(1)) and _same_dataclass(build(1, tags=("a",)), Point(1, tags=("a",)))
    assert _same_dataclass(evolver(Point)(Point(1), y=2), Point(1, 2))
