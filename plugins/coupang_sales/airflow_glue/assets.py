"""The Airflow Assets the load tasks update, and the extra each load attaches to its event.

Every successful load of an account emits one event on ``coupang_sales.order_lines`` (both
channels) and, for Coupang Jet, one on ``coupang_sales.account_fees``. A downstream DAG
scheduled on them (``schedule=[ORDER_LINES]``, example in docs/assets.md) runs after fresh
sales and reads from the events' extras which accounts and sales dates changed.

The URIs follow the postgres provider's rule, ``postgres://host:port/database/schema/table``.
The warehouse's host, port and database are not known when a DAG file is parsed (the
connection is read at run time only), so ``COUPANG_WAREHOUSE_ASSET_BASE`` names them
(default ``postgres://warehouse:5432/sales``, the compose file's warehouse). Consumers should
refer to the assets by name (``Asset.ref(name="coupang_sales.order_lines")``), which does not
change with the setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Asset

from coupang_sales.channel import ACCOUNT_FEES_ASSET, ORDER_LINES_ASSET, Channel
from coupang_sales.config import settings

ORDER_LINES_NAME = ORDER_LINES_ASSET
ACCOUNT_FEES_NAME = ACCOUNT_FEES_ASSET


def asset_base() -> str:
    return settings().warehouse_asset_base.rstrip("/")


def order_lines_asset() -> Asset:
    return Asset(name=ORDER_LINES_NAME, uri=f"{asset_base()}/sales/order_lines", group="coupang_sales")


def account_fees_asset() -> Asset:
    return Asset(name=ACCOUNT_FEES_NAME, uri=f"{asset_base()}/sales/account_fees", group="coupang_sales")


def order_lines_extra(account: Mapping[str, Any], window: Sequence[str], result: Mapping[str, Any],
                      changed_dates: Sequence[str]) -> dict[str, Any]:
    """What a consumer needs to know of one account's load: who, which dates, how many rows changed."""
    added, changed, removed = (int(result.get(k) or 0) for k in ("added", "changed", "removed"))
    return {"channel": account["channel"], "accounts": [account["account_id"]],
            "window": list(window), "changed_sales_dates": list(changed_dates),
            "rows_changed": added + changed + removed, "added": added, "changed": changed, "removed": removed,
            "rows_loaded": int(result.get("rows_loaded") or 0)}


def account_fees_extra(account: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    return {"channel": account["channel"], "accounts": [account["account_id"]],
            "periods": [list(p) for p in result.get("fee_periods") or []],
            "rows": int(result.get("account_fee_rows") or 0), "amount": int(result.get("account_fees") or 0)}


def channel_assets(channel: Channel) -> list[Asset]:
    """The Assets the load of ``channel`` updates (its ``outlets``)."""
    return [ASSETS[name]() for name in channel.assets]


def attach_extras(context: Mapping[str, Any], channel: Channel, account: Mapping[str, Any], window: Sequence[str],
                  result: Mapping[str, Any], changed_dates: Sequence[str]) -> None:
    """Set the extra of this load's events (emitted by Airflow when the task succeeds)."""
    events = context["outlet_events"]
    events[order_lines_asset()].extra = order_lines_extra(account, window, result, changed_dates)
    if channel.loads_account_fees:
        events[account_fees_asset()].extra = account_fees_extra(account, result)


ASSETS = {ORDER_LINES_NAME: order_lines_asset, ACCOUNT_FEES_NAME: account_fees_asset}
