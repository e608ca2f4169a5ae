"""The paper venue's book in PostgreSQL: one book that every runtime process trades, as they
would trade one exchange (docs/DESIGN.md "Scale-out").

:class:`PgBook` is a book store (``book.BookStore``) for ``PaperVenue(book=PgBook(url, …))``,
beside ``SqliteBook`` (one file per process) and ``NullBook`` (memory). The runtime chooses it when
``journal.url`` is a PostgreSQL URL and ``paper.shared_book`` is on (the default). Tables, in
the schema ``flowroute_paper``, keyed by ``book_id`` (the adapter id, so ``paper`` and
``shadow`` are two books in one database):

- ``books``: one row per book: its ``version`` (bumped by every committed change; the row is
  the book's lock), schema and fill-model versions;
- ``orders``, ``fills``, ``submissions``, ``consumed_trades``, ``meta``: what ``SqliteBook``
  stores (``book.py``), plus per row the ``version`` that last changed it and per order its
  ``origin`` (the ``host:pid`` of the process whose venue received it). ``meta`` also holds each
  symbol's top of book (``market:<symbol>``, JSON): the touch and what fills took from it are
  the exchange's, not one process's.

Concurrency (why not SERIALIZABLE or advisory locks): every change of the book is one
transaction that first locks the book's ``books`` row (``SELECT … FOR UPDATE``), then reads
what other processes committed since this process last looked (rows with a newer ``version``:
:class:`BookDelta`), lets the venue apply that and match, writes the change set with
``version + 1`` and commits. Matching is serial per book, as in an exchange's matching engine:
one writer at a time, no serialization failure to retry, no lost update, and the order and
fill sequences (venue order ids, trade ids) stay gapless and unique across processes. A read
(``fetch_order``, positions) takes no lock: :meth:`PgBook.refresh` reads the delta in one
REPEATABLE READ snapshot, so an answer reflects every change committed before the call (a
lookup's "not found" is still proof of absence).

SQL is always parameterised. Database errors raise :class:`BookError` after a rollback. A value
the database refuses (SQLSTATE class 22, e.g. a NUL character in text, or one the driver cannot
bind, e.g. a lone surrogate: ``protocols._refused``, as the journals classify it) raises
:class:`~protocols._refused.ValueRefused` after the rollback instead: that change's fault, not the
database's; the book is unlocked and usable for the next change (the venue rejects that order,
``VALUE_REFUSED``). :func:`order_text_problem` finds in an order what no write of it could store,
before it is matched.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from loguru import logger
from pydantic_core import PydanticSerializationError

from ..._refused import UNBINDABLE, refused_value
from ...adapter import VenueOrder
from ...market.values import Quote
from ...model.base import text_problem
from ...model.enums import OrderStatus, Side
from ...model.reports import Fill
from .book import BookChanges, BookSnapshot, VenueOrderRecord
from .fill_model import L1Book, TopOfBook, _new_top_of_book

__all__ = ["BookDelta", "BookError", "PgBook", "SCHEMA_VERSION", "connect_failure", "market_from_json", "market_to_json",
           "order_text_problem", "redact_url"]

SCHEMA_VERSION = 1
#: ``pg_advisory_xact_lock`` key serialising schema creation ("frpaperb" in ASCII)
_SCHEMA_LOCK = 0x667270617065726A
#: ``meta`` keys holding a symbol's top of book
MARKET_KEY = "market:"

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS flowroute_paper;
CREATE TABLE IF NOT EXISTS flowroute_paper.books (
    book_id            TEXT PRIMARY KEY,
    version            BIGINT NOT NULL DEFAULT 0,
    schema_version     INTEGER NOT NULL,
    fill_model_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flowroute_paper.orders (
    book_id         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    venue_order_id  TEXT NOT NULL,
    account         TEXT NOT NULL,
    status          TEXT NOT NULL,
    reject_reason   TEXT,
    accepted_day    TEXT NOT NULL,
    updated_ts      TEXT NOT NULL,
    order_json      TEXT NOT NULL,
    origin          TEXT NOT NULL,
    version         BIGINT NOT NULL,
    PRIMARY KEY (book_id, client_order_id),
    UNIQUE (book_id, venue_order_id),
    UNIQUE (book_id, seq)
);
CREATE INDEX IF NOT EXISTS orders_by_version ON flowroute_paper.orders (book_id, version);
CREATE TABLE IF NOT EXISTS flowroute_paper.fills (
    book_id         TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    trade_id        TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    fill_json       TEXT NOT NULL,
    PRIMARY KEY (book_id, seq),
    UNIQUE (book_id, trade_id)
);
CREATE INDEX IF NOT EXISTS fills_by_order ON flowroute_paper.fills (book_id, client_order_id);
CREATE TABLE IF NOT EXISTS flowroute_paper.submissions (
    book_id         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    count           INTEGER NOT NULL,
    version         BIGINT NOT NULL,
    PRIMARY KEY (book_id, client_order_id)
);
CREATE INDEX IF NOT EXISTS submissions_by_version ON flowroute_paper.submissions (book_id, version);
CREATE TABLE IF NOT EXISTS flowroute_paper.consumed_trades (
    book_id  TEXT NOT NULL,
    symbol   TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    version  BIGINT NOT NULL,
    PRIMARY KEY (book_id, symbol, trade_id)
);
CREATE INDEX IF NOT EXISTS consumed_by_version ON flowroute_paper.consumed_trades (book_id, version);
CREATE TABLE IF NOT EXISTS flowroute_paper.meta (
    book_id TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (book_id, key)
);
"""

_TABLES = ("orders", "fills", "submissions", "consumed_trades", "meta", "books")


class BookError(RuntimeError):
    """The shared book could not be read or written (the transaction was rolled back)."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and errors)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def connect_failure(exc: Exception) -> str:
    """What a failed PostgreSQL connection means, for a start error: wrong credentials, a missing
    database, or an unreachable server (libpq's message follows it)."""
    low = str(exc).lower()
    if "password authentication failed" in low or "no password supplied" in low or (
            "role" in low and "does not exist" in low) or "authentication failed" in low:
        return "wrong credentials"
    if "database" in low and "does not exist" in low:
        return "the database does not exist (create it first, e.g. createdb)"
    return "cannot reach the PostgreSQL server"


def order_text_problem(order: VenueOrder) -> str | None:
    """What in ``order``'s texts (client order id, account, symbol: what the book stores of it, as
    columns and in its JSON) PostgreSQL cannot store, e.g. ``"client_order_id holds a NUL
    character"``, or None (the common case, told at once: all ASCII and no NUL)."""
    joined = order.client_order_id + order.account_id + order.symbol
    if joined.isascii() and "\x00" not in joined:
        return None
    for name in ("client_order_id", "account_id", "symbol"):
        problem = text_problem(getattr(order, name))
        if problem is not None:
            return f"{name} holds {problem}"
    return None


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def market_to_json(book: TopOfBook) -> str:
    """A symbol's top of book as JSON text (Decimals as strings, the quote as its own JSON)."""
    out: dict[str, Any] = {
        "quote": None if book.quote is None else book.quote.model_dump(mode="json"),
        "bid_avail": str(book.bid_avail), "ask_avail": str(book.ask_avail), "halted": book.halted,
        "bid": _dec(book.bid), "ask": _dec(book.ask),
        "used": [[side.value, str(price), str(qty)] for side, price, qty in book.used],
    }
    if isinstance(book, L1Book):
        out["l1"] = [_dec(book.level_bid), _dec(book.level_ask)]
    return json.dumps(out, separators=(",", ":"))


def market_from_json(text: str) -> TopOfBook:
    """The inverse of :func:`market_to_json`. Raises ``ValueError`` on malformed text."""
    d = json.loads(text)
    quote = None if d["quote"] is None else Quote.model_validate(d["quote"])
    used = tuple((Side(s), Decimal(p), Decimal(q)) for s, p, q in d["used"])
    bid_avail, ask_avail = Decimal(d["bid_avail"]), Decimal(d["ask_avail"])
    if "l1" in d:
        return L1Book(quote, bid_avail, ask_avail, bool(d["halted"]), _undec(d["bid"]), _undec(d["ask"]), used,
                      level_bid=_undec(d["l1"][0]), level_ask=_undec(d["l1"][1]))
    return _new_top_of_book(quote, bid_avail, ask_avail, bool(d["halted"]), _undec(d["bid"]), _undec(d["ask"]), used)


@dataclass(slots=True)
class BookDelta(BookSnapshot):
    """What other processes committed since this process last looked (everything, at load).

    A :class:`BookSnapshot` (orders in arrival order with all their fills, new fills
    ``(fill_seq, client_order_id, Fill)`` in venue order, submission counts, consumed trades,
    meta) plus ``foreign``: the client order ids among ``orders`` that another process's venue
    received (their events are that process's to push).
    """

    foreign: set[str] = field(default_factory=set)


class PgBook:
    """The paper venue's book in PostgreSQL, shared by processes (see the module docstring).

    ``PgBook(url, adapter_id=..., fill_model_version=..., origin=None)``: ``url`` a
    ``postgresql://`` URL; ``origin`` names this process in the orders it receives (default
    ``host:pid``). Creates the schema when missing (under an advisory lock, so processes
    starting together create it once) and the book's row. Raises ``ValueError`` naming the
    cause when the server cannot be reached or the book was written by a newer schema or
    another fill-model version, :class:`BookError` on any other database error.

    One connection; the owning venue serialises calls with its lock. A change is
    :meth:`begin` (lock + delta) → :meth:`commit` (or :meth:`release`).
    """

    path = None  # not a file: ``PaperVenue.book_path`` is None for it

    def __init__(self, url: str, *, adapter_id: str, fill_model_version: str, origin: str | None = None,
                 connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.book_id = adapter_id
        self.origin = origin or f"{socket.gethostname()}:{os.getpid()}"
        self._connect_timeout_s = connect_timeout_s
        self._seen = -1  # the book version this process has applied (-1: nothing loaded yet)
        self._seen_fill = 0  # the highest fill seq this process has
        self._head: int | None = None  # the locked version, between begin() and commit()/release()
        self._conn: Any = None
        self._conn = self._connect()
        try:
            self._prepare(fill_model_version)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout_s)))
        except psycopg.Error as exc:
            raise ValueError(f"paper venue book {redact_url(self.url)}: {connect_failure(exc)}: "
                             f"{' '.join(str(exc).split())}") from None

    def _require(self) -> Any:
        conn = self._conn
        if conn is None:
            raise BookError("venue book is closed")
        if conn.broken:  # the server went away: one new connection; the next call reads the delta again
            conn.close()
            self._conn = conn = self._connect()
            self._head = None
        return conn

    def _prepare(self, fill_model_version: str) -> None:
        import psycopg

        conn = self._conn
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(_SCHEMA)
                conn.execute("INSERT INTO flowroute_paper.books (book_id, schema_version, fill_model_version) "
                             "VALUES (%s, %s, %s) ON CONFLICT (book_id) DO NOTHING",
                             (self.book_id, SCHEMA_VERSION, fill_model_version))
                schema, fmv = conn.execute("SELECT schema_version, fill_model_version FROM flowroute_paper.books "
                                           "WHERE book_id = %s", (self.book_id,)).fetchone()
        except psycopg.Error as exc:
            raise BookError(f"paper venue book {redact_url(self.url)}: cannot prepare: {' '.join(str(exc).split())}") from None
        if schema > SCHEMA_VERSION:
            raise ValueError(f"paper venue book {self.book_id!r} has schema version {schema}, newer than this build's "
                             f"{SCHEMA_VERSION}: upgrade flowroute")
        if fmv != fill_model_version:
            raise ValueError(f"paper venue book {self.book_id!r} was written by fill model {fmv}, not {fill_model_version}: "
                             "use another database (or delete the book: flowroute_paper tables, book_id "
                             f"{self.book_id!r})")

    def _fail(self, what: str, exc: Exception) -> BookError:
        self._head = None
        conn = self._conn
        if conn is not None and not conn.broken:
            try:
                conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the connection is reset on the next call
                pass
        return BookError(f"paper venue book {self.book_id!r}: {what}: {' '.join(str(exc).split())}")

    # ------------------------------------------------------------------ the store interface
    def load(self) -> BookDelta:
        """The whole book (this process has seen nothing yet), read in one snapshot."""
        self._seen, self._seen_fill = -1, 0
        delta = self.refresh()
        return delta if delta is not None else BookDelta()

    def refresh(self) -> BookDelta | None:
        """What others committed since the last look, without locking (None: nothing).

        Reads in one REPEATABLE READ snapshot. Raises :class:`BookError`."""
        import psycopg

        conn = self._require()
        self._drop_leftover()
        try:
            head = conn.execute("SELECT version FROM flowroute_paper.books WHERE book_id = %s", (self.book_id,)).fetchone()[0]
            if head == self._seen:
                return None
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            head = conn.execute("SELECT version FROM flowroute_paper.books WHERE book_id = %s", (self.book_id,)).fetchone()[0]
            delta, top = self._read_delta(conn)
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise self._fail("read failed", exc) from None
        self._seen, self._seen_fill = head, top
        return delta

    def begin(self) -> BookDelta | None:
        """Lock the book until :meth:`commit` or :meth:`release`; return what others committed since
        the last look (None: nothing). Raises :class:`BookError` (nothing is then locked)."""
        import psycopg

        conn = self._require()
        self._drop_leftover()
        try:
            conn.execute("BEGIN")
            head = conn.execute("SELECT version FROM flowroute_paper.books WHERE book_id = %s FOR UPDATE",
                                (self.book_id,)).fetchone()[0]
            delta, top = self._read_delta(conn) if head != self._seen else (None, self._seen_fill)
        except psycopg.Error as exc:
            raise self._fail("lock failed", exc) from None
        self._head = self._seen = head
        self._seen_fill = top
        return delta

    def commit(self, changes: BookChanges) -> None:
        """Write ``changes`` as version ``head + 1`` and commit, which releases the lock taken by
        :meth:`begin`. Empty changes just release it. Raises :class:`ValueRefused` for a value the
        database refuses, :class:`BookError` for any other failure (both rolled back, unlocked)."""
        import psycopg

        head = self._head
        if head is None:
            raise BookError("commit() without begin(): the shared book is written under its lock only")
        if not changes:
            self.release()
            return
        conn = self._require()
        v = head + 1
        b = self.book_id
        try:
            with conn.cursor() as cur:
                if changes.orders:
                    cur.executemany(
                        "INSERT INTO flowroute_paper.orders (book_id, client_order_id, seq, venue_order_id, account, status,"
                        " reject_reason, accepted_day, updated_ts, order_json, origin, version)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (book_id, client_order_id) DO UPDATE SET status = excluded.status,"
                        " reject_reason = excluded.reject_reason, updated_ts = excluded.updated_ts, version = excluded.version",
                        [(b, r.order.client_order_id, r.seq, r.venue_order_id, r.account, r.status.value, r.reject_reason,
                          r.day.isoformat(), r.ts.isoformat(), r.order.model_dump_json(), self.origin, v)
                         for r in changes.orders.values()])
                if changes.fills:
                    cur.executemany(
                        "INSERT INTO flowroute_paper.fills (book_id, seq, trade_id, client_order_id, fill_json)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        [(b, seq, f.trade_id, coid, f.model_dump_json()) for seq, coid, f in changes.fills])
                if changes.submissions:
                    cur.executemany(
                        "INSERT INTO flowroute_paper.submissions (book_id, client_order_id, count, version)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (book_id, client_order_id)"
                        " DO UPDATE SET count = excluded.count, version = excluded.version",
                        [(b, coid, n, v) for coid, n in changes.submissions.items()])
                if changes.consumed:
                    cur.executemany(
                        "INSERT INTO flowroute_paper.consumed_trades (book_id, symbol, trade_id, version)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [(b, s, t, v) for s, t in changes.consumed])
                if changes.meta:
                    cur.executemany(
                        "INSERT INTO flowroute_paper.meta (book_id, key, value, version) VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT (book_id, key) DO UPDATE SET value = excluded.value, version = excluded.version",
                        [(b, k, val, v) for k, val in changes.meta.items()])
                cur.execute("UPDATE flowroute_paper.books SET version = %s WHERE book_id = %s", (v, b))
            conn.execute("COMMIT")
        except (*UNBINDABLE, psycopg.DataError, PydanticSerializationError) as exc:  # the change's values, not the database
            self._fail("write refused a value", exc)
            raise refused_value(f"paper venue book {self.book_id!r} write", exc) from None
        except psycopg.Error as exc:
            raise self._fail("write failed", exc) from None
        self._head = None
        self._seen = v
        if changes.fills:
            self._seen_fill = max(self._seen_fill, max(seq for seq, _, _ in changes.fills))

    def release(self) -> None:
        """End the transaction of :meth:`begin` without writing (no-op when none is open)."""
        if self._head is None:
            return
        self._head = None
        conn = self._conn
        if conn is not None and not conn.broken:
            try:
                conn.execute("ROLLBACK")
            except Exception as exc:  # noqa: BLE001 - a broken connection is replaced on the next call
                raise self._fail("release failed", exc) from None

    def load_order(self, client_order_id: str) -> VenueOrderRecord | None:
        """One order's record with its fills, as committed, or None."""
        import psycopg

        conn = self._require()
        try:
            rows = self._orders_where(conn, "client_order_id = %s", (client_order_id,))
        except psycopg.Error as exc:
            raise self._fail("read failed", exc) from None
        return rows[0][0] if rows else None

    def submission_counts_of(self, client_order_id: str) -> int:
        """Submit calls of one client order id, as committed (0 if none)."""
        row = self._read("SELECT count FROM flowroute_paper.submissions WHERE book_id = %s AND client_order_id = %s",
                         (self.book_id, client_order_id))
        return int(row[0][0]) if row else 0

    def submission_counts(self) -> dict[str, int]:
        """Submit calls per client order id, as committed (every process's)."""
        return {c: int(n) for c, n in self._read(
            "SELECT client_order_id, count FROM flowroute_paper.submissions WHERE book_id = %s", (self.book_id,))}

    def fill_records(self) -> list[tuple[str, Fill]]:
        """Every fill as ``(client_order_id, Fill)`` in venue order, as committed (every process's)."""
        return [(c, Fill.model_validate_json(f)) for c, f in self._read(
            "SELECT client_order_id, fill_json FROM flowroute_paper.fills WHERE book_id = %s ORDER BY seq", (self.book_id,))]

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the server). Idempotent."""
        conn, self._conn = self._conn, None
        self._head = None
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------ internals
    def _drop_leftover(self) -> None:
        """A lock still held from an operation that failed before committing: release it (the
        book must never stay locked for the other processes)."""
        if self._head is not None:
            logger.warning("paper venue book {!r}: releasing a lock left by a failed operation", self.book_id)
            self.release()

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        import psycopg

        conn = self._require()
        try:
            return conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise self._fail("read failed", exc) from None

    def _orders_where(self, conn: Any, where: str, params: tuple) -> list[tuple[VenueOrderRecord, str]]:
        rows = conn.execute(
            "SELECT client_order_id, seq, venue_order_id, account, status, reject_reason, accepted_day, updated_ts,"
            f" order_json, origin FROM flowroute_paper.orders WHERE book_id = %s AND {where} ORDER BY seq",
            (self.book_id, *params)).fetchall()
        if not rows:
            return []
        fills: dict[str, list[Fill]] = {}
        for coid, fill_json in conn.execute(
                "SELECT client_order_id, fill_json FROM flowroute_paper.fills WHERE book_id = %s"
                " AND client_order_id = ANY(%s) ORDER BY seq", (self.book_id, [r[0] for r in rows])):
            fills.setdefault(coid, []).append(Fill.model_validate_json(fill_json))
        out = []
        for coid, seq, vid, account, status, reason, day, ts, order_json, origin in rows:
            rec = VenueOrderRecord(seq=seq, order=VenueOrder.model_validate_json(order_json), venue_order_id=vid,
                              account=account, status=OrderStatus(status), fills=tuple(fills.get(coid, ())),
                              reject_reason=reason, day=date.fromisoformat(day), ts=datetime.fromisoformat(ts))
            out.append((rec, origin))
        return out

    def _read_delta(self, conn: Any) -> tuple[BookDelta, int]:
        """Rows newer than ``self._seen`` (inside the caller's transaction) and the highest fill seq."""
        b, seen = self.book_id, self._seen
        delta = BookDelta()
        for rec, origin in self._orders_where(conn, "version > %s", (seen,)):
            delta.orders.append(rec)
            if origin != self.origin:
                delta.foreign.add(rec.order.client_order_id)
        top = self._seen_fill
        for seq, coid, fill_json in conn.execute(
                "SELECT seq, client_order_id, fill_json FROM flowroute_paper.fills WHERE book_id = %s AND seq > %s"
                " ORDER BY seq", (b, self._seen_fill)):
            delta.fills.append((seq, coid, Fill.model_validate_json(fill_json)))
            top = seq
        delta.submissions = {c: int(n) for c, n in conn.execute(
            "SELECT client_order_id, count FROM flowroute_paper.submissions WHERE book_id = %s AND version > %s", (b, seen))}
        delta.consumed = {(s, t) for s, t in conn.execute(
            "SELECT symbol, trade_id FROM flowroute_paper.consumed_trades WHERE book_id = %s AND version > %s", (b, seen))}
        delta.meta = {k: v for k, v in conn.execute(
            "SELECT key, value FROM flowroute_paper.meta WHERE book_id = %s AND version > %s", (b, seen))}
        return delta, top


def _scalar(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the one row ``sql`` returns (an aggregate or ``to_regclass``: always a row)."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql!r}")
    return row[0]


def delete_book(url: str, book_id: str) -> int:
    """Delete every row of one book (``stress --fresh``); how many orders it held. No-op without the schema."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        if not _scalar(conn, "SELECT to_regclass('flowroute_paper.books') IS NOT NULL"):
            return 0
        n = _scalar(conn, "SELECT count(*) FROM flowroute_paper.orders WHERE book_id = %s", (book_id,))
        for table in _TABLES:
            conn.execute(f"DELETE FROM flowroute_paper.{table} WHERE book_id = %s", (book_id,))
    return int(n)


def book_order_count(url: str, book_id: str) -> int:
    """How many orders one shared book holds (0 without the schema)."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        if not _scalar(conn, "SELECT to_regclass('flowroute_paper.books') IS NOT NULL"):
            return 0
        return int(_scalar(conn, "SELECT count(*) FROM flowroute_paper.orders WHERE book_id = %s", (book_id,)))
