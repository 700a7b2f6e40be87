"""Through a real scheduler (airflow standalone): backfill by date, a worker killed mid-load, two runs at once.

These are the tests that go through Airflow's scheduler, executor and API server
instead of ``dag.test()``: runs are queued by the CLI exactly as the README tells an
operator to, picked up by the scheduler of ``airflow standalone`` and run by its
LocalExecutor, each task in its own supervised process. One standalone serves the
module (it takes a minute to start); each test starts from an empty warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import time

import psutil
import pytest
from load_lock import LoadLock

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
DAG_ID = "coupang_rocket_sales"


def line(kind: str, po: str, qty: int, moved: str) -> dict:
    return {"kind": kind, "po_no": po, "sku_id": f"7{po[-4:]}", "sku_name": f"상품 {po}", "moved_date": moved,
            "center": "이천1", "qty": qty, "unit_price": 11_000, "unit_supply": 10_000, "unit_tax": 1_000}


SCENARIO = {
    "today": "2026-01-08",
    "rocket": {"accounts": [{
        "account_id": "V00000100", "vendor_name": "주식회사 백필", "username": "sub_backfill",
        "password": "pw-sub_backfill", "sub_account_expires": "2026-12-31", "invoices": [
            {"invoice_no": "31000005", "written_date": "2026-01-05", "tax_invoice_confirmed": "2026-01-06",
             "lines": [line("발주", "200000005", 2, "2026-01-04"), line("발주", "200000015", 1, "2026-01-04")]},
            {"invoice_no": "31000006", "written_date": "2026-01-06", "tax_invoice_confirmed": "2026-01-07",
             "lines": [line("발주", "200000006", 3, "2026-01-05")]},
            # 7 Jan: a new order, and the full return of a 5 Jan order (restates 5 Jan to 0)
            {"invoice_no": "31000007", "written_date": "2026-01-07", "tax_invoice_confirmed": "2026-01-08",
             "lines": [line("발주", "200000007", 1, "2026-01-06"), line("반출", "200000015", -1, "2026-01-07")]},
        ]}]},
    "jet": {"accounts": []},
}
EXPECTED = [
    ("200000005", D("2026-01-05"), 2, 22_000, False),
    ("200000006", D("2026-01-06"), 3, 33_000, False),
    ("200000007", D("2026-01-07"), 1, 11_000, False),
    ("200000015", D("2026-01-05"), 0, 0, True),
]
# The backfill recipe of the README: the first and last Seoul date, the last one up to its end.
BACKFILL = ("backfill", "create", "--dag-id", DAG_ID,
            "--from-date", "2026-01-05T00:00+09:00", "--to-date", "2026-01-07T23:59+09:00")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture(scope="module")
def module_warehouse(scratch_database):
    """The module's warehouse database (the scheduler's tasks keep its connection for the module)."""
    import psycopg

    from coupang_sales.warehouse import migrate

    with scratch_database("t_scheduler_module") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        yield conn, dsn


@pytest.fixture
def warehouse(module_warehouse):
    """The module's warehouse, emptied of collected rows and audit before each test."""
    conn, _ = module_warehouse
    conn.execute("TRUNCATE sales.order_lines, sales.order_line_changes, sales.collection_runs, sales.account_fees")
    return conn


@pytest.fixture(scope="module")
def scheduler(module_warehouse, pg_server, portal, tmp_path_factory):
    """airflow standalone with its metadata in PostgreSQL (as deployed), the DAG unpaused."""
    import os

    conn, dsn = module_warehouse
    metadata = local_stack.postgres_metadata_url(pg_server.get_uri(), "airflow_backfill_test")
    env = {**os.environ, **local_stack.airflow_env(tmp_path_factory.mktemp("airflow"), metadata_url=metadata),
           "COUPANG_TODAY": SCENARIO["today"],
           "AIRFLOW_CONN_COUPANG_WAREHOUSE": local_stack.connection_json(dsn),
           # only the runs the tests queue: no scheduled run for the real today once the DAG is unpaused
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
           **local_stack.register_scenario_accounts(conn, SCENARIO, portal)}
    airflow = local_stack.StandaloneAirflow(env, port=free_port())
    airflow.prepare(pool_slots=2)  # two browsers at once: the backfill's dates overlap
    airflow.cli("dags", "unpause", DAG_ID)
    airflow.start()
    yield airflow
    airflow.stop()
    import psycopg

    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute('DROP DATABASE IF EXISTS "airflow_backfill_test" WITH (FORCE)')


def metadata(airflow, query: str) -> list[tuple]:
    import psycopg

    url = airflow.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2", "postgresql")
    with psycopg.connect(url) as db:
        return db.execute(query, (DAG_ID,)).fetchall()


def dag_runs(airflow) -> list[tuple[str, str]]:
    """(logical date in UTC, state) of the DAG's runs, read from the metadata database."""
    rows = metadata(airflow, "SELECT logical_date, state FROM dag_run WHERE dag_id = %s ORDER BY logical_date")
    return [(day.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"), state) for day, state in rows]


def wait_for_successes(airflow, warehouse, count: int, timeout: float = 600) -> None:
    """Until the warehouse holds ``count`` successful collections and the backfill is complete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = warehouse.execute("SELECT count(*) FROM sales.collection_runs WHERE status = 'success'").fetchone()[0]
        runs = dag_runs(airflow)
        open_backfills = metadata(airflow, "SELECT id FROM backfill WHERE dag_id = %s AND completed_at IS NULL")
        if done >= count and runs and not open_backfills:
            return
        if any(state == "failed" for _, state in runs):
            failures = warehouse.execute("SELECT reason, message FROM sales.collection_runs "
                                         "WHERE status <> 'success'").fetchall()
            pytest.fail(f"a backfill run failed: {runs}; recorded failures: {failures}; "
                        f"scheduler log: {airflow.log_path}")
        time.sleep(3)
    pytest.fail(f"backfill not finished within {timeout:g} s: runs {dag_runs(airflow)}, "
                f"{done} successful collections; scheduler log: {airflow.log_path}")


def order_lines(conn) -> list[tuple]:
    return conn.execute("SELECT order_id, sales_date, quantity, payment_amount, is_cancelled "
                        "FROM sales.order_lines ORDER BY order_id").fetchall()


def test_backfill_by_date_through_the_scheduler_then_again_changes_nothing(scheduler, warehouse):
    scheduler.cli(*BACKFILL)
    wait_for_successes(scheduler, warehouse, 3)
    # one run per Seoul date, each at 06:00 Asia/Seoul (21:00 UTC the day before)
    assert dag_runs(scheduler) == [
        ("2026-01-04 21:00", "success"), ("2026-01-05 21:00", "success"), ("2026-01-06 21:00", "success")]
    windows = warehouse.execute("SELECT window_end FROM sales.collection_runs ORDER BY window_end").fetchall()
    assert [w for (w,) in windows] == [D("2026-01-05"), D("2026-01-06"), D("2026-01-07")]
    assert order_lines(warehouse) == EXPECTED
    changes = warehouse.execute("SELECT count(*) FROM sales.order_line_changes").fetchone()[0]

    scheduler.cli(*BACKFILL, "--reprocess-behavior", "completed")
    wait_for_successes(scheduler, warehouse, 6)
    assert order_lines(warehouse) == EXPECTED
    assert warehouse.execute("SELECT count(*) FROM sales.order_line_changes").fetchone()[0] == changes, \
        "re-running the backfill changed rows"
    listed = scheduler.cli("dags", "list-runs", DAG_ID, "-o", "json").stdout.strip().splitlines()[-1]
    report = json.loads(listed)  # the CLI's JSON is its last line, after any log lines
    assert len(report) == 3 and {run["state"] for run in report} == {"success"}


# --- a worker killed mid-load, and two runs at once ----------------------------------------

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


def test_a_worker_killed_during_the_load_is_retried_and_leaves_one_copy(scheduler, warehouse, module_warehouse):
    """SIGKILL to the task process while its load transaction is open; Airflow retries the task."""
    killed: list[int] = []

    def kill(pids: list[int]) -> None:
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])
        psutil.Process(pids[0]).wait(30) if psutil.pid_exists(pids[0]) else None

    lock = LoadLock(module_warehouse[1], kill)
    lock.start()
    trigger(scheduler, "killed_worker", "2026-01-06")
    lock.join(600)
    assert lock.error is None, lock.error
    assert killed and not psutil.pid_exists(killed[0]), "the worker's task process is gone"
    assert wait_for_runs(scheduler, ["killed_worker"]) == {"killed_worker": "success"}
    assert load_tries(scheduler, "killed_worker") == [(2, "success")], "the load ran again, as a retry"
    assert order_lines(warehouse) == EXPECTED_6_JAN
    assert logged_changes(warehouse) == [(order_id, "added", 1) for order_id, *_ in EXPECTED_6_JAN], \
        "each line added once: the killed transaction left nothing"


def test_two_runs_of_the_same_window_at_once_leave_the_rows_of_one(scheduler, warehouse, module_warehouse):
    """Both runs reach their load together (one waits on the other's lock); the result is one run's rows."""
    waiting: list[list[int]] = []
    lock = LoadLock(module_warehouse[1], waiting.append, loads=2)
    lock.start()
    trigger(scheduler, "overlap_a", "2026-01-06")
    trigger(scheduler, "overlap_b", "2026-01-06")
    lock.join(600)
    assert lock.error is None, lock.error
    assert len(set(waiting[0])) == 2, "two loads were in flight at once"
    assert wait_for_runs(scheduler, ["overlap_a", "overlap_b"]) == {"overlap_a": "success", "overlap_b": "success"}
    assert order_lines(warehouse) == EXPECTED_6_JAN
    assert logged_changes(warehouse) == [(order_id, "added", 1) for order_id, *_ in EXPECTED_6_JAN], \
        "the second load found the first one's rows and changed nothing"
    successes = warehouse.execute("SELECT run_id FROM sales.collection_runs WHERE status = 'success' "
                                  "ORDER BY run_id").fetchall()
    assert successes == [("overlap_a",), ("overlap_b",)]
