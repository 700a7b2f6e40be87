-- 0005: person-assisted sign-ons completed from the Airflow UI (the sign-in DAGs) or the terminal
-- command: who answered the SMS step and when, so the status page can say "signed in by X at T".
-- Only completed sign-ons are recorded: a sign-in that got no code changes nothing here.
CREATE TABLE IF NOT EXISTS sales.sign_ins (
    id            bigserial PRIMARY KEY,
    channel       text NOT NULL,
    account_id    text NOT NULL,
    completed_at  timestamptz NOT NULL DEFAULT now(),
    completed_by  text,            -- the Airflow user who answered the SMS code's Required Action
    run_id        text,            -- the sign-in DAG's run (NULL for the terminal command)
    sms_steps     integer NOT NULL DEFAULT 0,  -- SMS steps met (0: the portal let the profile in without one)
    codes_asked   integer NOT NULL DEFAULT 0   -- codes asked for (a refused code is asked again)
);
CREATE INDEX IF NOT EXISTS sign_ins_account_newest ON sales.sign_ins (channel, account_id, completed_at DESC);
