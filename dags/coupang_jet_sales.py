"""
### Coupang Jet sales (Rocket Growth, Wing)

Collects every active `coupang_jet` account of `sales.accounts` into `sales.order_lines`,
each by its own integration version (`sales.accounts.jet_version`).

**Version 1** (Wing sales page): payment amount without coupon discounts; the option ID
is stored as the order ID; no shipping fee.

**Version 2** (Rocket Growth settlement reports): payment amount after coupon discounts;
the real order ID; fulfilment fees applied as 판매자 부담 배송비; commission collected
(a rate entered in `sales.commission_settings` takes precedence, see the view
`sales.order_lines_effective`).

**Per account:** extract (browser sign-on; v1 sales page, or v2 reports requested,
polled and downloaded) → validate (Great Expectations on the raw rows) → transform
(policy, then the policy's GX suite) → load (order lines and 보관비-type account fees in
one transaction). A '주문 정산취소' restates the original line on its date (to 0 when full).

**Owner:** data-engineering (the alerts' e-mail and Slack channel). **Code:**
`plugins/coupang_sales/jet/` (the channel: `channel.py`, portal, policy, stages) and
`plugins/coupang_sales/airflow_glue/` (the DAG builder, tasks, alerts). **Consumers:** the
`sales.order_lines_effective` view and reports on it, and the DAGs scheduled on the Asset
`coupang_sales.order_lines` (and `coupang_sales.account_fees`) (docs/assets.md).
"""

from coupang_sales.airflow_glue.dag_factory import build_channel_dags
from coupang_sales.jet.channel import JET

# coupang_jet_sales, then coupang_jet_sales_shard_01 … when COUPANG_JET_SHARDS > 1 (README: Scale out)
dag, *shards = build_channel_dags(JET, doc_md=__doc__)
globals().update({shard.dag_id: shard for shard in shards})
