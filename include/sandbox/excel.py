"""Excel exports written as messily as the real portals write them (입고상세내역, Wing settlement reports)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from openpyxl import Workbook

from sandbox.scenario import JetAccount, JetV2Order, RocketInvoice, RocketLine
from sandbox.web import won, ymd

# The 입고상세내역 page names its date column 입고/반출일자, the export 입고/반출시각; both carry a time.
RECEIVE_DETAIL_PAGE_HEADERS = ("구분", "번호", "SKU번호", "SKU명", "입고/반출일자", "물류센터", "세금타입", "수량",
                               "단가", "공급가액", "세액", "총단가", "총공급가액", "총세액", "계산서번호", "지급일")
RECEIVE_DETAIL_HEADERS = tuple("입고/반출시각" if h == "입고/반출일자" else h for h in RECEIVE_DETAIL_PAGE_HEADERS)


def moved_at(line: RocketLine, position: int) -> dt.datetime:
    """The time of day of a receipt: not in the scenario, so a fixed one per line, within the day."""
    return dt.datetime.combine(line.moved_date, dt.time(9, 10, 11)) + dt.timedelta(seconds=(position * 37) % 36000)


def receive_detail_cells(invoice: RocketInvoice, line: RocketLine, position: int, *,
                         stamp: str = "%Y-%m-%d %H:%M:%S", returns_positive: bool = False) -> list[str]:
    """One 입고상세내역 line as the page and the export show it: all text, numbers with commas.

    ``position`` is the line's place in the invoice (it fixes its time of day);
    ``returns_positive`` writes a 반출 line's quantity and amounts without their minus.
    """
    sign = -1 if returns_positive and line.kind == "반출" else 1
    return [line.kind, line.po_no, line.sku_id, line.sku_name, moved_at(line, position).strftime(stamp), line.center,
            line.tax_type, won(sign * line.qty), won(line.unit_price), won(line.unit_supply), won(line.unit_tax),
            won(sign * line.total_price), won(sign * line.total_supply), won(sign * line.total_tax),
            invoice.invoice_no, ymd(invoice.payment_date)]


def _workbook_bytes(sheet_title: str, rows: Sequence[Sequence[str | None]]) -> bytes:
    book = Workbook(write_only=True)  # streams the rows: a third faster, and big exports stay small in memory
    sheet = book.create_sheet(sheet_title)
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def receive_detail_xlsx(invoice: RocketInvoice, *, returns_positive: bool = False) -> bytes:
    """The 입고상세내역 export of one invoice (Coupang_Stocked_Data_List), as five public parsers read it:
    the header in row 1, the date column 입고/반출시각 with values like ``2026/09/05 09:10:11``,
    numbers as text with thousands separators; ``returns_positive`` writes 반출 amounts without
    their sign (REAL-PORTALS.md §3: medium). ``duplicate_lines`` repeats one line, as
    overlapping downloads do.
    """
    lines = [receive_detail_cells(invoice, line, i, stamp="%Y/%m/%d %H:%M:%S", returns_positive=returns_positive)
             for i, line in enumerate(invoice.lines)]
    if invoice.duplicate_lines and lines:
        half = -(-len(lines) // 2)
        lines.insert(half, lines[half - 1])
    return _workbook_bytes("Sheet1", [list(RECEIVE_DETAIL_HEADERS), *lines])


# --- Wing settlement reports (로켓그로스 정산 리포트) ---------------------------------------------

CATEGORY_TR = "CATEGORY_TR"  # 판매수수료 리포트
WAREHOUSING_SHIPPING = "WAREHOUSING_SHIPPING"  # 입출고비/배송비 리포트
REPORT_TITLES = {CATEGORY_TR: "판매수수료 리포트", WAREHOUSING_SHIPPING: "입출고비/배송비 리포트"}
CATEGORY_TR_HEADERS = (
    "주문ID", "등록상품 ID", "옵션ID", "SKU ID", "카테고리ID", "거래유형", "정산유형", "판매가(A)", "판매수량(B)",
    "판매액(A*B)", "쿠팡지원할인(C)", "매출금액(A*B-C)", "즉시할인쿠폰(D)", "다운로드쿠폰(E)", "판매자할인쿠폰(D+E)",
    "정산대상액", "판매수수료율(%,VAT별도)", "판매수수료", "판매수수료 VAT", "매출인식일", "정산주기(종료일)",
)
WAREHOUSING_SHIPPING_HEADERS = (
    "주문ID", "배송ID", "옵션ID", "SKU ID", "거래유형", "개별포장 상품 사이즈", "물류센터", "발생비용(A)", "할인가(B)",
    "추가비용", "주문일", "매출인식일", "정산주기(종료일)",
)
ORDER_SETTLEMENT, ORDER_CANCELLATION = "주문 정산", "주문 정산취소"
SETTLEMENT_KIND = "주정산"  # 정산유형: Rocket Growth settles weekly
_CANCEL_SUFFIX = "취소"
# Amount columns summed in the 합계 row.
_CATEGORY_TR_TOTALS = ("판매수량(B)", "판매액(A*B)", "쿠팡지원할인(C)", "매출금액(A*B-C)", "즉시할인쿠폰(D)",
                       "다운로드쿠폰(E)", "판매자할인쿠폰(D+E)", "정산대상액", "판매수수료", "판매수수료 VAT")
_WAREHOUSING_SHIPPING_TOTALS = ("발생비용(A)", "할인가(B)", "추가비용")


def settlement_period_end(day: dt.date) -> dt.date:
    """정산주기(종료일): the Sunday that ends the (Monday to Sunday) week of ``day``."""
    return day + dt.timedelta(days=6 - day.weekday())


def _category_tr_row(order: JetV2Order, cancelled: bool) -> tuple[dt.date, list[str]]:
    # A cancellation repeats the order with every amount negated, on the day it was cancelled.
    sign = -1 if cancelled else 1
    day = order.cancelled_date if cancelled else order.recognized_date
    assert day is not None
    return day, [
        order.order_id, order.product_id, order.option_id, order.sku_id, order.category_id,
        ORDER_CANCELLATION if cancelled else ORDER_SETTLEMENT, SETTLEMENT_KIND,
        won(order.unit_price), won(sign * order.qty), won(sign * order.sales_amount),
        won(sign * order.coupang_discount), won(sign * order.revenue_amount), won(sign * order.instant_coupon),
        won(sign * order.download_coupon), won(sign * order.seller_coupon), won(sign * order.settlement_amount),
        str(order.commission_rate), won(sign * order.commission), won(sign * order.commission_vat),
        ymd(day), ymd(settlement_period_end(day)),
    ]


def category_tr_rows(account: JetAccount, start: dt.date, end: dt.date) -> list[list[str]]:
    """The CATEGORY_TR rows whose 매출인식일 is in [start, end]: one '주문 정산' per order, and a
    '주문 정산취소' per cancelled order on its cancellation date."""
    dated = []
    for order in account.v2_orders:
        dated.append(_category_tr_row(order, cancelled=False))
        if order.cancelled_date is not None:
            dated.append(_category_tr_row(order, cancelled=True))
    dated.sort(key=lambda item: (item[0], item[1][5], item[1][0]))
    return [cells for day, cells in dated if start <= day <= end]


def warehousing_shipping_rows(account: JetAccount, start: dt.date, end: dt.date) -> list[list[str]]:
    """The WAREHOUSING_SHIPPING rows whose 매출인식일 is in [start, end]: each order fee (입출고비 정산,
    배송비 정산) on the order's 매출인식일, its reversal (… 정산취소, negated) on the cancellation
    date, and the account's usage fees (보관비 and the like) with blank order columns."""
    dated: list[tuple[dt.date, list[str]]] = []
    for order in account.v2_orders:
        days = [(order.recognized_date, 1, "")]
        if order.cancelled_date is not None:
            days.append((order.cancelled_date, -1, _CANCEL_SUFFIX))
        for day, sign, suffix in days:
            for fee in order.fees:
                dated.append((day, [
                    order.order_id, order.shipment_id, order.option_id, order.sku_id, f"{fee.type} 정산{suffix}",
                    order.package_size, order.center, won(sign * fee.amount), won(sign * fee.discount), won(0),
                    ymd(order.order_date), ymd(day), ymd(settlement_period_end(day)),
                ]))
    for fee in account.account_fees:
        # 거래유형 is the fee's type as the scenario names it: transform_v2 keeps it as fee_type.
        dated.append((fee.date, ["", "", "", "", fee.type, "", "", won(fee.amount), won(0), won(0), "",
                                 ymd(fee.date), ymd(settlement_period_end(fee.date))]))
    dated.sort(key=lambda item: (item[0], item[1][0] == "", item[1][0], item[1][4]))
    return [cells for day, cells in dated if start <= day <= end]


def _total_row(headers: tuple[str, ...], rows: list[list[str]], columns: tuple[str, ...]) -> list[str]:
    total = ["합계"] + [""] * (len(headers) - 1)
    for name in columns:
        at = headers.index(name)
        total[at] = won(sum(int(row[at].replace(",", "")) for row in rows))
    return total


def settlement_report_xlsx(report_type: str, account: JetAccount, start: dt.date, end: dt.date,
                           downloaded_at: dt.datetime) -> bytes:
    """One Wing settlement report of [start, end] (by 매출인식일).

    Layout, on purpose: a title row and a condition row above the header, every number as
    text with thousands separators, a blank row in the middle of the data, and a 합계 row last.
    """
    if report_type == CATEGORY_TR:
        headers, rows, totals = CATEGORY_TR_HEADERS, category_tr_rows(account, start, end), _CATEGORY_TR_TOTALS
    elif report_type == WAREHOUSING_SHIPPING:
        headers, rows = WAREHOUSING_SHIPPING_HEADERS, warehousing_shipping_rows(account, start, end)
        totals = _WAREHOUSING_SHIPPING_TOTALS
    else:
        raise ValueError(f"unknown report type {report_type!r}")
    half = -(-len(rows) // 2)
    body: list[Sequence[str | None]] = [*rows[:half], [None] * len(headers), *rows[half:]] if rows else []
    sheet: list[Sequence[str | None]] = [
        [f"로켓그로스 정산 리포트 - {REPORT_TITLES[report_type]}"],
        [f"매출인식일: {start.isoformat()} ~ {end.isoformat()}", f"업체코드: {account.account_id}",
         f"다운로드 일시: {downloaded_at:%Y-%m-%d %H:%M:%S}"],
        list(headers),
        *body,
        _total_row(headers, rows, totals),
    ]
    return _workbook_bytes(REPORT_TITLES[report_type].replace("/", "·"), sheet)
