"""Route leases: which account's run holds which egress route of a portal, and its shared browser session.

A route carries one signed-on seller of a portal at a time (the live portals sign the others out), so a
run's first browser task of an account leases a free route and its last releases it
(``sales.route_leases``, primary key (portal, route): two holders of one route cannot exist). A lease
is held across tasks, so it is a row, not a transaction or session lock: every task that uses it renews
it (``expires_at``), and one whose holder stopped renewing it (the task was killed, the worker died) is
expired and is *reaped* by the next task that asks for a route, which then closes its browser session.

Every statement is one short transaction of its own (autocommit connections are fine).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

COLUMNS = ("portal, route, channel, account_id, holder, webdriver_url, session_id, relay_pid, leased_at, "
           "expires_at")


@dataclass(frozen=True)
class Lease:
    portal: str
    route: str
    channel: str
    account_id: str
    holder: str
    webdriver_url: str | None
    session_id: str | None
    relay_pid: int | None
    leased_at: dt.datetime
    expires_at: dt.datetime


def _lease(row) -> Lease:
    return Lease(*row)


def reap_expired(conn: "psycopg.Connection", portal: str) -> list[Lease]:
    """Remove the portal's expired leases and return them (the caller closes their sessions)."""
    with conn.transaction():
        rows = conn.execute(f"DELETE FROM sales.route_leases WHERE portal = %s AND expires_at < now() "
                            f"RETURNING {COLUMNS}", (portal,)).fetchall()
    return [_lease(r) for r in rows]


def held_by(conn: "psycopg.Connection", *, portal: str, channel: str, account_id: str) -> Lease | None:
    """The lease the account holds on the portal now, whoever holds it."""
    row = conn.execute(f"SELECT {COLUMNS} FROM sales.route_leases WHERE portal = %s AND channel = %s "
                       "AND account_id = %s", (portal, channel, account_id)).fetchone()
    return _lease(row) if row else None


def lease_route(conn: "psycopg.Connection", *, portal: str, routes: Sequence[str], channel: str, account_id: str,
                holder: str, ttl_seconds: int, prefer: str | None = None) -> Lease | None:
    """The account's lease for ``holder``: the one it holds already (renewed), else a free route
    (``prefer`` first: the account's cookies and clearance were made there), else None (all busy).

    The lease of another run of the same account counts as busy: that run's browser has the
    account's profile and session."""
    current = held_by(conn, portal=portal, channel=channel, account_id=account_id)
    if current is not None:
        if current.holder != holder:
            return None
        return renew(conn, current, ttl_seconds)
    ordered = ([prefer] if prefer in routes else []) + [r for r in routes if r != prefer]
    for route in ordered:
        with conn.transaction():
            row = conn.execute(
                f"INSERT INTO sales.route_leases (portal, route, channel, account_id, holder, expires_at) "
                f"VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s)) ON CONFLICT DO NOTHING "
                f"RETURNING {COLUMNS}", (portal, route, channel, account_id, holder, ttl_seconds)).fetchone()
        if row is not None:
            return _lease(row)
        again = held_by(conn, portal=portal, channel=channel, account_id=account_id)
        if again is not None:  # a sibling task of the account won the race on another route
            return again if again.holder == holder else None
    return None


def renew(conn: "psycopg.Connection", lease: Lease, ttl_seconds: int) -> Lease | None:
    """Extend the lease; None when it is no longer the holder's (it expired and was reaped)."""
    with conn.transaction():
        row = conn.execute(f"UPDATE sales.route_leases SET expires_at = now() + make_interval(secs => %s) "
                           f"WHERE portal = %s AND route = %s AND holder = %s AND account_id = %s "
                           f"RETURNING {COLUMNS}",
                           (ttl_seconds, lease.portal, lease.route, lease.holder, lease.account_id)).fetchone()
    return _lease(row) if row else None


def record_session(conn: "psycopg.Connection", lease: Lease, *, webdriver_url: str, session_id: str,
                   relay_pid: int | None = None) -> Lease | None:
    """The shared browser session the lease's tasks attach to."""
    with conn.transaction():
        row = conn.execute(f"UPDATE sales.route_leases SET webdriver_url = %s, session_id = %s, relay_pid = %s "
                           f"WHERE portal = %s AND route = %s AND holder = %s RETURNING {COLUMNS}",
                           (webdriver_url, session_id, relay_pid, lease.portal, lease.route,
                            lease.holder)).fetchone()
    return _lease(row) if row else None


def release(conn: "psycopg.Connection", lease: Lease) -> bool:
    """End the lease (the run's last browser task, or a failure); False when it was already gone."""
    with conn.transaction():
        gone = conn.execute("DELETE FROM sales.route_leases WHERE portal = %s AND route = %s AND holder = %s",
                            (lease.portal, lease.route, lease.holder)).rowcount
    return bool(gone)


def last_route(conn: "psycopg.Connection", *, channel: str, account_id: str) -> str | None:
    """The route of the account's newest attempt that had one (its cookies were made there)."""
    row = conn.execute("SELECT route FROM sales.collection_runs WHERE channel = %s AND account_id = %s "
                       "AND route IS NOT NULL ORDER BY id DESC LIMIT 1", (channel, account_id)).fetchone()
    return row[0] if row else None


def leases(conn: "psycopg.Connection", portal: str | None = None) -> list[Lease]:
    """Every lease now (of one portal), by route."""
    rows = conn.execute(f"SELECT {COLUMNS} FROM sales.route_leases WHERE %(portal)s::text IS NULL "
                        "OR portal = %(portal)s ORDER BY portal, route", {"portal": portal}).fetchall()
    return [_lease(r) for r in rows]
