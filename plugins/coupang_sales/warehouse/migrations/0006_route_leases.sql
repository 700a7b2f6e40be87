-- 0006: egress routes (issue #30). A route carries one signed-on seller of a portal at a time; the lease
-- says which account's run holds it and which WebDriver session its tasks share. A lease ends when its
-- run's last browser task releases it, or when it expires (its holder stopped renewing it: the task was
-- killed, the worker died): the next task that asks for a route reaps it and closes its session.
CREATE TABLE IF NOT EXISTS sales.route_leases (
    portal         text        NOT NULL,          -- supplier_hub | wing: one seller per address, per portal
    route          text        NOT NULL,
    channel        text        NOT NULL,
    account_id     text        NOT NULL,
    holder         text        NOT NULL,          -- '<dag_id>/<run_id>' of the run that holds it
    webdriver_url  text,                          -- the WebDriver server of the shared session
    session_id     text,                          -- the shared WebDriver session (no secret)
    relay_pid      integer,                       -- the local relay of a route with credentials, if any
    leased_at      timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (portal, route)
);
-- an account holds at most one route of a portal at a time
CREATE UNIQUE INDEX IF NOT EXISTS route_leases_one_per_account ON sales.route_leases (portal, channel, account_id);

-- The route each attempt left from, and how long it waited for one.
ALTER TABLE sales.collection_runs ADD COLUMN IF NOT EXISTS route text;
ALTER TABLE sales.collection_runs ADD COLUMN IF NOT EXISTS route_wait_seconds integer;
