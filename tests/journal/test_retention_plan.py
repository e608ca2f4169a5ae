"""Retention on the SQLite ledger journal finds the orders to archive through an index, not by
grouping every transition kept (``order_events_terminal_ts``, actors/journal/sqlite.py;
``actors.audit.retention._SQLITE_EXPIRED``). The PostgreSQL twin is tests/scaleout/test_pg_retention_plan.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from actors.audit.retention import _SQLITE_EXPIRED, _TERMINAL, _expired_orders
from actors.journal.sqlite import SQLiteJournal

#: the query retention used before the index (a GROUP BY over the whole table)
_GROUP_BY = f"""SELECT e.account_id, e.client_order_id FROM order_events e
    JOIN (SELECT account_id, client_order_id, MAX(seq) AS last_seq, MAX(ts) AS last_ts
          FROM order_events GROUP BY account_id, client_order_id) m
      ON e.account_id = m.account_id AND e.client_order_id = m.client_order_id AND e.seq = m.last_seq
    WHERE m.last_ts < ? AND e.to_status IN ({",".join("?" * len(_TERMINAL))})
    ORDER BY m.last_ts"""

CUTOFF = 1_000_000.0
OLD = {
    "old-filled": [(1, 10.0, "RESERVED"), (2, 11.0, "FILLED")],
    "old-canceled": [(1, 20.0, "RESERVED"), (2, 21.0, "ACCEPTED"), (3, 22.0, "CANCELED")],
    "old-denied": [(1, 30.0, "DENIED")],
    "old-open": [(1, 40.0, "RESERVED"), (2, 41.0, "ACCEPTED")],
    "old-late-row": [(1, 50.0, "FILLED"), (2, CUTOFF + 5, "FILLED")],  # a late fact keeps it
    "old-clock-back": [(1, CUTOFF + 9, "ACCEPTED"), (2, 70.0, "FILLED")],  # a row as late as the cutoff
}


def test_retention_finds_old_orders_through_the_index(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    SQLiteJournal(path).close()  # the schema, the index included
    conn = sqlite3.connect(path)
    try:
        rows = [(seq, CUTOFF + i + seq, f"new-{i}", status) for i in range(5_000)
                for seq, status in enumerate(("RESERVED", "SUBMITTING", "ACCEPTED", "FILLED"), start=1)]
        rows += [(seq, ts, cl, status) for cl, events in OLD.items() for seq, ts, status in events]
        with conn:
            conn.executemany("INSERT INTO order_events (seq, ts, account_id, client_order_id, from_status, to_status, cause) "
                             "VALUES (?, ?, 'acc-1', ?, '', ?, '')", [(s, t, c, st) for s, t, c, st in rows])
        conn.execute("ANALYZE")
        expected = conn.execute(_GROUP_BY, (CUTOFF, *_TERMINAL)).fetchall()
        assert [k[1] for k in expected] == ["old-filled", "old-canceled", "old-denied"]
        assert _expired_orders(conn, CUTOFF) == expected

        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _SQLITE_EXPIRED, {"before": CUTOFF})]
        assert any("USING INDEX order_events_terminal_ts" in step for step in plan), plan
        assert not any(step.startswith("SCAN") for step in plan), plan  # every read of order_events is a SEARCH
    finally:
        conn.close()
