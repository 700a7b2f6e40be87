"""Wing's v2 settlement reports as files: every sheet, header rows found by name, the two-row header, typed rows.

The layouts are REAL-PORTALS.md §4's: CATEGORY_TR has its header in row 2 of sheet
'주문내역, 판매수수료'; WAREHOUSING_SHIPPING has two sheets (입출고비, 배송비), a summary in rows
3-4 and a two-row header in rows 7-8 (row 8 names the columns under a merged row-7 heading).
Nothing here trusts those positions: the header is the row (or pair of rows) within the first
``HEADER_SEARCH_ROWS`` rows of each sheet that holds every required name, and columns are
taken by name. The reading functions of ``python -m coupang_sales.check_export`` live here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import SUMMARY_LABELS, _cell_text, cell_text, normalise_header, parse_dates, parse_won

CATEGORY_TR = "CATEGORY_TR"
WAREHOUSING_SHIPPING = "WAREHOUSING_SHIPPING"
HEADER_SEARCH_ROWS = 20  # the header is looked for in the first rows of each sheet

# 거래유형 values (compared with whitespace removed).
ORDER_SETTLEMENT = "주문 정산"
ORDER_CANCELLATION = "주문 정산취소"
ORDER_FEE_TYPES = ("입출고비 정산", "배송비 정산", "입출고비 정산취소", "배송비 정산취소")
CANCELLATION_SUFFIX = "취소"

# What is read of each report: required names must be in the header of every sheet; optional
# ones are taken where present (추가비용 is missing from some files, 단품 columns from most).
CATEGORY_TR_REQUIRED = ("주문ID", "옵션ID", "거래유형", "판매수량(B)", "판매액(A*B)", "쿠팡지원할인(C)",
                        "판매자할인쿠폰(D+E)", "판매수수료", "판매수수료 VAT", "매출인식일")
CATEGORY_TR_OPTIONAL = ("등록상품명", "상품명", "옵션명", "정산유형", "정산주기(종료일)", "판매가(A)",
                        "매출금액(A*B-C)", "즉시할인쿠폰(D)", "다운로드쿠폰(E)", "정산대상액", "SKU ID", "등록상품 ID")
WAREHOUSING_SHIPPING_REQUIRED = ("주문ID", "거래유형", "발생비용(A)", "할인가(B)", "매출인식일")
WAREHOUSING_SHIPPING_OPTIONAL = ("추가비용", "옵션ID", "등록상품명", "옵션명", "배송ID", "정산유형", "정산주기(종료일)",
                                 "할인적용가(A-B)", "판매수량", "주문일")
# The amounts whose sign a 정산취소 row may print either way.
CATEGORY_TR_AMOUNTS = ("판매수량(B)", "판매액(A*B)", "쿠팡지원할인(C)", "매출금액(A*B-C)", "즉시할인쿠폰(D)",
                       "다운로드쿠폰(E)", "판매자할인쿠폰(D+E)", "정산대상액", "판매수수료", "판매수수료 VAT")
WAREHOUSING_SHIPPING_AMOUNTS = ("판매수량", "발생비용(A)", "할인가(B)", "할인적용가(A-B)", "추가비용")
SOURCE_COLUMNS = ("_file", "_sheet", "_row")  # where each row was read: file name, sheet, 1-based row

# What the typed rows below read of each report's frame (a staged frame may be read for these only).
TYPED_READS = {
    CATEGORY_TR: (*CATEGORY_TR_REQUIRED, "등록상품명", "상품명", "옵션명", *SOURCE_COLUMNS),
    WAREHOUSING_SHIPPING: (*WAREHOUSING_SHIPPING_REQUIRED, "추가비용", "옵션ID", "등록상품명", "옵션명",
                           *SOURCE_COLUMNS),
}

LAYOUTS = {
    CATEGORY_TR: (CATEGORY_TR_REQUIRED, CATEGORY_TR_OPTIONAL),
    WAREHOUSING_SHIPPING: (WAREHOUSING_SHIPPING_REQUIRED, WAREHOUSING_SHIPPING_OPTIONAL),
}


@dataclass
class Report:
    """A report's data rows over all its sheets: raw text cells under canonical names, plus SOURCE_COLUMNS."""

    frame: pd.DataFrame
    sheets: dict[str, int]  # sheet name -> 1-based row of its (last) header row


def _find_header(rows: list[list], required: Sequence[str], optional: Sequence[str], where: str
                 ) -> tuple[int, list[str]]:
    """(index of the first data row, the column names) of one sheet.

    The header is a row holding every required name, or a pair of rows that does once merged
    (each column named by the lower row where it has a name, else by the upper: the upper row's
    merged headings span sub-columns the lower row names).
    """
    best: list[str] = list(required)
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        upper = [normalise_header(_cell_text(c)) for c in row]
        candidates = [(i + 1, upper)]
        if i + 1 < len(rows):
            lower = [normalise_header(_cell_text(c)) for c in rows[i + 1]]
            lower += [""] * (len(upper) - len(lower))
            merged = [low or up for up, low in zip(upper, lower, strict=False)]
            candidates.append((i + 2, merged))
        for data_at, names in candidates:
            missing = [n for n in required if normalise_header(n) not in names]
            if not missing:
                repeated = [n for n in (*required, *optional) if names.count(normalise_header(n)) > 1]
                if repeated:
                    raise ExportFormatError(f"{where}: the header in row {data_at} has the column(s) "
                                            + ", ".join(f"{n!r} {names.count(normalise_header(n))} times"
                                                        for n in repeated))
                return data_at, names
            if len(missing) < len(best):
                best = missing
    raise ExportFormatError(f"{where}: no header row with the columns {best} in the first "
                            f"{min(len(rows), HEADER_SEARCH_ROWS)} rows")


def read_report(path: Path, report_type: str) -> Report:
    """Every sheet of a downloaded report; an empty sheet is skipped, any other must have the header.

    Blank rows and 합계 rows are skipped; every other row is kept as text under its header name,
    with the file, sheet and row it came from. ExportFormatError names the file, sheet and
    columns when the layout does not fit.
    """
    from python_calamine import CalamineWorkbook

    required, optional = LAYOUTS[report_type]
    try:
        book = CalamineWorkbook.from_path(str(path))
        sheets = [(name, book.get_sheet_by_name(name).to_python(skip_empty_area=False)) for name in book.sheet_names]
    except Exception as exc:
        raise ExportFormatError(f"{path.name}: not a readable .xlsx {report_type} report "
                                f"({type(exc).__name__}: {exc})") from exc
    names_read = (*required, *optional)
    columns: dict[str, list] = {name: [] for name in (*names_read, *SOURCE_COLUMNS)}
    # Equal texts share one object (per column, over every sheet): the reader makes a new string
    # per cell, and a report repeats its kinds, dates, products and prices (as exports.read_table).
    shared: dict[str, dict[str, str]] = {name: {} for name in names_read}
    header_rows: dict[str, int] = {}
    for sheet_name, rows in sheets:
        if not any(_cell_text(c) for row in rows for c in row):
            continue
        where = f"{path.name} sheet {sheet_name!r}"
        data_at, names = _find_header(rows, required, optional, where)
        header_rows[sheet_name] = data_at
        at = {n: names.index(normalise_header(n)) for n in names_read if normalise_header(n) in names}
        kept, numbers = [], []
        is_summary: dict[str, bool] = {}  # first cells repeat: normalise each once
        for offset, row in enumerate(rows[data_at:]):
            first = row[0].strip() if row and type(row[0]) is str else ""  # nearly always the first cell
            if not first:
                first = next((text for text in map(_cell_text, row) if text), "")  # the first non-blank cell
            if not first:
                continue
            if first not in is_summary:
                is_summary[first] = normalise_header(first).lower() in SUMMARY_LABELS
            if not is_summary[first]:
                kept.append(row)
                numbers.append(data_at + offset + 1)
        # Column by column: one pass per wanted column is much cheaper than converting every row.
        for name in names_read:
            position = at.get(name)
            if position is None:
                columns[name].extend([None] * len(kept))
                continue
            texts, column = shared[name], columns[name]
            for row in kept:
                if position < len(row):  # a short row has nothing (None) under the columns past its end
                    value = row[position]
                    text = value.strip() if type(value) is str else _cell_text(value)
                    column.append(texts.setdefault(text, text))
                else:
                    column.append(None)
        columns["_file"].extend([path.name] * len(kept))
        columns["_sheet"].extend([sheet_name] * len(kept))
        columns["_row"].extend(numbers)
    if not header_rows:
        raise ExportFormatError(f"{path.name}: the {report_type} report has no sheet with data or a header")
    # An optional column no sheet had is left out (None in every row means 'not in the file').
    present = [n for n in columns if n in required or n in SOURCE_COLUMNS or any(v is not None for v in columns[n])]
    frame = pd.DataFrame({n: columns[n] for n in present}, columns=present, dtype=object)
    return Report(frame=frame, sheets=header_rows)


def _read_one_report(job: tuple[str, str]) -> tuple[pd.DataFrame | None, str | None]:
    """``read_report`` of one file, in a worker process: (its frame, None) or (None, the error)."""
    path, report_type = job
    try:
        return read_report(Path(path), report_type).frame, None
    except ExportFormatError as exc:
        return None, exc.detail


def read_reports(paths: Iterable[Path], report_type: str) -> pd.DataFrame:
    """The rows of several downloads of one report type (one per settlement group), in one frame;
    the files are decoded in parallel where this process may start others (``exports.map_files``)."""
    from coupang_sales.exports import map_files

    required, _ = LAYOUTS[report_type]
    paths = [Path(p) for p in paths]
    frames = []
    for frame, error in map_files(_read_one_report, [(str(p), report_type) for p in paths],
                                  total_bytes=sum(p.stat().st_size for p in paths if p.exists())):
        if error is not None:
            raise ExportFormatError(error)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*required, *SOURCE_COLUMNS], dtype=object)
    return pd.concat(frames, ignore_index=True)


def recognised_within(frame: pd.DataFrame, first_day: dt.date, last_day: dt.date, *, source: str) -> pd.DataFrame:
    """The rows whose 매출인식일 is in [first_day, last_day]: a report covers whole settlement groups."""
    if frame.empty:
        return frame
    days = parse_dates(frame["매출인식일"], column="매출인식일", source=source)
    return frame[[first_day <= d <= last_day for d in days]].reset_index(drop=True)


# --- typed rows (the contract jet/policy.py consumes) -----------------------------------------------


def _where(raw: pd.DataFrame, position: int) -> str:
    if "_sheet" in raw.columns:
        row = raw.iloc[position]
        return f"{row['_file']} sheet {row['_sheet']!r} row {row['_row']}"
    return f"row {position + 1}"


def _ids(raw: pd.DataFrame, column: str, source: str) -> pd.Series:
    ids = cell_text(raw[column])
    blank = np.flatnonzero((ids == "").to_numpy())
    if len(blank):
        raise ExportFormatError(f"{source}: column {column!r} is blank at {_where(raw, int(blank[0]))}")
    return ids


def _won(raw: pd.DataFrame, column: str, source: str, *, blank_as_zero: bool = False) -> pd.Series:
    try:
        return parse_won(raw[column], column=f"{source}: {column}", blank_as_zero=blank_as_zero)
    except ExportFormatError as exc:
        if "_sheet" not in raw.columns:
            raise
        # parse_won counts rows of the frame; say where in the file that row is.
        text = str(exc.detail)
        try:
            position = int(text.split(" row ", 1)[1].split(":", 1)[0]) - 1
        except (IndexError, ValueError):
            raise exc from None
        raise ExportFormatError(f"{text} (at {_where(raw, position)})") from None


def _drop_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    data = [c for c in frame.columns if c not in SOURCE_COLUMNS]
    if frame.empty or not data:
        return frame
    filled = frame[data].apply(lambda column: cell_text(column) != "")
    return frame[filled.any(axis=1)]


def _optional_text(raw: pd.DataFrame, *names: str) -> pd.Series:
    for name in names:
        if name in raw.columns:
            return cell_text(raw[name])
    return pd.Series("", index=raw.index, dtype=object)


def _canonical(frame: pd.DataFrame, report_type: str) -> pd.DataFrame:
    """``frame`` under canonical names (whitespace-insensitive), required columns checked."""
    from coupang_sales.exports import select_columns

    required, optional = LAYOUTS[report_type]
    keep = [c for c in SOURCE_COLUMNS if c in frame.columns]
    selected = select_columns(frame.drop(columns=keep), required, source=report_type, optional=optional)
    for column in keep:
        selected[column] = frame[column].to_numpy()
    return selected


def _negative_where(values: pd.Series, cancelled: pd.Series) -> pd.Series:
    """Cancellation rows negative whatever sign the file printed them with."""
    return values.where(~cancelled.to_numpy(), -values.abs())


def category_tr_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed CATEGORY_TR rows, one per report row.

    Columns: order_id, option_id, is_cancellation, product_name (등록상품명 + ' ' + 옵션명),
    recognized_date (매출인식일), quantity, gross (판매액(A*B)), coupon (쿠팡지원할인(C) +
    판매자할인쿠폰(D+E)), commission (판매수수료 + VAT), then option_name (옵션명). Errors name the
    file, sheet and row (SOURCE_COLUMNS of ``frame``). A '주문 정산취소' row has every amount negative, whatever
    its sign in the file; blank discounts read as 0; an unknown 거래유형 is a format change.
    """
    raw = _drop_blank_rows(_canonical(frame, CATEGORY_TR)).reset_index(drop=True)
    kinds = cell_text(raw["거래유형"]).map(normalise_header)
    known = {normalise_header(ORDER_SETTLEMENT), normalise_header(ORDER_CANCELLATION)}
    unknown = sorted(set(kinds) - known)
    if unknown:
        position = int(np.flatnonzero(~kinds.isin(known).to_numpy())[0])
        raise ExportFormatError(f"{CATEGORY_TR}: column '거래유형' has unknown values {unknown} (first at "
                                f"{_where(raw, position)}); expected {ORDER_SETTLEMENT!r} or {ORDER_CANCELLATION!r}")
    cancelled = kinds == normalise_header(ORDER_CANCELLATION)
    name = _optional_text(raw, "등록상품명", "상품명")
    option = _optional_text(raw, "옵션명")

    def won(column: str, *, blank_as_zero: bool = False) -> pd.Series:
        return _negative_where(_won(raw, column, CATEGORY_TR, blank_as_zero=blank_as_zero), cancelled)

    return pd.DataFrame({
        "order_id": _ids(raw, "주문ID", CATEGORY_TR),
        "option_id": _ids(raw, "옵션ID", CATEGORY_TR),
        "is_cancellation": cancelled.to_numpy(),
        "product_name": (name + " " + option).str.strip(),
        "recognized_date": parse_dates(raw["매출인식일"], column="매출인식일", source=CATEGORY_TR),
        "quantity": won("판매수량(B)"),
        "gross": won("판매액(A*B)"),
        "coupon": won("쿠팡지원할인(C)", blank_as_zero=True) + won("판매자할인쿠폰(D+E)", blank_as_zero=True),
        "commission": won("판매수수료") + won("판매수수료 VAT"),
        "option_name": option,
    }).reset_index(drop=True)


def warehousing_shipping_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed WAREHOUSING_SHIPPING rows: order_id, fee_type (거래유형, spaces collapsed), recognized_date
    (raw text), fee (발생비용(A) − 할인가(B) + 추가비용, negative on a '… 정산취소' row whatever its sign
    in the file), then option_id, product_name and option_name."""
    raw = _drop_blank_rows(_canonical(frame, WAREHOUSING_SHIPPING)).reset_index(drop=True)
    fee_type = cell_text(raw["거래유형"]).map(lambda t: " ".join(t.split()))
    reversal = fee_type.map(normalise_header).str.endswith(CANCELLATION_SUFFIX)
    extra = (_won(raw, "추가비용", WAREHOUSING_SHIPPING, blank_as_zero=True) if "추가비용" in raw.columns
             else pd.Series(pd.array([0] * len(raw), dtype="Int64"), index=raw.index))
    charged = _won(raw, "발생비용(A)", WAREHOUSING_SHIPPING)
    discount = _won(raw, "할인가(B)", WAREHOUSING_SHIPPING, blank_as_zero=True)
    fee = charged - discount + extra
    reversed_fee = -(charged.abs() - discount.abs() + extra.abs())
    return pd.DataFrame({
        "order_id": cell_text(raw["주문ID"]),
        "fee_type": fee_type,
        "recognized_date": raw["매출인식일"],  # parsed where used
        "fee": fee.where(~reversal.to_numpy(), reversed_fee),
        "option_id": _optional_text(raw, "옵션ID"),
        "product_name": (_optional_text(raw, "등록상품명") + " " + _optional_text(raw, "옵션명")).str.strip(),
        "option_name": _optional_text(raw, "옵션명"),
    }).reset_index(drop=True)


# --- check_export -------------------------------------------------------------------------------------


def _export_sums(path: Path, report_type: str, columns: Sequence[str], is_cancel) -> dict:
    report = read_report(path, report_type)
    raw = _drop_blank_rows(report.frame).reset_index(drop=True)
    kinds = cell_text(raw["거래유형"]).map(normalise_header)
    cancelled = kinds.map(is_cancel).astype(bool)
    sums = {}
    for column in columns:
        if column not in raw.columns:
            raise ExportFormatError(f"{path.name}: no column {column!r} in any sheet")
        values = _won(raw, column, report_type, blank_as_zero=True)
        sums[column] = int(_negative_where(values, cancelled).sum()) if len(raw) else 0
    return {"rows": len(raw), "sums": sums}


def check_category_tr(path: Path) -> dict:
    """``check_export`` of a CATEGORY_TR download: data rows over every sheet and the sums, 정산취소 negative."""
    if not path.exists():
        raise ExportFormatError(f"{path}: no such file")
    return _export_sums(path, CATEGORY_TR, ("판매액(A*B)", "쿠팡지원할인(C)", "판매자할인쿠폰(D+E)", "판매수수료",
                                            "판매수수료 VAT"),
                        lambda kind: kind == normalise_header(ORDER_CANCELLATION))


def check_warehousing_shipping(path: Path) -> dict:
    """``check_export`` of a WAREHOUSING_SHIPPING download: rows of both sheets and the sums, 정산취소 negative."""
    return _export_sums(path, WAREHOUSING_SHIPPING, ("발생비용(A)", "할인가(B)"),
                        lambda kind: kind.endswith(CANCELLATION_SUFFIX))
