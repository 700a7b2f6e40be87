"""Supplier Hub page objects against the sandbox: real HTTP, real headed Chromium (Xvfb)."""

from __future__ import annotations

import datetime as dt
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from python_calamine import CalamineWorkbook

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.settings import load_settings
from coupang_sales.rocket import supplier_hub as hub_module
from coupang_sales.rocket.supplier_hub import PURCHASE_ACCOUNT_HEADERS, SubAccount, SupplierHubSession
from sandbox import SandboxServer, load_scenario

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 1, 7)
DETAIL_HEADERS = ("구분", "번호", "SKU번호", "SKU명", "입고/반출시각", "물류센터", "세금타입", "수량", "단가",
                  "공급가액", "세액", "총단가", "총공급가액", "총세액", "계산서번호", "지급일")  # the export's
PASSWORD = "pw-Ok-7f3k2"
BIG_INVOICE = "70000001"  # 23 lines: three 입고상세내역 pages


def line(po_no: str, sku_id: str, qty: int, day: dt.date, *, kind: str = "발주") -> dict:
    return {"kind": kind, "po_no": po_no, "sku_id": sku_id, "sku_name": f"상품 {sku_id}", "moved_date": day.isoformat(),
            "center": "이천1", "qty": qty, "unit_price": 1000, "unit_supply": 1000, "unit_tax": 100}


def invoice(no: str, written: dt.date, lines: list[dict], *, confirmed: bool = True, **extra) -> dict:
    return {"invoice_no": no, "written_date": written.isoformat(),
            "tax_invoice_confirmed": (written + dt.timedelta(days=1)).isoformat() if confirmed else None,
            "lines": lines, **extra}


def account(account_id: str, username: str, invoices: list[dict], **extra) -> dict:
    return {"account_id": account_id, "vendor_name": f"거래처 {account_id}", "username": username,
            "password": PASSWORD, "sub_account_expires": "2026-06-30", "invoices": invoices, **extra}


def main_scenario() -> dict:
    # One invoice a day for 56 days up to today: two 일반매입계정 pages.
    days = [TODAY - dt.timedelta(days=i) for i in range(1, 56)]
    daily = [invoice(f"6{i:07d}", day, [line(f"9{i:08d}", "501", 1 + i % 5, day)]) for i, day in enumerate(days)]
    big_lines = [line(f"8{i:08d}", str(600 + i), 2, TODAY) for i in range(22)]
    big_lines.append(line("800000000", "600", -1, TODAY, kind="반출"))
    daily.append(invoice(BIG_INVOICE, TODAY, big_lines, duplicate_lines=True))
    return {
        "today": TODAY.isoformat(),
        "rocket": {"accounts": [
            account("V1", "hub_ok", daily),
            account("V2", "hub_sms", [], sms_challenge=True),
            account("V3", "hub_expired", [], sub_account_expires="2026-01-01", master_username="hub_master",
                    master_password="pw-Master-9"),
            account("V4", "hub_blocked", [invoice("40000001", TODAY, [line("1", "1", 1, TODAY)], confirmed=False)]),
        ]},
        "faults": [],
    }


def small_scenario(faults: list[dict]) -> dict:
    invoices = [invoice("10000001", TODAY, [line("1", "1", 3, TODAY)])]
    return {"today": TODAY.isoformat(), "rocket": {"accounts": [account("V9", "hub_small", invoices)]},
            "faults": faults}


@pytest.fixture(scope="module")
def portal():
    with SandboxServer(load_scenario(main_scenario())) as server:
        yield server


@pytest.fixture(scope="module")
def plain_http_portal():
    """The main scenario with the bot wall off, for checks of the sandbox's own pages and sign-on chain
    through plain HTTP (which the wall refuses: tests/integration/test_defences.py)."""
    with SandboxServer(load_scenario({**main_scenario(), "bot_protection": {"wall": False}})) as server:
        yield server


@pytest.fixture(scope="module")
def chrome(tmp_path_factory):
    """One browser for the module: a Chrome start costs more than a whole test against the sandbox."""
    driver = open_browser(tmp_path_factory.mktemp("downloads"))
    yield driver
    driver.quit()


@pytest.fixture
def reuse_chrome(chrome):
    """A driver_factory lending the module's browser with an empty cookie jar; its quit() is a no-op."""

    def factory(download_dir: Path):
        # an earlier test's session may have left a 1 s page-load timeout and a page still hanging on the
        # sandbox: a loaded machine then times out even about:blank. The session sets its own after this.
        chrome.set_page_load_timeout(20)
        chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
        chrome.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
        chrome.get("about:blank")
        return chrome

    chrome.quit = lambda: None
    yield factory
    del chrome.quit


@pytest.fixture
def open_hub(reuse_chrome, tmp_path):
    def make(server: SandboxServer, username: str, password: str = PASSWORD, **kwargs) -> SupplierHubSession:
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("driver_factory", reuse_chrome)
        return SupplierHubSession(base_url=server.url, username=username, password=password,
                                  download_dir=tmp_path / "downloads", **kwargs)

    return make


def http_login(server: SandboxServer, username: str, password: str = PASSWORD) -> requests.Session:
    """Sign on with plain HTTP, for checks of the sandbox itself (a server without the bot wall)."""
    http = requests.Session()
    page = http.get(server.url + "/", timeout=5)
    assert page.url.startswith(server.sso_url), "the chain ends on Keycloak's own origin"
    action = re.search(r'class="kc-form-login" action="([^"]+)"', page.text)[1].replace("&amp;", "&")
    http.post(server.sso_url + action, data={"username": username, "password": password}, timeout=5)
    return http


# --- sign-on -------------------------------------------------------------------------------


def test_login_with_the_default_browser_reaches_the_home_page(portal, tmp_path):
    with SupplierHubSession(base_url=portal.url, username="hub_ok", password=PASSWORD,
                            download_dir=tmp_path / "dl", timeout=10) as hub:
        hub.login()
        assert "Supplier Hub" in hub.driver.title
        assert hub.driver.current_url == portal.url + "/dashboard/KR"
        profile = hub.driver.profile_dir
    assert hub.driver is None and not profile.exists(), "the browser quit and its profile is gone"


def test_the_sign_on_goes_through_the_portals_redirect_chain(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "hub_ok")
    chain = [r.url for r in http.get(portal.url + "/", timeout=5).history]
    assert chain == [portal.url + "/"], "signed on: the home redirects to the landing page"
    targets = [r.target.split("?")[0] for r in portal.state.requests[-8:]]
    assert "/login/oauth2/code/keycloak" in targets and "/dashboard/KR" in targets


def test_a_hand_built_sign_on_url_does_not_sign_on(plain_http_portal):
    """The old shortcut: straight to Keycloak, bypassing the portal's saved authorization request."""
    portal = plain_http_portal
    http = requests.Session()
    callback = portal.url + "/login/oauth2/code/keycloak"
    auth = portal.sso_url + "/auth/realms/seller/protocol/openid-connect/auth"
    on_the_portal = requests.get(portal.url + "/auth/realms/seller/protocol/openid-connect/auth", timeout=5)
    assert on_the_portal.status_code == 404, "Keycloak is not on the portals' origin"
    no_state = http.get(auth, params={"response_type": "code", "client_id": "supplier-hub", "redirect_uri": callback,
                                      "scope": "openid"}, timeout=5)
    assert no_state.status_code == 400 and "state" in no_state.text
    old_redirect = http.get(auth, params={"response_type": "code", "client_id": "supplier-hub", "scope": "openid",
                                          "redirect_uri": portal.url + "/", "state": "x"}, timeout=5)
    assert old_redirect.status_code == 400 and "redirect_uri" in old_redirect.text
    form = http.get(auth, params={"response_type": "code", "client_id": "supplier-hub", "redirect_uri": callback,
                                  "scope": "openid", "state": "made-up"}, timeout=5)
    action = re.search(r'class="kc-form-login" action="([^"]+)"', form.text)[1].replace("&amp;", "&")
    landed = http.post(portal.sso_url + action, data={"username": "hub_ok", "password": PASSWORD}, timeout=5)
    assert landed.status_code == 401 and "authorization_request_not_found" in landed.text
    assert "SUPPLIER_HUB_SESSION" not in http.cookies


def test_a_one_time_code_and_a_form_action_work_once(plain_http_portal):
    portal = plain_http_portal
    http = requests.Session()
    form = http.get(portal.url + "/", timeout=5)
    action = re.search(r'class="kc-form-login" action="([^"]+)"', form.text)[1].replace("&amp;", "&")
    signed = http.post(portal.sso_url + action, data={"username": "hub_ok", "password": PASSWORD}, timeout=5,
                       allow_redirects=False)
    code_url = signed.headers["location"]
    assert "code=" in code_url and "state=" in code_url
    assert http.get(code_url, timeout=5).url == portal.url + "/dashboard/KR"
    replayed = requests.Session()
    replayed.cookies.update({k: v for k, v in http.cookies.items() if k != "SUPPLIER_HUB_SESSION"})
    assert "invalid_grant" in replayed.get(code_url, timeout=5).text or \
        "authorization_request_not_found" in replayed.get(code_url, timeout=5).text
    again = requests.Session().post(portal.sso_url + action, data={"username": "hub_ok", "password": PASSWORD},
                                    timeout=5)
    assert again.status_code == 400 and "SUPPLIER_HUB_SESSION" not in again.cookies, "a replayed form action fails"


def test_bad_credentials_are_reported_without_the_credentials(portal, open_hub, tmp_path):
    artifacts = tmp_path / "artifacts"
    with open_hub(portal, "hub_ok", password="wrong-" + PASSWORD, artifacts_dir=artifacts) as hub:
        with pytest.raises(CollectionError) as caught:
            hub.login()
    assert caught.value.category == "bad_credentials"
    assert "아이디 또는 비밀번호" in str(caught.value)
    assert PASSWORD not in str(caught.value) and "hub_ok" not in str(caught.value)
    saved = sorted(p.suffix for p in artifacts.iterdir())
    assert saved == [".html", ".png"]
    for path in artifacts.iterdir():
        assert PASSWORD.encode() not in path.read_bytes()
        assert b"hub_ok" not in path.read_bytes(), "the sign-on page echoes the username; it is scrubbed"


def test_an_sms_step_ends_with_auth_challenge_instead_of_waiting(portal, open_hub):
    with open_hub(portal, "hub_sms", timeout=20) as hub:
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            hub.login()
    assert caught.value.category == "auth_challenge"
    assert time.monotonic() - started < 15  # waiting at the SMS step would last the 20 s timeout


def test_an_expired_sub_account_is_reported_with_the_extension_action(portal, open_hub):
    with open_hub(portal, "hub_expired") as hub:
        with pytest.raises(CollectionError) as caught:
            hub.login()
    assert caught.value.category == "sub_account_expired"
    assert "연장하기" in caught.value.action


def test_the_master_account_extends_the_sub_account_which_can_then_sign_on(open_hub):
    with SandboxServer(main_scenario()) as server:
        with open_hub(server, "hub_master", password="pw-Master-9") as hub:
            hub.login()
            assert hub.sub_accounts() == [SubAccount("hub_expired", dt.date(2026, 1, 1))]
            new_expiry = hub.extend_sub_account("hub_expired")
            assert new_expiry == TODAY + dt.timedelta(days=90)
            assert server.state.sub_account_expires["hub_expired"] == new_expiry
            assert hub.sub_accounts() == [SubAccount("hub_expired", new_expiry)]
            with pytest.raises(CollectionError) as caught:
                hub.extend_sub_account("someone_else")
            assert caught.value.category == "configuration_error"
        with open_hub(server, "hub_expired") as hub:
            hub.login()


@pytest.mark.parametrize("mode", ["access_denied", "blank"])
def test_bot_protection_is_reported_as_bot_rejected(open_hub, mode):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "bot_rejected", "mode": mode, "times": 5}])
    settings = load_settings("supplier_hub", overrides={"waits": {"sign_on_challenge": 1, "blank_page": 1}})
    with SandboxServer(scenario) as server, open_hub(server, "hub_small", settings=settings) as hub:
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            hub.login()
    assert caught.value.category == "bot_rejected"
    assert ("blank" if mode == "blank" else "Access Denied") in str(caught.value)
    assert time.monotonic() - started < 8


def test_a_blank_page_in_an_in_page_fetch_is_bot_rejected(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "bot_rejected", "mode": "blank",
                                "path_contains": "/scm/receive/detail"}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        with pytest.raises(CollectionError, match="blank page") as caught:
            hub.download_receive_detail("10000001")
    assert caught.value.category == "bot_rejected"


def test_the_sign_on_waits_out_a_bot_challenge_of_the_configured_length(open_hub):
    scenario = {**small_scenario([]), "bot_protection": {"challenge_seconds": 2}}
    with SandboxServer(scenario) as server:
        with open_hub(server, "hub_small") as hub:
            started = time.monotonic()
            hub.login()
            assert time.monotonic() - started >= 2
            assert hub.list_invoices(TODAY, TODAY)
        short = load_settings("supplier_hub", overrides={"waits": {"sign_on_challenge": 0.5}})
        with open_hub(server, "hub_small", settings=short, timeout=1) as hub:
            with pytest.raises(CollectionError) as caught:
                hub.login()
        assert caught.value.category == "bot_rejected", "a challenge longer than the setting looks like a blank wall"


# --- 정산 -----------------------------------------------------------------------------------


def test_a_pending_tax_invoice_blocks_every_settlement_page(portal, open_hub):
    with open_hub(portal, "hub_blocked") as hub:
        hub.login()
        assert hub.settlement_blocked() is True
        with pytest.raises(CollectionError) as caught:
            hub.list_invoices(TODAY - dt.timedelta(days=7), TODAY)
        assert caught.value.category == "tax_invoice_pending" and not caught.value.retryable
        assert "미처리된 세금계산서" in str(caught.value)
        with pytest.raises(CollectionError) as caught:
            hub.download_receive_detail("40000001")
        assert caught.value.category == "tax_invoice_pending"


def test_confirming_the_tax_invoice_lifts_the_block(open_hub):
    with SandboxServer(main_scenario()) as server, open_hub(server, "hub_blocked") as hub:
        hub.login()
        assert hub.settlement_blocked()
        server.state.confirm_tax_invoice("40000001")
        assert not hub.settlement_blocked()
        assert [r["계산서번호"] for r in hub.list_invoices(TODAY, TODAY)] == ["40000001"]


def test_list_invoices_pages_through_all_rows_of_the_window(portal, open_hub):
    with open_hub(portal, "hub_ok") as hub:
        hub.login()
        rows = hub.list_invoices(TODAY - dt.timedelta(days=55), TODAY)
        assert len(rows) == 56
        assert len({r["계산서번호"] for r in rows}) == 56
        assert all(set(PURCHASE_ACCOUNT_HEADERS) <= set(r) for r in rows)
        pages = {q for q in (r.target for r in portal.state.requests) if "purchase/account" in q and "page=2" in q}
        assert pages, "the second page was read"
        week = hub.list_invoices(TODAY - dt.timedelta(days=6), TODAY)
    assert sorted(r["작성일자"] for r in week)[0] == (TODAY - dt.timedelta(days=6)).isoformat()
    assert len(week) == 7  # daily invoices of the six days before today, and today's big one
    big = next(r for r in week if r["계산서번호"] == BIG_INVOICE)
    assert big["지급예정금액"] == "47,300"  # 22 x 2 x 1,100 - 1,100, with a thousands separator
    assert big["세금계산서 확정일"] == (TODAY + dt.timedelta(days=1)).isoformat()


def test_list_invoices_of_an_empty_window_is_empty(portal, open_hub):
    with open_hub(portal, "hub_ok") as hub:
        hub.login()
        assert hub.list_invoices(dt.date(2020, 1, 1), dt.date(2020, 1, 31)) == []


def test_download_receive_detail_saves_the_real_layout_export(portal, open_hub, tmp_path):
    with open_hub(portal, "hub_ok") as hub:
        hub.login()
        path = hub.download_receive_detail(BIG_INVOICE)
    assert path == tmp_path / "downloads" / f"receive_detail_{BIG_INVOICE}.xlsx"
    assert path.read_bytes()[:2] == b"PK"
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert tuple(rows[0]) == DETAIL_HEADERS, "the header is in row 1"
    assert len(rows) == 1 + 24  # 23 lines, one of them twice
    stamp = rows[1][DETAIL_HEADERS.index("입고/반출시각")]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", stamp), stamp
    assert sum(int(r[DETAIL_HEADERS.index("총단가")].replace(",", "")) for r in rows[1:]) == 47_300 + 2_200


def test_download_receive_details_fetches_several_at_once_and_keeps_their_order(portal, open_hub):
    numbers = ["60000004", BIG_INVOICE, "60000000", "60000002", "60000001"]
    with open_hub(portal, "hub_ok", fetch_concurrency=2) as hub:
        hub.login()
        paths = hub.download_receive_details(numbers)
    assert [p.name for p in paths] == [f"receive_detail_{n}.xlsx" for n in numbers]
    for number, path in zip(numbers, paths, strict=True):
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        invoice_column = DETAIL_HEADERS.index("계산서번호")
        assert {r[invoice_column] for r in rows if r[0] in ("발주", "반출")} == {number}


def test_one_bad_invoice_in_a_batch_fails_the_batch_naming_it(portal, open_hub):
    with open_hub(portal, "hub_ok") as hub:
        hub.login()
        with pytest.raises(ExportFormatError, match="invoice 99999999"):
            hub.download_receive_details(["60000000", "99999999", "60000001"])


def test_download_receive_detail_through_the_browser(portal, open_hub):
    with open_hub(portal, "hub_ok", download_mode="browser") as hub:
        hub.login()
        path = hub.download_receive_detail("60000000")
    assert path.name == "receive_detail_60000000.xlsx" and path.read_bytes()[:2] == b"PK"
    assert [p.name for p in path.parent.iterdir()] == [path.name], "the browser's own file was taken over"


def test_an_unknown_invoice_is_reported_as_a_page_problem(portal, open_hub):
    with open_hub(portal, "hub_ok") as hub:
        hub.login()
        with pytest.raises(ExportFormatError, match="99999999"):
            hub.download_receive_detail("99999999")


def test_the_invoice_list_needs_its_search_parameters_and_repeats_its_last_page(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "hub_ok")
    url = portal.url + "/scm/settlement/general/purchase/account"
    window = {"size": 50, "startDate": (TODAY - dt.timedelta(days=55)).isoformat(), "endDate": TODAY.isoformat()}
    search = {"billIssueType": "DIRECT", "paymentPurchaseSearchType": "", "vendorPaymentInfoSeq": "",
              "paymentSearchType": "COMPLETE"}

    def numbers(**query) -> list[str]:
        return re.findall(r"<tr>\s*<td>(\d{8})</td>", http.get(url, params=query, timeout=5).text)

    assert numbers(page=1, **window) == [], "the old query (no search parameters) lists nothing"
    first, last = numbers(page=1, **window, **search), numbers(page=2, **window, **search)
    assert len(first) == 50 and len(last) == 6
    assert numbers(page=3, **window, **search) == last == numbers(page=9, **window, **search)
    assert "total-count" not in http.get(url, params={"page": 1, **window, **search}, timeout=5).text


def test_receive_detail_pages_past_two_need_the_total_count(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "hub_ok")
    url = f"{portal.url}/scm/receive/detail?vendorPaymentInfoSeq={BIG_INVOICE}"

    def cells(query: str) -> list[str]:
        body = http.get(url + query, timeout=5).text
        return re.findall(r"<tr><td>(발주|반출)</td>", body)

    assert len(cells("&page=1")) == 10 and len(cells("&page=2")) == 10
    assert cells("&page=3") == [], "the real site returns nothing past page 2 without totalCount"
    assert len(cells("&page=3&totalCount=23")) == 3


# --- an unexpected page ---------------------------------------------------------------------


def test_an_old_invented_selector_finds_nothing(portal, open_hub):
    """The sandbox's pages carry no invented classes: the old selector fails as the real site would fail it."""
    settings = load_settings("supplier_hub", overrides={
        "selectors": {"purchase_account.table": "table.purchase-account-table"}})
    with open_hub(portal, "hub_ok", settings=settings) as hub:
        hub.login()
        hub.timeout = 1.5  # only the page under test is waited for briefly
        with pytest.raises(ExportFormatError, match="일반매입계정"):
            hub.list_invoices(TODAY, TODAY)


def test_one_selector_overridden_through_a_settings_file(portal, open_hub, tmp_path):
    """A deployment changes a selector with a file, no code change: the table is found by its other header."""
    override = tmp_path / "hub.json"
    override.write_text('{"selectors": {"purchase_account.table": "//table[thead//th[.=\'작성일자\']]"}}',
                        encoding="utf-8")
    settings = load_settings("supplier_hub", settings_file=override)
    assert settings.selector("purchase_account.table") == ("xpath", "//table[thead//th[.='작성일자']]")
    with open_hub(portal, "hub_ok", settings=settings) as hub:
        hub.login()
        assert [r["계산서번호"] for r in hub.list_invoices(TODAY, TODAY)] == [BIG_INVOICE]


def test_a_missing_table_is_an_export_format_error_naming_page_and_part(portal, open_hub):
    settings = load_settings("supplier_hub", overrides={"selectors": {"purchase_account.table": "table.renamed"}})
    with open_hub(portal, "hub_ok", settings=settings) as hub:
        hub.login()
        hub.timeout = 1.5  # only the page under test is waited for briefly
        with pytest.raises(ExportFormatError) as caught:
            hub.list_invoices(TODAY, TODAY)
    assert caught.value.category == "export_format_changed"
    assert "일반매입계정" in str(caught.value) and "table" in str(caught.value)


def test_a_missing_column_is_an_export_format_error_naming_it(portal, open_hub, monkeypatch):
    monkeypatch.setattr(hub_module, "PURCHASE_ACCOUNT_HEADERS", (*PURCHASE_ACCOUNT_HEADERS, "정산일자"))
    with open_hub(portal, "hub_ok") as hub:
        hub.login()
        with pytest.raises(ExportFormatError, match="일반매입계정: the table lacks the column.s. 정산일자"):
            hub.list_invoices(TODAY, TODAY)


# --- faults ---------------------------------------------------------------------------------


def test_a_server_error_once_is_portal_unavailable_then_the_retry_works(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "http_500",
                                "path_contains": "/scm/settlement/general/purchase/account", "times": 1}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        with pytest.raises(CollectionError) as caught:
            hub.list_invoices(TODAY, TODAY)
        assert caught.value.category == "portal_unavailable" and caught.value.retryable
        assert "500" in str(caught.value)
        assert [r["계산서번호"] for r in hub.list_invoices(TODAY, TODAY)] == ["10000001"]


def test_a_server_error_on_the_download_is_portal_unavailable(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "http_500", "path_contains": "/excel"}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        with pytest.raises(CollectionError, match="HTTP 500") as caught:
            hub.download_receive_detail("10000001")
        assert caught.value.category == "portal_unavailable"
        assert hub.download_receive_detail("10000001").exists()


def test_a_bare_server_error_after_the_sign_on_form_is_portal_unavailable(open_hub):
    """A crashed sign-on answers a plain-text 500 with no title to recognise: still transient, not a changed page."""
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "http_500", "mode": "bare",
                                "path_contains": "/login-actions/authenticate"}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        with pytest.raises(CollectionError, match="HTTP 500") as caught:
            hub.login()
        assert caught.value.category == "portal_unavailable"


def test_a_password_outside_ascii_signs_on(open_hub):
    scenario = small_scenario([])
    scenario["rocket"]["accounts"][0]["password"] = "비밀-번호'\"<&>"
    with SandboxServer(scenario) as server, open_hub(server, "hub_small", password="비밀-번호'\"<&>") as hub:
        hub.login()
        assert hub.list_invoices(TODAY, TODAY)


@pytest.mark.parametrize(("mode", "category"), [("truncated", "portal_unavailable"),
                                                 ("html", "export_format_changed"),
                                                 ("empty", "portal_unavailable")])
def test_a_broken_download_is_reported_and_not_kept(open_hub, mode, category, tmp_path):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "broken_download", "path_contains": "/excel",
                                "mode": mode}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        with pytest.raises(CollectionError) as caught:
            hub.download_receive_detail("10000001")
    assert caught.value.category == category
    assert "10000001" in str(caught.value) and "/scm/receive/detail/excel" in str(caught.value)
    assert not (tmp_path / "downloads" / "receive_detail_10000001.xlsx").exists()


def test_a_lost_portal_session_is_renewed_through_keycloaks_session(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "session_expired", "mode": "portal",
                                "path_contains": "/scm/settlement", "times": 2}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        assert len(hub.list_invoices(TODAY, TODAY)) == 1
        posts = [r for r in server.state.requests if r.method == "POST" and "login-actions" in r.target]
        assert len(posts) == 1, "renewed without the password"


def test_a_lost_session_signs_on_again_once(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "session_expired",
                                "path_contains": "/scm/settlement", "times": 1}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        assert len(hub.list_invoices(TODAY, TODAY)) == 1
        assert len(server.state.sessions) == 1, "the lost session was replaced by a new one"


def test_a_session_lost_twice_is_portal_unavailable(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "session_expired",
                                "path_contains": "/scm/", "times": 3}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        with pytest.raises(CollectionError) as caught:
            hub.list_invoices(TODAY, TODAY)
    assert caught.value.category == "portal_unavailable" and "sign-on" in str(caught.value)


def test_a_lost_session_on_the_download_signs_on_again(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "session_expired", "path_contains": "/excel"}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        assert hub.download_receive_detail("10000001").read_bytes()[:2] == b"PK"


def test_a_slow_page_is_portal_unavailable_after_the_timeout(open_hub):
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "timeout", "path_contains": "/scm/settlement",
                                "delay_seconds": 30}])
    with SandboxServer(scenario) as server, open_hub(server, "hub_small") as hub:
        hub.login()
        # after the sign-on: a page load on a loaded machine may take longer than the page's wait
        hub.timeout = 1
        hub.driver.set_page_load_timeout(1)
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            hub.list_invoices(TODAY, TODAY)
        assert caught.value.category == "portal_unavailable"
        assert time.monotonic() - started < 15  # waiting at the SMS step would last the 20 s timeout
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5, "stopping the sandbox does not wait for the held answer"


def test_a_password_typed_into_a_hanging_sign_on_never_reaches_the_artifacts(open_hub, tmp_path):
    # held far longer than any of the browser's own waits (page load 10 s, scripts 30 s by default), so
    # only a sign-on that waited past its timeouts could see the answer; stopping the sandbox ends the hold
    scenario = small_scenario([{"portal": "supplier_hub", "kind": "timeout", "path_contains": "login-actions",
                                "delay_seconds": 300}])
    artifacts = tmp_path / "artifacts"
    with SandboxServer(scenario) as server, open_hub(server, "hub_small", artifacts_dir=artifacts) as hub:
        hub.timeout = 1  # the form's answer is waited for 1 s (the browser's page loads keep the default)
        with pytest.raises(CollectionError) as caught:
            hub.login()
    assert caught.value.category == "portal_unavailable"
    assert PASSWORD not in str(caught.value)
    files = list(artifacts.iterdir())
    assert files, "artifacts were saved"
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes()


# --- the command line -----------------------------------------------------------------------


def test_the_command_line_serves_a_scenario_until_sigterm():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--scenario",
                             str(ROOT / "include/sandbox/scenarios/demo.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no 'listening' line within 30 s"
        first = proc.stdout.readline()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:\d+)\n", first)
        assert match, first
        assert requests.get(match[1] + "/__sandbox__/health", timeout=5).json() == {"ok": True}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- long runs and both ways of reading 입고상세내역 ----------------------------------------------


def long_run(prefix: str, count: int, *expiries_after: int) -> tuple[list[dict], dict]:
    """``count`` one-line invoices of hub_long, and a scenario whose session expires on 입고상세내역
    after each of ``expiries_after`` requests."""
    invoices = [invoice(f"{prefix}{i}", TODAY, [line(f"7{i}", "1", 1, TODAY)]) for i in range(1, count + 1)]
    expiry = {"portal": "supplier_hub", "kind": "session_expired", "path_contains": "/scm/receive/detail?"}
    return invoices, {"today": TODAY.isoformat(), "rocket": {"accounts": [account("V8", "hub_long", invoices)]},
                      "faults": [{**expiry, "after": after} for after in expiries_after]}


def test_a_session_that_expires_twice_in_a_long_run_is_renewed_twice(open_hub):
    invoices, scenario = long_run("2000000", 6, 1, 3)
    with SandboxServer(scenario) as server, open_hub(server, "hub_long", fetch_concurrency=1) as hub:
        hub.login()
        paths = hub.download_receive_details([inv["invoice_no"] for inv in invoices])
        assert hub.renewals == 2
    assert len(paths) == 6 and all(p.read_bytes()[:2] == b"PK" for p in paths)
    assert [f["remaining"] for f in server.state.faults.remaining()] == [0, 0]


def test_pages_read_before_a_lost_session_are_kept_and_only_the_rest_asked_again(open_hub):
    invoices, scenario = long_run("2100000", 9, 4, 7)
    with SandboxServer(scenario) as server, open_hub(server, "hub_long", fetch_concurrency=1) as hub:
        hub.login()
        pages = hub.read_receive_detail_pages([inv["invoice_no"] for inv in invoices])
        assert hub.renewals == 2, "two losses, each after pages were read: not a session that keeps expiring"
        asked = [r for r in server.state.requests if "/scm/receive/detail?" in r.target]
    assert sorted(pages) == sorted(inv["invoice_no"] for inv in invoices)
    assert all(len(got["rows"]) == 1 for got in pages.values())
    assert len(asked) == 9 + 2, "each page once, and the two that met the lost session once more"


def test_receive_detail_read_from_the_pages_equals_the_export(portal, open_hub):
    from coupang_sales.rocket import policy

    with open_hub(portal, "hub_ok") as hub:
        hub.login()
        pages = hub.read_receive_detail_pages([BIG_INVOICE, "60000000"])
        path = hub.download_receive_detail(BIG_INVOICE)
    assert pages[BIG_INVOICE]["headers"][4] == "입고/반출일자"
    assert len(pages[BIG_INVOICE]["rows"]) == 23, "all three pages, the third one with totalCount"
    from_pages = policy.parse_receive_detail(policy.receive_detail_frame(
        pages[BIG_INVOICE]["headers"], pages[BIG_INVOICE]["rows"], source="pages"), source="pages")
    from_file = policy.parse_receive_detail(policy.read_receive_detail_export(path, source="file"), source="file")
    assert len(from_file) == 24, "the export repeats one line"
    assert policy.drop_duplicate_lines(from_file).lines.equals(policy.drop_duplicate_lines(from_pages).lines)
    assert (from_pages.loc[from_pages["kind"] == "반출", "total_price"] < 0).all()
