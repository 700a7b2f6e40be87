"""Collected facts and what the policies derive from them.

A *fact* is one source row as collected: a receipt or a 반출 of a Supplier Hub invoice, a
'주문 정산' or '주문 정산취소' row or a per-order fee row of a Wing report. Facts are kept in
``sales.collected_facts`` keyed by their source row; the order lines are derived from all the
facts of a *group* (Rocket: 발주번호 + SKU번호; Jet v2: 주문ID), so a return or a cancellation
restates its original line whatever run brought either of them (PRODUCT.md §2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from coupang_sales.model import ADJUSTMENT_COLUMNS, FACT_COLUMNS, RESTATEMENT_COLUMNS  # noqa: F401

FACT_INTEGER_COLUMNS = ("quantity", "amount", "coupon_discount", "commission", "unit_price")
# Adjustments whose original was never collected (or is too small): they warn.
UNAPPLIED_REASONS = ("no_original", "exceeds_original", "fee_without_line")


@dataclass
class Derived:
    """What the facts of some groups give: their order lines (ORDER_LINE_COLUMNS + group_key), how each
    return/cancellation applies to each line, and the money no line carries."""

    order_lines: pd.DataFrame
    restatements: pd.DataFrame
    adjustments: pd.DataFrame

    def unapplied(self) -> pd.DataFrame:
        return self.adjustments[self.adjustments["reason"].isin(UNAPPLIED_REASONS)]


def fact_frame(rows: dict[str, object] | pd.DataFrame, *, text_as_objects: bool = True) -> pd.DataFrame:
    """A facts frame in table order with the warehouse's types (integers nullable Int64).

    Text is Python ``str`` (``None`` when missing), as the policies read it; ``text_as_objects=False``
    leaves it in the frame's own string type, for a frame that is only written to a staged file (read
    back, both are the same text: a million facts' text as Python objects is about half a gigabyte)."""
    frame = pd.DataFrame(rows, columns=list(FACT_COLUMNS))
    for name in FACT_INTEGER_COLUMNS:
        frame[name] = frame[name].astype("Int64")
    if not text_as_objects:
        frame["fact_date"] = frame["fact_date"].astype(object)
        return frame.reset_index(drop=True)
    for name in ("fact_kind", "order_id", "fact_key", "group_key", "document", "option_id", "product_name"):
        frame[name] = pd.Series(shared_objects(frame[name]), index=frame.index, dtype=object)
    frame["fact_date"] = frame["fact_date"].astype(object)
    return frame.reset_index(drop=True)


def shared_objects(values: pd.Series) -> np.ndarray:
    """``values`` as Python objects, ``None`` where missing, equal texts one object.

    A text column of pandas' own string type (what a staged Parquet file reads back as) gives a new
    ``str`` per cell when cast to ``object``: a million facts repeat their kinds, documents, orders
    and options, and one object per distinct value is a fraction of the memory.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)  # the last entry (code -1) is the missing value
    table[:-1] = np.asarray(uniques, dtype=object)
    table[-1] = None
    return table[codes]


def typed(frame: pd.DataFrame, columns: Sequence[str], integers: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(frame, columns=list(columns)).reset_index(drop=True)
    for name in columns:
        if name in integers:
            out[name] = out[name].astype("Int64")
        else:
            out[name] = out[name].astype(object)
            out[name] = out[name].where(out[name].notna(), None)
    return out


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` (whole won, any sign) split in proportion to ``weights`` (≥ 0), summing exactly to it.

    Each part is floor(|total| × weight / Σ weights); the won left over go one each to the
    largest remainders, ties to the earlier weight. All-zero weights split evenly.
    """
    if not weights:
        return []
    size, sign = abs(int(total)), (-1 if total < 0 else 1)
    weights = [max(int(w), 0) for w in weights]
    if sum(weights) == 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    parts, remainders = [], []
    for w in weights:
        q, r = divmod(size * w, whole)
        parts.append(q)
        remainders.append(r)
    left = size - sum(parts)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[i] += 1
    return [sign * p for p in parts]
