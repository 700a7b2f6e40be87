"""Wing (Coupang Jet, Rocket Growth): the session collecting v2 settlement reports and v1 판매분석 (REAL-PORTALS.md §4).

Every Wing call is an XHR from inside the signed-on page (the browser's ``fetch`` with its own
credentials, ``PortalSession._call_in_page``), with the ``XSRF-TOKEN`` cookie's value in the
``x-xsrf-token`` header; the cookie appears only after a later XHR of the home page, so the
session waits for it. Only the report file itself is fetched outside the browser: its link is
a presigned URL on a storage host that needs no portal cookies and gets none.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import requests
from selenium.webdriver.remote.webdriver import WebDriver
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_before_delay,
    wait_exponential,
    wait_fixed,
)

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.jet.fees import KST, seoul_day
from coupang_sales.jet.portal_settings import WING_SETTINGS
from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.failures import step, unavailable, url_path
from coupang_sales.portal.in_page import Fetched
from coupang_sales.portal.session import PortalSession
from coupang_sales.portal.settings import PortalSettings

log = logging.getLogger(__name__)

# Wing's paths, the values its API bodies carry, date formats, waits, retries, pacing, page
# sizes and the v1 amount field are settings (jet/wing.json, on top of the shared
# portal/sign_on.json), documented in docs/portals.md, read per session from its merged
# settings (never at import), so a deployment's override in the connection's extra is used.
XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "x-xsrf-token"

REPORT_TYPES = ("CATEGORY_TR", "WAREHOUSING_SHIPPING")  # sellerReportType: the two reports the policy reads
COMPLETED = "COMPLETED"  # downloadStatus of a report ready to download

OWN_XSRF_XHR_AFTER = 3.0  # after this long without the cookie, make the home page's XHR ourselves
LINK_ATTEMPTS = 3  # a report link that has expired is asked for again, this many links in all
V1_PASSES = 5  # reading every page again when the GMV order shifted and an item was missed
DUPLICATE_ATTEMPTS = 2  # request-download asked this many times in all while it answers duplicateRequest

SETTLEMENT_GROUPS_FILE = "settlement_groups.json"


@dataclass(frozen=True)
class SettlementReports:
    """What one collection of v2 reports staged: the files of each report type and the groups they cover."""

    files: dict[str, list[Path]]  # report type -> one file per settlement group
    groups: list[dict[str, Any]]  # the status answer's entries, one per settlementGroupKey
    groups_file: Path


class WingSession(PortalSession):
    """One signed-on Wing session; a context manager that always quits the browser.

    Messages and logs name URL paths, report types, settlement groups, dates and counts,
    never the username or password.
    """

    portal_name = "Wing"
    artifact_prefix = "wing"
    settings_defaults = WING_SETTINGS

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 settings: PortalSettings | None = None, timeout: float | None = None,
                 artifacts_dir: Path | None = None, driver_factory: Callable[[Path], WebDriver] = open_browser):
        super().__init__(base_url=base_url, username=username, password=password, download_dir=download_dir,
                         settings=settings, timeout=timeout, artifacts_dir=artifacts_dir,
                         driver_factory=driver_factory)
        raw = self.settings.raw
        waits, sizes, api, formats = raw["waits"], raw["page_sizes"], raw["api"], raw["formats"]
        self.paths: dict[str, str] = {k: v for k, v in raw["paths"].items() if not k.startswith("_")}
        self.poll_interval = float(waits["report_poll"])  # the first wait between polls of the download list
        self.max_poll_interval = float(waits["report_poll_max"])  # ... doubling up to this
        self.report_wait = float(waits["report"])  # how long one batch of report requests is polled
        self.xsrf_wait = float(waits["xsrf"])  # how long to wait for the XSRF-TOKEN cookie after a sign-on
        self.status_retry = float(waits["status_retry"])  # how long status/api is retried while it answers 5xx
        self.forbidden_retry = float(waits["forbidden_retry"])  # how long a 403 (not a bot wall) is retried
        self.retry_backoff, self.retry_backoff_max = float(waits["retry_backoff"]), float(waits["retry_backoff_max"])
        self.duplicate_backoff = float(waits["duplicate_backoff"])
        self.duplicate_lookback = float(waits["duplicate_lookback"])
        self.v1_page_pause, self.v1_day_pause = float(waits["v1_page"]), float(waits["v1_day"])
        self.v1_amount_field = raw["fields"]["v1_amount"]  # the GMV field: its name is unknown
        self.v1_page_size, self.v1_max_page_size = int(sizes["v1"]), int(sizes["v1_max"])
        self.v1_max_pages = int(sizes["v1_max_pages"])
        self.locale, self.search_date_type = api["locale"], api["search_date_type"]
        self.failed_statuses = tuple(api["failed_statuses"])
        self.v1_registration_types = list(api["v1_registration_types"])
        self.v1_kept_registration_types = list(api["v1_kept_registration_types"])
        self.v1_sort = (api["v1_sort_by"], api["v1_sort_order"])
        self.v1_date_format, self.status_instant_format = formats["v1_date"], formats["status_instant"]
        self._last_request_time = 0

    def __enter__(self) -> WingSession:
        return super().__enter__()

    # --- XSRF and the API calls ---------------------------------------------------------

    def _xsrf_token(self) -> str | None:
        cookie = self._browser().get_cookie(XSRF_COOKIE)
        # Spring writes the cookie URL-encoded; the header carries the decoded value.
        return unquote(cookie["value"]) if cookie and cookie.get("value") else None

    def _wait_for_xsrf(self) -> str:
        """The XSRF token, once the home page's later XHR has set its cookie (making that XHR ourselves if
        the page is slow to); ExportFormatError if it never comes within waits.xsrf seconds."""
        asked = False

        def ask_ourselves(state: RetryCallState) -> None:
            nonlocal asked
            if not asked and state.seconds_since_start >= min(OWN_XSRF_XHR_AFTER, self.xsrf_wait / 2):
                self._refresh_xsrf()
                asked = True

        token = Retrying(stop=stop_after_delay(self.xsrf_wait), wait=wait_fixed(0.1),
                         retry=retry_if_result(lambda token: not token), before_sleep=ask_ourselves,
                         retry_error_callback=lambda state: None)(self._xsrf_token)
        if not token:
            raise ExportFormatError(
                f"Wing set no {XSRF_COOKIE} cookie within {self.xsrf_wait:g} s of the sign-on, although "
                f"{self.paths['xsrf_resource']} was called; its APIs need it in the {XSRF_HEADER} header")
        return token

    def _refresh_xsrf(self) -> None:
        """Make the XHR whose answer (re)sets the XSRF-TOKEN cookie, as the home page does."""
        path = self.paths["xsrf_resource"]
        self._call_in_page("GET", self.base_url + path, f"XSRF resource ({path})")

    def _signed_on(self) -> None:
        # A token of the session before is stale: drop it, make the home page's XHR as a public
        # reader of Wing does after its sign-on, and wait for the cookie it sets.
        self._browser().delete_cookie(XSRF_COOKIE)
        self._refresh_xsrf()
        self._wait_for_xsrf()

    def _backoff(self, *, stop: Any, retry: Callable[[Fetched], bool],
                 before_sleep: Callable[[RetryCallState], None]) -> Retrying:
        """A tenacity retry loop over one call's answers: exponential backoff from waits.retry_backoff up to
        waits.retry_backoff_max; once ``stop`` says so, the last answer is returned for the caller to judge."""
        return Retrying(stop=stop, wait=wait_exponential(multiplier=self.retry_backoff, max=self.retry_backoff_max),
                        retry=retry_if_result(retry), before_sleep=before_sleep,
                        retry_error_callback=lambda state: state.outcome.result())

    def _post(self, url: str, what: str, body: dict[str, Any], *, server_errors: bool) -> Fetched:
        """One paced POST with the XSRF header. A 403 that is not a bot wall (a stale token, or the
        intermittent 403s of the live site: about one call in five in the afternoon, OH) makes the page's
        XSRF XHR again and is retried with backoff for up to waits.forbidden_retry seconds."""

        def call() -> Fetched:
            self._pace()  # pacing_seconds between Wing's calls, as a person's page makes them
            token = self._xsrf_token() or self._wait_for_xsrf()
            return self._call_in_page("POST", url, what, body=body, headers={XSRF_HEADER: token},
                                      server_errors=server_errors)

        def refresh(state: RetryCallState) -> None:
            log.info("%s: HTTP 403 (attempt %d); asking Wing for a fresh %s cookie and calling again",
                     what, state.attempt_number, XSRF_COOKIE)
            self._refresh_xsrf()

        # A second attempt whatever the budget: a stale token is refreshed once in any case.
        budget = stop_before_delay(self.forbidden_retry)

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= 2 and budget(state)

        answer = self._backoff(stop=stop, retry=lambda a: a.status == 403, before_sleep=refresh)(call)
        if answer.status == 403:
            raise unavailable(f"{what}: Wing refused the call with HTTP 403 although the {XSRF_HEADER} header "
                              f"carried the {XSRF_COOKIE} cookie (retried for {self.forbidden_retry:g} s): "
                              f"{self._api_message(answer)}")
        return answer

    def _api(self, path_key: str, what: str, body: dict[str, Any], *, retry_server_errors: float = 0.0) -> Any:
        """One JSON POST of a Wing API from inside the page, with the XSRF header; its decoded JSON answer.

        A 403 that is not a bot wall is retried (``_post``). With ``retry_server_errors`` (seconds), an
        HTTP 5xx is retried with backoff for that long (status/api fails for a while, then answers).
        """
        path = self.paths[path_key]
        url = self.base_url + path
        what = f"{what} ({path})"
        if retry_server_errors > 0:
            def note(state: RetryCallState) -> None:
                log.info("%s: HTTP %d (attempt %d, %.1f s so far); calling again", what,
                         state.outcome.result().status, state.attempt_number, state.seconds_since_start)

            answer = self._backoff(stop=stop_before_delay(retry_server_errors), retry=lambda a: a.status >= 500,
                                   before_sleep=note)(lambda: self._post(url, what, body, server_errors=True))
            if answer.status >= 500:
                raise unavailable(f"{what}: HTTP {answer.status} for {retry_server_errors:g} s of retries")
        else:
            answer = self._post(url, what, body, server_errors=False)
        if answer.status != 200:
            raise ExportFormatError(f"{what}: HTTP {answer.status}: {self._api_message(answer)}")
        try:
            return json.loads(answer.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            start = " ".join(answer.body[:40].decode("utf-8", "replace").split())
            if start.startswith("<"):
                raise ExportFormatError(f"{what}: Wing answered HTML instead of JSON ({start!r})") from None
            raise unavailable(f"{what}: the JSON answer is cut off or garbled ({len(answer.body)} bytes)") from None

    @staticmethod
    def _api_message(answer: Fetched) -> str:
        try:
            body = json.loads(answer.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return " ".join(answer.body[:80].decode("utf-8", "replace").split()) or "(empty body)"
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])[:200]
        return str(body)[:200]

    @staticmethod
    def _unwrap(answer: Any) -> Any:
        # Some Wing APIs wrap their answer in 'data'.
        if isinstance(answer, dict) and set(answer) >= {"data"} and isinstance(answer["data"], (dict, list)):
            return answer["data"]
        return answer

    # --- v2: the four steps -----------------------------------------------------------------

    @step("settlement_groups")
    def settlement_groups(self, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        """Step 1: the settlement groups overlapping [start, end] (by 매출인식일), one entry per
        settlementGroupKey: Wing lists a group once per payment part (70 %, 30 %)."""
        if start > end:
            raise CollectionError("configuration_error", f"settlement groups: the window {start}..{end} ends "
                                                         "before it starts")
        body = {"startDate": self._instant(start), "endDate": self._instant(end),
                "searchDateType": self.search_date_type}
        # status/api fails for a while (one success in 32 tries in a recorded session, recovering after
        # 22-46 s: REAL-PORTALS.md §6), so its 5xx are retried for waits.status_retry seconds.
        answer = self._unwrap(self._api("status", f"settlement groups {start}..{end}", body,
                                        retry_server_errors=self.status_retry))
        reports = answer.get("settlementStatusReports") if isinstance(answer, dict) else None
        if not isinstance(reports, list):
            raise ExportFormatError(f"settlement groups ({self.paths['status']}): no settlementStatusReports list")
        groups: dict[str, dict[str, Any]] = {}
        for entry in reports:
            key = entry.get("settlementGroupKey") if isinstance(entry, dict) else None
            if not key:
                raise ExportFormatError(f"settlement groups ({self.paths['status']}): an entry has no "
                                        "settlementGroupKey")
            for field in ("settlementPeriodStartDate", "settlementPeriodEndDate"):
                try:
                    seoul_day(entry[field])
                except (KeyError, ValueError, TypeError):
                    raise ExportFormatError(f"settlement groups ({self.paths['status']}): group {key} has no valid "
                                            f"{field}") from None
            groups.setdefault(str(key), entry)
        log.info("settlement groups %s..%s: %d listed, %d distinct", start, end, len(reports), len(groups))
        return list(groups.values())

    def _instant(self, day: dt.date) -> str:
        """Seoul midnight of ``day`` as the UTC instant status/api takes, in formats.status_instant."""
        return dt.datetime.combine(day, dt.time(), KST).astimezone(dt.UTC).strftime(self.status_instant_format)

    def _next_request_time(self) -> int:
        """A requestTime (ms epoch) never used before by this session: it names the request later."""
        now = int(time.time() * 1000)
        self._last_request_time = max(now, self._last_request_time + 1)
        return self._last_request_time

    def _listing(self, first_ms: int, last_ms: int) -> list[dict[str, Any]]:
        """Step 3's download list: the account's requests with requestTime in [first_ms, last_ms]."""
        body = {"requestTimeFrom": str(first_ms), "requestTimeTo": str(last_ms)}
        listing = self._unwrap(self._api("download_list", "report download list", body))
        if isinstance(listing, dict):
            listing = listing.get("content", listing.get("downloadList"))
        if not isinstance(listing, list):
            raise ExportFormatError(f"report download list ({self.paths['download_list']}): not a list of requests")
        return [e for e in listing if isinstance(e, dict)]

    def _earlier_request(self, report_type: str, group_key: str) -> dict[str, Any] | None:
        """The newest request of the same report and group in the download list of the last
        waits.duplicate_lookback seconds that has not failed, as ``_request_report`` returns it; None if none."""
        now = int(time.time() * 1000)
        found = []
        for entry in self._listing(max(0, now - int(self.duplicate_lookback * 1000)), now):
            keys = entry.get("settlementGroupKeys")
            if (entry.get("sellerReportType") == report_type and isinstance(keys, list) and group_key in keys
                    and str(entry.get("downloadStatus")) not in self.failed_statuses):
                try:
                    found.append((int(str(entry.get("requestTime"))), str(entry.get("requestId"))))
                except ValueError:
                    continue
        if not found:
            return None
        request_time, request_id = max(found)
        self._last_request_time = max(self._last_request_time, request_time)
        return {"report_type": report_type, "group_key": group_key, "request_time": request_time,
                "request_id": request_id}

    def _request_report(self, report_type: str, group_key: str) -> dict[str, Any]:
        """Step 2: ask for one report of one settlement group.

        Wing may answer ``{"duplicateRequest": true}`` to a request it has had before (OH). Then the earlier
        request is looked up in the download list and used (polled, then downloaded) as if just made; if
        none is listed, the session waits waits.duplicate_backoff seconds (OH backs off 15 min) and asks
        again, DUPLICATE_ATTEMPTS times in all, then gives up as portal_unavailable (retried later)."""
        what = f"{report_type} request of {group_key}"

        def ask() -> dict[str, Any] | None:
            request_time = self._next_request_time()
            body = {"sellerReportType": report_type, "requestTime": str(request_time),
                    "settlementGroupKeys": [group_key], "locale": self.locale}
            answer = self._unwrap(self._api("request_download", what, body))
            if isinstance(answer, dict) and answer.get("duplicateRequest") is True:
                earlier = self._earlier_request(report_type, group_key)
                log.info("%s: Wing answered duplicateRequest; %s", what,
                         f"using the earlier request {earlier['request_id']}" if earlier
                         else "no earlier request is listed")
                return earlier
            return self._made(report_type, group_key, request_time, answer)

        made = Retrying(stop=stop_after_attempt(DUPLICATE_ATTEMPTS), wait=wait_fixed(self.duplicate_backoff),
                        retry=retry_if_result(lambda r: r is None),
                        retry_error_callback=lambda state: state.outcome.result())(ask)
        if made is None:
            raise unavailable(f"{what}: Wing answered duplicateRequest {DUPLICATE_ATTEMPTS} times "
                              f"(waiting {self.duplicate_backoff:g} s between) and lists no earlier request of it")
        return made

    def _made(self, report_type: str, group_key: str, request_time: int, answer: Any) -> dict[str, Any]:
        if not isinstance(answer, dict) or answer.get("requestId") in (None, ""):
            raise ExportFormatError(f"{report_type} request ({self.paths['request_download']}): the answer has no "
                                    "requestId")
        log.info("requested %s of %s (request %s)", report_type, group_key, answer["requestId"])
        return {"report_type": report_type, "group_key": group_key, "request_time": request_time,
                "request_id": str(answer["requestId"])}

    def _wait_until_ready(self, requests_made: list[dict[str, Any]]) -> None:
        """Step 3: poll the download list over the requests' requestTime range, with backoff (waits.report_poll,
        doubling up to waits.report_poll_max), until every request is COMPLETED or no poll fits into
        waits.report seconds any more."""
        first = min(r["request_time"] for r in requests_made)
        last = max(r["request_time"] for r in requests_made)

        def waiting() -> list[str]:
            status = {str(e.get("requestId")): str(e.get("downloadStatus")) for e in self._listing(first, last)}
            out = []
            for made in requests_made:
                state = status.get(made["request_id"], "not listed")
                if state in self.failed_statuses:
                    raise unavailable(f"{made['report_type']} of {made['group_key']}: Wing reports the request "
                                      f"as {state}")
                if state != COMPLETED:
                    out.append(f"{made['report_type']} of {made['group_key']} ({state})")
            return out

        def out_of_time(state: RetryCallState) -> bool:  # the next wait would end after waits.report
            return state.seconds_since_start + state.upcoming_sleep > self.report_wait

        polls = Retrying(stop=out_of_time, retry=retry_if_result(bool),
                         wait=wait_exponential(multiplier=self.poll_interval, max=self.max_poll_interval,
                                               min=self.poll_interval),
                         retry_error_callback=lambda state: state)
        result = polls(waiting)
        if isinstance(result, RetryCallState):
            raise unavailable(f"{'; '.join(result.outcome.result()[:3])}: not COMPLETED after "
                              f"{result.attempt_number} polls of the download list in "
                              f"{result.seconds_since_start:.0f} s (report_wait {self.report_wait:g} s)")
        log.info("%d report(s) ready after %d poll(s)", len(requests_made), polls.statistics["attempt_number"])

    def _download(self, made: dict[str, Any], target: Path) -> Path:
        """Step 4: the report's presigned link, then its file from the storage host without portal cookies.
        A link that has expired is asked for again (LINK_ATTEMPTS links in all)."""
        what = f"{made['report_type']} of {made['group_key']}"

        def fetch() -> bytes | None:  # None: the link had expired
            answer = self._unwrap(self._api("download", f"{what} link",
                                            {"requestTime": str(made["request_time"]), "locale": self.locale}))
            url = answer.get("url") if isinstance(answer, dict) else None
            if not isinstance(url, str) or "://" not in url:
                raise ExportFormatError(f"{what} link ({self.paths['download']}): the answer has no url")
            try:
                # A plain GET with no cookies at all: the storage host is not Wing.
                response = requests.get(url, timeout=self.timeout)
            except requests.Timeout:
                raise unavailable(f"{what} file ({url_path(url)}): no answer within {self.timeout:g} s") from None
            except requests.RequestException as exc:
                raise unavailable(f"{what} file ({url_path(url)}): {type(exc).__name__}") from None
            if response.status_code == 403 and b"expired" in response.content[:1000].lower():
                return None
            if response.status_code >= 500:
                raise unavailable(f"{what} file ({url_path(url)}): HTTP {response.status_code}")
            if response.status_code != 200:
                raise ExportFormatError(f"{what} file ({url_path(url)}): HTTP {response.status_code}: "
                                        f"{' '.join(response.text[:120].split())}")
            return self._check_xlsx(response.content, f"{what} ({self.paths['download']})")

        def again(state: RetryCallState) -> None:
            log.info("%s: the link expired (attempt %d); asking for a new one", what, state.attempt_number)

        body = Retrying(stop=stop_after_attempt(LINK_ATTEMPTS), retry=retry_if_result(lambda body: body is None),
                        before_sleep=again, retry_error_callback=lambda state: None)(fetch)
        if body is None:
            raise unavailable(f"{what}: {LINK_ATTEMPTS} links in a row had expired before they were fetched")
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(body)
        os.replace(partial, target)  # never leave a half-written file under the final name
        log.info("downloaded %s (%d bytes)", what, len(body))
        return target

    @step("settlement_reports")
    def settlement_reports(self, start: dt.date, end: dt.date, target_dir: Path,
                           report_types: Iterable[str] = REPORT_TYPES) -> SettlementReports:
        """Both reports of every settlement group overlapping [start, end], each group downloaded once, into
        ``target_dir`` as ``{report type}__{group key}.xlsx``, with the groups in settlement_groups.json.

        A report covers whole settlement groups, not the window: the reader keeps the rows whose
        매출인식일 is in the window.
        """
        report_types = tuple(report_types)
        unknown = [t for t in report_types if t not in REPORT_TYPES]
        if unknown:
            raise CollectionError("configuration_error", f"not a Wing report type: {unknown} "
                                                         f"(known: {', '.join(REPORT_TYPES)})")
        target_dir.mkdir(parents=True, exist_ok=True)
        groups = self.settlement_groups(start, end)
        made = [self._request_report(t, g["settlementGroupKey"]) for g in groups for t in report_types]
        unique = {(m["report_type"], m["group_key"]) for m in made}
        if len(unique) != len(made):  # never download (and count) one report twice
            raise ExportFormatError("settlement reports: one report of one group was requested twice")
        if made:
            self._wait_until_ready(made)
        files: dict[str, list[Path]] = {t: [] for t in report_types}
        for request in made:
            name = f"{request['report_type']}__{request['group_key']}.xlsx"
            files[request["report_type"]].append(self._download(request, target_dir / name))
        groups_file = target_dir / SETTLEMENT_GROUPS_FILE
        groups_file.write_text(json.dumps(groups, ensure_ascii=False, indent=1), encoding="utf-8")
        return SettlementReports(files=files, groups=groups, groups_file=groups_file)

    # --- v1: 판매분석 -------------------------------------------------------------------------

    def _vi_page(self, day: dt.date, page: int, size: int) -> dict[str, Any]:
        body = {"startDate": day.strftime(self.v1_date_format), "endDate": day.strftime(self.v1_date_format),
                "registrationTypes": list(self.v1_registration_types), "pageNumber": page, "pageSize": size,
                "sortBy": self.v1_sort[0], "sortOrder": self.v1_sort[1], "includeSoldVICount": True}
        try:
            answer = self._unwrap(self._api("vi_detail_search", f"판매분석 {day} page {page}", body))
        finally:
            self._last_vi_call = time.monotonic()
        if not isinstance(answer, dict) or not isinstance(answer.get("vendorItems"), list) \
                or not isinstance(answer.get("paginationDetails"), dict):
            raise ExportFormatError(f"판매분석 ({self.paths['vi_detail_search']}): no vendorItems and "
                                    "paginationDetails")
        return answer

    def _item_id(self, item: Any) -> str:
        details = item.get("vendorItemDetails") if isinstance(item, dict) else None
        item_id = details.get("vendorItemId") if isinstance(details, dict) else None
        if item_id in (None, ""):
            raise ExportFormatError(f"판매분석 ({self.paths['vi_detail_search']}): an item has no "
                                    "vendorItemDetails.vendorItemId")
        return str(item_id)

    def _v1_day(self, day: dt.date) -> list[dict[str, Any]]:
        """Every item of one day, all pages, de-duplicated by vendorItemId; when the GMV order shifted
        between pages and an item was missed, the day is read again in pages as large as allowed."""
        items: dict[str, dict[str, Any]] = {}
        total, size, calls = 0, self.v1_page_size, 0
        for _ in range(V1_PASSES):
            page, pages = 0, 1
            while page < pages:
                if calls:
                    self._v1_pause(self.v1_page_pause)
                calls += 1
                answer = self._vi_page(day, page, size)
                details = answer["paginationDetails"]
                pages, total = int(details.get("totalPages") or 0), int(details.get("totalResults") or 0)
                if pages > self.v1_max_pages:
                    if size < self.v1_max_page_size:
                        size = self.v1_max_page_size  # fewer, larger pages
                        items.clear()
                        page, pages = 0, 1
                        continue
                    raise CollectionError(
                        "configuration_error", f"판매분석 {day}: {total} items take {pages} pages of {size}, more "
                        f"than page_sizes.v1_max_pages ({self.v1_max_pages}); no item is left out, so nothing is "
                        "read: raise the setting")
                for item in answer["vendorItems"]:
                    items.setdefault(self._item_id(item), item)
                page += 1
            if len(items) >= total:
                break
            size = max(size, min(total, self.v1_max_page_size))
            log.info("판매분석 %s: %d of %d items after reading every page; reading them again", day, len(items), total)
        if len(items) != total:
            raise unavailable(f"판매분석 {day}: {len(items)} distinct items over {V1_PASSES} readings of every page, "
                              f"but Wing reports {total}")
        return list(items.values())

    def _v1_pause(self, seconds: float) -> None:
        """At least ``seconds`` since the last 판매분석 call (OH: 700 ms between pages, 1,200 ms between days)."""
        last = getattr(self, "_last_vi_call", None)
        if last is not None:
            left = seconds - (time.monotonic() - last)
            if left > 0:
                time.sleep(left)

    @step("v1_sales")
    def v1_sales(self, start: dt.date, end: dt.date) -> dict[str, Any]:
        """판매분석 of every day of [start, end], one day at a time (the API sums over the range asked):
        ``{"amount_field": ..., "kept_registration_types": [...], "days": [{"date": "YYYY-MM-DD",
        "items": [vendorItems...]}]}``: every item listed, as listed (zero-sale options and items of
        other registration types included); ``jet.v1.sales_rows`` keeps what was sold by Rocket Growth."""
        if start > end:
            raise CollectionError("configuration_error", f"판매분석: the window {start}..{end} ends before it starts")
        days = []
        day = start
        while day <= end:
            if day > start:
                self._v1_pause(self.v1_day_pause)
            items = self._v1_day(day)
            log.info("판매분석 %s: %d items listed", day, len(items))
            days.append({"date": day.isoformat(), "items": items})
            day += dt.timedelta(days=1)
        return {"amount_field": self.v1_amount_field, "registration_types": list(self.v1_registration_types),
                "kept_registration_types": list(self.v1_kept_registration_types), "days": days}
