"""coupang_jet_sales end to end: Wing sandbox over HTTP, headless Chromium, GX, PostgreSQL, Airflow dag.test()."""

from __future__ import annotations

import datetime as dt

import pytest

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat


def v2_order(order_id: str, option_id: str, *, qty: int, unit_price: int, coupang_discount: int = 0,
             instant: int = 0, download: int = 0, cancelled: str | None = None) -> dict:
    return {"order_id": order_id, "option_id": option_id, "sku_id": "55501", "product_name": "보리차",
            "recognized_date": "2026-01-05", "unit_price": unit_price, "qty": qty,
            "coupang_discount": coupang_discount, "instant_coupon": instant, "download_coupon": download,
            "commission_rate": 10.8, "fees": [{"type": "입출고비", "amount": 650}, {"type": "배송비", "amount": 2500}],
            "cancelled_date": cancelled}


SCENARIO = {
    "today": "2026-01-07",
    "rocket": {"accounts": []},
    "jet": {"accounts": [
        {"account_id": "A00000001", "username": "wing_v1", "password": "pw-wing-v1", "version": 1,
         "v1_sales": [{"date": "2026-01-05", "option_id": "87001", "product_name": "보리차", "option_name": "1L x 12",
                       "qty": 3, "amount": 29_700}]},
        {"account_id": "A00000002", "username": "wing_v2", "password": "pw-wing-v2", "version": 2,
         "v2_orders": [
             v2_order("2100001", "87001", qty=3, unit_price=9_900, instant=1_000, download=500),
             # paid 5 Jan, cancelled 6 Jan -> the 5 Jan line is restated to 0, its fees reversed
             v2_order("2100002", "87003", qty=1, unit_price=12_900, coupang_discount=500, cancelled="2026-01-06"),
         ],
         "account_fees": [{"date": "2026-01-05", "type": "보관비", "amount": 1_200}]},
    ]},
    "faults": [],
}


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture
def jet_dag(collection_dag, portal):
    return collection_dag(portal, SCENARIO, "coupang_jet_sales")


COLUMNS = ("account_id, order_id, option_id, sales_date, quantity, gross_amount, coupon_discount, payment_amount, "
           "seller_shipping_fee, collected_commission, is_cancelled, source, effective_commission, commission_source")


def rows(conn) -> list[tuple]:
    return conn.execute(f"SELECT {COLUMNS} FROM sales.order_lines_effective ORDER BY account_id, order_id").fetchall()


def test_jet_v1_and_v2_accounts_follow_their_versions(jet_dag, warehouse):
    run = jet_dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))
    assert rows(warehouse) == [
        # v1: option ID as order ID, coupons not reflected, no shipping fee, no commission
        ("A00000001", "87001", "87001", D("2026-01-05"), 3, 29_700, 0, 29_700, 0, None, False, "jet_v1", None, None),
        # v2: real order ID, coupons reflected, fees 650 + 2,500 as seller shipping fee, commission 3,207 + VAT 320
        ("A00000002", "2100001", "87001", D("2026-01-05"), 3, 29_700, 1_500, 28_200, 3_150, 3_527, False, "jet_v2",
         3_527, "collected"),
        ("A00000002", "2100002", "87003", D("2026-01-05"), 0, 0, 0, 0, 0, 0, True, "jet_v2", 0, "collected"),
    ]
    assert warehouse.execute("SELECT account_id, fee_date, fee_type, amount FROM sales.account_fees").fetchall() \
        == [("A00000002", D("2026-01-05"), "보관비", 1_200)]
    statuses = warehouse.execute("SELECT account_id, status FROM sales.collection_runs WHERE run_id = %s "
                                 "ORDER BY account_id", (run.run_id,)).fetchall()
    assert statuses == [("A00000001", "success"), ("A00000002", "success")]


def test_user_commission_rate_overrides_collected_and_its_removal_restores_it(jet_dag, warehouse):
    jet_dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))
    query = "SELECT effective_commission, commission_source FROM sales.order_lines_effective WHERE order_id = '2100001'"
    assert warehouse.execute(query).fetchone() == (3_527, "collected")
    warehouse.execute("INSERT INTO sales.commission_settings (channel, account_id, option_id, rate_percent) "
                      "VALUES ('coupang_jet', 'A00000002', NULL, 10)")
    assert warehouse.execute(query).fetchone() == (2_820, "user")  # applies to past rows at once, no reload
    warehouse.execute("INSERT INTO sales.commission_settings (channel, account_id, option_id, rate_percent) "
                      "VALUES ('coupang_jet', 'A00000002', '87001', 5)")
    assert warehouse.execute(query).fetchone() == (1_410, "user")  # the per-option rate is more specific
    warehouse.execute("DELETE FROM sales.commission_settings")
    assert warehouse.execute(query).fetchone() == (3_527, "collected")


def test_rerunning_a_jet_date_leaves_the_same_rows(jet_dag, warehouse):
    jet_dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))
    first = rows(warehouse)
    jet_dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))
    assert rows(warehouse) == first and len(first) == 3
