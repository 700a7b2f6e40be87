"""The "Coupang collections" page in a real Airflow UI: the API server with the plugin and the serialised
DAGs, Airflow's own sign-in (SimpleAuthManager: an admin and a viewer), a real headed Chromium (Xvfb), a
real warehouse (pgserver).

Set ``STATUS_PAGE_SCREENSHOT=docs/status-page.png`` to keep the page's screenshot there.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pytest

from coupang_sales.model import Window
from coupang_sales.warehouse import record_run, upsert_account
from coupang_sales.warehouse.schema_versions import migrate
from coupang_sales.warehouse.status import record_expiry_warning

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TODAY = "2026-01-07"
ROCKET, JET = "coupang_rocket", "coupang_jet"
WINDOW = Window.ending(date(2026, 1, 6), 14)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


RUN_ID = "manual__2026-01-07T00:00:00+00:00"
SELLERS = {"V00012345": "주식회사 예시상사", "V00023456": "농업회사법인 햇살농산", "V00034567": "(주)바른생활",
           "V00045678": "한빛유통"}  # the demo scenario's vendor_name


def populate(conn) -> None:
    """Accounts as the demo leaves them: two blocked with the seller's action, one failing, one whose
    sub-account expires in 5 days, one behind since 3 January, the others ok."""
    for account, channel, version in (("V00012345", ROCKET, None), ("V00023456", ROCKET, None),
                                      ("V00034567", ROCKET, None), ("V00045678", ROCKET, None),
                                      ("A00011111", JET, 1), ("A00098765", JET, 2), ("A00022222", JET, 2)):
        upsert_account(conn, channel=channel, account_id=account, conn_id=f"c_{account}", jet_version=version,
                       seller_name=SELLERS.get(account))
    upsert_account(conn, channel=ROCKET, account_id="V00099999", conn_id="c", active=False)

    def attempt(channel, account, status, task, map_index, reason=None, window=WINDOW):
        record_run(conn, channel=channel, account_id=account, window=window, status=status, reason=reason,
                   message=f"[{reason}] ..." if reason else None, run_id=RUN_ID, route="direct",
                   task_id=task, try_number=1, dag_id=f"{channel}_sales", map_index=map_index)

    attempt(ROCKET, "V00012345", "success", "collect.load", 0)
    record_expiry_warning(conn, channel=ROCKET, account_id="V00012345", expires=date(2026, 1, 12), warn_days=7,
                          run_id=RUN_ID)
    attempt(ROCKET, "V00023456", "success", "collect.load", 3, window=Window.ending(date(2026, 1, 3), 14))
    attempt(ROCKET, "V00034567", "blocked", "collect.check_tax_invoice_block", 1, "tax_invoice_pending")
    attempt(ROCKET, "V00045678", "blocked", "collect.check_sub_account_expiry", 2, "sub_account_expired")
    attempt(JET, "A00011111", "success", "collect.load", 0)
    attempt(JET, "A00098765", "failed", "collect.extract", 1, "portal_unavailable")
    attempt(JET, "A00022222", "failed", "collect.extract", 2, "auth_challenge")  # stopped at the SMS step


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
    """``airflow api-server`` on a free port with the project's plugin and the serialised DAGs; yields its URL
    and the passwords (``admin``, ``viewer``)."""
    import psycopg

    import local_stack

    home = tmp_path_factory.mktemp("api-server")
    password = secrets.token_urlsafe(12)
    logins = {"admin": password, "viewer": secrets.token_urlsafe(12)}
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps(logins))
    port = free_port()
    env = {**os.environ,
           "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
           "AIRFLOW_CONN_COUPANG_WAREHOUSE": local_stack.connection_json(
               psycopg.conninfo.make_conninfo(status_warehouse)),
           "COUPANG_TODAY": TODAY,
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = (home / "api-server.log").open("w")
    # the DAGs in the metadata DB, so runs can be triggered and their task instances shown
    subprocess.run(["airflow", "dags", "reserialize"], env=env, cwd=ROOT, check=True, stdout=log,
                   stderr=subprocess.STDOUT)
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
        yield url, logins
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


def token(url: str, user: str, password: str) -> dict[str, str]:
    answer = urllib.request.urlopen(urllib.request.Request(
        f"{url}/auth/token", data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"}), timeout=30)
    return {"Authorization": f"Bearer {json.load(answer)['access_token']}"}


def first_task_instance(url: str, headers: dict[str, str]) -> None:
    """The run the warehouse's attempts name, with its first account's ``collect.load`` (map index 0), as the
    scheduler leaves a mapped task instance once it expanded the accounts."""
    import httpx

    created = httpx.post(f"{url}/api/v2/dags/{ROCKET}_sales/dagRuns", headers=headers, timeout=30,
                         json={"dag_run_id": RUN_ID, "logical_date": None, "conf": {"date": "2026-01-06"}})
    assert created.status_code == 200, created.text
    database = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        changed = db.execute("UPDATE task_instance SET map_index = 0, state = 'success' WHERE dag_id = ? "
                             "AND run_id = ? AND task_id = 'collect.load'", (f"{ROCKET}_sales", RUN_ID)).rowcount
    assert changed == 1


def test_sign_in_then_rows_a_filter_and_a_task_log_link(api_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, logins = api_server
    first_task_instance(url, token(url, "admin", logins["admin"]))
    wait = WebDriverWait(browser, 30)
    # the page sends an unsigned browser to Airflow's login, which brings it back after sign-in
    browser.get(f"{url}/coupang-collections/")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(logins["admin"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "accounts")))

    def rows() -> dict[str, str]:
        return {tr.get_attribute("data-account"): tr.get_attribute("data-state")
                for tr in browser.find_elements(By.CSS_SELECTOR, "#accounts tbody tr[data-account]")}

    assert rows() == {"V00012345": "expiring", "V00023456": "stale", "V00034567": "blocked",
                      "V00045678": "blocked", "A00011111": "ok", "A00098765": "failing", "A00022222": "blocked",
                      "V00099999": "paused"}
    sms = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="A00022222"]')
    assert sms.find_element(By.CSS_SELECTOR, "td.actions a.sign-in").get_attribute("href").endswith(
        "/coupang-collections/sign-in?channel=coupang_jet&account=A00022222")
    blocked = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="V00045678"]').text
    assert "sub_account_expired" in blocked and "연장하기" in blocked and "한빛유통" in blocked
    expiring = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="V00012345"]').text
    assert "sub-account expires 2026-01-12 (in 5 day(s))" in expiring and "주식회사 예시상사" in expiring

    # inside the Airflow UI: Browse > Coupang collections embeds the same page
    browser.get(f"{url}/plugin/coupang-collections")
    frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
    browser.switch_to.frame(frame)
    wait.until(ec.presence_of_element_located((By.ID, "accounts")))
    # filter: state blocked, channel coupang_rocket
    from selenium.webdriver.support.ui import Select

    def submit():
        before = browser.find_element(By.ID, "accounts")
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(ec.staleness_of(before))
        wait.until(ec.presence_of_element_located((By.ID, "accounts")))

    Select(browser.find_element(By.NAME, "state")).select_by_value("blocked")
    Select(browser.find_element(By.NAME, "channel")).select_by_value("coupang_rocket")
    submit()
    assert "state=blocked" in browser.execute_script("return location.search")
    assert rows() == {"V00034567": "blocked", "V00045678": "blocked"}
    assert "1–2 of 2" in browser.find_element(By.CSS_SELECTOR, ".pager").text
    # search by the seller's name, any state
    Select(browser.find_element(By.NAME, "state")).select_by_value("")
    browser.find_element(By.NAME, "q").send_keys("예시상사")
    submit()
    assert rows() == {"V00012345": "expiring"}
    screenshot = os.environ.get("STATUS_PAGE_SCREENSHOT")

    # the link of the first account (map index 0) opens its task instance in the Airflow UI
    link = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="V00012345"] a.task-log')
    expected = (f"{url}/dags/coupang_rocket_sales/runs/manual__2026-01-07T00%3A00%3A00%2B00%3A00"
                "/tasks/collect.load/mapped/0?try_number=1")
    assert link.get_attribute("href") == expected
    link.click()
    browser.switch_to.default_content()
    wait.until(lambda d: "/dags/" in d.current_url)
    assert unquote(browser.current_url) == unquote(expected)
    # the UI's router shows the task instance in place of the embedded page
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "iframe")
               and "collect.load" in d.find_element(By.TAG_NAME, "body").text)
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


def test_a_rerun_for_the_gap_is_offered_and_allowed_only_to_who_may_trigger_the_dag(api_server, browser):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, logins = api_server
    viewer = token(url, "viewer", logins["viewer"])
    page = httpx.get(f"{url}/coupang-collections/", headers=viewer, timeout=30)
    assert page.status_code == 200 and 'data-account="V00023456"' in page.text
    assert 'class="rerun"' not in page.text and 'class="sign-in"' not in page.text, \
        "a viewer may not trigger the DAGs: no action"
    refused = httpx.post(f"{url}/coupang-collections/rerun", data={"channel": ROCKET, "account": "V00023456"},
                         headers=viewer, timeout=30)
    assert refused.status_code == 403 and "coupang_rocket_sales" in refused.text

    # the admin re-runs the account collected through 3 January
    wait = WebDriverWait(browser, 30)
    browser.get(f"{url}/coupang-collections/?q=V00023456")
    wait.until(lambda d: d.find_elements(By.ID, "accounts") or d.find_elements(By.NAME, "username"))
    if browser.find_elements(By.NAME, "username"):  # run alone: not signed in by the other test
        browser.find_element(By.NAME, "username").send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(logins["admin"])
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    action = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-account="V00023456"] a.rerun')))
    assert "2026-01-04 – 2026-01-06" in browser.find_element(By.CSS_SELECTOR, 'tr[data-account="V00023456"]').text
    action.click()
    wait.until(ec.element_to_be_clickable((By.ID, "start"))).click()
    wait.until(lambda d: "/dags/coupang_rocket_sales/runs/" in d.current_url)
    run_id = unquote(browser.current_url.rsplit("/runs/", 1)[1])
    run = httpx.get(f"{url}/api/v2/dags/coupang_rocket_sales/dagRuns/{run_id}",
                    headers=token(url, "admin", logins["admin"]), timeout=30).json()
    assert run["conf"] == {"account_id": "V00023456", "from_date": "2026-01-04", "date": "2026-01-06"}
    assert run["run_type"] == "manual" and "Re-run of V00023456" in (run.get("note") or "")
