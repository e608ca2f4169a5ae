"""PaperVenue / ShadowVenue / DryRunVenue: book, durability, events, and the BTC/USDT golden replay."""

from __future__ import annotations

import itertools
import json
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from protocols import (
    BrokerAdapter,
    Instrument,
    NotDeliveredError,
    OrderStatus,
    Quote,
    Trade,
    VenueOrder,
    VenueRejectedError,
)
from protocols.venues import FILL_MODEL_VERSION, DryRunVenue, FillModelConfig, PaperVenue, ShadowVenue

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
GOLDEN = Path(__file__).resolve().parent / "golden" / "paper_btcusdt_fills.json"
BTC_QUOTES = DATA / "binance_btcusdt_quotes_20210108.csv"
BTC_TRADES = DATA / "binance_btcusdt_trades_20210108.csv"
FXCM = DATA / "lean_fxcm_eurusd_20140501_tick_quote.csv"
needs_data = pytest.mark.skipif(
    not (BTC_QUOTES.exists() and BTC_TRADES.exists()),
    reason=f"real market data not found at {DATA} (../shared/data beside the repo); golden replay skipped",
)

T0 = datetime(2021, 1, 8, 0, 0, 1, tzinfo=UTC)
SYM = "BTC/USDT"
INST = {SYM: Instrument(symbol=SYM, tick_size=D("0.01"), lot_size=D("0.001"), min_notional=D("5"))}


def cfg(**kw) -> FillModelConfig:
    base = dict(maker_fee_bps=D("1"), taker_fee_bps=D("10"), instruments=INST)
    base.update(kw)
    return FillModelConfig(**base)


def quote(bid="99.99", ask="100.00", size="1", t=0.0) -> Quote:
    return Quote(ts=T0 + timedelta(seconds=t), symbol=SYM, bid=D(bid), bid_size=D(size), ask=D(ask), ask_size=D(size))


def trade(price, qty, t=1.0, trade_id="m1") -> Trade:
    return Trade(ts=T0 + timedelta(seconds=t), symbol=SYM, trade_id=trade_id, price=D(price), qty=D(qty))


_n = itertools.count(1)


def order(side="BUY", qty="0.1", price=None, tif="GTC", coid=None, account="acc") -> VenueOrder:
    return VenueOrder(
        client_order_id=coid or f"c{next(_n)}",
        account_id=account,
        symbol=SYM,
        side=side,
        order_type="LIMIT" if price is not None else "MARKET",
        quantity=D(qty),
        limit_price=D(price) if price is not None else None,
        time_in_force=tif,
        ts=T0,
    )


# ---------------------------------------------------------------- contract and basics


@pytest.mark.parametrize("cls", [PaperVenue, ShadowVenue, DryRunVenue])
def test_implements_broker_adapter(cls):
    v = cls(config=cfg())
    assert isinstance(v, BrokerAdapter)
    assert v.adapter_id == {PaperVenue: "paper", ShadowVenue: "shadow", DryRunVenue: "dry_run"}[cls]


def test_duplicate_client_order_id_is_counted_and_rejected():
    v = PaperVenue(config=cfg())
    v.on_market(quote())
    o = order("BUY", "0.1", coid="dup-1")
    first = v.submit_order(o)
    assert first.status is OrderStatus.FILLED
    for _ in range(2):
        with pytest.raises(VenueRejectedError, match="duplicate client order id") as exc:
            v.submit_order(o)
        assert exc.value.venue_code == "DUPLICATE_CLIENT_ORDER_ID"
    assert v.submission_counts() == {"dup-1": 3}
    assert v.duplicate_submissions() == 2
    assert len(v.fills()) == 1  # never filled twice
    assert v.fetch_order("dup-1") == first
    # a rejected id is known too
    bad = order("BUY", "0.0001", price="99.00", coid="bad-1")
    with pytest.raises(VenueRejectedError, match="lot size"):
        v.submit_order(bad)
    with pytest.raises(VenueRejectedError, match="duplicate"):
        v.submit_order(bad)
    assert v.submission_counts()["bad-1"] == 2 and v.duplicate_submissions() == 3


def test_fetch_order_none_is_proof_of_absence():
    v = PaperVenue(config=cfg())
    assert v.fetch_order("never-sent") is None
    assert v.submission_counts() == {}


def test_cancel_rules():
    v = PaperVenue(config=cfg())
    v.on_market(quote())
    resting = v.submit_order(order("BUY", "1", price="99.00"))
    v.on_market(trade("98.00", "0.4"))
    c = v.cancel_order(resting.client_order_id)
    assert c.status is OrderStatus.CANCELED and c.cum_qty == D("0.4") and c.leaves_qty == 0
    assert v.fetch_open_orders() == ()
    v.on_market(trade("98.00", "1", t=2, trade_id="m2"))  # canceled orders never fill
    assert v.fetch_order(resting.client_order_id).cum_qty == D("0.4")
    with pytest.raises(VenueRejectedError) as exc:
        v.cancel_order(resting.client_order_id)
    assert exc.value.venue_code == "ORDER_CLOSED"
    with pytest.raises(VenueRejectedError) as exc:
        v.cancel_order("nope")
    assert exc.value.venue_code == "UNKNOWN_ORDER"


def test_positions_and_account_from_own_fills():
    v = PaperVenue(config=cfg())
    v.on_market(quote())
    v.submit_order(order("BUY", "0.5", account="a1"))  # 50.00 + fee 0.05
    v.submit_order(order("SELL", "0.2", account="a2"))  # 19.998 - fee 0.019998 -> 0.02 rounded 8dp
    assert v.fetch_positions() == {SYM: D("0.3")}
    assert v.fetch_positions("a1") == {SYM: D("0.5")}
    acct = v.fetch_account()
    assert acct["BTC"] == D("0.3")
    assert acct["USDT"] == D("-50.00") - D("0.05") + D("19.998") - D("0.01999800")
    assert v.fetch_account("a2") == {"BTC": D("-0.2"), "USDT": D("19.998") - D("0.01999800")}


def test_events_pushed_outside_lock_and_failing_sink_tolerated():
    v = PaperVenue(config=cfg())
    v.on_market(quote())
    s = v.submit_order(order("BUY", "1", price="99.00"))
    seen = []

    def sink(ev):
        # re-entering the venue from the sink must not deadlock
        seen.append((ev.kind, v.fetch_order(ev.state.client_order_id).cum_qty))
        raise RuntimeError("subscriber bug")

    v.set_event_sink(sink)
    v.on_market(trade("98.00", "0.25"))
    v.on_market(trade("98.00", "0.25", trade_id="m2"))
    assert seen == [("fill", D("0.25")), ("fill", D("0.5"))]
    v.set_event_sink(None)
    v.on_market(trade("98.00", "0.5", trade_id="m3"))
    assert v.fetch_order(s.client_order_id).status is OrderStatus.FILLED


def test_close_makes_calls_not_delivered_and_is_idempotent():
    v = PaperVenue(config=cfg())
    v.close()
    v.close()
    with pytest.raises(NotDeliveredError):
        v.submit_order(order())
    with pytest.raises(NotDeliveredError):
        v.fetch_order("x")
    v.on_market(quote())  # ignored


def test_concurrent_submits_and_market_data_keep_invariants():
    v = PaperVenue(config=cfg())
    v.on_market(quote())
    events = []
    v.set_event_sink(events.append)
    errors = []

    def sender(k):
        for i in range(60):
            coid = f"t{k}-{i % 50}"  # 10 duplicates per sender
            try:
                v.submit_order(order("BUY" if i % 2 else "SELL", "0.06", price="99.50" if i % 3 else None, coid=coid))
            except VenueRejectedError as exc:
                if exc.venue_code != "DUPLICATE_CLIENT_ORDER_ID":
                    errors.append(exc)

    def feeder():
        for i in range(200):
            v.on_market(quote(t=i / 10))
            v.on_market(trade("99.40", "0.01", t=i / 10, trade_id=f"f{i}"))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)] + [threading.Thread(target=feeder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = v.submission_counts()
    assert sum(counts.values()) == 240 and v.duplicate_submissions() == 40
    assert len({f.trade_id for f in v.fills()}) == len(v.fills())
    for coid in counts:
        s = v.fetch_order(coid)
        assert s.cum_qty <= s.quantity
    assert all(e.kind == "fill" for e in events)


# ---------------------------------------------------------------- durable book


def test_durable_book_survives_reopen(tmp_path):
    path = tmp_path / "venue" / "paper.sqlite"
    v = PaperVenue(config=cfg(), book_path=path)
    v.on_market(quote())
    filled = v.submit_order(order("BUY", "0.5", coid="m-1"))
    resting = v.submit_order(order("BUY", "1", price="99.00", coid="r-1"))
    v.on_market(trade("98.50", "0.3", trade_id="x1"))
    with pytest.raises(VenueRejectedError):
        v.submit_order(order("BUY", "0.5", coid="m-1"))
    before = (v.fetch_order("m-1"), v.fetch_order("r-1"), v.fills(), v.fetch_positions(), v.fetch_account())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    v.close()  # or a SIGKILL: every operation was committed before it returned

    w = PaperVenue(config=cfg(), book_path=path)
    assert (w.fetch_order("m-1"), w.fetch_order("r-1"), w.fills(), w.fetch_positions(), w.fetch_account()) == before
    assert w.fetch_order("unknown") is None
    assert w.submission_counts() == {"m-1": 2, "r-1": 1} and w.duplicate_submissions() == 1
    assert [o.client_order_id for o in w.fetch_open_orders()] == ["r-1"]
    assert w.market_time() == T0 + timedelta(seconds=1)
    # the resting order keeps resting and filling; counters continue
    w.on_market(trade("98.50", "0.3", trade_id="x1"))  # already consumed: ignored
    assert w.fetch_order("r-1").cum_qty == D("0.3")
    w.on_market(trade("98.50", "0.2", t=2, trade_id="x2"))
    assert w.fetch_order("r-1").cum_qty == D("0.5")
    w.on_market(quote(t=3))
    new = w.submit_order(order("BUY", "0.1", coid="m-2"))
    assert new.venue_order_id == "paper-o3"
    assert [f.trade_id for f in w.fills()] == ["paper-1", "paper-2", "paper-3", "paper-4"]
    assert filled.fills[0].trade_id == "paper-1" and resting.venue_order_id == "paper-o2"
    with pytest.raises(VenueRejectedError, match="duplicate"):
        w.submit_order(order("BUY", "1", price="99.00", coid="r-1"))
    w.close()


def test_durable_book_without_close_is_complete(tmp_path):
    """No close(): simulates a process killed right after submit returned."""
    path = tmp_path / "paper.sqlite"
    v = PaperVenue(config=cfg(), book_path=path)
    v.on_market(quote())
    state = v.submit_order(order("SELL", "0.2", coid="k-1"))
    w = PaperVenue(config=cfg(), book_path=path)  # a second process opening the same file
    assert w.fetch_order("k-1") == state
    v.close()
    w.close()


def test_book_write_failure_leaves_no_half_written_state(tmp_path):
    from protocols import FatalAdapterError

    path = tmp_path / "paper.sqlite"
    v = PaperVenue(config=cfg(), book_path=path)
    v.on_market(quote())
    v.submit_order(order("BUY", "0.1", coid="ok-1"))
    v._book._conn.close()  # the disk goes away under the venue
    with pytest.raises(FatalAdapterError, match="venue book write failed"):
        v.submit_order(order("BUY", "0.1", coid="lost-1"))
    assert v.fetch_order("lost-1") is None  # never booked: the venue does not know it
    assert v.submission_counts() == {"ok-1": 1} and len(v.fills()) == 1
    w = PaperVenue(config=cfg(), book_path=path)
    assert w.fetch_order("lost-1") is None and w.fetch_order("ok-1").status is OrderStatus.FILLED
    w.close()


def test_book_files_are_private_and_wal(tmp_path):
    import sqlite3

    path = tmp_path / "paper.sqlite"
    v = PaperVenue(config=cfg(), book_path=path)
    v.on_market(quote())
    v.submit_order(order("BUY", "0.1"))
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    v.close()


def test_book_file_of_another_adapter_is_refused(tmp_path):
    path = tmp_path / "book.sqlite"
    PaperVenue(config=cfg(), book_path=path).close()
    with pytest.raises(ValueError, match="belongs to adapter 'paper'"):
        ShadowVenue(config=cfg(), book_path=path)


def test_day_expiry_is_durable(tmp_path):
    path = tmp_path / "day.sqlite"
    v = PaperVenue(config=cfg(), book_path=path)
    v.on_market(quote())
    v.submit_order(order("BUY", "0.1", price="99.00", tif="DAY", coid="d-1"))
    v.close()
    w = PaperVenue(config=cfg(), book_path=path)
    w.on_market(quote(t=86400))
    assert w.fetch_order("d-1").status is OrderStatus.EXPIRED
    w.close()
    assert PaperVenue(config=cfg(), book_path=path).fetch_order("d-1").status is OrderStatus.EXPIRED


# ---------------------------------------------------------------- shadow and dry-run


def test_shadow_has_separate_book_and_account(tmp_path):
    paper = PaperVenue(config=cfg(), book_path=tmp_path / "paper.sqlite")
    shadow = ShadowVenue(config=cfg(), book_path=tmp_path / "shadow.sqlite")
    for v in (paper, shadow):
        v.on_market(quote())
    p = paper.submit_order(order("BUY", "0.5", coid="same"))
    s = shadow.submit_order(order("BUY", "0.3", coid="same"))  # same id: a different book
    assert p.fills[0].trade_id == "paper-1" and s.fills[0].trade_id == "shadow-1"
    assert paper.fetch_positions() == {SYM: D("0.5")} and shadow.fetch_positions() == {SYM: D("0.3")}
    assert shadow.fetch_positions("acc") == {SYM: D("0.3")}
    assert shadow.account_id_prefix == "shadow:"
    assert paper.submission_counts() == {"same": 1} and shadow.submission_counts() == {"same": 1}


def test_dry_run_validates_acknowledges_never_fills():
    v = DryRunVenue(config=cfg())
    v.on_market(quote())
    m = v.submit_order(order("BUY", "0.5"))
    lim = v.submit_order(order("BUY", "0.5", price="101.00"))  # marketable, still no fill
    ioc = v.submit_order(order("SELL", "0.5", price="99.00", tif="IOC"))
    assert {m.status, lim.status, ioc.status} == {OrderStatus.ACCEPTED}
    v.on_market(trade("90.00", "100"))
    v.on_market(quote(bid="80.00", ask="80.01", t=2))
    assert v.fills() == () and v.fetch_positions() == {} and v.fetch_account() == {}
    assert v.fetch_order(lim.client_order_id).status is OrderStatus.ACCEPTED
    assert v.cancel_order(lim.client_order_id).status is OrderStatus.CANCELED
    assert len(v.fetch_open_orders()) == 2
    with pytest.raises(VenueRejectedError) as exc:
        v.submit_order(order("BUY", "0.5", price="99.001"))
    assert exc.value.venue_code == "TICK_SIZE"
    with pytest.raises(VenueRejectedError, match="duplicate"):
        v.submit_order(order("BUY", "0.5", coid=m.client_order_id))
    assert v.duplicate_submissions() == 1


def test_dry_run_market_without_data_rejected():
    with pytest.raises(VenueRejectedError, match="no market data"):
        DryRunVenue(config=cfg()).submit_order(order("BUY", "0.5"))


# ---------------------------------------------------------------- real data


@pytest.mark.skipif(not FXCM.exists(), reason=f"{FXCM} not found (../shared/data beside the repo)")
@pytest.mark.parametrize("rule", ["skip", "halt"])
def test_fxcm_dirty_quotes_never_crash(rule):
    from protocols.market.readers import read_quotes

    v = PaperVenue(config=FillModelConfig(locked_crossed_rule=rule, market_remainder="expire"))
    bad = rejected = 0
    for i, q in enumerate(itertools.islice(read_quotes(FXCM, symbol="EUR/USD"), 6000)):
        v.on_market(q)
        bad += q.bid >= q.ask
        if i % 50 == 0:
            o = VenueOrder(
                client_order_id=f"fx{i}", account_id="a", symbol="EUR/USD", side="BUY" if i % 100 else "SELL",
                order_type="MARKET", quantity=D("1000"), ts=q.ts,
            )
            try:
                s = v.submit_order(o)
            except VenueRejectedError as exc:
                assert exc.venue_code in ("MARKET_HALTED", "NO_MARKET_DATA")
                rejected += 1
                continue
            touch = v.touch("EUR/USD")
            assert touch is not None and touch.bid < touch.ask
            assert all(f.price in (touch.bid, touch.ask) for f in s.fills)
    assert bad > 0
    if rule == "halt":
        assert rejected > 0


def _golden_script():
    """(event index -> action) of the golden replay; prices relative to the touch at that point."""
    tick = D("0.01")
    return {
        10: ("market", "BUY", "0.01", None, "GTC"),
        40: ("market", "SELL", "0.05", None, "GTC"),
        60: ("limit", "BUY", "0.02", -2 * tick, "GTC"),  # 2 ticks below bid
        90: ("limit", "SELL", "0.03", 5 * tick, "GTC"),  # 5 ticks above ask
        150: ("limit", "BUY", "0.2", 0 * tick, "IOC"),  # at the ask: marketable IOC
        220: ("limit", "SELL", "0.001", 0 * tick, "FOK"),  # at the bid: FOK that fits
        300: ("limit", "BUY", "5", 0 * tick, "FOK"),  # FOK too large: expires
        400: ("market", "BUY", "5", None, "GTC"),  # bigger than the touch: walks (or expires)
        500: ("limit", "BUY", "0.01", -100 * tick, "DAY"),
        650: ("limit", "SELL", "0.1", 0 * tick, "GTC"),  # marketable at the bid, rest rests
        800: ("limit", "BUY", "0.05", -500 * tick, "GTC"),
        1000: ("limit", "SELL", "0.05", 300 * tick, "GTC"),
        1200: ("cancel", 800),
        1300: ("limit", "BUY", "0.0000005", -1 * tick, "GTC"),  # lot-size reject (BTC lot 0.000001)
        1350: ("limit", "BUY", "0.01", D("-0.005"), "GTC"),  # tick-size reject
        1400: ("limit", "BUY", "0.0001", -1 * tick, "GTC"),  # min-notional reject
        1600: ("market", "SELL", "1.5", None, "IOC"),
        2000: ("limit", "BUY", "0.04", 1 * tick, "IOC"),
        2300: ("market", "BUY", "0.2", None, "FOK"),  # touch 0.055: walk fills, expire rule kills
    }


def _golden_run(config: FillModelConfig) -> dict:
    from protocols.market.readers import read_market

    venue = PaperVenue("paper", config=config)
    script = _golden_script()
    rejects = []
    for i, event in enumerate(read_market(BTC_QUOTES, BTC_TRADES)):
        venue.on_market(event)
        action = script.get(i)
        if action is None:
            continue
        coid = f"g{i}"
        if action[0] == "cancel":
            try:
                venue.cancel_order(f"g{action[1]}")
            except VenueRejectedError as exc:
                rejects.append({"client_order_id": f"g{action[1]}", "cancel": True, "code": exc.venue_code})
            continue
        kind, side, qty, offset, tif = action
        touch = venue.touch(SYM)
        price = None
        if kind == "limit":
            price = (touch.bid if side == "BUY" else touch.ask) + offset
            if offset == 0:
                price = touch.ask if side == "BUY" else touch.bid
        o = VenueOrder(
            client_order_id=coid, account_id="golden", symbol=SYM, side=side,
            order_type="LIMIT" if kind == "limit" else "MARKET", quantity=D(qty), limit_price=price,
            time_in_force=tif, ts=venue.market_time(),
        )
        try:
            venue.submit_order(o)
        except VenueRejectedError as exc:
            rejects.append({"client_order_id": coid, "code": exc.venue_code, "reason": exc.message})
    orders = []
    for coid in sorted(venue.submission_counts(), key=lambda c: int(c[1:])):
        s = venue.fetch_order(coid)
        orders.append(
            {
                "client_order_id": coid,
                "venue_order_id": s.venue_order_id,
                "status": s.status.value,
                "quantity": format(s.quantity, "f"),
                "cum_qty": format(s.cum_qty, "f"),
                "avg_px": None if s.avg_px is None else format(s.avg_px, "f"),
            }
        )
    fills = [{"client_order_id": c, **json.loads(f.model_dump_json())} for c, f in venue.fill_records()]
    return {
        "config": json.loads(config.model_dump_json(exclude={"instruments"})),
        "fills": fills,
        "orders": orders,
        "positions": {k: format(v, "f") for k, v in venue.fetch_positions().items()},
        "account": {k: format(v, "f") for k, v in venue.fetch_account().items()},
        "rejects": rejects,
    }


def _golden_bytes() -> bytes:
    runs = {
        "walk_skip": _golden_run(FillModelConfig(maker_fee_bps=D("2"), taker_fee_bps=D("5"))),
        "nautilus_l1": _golden_run(FillModelConfig(fill_model="nautilus_l1", maker_fee_bps=D("2"), taker_fee_bps=D("5"))),
        "expire_halt": _golden_run(
            FillModelConfig(
                maker_fee_bps=D("1"), taker_fee_bps=D("7.5"), market_remainder="expire",
                locked_crossed_rule="halt", latency_us=250,
            )
        ),
    }
    doc = {"fill_model_version": FILL_MODEL_VERSION, "data": [BTC_QUOTES.name, BTC_TRADES.name], "runs": runs}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


@needs_data
def test_golden_btcusdt_replay_is_byte_identical():
    produced = _golden_bytes()
    assert produced == _golden_bytes(), "two runs in one process differ: the fill model is not deterministic"
    if os.environ.get("FLOWROUTE_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_bytes(produced)
    assert GOLDEN.exists(), f"{GOLDEN} missing: run with FLOWROUTE_REGEN_GOLDEN=1 once and commit it"
    expected = GOLDEN.read_bytes()
    assert produced == expected, (
        "paper fills differ from the golden file; if the fill model changed on purpose, bump "
        "FILL_MODEL_VERSION and regenerate with FLOWROUTE_REGEN_GOLDEN=1"
    )
    doc = json.loads(expected)
    walk = doc["runs"]["walk_skip"]
    assert {f["liquidity"] for f in walk["fills"]} == {"MAKER", "TAKER"}
    statuses = {o["status"] for o in walk["orders"]}
    assert {"FILLED", "EXPIRED", "REJECTED", "CANCELED"} <= statuses
    assert {r["code"] for r in walk["rejects"]} >= {"NO_MARKET_DATA", "LOT_SIZE", "TICK_SIZE", "MIN_NOTIONAL"}
    assert walk["fills"] != doc["runs"]["expire_halt"]["fills"]
