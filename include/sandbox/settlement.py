"""Wing's Rocket Growth settlement groups of a scenario account, and the report rows of each group.

A settlement group (정산 그룹) is a settlement period of one vendor: a Monday-Sunday week cut
at the month end (주정산) or a calendar month (월정산). Its key is ``{vendorId}-{from}-{to}``
with the dates as YYYYMMDD. Rows belong to the group holding their 매출인식일: an order on
its ``recognized_date``, its cancellation (and fee reversals) on ``cancelled_date``, an
account fee on its ``date`` (REAL-PORTALS.md §4, scenario-format.md).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sandbox.scenario import JET_ACCOUNT_FEE_FIELDS, JetAccount, JetV2Order

CATEGORY_TR = "CATEGORY_TR"  # 판매 수수료 리포트
WAREHOUSING_SHIPPING = "WAREHOUSING_SHIPPING"  # 입출고비/배송비 리포트
ORDER_SETTLEMENT, ORDER_CANCELLATION = "주문 정산", "주문 정산취소"
CYCLE_NAMES = {"weekly": "주정산", "monthly": "월정산"}
# The detail totals of the status answer that come from report rows; the account fees add theirs.
SALES_TOTAL, REFUND_TOTAL = "totalSalesAmount", "totalRefundedAmount"
ORDER_FEE_FIELDS = {"입출고비": "totalWarehousingFeeDeductionAmount", "배송비": "totalFulfillmentFeeDeductionAmount"}
# Paid in two parts; the same group is listed once per part.
SETTLEMENT_RATIOS = (70, 30)


@dataclass(frozen=True)
class Group:
    vendor_id: str
    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        return f"{self.vendor_id}-{self.start:%Y%m%d}-{self.end:%Y%m%d}"

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def period_of(day: dt.date, cycle: str) -> tuple[dt.date, dt.date]:
    """The settlement period holding ``day``: its Monday-Sunday week cut at the month's edges, or its month."""
    month_start = day.replace(day=1)
    month_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    if cycle == "monthly":
        return month_start, month_end
    monday = day - dt.timedelta(days=day.weekday())
    return max(monday, month_start), min(monday + dt.timedelta(days=6), month_end)


def group_of(account: JetAccount, day: dt.date) -> Group:
    return Group(account.vendor, *period_of(day, account.settlement_cycle))


def _activity_days(account: JetAccount) -> set[dt.date]:
    days = {o.recognized_date for o in account.v2_orders}
    days |= {o.cancelled_date for o in account.v2_orders if o.cancelled_date}
    days |= {f.date for f in account.account_fees}
    return days


def groups(account: JetAccount, start: dt.date, end: dt.date, today: dt.date) -> list[Group]:
    """The account's groups with any activity that overlap [start, end] and have begun by ``today``."""
    found = {group_of(account, day) for day in _activity_days(account)}
    return sorted((g for g in found if g.start <= end and g.end >= start and g.start <= today),
                  key=lambda g: g.start)


def _signed(amount: int, cancelled: bool, sign: str) -> int:
    return -amount if cancelled and sign == "negative" else amount


def _entries(account: JetAccount, group: Group) -> list[tuple[dt.date, bool, JetV2Order]]:
    """(매출인식일, is_cancellation, the order or its cancelled part) of the group's rows, in date order."""
    out = []
    for order in account.v2_orders:
        if order.recognized_date in group:
            out.append((order.recognized_date, False, order))
        if order.cancelled_date is not None and order.cancelled_date in group:
            out.append((order.cancelled_date, True, order.cancelled_part()))
    return sorted(out, key=lambda e: (e[0], e[1], e[2].order_id, e[2].option_id))


def category_tr_rows(account: JetAccount, group: Group) -> list[dict[str, Any]]:
    """The group's CATEGORY_TR rows keyed by header; numbers as numbers, dates as YYYY-MM-DD text."""
    rows = []
    cycle = CYCLE_NAMES[account.settlement_cycle]
    for day, cancelled, o in _entries(account, group):
        def s(amount: int, cancelled: bool = cancelled) -> int:
            return _signed(amount, cancelled, account.cancellation_sign)

        rows.append({
            "정산유형": cycle, "정산주기(종료일)": group.end.isoformat(),
            "세금계산서 발행월": f"{group.end:%Y-%m}", "발생일(결제완료일)": o.order_date.isoformat(),
            "매출인식일": day.isoformat(), "주문ID": o.order_id,
            "거래유형": ORDER_CANCELLATION if cancelled else ORDER_SETTLEMENT,
            "카테고리ID": o.category_id, "카테고리명": "음료", "과세유형": "과세",
            "등록상품 ID": o.product_id, "옵션ID": o.option_id, "SKU ID": o.sku_id,
            "등록상품명": o.product_name, "옵션명": o.option_name,
            "판매가(A)": o.unit_price, "판매수량(B)": s(o.qty), "판매액(A*B)": s(o.sales_amount),
            "쿠팡지원할인(C)": s(o.coupang_discount), "매출금액(A*B-C)": s(o.revenue_amount),
            "즉시할인쿠폰(D)": s(o.instant_coupon), "다운로드쿠폰(E)": s(o.download_coupon),
            "판매자할인쿠폰(D+E)": s(o.seller_coupon), "정산대상액": s(o.settlement_amount),
            "판매수수료율(%,VAT별도)": float(o.commission_rate),
            "할인적용 판매수수료율(%,VAT별도)": float(o.commission_rate),
            "판매수수료": s(o.commission), "판매수수료 VAT": s(o.commission_vat),
        })
    return rows


def warehousing_shipping_rows(account: JetAccount, group: Group) -> dict[str, list[dict[str, Any]]]:
    """The group's WAREHOUSING_SHIPPING rows by sheet (입출고비, 배송비), keyed by header."""
    sheets: dict[str, list[dict[str, Any]]] = {"입출고비": [], "배송비": []}
    cycle = CYCLE_NAMES[account.settlement_cycle]
    for day, cancelled, o in _entries(account, group):
        def s(amount: int, cancelled: bool = cancelled) -> int:
            return _signed(amount, cancelled, account.cancellation_sign)

        for fee in o.fees:
            row = {
                "주문ID": o.order_id, "배송ID": o.shipment_id, "등록상품 ID": o.product_id, "옵션ID": o.option_id,
                "SKU ID": o.sku_id, "등록상품명": o.product_name, "옵션명": o.option_name, "1차": "식품", "2차": "음료",
                "개별포장 상품 사이즈": o.package_size, "물류센터": o.center,
                "거래유형": f"{fee.type} 정산{'취소' if cancelled else ''}", "정산유형": cycle,
                "단품 판매가": o.unit_price, "단품 기준 구매 수량": s(o.qty), "판매수량": s(o.qty),
                "발생비용(A)": s(fee.amount), "할인가(B)": s(fee.discount),
                "할인적용가(A-B)": s(fee.amount - fee.discount), "추가비용": 0,
                "주문일": o.order_date.isoformat(), "매출인식일": day.isoformat(),
                "정산주기(종료일)": group.end.isoformat(),
            }
            sheets[fee.type].append(row)
    return sheets


def totals(account: JetAccount, group: Group) -> dict[str, int]:
    """``settlementStatusReportDetail`` of the group: sales, refunds, order and account fees (won, VAT excluded)."""
    detail = {SALES_TOTAL: 0, REFUND_TOTAL: 0, **dict.fromkeys(ORDER_FEE_FIELDS.values(), 0),
              **dict.fromkeys(JET_ACCOUNT_FEE_FIELDS.values(), 0)}
    for _, cancelled, o in _entries(account, group):
        if cancelled:
            detail[REFUND_TOTAL] += o.sales_amount
        else:
            detail[SALES_TOTAL] += o.sales_amount
        for fee in o.fees:
            net = fee.amount - fee.discount
            detail[ORDER_FEE_FIELDS[fee.type]] += -net if cancelled else net
    for fee in account.account_fees:
        if fee.date in group:
            detail[JET_ACCOUNT_FEE_FIELDS[fee.type]] += fee.amount
    return detail


def settlement_amount(account: JetAccount, group: Group) -> int:
    """What the group pays the seller: 정산대상액 of its rows less every deduction."""
    paid = 0
    for _, cancelled, o in _entries(account, group):
        paid += -o.settlement_amount if cancelled else o.settlement_amount
    detail = totals(account, group)
    deductions = sum(v for k, v in detail.items() if k not in (SALES_TOTAL, REFUND_TOTAL))
    return paid - deductions
