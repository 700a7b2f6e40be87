"""Fault injection on the whole stack: sandbox faults over HTTP, headed Chromium, GX, PostgreSQL, Airflow dag.test().

Every case runs the coupang_rocket_sales DAG for one account whose warehouse already
holds an earlier load (``PRIOR``: two lines of 5 Jan, before their cancellation came in),
and checks the outcome *and* the exact rows afterwards: either the whole new window
(``EXPECTED``, the 5 Jan line restated to 0 by the 6 Jan 반출) or ``PRIOR`` untouched.
The worker-level faults (SIGKILL during the load, two runs at once) go through the real
scheduler in tests/integration/test_backfill_scheduler.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from load_lock import LoadLock

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
ACCOUNT = "V00000701"
RUN_DATE = D("2026-01-06")
CHANNEL = "coupang_rocket"
DETAIL = "/scm/receive/detail?"  # the 입고상세내역 pages, read by default
EXCEL = "/scm/receive/detail/excel"  # its export, read with receive_detail_source 'export'
PURCHASE_ACCOUNT = "/scm/settlement/general/purchase/account"
LOGIN_ACTIONS = "/login-actions/authenticate"
SECOND_DETAIL = "vendorPaymentInfoSeq=30000702"
SERVER_STATE = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "webdriver" / "server.json"


def line(kind: str, po: str, sku: str, qty: int, moved: str) -> dict:
    return {"kind": kind, "po_no": po, "sku_id": sku, "sku_name": f"상품 {sku}", "moved_date": moved,
            "center": "이천1", "qty": qty, "unit_price": 11_000, "unit_supply": 10_000, "unit_tax": 1_000}


def scenario(faults: list[dict]) -> dict:
    return {
        "today": "2026-01-07",
        "rocket": {"accounts": [{
            "account_id": ACCOUNT, "vendor_name": "주식회사 장애시험", "username": "sub_faults",
            "password": "pw-sub_faults", "sub_account_expires": "2026-12-31", "invoices": [
                {"invoice_no": "30000701", "written_date": "2026-01-05", "tax_invoice_confirmed": "2026-01-06",
                 "lines": [line("발주", "700000001", "7001", 2, "2026-01-04"),
                           line("발주", "700000002", "7002", 1, "2026-01-04")]},
                # 6 Jan: the whole of 700000001 comes back (restates 5 Jan to 0), and a new order
                {"invoice_no": "30000702", "written_date": "2026-01-06", "tax_invoice_confirmed": "2026-01-07",
                 "lines": [line("반출", "700000001", "7001", -2, "2026-01-06"),
                           line("발주", "700000003", "7003", 1, "2026-01-05")]},
            ]}]},
        "jet": {"accounts": []},
        "faults": faults,
    }


# What an earlier run loaded, before the 6 Jan invoice existed.
PRIOR = [("700000001", D("2026-01-05"), 2, 22_000, False), ("700000002", D("2026-01-05"), 1, 11_000, False)]
EXPECTED = [("700000001", D("2026-01-05"), 0, 0, True), ("700000002", D("2026-01-05"), 1, 11_000, False),
            ("700000003", D("2026-01-06"), 1, 11_000, False)]


def seed_prior(conn) -> None:
    with conn.transaction():
        for order_id, day, qty, amount, cancelled in PRIOR:
            conn.execute(
                "INSERT INTO sales.order_lines (channel, account_id, order_id, line_key, option_id, product_name, "
                "sales_date, quantity, gross_amount, payment_amount, is_cancelled, source, run_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'rocket', 'earlier')",
                (CHANNEL, ACCOUNT, order_id, f"30000701:7{order_id[-3:]}:2026-01-04:이천1", f"7{order_id[-3:]}",
                 f"상품 7{order_id[-3:]}", day, qty, amount, amount, cancelled))


def order_lines(conn) -> list[tuple]:
    return conn.execute("SELECT order_id, sales_date, quantity, payment_amount, is_cancelled FROM sales.order_lines "
                        "WHERE account_id = %s ORDER BY order_id, line_key", (ACCOUNT,)).fetchall()


def attempts(conn) -> list[tuple]:
    """(task, status, reason, message) of every recorded attempt, in order."""
    return conn.execute("SELECT split_part(task_id, '.', 2), status, reason, message FROM sales.collection_runs "
                        "WHERE account_id = %s ORDER BY id", (ACCOUNT,)).fetchall()


def changes(conn) -> list[tuple]:
    return conn.execute("SELECT order_id, change FROM sales.order_line_changes WHERE account_id = %s "
                        "ORDER BY order_id", (ACCOUNT,)).fetchall()


def staging_of(run) -> Path:
    """The run's staging folder of the account."""
    folder = re.sub(r"[^A-Za-z0-9_.-]", "_", run.run_id)
    return Path(os.environ["COUPANG_STAGING_DIR"]) / "coupang_rocket_sales" / folder / ACCOUNT


EXPECTED_CHANGES = [("700000001", "changed"), ("700000003", "added")]


@contextlib.contextmanager
def sandbox(faults: list[dict]):
    from sandbox import SandboxServer

    with SandboxServer(scenario(faults)) as server:
        yield server


@pytest.fixture
def run_dag(collection_dag, warehouse, monkeypatch):
    """``run_dag(server, timeout=None, **extra)``: the Rocket DAG for RUN_DATE over ``server`` after seeding
    PRIOR; ``timeout`` sets the portal connection's page timeout (seconds), ``extra`` more of its extra."""

    def run(server, *, timeout: float | None = None, **extra):
        dag = collection_dag(server, scenario([]), "coupang_rocket_sales")
        if timeout is not None:
            extra["timeout"] = timeout
        if extra:
            key = f"AIRFLOW_CONN_{local_stack.conn_id_for(CHANNEL, ACCOUNT).upper()}"
            monkeypatch.setenv(key, json.dumps({**json.loads(os.environ[key]), "extra": extra}))
        seed_prior(warehouse)
        return dag.test(logical_date=local_stack.logical_date_for(RUN_DATE))

    return run


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setenv("COUPANG_RETRY_DELAY_SECONDS", "0")


# --- the portal fails ------------------------------------------------------------------


def test_a_server_error_once_is_retried_and_loads(run_dag, warehouse):
    with sandbox([{"portal": "supplier_hub", "kind": "http_500", "path_contains": DETAIL, "times": 1}]) as server:
        run = run_dag(server)
    assert run.state == "success"
    assert order_lines(warehouse) == EXPECTED
    assert changes(warehouse) == EXPECTED_CHANGES
    assert [a[:3] for a in attempts(warehouse)] == [("extract", "failed", "portal_unavailable"),
                                                    ("load", "success", None)]


def test_a_server_error_that_persists_fails_and_leaves_the_warehouse_as_it_was(run_dag, warehouse, smtp):
    with sandbox([{"portal": "supplier_hub", "kind": "http_500", "path_contains": DETAIL, "times": 100}]) as server:
        run = run_dag(server)
    assert run.state == "failed"
    assert order_lines(warehouse) == PRIOR and changes(warehouse) == []
    recorded = attempts(warehouse)
    assert [(task, status, reason) for task, status, reason, _ in recorded] == \
        [("extract", "failed", "portal_unavailable")] * 4, "first try and three retries"
    assert "HTTP 500" in recorded[-1][3] and "/scm/receive/detail" in recorded[-1][3]
    # one alert, after the last retry, naming the account
    assert smtp.subjects() == [f"[coupang-sales] FAILED coupang_rocket {ACCOUNT} 2025-12-23..2026-01-06: "
                               "portal_unavailable"]


def test_a_page_that_never_answers_is_cut_off_by_the_timeout_and_retried(run_dag, warehouse):
    """The portal holds the 일반매입계정 answer for an hour; the 3 s page timeout ends the wait."""
    fault = {"portal": "supplier_hub", "kind": "timeout", "path_contains": PURCHASE_ACCOUNT, "times": 1,
             "delay_seconds": 3600}
    started = time.monotonic()
    with sandbox([fault]) as server:
        run = run_dag(server, timeout=3)
    elapsed = time.monotonic() - started
    assert run.state == "success" and order_lines(warehouse) == EXPECTED
    failed = [(reason, message) for _, status, reason, message in attempts(warehouse) if status == "failed"]
    assert len(failed) == 1 and failed[0][0] == "portal_unavailable"
    assert "within 3 s" in failed[0][1] and "일반매입계정" in failed[0][1]
    assert elapsed < 600, "bounded by the page timeout, not by the portal's hour"


def test_a_session_lost_mid_extraction_signs_on_again_and_continues(run_dag, warehouse):
    fault = {"portal": "supplier_hub", "kind": "session_expired", "path_contains": SECOND_DETAIL, "times": 1}
    with sandbox([fault]) as server:
        run = run_dag(server)
        sign_ons = [r for r in server.state.requests if r.method == "POST" and LOGIN_ACTIONS in r.target]
    assert run.state == "success" and order_lines(warehouse) == EXPECTED
    assert changes(warehouse) == EXPECTED_CHANGES
    assert [status for _, status, _, _ in attempts(warehouse)] == ["success"], "no attempt failed"
    # one sign-on for the run (the later browser tasks find the account's profile signed on), and
    # one more when the session is lost (Keycloak's session went with it: the password again)
    assert len(sign_ons) == 2


def test_a_session_that_keeps_expiring_fails_cleanly_then_the_retry_loads(run_dag, warehouse):
    # the 입고상세내역 of the second invoice drops the session again right after the new sign-on
    fault = {"portal": "supplier_hub", "kind": "session_expired", "path_contains": SECOND_DETAIL, "times": 2}
    with sandbox([fault]) as server:
        run = run_dag(server)
    assert run.state == "success" and order_lines(warehouse) == EXPECTED
    assert changes(warehouse) == EXPECTED_CHANGES
    failed = [(task, reason, message) for task, status, reason, message in attempts(warehouse) if status == "failed"]
    assert [(task, reason) for task, reason, _ in failed] == [("extract", "portal_unavailable")]
    assert "keeps expiring" in failed[0][2]


# One DAG run per outcome class: retried then failed (a truncated file), or failed at once (an HTML
# page instead of the file). Every mode (an empty file too) is the session's test, at stage level:
# test_sandbox_supplier_hub.py::test_a_broken_download_is_reported_and_not_kept. A file is the
# export's, so these runs read the export (receive_detail_source 'export'; the pages are the default).
@pytest.mark.parametrize(("mode", "reason", "tries"), [("truncated", "portal_unavailable", 4),
                                                         ("html", "export_format_changed", 1)])
def test_a_broken_download_loads_nothing(run_dag, warehouse, mode, reason, tries):
    fault = {"portal": "supplier_hub", "kind": "broken_download", "path_contains": EXCEL, "times": 100,
             "mode": mode}
    with sandbox([fault]) as server:
        run = run_dag(server, receive_detail_source="export")
    assert run.state == "failed"
    assert order_lines(warehouse) == PRIOR and changes(warehouse) == []
    recorded = attempts(warehouse)
    assert [(task, status, why) for task, status, why, _ in recorded] == [("extract", "failed", reason)] * tries
    assert "입고상세내역 Excel of invoice 3000070" in recorded[-1][3]
    assert staging_of(run).is_dir() and not list(staging_of(run).rglob("receive_detail_*")), "nothing broken staged"


def test_a_changed_export_header_fails_naming_the_column(run_dag, warehouse):
    """One DAG run for the class (validate fails, no retry); a renamed or a missing column each, at
    stage level: tests/unit/test_rocket_stages.py::test_a_changed_header_is_refused_naming_the_column."""
    fault = {"portal": "supplier_hub", "kind": "changed_header", "path_contains": EXCEL, "times": 100,
             "column": "총단가", "rename_to": "합계단가"}
    with sandbox([fault]) as server:
        run = run_dag(server, receive_detail_source="export")
    assert run.state == "failed"
    assert order_lines(warehouse) == PRIOR and changes(warehouse) == []
    recorded = attempts(warehouse)
    assert [(task, status, why) for task, status, why, _ in recorded] == \
        [("validate", "failed", "export_format_changed")], "not retried: the parser needs a change"
    assert "총단가" in recorded[0][3] and "입고상세내역 3000070" in recorded[0][3]


# --- the warehouse goes away -------------------------------------------------------------


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own, to stop and start (the session's server stays up)."""
    import shutil

    import pgserver

    data_dir = Path(tempfile.mkdtemp(prefix="coupang-pg-fault-"))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


def test_postgres_stopped_during_the_load_rolls_back_and_the_retry_loads_once(
        own_postgres, airflow_db, monkeypatch):
    import psycopg
    from airflow.dag_processing.dagbag import DagBag
    from pgserver._commands import pg_ctl

    from coupang_sales.warehouse.schema_versions import migrate

    dsn = own_postgres.get_uri()
    monkeypatch.setenv("AIRFLOW_CONN_COUPANG_WAREHOUSE", local_stack.connection_json(dsn))
    monkeypatch.setenv("COUPANG_RETRY_DELAY_SECONDS", "5")  # PostgreSQL is back well before the retry
    seen: dict[str, object] = {}

    def stop_and_start(pids: list[int]) -> None:
        with psycopg.connect(dsn, autocommit=True) as peek:
            seen["pending_changes"] = peek.execute("SELECT count(*) FROM sales.order_line_changes").fetchone()[0]
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=own_postgres.pgdata, user=own_postgres.system_user)
        own_postgres.ensure_postgres_running()
        with psycopg.connect(dsn, autocommit=True) as after:  # before the retry: the crash lost nothing, kept nothing
            seen["rows_after_crash"] = order_lines(after)
            seen["changes_after_crash"] = changes(after)

    with sandbox([]) as server, psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        monkeypatch.setenv("COUPANG_TODAY", scenario([])["today"])
        for key, value in local_stack.register_scenario_accounts(conn, scenario([]), server).items():
            monkeypatch.setenv(key, value)
        seed_prior(conn)
        dag = DagBag(dag_folder=str(local_stack.ROOT / "dags")).dags["coupang_rocket_sales"]
        blocker = LoadLock(dsn, stop_and_start)
        blocker.start()
        run = dag.test(logical_date=local_stack.logical_date_for(RUN_DATE))
        blocker.join(30)
    assert blocker.error is None, blocker.error
    assert seen["pending_changes"] == 0, "the change log of the open transaction is not visible"
    assert seen["rows_after_crash"] == PRIOR and seen["changes_after_crash"] == [], "rolled back"
    assert run.state == "success"
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert order_lines(conn) == EXPECTED
        assert changes(conn) == EXPECTED_CHANGES, "each change logged once: the lost attempt left none"
        loads = conn.execute("SELECT status, try_number FROM sales.collection_runs WHERE account_id = %s "
                             "AND task_id LIKE '%%load' ORDER BY id", (ACCOUNT,)).fetchall()
    assert loads[-1][0] == "success" and loads[-1][1] >= 2, "the load succeeded on a retry"


def test_a_load_waiting_on_a_lock_fails_naming_it_and_the_retry_loads(collection_dag, warehouse, monkeypatch):
    """Someone's open transaction holds a SHARE lock on sales.order_lines: the load gives up after
    lock_timeout as a warehouse_error naming the table and the holder, and loads on its retry
    once the lock is gone."""
    import psycopg

    monkeypatch.setenv("COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS", "2")
    dsn = warehouse.info.dsn

    def release_after_the_first_failure(pids: list[int]) -> None:
        deadline = time.monotonic() + 60
        with psycopg.connect(dsn, autocommit=True) as watch:
            while not watch.execute("SELECT 1 FROM sales.collection_runs WHERE task_id LIKE '%%load' "
                                    "AND status = 'failed'").fetchone():
                assert time.monotonic() < deadline, "the load did not give up on the lock"
                time.sleep(0.1)

    with sandbox([]) as server:
        dag = collection_dag(server, scenario([]), "coupang_rocket_sales")
        seed_prior(warehouse)
        blocker = LoadLock(dsn, release_after_the_first_failure, timeout=120)
        blocker.start()
        run = dag.test(logical_date=local_stack.logical_date_for(RUN_DATE))
        blocker.join(30)
    assert blocker.error is None, blocker.error
    assert run.state == "success"
    recorded = attempts(warehouse)
    assert [a[:3] for a in recorded] == [("load", "failed", "warehouse_error"), ("load", "success", None)]
    assert "lock_timeout (2 s" in recorded[0][3] and "sales.order_lines (ShareLock) held by pid" in recorded[0][3]
    assert order_lines(warehouse) == EXPECTED and changes(warehouse) == EXPECTED_CHANGES


# --- the browser crashes -------------------------------------------------------------------


def browsers() -> list[psutil.Process]:
    """Chromium and chromedriver processes started by this test process (zombies included), but the
    WebDriver server the shared sessions live on (it outlives every task by design: its pid is in
    ``$AIRFLOW_HOME/webdriver/server.json``). A browser it ran is still its child, so still counted."""
    server = json.loads(SERVER_STATE.read_text()).get("pid") if SERVER_STATE.exists() else None
    out = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.pid != server and any(name in child.name() for name in ("chrom",)):
                out.append(child)
    return out


def chromium_zombies() -> set[int]:
    zombies = set()
    for process in psutil.process_iter(["name", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE and "chrom" in (process.info["name"] or ""):
            zombies.add(process.pid)
    return zombies


def running_with(argument: str) -> list[int]:
    """Live (not zombie) processes anywhere whose command line holds ``argument``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and argument in " ".join(process.info["cmdline"] or ()):
            found.append(process.pid)
    return found


def orphans_reaped(before: set[int], timeout: float = 30) -> bool:
    """Chromium helpers orphaned by the crash are re-parented to init, which reaps them: wait for it."""
    deadline = time.monotonic() + timeout
    while chromium_zombies() - before:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_chromium_crashing_mid_extraction_fails_cleanly_leaves_no_browser_and_the_retry_loads(run_dag, warehouse):
    """A 입고상세내역 page hangs; meanwhile the browser is killed (SIGKILL), as the OOM killer would."""
    zombies_before = chromium_zombies()
    killed: list[int] = []
    profiles: list[str] = []
    fault = {"portal": "supplier_hub", "kind": "timeout", "path_contains": DETAIL, "times": 1, "delay_seconds": 60}

    def kill_the_browser_when_the_download_hangs(server) -> None:
        deadline = time.monotonic() + 300
        while server.state.faults.remaining()[0]["remaining"] and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in browsers():
            with contextlib.suppress(psutil.NoSuchProcess):
                command = process.cmdline()
                if process.name().startswith("chrom") and "driver" not in process.name() and \
                        not any(arg.startswith("--type=") for arg in command):
                    profiles.extend(arg for arg in command if arg.startswith("--user-data-dir="))
                    process.send_signal(signal.SIGKILL)
                    killed.append(process.pid)

    with sandbox([fault]) as server:
        killer = threading.Thread(target=kill_the_browser_when_the_download_hangs, args=(server,), daemon=True)
        killer.start()
        run = run_dag(server)
        killer.join(5)
    assert killed, "the browser was found and killed"
    failed = [(task, reason, message) for task, status, reason, message in attempts(warehouse) if status == "failed"]
    assert [(task, reason) for task, reason, _ in failed] == [("extract", "portal_unavailable")]
    assert "browser" in failed[0][2]
    assert run.state == "success" and order_lines(warehouse) == EXPECTED
    assert changes(warehouse) == EXPECTED_CHANGES
    assert browsers() == [], "no Chromium or chromedriver left among the worker's children, zombies included"
    assert profiles and not running_with(profiles[0]), "no process of the crashed browser left anywhere"
    assert orphans_reaped(zombies_before), "no zombie left behind"
