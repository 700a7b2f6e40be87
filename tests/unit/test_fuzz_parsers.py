"""Bad-input fuzzing (Hypothesis) of the export parsers and the channel transforms.

Every generated input must either give rows the warehouse accepts (integer won, no
missing amount, real dates, one row per key) or be refused with the project's own
``CollectionError`` (``export_format_changed`` and friends) whose message names what is
wrong. Any other exception escaping is a bug. Inputs: .xlsx exports with random cells
and types, blank, title and 합계 rows, duplicated, renamed and shuffled headers, huge
numbers, Hangul/Latin/emoji text; the Jet v1 page rows and v2 reports; CP949 CSV and
random bytes where an .xlsx is expected.

``COUPANG_FUZZ_EXAMPLES`` sets the examples per test (default 60, a few seconds each);
the terminal summary reports how many inputs were tried, parsed and refused. With ``CI``
set, Hypothesis runs its derandomised CI profile.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coupang_sales.errors import CollectionError
from coupang_sales.exports import read_table
from coupang_sales.jet import policy as jet
from coupang_sales.model import MONEY_COLUMNS, ORDER_LINE_COLUMNS
from coupang_sales.rocket import policy as rocket

EXAMPLES = int(os.environ.get("COUPANG_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
# test name -> Counter(parsed=..., refused=...); printed by tests/unit/conftest.py
FUZZ_COUNTS: dict[str, Counter] = {}
WORK = Path(tempfile.mkdtemp(prefix="coupang-fuzz-"))

# --- cells ---------------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
MIXED = st.sampled_from(["보리차 1L", "Barley 차", "상품🙂", "  SKU-1 ", "합계", "소계", "-", "", " ", "N/A", "#REF!",
                         "=1+1", "1,234", "１２３", "1.5", "-0", "2026-01-05", "2026.01.05.", "20260105",
                         "발주", "반출"])
NUMBER = st.one_of(st.integers(-10, 10**6), st.integers(-(10**30), 10**30),
                   st.sampled_from([2**53 + 1, 2**63, -(2**63)]),
                   st.floats(allow_nan=False, allow_infinity=False, width=64))
DAY = st.dates(dt.date(1999, 1, 1), dt.date(2100, 12, 31))
CELL = st.one_of(st.none(), TEXT, MIXED, NUMBER, st.booleans(), DAY,
                 st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)))
WON = st.one_of(st.integers(0, 10**7), st.integers(0, 10**7).map("{:,}".format), st.just("0"), CELL)


def tally(name: str, parsed: bool) -> None:
    FUZZ_COUNTS.setdefault(name, Counter())["parsed" if parsed else "refused"] += 1


def refused_clearly(error: CollectionError) -> None:
    """A refusal must carry a category and say something concrete."""
    assert error.category and len(error.detail.strip()) > 10, error


def refused(name: str, error: CollectionError) -> None:
    """Check and count one refused input of the test ``name``."""
    refused_clearly(error)
    tally(name, parsed=False)


def refused_by_id_suite(name: str, lines: pd.DataFrame, ids: tuple[str, ...]) -> bool:
    """Whether a line lacks one of its ``ids``: the parser leaves that to the validate task's Great
    Expectations suite (``ids_present``), which must then refuse the lines (run here, for real)."""
    if not any((lines[column].isna() | (lines[column].astype(str) == "")).any() for column in ids):
        return False
    from coupang_sales.quality import Check, ids_present, run_checks

    assert not run_checks("fuzz", [Check("ids", lines, ids_present(ids))]).success
    tally(name, parsed=False)
    return True


def xlsx(rows: list[list[object]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    path = WORK / f"export_{len(list(WORK.iterdir()))}.xlsx"
    book.save(path)
    return path


def assert_warehouse_rows(lines: pd.DataFrame) -> None:
    """What sales.order_lines accepts: its columns (derived lines also name their group, ``group_key``,
    which the load does not write), integer won, no missing amount or date, one row per key."""
    assert [c for c in lines.columns if c != "group_key"] == list(ORDER_LINE_COLUMNS)
    for column in (*MONEY_COLUMNS, "quantity", "cancelled_quantity"):
        if column == "collected_commission":
            continue  # may be unknown (NULL) for Rocket
        values = lines[column]
        assert not pd.api.types.is_float_dtype(values.dtype), column
        assert not values.isna().any(), column
        assert all(isinstance(v, int) or hasattr(v, "__index__") for v in values.tolist()), column
    assert all(type(d) is dt.date for d in lines["sales_date"]), "sales_date holds dates only"
    assert not lines.duplicated(["order_id", "line_key"]).any(), "one row per (order_id, line_key)"
    assert all(isinstance(v, str) and v for v in lines["order_id"]), "order ids are non-empty text"


# --- Rocket: 입고상세내역 export -> lines -> policy ------------------------------------------


@st.composite
def detail_rows(draw) -> list[list[object]]:
    """A 입고상세내역 sheet: titles, a header (maybe changed), lines (plausible or random), blanks, 합계."""
    header = list(rocket.DETAIL_COLUMNS)
    change = draw(st.sampled_from(["none", "none", "none", "shuffle", "duplicate", "rename", "drop", "spaces",
                                   "extra"]))
    if change == "shuffle":
        header = draw(st.permutations(header))
    elif change == "duplicate":
        header.insert(draw(st.integers(0, len(header))), draw(st.sampled_from(rocket.DETAIL_COLUMNS)))
    elif change == "rename":
        header[draw(st.integers(0, len(header) - 1))] = draw(TEXT)
    elif change == "drop":
        del header[draw(st.integers(0, len(header) - 1))]
    elif change == "spaces":
        header = [f" {h[:1]} {h[1:]}\n" for h in header]
    elif change == "extra":
        header.append(draw(st.sampled_from(["비고", "", "수량 "])))
    invoices = draw(st.lists(st.sampled_from(["30000001", "30000002", "3000000X"]), min_size=1, max_size=2))

    def plausible() -> list[object]:
        cells = {"구분": draw(st.sampled_from(["발주", "반출", "발주 "])),
                 "번호": draw(st.sampled_from(["100", "101", "", 100])),
                 "SKU번호": draw(st.sampled_from(["555", "556", 555])), "SKU명": draw(st.one_of(MIXED, TEXT)),
                 "입고/반출일자": draw(st.one_of(DAY, st.sampled_from(["2026-01-04", "2026.01.04", "20260104"]))),
                 "물류센터": draw(st.sampled_from(["이천1", "Incheon 2", ""])), "세금타입": "과세",
                 "계산서번호": draw(st.sampled_from(invoices)), "지급일": ""}
        for name in rocket.DETAIL_MONEY:
            cells[name] = draw(WON)
        return [cells.get(h.strip().replace(" ", "").replace("\n", ""), cells.get(h)) for h in header]

    body = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["plausible", "plausible", "random", "blank"]))
        if kind == "plausible":
            body.append(plausible())
        elif kind == "random":
            body.append(draw(st.lists(CELL, min_size=0, max_size=len(header) + 2)))
        else:
            body.append([None] * len(header))
    titles = [[draw(st.one_of(TEXT, MIXED))] for _ in range(draw(st.integers(0, 2)))]
    footer = [["합계", *[None] * 11, draw(NUMBER)]] if draw(st.booleans()) else []
    return [*titles, header, *body, *footer]


# The 일반매입계정 invoices the generated lines may name (3000000X is missing, as a line may be).
DETAIL_INVOICES = rocket.parse_invoices([
    {"계산서번호": "30000001", "작성일자": "2026-01-05", "공급가액": "0", "부가가치세": "0", "지급예정금액": "0",
     "세금계산서 확정일": "2026-01-06", "발행유형": "역발행"},
    {"계산서번호": "30000002", "작성일자": "2026.01.06", "공급가액": "1,000", "부가가치세": "100",
     "지급예정금액": "1,100", "세금계산서 확정일": "", "발행유형": "역발행"}])


@FUZZ
@given(rows=detail_rows())
# A 발주 line without its 번호 (PO): parsed, and refused by the validate suite, not by the parser.
@example(rows=[list(rocket.DETAIL_COLUMNS),
               ["발주", "", "555", "보리차 1L", "2026-01-04", "이천1", "과세", 0, 0, 0, 0, 0, 0, 0, "30000001", ""]])
def test_rocket_receive_detail_export_parses_or_is_refused(rows):
    path = xlsx(rows)
    try:
        table = read_table(path, rocket.DETAIL_COLUMNS, source="입고상세내역 fuzz.xlsx")
        lines = rocket.parse_receive_detail(table.frame, source="입고상세내역 fuzz.xlsx")
        result = rocket.derive(rocket.facts(DETAIL_INVOICES, rocket.drop_duplicate_lines(lines).lines),
                               account_id="V1")
    except CollectionError as error:
        refused("rocket 입고상세내역", error)
        return
    finally:
        path.unlink()
    if refused_by_id_suite("rocket 입고상세내역", lines, ("invoice_no", "po_no", "sku_id")):
        return
    assert len(lines) == len(table.frame) and table.frame.shape[1] == len(rocket.DETAIL_COLUMNS)
    assert all(type(v) is dt.date for v in lines["moved_date"])
    assert_warehouse_rows(result.order_lines)
    tally("rocket 입고상세내역", parsed=True)


CLEAN_WON = st.one_of(st.integers(0, 10**9).map(str), st.integers(0, 10**9).map("{:,}".format))
CLEAN_INVOICE = st.fixed_dictionaries({
    "계산서번호": st.integers(10**7, 10**8 - 1).map(str),
    "작성일자": st.one_of(DAY.map(str), DAY.map("{:%Y.%m.%d}".format)),
    "공급가액": CLEAN_WON, "부가가치세": CLEAN_WON, "지급예정금액": CLEAN_WON,
    "세금계산서 확정일": st.one_of(st.just(""), DAY.map(str)),
    "발행유형": st.sampled_from(["역발행", "정발행"])})
MESSY_INVOICE = st.fixed_dictionaries({name: st.one_of(WON, CELL) for name in rocket.INVOICE_COLUMNS},
                                      optional={"비고": CELL})


@FUZZ
@given(rows=st.lists(st.one_of(CLEAN_INVOICE, CLEAN_INVOICE, MESSY_INVOICE), max_size=5))
def test_rocket_invoice_list_parses_or_is_refused(rows):
    rows = [{k: v if isinstance(v, str) else ("" if v is None else str(v)) for k, v in row.items()} for row in rows]
    try:
        invoices = rocket.parse_invoices(rows)
    except CollectionError as error:
        refused("rocket 일반매입계정", error)
        return
    assert all(type(d) is dt.date for d in invoices["written_date"])
    for column in ("supply_amount", "vat_amount", "payable_amount"):
        assert not pd.api.types.is_float_dtype(invoices[column].dtype) and not invoices[column].isna().any()
    assert invoices["invoice_no"].is_unique
    tally("rocket 일반매입계정", parsed=True)


# --- Jet ---------------------------------------------------------------------------------


CLEAN_V1 = st.fixed_dictionaries({
    "판매일": DAY.map(str), "옵션ID": st.sampled_from(["87001", "87002", " 87001"]),
    "등록상품명": st.one_of(MIXED, TEXT),
    "옵션명": st.one_of(MIXED, TEXT), "판매수량": st.integers(0, 999).map(str), "판매금액": CLEAN_WON})
MESSY_V1 = st.fixed_dictionaries({
    "판매일": st.one_of(DAY.map(str), CELL), "옵션ID": st.one_of(st.sampled_from(["87001", "87002", " 87001"]), CELL),
    "등록상품명": st.one_of(MIXED, TEXT), "옵션명": st.one_of(MIXED, TEXT), "판매수량": st.one_of(WON, CELL),
    "판매금액": st.one_of(WON, CELL)})


@FUZZ
@given(rows=st.lists(st.one_of(CLEAN_V1, CLEAN_V1, MESSY_V1), max_size=6))
def test_jet_v1_sales_rows_parse_or_are_refused(rows):
    frame = pd.DataFrame(rows, dtype=object) if rows else pd.DataFrame(columns=list(jet.V1_COLUMNS))
    try:
        lines = jet.transform_v1(frame, account_id="A1")
    except CollectionError as error:
        refused("jet v1 sales", error)
        return
    assert_warehouse_rows(lines)
    tally("jet v1 sales", parsed=True)


ORDER_IDS = st.sampled_from(["2100001", "2100002", "2100003"])
DEAL_TYPES = st.sampled_from([jet.ORDER_SETTLEMENT, jet.ORDER_SETTLEMENT, jet.ORDER_CANCELLATION, "기타", ""])
FEE_TYPES = st.sampled_from([*jet.ORDER_FEE_TYPES, "보관비", "반품비", ""])
SMALL_WON = st.one_of(st.integers(0, 50_000), st.integers(0, 50_000).map("{:,}".format), CELL)


@st.composite
def v2_reports(draw) -> tuple[list[list[object]], list[list[object]]]:
    category_header = list(jet.CATEGORY_TR_COLUMNS)
    if draw(st.integers(0, 5)) == 0:
        del category_header[draw(st.integers(0, len(category_header) - 1))]
    category = [category_header]
    for _ in range(draw(st.integers(0, 5))):
        cells = {"주문ID": draw(ORDER_IDS), "옵션ID": draw(st.sampled_from(["87001", "87002"])),
                 "거래유형": draw(DEAL_TYPES), "판매수량(B)": draw(st.one_of(st.integers(-3, 5), CELL)),
                 "판매액(A*B)": draw(SMALL_WON), "쿠팡지원할인(C)": draw(SMALL_WON),
                 "판매자할인쿠폰(D+E)": draw(SMALL_WON), "판매수수료": draw(SMALL_WON),
                 "판매수수료 VAT": draw(SMALL_WON), "매출인식일": draw(st.one_of(DAY, DAY.map(str), CELL)),
                 "등록상품명": draw(MIXED)}
        category.append([cells.get(h, draw(st.one_of(st.none(), MIXED))) for h in category_header])
    shipping = [list(jet.WAREHOUSING_SHIPPING_COLUMNS)]
    for _ in range(draw(st.integers(0, 5))):
        cells = {"주문ID": draw(ORDER_IDS), "거래유형": draw(FEE_TYPES), "발생비용(A)": draw(SMALL_WON),
                 "할인가(B)": draw(SMALL_WON), "추가비용": draw(SMALL_WON),
                 "매출인식일": draw(st.one_of(DAY, DAY.map(str), CELL))}
        shipping.append([cells.get(h, draw(st.one_of(st.none(), MIXED))) for h in jet.WAREHOUSING_SHIPPING_COLUMNS])
    return category, shipping


@FUZZ
@given(reports=v2_reports())
def test_jet_v2_reports_parse_or_are_refused(reports):
    category_path, shipping_path = xlsx(reports[0]), xlsx(reports[1])
    try:
        category = read_table(category_path, jet.CATEGORY_TR_REQUIRED, source="CATEGORY_TR.xlsx").frame
        shipping = read_table(shipping_path, jet.WAREHOUSING_SHIPPING_REQUIRED, source="WAREHOUSING_SHIPPING.xlsx")
        result = jet.transform_v2(category, shipping.frame, account_id="A2")
    except CollectionError as error:
        refused("jet v2 reports", error)
        return
    finally:
        category_path.unlink()
        shipping_path.unlink()
    assert_warehouse_rows(result.order_lines)
    fees = result.account_fees
    assert not pd.api.types.is_float_dtype(fees["amount"].dtype) and not fees["amount"].isna().any()
    tally("jet v2 reports", parsed=True)


# --- not an .xlsx at all ---------------------------------------------------------------------


KOREAN_CSV = st.lists(st.lists(st.one_of(st.sampled_from(["주문ID", "총단가", "계산서번호", "보리차", "반출"]),
                                         st.text(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
                                                 max_size=6), st.integers().map(str)),
                               min_size=1, max_size=6), min_size=1, max_size=5)


@FUZZ
@given(body=st.one_of(
    KOREAN_CSV.map(lambda rows: "\r\n".join(",".join(r) for r in rows).encode("cp949")),
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
))
def test_a_cp949_csv_or_random_bytes_instead_of_an_xlsx_is_refused(body):
    from coupang_sales.jet.wing import WingSession
    from coupang_sales.portal.settings import load_settings
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    path = WORK / "not_an_export.xlsx"
    path.write_bytes(body)
    with pytest.raises(CollectionError) as caught:
        read_table(path, rocket.DETAIL_COLUMNS, source="입고상세내역 fuzz.xlsx")
    refused_clearly(caught.value)
    for session_class in (SupplierHubSession, WingSession):
        session = object.__new__(session_class)  # the download check needs no browser, only settings
        session.settings = load_settings(session_class.settings_portal)
        with pytest.raises(CollectionError) as caught:
            session._check_xlsx(body, "입고상세내역 Excel of invoice 1")
        assert caught.value.category in ("export_format_changed", "portal_unavailable", "tax_invoice_pending")
        refused_clearly(caught.value)
    tally("not an .xlsx (CP949 CSV, bytes)", parsed=False)


def test_a_duplicated_required_header_is_refused_naming_it():
    path = xlsx([[*rocket.DETAIL_COLUMNS[:11], "총단가", *rocket.DETAIL_COLUMNS[11:]],
                 ["발주", "100", "555", "x", "2026-01-04", "이천1", "과세", 1, 1, 1, 0, 99, 1, 1, 0, "30000001", ""]])
    with pytest.raises(CollectionError, match="총단가") as caught:
        read_table(path, rocket.DETAIL_COLUMNS, source="입고상세내역 dup.xlsx")
    assert caught.value.category == "export_format_changed" and "2" in str(caught.value)

