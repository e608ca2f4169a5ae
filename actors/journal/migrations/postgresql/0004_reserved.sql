-- flowroute PostgreSQL journal, version 4: the notional reserved at intake is a typed column of
-- its RESERVED transition (recovery restores the reservation from it; a transition's cause is free
-- text and never parsed). Rows of version 3 held it in the cause ("reserved 39.43"): moved here once.

ALTER TABLE flowroute.order_events ADD COLUMN reserved numeric;

UPDATE flowroute.order_events
   SET reserved = substr(cause, 10)::numeric, cause = 'reserved at intake'
 WHERE to_status = 'RESERVED' AND reserved IS NULL AND cause ~ '^reserved [0-9]+(\.[0-9]+)?$';
