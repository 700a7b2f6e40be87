"""Jet report parsers (every sheet, header rows by name, the two-row header, signs), account fees and v1 rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from coupang_sales.errors import ExportFormatError
from coupang_sales.jet import fees, reports
from coupang_sales.jet import v1 as jet_v1

D = dt.date.fromisoformat
TR_HEADER = ["주문ID", "옵션ID", "등록상품명", "옵션명", "거래유형", "판매수량(B)", "판매액(A*B)", "쿠팡지원할인(C)",
             "판매자할인쿠폰(D+E)", "판매수수료", "판매수수료 VAT", "매출인식일"]


def book(path: Path, sheets: dict[str, list[list]]) -> Path:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def tr_row(order: str, kind: str, qty: int, gross: int, day: str = "2026-01-05") -> list:
    sign = -1 if kind == "주문 정산취소" else 1
    return [order, "87001", "보리차", "1L", kind, qty, gross, 0, 100 * sign, 1_000 * sign, 100 * sign, day]


def test_category_tr_header_is_found_by_name_on_every_sheet_and_cancellations_are_negative(tmp_path):
    path = book(tmp_path / "tr.xlsx", {
        "주문내역, 판매수수료": [["판매 수수료 리포트"], TR_HEADER, tr_row("1", "주문 정산", 2, 20_000),
                          tr_row("1", "주문 정산취소", 1, 10_000, "2026-01-06")],  # printed positive
        "2": [[], [], ["노트"], TR_HEADER, tr_row("2", "주문 정산", 1, 5_000)],  # header lower down
    })
    frame = reports.read_reports([path], reports.CATEGORY_TR)
    assert list(frame["_sheet"]) == ["주문내역, 판매수수료", "주문내역, 판매수수료", "2"]
    assert list(frame["_row"]) == [3, 4, 5]
    typed = reports.category_tr_rows(frame)
    assert list(typed["gross"]) == [20_000, -10_000, 5_000] and list(typed["quantity"]) == [2, -1, 1]
    assert list(typed["commission"]) == [1_100, -1_100, 1_100]
    assert list(typed["product_name"]) == ["보리차 1L"] * 3 and list(typed["option_name"]) == ["1L"] * 3
    assert list(typed["is_cancellation"]) == [False, True, False]
    assert reports.check_category_tr(path) == {"rows": 3, "sums": {
        "판매액(A*B)": 15_000, "쿠팡지원할인(C)": 0, "판매자할인쿠폰(D+E)": 100, "판매수수료": 1_000,
        "판매수수료 VAT": 100}}


def test_a_two_row_header_is_merged_and_optional_columns_may_be_missing(tmp_path):
    upper = ["주문ID", "카테고리", None, "거래유형", "배송비", None, "매출인식일"]
    lower = [None, "1차", "2차", None, "발생비용(A)", "할인가(B)", None]
    rows = [["배송비 리포트"], [], ["정산주기(종료일)", "합계"], ["2026-01-11", 2_000], [], [], upper, lower,
            ["1", "식품", "음료", "배송비 정산", 2_500, 500, "2026-01-05"],
            ["1", "식품", "음료", "배송비 정산취소", -2_500, -500, "2026-01-06"]]
    path = book(tmp_path / "ws.xlsx", {"입출고비": [], "배송비": rows})  # an empty sheet is skipped
    frame = reports.read_reports([path], reports.WAREHOUSING_SHIPPING)
    assert "추가비용" not in frame.columns and list(frame["_row"]) == [9, 10]
    typed = reports.warehousing_shipping_rows(frame)
    assert list(typed["fee"]) == [2_000, -2_000]
    assert reports.check_warehousing_shipping(path)["sums"] == {"발생비용(A)": 0, "할인가(B)": 0}


def test_a_report_without_the_columns_names_the_file_sheet_and_columns(tmp_path):
    path = book(tmp_path / "odd.xlsx", {"시트1": [["주문ID", "옵션ID"], ["1", "2"]]})
    with pytest.raises(ExportFormatError) as caught:
        reports.read_report(path, reports.CATEGORY_TR)
    assert "odd.xlsx" in str(caught.value) and "시트1" in str(caught.value) and "판매액(A*B)" in str(caught.value)


def test_a_bad_amount_names_the_sheet_and_row(tmp_path):
    bad = tr_row("1", "주문 정산", 2, 20_000)
    bad[6] = "12.5"
    path = book(tmp_path / "bad.xlsx",
                {"주문내역, 판매수수료": [["제목"], TR_HEADER, tr_row("2", "주문 정산", 1, 1), bad]})
    with pytest.raises(ExportFormatError) as caught:
        reports.category_tr_rows(reports.read_reports([path], reports.CATEGORY_TR))
    assert "판매액(A*B)" in str(caught.value) and "row 4" in str(caught.value) and "bad.xlsx" in str(caught.value)


def test_only_rows_recognised_in_the_window_are_kept(tmp_path):
    path = book(tmp_path / "tr.xlsx", {"s": [TR_HEADER, tr_row("1", "주문 정산", 1, 1, "2026-01-04"),
                                             tr_row("2", "주문 정산", 1, 1, "2026-01-05")]})
    frame = reports.read_reports([path], reports.CATEGORY_TR)
    assert list(reports.recognised_within(frame, D("2026-01-05"), D("2026-01-11"), source="t")["주문ID"]) == ["2"]


def group(key: str, start: str, end: str, **detail) -> dict:
    return {"settlementGroupKey": key, "settlementPeriodStartDate": start, "settlementPeriodEndDate": end,
            "settlementRatio": 70, "settlementStatusReportDetail": {
                "totalSalesAmount": 99_000, "totalWarehousingFeeDeductionAmount": 650,
                "totalFulfillmentFeeDeductionAmount": 2_500, **detail}}


def test_account_fees_come_from_group_totals_per_period():
    groups = [group("V-20260105-20260111", "2026-01-04T15:00:00.000Z", "2026-01-10T15:00:00.000Z",
                    totalStorageFeeDeductionAmount=1_200, totalNewThingDeductionAmount=50,
                    totalBarcodeLabelingFeeDeductionAmount=0)]
    out = fees.account_fees(groups, account_id="A1")
    assert out[["period_start", "period_end", "fee_type", "amount"]].to_dict("records") == [
        {"period_start": D("2026-01-05"), "period_end": D("2026-01-11"), "fee_type": "totalNewThingDeductionAmount",
         "amount": 50},
        {"period_start": D("2026-01-05"), "period_end": D("2026-01-11"), "fee_type": "보관비", "amount": 1_200}]
    assert fees.periods(groups) == [(D("2026-01-05"), D("2026-01-11"))]
    with pytest.raises(ExportFormatError, match="listed twice"):
        fees.account_fees(groups * 2, account_id="A1")


def test_v1_rows_keep_each_item_once_per_day_with_the_configured_amount():
    item = {"vendorItemDetails": {"vendorItemId": 87001, "productName": "보리차", "itemName": "1L"},
            "businessInsightsMetricsResponse": {"totalUnitsSold": 3, "totalGmv": 29_700}}
    staged = {"amount_field": "totalGmv", "days": [{"date": "2026-01-05", "items": [item, item]},
                                                   {"date": "2026-01-06", "items": []}]}
    rows = jet_v1.sales_rows(staged)
    assert rows.to_dict("records") == [{"판매일": "2026-01-05", "옵션ID": "87001", "등록상품명": "보리차",
                                        "옵션명": "1L", "판매수량": 3, "판매금액": 29_700}]
    with pytest.raises(ExportFormatError, match="totalSales"):
        jet_v1.sales_rows({**staged, "amount_field": "totalSales"})


def test_reports_decoded_in_parallel_are_the_serial_frame_and_a_bad_file_is_named(tmp_path, monkeypatch):
    from coupang_sales import exports

    paths = [book(tmp_path / f"CATEGORY_TR__G{i}.xlsx", {"s": [TR_HEADER, tr_row(str(i), "주문 정산", 1, 1_000 * i),
                                                               tr_row(f"{i}b", "주문 정산", 2, 500)]})
             for i in range(3)]
    serial = reports.read_reports(paths, reports.CATEGORY_TR)  # a few small files: decoded here
    monkeypatch.setattr(exports, "PARALLEL_DECODE_BYTES", 0)
    monkeypatch.setenv(exports.DECODE_PROCESSES_SETTING, "2")
    assert exports.decode_processes(len(paths)) == 2
    pd.testing.assert_frame_equal(reports.read_reports(paths, reports.CATEGORY_TR), serial)
    (tmp_path / "CATEGORY_TR__G9.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(ExportFormatError, match="CATEGORY_TR__G9.xlsx"):
        reports.read_reports([*paths, tmp_path / "CATEGORY_TR__G9.xlsx"], reports.CATEGORY_TR)


def test_equal_texts_of_a_report_column_are_one_object(tmp_path):
    path = book(tmp_path / "tr.xlsx", {"a": [TR_HEADER, tr_row("1", "주문 정산", 1, 1), tr_row("2", "주문 정산", 1, 2)],
                                       "b": [TR_HEADER, tr_row("3", "주문 정산", 1, 3)]})
    kinds = reports.read_report(path, reports.CATEGORY_TR).frame["거래유형"].tolist()
    assert kinds == ["주문 정산"] * 3 and kinds[0] is kinds[1] is kinds[2]
