-- 0002: the last alert sent for an account blocked by a seller's action (tax_invoice_pending,
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
