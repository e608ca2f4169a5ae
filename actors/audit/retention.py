"""Retention (README "Features"; seed 001 "Retention"): archive, then prune, what is past its keep time.

Runs when a durable runtime starts, before recovery reads the journals and before the ledger
opens the audit log (nothing else holds the files then), and from ``flowroute audit archive``.
Settings ``[retention]``: ``orders_days`` (365) for terminal orders, their transitions and
fills, and the audit lines; ``receipts_days`` (30) for raw venue receipts (``keep_receipts``:
every venue answer as received, one JSON line in ``receipts.jsonl``, written with the ledger's
batch, no fsync; off by default); ``archive_dir`` (``archive`` under the state directory).

- **Venue receipts** (``receipts.jsonl``): lines older than ``now - receipts_days`` go to
  ``<archive_dir>/receipts.<first ts>.jsonl.gz`` and leave the live file.

- **Audit log**: lines written before ``now - orders_days`` go into a compressed segment and
  leave the live log; the hash chain continues across segments (``actors.audit.log.archive_audit``).
- **Ledger journal** (``ledger.sqlite``): an order whose last transition is terminal and older
  than ``now - orders_days`` is written, with every transition and fill, to
  ``<archive_dir>/orders.<cutoff>.jsonl.gz`` (one JSON object per row, ``"table"`` naming it),
  which is made durable first; then its rows leave the ledger journal and its idempotency record
  (COMPLETED only) leaves ``journal.sqlite`` in one transaction each, so recovery no longer
  loads it. An order still open, in doubt or younger is never touched. A crash between the
  archive file and the deletes leaves the rows in place; the next run archives them again into
  its own file (an order then appears in two archive files, identically).

Only the SQLite journal is pruned; with a PostgreSQL journal (``journal.url``) the database's own
retention applies and only the audit log is archived.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocols import TERMINAL_STATUSES

from .log import ArchiveResult, _write_durably, archive_audit

__all__ = ["RetentionResult", "archive_orders", "archive_receipts", "apply_retention"]

_TERMINAL = tuple(sorted(s.value for s in TERMINAL_STATUSES))


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention run did: the audit archive (``actors.audit.log.ArchiveResult`` or None) and
    the orders archived from the ledger journal (``orders``, their ``events`` and ``fills`` rows,
    the archive ``orders_file`` or None) and the venue receipts archived (``receipts``, their
    ``receipts_file`` or None)."""

    audit: ArchiveResult | None = None
    orders: int = 0
    events: int = 0
    fills: int = 0
    orders_file: Path | None = None
    receipts: int = 0
    receipts_file: Path | None = None


def _expired_orders(conn: sqlite3.Connection, before_ts: float) -> list[tuple[str, str]]:
    marks = ",".join("?" * len(_TERMINAL))
    return [tuple(row) for row in conn.execute(
        f"""SELECT e.account_id, e.client_order_id FROM order_events e
            JOIN (SELECT account_id, client_order_id, MAX(seq) AS last_seq, MAX(ts) AS last_ts
                  FROM order_events GROUP BY account_id, client_order_id) m
              ON e.account_id = m.account_id AND e.client_order_id = m.client_order_id AND e.seq = m.last_seq
            WHERE m.last_ts < ? AND e.to_status IN ({marks})
            ORDER BY m.last_ts""",
        (before_ts, *_TERMINAL),
    )]


def archive_orders(ledger_path: Path, journal_path: Path | None, *, before: datetime, archive_dir: Path,
                   file_mode: int = 0o600) -> tuple[int, int, int, Path | None]:
    """Archive and prune terminal orders older than ``before`` (see the module docstring).

    Returns ``(orders, event rows, fill rows, archive file or None)``. An order whose idempotency
    record in ``journal_path`` is not COMPLETED stays. Raises ``sqlite3.Error`` / ``OSError``
    (nothing is deleted unless the archive file is durable).
    """
    if not Path(ledger_path).exists():
        return 0, 0, 0, None
    before_ts = before.timestamp()
    ledger = sqlite3.connect(ledger_path, timeout=30)
    ledger.row_factory = sqlite3.Row
    journal = sqlite3.connect(journal_path, timeout=30) if journal_path is not None and Path(journal_path).exists() else None
    try:
        keys = _expired_orders(ledger, before_ts)
        if journal is not None and keys:
            open_keys = {tuple(r) for r in journal.execute("SELECT account_id, client_order_id FROM idempotency WHERE status != 'COMPLETED'")}
            keys = [k for k in keys if k not in open_keys]
        if not keys:
            return 0, 0, 0, None
        ledger.execute("CREATE TEMP TABLE expired (account_id TEXT, client_order_id TEXT, PRIMARY KEY (account_id, client_order_id))")
        ledger.executemany("INSERT INTO expired VALUES (?, ?)", keys)
        join = "JOIN expired x ON t.account_id = x.account_id AND t.client_order_id = x.client_order_id"
        events = [dict(r) for r in ledger.execute(f"SELECT t.* FROM order_events t {join} ORDER BY t.id")]
        fills = [dict(r) for r in ledger.execute(f"SELECT t.* FROM fills t {join} ORDER BY t.id")]
        lines = [json.dumps({"table": "order_events", **row}, sort_keys=True) for row in events]
        lines += [json.dumps({"table": "fills", **row}, sort_keys=True) for row in fills]
        archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = archive_dir / f"orders.{before.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.jsonl.gz"
        n = 1
        while target.exists():  # a second run with the same cutoff (e.g. after a crash): its own file
            n += 1
            target = archive_dir / f"orders.{before.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.{n}.jsonl.gz"
        _write_durably(target, gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0), file_mode)
        with ledger:
            ledger.execute("DELETE FROM order_events WHERE (account_id, client_order_id) IN (SELECT account_id, client_order_id FROM expired)")
            ledger.execute("DELETE FROM fills WHERE (account_id, client_order_id) IN (SELECT account_id, client_order_id FROM expired)")
        if journal is not None:
            with journal:
                journal.executemany("DELETE FROM idempotency WHERE account_id = ? AND client_order_id = ? AND status = 'COMPLETED'", keys)
        return len(keys), len(events), len(fills), target
    finally:
        ledger.close()
        if journal is not None:
            journal.close()


def archive_receipts(path: Path, *, before: datetime, archive_dir: Path, file_mode: int = 0o600) -> tuple[int, Path | None]:
    """Move the venue receipts of ``path`` (``receipts.jsonl``, one JSON object with a ``ts`` per
    line, in time order) older than ``before`` into ``<archive_dir>/receipts.<first ts>.jsonl.gz``
    and prune them; the archive file is durable before the live file is replaced. Returns
    ``(receipts archived, archive file or None)``."""
    path = Path(path)
    if not path.exists():
        return 0, None
    cutoff = before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()
    old = 0
    for raw in lines:
        try:
            ts = json.loads(raw)["ts"]
        except (ValueError, KeyError, TypeError):
            break
        if not ts < cutoff:
            break
        old += 1
    if not old:
        return 0, None
    first = json.loads(lines[0])["ts"].replace(":", "").replace("-", "")[:15]
    archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = archive_dir / f"receipts.{first}Z.jsonl.gz"
    n = 1
    while target.exists():
        n += 1
        target = archive_dir / f"receipts.{first}Z.{n}.jsonl.gz"
    _write_durably(target, gzip.compress(b"".join(raw + b"\n" for raw in lines[:old]), mtime=0), file_mode)
    _write_durably(path, b"".join(raw + b"\n" for raw in lines[old:]) + tail, file_mode)
    return old, target


def apply_retention(state_dir: Path, *, now: datetime, orders_days: float, receipts_days: float = 30.0,
                    archive_dir: str | Path = "archive", audit: bool = True, journals: bool = True,
                    file_mode: int = 0o600) -> RetentionResult:
    """One retention run over ``state_dir`` (``audit.jsonl``, ``ledger.sqlite``, ``journal.sqlite``,
    ``receipts.jsonl``): orders and audit lines older than ``now - orders_days`` days and venue
    receipts older than ``now - receipts_days`` days are archived under ``archive_dir`` (relative
    to ``state_dir`` unless absolute) and pruned. ``audit`` / ``journals`` select parts."""
    state_dir = Path(state_dir)
    folder = Path(archive_dir)
    folder = folder if folder.is_absolute() else state_dir / folder
    before = now - timedelta(days=orders_days)
    audit_result = None
    if audit:
        audit_result = archive_audit(state_dir / "audit.jsonl", before=before, archive_dir=folder, file_mode=file_mode)
    orders = events = fills = 0
    orders_file = None
    if journals:
        orders, events, fills, orders_file = archive_orders(state_dir / "ledger.sqlite", state_dir / "journal.sqlite",
                                                            before=before, archive_dir=folder, file_mode=file_mode)
    receipts, receipts_file = archive_receipts(state_dir / "receipts.jsonl", before=now - timedelta(days=receipts_days),
                                               archive_dir=folder, file_mode=file_mode)
    return RetentionResult(audit_result, orders, events, fills, orders_file, receipts, receipts_file)
