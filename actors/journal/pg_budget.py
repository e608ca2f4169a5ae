"""Budgets shared by every process on one PostgreSQL journal (docs/DESIGN.md "Scale-out").

Each process's :class:`~actors.orders.risk.RiskEngine` still makes every check it makes alone
(notional limits, slippage, trading state, its own budget view); with a shared budget the
``budget`` rule is also decided in the database, so N processes never overbook one account:

- **reserve** (on the order path, one round trip): a conditional upsert of the account's row,
  ``reserved = reserved + n WHERE reserved + spent + n <= budget``. Concurrent reservations of
  one account serialise on that row lock, and PostgreSQL re-checks the condition against the
  row as the previous transaction left it (READ COMMITTED re-evaluation), so the sum of what
  every process reserved and spent never exceeds the budget. The order's own row
  (``budget_orders``) is written in the same statement.
- **true-ups** (fills, releases) change an order's ``(reserved, spent)``; they are collected and
  written by :meth:`PgBudget.flush` (the ledger calls it with each journal batch) as "set this
  order's values" — the account row moves by the difference. Setting is idempotent, so a
  survivor that adopts a dead process's orders (recovery replays their fills) writes the same
  values again without counting anything twice, and a lost flush is repaired by the next.
  Until a release is flushed the shared totals are higher than the truth: the lag can deny an
  order that would have fitted, never admit one that does not.

A database error on reserve denies the order (fail closed); a failed flush is logged and
retried with the next one. A value the database refuses (SQLSTATE class 22, or one the driver
cannot bind: :func:`~actors.journal.sqlite.refused_value`, as the journals classify it) is the
order's fault, not the database's: reserve denies that order naming the refusal, and a flush it
refused is written again key by key, so only the refused order's values are left out (logged,
``refused_values``) instead of every later flush failing with it. Either refusal is also told to
``on_refused`` (the ledger's: ``Runtime.health().refused_budget``, beside the journals' refused
rows and claims, until ``Runtime.acknowledge_refused``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from loguru import logger

from .sqlite import _UNBINDABLE, JournalValueRefused, refused_value

__all__ = ["PgBudget"]

_ZERO = Decimal(0)


class PgBudget:
    """The shared budget of one process (see the module docstring). ``backend``: a ``PostgresBackend``.

    Used from the ledger actor's thread only (like the risk engine that calls it). Amounts are
    Decimals in quote currency.
    """

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._owner = backend.owner_id
        #: (book, client_order_id) -> [reserved, spent] as this process knows them
        self._orders: dict[tuple[str, str], list[Decimal]] = {}
        self._dirty: set[tuple[str, str]] = set()
        self.reserve_calls = 0
        self.flush_failures = 0
        #: orders whose shared values the database refused (left out of the shared totals, logged)
        self.refused_values = 0
        #: told each refusal, on the caller's thread: ``(kind, account_id, client_order_id, reason)``,
        #: kind "reserve" (the order is denied) or "flush" (its values are left out); None: only logged
        self.on_refused: Callable[[str, str, str, str], None] | None = None

    def reserve(self, book: str, client_order_id: str, notional: Decimal, budget: Decimal) -> str | None:
        """Reserve ``notional`` against ``budget`` for the whole fleet; None when done, else the denial detail."""
        import psycopg

        self.reserve_calls += 1
        try:
            with self._backend.pool.connection() as conn:
                row = conn.execute(
                    "WITH acct AS (INSERT INTO flowroute.budget_accounts AS b (account_id, reserved) VALUES (%(a)s, %(n)s) "
                    "ON CONFLICT (account_id) DO UPDATE SET reserved = b.reserved + EXCLUDED.reserved "
                    "WHERE b.reserved + b.spent + EXCLUDED.reserved <= %(b)s RETURNING reserved, spent), "
                    "o AS (INSERT INTO flowroute.budget_orders (account_id, client_order_id, reserved, owner_id) "
                    "SELECT %(a)s, %(c)s, %(n)s, %(o)s FROM acct) "
                    "SELECT reserved, spent FROM acct",
                    {"a": book, "c": client_order_id, "n": notional, "b": budget, "o": self._owner}).fetchone()
                if row is None:
                    now = conn.execute("SELECT reserved, spent FROM flowroute.budget_accounts WHERE account_id = %s",
                                       (book,)).fetchone()
                conn.commit()
        except (*_UNBINDABLE, psycopg.DataError) as exc:  # the order's value, not the database (JournalValueRefused)
            refused = refused_value("shared budget reserve", exc)
            logger.error("shared budget: {}: {}", client_order_id, refused)
            self._tell_refused("reserve", book, client_order_id, str(refused))
            return f"the shared budget of account {book} cannot store a value of this order ({refused}); nothing was reserved"
        except Exception as exc:  # noqa: BLE001 - fail closed: no reservation, no order
            logger.error("shared budget: reserve for {} failed: {}", client_order_id, exc)
            return f"the shared budget of account {book} is unavailable ({type(exc).__name__}); nothing was reserved"
        if row is None:
            reserved, spent = now if now is not None else (_ZERO, _ZERO)
            return (f"reserved {reserved} + spent {spent} + notional {notional} > budget {budget} for account {book} "
                    "(all processes)")
        self._orders[(book, client_order_id)] = [notional, _ZERO]
        return None

    def restored(self, book: str, client_order_id: str, notional: Decimal) -> None:
        """Recovery re-created an order's reservation locally: its shared row is set again at the next flush."""
        key = (book, client_order_id)
        self._orders[key] = [notional, _ZERO]
        self._dirty.add(key)

    def on_fill(self, book: str, client_order_id: str, released: Decimal, actual: Decimal) -> None:
        """A fill released ``released`` of the order's reservation and spent ``actual``."""
        held = self._orders.get((book, client_order_id))
        if held is None:
            return  # not a shared-budget order (no budget for its account)
        held[0] -= released
        held[1] += actual
        self._dirty.add((book, client_order_id))

    def release(self, book: str, client_order_id: str, amount: Decimal) -> None:
        """The order is terminal: what remained reserved (``amount``) is freed."""
        held = self._orders.get((book, client_order_id))
        if held is None:
            return
        held[0] -= amount
        self._dirty.add((book, client_order_id))

    @property
    def pending(self) -> int:
        """Orders whose shared values are not written yet."""
        return len(self._dirty)

    def flush(self) -> bool:
        """Write every changed order's values in ONE transaction; False (kept for the next flush) on failure."""
        if not self._dirty:
            return True
        keys = sorted(self._dirty)
        try:
            try:
                self._write(keys)
            except JournalValueRefused:  # one order's value: each key alone, only the refused ones left out
                for key in keys:
                    try:
                        self._write([key])
                    except JournalValueRefused as exc:
                        self.refused_values += 1
                        self._dirty.discard(key)
                        self._orders.pop(key, None)
                        logger.error("shared budget: order {} of account {}: {}; its values are left out of the shared "
                                     "totals", key[1], key[0], exc)
                        self._tell_refused("flush", key[0], key[1], str(exc))
        except Exception as exc:  # noqa: BLE001 - any database failure: counted, the keys are written again
            self.flush_failures += 1
            logger.error("shared budget: could not write {} order(s): {}", len(keys), exc)
            return False
        self._dirty.difference_update(keys)
        for key in keys:  # a released order has nothing left to change: forget it (bounded memory)
            held = self._orders.get(key)
            if held is not None and held[0] <= 0:
                del self._orders[key]
        return True

    def _tell_refused(self, kind: str, book: str, client_order_id: str, reason: str) -> None:
        """Tell :attr:`on_refused` (a failure there is logged: the refusal is already handled)."""
        if self.on_refused is None:
            return
        try:
            self.on_refused(kind, book, client_order_id, reason)
        except Exception:  # noqa: BLE001 - reporting must not undo the denial or the flush
            logger.opt(exception=True).error("shared budget: could not report a refused value of {}", client_order_id)

    def _write(self, keys: list[tuple[str, str]]) -> None:
        """Write the values of the orders ``keys`` in ONE transaction; raises :class:`JournalValueRefused`
        for a value the database refuses (rolled back), any other database error as it is."""
        import psycopg

        try:
            with self._backend.pool.connection() as conn:
                with conn.cursor() as cur:
                    for book, coid in keys:
                        reserved, spent = self._orders[(book, coid)]
                        reserved = max(reserved, _ZERO)
                        old = cur.execute(
                            "SELECT reserved, spent FROM flowroute.budget_orders WHERE account_id = %s AND "
                            "client_order_id = %s FOR UPDATE", (book, coid)).fetchone()
                        if old is None:
                            cur.execute("INSERT INTO flowroute.budget_orders (account_id, client_order_id, reserved, "
                                        "spent, owner_id) VALUES (%s, %s, %s, %s, %s)", (book, coid, reserved, spent, self._owner))
                            old = (_ZERO, _ZERO)
                        else:
                            cur.execute("UPDATE flowroute.budget_orders SET reserved = %s, spent = %s, owner_id = %s "
                                        "WHERE account_id = %s AND client_order_id = %s",
                                        (reserved, spent, self._owner, book, coid))
                        dr, ds = reserved - old[0], spent - old[1]
                        if dr or ds:
                            cur.execute(
                                "INSERT INTO flowroute.budget_accounts AS b (account_id, reserved, spent) VALUES (%s, %s, %s) "
                                "ON CONFLICT (account_id) DO UPDATE SET reserved = b.reserved + EXCLUDED.reserved, "
                                "spent = b.spent + EXCLUDED.spent", (book, dr, ds))
                conn.commit()
        except (*_UNBINDABLE, psycopg.DataError) as exc:  # SQLSTATE class 22 or unbindable: the row, not the database
            raise refused_value("shared budget flush", exc) from exc

    def totals(self, book: str) -> tuple[Decimal, Decimal]:
        """``(reserved, spent)`` of ``book`` across every process, as the database has them."""
        with self._backend.pool.connection() as conn:
            row = conn.execute("SELECT reserved, spent FROM flowroute.budget_accounts WHERE account_id = %s",
                               (book,)).fetchone()
        return (row[0], row[1]) if row else (_ZERO, _ZERO)
