"""The rows ``load_facts`` writes to ``sales.order_line_changes``, cause text and causing facts exactly:
lines of one cause and lines of several are built by two branches of one statement, which must
write what one aggregate over every line wrote."""

from __future__ import annotations

import pytest
from restatement_world import D, JetWorld, RocketWorld, rocket_line, tr_row, ws_row

from coupang_sales.model import Window

pytestmark = pytest.mark.integration


def change_log(conn, account_id: str) -> list[tuple]:
    return conn.execute(
        "SELECT order_id, change, old_payment_amount, new_payment_amount, cause, cause_facts "
        "FROM sales.order_line_changes WHERE account_id = %s ORDER BY id", (account_id,)).fetchall()


def test_a_rocket_line_and_its_return_read_together_name_both_facts_in_order(warehouse):
    world = RocketWorld()
    world.invoice("300", "2026-01-05", rocket_line("300", "발주", "PO1", "S1", 10, 9_900),
                  rocket_line("300", "발주", "PO2", "S1", 1, 1_250_000))
    world.invoice("301", "2026-01-20", rocket_line("301", "반출", "PO1", "S1", -4, 9_900, moved="2026-01-20"))
    world.run(warehouse, Window(D("2026-01-01"), D("2026-01-31")), run_id="jan")
    assert change_log(warehouse, "V1") == EXPECTED_ROCKET


def test_a_jet_order_with_its_fee_and_cancellation_names_every_fact_in_order(warehouse):
    world = JetWorld(category_tr=[tr_row("O1", "A", "2026-01-05", qty=2, coupon=1_000, commission=2_000),
                                  tr_row("O1", "A", "2026-01-12", qty=1, coupon=500, commission=1_000, cancel=True),
                                  tr_row("O2", "B", "2026-01-06")],
                     warehousing=[ws_row("O1", "배송비 정산", 2_500, "2026-01-05")])
    world.run(warehouse, Window(D("2026-01-01"), D("2026-01-31")), run_id="jan")
    assert change_log(warehouse, "A1") == EXPECTED_JET


# As the load wrote them with one aggregate over every line, before its two branches.
EXPECTED_ROCKET = [('PO1',
  'added',
  None,
  59400,
  '발주 new: 300 300:S1:2026-01-03:이천1 dated 2026-01-05 (+10, +99,000 won) collected in run jan; 반출 new: 301 '
  '301:S1:2026-01-20:이천1:9900 dated 2026-01-20 (-4, -39,600 won) collected in run jan',
  [{'amount': 99000,
    'document': '300',
    'fact_date': '2026-01-05',
    'fact_key': '300:S1:2026-01-03:이천1',
    'fact_kind': 'rocket_receipt',
    'kind': '발주',
    'option_id': 'S1',
    'order_id': 'PO1',
    'quantity': 10,
    'run_id': 'jan',
    'status': 'new'},
   {'amount': -39600,
    'document': '301',
    'fact_date': '2026-01-20',
    'fact_key': '301:S1:2026-01-20:이천1:9900',
    'fact_kind': 'rocket_return',
    'kind': '반출',
    'option_id': 'S1',
    'order_id': 'PO1',
    'quantity': -4,
    'run_id': 'jan',
    'status': 'new'}]),
 ('PO2',
  'added',
  None,
  1250000,
  '발주 new: 300 300:S1:2026-01-03:이천1 dated 2026-01-05 (+1, +1,250,000 won) collected in run jan',
  [{'amount': 1250000,
    'document': '300',
    'fact_date': '2026-01-05',
    'fact_key': '300:S1:2026-01-03:이천1',
    'fact_kind': 'rocket_receipt',
    'kind': '발주',
    'option_id': 'S1',
    'order_id': 'PO2',
    'quantity': 1,
    'run_id': 'jan',
    'status': 'new'}])]
EXPECTED_JET = [('O1',
  'added',
  None,
  9500,
  '주문 정산취소 new: CATEGORY_TR A:2026-01-12 dated 2026-01-12 (-1, -10,000 won) collected in run jan; 주문 정산 new: '
  'CATEGORY_TR A:2026-01-05 dated 2026-01-05 (+2, +20,000 won) collected in run jan; per-order fee new: '
  'WAREHOUSING_SHIPPING 배송비 정산:2026-01-05 dated 2026-01-05 (+0, +2,500 won) collected in run jan',
  [{'amount': -10000,
    'document': 'CATEGORY_TR',
    'fact_date': '2026-01-12',
    'fact_key': 'A:2026-01-12',
    'fact_kind': 'jet_cancellation',
    'kind': '주문 정산취소',
    'option_id': 'A',
    'order_id': 'O1',
    'quantity': -1,
    'run_id': 'jan',
    'status': 'new'},
   {'amount': 20000,
    'document': 'CATEGORY_TR',
    'fact_date': '2026-01-05',
    'fact_key': 'A:2026-01-05',
    'fact_kind': 'jet_settlement',
    'kind': '주문 정산',
    'option_id': 'A',
    'order_id': 'O1',
    'quantity': 2,
    'run_id': 'jan',
    'status': 'new'},
   {'amount': 2500,
    'document': 'WAREHOUSING_SHIPPING',
    'fact_date': '2026-01-05',
    'fact_key': '배송비 정산:2026-01-05',
    'fact_kind': 'jet_order_fee',
    'kind': 'per-order fee',
    'option_id': None,
    'order_id': 'O1',
    'quantity': 0,
    'run_id': 'jan',
    'status': 'new'}]),
 ('O2',
  'added',
  None,
  10000,
  '주문 정산 new: CATEGORY_TR B:2026-01-06 dated 2026-01-06 (+1, +10,000 won) collected in run jan',
  [{'amount': 10000,
    'document': 'CATEGORY_TR',
    'fact_date': '2026-01-06',
    'fact_key': 'B:2026-01-06',
    'fact_kind': 'jet_settlement',
    'kind': '주문 정산',
    'option_id': 'B',
    'order_id': 'O2',
    'quantity': 1,
    'run_id': 'jan',
    'status': 'new'}])]
