-- flowroute PostgreSQL journal, version 6: what an order's report holds besides its status and
-- fills, as typed columns of its transitions (OrderEventRow, actors/journal/sqlite.py), so a ledger
-- rebuilt from the journal gives the reports it gave before: on the order's first row its route
-- (route_id, routing_reason) and arrival price; on every row its venue order id, submit attempts
-- and error. Rows written before this version keep NULL (nothing of it was journaled).

ALTER TABLE flowroute.order_events
    ADD COLUMN route_id text,
    ADD COLUMN routing_reason text,
    ADD COLUMN arrival_px numeric,
    ADD COLUMN venue_order_id text,
    ADD COLUMN attempts integer,
    ADD COLUMN error_code text,
    ADD COLUMN error_message text,
    ADD COLUMN error_retry_after_s double precision;
