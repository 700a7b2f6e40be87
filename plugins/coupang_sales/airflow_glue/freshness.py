"""Freshness alerts: one when an account's collected dates fall behind its channel's threshold, one when
they catch up again, sent through the collection alerts (``CollectionAlertNotifier``).

Checked by the ``report`` task at the end of every run of the channel's DAG (docs/decisions.md says why
there); the alerted state lives in the warehouse (``sales.account_status.stale_alerted_at``), so any
number of runs, or two runs at once, send each alert once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

STALE_CATEGORY = "collection_stale"
RECOVERED_CATEGORY = "collection_fresh_again"


def freshness_message(channel: str, change) -> tuple[str, str, str]:
    """Category, detail and action of the alert for one ``FreshnessChange``."""
    from coupang_sales.warehouse.status import action_for

    through = change.collected_through.isoformat()
    if change.became == "recovered":
        return (RECOVERED_CATEGORY,
                f"{change.account_id}: collected through {through} ({change.freshness_days} day(s) ago), "
                f"within the {change.stale_after_days}-day threshold of {channel} again.",
                "Nothing: the account is collected again.")
    behind = f"collected through {through}, {change.freshness_days} day(s) ago"
    cause = f"; its last attempt is {change.state} ({change.reason})" if change.reason else ""
    action = action_for(channel, change.account_id, change.reason) if change.reason else \
        "Check that the channel's DAG runs (paused DAG, scheduler, pools) and open the account's last task."
    return (STALE_CATEGORY,
            f"{change.account_id}: {behind}, over the {change.stale_after_days}-day threshold of {channel}{cause}.",
            action)


def send_freshness_alerts(context: Mapping[str, Any], channel: str, conn) -> list:
    """Check the channel's accounts and alert each change of freshness once; returns the changes."""
    from coupang_sales.airflow_glue.alerts import warning_context
    from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier
    from coupang_sales.airflow_glue.window import seoul_today
    from coupang_sales.warehouse.status import freshness_changes

    def send(change) -> None:
        category, detail, action = freshness_message(channel, change)
        CollectionAlertNotifier(warning=True)(warning_context(  # as Airflow calls a callback: templated first
            context, {"channel": channel, "account_id": change.account_id}, detail=detail, category=category,
            action=action))

    changes = freshness_changes(conn, channel=channel, today=seoul_today(), send=send)
    if changes:
        log.info("freshness: %s", ", ".join(f"{c.account_id} {c.became}" for c in changes))
    return changes
