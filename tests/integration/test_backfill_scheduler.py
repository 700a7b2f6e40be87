"""`airflow backfill create` through a real scheduler (airflow standalone), re-run to show nothing changes.

This is the one test that goes through Airflow's scheduler, executor and API server
instead of ``dag.test()``: the runs are queued by the backfill CLI exactly as the README
tells an operator to, and picked up by the scheduler of ``airflow standalone``.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import pytest

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


@pytest.fixture
def scheduler(warehouse, pg_server, portal, tmp_path):
    """airflow standalone with its metadata in PostgreSQL (as deployed), the DAG unpaused."""
    import os

    metadata = local_stack.postgres_metadata_url(pg_server.get_uri(), "airflow_backfill_test")
    env = {**os.environ, **local_stack.airflow_env(tmp_path / "airflow", metadata_url=metadata),
           "COUPANG_TODAY": SCENARIO["today"],
           # only the backfill's runs: no scheduled run for the real today once the DAG is unpaused
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
           **local_stack.register_scenario_accounts(warehouse, SCENARIO, portal)}
    airflow = local_stack.StandaloneAirflow(env, port=free_port())
    airflow.prepare()
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
