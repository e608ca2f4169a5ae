"""A waiting caller reads the FIX socket itself (leader/follower, ``FixConnection.read_for``,
``[venues.fix] caller_reads``): exactly one thread reads at a time, every message is handed on
once and in order whoever reads it, the session's duties (Heartbeat to a TestRequest,
TestRequest on silence) go on while a caller reads, a caller that stops waiting halfway through
a frame hands back a consistent session, and concurrent senders all get their answers.

The peer is a plain TCP socket played by the test (Logon, then scripted frames); the last test
runs 8 senders through the runtime against QuickFIX's executor. No timing assertions: every
wait is for an event, with a generous bound that only a hang would reach.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from protocols import OrderStatus
from protocols.venues.fix._codec import Framer, encode
from protocols.venues.fix._driver import FixConnection
from protocols.venues.fix._session import Deliver, FixSession, SessionConfig
from protocols.venues.fix._store import SeqStore

from .conftest import cid, incoming, limit, live, needs_peers

PEER, US = "EXEC", "CLIENT1"
BOUND = 10.0  # seconds: only a hang reaches it


class Clock:
    """The session's clock, moved by the test (monotonic seconds; aware UTC now)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Peer:
    """The acceptor's side of one connection, played by the test."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.conn.settimeout(BOUND)
        self.framer = Framer()
        self.frames: list = []
        self.seq = 1

    def read_until(self, pred: Callable[[dict], bool]) -> dict:
        """The next frame from us for which ``pred(fields)`` holds; the frames before it are dropped."""
        while True:
            while self.frames:
                fields = dict(self.frames.pop(0).pairs)
                if pred(fields):
                    return fields
            data = self.conn.recv(65536)
            assert data, "the client closed the connection"
            self.frames += self.framer.feed(data)

    def frame(self, msg_type: str, *fields: tuple[int, object]) -> bytes:
        raw = encode("FIX.4.4", msg_type, [(34, self.seq), (49, PEER), (52, "20260105-12:00:00.000"), (56, US), *fields])
        self.seq += 1
        return raw

    def send(self, msg_type: str, *fields: tuple[int, object]) -> None:
        self.conn.sendall(self.frame(msg_type, *fields))

    def report(self, client_order_id: str, exec_id: str) -> bytes:
        return self.frame("8", (11, client_order_id), (17, exec_id), (37, "V" + client_order_id), (150, "0"), (39, "0"),
                          (55, "BTCUSDT"), (54, "1"), (38, "1"), (14, "0"), (151, "1"), (6, "0"))


@pytest.fixture
def session_pair():
    """``make(clock=None, heartbeat_s=30)`` → (a logged-on caller-reads FixConnection, the test's
    Peer, the list of (thread name, frame) handed on); everything is closed at teardown."""
    made: list[tuple[FixConnection, socket.socket, socket.socket]] = []

    def make(clock=None, heartbeat_s: int = 30):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        accepted: list[socket.socket] = []
        ready = threading.Event()

        def accept() -> None:
            conn, _ = server.accept()
            accepted.append(conn)
            ready.set()

        threading.Thread(target=accept, daemon=True).start()
        session = FixSession(SessionConfig("FIX.4.4", US, PEER, heartbeat_s=heartbeat_s), SeqStore.memory(), clock or Clock())
        handed: list[tuple[str, object]] = []
        fix = FixConnection(session, "127.0.0.1", server.getsockname()[1], caller_reads=True,
                            on_app=lambda item: handed.append((threading.current_thread().name, item)))
        fix.start()
        assert ready.wait(BOUND)
        peer = Peer(accepted[0])
        made.append((fix, accepted[0], server))
        assert peer.read_until(lambda f: f[35] == "A")
        peer.send("A", (98, 0), (108, heartbeat_s))
        assert fix.wait_active(BOUND)
        return fix, peer, handed

    yield make
    for fix, conn, server in made:
        fix.close(timeout=1.0)
        conn.close()
        server.close()


def client_order_ids(handed: list[tuple[str, object]]) -> list[str]:
    out = []
    for _thread, item in handed:
        assert isinstance(item, Deliver)
        out.append(item.frame.get(11))
    return out


class Caller:
    """A thread that sends one order and then reads for its answer (as ``Runtime.submit(...).result()``
    does through the FIX venue); ``reading`` is set once it holds the reader's turn."""

    def __init__(self, fix: FixConnection, handed: list, client_order_id: str, *, stop: Callable[[], bool] | None = None) -> None:
        self.fix, self.handed, self.cid = fix, handed, client_order_id
        self.reading = threading.Event()
        self.stop = stop
        self.read: bool | None = None
        self.thread = threading.Thread(target=self._run, name=f"caller-{client_order_id}")

    def answered(self) -> bool:
        return any(isinstance(item, Deliver) and item.frame.get(11) == self.cid for _t, item in self.handed)

    def _until(self) -> bool:
        if self.fix._leader == threading.get_ident():
            self.reading.set()  # checked with the turn held: the reader's token is this thread's
        return self.answered() or (self.stop is not None and self.stop())

    def _run(self) -> None:
        self.fix.send_app("D", [(11, self.cid), (55, "BTCUSDT"), (54, "1"), (38, "1"), (40, "2"), (44, "100")])
        self.read = self.fix.read_for(self._until, time.monotonic() + BOUND)

    def start(self) -> Caller:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(BOUND)
        assert not self.thread.is_alive()


def test_a_waiting_caller_reads_and_every_message_is_handed_on_once_in_order(session_pair) -> None:
    fix, peer, handed = session_pair()
    # unsolicited reports while no caller waits: the connection thread reads them
    peer.conn.sendall(peer.report("rest-1", "e-r1") + peer.report("rest-2", "e-r2"))
    deadline = time.monotonic() + BOUND
    while len(handed) < 2 and time.monotonic() < deadline:
        time.sleep(0.002)
    for k in range(5):
        caller = Caller(fix, handed, f"o-{k}").start()
        assert caller.reading.wait(BOUND)
        peer.read_until(lambda f, k=k: f[35] == "D" and f[11] == f"o-{k}")
        # another order's report first, then this caller's: the caller reads and hands on both
        peer.conn.sendall(peer.report(f"other-{k}", f"e-x{k}") + peer.report(f"o-{k}", f"e-o{k}"))
        caller.join()
        assert caller.read is True
    peer.conn.sendall(peer.report("rest-3", "e-r3"))  # and the connection thread takes the socket back
    deadline = time.monotonic() + BOUND
    while len(handed) < 13 and time.monotonic() < deadline:
        time.sleep(0.005)
    expected = ["rest-1", "rest-2"] + [x for k in range(5) for x in (f"other-{k}", f"o-{k}")] + ["rest-3"]
    assert client_order_ids(handed) == expected
    by_callers = [item.frame.get(11) for name, item in handed if name.startswith("caller-")]
    assert by_callers == [x for k in range(5) for x in (f"other-{k}", f"o-{k}")]
    assert fix.caller_reads >= 5
    assert fix.session.counters["garbled"] == 0


def test_heartbeat_and_test_request_go_on_while_a_caller_reads(session_pair) -> None:
    clock = Clock()
    fix, peer, handed = session_pair(clock=clock, heartbeat_s=30)
    caller = Caller(fix, handed, "hb-1").start()
    assert caller.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D")
    # the peer's TestRequest: the reading caller answers it with a Heartbeat carrying its TestReqID
    peer.send("1", (112, "ping-1"))
    heartbeat = peer.read_until(lambda f: f[35] == "0")
    assert heartbeat[112] == "ping-1"
    assert caller.thread.is_alive() and fix._leader == caller.thread.ident
    # silence past 1.2 x HeartBtInt: the reading caller's timers send our TestRequest
    clock.t += 1.2 * 30 + 1
    test_request = peer.read_until(lambda f: f[35] == "1")
    assert test_request[112] == "TEST"
    assert caller.thread.is_alive() and fix._leader == caller.thread.ident
    peer.send("0", (112, "TEST"))
    peer.conn.sendall(peer.report("hb-1", "e-hb"))
    caller.join()
    assert client_order_ids(handed) == ["hb-1"]
    assert fix.session.counters["test_requests_sent"] == 1
    assert fix.session.state == "ACTIVE"


def test_a_caller_that_stops_waiting_mid_frame_hands_back_a_consistent_session(session_pair) -> None:
    fix, peer, handed = session_pair()
    raw = peer.report("half-1", "e-h1")
    first, rest = raw[: len(raw) // 2], raw[len(raw) // 2:]
    reads_before = fix.caller_reads
    # the caller gives up (a timeout, a Ctrl-C) right after it has read the first half of its report
    caller = Caller(fix, handed, "half-1", stop=lambda: fix.caller_reads > reads_before)
    caller.start()
    assert caller.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D")
    peer.conn.sendall(first)
    caller.join()
    assert caller.read is True and handed == []  # half a frame: nothing to hand on yet
    # the rest arrives with no caller waiting: the connection thread reads it and completes the frame
    peer.conn.sendall(rest + peer.report("after-1", "e-a1"))
    deadline = time.monotonic() + BOUND
    while len(handed) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert client_order_ids(handed) == ["half-1", "after-1"]
    assert [name for name, _item in handed] == ["fix-session", "fix-session"]
    assert fix.session.counters["garbled"] == 0
    assert fix.session.state == "ACTIVE"
    # and a later caller reads again
    caller = Caller(fix, handed, "half-2").start()
    assert caller.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D" and f[11] == "half-2")
    peer.conn.sendall(peer.report("half-2", "e-h2"))
    caller.join()
    assert client_order_ids(handed)[-1] == "half-2" and handed[-1][0] == "caller-half-2"


def test_callers_queue_for_the_turn_and_each_gets_its_answer(session_pair) -> None:
    fix, peer, handed = session_pair()
    first = Caller(fix, handed, "q-0").start()
    assert first.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D" and f[11] == "q-0")
    others = [Caller(fix, handed, f"q-{k}").start() for k in range(1, 4)]
    # the three send concurrently: their orders may reach the peer in any order (read_until drops
    # the frames it passes over, so waiting for q-1, then q-2, ... would miss one sent earlier)
    sent: set[str] = set()
    while len(sent) < 3:
        sent.add(peer.read_until(lambda f: f[35] == "D")[11])
    assert sent == {"q-1", "q-2", "q-3"}
    deadline = time.monotonic() + BOUND
    while len(fix._queued) < 3 and time.monotonic() < deadline:  # the three queue behind the reading caller
        time.sleep(0.002)
    assert len(fix._queued) == 3 and fix._leader == first.thread.ident
    # answers in reverse: each caller returns once its own answer was handed on, whoever read it
    for k in (3, 2, 1, 0):
        peer.conn.sendall(peer.report(f"q-{k}", f"e-q{k}"))
    for caller in (first, *others):
        caller.join()
    assert sorted(client_order_ids(handed)) == ["q-0", "q-1", "q-2", "q-3"]
    assert len(handed) == 4


@needs_peers
def test_eight_concurrent_senders_through_the_runtime_all_get_their_answers_once(peer, fix_runtime) -> None:
    executor = peer("executor")
    rt = fix_runtime(executor, "CLIENT1", "EXECUTOR", "FIX.4.4")
    ids = [[cid(f"lf{k}") for _ in range(15)] for k in range(8)]
    reports: dict[str, object] = {}
    errors: list[BaseException] = []

    def send(k: int) -> None:
        try:
            for client_order_id in ids[k]:
                reports[client_order_id] = rt.submit(limit("BUY", "0.5", "100", cl=client_order_id, tif="GTC"),
                                                     live(f"acc-{k}")).result(timeout=BOUND)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    all_ids = [x for row in ids for x in row]
    assert all(reports[x].status is OrderStatus.FILLED for x in all_ids), [reports[x] for x in all_ids]
    rt.flush()
    health = rt.health().venues["fix"]
    assert health["execution_reports"] == len(all_ids) and health["duplicates_dropped"] == 0
    assert health["caller_reads"] > 0  # the senders read the socket themselves
    assert all(incoming(executor, "D", x) == 1 for x in all_ids)


def test_a_caller_taking_the_turn_wakes_the_polling_connection_thread_to_step_aside_before_the_answer(
        session_pair, monkeypatch) -> None:
    """No caller has read for a while: the connection thread polls the socket. A caller that takes
    the turn wakes it (``_step_aside``, on a wake-up socket of its own: the reading caller polls the
    shared one and would take it), so it steps aside while the peer works on the order, and does
    not wake with the caller when the answer comes in. Fails without that wake-up: the connection
    thread leaves its poll on a timeout (0.5 s) or on the answer, never woken."""
    from protocols.venues.fix import _driver

    fix, peer, handed = session_pair()
    events: list[str] = []
    followed = threading.Event()
    real_drain, real_follow = _driver._drain, fix._follow

    def drain(wake) -> None:
        if threading.current_thread().name == "fix-session":
            events.append("woken")
        real_drain(wake)

    def follow(sock) -> None:
        events.append("follow")
        followed.set()
        real_follow(sock)

    monkeypatch.setattr(_driver, "_drain", drain)
    fix._follow = follow  # type: ignore[method-assign]
    deadline = time.monotonic() + BOUND
    while not fix._polling and time.monotonic() < deadline:  # the connection thread is back at its poll
        time.sleep(0.002)
    assert fix._polling
    caller = Caller(fix, handed, "aside-1").start()
    assert caller.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D" and f[11] == "aside-1")
    assert followed.wait(BOUND)  # stepped aside before the answer was sent ...
    assert events[:2] == ["woken", "follow"], (events, fix.step_asides)  # ... because it was woken for it
    assert fix.step_asides == 1
    peer.conn.sendall(peer.report("aside-1", "e-as1"))
    caller.join()
    assert caller.read is True and handed == [("caller-aside-1", handed[0][1])]


def test_a_session_fault_while_a_caller_reads_drops_the_connection_not_the_caller(session_pair) -> None:
    fix, peer, handed = session_pair()
    real = fix.session.receive

    def broken(data: bytes):
        fix.session.receive = real  # once
        raise RuntimeError("a session bug")

    caller = Caller(fix, handed, "bug-1").start()
    assert caller.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D")
    fix.session.receive = broken  # type: ignore[method-assign]
    peer.conn.sendall(peer.report("bug-1", "e-b1"))
    caller.join()  # read_for returned: the fault did not escape into the caller
    assert caller.read is True
    assert fix.disconnects == 1 and fix.last_disconnect == "internal error: RuntimeError"


def test_with_tls_only_the_connection_thread_reads() -> None:
    """An OpenSSL connection object is not safe to use from two threads at once: no caller reads."""
    import ssl

    session = FixSession(SessionConfig("FIX.4.4", US, PEER, heartbeat_s=30), SeqStore.memory(), Clock())
    plain = FixConnection(session, "127.0.0.1", 9, on_app=lambda item: None, caller_reads=True)
    tls = FixConnection(session, "127.0.0.1", 9, on_app=lambda item: None, caller_reads=True,
                        tls=ssl.create_default_context())
    assert plain.caller_reads_on and not tls.caller_reads_on
    assert tls.read_for(lambda: False, time.monotonic() + BOUND) is False  # returns at once: the caller waits as before


def test_callers_read_the_new_socket_after_a_reconnect(session_pair) -> None:
    """The callers' poller is kept from one order to the next on one socket, and a reconnect gets
    the next caller a poller of the new socket (one of the old would wait for a closed one)."""
    fix, peer, handed = session_pair()
    first = Caller(fix, handed, "before-1").start()
    assert first.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D" and f[11] == "before-1")
    peer.conn.sendall(peer.report("before-1", "e-b1"))
    first.join()
    assert first.read is True
    kept = fix._callers_poller
    second = Caller(fix, handed, "before-2").start()
    assert second.reading.wait(BOUND)
    peer.read_until(lambda f: f[35] == "D" and f[11] == "before-2")
    peer.conn.sendall(peer.report("before-2", "e-b2"))
    second.join()
    assert fix._callers_poller is kept is not None  # one poller per socket, not one per order
    # the peer drops the connection; the client reconnects to the same port and logs on again
    server_port = fix.port
    listener = socket.socket()
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        fix.port = listener.getsockname()[1]
        peer.conn.close()
        listener.settimeout(BOUND)
        conn, _ = listener.accept()
        again = Peer(conn)
        again.seq = peer.seq
        try:
            assert again.read_until(lambda f: f[35] == "A")
            again.send("A", (98, 0), (108, 30))
            assert fix.wait_active(BOUND)
            third = Caller(fix, handed, "after-1").start()
            assert third.reading.wait(BOUND)
            again.read_until(lambda f: f[35] == "D" and f[11] == "after-1")
            again.conn.sendall(again.report("after-1", "e-a1"))
            third.join()
            assert third.read is True and third.answered()
            assert fix._callers_poller is not kept and fix._callers_poller.sock is fix._sock
        finally:
            conn.close()
    finally:
        listener.close()
        fix.port = server_port
    assert client_order_ids(handed) == ["before-1", "before-2", "after-1"]
