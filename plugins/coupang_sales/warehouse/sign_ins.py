"""Person-assisted sign-ons in the warehouse (``sales.sign_ins``, migration 0005): the record of a
completed sign-on (who answered, when). The account's connection is ``warehouse.runs.account_conn_id``."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

_RECORD = """
INSERT INTO sales.sign_ins (channel, account_id, completed_at, completed_by, run_id, sms_steps, codes_asked)
VALUES (%(channel)s, %(account_id)s, coalesce(%(completed_at)s, now()), %(completed_by)s, %(run_id)s,
        %(sms_steps)s, %(codes_asked)s)
RETURNING id
"""
_LATEST = """
SELECT completed_at, completed_by, run_id, sms_steps, codes_asked FROM sales.sign_ins
WHERE channel = %s AND account_id = %s ORDER BY completed_at DESC, id DESC LIMIT 1
"""


def record_sign_in(conn: "psycopg.Connection", *, channel: str, account_id: str, completed_by: str | None,
                   run_id: str | None, sms_steps: int, codes_asked: int,
                   completed_at: dt.datetime | None = None) -> int:
    """Record a completed sign-on; returns its id."""
    return conn.execute(_RECORD, {"channel": channel, "account_id": account_id, "completed_at": completed_at,
                                  "completed_by": completed_by, "run_id": run_id, "sms_steps": sms_steps,
                                  "codes_asked": codes_asked}).fetchone()[0]


def latest_sign_in(conn: "psycopg.Connection", channel: str, account_id: str) -> dict[str, Any] | None:
    """The account's newest completed sign-on, or None."""
    row = conn.execute(_LATEST, (channel, account_id)).fetchone()
    if row is None:
        return None
    return dict(zip(("completed_at", "completed_by", "run_id", "sms_steps", "codes_asked"), row, strict=True))
