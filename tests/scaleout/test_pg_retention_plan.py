"""Retention on PostgreSQL finds the orders to archive through an index, not a scan of every
transition (migration 0007 ``order_events_terminal_ts``, ``actors.audit.retention._PG_EXPIRED``).

The table is filled the way a year of trading leaves it: many orders that ended recently, a few
that ended before the cutoff, and the cases the rule must keep (an old order still open, an old
order with a late row, one whose idempotency record is not COMPLETED). The query must give exactly
the orders of the previous GROUP BY query, and its plan must reach ``order_events`` only through
index conditions (EXPLAIN, with the table analysed, the planner free to choose)."""

from __future__ import annotations

import json

import psycopg

from actors.audit.retention import _PG_EXPIRED, _TERMINAL
from actors.journal.postgres import PostgresBackend

#: the query retention used before migration 0007 (a GROUP BY over the whole table)
_GROUP_BY = """SELECT e.account_id, e.client_order_id FROM flowroute.order_events e
     JOIN (SELECT account_id, client_order_id, MAX(seq) AS last_seq, MAX(ts) AS last_ts
             FROM flowroute.order_events GROUP BY account_id, client_order_id) m
       ON e.account_id = m.account_id AND e.client_order_id = m.client_order_id AND e.seq = m.last_seq
     JOIN flowroute.idempotency i ON i.account_id = e.account_id AND i.client_order_id = e.client_order_id
    WHERE m.last_ts < %(before)s AND e.to_status = ANY(%(terminal)s) AND i.status = 'COMPLETED'
    ORDER BY e.account_id, e.client_order_id"""

CUTOFF = 1_000_000.0
RECENT = 20_000  # orders that ended after the cutoff


def _fill(conn: psycopg.Connection) -> None:
    """Orders as (id, [(seq, ts, to_status)], idempotency status), written with generate_series."""
    conn.execute("""
        INSERT INTO flowroute.idempotency (account_id, client_order_id, fingerprint, status, report_json, created_at, updated_at,
                                           intent_json, context_json, adapter_id, owner_id)
        SELECT 'acc-1', 'new-' || g, 'fp', 'COMPLETED', '{}', 0, 0, '{}', '{}', 'paper', 'o' FROM generate_series(1, %(n)s) g""",
                 {"n": RECENT})
    for seq, status in enumerate(("RESERVED", "SUBMITTING", "ACCEPTED", "FILLED"), start=1):
        conn.execute("""
            INSERT INTO flowroute.order_events (seq, ts, account_id, client_order_id, from_status, to_status, cause)
            SELECT %(seq)s, %(base)s + g + %(seq)s, 'acc-1', 'new-' || g, '', %(status)s, '' FROM generate_series(1, %(n)s) g""",
                     {"seq": seq, "status": status, "base": CUTOFF, "n": RECENT})
    old = {  # id: (rows, idempotency status)
        "old-filled": ([(1, 10.0, "RESERVED"), (2, 11.0, "FILLED")], "COMPLETED"),
        "old-canceled": ([(1, 20.0, "RESERVED"), (2, 21.0, "ACCEPTED"), (3, 22.0, "CANCELED")], "COMPLETED"),
        "old-denied": ([(1, 30.0, "DENIED")], "COMPLETED"),
        "old-open": ([(1, 40.0, "RESERVED"), (2, 41.0, "ACCEPTED")], "COMPLETED"),
        "old-late-row": ([(1, 50.0, "FILLED"), (2, CUTOFF + 5, "FILLED")], "COMPLETED"),  # a late fact keeps it
        "old-in-doubt": ([(1, 60.0, "FILLED")], "UNKNOWN"),
        "old-clock-back": ([(1, CUTOFF + 9, "ACCEPTED"), (2, 70.0, "FILLED")], "COMPLETED"),  # a row as late as the cutoff
    }
    for cl, (events, status) in old.items():
        conn.execute("""INSERT INTO flowroute.idempotency (account_id, client_order_id, fingerprint, status, report_json, created_at,
                        updated_at, intent_json, context_json, adapter_id, owner_id)
                        VALUES ('acc-1', %s, 'fp', %s, '{}', 0, 0, '{}', '{}', 'paper', 'o')""", (cl, status))
        for seq, ts, to in events:
            conn.execute("""INSERT INTO flowroute.order_events (seq, ts, account_id, client_order_id, from_status, to_status, cause)
                            VALUES (%s, %s, 'acc-1', %s, '', %s, '')""", (seq, ts, cl, to))
    conn.execute("ANALYZE flowroute.order_events")
    conn.execute("ANALYZE flowroute.idempotency")


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def test_retention_finds_old_orders_through_the_index(pg_url: str) -> None:
    PostgresBackend.open(pg_url).close()  # the schema, migrations included
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _fill(conn)
        params = {"before": CUTOFF, "terminal": list(_TERMINAL)}
        expected = conn.execute(_GROUP_BY, params).fetchall()
        assert sorted(k[1] for k in expected) == ["old-canceled", "old-denied", "old-filled"]
        assert conn.execute(_PG_EXPIRED, params).fetchall() == expected

        [[explain]] = conn.execute("EXPLAIN (FORMAT JSON) " + _PG_EXPIRED, params).fetchall()
        plan = (json.loads(explain) if isinstance(explain, str) else explain)[0]["Plan"]
        nodes, shown = list(_nodes(plan)), json.dumps(plan, indent=1)
        scans = [n for n in nodes if n.get("Relation Name") == "order_events"]
        assert scans and all(n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") for n in scans), shown
        # every index read is bounded by a condition (no full index scan), and the candidates come by time from the new index
        indexed = [n for n in nodes if n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")]
        assert all(n.get("Index Cond") for n in indexed), shown
        assert any(n.get("Index Name") == "order_events_terminal_ts" and "ts <" in n["Index Cond"] for n in indexed), shown
