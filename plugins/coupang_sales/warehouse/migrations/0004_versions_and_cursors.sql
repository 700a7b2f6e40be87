-- 0004: a Jet version switch is a recorded event, and each account has its own collection cursor (issue #28).

-- Every change of sales.accounts.jet_version (and each Jet account's first version), kept by the trigger
-- below: when, from, to. The status page shows each Jet account's version and since when.
CREATE TABLE IF NOT EXISTS sales.jet_version_changes (
    id           bigserial   PRIMARY KEY,
    channel      text        NOT NULL,
    account_id   text        NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    from_version smallint,                       -- NULL: the account's first version
    to_version   smallint    NOT NULL,
    changed_by   text        NOT NULL DEFAULT current_user
);
CREATE INDEX IF NOT EXISTS jet_version_changes_by_account
    ON sales.jet_version_changes (channel, account_id, changed_at DESC, id DESC);

CREATE OR REPLACE FUNCTION sales.track_jet_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.jet_version IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.jet_version IS DISTINCT FROM NEW.jet_version) THEN
        INSERT INTO sales.jet_version_changes (channel, account_id, from_version, to_version)
        VALUES (NEW.channel, NEW.account_id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.jet_version END, NEW.jet_version);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER accounts_track_jet_version
    AFTER INSERT OR UPDATE OF jet_version ON sales.accounts FOR EACH ROW EXECUTE FUNCTION sales.track_jet_version();

-- Jet accounts registered before this table: their version since their first recorded attempt (else now).
INSERT INTO sales.jet_version_changes (channel, account_id, changed_at, from_version, to_version, changed_by)
SELECT a.channel, a.account_id,
       coalesce((SELECT min(r.finished_at) FROM sales.collection_runs r
                 WHERE r.channel = a.channel AND r.account_id = a.account_id), now()),
       NULL, a.jet_version, 'migration 0004'
FROM sales.accounts a
WHERE a.jet_version IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM sales.jet_version_changes c
                  WHERE c.channel = a.channel AND c.account_id = a.account_id);

-- Each account's cursor per stream (today one stream, 'order_lines'): every date up to collected_through
-- has been collected without a gap. A daily run's window starts at the earlier of its look-back and this
-- date, so a block longer than the look-back is collected whole by the first run after it; freshness counts
-- from it. A successful collection moves it (the trigger below) through every successful window that starts
-- at or before the day after it: a window beyond a gap leaves the gap visible until the gap is collected. `python -m coupang_sales.cursors` shows
-- and sets it.
CREATE TABLE IF NOT EXISTS sales.collection_cursors (
    channel           text        NOT NULL,
    account_id        text        NOT NULL,
    stream            text        NOT NULL DEFAULT 'order_lines',
    collected_through date        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text        NOT NULL,     -- the run that moved it, or who set it by hand
    PRIMARY KEY (channel, account_id, stream)
);

CREATE INDEX IF NOT EXISTS collection_runs_successes
    ON sales.collection_runs (channel, account_id, window_start) WHERE status = 'success';

CREATE OR REPLACE FUNCTION sales.advance_collection_cursor() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    through date;
    further date;
BEGIN
    INSERT INTO sales.collection_cursors (channel, account_id, stream, collected_through, updated_by)
    VALUES (NEW.channel, NEW.account_id, 'order_lines', NEW.window_end, coalesce(NEW.run_id, 'a successful collection'))
    ON CONFLICT (channel, account_id, stream) DO NOTHING;
    SELECT collected_through INTO through FROM sales.collection_cursors
    WHERE channel = NEW.channel AND account_id = NEW.account_id AND stream = 'order_lines' FOR UPDATE;
    -- Through every successful window that starts at or before the day after the cursor: a window that came
    -- before the gap behind it was filled counts once it is, whatever order the runs came in.
    LOOP
        SELECT max(r.window_end) INTO further FROM sales.collection_runs r
        WHERE r.channel = NEW.channel AND r.account_id = NEW.account_id AND r.status = 'success'
          AND r.window_start <= through + 1 AND r.window_end > through;
        EXIT WHEN further IS NULL;
        through := further;
    END LOOP;
    UPDATE sales.collection_cursors k SET collected_through = through, updated_at = now(),
                                          updated_by = coalesce(NEW.run_id, 'a successful collection')
    WHERE k.channel = NEW.channel AND k.account_id = NEW.account_id AND k.stream = 'order_lines'
      AND k.collected_through < through;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER collection_runs_advance_cursor
    AFTER INSERT ON sales.collection_runs FOR EACH ROW WHEN (NEW.status = 'success')
    EXECUTE FUNCTION sales.advance_collection_cursor();

-- Accounts collected before the cursor existed start from their newest collected date (the audit cannot
-- say whether an older gap was filled since).
INSERT INTO sales.collection_cursors (channel, account_id, stream, collected_through, updated_by)
SELECT channel, account_id, 'order_lines', collected_through, 'migration 0004'
FROM sales.account_status WHERE collected_through IS NOT NULL
ON CONFLICT DO NOTHING;

-- The state function of 0003 with freshness counted from the cursor (the last date collected without a
-- gap), the newest window end of any success beside it, and each Jet account's version since when.
DROP FUNCTION IF EXISTS sales.collection_status(date);
CREATE FUNCTION sales.collection_status(today date)
RETURNS TABLE (channel text, account_id text, jet_version smallint, active boolean, state text,
               last_status text, last_reason text, last_message text, last_finished_at timestamptz,
               run_attempts integer, last_dag_id text, last_run_id text, last_task_id text,
               last_map_index integer, last_try_number integer, last_success_at timestamptz,
               last_success_window_start date, last_success_window_end date, collected_through date,
               freshness_days integer, stale_after_days integer, over_threshold boolean,
               stale_alerted_at timestamptz, jet_version_since timestamptz, collected_until date,
               cursor_updated_by text)
LANGUAGE sql STABLE AS $$
    SELECT a.channel, a.account_id, a.jet_version, a.active,
           CASE WHEN NOT a.active THEN 'paused'
                WHEN s.last_status = 'blocked' OR s.last_reason = 'auth_challenge' THEN 'blocked'
                WHEN s.last_status = 'failed' THEN 'failing'
                WHEN s.last_status IS NULL THEN 'new'
                WHEN t.through IS NULL
                     OR today - t.through > coalesce(c.stale_after_days, 2) THEN 'stale'
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
           s.collected_through, k.updated_by
    FROM sales.accounts a
    LEFT JOIN sales.account_status s ON s.channel = a.channel AND s.account_id = a.account_id
    LEFT JOIN sales.channel_settings c ON c.channel = a.channel
    LEFT JOIN sales.collection_cursors k
           ON k.channel = a.channel AND k.account_id = a.account_id AND k.stream = 'order_lines'
    CROSS JOIN LATERAL (SELECT coalesce(k.collected_through, s.collected_through) AS through) t
$$;
