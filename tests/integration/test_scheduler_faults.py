"""Through a real scheduler (airflow standalone, ``scheduler_stack``): two runs of one window at once,
one of their task processes killed in the middle of its load, leave the rows of one."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest
from load_lock import LoadLock
from scheduler_stack import (  # noqa: F401 (fixtures)
    DAG_ID,
    EXPECTED,
    metadata,
    module_warehouse,
    order_lines,
    portal,
    scheduler,
    warehouse,
)

pytestmark = pytest.mark.integration

# What one run for 6 Jan loads: it reads the invoices up to today (8 Jan) and derives every line
# their facts touch, so 200000015 is restated to 0 by the 7 Jan 반출 and the 7 Jan order is
# stored too: the same rows as the whole backfill.
EXPECTED_6_JAN = EXPECTED


def trigger(airflow, run_id: str, day: str) -> None:
    """A manual run collecting the window ending ``day``, as from the UI's trigger form."""
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps({"date": day}))


def wait_for_runs(airflow, run_ids: list[str], timeout: float = 600) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = dict(metadata(airflow, "SELECT run_id, state FROM dag_run WHERE dag_id = %s"))
        if all(states.get(run_id) in ("success", "failed") for run_id in run_ids):
            return {run_id: states[run_id] for run_id in run_ids}
        time.sleep(2)
    pytest.fail(f"runs {run_ids} not finished within {timeout:g} s; scheduler log: {airflow.log_path}")


def load_tries(airflow, run_id: str) -> list[tuple]:
    return metadata(airflow, "SELECT try_number, state FROM task_instance WHERE dag_id = %s "
                             f"AND task_id = 'collect.load' AND run_id = '{run_id}'")


def logged_changes(conn) -> list[tuple]:
    return conn.execute("SELECT order_id, change, count(*) FROM sales.order_line_changes "
                        "GROUP BY order_id, change ORDER BY order_id, change").fetchall()


def test_two_runs_at_once_one_worker_killed_in_its_load_leave_the_rows_of_one(scheduler, warehouse,
                                                                          module_warehouse):
    """Two runs of the same window reach their load together (one inside its transaction, the other
    waiting on the account's lock); the first load's task process gets SIGKILL there. Airflow retries
    that load; both runs succeed, and the warehouse holds one copy: the killed transaction left nothing,
    and whichever load came second found the rows and changed nothing."""
    waiting: list[list[int]] = []
    killed: list[int] = []

    def kill_the_first(pids: list[int]) -> None:
        waiting.append(pids)
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])
        psutil.Process(pids[0]).wait(30) if psutil.pid_exists(pids[0]) else None

    lock = LoadLock(module_warehouse[1], kill_the_first, loads=2)
    lock.start()
    trigger(scheduler, "overlap_a", "2026-01-06")
    trigger(scheduler, "overlap_b", "2026-01-06")
    lock.join(600)
    assert lock.error is None, lock.error
    assert len(set(waiting[0])) == 2, "two loads were in flight at once"
    assert killed and not psutil.pid_exists(killed[0]), "the worker's task process is gone"
    assert wait_for_runs(scheduler, ["overlap_a", "overlap_b"]) == {"overlap_a": "success", "overlap_b": "success"}
    tries = sorted(load_tries(scheduler, run_id) for run_id in ("overlap_a", "overlap_b"))
    assert tries == [[(1, "success")], [(2, "success")]], "the killed load ran again, as a retry"
    assert order_lines(warehouse) == EXPECTED_6_JAN
    assert logged_changes(warehouse) == [(order_id, "added", 1) for order_id, *_ in EXPECTED_6_JAN], \
        "each line added once: the killed transaction left nothing, the later load changed nothing"
    successes = warehouse.execute("SELECT run_id FROM sales.collection_runs WHERE status = 'success' "
                                  "ORDER BY run_id").fetchall()
    assert successes == [("overlap_a",), ("overlap_b",)]
