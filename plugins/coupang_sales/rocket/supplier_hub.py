"""Supplier Hub (Coupang Rocket) page objects and the browser session that collects from them."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

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
    url_path,
)

log = logging.getLogger(__name__)

# Every selector of the site, in one place: a change of the real site is a change here
# (the shared sign-on's are in coupang_sales.portal.session).
SELECTORS: dict[str, Locator] = {
    **SIGN_ON_SELECTORS,
    "sign_on.sub_account_expired": (By.XPATH, "//body[contains(., '부계정') and contains(., '만료')"
                                              " and not(.//input[@name='password'])]"),
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
    "sign_on": SIGN_ON_PATH,
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
_SAFE_INVOICE_NO = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class SubAccount:
    username: str
    expires: dt.date  # 만료일


def _parse_date(text: str) -> dt.date | None:
    match = re.search(r"(\d{4})[-./](\d{1,2})[-./](\d{1,2})", text)
    return dt.date(int(match[1]), int(match[2]), int(match[3])) if match else None


# --- page objects ------------------------------------------------------------------------


class PurchaseAccountPage(Page):
    """정산 > 일반매입계정: the settlement invoices, 50 a page."""

    name = "일반매입계정"

    def rows(self) -> list[dict[str, str]]:
        return self.read_table("purchase_account.table", PURCHASE_ACCOUNT_HEADERS)

    def total_count(self) -> int:
        return self.count("purchase_account.total")


class SubAccountsPage(Page):
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


class SupplierHubSession(PortalSession):
    """One signed-on Supplier Hub browser session; a context manager that always quits the browser.

    Messages and logs name pages, URL paths, invoice numbers and counts, never the
    username or password.
    """

    portal_name = "Supplier Hub"
    artifact_prefix = "supplier_hub"
    client_id = CLIENT_ID
    selectors = SELECTORS
    home_path = PATHS["home"]

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 sso_url: str | None = None, timeout: float = 20.0, artifacts_dir: Path | None = None,
                 driver_factory: Callable[[Path], WebDriver] = open_browser, download_mode: str = "fetch",
                 fetch_concurrency: int = 3):
        if download_mode not in ("fetch", "browser"):
            raise ValueError("download_mode must be 'fetch' or 'browser'")
        super().__init__(base_url=base_url, username=username, password=password, download_dir=download_dir,
                         sso_url=sso_url, timeout=timeout, artifacts_dir=artifacts_dir,
                         driver_factory=driver_factory)
        self.download_mode = download_mode
        self.fetch_concurrency = max(1, int(fetch_concurrency))

    @property
    def username(self) -> str:
        """The sub-account this session logs in as (to find it in 부계정 관리); never the password."""
        return self._username

    def __enter__(self) -> SupplierHubSession:
        return super().__enter__()

    # --- sign-on -----------------------------------------------------------------------

    def _sign_on_refusals(self) -> Mapping[str, str]:
        return {"expired": "sign_on.sub_account_expired"}

    def _refused(self, outcome: str) -> CollectionError:
        return CollectionError("sub_account_expired",
                               "Supplier Hub refused the sign-on: the sub-account's period (부계정 사용기간) "
                               "has expired")

    # --- 부계정 관리 --------------------------------------------------------------------

    @step("sub_accounts")
    def sub_accounts(self) -> list[SubAccount]:
        """The sub-accounts listed at 부계정 관리 with their expiry dates."""
        self._visit(self.base_url + PATHS["sub_accounts"], "부계정 관리", {"table": "sub_accounts.table"})
        return SubAccountsPage(self.driver, SELECTORS).sub_accounts()

    @step("extend_sub_account")
    def extend_sub_account(self, username: str) -> dt.date:
        """Click 연장하기 for one sub-account; returns its new expiry date."""
        self._visit(self.base_url + PATHS["sub_accounts"], "부계정 관리", {"table": "sub_accounts.table"})
        page = SubAccountsPage(self.driver, SELECTORS)
        button = page.extend_button(username)
        if button is None:
            raise CollectionError("configuration_error", "부계정 관리 does not list the sub-account to extend")
        self._mark_document()
        button.click()
        self._accept_alert()
        self._wait_for_next_document("부계정 관리")
        self._wait_for("부계정 관리", {"table": "sub_accounts.table"})
        for sub in SubAccountsPage(self.driver, SELECTORS).sub_accounts():
            if sub.username == username:
                log.info("extended a sub-account at 부계정 관리 until %s", sub.expires)
                return sub.expires
        raise ExportFormatError("부계정 관리: the sub-account vanished from the table after 연장하기")

    # --- 정산 ----------------------------------------------------------------------------

    def _list_url(self, start: dt.date, end: dt.date, page: int) -> str:
        query = {"page": page, "size": LIST_PAGE_SIZE, "startDate": start.strftime(DATE_PARAM_FORMAT),
                 "endDate": end.strftime(DATE_PARAM_FORMAT)}
        return f"{self.base_url}{PATHS['purchase_account']}?{urlencode(query)}"

    @step("settlement_blocked")
    def settlement_blocked(self) -> bool:
        """True while 일반매입계정 shows the '미처리된 세금계산서' notice instead of data."""
        found = self._visit(self.base_url + PATHS["purchase_account"], "일반매입계정",
                            {"notice": "settlement.tax_invoice_notice", "table": "purchase_account.table"})
        return found == "notice"

    @step("list_invoices")
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
            page = PurchaseAccountPage(self.driver, SELECTORS)
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

    def download_receive_detail(self, invoice_no: str) -> Path:
        """The 입고상세내역 .xlsx of one invoice, saved as ``receive_detail_{invoice_no}.xlsx``."""
        return self.download_receive_details([invoice_no])[0]

    @step("download_receive_detail")
    def download_receive_details(self, invoice_nos: Sequence[str]) -> list[Path]:
        """The 입고상세내역 .xlsx of each invoice, in order, saved as ``receive_detail_{invoice_no}.xlsx``.

        ``download_mode`` 'fetch' (the default) reads each 입고상세내역 page and the Excel
        file it links to from inside the signed-on page, without rendering it, up to
        ``fetch_concurrency`` invoices at a time (a browser loading a page makes as many
        requests at once); 'browser' opens each page and clicks the link as a person
        would, one at a time (slower; for a site that only serves the file to a click).
        Either way a file is saved only whole, after its checks.
        """
        for invoice_no in invoice_nos:
            if not _SAFE_INVOICE_NO.match(invoice_no):
                raise CollectionError("configuration_error", f"not a 계산서번호: {invoice_no!r}")
        paths: list[Path] = []
        step = 1 if self.download_mode == "browser" else self.fetch_concurrency
        for first in range(0, len(invoice_nos), step):
            batch = list(invoice_nos[first:first + step])
            if self.download_mode == "browser":
                bodies = [self._download_in_browser(batch[0])]
            else:
                bodies = self._fetch_detail_excels(batch)
            for invoice_no, body in zip(batch, bodies, strict=True):
                target = self.download_dir / f"receive_detail_{invoice_no}.xlsx"
                partial = target.with_name(target.name + ".part")
                partial.write_bytes(body)
                os.replace(partial, target)  # never leave a half-written file under the final name
                log.info("downloaded 입고상세내역 of invoice %s (%d bytes)", invoice_no, len(body))
                paths.append(target)
        return paths

    def _detail_url(self, invoice_no: str) -> str:
        return f"{self.base_url}{PATHS['receive_detail']}?" + urlencode({"vendorPaymentInfoSeq": invoice_no, "page": 1})

    @staticmethod
    def _judge_detail_page(page_name: str, found: str, shown: str) -> None:
        if found == "notice":
            raise CollectionError("tax_invoice_pending",
                                  f"{page_name}: Supplier Hub shows '미처리된 세금계산서' instead of the lines")
        if found == "error":
            raise ExportFormatError(f"{page_name}: the portal shows an error instead of the lines: {shown.strip()!r}")
        if found != "excel":
            raise ExportFormatError(f"{page_name}: the page has no Excel download link "
                                    f"({SELECTORS['receive_detail.excel'][1]})")

    def _fetch_detail_excels(self, invoice_nos: list[str]) -> list[bytes]:
        probes = {"notice": "settlement.tax_invoice_notice", "error": "page.error", "excel": "receive_detail.excel"}
        names = [f"입고상세내역 of invoice {n}" for n in invoice_nos]
        answers = self._fetch_in_page([self._detail_url(n) for n in invoice_nos], names,
                                      probes=list(probes.values()), follow=probes["excel"])
        bodies = []
        for invoice_no, page_name, (page, file) in zip(invoice_nos, names, answers, strict=True):
            found = next((name for name, key in probes.items() if key in page.found), "")
            shown = self._scrub(str(page.found.get(probes["error"], {}).get("text") or ""))
            self._judge_detail_page(page_name, found, shown)
            if file is None:
                raise ExportFormatError(f"{page_name}: the Excel download link has no address")
            what = f"입고상세내역 Excel of invoice {invoice_no} ({url_path(file.url)})"
            if file.status != 200:
                raise ExportFormatError(f"{what}: HTTP {file.status} instead of a file")
            bodies.append(self._check_xlsx(file.body, what))
        return bodies

    def _download_in_browser(self, invoice_no: str) -> bytes:
        """Open the 입고상세내역 page, click the Excel link and pick the file up from the
        browser (local, or a Grid node)."""
        page_name = f"입고상세내역 of invoice {invoice_no}"
        found = self._visit(self._detail_url(invoice_no), page_name, {
            "notice": "settlement.tax_invoice_notice", "excel": "receive_detail.excel", "error": "page.error"})
        shown = self._scrub(self.driver.find_element(*SELECTORS["page.error"]).text) if found == "error" else ""
        self._judge_detail_page(page_name, found, shown)
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
            raise unavailable(f"{what}: no file arrived within {self.timeout:g} s") from None
        if remote:
            self.driver.download_file(name, str(self.download_dir))
        path = self.download_dir / name
        body = path.read_bytes()
        path.unlink()
        return self._check_xlsx(body, what)

    def _non_xlsx_error(self, text: str, what: str) -> CollectionError | None:
        if "미처리된 세금계산서" in text:
            return CollectionError("tax_invoice_pending", f"{what}: the portal answered the "
                                                          "'미처리된 세금계산서' notice instead of the file")
        return None
