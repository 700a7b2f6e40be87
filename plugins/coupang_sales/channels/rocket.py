"""Coupang Rocket policy: 입고상세내역 lines of 일반매입계정 invoices -> ``sales.order_lines``.

The policy (PRODUCT.md §2.1): the payment amount is 총단가, dated by the 작성일자 of the
invoice the line belongs to; a 반출 line (a return/cancellation) restates the matching
발주 line (same 발주번호 and SKU번호) on the original line's date instead of adding a
negative line on its own date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import cell_text, parse_dates, parse_won, select_columns
from coupang_sales.model import ORDER_LINE_COLUMNS, ROCKET

# 일반매입계정 list columns the policy needs (the page has more).
INVOICE_COLUMNS = ("계산서번호", "작성일자", "공급가액", "부가가치세", "지급예정금액", "세금계산서 확정일", "발행유형")
# 입고상세내역 columns, as the page and its Excel export name them.
DETAIL_COLUMNS = ("구분", "번호", "SKU번호", "SKU명", "입고/반출일자", "물류센터", "세금타입", "수량", "단가",
                  "공급가액", "세액", "총단가", "총공급가액", "총세액", "계산서번호", "지급일")
DETAIL_MONEY = ("수량", "단가", "공급가액", "세액", "총단가", "총공급가액", "총세액")
PURCHASE, RETURN = "발주", "반출"

# English names used from here on; the Korean header stays the source of truth above.
_DETAIL_RENAME = {
    "구분": "kind", "번호": "po_no", "SKU번호": "sku_id", "SKU명": "sku_name", "입고/반출일자": "moved_date",
    "물류센터": "center", "수량": "qty", "총단가": "total_price", "총공급가액": "total_supply",
    "총세액": "total_tax", "계산서번호": "invoice_no",
}


def parse_invoices(rows: Iterable[Mapping[str, str]], *, source: str = "일반매입계정") -> pd.DataFrame:
    """Typed invoices (one row per 계산서번호) from the 일반매입계정 rows, parsed by header name."""
    raw = pd.DataFrame(list(rows))
    if raw.empty:
        raw = pd.DataFrame(columns=list(INVOICE_COLUMNS))
    raw = select_columns(raw, INVOICE_COLUMNS, source=source)
    out = pd.DataFrame({
        "invoice_no": cell_text(raw["계산서번호"]),
        "written_date": parse_dates(raw["작성일자"], column="작성일자", source=source),  # 작성일자
        "supply_amount": parse_won(raw["공급가액"], column="공급가액"),
        "vat_amount": parse_won(raw["부가가치세"], column="부가가치세"),
        "payable_amount": parse_won(raw["지급예정금액"], column="지급예정금액"),  # 지급예정금액
        "tax_invoice_confirmed": cell_text(raw["세금계산서 확정일"]),
        "issue_type": cell_text(raw["발행유형"]),
    })
    return out.drop_duplicates(subset=["invoice_no"]).reset_index(drop=True)


def parse_receive_detail(raw: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Typed 입고상세내역 lines from raw text cells (header names already matched)."""
    raw = select_columns(raw, DETAIL_COLUMNS, source=source)
    out = pd.DataFrame(index=raw.index)
    for korean, name in _DETAIL_RENAME.items():
        if korean in DETAIL_MONEY:
            out[name] = parse_won(raw[korean], column=f"{source}: {korean}")
        elif korean == "입고/반출일자":
            out[name] = parse_dates(raw[korean], column=korean, source=source)
        else:
            out[name] = cell_text(raw[korean])
    unknown = sorted(set(out["kind"]) - {PURCHASE, RETURN})
    if unknown:
        raise ExportFormatError(f"{source}: column '구분' has unknown values {unknown}; expected 발주 or 반출")
    return out.reset_index(drop=True)


@dataclass
class Deduplicated:
    lines: pd.DataFrame
    duplicates_removed: int


def drop_duplicate_lines(lines: pd.DataFrame) -> Deduplicated:
    """Remove lines repeated verbatim (overlapping downloads repeat whole lines).

    Two lines are the same line when every field is equal; the count removed is kept
    for the run summary so nothing disappears silently.
    """
    deduped = lines.drop_duplicates().reset_index(drop=True)
    return Deduplicated(deduped, len(lines) - len(deduped))


@dataclass
class RocketResult:
    order_lines: pd.DataFrame
    unmatched_returns: pd.DataFrame  # 반출 lines with no 발주 line to restate, kept visible


def transform(invoices: pd.DataFrame, lines: pd.DataFrame, *, account_id: str) -> RocketResult:
    """Apply the Rocket policy to typed invoices and de-duplicated 입고상세내역 lines.

    - ``order_id`` = 발주번호, ``option_id`` = SKU번호, ``sales_date`` = the invoice's 작성일자.
    - ``payment_amount`` = 총단가; Rocket has no coupons, so ``gross_amount`` = ``payment_amount``.
    - ``line_key`` = 계산서번호:SKU번호:입고일자:물류센터, stable across re-collections; lines
      sharing it (one receipt split in two rows) are summed.
    - A 반출 line reduces the matching 발주 lines (same 발주번호 and SKU번호), newest 작성일자
      first, by its quantity and 총단가: to 0 when fully returned (``is_cancelled``), less
      when partial. What a return could not be matched to stays in ``unmatched_returns``.
    """
    written = dict(zip(invoices["invoice_no"], invoices["written_date"], strict=True))
    missing = sorted(set(lines["invoice_no"]) - set(written))
    if missing:
        raise ExportFormatError(f"입고상세내역 lines name invoices missing from 일반매입계정: {missing[:5]}")
    lines = lines.assign(sales_date=lines["invoice_no"].map(written))

    purchases = lines[lines["kind"] == PURCHASE].copy()
    purchases["line_key"] = (purchases["invoice_no"] + ":" + purchases["sku_id"] + ":"
                             + purchases["moved_date"].map(dt.date.isoformat) + ":" + purchases["center"])
    purchases = (purchases.groupby(["po_no", "line_key"], sort=False, as_index=False)
                 .agg(sku_id=("sku_id", "first"), sku_name=("sku_name", "first"),
                      sales_date=("sales_date", "first"), qty=("qty", "sum"),
                      total_price=("total_price", "sum")))
    purchases["returned_qty"] = pd.array([0] * len(purchases), dtype="Int64")
    purchases["returned_amount"] = pd.array([0] * len(purchases), dtype="Int64")

    unmatched = []
    returns = lines[lines["kind"] == RETURN]
    for (po_no, sku_id), group in returns.groupby(["po_no", "sku_id"], sort=True):
        qty_left = int(-group["qty"].sum())
        amount_left = int(-group["total_price"].sum())
        targets = purchases[(purchases["po_no"] == po_no) & (purchases["sku_id"] == sku_id)]
        for idx in targets.sort_values(["sales_date", "line_key"], ascending=False).index:
            room_qty = int(purchases.at[idx, "qty"] - purchases.at[idx, "returned_qty"])
            room_amount = int(purchases.at[idx, "total_price"] - purchases.at[idx, "returned_amount"])
            take_qty, take_amount = min(qty_left, room_qty), min(amount_left, room_amount)
            purchases.at[idx, "returned_qty"] += take_qty
            purchases.at[idx, "returned_amount"] += take_amount
            qty_left -= take_qty
            amount_left -= take_amount
        if qty_left > 0 or amount_left > 0:
            unmatched.append({"po_no": po_no, "sku_id": sku_id,
                              "invoices": ",".join(sorted(set(group["invoice_no"]))),
                              "unmatched_qty": qty_left, "unmatched_amount": amount_left})

    quantity = (purchases["qty"] - purchases["returned_qty"]).astype("Int64")
    payment = (purchases["total_price"] - purchases["returned_amount"]).astype("Int64")
    n = len(purchases)
    order_lines = pd.DataFrame({
        "channel": ROCKET,
        "account_id": account_id,
        "order_id": purchases["po_no"],           # 발주번호
        "line_key": purchases["line_key"],
        "option_id": purchases["sku_id"],         # SKU번호
        "product_name": purchases["sku_name"],    # SKU명
        "sales_date": purchases["sales_date"],    # 작성일자 of the line's invoice
        "quantity": quantity,
        "gross_amount": payment,
        "coupon_discount": pd.array([0] * n, dtype="Int64"),
        "payment_amount": payment,                # 총단가, restated
        "seller_shipping_fee": pd.array([0] * n, dtype="Int64"),
        "collected_commission": pd.array([pd.NA] * n, dtype="Int64"),
        "is_cancelled": (purchases["returned_qty"] > 0) & (quantity == 0) & (payment == 0),
        "source": "rocket",
        "cancelled_quantity": purchases["returned_qty"].astype("Int64"),
        "cancelled_amount": purchases["returned_amount"].astype("Int64"),
    }, columns=list(ORDER_LINE_COLUMNS))
    order_lines["is_cancelled"] = order_lines["is_cancelled"].astype(bool)
    unmatched_frame = pd.DataFrame(
        unmatched, columns=["po_no", "sku_id", "invoices", "unmatched_qty", "unmatched_amount"])
    return RocketResult(order_lines.reset_index(drop=True), unmatched_frame)
