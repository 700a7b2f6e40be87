"""A return or cancellation with no original is never a silent success: warning text and run report."""

from __future__ import annotations

import datetime as dt

from coupang_sales.airflow_glue.alerts import unapplied_warning
from coupang_sales.airflow_glue.report import format_report
from coupang_sales.model import Window

UNAPPLIED = {"kind": "반출", "document": "30000201", "order_id": "100000777", "option_id": "55577",
             "fact_date": "2026-03-20", "reason": "no_original", "quantity": -1, "amount": -5_500,
             "seller_shipping_fee": 0}
WINDOW = Window(dt.date(2026, 3, 6), dt.date(2026, 3, 20))


def test_no_warning_when_everything_applied():
    assert unapplied_warning({"account_id": "V1"}, WINDOW, {"unapplied_restatements": 0}) is None


def test_warning_names_the_return_its_document_and_amount():
    text = unapplied_warning({"account_id": "V1"}, WINDOW, {"unapplied_restatements": 1, "unapplied_amount": -5_500,
                                                            "unapplied_detail": [UNAPPLIED]})
    assert "V1 (2026-03-06..2026-03-20)" in text and "-5,500 won" in text
    assert "반출 30000201 100000777/55577 dated 2026-03-20 (no_original" in text


def test_run_report_lists_what_was_not_applied():
    report = {"channel": "coupang_rocket", "run_id": "r", "totals": {"success": 1}, "warnings": 1, "accounts": [
        {"account_id": "V1", "status": "success", "reason": None, "window": str(WINDOW), "attempts": 1,
         "rows_loaded": 0, "payment_amount": -5_500, "message": None, "unapplied_restatements": 1,
         "unapplied_amount": -5_500, "unapplied_detail": [UNAPPLIED]}]}
    text = format_report(report)
    assert "1 account(s) with warnings" in text
    assert "WARNING: 1 return(s)/cancellation(s) with no original line, -5,500 won" in text
    assert "반출 30000201 100000777/55577 dated 2026-03-20: no_original -5,500 won" in text
