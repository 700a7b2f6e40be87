"""A return or cancellation restates its original line whenever it arrives (PRODUCT.md §2): the real
policy and the real load against PostgreSQL, runs simulated by what each would read (no browser)."""

from __future__ import annotations

import datetime as dt

import pytest
from restatement_world import D, JetWorld, RocketWorld, lines, paid_and_adjusted, rocket_line, tr_row, ws_row

from coupang_sales.model import Window

pytestmark = pytest.mark.integration


def daily(day: str, lookback: int = 14) -> tuple[Window, dt.date]:
    """The window and read limit of the scheduled run for ``day`` (run the next morning: today = day + 1)."""
    end = D(day)
    return Window(end - dt.timedelta(days=lookback), end), end + dt.timedelta(days=1)


def backfill(day: str, lookback: int = 14, horizon: int = 60, today: str = "2026-06-30") -> tuple[Window, dt.date]:
    end = D(day)
    return Window(end - dt.timedelta(days=lookback), end), min(D(today), end + dt.timedelta(days=horizon))


def rocket_purchase_and_return(returned_on: str) -> RocketWorld:
    world = RocketWorld()
    world.invoice("300", "2026-01-05", rocket_line("300", "발주", "PO1", "S1", 10, 9_900))
    world.invoice("301", returned_on, rocket_line("301", "반출", "PO1", "S1", -10, 9_900, moved=returned_on))
    return world


def test_a_return_on_an_invoice_written_40_days_after_the_purchase_restates_it(warehouse):
    world = rocket_purchase_and_return("2026-02-14")
    world.run(warehouse, *daily("2026-01-05"), run_id="day-0105")
    result = world.run(warehouse, *daily("2026-02-14"), run_id="day-0214")
    assert lines(warehouse, "V1") == [("PO1", "300:S1:2026-01-03:이천1", D("2026-01-05"), 0, 0, 0, 0, 0, None,
                                       True, 10, 99_000)]
    assert result.unapplied == () and result.changed == 1


def test_a_backfill_of_an_old_date_does_not_undo_a_restatement(warehouse):
    """Sale 5 January, return on an invoice written 20 March; the backfill of 5 January reads
    invoices up to 6 March only (look-ahead 60 days) and must leave 5 January restated."""
    world = rocket_purchase_and_return("2026-03-20")
    world.run(warehouse, *daily("2026-01-05"), run_id="day-0105")
    world.run(warehouse, *daily("2026-03-20"), run_id="day-0320")
    world.run(warehouse, *backfill("2026-01-05"), run_id="backfill-0105")
    assert [(r[2], r[6], r[9]) for r in lines(warehouse, "V1")] == [(D("2026-01-05"), 0, True)]


def test_why_did_5_january_drop_in_march_is_one_query(warehouse):
    world = rocket_purchase_and_return("2026-03-20")
    world.run(warehouse, *daily("2026-01-05"), run_id="day-0105")
    world.run(warehouse, *daily("2026-03-20"), run_id="day-0320")
    rows = warehouse.execute(
        """
        SELECT c.run_id, c.old_payment_amount, c.new_payment_amount, f->>'kind', f->>'document', f->>'fact_date',
               c.cause
        FROM sales.order_line_changes c, jsonb_array_elements(c.cause_facts) f
        WHERE c.channel = 'coupang_rocket' AND c.account_id = 'V1' AND c.sales_date = '2026-01-05'
          AND c.change = 'changed'
        """).fetchall()
    assert rows[0][:6] == ("day-0320", 99_000, 0, "반출", "301", "2026-03-20")
    assert "반출" in rows[0][6] and "301" in rows[0][6]


def test_a_return_whose_original_was_never_collected_is_kept_and_applies_once_the_original_arrives(warehouse):
    world = rocket_purchase_and_return("2026-03-20")
    result = world.run(warehouse, *daily("2026-03-20"), run_id="day-0320")  # the purchase was never read
    assert [(u["reason"], u["document"], u["amount"]) for u in result.unapplied] == [("no_original", "301", -99_000)]
    assert lines(warehouse, "V1") == []
    assert paid_and_adjusted(warehouse, "V1") == -99_000
    world.run(warehouse, Window(D("2026-01-01"), D("2026-01-31")), run_id="range-jan")  # collected later
    assert [(r[2], r[6], r[9]) for r in lines(warehouse, "V1")] == [(D("2026-01-05"), 0, True)]
    assert warehouse.execute("SELECT count(*) FROM sales.restatement_adjustments").fetchone()[0] == 0
    assert paid_and_adjusted(warehouse, "V1") == world.total() == 0


def test_rocket_partial_return_across_receipts_at_different_prices_never_leaves_money_on_quantity_zero(warehouse):
    world = RocketWorld()
    world.invoice("300", "2026-01-05", rocket_line("300", "발주", "PO1", "S1", 2, 1_000))
    world.invoice("301", "2026-01-06", rocket_line("301", "발주", "PO1", "S1", 1, 2_000))
    world.invoice("302", "2026-02-20", rocket_line("302", "반출", "PO1", "S1", -1, 1_000, moved="2026-02-20"),
                  rocket_line("302", "반출", "PO1", "S1", -1, 1_500, moved="2026-02-20"))
    world.run(warehouse, Window(D("2026-01-01"), D("2026-01-31")), run_id="jan")
    world.run(warehouse, *daily("2026-02-20"), run_id="day-0220")
    got = [(r[2], r[3], r[6], r[9]) for r in lines(warehouse, "V1")]
    # the 1,000-won return takes the 1,000-won receipt; the 1,500-won one the newest receipt (2,000 won)
    assert got == [(D("2026-01-05"), 1, 1_000, False), (D("2026-01-06"), 0, 0, True)]
    assert warehouse.execute("SELECT reason, amount FROM sales.restatement_adjustments").fetchall() == [
        ("price_difference", 500)]
    assert paid_and_adjusted(warehouse, "V1") == world.total() == 4_000 - 2_500


def test_jet_order_option_settled_on_two_days_keeps_both_days_after_the_first_leaves_the_lookback(warehouse):
    """2 x 10,000 won on 1 and 3 January; the run of 16 January reads 2..16 January only."""
    world = JetWorld(category_tr=[tr_row("O1", "A", "2026-01-01"), tr_row("O1", "A", "2026-01-03")])
    for day in ("2026-01-01", "2026-01-03", "2026-01-16"):
        world.run(warehouse, *daily(day), run_id=f"day-{day}")
    assert [(r[2], r[6]) for r in lines(warehouse, "A1")] == [(D("2026-01-01"), 10_000), (D("2026-01-03"), 10_000)]


def test_jet_cancellation_more_than_14_days_after_its_order_restates_it(warehouse):
    world = JetWorld(category_tr=[tr_row("O1", "A", "2026-01-05", qty=2, coupon=1_000, commission=2_000),
                                  tr_row("O1", "A", "2026-01-25", qty=2, coupon=1_000, commission=2_000, cancel=True)],
                     warehousing=[ws_row("O1", "배송비 정산", 2_500, "2026-01-05")])
    world.run(warehouse, *daily("2026-01-05"), run_id="day-0105")
    result = world.run(warehouse, *daily("2026-01-25"), run_id="day-0125")
    assert lines(warehouse, "A1") == [("O1", "A:2026-01-05", D("2026-01-05"), 0, 0, 0, 0, 2_500, 0, True, 2, 19_000)]
    assert result.unapplied == ()
    cause = warehouse.execute("SELECT cause FROM sales.order_line_changes WHERE run_id = 'day-0125'").fetchone()[0]
    assert "주문 정산취소" in cause and "CATEGORY_TR" in cause


def test_jet_cancellation_without_its_order_warns_and_applies_when_the_order_is_collected(warehouse):
    world = JetWorld(category_tr=[tr_row("O1", "A", "2026-01-05"), tr_row("O1", "A", "2026-02-25", cancel=True)])
    result = world.run(warehouse, *daily("2026-02-25"), run_id="day-0225")
    assert [(u["kind"], u["reason"], u["amount"]) for u in result.unapplied] == [
        ("주문 정산취소", "no_original", -10_000)]
    world.run(warehouse, Window(D("2026-01-01"), D("2026-01-31")), run_id="range-jan")
    assert [(r[2], r[6], r[9]) for r in lines(warehouse, "A1")] == [(D("2026-01-05"), 0, True)]
    assert paid_and_adjusted(warehouse, "A1") == world.total() == 0


def test_fully_cancelling_one_line_of_a_two_line_jet_order_keeps_its_fee_share(warehouse):
    world = JetWorld(category_tr=[tr_row("O1", "A", "2026-01-05"), tr_row("O1", "B", "2026-01-05"),
                                  tr_row("O1", "B", "2026-01-20", cancel=True)],
                     warehousing=[ws_row("O1", "배송비 정산", 3_000, "2026-01-05")])
    world.run(warehouse, *daily("2026-01-05"), run_id="day-0105")
    world.run(warehouse, *daily("2026-01-20"), run_id="day-0120")
    assert [(r[1], r[6], r[7]) for r in lines(warehouse, "A1")] == [("A:2026-01-05", 10_000, 1_500),
                                                                    ("B:2026-01-05", 0, 1_500)]
