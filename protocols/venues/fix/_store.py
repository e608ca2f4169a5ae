"""Per-session sequence numbers on disk, so they survive a crash (FIX 4.4 Vol 2, "Sequence Numbers").

One small file per session, ``<store_dir>/<BeginString>-<SenderCompID>-<TargetCompID>.seqnums``,
holding the next MsgSeqNum to send and the next one expected. Both are written *before* the
message they cover is sent (send side) and *after* it was handled (receive side), in place with
``os.pwrite`` on a fixed-width record (never a torn, half-truncated file). ``fsync=True`` also
survives a power loss; without it the page cache survives a killed process, which is what the
tests prove. No outgoing message bodies are stored: this initiator never re-sends application
messages (a ResendRequest is answered with SequenceReset-GapFill).

The inbox (``<name>.inbox``, when opened with ``inbox=N``) keeps the last N application messages
*received*, each written before the next expected MsgSeqNum moves past it: a process killed
after the number moved but before the runtime made the message's effect durable (an
ExecutionReport not yet in the journal) gets the message back from here at restart
(:meth:`kept`), where the peer would not resend it. It holds ExecutionReports and rejects, no
logon secrets. Once the runtime has journaled the effect of the messages handed on up to one of
them, :meth:`trim_inbox` drops them (the runtime does at start, once the replayed ones are
applied, and at a clean stop): a start replays only what may not have been applied, never the
same messages at every start.

Example::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> s = SeqStore.open(d, "FIX.4.4", "CLIENT1", "EXECUTOR"); s.set(5, 7); s.close()
    >>> SeqStore.open(d, "FIX.4.4", "CLIENT1", "EXECUTOR").next_sender
    5
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from pathlib import Path

_RECORD = "{:020d} {:020d}\n"
#: the MsgType of a session-level Reject: delivered to the application, never kept (it carries no
#: effect to replay)
_NOT_KEPT = frozenset({"3"})


def keeps_message(msg_type: str) -> bool:
    """True for the received application messages the inbox keeps (every MsgType the session
    delivers to the application but a session-level Reject)."""
    return msg_type not in _NOT_KEPT
_SIZE = len(_RECORD.format(0, 0))
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class SeqStore:
    """The two sequence numbers of one FIX session, persisted in place.

    ``next_sender``: MsgSeqNum of our next message; ``next_target``: the peer's next expected.
    ``memory()`` gives a store that persists nothing (for tests of the state machine).
    Raises ``ValueError`` when the file exists but is not a sequence-number record.
    """

    def __init__(self, path: Path | None, fsync: bool = False, inbox: int = 0) -> None:
        self.path = path
        self._fsync = fsync
        self._fd: int | None = None
        self._inbox_max = inbox
        self._inbox: deque[bytes] = deque(maxlen=inbox or None)
        self._inbox_fd: int | None = None
        self._inbox_lines = 0
        #: keep (the session's thread) and trim (the runtime's) change the inbox and its file
        self._inbox_lock = threading.Lock()
        self.next_sender = 1
        self.next_target = 1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            data = os.pread(self._fd, _SIZE, 0)
            if data:
                parts = data.decode("ascii", "replace").split()
                if len(parts) != 2 or not all(p.isdigit() for p in parts):
                    os.close(self._fd)
                    raise ValueError(f"{path}: not a FIX sequence-number file")
                self.next_sender, self.next_target = int(parts[0]), int(parts[1])
            else:
                self._write()
            if inbox:
                self._open_inbox(path.with_suffix(".inbox"))

    @classmethod
    def open(cls, store_dir: Path, begin_string: str, sender: str, target: str, *, fsync: bool = False,
             inbox: int = 0) -> SeqStore:
        """The store of session ``begin_string``/``sender``/``target`` under ``store_dir`` (created);
        ``inbox``: how many received application messages to keep (0: none)."""
        name = _SAFE.sub("_", f"{begin_string}-{sender}-{target}") + ".seqnums"
        return cls(Path(store_dir) / name, fsync, inbox)

    @property
    def keeps(self) -> bool:
        """True when received application messages are kept (``keep``)."""
        return self._inbox_fd is not None

    def kept(self) -> list[bytes]:
        """The application messages kept, oldest first (the last ``inbox`` of them)."""
        with self._inbox_lock:
            return list(self._inbox)

    def trim_inbox(self, through: bytes) -> int:
        """Drop the kept messages up to and including ``through`` (a kept frame, as :meth:`keep`
        got it): their effect is durable. The inbox file is rewritten (never torn) before this
        returns; nothing is dropped when ``through`` is not kept (any more). Returns how many."""
        with self._inbox_lock:
            inbox = self._inbox
            if self._inbox_fd is None or through not in inbox:
                return 0
            n = 0
            while inbox:
                n += 1
                if inbox.popleft() == through:
                    break
            self._rewrite_inbox()
            return n

    def keep(self, raw: bytes) -> None:
        """Write a received application message (a whole frame) before its MsgSeqNum is passed."""
        if self._inbox_fd is None:
            return
        with self._inbox_lock:
            self._inbox.append(raw)
            os.write(self._inbox_fd, raw.hex().encode("ascii") + b"\n")
            self._inbox_lines += 1
            if self._inbox_lines > 2 * self._inbox_max:
                self._rewrite_inbox()
            elif self._fsync:
                os.fdatasync(self._inbox_fd)

    def _open_inbox(self, path: Path) -> None:
        if path.exists():
            for line in path.read_bytes().splitlines():
                try:
                    self._inbox.append(bytes.fromhex(line.decode("ascii")))
                except ValueError:
                    break  # a torn last line (killed mid-write): what follows it was never written
        self._inbox_path = path
        self._rewrite_inbox()

    def _rewrite_inbox(self) -> None:
        """Write the kept messages to a new file and rename it over the old one (never torn)."""
        tmp = self._inbox_path.with_suffix(".inbox.tmp")
        data = b"".join(raw.hex().encode("ascii") + b"\n" for raw in self._inbox)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            if self._fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._inbox_path)
        if self._inbox_fd is not None:
            os.close(self._inbox_fd)
        self._inbox_fd = os.open(self._inbox_path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._inbox_lines = len(self._inbox)

    @classmethod
    def memory(cls) -> SeqStore:
        """A store that keeps the numbers in memory only."""
        return cls(None)

    def set(self, next_sender: int, next_target: int) -> None:
        """Persist both numbers."""
        self.next_sender, self.next_target = next_sender, next_target
        self._write()

    def set_sender(self, next_sender: int) -> None:
        """Persist the next outgoing MsgSeqNum (before the message using the previous one is sent)."""
        self.next_sender = next_sender
        self._write()

    def set_target(self, next_target: int) -> None:
        """Persist the next expected incoming MsgSeqNum (after the message before it was handled)."""
        self.next_target = next_target
        self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        os.pwrite(self._fd, _RECORD.format(self.next_sender, self.next_target).encode("ascii"), 0)
        if self._fsync:
            os.fdatasync(self._fd)

    def close(self) -> None:
        """Close the files (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with self._inbox_lock:
            if self._inbox_fd is not None:
                os.close(self._inbox_fd)
                self._inbox_fd = None
