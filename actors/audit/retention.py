"""Retention (README "Features"; seed 001 "Retention"): archive, then prune, what is past its keep time.

Runs when a durable runtime starts, before recovery reads the journals and before the ledger
opens the audit log (nothing else holds the files then), then every ``interval_s`` (one day)
while it runs, on the runtime's clock (the ledger's timer: it owns the audit log and the
receipts file, so it archives them between its batches, and runs :func:`archive_journals`),
and from ``flowroute audit archive``.
Settings ``[retention]``: ``orders_days`` (365) for terminal orders, their transitions and
fills, and the audit lines; ``receipts_days`` (30) for raw venue receipts (``keep_receipts``:
every venue answer as received, one JSON line in ``receipts.jsonl``, written with the ledger's
batch, no fsync; off by default); ``archive_dir`` (``archive`` under the state directory);
``interval_s`` (86400; 0: only at start).

- **Venue receipts** (``receipts.jsonl``): lines older than ``now - receipts_days`` go to
  ``<archive_dir>/receipts.<first ts>.jsonl.gz`` and leave the live file.

- **Audit log**: lines written before ``now - orders_days`` go into a compressed segment and
  leave the live log; the hash chain continues across segments (``actors.audit.log.archive_audit``).
  While the runtime runs, the ledger rotates the live log instead (``AuditLog.rotate``: once its
  first line is past the keep time the whole file becomes a segment, without copying it), and
  a background thread compresses the segment while the runtime runs (``archive_audit`` at the
  next start finishes what a crash cut short).
- **Ledger journal** (``ledger.sqlite``, or the PostgreSQL journal's tables with ``journal.url``):
  an order whose last transition is terminal and older than ``now - orders_days`` (or whose
  compacted archive row is: ``order_archive.archived_at``) is written, with every transition,
  fill and archive row, to ``<archive_dir>/orders.<cutoff>.jsonl.gz`` (one JSON object per row,
  ``"table"`` naming it), which is made durable first; then its rows leave the ledger journal.
  An order still open, in doubt (its idempotency record not COMPLETED) or younger is never
  touched.
- **Idempotency records** (``journal.sqlite``): what the guarantee "a client order id reaches a
  venue at most once" still needs is never pruned (docs/DESIGN.md "Durability"; the store's
  rule for an expired record, ``EXPIRED_RECLAIMED``). The record of an archived order that
  reached a venue stays, *retired*: its intent and context are cleared (``intent_json`` is
  ``RETIRED_INTENT``), its status and cached report kept, so a reuse of its id is refused as a
  conflict (the journal never reclaims it), while recovery and a PostgreSQL takeover no longer
  load it. Only the record of an order that never
  left (its report DENIED) is deleted: its id may be used again.

A crash between the archive file and the deletes leaves the rows in place; the next run
archives them again into its own file (an order then appears in two archive files,
identically). With PostgreSQL several processes share the tables: a run takes a transaction
advisory lock first and skips when another process's run holds it.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from protocols import TERMINAL_STATUSES
from protocols._files import replace_file

from ..idempotency.store import _reached_venue  # the store's rule: one owner of "may this id be used again"
from ..journal.sqlite import RETIRED_INTENT as RETIRED
from ..journal.sqlite import terminal_term
from .log import ArchiveResult, archive_audit

__all__ = ["RetentionJob", "RetentionResult", "archive_journals", "archive_orders", "archive_orders_pg", "archive_receipts", "apply_retention"]

_TERMINAL = tuple(sorted(s.value for s in TERMINAL_STATUSES))
#: a transaction advisory lock key of the PostgreSQL retention run (one process at a time)
_PG_LOCK = 0x666C6F77_72657400  # "flowret\0"


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


@dataclass(frozen=True, slots=True)
class RetentionJob:
    """The periodic retention of a running durable runtime (the ledger's timer, every
    ``interval_s`` seconds of its clock; 0: never): terminal orders and audit lines older than
    ``orders_days`` days, venue receipts older than ``receipts_days`` days, archived under
    ``archive_dir``; the journals are ``state_dir``'s SQLite files, or the PostgreSQL journal of
    ``pg`` (a ``PostgresBackend``). The ledger archives the audit log and the receipts itself (it
    holds them open) and runs :meth:`journals`."""

    state_dir: Path
    archive_dir: Path
    orders_days: float
    receipts_days: float
    interval_s: float
    file_mode: int = 0o600
    pg: Any = None

    def journals(self, before: datetime, after: Cursor | None = None) -> tuple[int, int, int, Path | None, Cursor | None]:
        """One step of :func:`archive_journals` of the orders that ended before ``before``: at most
        :data:`STEP_ORDERS` candidates after the cursor ``after``; the last item is the cursor of
        the next step (None: done)."""
        return archive_journals(self.state_dir, before=before, archive_dir=self.archive_dir, file_mode=self.file_mode, pg=self.pg,
                                limit=STEP_ORDERS, after=after)


#: the terminal statuses as the SQL list PostgreSQL's ``order_events_terminal_ts`` partial index is
#: built on (migration 0007): a query uses it only with this term
_TERMINAL_SQL = ", ".join(f"'{s}'" for s in _TERMINAL)
#: the orders whose last row is terminal and that have no row as late as ``before``: candidates by
#: time from the partial index (``{terminal}``: its predicate, SQLite's or PostgreSQL's), each
#: checked against its later rows through the ``(account_id, client_order_id, seq)`` unique index;
#: never a scan of every transition
_EXPIRED_WHERE = """e.ts < :before AND {terminal}
       AND NOT EXISTS (SELECT 1 FROM {events} l
                        WHERE l.account_id = e.account_id AND l.client_order_id = e.client_order_id
                          AND (l.seq > e.seq OR l.ts >= :before))"""
#: SQLite's ``order_events_terminal_ts`` predicate (``actors/journal/sqlite.py`` :func:`terminal_term`)
_SQLITE_TERMINAL = terminal_term("e.to_status")
_PG_TERMINAL = f"e.to_status IN ({_TERMINAL_SQL})"
_SQLITE_EXPIRED = f"""SELECT e.account_id, e.client_order_id FROM order_events e
     WHERE {_EXPIRED_WHERE.format(events="order_events", terminal=_SQLITE_TERMINAL)}
     ORDER BY e.ts"""
#: the same, one page at a time: after the cursor ``(:after_ts, :after_id)``, in (ts, id) order
_SQLITE_EXPIRED_PAGE = f"""SELECT e.account_id, e.client_order_id, e.ts, e.id FROM order_events e
     WHERE {_EXPIRED_WHERE.format(events="order_events", terminal=_SQLITE_TERMINAL)}
       AND e.ts >= :after_ts AND (e.ts > :after_ts OR e.id > :after_id)
     ORDER BY e.ts, e.id LIMIT :limit"""
#: orders one retention step archives at most: one transaction per journal, one ledger message
#: (``LedgerActor.handle_RetentionTick``), so orders queued behind it wait for a bounded step
STEP_ORDERS = 1_000
#: where a paged run goes on: after the candidate with this ``(ts, id)`` (None: from the start)
Cursor = tuple[float, int]
_START: Cursor = (float("-inf"), 0)


def _expired_orders(conn: sqlite3.Connection, before_ts: float) -> list[tuple[str, str]]:
    return [tuple(row) for row in conn.execute(_SQLITE_EXPIRED, {"before": before_ts})]


def _expired_page(conn: sqlite3.Connection, before_ts: float, after: Cursor, limit: int) -> tuple[list[tuple[str, str]], Cursor | None]:
    """One page of :func:`_expired_orders`: the keys and the cursor after the page (None: no more)."""
    rows = conn.execute(_SQLITE_EXPIRED_PAGE, {"before": before_ts, "after_ts": after[0], "after_id": after[1],
                                               "limit": limit}).fetchall()
    return [(r[0], r[1]) for r in rows], ((rows[-1][2], rows[-1][3]) if len(rows) == limit else None)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _archive_file(archive_dir: Path, before: datetime, rows: Sequence[tuple[str, dict]], file_mode: int) -> Path:
    """Write ``(table, row)`` pairs durably to a new ``orders.<cutoff>[.<n>].jsonl.gz``; its path."""
    lines = [json.dumps({"table": table, **row}, sort_keys=True, default=str) for table, row in rows]
    archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = before.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = archive_dir / f"orders.{stamp}.jsonl.gz"
    n = 1
    while target.exists():  # a second run with the same cutoff (e.g. after a crash): its own file
        n += 1
        target = archive_dir / f"orders.{stamp}.{n}.jsonl.gz"
    replace_file(target, gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0), mode=file_mode)
    return target


def _split_records(records: Sequence[tuple[str, str, str | None]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """COMPLETED ``(account_id, client_order_id, report_json)`` records of archived orders →
    ``(to retire, to delete)``: retired when the order reached a venue (the store's rule), deleted
    when it never left."""
    retire: list[tuple[str, str]] = []
    delete: list[tuple[str, str]] = []
    for account_id, client_order_id, report_json in records:
        (retire if _reached_venue(SimpleNamespace(report_json=report_json)) else delete).append((account_id, client_order_id))
    return retire, delete


def archive_orders(ledger_path: Path, journal_path: Path | None, *, before: datetime, archive_dir: Path,
                   file_mode: int = 0o600, limit: int | None = None,
                   after: Cursor | None = None) -> tuple[int, int, int, Path | None, Cursor | None]:
    """Archive and prune terminal orders older than ``before`` from the SQLite journals (see the
    module docstring: idempotency records of orders that reached a venue are retired, not deleted).

    ``limit``: look at most that many candidate orders (one step of a paged run), from after the
    cursor ``after``; None: all of them. Returns ``(orders, event rows, fill rows, archive file or
    None, cursor)``, the cursor to go on from, None when no candidate is left. An order whose
    idempotency record in ``journal_path`` is not COMPLETED stays. Raises ``sqlite3.Error`` /
    ``OSError`` (nothing is deleted unless the archive file is durable).
    """
    if not Path(ledger_path).exists():
        return 0, 0, 0, None, None
    before_ts = before.timestamp()
    ledger = sqlite3.connect(ledger_path, timeout=30)
    ledger.row_factory = sqlite3.Row
    journal = sqlite3.connect(journal_path, timeout=30) if journal_path is not None and Path(journal_path).exists() else None
    try:
        archives = _has_table(ledger, "order_archive")
        cursor = None
        if limit is None:
            keys = _expired_orders(ledger, before_ts)
        else:
            keys, cursor = _expired_page(ledger, before_ts, after or _START, limit)
        if archives and cursor is None:  # compacted archived orders have no order_events rows left: their archive row's age decides
            seen = set(keys)
            keys += [k for k in (tuple(r) for r in ledger.execute(
                "SELECT account_id, client_order_id FROM order_archive WHERE compacted = 1 AND archived_at < ? ORDER BY archived_at",
                (before_ts,))) if k not in seen]
        if journal is not None and keys:
            # each candidate's record by its key (the table has no index of the unresolved records)
            keys = [k for k in keys if journal.execute(
                "SELECT 1 FROM idempotency WHERE client_order_id = ? AND account_id = ? AND status != 'COMPLETED'",
                (k[1], k[0])).fetchone() is None]
        if not keys:
            return 0, 0, 0, None, cursor
        ledger.execute("CREATE TEMP TABLE expired (account_id TEXT, client_order_id TEXT, PRIMARY KEY (account_id, client_order_id))")
        ledger.executemany("INSERT INTO expired VALUES (?, ?)", keys)
        join = "JOIN expired x ON t.account_id = x.account_id AND t.client_order_id = x.client_order_id"
        events = [dict(r) for r in ledger.execute(f"SELECT t.* FROM order_events t {join} ORDER BY t.id")]
        fills = [dict(r) for r in ledger.execute(f"SELECT t.* FROM fills t {join} ORDER BY t.id")]
        kept = [dict(r) for r in ledger.execute(f"SELECT t.* FROM order_archive t {join}")] if archives else []
        rows = [("order_events", r) for r in events] + [("fills", r) for r in fills] + [("order_archive", r) for r in kept]
        target = _archive_file(archive_dir, before, rows, file_mode)
        in_expired = "(account_id, client_order_id) IN (SELECT account_id, client_order_id FROM expired)"
        with ledger:
            ledger.execute(f"DELETE FROM order_events WHERE {in_expired}")
            ledger.execute(f"DELETE FROM fills WHERE {in_expired}")
            if archives:
                ledger.execute(f"DELETE FROM order_archive WHERE {in_expired}")
        if journal is not None:
            records = [r for k in keys for r in journal.execute(
                "SELECT account_id, client_order_id, report_json FROM idempotency WHERE account_id = ? AND client_order_id = ? "
                "AND status = 'COMPLETED' AND intent_json != ?", (*k, RETIRED))]
            retire, delete = _split_records(records)
            with journal:
                journal.executemany("UPDATE idempotency SET intent_json = ?, context_json = ? WHERE account_id = ? AND client_order_id = ? "
                                    "AND status = 'COMPLETED'", [(RETIRED, RETIRED, *k) for k in retire])
                journal.executemany("DELETE FROM idempotency WHERE account_id = ? AND client_order_id = ? AND status = 'COMPLETED'", delete)
        return len(keys), len(events), len(fills), target, cursor
    finally:
        ledger.close()
        if journal is not None:
            journal.close()


def archive_orders_pg(backend: Any, *, before: datetime, archive_dir: Path, file_mode: int = 0o600, limit: int | None = None,
                      after: Cursor | None = None) -> tuple[int, int, int, Path | None, Cursor | None]:
    """:func:`archive_orders` on the PostgreSQL journal (``actors.journal.postgres.PostgresBackend``,
    shared by every process): the same orders, the same archive file, the same rule for the
    idempotency records, the same paging (``limit``, ``after``, the cursor returned), in one
    transaction that first takes a transaction advisory lock (another process's run holding it:
    this run does nothing, ``(0, 0, 0, None, None)``). Raises the driver's errors / ``OSError``
    (nothing is deleted unless the archive file is durable)."""
    with backend.pool.connection() as conn:
        try:
            result = _prune_pg(conn, before, archive_dir, file_mode, limit, after)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return result


#: the orders retention archives on PostgreSQL (parameter ``before``: epoch seconds): the last row
#: of the order is terminal and no row of it is as late as ``before``, its idempotency record
#: COMPLETED. Found through the partial index ``order_events_terminal_ts`` (migration 0007: the
#: terminal rows by time, the literal status list below is its predicate) and, per candidate, the
#: ``(account_id, client_order_id, seq)`` unique index; no scan of the whole table.
_PG_EXPIRED = f"""SELECT e.account_id, e.client_order_id FROM flowroute.order_events e
      JOIN flowroute.idempotency i ON i.account_id = e.account_id AND i.client_order_id = e.client_order_id
     WHERE {_EXPIRED_WHERE.format(events="flowroute.order_events", terminal=_PG_TERMINAL).replace(":before", "%(before)s")} AND i.status = 'COMPLETED'
     ORDER BY e.account_id, e.client_order_id"""
#: the same candidates, one page at a time, after the cursor, in (ts, id) order (:data:`STEP_ORDERS`)
_PG_EXPIRED_PAGE = f"""SELECT e.account_id, e.client_order_id, e.ts, e.id FROM flowroute.order_events e
     WHERE {_EXPIRED_WHERE.format(events="flowroute.order_events", terminal=_PG_TERMINAL).replace(":before", "%(before)s")}
       AND e.ts >= %(after_ts)s AND (e.ts > %(after_ts)s OR e.id > %(after_id)s)
     ORDER BY e.ts, e.id LIMIT %(limit)s"""


def _prune_pg(conn: Any, before: datetime, archive_dir: Path, file_mode: int, limit: int | None = None,
              after: Cursor | None = None) -> tuple[int, int, int, Path | None, Cursor | None]:
    before_ts = before.timestamp()
    if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_PG_LOCK,)).fetchone()[0]:
        return 0, 0, 0, None, None
    cursor: Cursor | None = None
    if limit is None:
        keys = [tuple(r) for r in conn.execute(_PG_EXPIRED, {"before": before_ts})]
    else:
        start = after or _START
        page = conn.execute(_PG_EXPIRED_PAGE, {"before": before_ts, "after_ts": start[0], "after_id": start[1],
                                               "limit": limit}).fetchall()
        cursor = (page[-1][2], page[-1][3]) if len(page) == limit else None
        keys = sorted({(r[0], r[1]) for r in page} - {tuple(r) for r in conn.execute(
            "SELECT account_id, client_order_id FROM flowroute.idempotency WHERE "
            "(account_id, client_order_id) IN (SELECT * FROM unnest(%s::text[], %s::text[])) AND status <> 'COMPLETED'",
            ([r[0] for r in page], [r[1] for r in page]))})
    if not keys:
        return 0, 0, 0, None, cursor
    accounts, ids = [k[0] for k in keys], [k[1] for k in keys]
    sel = "(account_id, client_order_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
    # the idempotency rows first, locked in key order as every journal transaction locks them
    records = [tuple(r) for r in conn.execute(
        f"SELECT account_id, client_order_id, report_json FROM flowroute.idempotency WHERE {sel} AND status = 'COMPLETED' "
        "AND intent_json <> %s ORDER BY account_id, client_order_id FOR UPDATE", (accounts, ids, RETIRED))]
    cur = conn.cursor()
    cur.execute(f"SELECT * FROM flowroute.order_events WHERE {sel} ORDER BY id", (accounts, ids))
    names = [d.name for d in cur.description]
    events = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    cur.execute(f"SELECT * FROM flowroute.fills WHERE {sel} ORDER BY id", (accounts, ids))
    names = [d.name for d in cur.description]
    fills = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    target = _archive_file(archive_dir, before, [("order_events", r) for r in events] + [("fills", r) for r in fills], file_mode)
    conn.execute(f"DELETE FROM flowroute.order_events WHERE {sel}", (accounts, ids))
    conn.execute(f"DELETE FROM flowroute.fills WHERE {sel}", (accounts, ids))
    retire, delete = _split_records(records)
    if retire:
        conn.execute(f"UPDATE flowroute.idempotency SET intent_json = %s, context_json = %s WHERE {sel} AND status = 'COMPLETED'",
                     (RETIRED, RETIRED, [k[0] for k in retire], [k[1] for k in retire]))
    if delete:
        conn.execute(f"DELETE FROM flowroute.idempotency WHERE {sel} AND status = 'COMPLETED'",
                     ([k[0] for k in delete], [k[1] for k in delete]))
    return len(keys), len(events), len(fills), target, cursor


def archive_journals(state_dir: Path, *, before: datetime, archive_dir: Path, file_mode: int = 0o600,
                     pg: Any = None, limit: int | None = None,
                     after: Cursor | None = None) -> tuple[int, int, int, Path | None, Cursor | None]:
    """The journals' part of a retention run: :func:`archive_orders_pg` on ``pg`` (a
    ``PostgresBackend``) when given, else :func:`archive_orders` on ``state_dir``'s SQLite files
    (``limit``, ``after``: one step of a paged run; the last item is the cursor to go on from)."""
    if pg is not None:
        return archive_orders_pg(pg, before=before, archive_dir=archive_dir, file_mode=file_mode, limit=limit, after=after)
    return archive_orders(Path(state_dir) / "ledger.sqlite", Path(state_dir) / "journal.sqlite", before=before,
                          archive_dir=archive_dir, file_mode=file_mode, limit=limit, after=after)


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
    replace_file(target, gzip.compress(b"".join(raw + b"\n" for raw in lines[:old]), mtime=0), mode=file_mode)
    replace_file(path, b"".join(raw + b"\n" for raw in lines[old:]) + tail, mode=file_mode)
    return old, target


def apply_retention(state_dir: Path, *, now: datetime, orders_days: float, receipts_days: float = 30.0,
                    archive_dir: str | Path = "archive", audit: bool = True, journals: bool = True,
                    file_mode: int = 0o600, pg: Any = None) -> RetentionResult:
    """One retention run over ``state_dir`` (``audit.jsonl``, ``ledger.sqlite``, ``journal.sqlite``,
    ``receipts.jsonl``; the PostgreSQL journal instead of the SQLite files when ``pg``, a
    ``PostgresBackend``, is given): orders and audit lines older than ``now - orders_days`` days
    and venue receipts older than ``now - receipts_days`` days are archived under ``archive_dir``
    (relative to ``state_dir`` unless absolute) and pruned. ``audit`` / ``journals`` select parts."""
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
        orders, events, fills, orders_file, _ = archive_journals(state_dir, before=before, archive_dir=folder, file_mode=file_mode,
                                                                 pg=pg)
    receipts, receipts_file = archive_receipts(state_dir / "receipts.jsonl", before=now - timedelta(days=receipts_days),
                                               archive_dir=folder, file_mode=file_mode)
    return RetentionResult(audit_result, orders, events, fills, orders_file, receipts, receipts_file)
