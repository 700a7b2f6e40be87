"""The warehouse row shapes shared by the channel policies and the loader."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ROCKET = "coupang_rocket"
JET = "coupang_jet"

# sales.order_lines, in table order. Money columns are integer won.
ORDER_LINE_COLUMNS: tuple[str, ...] = (
    "channel",
    "account_id",
    "order_id",
    "line_key",
    "option_id",
    "product_name",
    "sales_date",
    "quantity",
    "gross_amount",
    "coupon_discount",
    "payment_amount",
    "seller_shipping_fee",
    "collected_commission",
    "is_cancelled",
    "source",
    "cancelled_quantity",
    "cancelled_amount",
)
# sales.collected_facts (without run_id, collected_at), sales.restatements and
# sales.restatement_adjustments (without channel, account_id): see coupang_sales.facts.
FACT_COLUMNS: tuple[str, ...] = (
    "fact_kind", "order_id", "fact_key", "group_key", "fact_date", "document", "option_id", "product_name",
    "quantity", "amount", "coupon_discount", "commission", "unit_price",
)
RESTATEMENT_COLUMNS: tuple[str, ...] = ("group_key", "order_id", "line_key", "fact_kind", "fact_key", "quantity",
                                        "amount")
ADJUSTMENT_COLUMNS: tuple[str, ...] = ("group_key", "fact_kind", "order_id", "fact_key", "reason", "fact_date",
                                       "document", "option_id", "quantity", "amount", "seller_shipping_fee")
MONEY_COLUMNS = ("gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee",
                 "collected_commission", "cancelled_amount")


@dataclass(frozen=True)
class Window:
    """Inclusive range of Asia/Seoul dates a run collects."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def days(self) -> list[dt.date]:
        n = (self.end - self.start).days
        return [self.start + dt.timedelta(days=i) for i in range(n + 1)]

    @classmethod
    def ending(cls, end: dt.date, lookback_days: int) -> "Window":
        return cls(end - dt.timedelta(days=lookback_days), end)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def dated_within(frame, column: str, window: Window):
    """The rows of ``frame`` whose ``column`` date lies in ``window`` (an empty frame keeps its columns)."""
    mask = [day in window for day in frame[column]]
    return frame.loc[frame.index[mask] if mask else frame.index[:0]]
