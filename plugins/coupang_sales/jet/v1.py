"""Jet v1: the staged 판매분석 answers (vi-detail-search, one day at a time) as rows of the v1 policy.

Each item becomes one row under ``policy.V1_COLUMNS``: 판매일 = the day asked, 옵션ID =
vendorItemId (the option ID), 등록상품명 = productName, 옵션명 = itemName, 판매수량 =
totalUnitsSold and 판매금액 = the GMV field, whose name is a setting (``totalGmv`` by default:
nobody public shows it for sure). An item listed twice on one day (the GMV order shifts
between pages) counts once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from coupang_sales.errors import ExportFormatError

SOURCE = "판매분석 (vi-detail-search)"
UNITS_FIELD = "totalUnitsSold"


def _field(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] is None:
        raise ExportFormatError(f"{SOURCE}: {where} has no {key!r}")
    return mapping[key]


def sales_rows(staged: dict[str, Any]) -> pd.DataFrame:
    """The rows of the v1 policy from ``WingSession.v1_sales``'s answer (``{"amount_field", "days": [...]}``)."""
    from coupang_sales.jet.policy import V1_COLUMNS

    amount_field = staged.get("amount_field")
    if not isinstance(amount_field, str) or not amount_field:
        raise ExportFormatError(f"{SOURCE}: the staged answer names no amount field")
    rows = []
    for day in staged.get("days", []):
        seen: set[str] = set()
        for position, item in enumerate(day.get("items", [])):
            where = f"day {day.get('date')} item {position + 1}"
            details = _field(item, "vendorItemDetails", where)
            metrics = _field(item, "businessInsightsMetricsResponse", where)
            option_id = str(_field(details, "vendorItemId", where))
            if option_id in seen:
                continue
            seen.add(option_id)
            if amount_field not in metrics:
                raise ExportFormatError(f"{SOURCE}: {where} has no amount field {amount_field!r} (it has "
                                        f"{sorted(metrics)}); set the Wing connection's v1_amount_field")
            rows.append({
                "판매일": day["date"], "옵션ID": option_id,
                "등록상품명": str(details.get("productName") or ""), "옵션명": str(details.get("itemName") or ""),
                "판매수량": _field(metrics, UNITS_FIELD, where), "판매금액": metrics[amount_field],
            })
    return pd.DataFrame(rows, columns=list(V1_COLUMNS), dtype=object)
