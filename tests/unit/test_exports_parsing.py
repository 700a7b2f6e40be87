"""Shared export parsing: header matching by name and raw text cells to integer won."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import normalise_header, parse_won, select_columns


def won(*cells: object, blank_as_zero: bool = False) -> list[int]:
    parsed = parse_won(pd.Series(list(cells), dtype=object), column="금액", blank_as_zero=blank_as_zero)
    assert parsed.dtype == "Int64"
    return [int(v) for v in parsed]


def test_parse_won_strips_thousands_separators_and_spaces():
    assert won("12,345", "1,234,567", " 9 900 ", "0", "7\u00a0000") == [12_345, 1_234_567, 9_900, 0, 7_000]


def test_parse_won_keeps_a_leading_minus():
    assert won("-1,000", "-0", "\u22122,500") == [-1_000, 0, -2_500]


def test_parse_won_result_is_nullable_int_with_the_input_index():
    series = pd.Series(["1", "2"], index=[10, 11], name="판매액")
    parsed = parse_won(series, column="판매액")
    assert parsed.dtype == "Int64" and parsed.index.tolist() == [10, 11] and parsed.name == "판매액"


def test_parse_won_blank_is_zero_only_when_asked():
    assert won("", "-", None, np.nan, " ", blank_as_zero=True) == [0, 0, 0, 0, 0]
    with pytest.raises(ExportFormatError, match="row 2"):
        won("1", "")


@pytest.mark.parametrize("bad", ["12.5", "abc", "1,000원", "1-2", "--1", "1e3"])
def test_parse_won_rejects_non_integers_naming_column_row_and_value(bad):
    with pytest.raises(ExportFormatError) as caught:
        parse_won(pd.Series(["1", "2", bad]), column="CATEGORY_TR: 판매액(A*B)")
    message = str(caught.value)
    assert "판매액(A*B)" in message and "row 3" in message and repr(bad) in message
    assert caught.value.category == "export_format_changed"


def test_parse_won_accepts_whole_numbers_already_typed_but_never_fractions():
    assert won(29_700, np.int64(5), 12_345.0) == [29_700, 5, 12_345]
    with pytest.raises(ExportFormatError, match="12.5"):
        won(12.5)


def test_parse_won_is_exact_beyond_float_precision():
    assert won("9,007,199,254,740,993") == [9_007_199_254_740_993]  # 2**53 + 1, not representable as float


def test_parse_won_of_an_empty_column_is_empty_int64():
    parsed = parse_won(pd.Series([], dtype=object), column="x")
    assert parsed.dtype == "Int64" and parsed.empty


def test_normalise_header_ignores_all_whitespace():
    assert normalise_header(" 판매수수료 VAT ") == "판매수수료VAT"
    assert normalise_header("판매수수료\nVAT") == normalise_header("판매수수료\u00a0VAT") == "판매수수료VAT"
    assert normalise_header("\ufeff주문ID") == "주문ID"


def test_normalise_header_composes_decomposed_hangul():
    import unicodedata

    assert normalise_header(unicodedata.normalize("NFD", "옵션ID")) == "옵션ID"


def test_select_columns_renames_variants_orders_and_drops_extras():
    frame = pd.DataFrame([["x", "1", "2"]], columns=["비고", " 판매수수료VAT", "주문 ID"])
    selected = select_columns(frame, ["주문ID", "판매수수료 VAT"], source="CATEGORY_TR")
    assert selected.columns.tolist() == ["주문ID", "판매수수료 VAT"]
    assert selected.iloc[0].tolist() == ["2", "1"]


def test_select_columns_missing_names_every_column_and_the_report():
    frame = pd.DataFrame(columns=["주문ID"])
    with pytest.raises(ExportFormatError) as caught:
        select_columns(frame, ["주문ID", "옵션ID", "판매액(A*B)"], source="CATEGORY_TR")
    message = str(caught.value)
    assert "옵션ID" in message and "판매액(A*B)" in message and "CATEGORY_TR" in message


def test_select_columns_ambiguous_header_fails():
    frame = pd.DataFrame([["1", "2"]], columns=["주문ID", "주문 ID"])
    with pytest.raises(ExportFormatError, match="2 times"):
        select_columns(frame, ["주문ID"], source="r")


def test_select_columns_duplicated_unwanted_header_is_harmless():
    frame = pd.DataFrame([["1", "a", "b"]], columns=["주문ID", "비고", "비고"])
    assert select_columns(frame, ["주문ID"], source="r").to_dict("records") == [{"주문ID": "1"}]


def test_select_columns_optional_columns_only_when_present():
    frame = pd.DataFrame([["1", "보리차"]], columns=["주문ID", "상품 명"])
    selected = select_columns(frame, ["주문ID"], source="r", optional=["상품명", "옵션명"])
    assert selected.columns.tolist() == ["주문ID", "상품명"]


def test_a_repeated_value_is_judged_by_its_type_too():
    """Conversions are cached per distinct cell; True equals 1 as a dict key but is no number."""
    with pytest.raises(ExportFormatError, match="row 2: True"):
        parse_won(pd.Series([1, True], dtype=object), column="수량")
    assert parse_won(pd.Series(["1,000", 1.0, 1, "1,000"], dtype=object), column="c").tolist() == [1000, 1, 1, 1000]


def test_a_nan_in_an_object_column_never_reaches_copy_as_null():
    from coupang_sales.warehouse import _copy_chunks

    with pytest.raises(TypeError, match="float"):
        list(_copy_chunks(pd.DataFrame({"amount": pd.Series([1, float("nan")], dtype=object)}), ("amount",)))
    text = pd.DataFrame({"name": pd.Series(["a\tb", None], dtype="str")})
    assert b"".join(_copy_chunks(text, ("name",))) == b"a\\tb\n\\N\n"


def test_a_column_typed_in_arrow_gives_what_the_cell_by_cell_reader_gives():
    # All text of the usual spelling: typed column-wise in Arrow. One odd cell (a U+2212 minus, a
    # non-breaking space, a blank) sends the whole column to the cell-by-cell reader: same numbers.
    usual = ["12,345", "-1,000", "+7", " 9 900 ", "000123", "123456789012345678"]
    assert won(*usual) == [12_345, -1_000, 7, 9_900, 123, 123_456_789_012_345_678]
    assert won(*usual, "\u22122,500", "7\u00a0000") == [12_345, -1_000, 7, 9_900, 123, 123_456_789_012_345_678,
                                                       -2_500, 7_000]
    assert won(*usual, "", blank_as_zero=True)[-1] == 0
    with pytest.raises(ExportFormatError, match="row 7"):
        won(*usual, "12.5")


def test_moments_typed_in_arrow_are_checked_as_real_moments():
    from coupang_sales.exports import parse_moments

    def moments(*cells):
        return parse_moments(pd.Series(list(cells), dtype=object), column="입고/반출시각", source="t").tolist()

    assert moments("2026/09/05 09:10:11", " 2026.01.05T23:59:59 ") == ["2026-09-05 09:10:11", "2026-01-05 23:59:59"]
    assert moments("2026/09/05 09:10:11", "2026/09/05 9:10") == ["2026-09-05 09:10:11", "2026-09-05 09:10:00"]
    for bad in ("2026-02-30 01:00:00", "2026-01-05 24:00:00"):  # Arrow's strptime would roll these over
        with pytest.raises(ExportFormatError, match="row 2"):
            moments("2026/09/05 09:10:11", bad)
