"""The sandbox defends itself as the live portals do (REAL-PORTALS.md §2, §6), and the client gets through.

Every check names the status code the refused client got. The default sandbox (no
``bot_protection`` in the scenario) is used throughout: the defences are on by default.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from coupang_sales.errors import CollectionError
from coupang_sales.jet.wing import WingSession
from coupang_sales.portal.browser import VirtualDisplay, open_browser
from coupang_sales.rocket.supplier_hub import SupplierHubSession
from sandbox import SandboxServer

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 2, 4)
PASSWORD = "pw-Door-8s2k1"


def scenario() -> dict:
    line = {"kind": "발주", "po_no": "1", "sku_id": "1", "sku_name": "보리차", "moved_date": TODAY.isoformat(),
            "center": "이천1", "qty": 2, "unit_price": 1_000, "unit_supply": 1_000, "unit_tax": 100}
    invoice = {"invoice_no": "10000001", "written_date": TODAY.isoformat(),
               "tax_invoice_confirmed": TODAY.isoformat(), "lines": [line]}

    def hub(account_id: str, username: str, **extra) -> dict:
        return {"account_id": account_id, "vendor_name": f"거래처 {account_id}", "username": username,
                "password": PASSWORD, "sub_account_expires": "2026-06-30", **extra}

    return {"today": TODAY.isoformat(),
            "rocket": {"accounts": [hub("V1", "door_hub", invoices=[invoice]),
                                    hub("V2", "door_sms", invoices=[], sms_challenge=True)]},
            "jet": {"accounts": [{"account_id": "A1", "username": "door_wing", "password": PASSWORD, "version": 2,
                                  "v2_orders": [{"order_id": "2100001", "option_id": "87001", "sku_id": "55501",
                                                 "product_name": "보리차", "recognized_date": "2026-02-02",
                                                 "unit_price": 9_900, "qty": 1, "commission_rate": 10.8}]}]}}


@pytest.fixture(scope="module")
def portal():
    with SandboxServer(scenario()) as server:
        yield server


def last_status(server: SandboxServer, path_start: str) -> int:
    return next(r.status for r in reversed(server.state.requests) if r.target.startswith(path_start))


def test_a_headless_chromium_is_refused_403(portal, tmp_path):
    driver = open_browser(tmp_path / "dl", headless=True)
    try:
        driver.get(portal.url + "/")
        driver.implicitly_wait(0)
        for _ in range(100):
            if "Access Denied" in driver.page_source:
                break
            driver.execute_script("return 1")  # the sensor posts and reloads on its own
    finally:
        driver.quit()
    status = last_status(portal, "/")
    verdicts = [v for v in portal.state.sensor_verdicts.values() if "HeadlessChrome" in v.client.user_agent]
    print(f"headless Chromium: HTTP {status}, flagged for {verdicts[0].reasons}")
    assert status == 403 and verdicts and not verdicts[0].passed
    assert "a headless user agent" in verdicts[0].reasons


def test_a_browser_with_navigator_webdriver_true_is_refused_403(portal, tmp_path):
    """Headed, but as chromedriver starts Chrome by default (--enable-automation): navigator.webdriver is true."""
    display = VirtualDisplay()
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="door-automation-")
    for flag in ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver", env={**os.environ, "DISPLAY": display.display}),
                              options=options)
    try:
        assert driver.execute_script("return navigator.webdriver") is True
        with pytest.raises(CollectionError, match="Access Denied") as refused:
            with SupplierHubSession(base_url=portal.url, username="door_hub", password=PASSWORD,
                                    download_dir=tmp_path / "dl", timeout=10,
                                    driver_factory=lambda _dir: driver) as hub:
                driver.quit = lambda: None  # this test quits it
                hub.login()
        assert refused.value.category == "bot_rejected"
    finally:
        del driver.quit
        driver.quit()
        display.stop()
        shutil.rmtree(profile, ignore_errors=True)
    flagged = [v for v in portal.state.sensor_verdicts.values() if "navigator.webdriver is true" in v.reasons]
    status = last_status(portal, "/")
    print(f"navigator.webdriver true: HTTP {status}, flagged for {flagged[0].reasons}")
    assert flagged and status == 403


def test_plain_http_with_the_right_password_is_refused_403(portal):
    http = requests.Session()
    home = http.get(portal.url + "/", timeout=5)
    sign_on = http.get(portal.sso_url + "/auth/realms/seller/protocol/openid-connect/auth", timeout=5,
                       params={"client_id": "supplier-hub", "response_type": "code", "state": "x",
                               "redirect_uri": portal.url + "/login/oauth2/code/keycloak"})
    post = http.post(portal.sso_url + "/auth/realms/seller/login-actions/authenticate?client_id=supplier-hub",
                     data={"username": "door_hub", "password": PASSWORD}, timeout=5)
    api = http.post(portal.portal_url("wing") + "/tenants/rfm/v2/settlements/status/api", json={}, timeout=5)
    print(f"plain HTTP: home {home.status_code}, sign-on page {sign_on.status_code}, "
          f"password post {post.status_code}, Wing API {api.status_code}")
    assert (home.status_code, sign_on.status_code, post.status_code, api.status_code) == (403, 403, 403, 403)
    assert "Access Denied" in post.text and "Access Denied" in api.text
    assert portal.state.sign_ons_of("door_hub") == 0


class _FromAddress(HTTPAdapter):
    """Connections from another loopback address: another client, as far as the sandbox can tell."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def test_cookies_replayed_from_another_client_are_refused_403(portal, tmp_path):
    with SupplierHubSession(base_url=portal.url, username="door_hub", password=PASSWORD,
                            download_dir=tmp_path / "dl", timeout=10) as hub:
        hub.login()
        cookies = {c["name"]: c["value"] for c in hub.driver.get_cookies()}
        agent = hub.driver.execute_script("return navigator.userAgent")
        page = portal.url + "/scm/settlement/general/purchase/account"
        assert hub._fetch_in_page([page], ["the page, in the browser"])[0][0].status == 200
    assert "_abck" in cookies and "SUPPLIER_HUB_SESSION" in cookies

    other_agent = requests.Session()
    other_agent.cookies.update(cookies)
    by_agent = other_agent.get(page, timeout=5)

    other_address = requests.Session()
    other_address.mount("http://", _FromAddress("127.0.0.9"))
    other_address.cookies.update(cookies)
    by_address = other_address.get(page, headers={"User-Agent": agent, "Accept": "text/html"}, timeout=5)
    print(f"replayed cookies: another user agent HTTP {by_agent.status_code}, "
          f"the browser's user agent from another address HTTP {by_address.status_code}")
    assert by_agent.status_code == 403 and by_address.status_code == 403
    assert "계산서번호" not in by_agent.text + by_address.text


def test_a_new_browser_process_is_signed_out_and_signs_on_once(portal, tmp_path):
    """The portal's and Keycloak's session cookies die with the browser; the profile keeps the device trust."""
    profile = tmp_path / "profile"

    def hub() -> SupplierHubSession:
        return SupplierHubSession(base_url=portal.url, username="door_sms", password=PASSWORD,
                                  download_dir=tmp_path / "dl", timeout=10,
                                  driver_factory=lambda d: open_browser(d, profile_dir=profile))

    with hub() as first:
        assert first.sign_in(lambda: "123456") is True  # a person completes the SMS step once
    with hub() as second:
        assert second.resume() is False, "a new browser process is signed out"
        second.login()
        assert second.sign_ons == 1 and second.sms_steps == 0, "one sign-on, no SMS step: the device is trusted"
    asked = [s.sms_asked for s in portal.state.sign_ons if s.username == "door_sms"]
    print(f"sign-ons of one account over two browser processes: {len(asked)}, SMS asked {asked}")
    assert asked == [True, False]


def test_a_signed_out_in_page_wing_call_renews_and_loads(portal, tmp_path):
    with WingSession(base_url=portal.portal_url("wing"), username="door_wing", password=PASSWORD,
                     download_dir=tmp_path / "dl", timeout=10) as wing:
        wing.login()
        for token in [t for t, s in portal.state.sessions.items() if s.username == "door_wing"]:
            portal.state.end_session(token)  # the portal drops the session (as at its expiry)
        # Followed, the redirect crosses to the help site and the page's fetch fails as on the live site.
        followed = wing.driver.execute_async_script(
            "const [url, done] = arguments; fetch(url, {method: 'POST', credentials: 'include'})"
            ".then((r) => done('answered ' + r.status), (e) => done(e.name + ': ' + e.message));",
            portal.portal_url("wing") + "/tenants/rfm/v2/settlements/status/api")
        assert followed == "TypeError: Failed to fetch"
        chain = [r.status for r in portal.state.requests if r.target.startswith(("/wing/tenants/rfm", "/wing/lo"))]
        assert chain[-3:] == [302, 302, 302], "API -> /login -> /logout -> the help site"

        groups = wing.settlement_groups(TODAY - dt.timedelta(days=10), TODAY)
        # Renewed once, through Keycloak's session of the same browser: no second password.
        assert wing.renewals == 1 and wing.sign_ons == 1
        assert groups, "the call made again after the renewal answered"
        files = wing.settlement_reports(TODAY - dt.timedelta(days=10), TODAY, tmp_path / "reports")
        assert files.files, "and the run's reports load"
    print(f"signed-out Wing call: redirect chain {chain[-3:]}, followed fetch {followed!r}; renewed once, "
          f"{len(groups)} settlement group(s) loaded")


def test_keycloak_and_the_help_site_are_origins_of_their_own(portal):
    hosts = {portal.url.split("//")[1].split(":")[0], portal.sso_url.split("//")[1].split(":")[0],
             portal.help_url.split("//")[1].split(":")[0]}
    assert len(hosts) == 3, "three hosts: no cookie is shared between the portals, Keycloak and the help site"
    with socket.create_connection((portal.sso_host, portal.sso_port), timeout=5):
        pass
    assert requests.get(portal.help_url + "/", timeout=5).status_code == 200
    assert requests.get(portal.sso_url + "/scm/settlement/general/purchase/account", timeout=5).status_code == 404


def test_headless_is_only_where_a_setting_asks(monkeypatch, tmp_path):
    monkeypatch.delenv("SELENIUM_HEADLESS", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    driver = open_browser(Path(tmp_path) / "dl")
    try:
        agent = driver.execute_script("return navigator.userAgent")
        webdriver_flag = driver.execute_script("return navigator.webdriver")
        display = driver.display
        assert display is not None and display.process.poll() is None, "a virtual display of its own"
    finally:
        driver.quit()
    assert "HeadlessChrome" not in agent and webdriver_flag is False
    assert display.process.poll() is not None, "the display stops with the browser"


def test_attached_to_a_chrome_a_person_started_the_session_outlives_the_task(portal, tmp_path):
    """debugger_address: the peers' way to use a profile a person signed on in; that Chrome is never closed."""
    import subprocess
    import time

    display = VirtualDisplay()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    chrome = subprocess.Popen(["/usr/bin/chromium", f"--remote-debugging-port={port}", "--no-sandbox",
                               "--no-first-run", "--disable-gpu", f"--user-data-dir={tmp_path / 'persons'}",
                               "about:blank"], env={**os.environ, "DISPLAY": display.display},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/json/version", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the person's Chrome did not start"
                time.sleep(0.1)

        def attached(download_dir):
            return open_browser(download_dir, debugger_address=f"127.0.0.1:{port}")

        def hub() -> SupplierHubSession:
            return SupplierHubSession(base_url=portal.url, username="door_hub", password=PASSWORD,
                                      download_dir=tmp_path / "dl", timeout=10, driver_factory=attached)

        with hub() as first:
            first.login()
            assert first.sign_ons == 1
        assert chrome.poll() is None, "the collector never closes a Chrome it attached to"
        with hub() as second:
            assert second.resume() is True, "the session lives in the person's Chrome: no sign-on"
            assert second.sign_ons == 0
    finally:
        chrome.terminate()
        chrome.wait(10)
        display.stop()
