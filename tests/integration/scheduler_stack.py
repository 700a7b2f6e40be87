"""A real scheduler (airflow standalone) for the tests that go through it instead of ``dag.test()``:
runs are queued by the CLI exactly as the README tells an operator to, picked up by the
scheduler of ``airflow standalone`` and run by its LocalExecutor, each task in its own
supervised process. One standalone serves a test module (it takes a minute to start); each
test starts from an empty warehouse. Its modules (``test_backfill_scheduler.py``,
``test_scheduler_faults.py``, and ``test_shared_sessions_scheduler.py`` with its own scenario and
routes) are separate so that ``make test`` runs them side by side.
"""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest

import local_stack

D = dt.date.fromisoformat
DAG_ID = "coupang_rocket_sales"


def line(kind: str, po: str, qty: int, moved: str) -> dict:
    return {"kind": kind, "po_no": po, "sku_id": f"7{po[-4:]}", "sku_name": f"상품 {po}", "moved_date": moved,
            "center": "이천1", "qty": qty, "unit_price": 11_000, "unit_supply": 10_000, "unit_tax": 1_000}


def side_account(account_id: str, username: str, invoice_no: str, *, confirmed: str | None) -> dict:
    return {"account_id": account_id, "vendor_name": f"거래처 {username}", "username": username,
            "password": f"pw-{username}", "sub_account_expires": "2026-12-31", "invoices": [
                {"invoice_no": invoice_no, "written_date": "2026-01-05", "tax_invoice_confirmed": confirmed,
                 "lines": [line("발주", f"2{invoice_no}", 1, "2026-01-04")]}]}


# Accounts registered inactive, for the test that collects them instead of V00000100: a seller whose tax
# invoice is pending, and one whose invoice page the portal's bot protection refuses every time.
BLOCKED_SELLER, PORTAL_FAILURE = "V00000101", "V00000102"
SIDE_ACCOUNTS = (BLOCKED_SELLER, PORTAL_FAILURE)
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
        ]},
        side_account(BLOCKED_SELLER, "sub_taxblock", "31000101", confirmed=None),
        side_account(PORTAL_FAILURE, "sub_portal_error", "31000102", confirmed="2026-01-06")]},
    "jet": {"accounts": []},
    "faults": [{"portal": "supplier_hub", "kind": "bot_rejected", "path_contains": "vendorPaymentInfoSeq=31000102",
                "times": 1000}],
}
EXPECTED = [
    ("200000005", D("2026-01-05"), 2, 22_000, False),
    ("200000006", D("2026-01-06"), 3, 33_000, False),
    ("200000007", D("2026-01-07"), 1, 11_000, False),
    ("200000015", D("2026-01-05"), 0, 0, True),
]


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
def module_warehouse(scratch_database, request):
    """The module's warehouse database (the scheduler's tasks keep its connection for the module)."""
    import psycopg

    from coupang_sales.warehouse.schema_versions import migrate

    name = "t_" + request.module.__name__.rsplit(".", 1)[-1]
    with scratch_database(name) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        yield conn, dsn


@pytest.fixture
def warehouse(module_warehouse):
    """The module's warehouse, emptied of collected rows and audit before each test."""
    conn, _ = module_warehouse
    conn.execute("TRUNCATE sales.order_lines, sales.order_line_changes, sales.collection_runs, sales.account_fees")
    return conn


@pytest.fixture(scope="module")
def scheduler(module_warehouse, pg_server, portal, tmp_path_factory, request):
    """airflow standalone with its metadata in PostgreSQL (as deployed), the DAG unpaused."""
    import os

    import psycopg
    from psycopg import sql

    conn, dsn = module_warehouse
    connections = local_stack.register_scenario_accounts(conn, SCENARIO, portal)
    conn.execute("UPDATE sales.accounts SET active = false WHERE account_id = ANY(%s)", (list(SIDE_ACCOUNTS),))
    database = "airflow_" + request.module.__name__.rsplit(".", 1)[-1]
    metadata = local_stack.postgres_metadata_url(pg_server.get_uri(), database)
    env = {**os.environ, **local_stack.airflow_env(tmp_path_factory.mktemp("airflow"), metadata_url=metadata),
           "COUPANG_TODAY": SCENARIO["today"],
           "AIRFLOW_CONN_COUPANG_WAREHOUSE": local_stack.connection_json(dsn),
           # only the runs the tests queue: no scheduled run for the real today; the DAG unpaused as it appears
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
           # the DAG files do not change during the tests: parse them once, not every 30 s
           "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
           **connections,
           # the module's own settings (test_scheduler_faults.py: one shared browser session per account)
           **getattr(request.module, "SCHEDULER_ENV", {})}
    airflow = local_stack.StandaloneAirflow(env, port=free_port())
    airflow.start_then_prepare([DAG_ID], pool_slots=2)  # two browsers at once: the backfill's dates overlap
    yield airflow
    airflow.stop(grace=5)  # the module is done with it: no need to wait for a graceful shutdown
    from coupang_sales.portal.webdriver_server import LocalWebDriverServer

    if (airflow.home / "webdriver").is_dir():  # the shared sessions' server, when a task started one
        LocalWebDriverServer(airflow.home / "webdriver").stop()
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


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
