"""Reading messy .xlsx exports by header name (title rows, blank rows, 합계 rows, numbers as text)."""

from __future__ import annotations

import pytest
from openpyxl import Workbook

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import read_table

COLUMNS = ("번호", "SKU번호", "총단가")


def workbook(path, rows):
    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def test_title_rows_blank_rows_and_total_row_are_skipped_and_counted(tmp_path):
    path = workbook(tmp_path / "x.xlsx", [
        ["입고상세내역"], ["조회기간 2026-01-01 ~ 2026-01-07"],
        ["SKU번호", " 번호 ", "총 단가", "기타"],        # shuffled, spaced headers
        ["55501", "100000001", "99,000", "x"],
        [None, None, None, None],
        [55502, 100000002, 44000, "numbers as numbers"],
        ["합계", None, "143,000", None],
    ])
    table = read_table(path, COLUMNS, source="test")
    assert table.header_row == 3 and table.blank_rows == 1 and table.summary_rows == 1
    assert table.frame.to_dict("records") == [
        {"번호": "100000001", "SKU번호": "55501", "총단가": "99,000"},
        {"번호": "100000002", "SKU번호": "55502", "총단가": "44000"},
    ]


def test_missing_column_is_named(tmp_path):
    path = workbook(tmp_path / "x.xlsx", [["번호", "SKU번호", "금액"], ["1", "2", "3"]])
    with pytest.raises(ExportFormatError, match="총단가"):
        read_table(path, COLUMNS, source="입고상세내역 300")


def test_a_file_that_is_not_a_workbook_fails_clearly(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"<html>error</html>")
    with pytest.raises(ExportFormatError, match="not a readable .xlsx"):
        read_table(path, COLUMNS, source="입고상세내역 300")


def test_fractional_number_is_kept_as_text_for_the_parser_to_reject(tmp_path):
    path = workbook(tmp_path / "x.xlsx", [list(COLUMNS), ["1", "2", 12.5]])
    assert read_table(path, COLUMNS, source="t").frame.loc[0, "총단가"] == "12.5"
