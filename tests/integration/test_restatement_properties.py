"""Property tests: the same facts through random sequences of runs (daily runs, backfills with a
look-ahead, range runs, overlapping re-runs, facts appearing late) always leave the rows that
deriving from all the facts at once gives, and money is conserved per account.

The real policy and the real load run against the test PostgreSQL; only the browser is left out
(each run reads what the portal would list for its window: see ``restatement_world``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from restatement_world import JetWorld, RocketWorld, paid_and_adjusted, rocket_line, tr_row, ws_row

from coupang_sales.model import Window

pytestmark = pytest.mark.integration
DAY0 = dt.date(2026, 1, 1)
DAYS = 100
SETTINGS = settings(max_examples=int(__import__("os").environ.get("RESTATEMENT_EXAMPLES", "15")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LINE_COLUMNS = ("order_id, line_key, sales_date, quantity, gross_amount, coupon_discount, payment_amount, "
                "seller_shipping_fee, collected_commission, is_cancelled, cancelled_quantity, cancelled_amount")


def day(offset: int) -> dt.date:
    return DAY0 + dt.timedelta(days=offset)


# --------------------------------------------------------------------------- runs

run = st.one_of(
    st.tuples(st.just("daily"), st.integers(0, DAYS), st.sampled_from([0, 1, 3, 14])),
    st.tuples(st.just("backfill"), st.integers(0, DAYS), st.sampled_from([0, 14]), st.sampled_from([0, 7, 60])),
    st.tuples(st.just("range"), st.integers(0, DAYS), st.integers(0, 40)),
)


def reads(spec) -> tuple[Window, dt.date, dt.date]:
    """(window, last date read, the run's today) of a run spec."""
    if spec[0] == "daily":
        end = day(spec[1])
        return Window(end - dt.timedelta(days=spec[2]), end), end + dt.timedelta(days=1), end + dt.timedelta(days=1)
    if spec[0] == "backfill":
        end = day(spec[1])
        return Window(end - dt.timedelta(days=spec[2]), end), end + dt.timedelta(days=spec[3]), None
    start = day(spec[1])
    end = min(day(DAYS), start + dt.timedelta(days=spec[2]))
    return Window(start, end), end, None


@st.composite
def schedules(draw):
    """Random runs, then runs covering every day once (in a random order, random chunks): all facts are read."""
    runs = draw(st.lists(run, max_size=6))
    cuts = sorted(draw(st.sets(st.integers(1, DAYS), max_size=6)))
    chunks = [(a, b - 1) for a, b in zip([-30, *cuts], [*cuts, DAYS + 31], strict=True)]
    chunks = draw(st.permutations(chunks))
    return runs + [("range", a, b - a) for a, b in chunks]


def play(world, conn, schedule, *, late=None) -> None:
    """Run the schedule; the portal's clock only moves forward (a backfill runs 'today')."""
    clock = DAY0
    for n, spec in enumerate(schedule):
        window, until, today = reads(spec)
        if spec[0] == "range" and spec[1] < 0:  # the covering runs: [day(a), day(b)]
            window = Window(day(spec[1]), day(spec[1] + spec[2]))
            until = window.end
        clock = max(clock, today or clock)
        final = n >= len(schedule) - 1 or all(s[0] == "range" for s in schedule[n:])
        visible = dt.date.max if final else clock
        world.run(conn, window, min(until, visible) if until > window.end else until, run_id=f"run-{n}",
                  **({"today": visible} if late else {}))


def clear(conn) -> None:
    conn.execute("TRUNCATE sales.order_lines, sales.collected_facts, sales.restatements, "
                 "sales.restatement_adjustments, sales.order_line_changes")


def stored(conn, account_id: str) -> tuple[list, list, list]:
    lines = conn.execute(f"SELECT {LINE_COLUMNS} FROM sales.order_lines WHERE account_id = %s "
                         "ORDER BY order_id, line_key", (account_id,)).fetchall()
    restated = conn.execute("SELECT order_id, line_key, fact_kind, fact_key, quantity, amount FROM sales.restatements "
                            "WHERE account_id = %s ORDER BY 1, 2, 3, 4", (account_id,)).fetchall()
    adjusted = conn.execute("SELECT fact_kind, order_id, fact_key, reason, quantity, amount, seller_shipping_fee "
                            "FROM sales.restatement_adjustments WHERE account_id = %s ORDER BY 1, 2, 3, 4",
                            (account_id,)).fetchall()
    return lines, restated, adjusted


def expected(derived) -> tuple[list, list, list]:
    """The rows of deriving from every fact at once, as the queries of ``stored`` return them."""
    import pandas as pd

    def value(v):
        if v is None or v is pd.NA:
            return None
        if hasattr(v, "item"):
            return v.item()
        return v

    lines = sorted(tuple(value(r[c.strip()]) for c in LINE_COLUMNS.split(","))
                   for r in derived.order_lines.to_dict("records"))
    restated = sorted(tuple(value(r[c]) for c in ("order_id", "line_key", "fact_kind", "fact_key", "quantity",
                                                   "amount")) for r in derived.restatements.to_dict("records"))
    adjusted = sorted(tuple(value(r[c]) for c in ("fact_kind", "order_id", "fact_key", "reason", "quantity", "amount",
                                                   "seller_shipping_fee"))
                      for r in derived.adjustments.to_dict("records"))
    return lines, restated, adjusted


# --------------------------------------------------------------------------- Rocket

@st.composite
def rocket_worlds(draw):
    world = RocketWorld()
    for n in range(draw(st.integers(1, 6))):
        written = draw(st.integers(0, DAYS))
        no = f"3{n:03d}"
        lines = []
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["발주", "발주", "반출"]))
            qty = draw(st.integers(1, 5)) * (-1 if kind == "반출" else 1)
            po, sku = draw(st.sampled_from(["PO1", "PO2"])), draw(st.sampled_from(["S1", "S2"]))
            lines.append(rocket_line(no, kind, po, sku, qty, draw(st.sampled_from([1_000, 1_100, 1_500])),
                                     moved=day(max(written - draw(st.integers(0, 3)), 0)).isoformat(),
                                     center=draw(st.sampled_from(["이천1", "평택"]))))
        world.invoice(no, day(written).isoformat(), *[dict(t) for t in dict.fromkeys(tuple(x.items()) for x in lines)])
    return world


@SETTINGS
@given(world=rocket_worlds(), schedule=schedules())
def test_rocket_rows_are_the_same_whatever_the_runs_and_money_is_conserved(warehouse, world, schedule):
    from coupang_sales.rocket import policy as rocket

    clear(warehouse)
    play(world, warehouse, schedule)
    everything = RocketWorld(invoices=world.invoices)
    import pandas as pd

    rows = [{"계산서번호": no, "작성일자": d.isoformat(), "공급가액": "0", "부가가치세": "0", "지급예정금액": "0",
             "세금계산서 확정일": d.isoformat(), "발행유형": "역발행"} for no, (d, _) in everything.invoices.items()]
    raw = pd.DataFrame([x for _, lines in everything.invoices.values() for x in lines],
                       columns=list(rocket.DETAIL_COLUMNS))
    facts = rocket.facts(rocket.parse_invoices(rows), rocket.parse_receive_detail(raw, source="all"))
    assert stored(warehouse, "V1") == expected(rocket.derive(facts, account_id="V1"))
    assert paid_and_adjusted(warehouse, "V1") == world.total()
    zero_together = warehouse.execute(
        "SELECT count(*) FROM sales.order_lines WHERE (quantity = 0) <> (payment_amount = 0) "
        "OR (quantity = 0) <> is_cancelled").fetchone()[0]
    assert zero_together == 0


# --------------------------------------------------------------------------- Jet v2

@st.composite
def jet_worlds(draw):
    world = JetWorld()
    world.available = {}
    for n in range(draw(st.integers(1, 8))):
        order, option = draw(st.sampled_from(["O1", "O2", "O3"])), draw(st.sampled_from(["A", "B"]))
        recognized = draw(st.integers(0, DAYS))
        cancel = draw(st.booleans()) and n > 0
        qty, price = draw(st.integers(1, 3)), draw(st.sampled_from([9_900, 10_000, 12_900]))
        row = tr_row(order, option, day(recognized).isoformat(), qty=qty, price=price,
                     coupon=draw(st.sampled_from([0, 500])), commission=draw(st.sampled_from([0, 1_080])),
                     cancel=cancel)
        # a row may show in the report only days after its 매출인식일 (it arrives late)
        world.available[len(world.category_tr)] = day(recognized + draw(st.sampled_from([0, 0, 2, 20])))
        world.category_tr.append(row)
    for _ in range(draw(st.integers(0, 4))):
        order = draw(st.sampled_from(["O1", "O2", "O3", "O9"]))
        kind = draw(st.sampled_from(["배송비 정산", "입출고비 정산", "배송비 정산취소"]))
        world.warehousing.append(ws_row(order, kind, draw(st.sampled_from([650, 2_500])),
                                        day(draw(st.integers(0, DAYS))).isoformat()))
    return world


class LateJetWorld(JetWorld):
    """A JetWorld whose report rows show only from their ``available`` day on."""

    def run(self, conn, window, until=None, run_id="run", today=None, **kwargs):
        shown = JetWorld(account_id=self.account_id, warehousing=self.warehousing,
                         category_tr=[r for i, r in enumerate(self.category_tr)
                                      if today is None or self.available[i] <= today])
        return shown.run(conn, window, until, run_id=run_id, **kwargs)


@SETTINGS
@given(world=jet_worlds(), schedule=schedules())
def test_jet_rows_are_the_same_whatever_the_runs_and_money_is_conserved(warehouse, world, schedule):
    import pandas as pd

    from coupang_sales.jet import policy as jet

    clear(warehouse)
    late = LateJetWorld(category_tr=world.category_tr, warehousing=world.warehousing)
    late.available = world.available
    play(late, warehouse, schedule, late=True)
    result = jet.transform_v2(pd.DataFrame(world.category_tr, columns=list(jet.CATEGORY_TR_REQUIRED)),
                              pd.DataFrame(world.warehousing, columns=list(jet.WAREHOUSING_SHIPPING_REQUIRED)),
                              account_id="A1")
    assert stored(warehouse, "A1") == expected(jet.derive_v2(result.facts, account_id="A1"))
    # Σ payment (+ what no line could take) = Σ 주문 정산 − Σ 주문 정산취소
    assert paid_and_adjusted(warehouse, "A1") == world.total()
    fees = warehouse.execute(
        "SELECT coalesce((SELECT sum(seller_shipping_fee) FROM sales.order_lines), 0) "
        "+ coalesce((SELECT sum(seller_shipping_fee) FROM sales.restatement_adjustments), 0)").fetchone()[0]
    signed = sum((-1 if r["거래유형"].endswith("취소") else 1) * int(r["발생비용(A)"].replace(",", ""))
                 for r in world.warehousing)
    assert fees == signed
