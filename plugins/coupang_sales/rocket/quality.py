"""The Great Expectations suite for Coupang Rocket: what 일반매입계정 and 입고상세내역 must satisfy."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from coupang_sales.quality import INT_TYPES, Check, gx, ids_present


def rocket_checks(invoices: pd.DataFrame, lines: pd.DataFrame, *, first_day: dt.date,
                  last_day: dt.date) -> list[Check]:
    """Expectations over the typed, de-duplicated extract of one account.

    ``first_day``..``last_day`` is the range the invoices were listed for (작성일자).
    """
    E = gx().expectations
    line_frame = lines.assign(
        supply_plus_tax=lines["total_supply"] + lines["total_tax"],
        # 반출 (a return) carries negative amounts; a 발주 line never does.
        sign_matches_kind=((lines["kind"] == "반출") & (lines["total_price"] <= 0))
        | ((lines["kind"] == "발주") & (lines["total_price"] >= 0)),
    )
    line_checks = ids_present(("invoice_no", "po_no", "sku_id"))
    line_checks += [E.ExpectColumnValuesToBeInTypeList(column=c, type_list=INT_TYPES)
                    for c in ("qty", "total_price", "total_supply", "total_tax")]
    line_checks += [
        E.ExpectColumnPairValuesToBeEqual(column_A="total_price", column_B="supply_plus_tax"),
        E.ExpectColumnValuesToBeInSet(column="sign_matches_kind", value_set=[True]),
    ]
    # No uniqueness expectation over the lines: two real lines may be equal in every column the
    # portal gives (same PO, SKU, time, centre, quantity); the invoice's 지급예정금액 below decides
    # (``policy.drop_duplicate_lines``).

    totals = lines.groupby("invoice_no", as_index=False)["total_price"].sum()
    invoice_frame = invoices.merge(totals, on="invoice_no", how="left")
    invoice_frame["lines_total"] = invoice_frame["total_price"].fillna(0).astype("Int64")
    invoice_frame["written_date"] = pd.to_datetime(invoice_frame["written_date"])
    invoice_checks = [
        E.ExpectColumnValuesToNotBeNull(column="invoice_no"),
        E.ExpectColumnValuesToBeUnique(column="invoice_no"),
        E.ExpectColumnValuesToBeInTypeList(column="payable_amount", type_list=INT_TYPES),
        # Σ 총단가 of an invoice's lines = its 지급예정금액
        E.ExpectColumnPairValuesToBeEqual(column_A="lines_total", column_B="payable_amount"),
        E.ExpectColumnValuesToBeBetween(column="written_date",
                                        min_value=dt.datetime.combine(first_day, dt.time()),
                                        max_value=dt.datetime.combine(last_day, dt.time())),
    ]
    return [
        Check("rocket_receive_detail_lines", line_frame, line_checks),
        Check("rocket_invoices", invoice_frame.drop(columns=["total_price"]), invoice_checks),
    ]


def rocket_policy_checks(facts: pd.DataFrame, derived) -> list[Check]:
    """Expectations over the order lines derived from stored facts (``policy.derive``).

    - On every line: quantity 0 ⇔ payment 0 ⇔ cancelled (for lines that had any quantity and
      money), never below 0, and gross = payment (Rocket has no coupons).
    - Per group: Σ payment + Σ adjustments = Σ 총단가 of its facts (receipts and 반출).
    """
    E = gx().expectations
    lines = derived.order_lines
    original_payment = lines["payment_amount"] + lines["cancelled_amount"]
    original_quantity = lines["quantity"] + lines["cancelled_quantity"]
    priced = (original_payment > 0) & (original_quantity > 0)
    line_frame = lines.assign(
        zero_together=~priced | (((lines["quantity"] == 0) == (lines["payment_amount"] == 0))
                                 & ((lines["quantity"] == 0) == lines["is_cancelled"])),
    )
    paid = lines.groupby("group_key")["payment_amount"].sum()
    adjusted = derived.adjustments.groupby("group_key")["amount"].sum()
    collected = facts.groupby("group_key")["amount"].sum()
    groups = pd.DataFrame({"collected": collected.astype("Int64")})
    groups["paid_and_adjusted"] = (groups.index.map(paid).fillna(0).astype("int64")
                                   + groups.index.map(adjusted).fillna(0).astype("int64"))
    groups["paid_and_adjusted"] = groups["paid_and_adjusted"].astype("Int64")
    return [
        Check("rocket_order_lines", line_frame, [
            E.ExpectColumnValuesToBeInSet(column="zero_together", value_set=[True]),
            E.ExpectColumnValuesToBeBetween(column="payment_amount", min_value=0),
            E.ExpectColumnValuesToBeBetween(column="quantity", min_value=0),
            E.ExpectColumnPairValuesToBeEqual(column_A="gross_amount", column_B="payment_amount"),
            E.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_key"]),
        ]),
        Check("rocket_money_conservation", groups.reset_index(drop=True), [
            E.ExpectColumnPairValuesToBeEqual(column_A="paid_and_adjusted", column_B="collected"),
        ]),
    ]
