"""The Supplier Hub (Coupang Rocket) pages of the sandbox: 정산 > 일반매입계정, 입고상세내역, 부계정 관리."""

from __future__ import annotations

import datetime as dt
import hmac
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sandbox.excel import RECEIVE_DETAIL_PAGE_HEADERS, receive_detail_cells, receive_detail_xlsx
from sandbox.scenario import RocketAccount, RocketInvoice
from sandbox.sso import Portal, Principal, add_sign_on_routes, current_session, sign_on_url
from sandbox.state import SandboxState, Session
from sandbox.web import BadRequest, date_param, int_param, page_count, render, state_of, won, ymd

LIST_PATH = "/scm/settlement/general/purchase/account"  # 정산 > 일반매입계정
DETAIL_PATH = "/scm/receive/detail"  # 입고상세내역
DETAIL_EXCEL_PATH = "/scm/receive/detail/excel"
PURCHASE_ORDERS_PATH = "/scm/purchase/order/list"  # 발주현황
SUB_ACCOUNTS_PATH = "/scm/sub-accounts"  # 부계정 관리
TAX_INVOICES_PATH = "/scm/settlement/tax-invoice"  # 세금계산서 (where the seller confirms one)

LANDING_PATH = "/dashboard/KR"  # where a sign-on lands (OH)
LOGIN_PATH = "/oauth2/authorization/keycloak"  # Spring Security's login start
CALLBACK_PATH = "/login/oauth2/code/keycloak"  # where Keycloak sends the code back (OH)
LIST_PAGE_SIZE = 50  # the real page never shows more than 50 rows
# The search the real page sends (OH); a query without them is a page nobody searched on yet.
LIST_SEARCH_PARAMS = {"billIssueType": "DIRECT", "paymentSearchType": "COMPLETE"}
DETAIL_PAGE_SIZE = 10
# Pages past this one need totalCount in the query, a quirk of the real 입고상세내역.
DETAIL_PAGES_WITHOUT_TOTAL = 2
DEFAULT_LIST_DAYS = 30

LIST_HEADERS = ("계산서번호", "거래처명", "작성일자", "지급일자", "과세유형", "발주유형", "정산유형", "발행유형",
                "공급가액", "부가가치세", "지급예정금액", "세금계산서 확정일", "1차 지급일", "1차 지급액", "2차 지급액",
                "")  # the last column has no header: the buttons and a status text

router = APIRouter()


def _authenticate(state: SandboxState, username: str, password: str) -> Principal | None:
    for account in state.scenario.rocket_accounts:
        if account.master_username and username == account.master_username:
            if hmac.compare_digest(password.encode(), (account.master_password or "").encode()):
                return Principal(account.account_id, username, True, False, None)
            return None
        if username == account.username:
            if not hmac.compare_digest(password.encode(), account.password.encode()):
                return None
            expired_on = state.sub_account_expires[username] if state.sub_account_expired(username) else None
            return Principal(account.account_id, username, False, account.sms_challenge, expired_on)
    return None


PORTAL = Portal(name="supplier_hub", client_id="supplier-hub", title="서플라이어 허브", prefix="",
                session_cookie="SUPPLIER_HUB_SESSION", router=router, authenticate=_authenticate,
                home_path=LANDING_PATH, login_path=LOGIN_PATH, callback_path=CALLBACK_PATH,
                landing_path=LANDING_PATH)
add_sign_on_routes(PORTAL)


def _session(request: Request) -> tuple[Session, RocketAccount]:
    session = current_session(request, PORTAL)
    return session, state_of(request).scenario.rocket_account(session.account_id)


def _page(request: Request, name: str, session: Session, account: RocketAccount, status_code: int = 200,
          **context) -> Response:
    return render(request, f"supplier_hub/{name}", status_code=status_code, session=session, account=account,
                  **context)


def _error(request: Request, session: Session, account: RocketAccount, status_code: int, message: str) -> Response:
    return _page(request, "error.html", session, account, status_code=status_code, message=message)


def _blocked(request: Request, session: Session, account: RocketAccount, title: str) -> Response | None:
    """The notice every settlement page shows instead of data while a tax invoice is pending."""
    pending = state_of(request).pending_tax_invoices(account.account_id)
    if not pending:
        return None
    return _page(request, "blocked.html", session, account, title=title, pending=pending)


def _invoice(account: RocketAccount, invoice_no: str | None) -> RocketInvoice | None:
    for invoice in account.invoices:
        if invoice.invoice_no == invoice_no:
            return invoice
    return None


@router.get("/")
def root(request: Request) -> Response:
    _session(request)
    return RedirectResponse(LANDING_PATH, status_code=302)


@router.get(LANDING_PATH)
def home(request: Request) -> Response:
    session, account = _session(request)
    return _page(request, "home.html", session, account)


@router.get("/logout")
def logout(request: Request) -> Response:
    state_of(request).end_session(request.cookies.get(PORTAL.session_cookie))
    response = RedirectResponse(sign_on_url(PORTAL, LANDING_PATH), status_code=302)
    response.delete_cookie(PORTAL.session_cookie, path="/")
    return response


@router.get(SUB_ACCOUNTS_PATH)
def sub_accounts(request: Request, extended: str = "") -> Response:
    session, account = _session(request)
    state = state_of(request)
    usernames = [account.username] + [s.username for s in account.other_sub_accounts]
    rows = [{"username": u, "expires": state.sub_account_expires[u], "expired": state.sub_account_expired(u)}
            for u in usernames]
    return _page(request, "sub_accounts.html", session, account, rows=rows, today=state.today,
                 extended=extended if extended in usernames else "")


@router.post(f"{SUB_ACCOUNTS_PATH}/extend")
async def extend_sub_account(request: Request) -> Response:
    session, account = _session(request)
    username = str((await request.form()).get("username", ""))
    if username not in [account.username] + [s.username for s in account.other_sub_accounts]:
        return _error(request, session, account, 404, "해당 부계정을 찾을 수 없습니다.")
    state_of(request).extend_sub_account(username)
    return RedirectResponse(f"{SUB_ACCOUNTS_PATH}?extended={quote(username)}", status_code=303)


@router.get(LIST_PATH)
def purchase_account(request: Request) -> Response:
    """일반매입계정 as OH records it: searched with the page's own parameters, no total count, and a
    page past the last one serves the last page again."""
    session, account = _session(request)
    blocked = _blocked(request, session, account, "일반매입계정")
    if blocked:
        return blocked
    state = state_of(request)
    try:
        page = int_param(request, "page", 1)
        size = min(LIST_PAGE_SIZE, int_param(request, "size", LIST_PAGE_SIZE))
        end = date_param(request, "endDate", state.today)
        start = date_param(request, "startDate", end - dt.timedelta(days=DEFAULT_LIST_DAYS))
    except BadRequest as exc:
        return _error(request, session, account, 400, str(exc))
    searched = all(request.query_params.get(k) == v for k, v in LIST_SEARCH_PARAMS.items())
    # Invoices written after the sandbox's today do not exist yet (time passes: set_today).
    matching = sorted((inv for inv in account.invoices if start <= inv.written_date <= min(end, state.today)),
                      key=lambda inv: (inv.written_date, inv.invoice_no), reverse=True) if searched else []
    pages = page_count(len(matching), size)
    shown_page = min(page, pages)  # past the end: the last page again
    rows = [_list_row(account, inv, state) for inv in matching[(shown_page - 1) * size: shown_page * size]]
    base = {"size": size, **LIST_SEARCH_PARAMS, "startDate": start.isoformat(), "endDate": end.isoformat(),
            "paymentPurchaseSearchType": "", "vendorPaymentInfoSeq": ""}
    links = [(n, f"{LIST_PATH}?{urlencode({'page': n, **base})}") for n in range(1, pages + 1)]
    return _page(request, "purchase_account.html", session, account, headers=LIST_HEADERS, rows=rows,
                 page=shown_page, links=links, start=start, end=end, size=size, search=LIST_SEARCH_PARAMS)


def _list_row(account: RocketAccount, inv: RocketInvoice, state: SandboxState) -> dict:
    confirmed = state.tax_invoice_confirmed[inv.invoice_no]
    return {
        "cells": [inv.invoice_no, account.vendor_name, ymd(inv.written_date), ymd(inv.payment_date), inv.tax_kind,
                  inv.order_type, inv.settlement_type, inv.issue_type, won(inv.supply_amount),
                  won(inv.vat_amount), won(inv.payable_amount), ymd(confirmed), ymd(inv.first_payment_date),
                  won(inv.first_payment_amount), won(inv.second_payment_amount)],
        "orders_url": f"{PURCHASE_ORDERS_PATH}?{urlencode({'vendorPaymentInfoSeq': inv.invoice_no})}",
        "detail_url": f"{DETAIL_PATH}?{urlencode({'vendorPaymentInfoSeq': inv.invoice_no, 'cplbYn': 'N', 'page': 1})}",
        "status": "전송성공" if confirmed is not None else "",
    }


@router.get(DETAIL_PATH)
def receive_detail(request: Request, vendorPaymentInfoSeq: str = "") -> Response:  # noqa: N803 (the site's name)
    session, account = _session(request)
    blocked = _blocked(request, session, account, "입고상세내역")
    if blocked:
        return blocked
    invoice = _invoice(account, vendorPaymentInfoSeq)
    if invoice is None or invoice.written_date > state_of(request).today:  # not written yet
        return _error(request, session, account, 404, "계산서 정보를 찾을 수 없습니다.")
    try:
        page = int_param(request, "page", 1)
    except BadRequest as exc:
        return _error(request, session, account, 400, str(exc))
    total = len(invoice.lines)
    if page > DETAIL_PAGES_WITHOUT_TOTAL and not request.query_params.get("totalCount"):
        shown: list = []
        total_shown = 0
    else:
        shown = invoice.lines[(page - 1) * DETAIL_PAGE_SIZE: page * DETAIL_PAGE_SIZE]
        total_shown = total
    pages = page_count(total_shown, DETAIL_PAGE_SIZE)
    links = [(n, f"{DETAIL_PATH}?" + urlencode({"vendorPaymentInfoSeq": invoice.invoice_no, "cplbYn": "N",
                                                 "page": n, "totalCount": total}))
             for n in range(1, pages + 1)]
    first = (page - 1) * DETAIL_PAGE_SIZE
    return _page(request, "receive_detail.html", session, account, invoice=invoice,
                 headers=RECEIVE_DETAIL_PAGE_HEADERS,
                 rows=[receive_detail_cells(invoice, line, first + i) for i, line in enumerate(shown)],
                 total=total_shown, page=page, pages=pages, links=links,
                 excel_url=f"{DETAIL_EXCEL_PATH}?{urlencode({'vendorPaymentInfoSeq': invoice.invoice_no})}")


@router.get(DETAIL_EXCEL_PATH)
def receive_detail_excel(request: Request, vendorPaymentInfoSeq: str = "") -> Response:  # noqa: N803
    session, account = _session(request)
    blocked = _blocked(request, session, account, "입고상세내역")
    if blocked:
        return blocked
    invoice = _invoice(account, vendorPaymentInfoSeq)
    if invoice is None or invoice.written_date > state_of(request).today:  # not written yet
        return _error(request, session, account, 404, "계산서 정보를 찾을 수 없습니다.")
    body = receive_detail_xlsx(invoice, returns_positive=account.export_return_sign == "positive")
    days = [line.moved_date for line in invoice.lines] or [invoice.written_date]
    filename = f"Coupang_Stocked_Data_List({min(days):%Y%m%d}~{max(days):%Y%m%d}).xlsx"
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=\"Coupang_Stocked_Data_List_"
                                                    f"{invoice.invoice_no}.xlsx\"; filename*=UTF-8''{quote(filename)}"})


@router.get(PURCHASE_ORDERS_PATH)
def purchase_orders(request: Request, vendorPaymentInfoSeq: str = "") -> Response:  # noqa: N803
    session, account = _session(request)
    blocked = _blocked(request, session, account, "발주현황")
    if blocked:
        return blocked
    invoice = _invoice(account, vendorPaymentInfoSeq)
    if invoice is None or invoice.written_date > state_of(request).today:  # not written yet
        return _error(request, session, account, 404, "계산서 정보를 찾을 수 없습니다.")
    orders: dict[tuple[str, str], dict] = {}
    for line in invoice.lines:
        row = orders.setdefault((line.po_no, line.sku_id), {"po_no": line.po_no, "sku_id": line.sku_id,
                                                            "sku_name": line.sku_name, "qty": 0})
        row["qty"] += line.qty
    return _page(request, "purchase_orders.html", session, account, invoice=invoice, rows=list(orders.values()))


@router.get(TAX_INVOICES_PATH)
def tax_invoices(request: Request) -> Response:
    session, account = _session(request)
    state = state_of(request)
    rows = [{"invoice": inv, "confirmed": state.tax_invoice_confirmed[inv.invoice_no]}
            for inv in sorted(account.invoices, key=lambda i: (i.written_date, i.invoice_no), reverse=True)]
    return _page(request, "tax_invoices.html", session, account, rows=rows)


@router.post(f"{TAX_INVOICES_PATH}/confirm")
async def confirm_tax_invoice(request: Request) -> Response:
    session, account = _session(request)
    invoice = _invoice(account, str((await request.form()).get("invoice_no", "")))
    if invoice is None:
        return _error(request, session, account, 404, "계산서 정보를 찾을 수 없습니다.")
    state_of(request).confirm_tax_invoice(invoice.invoice_no)
    return RedirectResponse(TAX_INVOICES_PATH, status_code=303)
