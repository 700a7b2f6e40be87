"""Wing (Coupang Jet, Rocket Growth) page objects and the session that collects from them: v1 sales page, v2 reports."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.session import (
    SIGN_ON_PATH,
    SIGN_ON_SELECTORS,
    Locator,
    Page,
    PortalSession,
    step,
    unavailable,
)
from coupang_sales.portal.settings import PortalSettings

log = logging.getLogger(__name__)

# Every selector and path of the site, in one place: a change of the real site is a change
# here (the shared sign-on's are in coupang_sales.portal.session). Paths are relative to
# the session's base_url: https://wing.coupang.com, or the sandbox's portal_url('wing').
SELECTORS: dict[str, Locator] = {
    **SIGN_ON_SELECTORS,
    # The sign-on and its landing rule (#top-header-menu / #wing-top-main-side-menu) are
    # settings: portal/sign_on.json and jet/wing.json.
    "sales.table": (By.CSS_SELECTOR, "table.sales-table"),
    "sales.total": (By.CSS_SELECTOR, ".total-count"),
    "page.error": (By.CSS_SELECTOR, ".error-message"),
}
PATHS = {
    "sign_on": SIGN_ON_PATH,
    "home": "/",
    "v1_sales": "/tenants/rfm/sales",  # 판매 현황, per sales date and option
    "request_download": "/tenants/rfm/v2/settlements/request-download/api",  # 엑셀 다운로드 요청
    "download_list": "/tenants/rfm/v2/settlements/download-list/api",  # 엑셀 다운로드 목록
    "download": "/tenants/rfm/v2/settlements/download/api/v2",
}
CLIENT_ID = "wing"
DATE_PARAM_FORMAT = "%Y-%m-%d"
# Double-submit protection of the APIs: the cookie's value goes back in the header.
XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "x-xsrf-token"

REPORT_TYPES = ("CATEGORY_TR", "WAREHOUSING_SHIPPING")  # sellerReportType
COMPLETED = "COMPLETED"  # downloadStatus of a report ready to download
FAILED_STATUSES = ("FAILED", "ERROR", "CANCELED", "CANCELLED", "EXPIRED")
V1_SALES_HEADERS = ("판매일", "옵션ID", "등록상품명", "옵션명", "판매수량", "판매금액")


# --- page objects ------------------------------------------------------------------------


class SalesPage(Page):
    """판매 현황 (v1): sales per sales date and option, amounts before coupons, no order ID."""

    name = "판매 현황"

    def rows(self) -> list[dict[str, str]]:
        return self.read_table("sales.table", V1_SALES_HEADERS)

    def total_count(self) -> int:
        return self.count("sales.total")


# --- the session -------------------------------------------------------------------------


class WingSession(PortalSession):
    """One signed-on Wing session; a context manager that always quits the browser.

    The browser signs on and reads the v1 sales page; the v2 report APIs are called over
    plain HTTP with the browser's cookies and the XSRF-TOKEN cookie sent back as the
    x-xsrf-token header, as Wing's own pages do. Messages and logs name pages, URL paths,
    report types, dates and counts, never the username or password.
    """

    portal_name = "Wing"
    artifact_prefix = "wing"
    settings_portal = "wing"
    code_selectors = SELECTORS

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 settings: PortalSettings | None = None, timeout: float | None = None,
                 artifacts_dir: Path | None = None, driver_factory: Callable[[Path], WebDriver] = open_browser,
                 poll_interval: float = 0.5, max_polls: int = 60):
        if max_polls < 1 or poll_interval < 0:
            raise ValueError("max_polls must be at least 1 and poll_interval not negative")
        super().__init__(base_url=base_url, username=username, password=password, download_dir=download_dir,
                         settings=settings, timeout=timeout, artifacts_dir=artifacts_dir,
                         driver_factory=driver_factory)
        self.poll_interval = poll_interval
        self.max_polls = max_polls

    def __enter__(self) -> WingSession:
        return super().__enter__()

    # --- v1: 판매 현황 ---------------------------------------------------------------------

    def _sales_url(self, start: dt.date, end: dt.date, page: int) -> str:
        query = {"startDate": start.strftime(DATE_PARAM_FORMAT), "endDate": end.strftime(DATE_PARAM_FORMAT),
                 "page": page}
        return f"{self.base_url}{PATHS['v1_sales']}?{urlencode(query)}"

    @step("v1_sales")
    def v1_sales(self, start: dt.date, end: dt.date) -> list[dict[str, str]]:
        """Every 판매 현황 row whose 판매일 is in [start, end], all pages, as raw cell text keyed by
        header name (판매일, 옵션ID, 등록상품명, 옵션명, 판매수량, 판매금액)."""
        if start > end:
            raise CollectionError("configuration_error", f"판매 현황: the window {start}..{end} ends before it starts")
        rows: list[dict[str, str]] = []
        page_no, total = 1, None
        while total is None or len(rows) < total:
            found = self._visit(self._sales_url(start, end, page_no), "판매 현황",
                                {"table": "sales.table", "error": "page.error"})
            if found == "error":
                shown = self.driver.find_element(*SELECTORS["page.error"]).text.strip()
                raise ExportFormatError(f"판매 현황: the portal shows an error instead of the sales: {shown!r}")
            page = SalesPage(self.driver, SELECTORS)
            total = page.total_count() if total is None else total
            page_rows = page.rows()
            log.info("판매 현황 %s..%s page %d: %d rows (of %d)", start, end, page_no, len(page_rows), total)
            if not page_rows:
                break
            rows += page_rows
            page_no += 1
        if len(rows) != total:
            raise ExportFormatError(f"판매 현황: read {len(rows)} rows over {page_no} page(s) but the page "
                                    f"reports a total of {total}")
        return rows

    # --- v2: settlement reports --------------------------------------------------------

    @step("download_settlement_report")
    def download_settlement_report(self, report_type: str, start: dt.date, end: dt.date) -> Path:
        """Request one settlement report of [start, end] (by 매출인식일), poll the download list until
        it is COMPLETED, and save it as ``{report_type}_{start}_{end}.xlsx`` in download_dir."""
        if report_type not in REPORT_TYPES:
            raise CollectionError("configuration_error", f"not a Wing report type: {report_type!r} "
                                                         f"(known: {', '.join(REPORT_TYPES)})")
        if start > end:
            raise CollectionError("configuration_error", f"{report_type}: the window {start}..{end} ends "
                                                         "before it starts")
        what = f"{report_type} report {start}..{end}"
        request_id = self._request_report(report_type, start, end, what)
        self._wait_until_ready(request_id, what)
        response = self._api("GET", "download", f"{what} download", params={"requestId": request_id})
        body = self._check_xlsx(response.content, f"{what} ({PATHS['download']})")
        target = self.download_dir / f"{report_type}_{start.isoformat()}_{end.isoformat()}.xlsx"
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(body)
        os.replace(partial, target)  # never leave a half-written file under the final name
        log.info("downloaded the %s (request %s, %d bytes)", what, request_id, len(body))
        return target

    def _request_report(self, report_type: str, start: dt.date, end: dt.date, what: str) -> str:
        body = {"sellerReportType": report_type, "startDate": start.strftime(DATE_PARAM_FORMAT),
                "endDate": end.strftime(DATE_PARAM_FORMAT)}
        answer = self._api_json("POST", "request_download", f"{what} request", json=body)
        if isinstance(answer, dict) and isinstance(answer.get("data"), dict):
            answer = answer["data"]  # some Wing APIs wrap their answer in 'data'
        request_id = answer.get("requestId") if isinstance(answer, dict) else None
        if request_id in (None, ""):
            raise ExportFormatError(f"{what} request ({PATHS['request_download']}): the answer has no requestId")
        log.info("requested the %s (request %s)", what, request_id)
        return str(request_id)

    def _wait_until_ready(self, request_id: str, what: str) -> None:
        """Poll the download list, at most max_polls times poll_interval apart, until the request is COMPLETED."""
        status = "not listed"
        for poll in range(1, self.max_polls + 1):
            listing = self._api_json("GET", "download_list", f"{what} download list")
            if isinstance(listing, dict):
                listing = listing.get("content", listing.get("data"))
            if not isinstance(listing, list):
                raise ExportFormatError(f"{what} download list ({PATHS['download_list']}): not a list of requests")
            entry = next((e for e in listing if isinstance(e, dict) and str(e.get("requestId")) == request_id), None)
            status = str(entry.get("downloadStatus")) if entry is not None else "not listed"
            if status == COMPLETED:
                log.info("%s is ready after %d poll(s)", what, poll)
                return
            if status in FAILED_STATUSES:
                raise unavailable(f"{what}: Wing reports the request as {status}")
            if poll < self.max_polls:
                time.sleep(self.poll_interval)
        raise unavailable(f"{what}: still {status} after {self.max_polls} polls of the download list "
                          f"(~{self.max_polls * self.poll_interval:g} s)")

    def _api(self, method: str, path_key: str, what: str, **kwargs: Any) -> requests.Response:
        """One report API call; a rejected XSRF token is refreshed from a Wing page once."""
        url = self.base_url + PATHS[path_key]
        what = f"{what} ({PATHS[path_key]})"
        for attempt in (1, 2):
            if self._xsrf_token() is None:
                self._sign_on_again()  # a Wing page (re)sets the cookie
                if self._xsrf_token() is None:
                    raise ExportFormatError(f"{what}: Wing set no {XSRF_COOKIE} cookie after the sign-on, and its "
                                            f"APIs need it in the {XSRF_HEADER} header")
            response = self._request(method, url, what, **kwargs)
            if response.status_code != 403:
                break
            if attempt == 1:
                log.info("%s: HTTP 403; reloading a Wing page for a fresh %s cookie", what, XSRF_COOKIE)
                self._sign_on_again()
        if response.status_code == 403:
            raise unavailable(f"{what}: Wing refused the call with HTTP 403 although the {XSRF_HEADER} header "
                              f"carried the {XSRF_COOKIE} cookie: {self._api_message(response)}")
        if response.status_code != 200:
            raise ExportFormatError(f"{what}: HTTP {response.status_code}: {self._api_message(response)}")
        return response

    def _api_json(self, method: str, path_key: str, what: str, **kwargs: Any) -> Any:
        response = self._api(method, path_key, what, **kwargs)
        what = f"{what} ({PATHS[path_key]})"
        try:
            return response.json()
        except ValueError:
            start = " ".join(response.text[:40].split())
            if start.startswith("<"):
                raise ExportFormatError(f"{what}: Wing answered HTML instead of JSON ({start!r})") from None
            raise unavailable(f"{what}: the JSON answer is cut off or garbled "
                              f"({len(response.content)} bytes)") from None

    def _http(self) -> requests.Session:
        http = super()._http()
        token = self._xsrf_token()
        if token is not None:
            http.headers[XSRF_HEADER] = token
        http.headers["Accept"] = "application/json, */*"
        return http

    def _xsrf_token(self) -> str | None:
        cookie = self._browser().get_cookie(XSRF_COOKIE)
        # Spring writes the cookie URL-encoded; the header carries the decoded value.
        return unquote(cookie["value"]) if cookie and cookie.get("value") else None

    @staticmethod
    def _api_message(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return " ".join(response.text[:80].split()) or "(empty body)"
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])[:200]
        return str(body)[:200]
