"""Every account's collection state, as the status page and the freshness alerts read it (no Airflow here).

The state is derived in the warehouse by ``sales.collection_status(today)`` (migrations 0003, 0004, 0007)
from ``sales.accounts`` (with the seller's name), ``sales.account_status``, the one-row-per-account
summary that a trigger keeps in step with ``sales.collection_runs``, and ``sales.collection_cursors`` (the last date
collected without a gap: ``collected_through``, which freshness counts from; ``collected_until`` is
the newest window end of any success). So a page of 10,000 accounts is one query over
10,000 summary rows, filtered, sorted and cut in the warehouse.

An account is ``expiring`` (else ``ok``) while its newest run's sub-account check warned that the
sub-account expires within the check's ``warn_days`` (``record_expiry_warning``, table
``sales.sub_account_expiry``): the page shows the date.

Sorting: an account never collected has no freshness and no last success; it counts as the stalest
(first when sorting by freshness from the stalest, or by last success from the oldest), never as
missing data pushed to the end.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coupang_sales.errors import CATEGORIES

if TYPE_CHECKING:
    import psycopg

STATES = ("ok", "expiring", "blocked", "failing", "stale", "new", "paused")
CHANNELS = ("coupang_rocket", "coupang_jet")
# sort key -> ORDER BY expression (a fixed text: the key only picks one); account id breaks ties.
SORTS = {
    "account": "account_id",
    "seller": "seller_name",
    "channel": "channel",
    "state": "array_position(ARRAY['blocked', 'failing', 'stale', 'expiring', 'new', 'ok', 'paused'], state)",
    "freshness": "freshness_days",
    "last_success": "last_success_at",
    "last_attempt": "last_finished_at",
    "attempts": "run_attempts",
    "route": "last_route",
}
# Where NULL sorts: never collected is the stalest (the largest freshness, the oldest success); else last.
_NULLS_ARE = {"freshness": "largest", "last_success": "smallest", "last_attempt": "smallest"}


def _nulls(sort: str, descending: bool) -> str:
    where = _NULLS_ARE.get(sort)
    first = (where == "largest" and descending) or (where == "smallest" and not descending)
    return "NULLS FIRST" if first else "NULLS LAST"
MAX_PAGE_SIZE = 500
EXPIRING_ACTION = "The master account clicks '연장하기' at 서플라이어허브 > 부계정 관리 before {expires}."

_COLUMNS = ("channel", "account_id", "jet_version", "active", "state", "last_status", "last_reason",
            "last_message", "last_finished_at", "run_attempts", "last_dag_id", "last_run_id", "last_task_id",
            "last_map_index", "last_try_number", "last_success_at", "last_success_window_start",
            "last_success_window_end", "collected_through", "freshness_days", "stale_after_days",
            "over_threshold", "jet_version_since", "collected_until", "seller_name", "last_route",
            "sub_account_expires")
_SELECT = ", ".join(_COLUMNS)

# One statement: the channel's accounts once (a CTE), the count per state over them, and the page
# cut from them. Filters are all present as parameters; a NULL parameter means "any". The newest
# sales date and the newest person-assisted sign-on (sales.sign_ins) are looked up for the rows of the
# page only (one index probe each).
_PAGE = f"""
WITH listed AS MATERIALIZED (
    SELECT {_SELECT} FROM sales.collection_status(%(today)s)
    WHERE (%(channels)s::text[] IS NULL OR channel = ANY(%(channels)s::text[]))
), counts AS (
    SELECT coalesce(jsonb_object_agg(state, n), '{{{{}}}}') AS counts
    FROM (SELECT state, count(*) AS n FROM listed GROUP BY state) per_state
), page AS (
    SELECT *, count(*) OVER () AS total FROM listed
    WHERE (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
      AND (%(search)s::text IS NULL OR account_id ILIKE '%%' || %(search)s::text || '%%'
           OR seller_name ILIKE '%%' || %(search)s::text || '%%')
    ORDER BY {{order}} {{direction}} {{nulls}}, account_id {{direction}}
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT page.*, (SELECT max(o.sales_date) FROM sales.order_lines o
                WHERE o.channel = page.channel AND o.account_id = page.account_id) AS newest_sales_date,
       signed.completed_by AS signed_in_by, signed.completed_at AS signed_in_at,
       counts.counts
FROM counts LEFT JOIN page ON true
LEFT JOIN LATERAL (SELECT s.completed_by, s.completed_at FROM sales.sign_ins s  -- migration 0005
                   WHERE s.channel = page.channel AND s.account_id = page.account_id
                   ORDER BY s.completed_at DESC LIMIT 1) signed ON true
ORDER BY {{order}} {{direction}} {{nulls}}, account_id {{direction}}
"""


@dataclass(frozen=True)
class StatusQuery:
    """What the page asks for: filters, sort and the page (1-based)."""

    channels: tuple[str, ...] | None = None
    states: tuple[str, ...] | None = None
    search: str | None = None
    sort: str = "state"
    descending: bool = False
    page: int = 1
    page_size: int = 50

    def __post_init__(self):
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {self.sort!r}")
        for name, allowed, given in (("channel", CHANNELS, self.channels), ("state", STATES, self.states)):
            unknown = sorted(set(given or ()) - set(allowed))
            if unknown:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {', '.join(unknown)}")
        if self.page < 1 or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page must be >= 1 and page_size within 1..{MAX_PAGE_SIZE}")


def action_for(channel: str, account_id: str, reason: str | None) -> str | None:
    """The person's action for a blocked or failing account (the sign-in command named for it)."""
    if reason is None:
        return None
    action = CATEGORIES.get(reason, (False, "Read the task log."))[1]
    return action.replace("CHANNEL ACCOUNT", f"{channel} {account_id}")


def account_statuses(conn: "psycopg.Connection", query: StatusQuery, *, today: dt.date) -> dict[str, Any]:
    """One page of accounts with their state, the total matching, and the count per state."""
    params = {"today": today, "channels": list(query.channels) if query.channels else None,
              "states": list(query.states) if query.states else None,
              "search": (query.search or "").strip() or None,
              "limit": query.page_size, "offset": (query.page - 1) * query.page_size}
    if params["search"]:  # ILIKE's own wildcards in an account id or a seller's name are literal characters
        params["search"] = params["search"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    from psycopg import sql

    with conn.cursor() as cur:
        cur.execute(sql.SQL(_PAGE).format(order=sql.SQL(SORTS[query.sort]),
                                          direction=sql.SQL("DESC" if query.descending else "ASC"),
                                          nulls=sql.SQL(_nulls(query.sort, query.descending))), params)
        names = [d.name for d in cur.description]
        found = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    counts = found[0]["counts"] if found else {}
    rows = [row for row in found if row["account_id"] is not None]  # no page row: counts only
    total = rows[0]["total"] if rows else 0
    for row in rows:
        del row["total"], row["counts"]
        row["action"] = action_for(row["channel"], row["account_id"], row["last_reason"]) \
            if row["state"] in ("blocked", "failing") else None
        if row["state"] == "expiring":
            row["action"] = EXPIRING_ACTION.format(expires=row["sub_account_expires"])
    return {"rows": rows, "total": total, "counts": {state: counts.get(state, 0) for state in STATES},
            "page": query.page, "page_size": query.page_size, "today": today}


def record_expiry_warning(conn: "psycopg.Connection", *, channel: str, account_id: str, expires: dt.date,
                          warn_days: int | None, run_id: str | None) -> None:
    """Keep the sub-account check's warning (its expiry date, in the run that saw it): the account is
    ``expiring`` while that run is its newest."""
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sales.sub_account_expiry (channel, account_id, expires, warn_days, run_id)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (channel, account_id) DO UPDATE
            SET expires = excluded.expires, warn_days = excluded.warn_days, run_id = excluded.run_id,
                warned_at = now()
            """, (channel, account_id, expires, warn_days, run_id))


_BECAME_STALE = """
UPDATE sales.account_status s SET stale_alerted_at = now()
FROM sales.collection_status(%(today)s) c
WHERE s.channel = c.channel AND s.account_id = c.account_id AND c.channel = %(channel)s
  AND c.active AND c.over_threshold AND s.stale_alerted_at IS NULL
RETURNING c.account_id, c.state, c.last_reason, c.collected_through, c.freshness_days, c.stale_after_days
"""
_RECOVERED = """
UPDATE sales.account_status s SET stale_alerted_at = NULL
FROM sales.collection_status(%(today)s) c
WHERE s.channel = c.channel AND s.account_id = c.account_id AND c.channel = %(channel)s
  AND NOT coalesce(c.over_threshold, false) AND s.stale_alerted_at IS NOT NULL
RETURNING c.account_id, c.state, c.last_reason, c.collected_through, c.freshness_days, c.stale_after_days
"""


@dataclass(frozen=True)
class FreshnessChange:
    account_id: str
    became: str            # 'stale' or 'recovered'
    state: str
    reason: str | None
    collected_through: dt.date | None
    freshness_days: int | None
    stale_after_days: int


def freshness_changes(conn: "psycopg.Connection", *, channel: str, today: dt.date, send) -> list[FreshnessChange]:
    """Mark the channel's accounts that went over (or back under) their freshness threshold since the
    last check, and call ``send(change)`` for each, in one transaction: a send that raises rolls the
    marks back, so the alert goes out at the next check instead of never. An account is alerted once
    when it becomes stale and once when it recovers, however many runs see it in between. Paused
    accounts are not alerted stale (their recovery, once active again, is), nor accounts never
    collected (their blocked or failing attempts alert by themselves)."""
    changes = []
    with conn.transaction(), conn.cursor() as cur:
        params = {"today": today, "channel": channel}
        stale = cur.execute(_BECAME_STALE, params).fetchall()
        recovered = cur.execute(_RECOVERED, params).fetchall()
        for became, found in (("stale", stale), ("recovered", recovered)):
            changes += [FreshnessChange(account_id, became, state, reason, through, days, threshold)
                        for account_id, state, reason, through, days, threshold in found]
        for change in sorted(changes, key=lambda c: (c.became, c.account_id)):
            send(change)
    return changes
