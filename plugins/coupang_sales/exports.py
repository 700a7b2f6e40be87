"""Shared parsing of portal exports: .xlsx tables by header name, header matching, text cells to integer won."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from coupang_sales.errors import ExportFormatError

# A whole number after separators and spaces are removed: optional sign, digits only.
# U+2212 (the typographic minus) shows up when numbers are copied from web pages.
_INTEGER = re.compile(r"[+\-\u2212]?\d+")
# Cells that mean "nothing" in the portals' exports; only some columns may read them as 0.
_BLANKS = {"", "-"}
_INT64_MAX = np.iinfo(np.int64).max
T = TypeVar("T")


def normalise_header(name: object) -> str:
    """A header name reduced for comparison: Unicode NFC, every whitespace character removed.

    Exports differ from the page (and from month to month) in spacing only —
    '판매수수료 VAT' vs '판매수수료VAT', a trailing non-breaking space, a line break inside a
    wrapped header cell — so whitespace never decides whether two headers are the same.
    NFC because a header typed on macOS can arrive with decomposed Hangul jamo.
    """
    if name is None:
        return ""
    text = unicodedata.normalize("NFC", str(name)).replace("\ufeff", "")  # BOM on a CSV's first header
    return "".join(text.split())


def select_columns(
    frame: pd.DataFrame,
    required: Sequence[str],
    *,
    source: str,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """The ``required`` columns of ``frame`` (then any ``optional`` ones present), under their canonical names.

    Columns are matched by name with ``normalise_header``, never by position; columns not
    asked for are dropped. A required name with no match raises ``ExportFormatError``
    listing every missing name and ``source`` (the report), so the alert says what changed.
    Two columns of ``frame`` matching the same wanted name are ambiguous and raise too,
    rather than silently picking one.
    """
    by_normal: dict[str, list[object]] = {}
    for column in frame.columns:
        by_normal.setdefault(normalise_header(column), []).append(column)

    missing = [name for name in required if normalise_header(name) not in by_normal]
    if missing:
        raise ExportFormatError(
            f"{source}: missing column(s) {', '.join(repr(m) for m in missing)}; "
            f"found {[str(c) for c in frame.columns]}")

    chosen: dict[str, object] = {}
    for name in [*required, *optional]:
        matches = by_normal.get(normalise_header(name), [])
        if len(matches) > 1:
            raise ExportFormatError(f"{source}: column {name!r} appears {len(matches)} times: {matches}")
        if matches and name not in chosen:
            chosen[name] = matches[0]
    # Positional take + new labels, so a duplicated *unwanted* header cannot confuse the lookup.
    positions = [frame.columns.get_loc(original) for original in chosen.values()]
    selected = frame.iloc[:, positions].copy()
    selected.columns = list(chosen)
    return selected


def cell_text(series: pd.Series) -> pd.Series:
    """Cells as trimmed text; blanks become ''; a whole number read as float loses its '.0'."""
    def one(value: object) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    return pd.Series([v.strip() if type(v) is str else one(v) for v in series.tolist()], index=series.index,
                     name=series.name, dtype=object)


def parse_dates(series: pd.Series, *, column: str, source: str) -> pd.Series:
    """Dates from '2026-01-05', '2026.01.05', '2026/01/05', '20260105' or date objects, as ``datetime.date``."""
    def one(position: int, value: object) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return _date_of("" if value is None else str(value))
        except ValueError:
            raise ExportFormatError(
                f"{source}: column {column!r} row {position + 1}: {value!r} is not a date") from None

    return pd.Series(_per_distinct(series.tolist(), one), index=series.index, dtype=object)


def _date_of(text: str) -> dt.date:
    """The day of '2026-01-05', '2026.01.05.', '2026/01/05' or '20260105' (ValueError otherwise)."""
    text = text.strip().replace(".", "-").replace("/", "-").rstrip("-")  # '2026.01.05.' is common too
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    # Anything after the day (a time of day) is not part of the date basis.
    return dt.date.fromisoformat(text[:10])


def parse_moments(series: pd.Series, *, column: str, source: str) -> pd.Series:
    """Dates with their time of day, as text ``YYYY-MM-DD HH:MM:SS`` (``YYYY-MM-DD`` when the cell has no time).

    The same spellings as ``parse_dates`` (``2026/09/05 09:10:11``, ``2026-09-05T09:10:11``,
    ``2026.09.05 09:10``), so the export and the pages give the same text for the same moment.
    The time is what tells two real lines of one day apart (two deliveries at 09:10 and 14:02)
    from a line an overlapping download repeated verbatim; a cell whose time cannot be read
    raises naming the column and row.
    """
    def one(position: int, value: object) -> str:
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, dt.date):
            return value.isoformat()
        text = "" if value is None else str(value).strip()
        split = _DATE_THEN_TIME.fullmatch(text)
        day_text, rest = (split["day"], split["time"]) if split else (text, "")
        try:
            day = _date_of(day_text)
        except ValueError:
            raise ExportFormatError(
                f"{source}: column {column!r} row {position + 1}: {value!r} is not a date") from None
        if not rest:
            return day.isoformat()
        match = _TIME.fullmatch(rest)
        if not match:
            raise ExportFormatError(
                f"{source}: column {column!r} row {position + 1}: {value!r} has no readable time of day")
        hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ExportFormatError(
                f"{source}: column {column!r} row {position + 1}: {value!r} has no readable time of day")
        return f"{day.isoformat()} {hour:02d}:{minute:02d}:{second:02d}"

    values = series.tolist()
    fast = _moments_in_arrow(values)
    return pd.Series(fast if fast is not None else _per_distinct(values, one), index=series.index, dtype=object)


def _text_array(values: list):
    """``values`` as an Arrow string array, or None when any is not text (or is missing)."""
    import pyarrow as pa

    try:
        array = pa.array(values, type=pa.string(), from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return array if array.null_count == 0 else None


def _moments_in_arrow(values: list) -> list[str] | None:
    """``parse_moments`` of cells that all read ``YYYY?MM?DD HH:MM:SS`` (``?`` one of - / .; or a 'T'
    between), column-wise in Arrow; None when any cell is spelt otherwise or is not a real moment
    (2026-02-30, 24:00), so the row-by-row reader decides, and names the row."""
    import pyarrow.compute as pc

    array = _text_array(values)
    if array is None or not len(array):
        return None
    spelt = pc.replace_substring_regex(pc.utf8_trim_whitespace(array),
                                       r"^(\d{4})[-/.](\d{2})[-/.](\d{2})(?:\s+|\s*[Tt]\s*)(\d{2}:\d{2}:\d{2})$",
                                       r"\1-\2-\3 \4")
    # strptime rolls 02-30 over to 03-02: a moment is real only when written back it reads the same.
    back = pc.strftime(pc.strptime(spelt, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True),
                       format="%Y-%m-%d %H:%M:%S")
    if not pc.all(pc.fill_null(pc.equal(spelt, back), False)).as_py():
        return None
    return back.to_pylist()


_TIME = re.compile(r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?")
# A date ('2026/09/05', '2026.09.05.', '20260905') then a time after a space or a 'T'.
_DATE_THEN_TIME = re.compile(r"(?P<day>\d{4}[-./]\d{1,2}[-./]\d{1,2}\.?|\d{8})(?:\s*[Tt]\s*|\s+)(?P<time>\S.*)")


def _per_distinct(values: list, convert: Callable[[int, object], T]) -> list[T]:
    """``convert(position, value)`` of every value, called once per distinct value.

    Exports repeat their dates, prices and counts over many rows, so each is converted
    once. Values are told apart by type too (1, 1.0 and True are equal as dict keys but
    not as cells); an unhashable value is converted on its own. A conversion that raises
    does so at the first row holding the value, as a row-by-row loop would.
    """
    seen: dict[tuple[type, object], T] = {}
    out = []
    for position, value in enumerate(values):
        key = (type(value), value)
        try:
            known = key in seen
        except TypeError:  # unhashable
            out.append(convert(position, value))
            continue
        if not known:
            seen[key] = convert(position, value)
        out.append(seen[key])
    return out


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and value != value


def _to_int(value: object, *, blank_as_zero: bool) -> int | None:
    """One cell as an int, or None when it is not a whole number (the caller reports it)."""
    if _is_missing(value):
        return 0 if blank_as_zero else None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    # A spreadsheet may hand over a numeric cell as 12345.0: accept it only when it is
    # exactly whole, and leave floats at once.
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else None
    text = "".join(str(value).split()).replace(",", "")
    if text in _BLANKS:
        return 0 if blank_as_zero else None
    if not _INTEGER.fullmatch(text):
        return None
    return int(text.replace("\u2212", "-"))


def parse_won(series: pd.Series, *, column: str, blank_as_zero: bool = False) -> pd.Series:
    """Integer won (or a count) from raw cells such as '12,345', '-1,000' or ' 9 900 ', as ``Int64``.

    Thousands separators and every space are removed and a leading minus is kept; the
    value is then read as a whole number — never through float, so no rounding can creep
    into money. Blank cells ('' / '-' / missing) are 0 only with ``blank_as_zero`` (for
    columns where blank really means none, like discounts); anything else that is not a
    whole number ('12.5', 'abc', a blank in a required column) raises ``ExportFormatError``
    naming ``column``, the 1-based data row and the value.
    """
    def one(position: int, cell: object) -> int:
        number = _to_int(cell, blank_as_zero=blank_as_zero)
        if number is None or abs(number) > _INT64_MAX:
            raise ExportFormatError(f"column {column!r} row {position + 1}: {cell!r} is not a whole number")
        return number

    raw = series.tolist()
    fast = _won_in_arrow(raw)
    if fast is not None:
        return pd.Series(pd.array(fast, dtype="Int64"), index=series.index, name=series.name)
    values = _per_distinct(raw, one)
    return pd.Series(pd.array(values, dtype="Int64"), index=series.index, name=series.name)


def _won_in_arrow(values: list):
    """``parse_won`` of cells that are all text of a whole number (ASCII spaces and thousands
    separators allowed, at most 18 digits), column-wise in Arrow as int64, never through float;
    None when any cell is anything else (a blank, a U+2212 minus, '12.5'), so the cell-by-cell
    reader decides and names the row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = _text_array(values)
    if array is None or not len(array):
        return None
    digits = pc.replace_substring_regex(array, r"[ \t\n\r\f\v,]", "")
    if not pc.all(pc.match_substring_regex(digits, r"^[+-]?\d{1,18}$")).as_py():
        return None
    return pc.cast(pc.replace_substring_regex(digits, r"^\+", ""), pa.int64()).to_numpy()


SUMMARY_LABELS = {"합계", "총계", "소계", "total"}
# Processes that decode export files at once (``map_files``); unset: one per CPU.
DECODE_PROCESSES_SETTING = "COUPANG_DECODE_PROCESSES"


# Below this many bytes of files in all, map_files decodes them in this process (see there).
PARALLEL_DECODE_BYTES = 2_000_000


def decode_processes(files: int) -> int:
    """How many processes ``map_files`` may use for ``files`` files: ``COUPANG_DECODE_PROCESSES``
    (default ``os.cpu_count()``), never more than the files, and 1 (this process) where a child
    process is not allowed.

    A task of a Celery prefork worker runs in a daemonic process (billiard's pool), and a
    daemonic process may not start children (multiprocessing refuses): there the files are
    decoded one after the other, as before. Airflow's local and Kubernetes task processes are
    not daemonic and decode in parallel. Set the variable to 1 to keep a task to one core.
    """
    import multiprocessing
    import os
    import sys

    raw = os.environ.get(DECODE_PROCESSES_SETTING, "").strip()
    wanted = int(raw) if raw.isdigit() and int(raw) > 0 else (os.cpu_count() or 1)
    daemonic = multiprocessing.current_process().daemon
    billiard = sys.modules.get("billiard.process")
    if billiard is not None:
        daemonic = daemonic or bool(getattr(billiard.current_process(), "daemon", False))
    return 1 if daemonic else max(1, min(wanted, files))


def map_files(function: Callable[[T], object], jobs: Sequence[T], *, total_bytes: int | None = None) -> list:
    """``[function(job) for job in jobs]``, in order, over ``decode_processes`` processes.

    The processes are started with 'spawn' (a fresh interpreter: nothing of this process's
    threads, connections or locks is inherited) and live only for this call. ``function`` must
    be a module-level function; what it returns is sent back pickled, so it should be the
    decoded table, not the rows. With one process (or one job) it runs here, and so it does when
    the files are ``total_bytes`` < ``PARALLEL_DECODE_BYTES`` in all: a spawned interpreter takes
    about a second to import pandas, more than decoding a few small files here.
    """
    small = total_bytes is not None and total_bytes < PARALLEL_DECODE_BYTES
    processes = 1 if small else decode_processes(len(jobs))
    if processes <= 1:
        return [function(job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(function, jobs, chunksize=max(1, len(jobs) // (processes * 8))))


def _cell_text(value: object) -> str:
    """A cell as the text a person sees; integral floats lose their '.0' (calamine reads numbers as float)."""
    if type(value) is str:  # nearly every cell of the portals' exports: first, for speed
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


@dataclass
class Table:
    frame: pd.DataFrame  # raw text cells under the canonical header names
    header_row: int      # 1-based row of the header in the sheet
    blank_rows: int      # rows with no value, skipped
    summary_rows: int    # 합계 rows, skipped


def read_table(path: Path, required: Sequence[str], *, source: str,
               aliases: Mapping[str, Sequence[str]] | None = None) -> Table:
    """Read the first sheet of ``path``: title rows above the header, a trailing 합계 row and blank
    rows are skipped (and counted); every other row is kept as text under its header name.

    The header row is the first row holding every ``required`` name (whitespace ignored), or
    for a name with ``aliases``, one of its other names (the name itself is preferred when a
    row holds both); the frame's columns are the ``required`` names whatever the file called
    them. The file is decoded once, whatever the aliases. A file that is not a readable
    workbook, or has no such row, raises ``ExportFormatError`` naming the file and the missing
    columns; so does a header holding a required name twice (which column is meant cannot be
    known; a repeated column not asked for is harmless).
    """
    from python_calamine import CalamineWorkbook

    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception as exc:
        raise ExportFormatError(f"{source}: not a readable .xlsx export ({type(exc).__name__}: {exc})") from exc
    # Each required name with its spellings, the name itself first.
    spellings = {name: list(dict.fromkeys(normalise_header(n) for n in (name, *(aliases or {}).get(name, ()))))
                 for name in required}
    best_missing: list[str] = list(required)
    header_index, chosen = None, {}
    for position, row in enumerate(rows):
        present = {normalise_header(cell) for cell in row}
        found = {name: next((n for n in names if n in present), None) for name, names in spellings.items()}
        missing = [name for name, n in found.items() if n is None]
        if not missing:
            header_index, header, chosen = position, [normalise_header(cell) for cell in row], found
            break
        if len(missing) < len(best_missing):
            best_missing = missing
    if header_index is None:
        raise ExportFormatError(f"{source}: no header row with the columns {best_missing} "
                                f"(first {min(len(rows), 5)} rows read)")
    repeated = [name for name in required if header.count(chosen[name]) > 1]
    if repeated:  # which of the two is the real one cannot be known: refuse rather than guess
        raise ExportFormatError(f"{source}: the header row {header_index + 1} has the column(s) "
                                + ", ".join(f"{name!r} {header.count(chosen[name])} times"
                                            for name in repeated))
    positions = {name: header.index(chosen[name]) for name in required}
    kept, blank, summary = [], 0, 0
    is_summary: dict[str, bool] = {}  # first cells repeat (발주, 반출): normalise each once
    for row in rows[header_index + 1:]:
        first = row[0].strip() if row and type(row[0]) is str else ""  # nearly always the first cell
        if not first:
            first = next((text for text in map(_cell_text, row) if text), "")  # the first non-blank cell
        if not first:
            blank += 1
            continue
        if first not in is_summary:
            is_summary[first] = normalise_header(first).lower() in SUMMARY_LABELS
        if is_summary[first]:
            summary += 1
        else:
            kept.append(row)
    # Column by column: one pass per wanted column is much cheaper than converting every cell
    # row by row. Equal texts share one object: the reader makes a new string per cell, and a
    # million lines repeat their kinds, centres, dates and prices (it halves the memory).
    columns = {}
    width = min((len(row) for row in kept), default=0)
    for name in required:
        at = positions[name]
        cells = [row[at] for row in kept] if at < width else [row[at] if at < len(row) else None for row in kept]
        shared: dict[str, str] = {}
        columns[name] = [shared.setdefault(text, text)
                         for text in [v.strip() if type(v) is str else _cell_text(v) for v in cells]]
    frame = pd.DataFrame(columns, columns=list(required), dtype=object)
    return Table(frame=frame, header_row=header_index + 1, blank_rows=blank, summary_rows=summary)
