-- 0007: what the status page shows beyond the state (issue #31): the seller's name, a sub-account about to
-- expire, and the egress route each account last left from.

-- The seller (vendor) name of the account, as the portal shows it (Supplier Hub's 업체명, Wing's 판매자명);
-- the status page shows it and searches it. NULL: not registered (the page shows the account id alone).
ALTER TABLE sales.accounts ADD COLUMN IF NOT EXISTS seller_name text;

-- The newest expiry warning of each account's Supplier Hub sub-account (부계정), written when the
-- sub-account check warns (its expiry within the check's warn_days, 7 by default) with the run that saw it.
-- The account is 'expiring' while its newest attempt belongs to that run: a later run whose check no longer
-- warns (the master account clicked 연장하기) ends it without touching this row.
CREATE TABLE IF NOT EXISTS sales.sub_account_expiry (
    channel     text        NOT NULL,
    account_id  text        NOT NULL,
    expires     date        NOT NULL,
    warn_days   integer,
    run_id      text,
    warned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, account_id)
);

-- The route of the account's newest attempt that left from one (sales.collection_runs.route, 0006).
ALTER TABLE sales.account_status ADD COLUMN IF NOT EXISTS last_route text;

CREATE OR REPLACE FUNCTION sales.track_account_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    success boolean := NEW.status = 'success';
    previous timestamptz;
BEGIN
    INSERT INTO sales.account_status (channel, account_id) VALUES (NEW.channel, NEW.account_id)
    ON CONFLICT (channel, account_id) DO NOTHING;
    SELECT last_finished_at INTO previous FROM sales.account_status
    WHERE channel = NEW.channel AND account_id = NEW.account_id FOR UPDATE;
    IF previous IS NULL OR NEW.finished_at >= previous THEN  -- the newest attempt (one row update)
        UPDATE sales.account_status s SET
            last_attempt_id = NEW.id, last_status = NEW.status, last_reason = NEW.reason,
            last_message = NEW.message, last_finished_at = NEW.finished_at, last_run_id = NEW.run_id,
            last_dag_id = NEW.dag_id, last_task_id = NEW.task_id, last_map_index = NEW.map_index,
            last_try_number = NEW.try_number,
            run_attempts = (SELECT count(*) FROM sales.collection_runs r
                            WHERE r.channel = NEW.channel AND r.account_id = NEW.account_id
                              AND r.run_id IS NOT DISTINCT FROM NEW.run_id),
            collected_through = CASE WHEN success THEN greatest(s.collected_through, NEW.window_end)
                                     ELSE s.collected_through END,
            last_success_window_start = CASE WHEN success THEN NEW.window_start
                                             ELSE s.last_success_window_start END,
            last_success_window_end = CASE WHEN success THEN NEW.window_end ELSE s.last_success_window_end END,
            last_success_at = CASE WHEN success THEN NEW.finished_at ELSE s.last_success_at END,
            last_route = coalesce(NEW.route, s.last_route)
        WHERE s.channel = NEW.channel AND s.account_id = NEW.account_id;
    ELSIF success THEN  -- recorded late: it still extends the collected dates
        UPDATE sales.account_status s SET
            collected_through = greatest(s.collected_through, NEW.window_end),
            last_success_window_start = CASE WHEN s.last_success_at IS NULL OR NEW.finished_at >= s.last_success_at
                                             THEN NEW.window_start ELSE s.last_success_window_start END,
            last_success_window_end = CASE WHEN s.last_success_at IS NULL OR NEW.finished_at >= s.last_success_at
                                           THEN NEW.window_end ELSE s.last_success_window_end END,
            last_success_at = greatest(s.last_success_at, NEW.finished_at)
        WHERE s.channel = NEW.channel AND s.account_id = NEW.account_id;
    END IF;
    RETURN NULL;
END $$;

-- Accounts that left from a route before this column: their newest attempt with one.
UPDATE sales.account_status s SET last_route = r.route
FROM (SELECT DISTINCT ON (channel, account_id) channel, account_id, route FROM sales.collection_runs
      WHERE route IS NOT NULL ORDER BY channel, account_id, finished_at DESC, id DESC) r
WHERE s.channel = r.channel AND s.account_id = r.account_id AND s.last_route IS NULL;

-- The state function of 0004 with 'expiring' (an account otherwise 'ok' whose newest run warned that its
-- sub-account expires), the expiry date, the seller's name and the last route.
DROP FUNCTION IF EXISTS sales.collection_status(date);
CREATE FUNCTION sales.collection_status(today date)
RETURNS TABLE (channel text, account_id text, jet_version smallint, active boolean, state text,
               last_status text, last_reason text, last_message text, last_finished_at timestamptz,
               run_attempts integer, last_dag_id text, last_run_id text, last_task_id text,
               last_map_index integer, last_try_number integer, last_success_at timestamptz,
               last_success_window_start date, last_success_window_end date, collected_through date,
               freshness_days integer, stale_after_days integer, over_threshold boolean,
               stale_alerted_at timestamptz, jet_version_since timestamptz, collected_until date,
               cursor_updated_by text, seller_name text, last_route text, sub_account_expires date)
LANGUAGE sql STABLE AS $$
    SELECT a.channel, a.account_id, a.jet_version, a.active,
           CASE WHEN NOT a.active THEN 'paused'
                WHEN s.last_status = 'blocked' OR s.last_reason = 'auth_challenge' THEN 'blocked'
                WHEN s.last_status = 'failed' THEN 'failing'
                WHEN s.last_status IS NULL THEN 'new'
                WHEN t.through IS NULL
                     OR today - t.through > coalesce(c.stale_after_days, 2) THEN 'stale'
                WHEN e.expires IS NOT NULL THEN 'expiring'
                ELSE 'ok' END,
           s.last_status, s.last_reason, s.last_message, s.last_finished_at, coalesce(s.run_attempts, 0),
           coalesce(s.last_dag_id, a.channel || '_sales'), s.last_run_id, s.last_task_id, s.last_map_index,
           s.last_try_number, s.last_success_at, s.last_success_window_start, s.last_success_window_end,
           t.through, today - t.through, coalesce(c.stale_after_days, 2),
           today - t.through > coalesce(c.stale_after_days, 2),
           s.stale_alerted_at,
           (SELECT v.changed_at FROM sales.jet_version_changes v
            WHERE v.channel = a.channel AND v.account_id = a.account_id
            ORDER BY v.changed_at DESC, v.id DESC LIMIT 1),
           s.collected_through, k.updated_by, a.seller_name, s.last_route, e.expires
    FROM sales.accounts a
    LEFT JOIN sales.account_status s ON s.channel = a.channel AND s.account_id = a.account_id
    LEFT JOIN sales.channel_settings c ON c.channel = a.channel
    LEFT JOIN sales.collection_cursors k
           ON k.channel = a.channel AND k.account_id = a.account_id AND k.stream = 'order_lines'
    LEFT JOIN sales.sub_account_expiry e
           ON e.channel = a.channel AND e.account_id = a.account_id AND e.run_id = s.last_run_id
    CROSS JOIN LATERAL (SELECT coalesce(k.collected_through, s.collected_through) AS through) t
$$;
