"""Local QuickFIX acceptors for trials and tests: ``executor`` and ``ordermatch`` from Debian.

``apt-get install -y libquickfix17 libquickfix-doc`` ships both example acceptors, gzipped,
under ``/usr/share/doc/libquickfix-doc/examples``. :class:`Peer` unpacks one, writes a
QuickFIX settings file (acceptor, one ``[SESSION]`` per client, ``FileStorePath`` for the
acceptor's own message store, which survives its restarts and serves resend requests) and
starts it with its stdin kept open (``ordermatch`` spins at 100 % CPU on EOF). Both bind
every interface, so where a private network namespace can be made (root, ``unshare -n``)
the acceptor runs in one with only loopback up, and :meth:`Peer.connector` connects into
that namespace (``setns`` on the connecting thread only).

Example (needs the Debian packages)::

    with Peer.start("executor", work_dir) as peer:
        venue = FixVenue("fix", config, connector=peer.connector())
"""

from __future__ import annotations

import ctypes
import gzip
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ._driver import tcp_connect

DOC = Path("/usr/share/doc/libquickfix-doc/examples")
BINARIES = {
    "executor": DOC / "executor" / "C++" / ".libs" / "executor.gz",
    "ordermatch": DOC / "ordermatch" / ".libs" / "ordermatch.gz",
}
#: the sessions each acceptor serves: (BeginString, its SenderCompID, the client's CompID)
SESSIONS = {
    "executor": (("FIX.4.2", "EXECUTOR", "CLIENT1"), ("FIX.4.4", "EXECUTOR", "CLIENT1"),
                 ("FIX.4.2", "EXECUTOR", "CLIENT2"), ("FIX.4.4", "EXECUTOR", "CLIENT2")),
    "ordermatch": (("FIX.4.2", "ORDERMATCH", "CLIENT1"), ("FIX.4.2", "ORDERMATCH", "CLIENT2")),
}
INSTALL_HINT = "apt-get install -y libquickfix17 libquickfix-doc"
_CLONE_NEWNET = 0x40000000


def available() -> bool:
    """True when both acceptor binaries are installed."""
    return all(path.exists() for path in BINARIES.values())


def can_unshare() -> bool:
    """True when a private network namespace can be made here (root with unshare and ip)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (inside a private namespace any port is free)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def extract(kind: str, directory: Path) -> Path:
    """Unpack the ``kind`` acceptor into ``directory``; raises ``FileNotFoundError`` with the install hint."""
    source = BINARIES.get(kind)
    if source is None:
        raise ValueError(f"unknown peer {kind!r}: executor or ordermatch")
    if not source.exists():
        raise FileNotFoundError(f"{source} not found: install the QuickFIX examples ({INSTALL_HINT})")
    target = Path(directory) / kind
    if not target.exists():
        with gzip.open(source, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        target.chmod(0o755)
    return target


def write_settings(kind: str, directory: Path, port: int, heartbeat_s: int = 30) -> Path:
    """Write the acceptor's QuickFIX settings file (store under ``directory/store``); return its path."""
    directory = Path(directory)
    lines = [
        "[DEFAULT]", "ConnectionType=acceptor", f"SocketAcceptPort={port}", "SocketReuseAddress=Y",
        "StartTime=00:00:00", "EndTime=00:00:00", f"FileStorePath={directory / 'store'}",
        "UseDataDictionary=N", f"HeartBtInt={heartbeat_s}", "",
    ]
    for begin, sender, target in SESSIONS[kind]:
        lines += ["[SESSION]", f"BeginString={begin}", f"SenderCompID={sender}", f"TargetCompID={target}", ""]
    path = directory / f"{kind}.cfg"
    path.write_text("\n".join(lines))
    return path


@dataclass
class Peer:
    """A running acceptor process (see the module docstring). Stop it with :meth:`stop`."""

    kind: str
    port: int
    directory: Path
    process: subprocess.Popen
    netns: bool
    log_path: Path

    @classmethod
    def start(cls, kind: str, directory: Path, port: int | None = None, *, netns: bool | None = None,
              wait_s: float = 10.0) -> Peer:
        """Start ``kind`` in ``directory`` (created) on ``port`` (free one by default); wait until it listens."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        binary = extract(kind, directory)
        use_ns = can_unshare() if netns is None else netns
        port = port or (free_port() if not use_ns else 56001)
        settings = write_settings(kind, directory, port)
        log_path = directory / f"{kind}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the acceptor writes to it; closed when the peer stops
        if use_ns:
            argv = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$1"', str(binary), str(settings)]
        else:
            argv = [str(binary), str(settings)]
        # stdin is a pipe we keep open: ordermatch reads commands from it and spins on EOF
        process = subprocess.Popen(argv, cwd=directory, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        peer = cls(kind, port, directory, process, use_ns, log_path)
        try:
            peer.wait_listening(wait_s)
        except BaseException:
            peer.stop()
            raise
        return peer

    def connector(self):
        """A ``connect(host, port, timeout)`` that reaches this acceptor (into its namespace when it has one)."""
        if not self.netns:
            return tcp_connect
        pid = self.process.pid

        def connect(host: str, port: int, timeout: float) -> socket.socket:
            return _connect_in_netns(pid, host, port, timeout)

        return connect

    def wait_listening(self, timeout: float) -> None:
        """Wait until a TCP connect succeeds; raise ``RuntimeError`` with the log tail when it never does."""
        deadline = time.monotonic() + timeout
        connect = self.connector()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                connect("127.0.0.1", self.port, 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        raise RuntimeError(f"{self.kind} did not listen on port {self.port} within {timeout:g} s: {tail}")

    def kill(self) -> None:
        """SIGKILL the acceptor (fault tests); its store on disk stays."""
        _kill_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the acceptor (SIGTERM, then SIGKILL) and close its stdin. Idempotent."""
        if self.process.poll() is None:
            _kill_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                _kill_group(self.process, signal.SIGKILL)
                self.process.wait(3)
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def restart(self, wait_s: float = 10.0) -> Peer:
        """Start the same acceptor again on the same port and store (after :meth:`kill`)."""
        self.stop()
        return Peer.start(self.kind, self.directory, None if self.netns else self.port, netns=self.netns, wait_s=wait_s)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies (Linux
    PR_SET_PDEATHSIG), so a killed test run or CLI never leaves an acceptor behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _netns_pid(pid: int) -> int:
    """The pid whose network namespace is the acceptor's: the ``unshare`` child (or itself after exec)."""
    return pid  # `unshare ... sh -c 'exec binary'` keeps one pid: unshare execs sh, sh execs the binary


def _connect_in_netns(pid: int, host: str, port: int, timeout: float) -> socket.socket:
    """Connect from a helper thread that entered ``pid``'s network namespace (setns is per thread)."""
    result: dict = {}

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{_netns_pid(pid)}/ns/net", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns: {os.strerror(err)}")
            finally:
                os.close(fd)
            result["sock"] = tcp_connect(host, port, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            result["error"] = exc

    thread = threading.Thread(target=run, name="netns-connect", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if "error" in result:
        error = result["error"]
        raise error if isinstance(error, OSError) else OSError(str(error))
    if "sock" not in result:
        raise OSError("netns connect timed out")
    return result["sock"]


def run_peer(kind: str, port: int, directory: Path | None = None) -> int:
    """``python run.py fix-peer executor|ordermatch --port N``: run the acceptor in the foreground
    on 127.0.0.1:N (every interface: QuickFIX cannot bind one) until Ctrl-C. Returns an exit code."""
    import tempfile

    directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix=f"fix-{kind}-"))
    try:
        peer = Peer.start(kind, directory, port, netns=False)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}")
        return 2
    def on_term(signum, frame):  # SIGTERM stops the acceptor too, as Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    sessions = ", ".join(f"{b} {s}<-{t}" for b, s, t in SESSIONS[kind])
    print(f"{kind} listening on port {port} (sessions: {sessions}); store and log in {directory}; Ctrl-C stops it")
    try:
        while peer.process.poll() is None:
            time.sleep(0.5)
        print(f"{kind} exited with {peer.process.returncode}; log: {peer.log_path}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        peer.stop()
        signal.signal(signal.SIGTERM, previous)
