"""scripts/commission.py: setting and removing a user rate changes the effective commission when read."""

from __future__ import annotations

import datetime as dt
import importlib.util
from decimal import Decimal

import pandas as pd
import pytest

from coupang_sales.model import JET, ORDER_LINE_COLUMNS, Window
from coupang_sales.warehouse import replace_window

pytestmark = pytest.mark.integration
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("commission", ROOT / "scripts" / "commission.py")
commission = importlib.util.module_from_spec(spec)
spec.loader.exec_module(commission)


def test_set_replace_and_unset_a_rate(warehouse):
    line = {"channel": JET, "account_id": "A1", "order_id": "O1", "line_key": "87001", "option_id": "87001",
            "product_name": "", "sales_date": dt.date(2026, 1, 5), "quantity": 1, "gross_amount": 10_000,
            "coupon_discount": 0, "payment_amount": 10_000, "seller_shipping_fee": 0, "collected_commission": 1_188,
            "is_cancelled": False, "source": "jet_v2", "cancelled_quantity": 0, "cancelled_amount": 0}
    frame = pd.DataFrame([line], columns=list(ORDER_LINE_COLUMNS))
    for column in ("quantity", "gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee",
                   "collected_commission", "cancelled_quantity", "cancelled_amount"):
        frame[column] = frame[column].astype("Int64")
    replace_window(warehouse, channel=JET, account_id="A1", window=Window(dt.date(2026, 1, 1), dt.date(2026, 1, 7)),
                   lines=frame, run_id="r")
    read = "SELECT effective_commission, commission_source FROM sales.order_lines_effective"
    commission.set_rate(warehouse, channel=JET, account_id="A1", rate_percent=Decimal("10.8"))
    commission.set_rate(warehouse, channel=JET, account_id="A1", rate_percent=Decimal("5"))  # replaces, not adds
    assert warehouse.execute(read).fetchall() == [(500, "user")]
    assert commission.unset_rate(warehouse, channel=JET, account_id="A1") == 1
    assert warehouse.execute(read).fetchall() == [(1_188, "collected")]
    with pytest.raises(ValueError, match="percentage"):
        commission.set_rate(warehouse, channel=JET, account_id="A1", rate_percent=Decimal("120"))
