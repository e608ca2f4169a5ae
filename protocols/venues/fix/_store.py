"""Per-session sequence numbers on disk, so they survive a crash (FIX 4.4 Vol 2, "Sequence Numbers").

One small file per session, ``<store_dir>/<BeginString>-<SenderCompID>-<TargetCompID>.seqnums``,
holding the next MsgSeqNum to send and the next one expected. Both are written *before* the
message they cover is sent (send side) and *after* it was handled (receive side), in place with
``os.pwrite`` on a fixed-width record (never a torn, half-truncated file). ``fsync=True`` also
survives a power loss; without it the page cache survives a killed process, which is what the
tests prove. No message bodies are stored: this initiator never re-sends application messages
(a ResendRequest is answered with SequenceReset-GapFill), so there is nothing secret on disk.

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
from pathlib import Path

_RECORD = "{:020d} {:020d}\n"
_SIZE = len(_RECORD.format(0, 0))
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class SeqStore:
    """The two sequence numbers of one FIX session, persisted in place.

    ``next_sender``: MsgSeqNum of our next message; ``next_target``: the peer's next expected.
    ``memory()`` gives a store that persists nothing (for tests of the state machine).
    Raises ``ValueError`` when the file exists but is not a sequence-number record.
    """

    def __init__(self, path: Path | None, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        self._fd: int | None = None
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

    @classmethod
    def open(cls, store_dir: Path, begin_string: str, sender: str, target: str, *, fsync: bool = False) -> "SeqStore":
        """The store of session ``begin_string``/``sender``/``target`` under ``store_dir`` (created)."""
        name = _SAFE.sub("_", f"{begin_string}-{sender}-{target}") + ".seqnums"
        return cls(Path(store_dir) / name, fsync)

    @classmethod
    def memory(cls) -> "SeqStore":
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
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
