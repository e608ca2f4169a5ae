"""The paper venue's fast per-order path builds exactly what the validating, general path builds.

``PaperVenue.submit_order`` skips pydantic re-validation of the values it derives from validated
data (``protocols/venues/paper/trusted.py``), plans arrivals as plain triples
(``FillModel._plan_arrival``), memoises the rounded touch price per quote, builds frozen
dataclasses through their slot descriptors and folds positions/balances from the fill log when
they are read. These tests hold each shortcut to the slow, obviously-right construction:
``Fill(...)`` / ``VenueOrderState.of(...)`` validation, ``FillModel.check`` + ``FillModel.arrival``,
``VenueOrderRecord(...)`` / ``TopOfBook(...)`` and positions summed from the fills.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from protocols import (
    Instrument,
    Liquidity,
    OrderStatus,
    Quote,
    Side,
    Trade,
    VenueOrder,
    VenueOrderState,
    VenueRejectedError,
)
from protocols.model.reports import Fill
from protocols.venues import (
    DryRunVenue,
    FillModel,
    FillModelConfig,
    PaperVenue,
    ShadowVenue,
    TopOfBook,
    make_fill_model,
    round_price,
)
from protocols.venues.paper import trusted as _trusted
from protocols.venues.paper.book import VenueOrderRecord, new_record
from protocols.venues.paper.fill_model import _new_top_of_book

T0 = datetime(2021, 1, 8, 23, 59, 0, tzinfo=UTC)
INST = {
    "BTC/USDT": Instrument(symbol="BTC/USDT", tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D("5")),
    "TINY/USD": Instrument(symbol="TINY/USD", tick_size=D("0.01"), lot_size=D("1"), min_notional=D("0")),
}


def same(a, b) -> bool:
    """Equal, and equal down to Decimal representation, field order, fields set and JSON."""
    if isinstance(a, Fill | VenueOrderState):
        return (
            type(a) is type(b)
            and a == b
            and repr(a) == repr(b)
            and list(a.__dict__) == list(b.__dict__)
            and a.model_fields_set == b.model_fields_set
            and a.model_dump_json() == b.model_dump_json()
        )
    return a == b and repr(a) == repr(b)


def test_trusted_construction_is_active_under_this_pydantic():
    assert _trusted._ENABLED, "the import-time self-check switched the trusted path off: every Fill is validated"


@pytest.mark.parametrize(
    "args",
    [
        ("paper-1", D("0.001"), D("39433.62"), D("0.00019717"), "USDT", Liquidity.TAKER, T0),
        ("p-2", D("1E+1"), D("0.01"), D("0E-8"), "", Liquidity.MAKER, T0),
        ("x" * 64, D("5"), D("100.0"), D("0"), "USD", Liquidity.TAKER, T0 + timedelta(microseconds=250)),
    ],
)
def test_make_fill_is_the_validated_fill(args):
    names = ("trade_id", "qty", "price", "fee", "fee_currency", "liquidity", "ts")
    assert same(_trusted.make_fill(*args), Fill(**dict(zip(names, args, strict=False))))


@pytest.mark.parametrize(
    "change",
    [
        {"trade_id": "x" * 65},  # too long for Fill.trade_id
        {"trade_id": ""},
        {"price": D(0)},  # a SELL touch below one tick rounds to 0
        {"qty": D(0)},
        {"fee": D("-0.1")},
    ],
)
def test_make_fill_outside_the_constraints_raises_like_validation(change):
    kw = dict(trade_id="p-1", qty=D("1"), price=D("1"), fee=D(0), fee_currency="USD", liquidity=Liquidity.TAKER, ts=T0)
    kw.update(change)
    with pytest.raises(ValidationError) as fast:
        _trusted.make_fill(*kw.values())
    with pytest.raises(ValidationError) as slow:
        Fill(**kw)
    assert str(fast.value) == str(slow.value)


def test_make_fill_and_state_normalise_a_non_utc_timestamp_like_validation():
    cet = T0.astimezone(timezone(timedelta(hours=1)))
    fill = _trusted.make_fill("p-1", D("1"), D("2"), D(0), "USD", Liquidity.TAKER, cet)
    assert same(fill, Fill(trade_id="p-1", qty=D("1"), price=D("2"), fee=D(0), fee_currency="USD",
                           liquidity=Liquidity.TAKER, ts=cet))
    assert fill.ts.tzinfo is UTC
    order = VenueOrder(client_order_id="c", account_id="a", symbol="BTC/USDT", side="SELL", order_type="MARKET",
                       quantity=D("2"), ts=T0)
    state = _trusted.make_state(order, "v-1", OrderStatus.PARTIALLY_FILLED, (fill,), None, cet)
    assert same(state, VenueOrderState.of(order, venue_order_id="v-1", status=OrderStatus.PARTIALLY_FILLED,
                                          fills=(fill,), ts=cet))


@pytest.mark.parametrize("status", [s for s in OrderStatus if s.is_open or s.is_terminal])
@pytest.mark.parametrize("n_fills", [0, 1, 3])
def test_order_record_state_is_venue_order_state_of(status, n_fills):
    order = VenueOrder(client_order_id="c-9", account_id="a", symbol="BTC/USDT", side="BUY", order_type="LIMIT",
                       quantity=D("0.010"), limit_price=D("100.00"), ts=T0)
    fills = tuple(
        Fill(trade_id=f"p-{i}", qty=D("0.003"), price=D("100.00") - i, fee=D("0.00000300"), fee_currency="USDT", ts=T0)
        for i in range(n_fills)
    )
    reason = "why" if status is OrderStatus.REJECTED else None
    rec = VenueOrderRecord(seq=3, order=order, venue_order_id="paper-o3", account="a", status=status, fills=fills,
                      reject_reason=reason, day=T0.date(), ts=T0)
    slow = VenueOrderState.of(order, venue_order_id="paper-o3", status=status, fills=fills, reject_reason=reason, ts=T0)
    assert same(rec.state(), slow)


def test_new_record_and_new_top_of_book_are_the_frozen_dataclasses():
    order = VenueOrder(client_order_id="c", account_id="a", symbol="BTC/USDT", side="BUY", order_type="MARKET",
                       quantity=D("1"), ts=T0)
    args = (7, order, "paper-o7", "x:a", OrderStatus.FILLED, (), None, date(2021, 1, 8), T0)
    fast, slow = new_record(*args), VenueOrderRecord(*args)
    assert same(fast, slow) and hash(fast) == hash(slow)
    canceled = OrderStatus.CANCELED
    assert dataclasses.replace(fast, status=canceled) == dataclasses.replace(slow, status=canceled)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.status = OrderStatus.CANCELED  # type: ignore[misc]
    quote = Quote(ts=T0, symbol="BTC/USDT", bid=D("1"), bid_size=D("1"), ask=D("2"), ask_size=D("1"))
    book = _new_top_of_book(quote, D("1"), D("0.5"), False)
    slow_book = TopOfBook(quote, D("1"), D("0.5"), False)
    assert same(book, slow_book) and hash(book) == hash(slow_book)
    full = (quote, D("1"), D("0.5"), True, D("1"), D("2"), ((Side.BUY, D("2.5"), D("1")),))
    assert same(_new_top_of_book(*full), TopOfBook(*full))
    with pytest.raises(dataclasses.FrozenInstanceError):
        book.halted = True  # type: ignore[misc]


def test_touch_memo_follows_each_new_quote_side_and_instrument():
    model = FillModel(FillModelConfig(instruments=INST, market_remainder="expire"))
    books = {}
    rnd = random.Random(5)
    for i in range(300):
        sym = rnd.choice(list(INST))
        q = Quote(ts=T0 + timedelta(seconds=i), symbol=sym, bid=D(rnd.randint(1, 2000)) / 1000,
                  ask=D(rnd.randint(2001, 4000)) / 1000, bid_size=D("1000"), ask_size=D("1000"))
        if rnd.random() < 0.5:
            books[sym] = model.on_quote(books.get(sym), q)
        for side in rnd.sample([Side.BUY, Side.SELL], 2):
            sym = rnd.choice(list(INST))
            book = books.get(sym)
            if book is None:
                continue
            o = VenueOrder(client_order_id=f"c{i}", account_id="a", symbol=sym, side=side, order_type="MARKET",
                           quantity=INST[sym].lot_size, ts=T0)
            if model.check(o, book) is not None:
                continue
            touch = book.quote.ask if side is Side.BUY else book.quote.bid
            expected = round_price(touch, INST[sym].tick_size, side)
            arrival = model.arrival(o, book)
            assert arrival.executions and same(arrival.executions[0].price, expected)


def _cfg(rnd: random.Random) -> FillModelConfig:
    return FillModelConfig(
        maker_fee_bps=rnd.choice([D(0), D("2")]),
        taker_fee_bps=rnd.choice([D(0), D("5"), D("7.77")]),
        fill_model=rnd.choice(["flowroute", "flowroute", "nautilus_l1"]),
        market_remainder=rnd.choice(["walk", "expire"]),
        trades_move_touch=rnd.choice([True, False]),
        depth_window_s=rnd.choice([D("0.5"), D("2"), D("7200")]),
        depth=rnd.choice([{}, {"BTC/USDT": [(1, D("0.5")), (3, D("2"))]}]),
        locked_crossed_rule=rnd.choice(["skip", "halt"]),
        max_walk_levels=rnd.choice([1, 3, 100]),
        latency_us=rnd.choice([0, 250]),
        instruments=INST,
    )


@pytest.mark.parametrize("cls", [PaperVenue, ShadowVenue, DryRunVenue])
@pytest.mark.parametrize("seed", range(12))
def test_submit_order_matches_the_general_path(cls, seed):
    """Every submit against a reference built from ``check`` + ``arrival`` + validated values."""
    rnd = random.Random(seed)
    venue = cls(config=_cfg(rnd), account_id_prefix=rnd.choice(["", "x:"]))
    model = make_fill_model(venue.config)  # a model of its own: the reference shares no memo
    for i in range(120):
        t = T0 + timedelta(seconds=i * rnd.choice([1, 3600]))
        sym = rnd.choice(list(INST))
        roll = rnd.random()
        if roll < 0.3:
            bid = D(rnd.randint(1, 20000)) / 100
            venue.on_market(Quote(ts=t, symbol=sym, bid=bid, ask=max(bid + D(rnd.randint(-2, 30)) / 100, D("0.01")),
                                  bid_size=D(rnd.randint(0, 3000)) / 1000, ask_size=D(rnd.randint(0, 3000)) / 1000))
            continue
        if roll < 0.4:
            venue.on_market(Trade(ts=t, symbol=sym, trade_id=f"m{i}", price=D(rnd.randint(1, 20000)) / 100,
                                  qty=D(rnd.randint(1, 3000)) / 1000))
            continue
        lot = INST[sym].lot_size
        limit = rnd.random() < 0.4
        order = VenueOrder(
            client_order_id=f"c{rnd.randint(0, 150)}", account_id=rnd.choice(["a", "b"]), symbol=sym,
            side=rnd.choice(["BUY", "SELL"]), order_type="LIMIT" if limit else "MARKET",
            quantity=lot * rnd.choice([1, 3, 250, 1000, 5000]) + (lot / 2 if rnd.random() < 0.05 else 0),
            limit_price=D(rnd.randint(1, 20000)) / 100 if limit else None,
            time_in_force=rnd.choice(["GTC", "IOC", "FOK", "DAY"]), ts=t,
        )
        book = venue._markets.get(sym)
        known = venue.fetch_order(order.client_order_id) is not None
        n_fills = len(venue.fills())
        now = venue.market_time() or order.ts
        try:
            state = venue.submit_order(order)
        except VenueRejectedError as exc:
            state, error = None, exc
        else:
            error = None
        if known:
            assert error is not None and error.venue_code == "DUPLICATE_CLIENT_ORDER_ID"
            continue
        rejection = model.check(order, book)
        if rejection is not None:
            assert error is not None and (str(error), error.venue_code) == (rejection.reason, rejection.code)
            state = venue.fetch_order(order.client_order_id)
            assert state.status is OrderStatus.REJECTED and state.fills == ()
            continue
        assert error is None
        if not venue.matching:
            executions, status = (), OrderStatus.ACCEPTED
        else:
            arrival = model.arrival(order, book, venue._evidence.get(sym))
            executions, status = arrival.executions, arrival.status
            assert same(venue._markets.get(sym), arrival.book if arrival.book is not None else book)
        fill_ts = now + timedelta(microseconds=venue.config.latency_us)
        fills = tuple(
            Fill(trade_id=f"{venue.adapter_id}-{n_fills + k}", qty=ex.qty, price=ex.price,
                 fee=model.fee(ex.qty, ex.price, ex.liquidity), fee_currency=sym.split("/")[1],
                 liquidity=ex.liquidity, ts=fill_ts)
            for k, ex in enumerate(executions, 1)
        )
        expected = VenueOrderState.of(order, venue_order_id=state.venue_order_id, status=status, fills=fills,
                                      ts=fill_ts if fills else now)
        assert same(state, expected)
        assert all(same(a, b) for a, b in zip(state.fills, fills, strict=False))
        assert same(venue.fetch_order(order.client_order_id), expected)
    _assert_positions_are_the_fills(venue)
    venue.close()


def _assert_positions_are_the_fills(venue: PaperVenue) -> None:
    positions: dict[str, D] = {}
    balances: dict[str, D] = {}
    for coid, fill in venue.fill_records():
        state = venue.fetch_order(coid)
        base, quote = state.symbol.split("/")
        sign = 1 if state.side is Side.BUY else -1
        positions[state.symbol] = positions.get(state.symbol, D(0)) + sign * fill.qty
        balances[base] = balances.get(base, D(0)) + sign * fill.qty
        balances[quote] = balances.get(quote, D(0)) - sign * fill.qty * fill.price - fill.fee
    assert venue.fetch_positions() == dict(sorted(positions.items()))
    assert venue.fetch_account() == dict(sorted(balances.items()))


def test_positions_folded_on_read_match_fills_across_reads_and_reopen(tmp_path):
    path = tmp_path / "paper.sqlite"
    v = PaperVenue(config=FillModelConfig(instruments=INST), book_path=path)
    v.on_market(Quote(ts=T0, symbol="BTC/USDT", bid=D("99.99"), bid_size=D("1"), ask=D("100.00"), ask_size=D("1")))
    for i in range(6):
        v.submit_order(VenueOrder(client_order_id=f"m{i}", account_id="a", symbol="BTC/USDT", side="BUY",
                                  order_type="MARKET", quantity=D("0.1"), ts=T0))
        if i == 2:
            _assert_positions_are_the_fills(v)  # a read between fills, then more fills
    v.submit_order(VenueOrder(client_order_id="r1", account_id="b", symbol="BTC/USDT", side="SELL",
                              order_type="LIMIT", quantity=D("0.2"), limit_price=D("101.00"), ts=T0))
    v.on_market(Trade(ts=T0 + timedelta(seconds=1), symbol="BTC/USDT", trade_id="t1", price=D("101.50"), qty=D("1")))
    assert v.fetch_order("r1").status is OrderStatus.FILLED  # a resting fill from market data
    _assert_positions_are_the_fills(v)
    positions, account, per_account = v.fetch_positions(), v.fetch_account(), v.fetch_positions("b")
    v.close()
    w = PaperVenue(config=FillModelConfig(instruments=INST), book_path=path)
    assert (w.fetch_positions(), w.fetch_account(), w.fetch_positions("b")) == (positions, account, per_account)
    w.close()


@pytest.mark.parametrize("seed", range(4))
def test_durable_book_answers_like_the_memory_book_and_after_reopen(tmp_path, seed):
    """The change set is built only for a durable book: same answers, and a reopened book knows them."""
    venues = [PaperVenue(config=_cfg(random.Random(seed))),
              PaperVenue(config=_cfg(random.Random(seed)), book_path=tmp_path / "paper.sqlite")]
    logs: list[list[str]] = [[], []]
    for venue, log in zip(venues, logs, strict=False):
        rnd = random.Random(seed)
        for i in range(80):
            t = T0 + timedelta(seconds=i * rnd.choice([1, 3600]))
            if rnd.random() < 0.3:
                bid = D(rnd.randint(9900, 10100)) / 100
                venue.on_market(Quote(ts=t, symbol="BTC/USDT", bid=bid, ask=bid + D("0.01"),
                                      bid_size=D(rnd.randint(0, 3000)) / 1000, ask_size=D(rnd.randint(0, 3000)) / 1000))
                continue
            limit = rnd.random() < 0.4
            order = VenueOrder(
                client_order_id=f"c{rnd.randint(0, 90)}", account_id="a", symbol="BTC/USDT",
                side=rnd.choice(["BUY", "SELL"]), order_type="LIMIT" if limit else "MARKET",
                quantity=D(rnd.randint(1, 3000)) / 1000,
                limit_price=D(rnd.randint(9900, 10100)) / 100 if limit else None,
                time_in_force=rnd.choice(["GTC", "IOC", "FOK", "DAY"]), ts=t,
            )
            try:
                log.append(repr(venue.submit_order(order)))
            except VenueRejectedError as exc:
                log.append(f"{exc.venue_code}: {exc}")
        log.append(repr((venue.fetch_open_orders(), venue.fetch_positions(), venue.fetch_account(), venue.fills())))
    assert logs[0] == logs[1]
    states = {c: repr(venues[1].fetch_order(c)) for c in venues[1].submission_counts()}
    venues[1].close()
    reopened = PaperVenue(config=_cfg(random.Random(seed)), book_path=tmp_path / "paper.sqlite")
    assert {c: repr(reopened.fetch_order(c)) for c in reopened.submission_counts()} == states
    assert repr((reopened.fetch_open_orders(), reopened.fetch_positions(), reopened.fetch_account(),
                 reopened.fills())) == logs[1][-1]
    reopened.close()
    venues[0].close()
