PRAGMA page_size=8192;
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
CREATE TABLE "idempotency" (
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
        PRIMARY KEY (client_order_id, account_id)
    ) WITHOUT ROWID;
INSERT INTO "idempotency" VALUES('acc-1','old-0','0000000000000000000000000000000000000000000000000000000000000000','COMPLETED','{"client_order_id":"old-0","status":"FILLED","cum_qty":"0.002","avg_px":"39433.00"}',1796117400.0,1796117420.0,'{"client_order_id":"old-0","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-1","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
INSERT INTO "idempotency" VALUES('acc-1','old-1','0000000000000000000000000000000000000000000000000000000000000001','COMPLETED','{"client_order_id":"old-1","status":"FILLED","cum_qty":"0.002","avg_px":"39433.00"}',1796117401.0,1796117421.0,'retired','retired','paper');
INSERT INTO "idempotency" VALUES('acc-1','old-2','0000000000000000000000000000000000000000000000000000000000000002','UNKNOWN',NULL,1796117402.0,1796117422.0,'{"client_order_id":"old-2","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-1","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
INSERT INTO "idempotency" VALUES('acc-1','old-3','0000000000000000000000000000000000000000000000000000000000000003','UNKNOWN','{"status":"UNKNOWN"}',1796117403.0,1796117424.0,'{"client_order_id":"old-3","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-1","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
INSERT INTO "idempotency" VALUES('acc-1','old-4','0000000000000000000000000000000000000000000000000000000000000004','IN_PROGRESS',NULL,1796117404.0,1796117404.0,'{"client_order_id":"old-4","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-1","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
INSERT INTO "idempotency" VALUES('acc-1','old-5','0000000000000000000000000000000000000000000000000000000000000005','IN_PROGRESS',NULL,1796117405.0,1796117405.0,'{"client_order_id":"old-5","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-1","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
INSERT INTO "idempotency" VALUES('acc-2','old-b','bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb','COMPLETED','{"client_order_id":"old-b","status":"FILLED","cum_qty":"0.002","avg_px":"39433.00"}',1796117410.0,1796117423.0,'{"client_order_id":"old-b","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-2","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
INSERT INTO "idempotency" VALUES('acc-1','shared','cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc','COMPLETED','{}',1796117430.0,1796117431.0,'{"client_order_id":"shared","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-1","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
INSERT INTO "idempotency" VALUES('acc-2','shared','cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc','COMPLETED','{}',1796117430.0,1796117431.0,'{"client_order_id":"shared","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.002","limit_price":"39433.00","time_in_force":"GTC","strategy_id":"mm-1","metadata":{}}','{"mode":"paper","account_id":"acc-2","strategy_id":"mm-1","session_id":"","correlation_id":"","timestamp":"2026-12-07T22:00:00Z"}','paper');
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
CREATE INDEX order_archive_age ON order_archive (archived_at) WHERE compacted = 0;
CREATE INDEX order_events_terminal_ts ON order_events (ts) WHERE (to_status = 'CANCELED' OR to_status = 'DENIED' OR to_status = 'EXPIRED' OR to_status = 'FAILED' OR to_status = 'FILLED' OR to_status = 'REJECTED');
COMMIT;
