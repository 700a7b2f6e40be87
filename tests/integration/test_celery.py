"""Both DAGs under the CeleryExecutor on this machine: Redis, API server, scheduler, two Celery workers.

Deployed as docker-compose.yaml describes it, without Docker: Debian's ``redis-server`` as
the broker (a free port, a temporary folder), the metadata in PostgreSQL, one worker for the
``default`` queue and one for the ``browser`` queue (``COUPANG_BROWSER_QUEUE``: the browser
tasks run only where a browser is), one staging folder shared by both, the sandbox portal.
Runs are triggered by the CLI as an operator would and picked up by the scheduler.

Slow (a few minutes: six Airflow processes start), so it is marked ``celery`` and left out
of ``make test``: ``make celery`` runs it. Figures: docs/performance.md.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

import local_stack

pytestmark = [pytest.mark.integration, pytest.mark.celery]
D = dt.date.fromisoformat
DAG_IDS = ("coupang_rocket_sales", "coupang_jet_sales")
BROWSER_TASKS = {"collect.check_sub_account_expiry", "collect.check_tax_invoice_block", "collect.extract"}


def line(po: str, qty: int, moved: str) -> dict:
    return {"kind": "발주", "po_no": po, "sku_id": f"7{po[-4:]}", "sku_name": f"상품 {po}", "moved_date": moved,
            "center": "이천1", "qty": qty, "unit_price": 11_000, "unit_supply": 10_000, "unit_tax": 1_000}


def rocket_account(number: int) -> dict:
    return {"account_id": f"V0000020{number}", "vendor_name": f"주식회사 셀러리{number}",
            "username": f"sub_celery{number}", "password": f"pw-sub_celery{number}",
            "sub_account_expires": "2026-12-31", "invoices": [
                {"invoice_no": f"3200000{number}", "written_date": "2026-01-06", "tax_invoice_confirmed": "2026-01-07",
                 "lines": [line(f"20000020{number}", number, "2026-01-05")]}]}


SCENARIO = {
    "today": "2026-01-08",
    "rocket": {"accounts": [rocket_account(1), rocket_account(2)]},
    "jet": {"accounts": [
        {"account_id": "A00000201", "username": "wing_celery", "password": "pw-wing-celery", "version": 1,
         "v1_sales": [{"date": "2026-01-06", "option_id": "87001", "product_name": "보리차",
                       "option_name": "옵션 87001", "qty": 2, "amount": 19_800}]}]},
    "faults": [],
}
EXPECTED = [
    ("coupang_jet", "A00000201", D("2026-01-06"), 2, 19_800),
    ("coupang_rocket", "V00000201", D("2026-01-06"), 1, 11_000),
    ("coupang_rocket", "V00000202", D("2026-01-06"), 2, 22_000),
]


@pytest.fixture
def work_dir():
    """The run's folder, outside pytest's basetemp (another pytest session on the machine prunes old
    basetemps, and would delete Redis's and Airflow's live folders)."""
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="coupang-celery-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cluster(scratch_database, pg_server, work_dir):
    import psycopg

    from coupang_sales.warehouse.schema_versions import migrate
    from sandbox import SandboxServer, load_scenario

    suffix = work_dir.name.removeprefix("coupang-celery-").lower()
    metadata_db = f"airflow_celery_{suffix}"
    with scratch_database(f"t_celery_{suffix}") as dsn, \
            psycopg.connect(dsn, autocommit=True) as conn, SandboxServer(load_scenario(SCENARIO)) as portal:
        migrate(conn)
        redis = local_stack.RedisServer(work_dir / "redis").start()
        metadata = local_stack.postgres_metadata_url(pg_server.get_uri(), metadata_db)
        env = {**__import__("os").environ,
               **local_stack.airflow_env(work_dir / "airflow", staging=work_dir / "shared-staging",
                                         metadata_url=metadata),
               "COUPANG_TODAY": SCENARIO["today"], "COUPANG_RETRY_DELAY_SECONDS": "5",
               "COUPANG_BROWSER_QUEUE": "browser",
               "AIRFLOW_CONN_COUPANG_WAREHOUSE": local_stack.connection_json(dsn),
               "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
               "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
               **local_stack.register_scenario_accounts(conn, SCENARIO, portal)}
        airflow = local_stack.CeleryAirflow(env, redis, workers=("default", "browser"))
        try:
            airflow.prepare()
            for dag_id in DAG_IDS:
                airflow.cli("dags", "unpause", dag_id)
            airflow.start()
            yield airflow, conn
        finally:
            airflow.stop()
            redis.stop()
            with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{metadata_db}" WITH (FORCE)')


def metadata(airflow, query: str, *args) -> list[tuple]:
    import psycopg

    url = airflow.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2", "postgresql")
    with psycopg.connect(url) as db:
        return db.execute(query, args).fetchall()


def wait_for_runs(airflow, timeout: float = 900) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = dict(metadata(airflow, "SELECT dag_id, state FROM dag_run WHERE run_id = 'celery'"))
        if all(states.get(dag_id) in ("success", "failed") for dag_id in DAG_IDS):
            return states
        time.sleep(3)
    pytest.fail(f"runs not finished within {timeout:g} s: {states}; logs in {airflow.home}")


def test_both_dags_run_under_celery_with_browser_tasks_on_their_own_queue(cluster):
    airflow, warehouse = cluster
    started = time.monotonic()
    for dag_id in DAG_IDS:
        airflow.cli("dags", "trigger", dag_id, "--run-id", "celery", "--conf", json.dumps({"date": "2026-01-07"}))
    states = wait_for_runs(airflow)
    elapsed = time.monotonic() - started
    failures = warehouse.execute("SELECT account_id, reason, message FROM sales.collection_runs "
                                 "WHERE status <> 'success'").fetchall()
    assert states == dict.fromkeys(DAG_IDS, "success"), f"{states}; failures {failures}; logs in {airflow.home}"

    rows = warehouse.execute("SELECT channel, account_id, sales_date, sum(quantity)::int, sum(payment_amount)::bigint "
                             "FROM sales.order_lines GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
    assert rows == EXPECTED

    # every task ran through Celery, the browser tasks on their own queue and worker
    instances = metadata(airflow, "SELECT dag_id, task_id, map_index, queue, state FROM task_instance "
                                  "WHERE run_id = 'celery'")
    assert instances and {state for *_, state in instances} == {"success"}
    for dag_id, task_id, _, queue, _ in instances:
        assert queue == ("browser" if task_id in BROWSER_TASKS else "default"), (dag_id, task_id, queue)
    default_log, browser_log = (airflow.log_of(name).read_text(errors="replace") for name in ("worker-1", "worker-2"))
    for dag_id, task_id, map_index, queue, _ in instances:
        ran_on = browser_log if queue == "browser" else default_log
        other = default_log if queue == "browser" else browser_log
        # Airflow's log_filename_template: a map_index folder for mapped instances only
        mapped = f"map_index={map_index}/" if map_index >= 0 else ""
        needle = f"log_path='dag_id={dag_id}/run_id=celery/task_id={task_id}/{mapped}attempt="
        assert needle in ran_on and needle not in other, f"{dag_id} {task_id}[{map_index}] ran on the wrong worker"
    print(f"\nCelery: both DAGs, {len(instances)} task instances, {elapsed:.0f} s from trigger to done")
