"""The Wing (Coupang Jet, Rocket Growth) pages and APIs of the sandbox: the v1 sales page, the v2 settlement reports."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from sandbox.excel import CATEGORY_TR, WAREHOUSING_SHIPPING, settlement_report_xlsx
from sandbox.scenario import JetAccount
from sandbox.sso import Portal, Principal, current_session, sign_on_url
from sandbox.state import ReportRequest, SandboxState, Session
from sandbox.web import BadRequest, date_param, int_param, page_count, render, state_of, won, ymd

PREFIX = "/wing"  # Wing is served under this prefix, as a site of its own (see server.portal_url)
HOME_PATH = "/"
SALES_PATH = "/tenants/rfm/sales"  # v1: 판매 현황, per sales date and option
REQUEST_DOWNLOAD_PATH = "/tenants/rfm/v2/settlements/request-download/api"  # 엑셀 다운로드 요청
DOWNLOAD_LIST_PATH = "/tenants/rfm/v2/settlements/download-list/api"  # 엑셀 다운로드 목록
DOWNLOAD_PATH = "/tenants/rfm/v2/settlements/download/api/v2"

XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "x-xsrf-token"
REPORT_TYPES = (CATEGORY_TR, WAREHOUSING_SHIPPING)
REQUESTED, IN_PROGRESS, COMPLETED = "REQUESTED", "IN_PROGRESS", "COMPLETED"
KST = dt.timezone(dt.timedelta(hours=9), "Asia/Seoul")

SALES_PAGE_SIZE = 50
DEFAULT_SALES_DAYS = 30
SALES_HEADERS = ("판매일", "옵션ID", "등록상품명", "옵션명", "판매수량", "판매금액")

router = APIRouter()


def _authenticate(state: SandboxState, username: str, password: str) -> Principal | None:
    for account in state.scenario.jet_accounts:
        if username == account.username:
            if not hmac.compare_digest(password.encode(), account.password.encode()):
                return None
            return Principal(account.account_id, username, False, account.sms_challenge, None)
    return None


PORTAL = Portal(name="wing", client_id="wing", title="WING", prefix=PREFIX, session_cookie="WING_SESSION",
                router=router, authenticate=_authenticate, home_path=HOME_PATH)


def _session(request: Request) -> tuple[Session, JetAccount]:
    session = current_session(request, PORTAL)
    return session, state_of(request).scenario.jet_account(session.account_id)


def _page(request: Request, name: str, session: Session, account: JetAccount, status_code: int = 200,
          **context: Any) -> Response:
    response = render(request, f"wing/{name}", status_code=status_code, session=session, account=account,
                      prefix=PREFIX, **context)
    # Like Spring's cookie token repository: every page (re)sets the token of the session,
    # readable by the page's scripts, which send it back in the x-xsrf-token header.
    if request.cookies.get(XSRF_COOKIE) != session.xsrf_token:
        response.set_cookie(XSRF_COOKIE, session.xsrf_token, path=PREFIX, samesite="lax")
    return response


def _error(request: Request, session: Session, account: JetAccount, status_code: int, message: str) -> Response:
    return _page(request, "error.html", session, account, status_code=status_code, message=message)


def _json_error(request: Request, status_code: int, error: str, message: str) -> JSONResponse:
    # The shape of a Spring Boot error body, as the real APIs answer.
    return JSONResponse({"status": status_code, "error": error, "message": message, "path": request.url.path},
                        status_code=status_code)


def _api_session(request: Request) -> tuple[Session, JetAccount, JSONResponse | None]:
    """The session of an API call, and the 403 answer when its x-xsrf-token header does not match."""
    session, account = _session(request)
    sent = request.headers.get(XSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.xsrf_token.encode()):
        problem = "missing" if not sent else "not the session's"
        return session, account, _json_error(
            request, 403, "Forbidden",
            f"Invalid CSRF token: the {XSRF_HEADER} header is {problem} (send the {XSRF_COOKIE} cookie's value)")
    return session, account, None


def _status(report: ReportRequest, account: JetAccount) -> str:
    if report.polls >= account.report_ready_after_polls:
        return COMPLETED
    return REQUESTED if report.polls <= 1 else IN_PROGRESS


def _file_name(report: ReportRequest) -> str:
    return f"{report.account_id}-{report.report_type}-ko-{report.request_id}.xlsx"


def _report_json(report: ReportRequest, status: str) -> dict[str, Any]:
    requested_ms = int(report.requested_at.replace(tzinfo=KST).timestamp() * 1000)
    return {"requestId": report.request_id, "vendorId": report.account_id, "sellerReportType": report.report_type,
            "startDate": report.start.isoformat(), "endDate": report.end.isoformat(),
            "requestTime": str(requested_ms), "downloadStatus": status,
            "fileName": _file_name(report) if status == COMPLETED else None}


@router.get(HOME_PATH)
def home(request: Request) -> Response:
    session, account = _session(request)
    return _page(request, "home.html", session, account, sales_path=PREFIX + SALES_PATH)


@router.get("/logout")
def logout(request: Request) -> Response:
    state_of(request).end_session(request.cookies.get(PORTAL.session_cookie))
    response = RedirectResponse(sign_on_url(PORTAL, str(request.base_url).rstrip("/") + PREFIX + HOME_PATH),
                                status_code=302)
    response.delete_cookie(PORTAL.session_cookie, path="/")
    response.delete_cookie(XSRF_COOKIE, path=PREFIX)
    return response


@router.get(SALES_PATH)
def sales(request: Request) -> Response:
    session, account = _session(request)
    state = state_of(request)
    try:
        page = int_param(request, "page", 1)
        end = date_param(request, "endDate", state.today)
        start = date_param(request, "startDate", end - dt.timedelta(days=DEFAULT_SALES_DAYS))
    except BadRequest as exc:
        return _error(request, session, account, 400, str(exc))
    if start > end:
        return _error(request, session, account, 400, "조회 시작일이 종료일보다 늦습니다.")
    matching = sorted((s for s in account.v1_sales if start <= s.date <= min(end, state.today)),
                      key=lambda s: (s.date, s.option_id))
    rows = [[ymd(s.date), s.option_id, s.product_name, s.option_name, won(s.qty), won(s.amount)]
            for s in matching[(page - 1) * SALES_PAGE_SIZE: page * SALES_PAGE_SIZE]]
    pages = page_count(len(matching), SALES_PAGE_SIZE)
    base = {"startDate": start.isoformat(), "endDate": end.isoformat()}
    links = [(n, f"{PREFIX}{SALES_PATH}?{urlencode({**base, 'page': n})}") for n in range(1, pages + 1)]
    return _page(request, "sales.html", session, account, headers=SALES_HEADERS, rows=rows, total=len(matching),
                 page=page, pages=pages, links=links, start=start, end=end, action=PREFIX + SALES_PATH)


@router.post(REQUEST_DOWNLOAD_PATH)
async def request_download(request: Request) -> Response:
    _, account, refused = _api_session(request)
    if refused:
        return refused
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return _json_error(request, 400, "Bad Request", "the body is not JSON")
    if not isinstance(body, dict):
        return _json_error(request, 400, "Bad Request", "the body must be a JSON object")
    report_type = body.get("sellerReportType")
    if report_type not in REPORT_TYPES:
        return _json_error(request, 400, "Bad Request", f"sellerReportType must be one of {', '.join(REPORT_TYPES)}")
    dates = {}
    for key in ("startDate", "endDate"):
        raw = body.get(key)
        try:
            if not isinstance(raw, str) or len(raw) != 10:
                raise ValueError
            dates[key] = dt.date.fromisoformat(raw)
        except ValueError:
            return _json_error(request, 400, "Bad Request", f"{key} must be a YYYY-MM-DD date")
    if dates["startDate"] > dates["endDate"]:
        return _json_error(request, 400, "Bad Request", "startDate is after endDate")
    report = state_of(request).new_report_request(account.account_id, report_type, dates["startDate"],
                                                  dates["endDate"])
    return JSONResponse(_report_json(report, REQUESTED))


# The real list is a POST with a requestTime range; GET is what the project uses.
@router.api_route(DOWNLOAD_LIST_PATH, methods=["GET", "POST"])
def download_list(request: Request) -> Response:
    _, account, refused = _api_session(request)
    if refused:
        return refused
    reports = state_of(request).poll_report_requests(account.account_id)
    return JSONResponse([_report_json(r, _status(r, account)) for r in reports])


@router.get(DOWNLOAD_PATH)
def download(request: Request, requestId: str = "") -> Response:  # noqa: N803 (the site's name)
    _, account, refused = _api_session(request)
    if refused:
        return refused
    state = state_of(request)
    report = state.report_requests.get(int(requestId)) if requestId.isdigit() else None
    if report is None or report.account_id != account.account_id:
        return _json_error(request, 404, "Not Found", f"no report request {requestId!r}")
    if _status(report, account) != COMPLETED:
        return _json_error(request, 409, "Conflict", "the report is not ready yet (downloadStatus is not COMPLETED)")
    # Rows recognised after the sandbox's today do not exist yet (time passes: set_today).
    body = settlement_report_xlsx(report.report_type, account, report.start, min(report.end, state.today),
                                  dt.datetime.combine(state.today, dt.time(9, 30)))
    name = _file_name(report)
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\"; "
                                                    f"filename*=UTF-8''{quote(name)}"})
