"""Jet v1: the staged 판매분석 answers (vi-detail-search, one day at a time) as rows of the v1 policy.

Each item becomes one row under ``policy.V1_COLUMNS``: 판매일 = the day asked, 옵션ID =
vendorItemId (the option ID), 등록상품명 = productName, 옵션명 = itemName, 판매수량 =
totalUnitsSold and 판매금액 = the GMV field, whose name is a setting (``totalGmv`` by default:
nobody public shows it for sure). An item listed twice on one day (the GMV order shifts
between pages) counts once.

Wing lists options with no sales that day (146 listed, 11 sold in a live record, REAL-PORTALS.md §6):
an item with 0 units sold and 0 GMV is no sale and makes no row. When the answer says each item's
``vendorItemDetails.registrationType`` (it may mix NORMAL, seller-shipped, with RFM, Rocket Growth),
only the kept types (setting ``api.v1_kept_registration_types``, RFM) make rows; an answer to a
request for more types than are kept must say it, or nothing is loaded.
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


def _is_zero(value: Any) -> bool:
    try:
        return float(str(value).replace(",", "").strip()) == 0
    except ValueError:
        return False  # not a number: the policy's checks name it


def sales_rows(staged: dict[str, Any]) -> pd.DataFrame:
    """The rows of the v1 policy from ``WingSession.v1_sales``'s answer (``{"amount_field", "days": [...]}``)."""
    from coupang_sales.jet.policy import V1_COLUMNS

    amount_field = staged.get("amount_field")
    if not isinstance(amount_field, str) or not amount_field:
        raise ExportFormatError(f"{SOURCE}: the staged answer names no amount field")
    kept = set(staged.get("kept_registration_types") or ["RFM"])
    asked = set(staged.get("registration_types") or kept)
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
            kind = details.get("registrationType") if isinstance(details, dict) else None
            if kind is None and not asked <= kept:
                raise ExportFormatError(f"{SOURCE}: {where} has no registrationType, but {sorted(asked)} were "
                                        f"asked for and only {sorted(kept)} are kept")
            if kind is not None and str(kind) not in kept:
                continue  # another registration type (NORMAL: seller-shipped, not Jet)
            if amount_field not in metrics:
                raise ExportFormatError(f"{SOURCE}: {where} has no amount field {amount_field!r} (it has "
                                        f"{sorted(metrics)}); set the Wing connection's v1_amount_field")
            units, amount = _field(metrics, UNITS_FIELD, where), metrics[amount_field]
            if _is_zero(units) and _is_zero(amount):
                continue  # listed, not sold that day
            rows.append({
                "판매일": day["date"], "옵션ID": option_id,
                "등록상품명": str(details.get("productName") or ""), "옵션명": str(details.get("itemName") or ""),
                "판매수량": units, "판매금액": amount,
            })
    return pd.DataFrame(rows, columns=list(V1_COLUMNS), dtype=object)
