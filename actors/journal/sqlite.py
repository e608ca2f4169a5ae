"""The durable journal: idempotency records, order transitions and fills (docs/DESIGN.md, Durability, docs/DESIGN.md, docs/DESIGN.md, Testing).

One small interface, :class:`JournalStore`, and its embedded implementation,
:class:`SQLiteJournal` (stdlib ``sqlite3``). A PostgreSQL backend for several processes
(docs/DESIGN.md, Scale-out) implements the same protocol; the semantics below are the contract.

Threading: a store instance is used from inside exactly ONE actor (single-threaded use).
:class:`SQLiteJournal` opens its connection with ``check_same_thread=False`` so it may be
created in one thread (the runtime's) and then used only from the owning actor's thread.
Two instances (e.g. the idempotency actor's and the ledger's) may share one database file:
SQLite serialises their write transactions (``BEGIN IMMEDIATE`` + ``busy_timeout``).

Idempotency (docs/DESIGN.md, Durability). The key is ``(account_id, client_order_id)``; a record is
``IN_PROGRESS`` from the moment it is claimed (written durably **before** any venue call),
``COMPLETED`` once its final answer is cached, ``UNKNOWN`` when the outcome is ambiguous
(timeout after send, adapter or process crash) and must be reconciled with the venue.
:meth:`JournalStore.claim_batch` decides every claim of a batch in ONE transaction (group
commit: one fsync for the whole batch) with these outcomes, checked in this order:

============================  ================================================================
``CLAIMED``                   no record: a new IN_PROGRESS record is written
``EXPIRED_RECLAIMED``         a COMPLETED record whose ``updated_at`` is more than ``ttl_s``
                              seconds before ``claim.now`` is replaced by a new IN_PROGRESS
                              record (whatever its fingerprint); IN_PROGRESS and UNKNOWN
                              records never expire (they still need reconciliation)
``CONFLICT``                  a live record with a different fingerprint, or a record retention
                              retired (:data:`RETIRED_INTENT`: its order reached a venue and
                              its history is archived), which is never reclaimed
                              (E_EXEC_IDEMPOTENCY_CONFLICT)
``REPLAY``                    same fingerprint, COMPLETED: answer with the cached report
``IN_FLIGHT``                 same fingerprint, IN_PROGRESS or UNKNOWN
                              (E_EXEC_DUPLICATE_IN_FLIGHT)
``OTHER_ACCOUNT``             no live record for this key, but another account holds a record
                              of the same ``client_order_id`` (any status): nothing is written
                              (E_EXEC_IDEMPOTENCY_CONFLICT; a venue sees the id, ClOrdID, not
                              the account, so it would see one id twice)
============================  ================================================================

One account per id: the key is ``(account_id, client_order_id)`` (replay, conflict and in flight
are per key), and across the whole journal a ``client_order_id`` is held by at most one account.
A new claim, and a reclaim of an expired record, of an id that another account holds is
``OTHER_ACCOUNT``. Journals written before this rule may hold one id under several accounts:
those records stay as they were and each still answers its own key (replay, conflict, in
flight); none of them can be claimed again while another account's record of the id exists.

Claims are decided in list order inside the transaction, so the second of two claims with
the same key in one batch sees the first one's record (IN_FLIGHT or CONFLICT). The TTL is
measured from ``updated_at`` (the completion time), not ``created_at``: an order that took
long to complete is still replayed for a full TTL after its answer was cached.

Failure (fail closed): any ``sqlite3`` or OS error inside a write raises
:class:`JournalError` after the whole transaction has been rolled back, so a failed batch
leaves nothing behind; the owning actor answers ``E_EXEC_PERSISTENCE`` and sends nothing.

Example::

    >>> j = SQLiteJournal(None)                     # in-memory: non-durable mode
    >>> c = Claim("acc-1", "s1-0001", "f" * 64, "{}", "{}", "paper", now=1000.0)
    >>> [r.outcome for r in j.claim_batch([c, c], ttl_s=3600.0)]
    ['CLAIMED', 'IN_FLIGHT']
    >>> j.complete("acc-1", "s1-0001", "COMPLETED", '{"status":"FILLED"}', now=1001.0)
    True
    >>> j.claim_batch([c], ttl_s=3600.0)[0].outcome
    'REPLAY'
    >>> j.close()
"""

from __future__ import annotations

import functools
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar, runtime_checkable

from loguru import logger

from protocols import Fill, Liquidity, Side
from protocols._refused import UNBINDABLE, ValueRefused
from protocols._refused import refused_value as _refused_value
from protocols.model.dataclass_compat import builder, replacer

from .txn import InjectedFailures, JournalStats, TxnStats

__all__ = [
    "RETIRED_INTENT",
    "SCHEMA_VERSION",
    "ArchivedOrder",
    "Claim",
    "ClaimOutcome",
    "ClaimResult",
    "Completion",
    "FillRow",
    "IdempotencyRecord",
    "IdempotencyStatus",
    "JournalError",
    "JournalStats",
    "JournalStore",
    "JournalValueRefused",
    "OrderEventRow",
    "SQLiteJournal",
]

#: Version of the on-disk schema, stored in the ``meta`` table (key ``schema_version``).
SCHEMA_VERSION: Final = 1

IdempotencyStatus = Literal["IN_PROGRESS", "COMPLETED", "UNKNOWN"]
ClaimOutcome = Literal["CLAIMED", "REPLAY", "CONFLICT", "IN_FLIGHT", "EXPIRED_RECLAIMED", "OTHER_ACCOUNT"]
Synchronous = Literal["FULL", "NORMAL", "OFF"]

_STATUSES: Final = frozenset({"IN_PROGRESS", "COMPLETED", "UNKNOWN"})
_FINAL_STATUSES: Final = frozenset({"COMPLETED", "UNKNOWN"})
_SYNCHRONOUS: Final = frozenset({"FULL", "NORMAL", "OFF"})
_MAX_ID: Final = 256


class JournalError(Exception):
    """A journal operation failed; the transaction (if any) was rolled back completely.

    Raised for every ``sqlite3.Error`` and ``OSError`` met while opening, reading or
    writing, for an injected failure (tests), and for use after :meth:`SQLiteJournal.close`.
    The owning actor turns it into ``E_EXEC_PERSISTENCE`` (README.md, Using it, fail closed).
    """


class JournalValueRefused(ValueRefused):
    """A write the journal refused for a value in it, not for a failing write: the transaction
    was rolled back, nothing written, and the same values would be refused at every retry
    (``protocols._refused``: the one classification, shared with the paper venue's book).

    Raised by every write of every backend for what SQL calls a *data exception* (SQLSTATE class
    22: ``psycopg.DataError``, e.g. a NUL character in text, 22003 an integer beyond its column's
    range; ``sqlite3.DataError``) and for a value the driver cannot bind (text UTF-8 cannot encode,
    e.g. a lone surrogate: ``UnicodeEncodeError``; an int beyond 64 bits: ``OverflowError``). A
    ``ValueError`` like the journal's other bad-input errors, and deliberately not a
    :class:`JournalError`: a caller that halts on a failing write (the ledger, fail closed) leaves
    out the refused row instead of halting for ever (``LedgerActor._write_isolating``,
    ``JournalRowRefused``). The message names the operation and the driver's error."""


#: what a driver raises for a value it cannot bind, whatever the backend (see JournalValueRefused)
_UNBINDABLE: Final = UNBINDABLE


def refused_value(op: str, exc: BaseException) -> JournalValueRefused:
    """The :class:`JournalValueRefused` of write ``op`` for the driver's error ``exc``."""
    return _refused_value(op, exc, JournalValueRefused)


# ---------------------------------------------------------------------------
# Validation helpers (bad input: ValueError/TypeError naming the field, before any write)
# ---------------------------------------------------------------------------


def _text(value: object) -> object:
    """Enum members (OrderStatus, Side...) become their string value."""
    return value.value if isinstance(value, Enum) else value


def _check_id(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{owner}.{name} must be a non-empty string, got {value!r}")
    if len(value) > _MAX_ID:
        raise ValueError(f"{owner}.{name} is longer than {_MAX_ID} characters")


def _release_keys(keys: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(account_id, client_order_id)`` keys of a ``release_batch`` as a list, each checked
    (``TypeError`` for a non-pair, ``ValueError`` for a bad id); shared by every backend."""
    items = list(keys)
    for i, key in enumerate(items):
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError(f"keys[{i}] must be an (account_id, client_order_id) tuple, got {key!r}")
        _check_id("release", "account_id", key[0])
        _check_id("release", "client_order_id", key[1])
    return items


def _check_str(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{name} must be a string, got {type(value).__name__}")


def _check_time(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{owner}.{name} must be a finite number of epoch seconds, got {value!r}")
    return float(value)


def _check_status(owner: str, value: object, allowed: frozenset[str]) -> str:
    value = _text(value)
    if value not in allowed:
        raise ValueError(f"{owner}.status must be one of {sorted(allowed)}, got {value!r}")
    return value


def _check_ttl(ttl_s: float | None) -> float | None:
    if ttl_s is None:
        return None
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or math.isnan(ttl_s) or ttl_s <= 0:
        raise ValueError(f"ttl_s must be a number of seconds > 0 (or None: never expire), got {ttl_s!r}")
    return float(ttl_s)


# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """One idempotency record (frozen), keyed by ``(account_id, client_order_id)``.

    ``fingerprint``: hex digest of the intent's economic fields (``OrderIntent.fingerprint()``).
    ``status``: ``IN_PROGRESS`` | ``COMPLETED`` | ``UNKNOWN``.
    ``report_json``: the cached ``ExecutionReport`` as JSON (``model_dump_json()``), or None.
    ``created_at`` / ``updated_at``: epoch seconds (float) of the claim and the last change.
    ``intent_json`` / ``context_json``: the ``OrderIntent`` / ``ExecutionContext`` JSON, so
    recovery can rebuild and reconcile the order. ``adapter_id``: where it was routed.
    """

    account_id: str
    client_order_id: str
    fingerprint: str
    status: IdempotencyStatus
    report_json: str | None
    created_at: float
    updated_at: float
    intent_json: str
    context_json: str
    adapter_id: str

    @property
    def key(self) -> tuple[str, str]:
        """``(account_id, client_order_id)``."""
        return (self.account_id, self.client_order_id)

    def is_expired(self, now: float, ttl_s: float | None) -> bool:
        """True when this is a COMPLETED record last updated more than ``ttl_s`` s before ``now``."""
        return self.status == "COMPLETED" and ttl_s is not None and now - self.updated_at > ttl_s


#: ``IdempotencyRecord(...)`` and ``dataclasses.replace(record, status=, report_json=, updated_at=)``
#: without the frozen dataclass ``__init__`` (the memory journal's claim and completion of every
#: order; protocols/model/dataclass_compat.py, proven equal in tests/contracts/test_library_compat.py)
_new_record = builder(IdempotencyRecord)
_completed_record = replacer(IdempotencyRecord, "status", "report_json", "updated_at")


@dataclass(frozen=True, slots=True)
class Claim:
    """A request to claim an idempotency key (frozen); see the module table for outcomes.

    ``now``: epoch seconds (float) of the claim; it becomes ``created_at``/``updated_at``
    of a new record and is the time the TTL is checked against. Raises ``ValueError`` or
    ``TypeError`` naming the field for bad input.
    """

    account_id: str
    client_order_id: str
    fingerprint: str
    intent_json: str
    context_json: str
    adapter_id: str
    now: float

    def __post_init__(self) -> None:
        if _plain_claim(self):  # the store's claims: already what the checks below would make of them
            return
        _check_id("Claim", "account_id", self.account_id)
        _check_id("Claim", "client_order_id", self.client_order_id)
        _check_id("Claim", "fingerprint", self.fingerprint)
        _check_str("Claim", "intent_json", self.intent_json)
        _check_str("Claim", "context_json", self.context_json)
        _check_str("Claim", "adapter_id", self.adapter_id)
        object.__setattr__(self, "now", _check_time("Claim", "now", self.now))


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The outcome of one :class:`Claim` (frozen).

    ``record``: for CLAIMED and EXPIRED_RECLAIMED the new IN_PROGRESS record; for REPLAY,
    CONFLICT and IN_FLIGHT the existing record (REPLAY carries ``report_json``); for
    OTHER_ACCOUNT the other account's record of the id (never shown to the claimant).
    ``previous``: for EXPIRED_RECLAIMED the expired record that was replaced, else None.
    """

    outcome: ClaimOutcome
    record: IdempotencyRecord
    previous: IdempotencyRecord | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """Set the final state of a claimed record (frozen): used by :meth:`JournalStore.complete_batch`.

    ``status``: ``COMPLETED`` (the answer is final; later duplicates REPLAY ``report_json``)
    or ``UNKNOWN`` (ambiguous; reconcile before anything is sent again). ``now``: epoch s.
    """

    account_id: str
    client_order_id: str
    status: IdempotencyStatus
    report_json: str | None
    now: float

    def __post_init__(self) -> None:
        if _plain_completion(self):  # the store's completions: already what the checks below would make of them
            return
        _check_id("Completion", "account_id", self.account_id)
        _check_id("Completion", "client_order_id", self.client_order_id)
        object.__setattr__(self, "status", _check_status("Completion", self.status, _FINAL_STATUSES))
        if self.report_json is not None:
            _check_str("Completion", "report_json", self.report_json)
        object.__setattr__(self, "now", _check_time("Completion", "now", self.now))


@dataclass(frozen=True, slots=True)
class OrderEventRow:
    """One order transition for the ledger journal (frozen; the lifecycle table in protocols/model/lifecycle.py, docs/DESIGN.md).

    ``seq``: the ledger's transition sequence number (int >= 0); ``(account_id,
    client_order_id, seq)`` is unique, so re-recording a row is a no-op. ``ts``: epoch
    seconds. ``from_status``/``to_status``: ``OrderStatus`` values (enum or str).
    ``cause``: what caused it (event name, venue reference; no secrets; free text, never parsed).
    ``reserved``: on a RESERVED transition, the notional reserved at intake (quote currency,
    Decimal; a typed column, read back at recovery to restore the reservation), else None.

    What the order's report holds besides its status and fills, as typed columns (read back when
    the ledger is rebuilt from the journal, so its reports equal those before: docs/DESIGN.md
    "Failure handling"; None in rows written before they existed): on the order's first row
    (``seq`` 1) ``route_id`` and ``routing_reason`` (its ``RouteDecision``; the adapter is the
    idempotency record's) and ``arrival_px`` (the touch at intake, quote currency: slippage); on
    every row the order's ``venue_order_id``, ``attempts`` (venue submit attempts so far) and its
    error, if any: ``error_code`` (an ``ErrorCode`` value), ``error_message``,
    ``error_retry_after_s`` (seconds).
    """

    seq: int
    ts: float
    account_id: str
    client_order_id: str
    from_status: str
    to_status: str
    cause: str = ""
    reserved: Decimal | None = None
    route_id: str | None = None
    routing_reason: str | None = None
    arrival_px: Decimal | None = None
    venue_order_id: str | None = None
    attempts: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if _plain_event_row(self):  # the ledger's rows: already what the checks below would make of them
            return
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 0:
            raise ValueError(f"OrderEventRow.seq must be an int >= 0, got {self.seq!r}")
        object.__setattr__(self, "ts", _check_time("OrderEventRow", "ts", self.ts))
        _check_id("OrderEventRow", "account_id", self.account_id)
        _check_id("OrderEventRow", "client_order_id", self.client_order_id)
        for name in ("from_status", "to_status"):
            value = _text(getattr(self, name))
            _check_id("OrderEventRow", name, value)
            object.__setattr__(self, name, value)
        _check_str("OrderEventRow", "cause", self.cause)
        if self.reserved is not None:
            try:
                value = Decimal(self.reserved)
            except (InvalidOperation, TypeError, ValueError):
                raise ValueError(f"OrderEventRow.reserved must be a Decimal >= 0 or None, got {self.reserved!r}") from None
            if not value.is_finite() or value < 0:
                raise ValueError(f"OrderEventRow.reserved must be a Decimal >= 0 or None, got {self.reserved!r}")
            object.__setattr__(self, "reserved", value)
        for name in ("route_id", "routing_reason", "venue_order_id", "error_code", "error_message"):
            if getattr(self, name) is not None:
                _check_str("OrderEventRow", name, getattr(self, name))
        if self.arrival_px is not None:
            try:
                px = Decimal(self.arrival_px)
            except (InvalidOperation, TypeError, ValueError):
                raise ValueError(f"OrderEventRow.arrival_px must be a Decimal > 0 or None, got {self.arrival_px!r}") from None
            if not px.is_finite() or px <= 0:
                raise ValueError(f"OrderEventRow.arrival_px must be a Decimal > 0 or None, got {self.arrival_px!r}")
            object.__setattr__(self, "arrival_px", px)
        if self.attempts is not None and (isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 0):
            raise ValueError(f"OrderEventRow.attempts must be an int >= 0 or None, got {self.attempts!r}")
        if self.error_retry_after_s is not None:
            retry = self.error_retry_after_s
            if isinstance(retry, bool) or not isinstance(retry, (int, float)) or not math.isfinite(retry) or retry < 0:
                raise ValueError(f"OrderEventRow.error_retry_after_s must be seconds >= 0 or None, got {retry!r}")
            object.__setattr__(self, "error_retry_after_s", float(retry))


def _plain_id(value: object) -> bool:
    return type(value) is str and 0 < len(value) <= _MAX_ID


def _plain_event_row(row: OrderEventRow) -> bool:
    """True when every field of ``row`` already has the exact type and range its checks demand
    (int seq >= 0, finite float ts, ids and statuses non-empty ``str`` of at most ``_MAX_ID``,
    ``str`` cause, None or a finite Decimal >= 0): a few exact-type tests instead of the full
    checks (a row costs ~1 us instead of ~5); anything else goes through them."""
    seq, ts, reserved, px, attempts, retry = row.seq, row.ts, row.reserved, row.arrival_px, row.attempts, row.error_retry_after_s
    return (type(seq) is int and seq >= 0 and type(ts) is float and math.isfinite(ts)
            and _plain_id(row.account_id) and _plain_id(row.client_order_id)
            and _plain_id(row.from_status) and _plain_id(row.to_status) and type(row.cause) is str
            and (reserved is None or (type(reserved) is Decimal and reserved.is_finite() and reserved >= 0))
            and (row.route_id is None or type(row.route_id) is str)
            and (row.routing_reason is None or type(row.routing_reason) is str)
            and (px is None or (type(px) is Decimal and px.is_finite() and px > 0))
            and (row.venue_order_id is None or type(row.venue_order_id) is str)
            and (attempts is None or (type(attempts) is int and attempts >= 0))
            and (row.error_code is None or type(row.error_code) is str)
            and (row.error_message is None or type(row.error_message) is str)
            and (retry is None or (type(retry) is float and math.isfinite(retry) and retry >= 0)))


_isfinite = math.isfinite


def _plain_claim(c: Claim) -> bool:
    """True when ``c``'s fields already have the exact types and values its checks demand (ids and
    fingerprint non-empty ``str`` of at most ``_MAX_ID``, ``str`` JSON texts and adapter id, finite
    float time): see :func:`_plain_event_row`. Every order's claim (~1 us instead of ~4)."""
    account_id, client_order_id, fingerprint, now = c.account_id, c.client_order_id, c.fingerprint, c.now
    return (account_id.__class__ is str and 0 < len(account_id) <= _MAX_ID  # _plain_id, inline (three calls a claim)
            and client_order_id.__class__ is str and 0 < len(client_order_id) <= _MAX_ID
            and fingerprint.__class__ is str and 0 < len(fingerprint) <= _MAX_ID
            and c.intent_json.__class__ is str and c.context_json.__class__ is str and c.adapter_id.__class__ is str
            and now.__class__ is float and _isfinite(now))


def _plain_completion(c: Completion) -> bool:
    """True when ``c``'s fields already have the exact types and values its checks demand (ids,
    a final status as ``str``, ``str`` or None report, finite float time): see :func:`_plain_event_row`."""
    report_json, now = c.report_json, c.now
    return (_plain_id(c.account_id) and _plain_id(c.client_order_id) and type(c.status) is str
            and c.status in _FINAL_STATUSES and (report_json is None or type(report_json) is str)
            and type(now) is float and math.isfinite(now))


@dataclass(frozen=True, slots=True)
class FillRow:
    """One venue fill for the ledger journal (frozen; the lifecycle table in protocols/model/lifecycle.py "a fill is applied once per trade_id").

    ``(adapter_id, fill.trade_id)`` is unique: recording the same fill again is ignored
    (``INSERT OR IGNORE``). ``fill`` round-trips exactly (Decimals stored as text, ``ts``
    as ISO-8601 UTC).
    """

    adapter_id: str
    account_id: str
    client_order_id: str
    symbol: str
    side: Side
    fill: Fill

    def __post_init__(self) -> None:
        if (type(self.side) is Side and type(self.fill) is Fill and _plain_id(self.adapter_id) and _plain_id(self.account_id)
                and _plain_id(self.client_order_id) and _plain_id(self.symbol)):
            return  # the ledger's fills: already what the checks below would make of them
        _check_id("FillRow", "adapter_id", self.adapter_id)
        _check_id("FillRow", "account_id", self.account_id)
        _check_id("FillRow", "client_order_id", self.client_order_id)
        _check_id("FillRow", "symbol", self.symbol)
        try:
            object.__setattr__(self, "side", Side(self.side))
        except ValueError:
            raise ValueError(f"FillRow.side must be BUY or SELL, got {self.side!r}") from None
        if not isinstance(self.fill, Fill):
            raise TypeError(f"FillRow.fill must be a protocols.Fill, got {type(self.fill).__name__}")

    @property
    def trade_id(self) -> str:
        """The venue trade id (FIX tag 1003)."""
        return self.fill.trade_id


@dataclass(frozen=True, slots=True)
class ArchivedOrder:
    """A terminal order the ledger moved out of memory (frozen): ``record_json`` is the whole
    record (``actors/orders/archive.py``); ``archived_at`` epoch seconds on the runtime's clock."""

    client_order_id: str
    account_id: str
    status: str
    archived_at: float
    record_json: str


# ---------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------


@runtime_checkable
class JournalStore(Protocol):
    """The durable store behind the idempotency-store and ledger actors.

    Every write method is one atomic transaction: it either commits entirely or raises
    :class:`JournalError` with nothing written. Reads raise :class:`JournalError` too.
    Bad arguments raise ``ValueError``/``TypeError`` before anything is written; a value the
    database refuses raises :class:`JournalValueRefused` (a ``ValueError``), nothing written.
    """

    def claim_batch(self, claims: Sequence[Claim], ttl_s: float | None) -> list[ClaimResult]:
        """Decide all ``claims`` in ONE transaction (group commit); results in input order."""
        ...

    def complete(
        self, account_id: str, client_order_id: str, status: IdempotencyStatus, report_json: str | None, now: float
    ) -> bool:
        """Set a record's final status (COMPLETED or UNKNOWN) and report; False if no such record."""
        ...

    def complete_batch(self, completions: Sequence[Completion]) -> int:
        """Apply all ``completions`` in one transaction; returns how many records existed."""
        ...

    def mark_unknown(self, account_id: str, client_order_id: str, now: float, report_json: str | None = None) -> bool:
        """IN_PROGRESS/UNKNOWN -> UNKNOWN (a COMPLETED record is left alone); True if changed."""
        ...

    def release(self, account_id: str, client_order_id: str) -> bool:
        """Delete an IN_PROGRESS record whose order provably never reached a venue; True if deleted."""
        ...

    def release_batch(self, keys: Sequence[tuple[str, str]]) -> int:
        """:meth:`release` for many ``(account_id, client_order_id)`` keys in one transaction."""
        ...

    def mark_all_unknown(self, now: float) -> int:
        """Recovery after a process crash: every IN_PROGRESS record becomes UNKNOWN; returns the count."""
        ...

    def load_unresolved(self) -> list[IdempotencyRecord]:
        """IN_PROGRESS and UNKNOWN records (what recovery must reconcile), oldest first."""
        ...

    def load_records(self) -> list[IdempotencyRecord]:
        """Every idempotency record, oldest first."""
        ...

    def get(self, account_id: str, client_order_id: str) -> IdempotencyRecord | None:
        """The record for the key, or None (no TTL check: raw state)."""
        ...

    def record_order_events(self, rows: Sequence[OrderEventRow]) -> int:
        """Journal order transitions (duplicates ignored); returns how many were new."""
        ...

    def record_fills(self, rows: Sequence[FillRow]) -> list[bool]:
        """Journal fills once per (adapter_id, trade_id); True where the fill was new."""
        ...

    def record_ledger(self, events: Sequence[OrderEventRow], fills: Sequence[FillRow]) -> tuple[int, list[bool]]:
        """Both of the above in ONE transaction (one fsync per ledger batch)."""
        ...

    def load_orders(self) -> list[OrderEventRow]:
        """Every journaled transition in the order it was journaled."""
        ...

    def load_fills(self) -> list[FillRow]:
        """Every journaled fill in the order it was journaled."""
        ...

    def stats(self) -> JournalStats:
        """Write-transaction counters (see :class:`JournalStats`)."""
        ...

    def close(self) -> None:
        """Release the store; idempotent. Later calls raise :class:`JournalError`."""
        ...


# ---------------------------------------------------------------------------
# SQLite implementation
# ---------------------------------------------------------------------------

#: The idempotency records: a VIEW, ``idempotency``, with the columns of a record (what every reader
#: selects: recovery, retention, the claim's look-ups, tools), over two tables written in claim order:
#:
#: - ``idempotency_records``: one row per record (key, fingerprint, status, times, adapter, intent and
#:   context JSON, ~460 bytes), a rowid table appended in claim order: a batch's claims fill its last
#:   pages, and a completion updates its row in place (the status and time only: same size). The
#:   unique index ``idempotency_key`` on ``(client_order_id, account_id)`` is what a claim looks up
#:   (every account's record of an id, one account per id: ``OTHER_ACCOUNT``, and one key) and the
#:   only b-tree written at a random place, with ~25-byte entries;
#: - ``idempotency_reports``: the cached report JSON (~650 bytes), ``id`` = its record's, so a
#:   completion inserts near the end, in claim order.
#:
#: The first two layouts kept everything in one WITHOUT ROWID table keyed by the id (~1.1 KB rows
#: once completed): claims at random ids split leaves and a completion grew its row where it stood,
#: ~1.25 WAL pages of 8 KB per claim and ~1.5 per completion at 40 claims a transaction from 16
#: senders. The status CHECK is an OR of equalities: an ``IN (…)`` list of three constants built an
#: ephemeral table at every run of a statement that writes a status (each row of an
#: ``executemany``: every claim and completion), as :func:`terminal_term` explains.
#:
#: A trigger deletes a record's report with it (a release, retention), and the view takes UPDATE,
#: DELETE and INSERT as a table would (retention's retirement and pruning, tools); the journal's own
#: writes go to the tables.
_SQL_RECORD_TABLES = (
    """CREATE TABLE IF NOT EXISTS idempotency_records (
        id INTEGER PRIMARY KEY,
        client_order_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status = 'IN_PROGRESS' OR status = 'COMPLETED' OR status = 'UNKNOWN'),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        adapter_id TEXT NOT NULL,
        intent_json TEXT NOT NULL,
        context_json TEXT NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS idempotency_reports (id INTEGER PRIMARY KEY, report_json TEXT NOT NULL)",
)
_SQL_RECORD_KEY = "CREATE UNIQUE INDEX IF NOT EXISTS idempotency_key ON idempotency_records (client_order_id, account_id)"
#: the record the view's row ``old`` is (the triggers' subquery)
_ID_OF_OLD = "(SELECT id FROM idempotency_records WHERE client_order_id = old.client_order_id AND account_id = old.account_id)"
_SQL_RECORD_VIEW = (
    """CREATE VIEW IF NOT EXISTS idempotency AS SELECT rec.account_id AS account_id, rec.client_order_id AS client_order_id,
        rec.fingerprint AS fingerprint, rec.status AS status, rep.report_json AS report_json, rec.created_at AS created_at,
        rec.updated_at AS updated_at, rec.intent_json AS intent_json, rec.context_json AS context_json,
        rec.adapter_id AS adapter_id FROM idempotency_records AS rec LEFT JOIN idempotency_reports AS rep ON rep.id = rec.id""",
    """CREATE TRIGGER IF NOT EXISTS idempotency_records_deleted AFTER DELETE ON idempotency_records BEGIN
        DELETE FROM idempotency_reports WHERE id = old.id;
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS idempotency_update INSTEAD OF UPDATE ON idempotency BEGIN
        SELECT RAISE(ABORT, 'the key of an idempotency record cannot change')
            WHERE new.client_order_id IS NOT old.client_order_id OR new.account_id IS NOT old.account_id;
        DELETE FROM idempotency_reports WHERE new.report_json IS NULL AND id = {_ID_OF_OLD};
        INSERT OR REPLACE INTO idempotency_reports (id, report_json) SELECT {_ID_OF_OLD}, new.report_json
            WHERE new.report_json IS NOT NULL AND new.report_json IS NOT old.report_json;
        UPDATE idempotency_records SET fingerprint = new.fingerprint, status = new.status, created_at = new.created_at,
            updated_at = new.updated_at, adapter_id = new.adapter_id, intent_json = new.intent_json, context_json = new.context_json
            WHERE client_order_id = old.client_order_id AND account_id = old.account_id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS idempotency_delete INSTEAD OF DELETE ON idempotency BEGIN
        DELETE FROM idempotency_records WHERE client_order_id = old.client_order_id AND account_id = old.account_id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS idempotency_insert INSTEAD OF INSERT ON idempotency BEGIN
        INSERT INTO idempotency_records (client_order_id, account_id, fingerprint, status, created_at, updated_at, adapter_id,
            intent_json, context_json) VALUES (new.client_order_id, new.account_id, new.fingerprint, new.status, new.created_at,
            new.updated_at, new.adapter_id, new.intent_json, new.context_json);
        INSERT INTO idempotency_reports (id, report_json) SELECT last_insert_rowid(), new.report_json WHERE new.report_json IS NOT NULL;
    END""",
)
#: a journal whose records are a table (the first two layouts, the JSON in the keyed rows: keyed
#: account first with two indexes, or id first): its rows copied into the two tables, oldest first,
#: once, at open, in one transaction (a crash leaves the old table whole; dropping it drops its indexes)
_SQL_RECORDS_SPLIT = (
    *_SQL_RECORD_TABLES,
    "INSERT INTO idempotency_records (client_order_id, account_id, fingerprint, status, created_at, updated_at, adapter_id, "
    "intent_json, context_json) SELECT client_order_id, account_id, fingerprint, status, created_at, updated_at, adapter_id, "
    "intent_json, context_json FROM idempotency ORDER BY created_at, client_order_id, account_id",
    _SQL_RECORD_KEY,
    "INSERT INTO idempotency_reports (id, report_json) SELECT rec.id, old.report_json FROM idempotency AS old "
    "JOIN idempotency_records AS rec ON rec.client_order_id = old.client_order_id AND rec.account_id = old.account_id "
    "WHERE old.report_json IS NOT NULL ORDER BY rec.id",
    "DROP TABLE idempotency",  # drops its indexes too
    *_SQL_RECORD_VIEW,
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    *_SQL_RECORD_TABLES,
    _SQL_RECORD_KEY,
    *_SQL_RECORD_VIEW,
    """CREATE TABLE IF NOT EXISTS order_events (
        id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        ts REAL NOT NULL,
        account_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        from_status TEXT NOT NULL,
        to_status TEXT NOT NULL,
        cause TEXT NOT NULL,
        reserved TEXT,
        route_id TEXT,
        routing_reason TEXT,
        arrival_px TEXT,
        venue_order_id TEXT,
        attempts INTEGER,
        error_code TEXT,
        error_message TEXT,
        error_retry_after_s REAL,
        UNIQUE (account_id, client_order_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS fills (
        id INTEGER PRIMARY KEY,
        adapter_id TEXT NOT NULL,
        trade_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty TEXT NOT NULL,
        price TEXT NOT NULL,
        fee TEXT NOT NULL,
        fee_currency TEXT NOT NULL,
        liquidity TEXT NOT NULL,
        ts TEXT NOT NULL,
        UNIQUE (adapter_id, trade_id)
    )""",
)

#: the archive table (``name`` is ``order_archive``, or the copy a migration fills): a rowid table
#: with a unique client_order_id. Its rows are ~1.2 KB of JSON, which a rowid table's leaf page
#: holds inline; as a WITHOUT ROWID table (the first layout) each row overflowed into a page of
#: its own (SQLite keeps at most ~1 KB of a row inline in an index b-tree: "WITHOUT ROWID
#: tables ... work best with rows smaller than about 1/20th the page size", sqlite.org/withoutrowid.html):
#: ~3.3x the pages written per archived order and ~9 µs more CPU per row inserted and committed
_SQL_ARCHIVE_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
        client_order_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        status TEXT NOT NULL,
        archived_at REAL NOT NULL,
        record_json TEXT NOT NULL,
        compacted INTEGER NOT NULL DEFAULT 0
    )"""
_SQL_ARCHIVE_AGE_INDEX = "CREATE INDEX IF NOT EXISTS order_archive_age ON order_archive (archived_at) WHERE compacted = 0"
#: a journal whose order_archive is the first layout (WITHOUT ROWID): its rows copied into the
#: rowid layout, once, at open, in one transaction (a crash leaves the old table whole)
_SQL_ARCHIVE_TO_ROWID = (
    "DROP TABLE IF EXISTS order_archive_rowid",
    _SQL_ARCHIVE_TABLE.format(name="order_archive_rowid"),
    "INSERT INTO order_archive_rowid (client_order_id, account_id, status, archived_at, record_json, compacted) "
    "SELECT client_order_id, account_id, status, archived_at, record_json, compacted FROM order_archive "
    "ORDER BY archived_at, client_order_id",
    "DROP TABLE order_archive",  # drops its index too
    "ALTER TABLE order_archive_rowid RENAME TO order_archive",
    _SQL_ARCHIVE_AGE_INDEX,
)

#: the statuses that end an order (protocols' ``TERMINAL_STATUSES``; ``tests/journal/test_retention_plan.py``
#: holds them equal): the rows ``order_events_terminal_ts`` indexes
TERMINAL_TO_STATUSES: Final = ("CANCELED", "DENIED", "EXPIRED", "FAILED", "FILLED", "REJECTED")


def terminal_term(column: str) -> str:
    """The predicate of ``order_events_terminal_ts`` on ``column`` (``to_status``, or a query's
    ``e.to_status``): one equality per terminal status, joined by OR. A query must spell it the
    same way for SQLite to use the partial index (sqlite.org/partialindex.html). Not ``IN (…)``:
    SQLite codes an IN list of more than two constants as an ephemeral table built once per
    statement run, and every row an ``executemany`` inserts is a run of its own, so the index's
    predicate built that table for every transition row the ledger wrote (~1.8 µs a row, about
    a third of its insert, though most rows are not terminal). The equalities cost a few
    comparisons."""
    return "(" + " OR ".join(f"{column} = '{status}'" for status in TERMINAL_TO_STATUSES) + ")"


#: retention's candidates: the terminal rows by time (``actors/audit/retention.py`` ``_expired_orders``,
#: whose query has the same :func:`terminal_term`); a journal whose index has the first predicate
#: (``to_status IN (…)``) gets this one at open (:meth:`SQLiteJournal._migrate`)
_SQL_TERMINAL_INDEX = f"CREATE INDEX IF NOT EXISTS order_events_terminal_ts ON order_events (ts) WHERE {terminal_term('to_status')}"

#: Tables added after schema_version 1 without changing what version 1 files hold: created at
#: every open when missing (an older build ignores them).
_ADDITIVE = (
    # terminal orders the ledger moved out of memory (one row each: the record as JSON, see
    # actors/orders/archive.py); ``compacted`` = 1 once their order_events rows were folded into it
    _SQL_ARCHIVE_TABLE.format(name="order_archive"),
    _SQL_ARCHIVE_AGE_INDEX,
    _SQL_TERMINAL_INDEX,
)

_REC_COLS = (
    "account_id, client_order_id, fingerprint, status, report_json, created_at, updated_at, "
    "intent_json, context_json, adapter_id"
)
_SQL_GET = f"SELECT {_REC_COLS} FROM idempotency WHERE account_id = ? AND client_order_id = ?"
#: every account's record of one client_order_id (the key's first column)
_SQL_GET_ID = f"SELECT {_REC_COLS} FROM idempotency WHERE client_order_id = ?"
_SQL_INSERT = ("INSERT INTO idempotency_records (client_order_id, account_id, fingerprint, status, created_at, updated_at, "
               "adapter_id, intent_json, context_json) VALUES (?, ?, ?, 'IN_PROGRESS', ?, ?, ?, ?, ?)")
#: a lone claim's insert, made only when no account holds a record of its id (the common case: then
#: CLAIMED without a SELECT first; else nothing is written and the claim is decided as in a batch)
_SQL_INSERT_IF_NEW = (_SQL_INSERT.replace("VALUES (", "SELECT ").removesuffix(")")
                      + " WHERE NOT EXISTS (SELECT 1 FROM idempotency_records WHERE client_order_id = ?)")
#: an expired record reclaimed: the same row, a new claim (its old report dropped first: _SQL_DROP_REPORT)
_SQL_RECLAIM = (
    "UPDATE idempotency_records SET fingerprint = ?, status = 'IN_PROGRESS', created_at = ?, updated_at = ?, adapter_id = ?, "
    "intent_json = ?, context_json = ? WHERE client_order_id = ? AND account_id = ?"
)
_SQL_COMPLETE = "UPDATE idempotency_records SET status = ?, updated_at = ? WHERE client_order_id = ? AND account_id = ?"
#: a record's report (id = its record's; replaces one it had), written only when the record exists
_SQL_PUT_REPORT = ("INSERT OR REPLACE INTO idempotency_reports (id, report_json) SELECT id, ? FROM idempotency_records "
                   "WHERE client_order_id = ? AND account_id = ?")
_SQL_DROP_REPORT = ("DELETE FROM idempotency_reports WHERE id = (SELECT id FROM idempotency_records "
                    "WHERE client_order_id = ? AND account_id = ?)")
_SQL_MARK_UNKNOWN = (
    "UPDATE idempotency_records SET status = 'UNKNOWN', updated_at = ? WHERE client_order_id = ? AND account_id = ? "
    "AND status != 'COMPLETED'"
)
_SQL_PUT_REPORT_UNLESS_COMPLETED = _SQL_PUT_REPORT + " AND status != 'COMPLETED'"
#: an order_events row's columns, in OrderEventRow's field order
_EVENT_COLS = ("seq, ts, account_id, client_order_id, from_status, to_status, cause, reserved, route_id, routing_reason, "
               "arrival_px, venue_order_id, attempts, error_code, error_message, error_retry_after_s")
#: what an order_events row's nullable column (reserved … error_retry_after_s: text, or numbers
#: >= 0) is bound to for None: ``sqlite3`` binds a None parameter through its adaptation lookup
#: (~0.3 µs each, 7-9 per transition row, a third of the row's insert), an int at once;
#: ``NULLIF(?, -1)`` in :data:`_SQL_EVENT` makes it NULL again (-1 equals none of their values)
NULL_PARAM: Final = -1
_SQL_EVENT = (f"INSERT OR IGNORE INTO order_events ({_EVENT_COLS}) "
              f"VALUES ({', '.join(['?'] * 7 + [f'NULLIF(?, {NULL_PARAM})'] * 9)})")
#: the report fields added to order_events after the reserved column (OrderEventRow): added to an
#: older journal at open, NULL in its rows (nothing to move: they were never journaled)
_EVENT_REPORT_COLUMNS = (("route_id", "TEXT"), ("routing_reason", "TEXT"), ("arrival_px", "TEXT"), ("venue_order_id", "TEXT"),
                         ("attempts", "INTEGER"), ("error_code", "TEXT"), ("error_message", "TEXT"),
                         ("error_retry_after_s", "REAL"))
#: a journal written before reservations had their own column: add it, and move the notional a
#: RESERVED row's cause held (``"reserved 39.43"``, the old format) into it, once, at open
_SQL_ADD_RESERVED = (
    "ALTER TABLE order_events ADD COLUMN reserved TEXT",
    "UPDATE order_events SET reserved = substr(cause, 10), cause = 'reserved at intake' "
    "WHERE to_status = 'RESERVED' AND reserved IS NULL AND cause GLOB 'reserved [0-9]*' "
    "AND substr(cause, 10) NOT GLOB '*[^0-9.]*'",
)
_SQL_FILL = (
    "INSERT OR IGNORE INTO fills (adapter_id, trade_id, account_id, client_order_id, symbol, side, qty, price, "
    "fee, fee_currency, liquidity, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_SQL_ARCHIVE = (
    "INSERT OR REPLACE INTO order_archive (client_order_id, account_id, status, archived_at, record_json, compacted) "
    "VALUES (?, ?, ?, ?, ?, 0)"
)
_SQL_ARCHIVED = "SELECT client_order_id, account_id, status, archived_at, record_json FROM order_archive"


def _record(row: tuple) -> IdempotencyRecord:
    return IdempotencyRecord(*row)


def _dec(value: Decimal) -> str:
    return format(value, "f")


#: ``intent_json`` of a record retention retired (actors/audit/retention.py): its order reached a
#: venue and its history is archived; the record only blocks its id's reuse (never reclaimed, not
#: loaded by recovery)
RETIRED_INTENT = "retired"


def _migration(conn: sqlite3.Connection, statements: Sequence[tuple[str, tuple]]) -> None:
    """Run one schema step's ``(sql, params)`` statements in one BEGIN IMMEDIATE … COMMIT, rolled
    back whole on any error (re-raised): a journal is never left half migrated."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in statements:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


#: page size of a new idempotency journal (``SQLiteJournal(page_size=...)``, as the runtime opens
#: ``journal.sqlite``): the idempotency table is WITHOUT ROWID, whose rows keep at most ~1,000
#: bytes in their page at 4,096 (SQLite's maxLocal of an index b-tree page) and spill the rest into
#: an overflow page of their own; a completed record (claim JSON + report JSON) is ~1,050 bytes,
#: so every completion wrote a fresh overflow page, every record took more than a page. At
#: 8,192 (~2,000 bytes in the page) records sat seven to a page. (Since the records are split over
#: three tables, ``_SQL_RECORD_TABLES``, no row comes near either bound; files keep their page size.)
RECORD_PAGE_SIZE: Final = 8192

#: ids per ``SELECT … IN (…)`` of a claim batch (far below SQLite's bound-parameter limit)
_IN_CHUNK = 500


@functools.lru_cache(maxsize=64)
def _sql_get_ids(n: int) -> str:
    """:data:`_SQL_GET_ID` for ``n`` client order ids at once."""
    return f"SELECT {_REC_COLS} FROM idempotency WHERE client_order_id IN ({','.join('?' * n)})"


def _old_and_other(c: Claim, rows: Iterable[tuple]) -> tuple[IdempotencyRecord | None, IdempotencyRecord | None]:
    """From the journaled rows of ``c``'s client_order_id: the record of its own key (or None) and
    one record of the id under another account (or None), as :func:`_decide_claim` takes them."""
    old = other = None
    for row in rows:
        if row[0] == c.account_id:
            old = _record(row)
        elif other is None:
            other = _record(row)
    return old, other


def _insert_params(c: Claim) -> tuple:
    return (c.client_order_id, c.account_id, c.fingerprint, c.now, c.now, c.adapter_id, c.intent_json, c.context_json)


def _reclaim_params(c: Claim) -> tuple:
    return (c.fingerprint, c.now, c.now, c.adapter_id, c.intent_json, c.context_json, c.client_order_id, c.account_id)


def _decide_claim(c: Claim, old: IdempotencyRecord | None, ttl_s: float | None,
                  other: IdempotencyRecord | None = None) -> ClaimResult:
    """The outcome table of the module docstring for one claim, given the key's current record
    (None: no record) and a record of the same client_order_id under another account (None: no
    other account holds it); every backend decides by it and then writes what it says (a new
    IN_PROGRESS record for CLAIMED and EXPIRED_RECLAIMED, nothing otherwise)."""
    if other is not None and (old is None or old.is_expired(c.now, ttl_s)):
        return ClaimResult("OTHER_ACCOUNT", other)  # one account per id: nothing is written
    # on every order's path (the journal-off store too): the new record is built inline, no helper call
    if old is None:
        return ClaimResult("CLAIMED", IdempotencyRecord(c.account_id, c.client_order_id, c.fingerprint, "IN_PROGRESS",
                                                        None, c.now, c.now, c.intent_json, c.context_json, c.adapter_id))
    if old.is_expired(c.now, ttl_s):
        if old.intent_json == RETIRED_INTENT:
            return ClaimResult("CONFLICT", old)
        return ClaimResult("EXPIRED_RECLAIMED", IdempotencyRecord(
            c.account_id, c.client_order_id, c.fingerprint, "IN_PROGRESS", None, c.now, c.now, c.intent_json, c.context_json,
            c.adapter_id), old)
    if old.fingerprint != c.fingerprint:
        return ClaimResult("CONFLICT", old)
    return ClaimResult("REPLAY" if old.status == "COMPLETED" else "IN_FLIGHT", old)


_T = TypeVar("_T")


def _typed_items(name: str, items: Iterable[object], cls: type[_T]) -> list[_T]:
    """``items`` as a list, each checked to be a ``cls`` (``TypeError`` naming ``name[i]``
    otherwise); the batch methods of every backend check their input with it."""
    out = list(items)
    for i, item in enumerate(out):
        if not isinstance(item, cls):
            article = "an" if cls.__name__[0] in "AEIOU" else "a"
            raise TypeError(f"{name}[{i}] must be {article} {cls.__name__}, got {type(item).__name__}")
    return out  # type: ignore[return-value]


def _fill_row(r: Sequence) -> FillRow:
    """A journaled ``fills`` row (adapter_id, trade_id, account_id, client_order_id, symbol, side,
    qty, price, fee, fee_currency, liquidity, ts) as a :class:`FillRow`; :class:`JournalError`
    when it no longer parses (a hand-edited store)."""
    adapter_id, trade_id, account_id, coid, symbol, side, qty, price, fee, fee_ccy, liq, ts = r
    try:
        fill = Fill(trade_id=trade_id, qty=Decimal(qty), price=Decimal(price), fee=Decimal(fee),
                    fee_currency=fee_ccy, liquidity=Liquidity(liq), ts=datetime.fromisoformat(ts))
        return FillRow(adapter_id, account_id, coid, symbol, Side(side), fill)
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise JournalError(f"journaled fill {adapter_id}/{trade_id} is unreadable: {exc}") from exc


def event_params(e: OrderEventRow) -> tuple:
    """``e`` as the parameters of :data:`_SQL_EVENT`, in :data:`_EVENT_COLS` order: Decimals as
    text, None in a nullable column as :data:`NULL_PARAM` (see
    :meth:`SQLiteJournal.record_ledger_params`)."""
    n = NULL_PARAM
    return (e.seq, e.ts, e.account_id, e.client_order_id, e.from_status, e.to_status, e.cause,
            n if e.reserved is None else str(e.reserved), n if e.route_id is None else e.route_id,
            n if e.routing_reason is None else e.routing_reason, n if e.arrival_px is None else str(e.arrival_px),
            n if e.venue_order_id is None else e.venue_order_id, n if e.attempts is None else e.attempts,
            n if e.error_code is None else e.error_code, n if e.error_message is None else e.error_message,
            n if e.error_retry_after_s is None else e.error_retry_after_s)


def _fill_params(row: FillRow) -> tuple:
    f = row.fill
    return (
        row.adapter_id,
        f.trade_id,
        row.account_id,
        row.client_order_id,
        row.symbol,
        row.side.value,
        _dec(f.qty),
        _dec(f.price),
        _dec(f.fee),
        f.fee_currency,
        f.liquidity.value,
        f.ts.isoformat(),
    )


class _InjectedFailure(Exception):
    pass


def _switch_to_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Switch ``conn``'s database to WAL and return the journal mode in effect (lower case).

    Switching a brand-new file to WAL needs the database's exclusive lock, and SQLite answers
    "database is locked" at once, without consulting the busy handler, while another
    connection holds even a RESERVED lock on it: two connections opening the same new journal
    at the same moment (an embedder's threads, or two actors) race here. The switch is retried
    with a short doubling pause (1 ms → 50 ms) for up to ``busy_timeout_ms``, the same budget a
    write gets; past it the last ``sqlite3.OperationalError`` is raised. Runs at open only.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000.0
    pause = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


@runtime_checkable
class FailureInjectable(Protocol):
    """A journal with the test hook ``inject_failure`` (``Runtime.inject_journal_failure``):
    its next ``n`` writes fail as a full disk would."""

    def inject_failure(self, n: int = 1) -> None:
        """Fail the next ``n`` writes."""
        ...


class SQLiteJournal:
    """:class:`JournalStore` on stdlib ``sqlite3`` (docs/DESIGN.md, Durability): WAL, group commit, fail closed.

    ``path``: the database file, or ``None`` for an in-memory journal (non-durable mode:
    nothing survives the process; WAL and ``synchronous`` do not apply).
    ``synchronous``: SQLite's ``PRAGMA synchronous`` — ``FULL`` (default: each commit is
    fsynced, survives power loss), ``NORMAL`` (WAL fsynced at checkpoints only: survives a
    process crash, may lose the last commits on power loss) or ``OFF``.
    ``file_mode``: permission bits of the database file (default ``0o600``, docs/DESIGN.md, Testing).
    ``busy_timeout_ms``: how long a write waits for another connection's write lock
    before failing (only when two stores share one file; the owning actor blocks meanwhile).
    ``fail_writes``: test hook called once per write transaction just before COMMIT (after
    the statements ran); returning True makes that transaction roll back and raise
    :class:`JournalError`. See also :meth:`inject_failure`.
    ``page_size``: bytes per database page of a *new* file (SQLite's ``PRAGMA page_size``; a file
    that exists keeps its own; default SQLite's 4,096). The idempotency journal's is
    :data:`RECORD_PAGE_SIZE`.
    ``checkpoint_off_path``: SQLite's automatic WAL checkpoint (it writes the WAL back into the
    database file and fsyncs it inside whichever COMMIT crosses 1,000 WAL pages) is off; the owner
    calls :meth:`checkpoint` at a moment no order waits on (the idempotency store: after a
    completion batch, its inbox empty), and a commit checkpoints itself only past
    :attr:`checkpoint_hard_limit` commits without one.

    File permissions: the file is created with ``os.open(path, O_CREAT, file_mode)`` before
    SQLite opens it (so it never exists with wider bits, whatever the umask) and then
    ``chmod``-ed to ``file_mode`` (which also tightens a pre-existing file). SQLite creates
    ``-wal``/``-shm`` with the database file's permissions; they are also ``chmod``-ed after
    every successful commit until they exist with the right mode. Parent directories that
    do not exist are created with mode ``0o700``.

    Transactions: the connection runs with ``isolation_level=None`` (autocommit off the
    Python layer) and every write is an explicit ``BEGIN IMMEDIATE`` … ``COMMIT``; any error
    in between issues ``ROLLBACK``. If even the rollback fails, the journal closes itself
    and every later call raises :class:`JournalError` (restart and recover). All SQL is
    parameterised.

    Raises :class:`JournalError` if the file cannot be created/opened, is not a database,
    or has a schema version other than :data:`SCHEMA_VERSION`; ``ValueError`` for a bad
    ``synchronous``/``file_mode``/``busy_timeout_ms``.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        synchronous: Synchronous = "FULL",
        file_mode: int = 0o600,
        busy_timeout_ms: int = 5000,
        fail_writes: Callable[[], bool] | None = None,
        checkpoint_off_path: bool = False,
        page_size: int | None = None,
    ) -> None:
        sync = str(synchronous).upper()
        if sync not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of FULL, NORMAL, OFF; got {synchronous!r}")
        if isinstance(file_mode, bool) or not isinstance(file_mode, int) or not 0 <= file_mode <= 0o777:
            raise ValueError(f"file_mode must be permission bits between 0o000 and 0o777, got {file_mode!r}")
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int) or busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be an int >= 0, got {busy_timeout_ms!r}")
        if page_size is not None and (isinstance(page_size, bool) or not isinstance(page_size, int)
                                      or not 512 <= page_size <= 65536 or page_size & (page_size - 1)):
            raise ValueError(f"page_size must be a power of two from 512 to 65536, got {page_size!r}")
        self._path: Path | None = None if path is None else Path(path)
        self._synchronous = sync
        self._file_mode = file_mode
        self._faults = InjectedFailures(fail_writes)
        self._conn: sqlite3.Connection | None = None
        self._closed_reason = "journal is closed"
        self._sidecars_ok = self._path is None
        self._stats = TxnStats()
        #: commits since the last checkpoint, when the owner runs them (``checkpoint_off_path``), else None
        self._unchecked: int | None = 0 if checkpoint_off_path and self._path is not None else None
        try:
            if self._path is None:
                target = ":memory:"
            else:
                self._create_file(self._path)
                target = str(self._path)
            conn = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000.0
            )
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open journal {self._describe()}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if page_size is not None:  # a new file's; an existing one keeps its own (SQLite ignores it then)
                conn.execute(f"PRAGMA page_size = {page_size}")
            if self._path is not None:
                self._journal_mode = _switch_to_wal(conn, busy_timeout_ms)
            else:
                self._journal_mode = "memory"
            conn.execute(f"PRAGMA synchronous = {sync}")  # value checked against a fixed set above
            if self._unchecked is not None:
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # see checkpoint()
            self._conn = conn
            self._migrate()
            self._fix_sidecar_modes()
        except (sqlite3.Error, OSError) as exc:
            conn.close()
            self._conn = None
            raise JournalError(f"cannot open journal {self._describe()}: {exc}") from exc
        except JournalError:
            conn.close()
            self._conn = None
            raise

    # -- setup -------------------------------------------------------------

    def _describe(self) -> str:
        return "(in memory)" if self._path is None else str(self._path)

    def _create_file(self, path: Path) -> None:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, self._file_mode)
        try:
            os.fchmod(fd, self._file_mode)
        finally:
            os.close(fd)

    def _fix_sidecar_modes(self) -> None:
        if self._sidecars_ok or self._path is None:
            return
        done = True
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self._path}{suffix}")
            try:
                st = side.stat()
            except FileNotFoundError:
                done = False
                continue
            if st.st_mode & 0o777 != self._file_mode:
                os.chmod(side, self._file_mode)
        self._sidecars_ok = done

    def _migrate(self) -> None:
        conn = self._live()
        found = self._schema_version(conn)
        if found is None:
            _migration(conn, [*((stmt, ()) for stmt in _SCHEMA),
                              ("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))])
            found = self._schema_version(conn)
        if found != SCHEMA_VERSION:
            raise JournalError(
                f"journal {self._describe()} has schema_version {found!r}; this build reads {SCHEMA_VERSION}"
            )
        if not any(col[1] == "reserved" for col in conn.execute("PRAGMA table_info(order_events)")):
            _migration(conn, [(stmt, ()) for stmt in _SQL_ADD_RESERVED])
        have = {col[1] for col in conn.execute("PRAGMA table_info(order_events)")}
        missing = [(name, kind) for name, kind in _EVENT_REPORT_COLUMNS if name not in have]
        if missing:  # names and types from the fixed tuple above
            _migration(conn, [(f"ALTER TABLE order_events ADD COLUMN {name} {kind}", ()) for name, kind in missing])
        records = conn.execute("SELECT type FROM sqlite_master WHERE name = 'idempotency'").fetchone()
        if records is not None and records[0] == "table":  # a layout with the JSON in the keyed rows
            _migration(conn, [(stmt, ()) for stmt in _SQL_RECORDS_SPLIT])
        archive = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'order_archive'").fetchone()
        if archive is None:
            _migration(conn, [(stmt, ()) for stmt in _ADDITIVE])
        elif "WITHOUT ROWID" in archive[0].upper():
            _migration(conn, [(stmt, ()) for stmt in _SQL_ARCHIVE_TO_ROWID])
        terminal = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'order_events_terminal_ts'").fetchone()
        if terminal is not None and " IN (" in terminal[0].upper():  # the first predicate (see terminal_term)
            _migration(conn, [("DROP INDEX order_events_terminal_ts", ()), (_SQL_TERMINAL_INDEX, ())])

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int | None:
        has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            return None
        try:
            return int(row[0])
        except (TypeError, ValueError):
            return -1

    # -- properties ----------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The database file, or None in memory."""
        return self._path

    @property
    def durable(self) -> bool:
        """True for a file journal, whatever ``synchronous`` says: its records (intents, reports)
        survive the process, so recovery and replays read them. ``synchronous = "OFF"`` only
        gives up the fsync (a power loss may lose the last commits; a killed process does not)."""
        return self._path is not None

    @property
    def journal_mode(self) -> str:
        """SQLite's journal mode as reported at open (``wal`` for files, ``memory`` in memory)."""
        return self._journal_mode

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (or after a failed rollback closed the journal)."""
        return self._conn is None

    # -- fault injection -----------------------------------------------------

    def inject_failure(self, n: int = 1) -> None:
        """Make the next ``n`` write transactions roll back and raise :class:`JournalError` (tests)."""
        self._faults.add(n)

    # -- transaction machinery -------------------------------------------------

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(self._closed_reason)
        return self._conn

    def _write(self, op: str, items: int, body: Callable[[sqlite3.Connection], tuple[object, int]],
               before_commit: Callable[[Any], None] | None = None) -> object:
        """Run ``body`` in one BEGIN IMMEDIATE … COMMIT; roll back and raise JournalError on failure.
        ``before_commit(result)``, when given, runs after ``body`` and before the COMMIT (and before
        the ``fail_writes`` hook): what it raises rolls the transaction back and propagates."""
        conn = self._live()
        t0 = time.perf_counter_ns()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result, rows = body(conn)
                if before_commit is not None:
                    before_commit(result)
                if self._faults.due():
                    raise _InjectedFailure(f"injected failure in {op}")
                t1 = time.perf_counter_ns()
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        except _InjectedFailure as exc:
            self._stats.failed()
            raise JournalError(f"{op} failed, transaction rolled back: {exc}") from None
        except (*_UNBINDABLE, sqlite3.DataError) as exc:  # the row, not the disk (JournalValueRefused)
            self._stats.failed()
            raise refused_value(op, exc) from exc
        except sqlite3.Error as exc:
            self._stats.failed()
            raise JournalError(f"{op} failed, transaction rolled back: {type(exc).__name__}: {exc}") from exc
        self._stats.committed(items, rows, t0, t1, time.perf_counter_ns())
        if self._unchecked is not None:
            self._unchecked += 1
            if self._unchecked % self.checkpoint_hard_limit == 0:
                self._checkpoint(conn)  # an owner never idle still keeps the WAL bounded (retried each hard limit)
        if not self._sidecars_ok:
            try:
                self._fix_sidecar_modes()
            except OSError as exc:  # committed already: never report a durable write as failed
                logger.warning("journal {}: cannot chmod WAL files yet: {}", self._describe(), exc)
        return result

    #: commits after which :meth:`checkpoint` runs one (``checkpoint_off_path``)
    checkpoint_soft_limit = 64
    #: commits without a checkpoint after which a commit runs one itself
    checkpoint_hard_limit = 1_000

    def checkpoint(self) -> None:
        """With ``checkpoint_off_path``: once :attr:`checkpoint_soft_limit` commits went to the WAL
        since the last checkpoint, run one (SQLite's PASSIVE checkpoint: the WAL back into the
        database file, fsynced); else nothing. Housekeeping, never durability (every commit is
        already durable per ``synchronous``); a failure is logged and the WAL stays."""
        conn = self._conn
        if conn is not None and self._unchecked is not None and self._unchecked >= self.checkpoint_soft_limit:
            self._checkpoint(conn)
            if self._unchecked == 0:
                self._restart_wal(conn)

    def _restart_wal(self, conn: sqlite3.Connection) -> None:
        """After a whole checkpoint SQLite starts the WAL again from its beginning at the next write,
        which writes the WAL's header and, synchronous FULL or NORMAL, fsyncs it before its own
        frames: two fsyncs in whatever commit comes next, the next order's claim. One small write (the
        checkpoint's time, UTC, in ``meta.checkpointed_at``; a write that changes nothing writes no
        page) takes the restart here, where no order waits. Housekeeping: a failure is logged, and the next commit restarts the WAL."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO meta (key, value) VALUES ('checkpointed_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (datetime.now(UTC).isoformat(),))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        except sqlite3.Error as exc:
            logger.warning("journal {}: WAL restart after the checkpoint failed: {}", self._describe(), exc)

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """A PASSIVE checkpoint; the commit count restarts only when it copied the whole WAL (a
        reader or writer of another connection may leave it busy or partial: tried again)."""
        try:
            busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            logger.warning("journal {}: WAL checkpoint failed (the WAL stays): {}", self._describe(), exc)
            return
        if not busy and done >= log:  # (0, -1, -1): not in WAL mode, nothing to copy
            self._unchecked = 0

    def _rollback(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            # The connection's state is unknown: close it so nothing can write half a batch later.
            self._closed_reason = f"journal closed after a failed rollback ({exc}); restart and recover"
            try:
                conn.close()
            finally:
                self._conn = None

    def _read(self, op: str, body: Callable[[sqlite3.Connection], object]) -> object:
        conn = self._live()
        try:
            return body(conn)
        except sqlite3.Error as exc:
            raise JournalError(f"{op} failed: {type(exc).__name__}: {exc}") from exc

    # -- idempotency -----------------------------------------------------------

    def claim_batch(self, claims: Sequence[Claim], ttl_s: float | None,
                    before_commit: Callable[[list[ClaimResult]], None] | None = None) -> list[ClaimResult]:
        """Decide every claim in ONE transaction (group commit); results in input order.

        See the module docstring for the outcome table. ``ttl_s``: seconds a COMPLETED
        record stays replayable (docs/DESIGN.md, Durability default 3600), or None for never. An empty batch
        returns ``[]`` without a transaction. Raises :class:`JournalError` (nothing
        written), ``ValueError``/``TypeError`` for a bad ``ttl_s`` or a non-Claim item.
        ``before_commit(results)``: called with the decided results inside the transaction, just
        before its COMMIT (the idempotency store forwards its claimed orders there, their venue calls waiting on the
        commit: actors/idempotency/ticket.py); the COMMIT may still fail after it.
        """
        ttl = _check_ttl(ttl_s)
        claims = _typed_items("claims", claims, Claim)
        if not claims:
            return []

        def one_by_one(conn: sqlite3.Connection) -> tuple[list[ClaimResult], int]:
            # an id twice in one batch: the second claim must see what the first wrote
            out: list[ClaimResult] = []
            rows = 0
            for c in claims:
                old, other = _old_and_other(c, conn.execute(_SQL_GET_ID, (c.client_order_id,)))
                result = _decide_claim(c, old, ttl, other)
                if result.outcome == "CLAIMED":
                    conn.execute(_SQL_INSERT, _insert_params(c))
                    rows += 1
                elif result.outcome == "EXPIRED_RECLAIMED":
                    conn.execute(_SQL_DROP_REPORT, (c.client_order_id, c.account_id))
                    conn.execute(_SQL_RECLAIM, _reclaim_params(c))
                    rows += 1
                out.append(result)
            return out, rows

        def batched(conn: sqlite3.Connection) -> tuple[list[ClaimResult], int]:
            # one SELECT per chunk of ids and one executemany per kind of write: every statement
            # gives up and retakes the GIL, so a batch of 400 claims paid 800 round trips before
            found: dict[str, list[tuple]] = {}
            for i in range(0, len(claims), _IN_CHUNK):
                ids = [c.client_order_id for c in claims[i:i + _IN_CHUNK]]
                for row in conn.execute(_sql_get_ids(len(ids)), ids):
                    found.setdefault(row[1], []).append(row)
            out: list[ClaimResult] = []
            inserts: list[tuple] = []
            reclaims: list[Claim] = []
            for c in claims:
                old, other = _old_and_other(c, found.get(c.client_order_id, ()))
                result = _decide_claim(c, old, ttl, other)
                if result.outcome == "CLAIMED":
                    inserts.append(_insert_params(c))
                elif result.outcome == "EXPIRED_RECLAIMED":
                    reclaims.append(c)
                out.append(result)
            if inserts:
                conn.executemany(_SQL_INSERT, inserts)
            if reclaims:  # the expired answer goes, the row takes the new claim
                conn.executemany(_SQL_DROP_REPORT, [(c.client_order_id, c.account_id) for c in reclaims])
                conn.executemany(_SQL_RECLAIM, [_reclaim_params(c) for c in reclaims])
            return out, len(inserts) + len(reclaims)

        def lone(conn: sqlite3.Connection) -> tuple[list[ClaimResult], int]:
            # one claim (one sender): inserted unless its id has a record, in one statement instead of
            # a SELECT and an INSERT (each gives up and retakes the GIL on the claim's critical path)
            c = claims[0]
            if conn.execute(_SQL_INSERT_IF_NEW, (*_insert_params(c), c.client_order_id)).rowcount == 1:
                return [_decide_claim(c, None, ttl)], 1  # no record of the id: CLAIMED, as decided from the look-up
            return batched(conn)

        if len(claims) == 1:
            body = lone
        else:
            body = batched if len({c.client_order_id for c in claims}) == len(claims) else one_by_one
        return self._write("claim_batch", len(claims), body, before_commit)  # type: ignore[return-value]

    def complete(
        self, account_id: str, client_order_id: str, status: IdempotencyStatus, report_json: str | None, now: float
    ) -> bool:
        """Set the record's status (``COMPLETED`` or ``UNKNOWN``), report JSON and ``updated_at``.

        Returns False (nothing written) when there is no record for the key. Raises
        ``ValueError`` for another status, :class:`JournalError` on a write failure.
        """
        return self.complete_batch([Completion(account_id, client_order_id, status, report_json, now)]) == 1

    def complete_batch(self, completions: Sequence[Completion]) -> int:
        """Apply every :class:`Completion` in ONE transaction; returns how many records existed."""
        items = _typed_items("completions", completions, Completion)
        if not items:
            return 0

        def body(conn: sqlite3.Connection) -> tuple[int, int]:
            # one statement per kind for the batch (a per-row execute releases and retakes the GIL for
            # each): the reports (their record's claim id), then the key rows; rowcount sums the
            # records each update found. A key twice in one batch: in order, one by one.
            if len({(c.client_order_id, c.account_id) for c in items}) < len(items):
                n = 0
                for c in items:
                    if c.report_json is None:
                        conn.execute(_SQL_DROP_REPORT, (c.client_order_id, c.account_id))
                    else:
                        conn.execute(_SQL_PUT_REPORT, (c.report_json, c.client_order_id, c.account_id))
                    n += conn.execute(_SQL_COMPLETE, (c.status, c.now, c.client_order_id, c.account_id)).rowcount
                return n, n
            reports = [(c.report_json, c.client_order_id, c.account_id) for c in items if c.report_json is not None]
            if reports:
                conn.executemany(_SQL_PUT_REPORT, reports)
            if len(reports) < len(items):
                conn.executemany(_SQL_DROP_REPORT, [(c.client_order_id, c.account_id) for c in items if c.report_json is None])
            n = conn.executemany(_SQL_COMPLETE, [(c.status, c.now, c.client_order_id, c.account_id) for c in items]).rowcount
            return n, n

        return self._write("complete_batch", len(items), body)  # type: ignore[return-value]

    def mark_unknown(self, account_id: str, client_order_id: str, now: float, report_json: str | None = None) -> bool:
        """Make an IN_PROGRESS (or UNKNOWN) record UNKNOWN: the outcome is ambiguous (docs/DESIGN.md, Durability).

        A COMPLETED record is never downgraded. ``report_json`` (optional) replaces the
        cached report. Returns True when a record changed.
        """
        _check_id("mark_unknown", "account_id", account_id)
        _check_id("mark_unknown", "client_order_id", client_order_id)
        t = _check_time("mark_unknown", "now", now)
        if report_json is not None:
            _check_str("mark_unknown", "report_json", report_json)

        def body(conn: sqlite3.Connection) -> tuple[bool, int]:
            if report_json is not None:  # replaces the cached report (none: the one it has stays)
                conn.execute(_SQL_PUT_REPORT_UNLESS_COMPLETED, (report_json, client_order_id, account_id))
            n = conn.execute(_SQL_MARK_UNKNOWN, (t, client_order_id, account_id)).rowcount
            return n == 1, n

        return self._write("mark_unknown", 1, body)  # type: ignore[return-value]

    def release(self, account_id: str, client_order_id: str) -> bool:
        """Free the key of an order that was denied before any venue call (docs/DESIGN.md, Durability).

        Deletes the record only while it is IN_PROGRESS: a COMPLETED record keeps its cached
        answer and an UNKNOWN one may have reached the venue, so neither is ever released.
        The caller asserts that nothing was sent under this id. Returns True when deleted.
        """
        return self.release_batch([(account_id, client_order_id)]) == 1

    def release_batch(self, keys: Sequence[tuple[str, str]]) -> int:
        """:meth:`release` for many ``(account_id, client_order_id)`` keys in ONE transaction."""
        items = _release_keys(keys)
        if not items:
            return 0

        def body(conn: sqlite3.Connection) -> tuple[int, int]:
            n = 0
            for account_id, client_order_id in items:
                n += conn.execute(
                    "DELETE FROM idempotency_records WHERE client_order_id = ? AND account_id = ? AND status = 'IN_PROGRESS'",
                    (client_order_id, account_id),
                ).rowcount
            return n, n

        return self._write("release_batch", len(items), body)  # type: ignore[return-value]

    def mark_all_unknown(self, now: float) -> int:
        """Recovery: every IN_PROGRESS record becomes UNKNOWN (the process died mid-flight)."""
        t = _check_time("mark_all_unknown", "now", now)

        def body(conn: sqlite3.Connection) -> tuple[int, int]:
            n = conn.execute(
                "UPDATE idempotency_records SET status = 'UNKNOWN', updated_at = ? WHERE status = 'IN_PROGRESS'", (t,)
            ).rowcount
            return n, n

        return self._write("mark_all_unknown", 1, body)  # type: ignore[return-value]

    def load_unresolved(self) -> list[IdempotencyRecord]:
        """IN_PROGRESS and UNKNOWN records, oldest ``created_at`` first."""
        return self._read(  # type: ignore[return-value]
            "load_unresolved",
            lambda conn: [
                _record(r)
                for r in conn.execute(
                    f"SELECT {_REC_COLS} FROM idempotency WHERE status != 'COMPLETED' "
                    "ORDER BY created_at, account_id, client_order_id"
                )
            ],
        )

    def load_records(self) -> list[IdempotencyRecord]:
        """Every idempotency record, oldest ``created_at`` first (recovery rebuilds the order ledger from them),
        except those retention retired (:data:`RETIRED_INTENT`: they only block their id's reuse)."""
        return self._read(  # type: ignore[return-value]
            "load_records",
            lambda conn: [
                _record(r)
                for r in conn.execute(
                    f"SELECT {_REC_COLS} FROM idempotency WHERE intent_json != ? ORDER BY created_at, account_id, client_order_id",
                    (RETIRED_INTENT,),
                )
            ],
        )

    def get(self, account_id: str, client_order_id: str) -> IdempotencyRecord | None:
        """The record for ``(account_id, client_order_id)`` or None (raw: no TTL applied)."""
        _check_str("get", "account_id", account_id)
        _check_str("get", "client_order_id", client_order_id)

        def body(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            row = conn.execute(_SQL_GET, (account_id, client_order_id)).fetchone()
            return None if row is None else _record(row)

        return self._read("get", body)  # type: ignore[return-value]

    # -- ledger ------------------------------------------------------------------

    def record_order_events(self, rows: Sequence[OrderEventRow]) -> int:
        """Journal transitions in one transaction; a repeated (account, order, seq) is ignored.

        Returns how many rows were new.
        """
        return self.record_ledger(rows, ())[0]

    def record_fills(self, rows: Sequence[FillRow]) -> list[bool]:
        """Journal fills in one transaction, once per ``(adapter_id, trade_id)`` (INSERT OR IGNORE).

        Returns, per input row, True when it was new and False when it was already journaled
        (including a repeat earlier in the same call).
        """
        return self.record_ledger((), rows)[1]

    def record_ledger(self, events: Sequence[OrderEventRow], fills: Sequence[FillRow],
                      archive: Sequence[ArchivedOrder] = ()) -> tuple[int, list[bool]]:
        """Journal transitions and fills together in ONE transaction: ``(new events, new-fill flags)``.

        ``archive``: terminal orders the ledger moves out of memory in the same transaction
        (``INSERT OR REPLACE`` by client order id: a re-archived order replaces its old row).
        """
        evs = _typed_items("events", events, OrderEventRow)
        fls = _typed_items("fills", fills, FillRow)
        return self.record_ledger_params([event_params(e) for e in evs], [_fill_params(f) for f in fls], archive)

    def record_ledger_params(self, events: Sequence[tuple], fills: Sequence[tuple],
                             archive: Sequence[ArchivedOrder] = ()) -> tuple[int, list[bool]]:
        """:meth:`record_ledger` for rows already made into statement parameters: each event as
        :func:`event_params` makes it of an :class:`OrderEventRow`, each fill as ``_fill_params`` of
        a :class:`FillRow`. The ledger's batch path (``actors/orders/ledger.py``): it builds them
        straight from its typed records, without a row object per transition (~3 µs each); they
        are not checked again here. Same transaction, same result."""
        arch = _typed_items("archive", archive, ArchivedOrder)
        if not events and not fills and not arch:
            return 0, []

        def body(conn: sqlite3.Connection) -> tuple[tuple[int, list[bool]], int]:
            new_events = 0
            if events:  # one statement for the batch: rowcount sums the rows each insert added
                new_events = conn.executemany(_SQL_EVENT, events).rowcount
            flags: list[bool] = []
            if fills:
                # one statement for the batch (a per-row execute costs a GIL round trip each); when
                # some fill was journaled already, undo it and find which, row by row
                conn.execute("SAVEPOINT new_fills")
                if conn.executemany(_SQL_FILL, fills).rowcount == len(fills):
                    conn.execute("RELEASE new_fills")
                    flags = [True] * len(fills)
                else:
                    conn.execute("ROLLBACK TO new_fills")
                    conn.execute("RELEASE new_fills")
                    flags = [conn.execute(_SQL_FILL, p).rowcount == 1 for p in fills]
            if arch:
                conn.executemany(_SQL_ARCHIVE, [(a.client_order_id, a.account_id, a.status, a.archived_at, a.record_json)
                                                for a in arch])
            return (new_events, flags), new_events + sum(flags) + len(arch)

        return self._write("record_ledger", len(events) + len(fills) + len(arch), body)  # type: ignore[return-value]

    def load_archived(self, client_order_id: str) -> ArchivedOrder | None:
        """The archived record of ``client_order_id`` (one primary-key lookup), or None."""
        _check_str("load_archived", "client_order_id", client_order_id)

        def body(conn: sqlite3.Connection) -> ArchivedOrder | None:
            row = conn.execute(_SQL_ARCHIVED + " WHERE client_order_id = ?", (client_order_id,)).fetchone()
            return None if row is None else ArchivedOrder(*row)

        return self._read("load_archived", body)  # type: ignore[return-value]

    def load_archive(self) -> list[ArchivedOrder]:
        """Every archived order, in archive order (``rt.orders()``, recovery)."""
        return self._read(  # type: ignore[return-value]
            "load_archive",
            lambda conn: [ArchivedOrder(*r) for r in conn.execute(_SQL_ARCHIVED + " ORDER BY archived_at")],
        )

    def compact(self, archived_before: float, limit: int = 10_000) -> int:
        """Fold the journal of orders archived before ``archived_before`` (epoch s) into their archive
        rows: their ``order_events`` rows are deleted (the archived record holds the same transitions)
        and the archive row is marked compacted. At most ``limit`` orders per call (one transaction,
        so a long backlog never stalls the owner); returns how many were compacted. Fills are
        never compacted: the position books are rebuilt from them."""
        cutoff = _check_time("compact", "archived_before", archived_before)

        def body(conn: sqlite3.Connection) -> tuple[int, int]:
            keys = conn.execute(
                "SELECT account_id, client_order_id FROM order_archive WHERE compacted = 0 AND archived_at < ? LIMIT ?",
                (cutoff, int(limit))).fetchall()
            deleted = 0
            for account_id, client_order_id in keys:
                deleted += conn.execute("DELETE FROM order_events WHERE account_id = ? AND client_order_id = ?",
                                        (account_id, client_order_id)).rowcount
            conn.executemany("UPDATE order_archive SET compacted = 1 WHERE client_order_id = ?", [(k[1],) for k in keys])
            return len(keys), deleted

        return self._write("compact", 1, body)  # type: ignore[return-value]

    def load_orders(self) -> list[OrderEventRow]:
        """Every journaled transition, in journal order (rebuild the order ledger from these)."""
        return self._read(  # type: ignore[return-value]
            "load_orders",
            lambda conn: [
                OrderEventRow(*r)
                for r in conn.execute(
                    f"SELECT {_EVENT_COLS} FROM order_events ORDER BY id"
                )
            ],
        )

    def load_fills(self) -> list[FillRow]:
        """Every journaled fill, in journal order (rebuild positions from these).

        Raises :class:`JournalError` if a stored row no longer parses (hand-edited file).
        """

        def body(conn: sqlite3.Connection) -> list[FillRow]:
            return [_fill_row(r) for r in conn.execute(
                "SELECT adapter_id, trade_id, account_id, client_order_id, symbol, side, qty, price, fee, "
                "fee_currency, liquidity, ts FROM fills ORDER BY id")]

        return self._read("load_fills", body)  # type: ignore[return-value]

    # -- housekeeping -----------------------------------------------------------

    def stats(self) -> JournalStats:
        """A snapshot of the write counters (see :class:`JournalStats`)."""
        return self._stats.snapshot()

    def close(self) -> None:
        """Close the connection (idempotent); committed data is already durable."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:  # pragma: no cover - close of a healthy connection
                raise JournalError(f"closing journal {self._describe()} failed: {exc}") from exc

    def __enter__(self) -> SQLiteJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else self._journal_mode
        return f"SQLiteJournal({self._describe()}, synchronous={self._synchronous}, {state})"


class MemoryJournal:
    """The non-durable ``JournalStore``: the same idempotency semantics in dictionaries.

    Used when ``journal.enabled`` is false (benchmarks, tests, throwaway sessions): nothing
    survives the process, so there is nothing to recover. Order events and fills are not
    kept (the ledger holds them in memory). ``inject_failure`` works as in
    :class:`SQLiteJournal` so fail-closed behaviour can be tested in memory too.
    """

    durable = False
    path = None

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], IdempotencyRecord] = {}
        self._faults = InjectedFailures()
        self._stats = TxnStats()
        #: client_order_id → the account holding a record of it (one account per id: OTHER_ACCOUNT)
        self._accounts: dict[str, str] = {}

    def inject_failure(self, n: int = 1) -> None:
        """Make the next ``n`` write batches raise :class:`JournalError` (tests)."""
        self._faults.add(n)

    def _begin(self, items: int) -> None:
        # on every order's path with the journal off: one attribute test when nothing is armed
        if self._faults.armed and self._faults.due():
            self._stats.failed()
            raise JournalError("injected journal failure (memory journal)")
        self._stats.counted(items, items)

    def claim_batch(self, claims: Sequence[Claim], ttl_s: float | None) -> list[ClaimResult]:
        if claims.__class__ is not list:
            claims = list(claims)
        if not claims:
            return []
        self._begin(len(claims))
        out: list[ClaimResult] = []
        records, accounts = self._records, self._accounts
        for c in claims:
            account_id, client_order_id = c.account_id, c.client_order_id
            holder = accounts.get(client_order_id)  # a memory journal never holds an id twice
            if holder is None:
                # no record of the id under any account (the common case, on every order's path with
                # the journal off): CLAIMED, what _decide_claim decides for it, without the call
                record = _new_record(account_id, client_order_id, c.fingerprint, "IN_PROGRESS", None, c.now, c.now,
                                     c.intent_json, c.context_json, c.adapter_id)
                records[(account_id, client_order_id)] = record
                accounts[client_order_id] = account_id
                out.append(ClaimResult("CLAIMED", record))
                continue
            key = (account_id, client_order_id)
            other = records[(holder, client_order_id)] if holder != account_id else None
            result = _decide_claim(c, records.get(key), ttl_s, other)
            if result.outcome in ("CLAIMED", "EXPIRED_RECLAIMED"):
                records[key] = result.record
                accounts[client_order_id] = account_id
            out.append(result)
        return out

    def complete_batch(self, completions: Sequence[Completion]) -> int:
        items = list(completions)
        if not items:
            return 0
        self._begin(len(items))
        found = 0
        for c in items:
            key = (c.account_id, c.client_order_id)
            old = self._records.get(key)
            if old is None:
                continue
            found += 1
            self._records[key] = _completed_record(old, c.status, c.report_json, c.now)
        return found

    def complete(self, account_id: str, client_order_id: str, status: IdempotencyStatus, report_json: str | None, now: float) -> bool:
        return self.complete_batch([Completion(account_id, client_order_id, status, report_json, now)]) == 1

    def release_batch(self, keys: Sequence[tuple[str, str]]) -> int:
        keys = list(keys)
        if not keys:
            return 0
        self._begin(len(keys))
        released = 0
        for key in keys:
            account_id, client_order_id = key
            record = self._records.get((account_id, client_order_id))
            if record is not None and record.status == "IN_PROGRESS":
                del self._records[(account_id, client_order_id)]
                del self._accounts[client_order_id]
                released += 1
        return released

    def release(self, account_id: str, client_order_id: str) -> bool:
        return self.release_batch([(account_id, client_order_id)]) == 1

    def mark_unknown(self, account_id: str, client_order_id: str, now: float, report_json: str | None = None) -> bool:
        old = self._records.get((account_id, client_order_id))
        if old is None or old.status == "COMPLETED":
            return False
        self.complete_batch([Completion(account_id, client_order_id, "UNKNOWN", report_json or old.report_json, now)])
        return True

    def mark_all_unknown(self, now: float) -> int:
        keys = [k for k, r in self._records.items() if r.status == "IN_PROGRESS"]
        for account_id, client_order_id in keys:
            self.mark_unknown(account_id, client_order_id, now)
        return len(keys)

    def load_unresolved(self) -> list[IdempotencyRecord]:
        return sorted((r for r in self._records.values() if r.status != "COMPLETED"), key=lambda r: (r.created_at, r.key))

    def load_records(self) -> list[IdempotencyRecord]:
        return sorted(self._records.values(), key=lambda r: (r.created_at, r.key))

    def get(self, account_id: str, client_order_id: str) -> IdempotencyRecord | None:
        return self._records.get((account_id, client_order_id))

    def record_order_events(self, rows: Sequence[OrderEventRow]) -> int:
        return 0

    def record_fills(self, rows: Sequence[FillRow]) -> list[bool]:
        return [True for _ in rows]

    def record_ledger(self, events: Sequence[OrderEventRow], fills: Sequence[FillRow],
                      archive: Sequence[ArchivedOrder] = ()) -> tuple[int, list[bool]]:
        return 0, [True for _ in fills]

    def load_archived(self, client_order_id: str) -> ArchivedOrder | None:
        return None

    def load_archive(self) -> list[ArchivedOrder]:
        return []

    def compact(self, archived_before: float, limit: int = 10_000) -> int:
        return 0

    def load_orders(self) -> list[OrderEventRow]:
        return []

    def load_fills(self) -> list[FillRow]:
        return []

    def stats(self) -> JournalStats:
        return self._stats.snapshot()

    def close(self) -> None:
        pass
