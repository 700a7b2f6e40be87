"""A seller blocked for 23 days (a pending tax invoice, 3..26 January), through Chromium, GX, PostgreSQL and
Airflow ``dag.test()`` (issue #28): the first run after the block collects the whole gap, not only its
14-day look-back; the status page is behind its threshold during the block and ok only once the gap is
filled. The gap's invoice holds two real receipts of one PO, SKU, day, centre and quantity (at different
times) and its export repeats one line verbatim: both receipts load, the repeat once."""

from __future__ import annotations

import datetime as dt

import pytest
from sandbox_clock import move_today

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat


def rocket_line(po: str, sku: str, qty: int, price: int, moved: str) -> dict:
    return {"kind": "발주", "po_no": po, "sku_id": sku, "sku_name": f"상품 {sku}", "moved_date": moved,
            "center": "이천1", "qty": qty, "unit_price": price, "unit_supply": price, "unit_tax": 0}


def invoice(no: str, written: str, *lines: dict, confirmed: str | None = "", repeat: bool = False) -> dict:
    return {"invoice_no": no, "written_date": written, "lines": list(lines), "duplicate_lines": repeat,
            "tax_invoice_confirmed": written if confirmed == "" else confirmed}


SCENARIO = {
    "today": "2026-01-03",
    "rocket": {"accounts": [{
        "account_id": "V00000001", "vendor_name": "주식회사 예시상사", "username": "sub_block",
        "password": "pw-sub-block", "sub_account_expires": "2026-12-31", "sms_challenge": False,
        "invoices": [
            invoice("30000001", "2026-01-02", rocket_line("100000001", "55501", 1, 10_000, "2026-01-01")),
            # not confirmed by the seller: every settlement page is blocked from 4 January
            invoice("30000002", "2026-01-04", rocket_line("100000002", "55502", 1, 2_000, "2026-01-03"),
                    confirmed=None),
            # in the gap, more than 14 days before the first run after the block: two real deliveries
            # of one PO, SKU, day, centre and quantity (09:10:11 and 09:10:48), and one line repeated
            invoice("30000003", "2026-01-05", rocket_line("100000003", "55503", 2, 5_000, "2026-01-05"),
                    rocket_line("100000003", "55503", 2, 5_000, "2026-01-05"),
                    rocket_line("100000004", "55504", 1, 7_000, "2026-01-05"), repeat=True),
            invoice("30000004", "2026-01-08", rocket_line("100000005", "55505", 3, 1_000, "2026-01-07")),
            invoice("30000005", "2026-01-20", rocket_line("100000006", "55506", 1, 4_000, "2026-01-19")),
        ]}]},
    "jet": {"accounts": []},
    "faults": [],
}


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


def status(conn, today: str) -> dict:
    from coupang_sales.warehouse.status import StatusQuery, account_statuses

    [row] = account_statuses(conn, StatusQuery(), today=D(today))["rows"]
    return row


def by_date(conn) -> list[tuple]:
    return conn.execute("SELECT sales_date, sum(quantity)::int, sum(payment_amount)::int FROM sales.order_lines "
                        "GROUP BY sales_date ORDER BY sales_date").fetchall()


def test_the_first_run_after_a_23_day_block_collects_the_whole_gap(collection_dag, portal, warehouse, monkeypatch):
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-01-02")))
    assert run.state == "success" and by_date(warehouse) == [(D("2026-01-02"), 1, 10_000)]
    assert status(warehouse, "2026-01-03")["state"] == "ok"

    move_today(portal, monkeypatch, "2026-01-10")  # blocked since 4 January
    dag.test(logical_date=local_stack.logical_date_for(D("2026-01-09")))
    during = status(warehouse, "2026-01-10")
    assert (during["state"], during["last_reason"]) == ("blocked", "tax_invoice_pending")
    assert during["over_threshold"] and during["collected_through"] == D("2026-01-02"), \
        "stale behind its block: freshness counts from the last date collected without a gap"

    move_today(portal, monkeypatch, "2026-01-27")
    portal.state.confirm_tax_invoice("30000002")  # the seller confirms it on 27 January
    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-01-26")))
    assert run.state == "success"
    [(window_start, window_end, details)] = warehouse.execute(
        "SELECT window_start, window_end, details FROM sales.collection_runs WHERE run_id = %s AND status = 'success'",
        (run.run_id,)).fetchall()
    assert (window_start, window_end) == (D("2026-01-02"), D("2026-01-26")), "from the cursor, not 12 January"
    assert details["collected_through_before"] == "2026-01-02"
    assert by_date(warehouse) == [
        (D("2026-01-02"), 1, 10_000),
        (D("2026-01-04"), 1, 2_000),
        # both real same-day receipts (2 + 2) and the repeated line once (1 x 7,000): the pages (the
        # default, #25) show it once; the export repeats it and its 지급예정금액 counts it once
        # (tests/unit/test_rocket_same_day_lines.py)
        (D("2026-01-05"), 5, 27_000),
        (D("2026-01-08"), 3, 3_000),
        (D("2026-01-20"), 1, 4_000),
    ]
    assert details["duplicates_removed"] == 0, "read from the pages, which show each line once"
    after = status(warehouse, "2026-01-27")
    assert (after["state"], after["collected_through"], after["freshness_days"]) == ("ok", D("2026-01-26"), 1)
