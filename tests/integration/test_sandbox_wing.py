"""Wing as REAL-PORTALS.md §4 records it, served by the sandbox; the Wing session against it (HTTP, Chromium)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from python_calamine import CalamineWorkbook

from coupang_sales.airflow_glue.hooks import settings_from_extra
from coupang_sales.errors import CollectionError
from coupang_sales.jet import policy as jet
from coupang_sales.jet import reports
from coupang_sales.jet import v1 as jet_v1
from coupang_sales.jet.wing import XSRF_COOKIE, XSRF_HEADER, WingSession
from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.settings import load_settings
from sandbox import SandboxServer, load_scenario

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 2, 4)
D = dt.date.fromisoformat
PASSWORD = "pw-Wing-4k9s1"
PATHS = load_settings("wing").raw["paths"]  # the packaged defaults, as the sandbox serves them


def order(order_id: str, recognized: str, *, option_id: str = "87001", unit_price: int = 9_900, qty: int = 3,
          instant: int = 0, download: int = 0, cancelled: str | None = None, **extra) -> dict:
    return {"order_id": order_id, "option_id": option_id, "sku_id": "55501", "product_name": "보리차",
            "option_name": "1L x 12", "recognized_date": recognized, "unit_price": unit_price, "qty": qty,
            "coupang_discount": 0, "instant_coupon": instant, "download_coupon": download, "commission_rate": 10.8,
            "fees": [{"type": "입출고비", "amount": 650}, {"type": "배송비", "amount": 2_500}],
            "cancelled_date": cancelled, **extra}


def account(account_id: str, username: str, version: int, **extra) -> dict:
    data = {"v1_sales": []} if version == 1 else {"v2_orders": []}
    return {"account_id": account_id, "username": username, "password": PASSWORD, "version": version,
            **data, **extra}


def v1_sales() -> list[dict]:
    # Five items with the same GMV on 2 February: their order on the pages shifts from call to call.
    sales = [{"date": "2026-02-02", "option_id": f"8700{i}", "product_name": "보리차", "option_name": f"옵션 {i}",
              "qty": 1, "amount": 9_900} for i in range(1, 6)]
    sales += [{"date": "2026-02-03", "option_id": "87001", "product_name": "보리차", "option_name": "옵션 1",
               "qty": 2, "amount": 19_800}]
    return sales


def v2_orders() -> list[dict]:
    return [
        order("2100001", "2026-01-28", instant=1_000, download=500),
        order("2100002", "2026-01-30", option_id="87003", unit_price=12_900, qty=1, cancelled="2026-02-02"),
        order("2100003", "2026-02-01", qty=2, download=1_000),
        order("2100004", "2026-01-20", qty=1),  # a week before: another group
    ]


def main_scenario() -> dict:
    return {
        "today": TODAY.isoformat(),
        "jet": {"accounts": [
            account("A1", "wing_v1", 1, v1_sales=v1_sales()),
            account("A2", "wing_v2", 2, v2_orders=v2_orders(),
                    account_fees=[{"date": "2026-01-29", "type": "보관비", "amount": 1_200},
                                  {"date": "2026-01-31", "type": "반출비", "amount": 300}]),
            account("A3", "wing_sms", 2, sms_challenge=True),
            account("A4", "wing_slow", 2, v2_orders=[order("2200001", "2026-02-02")], report_ready_after_polls=1000),
            account("A5", "wing_plus", 2, v2_orders=[order("2400001", "2026-02-02", qty=2, cancelled="2026-02-03",
                                                           cancelled_qty=1)],
                    cancellation_sign="positive", additional_cost_column=False, settlement_cycle="monthly",
                    expired_links=1),
        ]},
        "faults": [],
    }


def small_scenario(faults: list[dict]) -> dict:
    return {"today": TODAY.isoformat(),
            "jet": {"accounts": [account("A9", "wing_small", 2, v2_orders=[order("2300001", "2026-02-02")])]},
            "faults": faults}


@pytest.fixture(scope="module")
def portal():
    with SandboxServer(load_scenario(main_scenario())) as server:
        yield server


@pytest.fixture(scope="module")
def plain_http_portal():
    """The main scenario with the bot wall off, for checks of the sandbox's own APIs through plain HTTP
    (which the wall refuses: tests/integration/test_defences.py)."""
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
        chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
        chrome.get("about:blank")
        return chrome

    chrome.quit = lambda: None
    yield factory
    del chrome.quit


@pytest.fixture
def open_wing(reuse_chrome, tmp_path):
    def make(server: SandboxServer, username: str, password: str = PASSWORD, *, poll_interval: float = 0.01,
             report_wait: float | None = None, v1_page_size: int | None = None, v1_amount_field: str | None = None,
             extra: dict | None = None, overrides: dict | None = None, **kwargs) -> WingSession:
        """A WingSession with settings given the way a deployment gives them (portal settings); ``extra``:
        a connection's extra, read as the hook reads it."""
        if extra is not None:
            kwargs.setdefault("timeout", 10)
            kwargs.setdefault("driver_factory", reuse_chrome)
            return WingSession(base_url=server.portal_url("wing"), username=username, password=password,
                               download_dir=tmp_path / "downloads", settings=settings_from_extra("wing", extra),
                               **kwargs)
        # a 403 is retried for a short while here (the default 30 s is for the live site)
        more = overrides or {}
        overrides = {**more, "waits": {"report_poll": poll_interval, "forbidden_retry": 0.5, **more.get("waits", {})}}
        if report_wait is not None:
            overrides["waits"]["report"] = report_wait
        if v1_page_size is not None:
            overrides["page_sizes"] = {"v1": v1_page_size}
        if v1_amount_field is not None:
            overrides["fields"] = {"v1_amount": v1_amount_field}
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("driver_factory", reuse_chrome)
        return WingSession(base_url=server.portal_url("wing"), username=username, password=password,
                           download_dir=tmp_path / "downloads", settings=load_settings("wing", overrides=overrides),
                           **kwargs)

    return make


def http_login(server: SandboxServer, username: str, password: str = PASSWORD) -> requests.Session:
    """Sign on to Wing with plain HTTP, for checks of the sandbox itself (a server without the bot wall)."""
    http = requests.Session()
    page = http.get(server.portal_url("wing") + "/", timeout=5)
    action = re.search(r'class="kc-form-login" action="([^"]+)"', page.text)[1].replace("&amp;", "&")
    http.post(server.sso_url + action, data={"username": username, "password": password}, timeout=5)
    return http


def with_xsrf(server: SandboxServer, http: requests.Session) -> dict[str, str]:
    http.get(server.portal_url("wing") + PATHS["xsrf_resource"], timeout=5)
    return {XSRF_HEADER: http.cookies.get(XSRF_COOKIE)}


def api(server: SandboxServer, key: str) -> str:
    return server.portal_url("wing") + PATHS[key]


def instant(day: str) -> str:
    return (dt.datetime.fromisoformat(day) - dt.timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def status_body(start: str, end: str) -> dict:
    return {"startDate": instant(start), "endDate": instant(end), "searchDateType": "SALES"}


# --- the sandbox as a site ---------------------------------------------------------------------


def test_wing_has_its_own_base_url_and_reports_a_second_origin(portal):
    assert portal.portal_url("wing") == portal.url + "/wing"
    assert portal.storage_url != portal.url and portal.storage_url.startswith("http://127.0.0.1:")


def test_the_xsrf_cookie_comes_from_a_later_xhr_not_the_sign_on(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "wing_v2")
    assert "WING_SESSION" in http.cookies and XSRF_COOKIE not in http.cookies, "the sign-on sets no XSRF cookie"
    home = http.get(portal.portal_url("wing") + "/", timeout=5)
    assert XSRF_COOKIE not in home.cookies and PATHS["xsrf_resource"] in home.text, "the page's script asks later"
    assert with_xsrf(portal, http)[XSRF_HEADER]


def test_the_apis_need_the_xsrf_header(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "wing_v2")
    token = with_xsrf(portal, http)[XSRF_HEADER]
    for headers in ({}, {XSRF_HEADER: "forged"}):
        refused = http.post(api(portal, "status"), json=status_body("2026-01-26", "2026-02-01"), headers=headers,
                            timeout=5)
        assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    assert http.post(api(portal, "status"), json=status_body("2026-01-26", "2026-02-01"),
                     headers={XSRF_HEADER: token}, timeout=5).status_code == 200


def test_the_old_request_shapes_are_refused(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "wing_v2")
    headers = with_xsrf(portal, http)
    old_body = {"sellerReportType": "CATEGORY_TR", "startDate": "2026-01-01", "endDate": "2026-01-07"}
    assert http.post(api(portal, "request_download"), json=old_body, headers=headers, timeout=5).status_code == 400
    assert http.get(api(portal, "download_list"), headers=headers, timeout=5).status_code == 405
    assert http.get(api(portal, "download"), params={"requestId": "80000001"}, headers=headers,
                    timeout=5).status_code == 405
    assert http.get(portal.portal_url("wing") + "/tenants/rfm/sales", timeout=5).status_code == 404
    plain_dates = {"startDate": "2026-01-26", "endDate": "2026-02-01", "searchDateType": "SALES"}
    assert http.post(api(portal, "status"), json=plain_dates, headers=headers, timeout=5).status_code == 400
    form = http.post(api(portal, "status"), data=status_body("2026-01-26", "2026-02-01"), headers=headers, timeout=5)
    assert form.status_code == 415, "JSON bodies only"


def test_settlement_groups_are_weeks_cut_at_the_month_end_each_listed_twice(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "wing_v2")
    answer = http.post(api(portal, "status"), json=status_body("2026-01-27", "2026-02-02"),
                       headers=with_xsrf(portal, http), timeout=5).json()["settlementStatusReports"]
    keys = [g["settlementGroupKey"] for g in answer]
    assert sorted(set(keys)) == ["A2-20260126-20260131", "A2-20260201-20260201", "A2-20260202-20260208"]
    assert len(keys) == 6 and sorted(g["settlementRatio"] for g in answer) == [30, 30, 30, 70, 70, 70]
    cut = next(g for g in answer if g["settlementGroupKey"] == "A2-20260126-20260131")
    assert (cut["settlementPeriodStartDate"], cut["settlementPeriodEndDate"]) == ("2026-01-25T15:00:00.000Z",
                                                                                 "2026-01-30T15:00:00.000Z")
    detail = cut["settlementStatusReportDetail"]
    assert detail["totalStorageFeeDeductionAmount"] == 1_200 and detail["totalVreturnHandlingFeeDeductionAmount"] == 300
    assert detail["totalSalesAmount"] == 29_700 + 12_900 and detail["totalWarehousingFeeDeductionAmount"] == 1_300


def test_a_report_is_pending_for_the_set_polls_then_a_link_on_the_second_origin(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "wing_v2")
    headers = with_xsrf(portal, http)
    key = "A2-20260126-20260131"
    request_time = str(int(time.time() * 1000))
    body = {"sellerReportType": "CATEGORY_TR", "requestTime": request_time, "settlementGroupKeys": [key],
            "locale": "ko"}
    made = http.post(api(portal, "request_download"), json=body, headers=headers, timeout=5)
    assert made.status_code == 200 and set(made.json()) == {"requestId", "vendorId"}
    again = http.post(api(portal, "request_download"), json=body, headers=headers, timeout=5)
    assert again.status_code == 409, "requestTime names the request: it must be new"

    def link() -> requests.Response:
        return http.post(api(portal, "download"), json={"requestTime": request_time, "locale": "ko"}, headers=headers,
                         timeout=5)

    def status() -> str:
        listing = http.post(api(portal, "download_list"), json={"requestTimeFrom": request_time,
                                                                "requestTimeTo": request_time},
                            headers=headers, timeout=5).json()
        return next(e["downloadStatus"] for e in listing if e["requestId"] == made.json()["requestId"])

    assert link().status_code == 400, "no link before the report is ready"
    assert [status(), status(), status()] == ["PENDING", "PENDING", "COMPLETED"]
    url = link().json()["url"]
    assert url.startswith(portal.storage_url + "/") and "X-Amz-Signature=" in url
    file = requests.get(url, timeout=5)  # no cookies at all
    assert file.status_code == 200 and file.content[:2] == b"PK"
    tampered = requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=5)
    assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
    assert requests.get(portal.portal_url("wing") + url.split(portal.storage_url, 1)[1], timeout=5,
                        allow_redirects=False).status_code in (302, 404), "the file is not on Wing's origin"


def test_the_reports_have_the_recorded_layouts(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "wing_v2")
    headers = with_xsrf(portal, http)
    key = "A2-20260126-20260131"
    books = {}
    for n, report in enumerate(("CATEGORY_TR", "WAREHOUSING_SHIPPING")):
        request_time = str(int(time.time() * 1000) + 10 + n)
        http.post(api(portal, "request_download"), headers=headers, timeout=5,
                  json={"sellerReportType": report, "requestTime": request_time, "settlementGroupKeys": [key],
                        "locale": "ko"})
        for _ in range(3):
            http.post(api(portal, "download_list"), headers=headers, timeout=5,
                      json={"requestTimeFrom": request_time, "requestTimeTo": request_time})
        url = http.post(api(portal, "download"), json={"requestTime": request_time, "locale": "ko"}, headers=headers,
                        timeout=5).json()["url"]
        path = ROOT / ".pytest-wing-layout.xlsx"
        path.write_bytes(requests.get(url, timeout=5).content)
        book = CalamineWorkbook.from_path(str(path))
        books[report] = {name: book.get_sheet_by_name(name).to_python(skip_empty_area=False)
                         for name in book.sheet_names}
        path.unlink()
    tr = books["CATEGORY_TR"]
    assert list(tr) == ["주문내역, 판매수수료"]
    rows = tr["주문내역, 판매수수료"]
    assert tuple(rows[1]) == jet.CATEGORY_TR_COLUMNS and len(rows[1]) == 28, "the header in row 2, 28 columns"
    assert [(r[5], r[6], r[4]) for r in rows[2:]] == [("2100001", "주문 정산", "2026-01-28"),
                                                      ("2100002", "주문 정산", "2026-01-30")], \
        "only the group's rows: the cancellation of 2100002 (2 February) is in the next group"
    ws = books["WAREHOUSING_SHIPPING"]
    assert list(ws) == ["입출고비", "배송비"]
    for name, sheet in ws.items():
        assert sheet[2][:4] == ["정산주기(종료일)", "합계", "세액", "최종비용"], "a summary in rows 3-4"
        assert sheet[3][0] == "2026-01-31"
        upper, lower = sheet[6], sheet[7]
        assert upper[0] == "주문ID" and lower[0] == "" and "1차" in lower and name in upper, "a two-row header"
        merged = [low or up for up, low in zip(upper, lower, strict=True)]
        assert merged == [c for c in jet.WAREHOUSING_SHIPPING_COLUMNS], "columns in the recorded order"
        assert sheet[8][0] == "2100001", "data from row 9"


def test_signs_and_optional_columns_follow_the_scenario(portal, open_wing, tmp_path):
    with open_wing(portal, "wing_plus") as wing:
        wing.login()
        got = wing.settlement_reports(D("2026-02-01"), D("2026-02-04"), tmp_path / "plus")
    assert [g["settlementGroupKey"] for g in got.groups] == ["A5-20260201-20260228"], "a monthly group"
    ws = reports.read_reports(got.files["WAREHOUSING_SHIPPING"], "WAREHOUSING_SHIPPING")
    assert "추가비용" not in ws.columns, "this file has no 추가비용"
    reversal = ws[ws["거래유형"] == "배송비 정산취소"]
    assert list(reversal["발생비용(A)"]) == ["1250"], "printed positive, half the fee (1 of 2 cancelled)"
    typed = reports.warehousing_shipping_rows(ws)
    assert list(typed.loc[typed["fee_type"] == "배송비 정산취소", "fee"]) == [-1_250], "negative once read"
    tr = reports.category_tr_rows(reports.read_reports(got.files["CATEGORY_TR"], "CATEGORY_TR"))
    cancel = tr[tr["is_cancellation"]].iloc[0]
    assert (cancel.quantity, cancel.gross) == (-1, -9_900)
    assert set(tr["product_name"]) == {"보리차 1L x 12"} and set(tr["option_name"]) == {"1L x 12"}
    first = [r["status"] for r in portal.state.storage_requests if "/A5/" in r["path"]]
    assert first[0] == 403, "the first link had expired and was asked for again"


def test_vi_detail_search_sums_over_the_range_and_pages_from_zero(plain_http_portal):
    portal = plain_http_portal
    http = http_login(portal, "wing_v1")
    headers = with_xsrf(portal, http)

    def search(start: str, end: str, page: int, size: int = 100) -> dict:
        body = {"startDate": start, "endDate": end, "registrationTypes": ["RFM"], "pageNumber": page,
                "pageSize": size, "sortBy": "GMV", "sortOrder": "DESC", "includeSoldVICount": True}
        answer = http.post(api(portal, "vi_detail_search"), json=body, headers=headers, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    two_days = search("2026-02-02", "2026-02-03", 0)
    sums = {str(i["vendorItemDetails"]["vendorItemId"]): i["businessInsightsMetricsResponse"]["totalGmv"]
            for i in two_days["vendorItems"]}
    assert sums["87001"] == 9_900 + 19_800, "summed over the whole range asked"
    only_active = search("2026-02-03", "2026-02-03", 0)
    assert only_active["paginationDetails"]["totalResults"] == 1
    orders = {tuple(str(i["vendorItemDetails"]["vendorItemId"]) for i in search("2026-02-02", "2026-02-02", 0)
                    ["vendorItems"]) for _ in range(6)}
    assert len(orders) > 1, "items of equal GMV come in an order that shifts between calls"
    assert search("2026-02-02", "2026-02-02", 2, size=2)["paginationDetails"] == {
        "pageNumber": 2, "pageSize": 2, "totalResults": 5, "totalPages": 3}
    assert http.post(api(portal, "vi_detail_search"), json={"startDate": "2026-02-02"}, headers=headers,
                     timeout=5).status_code == 400


# --- the session: sign-on --------------------------------------------------------------------------


def test_login_waits_for_the_xsrf_cookie(portal, open_wing):
    with open_wing(portal, "wing_v1") as wing:
        wing.login()
        assert wing.driver.current_url == portal.portal_url("wing") + "/"
        assert wing.driver.get_cookie(XSRF_COOKIE)
        assert wing.username == "wing_v1" and PASSWORD not in repr(wing)


def test_login_lands_on_the_real_landing_markers(portal, open_wing):
    with open_wing(portal, "wing_v1") as wing:
        before = len(portal.state.requests)
        wing.login()
        assert wing.driver.find_elements("css selector", "#top-header-menu")
        chain = [r.target.split("?")[0] for r in portal.state.requests[before:]]
        assert "/wing/login" in chain and "/wing/sso/login" in chain
        day = D("2026-02-02")
        assert len(wing.v1_sales(day, day)["days"][0]["items"]) == 5, "signed on: the API answers"


def test_bad_credentials_are_reported_without_the_credentials(portal, open_wing, tmp_path):
    artifacts = tmp_path / "artifacts"
    with open_wing(portal, "wing_v2", password="wrong-" + PASSWORD, artifacts_dir=artifacts) as wing:
        with pytest.raises(CollectionError) as caught:
            wing.login()
    assert caught.value.category == "bad_credentials" and "Wing" in str(caught.value)
    assert PASSWORD not in str(caught.value) and "wing_v2" not in str(caught.value)
    for path in artifacts.iterdir():
        assert PASSWORD.encode() not in path.read_bytes()


def test_an_sms_step_ends_with_auth_challenge_instead_of_waiting(portal, open_wing):
    with open_wing(portal, "wing_sms", timeout=20) as wing:
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            wing.login()
    # waiting at the SMS step would last the 20 s timeout; the margin leaves room for a loaded machine
    assert caught.value.category == "auth_challenge" and time.monotonic() - started < 15


# --- the session: v1 and v2 ------------------------------------------------------------------------


def test_v1_reads_each_day_every_page_once_per_item(portal, open_wing):
    with open_wing(portal, "wing_v1", v1_page_size=2) as wing:
        wing.login()
        before = len(portal.state.requests)
        staged = wing.v1_sales(D("2026-02-01"), D("2026-02-03"))
    calls = [r for r in portal.state.requests[before:] if "vi-detail-search" in r.target]
    assert len(calls) >= 1 + 3 + 1, "one day at a time, three pages of two on 2 February"
    assert [len(d["items"]) for d in staged["days"]] == [0, 5, 1], "only items with activity that day"
    rows = jet_v1.sales_rows(staged)
    lines = jet.transform_v1(rows, account_id="A1")
    assert list(lines["order_id"]) == list(lines["option_id"])
    assert int(lines["payment_amount"].sum()) == 5 * 9_900 + 19_800, "every item once, none twice"
    assert len(lines) == len(set(zip(lines["order_id"], lines["sales_date"], strict=True))) == 6


def test_v1_takes_the_amount_from_the_configured_field(portal, open_wing):
    with open_wing(portal, "wing_v1", v1_amount_field="totalSalesAmount") as wing:
        wing.login()
        staged = wing.v1_sales(D("2026-02-03"), D("2026-02-03"))
    with pytest.raises(CollectionError) as caught:
        jet_v1.sales_rows(staged)
    assert caught.value.category == "export_format_changed" and "totalSalesAmount" in str(caught.value)


def test_v2_reports_of_every_group_each_once_and_only_window_rows_kept(portal, open_wing, tmp_path):
    with open_wing(portal, "wing_v2") as wing:
        wing.login()
        got = wing.settlement_reports(D("2026-01-28"), D("2026-02-02"), tmp_path / "v2")
    keys = [g["settlementGroupKey"] for g in got.groups]
    assert keys == ["A2-20260126-20260131", "A2-20260201-20260201", "A2-20260202-20260208"], "listed twice, kept once"
    assert sorted(p.name for p in got.files["CATEGORY_TR"]) == [f"CATEGORY_TR__{k}.xlsx" for k in keys]
    assert json.loads(got.groups_file.read_text(encoding="utf-8")) == got.groups
    tr = reports.read_reports(got.files["CATEGORY_TR"], "CATEGORY_TR")
    ws = reports.read_reports(got.files["WAREHOUSING_SHIPPING"], "WAREHOUSING_SHIPPING")
    assert set(ws["_sheet"]) == {"입출고비", "배송비"}, "both sheets read"
    tr = reports.recognised_within(tr, D("2026-01-28"), D("2026-02-02"), source="CATEGORY_TR")
    ws = reports.recognised_within(ws, D("2026-01-28"), D("2026-02-02"), source="WAREHOUSING_SHIPPING")
    result = jet.transform_v2(tr, ws, account_id="A2")
    lines = result.order_lines.set_index("order_id")
    assert set(lines.index) == {"2100001", "2100002", "2100003"}, "2100004 is in no group of the window"
    first = lines.loc["2100001"]
    assert (first.gross_amount, first.coupon_discount, first.payment_amount) == (29_700, 1_500, 28_200)
    assert first.collected_commission == 3_207 + 320 and first.seller_shipping_fee == 650 + 2_500
    cancelled = lines.loc["2100002"]
    assert bool(cancelled.is_cancelled) and cancelled.payment_amount == 0 and cancelled.seller_shipping_fee == 0
    assert result.unmatched_cancellations.empty and result.unmatched_fees.empty


def test_a_report_that_never_gets_ready_is_portal_unavailable_after_the_wait(portal, open_wing, tmp_path):
    with open_wing(portal, "wing_slow", report_wait=0.5, poll_interval=0.05) as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.settlement_reports(TODAY, TODAY, tmp_path / "slow")
    assert caught.value.category == "portal_unavailable" and caught.value.retryable
    assert "CATEGORY_TR" in str(caught.value) and "PENDING" in str(caught.value)
    # Waits of 0.05, 0.1 and 0.2 s fit into 0.5 s, the next (0.4 s) does not: at most four polls,
    # however slow the machine (a slow machine only polls fewer times).
    polls = int(re.search(r"after (\d+) polls", str(caught.value)).group(1))
    assert 1 <= polls <= 4, str(caught.value)


def test_check_export_reads_downloaded_reports(portal, open_wing, tmp_path):
    with open_wing(portal, "wing_v2") as wing:
        wing.login()
        got = wing.settlement_reports(D("2026-02-02"), D("2026-02-02"), tmp_path / "check")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}

    def check(kind: str, path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "coupang_sales.check_export", kind, str(path)],
                              capture_output=True, text=True, env=env, timeout=60)

    tr = check("jet-category-tr", got.files["CATEGORY_TR"][0])
    assert tr.returncode == 0, tr.stderr
    assert json.loads(tr.stdout) == {"kind": "jet-category-tr", "rows": 1, "sums": {
        "판매액(A*B)": -12_900, "쿠팡지원할인(C)": 0, "판매자할인쿠폰(D+E)": 0, "판매수수료": -1_393,
        "판매수수료 VAT": -139}}, "the cancellation of 2100002, negative"
    ws = check("jet-warehousing-shipping", got.files["WAREHOUSING_SHIPPING"][0])
    assert json.loads(ws.stdout) == {"kind": "jet-warehousing-shipping", "rows": 2,
                                     "sums": {"발생비용(A)": -3_150, "할인가(B)": 0}}
    refused = check("jet-warehousing-shipping", got.files["CATEGORY_TR"][0])
    assert refused.returncode == 1 and "주문내역, 판매수수료" in refused.stderr and "발생비용(A)" in refused.stderr
    assert "airflow" not in (tr.stderr + tr.stdout).lower()


# --- faults -----------------------------------------------------------------------------------------


def test_a_server_error_once_is_portal_unavailable_then_the_retry_works(open_wing, tmp_path):
    scenario = small_scenario([{"portal": "wing", "kind": "http_500", "path_contains": "/request-download/"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.settlement_reports(TODAY, TODAY, tmp_path / "a")
        assert caught.value.category == "portal_unavailable" and "HTTP 500" in str(caught.value)
        assert "request-download" in str(caught.value)
        got = wing.settlement_reports(TODAY, TODAY, tmp_path / "b")
    assert len(reports.read_reports(got.files["CATEGORY_TR"], "CATEGORY_TR")) == 1


@pytest.mark.parametrize(("mode", "category"), [("truncated", "portal_unavailable"),
                                                 ("html", "export_format_changed"),
                                                 ("empty", "portal_unavailable")])
def test_a_broken_download_is_reported_and_not_kept(open_wing, mode, category, tmp_path):
    scenario = small_scenario([{"portal": "wing", "kind": "broken_download",
                                "path_contains": "/wing-settlement-reports/", "mode": mode}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.settlement_reports(TODAY, TODAY, tmp_path / "broken")
    assert caught.value.category == category and "CATEGORY_TR" in str(caught.value)
    assert not list((tmp_path / "broken").glob("*.xlsx*"))


def test_a_slow_download_list_is_portal_unavailable_after_the_timeout(open_wing, tmp_path):
    scenario = small_scenario([{"portal": "wing", "kind": "timeout", "path_contains": "/download-list/",
                                "delay_seconds": 30}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        wing.timeout = 1  # after the sign-on: a page load on a loaded machine may take longer than the call's wait
        started = time.monotonic()
        with pytest.raises(CollectionError) as caught:
            wing.settlement_reports(TODAY, TODAY, tmp_path / "slow")
        assert caught.value.category == "portal_unavailable" and "no answer within 1 s" in str(caught.value)
        assert time.monotonic() - started < 25, "gave up at its timeout, not when the 30 s answer came"


def test_a_session_lost_on_an_api_call_signs_on_again_with_a_fresh_token(open_wing, tmp_path):
    scenario = small_scenario([{"portal": "wing", "kind": "session_expired", "path_contains": "/download/api/v2"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        old_token = wing.driver.get_cookie(XSRF_COOKIE)["value"]
        got = wing.settlement_reports(TODAY, TODAY, tmp_path / "relogin")
        assert all(p.read_bytes()[:2] == b"PK" for files in got.files.values() for p in files)
        assert wing.driver.get_cookie(XSRF_COOKIE)["value"] != old_token
        assert len(server.state.sessions) == 1, "the lost session was replaced by a new one"


def _xsrf_answers_seen(driver) -> int:
    """How many answers of the XSRF resource the page has received (each one (re)set the cookie)."""
    from sandbox.wing import XSRF_RESOURCE_PATH

    return driver.execute_script("return performance.getEntriesByType('resource')"
                                 ".filter(e => e.name.includes(arguments[0])).length", XSRF_RESOURCE_PATH)


def test_a_stale_xsrf_cookie_is_refreshed_once(open_wing, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    with SandboxServer(small_scenario([])) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        # The sign-on makes the XSRF XHR itself; the home page makes its own 0.4 s after loading, and its
        # answer would set the real token again over a stale one put in before it lands.
        WebDriverWait(wing.driver, 60, poll_frequency=0.1).until(lambda driver: _xsrf_answers_seen(driver) >= 2)
        wing.driver.delete_cookie(XSRF_COOKIE)
        wing.driver.add_cookie({"name": XSRF_COOKIE, "value": "stale", "path": "/wing"})
        assert wing.settlement_groups(TODAY, TODAY)
        refused = [r for r in server.state.requests if r.status == 403 and "/tenants/" in r.target]
        assert len(refused) == 1 and "status/api" in refused[0].target


def test_bot_protection_on_an_api_call_is_bot_rejected(open_wing, tmp_path):
    scenario = small_scenario([{"portal": "wing", "kind": "bot_rejected", "path_contains": "/download-list/"}])
    with SandboxServer(scenario) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        with pytest.raises(CollectionError) as caught:
            wing.settlement_reports(TODAY, TODAY, tmp_path / "bot")
    assert caught.value.category == "bot_rejected" and "download list" in str(caught.value)


def test_an_xsrf_token_refused_twice_is_a_clear_error(portal, open_wing):
    with open_wing(portal, "wing_v2") as wing:
        wing.login()
        wing._xsrf_token = lambda: "forged"  # a site that moved its token elsewhere
        with pytest.raises(CollectionError) as caught:
            wing.settlement_groups(TODAY, TODAY)
    assert caught.value.category == "portal_unavailable"
    assert "HTTP 403" in str(caught.value) and XSRF_HEADER in str(caught.value) and "status/api" in str(caught.value)


# --- how the live Wing fails (REAL-PORTALS.md §6), per scenario ------------------------------------


def flaky_scenario(wing: dict, *, wall: bool = True, **account_extra) -> dict:
    raw = small_scenario([])
    raw["jet"]["accounts"][0].update(account_extra)
    return {**raw, "wing": wing, **({} if wall else {"bot_protection": {"wall": False}})}


def test_status_api_fails_at_the_recorded_rate_for_its_window_with_the_page_as_body():
    """The recorded share (31 in 32) for the recorded window (40 s): plain HTTP on a server without the wall."""
    with SandboxServer(flaky_scenario({"status_failures": {}}, wall=False)) as server:
        http = http_login(server, "wing_small")
        headers = with_xsrf(server, http)
        answers = [http.post(api(server, "status"), json=status_body("2026-02-02", "2026-02-02"), headers=headers,
                             timeout=5) for _ in range(64)]
        failed = [a for a in answers if a.status_code == 500]
        assert len(failed) == 62 and answers[31].status_code == answers[63].status_code == 200, "31 in 32 fail"
        assert "text/html" in failed[0].headers["content-type"] and "top-header-menu" in failed[0].text, \
            "the body is the signed-in Wing page"
        server.state.advance_clock(40)
        after = [http.post(api(server, "status"), json=status_body("2026-02-02", "2026-02-02"), headers=headers,
                           timeout=5).status_code for _ in range(3)]
        assert after == [200, 200, 200], "after its window status/api answers"


def test_403s_at_the_recorded_share_and_duplicate_requests_and_the_other_formats():
    """Plain HTTP on a server without the wall: one API call in five is a 403 (not the bot wall's page);
    a repeated report request answers duplicateRequest; keys with dashes, instants without milliseconds."""
    wing = {"forbidden": {}, "duplicate_requests": {}, "group_key_dates": "dashes", "instant_milliseconds": False}
    with SandboxServer(flaky_scenario(wing, wall=False)) as server:
        http = http_login(server, "wing_small")
        headers = with_xsrf(server, http)
        codes = [http.post(api(server, "status"), json=status_body("2026-02-02", "2026-02-02"), headers=headers,
                           timeout=5) for _ in range(50)]
        refused = [a for a in codes if a.status_code == 403]
        assert len(refused) == 10 and b"Access Denied" not in refused[0].content, "one in five, not a bot wall"
        group = next(a for a in codes if a.status_code == 200).json()["settlementStatusReports"][0]
        assert group["settlementGroupKey"] == "A9-2026-02-02-2026-02-08"
        assert group["settlementPeriodStartDate"] == "2026-02-01T15:00:00Z", "no milliseconds"

        def request(n: int) -> requests.Response:
            while True:  # past the 403s
                answer = http.post(api(server, "request_download"), headers=headers, timeout=5, json={
                    "sellerReportType": "CATEGORY_TR", "requestTime": str(int(time.time() * 1000) + n),
                    "settlementGroupKeys": [group["settlementGroupKey"]], "locale": "ko"})
                n += 100
                if answer.status_code != 403:
                    return answer

        assert set(request(1).json()) == {"requestId", "vendorId"}
        assert request(2).json() == {"duplicateRequest": True} and len(server.state.report_requests) == 1
        server.state.advance_clock(900)
        assert "requestId" in request(3).json(), "a request made long enough after is new"


def collected_rows(got) -> list[tuple]:
    tr = reports.category_tr_rows(reports.read_reports(got.files["CATEGORY_TR"], "CATEGORY_TR"))
    ws = reports.warehousing_shipping_rows(reports.read_reports(got.files["WAREHOUSING_SHIPPING"],
                                                                "WAREHOUSING_SHIPPING"))
    def values(frame) -> list[tuple]:  # without the column naming the file a row came from
        frame = frame.astype(str)
        frame = frame.drop(columns=[c for c in frame.columns if frame[c].str.contains(".xlsx", regex=False).any()])
        return sorted(map(tuple, frame.values.tolist()))

    return values(tr) + values(ws)


def test_a_flaky_status_api_403s_and_a_duplicate_request_still_collect_the_same_reports(open_wing, tmp_path):
    """status/api failing 31 in 32 for its window (scaled to 1.5 s, the client's budget left at its 120 s),
    one call in five a 403, and duplicateRequest for a repeat: the same rows as a Wing without faults."""
    with SandboxServer(small_scenario([])) as server, open_wing(server, "wing_small") as wing:
        wing.login()
        expected = collected_rows(wing.settlement_reports(TODAY, TODAY, tmp_path / "plain"))
    wing_faults = {"status_failures": {"window_seconds": 1.5}, "forbidden": {}, "duplicate_requests": {},
                   "group_key_dates": "dashes", "instant_milliseconds": False}
    with SandboxServer(flaky_scenario(wing_faults)) as server, \
            open_wing(server, "wing_small", overrides={"waits": {"retry_backoff": 0.1}}) as wing:
        wing.login()
        started = time.monotonic()
        first = wing.settlement_reports(TODAY, TODAY, tmp_path / "flaky")
        waited = time.monotonic() - started
        status = [r.status for r in server.state.requests if "/status/api" in r.target]
        assert status[-1] == 200 and status.count(500) >= 3 and waited >= 1.5, "retried until the window ended"
        assert 403 in [r.status for r in server.state.requests if "/tenants/" in r.target], "403s met and retried"
        assert collected_rows(first) == expected
        again = wing.settlement_reports(TODAY, TODAY, tmp_path / "again")
        assert collected_rows(again) == expected
        assert len(server.state.report_requests) == 2, "the repeat made no new request: the earlier ones were used"
        asked = [c.body for c in server.state.api_calls if c.path.endswith("/request-download/api")]
        assert len({(b["sellerReportType"], tuple(b["settlementGroupKeys"])) for b in asked}) == 2 < len(asked)
    assert [g["settlementGroupKey"] for g in first.groups] == ["A9-2026-02-02-2026-02-08"]


def test_status_api_failing_past_the_retry_budget_is_portal_unavailable(open_wing):
    with SandboxServer(flaky_scenario({"status_failures": {"share": 0.99}})) as server, \
            open_wing(server, "wing_small", overrides={"waits": {"status_retry": 0.6, "retry_backoff": 0.1}}) as wing:
        wing.login()
        before = len(server.state.requests)
        with pytest.raises(CollectionError) as caught:
            wing.settlement_groups(TODAY, TODAY)
        calls = [r for r in server.state.requests[before:] if "/status/api" in r.target]
    assert caught.value.category == "portal_unavailable" and caught.value.retryable
    assert "HTTP 500" in str(caught.value) and "status/api" in str(caught.value)
    # Waits of 0.1 and 0.2 s fit into the 0.6 s budget, a third (0.4 s) would not: at most three calls,
    # however slow the machine (a slow one makes fewer).
    assert 1 <= len(calls) <= 3, [r.status for r in calls]


def v1_listing_scenario() -> dict:
    sales = [{"date": "2026-02-02", "option_id": "87001", "product_name": "보리차", "option_name": "옵션 1", "qty": 2,
              "amount": 19_800},
             {"date": "2026-02-02", "option_id": "97001", "product_name": "직배송 보리차", "option_name": "옵션 9",
              "qty": 1, "amount": 5_000, "registration_type": "NORMAL"}]
    options = [{"option_id": f"8710{i}", "product_name": "보리차", "option_name": f"미판매 {i}"} for i in range(6)]
    options.append({"option_id": "97002", "product_name": "직배송", "option_name": "x", "registration_type": "NORMAL"})
    return {"today": TODAY.isoformat(), "jet": {"accounts": [account("A7", "wing_list", 1, v1_sales=sales,
                                                                     v1_options=options)]}}


def test_zero_sale_options_and_normal_items_load_as_nothing(open_wing):
    """vi-detail-search lists options with zero sales (totalGmv 0) and, asked for NORMAL and RFM as the live
    page asks, seller-shipped items with registrationType NORMAL: only the RFM options sold make rows."""
    extra = {"settings": {"api": {"v1_registration_types": ["NORMAL", "RFM"]},
                          "waits": {"forbidden_retry": 0.5}}, "v1_page_size": 3}
    day = D("2026-02-02")
    with SandboxServer(v1_listing_scenario()) as server, open_wing(server, "wing_list", extra=extra) as wing:
        wing.login()
        staged = wing.v1_sales(day, day)
        bodies = [c.body for c in server.state.api_calls if c.path.endswith("/vi-detail-search")]
    listed = staged["days"][0]["items"]
    assert len(listed) == 1 + 1 + 6 + 1, "every listed item read, over three pages"
    assert {str(i["vendorItemDetails"]["registrationType"]) for i in listed} == {"RFM", "NORMAL"}
    assert {b["registrationTypes"][0] for b in bodies} == {"NORMAL"} and bodies[0]["pageSize"] == 3
    rows = jet_v1.sales_rows(staged)
    assert list(rows["옵션ID"]) == ["87001"] and list(rows["판매금액"]) == [19_800], "only the RFM option sold"
    assert len(jet.transform_v1(rows, account_id="A7")) == 1


def test_each_wing_setting_in_the_connection_extra_reaches_the_sandbox(open_wing, tmp_path):
    """Paths, locale, search date type, registration types, date formats, failed statuses, page sizes and
    the pacing between 판매분석 pages and days, set in a connection's extra, as the sandbox received them."""
    raw = small_scenario([])
    raw["jet"]["accounts"][0]["v1_sales"] = [
        {"date": d, "option_id": f"8700{i}", "product_name": "보리차", "option_name": f"옵션 {i}", "qty": 1,
         "amount": 1_000 * i} for d in ("2026-02-02", "2026-02-03") for i in range(1, 4)]
    settings = {"api": {"locale": "en", "search_date_type": "PAYMENT", "v1_registration_types": ["RFM", "NORMAL"],
                        "v1_sort_order": "ASC"},
                "formats": {"status_instant": "%Y-%m-%dT%H:%M:%SZ"},
                "waits": {"v1_page": 0.3, "v1_day": 0.6, "forbidden_retry": 0.5}}
    extra = {"settings": settings, "v1_page_size": 2, "poll_interval_seconds": 0.01}
    with SandboxServer(raw) as server:
        with open_wing(server, "wing_small", extra=extra) as wing:
            wing.login()
            wing.settlement_reports(TODAY, TODAY, tmp_path / "en")
            wing.v1_sales(D("2026-02-02"), D("2026-02-03"))
        calls = server.state.api_calls
        status = next(c.body for c in calls if c.path.endswith("/status/api"))
        assert status == {"startDate": "2026-02-03T15:00:00Z", "endDate": "2026-02-03T15:00:00Z",
                          "searchDateType": "PAYMENT"}
        assert {c.body["locale"] for c in calls if c.path.endswith(("/request-download/api", "/download/api/v2"))} \
            == {"en"}
        vi = [c for c in calls if c.path.endswith("/vi-detail-search")]
        assert [(c.body["startDate"], c.body["pageNumber"]) for c in vi] == [
            ("2026-02-02", 0), ("2026-02-02", 1), ("2026-02-03", 0), ("2026-02-03", 1)]
        assert all(c.body["pageSize"] == 2 and c.body["registrationTypes"] == ["RFM", "NORMAL"]
                   and c.body["sortOrder"] == "ASC" for c in vi)
        gaps = [b.at - a.at for a, b in zip(vi, vi[1:], strict=False)]
        assert gaps[0] >= 0.3 and gaps[2] >= 0.3 and gaps[1] >= 0.6, gaps

        # a path, a date format and the failed statuses: the sandbox sees them, and refuses what it does not serve
        other = {"settings": {"paths": {"status": "/tenants/rfm/v3/settlements/status/api"},
                              "formats": {"v1_date": "%Y%m%d"}, "api": {"failed_statuses": ["PENDING"]},
                              "waits": {"forbidden_retry": 0.5}}}
        with open_wing(server, "wing_small", extra=other) as wing:
            wing.login()
            with pytest.raises(CollectionError) as moved:
                wing.settlement_groups(TODAY, TODAY)
            with pytest.raises(CollectionError) as dated:
                wing.v1_sales(TODAY, TODAY)
            with pytest.raises(CollectionError) as failed:
                wing._wait_until_ready([wing._request_report("CATEGORY_TR", "A9-20260202-20260208")])
    assert "/tenants/rfm/v3/settlements/status/api" in str(moved.value)
    assert any(r.target.startswith("/wing/tenants/rfm/v3/settlements/status/api") for r in server.state.requests)
    assert any(c.body.get("startDate") == "20260204" for c in server.state.api_calls
               if c.path.endswith("/vi-detail-search"))
    assert "HTTP 400" in str(dated.value) and "YYYY-MM-DD" in str(dated.value)
    assert failed.value.category == "portal_unavailable" and "as PENDING" in str(failed.value)
