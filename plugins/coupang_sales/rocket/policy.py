"""Coupang Rocket policy: 입고상세내역 lines of 일반매입계정 invoices -> ``sales.order_lines``.

The policy (PRODUCT.md §2.1): the payment amount is 총단가, dated by the 작성일자 of the
invoice the line belongs to; a 반출 line (a return/cancellation) restates the matching
발주 line (same 발주번호 and SKU번호) on the original line's date instead of adding a
negative line on its own date. ``facts`` turns an extract into collected facts;
``derive`` gives the order lines of all facts of a group, whatever run collected each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from coupang_sales.errors import ExportFormatError
from coupang_sales.exports import (
    cell_text,
    normalise_header,
    parse_dates,
    parse_moments,
    parse_won,
    read_table,
    select_columns,
)
from coupang_sales.facts import (
    ADJUSTMENT_COLUMNS,
    RESTATEMENT_COLUMNS,
    Derived,
    fact_frame,
    largest_remainder,
    typed,
)
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
    frame = read_table(path, DETAIL_COLUMNS, source=source, aliases=_aliases(aliases)).frame
    frame.columns = list(DETAIL_COLUMNS)
    return frame


def _read_one_export(job: tuple[str, str, dict[str, tuple[str, ...]]]) -> tuple[pd.DataFrame | None, str | None]:
    """``read_receive_detail_export`` of one file, in a worker process: (frame, None) or (None, the error)."""
    path, source, aliases = job
    try:
        return read_receive_detail_export(Path(path), source=source, aliases=aliases), None
    except ExportFormatError as exc:
        return None, exc.detail


def read_receive_detail_exports(paths: Sequence[Path], *, sources: Sequence[str],
                                aliases: Mapping[str, Sequence[str]] | None = None) -> list[pd.DataFrame]:
    """``read_receive_detail_export`` of each file, decoded in parallel where this process may start
    others (``exports.map_files``): the .xlsx decoding is most of a large extract's validation."""
    from coupang_sales.exports import map_files

    table = {name: tuple(names) for name, names in (aliases or {}).items()}
    out = []
    jobs = [(str(p), s, table) for p, s in zip(paths, sources, strict=True)]
    for frame, error in map_files(_read_one_export, jobs,
                                  total_bytes=sum(Path(p).stat().st_size for p in paths if Path(p).exists())):
        if error is not None:
            raise ExportFormatError(error)
        out.append(frame)
    return out


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
            # The day is the line's key; the time of day (입고/반출시각) tells two real lines of one day
            # apart from a repeated one (``drop_duplicate_lines``).
            moments = parse_moments(raw[korean], column=korean, source=source)
            out["moved_at"] = moments
            out[name] = moments.map({text: dt.date.fromisoformat(text[:10]) for text in set(moments)})
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
    kept_repeats: int = 0  # lines equal to another line kept because the invoice's 지급예정금액 counts both


def drop_duplicate_lines(lines: pd.DataFrame, invoices: pd.DataFrame | None = None) -> Deduplicated:
    """Remove lines repeated verbatim (overlapping downloads repeat whole lines).

    Two lines are the same line when every field is equal, the time of day of 입고/반출시각
    included: two deliveries of one PO, SKU, day, centre and quantity at different times are
    two lines. With ``invoices``, the invoice's 지급예정금액 decides the rest: where the lines
    without their repeats do not add up to it but all the lines as read do, the repeats are
    real lines (same second) and are all kept. The count removed is kept for the run summary,
    so nothing disappears silently; an invoice that matches neither way is left for the
    quality suite, which names it (``invoice_mismatches``).
    """
    repeated = lines.duplicated()
    if not repeated.any():
        return Deduplicated(lines.reset_index(drop=True), 0)
    keep_all: set[str] = set()
    if invoices is not None and len(invoices):
        payable = dict(zip(invoices["invoice_no"], invoices["payable_amount"], strict=True))
        price = lines["total_price"].astype("int64")
        as_read = price.groupby(lines["invoice_no"]).sum()
        without = price[~repeated].groupby(lines["invoice_no"][~repeated]).sum()
        for invoice_no in sorted(set(lines.loc[repeated, "invoice_no"])):
            expected = payable.get(invoice_no)
            if expected is None or pd.isna(expected):
                continue
            if int(without.get(invoice_no, 0)) != int(expected) and int(as_read[invoice_no]) == int(expected):
                keep_all.add(invoice_no)
    drop = repeated & ~lines["invoice_no"].isin(keep_all)
    deduped = lines[~drop].reset_index(drop=True)
    return Deduplicated(deduped, int(drop.sum()), int((repeated & ~drop).sum()))


def invoice_mismatches(invoices: pd.DataFrame, lines: pd.DataFrame, *, limit: int = 5) -> list[str]:
    """Each invoice whose lines' 총단가 do not add up to its 지급예정금액, naming the invoice, both sums
    and its lines (구분, 번호, SKU번호, 입고/반출시각, 물류센터, 수량, 총단가), for the failure message."""
    out = []
    price = lines["total_price"].astype("int64")
    sums = price.groupby(lines["invoice_no"]).sum()
    for invoice_no, payable in zip(invoices["invoice_no"], invoices["payable_amount"], strict=True):
        total = int(sums.get(invoice_no, 0))
        if pd.isna(payable) or total == int(payable):
            continue
        own = lines[lines["invoice_no"] == invoice_no]
        shown = "; ".join(
            f"{r.kind} {r.po_no} SKU {r.sku_id} at {getattr(r, 'moved_at', r.moved_date)} {r.center} "
            f"qty {int(r.qty)} {int(r.total_price):,} won" for r in own.head(limit).itertuples())
        more = f"; and {len(own) - limit} more" if len(own) > limit else ""
        out.append(f"invoice {invoice_no}: 지급예정금액 {int(payable):,} won but its {len(own)} line(s) add up to "
                   f"{total:,} won ({shown}{more})")
    return out


RECEIPT_FACT, RETURN_FACT = "rocket_receipt", "rocket_return"
ROCKET_FACT_KINDS = (RECEIPT_FACT, RETURN_FACT)


def facts(invoices: pd.DataFrame, lines: pd.DataFrame, *, text_as_objects: bool = True) -> pd.DataFrame:
    """One fact per receipt line and per 반출 line, keyed by its source row.

    - A receipt (발주): ``order_id`` = 발주번호, ``fact_key`` = the line key
      계산서번호:SKU번호:입고일자:물류센터 (rows sharing it, one receipt split in two rows, are
      summed), ``fact_date`` = the invoice's 작성일자, ``amount`` = 총단가.
    - A 반출: ``fact_key`` = 계산서번호:SKU번호:반출일자:물류센터:단가, quantity and 총단가 negative
      as the invoice prints them, ``fact_date`` = its own invoice's 작성일자.
    - ``unit_price`` = 총단가 / 수량 (whole won, rounded down); ``group_key`` = 발주번호/SKU번호:
      a 반출 restates only receipts of its own group.

    ``text_as_objects=False``: the text columns stay in pandas' string type, for the transform stage,
    which only writes the facts to its staged file (``fact_frame``).
    """
    written = dict(zip(invoices["invoice_no"], invoices["written_date"], strict=True))
    missing = sorted(set(lines["invoice_no"]) - set(written))
    if missing:
        raise ExportFormatError(f"입고상세내역 lines name invoices missing from 일반매입계정: {missing[:5]}")
    lines = lines.assign(fact_date=lines["invoice_no"].map(written))
    qty = lines["qty"].astype("int64")
    price = lines["total_price"].astype("int64")
    unit = (price.abs() // qty.abs().where(qty != 0, 1)).where(qty != 0, price.abs())
    key = (lines["invoice_no"] + ":" + lines["sku_id"] + ":" + lines["moved_date"].map(dt.date.isoformat)
           + ":" + lines["center"])
    is_return = lines["kind"] == RETURN
    lines = lines.assign(fact_kind=np.where(is_return, RETURN_FACT, RECEIPT_FACT),
                         fact_key=key.where(~is_return, key + ":" + unit.astype(str)))
    grouped = (lines.groupby(["fact_kind", "po_no", "fact_key"], sort=True, as_index=False)
               .agg(sku_id=("sku_id", "first"), sku_name=("sku_name", "first"), fact_date=("fact_date", "first"),
                    invoice_no=("invoice_no", "first"), qty=("qty", "sum"), total_price=("total_price", "sum")))
    # the source lines are done with: a million of them are most of this stage's memory
    del lines, key, unit, qty, price, is_return
    g_qty, g_price = grouped["qty"].astype("int64"), grouped["total_price"].astype("int64")
    return fact_frame({
        "fact_kind": grouped["fact_kind"],
        "order_id": grouped["po_no"],                       # 발주번호
        "fact_key": grouped["fact_key"],
        "group_key": grouped["po_no"] + "/" + grouped["sku_id"],
        "fact_date": grouped["fact_date"],                  # 작성일자 of the line's invoice
        "document": grouped["invoice_no"],                  # 계산서번호
        "option_id": grouped["sku_id"],                     # SKU번호
        "product_name": grouped["sku_name"],                # SKU명
        "quantity": g_qty,
        "amount": g_price,                                  # 총단가
        "coupon_discount": 0,
        "commission": pd.NA,
        "unit_price": (g_price.abs() // g_qty.abs().where(g_qty != 0, 1)).where(g_qty != 0, g_price.abs()),
    }, text_as_objects=text_as_objects)


def _records(frame: pd.DataFrame) -> list[dict]:
    """The rows as plain dicts of Python values (``to_dict('records')`` boxes each cell: 5x slower)."""
    columns = list(frame.columns)
    return [dict(zip(columns, values, strict=True)) for values in zip(*(frame[c].tolist() for c in columns),
                                                                      strict=True)]


def derive(facts: pd.DataFrame, *, account_id: str) -> Derived:
    """The Rocket order lines of some groups from all their facts (docs/decisions.md, "Rocket returns").

    Per group (발주번호, SKU번호), oldest 반출 first (작성일자, then key):

    1. **Quantity.** The 반출 takes its quantity from the receipts at its own unit price first,
       then from the others; within each, newest 작성일자 first (then line key, descending);
       each receipt gives at most what it still holds.
    2. **Money.** A receipt keeps ⌊총단가 × remaining quantity / quantity⌋: quantity 0 ⇔
       payment 0 ⇔ ``is_cancelled``. What it gives up is shared over the 반출 that took from it
       in proportion to the quantity each took (largest remainder, whole won).
    3. **Adjustments.** What a 반출's 총단가 differs from what its receipts gave is kept in
       ``adjustments``: 'price_difference' (other unit price), 'no_original' (no receipt
       collected) or 'exceeds_original' (more than the receipts hold; its share of the money
       in proportion to that quantity). Per account, Σ payment + Σ adjustments = Σ 총단가 of
       every collected line, returns included.

    A line's key and date are its receipt's own (``line_key`` = the receipt's fact key,
    ``sales_date`` = its invoice's 작성일자); a 반출 never adds a line.
    """
    restated, adjusted = [], []
    receipts_by_group: dict[str, list[dict]] = {}
    returns_by_group: dict[str, list[dict]] = {}
    # One sort; the lines come out in this order (group, newest 작성일자 first, then line key descending).
    receipts = facts[facts["fact_kind"] == RECEIPT_FACT].sort_values(
        ["group_key", "fact_date", "fact_key"], ascending=[True, False, False], kind="stable").reset_index(drop=True)
    returns = facts[facts["fact_kind"] == RETURN_FACT].sort_values(["group_key", "fact_date", "fact_key"],
                                                                   kind="stable")
    for record in _records(returns):
        returns_by_group.setdefault(record["group_key"], []).append(record)
    # A group with nothing returned (nearly all of them): each receipt is its line, as collected,
    # column by column. Only the receipts of groups with a 반출 go through the loop below.
    quantity = np.array(receipts["quantity"].astype("int64").clip(lower=0), dtype="int64")
    payment = np.array(receipts["amount"].astype("int64"), dtype="int64")
    cancelled = np.zeros(len(receipts), dtype=bool)
    cancelled_quantity = np.zeros(len(receipts), dtype="int64")
    cancelled_amount = np.zeros(len(receipts), dtype="int64")
    restated_at = np.flatnonzero(receipts["group_key"].isin(list(returns_by_group)).to_numpy())
    for position, record in zip(restated_at.tolist(), _records(receipts.iloc[restated_at]), strict=True):
        record["position"] = position
        receipts_by_group.setdefault(record["group_key"], []).append(record)
    for group in sorted(returns_by_group):
        held = receipts_by_group.get(group, [])  # newest 작성일자 first, then line key descending
        for line in held:
            line["left"] = max(int(line["quantity"]), 0)
            line["takers"] = []  # (return key, quantity)
        given: dict[str, list] = {}
        for ret in returns_by_group.get(group, []):  # oldest first
            want = abs(int(ret["quantity"]))
            unit = int(ret["unit_price"])
            for line in sorted(held, key=lambda x: int(x["unit_price"]) != unit):  # stable: newest first kept
                take = min(want, line["left"])
                if take:
                    line["left"] -= take
                    line["takers"].append((ret["fact_key"], take))
                    want -= take
            given[ret["fact_key"]] = [ret, want, 0]  # the return, quantity unmatched, money applied
        for line in held:
            qty, amount = int(line["quantity"]), int(line["amount"])
            paid = amount * line["left"] // qty if qty > 0 else amount
            taken_qty = (max(qty, 0) - line["left"])
            shares = largest_remainder(amount - paid, [q for _, q in line["takers"]])
            for (key, q), money in zip(line["takers"], shares, strict=True):
                given[key][2] += money
                restated.append({"group_key": group, "order_id": line["order_id"], "line_key": line["fact_key"],
                                 "fact_kind": RETURN_FACT, "fact_key": key, "quantity": q, "amount": money})
            at = line["position"]
            quantity[at], payment[at] = line["left"], paid
            cancelled[at] = taken_qty > 0 and line["left"] == 0
            cancelled_quantity[at], cancelled_amount[at] = taken_qty, amount - paid
        for key, (ret, unmatched, applied) in given.items():
            returned_qty, returned = abs(int(ret["quantity"])), abs(int(ret["amount"]))
            rest = returned - applied
            unmatched_money = returned if unmatched == returned_qty else returned * unmatched // max(returned_qty, 1)
            parts = []
            if unmatched:
                parts.append(("no_original" if unmatched == returned_qty else "exceeds_original", unmatched,
                              unmatched_money))
            if rest - (unmatched_money if unmatched else 0):
                parts.append(("price_difference", 0, rest - (unmatched_money if unmatched else 0)))
            for reason, unmatched_qty, money in parts:
                adjusted.append({"group_key": group, "fact_kind": RETURN_FACT, "order_id": ret["order_id"],
                                 "fact_key": key, "reason": reason, "fact_date": ret["fact_date"],
                                 "document": ret["document"], "option_id": ret["option_id"],
                                 "quantity": -unmatched_qty, "amount": -money, "seller_shipping_fee": 0})


    def values(column: str):  # from lists, as the loop's rows were, so the types are inferred as before
        return receipts[column].tolist() if len(receipts) else pd.Series([], dtype=object)

    out = pd.DataFrame({"order_id": values("order_id"), "line_key": values("fact_key"),
                        "option_id": values("option_id"), "product_name": values("product_name"),
                        "sales_date": values("fact_date"), "quantity": quantity, "payment_amount": payment,
                        "is_cancelled": cancelled, "cancelled_quantity": cancelled_quantity,
                        "cancelled_amount": cancelled_amount, "group_key": values("group_key")},
                       columns=["order_id", "line_key", "option_id", "product_name", "sales_date", "quantity",
                                "payment_amount", "is_cancelled", "cancelled_quantity", "cancelled_amount",
                                "group_key"])
    n = len(out)
    payment = out["payment_amount"].astype("Int64")
    order_lines = pd.DataFrame({
        "channel": ROCKET,
        "account_id": account_id,
        "order_id": out["order_id"],               # 발주번호
        "line_key": out["line_key"],
        "option_id": out["option_id"],             # SKU번호
        "product_name": out["product_name"],       # SKU명
        "sales_date": out["sales_date"],           # 작성일자 of the receipt's invoice
        "quantity": out["quantity"].astype("Int64"),
        "gross_amount": payment,
        "coupon_discount": pd.array([0] * n, dtype="Int64"),
        "payment_amount": payment,                 # 총단가, restated
        "seller_shipping_fee": pd.array([0] * n, dtype="Int64"),
        "collected_commission": pd.array([pd.NA] * n, dtype="Int64"),
        "is_cancelled": out["is_cancelled"].astype(bool),
        "source": "rocket",
        "cancelled_quantity": out["cancelled_quantity"].astype("Int64"),
        "cancelled_amount": out["cancelled_amount"].astype("Int64"),
    }, columns=list(ORDER_LINE_COLUMNS))
    order_lines["group_key"] = out["group_key"].astype(object)
    for name in ("channel", "account_id", "source"):
        order_lines[name] = order_lines[name].astype(object)
    order_lines["is_cancelled"] = order_lines["is_cancelled"].astype(bool)
    return Derived(order_lines.reset_index(drop=True),
                   typed(pd.DataFrame(restated), RESTATEMENT_COLUMNS, ("quantity", "amount")),
                   typed(pd.DataFrame(adjusted), ADJUSTMENT_COLUMNS, ("quantity", "amount", "seller_shipping_fee")))
