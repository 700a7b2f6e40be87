"""The warehouse session itself: its settings (name, bounds) and who holds the locks a load waits for."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

_CONFIGURE = ("SELECT set_config('application_name', %s, false), set_config('lock_timeout', %s, false), "
              "set_config('statement_timeout', %s, false)")

# Locks other sessions hold that a load waits behind: on the tables of schema 'sales' in a mode
# that blocks writing (ROW EXCLUSIVE), and the advisory lock of the account's loads.
_LOCK_HOLDERS = """
SELECT CASE WHEN l.locktype = 'relation' THEN l.relation::regclass::text
            ELSE 'advisory lock ' || k.key || ' (a load of the same account)' END,
       l.mode, l.pid, a.application_name, a.state, date_trunc('second', now() - a.xact_start)
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
LEFT JOIN unnest(%(keys)s::text[]) AS k(key)
  ON l.locktype = 'advisory' AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext(k.key)::bigint
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.locktype = 'relation' AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                                               'AccessExclusiveLock')
        AND l.relation IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'sales'))
       OR k.key IS NOT NULL)
ORDER BY 1, l.pid
"""


def configure_session(conn: "psycopg.Connection", *, application_name: str, lock_timeout_seconds: float,
                      statement_timeout_seconds: float) -> None:
    """Name the session (``pg_stat_activity`` shows which worker holds what) and bound its waits
    (0 = no bound, PostgreSQL's meaning)."""
    conn.execute(_CONFIGURE, (application_name, f"{int(lock_timeout_seconds * 1000)}ms",
                              f"{int(statement_timeout_seconds * 1000)}ms"))


def lock_holders(conn: "psycopg.Connection", keys: tuple[str, ...] = ()) -> list[str]:
    """What other sessions hold now that a load of the accounts of ``keys`` (``account_lock_key``) waits
    behind: '<relation or load lock> (<mode>) held by pid N '<application>', <state> for <time>'."""
    rows = conn.execute(_LOCK_HOLDERS, {"keys": list(keys)}).fetchall()
    return [f"{what} ({mode}) held by pid {pid} '{app or ''}', {state or 'unknown state'}"
            + (f" for {held}" if held is not None else "") for what, mode, pid, app, state, held in rows]
