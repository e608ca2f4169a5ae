"""The exclusive lock a runtime holds on its state directory for its whole life.

Two runtimes on one state directory would interleave their journals, audit logs and paper
books (or a second session would clean the first one's files away). So a durable runtime
takes an exclusive ``fcntl.flock`` on ``<state_dir>/flowroute.lock`` before it opens
anything there, writes its pid into the file, and keeps the descriptor open until
``Runtime.stop``. The lock belongs to the open file description, not to the file: the OS
drops it when the process dies in any way (SIGKILL included), so recovery after a crash
never finds a stale lock, and a leftover lock file with a dead pid in it is harmless. The
file itself is never deleted (deleting it would let a third process lock a new inode while
the second still holds the old one).

Example::

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> lock = StateDirLock.acquire(d)
    >>> try:
    ...     StateDirLock.acquire(d)
    ... except StateDirInUse as exc:
    ...     exc.pid == os.getpid()
    True
    >>> lock.release()
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

LOCK_NAME = "flowroute.lock"
"""The lock file's name inside the state directory."""


class StateDirInUse(RuntimeError):
    """Another runtime (this process or another) holds the state directory's lock.

    ``state_dir``: the directory; ``pid``: the holder's pid as written in the lock file (None
    when it could not be read). The message reads ``state dir X is in use by pid N``.
    """

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.state_dir = Path(state_dir)
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"state dir {self.state_dir} is in use by {holder}")


class StateDirLock:
    """A held lock on a state directory (see the module docstring); :meth:`release` is idempotent."""

    def __init__(self, state_dir: Path, fd: int) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path | str, *, file_mode: int = 0o600) -> StateDirLock:
        """Lock ``state_dir`` (created with mode 0o700 if missing) without waiting.

        Raises :class:`StateDirInUse` when another holder has it, ``OSError`` when the
        directory or the lock file cannot be created or opened.
        """
        directory = Path(state_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode)  # O_CLOEXEC: children never inherit it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateDirInUse(directory, pid) from None
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            os.close(fd)  # closing drops the lock
            raise
        return cls(directory, fd)

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (the file stays; its pid is stale from now on)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
