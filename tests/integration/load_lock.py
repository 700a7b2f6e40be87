"""Stops collection loads inside their transaction, to act on them there (kill the worker, stop PostgreSQL)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable


class LoadLock(threading.Thread):
    """Holds a SHARE lock on ``sales.order_lines`` from construction, so a load stops inside its
    transaction (after its COPY and change log, at the DELETE) and any other load of the
    same account waits behind it on the advisory lock. Once ``loads`` loads are waiting,
    calls ``action(pids)`` with the worker pids their connections name
    (``application_name`` 'coupang-sales pid N'), then releases the lock.

    ``error`` holds whatever went wrong in the thread, for the test to raise.
    """

    def __init__(self, dsn: str, action: Callable[[list[int]], None], *, loads: int = 1, timeout: float = 300):
        super().__init__(daemon=True)
        import psycopg

        self.dsn, self.action, self.loads, self.timeout = dsn, action, loads, timeout
        self.error: BaseException | None = None
        self.holder = psycopg.connect(dsn)
        self.holder.execute("LOCK TABLE sales.order_lines IN SHARE MODE")

    @staticmethod
    def waiting_loads(conn) -> list[int]:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'coupang-sales pid %%' "
            "AND wait_event_type = 'Lock' ORDER BY backend_start").fetchall()
        return [int(name.rsplit(" ", 1)[1]) for (name,) in rows]

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.dsn, autocommit=True) as watch:
                deadline = time.monotonic() + self.timeout
                while len(pids := self.waiting_loads(watch)) < self.loads:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{len(pids)} of {self.loads} load(s) reached the lock "
                                           f"within {self.timeout:g} s")
                    time.sleep(0.1)
            self.action(pids)
        except BaseException as exc:  # raised by the test
            self.error = exc
        finally:
            with contextlib.suppress(Exception):
                self.holder.close()
