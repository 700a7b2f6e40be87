"""Wing page objects against the sandbox: real HTTP, real headless Chromium, the reports read by the Jet policy."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import pytest
import requests

from coupang_sales.errors import CollectionError
from coupang_sales.exports import read_table
from coupang_sales.jet import policy as jet
from coupang_sales.jet.wing import PATHS, V1_SALES_HEADERS, XSRF_COOKIE, XSRF_HEADER, WingSession
from coupang_sales.portal.browser import open_browser
from sandbox import SandboxServer, load_scenario

pytestmark = pytest.mark.integration

TODAY = dt.date(2026, 1, 7)
D = dt.date.fromisoformat
PASSWORD = "pw-Wing-4k9s1"
V1_DAYS = 30  # two options a day: 60 rows, two pages of the sales page
OLD_ORDER = "2099999"  # recognised long before the windows the tests ask for


def order(order_id: str, recognized: str, *, option_id: str = "87001", unit_price: int = 9_900, qty: int = 3,
          coupang: int = 0, instant: int = 0, download: int = 0, cancelled: str | None = None,
          fees: tuple[int, int] = (650, 2_500)) -> dict:
    return {"order_id": order_id, "option_id": option_id, "sku_id": "55501", "product_name": "보리차",
            "recognized_date": recognized, "unit_price": unit_price, "qty": qty, "coupang_discount": coupang,
            "instant_coupon": instant, "download_coupon": download, "commission_rate": 10.8,
            "fees": [{"type": "입출고비", "amount": fees[0]}, {"type": "배송비", "amount": fees[1]}],
            "cancelled_date": cancelled}


def account(account_id: str, username: str, version: int, **extra) -> dict:
    data = {"v1_sales": []} if version == 1 else {"v2_orders": []}
    return {"account_id": account_id, "username": username, "password": PASSWORD, "version": version,
            **data, **extra}


def v1_sales() -> list[dict]:
    sales = []
    for i in range(V1_DAYS):
        day = (TODAY - dt.timedelta(days=i)).isoformat()
        sales += [{"date": day, "option_id": "87001", "product_name": "보리차", "option_name": "1L x 12",
                   "qty": 1 + i % 3, "amount": 9_900 * (1 + i % 3)},
                  {"date": day, "option_id": "87002", "product_name": "보리차", "option_name": "2L x 6",
                   "qty": 1, "amount": 11_900}]
    return sales


def v2_orders() -> list[dict]:
    return [
        order("2100001", "2026-01-05", instant=1_000, download=500),  # the example of scenario-format.md
        order("2100002", "2026-01-05", option_id="87003", unit_price=12_900, qty=1, coupang=500,
              cancelled="2026-01-06"),
        order("2100003", "2026-01-06", qty=2, download=1_000),
        order(OLD_ORDER, "2025-12-01", qty=1),
    ]


def main_scenario() -> dict:
    return {
        "today": TODAY.isoformat(),
        "jet": {"accounts": [
            account("A1", "wing_v1", 1, v1_sales=v1_sales()),
            account("A2", "wing_v2", 2, v2_orders=v2_orders(),
                    account_fees=[{"date": "2026-01-05", "type": "보관비", "amount": 1_200},
                                  {"date": "2025-12-01", "type": "보관비", "amount": 900}]),
            account("A3", "wing_sms", 2, sms_challenge=True),
            account("A4", "wing_slow", 2, v2_orders=[order("2200001", "2026-01-05")], report_ready_after_polls=1000),
        ]},
        "faults": [],
    }


def small_scenario(faults: list[dict]) -> dict:
    return {"today": TODAY.isoformat(),
            "jet": {"accounts": [account("A9", "wing_small", 2, v2_orders=[order("2300001", "2026-01-05")])]},
            "faults": faults}


@pytest.fixture(scope="module")
def portal():
    with SandboxServer(load_scenario(main_scenario())) as server:
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
        chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
        chrome.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
        chrome.get("about:blank")
        return chrome

    chrome.quit = lambda: None
    yield factory
    del chrome.quit


@pytest.fixture
def open_wing(reuse_chrome, tmp_path):
    def make(server: SandboxServer, username: str, password: str = PASSWORD, **kwargs) -> WingSession:
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("poll_interval", 0.01)
        kwargs.setdefault("driver_factory", reuse_chrome)
        return WingSession(base_url=server.portal_url("wing"), username=username, password=password,
                           download_dir=tmp_path / "downloads", **kwargs)

    return make


def http_login(server: SandboxServer, username: str, password: str = PASSWORD) -> requests.Session:
    """Sign on to Wing with plain HTTP, for checks of the sandbox itself."""
    http = requests.Session()
    page = http.get(server.portal_url("wing") + "/", timeout=5)
    action = re.search(r'class="kc-form-login" action="([^"]+)"', page.text)[1].replace("&amp;", "&")
    http.post(server.url + action, data={"username": username, "password": password}, timeout=5)
    return http


def api(server: SandboxServer, key: str) -> str:
    return server.portal_url("wing") + PATHS[key]


def read_reports(category_tr: Path, warehousing_shipping: Path) -> jet.JetV2Result:
    tr = read_table(category_tr, jet.CATEGORY_TR_COLUMNS, source=category_tr.name)
    ws = read_table(warehousing_shipping, jet.WAREHOUSING_SHIPPING_COLUMNS, source=warehousing_shipping.name)
    assert tr.header_row == ws.header_row == 3, "a title and a condition row above the header"
    assert tr.summary_rows == ws.summary_rows == 1
    return jet.transform_v2(tr.frame, ws.frame, account_id="A2")


# --- the sandbox as a site ---------------------------------------------------------------------


def test_wing_has_its_own_base_url(portal):
    assert portal.portal_url("supplier_hub") == portal.url
    assert portal.portal_url("wing") == portal.url + "/wing"
    with pytest.raises(KeyError):
        portal.portal_url("rocket_hub")


def test_the_report_apis_need_the_xsrf_header(portal):
    http = http_login(portal, "wing_v2")
    token = http.cookies.get(XSRF_COOKIE)
    assert token, "the sign-on leaves an XSRF-TOKEN cookie"
    body = {"sellerReportType": "CATEGORY_TR", "startDate": "2026-01-01", "endDate": "2026-01-07"}
    for headers in ({}, {XSRF_HEADER: "forged"}):
        refused = http.post(api(portal, "request_download"), json=body, headers=headers, timeout=5)
        assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
        assert "CSRF" in refused.json()["message"]
    assert http.get(api(portal, "download_list"), timeout=5).status_code == 403
    assert http.get(api(portal, "download"), params={"requestId": "1"}, timeout=5).status_code == 403

    answer = http.post(api(portal, "request_download"), json=body, headers={XSRF_HEADER: token}, timeout=5)
    assert answer.status_code == 200
    request_id = answer.json()["requestId"]

    def status() -> str:
        listing = http.get(api(portal, "download_list"), headers={XSRF_HEADER: token}, timeout=5).json()
        return next(e["downloadStatus"] for e in listing if e["requestId"] == request_id)

    def download() -> requests.Response:
        return http.get(api(portal, "download"), params={"requestId": request_id}, headers={XSRF_HEADER: token},
                        timeout=5)

    assert download().status_code == 409, "not before the report is ready"
    assert [status(), status(), status()] == ["REQUESTED", "IN_PROGRESS", "COMPLETED"]
    ready = download()
    assert ready.status_code == 200 and ready.content[:2] == b"PK"
    missing = http.get(api(portal, "download"), params={"requestId": "12"}, headers={XSRF_HEADER: token}, timeout=5)
    assert missing.status_code == 404


def test_a_bad_report_request_is_a_400(portal):
    http = http_login(portal, "wing_v2")
    headers = {XSRF_HEADER: http.cookies.get(XSRF_COOKIE)}
    for body in ({"sellerReportType": "STORAGE", "startDate": "2026-01-01", "endDate": "2026-01-07"},
                 {"sellerReportType": "CATEGORY_TR", "startDate": "2026/01/01", "endDate": "2026-01-07"},
                 {"sellerReportType": "CATEGORY_TR", "startDate": "2026-01-08", "endDate": "2026-01-07"}):
        assert http.post(api(portal, "request_download"), json=body, headers=headers, timeout=5).status_code == 400


# --- sign-on -------------------------------------------------------------------------------


def test_login_reaches_wing_and_leaves_the_xsrf_cookie(portal, tmp_path):
    with WingSession(base_url=portal.portal_url("wing"), username="wing_v1", password=PASSWORD,
                     download_dir=tmp_path / "dl", timeout=10) as wing:
        wing.login()
        assert wing.driver.current_url == portal.portal_url("wing") + "/"
        assert wing.driver.get_cookie(XSRF_COOKIE)
        assert wing.username == "wing_v1" and PASSWORD not in repr(wing)
        profile = wing.driver.profile_dir
    assert wing.driver is None and not profile.exists(), "the browser quit and its profile is gone"


def test_login_lands_on_the_real_landing_markers(portal, open_wing):
    with open_wing(portal, "wing_v1") as wing:
        wing.login()
        assert wing.driver.find_elements("css selector", "#top-header-menu")
        chain = [r.target.split("?")[0] for r in portal.state.requests[-8:]]
        assert "/wing/login" in chain and "/wing/sso/login" in chain
        assert len(wing.v1_sales(TODAY, TODAY)) == 2


def test_bad_credentials_are_reported_without_the_credentials(portal, open_wing, tmp_path):
    artifacts = tmp_path / "artifacts"
    with open_wing(portal, "wing_v2", password="wrong-" + PASSWORD, artifacts_dir=artifacts) as wing:
        with pytest.raises(CollectionError) as caught:
            wing.login()
    assert caught.value.category == "bad_credentials" and "Wing" in str(caught.value)
    assert PASSWORD not in str(caught.value) and "wing_v2" not in str(caught.value)
    saved = sorted(p.suffix for p in artifacts.iterdir())
    assert saved == [".html", ".png"] and all(p.name.startswith("wing_login_") for p in artifacts.iterdir())
    for path in artifacts.iterdir():
        assert PASSWORD.encode() not in path.read_bytes()
        assert b"wing_v2" not in path.read_bytes(), "the sign-on page echoes the username; it is scrubbed"


def test_an_sms_step_ends_with_auth_challenge_instead_of_waiting(portal, open_wing):
    with open_wing(portal, "wing_sms", timeout=20) as wing:
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            wing.login()
    assert caught.value.category == "auth_challenge" and not caught.value.retryable
    assert time.monotonic() - started < 5


def test_bot_protection_is_reported_as_bot_rejected(open_wing):
    scenario = small_scenario([{"portal": "wing", "kind": "bot_rejected", "times": 5}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        with pytest.raises(CollectionError) as caught:
            wing.login()
    assert caught.value.category == "bot_rejected"


def test_a_wing_fault_leaves_supplier_hub_alone():
    scenario = small_scenario([{"portal": "wing", "kind": "http_500", "times": 5}])
    with SandboxServer(scenario) as server:
        assert requests.get(server.portal_url("wing") + "/", timeout=5).status_code == 500
        assert requests.get(server.portal_url("supplier_hub") + "/", timeout=5).status_code == 200


# --- v1: the sales page ----------------------------------------------------------------------


def test_v1_sales_reads_every_page_of_the_window(portal, open_wing):
    with open_wing(portal, "wing_v1") as wing:
        wing.login()
        rows = wing.v1_sales(TODAY - dt.timedelta(days=V1_DAYS - 1), TODAY)
        assert len(rows) == 2 * V1_DAYS
        assert any("/tenants/rfm/sales" in r.target and "page=2" in r.target for r in portal.state.requests)
        two_days = wing.v1_sales(TODAY - dt.timedelta(days=1), TODAY)
        assert wing.v1_sales(dt.date(2020, 1, 1), dt.date(2020, 1, 31)) == []
    assert V1_SALES_HEADERS == jet.V1_COLUMNS
    assert all(tuple(r) == jet.V1_COLUMNS for r in rows)
    assert len({(r["판매일"], r["옵션ID"]) for r in rows}) == len(rows)
    assert sorted({r["판매일"] for r in two_days}) == ["2026-01-06", "2026-01-07"] and len(two_days) == 4
    assert {r["판매금액"] for r in two_days} == {"9,900", "19,800", "11,900"}, "amounts before coupons, with commas"

    import pandas as pd

    lines = jet.transform_v1(pd.DataFrame(two_days), account_id="A1")
    assert list(lines["order_id"]) == list(lines["option_id"])
    assert int(lines["payment_amount"].sum()) == 9_900 + 19_800 + 2 * 11_900


def test_a_bad_window_is_a_configuration_error(portal, open_wing):
    with open_wing(portal, "wing_v1") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.v1_sales(TODAY, TODAY - dt.timedelta(days=1))
        assert caught.value.category == "configuration_error"
        with pytest.raises(CollectionError) as caught:
            wing.download_settlement_report("STORAGE_FEE", TODAY, TODAY)
        assert caught.value.category == "configuration_error"


# --- v2: the settlement reports ---------------------------------------------------------------


def test_v2_reports_give_payment_fees_and_commission_of_the_policy(portal, open_wing, tmp_path):
    start, end = dt.date(2026, 1, 1), TODAY
    with open_wing(portal, "wing_v2") as wing:
        wing.login()
        polls_before = sum("download-list" in r.target for r in portal.state.requests)
        category_tr = wing.download_settlement_report("CATEGORY_TR", start, end)
        warehousing = wing.download_settlement_report("WAREHOUSING_SHIPPING", start, end)
    assert category_tr == tmp_path / "downloads" / "CATEGORY_TR_2026-01-01_2026-01-07.xlsx"
    assert warehousing.name == "WAREHOUSING_SHIPPING_2026-01-01_2026-01-07.xlsx"
    polls = sum("download-list" in r.target for r in portal.state.requests) - polls_before
    assert polls >= 2 * 3, "each report needed several polls of the download list"

    result = read_reports(category_tr, warehousing)
    lines = result.order_lines.set_index("order_id")
    assert OLD_ORDER not in lines.index, "only 매출인식일 inside the window"
    first = lines.loc["2100001"]
    assert (first.gross_amount, first.coupon_discount, first.payment_amount) == (29_700, 1_500, 28_200)
    assert first.collected_commission == 3_207 + 320  # floor(10.8 % of 29,700) and its VAT
    assert first.seller_shipping_fee == 650 + 2_500
    assert first.sales_date == D("2026-01-05")
    cancelled = lines.loc["2100002"]
    assert bool(cancelled.is_cancelled) and cancelled.payment_amount == 0
    assert cancelled.sales_date == D("2026-01-05") and cancelled.seller_shipping_fee == 0, "fees reversed too"
    assert lines.loc["2100003"].payment_amount == 19_800 - 1_000
    assert result.unmatched_cancellations.empty and result.unmatched_fees.empty
    assert result.account_fees[["fee_date", "fee_type", "amount"]].to_dict("records") == [
        {"fee_date": D("2026-01-05"), "fee_type": "보관비", "amount": 1_200}]


def test_a_cancelled_order_yields_cancellation_rows_on_its_date(portal, open_wing):
    day = dt.date(2026, 1, 6)
    with open_wing(portal, "wing_v2") as wing:
        wing.login()
        category_tr = wing.download_settlement_report("CATEGORY_TR", day, day)
        warehousing = wing.download_settlement_report("WAREHOUSING_SHIPPING", day, day)
    tr = read_table(category_tr, jet.CATEGORY_TR_COLUMNS, source="CATEGORY_TR").frame
    cancel = tr[tr["거래유형"] == "주문 정산취소"]
    assert list(cancel["주문ID"]) == ["2100002"]
    assert cancel.iloc[0]["판매액(A*B)"] == "-12,900" and cancel.iloc[0]["매출인식일"] == "2026-01-06"
    assert cancel.iloc[0]["판매수수료"] == "-1,339"  # floor(10.8 % of 12,400), negated
    assert cancel.iloc[0]["정산주기(종료일)"] == "2026-01-11", "the Sunday ending the week"
    ws = read_table(warehousing, jet.WAREHOUSING_SHIPPING_COLUMNS, source="WAREHOUSING_SHIPPING").frame
    reversals = ws[ws["주문ID"] == "2100002"]
    assert sorted(reversals["거래유형"]) == ["배송비 정산취소", "입출고비 정산취소"]
    assert sorted(reversals["발생비용(A)"]) == ["-2,500", "-650"]
    # Alone, the cancellation has no original in the window: kept visible, not loaded as a line.
    result = jet.transform_v2(tr, ws, account_id="A2")
    assert list(result.unmatched_cancellations["order_id"]) == ["2100002"]


def test_a_report_that_never_gets_ready_is_portal_unavailable(portal, open_wing):
    with open_wing(portal, "wing_slow", max_polls=3) as wing:
        wing.login()
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            wing.download_settlement_report("CATEGORY_TR", TODAY, TODAY)
    assert caught.value.category == "portal_unavailable" and caught.value.retryable
    assert "CATEGORY_TR" in str(caught.value) and "3 polls" in str(caught.value)
    assert time.monotonic() - started < 5


# --- faults ---------------------------------------------------------------------------------


def test_a_server_error_once_is_portal_unavailable_then_the_retry_works(open_wing):
    scenario = small_scenario([{"portal": "wing", "kind": "http_500", "path_contains": "/request-download/"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.download_settlement_report("CATEGORY_TR", TODAY - dt.timedelta(days=6), TODAY)
        assert caught.value.category == "portal_unavailable" and "HTTP 500" in str(caught.value)
        assert "request-download" in str(caught.value)
        path = wing.download_settlement_report("CATEGORY_TR", TODAY - dt.timedelta(days=6), TODAY)
    assert len(read_table(path, jet.CATEGORY_TR_COLUMNS, source="CATEGORY_TR").frame) == 1


def test_a_server_error_on_the_sales_page_is_portal_unavailable(open_wing):
    scenario = small_scenario([{"portal": "wing", "kind": "http_500", "path_contains": "/tenants/rfm/sales"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.v1_sales(TODAY, TODAY)
        assert caught.value.category == "portal_unavailable"
        assert wing.v1_sales(TODAY, TODAY) == []


@pytest.mark.parametrize(("mode", "category"), [("truncated", "portal_unavailable"),
                                                 ("html", "export_format_changed"),
                                                 ("empty", "portal_unavailable")])
def test_a_broken_download_is_reported_and_not_kept(open_wing, mode, category, tmp_path):
    scenario = small_scenario([{"portal": "wing", "kind": "broken_download", "path_contains": "/download/api/v2",
                                "mode": mode}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.download_settlement_report("WAREHOUSING_SHIPPING", TODAY, TODAY)
    assert caught.value.category == category
    assert "WAREHOUSING_SHIPPING" in str(caught.value) and PATHS["download"] in str(caught.value)
    assert not list((tmp_path / "downloads").glob("*.xlsx*"))


def test_a_slow_download_list_is_portal_unavailable_after_the_timeout(open_wing):
    scenario = small_scenario([{"portal": "wing", "kind": "timeout", "path_contains": "/download-list/",
                                "delay_seconds": 30}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small", timeout=1) as wing:
        wing.login()
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            wing.download_settlement_report("CATEGORY_TR", TODAY, TODAY)
        assert caught.value.category == "portal_unavailable" and "no answer within 1 s" in str(caught.value)
        assert time.monotonic() - started < 5


def test_a_session_lost_on_an_api_call_signs_on_again_with_a_fresh_token(open_wing):
    scenario = small_scenario([{"portal": "wing", "kind": "session_expired", "path_contains": "/download/api/v2"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        old_token = wing.driver.get_cookie(XSRF_COOKIE)["value"]
        path = wing.download_settlement_report("CATEGORY_TR", TODAY, TODAY)
        assert path.read_bytes()[:2] == b"PK"
        assert wing.driver.get_cookie(XSRF_COOKIE)["value"] != old_token
        assert len(server.state.sessions) == 1, "the lost session was replaced by a new one"


def test_a_session_lost_on_the_sales_page_signs_on_again(open_wing):
    scenario = small_scenario([{"portal": "wing", "kind": "session_expired", "path_contains": "/tenants/rfm/sales"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        assert wing.v1_sales(TODAY, TODAY) == []
        assert len(server.state.sessions) == 1


def test_a_stale_xsrf_cookie_is_refreshed_once(open_wing):
    with SandboxServer(small_scenario([])) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        wing.driver.add_cookie({"name": XSRF_COOKIE, "value": "stale", "path": "/wing"})
        assert wing.download_settlement_report("CATEGORY_TR", TODAY, TODAY).exists()
        refused = [r for r in server.state.requests if r.status == 403]
        assert len(refused) == 1 and "request-download" in refused[0].target


def test_bot_protection_on_an_api_call_is_bot_rejected(open_wing):
    scenario = small_scenario([{"portal": "wing", "kind": "bot_rejected", "path_contains": "/download-list/"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.download_settlement_report("CATEGORY_TR", TODAY, TODAY)
    assert caught.value.category == "bot_rejected" and "download-list" in str(caught.value)


def test_an_xsrf_token_refused_twice_is_a_clear_error(portal, open_wing):
    with open_wing(portal, "wing_v2") as wing:
        wing.login()
        wing._xsrf_token = lambda: "forged"  # a site that moved its token elsewhere
        with pytest.raises(CollectionError) as caught:
            wing.download_settlement_report("CATEGORY_TR", TODAY, TODAY)
    assert caught.value.category == "portal_unavailable"
    assert "HTTP 403" in str(caught.value) and XSRF_HEADER in str(caught.value)
    assert "request-download" in str(caught.value)
