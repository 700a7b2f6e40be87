"""A seller's facts over time, and runs that collect a window of them into the warehouse (no browser).

``RocketWorld`` holds invoices (each with its 입고상세내역 lines); ``JetWorld`` holds CATEGORY_TR
and WAREHOUSING_SHIPPING rows. ``run(conn, window, until)`` reads what a real run would read
for that window (invoices written / rows recognised in [window.start, until]) and goes through
the real policy and the real load, as the DAG's transform and load stages do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from coupang_sales.model import JET, ROCKET, Window

D = dt.date.fromisoformat


def rocket_line(no: str, kind: str, po: str, sku: str, qty: int, unit: int, moved: str = "2026-01-03",
                center: str = "이천1") -> dict[str, str]:
    return {"구분": kind, "번호": po, "SKU번호": sku, "SKU명": f"상품 {sku}", "입고/반출일자": moved,
            "물류센터": center, "세금타입": "과세", "수량": str(qty), "단가": f"{unit:,}", "공급가액": f"{unit:,}",
            "세액": "0", "총단가": f"{qty * unit:,}", "총공급가액": f"{qty * unit:,}", "총세액": "0",
            "계산서번호": no, "지급일": "2026-12-31"}


@dataclass
class RocketWorld:
    account_id: str = "V1"
    invoices: dict[str, tuple[dt.date, list[dict]]] = field(default_factory=dict)

    def invoice(self, no: str, written: str, *lines: dict) -> None:
        self.invoices[no] = (D(written), list(lines))

    def total(self) -> int:
        return sum(int(x["총단가"].replace(",", "")) for _, lines in self.invoices.values() for x in lines)

    def run(self, conn, window: Window, until: dt.date | None = None, run_id: str = "run", checked=None):
        from coupang_sales.rocket import policy as rocket
        from coupang_sales.warehouse import load_facts

        until = max(window.end, until or window.end)
        read = {no: v for no, v in self.invoices.items() if window.start <= v[0] <= until}
        rows = [{"계산서번호": no, "작성일자": day.isoformat(), "공급가액": "0", "부가가치세": "0",
                 "지급예정금액": f"{sum(int(x['총단가'].replace(',', '')) for x in lines):,}",
                 "세금계산서 확정일": day.isoformat(), "발행유형": "역발행"} for no, (day, lines) in read.items()]
        invoices = rocket.parse_invoices(rows)
        raw = pd.DataFrame([x for _, lines in read.values() for x in lines], columns=list(rocket.DETAIL_COLUMNS))
        lines = rocket.drop_duplicate_lines(rocket.parse_receive_detail(raw, source="test")).lines
        facts = rocket.facts(invoices, lines)
        derive = checked or (lambda stored: rocket.derive(stored, account_id=self.account_id))
        return load_facts(conn, channel=ROCKET, account_id=self.account_id, facts=facts,
                          kinds=rocket.ROCKET_FACT_KINDS, read_range=Window(window.start, until),
                          documents=tuple(invoices["invoice_no"]), derive=derive, sources=("rocket",), run_id=run_id)


def tr_row(order: str, option: str, day: str, *, qty: int = 1, price: int = 10_000, coupon: int = 0,
           commission: int = 0, cancel: bool = False) -> dict[str, str]:
    sign = -1 if cancel else 1
    return {"주문ID": order, "옵션ID": option, "거래유형": "주문 정산취소" if cancel else "주문 정산",
            "판매수량(B)": str(sign * qty), "판매액(A*B)": f"{sign * qty * price:,}", "쿠팡지원할인(C)": "0",
            "판매자할인쿠폰(D+E)": f"{sign * coupon:,}", "판매수수료": f"{sign * commission:,}", "판매수수료 VAT": "0",
            "매출인식일": day}


def ws_row(order: str, kind: str, fee: int, day: str) -> dict[str, str]:
    return {"주문ID": order, "거래유형": kind, "발생비용(A)": f"{fee:,}", "할인가(B)": "0", "추가비용": "0",
            "매출인식일": day}


@dataclass
class JetWorld:
    account_id: str = "A1"
    category_tr: list[dict] = field(default_factory=list)
    warehousing: list[dict] = field(default_factory=list)

    def total(self) -> int:
        """Σ payment of the 주문 정산 rows minus their 정산취소 rows."""
        return sum(int(r["판매액(A*B)"].replace(",", "")) - int(r["판매자할인쿠폰(D+E)"].replace(",", ""))
                   for r in self.category_tr)

    def run(self, conn, window: Window, until: dt.date | None = None, run_id: str = "run", checked=None):
        from coupang_sales.jet import policy as jet
        from coupang_sales.warehouse import load_facts

        until = max(window.end, until or window.end)
        tr = [r for r in self.category_tr if window.start <= D(r["매출인식일"]) <= until]
        ws = [r for r in self.warehousing if window.start <= D(r["매출인식일"]) <= until]
        result = jet.transform_v2(pd.DataFrame(tr, columns=list(jet.CATEGORY_TR_REQUIRED)),
                                  pd.DataFrame(ws, columns=list(jet.WAREHOUSING_SHIPPING_REQUIRED)),
                                  account_id=self.account_id)
        derive = checked or (lambda stored: jet.derive_v2(stored, account_id=self.account_id))
        return load_facts(conn, channel=JET, account_id=self.account_id, facts=result.facts,
                          kinds=jet.JET_FACT_KINDS, read_range=Window(window.start, until), derive=derive,
                          sources=("jet_v2",), run_id=run_id)


def lines(conn, account_id: str) -> list[tuple]:
    return conn.execute(
        "SELECT order_id, line_key, sales_date, quantity, gross_amount, coupon_discount, payment_amount, "
        "seller_shipping_fee, collected_commission, is_cancelled, cancelled_quantity, cancelled_amount "
        "FROM sales.order_lines WHERE account_id = %s ORDER BY order_id, line_key", (account_id,)).fetchall()


def paid_and_adjusted(conn, account_id: str) -> int:
    return conn.execute(
        "SELECT coalesce((SELECT sum(payment_amount) FROM sales.order_lines WHERE account_id = %(a)s), 0) "
        "+ coalesce((SELECT sum(amount) FROM sales.restatement_adjustments WHERE account_id = %(a)s), 0)",
        {"a": account_id}).fetchone()[0]
