"""Nine Rocket accounts over three egress routes through a real scheduler (``airflow standalone``,
LocalExecutor, the Supplier Hub pool sized to the routes): every account is collected after one
sign-on, never two sellers on one route at once and none signed out by another's sign-on (both read
from the sandbox's own sign-on log), and a browser task killed in the middle of its run leaves a
session and a route its retry attaches to (no second sign-on). Three forward proxies on 127.0.0.41-43, the
machine's chromedriver outliving the tasks, headed Chromium, PostgreSQL, GX."""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import ExitStack

import psutil
import pytest
from forward_proxy import ForwardProxy
from scheduler_stack import DAG_ID, free_port, metadata, module_warehouse, warehouse  # noqa: F401 (fixtures)

import local_stack

pytestmark = [pytest.mark.integration, pytest.mark.routes]  # `make routes`: too long for `make test`
ADDRESSES = ("127.0.0.41", "127.0.0.42", "127.0.0.43")
ACCOUNTS = [f"V0000097{n}" for n in range(1, 10)]


def account(n: int, account_id: str) -> dict:
    line = {"kind": "발주", "po_no": f"19700{n:04d}", "sku_id": "55501", "sku_name": "보리차",
            "moved_date": "2026-01-04", "center": "이천1", "qty": n, "unit_price": 11_000, "unit_supply": 10_000,
            "unit_tax": 1_000}
    return {"account_id": account_id, "vendor_name": f"거래처 {n}", "username": f"pooled_{n}",
            "password": f"pw-pooled_{n}", "sub_account_expires": "2026-12-31",
            "invoices": [{"invoice_no": f"397{n:05d}", "written_date": "2026-01-05",
                          "tax_invoice_confirmed": "2026-01-06", "lines": [line]}]}


SCENARIO = {"today": "2026-01-07", "bot_protection": {"challenge_seconds": 0.2},
            "rocket": {"accounts": [account(n, a) for n, a in enumerate(ACCOUNTS, 1)]}, "jet": {"accounts": []}}


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture(scope="module")
def scheduler(module_warehouse, pg_server, portal, tmp_path_factory, request):  # noqa: F811
    import psycopg
    from psycopg import sql

    conn, dsn = module_warehouse
    database = "airflow_" + request.module.__name__.rsplit(".", 1)[-1]
    metadata_url = local_stack.postgres_metadata_url(pg_server.get_uri(), database)
    with ExitStack() as stack:
        proxies = [stack.enter_context(ForwardProxy(address)) for address in ADDRESSES]
        env = {**os.environ, **local_stack.airflow_env(tmp_path_factory.mktemp("airflow"), metadata_url=metadata_url),
               "COUPANG_TODAY": SCENARIO["today"],
               "AIRFLOW_CONN_COUPANG_WAREHOUSE": local_stack.connection_json(dsn),
               "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
               "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
               "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
               "COUPANG_SHARED_BROWSER": "true",
               "COUPANG_ROUTES": json.dumps([{"name": f"r{n}", "proxy": p.url} for n, p in enumerate(proxies, 1)]),
               # the lease (COUPANG_ROUTE_LEASE_SECONDS, 600) must outlast the gaps between an account's tasks,
               # which nobody renews: at 30 s a loaded scheduler let leases expire between them, other accounts
               # reaped them with their sessions, and the accounts signed on again (23 sign-ons for 9)
               # a task asks for a free route, and a killed task is retried, after the scheduler has taken in
               # its executor's report of the try before: sooner, and that stale report fails the new try
               # ("finished with state success, but the task instance's state attribute is queued")
               "COUPANG_ROUTE_WAIT_SECONDS": "10",
               "COUPANG_RETRY_DELAY_SECONDS": "15",
               **local_stack.register_scenario_accounts(conn, SCENARIO, portal)}
        airflow = local_stack.StandaloneAirflow(env, port=free_port())
        airflow.start_then_prepare([DAG_ID], pool_slots=len(ADDRESSES))  # the pool sized to the routes
        yield airflow, proxies
        airflow.stop(grace=5)
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def kill_a_check_holding_its_session(airflow, run_id: str, timeout: float = 300) -> tuple[int, int]:
    """SIGKILL the task process of a running ``check_tax_invoice_block`` (its account's session was opened
    by its first check); (map index, pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = metadata(airflow, "SELECT id, map_index FROM task_instance WHERE dag_id = %s AND state = 'running' "
                                    f"AND task_id = 'collect.check_tax_invoice_block' AND run_id = '{run_id}'")
        for ti_id, map_index in running:
            # the task's own process ("airflow worker -- <ti id>"), not its supervisor in the executor's
            # pool ("airflow worker -- LocalExecutor: <ti id>"), which reports the task's death
            for process in psutil.process_iter(["cmdline"]):
                if " ".join(process.info["cmdline"] or ()).strip() == f"airflow worker -- {ti_id}":
                    process.send_signal(signal.SIGKILL)
                    process.wait(30)
                    return map_index, process.pid
        time.sleep(0.2)
    pytest.fail(f"no check_tax_invoice_block ran within {timeout:g} s; scheduler log: {airflow.log_path}")


def wait_for_run(airflow, run_id: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = dict(metadata(airflow, "SELECT run_id, state FROM dag_run WHERE dag_id = %s"))
        if states.get(run_id) in ("success", "failed"):
            return states[run_id]
        time.sleep(2)
    pytest.fail(f"run {run_id} not finished within {timeout:g} s; scheduler log: {airflow.log_path}")


def test_nine_accounts_three_routes_one_sign_on_each_one_seller_per_route_a_killed_task_recovered(
        scheduler, warehouse, portal):  # noqa: F811
    airflow, proxies = scheduler
    run_id = "pooled_routes"
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps({"date": "2026-01-06"}))
    killed_index, killed_pid = kill_a_check_holding_its_session(airflow, run_id)
    assert wait_for_run(airflow, run_id) == "success"
    assert not psutil.pid_exists(killed_pid)
    tries = metadata(airflow, "SELECT try_number, state FROM task_instance WHERE dag_id = %s AND "
                              f"task_id = 'collect.check_tax_invoice_block' AND map_index = {killed_index} "
                              f"AND run_id = '{run_id}'")
    assert tries[0][0] >= 2 and tries[0][1] == "success", tries  # retried after the kill, and passed

    collected = dict(warehouse.execute("SELECT account_id, route FROM sales.collection_runs "
                                       "WHERE status = 'success' ORDER BY account_id").fetchall())
    assert sorted(collected) == ACCOUNTS
    assert set(collected.values()) <= {"r1", "r2", "r3"}
    assert warehouse.execute("SELECT count(*) FROM sales.route_leases").fetchone()[0] == 0, "every route freed"

    state = portal.state
    sign_ons = [s for s in state.sign_ons if s.username.startswith("pooled_")]
    by_user = {s.username: s for s in sign_ons}
    print(f"sign-ons: {[(s.username, s.address) for s in sign_ons]}; proxies relayed {[p.requests for p in proxies]}")
    # one sign-on each, the killed task's account too: its retry attached to the session it left; and no
    # account signed out by another's sign-on (it would have signed on again)
    assert len(sign_ons) == len(by_user) == len(ACCOUNTS)
    assert {s.address for s in sign_ons} <= set(ADDRESSES)
    # never two sellers on one route at once: on each address, each seller's time from its sign-on to its
    # last page ends before the next seller of that address signs on
    for address in ADDRESSES:
        spans = sorted((s.at, state.last_seen[(address, s.username)], s.username)
                       for s in sign_ons if s.address == address)
        for (_, last_page, seller), (next_sign_on, _, after) in zip(spans, spans[1:], strict=False):
            assert last_page < next_sign_on, f"{seller} and {after} were signed on from {address} at once"
