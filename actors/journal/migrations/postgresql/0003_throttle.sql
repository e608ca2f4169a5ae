-- flowroute PostgreSQL journal, version 3: one rate limit per venue key shared by every process
-- (actors/_pg_throttle.py). A grant of n calls occupies [granted_at, until_ts).

CREATE TABLE flowroute.throttle_keys (
    venue_key text PRIMARY KEY
);

CREATE TABLE flowroute.throttle_grants (
    id         bigserial PRIMARY KEY,
    venue_key  text NOT NULL,
    owner_id   text NOT NULL,
    n          integer NOT NULL CHECK (n >= 0),
    granted_at timestamptz NOT NULL,
    until_ts   timestamptz NOT NULL
);

CREATE INDEX throttle_grants_window ON flowroute.throttle_grants (venue_key, until_ts);
