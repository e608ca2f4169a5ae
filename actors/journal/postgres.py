"""The PostgreSQL journal: several runtime processes on one database (docs/DESIGN.md "Scale-out").

Chosen by ``journal.url = "postgresql://…"`` (or ``FLOWROUTE_JOURNAL__URL``); SQLite stays the
embedded default. Two pieces:

- :class:`PostgresBackend`: one per runtime process. At open it connects once to report a
  clear start error (unreachable server, wrong credentials, missing database), applies the
  versioned migrations in ``actors/journal/migrations/postgresql/`` (each in one transaction under an
  advisory lock, so two processes starting together apply them once; a database with a newer
  schema than this build knows is refused), opens a ``psycopg_pool.ConnectionPool`` and
  registers this process as an *owner* with a lease that a background thread renews.
- :class:`PostgresJournal`: the :class:`~actors.journal.sqlite.JournalStore` on that pool, with the
  SQLite journal's semantics (module table in ``actors/journal/sqlite.py``), across processes.

Claims (exactly once across processes). ``claim_batch`` is one transaction (group commit):
``INSERT … ON CONFLICT DO NOTHING RETURNING`` decides every new id at once; the ids that existed
are then read ``FOR UPDATE`` under every account (so a concurrent reclaim of an expired record
waits) and decided in list order exactly as SQLite does: REPLAY, CONFLICT, IN_FLIGHT,
EXPIRED_RECLAIMED (an UPDATE) or OTHER_ACCOUNT. One account per id holds across processes by the
unique index ``idempotency_one_account`` (migration 0005): two processes inserting one id, under
one account or two, conflict on it; the second INSERT waits for the first transaction and then
sees its row, so exactly one gets CLAIMED. Rows are locked in ``(client_order_id, account_id)``
order by every transaction that locks several, so two overlapping batches cannot deadlock.

Ownership. Every record carries the ``owner_id`` of the process that claimed it. An owner's
lease (``owners.lease_until``, on the server's clock) is renewed every ``lease_s / 3`` seconds;
the lease covers every order the owner holds. ``mark_all_unknown`` (recovery at start) takes
over the orders of owners whose lease expired: IN_PROGRESS becomes UNKNOWN and the records
of orders that are not over (no terminal transition journaled) move to this owner, so recovery
reconciles them with their venue (it never re-sends: a venue's proof of absence makes the order
FAILED, "never delivered"). Reads used by recovery
(``load_records``, ``load_unresolved``, ``load_orders``, ``load_fills``) see this owner's
orders only: another live process's orders are its own business.

Failure (fail closed): every ``psycopg`` error or pool timeout inside a write raises
:class:`~actors.journal.sqlite.JournalError` after the transaction was rolled back, except a value
the server or driver refuses (``psycopg.DataError``, SQLSTATE class 22: a NUL character in text,
an integer out of its column's range; text UTF-8 cannot encode): that raises
:class:`~actors.journal.sqlite.JournalValueRefused` (a ``ValueError``), as SQLite's journal does,
so one bad row is left out rather than halting trading for ever.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from protocols import OrderStatus
from protocols.venues.paper.pg_book import connect_failure, redact_url

from .sqlite import (
    _EVENT_COLS,
    _UNBINDABLE,
    RETIRED_INTENT,
    Claim,
    ClaimResult,
    Completion,
    FillRow,
    IdempotencyRecord,
    IdempotencyStatus,
    JournalError,
    OrderEventRow,
    _check_id,
    _check_str,
    _check_time,
    _check_ttl,
    _decide_claim,
    _fill_params,
    _fill_row,
    _release_keys,
    _typed_items,
    refused_value,
)
from .txn import InjectedFailures, JournalStats, TxnStats

__all__ = ["MIGRATIONS_DIR", "PostgresBackend", "PostgresJournal", "known_schema_version", "redact_url"]

#: The versioned migrations: ``NNNN_name.sql``, applied in number order.
MIGRATIONS_DIR = Path(__file__).with_name("migrations") / "postgresql"
#: ``pg_advisory_xact_lock`` key serialising migrations across processes ("flowrout" in ASCII).
_MIGRATION_LOCK = 0x666C6F77726F7574
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

#: OrderStatus values that end an order (an order with such a transition is over)
_TERMINAL = [s.value for s in OrderStatus if s.is_terminal]

_REC_COLS = (
    "account_id, client_order_id, fingerprint, status, report_json, created_at, updated_at, "
    "intent_json, context_json, adapter_id"
)


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of every migration, in version order.

    Raises :class:`JournalError` for a misnamed file or a gap in the numbering (a broken build).
    """
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if m is None:
            raise JournalError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append((int(m.group(1)), path.name, path.read_text()))
    if [v for v, _, _ in found] != list(range(1, len(found) + 1)):
        raise JournalError(f"migrations in {MIGRATIONS_DIR} are not numbered 1..N: {[n for _, n, _ in found]}")
    return found


def known_schema_version() -> int:
    """The newest schema version this build can migrate to (the last migration's number)."""
    return len(migrations())


def _classify_connect_error(exc: Exception, url: str) -> JournalError:
    text = str(exc).strip()
    return JournalError(f"journal.url {redact_url(url)}: {connect_failure(exc)}: {text}")


class PostgresBackend:
    """One process's connection to the shared PostgreSQL journal (see the module docstring).

    Open it with :meth:`open`. ``lease_s``: how long this process's ownership of its orders
    lasts without renewal (seconds; renewed every ``lease_s / 3``); ``pool_max``: the most
    connections this process holds; ``connect_timeout_s``: libpq ``connect_timeout``.
    Raises :class:`JournalError` with a message naming the cause when the server cannot be
    reached, the credentials are wrong, the database is missing, or its schema is newer than
    this build; nothing is written in those cases.
    """

    def __init__(self, url: str, *, lease_s: float, pool_max: int, connect_timeout_s: float) -> None:
        self.url = url
        self.lease_s = float(lease_s)
        self.owner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._pool: Any = None
        self._pool_max = pool_max
        self._connect_timeout_s = connect_timeout_s
        self._stop = threading.Event()
        self._lease_thread: threading.Thread | None = None
        self.lease_lost = False
        #: called once (from the lease thread) when this process finds its lease taken over
        self.on_lease_lost: Callable[[], None] | None = None
        self.schema_version = 0

    # -- start ---------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, lease_s: float = 15.0, pool_max: int = 8, connect_timeout_s: float = 5.0) -> PostgresBackend:
        """Connect, migrate, open the pool and register this process as an owner (see the class)."""
        backend = cls(url, lease_s=lease_s, pool_max=pool_max, connect_timeout_s=connect_timeout_s)
        try:
            backend._start()
        except BaseException:
            backend.close()
            raise
        return backend

    def _connect(self, **kw: Any) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, connect_timeout=max(1, int(self._connect_timeout_s)), **kw)
        except psycopg.OperationalError as exc:
            raise _classify_connect_error(exc, self.url) from None
        except psycopg.ProgrammingError as exc:  # a malformed conninfo
            raise JournalError(f"journal.url {redact_url(self.url)} is not a valid PostgreSQL URL: {exc}") from None

    def _start(self) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        conn = self._connect()
        try:
            self.schema_version = self._migrate(conn)
            with conn.transaction():
                conn.execute(
                    "INSERT INTO flowroute.owners (owner_id, host, pid, lease_until) "
                    "VALUES (%s, %s, %s, clock_timestamp() + make_interval(secs => %s))",
                    (self.owner_id, socket.gethostname(), os.getpid(), self.lease_s))
        except psycopg.Error as exc:
            raise JournalError(f"journal.url {redact_url(self.url)}: cannot prepare the journal: {exc}") from None
        finally:
            conn.close()
        self._pool = ConnectionPool(
            self.url, min_size=1, max_size=self._pool_max, open=False, name=f"flowroute-{self.owner_id}",
            kwargs={"connect_timeout": max(1, int(self._connect_timeout_s))})
        try:
            self._pool.open(wait=True, timeout=max(2.0, self._connect_timeout_s * 2))
        except Exception as exc:  # noqa: BLE001 - psycopg_pool raises more than PoolTimeout; all is a start error
            raise JournalError(f"journal.url {redact_url(self.url)}: cannot open the connection pool: {exc}") from None
        self._lease_thread = threading.Thread(target=self._renew_loop, name="flowroute-pg-lease", daemon=True)
        self._lease_thread.start()

    def _migrate(self, conn: Any) -> int:
        """Apply the missing migrations in one transaction; refuse a newer schema. Returns the version."""
        known = migrations()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE SCHEMA IF NOT EXISTS flowroute")
            conn.execute("CREATE TABLE IF NOT EXISTS flowroute.schema_migrations ("
                         "version integer PRIMARY KEY, name text NOT NULL, "
                         "applied_at timestamptz NOT NULL DEFAULT clock_timestamp())")
            applied = {r[0] for r in conn.execute("SELECT version FROM flowroute.schema_migrations")}
            newest = max(applied, default=0)
            if newest > len(known):
                raise JournalError(
                    f"journal.url {redact_url(self.url)}: the database schema is at version {newest}, newer than "
                    f"this build knows ({len(known)}): upgrade flowroute before pointing it at this database")
            for version, name, sql in known:
                if version in applied:
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO flowroute.schema_migrations (version, name) VALUES (%s, %s)", (version, name))
                logger.info("journal: applied migration {}", name)
        return len(known)

    # -- leases --------------------------------------------------------------
    def _renew_loop(self) -> None:
        interval = max(0.05, self.lease_s / 3.0)
        while not self._stop.wait(interval):
            try:
                self.renew_lease()
            except Exception as exc:  # noqa: BLE001 - the server may come back before the lease runs out
                logger.warning("journal: lease renewal failed: {}", exc)

    def renew_lease(self) -> bool:
        """Extend this owner's lease by ``lease_s``; False (and ``lease_lost``) if it was taken over."""
        with self.pool.connection() as conn:
            n = conn.execute(
                "UPDATE flowroute.owners SET lease_until = clock_timestamp() + make_interval(secs => %s) "
                "WHERE owner_id = %s", (self.lease_s, self.owner_id)).rowcount
        if n == 0 and not self.lease_lost:
            self.lease_lost = True
            logger.error("journal: this process's lease expired and its orders were taken over by another process; "
                         "trading is HALTED here (restart the process to trade again)")
            if self.on_lease_lost is not None:
                self.on_lease_lost()
        return n == 1

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise JournalError("the PostgreSQL journal is closed")
        return self._pool

    def journal(self, *, fail_writes: Callable[[], bool] | None = None) -> PostgresJournal:
        """A :class:`PostgresJournal` on this backend's pool (one per owning actor)."""
        return PostgresJournal(self, fail_writes=fail_writes)

    def close(self, *, release: bool = True) -> None:
        """Stop renewing, drop this owner's lease (``release``: survivors may take over at once), close the pool."""
        self._stop.set()
        if self._lease_thread is not None:
            self._lease_thread.join(timeout=5.0)
            self._lease_thread = None
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            if release:
                with pool.connection(timeout=5.0) as conn:
                    conn.execute("UPDATE flowroute.owners SET lease_until = clock_timestamp() WHERE owner_id = %s",
                                 (self.owner_id,))
        except Exception as exc:  # noqa: BLE001 - closing: the lease runs out on its own
            logger.warning("journal: could not release this process's lease: {}", exc)
        finally:
            pool.close()

    def __repr__(self) -> str:
        return f"PostgresBackend({redact_url(self.url)}, owner={self.owner_id})"


class _InjectedFailure(Exception):
    pass


class PostgresJournal:
    """:class:`~actors.journal.sqlite.JournalStore` on PostgreSQL (see the module docstring).

    Used from one actor at a time (like :class:`~actors.journal.sqlite.SQLiteJournal`); every write
    takes a pooled connection for one transaction. ``fail_writes``: test hook called before
    COMMIT; True makes the transaction roll back and raise :class:`JournalError`.
    """

    durable = True
    path = None

    def __init__(self, backend: PostgresBackend, *, fail_writes: Callable[[], bool] | None = None) -> None:
        self._backend = backend
        self.owner_id = backend.owner_id
        self._faults = InjectedFailures(fail_writes)
        self._closed = False
        self._stats = TxnStats()

    # -- machinery -------------------------------------------------------------
    def inject_failure(self, n: int = 1) -> None:
        """Make the next ``n`` write transactions roll back and raise :class:`JournalError` (tests)."""
        self._faults.add(n)

    def _pool(self) -> Any:
        if self._closed:
            raise JournalError("journal is closed")
        return self._backend.pool

    def _write(self, op: str, items: int, body: Callable[[Any], tuple[object, int]]) -> object:
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._pool()
        t0 = time.perf_counter_ns()
        try:
            with pool.connection() as conn:
                try:
                    result, rows = body(conn)
                    if self._faults.due():
                        raise _InjectedFailure(f"injected failure in {op}")
                    t1 = time.perf_counter_ns()
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
        except _InjectedFailure as exc:
            self._stats.failed()
            raise JournalError(f"{op} failed, transaction rolled back: {exc}") from None
        except (*_UNBINDABLE, psycopg.DataError) as exc:  # SQLSTATE class 22 or unbindable: the row, not the disk
            self._stats.failed()
            raise refused_value(op, exc) from exc
        except (psycopg.Error, PoolTimeout) as exc:
            self._stats.failed()
            raise JournalError(f"{op} failed, transaction rolled back: {type(exc).__name__}: {exc}") from exc
        self._stats.committed(items, rows, t0, t1, time.perf_counter_ns())
        return result

    def _read(self, op: str, body: Callable[[Any], object]) -> object:
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._pool()
        try:
            with pool.connection() as conn:
                out = body(conn)
                conn.rollback()
                return out
        except (psycopg.Error, PoolTimeout) as exc:
            raise JournalError(f"{op} failed: {type(exc).__name__}: {exc}") from exc

    # -- idempotency -------------------------------------------------------------
    def claim_batch(self, claims: Sequence[Claim], ttl_s: float | None) -> list[ClaimResult]:
        """Decide every claim in ONE transaction across processes; results in input order (module table)."""
        ttl = _check_ttl(ttl_s)
        claims = _typed_items("claims", claims, Claim)
        if not claims:
            return []
        # the first claim of each client_order_id (in list order) is the one inserted: one account per id
        firsts: dict[str, Claim] = {}
        for c in claims:
            firsts.setdefault(c.client_order_id, c)
        owner = self.owner_id

        def body(conn: Any) -> tuple[list[ClaimResult], int]:
            inserted: set[tuple[str, str]] = set()
            #: client_order_id → account_id → the record that existed (every account's, locked)
            held: dict[str, dict[str, IdempotencyRecord]] = {}
            todo = sorted(firsts)
            for _ in range(5):  # an id released by another process between our INSERT and SELECT: insert again
                batch = [firsts[k] for k in todo]
                # a conflict on the key or on the one-account index (idempotency_one_account, migration 0005)
                # inserts nothing: a second INSERT of an id waits for the first transaction, then sees its row;
                # an id that records from before the rule hold under several accounts is never inserted beside them
                rows = conn.execute(
                    "INSERT INTO flowroute.idempotency (account_id, client_order_id, fingerprint, status, report_json, "
                    "created_at, updated_at, intent_json, context_json, adapter_id, owner_id) "
                    "SELECT a, k, f, 'IN_PROGRESS', NULL, t, t, i, x, d, %s FROM unnest("
                    "%s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::text[], %s::text[]) "
                    "AS u(a, k, f, t, i, x, d) WHERE NOT EXISTS (SELECT 1 FROM flowroute.idempotency o "
                    "WHERE o.client_order_id = u.k AND o.legacy_account <> '') ORDER BY k "
                    "ON CONFLICT DO NOTHING RETURNING account_id, client_order_id",
                    (owner, [c.account_id for c in batch], [c.client_order_id for c in batch],
                     [c.fingerprint for c in batch], [c.now for c in batch], [c.intent_json for c in batch],
                     [c.context_json for c in batch], [c.adapter_id for c in batch])).fetchall()
                inserted.update((a, k) for a, k in rows)
                rest = [k for k in todo if (firsts[k].account_id, k) not in inserted]
                if not rest:
                    break
                for r in conn.execute(
                        f"SELECT {_REC_COLS} FROM flowroute.idempotency WHERE client_order_id = ANY(%s) "
                        "ORDER BY client_order_id, account_id FOR UPDATE", (rest,)):
                    held.setdefault(r[1], {})[r[0]] = IdempotencyRecord(*r)
                todo = [k for k in rest if k not in held]
                if not todo:
                    break
            else:
                raise JournalError("claim_batch: keys kept disappearing under concurrent releases; try again")
            out: list[ClaimResult] = []
            reclaims: list[Claim] = []
            for c in claims:
                accounts = held.setdefault(c.client_order_id, {})
                if (c.account_id, c.client_order_id) in inserted and c.account_id not in accounts:
                    # the first claim of an id this batch inserted: no record before it (CLAIMED)
                    result = _decide_claim(c, None, ttl)
                else:
                    old = accounts.get(c.account_id)
                    other = next((accounts[a] for a in sorted(accounts) if a != c.account_id), None)
                    if old is None and other is None:  # an id nobody held was inserted above; a held one was read
                        raise JournalError(f"claim_batch: no record of {c.client_order_id!r} after claiming it; try again")
                    result = _decide_claim(c, old, ttl, other)
                if result.outcome == "EXPIRED_RECLAIMED":
                    reclaims.append(c)
                if result.outcome in ("CLAIMED", "EXPIRED_RECLAIMED"):
                    accounts[c.account_id] = result.record
                out.append(result)
            if reclaims:
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE flowroute.idempotency SET fingerprint = %s, status = 'IN_PROGRESS', report_json = NULL, "
                        "created_at = %s, updated_at = %s, intent_json = %s, context_json = %s, adapter_id = %s, "
                        "owner_id = %s, legacy_account = '' WHERE account_id = %s AND client_order_id = %s",
                        [(c.fingerprint, c.now, c.now, c.intent_json, c.context_json, c.adapter_id, owner,
                          c.account_id, c.client_order_id) for c in reclaims])
            return out, len(inserted) + len(reclaims)

        return self._write("claim_batch", len(claims), body)  # type: ignore[return-value]

    def complete(self, account_id: str, client_order_id: str, status: IdempotencyStatus, report_json: str | None,
                 now: float) -> bool:
        """Set a record's final status (COMPLETED or UNKNOWN) and report; False if no such record."""
        return self.complete_batch([Completion(account_id, client_order_id, status, report_json, now)]) == 1

    def complete_batch(self, completions: Sequence[Completion]) -> int:
        """Apply every :class:`Completion` in ONE transaction, in order; returns how many records existed."""
        items = _typed_items("completions", completions, Completion)
        if not items:
            return 0

        # rows are locked in key order, as claim batches lock them: a completion batch and another
        # process's claim batch that share keys (fleet-wide ids) never deadlock. The sort is stable,
        # so two completions of one key still apply in the order given.
        ordered = sorted(items, key=lambda c: (c.client_order_id, c.account_id))

        def body(conn: Any) -> tuple[int, int]:
            n = 0
            with conn.cursor() as cur:
                for c in ordered:
                    cur.execute("UPDATE flowroute.idempotency SET status = %s, report_json = %s, updated_at = %s "
                                "WHERE account_id = %s AND client_order_id = %s",
                                (c.status, c.report_json, c.now, c.account_id, c.client_order_id))
                    n += cur.rowcount
            return n, n

        return self._write("complete_batch", len(items), body)  # type: ignore[return-value]

    def mark_unknown(self, account_id: str, client_order_id: str, now: float, report_json: str | None = None) -> bool:
        """IN_PROGRESS/UNKNOWN → UNKNOWN (a COMPLETED record is never downgraded); True if changed."""
        _check_id("mark_unknown", "account_id", account_id)
        _check_id("mark_unknown", "client_order_id", client_order_id)
        t = _check_time("mark_unknown", "now", now)
        if report_json is not None:
            _check_str("mark_unknown", "report_json", report_json)

        def body(conn: Any) -> tuple[bool, int]:
            n = conn.execute(
                "UPDATE flowroute.idempotency SET status = 'UNKNOWN', report_json = COALESCE(%s, report_json), "
                "updated_at = %s WHERE account_id = %s AND client_order_id = %s AND status <> 'COMPLETED'",
                (report_json, t, account_id, client_order_id)).rowcount
            return n == 1, n

        return self._write("mark_unknown", 1, body)  # type: ignore[return-value]

    def release(self, account_id: str, client_order_id: str) -> bool:
        """Delete an IN_PROGRESS record whose order provably never reached a venue; True if deleted."""
        return self.release_batch([(account_id, client_order_id)]) == 1

    def release_batch(self, keys: Sequence[tuple[str, str]]) -> int:
        """:meth:`release` for many keys in ONE transaction (only IN_PROGRESS records are deleted)."""
        items = _release_keys(keys)
        if not items:
            return 0

        def body(conn: Any) -> tuple[int, int]:
            conn.execute(  # locked in key order first, as claim batches lock them (no deadlock)
                "SELECT 1 FROM flowroute.idempotency WHERE (account_id, client_order_id) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY client_order_id, account_id FOR UPDATE",
                ([a for a, _ in items], [k for _, k in items]))
            n = conn.execute(
                "DELETE FROM flowroute.idempotency WHERE status = 'IN_PROGRESS' AND (account_id, client_order_id) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                ([a for a, _ in items], [k for _, k in items])).rowcount
            return n, n

        return self._write("release_batch", len(items), body)  # type: ignore[return-value]

    def load_adopted(self, keys: Sequence[tuple[str, str]]) -> tuple[list[IdempotencyRecord], list[OrderEventRow], list[FillRow]]:
        """The records, transitions and fills of ``keys`` (orders just taken over), oldest first."""
        keys = list(keys)
        if not keys:
            return [], [], []
        accounts, coids = [a for a, _ in keys], [c for _, c in keys]
        wanted = "(account_id, client_order_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        records = self._read("load_adopted", lambda conn: [IdempotencyRecord(*r) for r in conn.execute(
            f"SELECT {_REC_COLS} FROM flowroute.idempotency WHERE {wanted} ORDER BY created_at", (accounts, coids))])
        events = self._read("load_adopted", lambda conn: [OrderEventRow(*r) for r in conn.execute(
            f"SELECT {_EVENT_COLS} FROM flowroute.order_events "
            f"WHERE {wanted} ORDER BY id", (accounts, coids))])
        fills = [f for f in self.load_fills() if (f.account_id, f.client_order_id) in set(keys)]
        return records, events, fills  # type: ignore[return-value]

    def mark_all_unknown(self, now: float) -> int:
        """Recovery: take over the orders of owners whose lease expired, and make in-flight ones UNKNOWN.

        This owner's own IN_PROGRESS records and those of expired owners become UNKNOWN;
        every record of an expired owner whose order is not over moves to this owner (finished
        orders stay with the expired owner as history) (exactly one survivor takes each
        over: the expired owner's row is deleted in the same transaction). Returns how many
        records became UNKNOWN.
        """
        return self.take_over_expired(now, own=True)[0]

    def take_over_expired(self, now: float, *, own: bool = False) -> tuple[int, list[str], list[tuple[str, str]]]:
        """See :meth:`mark_all_unknown` (which passes ``own=True``); returns ``(records made UNKNOWN,
        expired owner ids taken over, keys of the records taken over)``.

        Without ``own`` (a running process, ``TakeoverLoop``) this owner's own records are never
        touched: its in-flight orders are its own business. The expired owners' records are locked
        in key order first, the order claim batches lock keys in, so a takeover and a claim batch
        of a fleet-wide id can never deadlock."""
        t = _check_time("take_over_expired", "now", now)
        owner = self.owner_id

        def body(conn: Any) -> tuple[tuple[int, list[str], list[tuple[str, str]]], int]:
            dead = [r[0] for r in conn.execute(
                "DELETE FROM flowroute.owners WHERE lease_until < clock_timestamp() AND owner_id <> %s "
                "RETURNING owner_id", (owner,))]
            mine = [owner] if own else []
            if not dead and not mine:
                return (0, [], []), 0
            conn.execute("SELECT 1 FROM flowroute.idempotency WHERE owner_id = ANY(%s) "
                         "ORDER BY client_order_id, account_id FOR UPDATE", (dead + mine,))
            n = conn.execute(
                "UPDATE flowroute.idempotency SET status = 'UNKNOWN', updated_at = %s "
                "WHERE status = 'IN_PROGRESS' AND owner_id = ANY(%s)", (t, dead + mine)).rowcount
            # orders that are over (a terminal transition journaled) stay with their dead owner as
            # history: adopting them would move a stopped process's books into this one's; so do the
            # records retention retired (RETIRED_INTENT: their history is archived, actors/audit/retention.py)
            keys = [(a, c) for a, c in conn.execute(
                "UPDATE flowroute.idempotency i SET owner_id = %s WHERE owner_id = ANY(%s) AND intent_json <> %s AND (status <> 'COMPLETED' "
                "OR NOT EXISTS (SELECT 1 FROM flowroute.order_events e WHERE e.account_id = i.account_id "
                "AND e.client_order_id = i.client_order_id AND e.to_status = ANY(%s))) "
                "RETURNING account_id, client_order_id", (owner, dead, RETIRED_INTENT, _TERMINAL))] if dead else []
            if dead:
                logger.warning("journal: took over {} order(s) of {} expired owner(s): {}", len(keys), len(dead), dead)
            return (n, dead, keys), n + len(keys)

        return self._write("take_over_expired", 1, body)  # type: ignore[return-value]

    def load_unresolved(self) -> list[IdempotencyRecord]:
        """This owner's IN_PROGRESS and UNKNOWN records, oldest first."""
        return self._load("load_unresolved", "AND status <> 'COMPLETED'")

    def load_records(self) -> list[IdempotencyRecord]:
        """This owner's records, oldest first (recovery rebuilds the order ledger from them), except
        those retention retired (``RETIRED_INTENT``: they only block their id's reuse)."""
        return self._load("load_records", f"AND intent_json <> '{RETIRED_INTENT}'")

    def _load(self, op: str, where: str) -> list[IdempotencyRecord]:
        return self._read(op, lambda conn: [IdempotencyRecord(*r) for r in conn.execute(  # type: ignore[return-value]
            f"SELECT {_REC_COLS} FROM flowroute.idempotency WHERE owner_id = %s {where} "
            "ORDER BY created_at, account_id, client_order_id", (self.owner_id,))])

    def get(self, account_id: str, client_order_id: str) -> IdempotencyRecord | None:
        """The record for the key, whoever owns it, or None (raw: no TTL applied)."""
        _check_str("get", "account_id", account_id)
        _check_str("get", "client_order_id", client_order_id)

        def body(conn: Any) -> IdempotencyRecord | None:
            row = conn.execute(f"SELECT {_REC_COLS} FROM flowroute.idempotency WHERE account_id = %s "
                               "AND client_order_id = %s", (account_id, client_order_id)).fetchone()
            return None if row is None else IdempotencyRecord(*row)

        return self._read("get", body)  # type: ignore[return-value]

    def owner_of(self, account_id: str, client_order_id: str) -> str | None:
        """The owner id holding the record, or None."""
        return self._read("owner_of", lambda conn: (lambda r: r[0] if r else None)(conn.execute(  # type: ignore[return-value]
            "SELECT owner_id FROM flowroute.idempotency WHERE account_id = %s AND client_order_id = %s",
            (account_id, client_order_id)).fetchone()))

    # -- ledger ------------------------------------------------------------------
    def record_order_events(self, rows: Sequence[OrderEventRow]) -> int:
        """Journal transitions in one transaction; a repeated (account, order, seq) is ignored."""
        return self.record_ledger(rows, ())[0]

    def record_fills(self, rows: Sequence[FillRow]) -> list[bool]:
        """Journal fills once per ``(adapter_id, trade_id)``; True where the fill was new."""
        return self.record_ledger((), rows)[1]

    def record_ledger(self, events: Sequence[OrderEventRow], fills: Sequence[FillRow]) -> tuple[int, list[bool]]:
        """Transitions and fills together in ONE transaction: ``(new events, new-fill flags)``."""
        evs = _typed_items("events", events, OrderEventRow)
        fls = _typed_items("fills", fills, FillRow)
        if not evs and not fls:
            return 0, []

        def body(conn: Any) -> tuple[tuple[int, list[bool]], int]:
            new_events = 0
            flags: list[bool] = []
            with conn.cursor() as cur:
                for e in evs:
                    cur.execute(
                        f"INSERT INTO flowroute.order_events ({_EVENT_COLS}) VALUES ({', '.join(['%s'] * 16)}) "
                        "ON CONFLICT DO NOTHING",
                        (e.seq, e.ts, e.account_id, e.client_order_id, e.from_status, e.to_status, e.cause, e.reserved,
                         e.route_id, e.routing_reason, e.arrival_px, e.venue_order_id, e.attempts, e.error_code,
                         e.error_message, e.error_retry_after_s))
                    new_events += cur.rowcount
                for f in fls:
                    cur.execute(
                        "INSERT INTO flowroute.fills (adapter_id, trade_id, account_id, client_order_id, symbol, side, "
                        "qty, price, fee, fee_currency, liquidity, ts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                        "%s, %s) ON CONFLICT DO NOTHING", _fill_params(f))
                    flags.append(cur.rowcount == 1)
            return (new_events, flags), new_events + sum(flags)

        return self._write("record_ledger", len(evs) + len(fls), body)  # type: ignore[return-value]

    def load_orders(self) -> list[OrderEventRow]:
        """The transitions of this owner's orders, in journal order."""
        return self._read("load_orders", lambda conn: [OrderEventRow(*r) for r in conn.execute(  # type: ignore[return-value]
            f"SELECT {', '.join('e.' + c for c in _EVENT_COLS.split(', '))} "
            "FROM flowroute.order_events e JOIN flowroute.idempotency i USING (account_id, client_order_id) "
            "WHERE i.owner_id = %s ORDER BY e.id", (self.owner_id,))])

    def load_fills(self) -> list[FillRow]:
        """The fills of this owner's orders, in journal order; JournalError for an unreadable row."""

        def body(conn: Any) -> list[FillRow]:
            return [_fill_row(r) for r in conn.execute(
                "SELECT f.adapter_id, f.trade_id, f.account_id, f.client_order_id, f.symbol, f.side, f.qty, "
                "f.price, f.fee, f.fee_currency, f.liquidity, f.ts FROM flowroute.fills f "
                "JOIN flowroute.idempotency i USING (account_id, client_order_id) "
                "WHERE i.owner_id = %s ORDER BY f.id", (self.owner_id,))]

        return self._read("load_fills", body)  # type: ignore[return-value]

    # -- housekeeping -------------------------------------------------------------
    def stats(self) -> JournalStats:
        """A snapshot of the write counters (``max_batch``/``mean_batch``: claims per transaction)."""
        return self._stats.snapshot()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Stop using the backend's pool (idempotent); the backend itself is closed by its owner."""
        self._closed = True

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresJournal({redact_url(self._backend.url)}, owner={self.owner_id})"


