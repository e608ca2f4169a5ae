"""A throwaway PostgreSQL cluster for tests: ``initdb`` + ``pg_ctl start`` in a temporary directory.

The server listens on a unix socket in that directory only (``listen_addresses=''``), so no
port can clash with anything else on the machine. Binaries come from Debian's ``postgresql``
package (``/usr/lib/postgresql/<version>/bin``; ``.ci/run`` installs it). ``initdb`` and the
server refuse to run as root: as root both run as the ``postgres`` user.

``PgCluster.start()`` → a running cluster; ``create_database()`` → a fresh empty database and
its URL; ``stop()`` stops the server (``-m immediate``: nothing to keep) and removes every file.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

_names = itertools.count(1)


def pg_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``; RuntimeError if none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: "
                           "apt-get install -y postgresql (.ci/run does this)")
    return Path(found[-1]).parent


class PgCluster:
    """One throwaway cluster (see the module docstring). Use :meth:`start` and :meth:`stop`."""

    def __init__(self, root: Path, bindir: Path, user: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.bindir = bindir
        self._user = user  # run server binaries as this OS user (None: as ourselves)

    @classmethod
    def start(cls, *, fsync: bool = False) -> PgCluster:
        """initdb + start; ``fsync=False`` (tests: nothing to keep) makes commits cheap, ``True`` real."""
        bindir = pg_bin_dir()
        root = Path(tempfile.mkdtemp(prefix="frpg-"))
        user = "postgres" if os.geteuid() == 0 else None
        os.chmod(root, 0o755)
        if user is not None:
            pw = pwd.getpwnam(user)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        cluster = cls(root, bindir, user)
        try:
            cluster._run("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync")
            cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(root / "log"), "-w", "-t", "60",
                         "-o", f"-k {root} -c listen_addresses='' -c fsync={'on' if fsync else 'off'} -c max_connections=200", "start")
        except BaseException:
            cluster._remove()
            raise
        return cluster

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()} {log[-2000:]}")

    @property
    def host(self) -> str:
        """The socket directory (libpq's ``host`` for a unix socket)."""
        return str(self.root)

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``dbname`` over the unix socket."""
        return f"postgresql://{user}@/{dbname}?host={self.root}"

    def create_database(self) -> str:
        """Create a fresh empty database; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove the directory (idempotent)."""
        if self.root.exists():
            try:
                if (self.data / "postmaster.pid").exists():
                    self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            finally:
                self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
