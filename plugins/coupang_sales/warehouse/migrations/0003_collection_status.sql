-- 0003: the collection status page and freshness alerts.
-- Every attempt names the Airflow task instance that wrote it, so the status page links to its log.
ALTER TABLE sales.collection_runs ADD COLUMN IF NOT EXISTS dag_id text;
ALTER TABLE sales.collection_runs ADD COLUMN IF NOT EXISTS map_index integer;
CREATE INDEX IF NOT EXISTS collection_runs_by_account_run ON sales.collection_runs (channel, account_id, run_id);

-- Per channel: an active account whose collected dates end more than stale_after_days before today is
-- stale. A channel without a row uses 2 days.
CREATE TABLE IF NOT EXISTS sales.channel_settings (
    channel          text    PRIMARY KEY CHECK (channel IN ('coupang_rocket', 'coupang_jet')),
    stale_after_days integer NOT NULL DEFAULT 2 CHECK (stale_after_days >= 0)
);

-- One row per account that has any attempt: its newest attempt, its newest success, and how far its
-- collected dates reach. Kept by the trigger below in the transaction of each collection_runs insert,
-- so the status page reads one row per account instead of the whole audit.
CREATE TABLE IF NOT EXISTS sales.account_status (
    channel                   text NOT NULL,
    account_id                text NOT NULL,
    last_attempt_id           bigint,
    last_status               text,
    last_reason               text,
    last_message              text,
    last_finished_at          timestamptz,
    last_run_id               text,
    last_dag_id               text,
    last_task_id              text,
    last_map_index            integer,
    last_try_number           integer,
    run_attempts              integer NOT NULL DEFAULT 0,   -- attempts recorded in last_run_id
    last_success_at           timestamptz,
    last_success_window_start date,
    last_success_window_end   date,
    collected_through         date,                         -- newest window end of any success
    stale_alerted_at          timestamptz,                  -- set while the account is alerted as stale
    PRIMARY KEY (channel, account_id)
);

-- Every attempt rewrites its account's row: half-empty pages let PostgreSQL update it in place (HOT).
ALTER TABLE sales.account_status SET (fillfactor = 50);

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
            last_success_at = CASE WHEN success THEN NEW.finished_at ELSE s.last_success_at END
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

CREATE OR REPLACE TRIGGER collection_runs_track_account_status
    AFTER INSERT ON sales.collection_runs FOR EACH ROW EXECUTE FUNCTION sales.track_account_status();

-- A warehouse that had attempts before this table existed: fill it once from the audit.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sales.account_status) AND EXISTS (SELECT 1 FROM sales.collection_runs) THEN
        INSERT INTO sales.account_status
            (channel, account_id, last_attempt_id, last_status, last_reason, last_message, last_finished_at,
             last_run_id, last_dag_id, last_task_id, last_map_index, last_try_number, run_attempts,
             last_success_at, last_success_window_start, last_success_window_end, collected_through)
        SELECT l.channel, l.account_id, l.id, l.status, l.reason, l.message, l.finished_at, l.run_id, l.dag_id,
               l.task_id, l.map_index, l.try_number,
               (SELECT count(*) FROM sales.collection_runs r WHERE r.channel = l.channel
                  AND r.account_id = l.account_id AND r.run_id IS NOT DISTINCT FROM l.run_id),
               s.finished_at, s.window_start, s.window_end,
               (SELECT max(window_end) FROM sales.collection_runs r WHERE r.channel = l.channel
                  AND r.account_id = l.account_id AND r.status = 'success')
        FROM (SELECT DISTINCT ON (channel, account_id) * FROM sales.collection_runs
              ORDER BY channel, account_id, finished_at DESC, id DESC) l
        LEFT JOIN (SELECT DISTINCT ON (channel, account_id) * FROM sales.collection_runs WHERE status = 'success'
                   ORDER BY channel, account_id, finished_at DESC, id DESC) s USING (channel, account_id);
    END IF;
END $$;

-- Every account's state on ``today`` (the status page and the freshness alerts read this, nothing else):
-- paused (inactive) > blocked (waiting for a person: the seller's tax invoice or 연장하기, or an SMS
-- sign-on) > failing > new (never attempted) > stale (collected dates end more than the channel's
-- stale_after_days before today) > ok. ``over_threshold`` is the staleness alone, whatever the state
-- shows: a blocked account's data goes stale too; an account never collected has no data to go stale
-- (NULL: its blocked or failing attempts have alerted already).
CREATE OR REPLACE FUNCTION sales.collection_status(today date)
RETURNS TABLE (channel text, account_id text, jet_version smallint, active boolean, state text,
               last_status text, last_reason text, last_message text, last_finished_at timestamptz,
               run_attempts integer, last_dag_id text, last_run_id text, last_task_id text,
               last_map_index integer, last_try_number integer, last_success_at timestamptz,
               last_success_window_start date, last_success_window_end date, collected_through date,
               freshness_days integer, stale_after_days integer, over_threshold boolean,
               stale_alerted_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT a.channel, a.account_id, a.jet_version, a.active,
           CASE WHEN NOT a.active THEN 'paused'
                WHEN s.last_status = 'blocked' OR s.last_reason = 'auth_challenge' THEN 'blocked'
                WHEN s.last_status = 'failed' THEN 'failing'
                WHEN s.last_status IS NULL THEN 'new'
                WHEN s.collected_through IS NULL
                     OR today - s.collected_through > coalesce(c.stale_after_days, 2) THEN 'stale'
                ELSE 'ok' END,
           s.last_status, s.last_reason, s.last_message, s.last_finished_at, coalesce(s.run_attempts, 0),
           coalesce(s.last_dag_id, a.channel || '_sales'), s.last_run_id, s.last_task_id, s.last_map_index,
           s.last_try_number, s.last_success_at, s.last_success_window_start, s.last_success_window_end,
           s.collected_through, today - s.collected_through, coalesce(c.stale_after_days, 2),
           today - s.collected_through > coalesce(c.stale_after_days, 2),
           s.stale_alerted_at
    FROM sales.accounts a
    LEFT JOIN sales.account_status s ON s.channel = a.channel AND s.account_id = a.account_id
    LEFT JOIN sales.channel_settings c ON c.channel = a.channel
$$;
