"""Great Expectations suites for Coupang Jet: the raw Wing rows (v1 page, v2 reports) and the policy's output."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from coupang_sales.quality import INT_TYPES, Check, gx, ids_present

INTEGER_TEXT = r"^\s*[-+\u2212]?[\d,\s]+\s*$"  # whole numbers as the portal prints them ("12,345", "-1,000")


def _dates_between(frame: pd.DataFrame, column: str, first_day: dt.date, last_day: dt.date):
    """A derived datetime column and the expectation that it lies in [first_day, last_day]."""
    E = gx().expectations
    derived = f"{column}__as_date"
    frame[derived] = pd.to_datetime(frame[column].astype(str).str.strip().str.replace(".", "-", regex=False),
                                    errors="coerce", format="mixed")
    return [E.ExpectColumnValuesToNotBeNull(column=derived),
            E.ExpectColumnValuesToBeBetween(column=derived, min_value=dt.datetime.combine(first_day, dt.time()),
                                            max_value=dt.datetime.combine(last_day, dt.time()))]


def v1_raw_checks(rows: pd.DataFrame, *, first_day: dt.date, last_day: dt.date) -> list[Check]:
    """The 판매분석 rows: 옵션ID (vendorItemId) present and once per day, counts and amounts whole numbers,
    판매일 inside the window."""
    E = gx().expectations
    frame = rows.copy()
    for column in ("판매수량", "판매금액"):
        frame[f"{column}__text"] = frame[column].map(str)
    expectations = ids_present(["옵션ID"])
    expectations.append(E.ExpectCompoundColumnsToBeUnique(column_list=["판매일", "옵션ID"]))
    expectations += [E.ExpectColumnValuesToMatchRegex(column=f"{c}__text", regex=INTEGER_TEXT)
                     for c in ("판매수량", "판매금액")]
    expectations += _dates_between(frame, "판매일", first_day, last_day)
    return [Check("jet_v1_sales", frame, expectations)]


def v2_raw_checks(category_tr: pd.DataFrame, warehousing: pd.DataFrame, groups: list[dict],
                  files: dict[str, list[str]], *, first_day: dt.date, last_day: dt.date) -> list[Check]:
    """The v2 reports after the window filter: IDs present, amounts whole numbers, 매출인식일 inside the
    collected range; and no settlement group counted twice (one entry per key, one file per report and group)."""
    E = gx().expectations
    tr = category_tr.copy()
    for column in ("판매수량(B)", "판매액(A*B)", "판매수수료", "판매수수료 VAT"):
        tr[column] = tr[column].map(lambda v: "" if v is None else str(v))
    tr_expect = ids_present(["주문ID", "옵션ID"])
    tr_expect.append(E.ExpectColumnValuesToBeInSet(column="거래유형", value_set=["주문 정산", "주문 정산취소"]))
    tr_expect += [E.ExpectColumnValuesToMatchRegex(column=c, regex=INTEGER_TEXT)
                  for c in ("판매수량(B)", "판매액(A*B)", "판매수수료", "판매수수료 VAT")]
    tr_expect += _dates_between(tr, "매출인식일", first_day, last_day)
    ws = warehousing.copy()
    ws["발생비용(A)"] = ws["발생비용(A)"].map(lambda v: "" if v is None else str(v))
    ws_expect = [*ids_present(["주문ID"]), E.ExpectColumnValuesToNotBeNull(column="거래유형"),
                 E.ExpectColumnValuesToMatchRegex(column="발생비용(A)", regex=INTEGER_TEXT)]
    ws_expect += _dates_between(ws, "매출인식일", first_day, last_day)
    group_frame = pd.DataFrame({"settlement_group_key": [str(g.get("settlementGroupKey")) for g in groups]},
                               dtype=object)
    file_frame = pd.DataFrame([{"report": report, "settlement_group_key": name.split("__", 1)[1].removesuffix(".xlsx")}
                               for report, names in files.items() for name in names],
                              columns=["report", "settlement_group_key"], dtype=object)
    keys = group_frame["settlement_group_key"].tolist()
    return [
        Check("jet_v2_category_tr", tr, tr_expect),
        Check("jet_v2_warehousing_shipping", ws, ws_expect),
        Check("jet_v2_settlement_groups", group_frame, [
            E.ExpectColumnValuesToBeUnique(column="settlement_group_key"),
            E.ExpectColumnValuesToNotBeNull(column="settlement_group_key"),
        ]),
        Check("jet_v2_report_files", file_frame, [
            E.ExpectCompoundColumnsToBeUnique(column_list=["report", "settlement_group_key"]),
            E.ExpectColumnValuesToBeInSet(column="settlement_group_key", value_set=keys or [""]),
        ]),
    ]


def v1_policy_checks(lines: pd.DataFrame) -> list[Check]:
    """v1 policy: the option ID is the order ID, no coupons, no shipping fee, no commission."""
    E = gx().expectations
    return [Check("jet_v1_order_lines", lines, [
        E.ExpectColumnPairValuesToBeEqual(column_A="order_id", column_B="option_id"),
        E.ExpectColumnValuesToBeInSet(column="seller_shipping_fee", value_set=[0]),
        E.ExpectColumnValuesToBeInSet(column="coupon_discount", value_set=[0]),
        E.ExpectColumnPairValuesToBeEqual(column_A="payment_amount", column_B="gross_amount"),
        E.ExpectColumnValuesToBeNull(column="collected_commission"),
        *[E.ExpectColumnValuesToBeInTypeList(column=c, type_list=INT_TYPES)
          for c in ("quantity", "gross_amount", "payment_amount")],
    ])]


def v2_policy_checks(lines: pd.DataFrame, order_fees: pd.Series) -> list[Check]:
    """v2 policy: real order IDs, payment + coupon = gross, non-negative fees and commission
    (cancelled lines excepted), and each order's line fees summing to its fee."""
    E = gx().expectations
    frame = lines.assign(
        payment_plus_coupon=lines["payment_amount"] + lines["coupon_discount"],
        non_negative_unless_cancelled=lines["is_cancelled"]
        | ((lines["seller_shipping_fee"] >= 0) & (lines["collected_commission"].fillna(0) >= 0)),
    )
    per_order = lines.groupby("order_id", as_index=False)["seller_shipping_fee"].sum()
    per_order["order_fee"] = per_order["order_id"].map(order_fees).fillna(0).astype("Int64")
    return [
        Check("jet_v2_order_lines", frame, [
            *ids_present(["order_id", "option_id"]),
            E.ExpectColumnPairValuesToBeEqual(column_A="payment_plus_coupon", column_B="gross_amount"),
            E.ExpectColumnValuesToBeInSet(column="non_negative_unless_cancelled", value_set=[True]),
            E.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "line_key"]),
            *[E.ExpectColumnValuesToBeInTypeList(column=c, type_list=INT_TYPES)
              for c in ("quantity", "gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee")],
        ]),
        Check("jet_v2_order_fees", per_order, [
            E.ExpectColumnPairValuesToBeEqual(column_A="seller_shipping_fee", column_B="order_fee"),
        ]),
    ]
