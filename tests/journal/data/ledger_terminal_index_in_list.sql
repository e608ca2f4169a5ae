-- A ledger journal written by the build before order_events_terminal_ts's predicate became an OR of
-- equalities (WHERE to_status IN (...); four orders, 13 transitions): sqlite3's iterdump of the file.
-- tests/journal/test_terminal_index.py opens it with today's build.
BEGIN TRANSACTION;
CREATE TABLE fills (
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
    );
CREATE TABLE idempotency (
        account_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('IN_PROGRESS', 'COMPLETED', 'UNKNOWN')),
        report_json TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        intent_json TEXT NOT NULL,
        context_json TEXT NOT NULL,
        adapter_id TEXT NOT NULL,
        PRIMARY KEY (account_id, client_order_id)
    ) WITHOUT ROWID;
CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
INSERT INTO "meta" VALUES('schema_version','1');
CREATE TABLE order_archive (
        client_order_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        status TEXT NOT NULL,
        archived_at REAL NOT NULL,
        record_json TEXT NOT NULL,
        compacted INTEGER NOT NULL DEFAULT 0
    );
CREATE TABLE order_events (
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
    );
INSERT INTO "order_events" VALUES(1,1,1796117001.0,'acc-1','old-filled','INITIALIZED','RESERVED','to reserved','39.43',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(2,2,1796117002.0,'acc-1','old-filled','RESERVED','SUBMITTING','to submitting',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(3,3,1796117003.0,'acc-1','old-filled','SUBMITTING','ACCEPTED','to accepted',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(4,4,1796117004.0,'acc-1','old-filled','ACCEPTED','FILLED','to filled',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(5,1,1796117011.0,'acc-1','old-canceled','INITIALIZED','RESERVED','to reserved','39.43',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(6,2,1796117012.0,'acc-1','old-canceled','RESERVED','SUBMITTING','to submitting',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(7,3,1796117013.0,'acc-1','old-canceled','SUBMITTING','ACCEPTED','to accepted',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(8,4,1796117014.0,'acc-1','old-canceled','ACCEPTED','PENDING_CANCEL','to pending_cancel',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(9,5,1796117015.0,'acc-1','old-canceled','PENDING_CANCEL','CANCELED','to canceled',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(10,1,1796117021.0,'acc-1','old-denied','INITIALIZED','DENIED','to denied',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(11,1,1796117031.0,'acc-1','old-open','INITIALIZED','RESERVED','to reserved','39.43',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(12,2,1796117032.0,'acc-1','old-open','RESERVED','SUBMITTING','to submitting',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "order_events" VALUES(13,3,1796117033.0,'acc-1','old-open','SUBMITTING','ACCEPTED','to accepted',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE INDEX idempotency_unresolved ON idempotency (created_at) WHERE status != 'COMPLETED';
CREATE INDEX idempotency_by_id ON idempotency (client_order_id);
CREATE INDEX order_archive_age ON order_archive (archived_at) WHERE compacted = 0;
CREATE INDEX order_events_terminal_ts ON order_events (ts) WHERE to_status IN ('CANCELED', 'DENIED', 'EXPIRED', 'FAILED', 'FILLED', 'REJECTED');
COMMIT;
