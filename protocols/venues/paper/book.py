"""The simulated venue's own book: order records and their durable SQLite home.

The paper venue keeps its book apart from the runtime's journal (README.md, Write an adapter) so that crash
recovery can really ask it what happened. :class:`SqliteBook` stores, in one file (stdlib
``sqlite3``, WAL, ``synchronous=NORMAL``, created with mode 0600):

- ``orders``: one row per client order id (unique) with the full ``VenueOrder`` JSON, the
  venue order id, status, reject reason, acceptance date, last-change time and the order's fills
  (``fills_json``: ``[[fill_seq, fill], …]`` in venue order; the fill sequence orders every fill of
  the book);
- ``submissions``: how many submit calls reached the venue per client order id;
- ``consumed_trades``: market trade ids that already produced fills (fill-model rule 9);
- ``meta``: counters (order and fill sequences, duplicate submissions), the venue time, the
  adapter id that owns the book and the fill-model version.

Each venue operation writes its whole change set in one transaction (:meth:`SqliteBook.commit`)
before the venue answers; a group of operations (``PaperVenue.begin_batch``/``end_batch``)
folds their change sets into one (:meth:`BookChanges.merge`) and writes them in one transaction.

What a commit writes is kept small, since it is on the order's path (docs/DESIGN.md, Durability):
an order's first submission is its ``orders`` row (``submissions`` holds a row only once an id was
submitted twice), its fills are in that row (a new fill appends to it), and the
``order_seq``/``fill_seq`` counters are the highest order and fill ``seq`` (older files also hold
them in ``meta``: the higher of the two is read). So an order filled on arrival is one row, one
statement, committed by itself (SQLite's autocommit: no BEGIN/COMMIT round trips) and two WAL pages
(the table's leaf and the client order id index's); a group of orders is one multi-row statement
per table it touches (each ``sqlite3_step`` releases Python's GIL, and under load each release can
cost a thread switch while the venue's lock is held). A book written by an earlier build (a
``fills`` table) is migrated at open, in one transaction. SQLite's
automatic WAL checkpoint (which fsyncs the database file) is off: :meth:`SqliteBook.checkpoint`
runs it between groups, off the order's path, and a commit runs it only when the WAL has grown
past :attr:`SqliteBook.wal_hard_limit` commits without one.
:class:`NullBook` is the in-memory stand-in that writes nothing. :class:`BookStore` is the
interface the venue uses, so another store (e.g. a database shared by several processes) can
stand in for the SQLite file. SQL is always parameterised.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Protocol

import orjson
from pydantic import TypeAdapter

from ..._refused import UNBINDABLE, refused_value
from ...adapter import VenueOrder, VenueOrderState
from ...model.dataclass_compat import builder
from ...model.enums import OrderStatus
from ...model.reports import Fill
from .trusted import make_state

SCHEMA_VERSION = "2"

#: meta counters the book derives from its rows (the highest ``seq``), so a commit does not write them
_DERIVED_META = frozenset({"order_seq", "fill_seq"})

#: the orders and fills tables (``name``: theirs, or the copy a migration fills). The venue order id
#: (``f"{adapter_id}-o{seq}"``) and the trade id (``f"{adapter_id}-{seq}"``) are made from the row's
#: own ``seq``, the table's key, so each is unique by construction and has no index of its own: the
#: first layout kept a UNIQUE index of each, two more b-trees (pages) written by every order and fill
_ORDERS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
    seq             INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    venue_order_id  TEXT NOT NULL,
    account         TEXT NOT NULL,
    status          TEXT NOT NULL,
    reject_reason   TEXT,
    accepted_day    TEXT NOT NULL,
    updated_ts      TEXT NOT NULL,
    order_json      TEXT NOT NULL,
    fills_json      TEXT NOT NULL DEFAULT '[]'
)"""
#: the fills table of the earlier layouts (a row per fill), read by the migration that moves the fills
#: into their orders' rows (:func:`_fold_fills`)
_FILLS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
    seq             INTEGER PRIMARY KEY,
    trade_id        TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    fill_json       TEXT NOT NULL
)"""
_ORDER_COLS = "seq, client_order_id, venue_order_id, account, status, reject_reason, accepted_day, updated_ts, order_json"
_FILL_COLS = "seq, trade_id, client_order_id, fill_json"
_FILLS_BY_ORDER = "CREATE INDEX IF NOT EXISTS fills_by_order ON fills (client_order_id)"
#: a book whose orders and fills tables are the first layout (a UNIQUE index of the venue order id
#: and of the trade id): their rows copied into the new layout, once, at open, in one transaction
#: (a crash leaves the old tables whole; dropping a table drops its indexes)
_IDS_BY_SEQ = (
    "DROP TABLE IF EXISTS orders_by_seq",
    _ORDERS_TABLE.format(name="orders_by_seq"),
    f"INSERT INTO orders_by_seq ({_ORDER_COLS}) SELECT {_ORDER_COLS} FROM orders ORDER BY seq",
    "DROP TABLE orders",
    "ALTER TABLE orders_by_seq RENAME TO orders",
    "DROP TABLE IF EXISTS fills_by_seq",
    _FILLS_TABLE.format(name="fills_by_seq"),
    f"INSERT INTO fills_by_seq ({_FILL_COLS}) SELECT {_FILL_COLS} FROM fills ORDER BY seq",
    "DROP TABLE fills",
    "ALTER TABLE fills_by_seq RENAME TO fills",
    _FILLS_BY_ORDER,
)

_SCHEMA = f"""
{_ORDERS_TABLE.format(name="orders")};
CREATE TABLE IF NOT EXISTS submissions (
    client_order_id TEXT PRIMARY KEY,
    count           INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS consumed_trades (
    symbol   TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class VenueOrderRecord:
    """One order in the venue's book (immutable; a change makes a new record).

    ``seq`` is the arrival sequence (time priority), ``account`` the venue-side account
    (prefix + the order's account id), ``day`` the UTC acceptance date (DAY expiry),
    ``ts`` the venue time of the last change.
    """

    seq: int
    order: VenueOrder
    venue_order_id: str
    account: str
    status: OrderStatus
    fills: tuple[Fill, ...]
    reject_reason: str | None
    day: date
    ts: datetime

    @property
    def cum_qty(self) -> Decimal:
        """Filled quantity so far (base units)."""
        return sum((f.qty for f in self.fills), Decimal(0))

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity still working (0 once terminal)."""
        if self.status.is_terminal:
            return Decimal(0)
        return self.order.quantity - self.cum_qty

    def state(self) -> VenueOrderState:
        """The contract value for this record (what ``VenueOrderState.of`` derives from it)."""
        # built without re-validation: every part is validated already (see ``_trusted``)
        return make_state(self.order, self.venue_order_id, self.status, self.fills, self.reject_reason, self.ts)


# A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` by name
# (~1 µs for the nine of a record); the venue makes a record per order, so it builds them with
# the generated builder of protocols/model/dataclass_compat.py: the same frozen object in half the time.
new_record = builder(VenueOrderRecord)
new_record.__doc__ = """``VenueOrderRecord(seq, order, venue_order_id, account, status, fills, reject_reason, day, ts)``, faster."""


@dataclass(slots=True)
class BookChanges:
    """Everything one venue operation changes; written in one transaction.

    ``orders``: new or updated records; ``fills``: ``(fill_seq, client_order_id, Fill)`` new
    fills; ``submissions``: new absolute counts per client order id; ``consumed``: ``(symbol,
    market trade id)`` pairs; ``meta``: counters and venue time as text.
    """

    orders: dict[str, VenueOrderRecord] = field(default_factory=dict)
    fills: list[tuple[int, str, Fill]] = field(default_factory=list)
    submissions: dict[str, int] = field(default_factory=dict)
    consumed: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.orders or self.fills or self.submissions or self.consumed or self.meta)

    def merge(self, later: BookChanges) -> None:
        """Fold ``later`` (made after this change set) into this one, so one transaction writes both.

        The later record of an order, count of an id and value of a counter win; fills and
        consumed trades are appended in order. ``later`` is left as it was.
        """
        self.orders.update(later.orders)
        self.fills.extend(later.fills)
        self.submissions.update(later.submissions)
        self.consumed.extend(later.consumed)
        self.meta.update(later.meta)


@dataclass(slots=True)
class BookSnapshot:
    """What a reopened book holds: records in arrival order, fills in venue order, counters."""

    orders: list[VenueOrderRecord] = field(default_factory=list)
    fills: list[tuple[int, str, Fill]] = field(default_factory=list)
    submissions: dict[str, int] = field(default_factory=dict)
    consumed: set[tuple[str, str]] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)


class BookStore(Protocol):
    """Where a venue's book lives: what :class:`~protocols.venues.PaperVenue` needs of a store.

    ``commit(changes)`` writes one :class:`BookChanges` atomically (all or nothing) and raises
    on failure (any ``Exception``, e.g. ``sqlite3.Error``: the venue answers
    ``FatalAdapterError`` and reloads its memory from :meth:`load`, so after a failed write the
    store holds exactly what it held before it). The ``load_order``/``submission_*``/``fill_records`` readers serve
    what the venue let leave memory. ``path`` is the file (None when there is none).
    """

    @property
    def path(self) -> Path | None:
        """The store's file (None when there is none); a plain attribute will do."""
        ...

    def load(self) -> BookSnapshot:
        """Everything the store holds."""
        ...

    def commit(self, changes: BookChanges) -> None:
        """Write ``changes`` in one transaction."""
        ...

    def load_order(self, client_order_id: str) -> VenueOrderRecord | None:
        """One order with its fills, or None."""
        ...

    def submission_counts_of(self, client_order_id: str) -> int:
        """Submit calls of one client order id (0 if none)."""
        ...

    def submission_counts(self) -> dict[str, int]:
        """Submit calls per client order id."""
        ...

    def fill_records(self) -> list[tuple[str, Fill]]:
        """Every fill as ``(client_order_id, Fill)`` in venue order."""
        ...

    def close(self) -> None:
        """Release the store (idempotent)."""
        ...


def _boot_id() -> str | None:
    """This boot's id (Linux ``/proc/sys/kernel/random/boot_id``), or None where there is none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def checkpoint_book(book: object) -> None:
    """Run ``book.checkpoint()`` when the store has one (:class:`SqliteBook`): housekeeping
    between groups (its WAL back into the database file), never needed for correctness."""
    run = getattr(book, "checkpoint", None)
    if run is not None:
        run()


def order_json(order: VenueOrder) -> str:
    """``order`` as the book's ``order_json``: the content ``order.model_dump_json()`` writes, read
    back as the same ``VenueOrder`` (decimals as plain strings, enums as their values, the UTC time
    by orjson: ``+00:00`` where pydantic writes ``Z``) in half its time (pydantic calls a Python
    serializer per decimal). A subclass, whose fields this does not know, and a time not in UTC
    (never the venue's) go to pydantic."""
    if type(order) is not VenueOrder or order.ts.tzinfo is not UTC:
        return order.model_dump_json()
    limit = order.limit_price
    return orjson.dumps({
        "client_order_id": order.client_order_id, "account_id": order.account_id, "symbol": order.symbol,
        "side": order.side, "order_type": order.order_type, "quantity": format(order.quantity, "f"),
        "limit_price": None if limit is None else format(limit, "f"), "time_in_force": order.time_in_force,
        "ts": order.ts}).decode()


def fill_json(fill: Fill) -> str:
    """``fill`` as the book's ``fill_json``, as :func:`order_json` writes an order."""
    if type(fill) is not Fill or fill.ts.tzinfo is not UTC:
        return fill.model_dump_json()
    return orjson.dumps({
        "trade_id": fill.trade_id, "qty": format(fill.qty, "f"), "price": format(fill.price, "f"),
        "fee": format(fill.fee, "f"), "fee_currency": fill.fee_currency, "liquidity": fill.liquidity,
        "ts": fill.ts}).decode()


#: rows per multi-row INSERT of :meth:`SqliteBook.commit` (at 10 columns, far under SQLite's 32,766
#: parameters); a group of more rows takes more statements
ROWS_PER_STATEMENT = 64


class _Insert:
    """A multi-row INSERT: ``head`` + ``VALUES`` with ``n`` tuples of ``width`` parameters + ``tail``;
    its text per row count is made once (and so is its prepared statement, in the connection's cache)."""

    __slots__ = ("head", "row", "tail", "_sql")

    def __init__(self, head: str, width: int, tail: str = "") -> None:
        self.head, self.row, self.tail = head, "(" + ", ".join("?" * width) + ")", tail
        self._sql: dict[int, str] = {}

    def sql(self, n: int) -> str:
        sql = self._sql.get(n)
        if sql is None:
            sql = self._sql[n] = f"{self.head} VALUES {', '.join([self.row] * n)}{self.tail}"
        return sql


def _rows(insert: _Insert, rows: Sequence[tuple[object, ...]]) -> list[tuple[str, list[object]]]:
    """``rows`` as ``(sql, parameters)`` statements of at most :data:`ROWS_PER_STATEMENT` rows each."""
    out = []
    for i in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[i:i + ROWS_PER_STATEMENT]
        out.append((insert.sql(len(chunk)), [value for row in chunk for value in row]))
    return out


#: an order's row: a new one, or a change of its status (its new fills appended to ``fills_json`` as
#: text: ``[a]`` and ``[b]`` make ``[a,b]``; a new order's record comes with every one of its fills)
_UPSERT_ORDER = _Insert(
    "INSERT INTO orders (seq, client_order_id, venue_order_id, account, status, reject_reason, accepted_day,"
    " updated_ts, order_json, fills_json)", 10,
    " ON CONFLICT (client_order_id) DO UPDATE SET status = excluded.status, reject_reason = excluded.reject_reason,"
    " updated_ts = excluded.updated_ts, fills_json = CASE WHEN excluded.fills_json = '[]' THEN fills_json"
    " WHEN fills_json = '[]' THEN excluded.fills_json"
    " ELSE substr(fills_json, 1, length(fills_json) - 1) || ',' || substr(excluded.fills_json, 2) END")
_UPSERT_SUBMISSION = _Insert("INSERT INTO submissions (client_order_id, count)", 2,
                             " ON CONFLICT (client_order_id) DO UPDATE SET count = excluded.count")
_INSERT_CONSUMED = _Insert("INSERT OR IGNORE INTO consumed_trades (symbol, trade_id)", 2)
_UPSERT_META = _Insert("INSERT INTO meta (key, value)", 2, " ON CONFLICT (key) DO UPDATE SET value = excluded.value")

#: an order row's ``fills_json``: ``[[fill_seq, fill], …]``, each fill validated as ``Fill.model_validate_json`` does
_FILLS = TypeAdapter(list[tuple[int, Fill]])
_first = itemgetter(0)


def _record(row: tuple) -> tuple[VenueOrderRecord, list[tuple[int, Fill]]]:
    """An ``orders`` row (``seq, client_order_id, venue_order_id, account, status, reject_reason,
    accepted_day, updated_ts, order_json, fills_json``) as its record and its numbered fills."""
    seq, _coid, vid, account, status, reason, day, ts, order_text, fills_text = row
    numbered = _FILLS.validate_json(fills_text) if fills_text != "[]" else []
    return VenueOrderRecord(
        seq=seq, order=VenueOrder.model_validate_json(order_text), venue_order_id=vid, account=account,
        status=OrderStatus(status), fills=tuple(f for _, f in numbered), reject_reason=reason,
        day=date.fromisoformat(day), ts=datetime.fromisoformat(ts)), numbered


def _statements(changes: BookChanges) -> list[tuple[str, list[object]]]:
    """The ``(sql, parameters)`` statements that write ``changes`` (see :meth:`SqliteBook.commit`)."""
    orders = changes.orders
    new_fills: dict[str, list[str]] = {}
    for seq, coid, fill in changes.fills:
        texts = new_fills.get(coid)
        if texts is None:
            if coid not in orders:
                raise ValueError(f"venue book: a fill of order {coid!r} without the order's record")
            texts = new_fills[coid] = []
        texts.append(f"[{seq},{fill_json(fill)}]")
    rows = []
    for r in orders.values():
        coid = r.order.client_order_id
        texts = new_fills.get(coid)
        rows.append((r.seq, coid, r.venue_order_id, r.account, r.status.value, r.reject_reason, r.day.isoformat(),
                     r.ts.isoformat(), order_json(r.order), "[" + ",".join(texts) + "]" if texts else "[]"))
    statements = _rows(_UPSERT_ORDER, rows)
    # an order's first submission is its row; the seq counters are its and its fills' seq
    submissions = [(coid, n) for coid, n in changes.submissions.items() if n != 1 or coid not in orders]
    if submissions:
        statements += _rows(_UPSERT_SUBMISSION, submissions)
    if changes.consumed:
        statements += _rows(_INSERT_CONSUMED, changes.consumed)
    meta = [(k, v) for k, v in changes.meta.items() if k not in _DERIVED_META]
    if meta:
        statements += _rows(_UPSERT_META, meta)
    return statements


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def _unique_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The columns of ``table`` (a fixed name) that a one-column UNIQUE index keeps unique."""
    out = set()
    for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({table})").fetchall():
        if unique:
            cols = [row[2] for row in conn.execute(f"PRAGMA index_info({name!r})")]
            if len(cols) == 1:
                out.add(cols[0])
    return out


def _fold_fills(conn: sqlite3.Connection) -> None:
    """Move the rows of an earlier layout's ``fills`` table into their orders' ``fills_json`` (each
    fill's JSON text as written, with its ``seq``, in venue order) and drop the table. Part of the
    open's migration transaction (:func:`_migrate`). Raises ``ValueError`` naming the ids when a fill
    belongs to no order of the book (nothing is then changed: the transaction rolls back)."""
    if "fills_json" not in {row[1] for row in conn.execute("PRAGMA table_info(orders)")}:
        conn.execute("ALTER TABLE orders ADD COLUMN fills_json TEXT NOT NULL DEFAULT '[]'")
    orphans = [coid for (coid,) in conn.execute(
        "SELECT DISTINCT client_order_id FROM fills WHERE client_order_id NOT IN (SELECT client_order_id FROM orders)")]
    if orphans:
        raise ValueError(f"venue book holds fills of orders it does not hold ({', '.join(sorted(orphans)[:5])}); not migrated")
    by_order: dict[str, list[str]] = {}
    for seq, coid, text in conn.execute("SELECT seq, client_order_id, fill_json FROM fills ORDER BY seq"):
        by_order.setdefault(coid, []).append(f"[{int(seq)},{text}]")
    conn.executemany("UPDATE orders SET fills_json = ? WHERE client_order_id = ?",
                     [("[" + ",".join(texts) + "]", coid) for coid, texts in by_order.items()])
    conn.execute("DROP TABLE fills")  # (its index with it)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))


def _migrate(conn: sqlite3.Connection, steps: Sequence[str | Callable[[sqlite3.Connection], None]]) -> None:
    """Run a schema change's steps (SQL statements, or functions of the connection) in one
    BEGIN IMMEDIATE … COMMIT, rolled back whole on any error (re-raised): a book is never left
    half migrated."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in steps:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class NullBook:
    """The in-memory book: nothing to load, nothing written."""

    path: Path | None = None

    def load(self) -> BookSnapshot:
        """An empty snapshot."""
        return BookSnapshot()

    def commit(self, changes: BookChanges) -> None:
        """No-op."""

    def load_order(self, client_order_id: str) -> VenueOrderRecord | None:
        """None: nothing ever leaves an in-memory book's memory."""
        return None

    def submission_counts_of(self, client_order_id: str) -> int:
        """0 (see :meth:`load_order`)."""
        return 0

    def submission_counts(self) -> dict[str, int]:
        """Empty (see :meth:`load_order`)."""
        return {}

    def fill_records(self) -> list[tuple[str, Fill]]:
        """Empty (see :meth:`load_order`)."""
        return []

    def close(self) -> None:
        """No-op."""


class SqliteBook:
    """The durable book in its own SQLite file (see the module docstring).

    ``SqliteBook(path, adapter_id=..., fill_model_version=...)`` creates the file (mode 0600,
    parent directories as needed) or opens an existing one. Raises ``ValueError`` when the
    file belongs to another adapter id, ``sqlite3.Error`` when it is not a usable database.
    The connection is shared by threads; the owning venue serialises calls with its lock.

    WAL checkpoints: SQLite's automatic one runs inside the COMMIT that crosses 1,000 WAL pages and
    fsyncs the database file there, on whichever order's path that commit was (measured: 3-8 ms
    about every 100 orders). Here it is off; the venue calls :meth:`checkpoint` after a group's
    answers went out, and it checkpoints once :attr:`wal_soft_limit` commits have gone to the WAL
    since the last one. A commit checkpoints itself only past :attr:`wal_hard_limit` (a venue
    that is never idle still keeps its WAL bounded).
    """

    #: commits since the last checkpoint after which :meth:`checkpoint` runs one
    wal_soft_limit = 64
    #: commits since the last checkpoint after which :meth:`commit` runs one itself
    wal_hard_limit = 500

    def __init__(self, path: Path | str, *, adapter_id: str, fill_model_version: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0,
                               cached_statements=256)  # (a multi-row INSERT per row count: see _Insert)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: every committed transaction survives the process being killed
            # (SIGKILL: what the crash suite does), only an OS crash or power cut may lose the last
            # ones. That is the venue's durability, not flowroute's: the runtime's journal is FULL.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint(): not inside an order's commit
            conn.executescript(_SCHEMA)
            steps: list[str | Callable[[sqlite3.Connection], None]] = []
            if _has_table(conn, "fills"):  # an earlier layout: a row per fill (and maybe unique ids)
                if _unique_columns(conn, "orders") & {"venue_order_id"} or _unique_columns(conn, "fills") & {"trade_id"}:
                    steps.extend(_IDS_BY_SEQ)
                steps.append(_fold_fills)
            elif _unique_columns(conn, "orders") & {"venue_order_id"}:
                steps.extend(s for s in _IDS_BY_SEQ if "fills" not in s)
            if steps:
                _migrate(conn, steps)
            owner = conn.execute("SELECT value FROM meta WHERE key = 'adapter_id'").fetchone()
            if owner is not None and owner[0] != adapter_id:
                raise ValueError(f"venue book {self.path} belongs to adapter {owner[0]!r}, not {adapter_id!r}")
            if owner is None:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("adapter_id", adapter_id),
                        ("schema_version", SCHEMA_VERSION),
                        ("fill_model_version", fill_model_version),
                    ],
                )
                conn.execute("COMMIT")
            #: this session's mark in ``meta.session`` (boot id and a token of its own)
            self._session = f"{_boot_id() or '-'} {os.getpid()}.{uuid.uuid4().hex[:12]}"
            self.tail_maybe_lost = self._open_session(conn, self._session)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        #: commits written to the WAL since the last checkpoint
        self._unchecked = 0

    @staticmethod
    def _open_session(conn: sqlite3.Connection, mark: str) -> bool:
        """Record this session as open (durably: an fsynced commit) and say whether the book's last
        commits may have been lost: True when it already knew so, or when the session before this
        one did not close and the machine has booted since (an OS crash or a power cut, which is
        what ``synchronous=NORMAL`` does not survive; a killed process loses nothing). Once True it
        stays True for this file (``meta.lost_tail``): what was lost cannot be known any more.
        Without a boot id (not Linux) an unclosed session is taken to be a killed process."""
        boot = mark.split(" ", 1)[0]
        row = conn.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()
        lost = conn.execute("SELECT value FROM meta WHERE key = 'lost_tail'").fetchone() is not None
        if not lost and row is not None:
            prev = str(row[0]).split(" ")
            lost = prev[-1] == "open" and boot != "-" and prev[0] != boot
        session = [("session", f"{mark} open")]
        if lost:
            session.append(("lost_tail", datetime.now(UTC).isoformat()))
        conn.execute("PRAGMA synchronous=FULL")  # the marker must be on disk before any order is
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value", session)
            conn.execute("COMMIT")
        finally:
            conn.execute("PRAGMA synchronous=NORMAL")
        return lost

    def load(self) -> BookSnapshot:
        """Read the whole book (orders in arrival order with their fills attached, fills in venue order)."""
        conn = self._require()
        snap = BookSnapshot()
        fills = snap.fills
        for row in conn.execute(
            "SELECT seq, client_order_id, venue_order_id, account, status, reject_reason, accepted_day,"
            " updated_ts, order_json, fills_json FROM orders ORDER BY seq"
        ):
            rec, numbered = _record(row)
            snap.orders.append(rec)
            fills.extend((seq, row[1], fill) for seq, fill in numbered)
        fills.sort(key=_first)
        snap.submissions = {rec.order.client_order_id: 1 for rec in snap.orders}  # a row only once submitted twice
        snap.submissions.update(conn.execute("SELECT client_order_id, count FROM submissions"))
        snap.consumed = {(s, t) for s, t in conn.execute("SELECT symbol, trade_id FROM consumed_trades")}
        snap.meta = {k: v for k, v in conn.execute("SELECT key, value FROM meta")}
        # the counters are the highest seq written (older files also kept them in meta)
        for key, top in (("order_seq", snap.orders[-1].seq if snap.orders else 0),
                         ("fill_seq", fills[-1][0] if fills else 0)):
            if top:
                snap.meta[key] = str(max(top, int(snap.meta.get(key, 0))))
        return snap

    def load_order(self, client_order_id: str) -> VenueOrderRecord | None:
        """One order's record with its fills (a venue that let it leave memory reads it back), or None."""
        row = self._require().execute(
            "SELECT seq, client_order_id, venue_order_id, account, status, reject_reason, accepted_day, updated_ts,"
            " order_json, fills_json FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return None if row is None else _record(row)[0]

    def submission_counts_of(self, client_order_id: str) -> int:
        """Submit calls of one client order id, as written (0 if none; 1 for an order without a
        ``submissions`` row)."""
        conn = self._require()
        row = conn.execute("SELECT count FROM submissions WHERE client_order_id = ?", (client_order_id,)).fetchone()
        if row is not None:
            return int(row[0])
        return 1 if conn.execute("SELECT 1 FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone() else 0

    def submission_counts(self) -> dict[str, int]:
        """Submit calls per client order id, as written."""
        conn = self._require()
        counts = {coid: 1 for (coid,) in conn.execute("SELECT client_order_id FROM orders")}
        counts.update(conn.execute("SELECT client_order_id, count FROM submissions"))
        return counts

    def fill_records(self) -> list[tuple[str, Fill]]:
        """Every fill as ``(client_order_id, Fill)`` in venue order, as written."""
        numbered = [(seq, coid, fill)
                    for coid, text in self._require().execute(
                        "SELECT client_order_id, fills_json FROM orders WHERE fills_json != '[]'")
                    for seq, fill in _FILLS.validate_json(text)]
        numbered.sort(key=_first)
        return [(coid, fill) for _, coid, fill in numbered]

    def commit(self, changes: BookChanges) -> None:
        """Write ``changes`` in one transaction (all or nothing). Raises ``sqlite3.Error`` when the
        write fails, :class:`~protocols._refused.ValueRefused` (after the rollback; the book stays
        usable) for a value in ``changes`` that cannot be stored: text UTF-8 cannot encode (a lone
        surrogate), an int beyond 64 bits, ``sqlite3.DataError`` (``protocols._refused``);
        ``ValueError`` (nothing written) for a fill whose order's record is not in ``changes``.

        Each table's rows go in multi-row statements (:data:`ROWS_PER_STATEMENT` rows each); a change
        set that is one statement (an order and its fills, the usual lone order) is committed by
        that statement alone (autocommit), else they run between BEGIN IMMEDIATE and COMMIT."""
        if not changes:
            return
        conn = self._require()
        began = False
        try:
            statements = _statements(changes)  # (its JSON too: a value orjson refuses is refused here)
            if len(statements) == 1:  # one statement is its own transaction (all or nothing)
                conn.execute(*statements[0])
            elif statements:
                conn.execute("BEGIN IMMEDIATE")
                began = True
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
        except BaseException as exc:
            if began:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(exc, (*UNBINDABLE, sqlite3.DataError, orjson.JSONEncodeError)):  # the values, not the file
                raise refused_value(f"paper venue book {str(self.path)!r} write", exc) from None
            raise
        self._unchecked += 1
        if self._unchecked % self.wal_hard_limit == 0:  # retried each hard limit while it cannot complete
            self._checkpoint(conn)

    def checkpoint(self) -> None:
        """Copy the WAL back into the database file (SQLite's PASSIVE checkpoint, which fsyncs it)
        once :attr:`wal_soft_limit` commits have gone to the WAL since the last one; else nothing.

        Housekeeping, not durability: a commit survives a killed process without it. Called by
        the venue between groups (``PaperVenue.after_batch``). A failure is logged by the caller's
        next commit failing, if the file is really gone; here it is ignored (the WAL stays)."""
        conn = self._conn
        if conn is not None and self._unchecked >= self.wal_soft_limit:
            self._checkpoint(conn)
            if self._unchecked == 0:
                self._restart_wal(conn)

    @staticmethod
    def _restart_wal(conn: sqlite3.Connection) -> None:
        """After a whole checkpoint SQLite starts the WAL again from its beginning at the next write,
        which writes the WAL's header and fsyncs it (synchronous NORMAL too) before its frames: an
        fsync in the next order's commit, on its answer's path. One small write (the checkpoint's
        time, UTC, in ``meta.checkpointed_at``; a write that changes nothing writes no page) takes
        the restart here, between groups. Housekeeping:
        on a failure the next commit restarts the WAL."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO meta (key, value) VALUES ('checkpointed_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (datetime.now(UTC).isoformat(),))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error:
            pass  # the WAL restarts at the next commit, as without this

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """A PASSIVE checkpoint; the commit count restarts only when it copied the whole WAL (busy
        or partial, e.g. behind another connection's reader: tried again)."""
        try:
            busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            return  # the WAL stays; the next commit says whether the book is still usable
        if not busy and done >= log:
            self._unchecked = 0

    def close(self) -> None:
        """Mark the session closed and close the connection (SQLite's last close checkpoints the
        WAL into the database file, fsynced). Idempotent."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:  # only its own mark: a newer session on the same file (an adapter rebuilt) stays open
                conn.execute("UPDATE meta SET value = ? WHERE key = 'session' AND value = ?",
                             (f"{self._session} closed", f"{self._session} open"))
            except sqlite3.Error:
                pass  # left "open": the next session decides from the boot id, as after a crash
            finally:
                conn.close()

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("venue book is closed")
        return self._conn
