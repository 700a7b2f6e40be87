"""Coupang Jet policy: Wing's v1 sales page or v2 settlement reports -> ``sales.order_lines`` (and account fees).

The policy is PRODUCT.md §2.2. Inputs are the raw rows of the Wing page/reports under
their Korean header names, every cell raw text ('29,700', '' ...); each function below
documents the decisions it makes where the policy is silent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import cell_text, normalise_header, parse_dates, parse_won, select_columns
from coupang_sales.jet import reports
from coupang_sales.model import JET, ORDER_LINE_COLUMNS

# The columns of each source, for readers of the exports: v1 rows as the stages stage them
# (from 판매분석, coupang_sales.jet.v1), the reports in the order of REAL-PORTALS.md §4.
V1_COLUMNS = ("판매일", "옵션ID", "등록상품명", "옵션명", "판매수량", "판매금액")
CATEGORY_TR_COLUMNS = (
    "정산유형", "정산주기(종료일)", "세금계산서 발행월", "발생일(결제완료일)", "매출인식일", "주문ID", "거래유형",
    "카테고리ID", "카테고리명", "과세유형", "등록상품 ID", "옵션ID", "SKU ID", "등록상품명", "옵션명", "판매가(A)",
    "판매수량(B)", "판매액(A*B)", "쿠팡지원할인(C)", "매출금액(A*B-C)", "즉시할인쿠폰(D)", "다운로드쿠폰(E)",
    "판매자할인쿠폰(D+E)", "정산대상액", "판매수수료율(%,VAT별도)", "할인적용 판매수수료율(%,VAT별도)", "판매수수료",
    "판매수수료 VAT",
)
WAREHOUSING_SHIPPING_COLUMNS = (
    "주문ID", "배송ID", "등록상품 ID", "옵션ID", "SKU ID", "등록상품명", "옵션명", "1차", "2차", "개별포장 상품 사이즈",
    "물류센터", "거래유형", "정산유형", "판매수량", "발생비용(A)", "할인가(B)", "할인적용가(A-B)", "추가비용", "주문일",
    "매출인식일", "정산주기(종료일)",
)

# What the policy actually reads (coupang_sales.jet.reports): only these must be present; the
# other columns may disappear or be renamed without stopping collection.
CATEGORY_TR_REQUIRED = reports.CATEGORY_TR_REQUIRED
WAREHOUSING_SHIPPING_REQUIRED = reports.WAREHOUSING_SHIPPING_REQUIRED

V1_SOURCE = "Jet v1 sales page"
CATEGORY_TR = "CATEGORY_TR"
WAREHOUSING_SHIPPING = "WAREHOUSING_SHIPPING"

# 거래유형 values, compared with whitespace removed (normalise_header).
ORDER_SETTLEMENT = "주문 정산"
ORDER_CANCELLATION = "주문 정산취소"
ORDER_FEE_TYPES = ("입출고비 정산", "배송비 정산", "입출고비 정산취소", "배송비 정산취소")
_REVERSAL_SUFFIX = "취소"

ACCOUNT_FEE_COLUMNS = ("channel", "account_id", "fee_date", "fee_type", "amount")
UNMATCHED_CANCELLATION_COLUMNS = ("order_id", "option_id", "cancel_date", "quantity", "gross_amount",
                                  "coupon_discount", "payment_amount", "collected_commission", "reason")
UNMATCHED_FEE_COLUMNS = ("order_id", "amount", "rows")


@dataclass
class JetV2Result:
    order_lines: pd.DataFrame              # sales.order_lines rows (ORDER_LINE_COLUMNS)
    account_fees: pd.DataFrame             # ACCOUNT_FEE_COLUMNS, one row per (fee_date, fee_type)
    unmatched_cancellations: pd.DataFrame  # 주문 정산취소 with no original to restate, kept visible
    unmatched_fees: pd.DataFrame           # per-order fees of orders with no line, kept visible


# ---------------------------------------------------------------------------- cell helpers

def _ids(series: pd.Series, *, column: str, source: str) -> pd.Series:
    """An ID column: text, never blank (it is part of a key)."""
    ids = cell_text(series)
    blank = np.flatnonzero((ids == "").to_numpy())
    if len(blank):
        raise ExportFormatError(f"{source}: column {column!r} row {blank[0] + 1} is blank")
    return ids


def _drop_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with no value at all (blank separator rows of the exports) carry nothing."""
    if frame.empty:
        return frame
    filled = frame.apply(lambda column: cell_text(column) != "")
    return frame[filled.any(axis=1)]


def _product_names(name: pd.Series, option: pd.Series) -> pd.Series:
    return (name + " " + option).str.strip()


def _zeros(n: int) -> pd.arrays.IntegerArray:
    return pd.array([0] * n, dtype="Int64")


def _order_lines(columns: dict[str, object]) -> pd.DataFrame:
    """A ``sales.order_lines`` frame in table order with the warehouse's types."""
    frame = pd.DataFrame(columns, columns=list(ORDER_LINE_COLUMNS))
    for name in ("channel", "account_id", "order_id", "line_key", "option_id", "product_name", "source"):
        frame[name] = frame[name].astype(object)
    for name in ("quantity", "gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee",
                 "collected_commission", "cancelled_quantity", "cancelled_amount"):
        frame[name] = frame[name].astype("Int64")
    frame["sales_date"] = frame["sales_date"].astype(object)
    frame["is_cancelled"] = frame["is_cancelled"].astype(bool)
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------------------- v1

def transform_v1(sales: pd.DataFrame, *, account_id: str) -> pd.DataFrame:
    """Apply the Jet v1 policy to the rows of Wing's sales page (per sales date and option).

    - ``order_id`` = 옵션ID: the page has no order ID (policy v1.2); ``option_id`` = 옵션ID too.
    - ``line_key`` = the sales date as ISO text, so (order_id, line_key) is one option on one
      day. If the page lists the same option twice for one day (e.g. pages that overlap),
      the rows are **summed** into one line, keeping the first row's product name.
    - ``sales_date`` = 판매일 (the date basis of v1).
    - ``gross_amount`` = ``payment_amount`` = 판매금액, which is before coupons: v1 does not
      reflect coupon discounts (policy v1.1), so ``coupon_discount`` = 0.
    - No shipping fee is applied (policy v1.3): ``seller_shipping_fee`` = 0; the page has no
      commission: ``collected_commission`` is NULL.
    - The page shows sales, not cancellations: ``is_cancelled`` False, cancelled quantity/amount 0.
    - ``product_name`` = 등록상품명 + ' ' + 옵션명, trimmed.
    - Rows with no value at all are skipped; 판매수량 and 판매금액 must be whole numbers.
    """
    raw = _drop_blank_rows(select_columns(sales, V1_COLUMNS, source=V1_SOURCE))
    rows = pd.DataFrame({
        "option_id": _ids(raw["옵션ID"], column="옵션ID", source=V1_SOURCE),
        "sales_date": parse_dates(raw["판매일"], column="판매일", source=V1_SOURCE),  # 판매일
        "product_name": _product_names(cell_text(raw["등록상품명"]), cell_text(raw["옵션명"])),
        "quantity": parse_won(raw["판매수량"], column=f"{V1_SOURCE}: 판매수량"),
        "amount": parse_won(raw["판매금액"], column=f"{V1_SOURCE}: 판매금액"),  # before coupons
    })
    lines = (rows.groupby(["option_id", "sales_date"], sort=True, as_index=False)
             .agg(product_name=("product_name", "first"), quantity=("quantity", "sum"), amount=("amount", "sum")))
    n = len(lines)
    return _order_lines({
        "channel": JET,
        "account_id": account_id,
        "order_id": lines["option_id"],  # 옵션ID stands in for the missing order ID
        "line_key": lines["sales_date"].map(dt.date.isoformat),
        "option_id": lines["option_id"],
        "product_name": lines["product_name"],
        "sales_date": lines["sales_date"],
        "quantity": lines["quantity"],
        "gross_amount": lines["amount"],
        "coupon_discount": _zeros(n),
        "payment_amount": lines["amount"],
        "seller_shipping_fee": _zeros(n),
        "collected_commission": pd.array([pd.NA] * n, dtype="Int64"),
        "is_cancelled": [False] * n,
        "source": "jet_v1",
        "cancelled_quantity": _zeros(n),
        "cancelled_amount": _zeros(n),
    })


# ---------------------------------------------------------------------------- v2

def _parse_category_tr(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed CATEGORY_TR rows, one per report row (``coupang_sales.jet.reports.category_tr_rows``):
    cancellation rows carry negative amounts whatever their sign in the file."""
    return reports.category_tr_rows(frame)


def _parse_warehousing_shipping(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed WAREHOUSING_SHIPPING rows with the signed fee of each row (``reports.warehousing_shipping_rows``)."""
    return reports.warehousing_shipping_rows(frame)


def _restate_cancellations(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Order lines (one per order and option) with their cancellations applied, and what could not be applied."""
    keys = ["order_id", "option_id"]
    originals = (rows[~rows["is_cancellation"]]
                 .groupby(keys, sort=True, as_index=False)
                 .agg(product_name=("product_name", "first"), sales_date=("recognized_date", "min"),
                      quantity=("quantity", "sum"), gross=("gross", "sum"), coupon=("coupon", "sum"),
                      commission=("commission", "sum")))
    # A cancel row reverses the original whatever sign the report prints it with.
    cancel_rows = rows[rows["is_cancellation"]]
    amounts = ["quantity", "gross", "coupon", "commission"]
    cancel_rows = cancel_rows.assign(**{name: cancel_rows[name].abs() for name in amounts})
    cancels = (cancel_rows.groupby(keys, sort=True, as_index=False)
               .agg(cancel_date=("recognized_date", "min"), **{f"c_{a}": (a, "sum") for a in amounts}))

    lines = originals.merge(cancels, on=keys, how="left")
    has_cancel = lines["cancel_date"].notna()
    excess = {}
    for name in amounts:
        wanted = lines[f"c_{name}"].fillna(0).astype("Int64")
        applied = wanted.clip(upper=lines[name].clip(lower=0))
        excess[name] = wanted - applied
        lines[f"c_{name}"] = applied
        lines[name] = lines[name] - applied

    over = lines[pd.concat(excess, axis=1).gt(0).any(axis=1)]
    leftovers = pd.DataFrame({
        "order_id": over["order_id"], "option_id": over["option_id"], "cancel_date": over["cancel_date"],
        **{name: excess[name][over.index] for name in amounts}, "reason": "exceeds_original",
    })
    orphans = cancels.merge(originals[keys], on=keys, how="left", indicator=True)
    orphans = orphans[orphans["_merge"] == "left_only"]
    orphans = pd.DataFrame({
        "order_id": orphans["order_id"], "option_id": orphans["option_id"], "cancel_date": orphans["cancel_date"],
        **{name: orphans[f"c_{name}"] for name in amounts}, "reason": "no_original",
    })
    unmatched = pd.concat([orphans, leftovers], ignore_index=True) if len(leftovers) else orphans
    unmatched = pd.DataFrame({
        "order_id": unmatched["order_id"].astype(object),
        "option_id": unmatched["option_id"].astype(object),
        "cancel_date": unmatched["cancel_date"].astype(object),
        "quantity": unmatched["quantity"].astype("Int64"),
        "gross_amount": unmatched["gross"].astype("Int64"),
        "coupon_discount": unmatched["coupon"].astype("Int64"),
        "payment_amount": (unmatched["gross"] - unmatched["coupon"]).astype("Int64"),
        "collected_commission": unmatched["commission"].astype("Int64"),
        "reason": unmatched["reason"].astype(object),
    }, columns=list(UNMATCHED_CANCELLATION_COLUMNS))
    lines["has_cancel"] = has_cancel
    return lines, unmatched.sort_values(["order_id", "option_id"], kind="stable").reset_index(drop=True)


def _spread(fees: pd.Series, lines: pd.DataFrame) -> pd.Series:
    """Each order's fee over its lines in whole won, summing exactly to the order's fee.

    Largest-remainder method: every line first gets floor(fee × gross / order gross); the
    won left over go one each to the lines with the largest remainders, ties to the
    smaller ``line_key``. An order whose lines all have gross 0 is spread evenly. A negative
    fee (reversals exceeding charges) is spread by its size and given the sign back.
    """
    if lines.empty:
        return pd.Series(dtype="Int64", index=lines.index)
    order = lines["order_id"]
    # int64 is ample: fee × gross stays far below 9.2e18 for any real order.
    fee = order.map(fees).fillna(0).astype("int64").to_numpy()
    size, sign = np.abs(fee), np.sign(fee)
    gross = lines["gross_amount"].astype("int64").clip(lower=0).to_numpy()
    gross_total = pd.Series(gross).groupby(order.to_numpy()).transform("sum").to_numpy()
    weight = np.where(gross_total == 0, 1, gross)
    weight_total = pd.Series(weight).groupby(order.to_numpy()).transform("sum").to_numpy()
    base, remainder = np.divmod(size * weight, weight_total)
    left_over = size - pd.Series(base).groupby(order.to_numpy()).transform("sum").to_numpy()
    ranking = pd.DataFrame({"order": order.to_numpy(), "remainder": remainder,
                            "line_key": lines["line_key"].to_numpy()})
    ranking = ranking.sort_values(["order", "remainder", "line_key"], ascending=[True, False, True], kind="stable")
    rank = ranking.groupby("order").cumcount().sort_index().to_numpy()
    share = (base + (rank < left_over)) * sign
    return pd.Series(pd.array(share, dtype="Int64"), index=lines.index)


def transform_v2(category_tr: pd.DataFrame, warehousing_shipping: pd.DataFrame, *, account_id: str) -> JetV2Result:
    """Apply the Jet v2 policy to Wing's CATEGORY_TR and WAREHOUSING_SHIPPING settlement reports.

    Order lines (from CATEGORY_TR):
    - ``order_id`` = 주문ID, the real order ID (policy v2.2); ``line_key`` = ``option_id`` = 옵션ID:
      one line per option in an order. Several '주문 정산' rows for the same order and option
      are summed into that line.
    - ``sales_date`` = 매출인식일 of the '주문 정산' row (the earliest, if summed rows differ).
    - ``gross_amount`` = 판매액(A*B); ``coupon_discount`` = 쿠팡지원할인(C) + 판매자할인쿠폰(D+E)
      (blank discount cells read as 0); ``payment_amount`` = gross − coupon_discount, so the
      payment reflects coupons (policy v2.1).
    - ``collected_commission`` = 판매수수료 + 판매수수료 VAT (policy v2.4). A user-entered rate
      is applied when read (the warehouse view), not here.
    - ``product_name`` = '' (the report has none), unless a 등록상품명/상품명 column is present.
    - A '주문 정산취소' row restates the original line (same 주문ID and 옵션ID) on the
      original's date — never a negative line of its own. Its amounts are taken as a reversal
      whatever their sign (their absolute values are subtracted): quantity, gross, coupon,
      payment and commission go down; ``cancelled_quantity`` and ``cancelled_amount``
      (payment cancelled = gross − coupon cancelled) record it as positive numbers. A full
      cancellation ends at 0 with ``is_cancelled`` True.
    - A cancellation with no original in ``category_tr`` (its order was collected in an
      earlier window, or lies outside this one) is not dropped and not loaded as a line:
      it is returned in ``unmatched_cancellations`` (reason 'no_original'). The part of a
      cancellation larger than its original is clipped (no line goes below 0) and returned
      there as well (reason 'exceeds_original').

    Fees (from WAREHOUSING_SHIPPING; each row's fee = 발생비용(A) − 할인가(B) + 추가비용, blank B
    and 추가비용 read as 0; a '… 정산취소' row subtracts its absolute fee):
    - Rows with a 주문ID are per-order fees and must be 입출고비 정산 / 배송비 정산 or their
      정산취소 (any other 거래유형 raises ``ExportFormatError``: an unknown fee is a format
      change, not something to guess). An order's total is its ``seller_shipping_fee``
      (policy v2.3), spread over its lines by gross amount in whole won so the lines sum to
      the fee exactly (see ``_spread``); lines of orders without fees get 0. A cancelled
      line keeps its share unless the report reverses the fee.
    - A fee for an order with no line in ``category_tr`` is returned in ``unmatched_fees``.
    - Rows with a blank 주문ID are account-level usage fees (보관비 and the like): returned
      in ``account_fees`` with ``fee_date`` = 매출인식일, ``fee_type`` = 거래유형 (spaces
      collapsed), ``amount`` summed per (fee_date, fee_type); reversals are negative.

    Rows with no value at all are skipped in both reports. The reports must not overlap
    (pass one download per report), since repeated rows are summed, not de-duplicated.
    """
    rows = _parse_category_tr(category_tr)
    lines, unmatched_cancellations = _restate_cancellations(rows)
    payment = lines["gross"] - lines["coupon"]
    order_lines = _order_lines({
        "channel": JET,
        "account_id": account_id,
        "order_id": lines["order_id"],            # 주문ID
        "line_key": lines["option_id"],           # 옵션ID: one line per option in an order
        "option_id": lines["option_id"],
        "product_name": lines["product_name"],
        "sales_date": lines["sales_date"],        # 매출인식일 of the original
        "quantity": lines["quantity"],
        "gross_amount": lines["gross"],
        "coupon_discount": lines["coupon"],
        "payment_amount": payment,
        "seller_shipping_fee": _zeros(len(lines)),
        "collected_commission": lines["commission"],
        "is_cancelled": (lines["has_cancel"] & (lines["quantity"] == 0) & (lines["gross"] == 0)
                         & (payment == 0)).astype(bool),
        "source": "jet_v2",
        "cancelled_quantity": lines["c_quantity"],
        "cancelled_amount": lines["c_gross"] - lines["c_coupon"],
    })

    fee_rows = _parse_warehousing_shipping(warehousing_shipping)
    account_level = fee_rows["order_id"] == ""
    per_order = fee_rows[~account_level]
    unknown = sorted(set(per_order["fee_type"].map(normalise_header))
                     - {normalise_header(t) for t in ORDER_FEE_TYPES})
    if unknown:
        raise ExportFormatError(f"{WAREHOUSING_SHIPPING}: column '거래유형' has unknown per-order fee types "
                                f"{unknown}; expected one of {list(ORDER_FEE_TYPES)}")
    order_fees = per_order.groupby("order_id", sort=True).agg(amount=("fee", "sum"), rows=("fee", "size"))
    has_line = order_fees.index.isin(order_lines["order_id"])
    order_lines["seller_shipping_fee"] = _spread(order_fees.loc[has_line, "amount"], order_lines)
    unmatched_fees = pd.DataFrame({
        "order_id": order_fees.index[~has_line].astype(object),
        "amount": order_fees.loc[~has_line, "amount"].astype("Int64").to_numpy(),
        "rows": order_fees.loc[~has_line, "rows"].astype("int64").to_numpy(),
    }, columns=list(UNMATCHED_FEE_COLUMNS))

    usage = fee_rows[account_level]
    usage = usage.assign(fee_date=parse_dates(usage["recognized_date"], column="매출인식일",
                                              source=WAREHOUSING_SHIPPING))
    usage = usage.groupby(["fee_date", "fee_type"], sort=True, as_index=False).agg(amount=("fee", "sum"))
    account_fees = pd.DataFrame({
        "channel": JET,
        "account_id": account_id,
        "fee_date": usage["fee_date"].astype(object),
        "fee_type": usage["fee_type"].astype(object),
        "amount": usage["amount"].astype("Int64"),
    }, columns=list(ACCOUNT_FEE_COLUMNS))

    return JetV2Result(order_lines=order_lines, account_fees=account_fees,
                       unmatched_cancellations=unmatched_cancellations, unmatched_fees=unmatched_fees)


def order_fee_totals(warehousing_shipping: pd.DataFrame) -> pd.Series:
    """Each order's net fee (입출고비 + 배송비, reversals subtracted) from WAREHOUSING_SHIPPING, by 주문ID.

    The quality suite checks that the fee spread over an order's lines sums to this.
    """
    rows = _parse_warehousing_shipping(warehousing_shipping)
    rows = rows[rows["order_id"] != ""]
    return rows.groupby("order_id")["fee"].sum().astype("Int64")
