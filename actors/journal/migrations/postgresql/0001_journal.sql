-- flowroute PostgreSQL journal, version 1: owners (process leases), idempotency records,
-- order transitions and fills. Applied in one transaction by actors/_pg_journal.py.

CREATE TABLE flowroute.owners (
    owner_id    text PRIMARY KEY,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until timestamptz NOT NULL
);

CREATE TABLE flowroute.idempotency (
    account_id      text NOT NULL,
    client_order_id text NOT NULL,
    fingerprint     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('IN_PROGRESS', 'COMPLETED', 'UNKNOWN')),
    report_json     text,
    created_at      double precision NOT NULL,
    updated_at      double precision NOT NULL,
    intent_json     text NOT NULL,
    context_json    text NOT NULL,
    adapter_id      text NOT NULL,
    owner_id        text NOT NULL,
    PRIMARY KEY (account_id, client_order_id)
);

CREATE INDEX idempotency_owner ON flowroute.idempotency (owner_id);

CREATE TABLE flowroute.order_events (
    id              bigserial PRIMARY KEY,
    seq             bigint NOT NULL,
    ts              double precision NOT NULL,
    account_id      text NOT NULL,
    client_order_id text NOT NULL,
    from_status     text NOT NULL,
    to_status       text NOT NULL,
    cause           text NOT NULL,
    UNIQUE (account_id, client_order_id, seq)
);

CREATE TABLE flowroute.fills (
    id              bigserial PRIMARY KEY,
    adapter_id      text NOT NULL,
    trade_id        text NOT NULL,
    account_id      text NOT NULL,
    client_order_id text NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL,
    qty             text NOT NULL,
    price           text NOT NULL,
    fee             text NOT NULL,
    fee_currency    text NOT NULL,
    liquidity       text NOT NULL,
    ts              text NOT NULL,
    UNIQUE (adapter_id, trade_id)
);

CREATE INDEX fills_order ON flowroute.fills (account_id, client_order_id);
