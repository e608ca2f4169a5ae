"""The FIX session state machine and the adapter's message handling, without a socket.

Time is a ``FakeClock``; the peer is played by hand-built frames (``encode``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors import FakeClock
from protocols import AmbiguousError, OrderStatus
from protocols.venues.fix._codec import Framer, encode, redact
from protocols.venues.fix._session import (
    ACTIVE,
    Deliver,
    Disconnect,
    FixSession,
    GapFilled,
    Send,
    SessionConfig,
)
from protocols.venues.fix._store import SeqStore
from protocols.venues.fix._venue import FixVenue, FixVenueConfig

PEER, US = "EXEC", "CLIENT1"


def peer_msg(msg_type: str, seq: int, *body, begin: str = "FIX.4.4", poss_dup: bool = False) -> bytes:
    header = [(34, seq)]
    if poss_dup:
        header.append((43, "Y"))
    header += [(49, PEER), (52, "20260105-12:00:00.000"), (56, US)]
    if poss_dup:
        header.append((122, "20260105-11:59:59.000"))
    return encode(begin, msg_type, [*header, *body])


def sent(actions) -> list[dict]:
    out = []
    for action in actions:
        if isinstance(action, Send):
            (frame,) = Framer().feed(action.raw)
            out.append(dict(frame.pairs))
    return out


def logged_on(store: SeqStore | None = None, **cfg) -> tuple[FixSession, FakeClock]:
    clock = FakeClock()
    session = FixSession(SessionConfig("FIX.4.4", US, PEER, heartbeat_s=cfg.pop("heartbeat_s", 10), **cfg),
                         store or SeqStore.memory(), clock)
    session.connected()
    session.receive(peer_msg("A", store.next_target if store else 1, (98, 0), (108, 10)))
    assert session.state == ACTIVE
    return session, clock


def test_logon_carries_heartbeat_and_credentials_and_reset_only_when_asked() -> None:
    clock = FakeClock()
    plain = sent(FixSession(SessionConfig("FIX.4.4", US, PEER, heartbeat_s=7), SeqStore.memory(), clock).connected())
    assert plain[0][35] == "A" and plain[0][108] == "7" and 141 not in plain[0] and 554 not in plain[0]
    s = FixSession(SessionConfig("FIX.4.4", US, PEER, reset_on_logon=True, username="u", password="hunter2"),
                   SeqStore.memory(), clock)
    (send,) = [a for a in s.connected() if isinstance(a, Send)]
    logon = sent([send])[0]
    assert logon[141] == "Y" and logon[553] == "u" and logon[554] == "hunter2"
    shown = redact(send.raw).decode()
    assert "hunter2" not in shown and "554=***" in shown and "553=***" in shown


def test_heartbeat_then_test_request_on_silence_then_disconnect_when_unanswered() -> None:
    session, clock = logged_on(heartbeat_s=10)
    clock.advance(10)
    assert [m[35] for m in sent(session.tick())] == ["0"]  # nothing sent for HeartBtInt: Heartbeat
    clock.advance(2)
    test_request = sent(session.tick())
    assert [m[35] for m in test_request] == ["1"] and test_request[0][112] == "TEST"  # 1.2 × HeartBtInt of silence
    clock.advance(5)
    assert not any(isinstance(a, Disconnect) for a in session.tick())
    clock.advance(5)
    (drop,) = [a for a in session.tick() if isinstance(a, Disconnect)]
    assert drop.error and "TestRequest not answered" in drop.reason


def test_an_answered_test_request_keeps_the_session() -> None:
    session, clock = logged_on(heartbeat_s=10)
    clock.advance(12)
    session.tick()
    session.receive(peer_msg("0", 2, (112, "TEST")))
    clock.advance(9)
    assert not any(isinstance(a, Disconnect) for a in session.tick())


def test_a_peer_test_request_is_answered_with_its_id() -> None:
    session, _ = logged_on()
    (hb,) = sent(session.receive(peer_msg("1", 2, (112, "PING-7"))))
    assert hb[35] == "0" and hb[112] == "PING-7"


def test_sequence_too_low_logs_out_with_an_error() -> None:
    session, _ = logged_on()
    session.receive(peer_msg("0", 2))
    actions = session.receive(peer_msg("0", 2))
    (logout,) = sent(actions)
    assert logout[35] == "5" and logout[58] == "MsgSeqNum too low, expecting 3 but received 2"
    assert any(isinstance(a, Disconnect) and a.error for a in actions)
    assert session.last_error.startswith("MsgSeqNum too low")


def test_sequence_too_high_asks_for_a_resend_once_and_applies_the_queue_after_the_gap_fill() -> None:
    session, _ = logged_on()
    first = sent(session.receive(peer_msg("8", 5, (11, "a"))))
    assert first == [first[0]] and first[0][35] == "2" and first[0][7] == "2" and first[0][16] == "0"
    assert sent(session.receive(peer_msg("8", 6, (11, "b")))) == []  # no second ResendRequest
    actions = session.receive(encode("FIX.4.4", "4", [(34, 2), (43, "Y"), (49, PEER), (52, "20260105-12:00:00.000"),
                                                      (56, US), (122, "20260105-12:00:00.000"), (36, 5), (123, "Y")]))
    assert [a.frame.get(11) for a in actions if isinstance(a, Deliver)] == ["a", "b"]
    assert session.store.next_target == 7


def test_a_resend_request_is_gap_filled_and_never_resends_a_new_order_single() -> None:
    session, _ = logged_on()
    session.send_app("D", [(11, "o-1"), (55, "X"), (54, "1"), (38, "1"), (40, "2"), (44, "1")])
    actions = session.receive(peer_msg("2", 2, (7, 1), (16, 0)))
    msgs = sent(actions)
    assert [m[35] for m in msgs] == ["4"] and msgs[0][123] == "Y" and msgs[0][36] == "3" and msgs[0][43] == "Y"
    assert any(isinstance(a, GapFilled) for a in actions)


def test_sequence_numbers_survive_a_restart(tmp_path: Path) -> None:
    store = SeqStore.open(tmp_path, "FIX.4.4", US, PEER)
    session, _ = logged_on(store)
    session.send_app("D", [(11, "o-1")])
    session.receive(peer_msg("0", 2))
    store.close()
    again = SeqStore.open(tmp_path, "FIX.4.4", US, PEER)
    assert (again.next_sender, again.next_target) == (3, 3)
    (logon,) = sent(FixSession(SessionConfig("FIX.4.4", US, PEER), again, FakeClock()).connected())
    assert logon[34] == "3"
    assert b"o-1" not in (tmp_path / "FIX.4.4-CLIENT1-EXEC.seqnums").read_bytes()  # numbers only, no messages


def test_garbled_frames_are_dropped_and_counted() -> None:
    session, _ = logged_on()
    good = peer_msg("0", 2)
    wrong = (int(good[-4:-1]) + 1) % 256
    bad_checksum = good[:-4] + f"{wrong:03d}".encode() + b"\x01"
    bad_length = good.replace(b"\x019=", b"\x019=9", 1)
    before = session.store.next_target
    assert session.receive(b"garbage" + bad_checksum + bad_length) == []
    assert session.store.next_target == before and session.counters["garbled"] >= 2
    session.receive(good)
    assert session.store.next_target == before + 1


# ---------------------------------------------------------------------- the adapter, fed frames


def venue(tmp_path: Path, begin: str = "FIX.4.4") -> tuple[FixVenue, list]:
    v = FixVenue("fix", FixVenueConfig(host="127.0.0.1", port=1, begin_string=begin, sender_comp_id=US,
                                       target_comp_id=PEER, store_dir=tmp_path, symbols={"BTC/USDT": "BTCUSDT"}))
    events: list = []
    v.set_event_sink(events.append)
    return v, events


def report(seq: int, cid: str, exec_id: str, exec_type: str, status: str, *, last=("0", "0"), cum="0", leaves="10",
           avg="0", begin="FIX.4.4", poss_dup=False, extra=()):
    (frame,) = Framer().feed(peer_msg("8", seq, (37, f"v-{cid}"), (11, cid), (17, exec_id), *extra, (150, exec_type),
                                      (39, status), (55, "BTCUSDT"), (54, "1"), (38, "10"), (32, last[0]), (31, last[1]),
                                      (151, leaves), (14, cum), (6, avg), begin=begin, poss_dup=poss_dup))
    return Deliver(frame, poss_dup)


def test_fills_are_pushed_with_the_cumulative_view_and_a_repeat_is_applied_once(tmp_path: Path) -> None:
    v, events = venue(tmp_path)
    v._on_app(report(2, "c1", "e1", "0", "0"))
    v._on_app(report(3, "c1", "e2", "F", "1", last=("4", "100"), cum="4", leaves="6", avg="100"))
    v._on_app(report(3, "c1", "e2", "F", "1", last=("4", "100"), cum="4", leaves="6", avg="100", poss_dup=True))
    v._on_app(report(4, "c1", "e3", "F", "2", last=("6", "101"), cum="10", leaves="0", avg="100.6"))
    assert [e.kind for e in events] == ["accepted", "fill", "fill"]
    last = events[-1]
    assert last.fill.trade_id == "e3" and last.fill.qty == Decimal("6") and last.fill.price == Decimal("101")
    assert last.state.status is OrderStatus.FILLED and last.state.cum_qty == Decimal("10")
    assert last.state.avg_px == Decimal("100.6") and [f.trade_id for f in last.state.fills] == ["e2", "e3"]
    assert last.state.symbol == "BTC/USDT" and last.state.venue_order_id == "v-c1"  # symbol map reversed
    assert v.counters["duplicates_dropped"] == 1
    assert v.fetch_positions() == {"BTC/USDT": Decimal("10")}


def test_fix42_fill_exec_types_and_a_busted_execution_is_not_applied(tmp_path: Path) -> None:
    v, events = venue(tmp_path, "FIX.4.2")
    v._on_app(report(2, "c2", "x1", "1", "1", last=("3", "50"), cum="3", leaves="7", avg="50", begin="FIX.4.2",
                     extra=((20, "0"),)))
    v._on_app(report(3, "c2", "x9", "1", "1", last=("3", "50"), cum="3", leaves="7", avg="50", begin="FIX.4.2",
                     extra=((20, "1"),)))  # ExecTransType=1: an execution canceled by the venue
    assert [e.kind for e in events] == ["fill"] and events[0].state.status is OrderStatus.PARTIALLY_FILLED


def test_a_lookup_the_peer_refuses_is_unknown_never_absent(tmp_path: Path) -> None:
    v, _ = venue(tmp_path)
    v.config = FixVenueConfig(**{**v.config.__dict__, "order_status_request": False})
    with pytest.raises(AmbiguousError):
        v.fetch_order("never-seen")
    v._on_app(report(2, "c3", "e1", "0", "0"))
    assert v.fetch_order("c3").status is OrderStatus.ACCEPTED  # what the venue told us, not a guess
    v.close()
