"""The warehouse as an Airflow hook: the postgres provider's connection, bounded, named, and its failures mapped.

The hook owns the I/O of the warehouse session: it connects (``coupang_warehouse`` by default), names
the session after the worker process, sets ``lock_timeout`` and ``statement_timeout``
(``timeouts()``), and turns a lost connection or a bound that was hit into a ``warehouse_error``
that names what held the locks (``errors()``). What runs in the session is ``coupang_sales.warehouse``'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from coupang_sales.config import settings
from coupang_sales.errors import CollectionError
from coupang_sales.warehouse.sessions import configure_session, lock_holders


def warehouse_timeouts() -> dict[str, float]:
    """The bounds of every warehouse session the tasks open, in seconds (0 = none, PostgreSQL's meaning).

    - ``COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS`` (default 120): the longest wait for one lock
      (another load of the same account, a migration, a ``LOCK TABLE`` in someone's open
      transaction). A load that waits longer fails as ``warehouse_error`` naming what holds
      the lock, and is retried.
    - ``COUPANG_WAREHOUSE_STATEMENT_TIMEOUT_SECONDS`` (default 900): the longest one statement
      may run; a year's range load of a large account takes well under a minute per statement.
    """
    config = settings()
    return {"lock_timeout": config.warehouse_lock_timeout_seconds,
            "statement_timeout": config.warehouse_statement_timeout_seconds}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


class WarehouseHook(PostgresHook):
    """The sales warehouse: a psycopg (v3) connection in autocommit (each load opens its own transaction).

    Its ``application_name`` names the worker process (``coupang-sales pid 1234``), so an operator
    looking at ``pg_stat_activity`` knows which task holds a lock or a transaction; its
    ``lock_timeout`` and ``statement_timeout`` are ``warehouse_timeouts()``. A connection that cannot
    be made is a ``warehouse_error`` (retried) whose message names host and database, never the password.
    """

    default_conn_name = "coupang_warehouse"
    hook_name = "Coupang sales warehouse"

    def __init__(self, postgres_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)

    @property
    def conn_id(self) -> str:
        return getattr(self, self.conn_name_attr)

    def get_conn(self):
        timeouts = warehouse_timeouts()
        try:
            conn = super().get_conn()
            conn.autocommit = True
            configure_session(conn, application_name=f"coupang-sales pid {os.getpid()}",
                              lock_timeout_seconds=timeouts["lock_timeout"],
                              statement_timeout_seconds=timeouts["statement_timeout"])
        except Exception as exc:
            raise CollectionError("warehouse_error", f"cannot connect to warehouse '{self.conn_id}': "
                                  f"{type(exc).__name__}: {_first_line(exc)}") from exc
        return conn

    @contextlib.contextmanager
    def connected(self) -> Iterator[Any]:
        """A new connection, closed on the way out."""
        conn = self.get_conn()
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    @contextlib.contextmanager
    def errors(what: str, conn=None, *, lock_keys: tuple[str, ...] = ()) -> Iterator[None]:
        """Turn a lost or refused warehouse connection inside the block into ``warehouse_error``
        (retried: the transaction was rolled back, so the retry starts from the same state).

        So are the bounds of ``warehouse_timeouts()``: a lock waited for longer than
        ``lock_timeout`` (the message names what holds the locks a load needs, read from
        ``pg_locks`` on ``conn``, with the account's load lock of ``lock_keys``) and a statement
        that ran longer than ``statement_timeout``. Other database errors (a constraint, a type)
        are not transient and pass through.
        """
        import psycopg
        from psycopg import errors

        try:
            yield
        except errors.LockNotAvailable as exc:
            limit = warehouse_timeouts()["lock_timeout"]
            try:
                held = lock_holders(conn, lock_keys) if conn is not None else []
                holders = "; ".join(held) or "none any more (released since)"
            except Exception as inner:  # the error stays a lock timeout, whatever the look-up does
                holders = f"unknown ({type(inner).__name__})"
            context = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
            raise CollectionError("warehouse_error", f"{what}: waited longer than lock_timeout ({limit:g} s, "
                                  f"COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS) for a lock{context}; locks it needs "
                                  f"held now: {holders}; nothing was committed") from exc
        except errors.QueryCanceled as exc:
            limit = warehouse_timeouts()["statement_timeout"]
            raise CollectionError("warehouse_error", f"{what}: a statement ran longer than statement_timeout "
                                  f"({limit:g} s, COUPANG_WAREHOUSE_STATEMENT_TIMEOUT_SECONDS) or was cancelled "
                                  f"({_first_line(exc)}); nothing was committed") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise CollectionError("warehouse_error", f"{what}: the warehouse connection failed "
                                  f"({type(exc).__name__}: {_first_line(exc)}); nothing was committed") from exc


def warehouse_connection(conn_id: str = WarehouseHook.default_conn_name):
    """``WarehouseHook(conn_id).get_conn()``: a bounded, named connection the caller closes."""
    return WarehouseHook(conn_id).get_conn()
