"""Jet v2 account-level fees (보관비, 반품 회수비, ...): settlement-group totals, one row per period and type.

They are not rows of any report the project downloads: Wing gives them as totals of each
settlement group in its status answer (``settlementStatusReportDetail``, REAL-PORTALS.md §4),
so they belong to a settlement period, not a day. Every ``total…DeductionAmount`` of a
group is kept except 입출고비 and 배송비, which the WAREHOUSING_SHIPPING rows already give per
order (as ``seller_shipping_fee``). Known fields get their Korean name; a deduction field
nobody has named yet is kept under its own name rather than dropped. Amounts are stored as
Wing gives them (see docs/decisions.md on VAT).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import parse_won
from coupang_sales.model import JET

# settlementStatusReportDetail field -> fee_type (LM models.sql names the fields).
ACCOUNT_FEE_TYPES = {
    "totalStorageFeeDeductionAmount": "보관비",
    "totalCreturnReverseShippingFeeDeductionAmount": "반품 회수비",
    "totalCreturnGradingFeeDeductionAmount": "반품 재입고비",
    "totalVreturnHandlingFeeDeductionAmount": "반출비",
    "totalBarcodeLabelingFeeDeductionAmount": "바코드",
    "totalMilkRunDeductionAmount": "밀크런",
    "totalAdSalesDeductionAmount": "광고비",
}
# Per-order fees: in the order lines already, from WAREHOUSING_SHIPPING.
ORDER_FEE_FIELDS = ("totalWarehousingFeeDeductionAmount", "totalFulfillmentFeeDeductionAmount")
DEDUCTION_SUFFIX = "DeductionAmount"
KST = dt.timezone(dt.timedelta(hours=9), "Asia/Seoul")
ACCOUNT_FEE_COLUMNS = ("channel", "account_id", "period_start", "period_end", "settlement_group_key", "fee_type",
                       "amount")


def seoul_midnight(day: dt.date) -> str:
    """Seoul midnight of ``day`` as the UTC instant Wing's APIs take ('2026-01-04T15:00:00.000Z' for 5 January)."""
    return dt.datetime.combine(day, dt.time(), KST).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seoul_day(instant: str) -> dt.date:
    """The Seoul date of an instant Wing wrote ('2026-01-04T15:00:00.000Z' -> 2026-01-05)."""
    return dt.datetime.fromisoformat(str(instant).replace("Z", "+00:00")).astimezone(KST).date()


def account_fees(groups: Iterable[Mapping[str, Any]], *, account_id: str) -> pd.DataFrame:
    """One row per settlement group and account-level fee type with a non-zero total.

    ``groups`` are the status answer's entries, one per settlementGroupKey (as
    ``WingSession.settlement_groups`` returns them); a key given twice is refused, so no group
    is counted twice.
    """
    rows = []
    seen: set[str] = set()
    for group in groups:
        key = str(group["settlementGroupKey"])
        if key in seen:
            raise ExportFormatError(f"settlement group {key} is listed twice among the groups to count")
        seen.add(key)
        detail = group.get("settlementStatusReportDetail")
        if not isinstance(detail, Mapping):
            raise ExportFormatError(f"settlement group {key}: no settlementStatusReportDetail totals")
        start, end = seoul_day(group["settlementPeriodStartDate"]), seoul_day(group["settlementPeriodEndDate"])
        for field, value in detail.items():
            if not field.endswith(DEDUCTION_SUFFIX) or field in ORDER_FEE_FIELDS:
                continue
            amount = int(parse_won(pd.Series([value]), column=f"settlement group {key}: {field}",
                                   blank_as_zero=True).iloc[0])
            if amount:
                rows.append({"channel": JET, "account_id": account_id, "period_start": start, "period_end": end,
                             "settlement_group_key": key, "fee_type": ACCOUNT_FEE_TYPES.get(field, field),
                             "amount": amount})
    frame = pd.DataFrame(rows, columns=list(ACCOUNT_FEE_COLUMNS))
    for column in ("channel", "account_id", "period_start", "period_end", "settlement_group_key", "fee_type"):
        frame[column] = frame[column].astype(object)
    frame["amount"] = frame["amount"].astype("Int64")
    return frame.sort_values(["period_start", "fee_type"], kind="stable").reset_index(drop=True)


def periods(groups: Iterable[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    """(start, end) of each settlement group: the periods whose fees a load replaces."""
    return sorted({(seoul_day(g["settlementPeriodStartDate"]), seoul_day(g["settlementPeriodEndDate"]))
                   for g in groups})
