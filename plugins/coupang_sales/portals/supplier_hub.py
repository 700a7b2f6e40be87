"""Supplier Hub (Coupang Rocket) page objects and the browser session that collects from them."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import requests
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portals.browser import open_browser

log = logging.getLogger(__name__)

Locator = tuple[str, str]

# Every selector of the site, in one place: a change of the real site is a change here.
SELECTORS: dict[str, Locator] = {
    # Sign-on (Keycloak, realm 'seller'). The page also holds a 가입하기 form, so the submit
    # button is looked up inside the form that holds the password field.
    "sign_on.form": (By.XPATH, "//form[.//input[@name='password']]"),
    "sign_on.username": (By.CSS_SELECTOR, "input[name='username']"),
    "sign_on.password": (By.CSS_SELECTOR, "input[name='password']"),
    "sign_on.submit": (By.CSS_SELECTOR, "button[type='submit'], input[type='submit']"),
    "sign_on.error": (By.CSS_SELECTOR, ".alert-error, .kc-feedback-text, #input-error"),
    "sign_on.sms_code": (By.XPATH, "//input[contains(@placeholder, '인증') or contains(@placeholder, 'code')"
                                   " or contains(@placeholder, 'Code') or @autocomplete='one-time-code']"),
    "sign_on.sub_account_expired": (By.XPATH, "//body[contains(., '부계정') and contains(., '만료')"
                                              " and not(.//input[@name='password'])]"),
    # Pages any step may land on instead of the one asked for.
    "access_denied": (By.XPATH, "//h1[contains(., 'Access Denied')]"),
    "server_error": (By.XPATH, "/html/head/title[contains(., 'Internal Server Error') or contains(., 'Bad Gateway')"
                               " or contains(., 'Service Unavailable') or contains(., 'Gateway Timeout')]"),
    # Portal pages.
    "home.nav": (By.CSS_SELECTOR, "nav.gnb"),
    "settlement.tax_invoice_notice": (By.XPATH, "//*[contains(@class, 'unprocessed-tax-invoice-notice')]"
                                                " | //*[contains(text(), '미처리된 세금계산서')]"),
    "purchase_account.table": (By.CSS_SELECTOR, "table.purchase-account-table"),
    "purchase_account.total": (By.CSS_SELECTOR, ".total-count"),
    "receive_detail.table": (By.CSS_SELECTOR, "table.receive-detail-table"),
    "receive_detail.excel": (By.CSS_SELECTOR, "a.btn-excel-download"),
    "page.error": (By.CSS_SELECTOR, ".error-message"),
    "sub_accounts.table": (By.CSS_SELECTOR, "table.sub-account-table"),
    "sub_accounts.extend": (By.XPATH, ".//button[contains(normalize-space(.), '연장하기')]"),
}

PATHS = {
    "sign_on": "/auth/realms/seller/protocol/openid-connect/auth",
    "home": "/",
    "purchase_account": "/scm/settlement/general/purchase/account",  # 정산 > 일반매입계정
    "receive_detail": "/scm/receive/detail",  # 입고상세내역
    "sub_accounts": "/scm/sub-accounts",  # 부계정 관리
}
CLIENT_ID = "supplier-hub"
DATE_PARAM_FORMAT = "%Y-%m-%d"
LIST_PAGE_SIZE = 50

PURCHASE_ACCOUNT_HEADERS = ("계산서번호", "거래처명", "작성일자", "지급일자", "과세유형", "발주유형", "정산유형",
                            "발행유형", "공급가액", "부가가치세", "지급예정금액", "세금계산서 확정일", "1차 지급일",
                            "1차 지급액", "2차 지급액")
SUB_ACCOUNT_HEADERS = ("아이디", "만료일")

# Reads a whole table in one round trip: per-cell WebDriver calls cost a few ms each.
_READ_TABLE_JS = """
const table = arguments[0];
const text = (el) => el.textContent.replace(/\\s+/g, ' ').trim();
const heads = Array.from(table.querySelectorAll('thead th')).map(text);
const rows = Array.from(table.querySelectorAll('tbody tr')).map(
    (tr) => Array.from(tr.cells).map((td) => [text(td), td.colSpan]));
return [heads, rows];
"""
# Run before any screenshot or page dump, so no credential can end up in an artifact.
_CLEAR_CREDENTIALS_JS = """
document.querySelectorAll("input[type=password], input[name=password], input[name=username]").forEach((e) => {
    e.value = ''; e.setAttribute('value', '');
});
"""
MAX_RELOGINS = 1
_SAFE_INVOICE_NO = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class SubAccount:
    username: str
    expires: dt.date  # 만료일


def _unavailable(message: str) -> CollectionError:
    return CollectionError("portal_unavailable", message)


def _path(url: str) -> str:
    """A URL reduced to its path, the only part that goes into messages."""
    return urlsplit(url).path or "/"


def _parse_date(text: str) -> dt.date | None:
    match = re.search(r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})", text)
    return dt.date(int(match[1]), int(match[2]), int(match[3])) if match else None


# --- page objects ------------------------------------------------------------------------


class _Page:
    name = "page"

    def __init__(self, driver: WebDriver):
        self.driver = driver

    def find_all(self, key: str, within: WebElement | WebDriver | None = None) -> list[WebElement]:
        return (within or self.driver).find_elements(*SELECTORS[key])

    def find(self, key: str, within: WebElement | WebDriver | None = None) -> WebElement:
        found = self.find_all(key, within)
        if not found:
            raise ExportFormatError(f"{self.name}: the page has no {key.split('.')[-1]} ({SELECTORS[key][1]})")
        return found[0]

    def read_table(self, key: str, required: tuple[str, ...]) -> list[dict[str, str]]:
        """The rows of a table keyed by header text, after checking the required headers."""
        heads, rows = self.driver.execute_script(_READ_TABLE_JS, self.find(key))
        missing = [h for h in required if h not in heads]
        if missing:
            raise ExportFormatError(f"{self.name}: the table lacks the column(s) {', '.join(missing)}; "
                                    f"it has {', '.join(h for h in heads if h)}")
        out = []
        for cells in rows:
            if len(cells) == 1 and cells[0][1] > 1:
                continue  # the '조회된 데이터가 없습니다' row spans the whole table
            if len(cells) != len(heads):
                raise ExportFormatError(f"{self.name}: a row has {len(cells)} cells under {len(heads)} headers")
            out.append({h: text for h, (text, _) in zip(heads, cells, strict=True) if h})
        return out


class SignOnPage(_Page):
    """The Keycloak sign-on form (xauth.coupang.com, realm 'seller')."""

    name = "sign-on page"

    def submit(self, username: str, password: str) -> WebElement:
        """Fill in and submit the login form; returns the form, to wait for it to go stale."""
        form = self.find("sign_on.form")
        user = self.find("sign_on.username", form)
        user.clear()
        user.send_keys(username)
        secret = self.find("sign_on.password", form)
        secret.clear()
        secret.send_keys(password)
        self.find("sign_on.submit", form).click()
        return form

    def error_text(self) -> str:
        found = self.find_all("sign_on.error")
        return found[0].text.strip() if found else ""


class PurchaseAccountPage(_Page):
    """정산 > 일반매입계정: the settlement invoices, 50 a page."""

    name = "일반매입계정"

    def rows(self) -> list[dict[str, str]]:
        return self.read_table("purchase_account.table", PURCHASE_ACCOUNT_HEADERS)

    def total_count(self) -> int:
        text = self.find("purchase_account.total").text
        digits = re.sub(r"[^\d]", "", text)
        if not digits:
            raise ExportFormatError(f"{self.name}: the total count reads {text!r}, not a number")
        return int(digits)


class ReceiveDetailPage(_Page):
    """입고상세내역 of one invoice, with its Excel download link."""

    name = "입고상세내역"

    def excel_url(self) -> str:
        href = self.find("receive_detail.excel").get_attribute("href")
        if not href:
            raise ExportFormatError(f"{self.name}: the Excel download link has no address")
        return href


class SubAccountsPage(_Page):
    """부계정 관리: the sub-accounts with their expiry date and a 연장하기 button each."""

    name = "부계정 관리"

    def sub_accounts(self) -> list[SubAccount]:
        out = []
        for row in self.read_table("sub_accounts.table", SUB_ACCOUNT_HEADERS):
            expires = _parse_date(row["만료일"])
            if expires is None:
                raise ExportFormatError(f"{self.name}: 만료일 reads {row['만료일']!r}, not a date")
            out.append(SubAccount(row["아이디"], expires))
        return out

    def extend_button(self, username: str) -> WebElement | None:
        table = self.find("sub_accounts.table")
        heads = [th.text.strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
        column = heads.index("아이디")
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
            cells = row.find_elements(By.CSS_SELECTOR, "td")
            if len(cells) > column and cells[column].text.strip() == username:
                buttons = self.find_all("sub_accounts.extend", row)
                if not buttons:
                    raise ExportFormatError(f"{self.name}: the sub-account's row has no 연장하기 button")
                return buttons[0]
        return None


# --- the session -------------------------------------------------------------------------

T = TypeVar("T")


def _step(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn browser failures of one step into CollectionErrors and keep artifacts of any failure."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: SupplierHubSession, *args: Any, **kwargs: Any) -> T:
            try:
                return method(self, *args, **kwargs)
            except CollectionError:
                self._save_artifacts(name)
                raise
            except TimeoutException:
                self._save_artifacts(name)
                raise _unavailable(f"{name}: Supplier Hub did not answer within {self.timeout:g} s") from None
            except WebDriverException as exc:
                self._save_artifacts(name)
                first_line = (exc.msg or type(exc).__name__).splitlines()[0]
                raise _unavailable(f"{name}: browser error: {first_line}") from None
            except Exception:
                self._save_artifacts(name)
                raise

        return wrapper

    return decorate


class SupplierHubSession:
    """One signed-on Supplier Hub browser session; a context manager that always quits the browser.

    Messages and logs name pages, URL paths, invoice numbers and counts, never the
    username or password.
    """

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 sso_url: str | None = None, timeout: float = 20.0, artifacts_dir: Path | None = None,
                 driver_factory: Callable[[Path], WebDriver] = open_browser, download_mode: str = "http"):
        if download_mode not in ("http", "browser"):
            raise ValueError("download_mode must be 'http' or 'browser'")
        self.base_url = base_url.rstrip("/")
        self.sso_url = sso_url.rstrip("/") if sso_url else None
        self._username, self._password = username, password
        self.download_dir = Path(download_dir)
        self.timeout = timeout
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
        self.download_mode = download_mode
        self._driver_factory = driver_factory
        self.driver: WebDriver | None = None
        self._relogins = 0

    @property
    def username(self) -> str:
        """The sub-account this session logs in as (to find it in 부계정 관리); never the password."""
        return self._username

    def __repr__(self) -> str:  # the default would be harmless, but keep credentials out for sure
        return f"SupplierHubSession(base_url={self.base_url!r})"

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> SupplierHubSession:
        self._browser()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        driver, self.driver = self.driver, None
        if driver is not None:
            try:
                driver.quit()
            except WebDriverException as exc:
                log.warning("quitting the browser failed: %s", (exc.msg or "").splitlines()[:1])

    def _browser(self) -> WebDriver:
        if self.driver is None:
            self.download_dir.mkdir(parents=True, exist_ok=True)
            self.driver = self._driver_factory(self.download_dir)
            self.driver.set_page_load_timeout(self.timeout)
        return self.driver

    # --- navigation --------------------------------------------------------------------

    def _get(self, url: str, page: str) -> None:
        driver = self._browser()
        try:
            driver.get(url)
        except TimeoutException:
            raise _unavailable(f"{page}: no answer within {self.timeout:g} s at {_path(url)}") from None
        status = self._document_status()
        if status is not None and status >= 500:
            raise _unavailable(f"{page}: HTTP {status} at {_path(url)}")

    def _document_status(self) -> int | None:
        """The HTTP status of the last page loaded, from Chrome's performance log (None if unknown)."""
        try:
            entries = self.driver.execute(Command.GET_LOG, {"type": "performance"})["value"]
        except (WebDriverException, KeyError, TypeError):
            return None
        status = None
        for entry in entries:
            message = json.loads(entry.get("message", "{}")).get("message", {})
            params = message.get("params", {})
            if message.get("method") == "Network.responseReceived" and params.get("type") == "Document":
                status = params.get("response", {}).get("status")
        return int(status) if status is not None else None

    def _wait_for(self, page: str, expected: Mapping[str, str]) -> str:
        """Wait until one of the ``expected`` selector keys shows; returns its name.

        The access-denied and server-error pages end the wait at once with their category.
        """
        driver = self._browser()
        watch = {**expected, "__denied": "access_denied", "__error": "server_error"}

        def first_present(d: WebDriver) -> str | bool:
            try:
                for name, key in watch.items():
                    if d.find_elements(*SELECTORS[key]):
                        return name
            except TimeoutException:
                raise
            except WebDriverException:
                pass  # a document being replaced; look again at the next poll
            return False

        try:
            found = WebDriverWait(driver, self.timeout, poll_frequency=0.05,
                                  ignored_exceptions=(StaleElementReferenceException,)).until(first_present)
        except TimeoutException:
            loading = driver.execute_script("return document.readyState") != "complete"
            if loading:
                raise _unavailable(f"{page}: the page did not finish loading within {self.timeout:g} s") from None
            raise ExportFormatError(f"{page}: none of the expected parts ({', '.join(expected)}) is on the page "
                                    f"(title {driver.title!r}, path {_path(driver.current_url)})") from None
        if found == "__denied":
            raise CollectionError("bot_rejected", f"{page}: the portal answered 'Access Denied' at "
                                                  f"{_path(driver.current_url)}")
        if found == "__error":
            raise _unavailable(f"{page}: the portal answered {driver.title!r} at {_path(driver.current_url)}")
        return str(found)

    def _mark_document(self) -> None:
        self.driver.execute_script("window.__supplierHubMark = true;")

    def _wait_for_next_document(self, page: str) -> None:
        """Wait until the browser shows a new document after a click that submits a form.

        Chromedriver's staleness check fails with inspector errors mid-navigation, so the
        old document is recognised by a mark set on its window instead.
        """

        def left(d: WebDriver) -> bool:
            try:
                return d.execute_script("return window.__supplierHubMark !== true;")
            except TimeoutException:
                raise
            except WebDriverException:
                return False  # the old document is going away

        try:
            WebDriverWait(self.driver, self.timeout, poll_frequency=0.05).until(left)
        except TimeoutException:
            raise _unavailable(f"{page}: the portal did not answer the form within {self.timeout:g} s") from None

    def _visit(self, url: str, page: str, expected: Mapping[str, str]) -> str:
        """Open a portal page; signs on again once if the session was lost on the way."""
        while True:
            self._get(url, page)
            found = self._wait_for(page, {**expected, "__sign_on": "sign_on.form"})
            if found != "__sign_on":
                return found
            self._count_relogin(f"{page} ({_path(url)})")
            self._sign_on_here(page)

    def _count_relogin(self, what: str) -> None:
        """Allow one new sign-on per session when the portal drops it; more means trouble."""
        if self._relogins >= MAX_RELOGINS:
            raise _unavailable(f"{what}: the portal sent the browser to the sign-on page again; "
                               "the session keeps expiring")
        self._relogins += 1
        log.info("%s: the session expired; signing on again", what)

    # --- sign-on -----------------------------------------------------------------------

    @_step("login")
    def login(self) -> None:
        """Sign on; raises CollectionError sub_account_expired, auth_challenge, bad_credentials,
        bot_rejected or portal_unavailable."""
        if self.sso_url:
            url = f"{self.sso_url}{PATHS['sign_on']}?" + urlencode(
                {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": self.base_url + PATHS["home"],
                 "scope": "openid"})
        else:
            url = self.base_url + PATHS["home"]  # the portal sends an anonymous browser to the sign-on
        log.info("signing on to Supplier Hub at %s", _path(url))
        self._get(url, "sign-on")
        if self._wait_for("sign-on", {"home": "home.nav", "form": "sign_on.form"}) == "home":
            return
        self._sign_on_here("sign-on")

    def _sign_on_here(self, page: str) -> None:
        """Submit the credentials on the sign-on page the browser shows, and judge the outcome."""
        self._mark_document()
        SignOnPage(self.driver).submit(self._username, self._password)
        self._wait_for_next_document(page)
        # Every portal page carries the menu, so 'home' also covers a re-login that lands
        # on the page asked for; it goes first because 부계정 관리 mentions 만료 too.
        found = self._wait_for(page, {
            "home": "home.nav",
            "expired": "sign_on.sub_account_expired",
            "sms": "sign_on.sms_code",
            "error": "sign_on.error",
            "again": "sign_on.form",  # after 'error': the page with the error message holds the form too
        })
        if found == "expired":
            raise CollectionError("sub_account_expired",
                                  "Supplier Hub refused the sign-on: the sub-account's period (부계정 사용기간) "
                                  "has expired")
        if found == "sms":
            raise CollectionError("auth_challenge",
                                  "Supplier Hub asked for SMS verification (인증번호) after the password")
        if found == "error":
            shown = self._scrub(SignOnPage(self.driver).error_text())
            raise CollectionError("bad_credentials", f"Supplier Hub rejected the sign-on: {shown!r}")
        if found == "again":
            raise _unavailable(f"{page}: the portal sent the browser back to the sign-on page right after "
                               "signing on")
        log.info("signed on to Supplier Hub")

    # --- 부계정 관리 --------------------------------------------------------------------

    @_step("sub_accounts")
    def sub_accounts(self) -> list[SubAccount]:
        """The sub-accounts listed at 부계정 관리 with their expiry dates."""
        self._visit(self.base_url + PATHS["sub_accounts"], "부계정 관리", {"table": "sub_accounts.table"})
        return SubAccountsPage(self.driver).sub_accounts()

    @_step("extend_sub_account")
    def extend_sub_account(self, username: str) -> dt.date:
        """Click 연장하기 for one sub-account; returns its new expiry date."""
        self._visit(self.base_url + PATHS["sub_accounts"], "부계정 관리", {"table": "sub_accounts.table"})
        page = SubAccountsPage(self.driver)
        button = page.extend_button(username)
        if button is None:
            raise CollectionError("configuration_error", "부계정 관리 does not list the sub-account to extend")
        self._mark_document()
        button.click()
        self._accept_alert()
        self._wait_for_next_document("부계정 관리")
        self._wait_for("부계정 관리", {"table": "sub_accounts.table"})
        for sub in SubAccountsPage(self.driver).sub_accounts():
            if sub.username == username:
                log.info("extended a sub-account at 부계정 관리 until %s", sub.expires)
                return sub.expires
        raise ExportFormatError("부계정 관리: the sub-account vanished from the table after 연장하기")

    def _accept_alert(self) -> None:
        # The real page may ask '연장하시겠습니까?' in a confirm() box; the sandbox does not.
        try:
            self.driver.switch_to.alert.accept()
        except NoAlertPresentException:
            pass

    # --- 정산 ----------------------------------------------------------------------------

    def _list_url(self, start: dt.date, end: dt.date, page: int) -> str:
        query = {"page": page, "size": LIST_PAGE_SIZE, "startDate": start.strftime(DATE_PARAM_FORMAT),
                 "endDate": end.strftime(DATE_PARAM_FORMAT)}
        return f"{self.base_url}{PATHS['purchase_account']}?{urlencode(query)}"

    @_step("settlement_blocked")
    def settlement_blocked(self) -> bool:
        """True while 일반매입계정 shows the '미처리된 세금계산서' notice instead of data."""
        found = self._visit(self.base_url + PATHS["purchase_account"], "일반매입계정",
                            {"notice": "settlement.tax_invoice_notice", "table": "purchase_account.table"})
        return found == "notice"

    @_step("list_invoices")
    def list_invoices(self, start: dt.date, end: dt.date) -> list[dict[str, str]]:
        """Every 일반매입계정 row whose 작성일자 is in [start, end], all pages, as raw cell text
        keyed by header name."""
        rows: list[dict[str, str]] = []
        page_no, total = 1, None
        while total is None or len(rows) < total:
            found = self._visit(self._list_url(start, end, page_no), "일반매입계정",
                                {"notice": "settlement.tax_invoice_notice", "table": "purchase_account.table"})
            if found == "notice":
                raise CollectionError("tax_invoice_pending",
                                      "Supplier Hub shows '미처리된 세금계산서' on 일반매입계정: a reverse-issued "
                                      "tax invoice awaits the seller's confirmation, so no settlement data can "
                                      "be read")
            page = PurchaseAccountPage(self.driver)
            total = page.total_count() if total is None else total
            page_rows = page.rows()
            log.info("일반매입계정 %s..%s page %d: %d rows (of %d)", start, end, page_no, len(page_rows), total)
            if not page_rows:
                break
            rows += page_rows
            page_no += 1
        if len(rows) != total:
            raise ExportFormatError(f"일반매입계정: read {len(rows)} rows over {page_no} page(s) but the page "
                                    f"reports a total of {total}")
        return rows

    @_step("download_receive_detail")
    def download_receive_detail(self, invoice_no: str) -> Path:
        """The 입고상세내역 .xlsx of one invoice, saved as ``receive_detail_{invoice_no}.xlsx``."""
        if not _SAFE_INVOICE_NO.match(invoice_no):
            raise CollectionError("configuration_error", f"not a 계산서번호: {invoice_no!r}")
        url = f"{self.base_url}{PATHS['receive_detail']}?" + urlencode({"vendorPaymentInfoSeq": invoice_no, "page": 1})
        page_name = f"입고상세내역 of invoice {invoice_no}"
        found = self._visit(url, page_name, {"notice": "settlement.tax_invoice_notice",
                                             "excel": "receive_detail.excel", "error": "page.error"})
        if found == "notice":
            raise CollectionError("tax_invoice_pending",
                                  f"{page_name}: Supplier Hub shows '미처리된 세금계산서' instead of the lines")
        if found == "error":
            shown = self.driver.find_element(*SELECTORS["page.error"]).text.strip()
            raise ExportFormatError(f"{page_name}: the portal shows an error instead of the lines: {shown!r}")
        target = self.download_dir / f"receive_detail_{invoice_no}.xlsx"
        if self.download_mode == "browser":
            body = self._download_in_browser(invoice_no)
        else:
            body = self._fetch(ReceiveDetailPage(self.driver).excel_url(), invoice_no)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(body)
        os.replace(partial, target)  # never leave a half-written file under the final name
        log.info("downloaded 입고상세내역 of invoice %s (%d bytes)", invoice_no, len(body))
        return target

    def _fetch(self, url: str, invoice_no: str) -> bytes:
        """Download over HTTP with the browser's cookies: faster than a browser download."""
        what = f"입고상세내역 Excel of invoice {invoice_no} ({_path(url)})"
        while True:
            try:
                response = self._http().get(url, timeout=self.timeout, allow_redirects=False)
            except requests.Timeout:
                raise _unavailable(f"{what}: no answer within {self.timeout:g} s") from None
            except requests.RequestException as exc:
                raise _unavailable(f"{what}: {type(exc).__name__}") from None
            lost_session = response.is_redirect and PATHS["sign_on"] in response.headers.get("location", "")
            if not lost_session:
                break
            self._count_relogin(what)
            self._get(self.base_url + PATHS["home"], "home")
            if self._wait_for("home", {"home": "home.nav", "form": "sign_on.form"}) == "form":
                self._sign_on_here("home")
        if response.status_code >= 500:
            raise _unavailable(f"{what}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise ExportFormatError(f"{what}: HTTP {response.status_code} instead of a file")
        return self._check_xlsx(response.content, what)

    def _http(self) -> requests.Session:
        http = requests.Session()
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in self.driver.get_cookies())
        http.headers.update({"Cookie": cookies,
                             "User-Agent": self.driver.execute_script("return navigator.userAgent"),
                             "Referer": self.driver.current_url})
        return http

    def _download_in_browser(self, invoice_no: str) -> bytes:
        """Click the Excel link and pick the file up from the browser (local, or a Grid node)."""
        what = f"입고상세내역 Excel of invoice {invoice_no}"
        remote = not isinstance(self.driver, ChromiumDriver)
        before = set(self.driver.get_downloadable_files()) if remote else set(os.listdir(self.download_dir))

        def new_file(_: WebDriver) -> str | bool:
            now = set(self.driver.get_downloadable_files()) if remote else set(os.listdir(self.download_dir))
            done = [n for n in now - before if not n.endswith((".crdownload", ".part", ".tmp"))]
            return sorted(done)[0] if done else False

        self.driver.find_element(*SELECTORS["receive_detail.excel"]).click()
        try:
            name = WebDriverWait(self.driver, self.timeout, poll_frequency=0.05).until(new_file)
        except TimeoutException:
            raise _unavailable(f"{what}: no file arrived within {self.timeout:g} s") from None
        if remote:
            self.driver.download_file(name, str(self.download_dir))
        path = self.download_dir / name
        body = path.read_bytes()
        path.unlink()
        return self._check_xlsx(body, what)

    @staticmethod
    def _check_xlsx(body: bytes, what: str) -> bytes:
        if body.startswith(b"PK"):
            try:
                with zipfile.ZipFile(io.BytesIO(body)) as archive:
                    if "[Content_Types].xml" in archive.namelist() and archive.testzip() is None:
                        return body
            except zipfile.BadZipFile:
                pass
            raise _unavailable(f"{what}: the file is truncated or corrupt ({len(body)} bytes)")
        text = body[:4000].decode("utf-8", errors="replace")
        if "미처리된 세금계산서" in text:
            raise CollectionError("tax_invoice_pending", f"{what}: the portal answered the "
                                                         "'미처리된 세금계산서' notice instead of the file")
        start = re.sub(r"\s+", " ", text[:40])
        raise ExportFormatError(f"{what}: not an .xlsx file ({len(body)} bytes starting {start!r})")

    # --- failure artifacts ---------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in (self._password, self._username):
            # A very short username would blank out ordinary text; passwords go whatever their length.
            if secret and (secret is self._password or len(secret) >= 3):
                text = text.replace(secret, "***")
        return text

    def _save_artifacts(self, step: str) -> None:
        """Screenshot and page source of a failed step, with the credential inputs emptied first.

        Each part is tried on its own: a browser stuck mid-navigation may refuse one and
        still give the other.
        """
        if self.artifacts_dir is None or self.driver is None:
            return
        driver = self.driver
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
        base = self.artifacts_dir / f"supplier_hub_{step}_{stamp}"
        try:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("could not save failure artifacts of %s: %s", step, type(exc).__name__)
            return
        for attempt in (self._accept_alert, self._stop_loading):
            try:
                attempt()
            except WebDriverException:
                pass
        try:
            driver.execute_script(_CLEAR_CREDENTIALS_JS)
            # no screenshot of a page whose inputs may still hold credentials
            driver.save_screenshot(str(base.with_suffix(".png")))
        except WebDriverException as exc:
            log.warning("no screenshot of the failed step %s: %s", step, type(exc).__name__)
        try:
            base.with_suffix(".html").write_text(self._scrub(driver.page_source), encoding="utf-8")
        except (WebDriverException, OSError) as exc:
            log.warning("no page source of the failed step %s: %s", step, type(exc).__name__)
        log.info("saved failure artifacts of %s as %s.*", step, base.name)

    def _stop_loading(self) -> None:
        # A page still loading makes WebDriver commands wait for it; CDP stops it at once.
        if isinstance(self.driver, ChromiumDriver):
            self.driver.execute_cdp_cmd("Page.stopLoading", {})
        else:
            self.driver.execute_script("window.stop();")
