"""A TCP relay between the FIX venue and an acceptor, with faults on the acceptor → client side.

The relay listens on a free 127.0.0.1 port; each accepted client connection gets its own
connection to the acceptor (through the peer's connector, so into its network namespace).
Acceptor → client bytes are cut into FIX frames (at ``10=nnn<SOH>``) and passed through
``mode``:

- ``"pass"``: forwarded (after ``delay_s``);
- ``"hold"``: kept back (lost when the connection dies: the answer was "in flight");
- ``"swallow_heartbeats"``: Heartbeats (35=0) and TestRequests (35=1) are dropped;
- ``"cut"``: the next frame is forwarded half, then both sides are closed (mode back to pass).
"""

from __future__ import annotations

import re
import socket
import threading
import time

_FRAME_END = re.compile(rb"\x0110=\d{3}\x01")


class Relay:
    def __init__(self, connect, target_port: int) -> None:
        self._connect = connect
        self._target_port = target_port
        self.mode = "pass"
        self.delay_s = 0.0
        self.frames_dropped = 0
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = self._connect("127.0.0.1", self._target_port, 5.0)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump_up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(upstream, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
        except OSError:
            pass
        self._close(client, upstream)

    def _pump_down(self, upstream: socket.socket, client: socket.socket) -> None:
        buf = b""
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    m = _FRAME_END.search(buf)
                    if m is None:
                        break
                    frame, buf = buf[: m.end()], buf[m.end():]
                    if not self._forward(frame, client, upstream):
                        return
        except OSError:
            pass
        self._close(client, upstream)

    def _forward(self, frame: bytes, client: socket.socket, upstream: socket.socket) -> bool:
        mode = self.mode
        if mode == "hold":
            self.frames_dropped += 1
            return True
        if mode == "swallow_heartbeats" and (b"\x0135=0\x01" in frame or b"\x0135=1\x01" in frame):
            self.frames_dropped += 1
            return True
        if mode == "cut":
            self.mode = "pass"
            client.sendall(frame[: len(frame) // 2])
            self._close(client, upstream)
            return False
        if self.delay_s:
            time.sleep(self.delay_s)
        client.sendall(frame)
        return True

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def cut_all(self) -> None:
        """Close every relayed connection now."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            self._close(*pair)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self.cut_all()
