"""Coupang Rocket policy rules (PRODUCT.md §2.1), one test per rule."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from coupang_sales.errors import ExportFormatError
from coupang_sales.facts import Derived
from coupang_sales.rocket import policy as rocket

D = dt.date.fromisoformat


def invoice(no: str, written: str, payable: int) -> dict[str, str]:
    return {"계산서번호": no, "거래처명": "주식회사 예시상사", "작성일자": written, "공급가액": f"{payable:,}",
            "부가가치세": "0", "지급예정금액": f"{payable:,}", "세금계산서 확정일": written, "발행유형": "역발행"}


def line(no: str, kind: str, po: str, sku: str, qty: int, supply: int, tax: int, moved: str = "2026-01-03",
         center: str = "이천1") -> dict[str, str]:
    return {"구분": kind, "번호": po, "SKU번호": sku, "SKU명": f"상품 {sku}", "입고/반출일자": moved,
            "물류센터": center, "세금타입": "과세", "수량": str(qty), "단가": f"{supply + tax:,}",
            "공급가액": f"{supply:,}", "세액": f"{tax:,}",
            "총단가": f"{qty * (supply + tax):,}", "총공급가액": f"{qty * supply:,}", "총세액": f"{qty * tax:,}",
            "계산서번호": no, "지급일": "2026-02-10"}


def run(invoices: list[dict], lines: list[dict], account: str = "V1") -> Derived:
    """The order lines the typed rows give by themselves: their facts, derived (as a load derives them)."""
    typed_invoices = rocket.parse_invoices(invoices)
    typed_lines = rocket.parse_receive_detail(pd.DataFrame(lines), source="test")
    facts = rocket.facts(typed_invoices, rocket.drop_duplicate_lines(typed_lines).lines)
    return rocket.derive(facts, account_id=account)


def test_payment_amount_is_total_unit_price_chong_danga():
    out = run([invoice("300", "2026-01-05", 99_000)], [line("300", "발주", "PO1", "S1", 10, 9_000, 900)]).order_lines
    assert out["payment_amount"].tolist() == [99_000]  # 총단가 = 10 x (9,000 + 900)
    assert out["gross_amount"].tolist() == [99_000]
    assert out["coupon_discount"].tolist() == [0]


def test_sales_date_is_invoice_written_date_not_receipt_date():
    out = run([invoice("300", "2026-01-05", 9_900)],
              [line("300", "발주", "PO1", "S1", 1, 9_000, 900, moved="2026-01-02")]).order_lines
    assert out["sales_date"].tolist() == [D("2026-01-05")]


def test_order_id_is_po_number_and_option_id_is_sku():
    out = run([invoice("300", "2026-01-05", 9_900)], [line("300", "발주", "PO1", "S1", 1, 9_000, 900)]).order_lines
    assert out.loc[0, "order_id"] == "PO1" and out.loc[0, "option_id"] == "S1"
    assert out.loc[0, "source"] == "rocket" and pd.isna(out.loc[0, "collected_commission"])


def test_paid_jan5_cancelled_jan6_restates_jan5_to_zero():
    """The seed's own example: paid 5 January, cancelled 6 January -> 5 January amount 0."""
    out = run(
        [invoice("300", "2026-01-05", 99_000), invoice("301", "2026-01-06", -99_000)],
        [line("300", "발주", "PO1", "S1", 10, 9_000, 900),
         line("301", "반출", "PO1", "S1", -10, 9_000, 900, moved="2026-01-06")],
    )
    lines = out.order_lines
    assert len(lines) == 1, "a cancellation adds no line of its own"
    assert lines.loc[0, "sales_date"] == D("2026-01-05")
    assert lines.loc[0, "payment_amount"] == 0 and lines.loc[0, "quantity"] == 0
    assert bool(lines.loc[0, "is_cancelled"]) is True
    assert lines.loc[0, "cancelled_amount"] == 99_000
    assert out.unapplied().reset_index(drop=True).empty


def test_partial_return_reduces_the_original_line():
    out = run(
        [invoice("300", "2026-01-05", 99_000), invoice("301", "2026-01-06", -29_700)],
        [line("300", "발주", "PO1", "S1", 10, 9_000, 900),
         line("301", "반출", "PO1", "S1", -3, 9_000, 900, moved="2026-01-06")],
    ).order_lines
    assert lines_of(out) == [("PO1", D("2026-01-05"), 7, 69_300, False)]


def lines_of(frame: pd.DataFrame) -> list[tuple]:
    return [(r.order_id, r.sales_date, int(r.quantity), int(r.payment_amount), bool(r.is_cancelled))
            for r in frame.itertuples()]


def test_return_matches_only_same_po_and_sku():
    out = run(
        [invoice("300", "2026-01-05", 19_800), invoice("301", "2026-01-06", -9_900)],
        [line("300", "발주", "PO1", "S1", 1, 9_000, 900), line("300", "발주", "PO1", "S2", 1, 9_000, 900),
         line("301", "반출", "PO1", "S2", -1, 9_000, 900)],
    ).order_lines
    assert sorted((r.option_id, int(r.payment_amount)) for r in out.itertuples()) == [("S1", 9_900), ("S2", 0)]


def test_unmatched_return_is_kept_visible_not_dropped():
    out = run([invoice("301", "2026-01-06", -9_900)], [line("301", "반출", "PO9", "S9", -1, 9_000, 900)])
    assert out.order_lines.empty
    assert [(r.order_id, r.option_id, r.document, r.reason, r.quantity, r.amount)
            for r in out.unapplied().itertuples()] == [("PO9", "S9", "301", "no_original", -1, -9_900)]


def test_partial_return_across_receipts_at_different_unit_prices_takes_its_own_price_first():
    """Two receipts of one 발주번호/SKU at 1,000 and 2,000 won; a 반출 of 1 unit at 1,000 won.

    Taking quantity and money independently, newest first, left the 2,000-won receipt with
    quantity 0 and 1,000 won still paid, not cancelled. The 반출 takes its own price first."""
    out = run(
        [invoice("300", "2026-01-05", 2_000), invoice("301", "2026-01-06", 2_000),
         invoice("302", "2026-01-07", -1_000)],
        [line("300", "발주", "PO1", "S1", 2, 1_000, 0), line("301", "발주", "PO1", "S1", 1, 2_000, 0),
         line("302", "반출", "PO1", "S1", -1, 1_000, 0, moved="2026-01-07")],
    )
    assert sorted(lines_of(out.order_lines)) == [("PO1", D("2026-01-05"), 1, 1_000, False),
                                                 ("PO1", D("2026-01-06"), 1, 2_000, False)]
    assert out.adjustments.empty


def test_return_at_a_price_no_receipt_has_keeps_the_difference_as_an_adjustment():
    out = run(
        [invoice("300", "2026-01-05", 2_000), invoice("302", "2026-01-07", -1_100)],
        [line("300", "발주", "PO1", "S1", 2, 1_000, 0), line("302", "반출", "PO1", "S1", -1, 1_100, 0)],
    )
    assert lines_of(out.order_lines) == [("PO1", D("2026-01-05"), 1, 1_000, False)]
    assert [(r.reason, r.quantity, r.amount) for r in out.adjustments.itertuples()] == [("price_difference", 0, -100)]
    assert int(out.order_lines["payment_amount"].sum() + out.adjustments["amount"].sum()) == 2_000 - 1_100


def test_full_return_at_another_price_still_cancels_the_line():
    out = run(
        [invoice("300", "2026-01-05", 3_000), invoice("302", "2026-01-07", -2_900)],
        [line("300", "발주", "PO1", "S1", 3, 1_000, 0), line("302", "반출", "PO1", "S1", -2, 1_450, 0),
         line("302", "반출", "PO1", "S1", -1, 0, 0, center="평택")],
    )
    assert lines_of(out.order_lines) == [("PO1", D("2026-01-05"), 0, 0, True)]
    assert int(out.adjustments["amount"].sum()) == 3_000 - 2_900


def test_verbatim_duplicate_lines_are_removed_and_counted():
    typed = rocket.parse_receive_detail(pd.DataFrame([line("300", "발주", "PO1", "S1", 1, 9_000, 900)] * 2),
                                        source="test")
    deduped = rocket.drop_duplicate_lines(typed)
    assert len(deduped.lines) == 1 and deduped.duplicates_removed == 1


def test_numbers_as_text_with_thousands_separators_are_integer_won():
    out = run([invoice("300", "2026-01-05", 1_234_567)], [line("300", "발주", "PO1", "S1", 1, 1_122_334, 112_233)])
    assert out.order_lines["payment_amount"].dtype == "Int64"
    assert int(out.order_lines.loc[0, "payment_amount"]) == 1_234_567


def test_missing_required_column_names_it():
    raw = pd.DataFrame([line("300", "발주", "PO1", "S1", 1, 9_000, 900)]).drop(columns=["총단가"])
    with pytest.raises(ExportFormatError, match="총단가"):
        rocket.parse_receive_detail(raw, source="입고상세내역 300")


def test_unknown_line_kind_fails_loudly():
    raw = pd.DataFrame([line("300", "교환", "PO1", "S1", 1, 9_000, 900)])
    with pytest.raises(ExportFormatError, match="구분"):
        rocket.parse_receive_detail(raw, source="test")


def test_line_of_an_unlisted_invoice_fails():
    with pytest.raises(ExportFormatError, match="missing from 일반매입계정"):
        run([invoice("300", "2026-01-05", 9_900)], [line("999", "발주", "PO1", "S1", 1, 9_000, 900)])


@pytest.mark.parametrize("seed", range(40))
def test_returns_conserve_money_and_quantity_and_cancel_exactly_at_zero(seed):
    """Random purchases and returns over three invoices at several prices: per line, quantity 0
    ⇔ payment 0 ⇔ cancelled (once anything was returned); Σ payment + Σ adjustments = Σ 총단가
    and Σ quantity + Σ unmatched quantity = Σ 수량 of every collected line."""
    import random

    rng = random.Random(seed)
    invoices = {"300": "2026-01-05", "301": "2026-01-06", "302": "2026-01-07"}
    lines = []
    for _ in range(rng.randint(1, 25)):
        no, po, sku = rng.choice(list(invoices)), rng.choice(["PO1", "PO2"]), rng.choice(["S1", "S2"])
        kind = rng.choice(["발주", "발주", "반출"])
        qty = rng.randint(1, 6) * (-1 if kind == "반출" else 1)
        lines.append(line(no, kind, po, sku, qty, rng.choice([900, 1_000]), rng.choice([90, 100]),
                          moved=rng.choice(["2026-01-02", "2026-01-03"]), center=rng.choice(["이천1", "평택"])))
    if not any(x["구분"] == "발주" for x in lines):
        lines.append(line("300", "발주", "PO1", "S1", 1, 1_000, 100))
    lines = [dict(t) for t in dict.fromkeys(tuple(x.items()) for x in lines)]  # verbatim repeats are one line
    payable = {no: sum(int(x["총단가"].replace(",", "")) for x in lines if x["계산서번호"] == no) for no in invoices}
    result = run([invoice(no, day, payable[no]) for no, day in invoices.items()], lines)
    out = result.order_lines
    assert ((out["quantity"] == 0) == (out["payment_amount"] == 0)).all()
    assert (out["is_cancelled"] == ((out["quantity"] == 0) & (out["cancelled_quantity"] > 0))).all()
    assert (out["payment_amount"] >= 0).all() and (out["quantity"] >= 0).all()
    assert int(out["payment_amount"].sum() + result.adjustments["amount"].sum()) == sum(payable.values())
    assert int(out["quantity"].sum() + result.adjustments["quantity"].sum()) == sum(int(x["수량"]) for x in lines)
