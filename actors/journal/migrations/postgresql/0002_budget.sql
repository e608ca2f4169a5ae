-- flowroute PostgreSQL journal, version 2: budgets shared by every process (actors/_pg_budget.py).
-- budget_accounts: the totals every reservation is checked against (one row per risk book);
-- budget_orders: what each order holds (reserved notional left, notional spent), so a survivor
-- can set an adopted order's values again without counting them twice.

CREATE TABLE flowroute.budget_accounts (
    account_id text PRIMARY KEY,
    reserved   numeric NOT NULL DEFAULT 0,
    spent      numeric NOT NULL DEFAULT 0
);

CREATE TABLE flowroute.budget_orders (
    account_id      text NOT NULL,
    client_order_id text NOT NULL,
    reserved        numeric NOT NULL,
    spent           numeric NOT NULL DEFAULT 0,
    owner_id        text NOT NULL,
    PRIMARY KEY (account_id, client_order_id)
);
