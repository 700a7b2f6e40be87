"""Browser sessions on a real Selenium Grid (the Selenium server's standalone mode, ``selenium_grid``), as a
deployment runs them (``SELENIUM_REMOTE_URL``, routes that are Grid nodes pinned by ``coupang:route``):
each account's run opens one session on its route's slot, the checks and the extract attach to it from
their own tasks, the 입고상세내역 files reach the task through the Grid's managed downloads (the node's
browser saves them on the node, not in the task's folder), the run's end closes the session, and a
session whose holder is gone is closed by the Grid's own session timeout. Headed Chromium on Xvfb,
PostgreSQL, GX, Airflow ``dag.test()``."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from contextlib import ExitStack

import pytest
from forward_proxy import ForwardProxy
from selenium_grid import SeleniumGrid

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
ADDRESSES = {"r1": "127.0.0.61", "r2": "127.0.0.62"}


def account(account_id: str, username: str, *, confirmed: str | None = "2026-01-06") -> dict:
    line = {"kind": "발주", "po_no": f"1{account_id[-8:]}", "sku_id": "55601", "sku_name": "옥수수차",
            "moved_date": "2026-01-04", "center": "이천1", "qty": 3, "unit_price": 11_000, "unit_supply": 10_000,
            "unit_tax": 1_000}
    return {"account_id": account_id, "vendor_name": f"거래처 {username}", "username": username,
            "password": f"pw-{username}", "sub_account_expires": "2026-12-31",
            "invoices": [{"invoice_no": f"3{account_id[-7:]}", "written_date": "2026-01-05",
                          "tax_invoice_confirmed": confirmed, "lines": [line]}]}


SCENARIO = {
    "today": "2026-01-07",
    "bot_protection": {"challenge_seconds": 0.2},
    "rocket": {"accounts": [account("V00000971", "grid_ok"), account("V00000972", "grid_taxblock", confirmed=None)]},
    "jet": {"accounts": []},
}


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A Grid of two slots, r1 and r2, each leaving through its own forward proxy (127.0.0.61, .62)."""
    with ExitStack() as stack:
        proxies = {name: stack.enter_context(ForwardProxy(address)) for name, address in ADDRESSES.items()}
        yield stack.enter_context(SeleniumGrid(tmp_path_factory.mktemp("grid"),
                                               {name: proxy.url for name, proxy in proxies.items()}))


def test_a_run_on_grid_nodes_shares_one_session_per_account_and_fetches_the_files_from_the_node(
        collection_dag, portal, warehouse, grid, monkeypatch):
    monkeypatch.setenv("SELENIUM_REMOTE_URL", grid.url)
    monkeypatch.setenv("COUPANG_SHARED_BROWSER", "true")
    monkeypatch.setenv("COUPANG_ROUTES", json.dumps([{"name": "r1", "grid_node": "r1"},
                                                     {"name": "r2", "grid_node": "r2"}]))
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    # both accounts click the 입고상세내역 page's Excel link: the browser saves the file on the node
    for account_id in ("V00000971", "V00000972"):
        name = f"AIRFLOW_CONN_{local_stack.conn_id_for('coupang_rocket', account_id).upper()}"
        connection = json.loads(os.environ[name])
        monkeypatch.setenv(name, json.dumps({**connection, "extra": {"download_mode": "browser"}}))

    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))

    assert run.state == "success"
    outcomes = warehouse.execute("SELECT account_id, task_id, status FROM sales.collection_runs "
                                 "WHERE status IN ('success', 'blocked') ORDER BY account_id").fetchall()
    assert outcomes == [("V00000971", "collect.load", "success"),
                        ("V00000972", "collect.check_tax_invoice_block", "blocked")]
    # the file came from the node through managed downloads: it is the one loaded
    assert warehouse.execute("SELECT order_id, quantity, payment_amount FROM sales.order_lines").fetchall() == [
        ("100000971", 3, 33_000)]
    signed = {user: [s.address for s in portal.state.sign_ons if s.username == user]
              for user in ("grid_ok", "grid_taxblock")}
    print(f"sign-on addresses: {signed}")
    assert all(len(addresses) == 1 for addresses in signed.values()), "one sign-on per account and run"
    assert {signed["grid_ok"][0], signed["grid_taxblock"][0]} == set(ADDRESSES.values()), \
        "each account on its own node, leaving from that node's address"
    routes = dict(warehouse.execute("SELECT DISTINCT account_id, route FROM sales.collection_runs").fetchall())
    assert {routes["V00000971"], routes["V00000972"]} == {"r1", "r2"}
    for account_id, user in (("V00000971", "grid_ok"), ("V00000972", "grid_taxblock")):
        assert signed[user] == [ADDRESSES[routes[account_id]]], "the recorded route is the node it left from"
    assert grid.sessions() == {}, "the run's end closed both sessions on the Grid"
    assert warehouse.execute("SELECT count(*) FROM sales.route_leases").fetchone()[0] == 0


def test_a_session_whose_holder_is_gone_is_closed_by_the_grids_session_timeout(tmp_path):
    """A task killed while it held a route leaves its session on the node; the Grid closes it once nobody
    has driven it for the session timeout, and the slot takes the next account's session."""
    from coupang_sales.portal.browser import session_options
    from coupang_sales.portal.routes import GRID_ROUTE_CAPABILITY
    from coupang_sales.portal.webdriver_server import close_session, new_session, session_alive

    with ForwardProxy("127.0.0.63") as proxy, SeleniumGrid(tmp_path / "grid", {"r1": proxy.url},
                                                           session_timeout=10) as grid:
        def open_on_r1():
            options = session_options(tmp_path / "downloads", profile_dir=tmp_path / f"profile-{time.monotonic()}")
            options.set_capability(GRID_ROUTE_CAPABILITY, "r1")
            driver = new_session(grid.url, options)
            driver.command_executor.close()  # the holder goes away without a word
            return driver.session_id

        orphan = open_on_r1()
        assert grid.sessions() == {"r1": orphan} and session_alive(grid.url, orphan)
        deadline = time.monotonic() + 120
        while grid.sessions() and time.monotonic() < deadline:  # the Grid's status: it drives no session
            time.sleep(2)
        assert grid.sessions() == {}, "the Grid kept an abandoned session past its timeout"
        assert not session_alive(grid.url, orphan)
        following = open_on_r1()
        assert grid.sessions() == {"r1": following}
        assert close_session(grid.url, following)
