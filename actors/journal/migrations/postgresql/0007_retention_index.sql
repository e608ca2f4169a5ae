-- flowroute PostgreSQL journal, version 7: retention finds the orders that ended before its cutoff
-- through an index (actors/audit/retention.py, _PG_EXPIRED). Before, it grouped the whole
-- order_events table by order to find each one's last row: a full scan of every transition kept
-- (orders_days, 365 by default) once a day. The index holds the terminal rows only (one per
-- finished order), by time; the query takes those before the cutoff and keeps the ones no later
-- row of their order follows (the (account_id, client_order_id, seq) unique index).
-- Built in the start transaction: writes to order_events wait for the build (once, at upgrade).

CREATE INDEX order_events_terminal_ts ON flowroute.order_events (ts)
    WHERE to_status IN ('CANCELED', 'DENIED', 'EXPIRED', 'FAILED', 'FILLED', 'REJECTED');
