"""Faults against the real acceptors: a killed acceptor, a SIGKILLed runtime, a hostile relay.

Every order's fate is checked against the acceptor's own log of incoming messages: a
NewOrderSingle reaches it once, whatever happened in between.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from protocols import OrderStatus
from protocols.venues.fix._driver import tcp_connect
from protocols.venues.fix._store import SeqStore
from tests.conftest import wait_until

from ._relay import Relay
from .conftest import SYM, incoming, limit, live, needs_peers

pytestmark = needs_peers
ROOT = Path(__file__).resolve().parents[2]


class _Current:
    """The acceptor now running (a restart makes a new Peer; the relay follows it)."""

    def __init__(self, peer) -> None:
        self.peer = peer

    def connect(self, host, port, timeout):
        return self.peer.connector()(host, port, timeout)


def _health(rt):
    return rt.health().venues["fix"]


def test_acceptor_killed_mid_order_goes_unknown_then_resolves_by_resend(peer, fix_runtime) -> None:
    current = _Current(peer("executor"))
    relay = Relay(current.connect, current.peer.port)
    try:
        rt = fix_runtime(None, "CLIENT1", "EXECUTOR", port=relay.port, connector=tcp_connect)
        wait_until(lambda: _health(rt)["state"] == "ACTIVE", 10, "logon")
        relay.mode = "hold"  # the ExecutionReport is in flight when the acceptor dies
        intent = limit("BUY", "0.5", "100", tif="GTC")
        report = rt.submit(intent, live()).result(timeout=10)
        assert report.status is OrderStatus.UNKNOWN
        current.peer.kill()
        relay.cut_all()
        relay.mode = "pass"
        current.peer = current.peer.restart()
        done = wait_until(lambda: (lambda r: r if r and r.status is OrderStatus.FILLED else None)(rt.order(intent.client_order_id)),
                          20, "the order resolved after reconnect and resend")
        assert done.cum_qty == Decimal("0.5") and len(done.fills) == 1
        assert incoming(current.peer, "D", intent.client_order_id) == 1
        assert _health(rt)["session_resend_requests_sent"] >= 1
    finally:
        relay.close()
        current.peer.stop()  # the restarted acceptor is not the fixture's: stop it here


def test_relay_cuts_mid_frame_delays_and_swallows_heartbeats(peer, fix_runtime) -> None:
    executor = peer("executor")
    relay = Relay(executor.connector(), executor.port)
    try:
        rt = fix_runtime(None, "CLIENT1", "EXECUTOR", port=relay.port, connector=tcp_connect, heartbeat_s=1)
        wait_until(lambda: _health(rt)["state"] == "ACTIVE", 10, "logon")
        # swallowed heartbeats: our TestRequest goes unanswered, we disconnect, reconnect, resend
        relay.mode = "swallow_heartbeats"
        wait_until(lambda: _health(rt)["disconnects"] >= 1, 15, "a disconnect after an unanswered TestRequest")
        relay.mode = "pass"
        wait_until(lambda: _health(rt)["state"] == "ACTIVE" and _health(rt)["session_resend_requests_sent"] >= 1, 15,
                   "reconnect and ResendRequest for the swallowed messages")
        assert _health(rt)["session_test_requests_sent"] >= 1
        assert "TestRequest not answered" in (_health(rt)["last_error"] or "")
        # delayed traffic: slower, same result
        relay.delay_s = 0.2
        slow = limit("BUY", "0.25", "100", tif="GTC")
        assert rt.submit(slow, live()).result(timeout=10).status is OrderStatus.FILLED
        relay.delay_s = 0.0
        # the ExecutionReport cut mid-frame: the connection drops, the resend brings it back
        drops = _health(rt)["disconnects"]
        relay.mode = "cut"
        cut = limit("SELL", "0.125", "100", tif="GTC")
        rt.submit(cut, live()).result(timeout=10)
        done = wait_until(lambda: (lambda r: r if r and r.status is OrderStatus.FILLED else None)(rt.order(cut.client_order_id)),
                          20, "the order whose report was cut")
        assert done.cum_qty == Decimal("0.125")
        assert _health(rt)["disconnects"] > drops and relay.mode == "pass"  # the cut happened
        for intent in (slow, cut):
            assert incoming(executor, "D", intent.client_order_id) == 1
    finally:
        relay.close()


def test_runtime_sigkilled_after_send_recovers_the_fill_made_while_down(peer, fix_runtime, tmp_path) -> None:
    om = peer("ordermatch")
    state = tmp_path / "client1"
    bid = "killed-bid-1"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-m", "tests.fix._child", str(state), str(om.port),
                              str(om.process.pid if om.netns else 0), bid],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "SENT ACCEPTED", line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    stored = SeqStore.open(state / "fix", "FIX.4.2", "CLIENT1", "ORDERMATCH")
    sent_before = stored.next_sender
    stored.close()
    assert sent_before > 2  # Logon and the NewOrderSingle at least
    # while CLIENT1 is down, CLIENT2 crosses its bid: ordermatch stores the fill for CLIENT1
    seller = fix_runtime(om, "CLIENT2", "ORDERMATCH", "FIX.4.2", name="c2")
    ask = limit("SELL", "6", "100.5")
    seller.submit(ask, live("seller")).result(timeout=10)
    wait_until(lambda: (lambda r: r and r.status is OrderStatus.FILLED)(seller.order(ask.client_order_id)), 10, "the ask filled")
    buyer = fix_runtime(om, "CLIENT1", "ORDERMATCH", "FIX.4.2", durable=True, name="client1")
    report = wait_until(lambda: (lambda r: r if r and r.cum_qty == Decimal("6") else None)(buyer.order(bid)), 20,
                        "the fill made while the runtime was down")
    assert report.status is OrderStatus.PARTIALLY_FILLED and report.fills[0].price == Decimal("100.5")
    health = _health(buyer)
    assert health["state"] == "ACTIVE" and health["last_error"] is None  # sequence numbers came back: no "too low"
    assert health["next_sender_seq"] > sent_before
    assert health["session_resend_requests_sent"] >= 1
    buyer.flush()
    (position,) = [p for p in buyer.positions() if p.symbol == SYM]
    assert position.net_qty == Decimal("6")
    assert incoming(om, "D", bid) == 1


def test_runtime_killed_after_the_fill_report_passed_the_sequence_store_books_it_at_restart(peer, fix_runtime, tmp_path) -> None:
    """The window between the session writing an ExecutionReport's MsgSeqNum as handled and the
    runtime journaling its fill: SIGKILL there, and the peer will not resend it (its number is
    behind us). The session's inbox kept it before the number moved; the restarted adapter
    applies it again and the fill is booked once."""
    om = peer("ordermatch")
    state = tmp_path / "client1"
    bid = "killed-bid-2"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-m", "tests.fix._child", str(state), str(om.port),
                              str(om.process.pid if om.netns else 0), bid, "die_on_fill"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == "SENT ACCEPTED"
        seller = fix_runtime(om, "CLIENT2", "ORDERMATCH", "FIX.4.2", name="c2")
        ask = limit("SELL", "6", "100.5")
        seller.submit(ask, live("seller")).result(timeout=10)
        assert child.wait(20) == -signal.SIGKILL  # died on the fill's report
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
    stored = SeqStore.open(state / "fix", "FIX.4.2", "CLIENT1", "ORDERMATCH")
    handled = stored.next_target
    stored.close()
    buyer = fix_runtime(om, "CLIENT1", "ORDERMATCH", "FIX.4.2", durable=True, name="client1")
    report = wait_until(lambda: (lambda r: r if r and r.cum_qty == Decimal("6") else None)(buyer.order(bid)), 20,
                        "the fill whose report was handled just before the kill")
    assert report.status is OrderStatus.PARTIALLY_FILLED and [f.qty for f in report.fills] == [Decimal("6")]
    health = _health(buyer)
    assert health["replayed_at_start"] >= 1 and health["next_target_seq"] >= handled
    buyer.flush()
    (position,) = [p for p in buyer.positions() if p.symbol == SYM]
    assert position.net_qty == Decimal("6")
    # applied and journaled, the kept messages leave the inbox: the next start replays none of them
    buyer.stop()
    again = fix_runtime(om, "CLIENT1", "ORDERMATCH", "FIX.4.2", durable=True, name="client1")
    assert _health(again)["replayed_at_start"] == 0
    assert [f.qty for f in again.order(bid).fills] == [Decimal("6")]
