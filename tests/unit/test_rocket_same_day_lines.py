"""Two real 입고상세내역 lines of one day against a line repeated by the download (issue #28, item 2).

The time of day of 입고/반출시각 is kept, a verbatim repeat is counted once, two real lines twice,
and the invoice's 지급예정금액 decides: property tests over generated invoices with same-day lines.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from coupang_sales.rocket import policy as rocket
from coupang_sales.rocket.quality import rocket_checks

DAY = dt.date(2026, 1, 3)


def invoice(no: str, payable: int) -> dict[str, str]:
    return {"계산서번호": no, "작성일자": "2026-01-05", "공급가액": f"{payable:,}", "부가가치세": "0",
            "지급예정금액": f"{payable:,}", "세금계산서 확정일": "2026-01-06", "발행유형": "역발행"}


def line(no: str, po: str, sku: str, qty: int, price: int, moved: str, center: str = "이천1",
         kind: str = "발주") -> dict[str, str]:
    sign = -1 if kind == "반출" else 1
    return {"구분": kind, "번호": po, "SKU번호": sku, "SKU명": f"상품 {sku}", "입고/반출시각": moved,
            "물류센터": center, "세금타입": "면세", "수량": str(sign * qty), "단가": f"{price:,}",
            "공급가액": f"{price:,}", "세액": "0", "총단가": f"{sign * qty * price:,}",
            "총공급가액": f"{sign * qty * price:,}", "총세액": "0", "계산서번호": no, "지급일": "2026-03-06"}


def typed(lines: list[dict]) -> pd.DataFrame:
    return rocket.parse_receive_detail(pd.DataFrame(lines), source="test")


def test_the_time_of_day_is_kept_in_every_spelling_of_the_export_and_the_pages():
    spellings = ["2026/01/03 09:10:11", "2026-01-03 09:10:11", "2026-01-03T09:10:11", "2026.01.03. 9:10:11"]
    lines = typed([line("300", "PO1", "S1", 1, 1_000, moved) for moved in spellings])
    assert lines["moved_at"].tolist() == ["2026-01-03 09:10:11"] * 4
    assert lines["moved_date"].tolist() == [DAY] * 4


def test_two_real_same_day_receipts_both_count_and_a_verbatim_repeat_counts_once():
    real = [line("300", "PO1", "S1", 2, 5_000, "2026/01/03 09:10:11"),
            line("300", "PO1", "S1", 2, 5_000, "2026/01/03 14:02:40")]
    invoices = rocket.parse_invoices([invoice("300", 20_000)])
    deduped = rocket.drop_duplicate_lines(typed([*real, real[1]]), invoices)  # the download repeated one line
    assert deduped.duplicates_removed == 1 and len(deduped.lines) == 2
    result = rocket.derive(rocket.facts(invoices, deduped.lines), account_id="V1")
    # one order line (same key: 계산서번호:SKU번호:입고일자:물류센터) carrying both receipts
    assert result.order_lines["payment_amount"].tolist() == [20_000]
    assert result.order_lines["quantity"].tolist() == [4]


def test_same_second_lines_are_kept_when_the_invoice_amount_counts_both():
    same = line("300", "PO1", "S1", 1, 7_000, "2026/01/03 09:10:11")
    invoices = rocket.parse_invoices([invoice("300", 14_000)])
    deduped = rocket.drop_duplicate_lines(typed([same, same]), invoices)
    assert deduped.duplicates_removed == 0 and deduped.kept_repeats == 1 and len(deduped.lines) == 2
    # without the invoice to decide, a verbatim repeat is one line
    assert len(rocket.drop_duplicate_lines(typed([same, same])).lines) == 1


def test_the_quality_suite_passes_two_real_lines_equal_in_every_column():
    from coupang_sales.quality import run_checks

    same = line("300", "PO1", "S1", 1, 7_000, "2026/01/03 09:10:11")
    invoices = rocket.parse_invoices([invoice("300", 14_000)])
    lines = rocket.drop_duplicate_lines(typed([same, same]), invoices).lines
    result = run_checks("coupang_rocket", rocket_checks(invoices, lines, first_day=dt.date(2026, 1, 1),
                                                        last_day=dt.date(2026, 1, 31)))
    assert result.success, result.failures


def test_a_mismatch_names_the_invoice_its_amounts_and_its_lines():
    lines = typed([line("300", "PO1", "S1", 1, 7_000, "2026/01/03 09:10:11"),
                   line("300", "PO1", "S1", 1, 7_000, "2026/01/03 11:00:00")])
    invoices = rocket.parse_invoices([invoice("300", 21_000)])
    deduped = rocket.drop_duplicate_lines(lines, invoices)
    [message] = rocket.invoice_mismatches(invoices, deduped.lines)
    assert "invoice 300" in message and "21,000" in message and "14,000" in message
    assert "2026-01-03 09:10:11" in message and "2026-01-03 11:00:00" in message and "PO1" in message


# One generated line: PO, SKU, centre, quantity and unit price from small sets (so real lines often agree
# in every field but the time), and a time of day on the one day.
LINES = st.lists(st.tuples(st.sampled_from(["PO1", "PO2"]), st.sampled_from(["S1", "S2"]),
                           st.sampled_from(["이천1", "평택"]), st.integers(1, 3), st.sampled_from([1_000, 2_500]),
                           st.integers(0, 3), st.booleans()),
                 min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, database=None)
@given(real=LINES, repeats=st.lists(st.integers(0, 7), max_size=4), returns=st.booleans())
def test_generated_invoices_with_same_day_lines_load_their_invoice_amount(real, repeats, returns):
    """Whatever the same-day lines and the repeated ones: the invoice's lines add up to its 지급예정금액
    after de-duplication (nothing for the quality suite to refuse), and the facts carry exactly Σ 총단가
    of the real lines."""
    rows, seen = [], set()
    for po, sku, center, qty, price, hour, later in real:
        moved = f"2026/01/03 {9 + hour:02d}:{10 + 30 * later:02d}:11"
        if (po, sku, center, qty, price, moved) in seen:  # equal in every field: a repeat, not a real line
            continue
        seen.add((po, sku, center, qty, price, moved))
        rows.append(line("300", po, sku, qty, price, moved, center))
    if returns:  # a same-day 반출 of the first line, at another time
        first = rows[0]
        rows.append(line("300", first["번호"], first["SKU번호"], 1, int(first["단가"].replace(",", "")),
                         "2026/01/03 23:59:59", first["물류센터"], kind="반출"))
    payable = sum(int(r["총단가"].replace(",", "")) for r in rows)
    downloaded = rows + [rows[i % len(rows)] for i in repeats]  # overlapping downloads repeat lines verbatim
    invoices = rocket.parse_invoices([invoice("300", payable)])
    deduped = rocket.drop_duplicate_lines(typed(downloaded), invoices)
    assert len(deduped.lines) == len(rows)
    assert deduped.duplicates_removed == len(downloaded) - len(rows)
    assert int(deduped.lines["total_price"].sum()) == payable
    assert not rocket.invoice_mismatches(invoices, deduped.lines)
    facts = rocket.facts(invoices, deduped.lines)
    assert int(facts["amount"].sum()) == payable
