"""One browser session per account and run, on its own egress route, shared by the run's browser tasks
(``COUPANG_SHARED_BROWSER``, issue #30): each Supplier Hub check runs in its own task and shows its own
outcome (the blocked seller's check task carries the block, the extract does not run), every account signs
on once, and the sandbox sees each account from its route's address. Three forward proxies on
127.0.0.31-33, a chromedriver outliving the tasks, headed Chromium, PostgreSQL, GX, Airflow ``dag.test()``."""

from __future__ import annotations

import datetime as dt
import json
import os
from contextlib import ExitStack
from pathlib import Path

import pytest
from forward_proxy import ForwardProxy

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
ADDRESSES = ("127.0.0.31", "127.0.0.32", "127.0.0.33")
PROXY_SECRET = "proxy-Pw-91kq"


def account(account_id: str, username: str, *, expires: str = "2026-12-31", confirmed: str | None = "2026-01-06"):
    line = {"kind": "발주", "po_no": f"1{account_id[-8:]}", "sku_id": "55501", "sku_name": "보리차",
            "moved_date": "2026-01-04", "center": "이천1", "qty": 2, "unit_price": 11_000, "unit_supply": 10_000,
            "unit_tax": 1_000}
    return {"account_id": account_id, "vendor_name": f"거래처 {username}", "username": username,
            "password": f"pw-{username}", "sub_account_expires": expires,
            "invoices": [{"invoice_no": f"3{account_id[-7:]}", "written_date": "2026-01-05",
                          "tax_invoice_confirmed": confirmed, "lines": [line]}]}


SCENARIO = {
    "today": "2026-01-07",
    "bot_protection": {"challenge_seconds": 0.2},
    "rocket": {"accounts": [account("V00000961", "shared_ok"),
                            account("V00000962", "shared_taxblock", confirmed=None),
                            account("V00000963", "shared_expired", expires="2026-01-01")]},
    "jet": {"accounts": []},
}
USERS = {"V00000961": "shared_ok", "V00000962": "shared_taxblock", "V00000963": "shared_expired"}


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture
def routes(monkeypatch):
    from coupang_sales.portal.webdriver_server import LocalWebDriverServer

    with ExitStack() as stack:
        proxies = [stack.enter_context(ForwardProxy(address)) for address in ADDRESSES[:2]]
        # the third route's proxy wants credentials: they come from its Airflow connection, through a relay
        proxies.append(stack.enter_context(ForwardProxy(ADDRESSES[2], username="route-user", password=PROXY_SECRET)))
        monkeypatch.setenv("AIRFLOW_CONN_COUPANG_ROUTE_R3", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": proxies[2].port, "login": "route-user",
             "password": PROXY_SECRET}))
        monkeypatch.setenv("COUPANG_SHARED_BROWSER", "true")
        monkeypatch.setenv("COUPANG_ROUTES", json.dumps([{"name": "r1", "proxy": proxies[0].url},
                                                         {"name": "r2", "proxy": proxies[1].url},
                                                         {"name": "r3", "conn_id": "coupang_route_r3"}]))
        yield proxies
        LocalWebDriverServer(Path(os.environ["AIRFLOW_HOME"]) / "webdriver").stop()


def collection_report(run_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.run_id == run_id, XComModel.task_id == "report", XComModel.key == "collection_report"))
    return json.loads(value) if isinstance(value, str) else value


def task_states(run_id: str) -> dict[tuple[str, int], str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state)
                               .where(TaskInstance.run_id == run_id)).all()
    return {(task, index): str(getattr(state, "value", state)) for task, index, state in rows}


def grid_of(run_id: str) -> dict[tuple[str, int], tuple[str | None, str | None]]:
    """(stored label, note) of each mapped task instance of the run, as the Grid reads them."""
    from airflow.models.taskinstance import TaskInstance, TaskInstanceNote
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance._rendered_map_index,
                   TaskInstanceNote.content)
            .outerjoin(TaskInstanceNote, TaskInstanceNote.ti_id == TaskInstance.id)
            .where(TaskInstance.run_id == run_id, TaskInstance.map_index >= 0)).all()
    return {(task, index): (label, note) for task, index, label, note in rows}


def test_each_check_shows_its_own_outcome_after_one_sign_on_per_account_on_its_route(
        collection_dag, portal, warehouse, routes, monkeypatch):
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    # V00000961's extract clicks the Excel link: the shared session's browser saves into the extract's folder
    name = f"AIRFLOW_CONN_{local_stack.conn_id_for('coupang_rocket', 'V00000961').upper()}"
    monkeypatch.setenv(name, json.dumps({**json.loads(os.environ[name]), "extra": {"download_mode": "browser"}}))
    accounts = [a for (a,) in warehouse.execute(
        "SELECT account_id FROM sales.accounts WHERE channel = 'coupang_rocket' ORDER BY account_id")]
    # yesterday's attempt of V00000961 left from r3 (the proxy that wants credentials): its cookies and
    # clearance were made there, so this run prefers r3 for it
    warehouse.execute("INSERT INTO sales.collection_runs (channel, account_id, window_start, window_end, status, "
                      "route) VALUES ('coupang_rocket', 'V00000961', '2026-01-05', '2026-01-05', 'success', 'r3')")
    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))
    states = task_states(run.run_id)
    index = {account_id: n for n, account_id in enumerate(accounts)}

    def state(task: str, account_id: str) -> str:
        return states[(f"collect.{task}", index[account_id])]

    print({a: {t: state(t, a) for t in ("check_sub_account_expiry", "check_tax_invoice_block", "extract", "load")}
           for a in accounts})
    assert run.state == "success"  # the two blocked accounts wait on their sellers, not on the data team
    assert [state(t, "V00000961") for t in ("check_sub_account_expiry", "check_tax_invoice_block", "load")] \
        == ["success", "success", "success"]
    # a seller's action ends its check skipped (not failed, no retry), and nothing after it runs
    assert state("check_tax_invoice_block", "V00000962") == "skipped"
    assert [state(t, "V00000962") for t in ("extract", "validate", "transform", "load")] == ["skipped"] * 4
    assert state("check_sub_account_expiry", "V00000963") == "skipped"
    assert state("check_tax_invoice_block", "V00000963") == "skipped"
    # the action is the note of the check that met it; every mapped instance, skipped ones too, is
    # labelled by its account when the run ends
    grid = grid_of(run.run_id)
    assert grid[("collect.check_tax_invoice_block", index["V00000962"])][1].startswith(
        "Seller action needed (tax_invoice_pending): The seller must process")
    assert grid[("collect.check_sub_account_expiry", index["V00000963"])][1].startswith(
        "Seller action needed (sub_account_expired): The master account must click '연장하기'")
    assert {key: note for key, (_, note) in grid.items() if note} == {
        ("collect.check_tax_invoice_block", index["V00000962"]): grid[
            ("collect.check_tax_invoice_block", index["V00000962"])][1],
        ("collect.check_sub_account_expiry", index["V00000963"]): grid[
            ("collect.check_sub_account_expiry", index["V00000963"])][1]}, "only the tasks that met an action"
    assert {(task, n): label for (task, n), (label, _) in grid.items()} == {
        (task, n): accounts[n] for task, n in grid}

    blocked = dict(warehouse.execute("SELECT account_id, task_id FROM sales.collection_runs "
                                     "WHERE status = 'blocked'").fetchall())
    assert blocked == {"V00000962": "collect.check_tax_invoice_block", "V00000963": "collect.check_sub_account_expiry"}

    signed = {a: [s.address for s in portal.state.sign_ons if s.username == user] for a, user in USERS.items()}
    print(f"sign-on addresses per account: {signed}")
    assert len(signed["V00000961"]) == 1 and len(signed["V00000962"]) == 1, "one sign-on per account and run"
    assert signed["V00000963"] == [], "the expired sub-account's password is refused before it counts"
    assert {*signed["V00000961"], *signed["V00000962"]} <= set(ADDRESSES)
    assert signed["V00000961"] != signed["V00000962"], "two accounts of one portal on two routes"

    recorded = warehouse.execute("SELECT account_id, task_id, route FROM sales.collection_runs "
                                 "WHERE run_id = %s ORDER BY id", (run.run_id,)).fetchall()
    assert all(route in {"r1", "r2", "r3"} for _, _, route in recorded), recorded
    assert warehouse.execute("SELECT count(*) FROM sales.route_leases").fetchone()[0] == 0, "a lease was left"
    assert signed["V00000961"] == [ADDRESSES[2]] and routes[2].refused == 0, \
        "the account's last route, through the relay that adds the proxy's credentials"
    assert {route for account_id, _, route in recorded if account_id == "V00000961"} == {"r3"}
    assert PROXY_SECRET not in json.dumps([list(row) for row in warehouse.execute(
        "SELECT message, details::text FROM sales.collection_runs").fetchall()])
    assert warehouse.execute("SELECT sum(payment_amount) FROM sales.order_lines").fetchone()[0] == 22_000
    report = collection_report(run.run_id)
    assert {row["account_id"]: row["route"].split()[0] for row in report["accounts"]}["V00000961"] == "r3"
