"""Values a database refuses: told apart from a failing write the same way wherever flowroute writes.

A write can fail because the store is failing (a full disk, a lost connection: retry, or fail
closed) or because a value in it cannot be stored at all (the same value is refused at every
retry). The second is SQL's *data exception*, SQLSTATE class 22 (``psycopg.DataError``: a NUL
character in text, 22003 a number beyond its column's range; ``sqlite3.DataError``), or a value
the driver cannot bind (text UTF-8 cannot encode, e.g. a lone surrogate: ``UnicodeEncodeError``;
an int beyond 64 bits: ``OverflowError``). Whoever writes classifies it with :data:`UNBINDABLE`
plus its driver's ``DataError`` and raises :class:`ValueRefused` naming the write and the driver's
error (:func:`refused_value`): the journals (``actors/journal``: ``JournalValueRefused``, a
subclass) and the paper venue's PostgreSQL book (``protocols/venues/paper/pg_book.py``). Here, in
``protocols``, because ``protocols`` must not import ``actors``.
"""

from __future__ import annotations

from typing import Final, TypeVar

__all__ = ["UNBINDABLE", "ValueRefused", "refused_value"]


class ValueRefused(ValueError):
    """A write refused for a value in it, not for a failing write: the transaction was rolled back,
    nothing written, and the same values would be refused at every retry. A ``ValueError`` like
    other bad-input errors. The message names the write and the driver's error."""


#: what a driver raises for a value it cannot bind, whatever the backend (see the module docstring)
UNBINDABLE: Final = (UnicodeError, OverflowError)

_R = TypeVar("_R", bound=ValueRefused)


def refused_value(op: str, exc: BaseException, kind: type[_R] = ValueRefused) -> _R:  # type: ignore[assignment]
    """The ``kind`` (a :class:`ValueRefused`) of write ``op`` for the driver's error ``exc``
    (its message cut to 1,000 characters)."""
    return kind(f"{op} refused a value, transaction rolled back: {type(exc).__name__}: {exc}"[:1000])
