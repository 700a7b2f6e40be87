"""What the warehouse keeps of the alerts: when an account blocked by a seller's action was last alerted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

# Whether a blocked account's alert is due: never alerted for this reason, alerted before a later
# successful collection (blocked anew), or last alerted longer ago than the re-alert period. The
# period has a 5 % grace, so a daily run that starts a few minutes earlier than yesterday's re-alerts.
_BLOCKED_ALERT_DUE = """
SELECT b.last_alerted_at, b.blocked_since,
       EXISTS (SELECT 1 FROM sales.collection_runs r
               WHERE r.channel = b.channel AND r.account_id = b.account_id AND r.status = 'success'
                 AND r.finished_at > b.last_alerted_at) AS collected_since,
       b.last_alerted_at <= now() - make_interval(secs => %(hours)s * 3600 * 0.95) AS period_over
FROM sales.blocked_alerts b
WHERE b.channel = %(channel)s AND b.account_id = %(account)s AND b.reason = %(reason)s
"""
_BLOCKED_ALERT_SENT = """
INSERT INTO sales.blocked_alerts AS b (channel, account_id, reason) VALUES (%(channel)s, %(account)s, %(reason)s)
ON CONFLICT (channel, account_id, reason) DO UPDATE SET
    blocked_since = CASE WHEN %(anew)s THEN now() ELSE b.blocked_since END,
    alerts = CASE WHEN %(anew)s THEN 1 ELSE b.alerts + 1 END,
    last_alerted_at = now()
"""


@dataclass(frozen=True)
class BlockedAlert:
    """The last alert of an account blocked for one reason (``sales.blocked_alerts``)."""

    last_alerted_at: dt.datetime
    blocked_since: dt.datetime
    collected_since: bool   # a successful collection after that alert
    period_over: bool       # longer ago than the re-alert period


def last_blocked_alert(conn: "psycopg.Connection", *, channel: str, account_id: str, reason: str,
                       realert_hours: float) -> BlockedAlert | None:
    """The last alert of the account for ``reason``, or None when it was never alerted for it."""
    row = conn.execute(_BLOCKED_ALERT_DUE, {"channel": channel, "account": account_id, "reason": reason,
                                            "hours": realert_hours}).fetchone()
    return BlockedAlert(*row) if row is not None else None


def remember_blocked_alert(conn: "psycopg.Connection", *, channel: str, account_id: str, reason: str,
                           anew: bool) -> None:
    """Note that the account's alert for ``reason`` went out now (``anew``: it starts a new blocked spell)."""
    conn.execute(_BLOCKED_ALERT_SENT, {"channel": channel, "account": account_id, "reason": reason, "anew": anew})
