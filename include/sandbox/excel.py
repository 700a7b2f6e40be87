"""Excel exports written as messily as the real portals write them."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from openpyxl import Workbook

from sandbox.scenario import RocketInvoice, RocketLine
from sandbox.web import won, ymd

RECEIVE_DETAIL_HEADERS = ("구분", "번호", "SKU번호", "SKU명", "입고/반출일자", "물류센터", "세금타입", "수량", "단가",
                          "공급가액", "세액", "총단가", "총공급가액", "총세액", "계산서번호", "지급일")


def receive_detail_cells(invoice: RocketInvoice, line: RocketLine) -> list[str]:
    """One 입고상세내역 line as the page and the export show it: all text, numbers with commas."""
    return [line.kind, line.po_no, line.sku_id, line.sku_name, ymd(line.moved_date), line.center, line.tax_type,
            won(line.qty), won(line.unit_price), won(line.unit_supply), won(line.unit_tax), won(line.total_price),
            won(line.total_supply), won(line.total_tax), invoice.invoice_no, ymd(invoice.payment_date)]


def _workbook_bytes(sheet_title: str, rows: Sequence[Sequence[str | None]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def receive_detail_xlsx(invoice: RocketInvoice, vendor_name: str, downloaded_at: dt.datetime) -> bytes:
    """The 입고상세내역 export of one invoice.

    Layout, on purpose: a title row and a condition row above the header, every number as
    text with thousands separators, a blank row in the middle of the lines, optionally one
    line repeated (``duplicate_lines``, as overlapping downloads do), and a 합계 row last.
    """
    lines = [receive_detail_cells(invoice, line) for line in invoice.lines]
    half = -(-len(lines) // 2)
    body = lines[:half] + [[None] * len(RECEIVE_DETAIL_HEADERS)]
    if invoice.duplicate_lines:
        body.append(lines[half - 1])
    body += lines[half:]
    total = ["합계"] + [""] * (len(RECEIVE_DETAIL_HEADERS) - 1)
    for name, value in (("수량", sum(line.qty for line in invoice.lines)),
                        ("총단가", invoice.payable_amount),
                        ("총공급가액", invoice.supply_amount),
                        ("총세액", invoice.vat_amount)):
        total[RECEIVE_DETAIL_HEADERS.index(name)] = won(value)
    rows: list[Sequence[str | None]] = [
        ["입고상세내역"],
        [f"계산서번호: {invoice.invoice_no}", f"거래처명: {vendor_name}",
         f"조회일시: {downloaded_at:%Y-%m-%d %H:%M:%S}"],
        list(RECEIVE_DETAIL_HEADERS),
        *body,
        total,
    ]
    return _workbook_bytes("입고상세내역", rows)
