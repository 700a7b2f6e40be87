"""The "Coupang collections" page in a real Airflow UI: the API server with the plugin, Airflow's own
sign-in (SimpleAuthManager), a real headed Chromium (Xvfb), a real warehouse (pgserver).

Set ``STATUS_PAGE_SCREENSHOT=docs/status-page.png`` to keep the page's screenshot there.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import pytest

from coupang_sales.model import Window
from coupang_sales.warehouse import record_run, upsert_account
from coupang_sales.warehouse.schema_versions import migrate

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TODAY = "2026-01-07"
ROCKET, JET = "coupang_rocket", "coupang_jet"
WINDOW = Window.ending(__import__("datetime").date(2026, 1, 6), 14)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def populate(conn) -> None:
    """Accounts as the demo leaves them: two blocked with the seller's action, one failing, the others ok."""
    for account, channel, version in (("V00012345", ROCKET, None), ("V00034567", ROCKET, None),
                                      ("V00045678", ROCKET, None), ("A00011111", JET, 1), ("A00098765", JET, 2)):
        upsert_account(conn, channel=channel, account_id=account, conn_id=f"c_{account}", jet_version=version)
    upsert_account(conn, channel=ROCKET, account_id="V00099999", conn_id="c", active=False)

    def attempt(channel, account, status, task, map_index, reason=None):
        record_run(conn, channel=channel, account_id=account, window=WINDOW, status=status, reason=reason,
                   message=f"[{reason}] ..." if reason else None, run_id="manual__2026-01-07T00:00:00+00:00",
                   task_id=task, try_number=1, dag_id=f"{channel}_sales", map_index=map_index)

    attempt(ROCKET, "V00012345", "success", "collect.load", 0)
    attempt(ROCKET, "V00034567", "blocked", "collect.check_tax_invoice_block", 1, "tax_invoice_pending")
    attempt(ROCKET, "V00045678", "blocked", "collect.check_sub_account_expiry", 2, "sub_account_expired")
    attempt(JET, "A00011111", "success", "collect.load", 0)
    attempt(JET, "A00098765", "failed", "collect.extract", 1, "portal_unavailable")


@pytest.fixture(scope="module")
def status_warehouse(scratch_database):
    import psycopg

    with scratch_database("status_page_browser") as uri:
        with psycopg.connect(uri, autocommit=True) as conn:
            migrate(conn)
            populate(conn)
        yield uri


@pytest.fixture(scope="module")
def api_server(status_warehouse, airflow_db, tmp_path_factory):
    """``airflow api-server`` on a free port with the project's plugin; yields its URL and admin password."""
    import psycopg

    import local_stack

    home = tmp_path_factory.mktemp("api-server")
    password = secrets.token_urlsafe(12)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    port = free_port()
    env = {**os.environ,
           "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
           "AIRFLOW_CONN_COUPANG_WAREHOUSE": local_stack.connection_json(
               psycopg.conninfo.make_conninfo(status_warehouse)),
           "COUPANG_TODAY": TODAY,
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = (home / "api-server.log").open("w")
    process = subprocess.Popen(["airflow", "api-server", "--port", str(port), "--host", "127.0.0.1",
                                "--workers", "1", "--apps", "core"],
                               env=env, cwd=ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"airflow api-server exited {process.returncode}: "
                            f"{(home / 'api-server.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"airflow api-server did not answer: {(home / 'api-server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, password
    finally:
        for sig, grace in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if process.poll() is not None:
                break
            os.killpg(process.pid, sig)  # its own process group: the server and its worker
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from coupang_sales.portal.browser import open_browser

    driver = open_browser(tmp_path_factory.mktemp("downloads"))
    driver.set_window_size(1500, 900)
    yield driver
    driver.quit()


def test_the_page_is_behind_airflows_sign_in(api_server):
    url, _ = api_server
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/coupang-collections/api/accounts", timeout=10)
    assert refused.value.code == 401

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as sent:
        urllib.request.build_opener(NoRedirect).open(f"{url}/coupang-collections/?state=blocked", timeout=10)
    assert sent.value.code == 303 and "/auth/login" in sent.value.headers["Location"]


def test_sign_in_then_rows_a_filter_and_a_task_log_link(api_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, password = api_server
    wait = WebDriverWait(browser, 30)
    # the page sends an unsigned browser to Airflow's login, which brings it back after sign-in
    browser.get(f"{url}/coupang-collections/")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "accounts")))

    def rows() -> dict[str, str]:
        return {tr.get_attribute("data-account"): tr.get_attribute("data-state")
                for tr in browser.find_elements(By.CSS_SELECTOR, "#accounts tbody tr[data-account]")}

    assert rows() == {"V00012345": "ok", "V00034567": "blocked", "V00045678": "blocked", "A00011111": "ok",
                      "A00098765": "failing", "V00099999": "paused"}
    blocked = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="V00045678"]').text
    assert "sub_account_expired" in blocked and "연장하기" in blocked

    # inside the Airflow UI: Browse > Coupang collections embeds the same page
    browser.get(f"{url}/plugin/coupang-collections")
    frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
    browser.switch_to.frame(frame)
    wait.until(ec.presence_of_element_located((By.ID, "accounts")))
    # filter: state blocked, channel coupang_rocket
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.NAME, "state")).select_by_value("blocked")
    Select(browser.find_element(By.NAME, "channel")).select_by_value("coupang_rocket")
    before = browser.find_element(By.ID, "accounts")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(ec.staleness_of(before))
    wait.until(ec.presence_of_element_located((By.ID, "accounts")))
    assert "state=blocked" in browser.execute_script("return location.search")
    assert rows() == {"V00034567": "blocked", "V00045678": "blocked"}
    assert "1–2 of 2" in browser.find_element(By.CSS_SELECTOR, ".pager").text
    screenshot = os.environ.get("STATUS_PAGE_SCREENSHOT")

    # the link opens the task instance (its log) of the account's newest attempt in the Airflow UI
    link = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="V00034567"] a.task-log')
    expected = (f"{url}/dags/coupang_rocket_sales/runs/manual__2026-01-07T00%3A00%3A00%2B00%3A00"
                "/tasks/collect.check_tax_invoice_block/mapped/1?try_number=1")
    assert link.get_attribute("href") == expected
    link.click()
    browser.switch_to.default_content()
    wait.until(lambda d: "/dags/" in d.current_url)
    assert unquote(browser.current_url) == unquote(expected)
    # the UI's router shows the task instance in place of the embedded page
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "iframe")
               and "collect.check_tax_invoice_block" in d.find_element(By.TAG_NAME, "body").text)
    if os.environ.get("STATUS_PAGE_LINK_SCREENSHOT"):
        time.sleep(2)
        browser.save_screenshot(os.environ["STATUS_PAGE_LINK_SCREENSHOT"])
    if screenshot:  # the unfiltered page, for docs/
        browser.get(f"{url}/plugin/coupang-collections")
        browser.switch_to.frame(wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe"))))
        wait.until(ec.presence_of_element_located((By.ID, "accounts")))
        browser.switch_to.default_content()
        time.sleep(1)
        browser.save_screenshot(str(ROOT / screenshot))
