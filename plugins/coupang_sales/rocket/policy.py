"""Coupang Rocket policy: 입고상세내역 lines of 일반매입계정 invoices -> ``sales.order_lines``.

The policy (PRODUCT.md §2.1): the payment amount is 총단가, dated by the 작성일자 of the
invoice the line belongs to; a 반출 line (a return/cancellation) restates the matching
발주 line (same 발주번호 and SKU번호) on the original line's date instead of adding a
negative line on its own date.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import cell_text, normalise_header, parse_dates, parse_won, read_table, select_columns
from coupang_sales.model import ORDER_LINE_COLUMNS, ROCKET

# 일반매입계정 list columns the policy needs (the page has more).
INVOICE_COLUMNS = ("계산서번호", "작성일자", "공급가액", "부가가치세", "지급예정금액", "세금계산서 확정일", "발행유형")
# 입고상세내역 columns, as the page and its Excel export name them.
DETAIL_COLUMNS = ("구분", "번호", "SKU번호", "SKU명", "입고/반출일자", "물류센터", "세금타입", "수량", "단가",
                  "공급가액", "세액", "총단가", "총공급가액", "총세액", "계산서번호", "지급일")
DETAIL_MONEY = ("수량", "단가", "공급가액", "세액", "총단가", "총공급가액", "총세액")
# Other names of 입고상세내역 columns: the export calls the date column 입고/반출시각 (five public
# parsers; REAL-PORTALS.md §3). A deployment adds more through the portal settings' column_aliases.
DETAIL_ALIASES: dict[str, tuple[str, ...]] = {"입고/반출일자": ("입고/반출시각",)}
# Amounts a 반출 line takes back: negative on the page, perhaps positive in the export; 구분 decides.
_RETURN_SIGNED = ("qty", "total_price", "total_supply", "total_tax")
PURCHASE, RETURN = "발주", "반출"

# English names used from here on; the Korean header stays the source of truth above.
_DETAIL_RENAME = {
    "구분": "kind", "번호": "po_no", "SKU번호": "sku_id", "SKU명": "sku_name", "입고/반출일자": "moved_date",
    "물류센터": "center", "수량": "qty", "총단가": "total_price", "총공급가액": "total_supply",
    "총세액": "total_tax", "계산서번호": "invoice_no",
}


def parse_invoices(rows: Iterable[Mapping[str, str]], *, source: str = "일반매입계정") -> pd.DataFrame:
    """Typed invoices (one row per 계산서번호) from the 일반매입계정 rows, parsed by header name."""
    raw = pd.DataFrame(list(rows))
    if raw.empty:
        raw = pd.DataFrame(columns=list(INVOICE_COLUMNS))
    raw = select_columns(raw, INVOICE_COLUMNS, source=source)
    out = pd.DataFrame({
        "invoice_no": cell_text(raw["계산서번호"]),
        "written_date": parse_dates(raw["작성일자"], column="작성일자", source=source),  # 작성일자
        "supply_amount": parse_won(raw["공급가액"], column="공급가액"),
        "vat_amount": parse_won(raw["부가가치세"], column="부가가치세"),
        "payable_amount": parse_won(raw["지급예정금액"], column="지급예정금액"),  # 지급예정금액
        "tax_invoice_confirmed": cell_text(raw["세금계산서 확정일"]),
        "issue_type": cell_text(raw["발행유형"]),
    })
    return out.drop_duplicates(subset=["invoice_no"]).reset_index(drop=True)


def _aliases(extra: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    merged = {name: tuple(names) for name, names in DETAIL_ALIASES.items()}
    for name, names in (extra or {}).items():
        merged[name] = tuple(dict.fromkeys((*merged.get(name, ()), *names)))
    return merged


def canonical_detail_columns(frame: pd.DataFrame, *, aliases: Mapping[str, Sequence[str]] | None = None
                             ) -> pd.DataFrame:
    """``frame`` with a column under an alias (``입고/반출시각``) renamed to its canonical name,
    unless the canonical name is there too."""
    present = {normalise_header(c): c for c in frame.columns}
    renames = {}
    for name, others in _aliases(aliases).items():
        if normalise_header(name) in present:
            continue
        for other in others:
            if normalise_header(other) in present:
                renames[present[normalise_header(other)]] = name
                break
    return frame.rename(columns=renames) if renames else frame


def read_receive_detail_export(path: Path, *, source: str,
                               aliases: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The raw text cells of a 입고상세내역 export (Coupang_Stocked_Data_List) under ``DETAIL_COLUMNS``.

    The header row is found by name wherever it is (row 1 on the real export), with the
    date column under either name (``입고/반출일자`` or ``입고/반출시각``, plus ``aliases``).
    """
    alias_table = _aliases(aliases)
    choices = [(name, *alias_table.get(name, ())) for name in DETAIL_COLUMNS]
    first_error: ExportFormatError | None = None
    for names in itertools.product(*choices):
        try:
            frame = read_table(path, names, source=source).frame
        except ExportFormatError as exc:
            first_error = first_error or exc
            continue
        frame.columns = list(DETAIL_COLUMNS)
        return frame
    assert first_error is not None
    raise first_error


def receive_detail_frame(headers: Sequence[str], rows: Sequence[Sequence[str]], *, source: str,
                         aliases: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The raw text cells of 입고상세내역 lines read from its pages, under ``DETAIL_COLUMNS``."""
    frame = pd.DataFrame([list(r) for r in rows], columns=list(headers), dtype=object)
    if frame.empty:
        frame = pd.DataFrame(columns=list(headers), dtype=object)
    return select_columns(canonical_detail_columns(frame, aliases=aliases), DETAIL_COLUMNS, source=source)


def parse_receive_detail(raw: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Typed 입고상세내역 lines from raw text cells (header names matched, aliases allowed).

    A 반출 line comes out with its quantity and amounts negative whatever their sign in the
    source (negative on the page; two public export parsers suggest positive in the file).
    """
    raw = select_columns(canonical_detail_columns(raw), DETAIL_COLUMNS, source=source)
    out = pd.DataFrame(index=raw.index)
    for korean, name in _DETAIL_RENAME.items():
        if korean in DETAIL_MONEY:
            out[name] = parse_won(raw[korean], column=f"{source}: {korean}")
        elif korean == "입고/반출일자":
            out[name] = parse_dates(raw[korean], column=korean, source=source)
        else:
            out[name] = cell_text(raw[korean])
    unknown = sorted(set(out["kind"]) - {PURCHASE, RETURN})
    if unknown:
        raise ExportFormatError(f"{source}: column '구분' has unknown values {unknown}; expected 발주 or 반출")
    returns = (out["kind"] == RETURN).to_numpy()
    if returns.any():
        for name in _RETURN_SIGNED:
            column = out[name].copy()
            column[returns] = -column[returns].abs()
            out[name] = column
    return out.reset_index(drop=True)


def check_receive_detail_export(path: Path) -> dict[str, object]:
    """``check_export rocket-receive-detail``: a 입고상세내역 export read as the DAG reads it
    (``read_receive_detail_export`` then ``parse_receive_detail``): the data rows read and
    their 총단가 in integer won, 반출 lines counted negative whatever their sign in the file."""
    source = f"입고상세내역 {Path(path).name}"
    lines = parse_receive_detail(read_receive_detail_export(Path(path), source=source), source=source)
    return {"rows": len(lines), "sums": {"총단가": int(lines["total_price"].sum())}}


@dataclass
class Deduplicated:
    lines: pd.DataFrame
    duplicates_removed: int


def drop_duplicate_lines(lines: pd.DataFrame) -> Deduplicated:
    """Remove lines repeated verbatim (overlapping downloads repeat whole lines).

    Two lines are the same line when every field is equal; the count removed is kept
    for the run summary so nothing disappears silently.
    """
    deduped = lines.drop_duplicates().reset_index(drop=True)
    return Deduplicated(deduped, len(lines) - len(deduped))


@dataclass
class RocketResult:
    order_lines: pd.DataFrame
    unmatched_returns: pd.DataFrame  # 반출 lines with no 발주 line to restate, kept visible


def transform(invoices: pd.DataFrame, lines: pd.DataFrame, *, account_id: str) -> RocketResult:
    """Apply the Rocket policy to typed invoices and de-duplicated 입고상세내역 lines.

    - ``order_id`` = 발주번호, ``option_id`` = SKU번호, ``sales_date`` = the invoice's 작성일자.
    - ``payment_amount`` = 총단가; Rocket has no coupons, so ``gross_amount`` = ``payment_amount``.
    - ``line_key`` = 계산서번호:SKU번호:입고일자:물류센터, stable across re-collections; lines
      sharing it (one receipt split in two rows) are summed.
    - A 반출 line reduces the matching 발주 lines (same 발주번호 and SKU번호), newest 작성일자
      first, by its quantity and 총단가: to 0 when fully returned (``is_cancelled``), less
      when partial. What a return could not be matched to stays in ``unmatched_returns``.
    """
    written = dict(zip(invoices["invoice_no"], invoices["written_date"], strict=True))
    missing = sorted(set(lines["invoice_no"]) - set(written))
    if missing:
        raise ExportFormatError(f"입고상세내역 lines name invoices missing from 일반매입계정: {missing[:5]}")
    lines = lines.assign(sales_date=lines["invoice_no"].map(written))

    purchases = lines[lines["kind"] == PURCHASE].copy()
    purchases["line_key"] = (purchases["invoice_no"] + ":" + purchases["sku_id"] + ":"
                             + purchases["moved_date"].map(dt.date.isoformat) + ":" + purchases["center"])
    purchases = (purchases.groupby(["po_no", "line_key"], sort=False, as_index=False)
                 .agg(sku_id=("sku_id", "first"), sku_name=("sku_name", "first"),
                      sales_date=("sales_date", "first"), qty=("qty", "sum"),
                      total_price=("total_price", "sum")))
    purchases[["returned_qty", "returned_amount"]], unmatched_frame = _apply_returns(
        purchases, lines[lines["kind"] == RETURN])

    quantity = (purchases["qty"] - purchases["returned_qty"]).astype("Int64")
    payment = (purchases["total_price"] - purchases["returned_amount"]).astype("Int64")
    n = len(purchases)
    order_lines = pd.DataFrame({
        "channel": ROCKET,
        "account_id": account_id,
        "order_id": purchases["po_no"],           # 발주번호
        "line_key": purchases["line_key"],
        "option_id": purchases["sku_id"],         # SKU번호
        "product_name": purchases["sku_name"],    # SKU명
        "sales_date": purchases["sales_date"],    # 작성일자 of the line's invoice
        "quantity": quantity,
        "gross_amount": payment,
        "coupon_discount": pd.array([0] * n, dtype="Int64"),
        "payment_amount": payment,                # 총단가, restated
        "seller_shipping_fee": pd.array([0] * n, dtype="Int64"),
        "collected_commission": pd.array([pd.NA] * n, dtype="Int64"),
        "is_cancelled": (purchases["returned_qty"] > 0) & (quantity == 0) & (payment == 0),
        "source": "rocket",
        "cancelled_quantity": purchases["returned_qty"].astype("Int64"),
        "cancelled_amount": purchases["returned_amount"].astype("Int64"),
    }, columns=list(ORDER_LINE_COLUMNS))
    order_lines["is_cancelled"] = order_lines["is_cancelled"].astype(bool)
    return RocketResult(order_lines.reset_index(drop=True), unmatched_frame)


def _apply_returns(purchases: pd.DataFrame, returns: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How much of each purchase line the 반출 lines take back, and what they could not.

    Per (발주번호, SKU번호) the returned quantity and 총단가 are taken from the matching
    purchase lines newest 작성일자 first (then line_key, descending), each line giving at
    most what it holds; quantity and amount are allocated independently. Done for all
    groups at once with cumulative sums: a line's take is what is left of the group's
    return after the newer lines' capacity, capped by its own.

    Returns (``returned_qty``, ``returned_amount`` aligned to ``purchases``; and the
    unmatched remainder per group with the invoices its 반출 lines came from).
    """
    empty_unmatched = pd.DataFrame(columns=["po_no", "sku_id", "invoices", "unmatched_qty", "unmatched_amount"])
    zero = pd.DataFrame({"returned_qty": pd.array([0] * len(purchases), dtype="Int64"),
                         "returned_amount": pd.array([0] * len(purchases), dtype="Int64")}, index=purchases.index)
    if returns.empty:
        return zero, empty_unmatched
    wanted = (returns.groupby(["po_no", "sku_id"], sort=True)
              .agg(want_qty=("qty", "sum"), want_amount=("total_price", "sum"),
                   invoices=("invoice_no", lambda s: ",".join(sorted(set(s)))))
              .reset_index())
    wanted["want_qty"] = -wanted["want_qty"].astype("int64")
    wanted["want_amount"] = -wanted["want_amount"].astype("int64")

    candidates = purchases[["po_no", "sku_id", "sales_date", "line_key", "qty", "total_price"]].reset_index()
    candidates = candidates.merge(wanted, on=["po_no", "sku_id"], how="inner")
    candidates = candidates.sort_values(["po_no", "sku_id", "sales_date", "line_key"],
                                        ascending=[True, True, False, False], kind="stable")
    group_keys = [candidates["po_no"], candidates["sku_id"]]
    taken = zero.copy()
    positions = candidates["index"].to_numpy()
    for room_column, want_column, out_column in (("qty", "want_qty", "returned_qty"),
                                                 ("total_price", "want_amount", "returned_amount")):
        room = candidates[room_column].to_numpy(dtype="int64").clip(min=0)
        newer = pd.Series(room, index=candidates.index).groupby(group_keys, sort=False).cumsum().to_numpy() - room
        take = np.minimum((candidates[want_column].to_numpy(dtype="int64") - newer).clip(min=0), room)
        taken.loc[positions, out_column] = take

    given = candidates.assign(qty_taken=taken.loc[positions, "returned_qty"].to_numpy(),
                              amount_taken=taken.loc[positions, "returned_amount"].to_numpy())
    given = given.groupby(["po_no", "sku_id"]).agg(qty_taken=("qty_taken", "sum"),
                                                    amount_taken=("amount_taken", "sum"))
    left = wanted.merge(given, on=["po_no", "sku_id"], how="left").fillna({"qty_taken": 0, "amount_taken": 0})
    left["unmatched_qty"] = (left["want_qty"] - left["qty_taken"]).astype("int64")
    left["unmatched_amount"] = (left["want_amount"] - left["amount_taken"]).astype("int64")
    unmatched = left[(left["unmatched_qty"] > 0) | (left["unmatched_amount"] > 0)]
    if unmatched.empty:
        return taken, empty_unmatched
    return taken, unmatched[list(empty_unmatched.columns)].reset_index(drop=True)
