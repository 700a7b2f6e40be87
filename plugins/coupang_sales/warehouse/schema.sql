-- Warehouse schema of the Coupang sales collection. Idempotent: safe to apply on every run.
CREATE SCHEMA IF NOT EXISTS sales;

CREATE TABLE IF NOT EXISTS sales.accounts (
    channel      text    NOT NULL CHECK (channel IN ('coupang_rocket', 'coupang_jet')),
    account_id   text    NOT NULL,
    conn_id      text    NOT NULL,
    jet_version  smallint CHECK (jet_version IN (1, 2)),
    active       boolean NOT NULL DEFAULT true,
    PRIMARY KEY (channel, account_id),
    CHECK ((channel = 'coupang_jet') = (jet_version IS NOT NULL))
);

CREATE TABLE IF NOT EXISTS sales.order_lines (
    channel              text    NOT NULL,
    account_id           text    NOT NULL,
    order_id             text    NOT NULL,
    line_key             text    NOT NULL,
    option_id            text,
    product_name         text,
    sales_date           date    NOT NULL,
    quantity             bigint  NOT NULL,
    gross_amount         bigint  NOT NULL,
    coupon_discount      bigint  NOT NULL DEFAULT 0,
    payment_amount       bigint  NOT NULL,
    seller_shipping_fee  bigint  NOT NULL DEFAULT 0,
    collected_commission bigint,
    is_cancelled         boolean NOT NULL DEFAULT false,
    source               text    NOT NULL CHECK (source IN ('rocket', 'jet_v1', 'jet_v2')),
    cancelled_quantity   bigint  NOT NULL DEFAULT 0,
    cancelled_amount     bigint  NOT NULL DEFAULT 0,
    loaded_at            timestamptz NOT NULL DEFAULT now(),
    run_id               text,
    PRIMARY KEY (channel, account_id, order_id, line_key)
);
CREATE INDEX IF NOT EXISTS order_lines_by_date ON sales.order_lines (channel, account_id, sales_date);

-- Jet v2 account-level fees (보관비, 반품 회수비, ...): totals of a Wing settlement group, so per
-- settlement period, not per day. The first shape (per fee_date, from invented report rows) is
-- kept aside under another name rather than dropped.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'sales' AND table_name = 'account_fees' AND column_name = 'fee_date') THEN
        ALTER TABLE sales.account_fees RENAME TO account_fees_by_day_legacy;
        ALTER TABLE sales.account_fees_by_day_legacy RENAME CONSTRAINT account_fees_pkey
            TO account_fees_by_day_legacy_pkey;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS sales.account_fees (
    channel               text   NOT NULL,
    account_id            text   NOT NULL,
    period_start          date   NOT NULL,
    period_end            date   NOT NULL CHECK (period_end >= period_start),
    fee_type              text   NOT NULL,
    amount                bigint NOT NULL,
    settlement_group_key  text,
    run_id                text,
    loaded_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, account_id, period_start, period_end, fee_type)
);

CREATE TABLE IF NOT EXISTS sales.commission_settings (
    channel       text    NOT NULL,
    account_id    text    NOT NULL,
    option_id     text,
    rate_percent  numeric(7, 4) NOT NULL CHECK (rate_percent >= 0 AND rate_percent <= 100),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- One rate per (channel, account, option) with NULL meaning "all options".
CREATE UNIQUE INDEX IF NOT EXISTS commission_settings_key
    ON sales.commission_settings (channel, account_id, coalesce(option_id, ''));

-- The effective commission is computed when read, so a rate entered today applies to all past rows.
CREATE OR REPLACE VIEW sales.order_lines_effective AS
SELECT ol.*,
       CASE WHEN cs.rate_percent IS NOT NULL
                -- rate % x payment, rounded half up to whole won
                THEN floor(ol.payment_amount * cs.rate_percent / 100 + 0.5)::bigint
            ELSE ol.collected_commission
       END AS effective_commission,
       CASE WHEN cs.rate_percent IS NOT NULL THEN 'user'
            WHEN ol.collected_commission IS NOT NULL THEN 'collected'
       END AS commission_source
FROM sales.order_lines ol
LEFT JOIN LATERAL (
    SELECT s.rate_percent
    FROM sales.commission_settings s
    WHERE s.channel = ol.channel AND s.account_id = ol.account_id
      AND (s.option_id = ol.option_id OR s.option_id IS NULL)
    ORDER BY s.option_id IS NULL  -- the per-option rate is more specific than the account-wide one
    LIMIT 1
) cs ON true;

CREATE TABLE IF NOT EXISTS sales.collection_runs (
    id              bigserial PRIMARY KEY,
    channel         text NOT NULL,
    account_id      text NOT NULL,
    window_start    date NOT NULL,
    window_end      date NOT NULL,
    status          text NOT NULL CHECK (status IN ('success', 'blocked', 'failed')),
    reason          text,
    message         text,
    rows_extracted  bigint,
    rows_loaded     bigint,
    started_at      timestamptz,
    finished_at     timestamptz NOT NULL DEFAULT now(),
    run_id          text,
    task_id         text,
    try_number      integer,
    details         jsonb
);
CREATE INDEX IF NOT EXISTS collection_runs_by_account ON sales.collection_runs (channel, account_id, finished_at);

-- What a re-collection changed, so "why did 5 January drop?" has an answer.
CREATE TABLE IF NOT EXISTS sales.order_line_changes (
    id              bigserial PRIMARY KEY,
    channel         text NOT NULL,
    account_id      text NOT NULL,
    order_id        text NOT NULL,
    line_key        text NOT NULL,
    sales_date      date NOT NULL,
    change          text NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    old_payment_amount bigint,
    new_payment_amount bigint,
    old_quantity    bigint,
    new_quantity    bigint,
    run_id          text,
    changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS order_line_changes_by_date ON sales.order_line_changes (channel, account_id, sales_date);

-- The facts every run collected, one row per source row (an invoice's receipt or 반출, a report's
-- 주문 정산 / 주문 정산취소 / per-order fee row). sales.order_lines is derived from all facts of a group
-- (Rocket: 발주번호 + SKU번호; Jet v2: 주문ID) whatever run brought each one, so the stored result
-- never depends on the order or windows of the runs. Returns and cancellations carry negative amounts.
CREATE TABLE IF NOT EXISTS sales.collected_facts (
    channel         text   NOT NULL,
    account_id      text   NOT NULL,
    fact_kind       text   NOT NULL CHECK (fact_kind IN ('rocket_receipt', 'rocket_return', 'jet_settlement',
                                                         'jet_cancellation', 'jet_order_fee')),
    order_id        text   NOT NULL,
    fact_key        text   NOT NULL,
    group_key       text   NOT NULL,
    fact_date       date   NOT NULL,   -- 작성일자 of the invoice / 매출인식일 of the report row
    document        text   NOT NULL,   -- 계산서번호 / report name
    option_id       text,
    product_name    text,
    quantity        bigint NOT NULL,
    amount          bigint NOT NULL,   -- Rocket 총단가; Jet 판매액(A*B) or the fee
    coupon_discount bigint NOT NULL DEFAULT 0,
    commission      bigint,
    unit_price      bigint,
    run_id          text,              -- the run that collected this version of the fact
    collected_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, account_id, fact_kind, order_id, fact_key)
);
CREATE INDEX IF NOT EXISTS collected_facts_by_group ON sales.collected_facts (channel, account_id, group_key);
CREATE INDEX IF NOT EXISTS collected_facts_by_date ON sales.collected_facts (channel, account_id, fact_kind, fact_date);

-- A line's group: Rocket 발주번호/SKU번호 (this index), Jet v2 주문ID (the primary key's prefix).
CREATE INDEX IF NOT EXISTS order_lines_by_rocket_group
    ON sales.order_lines (channel, account_id, (order_id || '/' || coalesce(option_id, '')));

-- How each return / cancellation restates each line: "which facts made 5 January what it is".
CREATE TABLE IF NOT EXISTS sales.restatements (
    channel         text   NOT NULL,
    account_id      text   NOT NULL,
    group_key       text   NOT NULL,
    order_id        text   NOT NULL,
    line_key        text   NOT NULL,
    fact_kind       text   NOT NULL,
    fact_key        text   NOT NULL,
    quantity        bigint NOT NULL,   -- taken off the line
    amount          bigint NOT NULL,   -- payment taken off the line
    PRIMARY KEY (channel, account_id, order_id, line_key, fact_kind, fact_key)
);
CREATE INDEX IF NOT EXISTS restatements_by_group ON sales.restatements (channel, account_id, group_key);

-- Money of a return / cancellation / fee that no line carries, kept visible so that per account
-- Σ order_lines.payment_amount + Σ amount = Σ collected amounts (docs/decisions.md):
-- 'price_difference' (a 반출 at another unit price than the receipts it returned),
-- 'no_original' (its original line was never collected), 'exceeds_original' (more than the
-- original holds), 'fee_without_line' (a per-order fee of an order with no collected line).
CREATE TABLE IF NOT EXISTS sales.restatement_adjustments (
    channel             text   NOT NULL,
    account_id          text   NOT NULL,
    group_key           text   NOT NULL,
    fact_kind           text   NOT NULL,
    order_id            text   NOT NULL,
    fact_key            text   NOT NULL,
    reason              text   NOT NULL CHECK (reason IN ('price_difference', 'no_original', 'exceeds_original',
                                                          'fee_without_line')),
    fact_date           date   NOT NULL,
    document            text   NOT NULL,
    option_id           text,
    quantity            bigint NOT NULL DEFAULT 0,
    amount              bigint NOT NULL DEFAULT 0,   -- payment money (negative: reversed, on no line)
    seller_shipping_fee bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, account_id, fact_kind, order_id, fact_key, reason)
);
CREATE INDEX IF NOT EXISTS restatement_adjustments_by_group
    ON sales.restatement_adjustments (channel, account_id, group_key);

-- Which collected fact caused each change (a 반출 of invoice X, a 주문 정산취소 of CATEGORY_TR ...).
ALTER TABLE sales.order_line_changes ADD COLUMN IF NOT EXISTS cause text;
ALTER TABLE sales.order_line_changes ADD COLUMN IF NOT EXISTS cause_facts jsonb;

-- ==== Collection status page and freshness alerts (one block; issue 16) ===========================
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
-- ==== end of the collection status block ========================================================
