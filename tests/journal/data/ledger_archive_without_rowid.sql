-- A ledger journal written by the build before order_archive became a rowid table (order_archive
-- WITHOUT ROWID; six archived orders, the first two compacted): sqlite3's iterdump of the file.
-- tests/journal/test_archive_layout.py opens it with today's build.
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
    ) WITHOUT ROWID;
INSERT INTO "order_archive" VALUES('old-0','acc-1','FILLED',1796117400.0,'{"report":{"client_order_id":"old-0","account_id":"acc-1","symbol":"BTC/USDT","side":"SELL","venue_order_id":null,"status":"FILLED","route":null,"fills":[{"trade_id":"t0","qty":"0.003","price":"39433.62","fee":"0.01","fee_currency":"USDT","liquidity":"TAKER","ts":"2026-12-01T09:30:00.060000Z"}],"cum_qty":"0.003","leaves_qty":"0","avg_px":"39433.62","fees":"0.01","slippage_bps":"-0.1572","error":null,"replay":false,"attempts":0,"latency_us":0,"raw_broker_ref":null,"strategy_id":"mm-1","session_id":"sess-1","correlation_id":"corr-0","ts":"2026-12-01T09:30:00.060000Z"},"order_type":"LIMIT","quantity":"0.003","limit_price":"39433.62","time_in_force":"GTC","adapter_id":"paper","arrival_px":"39433.00","notional":"118.30086","price_capped_from":null,"synthetic":null,"created_ts":"2026-12-01T09:30:00+00:00","prior":null,"transitions":[[1,"2026-12-01T09:30:00.009000+00:00","INITIALIZED","RESERVED","RESERVED"],[2,"2026-12-01T09:30:00.010000+00:00","RESERVED","SUBMITTING","SUBMITTED"],[3,"2026-12-01T09:30:00.009000+00:00","SUBMITTING","ACCEPTED","ACCEPTED"],[4,"2026-12-01T09:30:00.060000+00:00","ACCEPTED","FILLED","fill t0"]]}',1);
INSERT INTO "order_archive" VALUES('old-1','acc-1','FILLED',1796117401.0,'{"report":{"client_order_id":"old-1","account_id":"acc-1","symbol":"BTC/USDT","side":"BUY","venue_order_id":null,"status":"FILLED","route":null,"fills":[{"trade_id":"t1","qty":"0.003","price":"39433.62","fee":"0.01","fee_currency":"USDT","liquidity":"TAKER","ts":"2026-12-01T09:30:01.060000Z"}],"cum_qty":"0.003","leaves_qty":"0","avg_px":"39433.62","fees":"0.01","slippage_bps":"0.1572","error":null,"replay":false,"attempts":0,"latency_us":0,"raw_broker_ref":null,"strategy_id":"mm-1","session_id":"sess-1","correlation_id":"corr-1","ts":"2026-12-01T09:30:01.060000Z"},"order_type":"LIMIT","quantity":"0.003","limit_price":"39433.62","time_in_force":"GTC","adapter_id":"paper","arrival_px":"39433.00","notional":"118.30086","price_capped_from":null,"synthetic":null,"created_ts":"2026-12-01T09:30:01+00:00","prior":null,"transitions":[[1,"2026-12-01T09:30:01.009000+00:00","INITIALIZED","RESERVED","RESERVED"],[2,"2026-12-01T09:30:01.010000+00:00","RESERVED","SUBMITTING","SUBMITTED"],[3,"2026-12-01T09:30:01.009000+00:00","SUBMITTING","ACCEPTED","ACCEPTED"],[4,"2026-12-01T09:30:01.060000+00:00","ACCEPTED","FILLED","fill t1"]]}',1);
INSERT INTO "order_archive" VALUES('old-2','acc-1','CANCELED',1796117402.0,'{"report":{"client_order_id":"old-2","account_id":"acc-1","symbol":"BTC/USDT","side":"SELL","venue_order_id":null,"status":"CANCELED","route":null,"fills":[],"cum_qty":"0","leaves_qty":"0","avg_px":null,"fees":"0","slippage_bps":null,"error":null,"replay":false,"attempts":0,"latency_us":0,"raw_broker_ref":null,"strategy_id":"mm-1","session_id":"sess-1","correlation_id":"corr-2","ts":"2026-12-01T09:30:02.050000Z"},"order_type":"LIMIT","quantity":"0.003","limit_price":"39433.62","time_in_force":"GTC","adapter_id":"paper","arrival_px":"39433.00","notional":"0","price_capped_from":null,"synthetic":null,"created_ts":"2026-12-01T09:30:02+00:00","prior":null,"transitions":[[1,"2026-12-01T09:30:02.009000+00:00","INITIALIZED","RESERVED","RESERVED"],[2,"2026-12-01T09:30:02.010000+00:00","RESERVED","SUBMITTING","SUBMITTED"],[3,"2026-12-01T09:30:02.009000+00:00","SUBMITTING","ACCEPTED","ACCEPTED"],[4,"2026-12-01T09:30:02.040000+00:00","ACCEPTED","PENDING_CANCEL","cancel"],[5,"2026-12-01T09:30:02.050000+00:00","PENDING_CANCEL","CANCELED","canceled"]]}',0);
INSERT INTO "order_archive" VALUES('old-3','acc-1','FILLED',1796117403.0,'{"report":{"client_order_id":"old-3","account_id":"acc-1","symbol":"BTC/USDT","side":"BUY","venue_order_id":null,"status":"FILLED","route":null,"fills":[{"trade_id":"t3","qty":"0.003","price":"39433.62","fee":"0.01","fee_currency":"USDT","liquidity":"TAKER","ts":"2026-12-01T09:30:03.060000Z"}],"cum_qty":"0.003","leaves_qty":"0","avg_px":"39433.62","fees":"0.01","slippage_bps":"0.1572","error":null,"replay":false,"attempts":0,"latency_us":0,"raw_broker_ref":null,"strategy_id":"mm-1","session_id":"sess-1","correlation_id":"corr-3","ts":"2026-12-01T09:30:03.060000Z"},"order_type":"LIMIT","quantity":"0.003","limit_price":"39433.62","time_in_force":"GTC","adapter_id":"paper","arrival_px":"39433.00","notional":"118.30086","price_capped_from":null,"synthetic":null,"created_ts":"2026-12-01T09:30:03+00:00","prior":null,"transitions":[[1,"2026-12-01T09:30:03.009000+00:00","INITIALIZED","RESERVED","réservé"],[2,"2026-12-01T09:30:03.010000+00:00","RESERVED","SUBMITTING","SUBMITTED"],[3,"2026-12-01T09:30:03.009000+00:00","SUBMITTING","ACCEPTED","ACCEPTED"],[4,"2026-12-01T09:30:03.060000+00:00","ACCEPTED","FILLED","fill t3"]]}',0);
INSERT INTO "order_archive" VALUES('old-4','acc-1','FILLED',1796117404.0,'{"report":{"client_order_id":"old-4","account_id":"acc-1","symbol":"BTC/USDT","side":"SELL","venue_order_id":null,"status":"FILLED","route":null,"fills":[{"trade_id":"t4","qty":"0.003","price":"39433.62","fee":"0.01","fee_currency":"USDT","liquidity":"TAKER","ts":"2026-12-01T09:30:04.060000Z"}],"cum_qty":"0.003","leaves_qty":"0","avg_px":"39433.62","fees":"0.01","slippage_bps":"-0.1572","error":null,"replay":false,"attempts":0,"latency_us":0,"raw_broker_ref":null,"strategy_id":"mm-1","session_id":"sess-1","correlation_id":"corr-4","ts":"2026-12-01T09:30:04.060000Z"},"order_type":"LIMIT","quantity":"0.003","limit_price":"39433.62","time_in_force":"GTC","adapter_id":"paper","arrival_px":"39433.00","notional":"118.30086","price_capped_from":null,"synthetic":null,"created_ts":"2026-12-01T09:30:04+00:00","prior":null,"transitions":[[1,"2026-12-01T09:30:04.009000+00:00","INITIALIZED","RESERVED","RESERVED"],[2,"2026-12-01T09:30:04.010000+00:00","RESERVED","SUBMITTING","SUBMITTED"],[3,"2026-12-01T09:30:04.009000+00:00","SUBMITTING","ACCEPTED","ACCEPTED"],[4,"2026-12-01T09:30:04.060000+00:00","ACCEPTED","FILLED","fill t4"]]}',0);
INSERT INTO "order_archive" VALUES('old-5','acc-1','CANCELED',1796117405.0,'{"report":{"client_order_id":"old-5","account_id":"acc-1","symbol":"BTC/USDT","side":"BUY","venue_order_id":null,"status":"CANCELED","route":null,"fills":[],"cum_qty":"0","leaves_qty":"0","avg_px":null,"fees":"0","slippage_bps":null,"error":null,"replay":false,"attempts":0,"latency_us":0,"raw_broker_ref":null,"strategy_id":"mm-1","session_id":"sess-1","correlation_id":"corr-5","ts":"2026-12-01T09:30:05.050000Z"},"order_type":"LIMIT","quantity":"0.003","limit_price":"39433.62","time_in_force":"GTC","adapter_id":"paper","arrival_px":"39433.00","notional":"0","price_capped_from":null,"synthetic":null,"created_ts":"2026-12-01T09:30:05+00:00","prior":null,"transitions":[[1,"2026-12-01T09:30:05.009000+00:00","INITIALIZED","RESERVED","RESERVED"],[2,"2026-12-01T09:30:05.010000+00:00","RESERVED","SUBMITTING","SUBMITTED"],[3,"2026-12-01T09:30:05.009000+00:00","SUBMITTING","ACCEPTED","ACCEPTED"],[4,"2026-12-01T09:30:05.040000+00:00","ACCEPTED","PENDING_CANCEL","cancel"],[5,"2026-12-01T09:30:05.050000+00:00","PENDING_CANCEL","CANCELED","canceled"]]}',0);
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
CREATE INDEX idempotency_unresolved ON idempotency (created_at) WHERE status != 'COMPLETED';
CREATE INDEX idempotency_by_id ON idempotency (client_order_id);
CREATE INDEX order_archive_age ON order_archive (archived_at) WHERE compacted = 0;
CREATE INDEX order_events_terminal_ts ON order_events (ts) WHERE to_status IN ('CANCELED', 'DENIED', 'EXPIRED', 'FAILED', 'FILLED', 'REJECTED');
COMMIT;
