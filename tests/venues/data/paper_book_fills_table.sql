BEGIN TRANSACTION;
CREATE TABLE consumed_trades (
    symbol   TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
INSERT INTO "consumed_trades" VALUES('BTC/USDT','x1');
INSERT INTO "consumed_trades" VALUES('BTC/USDT','x2');
CREATE TABLE fills (
    seq             INTEGER PRIMARY KEY,
    trade_id        TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    fill_json       TEXT NOT NULL
);
INSERT INTO "fills" VALUES(1,'paper-1','old-m0','{"trade_id":"paper-1","qty":"0.1","price":"100.00","fee":"0.01000000","fee_currency":"USDT","liquidity":"TAKER","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "fills" VALUES(2,'paper-2','old-m1','{"trade_id":"paper-2","qty":"0.1","price":"100.00","fee":"0.01000000","fee_currency":"USDT","liquidity":"TAKER","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "fills" VALUES(3,'paper-3','old-m2','{"trade_id":"paper-3","qty":"0.1","price":"100.00","fee":"0.01000000","fee_currency":"USDT","liquidity":"TAKER","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "fills" VALUES(4,'paper-4','old-m3','{"trade_id":"paper-4","qty":"0.1","price":"100.00","fee":"0.01000000","fee_currency":"USDT","liquidity":"TAKER","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "fills" VALUES(5,'paper-5','old-rest','{"trade_id":"paper-5","qty":"0.2","price":"99.00","fee":"0.00198000","fee_currency":"USDT","liquidity":"MAKER","ts":"2021-01-08T00:00:02+00:00"}');
INSERT INTO "fills" VALUES(6,'paper-6','old-m4','{"trade_id":"paper-6","qty":"0.1","price":"100.00","fee":"0.01000000","fee_currency":"USDT","liquidity":"TAKER","ts":"2021-01-08T00:00:02+00:00"}');
INSERT INTO "fills" VALUES(7,'paper-7','old-rest','{"trade_id":"paper-7","qty":"0.1","price":"99.00","fee":"0.00099000","fee_currency":"USDT","liquidity":"MAKER","ts":"2021-01-08T00:00:03+00:00"}');
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO "meta" VALUES('adapter_id','paper');
INSERT INTO "meta" VALUES('schema_version','1');
INSERT INTO "meta" VALUES('fill_model_version','2.0');
INSERT INTO "meta" VALUES('session','4d1e41ca-e525-4abb-9456-ea660df4e478 26824.3b153ed7015f closed');
INSERT INTO "meta" VALUES('duplicates','1');
INSERT INTO "meta" VALUES('venue_time','2021-01-08T00:00:03+00:00');
CREATE TABLE orders (
    seq             INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    venue_order_id  TEXT NOT NULL,
    account         TEXT NOT NULL,
    status          TEXT NOT NULL,
    reject_reason   TEXT,
    accepted_day    TEXT NOT NULL,
    updated_ts      TEXT NOT NULL,
    order_json      TEXT NOT NULL
);
INSERT INTO "orders" VALUES(1,'old-m0','paper-o1','acc','FILLED',NULL,'2021-01-08','2021-01-08T00:00:01+00:00','{"client_order_id":"old-m0","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"MARKET","quantity":"0.1","limit_price":null,"time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "orders" VALUES(2,'old-m1','paper-o2','acc','FILLED',NULL,'2021-01-08','2021-01-08T00:00:01+00:00','{"client_order_id":"old-m1","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"MARKET","quantity":"0.1","limit_price":null,"time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "orders" VALUES(3,'old-m2','paper-o3','acc','FILLED',NULL,'2021-01-08','2021-01-08T00:00:01+00:00','{"client_order_id":"old-m2","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"MARKET","quantity":"0.1","limit_price":null,"time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "orders" VALUES(4,'old-m3','paper-o4','acc','FILLED',NULL,'2021-01-08','2021-01-08T00:00:01+00:00','{"client_order_id":"old-m3","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"MARKET","quantity":"0.1","limit_price":null,"time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "orders" VALUES(5,'old-rest','paper-o5','acc','PARTIALLY_FILLED',NULL,'2021-01-08','2021-01-08T00:00:03+00:00','{"client_order_id":"old-rest","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.5","limit_price":"99.00","time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "orders" VALUES(6,'old-cancel','paper-o6','acc','CANCELED',NULL,'2021-01-08','2021-01-08T00:00:01+00:00','{"client_order_id":"old-cancel","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.5","limit_price":"98.00","time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "orders" VALUES(7,'old-rej','paper-o7','acc','REJECTED','price 99.001 is not a multiple of tick size 0.01','2021-01-08','2021-01-08T00:00:01+00:00','{"client_order_id":"old-rej","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"LIMIT","quantity":"0.5","limit_price":"99.001","time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
INSERT INTO "orders" VALUES(8,'old-m4','paper-o8','acc','FILLED',NULL,'2021-01-08','2021-01-08T00:00:02+00:00','{"client_order_id":"old-m4","account_id":"acc","symbol":"BTC/USDT","side":"BUY","order_type":"MARKET","quantity":"0.1","limit_price":null,"time_in_force":"GTC","ts":"2021-01-08T00:00:01+00:00"}');
CREATE TABLE submissions (
    client_order_id TEXT PRIMARY KEY,
    count           INTEGER NOT NULL
);
INSERT INTO "submissions" VALUES('old-m1',2);
CREATE INDEX fills_by_order ON fills (client_order_id);
COMMIT;
