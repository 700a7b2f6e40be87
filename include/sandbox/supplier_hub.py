"""The Supplier Hub (Coupang Rocket) pages of the sandbox: 정산 > 일반매입계정, 입고상세내역, 부계정 관리."""

from __future__ import annotations

import datetime as dt
import hmac
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sandbox.excel import RECEIVE_DETAIL_HEADERS, receive_detail_cells, receive_detail_xlsx
from sandbox.scenario import RocketAccount, RocketInvoice
from sandbox.sso import Portal, Principal, current_session, sign_on_url
from sandbox.state import SandboxState, Session
from sandbox.web import BadRequest, date_param, int_param, page_count, render, state_of, won, ymd

LIST_PATH = "/scm/settlement/general/purchase/account"  # 정산 > 일반매입계정
DETAIL_PATH = "/scm/receive/detail"  # 입고상세내역
DETAIL_EXCEL_PATH = "/scm/receive/detail/excel"
PURCHASE_ORDERS_PATH = "/scm/purchase/order/list"  # 발주현황
SUB_ACCOUNTS_PATH = "/scm/sub-accounts"  # 부계정 관리
TAX_INVOICES_PATH = "/scm/settlement/tax-invoice"  # 세금계산서 (where the seller confirms one)

LIST_PAGE_SIZE = 50  # the real page never shows more than 50 rows
DETAIL_PAGE_SIZE = 10
# Pages past this one need totalCount in the query, a quirk of the real 입고상세내역.
DETAIL_PAGES_WITHOUT_TOTAL = 2
DEFAULT_LIST_DAYS = 30

LIST_HEADERS = ("계산서번호", "거래처명", "작성일자", "지급일자", "과세유형", "발주유형", "정산유형", "발행유형",
                "공급가액", "부가가치세", "지급예정금액", "세금계산서 확정일", "1차 지급일", "1차 지급액", "2차 지급액",
                "상세")

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
                session_cookie="SUPPLIER_HUB_SESSION", router=router, authenticate=_authenticate)


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
def home(request: Request) -> Response:
    session, account = _session(request)
    return _page(request, "home.html", session, account)


@router.get("/logout")
def logout(request: Request) -> Response:
    state_of(request).end_session(request.cookies.get(PORTAL.session_cookie))
    response = RedirectResponse(sign_on_url(PORTAL, str(request.base_url)), status_code=302)
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
    # Invoices written after the sandbox's today do not exist yet (time passes: set_today).
    matching = sorted((inv for inv in account.invoices if start <= inv.written_date <= min(end, state.today)),
                      key=lambda inv: (inv.written_date, inv.invoice_no), reverse=True)
    rows = [_list_row(account, inv, state) for inv in matching[(page - 1) * size: page * size]]
    base = {"size": size, "startDate": start.isoformat(), "endDate": end.isoformat()}
    pages = page_count(len(matching), size)
    links = [(n, f"{LIST_PATH}?{urlencode({'page': n, **base})}") for n in range(1, pages + 1)]
    return _page(request, "purchase_account.html", session, account, headers=LIST_HEADERS, rows=rows,
                 total=len(matching), page=page, pages=pages, links=links, start=start, end=end, size=size)


def _list_row(account: RocketAccount, inv: RocketInvoice, state: SandboxState) -> dict:
    confirmed = state.tax_invoice_confirmed[inv.invoice_no]
    return {
        "cells": [inv.invoice_no, account.vendor_name, ymd(inv.written_date), ymd(inv.payment_date), inv.tax_kind,
                  inv.order_type, inv.settlement_type, inv.issue_type, won(inv.supply_amount),
                  won(inv.vat_amount), won(inv.payable_amount), ymd(confirmed), ymd(inv.first_payment_date),
                  won(inv.first_payment_amount), won(inv.second_payment_amount)],
        "orders_url": f"{PURCHASE_ORDERS_PATH}?{urlencode({'vendorPaymentInfoSeq': inv.invoice_no})}",
        "detail_url": f"{DETAIL_PATH}?{urlencode({'vendorPaymentInfoSeq': inv.invoice_no, 'page': 1})}",
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
    links = [(n, f"{DETAIL_PATH}?" + urlencode({"vendorPaymentInfoSeq": invoice.invoice_no, "page": n,
                                                 "totalCount": total}))
             for n in range(1, pages + 1)]
    return _page(request, "receive_detail.html", session, account, invoice=invoice, headers=RECEIVE_DETAIL_HEADERS,
                 rows=[receive_detail_cells(invoice, line) for line in shown], total=total_shown, page=page,
                 pages=pages, links=links,
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
    state = state_of(request)
    downloaded_at = dt.datetime.combine(state.today, dt.time(9, 0))
    body = receive_detail_xlsx(invoice, account.vendor_name, downloaded_at)
    filename = f"입고상세내역_{invoice.invoice_no}.xlsx"
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=\"receive_detail_{invoice.invoice_no}"
                                                    f".xlsx\"; filename*=UTF-8''{quote(filename)}"})


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
