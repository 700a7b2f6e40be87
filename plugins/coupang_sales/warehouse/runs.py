"""Reading the audit of collection attempts (``sales.collection_runs``), the accounts and the cursors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

_LAST_ATTEMPTS = """
SELECT account_id, status, reason, message, rows_extracted, rows_loaded, window_start, window_end,
       details, attempts, route, route_wait_seconds
FROM (
    SELECT *, count(*) OVER (PARTITION BY account_id) AS attempts,
           row_number() OVER (PARTITION BY account_id ORDER BY finished_at DESC, id DESC) AS newest
    FROM sales.collection_runs WHERE channel = %s AND run_id = %s
) attempts WHERE newest = 1
"""


@dataclass(frozen=True)
class LastAttempt:
    """The newest recorded attempt of an account in one DAG run, and how many it made."""

    account_id: str
    status: str
    reason: str | None
    message: str | None
    rows_extracted: int | None
    rows_loaded: int | None
    window_start: dt.date
    window_end: dt.date
    details: dict[str, Any] | None
    attempts: int
    route: str | None = None               # the egress route its browser left from
    route_wait_seconds: int | None = None  # how long the run waited for that route


def last_attempts(conn: "psycopg.Connection", *, channel: str, run_id: str) -> dict[str, LastAttempt]:
    """account id -> its newest attempt in the DAG run ``run_id`` of ``channel``."""
    return {row[0]: LastAttempt(*row) for row in conn.execute(_LAST_ATTEMPTS, (channel, run_id)).fetchall()}


def account_conn_id(conn: "psycopg.Connection", *, channel: str, account_id: str) -> str | None:
    """The Airflow connection of an account in ``sales.accounts``, or None when it is not there."""
    row = conn.execute("SELECT conn_id FROM sales.accounts WHERE channel = %s AND account_id = %s",
                       (channel, account_id)).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Cursor:
    channel: str
    account_id: str
    stream: str
    collected_through: dt.date
    updated_at: dt.datetime
    updated_by: str | None


def collection_cursors(conn: "psycopg.Connection", *, channel: str | None = None,
                       account_id: str | None = None) -> list[Cursor]:
    """The cursors (``sales.collection_cursors``), of one channel or account when named."""
    rows = conn.execute(
        "SELECT channel, account_id, stream, collected_through, updated_at, updated_by "
        "FROM sales.collection_cursors WHERE (%(channel)s::text IS NULL OR channel = %(channel)s) "
        "AND (%(account)s::text IS NULL OR account_id = %(account)s) ORDER BY channel, account_id, stream",
        {"channel": channel, "account": account_id}).fetchall()
    return [Cursor(*row) for row in rows]
