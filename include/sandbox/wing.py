"""The Wing (Coupang Jet, Rocket Growth) pages and APIs of the sandbox, as REAL-PORTALS.md §4 records them.

- the ``XSRF-TOKEN`` cookie comes from a later XHR (``/tenants/sfl-portal/card/cre/resource``,
  which the home page calls a moment after it loads), never from the sign-on;
- v2 settlement reports in four JSON POSTs with the ``x-xsrf-token`` header: settlement
  groups (``status/api``), ``request-download``, ``download-list`` over a requestTime range,
  and ``download/api/v2`` answering a presigned link on the storage origin (sandbox.storage);
- v1 판매분석 as ``vi-detail-search``: per item sums over the range asked, 0-based pages, options
  listed with zero sales, RFM and NORMAL items told apart by ``registrationType``;
- and, where the scenario's ``wing`` says so, the live site's failures (REAL-PORTALS.md §6):
  status/api failing for a while with HTTP 500 and the signed-in page as body, 403s at a share
  of the calls, ``{"duplicateRequest": true}`` to a repeated report request, and the other
  recorded formats of group keys (dashes) and instants (no milliseconds).

The shapes of the project's first, invented Wing (a date-range report request, GET polling,
a GET download by requestId, a server-rendered sales page) are refused with 4xx.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from sandbox import settlement
from sandbox.excel import settlement_report_xlsx
from sandbox.scenario import JetAccount
from sandbox.sso import Portal, Principal, add_sign_on_routes, current_session, help_base
from sandbox.state import ReportRequest, SandboxState, Session
from sandbox.storage import presigned_url
from sandbox.web import render, state_of

PREFIX = "/wing"  # Wing is served under this prefix, as a site of its own (see server.portal_url)
HOME_PATH = "/"
XSRF_RESOURCE_PATH = "/tenants/sfl-portal/card/cre/resource"  # the XHR whose answer sets XSRF-TOKEN
STATUS_PATH = "/tenants/rfm/v2/settlements/status/api"  # 정산 현황: settlement groups
REQUEST_DOWNLOAD_PATH = "/tenants/rfm/v2/settlements/request-download/api"  # 엑셀 다운로드 요청
DOWNLOAD_LIST_PATH = "/tenants/rfm/v2/settlements/download-list/api"  # 엑셀 다운로드 목록
DOWNLOAD_PATH = "/tenants/rfm/v2/settlements/download/api/v2"  # the link of a ready report
VI_DETAIL_SEARCH_PATH = "/tenants/rfm-ss/api/business-insight/vi-detail-search"  # 판매분석 (v1)

XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "x-xsrf-token"
# How long after the home page loads its script asks for the XSRF cookie (the real page loads
# its cards first); unknown on the real site.
XSRF_XHR_DELAY_MS = 400
REPORT_TYPES = (settlement.CATEGORY_TR, settlement.WAREHOUSING_SHIPPING)
PENDING, COMPLETED = "PENDING", "COMPLETED"
SEARCH_DATE_TYPES = ("SALES", "PAYMENT")  # 매출인식일 | 결제일
LOCALES = ("ko", "en")
KST = dt.timezone(dt.timedelta(hours=9), "Asia/Seoul")
V1_MAX_PAGE_SIZE = 100  # unknown on the real site; larger pages are refused here
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")
_MS = re.compile(r"^\d{10,15}$")

router = APIRouter()


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _authenticate(state: SandboxState, username: str, password: str) -> Principal | None:
    for account in state.scenario.jet_accounts:
        if username == account.username:
            if not hmac.compare_digest(password.encode(), account.password.encode()):
                return None
            return Principal(account.account_id, username, False, account.sms_challenge, None)
    return None


PORTAL = Portal(name="wing", client_id="wing", title="WING", prefix=PREFIX, session_cookie="WING_SESSION",
                router=router, authenticate=_authenticate, home_path=HOME_PATH, login_path="/login",
                callback_path="/sso/login", landing_path=HOME_PATH,  # the chain LM records (REAL-PORTALS.md §1)
                api_prefix="/tenants/")  # signed out: 302 /login -> /logout -> the help site (§6, OH)
add_sign_on_routes(PORTAL)


def _session(request: Request) -> tuple[Session, JetAccount]:
    session = current_session(request, PORTAL)
    return session, state_of(request).scenario.jet_account(session.account_id)


def _json_error(request: Request, status_code: int, error: str, message: str) -> JSONResponse:
    # The shape of a Spring Boot error body, as the real APIs answer.
    return JSONResponse({"status": status_code, "error": error, "message": message, "path": request.url.path},
                        status_code=status_code)


def _bad(message: str) -> ApiError:
    return ApiError(400, "Bad Request", message)


async def _api(request: Request) -> tuple[Session, JetAccount, dict[str, Any]]:
    """The session, account and JSON body of an API call; ApiError 403 without the session's XSRF token."""
    session, account = _session(request)
    sent = request.headers.get(XSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.xsrf_token.encode()):
        problem = "missing" if not sent else "not the session's"
        raise ApiError(403, "Forbidden", f"Invalid CSRF token: the {XSRF_HEADER} header is {problem} "
                                         f"(send the {XSRF_COOKIE} cookie's value)")
    if "application/json" not in request.headers.get("content-type", ""):
        raise ApiError(415, "Unsupported Media Type", "Content-Type must be application/json")
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise _bad("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    state = state_of(request)
    state.api_call(request.url.path.removeprefix(PREFIX), body)
    share = state.scenario.wing.forbidden_share
    if share and _counted(len(state.api_calls), share):
        # The intermittent 403 of the live site (about one call in five in the afternoon, OH): not the
        # bot wall's 'Access Denied' page; its body is unknown, so a Spring error like the others.
        raise ApiError(403, "Forbidden", "Forbidden")
    return session, account, body


def _counted(n: int, share: float) -> bool:
    """Whether the n-th call (1-based) is one of ``share`` of the calls, deterministically: when n x share
    reaches a new whole number (0.2: calls 5, 10, 15, ...; 1/32: calls 32, 64, ...)."""
    return math.floor(n * share + 1e-9) > math.floor((n - 1) * share + 1e-9)


def _instant_day(body: dict[str, Any], key: str) -> dt.date:
    raw = body.get(key)
    if not isinstance(raw, str) or not _INSTANT.match(raw):
        raise _bad(f"{key} must be an ISO instant such as 2026-01-04T15:00:00.000Z")
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(KST).date()


def _instant(day: dt.date, milliseconds: bool = True) -> str:
    """Seoul midnight of ``day`` as the UTC instant the real API writes: with milliseconds (as LM reads
    them) or without (a live value, OH)."""
    return dt.datetime.combine(day, dt.time(), KST).astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z" if milliseconds else "%Y-%m-%dT%H:%M:%SZ")


def group_key(state: SandboxState, group: settlement.Group) -> str:
    """The group's settlementGroupKey in the scenario's recorded format: dates as YYYYMMDD or with dashes."""
    if state.scenario.wing.group_key_dates == "dashes":
        return f"{group.vendor_id}-{group.start:%Y-%m-%d}-{group.end:%Y-%m-%d}"
    return group.key


def _ms(body: dict[str, Any], key: str) -> int:
    raw = body.get(key)
    if not isinstance(raw, str) or not _MS.match(raw):
        raise _bad(f"{key} must be a millisecond epoch as text")
    return int(raw)


def _api_route(path: str):
    """A POST API of Wing whose ApiErrors become Spring-like JSON errors."""

    def decorate(handler):
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _json_error(request, exc.status, exc.error, exc.message)

        endpoint.__name__ = handler.__name__
        router.add_api_route(path, endpoint, methods=["POST"])
        return handler

    return decorate


@router.get(HOME_PATH)
def home(request: Request) -> Response:
    session, account = _session(request)
    return render(request, "wing/home.html", session=session, account=account, prefix=PREFIX,
                  xsrf_resource=PREFIX + XSRF_RESOURCE_PATH, xsrf_delay_ms=XSRF_XHR_DELAY_MS)


@router.get(XSRF_RESOURCE_PATH)
def xsrf_resource(request: Request) -> Response:
    """What the home page's cards ask for; its answer (re)sets the session's XSRF-TOKEN cookie, readable by scripts."""
    session, _ = _session(request)
    response = JSONResponse({"resources": [], "cardType": "cre"})
    response.set_cookie(XSRF_COOKIE, session.xsrf_token, path=PREFIX, samesite="lax")
    return response


@router.get("/logout")
def logout(request: Request) -> Response:
    """Ends the session and sends the browser to the help site, another origin (helpseller.coupang.com)."""
    state_of(request).end_session(request.cookies.get(PORTAL.session_cookie))
    response = RedirectResponse(help_base(request) + "/", status_code=302)
    response.delete_cookie(PORTAL.session_cookie, path="/")
    response.delete_cookie(XSRF_COOKIE, path=PREFIX)
    return response


# --- v2: settlement groups and reports ---------------------------------------------------------------


def _group_json(state: SandboxState, account: JetAccount, group: settlement.Group, ratio: int,
                today: dt.date) -> dict[str, Any]:
    total = settlement.settlement_amount(account, group, today)
    first = total * settlement.SETTLEMENT_RATIOS[0] // 100
    ms = state.scenario.wing.instant_milliseconds
    return {
        "settlementGroupKey": group_key(state, group), "vendorId": account.vendor,
        "settlementType": "WEEKLY" if account.settlement_cycle == "weekly" else "MONTHLY",
        "settlementPeriodStartDate": _instant(group.start, ms), "settlementPeriodEndDate": _instant(group.end, ms),
        "settlementRatio": ratio, "finalSettlementAmount": first if ratio == settlement.SETTLEMENT_RATIOS[0]
        else total - first,
        "settlementStatusReportDetail": settlement.totals(account, group, today),
    }


@_api_route(STATUS_PATH)
async def status(request: Request) -> Response:
    """Settlement groups overlapping [startDate, endDate] (Seoul days of the instants), each listed once per
    payment part (70 %, then 30 %): the same key twice."""
    session, account, body = await _api(request)
    state = state_of(request)
    failures = state.scenario.wing.status_failures
    if failures is not None:
        number, elapsed = state.status_call(session.token)
        if elapsed < failures.window_seconds and not _counted(number, 1 - failures.share):
            # A fast 500 whose body is the signed-in Wing page (REAL-PORTALS.md §6, OH)
            return render(request, "wing/home.html", status_code=500, session=session, account=account,
                          prefix=PREFIX, xsrf_resource=PREFIX + XSRF_RESOURCE_PATH, xsrf_delay_ms=XSRF_XHR_DELAY_MS)
    start, end = _instant_day(body, "startDate"), _instant_day(body, "endDate")
    if body.get("searchDateType") not in SEARCH_DATE_TYPES:
        raise _bad(f"searchDateType must be one of {', '.join(SEARCH_DATE_TYPES)}")
    if start > end:
        raise _bad("startDate is after endDate")
    today = state.today
    found = settlement.groups(account, start, end, today)
    reports = [_group_json(state, account, g, ratio, today) for ratio in settlement.SETTLEMENT_RATIOS for g in found]
    return JSONResponse({"settlementStatusReports": reports})


@_api_route(REQUEST_DOWNLOAD_PATH)
async def request_download(request: Request) -> Response:
    _, account, body = await _api(request)
    state = state_of(request)
    report_type = body.get("sellerReportType")
    if report_type not in REPORT_TYPES:
        raise _bad(f"sellerReportType must be one of {', '.join(REPORT_TYPES)}")
    request_time = _ms(body, "requestTime")
    keys = body.get("settlementGroupKeys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise _bad("settlementGroupKeys must be a non-empty list of settlement group keys")
    known = {group_key(state, g) for g in settlement.groups(account, dt.date.min, dt.date.max, state.today)}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise _bad(f"unknown settlementGroupKeys {unknown}")
    if body.get("locale") not in LOCALES:
        raise _bad(f"locale must be one of {', '.join(LOCALES)}")
    if state.report_by_time(account.account_id, request_time) is not None:
        # requestTime names the request in download/api/v2, so it must be unique
        raise ApiError(409, "Conflict", f"a request with requestTime {request_time} exists already")
    repeat_window = state.scenario.wing.duplicate_request_seconds
    if repeat_window and state.recent_request(account.account_id, report_type, tuple(keys), repeat_window):
        # The live site's answer to a request it has had before (OH): no new request is made.
        return JSONResponse({"duplicateRequest": True})
    report = state.new_report_request(account.account_id, report_type, request_time, tuple(keys), body["locale"])
    return JSONResponse({"requestId": report.request_id, "vendorId": account.vendor})


def _status(report: ReportRequest, account: JetAccount) -> str:
    return COMPLETED if report.polls >= account.report_ready_after_polls else PENDING


@_api_route(DOWNLOAD_LIST_PATH)
async def download_list(request: Request) -> Response:
    """The account's requests with requestTime in [requestTimeFrom, requestTimeTo], newest first; each call
    counts as one poll of each: PENDING until the account's report_ready_after_polls-th, then COMPLETED."""
    _, account, body = await _api(request)
    first, last = _ms(body, "requestTimeFrom"), _ms(body, "requestTimeTo")
    if first > last:
        raise _bad("requestTimeFrom is after requestTimeTo")
    reports = state_of(request).poll_report_requests(account.account_id, first, last)
    return JSONResponse([{"requestId": r.request_id, "vendorId": account.vendor, "sellerReportType": r.report_type,
                          "requestTime": str(r.request_time), "settlementGroupKeys": list(r.group_keys),
                          "downloadStatus": _status(r, account)} for r in reports])


@_api_route(DOWNLOAD_PATH)
async def download(request: Request) -> Response:
    """``{"url": ...}``: a presigned link to the report's file on the storage origin, for a COMPLETED request."""
    _, account, body = await _api(request)
    state = state_of(request)
    request_time = _ms(body, "requestTime")
    if body.get("locale") not in LOCALES:
        raise _bad(f"locale must be one of {', '.join(LOCALES)}")
    report = state.report_by_time(account.account_id, request_time)
    if report is None:
        raise ApiError(404, "Not Found", f"no report request with requestTime {request_time}")
    if _status(report, account) != COMPLETED:
        raise _bad("the report is not ready yet (downloadStatus is not COMPLETED)")
    number = state.next_link_number(account.account_id)
    url = presigned_url(state, state.storage_url, account.vendor, report, valid_seconds=account.link_valid_seconds,
                        expired=number <= account.expired_links)
    return JSONResponse({"url": url})


def render_report(state: SandboxState, report: ReportRequest) -> bytes:
    """The file of a report request (served by the storage origin)."""
    account = state.scenario.jet_account(report.account_id)
    by_key = {group_key(state, g): g for g in settlement.groups(account, dt.date.min, dt.date.max, state.today)}
    # Rows recognised after the sandbox's today do not exist yet (time passes: set_today).
    return settlement_report_xlsx(report.report_type, account, [by_key[k] for k in report.group_keys], state.today)


# --- v1: 판매분석 (vi-detail-search) ---------------------------------------------------------------------


def _plain_day(body: dict[str, Any], key: str) -> dt.date:
    raw = body.get(key)
    try:
        if not isinstance(raw, str) or len(raw) != 10:
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _bad(f"{key} must be a YYYY-MM-DD date") from None


def _int(body: dict[str, Any], key: str, minimum: int, maximum: int) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _bad(f"{key} must be a whole number from {minimum} to {maximum}")
    return value


@_api_route(VI_DETAIL_SEARCH_PATH)
async def vi_detail_search(request: Request) -> Response:
    """Sales per vendor item (option) summed over [startDate, endDate] of the registration types asked for
    (each item says its ``registrationType``): items sold in the range and the account's listed options
    (``v1_options``, with zero sales), ordered by GMV with ties in an order that changes from call to call
    (so pages can overlap or skip an item)."""
    _, account, body = await _api(request)
    state = state_of(request)
    start, end = _plain_day(body, "startDate"), _plain_day(body, "endDate")
    if start > end:
        raise _bad("startDate is after endDate")
    types = body.get("registrationTypes")
    if not isinstance(types, list) or not types or not set(types) <= {"RFM", "NORMAL"}:
        raise _bad("registrationTypes must be a non-empty list of RFM and NORMAL")
    page_number = _int(body, "pageNumber", 0, 1_000_000)
    page_size = _int(body, "pageSize", 1, V1_MAX_PAGE_SIZE)
    if body.get("sortBy", "GMV") != "GMV" or body.get("sortOrder", "DESC") not in ("DESC", "ASC"):
        raise _bad("sortBy must be GMV and sortOrder DESC or ASC")
    items: dict[str, dict[str, Any]] = {}
    for sale in account.v1_sales:
        if sale.registration_type in types and start <= sale.date <= min(end, state.today):  # later: not yet
            item = items.setdefault(sale.option_id, {"sale": sale, "units": 0, "gmv": 0})
            item["units"] += sale.qty
            item["gmv"] += sale.amount
    if start <= state.today:  # options listed with zero sales (146 listed, 11 sold: REAL-PORTALS.md §6)
        for option in account.v1_options:
            if option.registration_type in types:
                items.setdefault(option.option_id, {"sale": option, "units": 0, "gmv": 0})
    call = state.next_vi_search()

    def tie(option_id: str) -> str:
        return hashlib.sha256(f"{call}:{option_id}".encode()).hexdigest()

    descending = body.get("sortOrder", "DESC") == "DESC"
    ordered = sorted(items.values(), key=lambda i: (-i["gmv"] if descending else i["gmv"], tie(i["sale"].option_id)))
    page = ordered[page_number * page_size:(page_number + 1) * page_size]
    vendor_items = [{
        "vendorItemDetails": {"vendorItemId": int(i["sale"].option_id) if i["sale"].option_id.isdigit()
                              else i["sale"].option_id, "productName": i["sale"].product_name,
                              "itemName": i["sale"].option_name, "itemId": f"1{i['sale'].option_id}",
                              "registrationType": i["sale"].registration_type},
        "businessInsightsMetricsResponse": {"totalUnitsSold": i["units"], "totalOrders": i["units"],
                                            "totalPageViews": i["units"] * 7 + 3,
                                            "totalUniqueVisitor": i["units"] * 5 + 2,
                                            account.v1_amount_field: i["gmv"]},
    } for i in page]
    total = len(ordered)
    return JSONResponse({"vendorItems": vendor_items, "paginationDetails": {
        "pageNumber": page_number, "pageSize": page_size, "totalResults": total,
        "totalPages": -(-total // page_size)}})
