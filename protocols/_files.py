"""Whole-file writes that are never torn: the one temp-file / fsync / rename sequence.

Used wherever flowroute replaces a file's whole content (the FIX session store's sequence numbers
and kept inbox, the audit log's retention rewrites and archive segments): a reader, or a process
started after a crash, sees the old file or the new one, never half of one (POSIX ``rename`` is
atomic within a file system).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "replace_file", "write_all"]


def write_all(fd: int, blob: bytes) -> None:
    """Write every byte of ``blob`` to ``fd`` (``os.write`` may write less than it is given)."""
    view = memoryview(blob)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def fsync_dir(folder: Path) -> None:
    """fsync directory ``folder``, so a rename or a new file in it survives a power loss
    (best effort: a platform without directory fds skips it)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform without directory fds
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)


def replace_file(target: Path, blob: bytes, *, mode: int = 0o600, fsync: bool = True) -> None:
    """Replace ``target``'s content with ``blob``: written to ``<target>.tmp`` (permission bits
    ``mode``, whatever the umask), then renamed over ``target``. ``fsync=True``: the temporary file
    is fsynced before the rename and the directory after it, so the new content survives a power
    loss; ``False``: it survives a crash of the process only (the OS still writes it). Raises
    ``OSError`` from the file system; ``target`` then still holds its old content."""
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        write_all(fd, blob)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    if fsync:
        fsync_dir(target.parent)
