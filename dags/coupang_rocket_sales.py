"""
### Coupang Rocket sales (Supplier Hub)

Collects every active `coupang_rocket` account of `sales.accounts` into `sales.order_lines`.

**Policy.** Payment amount = 정산 > 일반매입계정 > 입고상세내역 > **총단가**, dated by the
invoice's **작성일자**. A 반출 line (return/cancellation) restates the original line on its
own date (to 0 when fully returned) instead of adding a negative line.

**Per account:** sub-account expiry check → unprocessed-tax-invoice check → extract
(browser) → validate (Great Expectations) → transform (policy) → load (one transaction).

**Failures** (see `sales.collection_runs.reason`):
- `tax_invoice_pending`: the seller must confirm the 미처리된 세금계산서 in Supplier Hub. Not retried.
- `sub_account_expired`: the master account must click '연장하기' at 서플라이어허브 > 부계정 관리. Not retried.
- `auth_challenge` / `bot_rejected` / `bad_credentials`: login needs a person or new settings. Not retried.
- `portal_unavailable` / `warehouse_error`: transient, retried with backoff.
- `export_format_changed` / `validation_failed`: the data changed shape or broke a rule; nothing loaded.

**Backfill:** `airflow backfill create --dag-id coupang_rocket_sales --from-date D1 --to-date D2`,
or trigger with the `date` param. Re-running a date replaces its window: idempotent.

**Owner:** data-engineering (the alerts' e-mail and Slack channel). **Code:**
`plugins/coupang_sales/rocket/` (the channel: `channel.py`, portal, policy, stages) and
`plugins/coupang_sales/airflow_glue/` (the DAG builder, tasks, alerts). **Consumers:** the
`sales.order_lines_effective` view and reports on it, and the DAGs scheduled on the Asset
`coupang_sales.order_lines` (docs/assets.md).
"""

from coupang_sales.airflow_glue.dag_factory import build_channel_dags
from coupang_sales.rocket.channel import ROCKET

# coupang_rocket_sales, then coupang_rocket_sales_shard_01 … when COUPANG_ROCKET_SHARDS > 1 (README: Scale out)
dag, *shards = build_channel_dags(ROCKET, doc_md=__doc__)
globals().update({shard.dag_id: shard for shard in shards})
