"""The Rocket validate stage over staged files: all files typed at once, errors still name the file and row."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from openpyxl import Workbook

from coupang_sales.errors import ExportFormatError
from coupang_sales.model import Window
from coupang_sales.rocket import stages as rocket_stages
from coupang_sales.rocket.policy import DETAIL_COLUMNS

DAY = dt.date(2026, 1, 5)


def stage(tmp_path, files: dict[str, list[list[str]]], *, header: list[str] | None = None):
    """invoices.json and one 입고상세내역 .xlsx per invoice, with the lines given as rows of text
    (under ``header``, the export's own columns by default)."""
    rows = []
    for number, lines in files.items():
        payable = sum(int(line[DETAIL_COLUMNS.index("총단가")].replace(",", "")) for line in lines)
        rows.append({"계산서번호": number, "작성일자": DAY.isoformat(), "공급가액": "0", "부가가치세": "0",
                     "지급예정금액": f"{payable:,}", "세금계산서 확정일": DAY.isoformat(), "발행유형": "역발행"})
        book = Workbook()
        book.active.append(["입고상세내역"])
        book.active.append(list(header or DETAIL_COLUMNS))
        for line in lines:
            book.active.append(line)
        book.save(tmp_path / f"receive_detail_{number}.xlsx")
    (tmp_path / rocket_stages.INVOICES_FILE).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return tmp_path


def line(invoice: str, po: str, qty: str = "2", total: str = "22,000") -> list[str]:
    values = {"구분": "발주", "번호": po, "SKU번호": "S1", "SKU명": "보리차", "입고/반출일자": "2026-01-03",
              "물류센터": "이천1", "세금타입": "과세", "수량": qty, "단가": "11,000", "공급가액": "20,000",
              "세액": "2,000", "총단가": total, "총공급가액": "20,000", "총세액": "2,000", "계산서번호": invoice,
              "지급일": "2026-02-10"}
    return [values[name] for name in DETAIL_COLUMNS]


def validate(staging):
    return rocket_stages.validate(staging=staging, account={"account_id": "V1"}, window=Window(DAY, DAY),
                                  list_until=DAY)


def test_lines_of_every_file_are_read(tmp_path):
    staging = stage(tmp_path, {"300": [line("300", "PO1"), line("300", "PO2")], "301": [line("301", "PO3")]})
    assert validate(staging) == {"rows_extracted": 3, "duplicates_removed": 0, "invoices": 2}


def test_a_bad_number_names_the_file_the_column_and_the_row_in_that_file(tmp_path):
    staging = stage(tmp_path, {"300": [line("300", "PO1"), line("300", "PO2")],
                               "301": [line("301", "PO3"), line("301", "PO4", qty="2.5")]})
    with pytest.raises(ExportFormatError, match=r"입고상세내역 301: 수량'? row 2: '2.5'"):
        validate(staging)


def test_a_file_holding_another_invoices_lines_is_refused_naming_both(tmp_path):
    staging = stage(tmp_path, {"300": [line("300", "PO1")], "301": [line("301", "PO3"), line("300", "PO4")]})
    with pytest.raises(ExportFormatError, match=r"invoice 301 holds lines of invoices \['300'\]"):
        validate(staging)


@pytest.mark.parametrize("rename_to", ["합계단가", None], ids=["renamed", "missing"])
def test_a_changed_header_is_refused_naming_the_column(tmp_path, rename_to):
    """총단가 renamed, or gone (its values with it): the export changed; nothing is guessed."""
    header, lines = list(DETAIL_COLUMNS), [line("300", "PO1")]
    at = header.index("총단가")
    if rename_to:
        header[at] = rename_to
    else:
        del header[at]
        lines = [row[:at] + row[at + 1:] for row in lines]
    staging = stage(tmp_path, {"300": lines}, header=header)
    with pytest.raises(ExportFormatError) as caught:
        validate(staging)
    assert caught.value.category == "export_format_changed"
    assert "총단가" in str(caught.value) and "입고상세내역 300" in str(caught.value)
