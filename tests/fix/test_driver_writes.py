"""Writes to a FIX peer never block the sender (docs/DESIGN.md "Threads"): an actor sends an
order on its own thread, so a peer that stops reading must not stall it. A real TCP peer here
(a plain socket played by the test: Logon, then silence) lets the kernel buffers fill."""

from __future__ import annotations

import socket
import threading

from protocols.venues.fix._codec import Framer, encode
from protocols.venues.fix._driver import FixConnection
from protocols.venues.fix._session import FixSession, SessionConfig, SystemClock
from protocols.venues.fix._store import SeqStore

PEER, US = "EXEC", "CLIENT1"
TEXT = "x" * 2000  # Text (58): makes each frame ~2 KB, so a few hundred fill small buffers


def small_buffers(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.settimeout(timeout)
    sock.connect((host, port))
    return sock


def read_frames(conn: socket.socket, framer: Framer, until) -> list:
    frames: list = []
    while not until(frames):
        data = conn.recv(65536)
        assert data, "client closed the connection"
        frames += framer.feed(data)
    return frames


def test_a_peer_that_stops_reading_never_blocks_send_app_and_gets_every_frame_in_order() -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    session = FixSession(SessionConfig("FIX.4.4", US, PEER, heartbeat_s=30), SeqStore.memory(), SystemClock())
    conn_ready = threading.Event()
    accepted: list[socket.socket] = []

    def accept() -> None:
        conn, _ = server.accept()
        accepted.append(conn)
        conn_ready.set()

    threading.Thread(target=accept, daemon=True).start()
    fix = FixConnection(session, "127.0.0.1", server.getsockname()[1], on_app=lambda item: None, connector=small_buffers)
    fix.start()
    try:
        assert conn_ready.wait(5)
        conn = accepted[0]
        conn.settimeout(10)
        framer = Framer()
        (logon,) = read_frames(conn, framer, lambda fs: len(fs) >= 1)
        assert dict(logon.pairs)[35] == "A"
        conn.sendall(encode("FIX.4.4", "A", [(34, 1), (49, PEER), (52, "20260105-12:00:00.000"), (56, US), (98, 0), (108, 30)]))
        assert fix.wait_active(5)
        # the peer stops reading: every send_app returns at once, the rest queues in the outbox
        n = 400
        seqs = [fix.send_app("D", [(11, f"o-{k}"), (58, TEXT)]) for k in range(n)]
        assert seqs == list(range(2, n + 2))
        assert fix.outbox_bytes > 0, "the kernel buffers took 800 KB from a 4 KB window: the test proves nothing"
        # the peer reads again: the connection thread writes the rest, in MsgSeqNum order
        frames = read_frames(conn, framer, lambda fs: len(fs) >= n)
        got = [int(dict(f.pairs)[34]) for f in frames]
        assert got == seqs
        assert [dict(f.pairs)[11] for f in frames] == [f"o-{k}" for k in range(n)]
        assert fix.outbox_bytes == 0
    finally:
        fix.close(timeout=1.0)
        for conn in accepted:
            conn.close()
        server.close()
