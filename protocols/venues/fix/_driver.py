"""The thin socket/thread driver around :class:`~._session.FixSession`.

One daemon thread per connection owns the reading side: it connects (plain TCP or TLS via
the standard ``ssl`` module), feeds received bytes and timer ticks to the session under one
lock, writes the bytes the session returns, hands application messages to ``on_app`` (outside
the lock, in arrival order) and reconnects with jittered exponential backoff after any
disconnect. Other threads send application messages with :meth:`FixConnection.send_app`
(under the same lock, so MsgSeqNum order is wire order). ``close()`` sends Logout, waits
briefly for the answer and stops the thread.

Writes never block the caller: every frame goes through one outbox, in MsgSeqNum order. On a
plain TCP socket the caller writes what the kernel takes at once (the socket is non-blocking);
whatever is left (a peer that stops reading fills the socket's buffers) and every frame on a
TLS socket are written by the connection thread when the socket can take them. An actor that
sends an order therefore never waits on the peer (docs/DESIGN.md "Threads").

**A waiting caller reads** (leader/follower, ``caller_reads``): a thread that waits for the answer
to a request it sent (:meth:`FixConnection.read_for`: ``Runtime.submit(...).result()`` through
the FIX venue) takes the reader's role itself instead of sleeping until the connection thread
has read the answer and woken it: it polls the socket, feeds the session, writes what the
session answers (Heartbeat, ResendRequest, ...), runs the timers and hands application messages
on, until its own answer is there (or its wait ends); the answer then needs no thread wake-up.
Exactly one thread reads at a time: the reader's token (a lock) is held by the leading caller for
its whole turn, and by the connection thread for each read it makes; other waiting callers
queue for the turn (followers) while their answers come in; the connection thread steps aside
while callers read and takes the socket back once no caller has read for ``follow_linger_s``
(a socket closed meanwhile at once). A caller that takes the turn while the connection thread
polls the socket wakes it (a wake-up socket of its own), so that it steps aside while the peer
works on the request instead of waking with the caller when the answer arrives. Everything a reader holds between reads belongs to the
session (the frame buffer, the messages read but not yet handed on), so a caller that stops
waiting halfway (a timeout; a Ctrl-C, which the main thread defers while it reads and honours
within 0.5 s: actors/kernel/dispatcher.py) hands back a consistent session.
"""

from __future__ import annotations

import os
import random
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from loguru import logger

from ._session import ACTIVE, DISCONNECTED, Deliver, Disconnect, FixSession, GapFilled, NotLoggedOn, Send, StateChanged

Connector = Callable[[str, int, float], socket.socket]


def tcp_connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection with Nagle off (FIX messages are small and latency-bound)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``min(initial·2^(n-1), maximum) × U(1-jitter, 1+jitter)`` seconds."""

    initial_s: float = 0.2
    maximum_s: float = 10.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The delay before reconnect attempt ``attempt`` (1-based)."""
        base = min(self.initial_s * (2 ** max(attempt - 1, 0)), self.maximum_s)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


class SendFailed(Exception):
    """Writing to the socket failed; ``delivered`` is False only when no byte can have left."""

    def __init__(self, message: str, delivered: bool) -> None:
        super().__init__(message)
        self.delivered = delivered


def _drain(wake: socket.socket) -> None:
    """Read a non-blocking wake-up socket empty."""
    try:
        while wake.recv(4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


class _Reader:
    """One reader's poller on one socket (the connection thread's, or a reading caller's): the
    socket and the wake-up pair, the socket's POLLOUT asked for only while the outbox holds bytes.
    poll, not select: no FD_SETSIZE limit in a host process with many files open."""

    __slots__ = ("sock", "tls", "fd", "wake_fd", "poller", "polling_out", "aside", "aside_fd")

    def __init__(self, sock: socket.socket, wake_fd: int, aside: socket.socket | None = None) -> None:
        self.sock = sock
        self.tls = sock if isinstance(sock, ssl.SSLSocket) else None
        self.poller = select.poll()
        self.fd, self.wake_fd = sock.fileno(), wake_fd
        self.poller.register(self.fd, select.POLLIN)
        self.poller.register(wake_fd, select.POLLIN)
        self.polling_out = False
        #: the connection thread's own wake-up to step aside (``FixConnection._step_aside``): its
        #: own socket, so a reading caller, which polls the shared wake-up too, never takes it
        self.aside = aside
        self.aside_fd = aside.fileno() if aside is not None else -1
        if aside is not None:
            self.poller.register(self.aside_fd, select.POLLIN)

    def poll(self, wait: float, writing: bool, drain_wake: Callable[[], None]) -> tuple[bool, bool]:
        """Poll up to ``wait`` seconds: (the socket is readable or failed, the socket takes writes)."""
        if writing is not self.polling_out:
            self.poller.modify(self.fd, select.POLLIN | (select.POLLOUT if writing else 0))
            self.polling_out = writing
        sock_events = 0
        for ready_fd, events in self.poller.poll(wait * 1000.0):
            if ready_fd == self.fd:
                sock_events = events
            elif ready_fd == self.aside_fd and self.aside is not None:
                _drain(self.aside)
            elif events & select.POLLIN:
                drain_wake()
        # an error or hang-up shows as readable: recv then reports it
        return bool(sock_events & (select.POLLIN | select.POLLERR | select.POLLHUP)), bool(sock_events & select.POLLOUT)


class FixConnection:
    """Runs one :class:`FixSession` over a socket on a daemon thread (see the module docstring).

    ``on_app(action)`` gets every :class:`Deliver` and :class:`GapFilled`, in arrival order, from
    the thread that read it; ``on_state(state, detail)`` every state change; ``on_tick()`` runs
    whenever a read timed out (at least every 0.5 s while connected and quiet). ``caller_reads``:
    waiting callers read (:meth:`read_for`), the connection thread stepping aside until none has
    for ``follow_linger_s`` seconds (plain TCP only: off with ``tls``). ``connector(host, port, timeout)`` makes the socket (tests
    connect into a private network namespace with it); ``tls`` wraps it.
    """

    def __init__(
        self,
        session: FixSession,
        host: str,
        port: int,
        *,
        on_app: Callable[[object], None],
        on_state: Callable[[str, str], None] | None = None,
        connector: Connector | None = None,
        tls: ssl.SSLContext | None = None,
        tls_server_name: str | None = None,
        backoff: Backoff = Backoff(),
        connect_timeout_s: float = 5.0,
        seed: int = 0,
        name: str = "fix",
        on_tick: Callable[[], None] | None = None,
        caller_reads: bool = False,
        follow_linger_s: float = 0.002,
    ) -> None:
        self.session = session
        self.host, self.port = host, port
        self._on_app = on_app
        self._on_state = on_state or (lambda state, detail: None)
        self._on_tick = on_tick
        self._connector = connector or tcp_connect
        self._tls = tls
        self._tls_server_name = tls_server_name or host
        self._backoff = backoff
        self._connect_timeout = connect_timeout_s
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._active = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._name = name
        #: bytes accepted for the wire but not yet written, in MsgSeqNum order (under the lock)
        self._outbox = bytearray()
        #: wakes the connection thread when the outbox needs it (it may be waiting to read)
        self._wake_r, self._wake_w = self._wake_pair()
        #: wakes the connection thread only, out of its poll, to step aside (``_step_aside``)
        self._aside_r, self._aside_w = self._wake_pair()
        self.connects = 0
        self.disconnects = 0
        self.last_disconnect: str | None = None
        #: waiting callers read the socket themselves (:meth:`read_for`); off: only this thread reads.
        #: Plain TCP only: an OpenSSL connection object is not safe to use from two threads at once
        #: (this thread's poll-and-flush would overlap a caller's read), so with TLS only this thread reads
        self.caller_reads_on = caller_reads and tls is None
        self._follow_linger_s = follow_linger_s
        #: the reader's token: held by whichever thread reads the socket and hands messages on
        self._reader = threading.Lock()
        #: the thread (ident) whose turn it is to read, a waiting caller; None: the connection thread
        self._leader: int | None = None
        #: callers queued for the turn, oldest first: each waits on its own Event, set when its
        #: answer came (``caller_answered``) or when the turn is its (one wake-up, never a herd)
        self._queued: dict[int, threading.Event] = {}
        self._leads = 0  # turns taken so far (the connection thread steps aside while they go on)
        #: application messages read and not yet handed on (the reader's, whoever reads next)
        self._to_app: deque[object] = deque()
        #: reads that brought bytes made by waiting callers (not the connection thread)
        self.caller_reads = 0
        #: the waiting callers' poller on the current socket (used by the token's holder only)
        self._callers_poller: _Reader | None = None
        #: the connection thread is about to poll (or polls) the socket itself (under the lock): a
        #: caller taking the turn wakes it (``_aside_w``), so that it steps aside now, while the
        #: peer works on the request, rather than waking with the caller when the answer arrives
        self._polling = False
        #: turns on which the connection thread was told to step aside (``read_for``)
        self.step_asides = 0

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def _wake_pair() -> tuple[socket.socket, socket.socket]:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        return wake_r, wake_w

    def start(self) -> None:
        """Start the connection thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            if self._wake_r.fileno() == -1:  # closed by an earlier close()
                self._wake_r, self._wake_w = self._wake_pair()
                self._aside_r, self._aside_w = self._wake_pair()
            self._thread = threading.Thread(target=self._run, name=f"{self._name}-session", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Logout (when logged on), wait up to ``timeout`` for the answer, stop the thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            if self.session.state == ACTIVE and self._sock is not None:
                self._carry_out(self.session.logout("flowroute stopping"))
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.session.state not in (DISCONNECTED,) and time.monotonic() < deadline and self._sock is not None:
                self._active.wait(0.05)
        self._stopping.set()
        with self._lock:
            self._close_socket("stopped")
        thread.join(timeout)
        self._thread = None
        if not thread.is_alive():
            for end in (self._wake_r, self._wake_w, self._aside_r, self._aside_w):
                end.close()

    def wait_active(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the session to be ACTIVE; True when it is."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.session.state != ACTIVE:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    return False
                self._active.wait(left)
            return True

    def drop(self, reason: str = "dropped by request") -> None:
        """Close the socket now (tests, operator); the thread reconnects."""
        with self._lock:
            self._close_socket(reason)

    # ------------------------------------------------------------------ sending

    def send_app(self, msg_type: str, body: Iterable[tuple[int, object]] | bytes, on_seq: Callable[[int], None] | None = None,
                 sending_time: bytes | None = None) -> int:
        """Send one application message; returns its MsgSeqNum (``body`` and ``sending_time``
        as :meth:`FixSession.send_app` takes them).

        ``on_seq(seq)`` runs under the session lock before the bytes are written, so an answer
        that refers to the MsgSeqNum (Reject 45) always finds what it refers to. Raises
        :class:`NotLoggedOn` (nothing sent) or :class:`SendFailed`.
        """
        with self._lock:
            sock = self._sock
            if sock is None:
                raise NotLoggedOn("FIX session is not connected")
            send = self.session.send_app(msg_type, body, sending_time)
            if on_seq is not None:
                on_seq(send.seq)
            try:
                self._write(send.raw)
            except OSError as exc:
                self._close_socket(f"send failed: {exc}")
                raise SendFailed(f"send of MsgSeqNum {send.seq} failed: {exc}", delivered=True) from exc
            return send.seq

    @property
    def outbox_bytes(self) -> int:
        """Bytes accepted for the wire and not yet written (the peer is not reading fast enough)."""
        with self._lock:
            return len(self._outbox)

    def _write(self, raw: bytes) -> None:
        """Queue ``raw`` behind what is already queued; write at once what the socket takes
        without waiting (plain TCP only), leave the rest to the connection thread. Under the lock.
        Raises OSError when the connection is broken."""
        sock = self._sock
        if sock is None:
            return
        if not self._outbox and not isinstance(sock, ssl.SSLSocket):
            try:
                # the socket is in non-blocking mode at the OS level (it has a timeout): never waits
                written = os.write(sock.fileno(), raw)
            except BlockingIOError:
                written = 0
            if written == len(raw):
                return
            raw = raw[written:]
        was_empty = not self._outbox
        self._outbox += raw
        if was_empty:
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, InterruptedError):
                pass  # a wake-up is already pending

    def _flush(self, sock: socket.socket) -> None:
        """Write what the socket takes of the outbox (the connection thread, under the lock)."""
        if not self._outbox or self._sock is not sock:
            return
        try:
            if isinstance(sock, ssl.SSLSocket):
                written = sock.send(self._outbox)
            else:
                written = os.write(sock.fileno(), self._outbox)
        except (TimeoutError, BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._close_socket(f"send failed: {exc}")
            return
        del self._outbox[:written]

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                sock = self._connect()
            except OSError as exc:
                attempt += 1
                delay = self._backoff.delay(attempt, self._rng)
                self.last_disconnect = f"connect failed: {exc}"
                logger.debug("FIX {}: connect to {}:{} failed ({}); retry in {:.2f} s", self._name, self.host, self.port, exc, delay)
                self._stopping.wait(delay)
                continue
            attempt = 0
            self.connects += 1
            # non-blocking at the OS level from here on (a timeout socket is): writes never wait.
            # A plain socket is non-blocking for Python too: the read loop polls before each recv,
            # so recv need not poll again (one syscall less per message); TLS keeps the timeout
            if isinstance(sock, ssl.SSLSocket):
                sock.settimeout(self._connect_timeout)
            else:
                sock.setblocking(False)
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    return
                self._sock = sock
                self._carry_out(self.session.connected())
            try:
                self._read_loop(sock)
            except Exception as exc:  # noqa: BLE001 - never let the session thread die: log, reconnect
                logger.exception("FIX {}: session loop failed: {}", self._name, exc)
                with self._lock:
                    self._close_socket(f"internal error: {type(exc).__name__}")
            if not self._stopping.is_set():
                attempt += 1
                self._stopping.wait(self._backoff.delay(attempt, self._rng))

    def _connect(self) -> socket.socket:
        sock = self._connector(self.host, self.port, self._connect_timeout)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self._tls_server_name)
            except (OSError, ssl.SSLError):
                sock.close()
                raise
        return sock

    def _read_loop(self, sock: socket.socket) -> None:
        reader = _Reader(sock, self._wake_r.fileno(), self._aside_r)
        while not self._stopping.is_set():
            with self._lock:
                if self._sock is not sock:
                    return
                if self._leader is not None or self._queued:
                    self._follow(sock)  # callers read: step aside until none has for a while
                    continue
                wait = max(0.0, min(self.session.next_deadline() - self.session.clock.monotonic(), 0.5))
                self._polling = True  # from here a caller taking the turn wakes this thread (read_for)
            try:
                if not self._step(reader, wait, False):
                    return
            finally:
                self._polling = False

    def _follow(self, sock: socket.socket) -> None:
        """(The connection thread, under the lock.) Wait while callers read: until no caller has led
        or queued for ``follow_linger_s`` in a row (then this thread reads again), or the socket
        changed or the connection stops (then the read loop ends). The leading caller runs the
        session's timers meanwhile."""
        seen = -1
        while self._sock is sock and not self._stopping.is_set():
            if self._leader is None and not self._queued and self._leads == seen:
                return
            seen = self._leads
            self._active.wait(self._follow_linger_s)

    def _step(self, reader: _Reader, wait: float, leading: bool) -> bool:
        """One read: poll up to ``wait`` s, read what arrived, feed it to the session (or tick its
        timers), write its answers, hand application messages on. ``leading``: the calling thread
        holds the reader's token (a waiting caller's turn); else the token is taken for the read
        only, and a read is left to the caller that holds it. False when the socket is gone."""
        sock = reader.sock
        with self._lock:
            if self._sock is not sock:
                return False
            writing = bool(self._outbox)
        tls = reader.tls
        try:
            if tls is not None and tls.pending():
                readable = True
            else:
                if sock.fileno() == -1:
                    raise ValueError("socket closed")
                readable, out = reader.poll(wait, writing, self._drain_wake)
                if out:
                    with self._lock:
                        self._flush(sock)
        except ValueError:  # a socket closed by another thread (drop / close): fileno() is -1
            self._lost(sock, "socket closed")
            return False
        except OSError as exc:
            self._lost(sock, f"connection lost: {exc}")
            return False
        if leading:
            return self._read_and_hand_on(sock, readable, leading)
        if not readable and self._leader is not None:
            return True  # woken to step aside (read_for): the caller leads, and runs the timers
        if not self._reader.acquire(blocking=False):
            return True  # a caller holds the turn: it reads this (the loop then steps aside)
        try:
            return self._read_and_hand_on(sock, readable, leading)
        finally:
            self._reader.release()

    def _read_and_hand_on(self, sock: socket.socket, readable: bool, leading: bool) -> bool:
        data = None
        if readable:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                data = None
            except ValueError:
                self._lost(sock, "socket closed")
                return False
            except OSError as exc:
                self._lost(sock, f"connection lost: {exc}")
                return False
        to_app = self._to_app
        with self._lock:
            if self._sock is not sock:
                return False
            if data == b"":
                self._close_socket("peer closed the connection")
                return False
            if data or not readable:
                # what is read is the session's at once (its frame buffer, the messages to hand on):
                # whichever thread reads next goes on from here
                to_app.extend(self._carry_out(self.session.receive(data) if data else self.session.tick()))
                if data and leading:
                    self.caller_reads += 1
        while to_app:  # in arrival order; what a stopped reader left, the next one hands on first
            item = to_app.popleft()
            try:
                self._on_app(item)
            except Exception as exc:  # noqa: BLE001 - a handler's bug must not kill the session thread
                logger.exception("FIX {}: application handler failed on {}: {}", self._name, item, exc)
        if data is None and not readable and self._on_tick is not None:
            try:
                self._on_tick()
            except Exception as exc:  # noqa: BLE001 - a handler's bug must not kill the session thread
                logger.exception("FIX {}: tick handler failed: {}", self._name, exc)
        return True

    # ------------------------------------------------------------------ a waiting caller reads

    def read_for(self, until: Callable[[], bool], deadline: float | None) -> bool:
        """Read the socket in the calling thread until ``until()`` (the caller's answer is there),
        ``deadline`` (``time.monotonic()`` seconds; None: no limit) or the connection goes; see
        the module docstring ("A waiting caller reads"). Another caller reading: this one queues
        for the turn and reads when it gets it, unless its answer came first. Returns at once
        (False) when ``caller_reads`` is off, the connection is not up, or the calling thread is
        the connection's own. ``until`` must not block and is checked at least every 0.5 s (the
        main thread ends its turn on a deferred Ctrl-C with it: actors/kernel/dispatcher.py);
        whoever answers the caller from another thread calls :meth:`caller_answered`, so that a
        reading caller stops polling at once. True when the calling thread had the turn."""
        if not self.caller_reads_on or threading.current_thread() is self._thread:
            return False
        me = threading.get_ident()
        monotonic = time.monotonic
        queued = holds = False
        try:
            with self._lock:
                sock = self._sock
                if sock is None or self._stopping.is_set() or until():
                    return False
                if self._leader is None and not self._queued:
                    self._leader = me
                    self._leads += 1
                    self._step_aside()
                else:
                    turn = self._queued[me] = threading.Event()
                    queued = True
                    if self._leader is None:
                        next(iter(self._queued.values())).set()  # the turn is free: the oldest takes it
            while queued:  # another caller reads: wait for the turn or the answer
                left = None if deadline is None else deadline - monotonic()
                if left is not None and left <= 0:
                    return False
                turn.wait(0.5 if left is None else min(left, 0.5))
                if until():
                    return False
                with self._lock:
                    if self._sock is not sock or self._stopping.is_set():
                        return False
                    turn.clear()
                    if self._leader is None and next(iter(self._queued)) == me:
                        del self._queued[me]
                        queued = False
                        self._leader = me
                        self._leads += 1
                        self._step_aside()
            # the connection thread holds the token for one read at most: wait for it to finish it
            while not holds:
                left = 0.5 if deadline is None else max(0.0, min(deadline - monotonic(), 0.5))
                holds = self._reader.acquire(timeout=left)
                if not holds and (until() or self._sock is not sock or (deadline is not None and monotonic() >= deadline)):
                    return False
            reader = self._callers_poller
            wake_fd = self._wake_r.fileno()
            if reader is None or reader.sock is not sock or reader.wake_fd != wake_fd:
                # one poller per connection for the callers (only the token's holder uses it): not
                # a poll object and two registrations per order; a new socket gets a new one
                reader = self._callers_poller = _Reader(sock, wake_fd)
            clock = self.session.clock
            while not until() and not self._stopping.is_set():
                wait = min(self.session.next_deadline() - clock.monotonic(), 0.5)
                if deadline is not None:
                    left = deadline - monotonic()
                    if left <= 0:
                        break
                    wait = min(wait, left)
                try:
                    if not self._step(reader, max(0.0, wait), True):
                        break
                except Exception as exc:  # noqa: BLE001 - a session bug never reaches the caller: as on the connection thread
                    logger.exception("FIX {}: session read failed in a waiting caller: {}", self._name, exc)
                    with self._lock:
                        if self._sock is sock:
                            self._close_socket(f"internal error: {type(exc).__name__}")
                    break
            return True
        finally:
            if holds:
                self._reader.release()
            with self._lock:
                if queued:
                    self._queued.pop(me, None)
                if self._leader == me:
                    self._leader = None
                if self._leader is None and self._queued:
                    next(iter(self._queued.values())).set()  # the oldest waiting caller reads next

    def _step_aside(self) -> None:
        """(Under the lock, a caller has just taken the turn.) If the connection thread polls the
        socket (no caller had read for ``follow_linger_s``), wake it now: it sees the turn taken and
        steps aside (``_follow``). Left polling, it would wake with the caller when the answer comes
        in, both runnable on the answer's path, only to find the turn taken (the caller has just
        written its request, so the peer is working on it meanwhile)."""
        if self._polling:
            self.step_asides += 1
            try:
                self._aside_w.send(b"\0")
            except (BlockingIOError, InterruptedError, OSError):
                pass  # a wake-up is already pending, or the connection is closing

    def caller_answered(self, ident: int) -> None:
        """The waiting caller on thread ``ident`` has its answer (from whichever thread gave it): a
        reading caller stops polling, a queued one stops waiting for the turn."""
        if ident == threading.get_ident():
            return  # the reader answered itself: it sees it at once
        with self._lock:
            if self._leader == ident:
                try:
                    self._wake_w.send(b"\0")
                except (BlockingIOError, InterruptedError, OSError):
                    pass
            else:
                turn = self._queued.get(ident)
                if turn is not None:
                    turn.set()

    def _drain_wake(self) -> None:
        _drain(self._wake_r)

    def _carry_out(self, actions) -> list[object]:
        """Write, disconnect, note state changes (under the lock); return what goes to the app."""
        to_app: list[object] = []
        for action in actions:
            if isinstance(action, Send):
                if self._sock is None:
                    continue
                try:
                    self._write(action.raw)
                except OSError as exc:
                    self._close_socket(f"send failed: {exc}")
            elif isinstance(action, (Deliver, GapFilled)):
                to_app.append(action)
            elif isinstance(action, Disconnect):
                if action.error:
                    logger.error("FIX {}: disconnecting: {}", self._name, action.reason)
                self._close_socket(action.reason)
            elif isinstance(action, StateChanged):
                self._state(action.state, action.detail)
        return to_app

    def _lost(self, sock: socket.socket, reason: str) -> None:
        """Close ``sock`` for ``reason`` if it is still the connection's socket: another thread
        (a drop, a close, a reconnect) may have closed or replaced it since ``sock`` was read."""
        with self._lock:
            if self._sock is sock:
                self._close_socket(reason)

    def _close_socket(self, reason: str) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        # frames never written are lost with the connection, as unacknowledged bytes in the
        # kernel would be: the peer asks for them again (ResendRequest) after the next logon
        self._outbox.clear()
        self._callers_poller = None  # the next caller polls the next socket
        self.disconnects += 1
        self.last_disconnect = reason
        try:
            sock.close()
        except OSError:
            pass
        for action in self.session.disconnected(reason):
            if isinstance(action, StateChanged):
                self._state(action.state, action.detail)

    def _state(self, state: str, detail: str) -> None:
        self._active.notify_all()
        try:
            self._on_state(state, detail)
        except Exception as exc:  # noqa: BLE001 - a listener's bug must not kill the session thread
            logger.exception("FIX {}: state listener failed: {}", self._name, exc)
