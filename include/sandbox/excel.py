"""Excel exports written as messily as the real portals write them (입고상세내역, Wing settlement reports)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from openpyxl import Workbook

from sandbox.scenario import JetAccount, RocketInvoice, RocketLine
from sandbox.settlement import CATEGORY_TR, WAREHOUSING_SHIPPING, Group, category_tr_rows, warehousing_shipping_rows
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


# --- Wing settlement reports (로켓그로스 정산 리포트), in the layouts of REAL-PORTALS.md §4 -----------------

REPORT_TITLES = {CATEGORY_TR: "판매 수수료 리포트", WAREHOUSING_SHIPPING: "입출고비/배송비 리포트"}
CATEGORY_TR_SHEET = "주문내역, 판매수수료"
CATEGORY_TR_HEADERS = (
    "정산유형", "정산주기(종료일)", "세금계산서 발행월", "발생일(결제완료일)", "매출인식일", "주문ID", "거래유형",
    "카테고리ID", "카테고리명", "과세유형", "등록상품 ID", "옵션ID", "SKU ID", "등록상품명", "옵션명", "판매가(A)",
    "판매수량(B)", "판매액(A*B)", "쿠팡지원할인(C)", "매출금액(A*B-C)", "즉시할인쿠폰(D)", "다운로드쿠폰(E)",
    "판매자할인쿠폰(D+E)", "정산대상액", "판매수수료율(%,VAT별도)", "할인적용 판매수수료율(%,VAT별도)", "판매수수료",
    "판매수수료 VAT",
)
# WAREHOUSING_SHIPPING: (row-7 heading, row-8 name or None where the row-7 cell spans both rows).
_WS_HEADER: tuple[tuple[str, str | None], ...] = (
    ("주문ID", None), ("배송ID", None), ("등록상품 ID", None), ("옵션ID", None), ("SKU ID", None),
    ("등록상품명", None), ("옵션명", None), ("카테고리", "1차"), ("카테고리", "2차"), ("개별포장 상품 사이즈", None),
    ("물류센터", None), ("거래유형", None), ("정산유형", None), ("단품 기준", "단품 판매가"),
    ("단품 기준", "단품 기준 구매 수량"), ("판매수량", None), ("{fee}", "발생비용(A)"), ("{fee}", "할인가(B)"),
    ("{fee}", "할인적용가(A-B)"), ("{fee}", "추가비용"), ("주문일", None), ("매출인식일", None),
    ("정산주기(종료일)", None),
)
WS_SHEETS = ("입출고비", "배송비")
WS_SUMMARY_ROW, WS_HEADER_ROW = 3, 7  # summary in rows 3-4, the two-row header in rows 7-8, data from row 9


def warehousing_shipping_header(account: JetAccount) -> tuple[tuple[str, str | None], ...]:
    """The two-row header of the account's WAREHOUSING_SHIPPING (the optional columns as its scenario says)."""
    dropped = set()
    if not account.unit_columns:
        dropped |= {"단품 판매가", "단품 기준 구매 수량"}
    if not account.additional_cost_column:
        dropped.add("추가비용")
    return tuple(h for h in _WS_HEADER if h[1] not in dropped)


def _xlsx(book) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def category_tr_xlsx(account: JetAccount, groups: Sequence[Group]) -> bytes:
    """CATEGORY_TR of settlement groups: sheet '주문내역, 판매수수료', a title in row 1, the header in row 2."""
    book = Workbook()
    sheet = book.active
    sheet.title = CATEGORY_TR_SHEET
    sheet.append([f"{REPORT_TITLES[CATEGORY_TR]} ({', '.join(g.key for g in groups)})"])
    sheet.append(list(CATEGORY_TR_HEADERS))
    for group in groups:
        for row in category_tr_rows(account, group):
            sheet.append([row[h] for h in CATEGORY_TR_HEADERS])
    return _xlsx(book)


def warehousing_shipping_xlsx(account: JetAccount, groups: Sequence[Group]) -> bytes:
    """WAREHOUSING_SHIPPING of one settlement group: sheets 입출고비 and 배송비, each with a title, a summary
    in rows 3-4 (정산주기(종료일), 합계, 세액 (VAT), 최종비용), a two-row header in rows 7-8 whose
    merged row-7 headings name groups of row-8 columns, and data from row 9."""
    header = warehousing_shipping_header(account)
    names = [low or top for top, low in header]
    book = Workbook()
    book.remove(book.active)
    sheets: dict[str, list[dict]] = {name: [] for name in WS_SHEETS}
    for group in groups:
        for name, rows in warehousing_shipping_rows(account, group).items():
            sheets[name] += rows
    for fee_type, rows in sheets.items():
        sheet = book.create_sheet(fee_type)
        sheet.cell(1, 1, f"{fee_type} 리포트 ({', '.join(g.key for g in groups)})")
        net = sum(r["할인적용가(A-B)"] + (r["추가비용"] if account.additional_cost_column else 0) for r in rows)
        vat = net // 10
        for col, (label, value) in enumerate((("정산주기(종료일)", groups[-1].end.isoformat()), ("합계", net),
                                              ("세액", vat), ("최종비용", net + vat)), start=1):
            sheet.cell(WS_SUMMARY_ROW, col, label)
            sheet.cell(WS_SUMMARY_ROW + 1, col, value)
        col = 1
        while col <= len(header):
            top, low = header[col - 1]
            top = top.replace("{fee}", fee_type)
            if low is None:
                sheet.cell(WS_HEADER_ROW, col, top)
                sheet.merge_cells(start_row=WS_HEADER_ROW, start_column=col, end_row=WS_HEADER_ROW + 1,
                                  end_column=col)
                col += 1
                continue
            span = 1
            while col + span <= len(header) and header[col + span - 1][0] == header[col - 1][0]:
                span += 1
            sheet.cell(WS_HEADER_ROW, col, top)
            if span > 1:
                sheet.merge_cells(start_row=WS_HEADER_ROW, start_column=col, end_row=WS_HEADER_ROW,
                                  end_column=col + span - 1)
            for k in range(span):
                sheet.cell(WS_HEADER_ROW + 1, col + k, header[col + k - 1][1])
            col += span
        for i, row in enumerate(rows):
            for j, name in enumerate(names, start=1):
                sheet.cell(WS_HEADER_ROW + 2 + i, j, row[name])
    return _xlsx(book)


def settlement_report_xlsx(report_type: str, account: JetAccount, groups: Sequence[Group]) -> bytes:
    if report_type == CATEGORY_TR:
        return category_tr_xlsx(account, groups)
    if report_type == WAREHOUSING_SHIPPING:
        return warehousing_shipping_xlsx(account, groups)
    raise ValueError(f"unknown report type {report_type!r}")
