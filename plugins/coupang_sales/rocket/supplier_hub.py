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
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.failures import step, unavailable, url_path
from coupang_sales.portal.pages import Page, table_rows
from coupang_sales.portal.session import PortalSession
from coupang_sales.portal.settings import PortalSettings
from coupang_sales.rocket.portal_settings import SUPPLIER_HUB_SETTINGS

log = logging.getLogger(__name__)

# Selectors, paths, query parameters, waits, download mode, concurrency and column aliases
# are settings (rocket/supplier_hub.json, overridable per deployment: docs/portals.md).
PURCHASE_ACCOUNT_HEADERS = ("계산서번호", "거래처명", "작성일자", "지급일자", "과세유형", "발주유형", "정산유형",
                            "발행유형", "공급가액", "부가가치세", "지급예정금액", "세금계산서 확정일", "1차 지급일",
                            "1차 지급액", "2차 지급액")
RECEIVE_DETAIL_KEY = ("구분", "SKU번호")  # headers every 입고상세내역 page table holds
SUB_ACCOUNT_HEADERS = ("아이디", "만료일")
DETAIL_PAGE_SIZE = 10
# Groups of ``concurrency`` 입고상세내역 pages fetched in one call into the browser (a WebDriver round trip
# costs about as much as a page; ten groups are 30 pages of about 2 KB of answer each by default).
GROUPS_PER_CALL = 10
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
    """정산 > 일반매입계정: the settlement invoices, 50 a page, found by the header 계산서번호."""

    name = "일반매입계정"

    def rows(self) -> list[dict[str, str]]:
        return self.read_table("purchase_account.table", PURCHASE_ACCOUNT_HEADERS)


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
        heads = [th.text.strip() for th in table.find_elements("css selector", "thead th")]
        column = heads.index("아이디")
        for row in table.find_elements("css selector", "tbody tr"):
            cells = row.find_elements("css selector", "td")
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
    settings_defaults = SUPPLIER_HUB_SETTINGS

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 settings: PortalSettings | None = None, timeout: float | None = None,
                 artifacts_dir: Path | None = None, driver_factory: Callable[[Path], WebDriver] = open_browser,
                 download_mode: str | None = None, fetch_concurrency: int | None = None):
        super().__init__(base_url=base_url, username=username, password=password, download_dir=download_dir,
                         settings=settings, timeout=timeout, artifacts_dir=artifacts_dir,
                         driver_factory=driver_factory)
        self.download_mode = download_mode or self.settings.download_mode
        if self.download_mode not in ("fetch", "browser"):
            raise ValueError("download_mode must be 'fetch' or 'browser'")
        self.fetch_concurrency = max(1, int(fetch_concurrency or self.settings.concurrency))

    @property
    def username(self) -> str:
        """The sub-account this session logs in as (to find it in 부계정 관리); never the password."""
        return self._username

    @property
    def receive_detail_source(self) -> str:
        """Where 입고상세내역 is read from: 'export' (the .xlsx) or 'pages' (the HTML pages)."""
        return self.settings.receive_detail_source

    def __enter__(self) -> SupplierHubSession:
        return super().__enter__()

    def _url(self, path_key: str, query: dict | None = None) -> str:
        url = self.base_url + self.settings.path(path_key)
        return f"{url}?{urlencode(query)}" if query else url

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
        self._visit(self._url("sub_accounts"), "부계정 관리", {"table": "sub_accounts.table"})
        return SubAccountsPage(self.driver, self.selectors).sub_accounts()

    @step("extend_sub_account")
    def extend_sub_account(self, username: str) -> dt.date:
        """Click 연장하기 for one sub-account; returns its new expiry date."""
        self._visit(self._url("sub_accounts"), "부계정 관리", {"table": "sub_accounts.table"})
        page = SubAccountsPage(self.driver, self.selectors)
        button = page.extend_button(username)
        if button is None:
            raise CollectionError("configuration_error", "부계정 관리 does not list the sub-account to extend")
        self._mark_document()
        button.click()
        self._accept_alert()
        self._wait_for_next_document("부계정 관리")
        self._wait_for("부계정 관리", {"table": "sub_accounts.table"})
        for sub in SubAccountsPage(self.driver, self.selectors).sub_accounts():
            if sub.username == username:
                log.info("extended a sub-account at 부계정 관리 until %s", sub.expires)
                return sub.expires
        raise ExportFormatError("부계정 관리: the sub-account vanished from the table after 연장하기")

    # --- 정산 ----------------------------------------------------------------------------

    def _list_url(self, start: dt.date, end: dt.date, page: int) -> str:
        fmt = self.settings.date_format
        return self._url("purchase_account", {
            "page": page, "size": self.settings.page_size("purchase_account"),
            **self.settings.query("purchase_account"),
            "startDate": start.strftime(fmt), "endDate": end.strftime(fmt)})

    @step("settlement_blocked")
    def settlement_blocked(self) -> bool:
        """True while 일반매입계정 shows the '미처리된 세금계산서' notice instead of data."""
        found = self._visit(self._url("purchase_account", self.settings.query("purchase_account")), "일반매입계정",
                            {"notice": "settlement.tax_invoice_notice", "table": "purchase_account.table"})
        return found == "notice"

    @step("list_invoices")
    def list_invoices(self, start: dt.date, end: dt.date) -> list[dict[str, str]]:
        """Every 일반매입계정 row whose 작성일자 is in [start, end], all pages, as raw cell text
        keyed by header name.

        The page shows no total, and a page past the last one shows the last page again
        (OH), so pages are read until one brings no 계산서번호 not seen before.
        """
        rows: list[dict[str, str]] = []
        seen: set[str] = set()
        page_no = 1
        while True:
            found = self._visit(self._list_url(start, end, page_no), "일반매입계정",
                                {"notice": "settlement.tax_invoice_notice", "table": "purchase_account.table"})
            if found == "notice":
                raise CollectionError("tax_invoice_pending",
                                      "Supplier Hub shows '미처리된 세금계산서' on 일반매입계정: a reverse-issued "
                                      "tax invoice awaits the seller's confirmation, so no settlement data can "
                                      "be read")
            page_rows = PurchaseAccountPage(self.driver, self.selectors).rows()
            new = [r for r in page_rows if r["계산서번호"] not in seen]
            log.info("일반매입계정 %s..%s page %d: %d rows, %d new", start, end, page_no, len(page_rows), len(new))
            if not new:
                break
            for row in new:
                seen.add(row["계산서번호"])
            rows += new
            if len(page_rows) < self.settings.page_size("purchase_account"):
                break  # a short page is the last one: no need to ask for it again
            page_no += 1
        return rows

    @staticmethod
    def _check_invoice_nos(invoice_nos: Sequence[str]) -> None:
        for invoice_no in invoice_nos:
            if not _SAFE_INVOICE_NO.match(invoice_no):
                raise CollectionError("configuration_error", f"not a 계산서번호: {invoice_no!r}")

    def download_receive_detail(self, invoice_no: str) -> Path:
        """The 입고상세내역 .xlsx of one invoice, saved as ``receive_detail_{invoice_no}.xlsx``."""
        return self.download_receive_details([invoice_no])[0]

    @step("download_receive_detail")
    def download_receive_details(self, invoice_nos: Sequence[str]) -> list[Path]:
        """The 입고상세내역 .xlsx of each invoice, in order, saved as ``receive_detail_{invoice_no}.xlsx``.

        ``download_mode`` 'fetch' (the default) reads each 입고상세내역 page and the Excel
        file it links to from inside the signed-on page, without rendering it, up to
        ``concurrency`` invoices at a time (a browser loading a page makes as many
        requests at once); 'browser' opens each page and clicks the link as a person
        would, one at a time (slower; for a site that only serves the file to a click).
        Either way a file is saved only whole, after its checks.
        """
        self._check_invoice_nos(invoice_nos)
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

    def _detail_url(self, invoice_no: str, page: int = 1, total: int | None = None) -> str:
        query = {"vendorPaymentInfoSeq": invoice_no, **self.settings.query("receive_detail"), "page": page}
        if total is not None:
            query["totalCount"] = total  # pages past the second show nothing without it (OH)
        return self._url("receive_detail", query)

    @step("read_receive_detail_pages")
    def read_receive_detail_pages(self, invoice_nos: Sequence[str]) -> dict[str, dict]:
        """The 입고상세내역 lines of each invoice read from its HTML pages (10 lines a page, the
        total in the hidden ``totalCount``): ``{invoice_no: {"headers": [...], "rows": [[...]]}}``,
        cell text as shown, in page order. Up to ``concurrency`` pages are fetched at once, ``pacing_seconds``
        apart, ``GROUPS_PER_CALL`` such groups in one call into the browser."""
        self._check_invoice_nos(invoice_nos)
        probes = {"notice": "settlement.tax_invoice_notice", "total": "receive_detail.total"}
        jobs = [(n, 1, None) for n in invoice_nos]  # (invoice, page, totalCount)
        got: dict[str, dict[int, tuple[list[str], list]]] = {n: {} for n in invoice_nos}
        totals: dict[str, int] = {}
        per_call = self.fetch_concurrency * GROUPS_PER_CALL
        while jobs:
            batch, jobs = jobs[:per_call], jobs[per_call:]
            names = [f"입고상세내역 of invoice {n} page {p}" for n, p, _ in batch]
            answers = self._fetch_in_page([self._detail_url(n, p, t) for n, p, t in batch], names,
                                          probes=list(probes.values()), tables=["receive_detail.table"],
                                          group=self.fetch_concurrency)
            for (invoice_no, page_no, _), name, (page, _) in zip(batch, names, answers, strict=True):
                if probes["notice"] in page.found:
                    raise CollectionError("tax_invoice_pending",
                                          f"{name}: Supplier Hub shows '미처리된 세금계산서' instead of the lines")
                table = page.tables.get("receive_detail.table")
                if table is None:
                    raise ExportFormatError(f"{name}: the page has no 입고상세내역 table (headers "
                                            f"{', '.join(RECEIVE_DETAIL_KEY)}; HTTP {page.status})")
                got[invoice_no][page_no] = (table[0], table[1])
                if page_no == 1:
                    raw_total = (page.found.get(probes["total"]) or {}).get("value")
                    digits = re.sub(r"[^\d]", "", raw_total or "")
                    if not digits:
                        raise ExportFormatError(f"{name}: no totalCount on the page "
                                                f"({self.selectors['receive_detail.total'][1]})")
                    totals[invoice_no] = int(digits)
                    pages = -(-totals[invoice_no] // DETAIL_PAGE_SIZE)
                    jobs += [(invoice_no, n, totals[invoice_no]) for n in range(2, pages + 1)]
        out = {}
        for invoice_no in invoice_nos:
            headers = got[invoice_no][1][0]
            rows = []
            for page_no in sorted(got[invoice_no]):
                heads, cells = got[invoice_no][page_no]
                name = f"입고상세내역 of invoice {invoice_no} page {page_no}"
                for row in table_rows(name, heads, cells, RECEIVE_DETAIL_KEY):
                    rows.append([row.get(h, "") for h in headers if h])
            headers = [h for h in headers if h]
            if len(rows) != totals[invoice_no]:
                raise ExportFormatError(f"입고상세내역 of invoice {invoice_no}: read {len(rows)} lines over "
                                        f"{len(got[invoice_no])} page(s) but totalCount is {totals[invoice_no]}")
            log.info("read 입고상세내역 of invoice %s from its pages: %d lines", invoice_no, len(rows))
            out[invoice_no] = {"headers": headers, "rows": rows}
        return out

    @staticmethod
    def _judge_detail_page(page_name: str, found: str, selector: str) -> None:
        if found == "notice":
            raise CollectionError("tax_invoice_pending",
                                  f"{page_name}: Supplier Hub shows '미처리된 세금계산서' instead of the lines")
        if found == "table":
            raise ExportFormatError(f"{page_name}: the page has no Excel download link ({selector})")
        if found != "excel":
            raise ExportFormatError(f"{page_name}: the page shows neither the lines nor an Excel download link")

    def _fetch_detail_excels(self, invoice_nos: list[str]) -> list[bytes]:
        probes = {"notice": "settlement.tax_invoice_notice", "excel": "receive_detail.excel",
                  "table": "receive_detail.table"}
        names = [f"입고상세내역 of invoice {n}" for n in invoice_nos]
        answers = self._fetch_in_page([self._detail_url(n) for n in invoice_nos], names,
                                      probes=list(probes.values()), follow=probes["excel"])
        bodies = []
        for invoice_no, page_name, (page, file) in zip(invoice_nos, names, answers, strict=True):
            found = next((name for name, key in probes.items() if key in page.found), "")
            self._judge_detail_page(page_name, found, self.selectors["receive_detail.excel"][1])
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
            "notice": "settlement.tax_invoice_notice", "excel": "receive_detail.excel",
            "table": "receive_detail.table"})
        self._judge_detail_page(page_name, found, self.selectors["receive_detail.excel"][1])
        what = f"입고상세내역 Excel of invoice {invoice_no}"
        # a Grid node's browser saves on the node: its files are fetched through managed downloads
        remote = bool(self.driver.capabilities.get("se:downloadsEnabled"))
        before = set(self.driver.get_downloadable_files()) if remote else set(os.listdir(self.download_dir))

        def new_file(_: WebDriver) -> str | bool:
            now = set(self.driver.get_downloadable_files()) if remote else set(os.listdir(self.download_dir))
            done = [n for n in now - before if not n.endswith((".crdownload", ".part", ".tmp"))]
            return sorted(done)[0] if done else False

        self.driver.find_element(*self.selectors["receive_detail.excel"]).click()
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
        if self.settings.text("tax_invoice_notice") in text:
            return CollectionError("tax_invoice_pending", f"{what}: the portal answered the "
                                                          "'미처리된 세금계산서' notice instead of the file")
        return None
