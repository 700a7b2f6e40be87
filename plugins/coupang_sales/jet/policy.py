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
from coupang_sales.facts import (
    ADJUSTMENT_COLUMNS,
    RESTATEMENT_COLUMNS,
    Derived,
    fact_frame,
    largest_remainder,
    shared_objects,
    typed,
)
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
# The reports' names and their 거래유형 values (compared with whitespace removed, normalise_header) are
# the reader's (coupang_sales.jet.reports), defined once there.
CATEGORY_TR = reports.CATEGORY_TR
WAREHOUSING_SHIPPING = reports.WAREHOUSING_SHIPPING
ORDER_SETTLEMENT = reports.ORDER_SETTLEMENT
ORDER_CANCELLATION = reports.ORDER_CANCELLATION
ORDER_FEE_TYPES = reports.ORDER_FEE_TYPES
_REVERSAL_SUFFIX = reports.CANCELLATION_SUFFIX

ACCOUNT_FEE_COLUMNS = ("channel", "account_id", "fee_date", "fee_type", "amount")
UNMATCHED_CANCELLATION_COLUMNS = ("order_id", "option_id", "cancel_date", "quantity", "payment_amount", "reason")
UNMATCHED_FEE_COLUMNS = ("order_id", "amount", "rows")


@dataclass
class JetV2Result:
    order_lines: pd.DataFrame              # sales.order_lines rows (ORDER_LINE_COLUMNS)
    account_fees: pd.DataFrame             # ACCOUNT_FEE_COLUMNS, one row per (fee_date, fee_type)
    unmatched_cancellations: pd.DataFrame  # 주문 정산취소 with no original to restate, kept visible
    unmatched_fees: pd.DataFrame           # per-order fees of orders with no line, kept visible
    facts: pd.DataFrame | None = None      # FACT_COLUMNS: what the load stores and derives from
    restatements: pd.DataFrame | None = None
    adjustments: pd.DataFrame | None = None


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
        frame[name] = pd.Series(shared_objects(frame[name]), index=frame.index, dtype=object)
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


SETTLEMENT_FACT, CANCELLATION_FACT, ORDER_FEE_FACT = "jet_settlement", "jet_cancellation", "jet_order_fee"
JET_FACT_KINDS = (SETTLEMENT_FACT, CANCELLATION_FACT, ORDER_FEE_FACT)


def v2_facts(rows: pd.DataFrame, fee_rows: pd.DataFrame) -> pd.DataFrame:
    """The Jet v2 facts of typed CATEGORY_TR rows and the per-order WAREHOUSING_SHIPPING rows.

    - A '주문 정산' row: ``fact_key`` = 옵션ID:매출인식일, the key of the line it makes; rows
      sharing the key (same order, option and day) are summed.
    - A '주문 정산취소' row: the same key, amounts stored negative whatever sign the report
      prints (a cancellation is a reversal).
    - A per-order fee row: ``fact_key`` = 거래유형:옵션ID:매출인식일 (거래유형:매출인식일 where the row
      names no 옵션ID), ``option_id`` = its 옵션ID, ``amount`` = its signed fee.
    All are grouped by 주문ID (``group_key``): fees are spread over the lines of their option
    (over the order's lines where the row names no option), see ``derive_v2``.
    """
    amounts = ["quantity", "gross", "coupon", "commission"]
    sign = np.where(rows["is_cancellation"], -1, 1)
    signed = rows.assign(**{a: rows[a].abs() * sign for a in amounts},
                         fact_kind=np.where(rows["is_cancellation"], CANCELLATION_FACT, SETTLEMENT_FACT),
                         fact_key=rows["option_id"] + ":" + rows["recognized_date"].map(dt.date.isoformat))
    sales = (signed.groupby(["fact_kind", "order_id", "fact_key"], sort=True, as_index=False)
             .agg(option_id=("option_id", "first"), product_name=("product_name", "first"),
                  fact_date=("recognized_date", "first"), **{a: (a, "sum") for a in amounts}))
    per_order = fee_rows[fee_rows["order_id"] != ""]
    per_order = per_order.assign(fact_date=parse_dates(per_order["recognized_date"], column="매출인식일",
                                                       source=WAREHOUSING_SHIPPING))
    option = per_order["option_id"].fillna("").astype(str).str.strip()
    per_order = per_order.assign(option_id=option, fact_key=per_order["fee_type"] + ":"
                                 + option.where(option == "", option + ":")
                                 + per_order["fact_date"].map(dt.date.isoformat))
    fees = per_order.groupby(["order_id", "fact_key"], sort=True, as_index=False).agg(
        fact_date=("fact_date", "first"), option_id=("option_id", "first"), amount=("fee", "sum"))
    return fact_frame(pd.concat([
        fact_frame({"fact_kind": sales["fact_kind"], "order_id": sales["order_id"], "fact_key": sales["fact_key"],
                    "group_key": sales["order_id"], "fact_date": sales["fact_date"], "document": CATEGORY_TR,
                    "option_id": sales["option_id"], "product_name": sales["product_name"],
                    "quantity": sales["quantity"], "amount": sales["gross"], "coupon_discount": sales["coupon"],
                    "commission": sales["commission"], "unit_price": pd.NA}),
        fact_frame({"fact_kind": ORDER_FEE_FACT, "order_id": fees["order_id"], "fact_key": fees["fact_key"],
                    "group_key": fees["order_id"], "fact_date": fees["fact_date"], "document": WAREHOUSING_SHIPPING,
                    "option_id": fees["option_id"].where(fees["option_id"] != "", None), "product_name": None,
                    "quantity": 0, "amount": fees["amount"],
                    "coupon_discount": 0, "commission": pd.NA, "unit_price": pd.NA}),
    ], ignore_index=True))


_MONEY = ("gross", "coupon", "commission")


def _restate_cancellations(sales: list[dict], cancels: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """Apply one order+option's cancellations to its lines (dicts with quantity and ``_MONEY``, mutated).

    Oldest cancellation first (매출인식일, then key). Its quantity is taken from the lines newest
    매출인식일 first, each giving at most what it holds; its gross, coupon and commission are
    shared over those lines in proportion to the quantity each gave (largest remainder),
    each line giving at most what it holds. What no line can take (no line collected, or more
    than the lines hold) is returned as unapplied. A cancellation with no quantity (money only)
    goes to the newest line.

    Returns (applications: (line, cancel, quantity, payment taken);
             unapplied: (cancel, reason, quantity, payment)).
    """
    applied, unapplied = [], []
    newest_first = sorted(sales, key=lambda x: (x["fact_date"], x["fact_key"]), reverse=True)
    for cancel in sorted(cancels, key=lambda x: (x["fact_date"], x["fact_key"])):
        want = abs(int(cancel["quantity"]))
        takers = []
        for line in newest_first:
            take = min(want, line["quantity"])
            if take:
                line["quantity"] -= take
                takers.append([line, take])
                want -= take
        if not takers and newest_first and abs(int(cancel["quantity"])) == 0:
            takers = [[newest_first[0], 0]]
        weights = [t for _, t in takers] + ([want] if want else [])
        if not takers:
            weights = [1]
        taken_money = {name: [0] * len(takers) for name in _MONEY}
        left_money = {}
        for name in _MONEY:
            total = abs(int(cancel[name]))
            shares = largest_remainder(total, weights)
            for i, (line, _) in enumerate(takers):
                give = min(shares[i], max(line[name], 0))
                line[name] -= give
                taken_money[name][i] = give
            left_money[name] = total - sum(taken_money[name])
        for i, (line, take) in enumerate(takers):
            applied.append((line, cancel, take, taken_money["gross"][i] - taken_money["coupon"][i]))
        left_payment = left_money["gross"] - left_money["coupon"]
        if want or left_payment or left_money["commission"]:
            reason = "no_original" if not takers else "exceeds_original"
            unapplied.append((cancel, reason, want, left_payment))
    return applied, unapplied


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


def _spread_by_option(fee_facts: pd.DataFrame, lines: pd.DataFrame) -> pd.Series:
    """Each fee over the lines of its own option (WAREHOUSING_SHIPPING's 옵션ID), in whole won.

    A fee row naming an option that has lines in its order is spread (``_spread``) over those
    lines only, so a cancellation or a fee reversal of option Y never moves option X's fee; a
    row naming no option, or an option without a line in the order, over all the order's lines.
    """
    if lines.empty:
        return pd.Series(dtype="Int64", index=lines.index)
    option = fee_facts["option_id"].where(fee_facts["option_id"].notna(), "").astype(str)
    line_option = lines["option_id"].where(lines["option_id"].notna(), "").astype(str)
    own = pd.Series(list(zip(fee_facts["order_id"], option, strict=True)), index=fee_facts.index).isin(
        set(zip(lines["order_id"], line_option, strict=True))) & (option != "")
    sep = "\x1f"  # never in an id
    by_order = fee_facts[~own].groupby("order_id")["amount"].sum()
    by_option = fee_facts[own].assign(key=fee_facts["order_id"] + sep + option).groupby("key")["amount"].sum()
    whole = _spread(by_order, lines).astype("int64")
    per_option = _spread(by_option, lines.assign(order_id=lines["order_id"] + sep + line_option)).astype("int64")
    return pd.Series(pd.array(whole + per_option, dtype="Int64"), index=lines.index)


def transform_v2(category_tr: pd.DataFrame, warehousing_shipping: pd.DataFrame, *, account_id: str) -> JetV2Result:
    """Apply the Jet v2 policy to Wing's CATEGORY_TR and WAREHOUSING_SHIPPING settlement reports.

    Order lines (from CATEGORY_TR):
    - ``order_id`` = 주문ID, the real order ID (policy v2.2); ``option_id`` = 옵션ID;
      ``line_key`` = 옵션ID:매출인식일: one line per option and 매출인식일 in an order (rows
      sharing all three are summed). A line's key and date are its own row's, so a later
      row never moves or rebuilds an earlier line.
    - ``sales_date`` = 매출인식일 of the '주문 정산' row.
    - ``gross_amount`` = 판매액(A*B); ``coupon_discount`` = 쿠팡지원할인(C) + 판매자할인쿠폰(D+E)
      (blank discount cells read as 0); ``payment_amount`` = gross − coupon_discount, so the
      payment reflects coupons (policy v2.1).
    - ``collected_commission`` = 판매수수료 + 판매수수료 VAT (policy v2.4). A user-entered rate
      is applied when read (the warehouse view), not here.
    - ``product_name`` = '' (the report has none), unless a 등록상품명/상품명 column is present.
    - A '주문 정산취소' row restates the original lines (same 주문ID and 옵션ID) on their own
      dates — never a negative line of its own (``_restate_cancellations``). Its amounts are
      taken as a reversal whatever their sign: quantity, gross, coupon, payment and
      commission go down; ``cancelled_quantity`` and ``cancelled_amount`` record it as
      positive numbers. A full cancellation ends at 0 with ``is_cancelled`` True.
    - A cancellation with no original in these facts is not dropped and not loaded as a
      line: it is returned in ``unmatched_cancellations`` (reason 'no_original'), and the
      part larger than its originals with reason 'exceeds_original'. The load derives from
      every fact collected so far, so an original collected by any run applies.

    Fees (from WAREHOUSING_SHIPPING; each row's fee = 발생비용(A) − 할인가(B) + 추가비용, blank B
    and 추가비용 read as 0; a '… 정산취소' row subtracts its absolute fee):
    - Rows with a 주문ID are per-order fees and must be 입출고비 정산 / 배송비 정산 or their
      정산취소 (any other 거래유형 raises ``ExportFormatError``: an unknown fee is a format
      change, not something to guess). An order's total is its ``seller_shipping_fee``
      (policy v2.3): a row naming an 옵션ID is spread over that option's lines, a row naming
      none over all the order's lines, by their original gross amount (before any
      cancellation) in whole won so the lines sum to the fee exactly (see ``_spread_by_option``);
      lines of orders without fees get 0. A cancelled line keeps its share: only the
      report's fee reversals change a fee, and only the shares of the lines it was spread over.
    - A fee for an order with no line in ``category_tr`` is returned in ``unmatched_fees``.
    - Rows with a blank 주문ID are account-level usage fees (보관비 and the like): returned
      in ``account_fees`` with ``fee_date`` = 매출인식일, ``fee_type`` = 거래유형 (spaces
      collapsed), ``amount`` summed per (fee_date, fee_type); reversals are negative.

    Rows with no value at all are skipped in both reports. The reports must not overlap
    (pass one download per report), since repeated rows are summed, not de-duplicated.

    Reports of more than ``TRANSFORM_CHUNK_ORDERS`` orders are taken that many orders at a time
    (``_order_chunks``): the policy is local to an order, and the frames returned are the ones a
    single pass gives, row for row. Only a format error may differ: it names what the first
    chunk holding a bad row shows.
    """
    chunks = _order_chunks(category_tr, warehousing_shipping)
    if chunks is None:
        return _transform_orders(category_tr, warehousing_shipping, account_id=account_id)
    parts = [_transform_orders(category_tr[in_tr], warehousing_shipping[in_ws], account_id=account_id)
             for in_tr, in_ws in chunks]
    return _joined(parts)


# transform_v2 works through this many orders at a time: a Python record per fact of a whole large
# extract at once is gigabytes (the load hands derive_v2 at most DERIVE_CHUNK_GROUPS orders).
TRANSFORM_CHUNK_ORDERS = 100_000
_ORDER_ID = "주문ID"


def _order_chunks(category_tr: pd.DataFrame, warehousing_shipping: pd.DataFrame
                  ) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Row masks of both reports, ``TRANSFORM_CHUNK_ORDERS`` orders (by 주문ID text) per chunk, in
    주문ID order; the rows without a 주문ID (account-level fees, blank rows) fall in the first. None
    (one pass) when the reports are small or have no 주문ID column (the single pass then names what
    is missing)."""
    ids = []
    for frame in (category_tr, warehousing_shipping):
        column = next((c for c in frame.columns if normalise_header(str(c)) == _ORDER_ID), None)
        if column is None:
            return None
        ids.append(cell_text(frame[column]).to_numpy(dtype=object))
    orders = np.sort(pd.unique(np.concatenate(ids)))
    if len(orders) <= TRANSFORM_CHUNK_ORDERS:
        return None
    bounds = orders[TRANSFORM_CHUNK_ORDERS::TRANSFORM_CHUNK_ORDERS]
    tr_chunk, ws_chunk = (np.searchsorted(bounds, values, side="right") for values in ids)
    return [(tr_chunk == number, ws_chunk == number) for number in range(len(bounds) + 1)]


def _joined(parts: list[JetV2Result]) -> JetV2Result:
    """The results of consecutive order chunks as one pass over all of them orders its frames."""
    def join(name: str, frames=None) -> pd.DataFrame:
        joined = pd.concat(list(frames) if frames is not None else [getattr(p, name) for p in parts],
                           ignore_index=True)
        for part in parts:
            setattr(part, name, None)  # each part's copy is released as soon as it is joined
        return joined

    # one pass: sales facts sorted by (kind, order, key), then the fee facts by (order, key)
    kinds = sorted({kind for part in parts for kind in part.facts["fact_kind"].unique()} - {ORDER_FEE_FACT})
    facts = join("facts", (p.facts[p.facts["fact_kind"] == kind] for kind in [*kinds, ORDER_FEE_FACT] for p in parts))
    # ... and the cancellations' adjustments before the fees without a line
    adjustments = join("adjustments", [*(p.adjustments[p.adjustments["fact_kind"] != ORDER_FEE_FACT] for p in parts),
                                       *(p.adjustments[p.adjustments["fact_kind"] == ORDER_FEE_FACT] for p in parts)])
    return JetV2Result(order_lines=join("order_lines"), account_fees=join("account_fees"),
                       unmatched_cancellations=join("unmatched_cancellations"), unmatched_fees=join("unmatched_fees"),
                       facts=facts, restatements=join("restatements"), adjustments=adjustments)


def _transform_orders(category_tr: pd.DataFrame, warehousing_shipping: pd.DataFrame, *,
                      account_id: str) -> JetV2Result:
    """``transform_v2`` of reports taken whole."""
    rows = _parse_category_tr(category_tr)
    fee_rows = _parse_warehousing_shipping(warehousing_shipping)
    account_level = fee_rows["order_id"] == ""
    per_order = fee_rows[~account_level]
    unknown = sorted(set(per_order["fee_type"].map(normalise_header))
                     - {normalise_header(t) for t in ORDER_FEE_TYPES})
    if unknown:
        raise ExportFormatError(f"{WAREHOUSING_SHIPPING}: column '거래유형' has unknown per-order fee types "
                                f"{unknown}; expected one of {list(ORDER_FEE_TYPES)}")
    facts = v2_facts(rows, per_order)
    derived = derive_v2(facts, account_id=account_id)
    order_lines = derived.order_lines
    unapplied = derived.unapplied()
    cancels = unapplied[unapplied["fact_kind"] == CANCELLATION_FACT]
    unmatched_cancellations = pd.DataFrame({
        "order_id": cancels["order_id"].astype(object),
        "option_id": cancels["option_id"].astype(object),
        "cancel_date": cancels["fact_date"].astype(object),
        "quantity": (-cancels["quantity"]).astype("Int64"),
        "payment_amount": (-cancels["amount"]).astype("Int64"),
        "reason": cancels["reason"].astype(object),
    }, columns=list(UNMATCHED_CANCELLATION_COLUMNS)).reset_index(drop=True)
    fees = unapplied[unapplied["fact_kind"] == ORDER_FEE_FACT]
    fee_rows_per_order = per_order.groupby("order_id").size()
    unmatched_fees = pd.DataFrame({
        "order_id": fees["order_id"].astype(object),
        "amount": fees["seller_shipping_fee"].astype("Int64"),
        "rows": fees["order_id"].map(fee_rows_per_order).astype("int64"),
    }, columns=list(UNMATCHED_FEE_COLUMNS)).reset_index(drop=True)

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
                       unmatched_cancellations=unmatched_cancellations, unmatched_fees=unmatched_fees,
                       facts=facts, restatements=derived.restatements, adjustments=derived.adjustments)


_LINE_WORK_COLUMNS = ("order_id", "fact_key", "option_id", "product_name", "fact_date", "quantity", "gross", "coupon",
                      "commission", "original_gross", "original_quantity", "original_payment", "has_cancel",
                      "group_key")


def _plain_lines(sales_facts: pd.DataFrame) -> pd.DataFrame:
    """The working lines of '주문 정산' facts no cancellation restates: each its fact as it is (what
    ``derive_v2``'s records give such a fact, column by column)."""
    def integers(column: str) -> np.ndarray:
        return sales_facts[column].astype("int64").to_numpy()

    gross, coupon, quantity = integers("amount"), integers("coupon_discount"), integers("quantity")
    return pd.DataFrame({
        "order_id": sales_facts["order_id"].to_numpy(dtype=object),
        "fact_key": sales_facts["fact_key"].to_numpy(dtype=object),
        "option_id": sales_facts["option_id"].to_numpy(dtype=object),
        "product_name": sales_facts["product_name"].to_numpy(dtype=object),
        "fact_date": sales_facts["fact_date"].to_numpy(dtype=object),
        "quantity": quantity, "gross": gross, "coupon": coupon,
        "commission": sales_facts["commission"].fillna(0).astype("int64").to_numpy(),
        "original_gross": gross, "original_quantity": quantity, "original_payment": gross - coupon,
        "has_cancel": False, "group_key": sales_facts["group_key"].to_numpy(dtype=object),
    }, columns=list(_LINE_WORK_COLUMNS))


def derive_v2(facts: pd.DataFrame, *, account_id: str) -> Derived:
    """The Jet v2 order lines of some orders from all their facts, whatever run collected each.

    - One line per '주문 정산' fact: ``line_key`` = 옵션ID:매출인식일 and ``sales_date`` = that
      매출인식일, its own row's (an order+option settled on two days is two lines; a later row
      never moves an earlier line).
    - Cancellations restate the lines of their order and option (``_restate_cancellations``);
      what they cannot restate is kept in ``adjustments`` ('no_original' / 'exceeds_original',
      ``amount`` = the payment not applied, negative), so per account Σ payment + Σ
      adjustments = Σ '주문 정산' − Σ '주문 정산취소' payments.
    - Fees: ``_spread_by_option``: each fee row's net fee over the lines of its own 옵션ID (the
      order's lines where the row names none) by their *original* 판매액 (docs/decisions.md, "Jet
      fee spreading"); an order with fees but no line keeps its fee in ``adjustments``
      ('fee_without_line').
    """
    lines_out, restated, adjusted = [], [], []
    sales_facts = facts[facts["fact_kind"] == SETTLEMENT_FACT]
    cancel_facts = facts[facts["fact_kind"] == CANCELLATION_FACT]
    fee_facts = facts[facts["fact_kind"] == ORDER_FEE_FACT]
    order_fees = fee_facts.groupby("order_id")["amount"].sum()

    def records(frame: pd.DataFrame) -> dict[tuple, list[dict]]:
        out: dict[tuple, list[dict]] = {}
        columns = list(frame.columns)  # plain values column by column: to_dict('records') boxes each cell
        for r in (dict(zip(columns, values, strict=True))
                  for values in zip(*(frame[c].tolist() for c in columns), strict=True)):
            out.setdefault((r["order_id"], r["option_id"]), []).append(
                {**r, "gross": int(r["amount"]), "coupon": int(r["coupon_discount"]),
                 "commission": int(0 if pd.isna(r["commission"]) else r["commission"]), "quantity": int(r["quantity"]),
                 "original_gross": int(r["amount"]), "original_quantity": int(r["quantity"]),
                 "original_payment": int(r["amount"]) - int(r["coupon_discount"])})
        return out

    # Only the lines of an order+option with a cancellation are restated one by one; every other line
    # is its fact as it is, taken column by column (most of a large extract: one order in 25 is cancelled).
    cancelled = pd.MultiIndex.from_arrays([cancel_facts["order_id"], cancel_facts["option_id"]])
    touched = pd.MultiIndex.from_arrays([sales_facts["order_id"], sales_facts["option_id"]]).isin(cancelled)
    plain = _plain_lines(sales_facts[~touched])
    sales_by_key, cancels_by_key = records(sales_facts[touched]), records(cancel_facts)
    for key in sorted(set(sales_by_key) | set(cancels_by_key)):
        lines = sales_by_key.get(key, [])
        applications, unapplied = _restate_cancellations(lines, cancels_by_key.get(key, []))
        for line, cancel, quantity, payment in applications:
            restated.append({"group_key": line["group_key"], "order_id": line["order_id"],
                             "line_key": line["fact_key"], "fact_kind": CANCELLATION_FACT,
                             "fact_key": cancel["fact_key"], "quantity": quantity, "amount": payment})
            line["has_cancel"] = True
        for cancel, reason, quantity, payment in unapplied:
            adjusted.append({"group_key": cancel["group_key"], "fact_kind": CANCELLATION_FACT,
                             "order_id": cancel["order_id"], "fact_key": cancel["fact_key"], "reason": reason,
                             "fact_date": cancel["fact_date"], "document": cancel["document"],
                             "option_id": cancel["option_id"], "quantity": -quantity, "amount": -payment,
                             "seller_shipping_fee": 0})
        lines_out.extend(lines)
    restated_lines = pd.DataFrame(lines_out, columns=list(_LINE_WORK_COLUMNS))
    out = pd.concat([part for part in (plain, restated_lines) if len(part)] or [restated_lines], ignore_index=True)
    out = out.sort_values(["order_id", "fact_key"], kind="stable").reset_index(drop=True)
    payment = out["gross"] - out["coupon"]
    cancelled_payment = out["original_payment"] - payment
    has_cancel = out["has_cancel"].fillna(False).astype(bool)
    order_lines = _order_lines({
        "channel": JET,
        "account_id": account_id,
        "order_id": out["order_id"],            # 주문ID
        "line_key": out["fact_key"],            # 옵션ID:매출인식일 of its '주문 정산' row
        "option_id": out["option_id"],
        "product_name": out["product_name"],
        "sales_date": out["fact_date"],         # 매출인식일 of the original
        "quantity": out["quantity"],
        "gross_amount": out["gross"],
        "coupon_discount": out["coupon"],
        "payment_amount": payment,
        "seller_shipping_fee": _zeros(len(out)),
        "collected_commission": out["commission"],
        "is_cancelled": (has_cancel & (out["quantity"] == 0) & (out["gross"] == 0) & (payment == 0)).astype(bool),
        "source": "jet_v2",
        "cancelled_quantity": out["original_quantity"] - out["quantity"],
        "cancelled_amount": cancelled_payment,
    })
    has_line = order_fees.index.isin(order_lines["order_id"])
    order_lines["seller_shipping_fee"] = _spread_by_option(
        fee_facts[fee_facts["order_id"].isin(order_lines["order_id"])],
        order_lines.assign(gross_amount=out["original_gross"]))
    order_lines["group_key"] = out["group_key"].astype(object)
    for order_id, fee in order_fees[~has_line].items():
        first = fee_facts[fee_facts["order_id"] == order_id].sort_values("fact_date").iloc[0]
        adjusted.append({"group_key": order_id, "fact_kind": ORDER_FEE_FACT, "order_id": order_id,
                         "fact_key": "order", "reason": "fee_without_line", "fact_date": first["fact_date"],
                         "document": WAREHOUSING_SHIPPING, "option_id": None, "quantity": 0, "amount": 0,
                         "seller_shipping_fee": int(fee)})
    return Derived(order_lines,
                   typed(pd.DataFrame(restated), RESTATEMENT_COLUMNS, ("quantity", "amount")),
                   typed(pd.DataFrame(adjusted), ADJUSTMENT_COLUMNS, ("quantity", "amount", "seller_shipping_fee")))


def order_fee_totals(warehousing_shipping: pd.DataFrame) -> pd.Series:
    """Each order's net fee (입출고비 + 배송비, reversals subtracted) from WAREHOUSING_SHIPPING, by 주문ID.

    The quality suite checks that the fee spread over an order's lines sums to this.
    """
    rows = _parse_warehousing_shipping(warehousing_shipping)
    rows = rows[rows["order_id"] != ""]
    return rows.groupby("order_id")["fee"].sum().astype("Int64")
