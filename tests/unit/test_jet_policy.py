"""Coupang Jet policy rules (PRODUCT.md §2.2 and its decisions), one test per rule."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from coupang_sales.errors import ExportFormatError
from coupang_sales.jet import policy as jet
from coupang_sales.model import ORDER_LINE_COLUMNS

D = dt.date.fromisoformat
ORDER, CANCEL = "주문 정산", "주문 정산취소"


def w(value: int) -> str:
    """Whole won as the reports print it: text with thousands separators ('-9,900')."""
    return f"{value:,}"


# ---------------------------------------------------------------- v1 sales page

def v1_row(option: str = "87001", date: str = "2026-01-05", qty: int = 3, amount: int = 29_700,
           product: str = "보리차", option_name: str = "1L x 12") -> dict[str, str]:
    return {"판매일": date, "옵션ID": option, "등록상품명": product, "옵션명": option_name,
            "판매수량": w(qty), "판매금액": w(amount)}


def v1(*rows: dict[str, str], account: str = "A1") -> pd.DataFrame:
    return jet.transform_v1(pd.DataFrame(list(rows), columns=list(jet.V1_COLUMNS)), account_id=account)


def test_v1_option_id_is_stored_as_order_id():
    out = v1(v1_row(option="87001"))
    assert out.loc[0, "order_id"] == "87001" and out.loc[0, "option_id"] == "87001"


def test_v1_payment_does_not_reflect_coupons():
    out = v1(v1_row(amount=29_700))
    row = out.iloc[0]
    assert (row.gross_amount, row.coupon_discount, row.payment_amount) == (29_700, 0, 29_700)


def test_v1_no_shipping_fee():
    out = v1(v1_row())
    assert out.loc[0, "seller_shipping_fee"] == 0
    assert pd.isna(out.loc[0, "collected_commission"])


def test_v1_sales_date_is_page_date_and_line_key_its_iso_text():
    out = v1(v1_row(date="2026.01.05"))
    assert out.loc[0, "sales_date"] == D("2026-01-05") and out.loc[0, "line_key"] == "2026-01-05"


def test_v1_same_option_and_day_are_summed_into_one_line():
    out = v1(v1_row(qty=1, amount=9_900), v1_row(qty=2, amount=19_800), v1_row(date="2026-01-06", qty=1, amount=9_900))
    assert [(r.line_key, int(r.quantity), int(r.payment_amount)) for r in out.itertuples()] == [
        ("2026-01-05", 3, 29_700), ("2026-01-06", 1, 9_900)]
    assert not out.duplicated(["order_id", "line_key"]).any()


def test_v1_product_name_is_product_and_option_name():
    assert v1(v1_row(product=" 보리차 ", option_name="1L x 12")).loc[0, "product_name"] == "보리차 1L x 12"
    assert v1(v1_row(product="보리차", option_name="")).loc[0, "product_name"] == "보리차"


def test_v1_nothing_is_cancelled():
    out = v1(v1_row())
    assert out.loc[0, "is_cancelled"] == False  # noqa: E712 - numpy bool
    assert (out.loc[0, "cancelled_quantity"], out.loc[0, "cancelled_amount"]) == (0, 0)


def test_v1_shape_and_types():
    out = v1(v1_row(), account="A9")
    assert tuple(out.columns) == ORDER_LINE_COLUMNS
    assert (out.loc[0, "channel"], out.loc[0, "account_id"], out.loc[0, "source"]) == ("coupang_jet", "A9", "jet_v1")
    assert isinstance(out.loc[0, "sales_date"], dt.date) and out["is_cancelled"].dtype == bool
    assert all(out[c].dtype == "Int64" for c in ("quantity", "gross_amount", "payment_amount", "collected_commission"))


def test_v1_blank_rows_are_skipped():
    blank = dict.fromkeys(jet.V1_COLUMNS, "")
    assert len(v1(v1_row(), blank)) == 1


def test_v1_empty_page_gives_no_lines():
    out = v1()
    assert out.empty and tuple(out.columns) == ORDER_LINE_COLUMNS


# ---------------------------------------------------------------- v2 settlement reports

def tr_row(order: str, option: str, *, kind: str = ORDER, qty: int = 1, price: int = 9_900, coupang: int = 0,
           instant: int = 0, download: int = 0, commission: int = 0, vat: int = 0, date: str = "2026-01-05",
           sign: int = 1) -> dict[str, str]:
    """One CATEGORY_TR row with every documented column; ``sign=-1`` prints amounts negative."""
    gross = price * qty
    return {
        "주문ID": order, "등록상품 ID": "P" + option, "옵션ID": option, "SKU ID": "S" + option, "카테고리ID": "7",
        "거래유형": kind, "정산유형": "일반", "판매가(A)": w(price), "판매수량(B)": w(sign * qty),
        "판매액(A*B)": w(sign * gross), "쿠팡지원할인(C)": w(sign * coupang),
        "매출금액(A*B-C)": w(sign * (gross - coupang)), "즉시할인쿠폰(D)": w(sign * instant),
        "다운로드쿠폰(E)": w(sign * download), "판매자할인쿠폰(D+E)": w(sign * (instant + download)),
        "정산대상액": w(sign * (gross - coupang - instant - download)), "판매수수료율(%,VAT별도)": "10.8",
        "판매수수료": w(sign * commission), "판매수수료 VAT": w(sign * vat), "매출인식일": date,
        "정산주기(종료일)": "2026-01-11",
    }


def cancel_row(order: str, option: str, **kwargs) -> dict[str, str]:
    return tr_row(order, option, kind=CANCEL, sign=-1, **{"date": "2026-01-06", **kwargs})


def ws_row(order: str, kind: str, cost: int, *, discount: int = 0, extra: int = 0, date: str = "2026-01-05",
           sign: int = 1) -> dict[str, str]:
    """One WAREHOUSING_SHIPPING row with every documented column."""
    return {
        "주문ID": order, "배송ID": "D" + order if order else "", "옵션ID": "", "SKU ID": "", "거래유형": kind,
        "개별포장 상품 사이즈": "소형", "물류센터": "이천1", "발생비용(A)": w(sign * cost),
        "할인가(B)": w(sign * discount), "추가비용": w(sign * extra), "주문일": "2026-01-04", "매출인식일": date,
        "정산주기(종료일)": "2026-01-11",
    }


def v2(tr_rows: list[dict], ws_rows: list[dict] = (), account: str = "A1") -> jet.JetV2Result:
    return jet.transform_v2(pd.DataFrame(list(tr_rows), columns=list(jet.CATEGORY_TR_COLUMNS)),
                            pd.DataFrame(list(ws_rows), columns=list(jet.WAREHOUSING_SHIPPING_COLUMNS)),
                            account_id=account)


def line(result: jet.JetV2Result, order: str, option: str) -> pd.Series:
    lines = result.order_lines
    match = lines[(lines["order_id"] == order) & (lines["option_id"] == option)]
    assert len(match) == 1
    return match.iloc[0]


def test_v2_payment_reflects_coupon_discounts():
    out = v2([tr_row("2100001", "87001", qty=3, price=9_900, coupang=300, instant=1_000, download=500)])
    row = line(out, "2100001", "87001")
    assert (row.gross_amount, row.coupon_discount, row.payment_amount) == (29_700, 1_800, 27_900)


def test_v2_collects_real_order_id():
    row = line(v2([tr_row("2100001", "87001")]), "2100001", "87001")
    assert row.order_id == "2100001" and row.option_id == "87001" and row.source == "jet_v2"


def test_v2_commission_is_fee_plus_vat():
    assert line(v2([tr_row("1", "A", commission=3_207, vat=320)]), "1", "A").collected_commission == 3_527


def test_v2_sales_date_is_recognition_date():
    assert line(v2([tr_row("1", "A", date="2026-01-05")]), "1", "A").sales_date == D("2026-01-05")


def test_v2_one_line_per_option_and_repeated_rows_summed():
    out = v2([tr_row("1", "A", qty=1), tr_row("1", "A", qty=2), tr_row("1", "B", qty=1)])
    assert sorted((r.line_key, int(r.quantity), int(r.gross_amount)) for r in out.order_lines.itertuples()) == [
        ("A:2026-01-05", 3, 29_700), ("B:2026-01-05", 1, 9_900)]


def test_v2_product_name_is_empty_without_a_name_column():
    assert line(v2([tr_row("1", "A")]), "1", "A").product_name == ""


def test_v2_product_name_taken_when_a_name_column_exists():
    frame = pd.DataFrame([{**tr_row("1", "A"), "등록상품명": "보리차", "옵션명": "1L"}])
    out = jet.transform_v2(frame, pd.DataFrame(columns=list(jet.WAREHOUSING_SHIPPING_COLUMNS)), account_id="A1")
    assert out.order_lines.loc[0, "product_name"] == "보리차 1L"


def test_v2_shape_and_types():
    out = v2([tr_row("1", "A")]).order_lines
    assert tuple(out.columns) == (*ORDER_LINE_COLUMNS, "group_key")
    assert isinstance(out.loc[0, "sales_date"], dt.date) and out["is_cancelled"].dtype == bool
    money = ("quantity", "gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee",
             "collected_commission", "cancelled_quantity", "cancelled_amount")
    assert all(out[c].dtype == "Int64" for c in money)
    assert all(isinstance(out.loc[0, c], str) for c in ("order_id", "line_key", "option_id"))


def test_v2_fee_is_cost_minus_discount_plus_extra():
    out = v2([tr_row("1", "A")], [ws_row("1", "배송비 정산", 3_000, discount=500, extra=100)])
    assert line(out, "1", "A").seller_shipping_fee == 2_600


def test_v2_warehousing_and_shipping_fees_add_up_per_order():
    out = v2([tr_row("1", "A")], [ws_row("1", "입출고비 정산", 650), ws_row("1", "배송비 정산", 2_500)])
    assert line(out, "1", "A").seller_shipping_fee == 3_150


def test_v2_fees_spread_over_lines_sum_exactly_to_order_fee():
    out = v2([tr_row("1", "A", price=19_800), tr_row("1", "B", price=10_000), tr_row("1", "C", price=9_900)],
             [ws_row("1", "입출고비 정산", 650), ws_row("1", "배송비 정산", 2_501)])
    shares = {r.option_id: int(r.seller_shipping_fee) for r in out.order_lines.itertuples()}
    assert sum(shares.values()) == 3_151
    # 3,151 x 19,800 / 39,700 = 1,571.53; x 10,000 / .. = 793.70; x 9,900 / .. = 785.77: floors sum
    # to 3,149, and the 2 won left go to the largest remainders, C (.77) and B (.70).
    assert shares == {"A": 1_571, "B": 794, "C": 786}


def test_v2_fee_spread_ties_go_to_the_smaller_line_key():
    out = v2([tr_row("1", "C"), tr_row("1", "A"), tr_row("1", "B")], [ws_row("1", "배송비 정산", 1_000)])
    shares = {r.option_id: int(r.seller_shipping_fee) for r in out.order_lines.itertuples()}
    assert shares == {"A": 334, "B": 333, "C": 333}


def test_v2_fee_spread_evenly_when_all_gross_is_zero():
    out = v2([tr_row("1", "A", price=0), tr_row("1", "B", price=0)], [ws_row("1", "배송비 정산", 5)])
    assert [int(v) for v in out.order_lines["seller_shipping_fee"]] == [3, 2]


def test_v2_fee_reversal_subtracts():
    out = v2([tr_row("1", "A")], [ws_row("1", "배송비 정산", 2_500), ws_row("1", "배송비 정산취소", 2_500, sign=-1),
                                  ws_row("1", "입출고비 정산", 650), ws_row("1", "입출고비 정산취소", 650)])
    assert line(out, "1", "A").seller_shipping_fee == 0


def test_v2_line_without_fee_has_zero_shipping_fee():
    out = v2([tr_row("1", "A"), tr_row("2", "A")], [ws_row("1", "배송비 정산", 2_500)])
    assert (line(out, "1", "A").seller_shipping_fee, line(out, "2", "A").seller_shipping_fee) == (2_500, 0)


def test_v2_unmatched_fee_is_kept():
    out = v2([tr_row("1", "A")], [ws_row("7", "배송비 정산", 2_500), ws_row("7", "입출고비 정산", 650)])
    assert out.unmatched_fees.to_dict("records") == [{"order_id": "7", "amount": 3_150, "rows": 2}]
    assert line(out, "1", "A").seller_shipping_fee == 0


def test_v2_account_level_fees_go_to_fee_table():
    out = v2([tr_row("1", "A")], [ws_row("", "보관비", 1_200), ws_row("", "보관비", 300),
                                  ws_row("", "보관비", 800, date="2026-01-06"),
                                  ws_row("", "보관비 정산취소", 100, date="2026-01-06")])
    fees = out.account_fees
    assert set(fees["channel"]) == {"coupang_jet"} and set(fees["account_id"]) == {"A1"}
    assert fees[["fee_date", "fee_type", "amount"]].to_dict("records") == [
        {"fee_date": D("2026-01-05"), "fee_type": "보관비", "amount": 1_500},
        {"fee_date": D("2026-01-06"), "fee_type": "보관비", "amount": 800},
        {"fee_date": D("2026-01-06"), "fee_type": "보관비 정산취소", "amount": -100},
    ]
    assert line(out, "1", "A").seller_shipping_fee == 0 and out.unmatched_fees.empty


def test_v2_cancellation_restates_original_date_to_zero():
    """Paid 5 January, cancelled 6 January -> the 5 January line becomes 0, no line of its own."""
    out = v2([tr_row("1", "A", qty=3, coupang=300, instant=1_000, commission=3_000, vat=300, date="2026-01-05"),
              cancel_row("1", "A", qty=3, coupang=300, instant=1_000, commission=3_000, vat=300, date="2026-01-06")])
    assert len(out.order_lines) == 1
    row = line(out, "1", "A")
    assert row.sales_date == D("2026-01-05")
    assert (row.quantity, row.gross_amount, row.coupon_discount, row.payment_amount, row.collected_commission) == (
        0, 0, 0, 0, 0)
    assert row.is_cancelled == True  # noqa: E712 - numpy bool
    assert (row.cancelled_quantity, row.cancelled_amount) == (3, 29_700 - 1_300)
    assert out.unmatched_cancellations.empty


def test_v2_cancellation_printed_positive_is_still_a_reversal():
    out = v2([tr_row("1", "A", qty=2), tr_row("1", "A", kind=CANCEL, qty=2, date="2026-01-06")])
    row = line(out, "1", "A")
    assert (row.quantity, row.payment_amount, bool(row.is_cancelled)) == (0, 0, True)


def test_v2_partial_cancellation_reduces_line():
    out = v2([tr_row("1", "A", qty=3, instant=300, commission=3_000, vat=300),
              cancel_row("1", "A", qty=1, instant=100, commission=1_000, vat=100)])
    row = line(out, "1", "A")
    assert (row.quantity, row.gross_amount, row.coupon_discount, row.payment_amount) == (2, 19_800, 200, 19_600)
    assert row.collected_commission == 2_200 and row.sales_date == D("2026-01-05")
    assert row.is_cancelled == False  # noqa: E712 - numpy bool
    assert (row.cancelled_quantity, row.cancelled_amount) == (1, 9_800)


def test_v2_cancellation_matches_only_same_order_and_option():
    out = v2([tr_row("1", "A"), tr_row("1", "B"), cancel_row("1", "B")])
    assert (line(out, "1", "A").payment_amount, line(out, "1", "B").payment_amount) == (9_900, 0)


def test_unmatched_cancellation_is_kept():
    out = v2([tr_row("1", "A"), cancel_row("9", "Z", qty=1, price=5_000)])
    assert list(out.order_lines["order_id"]) == ["1"]
    assert out.unmatched_cancellations.to_dict("records") == [{
        "order_id": "9", "option_id": "Z", "cancel_date": D("2026-01-06"), "quantity": 1, "payment_amount": 5_000,
        "reason": "no_original"}]


def test_v2_cancellation_beyond_original_is_clipped_and_kept():
    out = v2([tr_row("1", "A", qty=1), cancel_row("1", "A", qty=2)])
    row = line(out, "1", "A")
    assert (row.quantity, row.payment_amount, bool(row.is_cancelled)) == (0, 0, True)
    kept = out.unmatched_cancellations.to_dict("records")
    assert [(k["order_id"], k["quantity"], k["payment_amount"], k["reason"]) for k in kept] == [
        ("1", 1, 9_900, "exceeds_original")]


def test_v2_unknown_transaction_type_fails_loudly():
    with pytest.raises(ExportFormatError, match="거래유형"):
        v2([tr_row("1", "A", kind="반품 정산")])
    with pytest.raises(ExportFormatError, match="반품회수비"):
        v2([tr_row("1", "A")], [ws_row("1", "반품회수비 정산", 100)])


def test_v2_empty_reports_give_empty_results():
    out = v2([], [])
    assert out.order_lines.empty and tuple(out.order_lines.columns) == (*ORDER_LINE_COLUMNS, "group_key")
    assert out.account_fees.empty and out.unmatched_cancellations.empty and out.unmatched_fees.empty


# ---------------------------------------------------------------- parsing shared by both versions

def test_missing_column_names_it():
    with pytest.raises(ExportFormatError, match="판매금액") as caught:
        jet.transform_v1(pd.DataFrame([v1_row()]).drop(columns=["판매금액"]), account_id="A1")
    assert "Jet v1" in str(caught.value)
    with pytest.raises(ExportFormatError, match=r"판매수수료 VAT.*CATEGORY_TR|CATEGORY_TR.*판매수수료 VAT"):
        v2_frame = pd.DataFrame([tr_row("1", "A")]).drop(columns=["판매수수료 VAT"])
        jet.transform_v2(v2_frame, pd.DataFrame(columns=list(jet.WAREHOUSING_SHIPPING_COLUMNS)), account_id="A1")
    with pytest.raises(ExportFormatError, match="WAREHOUSING_SHIPPING"):
        jet.transform_v2(pd.DataFrame([tr_row("1", "A")]), pd.DataFrame(columns=["주문ID"]), account_id="A1")


def test_header_whitespace_tolerated():
    tr = pd.DataFrame([tr_row("1", "A", commission=1_000, vat=100)]).rename(
        columns={"판매수수료 VAT": "판매수수료VAT", "주문ID": " 주문 ID ", "판매액(A*B)": "판매액 (A*B)"})
    ws = pd.DataFrame([ws_row("1", "배송비 정산", 2_500)]).rename(columns={"발생비용(A)": "발생비용 (A)\n"})
    row = jet.transform_v2(tr, ws, account_id="A1").order_lines.iloc[0]
    assert (row.order_id, row.gross_amount, row.collected_commission, row.seller_shipping_fee) == ("1", 9_900, 1_100,
                                                                                                   2_500)
    v1_frame = pd.DataFrame([v1_row()]).rename(columns={"옵션ID": "옵션 ID", "판매금액": " 판매금액"})
    assert jet.transform_v1(v1_frame, account_id="A1").loc[0, "payment_amount"] == 29_700


def test_extra_columns_are_ignored():
    frame = pd.DataFrame([{**v1_row(), "비고": "anything", "판매금액(쿠폰적용)": "not a number"}])
    assert jet.transform_v1(frame, account_id="A1").loc[0, "payment_amount"] == 29_700


def test_money_never_float():
    with pytest.raises(ExportFormatError) as caught:
        v1(v1_row(), {**v1_row(option="2"), "판매금액": "12.5"})
    assert "판매금액" in str(caught.value) and "row 2" in str(caught.value) and "'12.5'" in str(caught.value)
    with pytest.raises(ExportFormatError, match="판매액"):
        v2([{**tr_row("1", "A"), "판매액(A*B)": "abc"}])
    out = v2([tr_row("1", "A", price=1_234_567, qty=7)]).order_lines
    assert out.loc[0, "gross_amount"] == 8_641_969 and out["gross_amount"].dtype == "Int64"


def test_blank_discount_is_zero_but_blank_amount_fails():
    row = {**tr_row("1", "A"), "쿠팡지원할인(C)": "", "판매자할인쿠폰(D+E)": "-"}
    assert line(v2([row]), "1", "A").coupon_discount == 0
    with pytest.raises(ExportFormatError, match="판매액"):
        v2([{**tr_row("1", "A"), "판매액(A*B)": ""}])


def test_blank_ids_fail():
    with pytest.raises(ExportFormatError, match="옵션ID"):
        v2([{**tr_row("1", "A"), "옵션ID": " "}])


# ---------------------------------------------------------------- restatement across days and lines

def test_v2_rows_of_one_order_and_option_on_two_days_are_two_lines_with_their_own_dates():
    """2 x 10,000 won on 1 and 3 January: one line per 매출인식일, neither dated by the other."""
    out = v2([tr_row("1", "A", price=10_000, date="2026-01-01"), tr_row("1", "A", price=10_000, date="2026-01-03")])
    assert sorted((r.line_key, r.sales_date, int(r.payment_amount)) for r in out.order_lines.itertuples()) == [
        ("A:2026-01-01", D("2026-01-01"), 10_000), ("A:2026-01-03", D("2026-01-03"), 10_000)]


def test_v2_cancellation_takes_the_newest_line_of_its_order_and_option_first():
    out = v2([tr_row("1", "A", price=10_000, date="2026-01-01"), tr_row("1", "A", price=10_000, date="2026-01-03"),
              cancel_row("1", "A", price=10_000, date="2026-01-04")])
    assert sorted((r.line_key, int(r.quantity), int(r.payment_amount), bool(r.is_cancelled))
                  for r in out.order_lines.itertuples()) == [("A:2026-01-01", 1, 10_000, False),
                                                             ("A:2026-01-03", 0, 0, True)]


def test_v2_fully_cancelled_line_keeps_its_fee_share():
    """Cancelling line B of a two-line order does not move B's share of the order's fee onto A
    (the fee is spread by the lines' original 판매액, docs/decisions.md)."""
    out = v2([tr_row("1", "A", price=10_000), tr_row("1", "B", price=10_000), cancel_row("1", "B", price=10_000)],
             [ws_row("1", "배송비 정산", 3_000)])
    assert (line(out, "1", "A").seller_shipping_fee, line(out, "1", "B").seller_shipping_fee) == (1_500, 1_500)
    assert bool(line(out, "1", "B").is_cancelled)


def test_v2_partially_cancelled_line_keeps_its_fee_share_and_a_fee_reversal_reduces_every_share():
    out = v2([tr_row("1", "A", qty=2, price=10_000), tr_row("1", "B", price=20_000),
              cancel_row("1", "A", qty=1, price=10_000)],
             [ws_row("1", "배송비 정산", 3_000), ws_row("1", "배송비 정산취소", 1_000, sign=-1)])
    assert (line(out, "1", "A").seller_shipping_fee, line(out, "1", "B").seller_shipping_fee) == (1_000, 1_000)


def test_v2_money_is_conserved_with_cancellations_and_adjustments():
    out = v2([tr_row("1", "A", qty=1, price=9_000, instant=500), cancel_row("1", "A", qty=2, price=9_000, instant=500),
              cancel_row("2", "A", qty=1, price=7_000)])
    collected = (9_000 - 500) - (18_000 - 500) - 7_000  # coupons are per row
    assert int(out.order_lines["payment_amount"].sum() + out.adjustments["amount"].sum()) == collected


def _vi_item(option_id: str, units: int, gmv: int, kind: str | None = "RFM") -> dict:
    details = {"vendorItemId": option_id, "productName": "보리차", "itemName": f"옵션 {option_id}"}
    if kind is not None:
        details["registrationType"] = kind
    return {"vendorItemDetails": details,
            "businessInsightsMetricsResponse": {"totalUnitsSold": units, "totalGmv": gmv}}


def test_v1_zero_sale_options_and_other_registration_types_make_no_row():
    from coupang_sales.jet import v1

    staged = {"amount_field": "totalGmv", "registration_types": ["NORMAL", "RFM"],
              "kept_registration_types": ["RFM"], "days": [{"date": "2026-02-02", "items": [
                  _vi_item("87001", 2, 19_800), _vi_item("87002", 0, 0), _vi_item("97001", 1, 5_000, "NORMAL"),
                  _vi_item("87003", 0, "0")]}]}
    rows = v1.sales_rows(staged)
    assert list(rows["옵션ID"]) == ["87001"] and list(rows["판매금액"]) == [19_800]
    # asked for RFM only (the default), an item without registrationType is RFM's
    assert len(v1.sales_rows({"amount_field": "totalGmv", "days": [{"date": "2026-02-02", "items": [
        _vi_item("87001", 1, 9_900, None)]}]})) == 1
    # asked for both, an item that does not say which cannot be told apart: nothing is loaded
    with pytest.raises(ExportFormatError, match="registrationType"):
        v1.sales_rows({**staged, "days": [{"date": "2026-02-02", "items": [_vi_item("87001", 1, 9_900, None)]}]})
