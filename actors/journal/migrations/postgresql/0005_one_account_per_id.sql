-- flowroute PostgreSQL journal, version 5: a client_order_id is held by at most one account across
-- the fleet (a venue sees the id, ClOrdID, not the account). The unique index is the fleet's guard:
-- two processes claiming one id under two accounts at the same moment cannot both insert.
--
-- legacy_account: '' for every record under this rule; a database written before it may already hold
-- one id under several accounts, and those records keep their own account_id here, so each stays a
-- distinct key of the index (the migration never fails on them) and still answers its own key
-- (replay, conflict, in flight). A claim never inserts beside them (actors/journal/postgres.py).

ALTER TABLE flowroute.idempotency ADD COLUMN legacy_account text NOT NULL DEFAULT '';

UPDATE flowroute.idempotency i
   SET legacy_account = i.account_id
 WHERE EXISTS (SELECT 1 FROM flowroute.idempotency o
                WHERE o.client_order_id = i.client_order_id AND o.account_id <> i.account_id);

CREATE UNIQUE INDEX idempotency_one_account ON flowroute.idempotency (client_order_id, legacy_account);
