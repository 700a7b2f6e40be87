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

-- The last alert sent for an account blocked by a seller's action (tax_invoice_pending,
-- sub_account_expired, auth_challenge): it alerts when it becomes blocked (first, or again after
-- a successful collection) and then at most every COUPANG_BLOCKED_REALERT_HOURS.
CREATE TABLE IF NOT EXISTS sales.blocked_alerts (
    channel          text NOT NULL,
    account_id       text NOT NULL,
    reason           text NOT NULL,
    blocked_since    timestamptz NOT NULL DEFAULT now(),   -- the first alert of this block
    last_alerted_at  timestamptz NOT NULL DEFAULT now(),
    alerts           integer NOT NULL DEFAULT 1,
    PRIMARY KEY (channel, account_id, reason)
);
