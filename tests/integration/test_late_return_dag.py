"""Time passes in the sandbox: a sale on 5 January, its 반출 on an invoice written 20 March, a daily run
on each side and then a backfill of early January, through Chromium, GX, PostgreSQL and
Airflow ``dag.test()``. 5 January stays restated; a return whose sale was never collected warns."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sandbox_clock import move_today

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat


def rocket_line(kind: str, po: str, sku: str, qty: int, supply: int, tax: int, moved: str) -> dict:
    return {"kind": kind, "po_no": po, "sku_id": sku, "sku_name": f"상품 {sku}", "moved_date": moved,
            "center": "이천1", "qty": qty, "unit_price": supply + tax, "unit_supply": supply, "unit_tax": tax}


def invoice(no: str, written: str, *lines: dict) -> dict:
    return {"invoice_no": no, "written_date": written, "tax_invoice_confirmed": written, "lines": list(lines)}


def account(account_id: str, username: str, *invoices: dict) -> dict:
    return {"account_id": account_id, "vendor_name": "주식회사 예시상사", "username": username,
            "password": f"pw-{username}", "sub_account_expires": "2026-12-31", "sms_challenge": False,
            "invoices": list(invoices)}


SCENARIO = {
    "today": "2026-01-06",
    "rocket": {"accounts": [
        account("V00000001", "sub_ok",
                invoice("30000001", "2026-01-05",
                        rocket_line("발주", "100000001", "55501", 10, 9_000, 900, "2026-01-03")),
                invoice("30000099", "2026-03-20", rocket_line("반출", "100000001", "55501", -10, 9_000, 900,
                                                              "2026-03-19"))),
        # sold long before any date the runs collect: only the return is read
        account("V00000002", "sub_new",
                invoice("30000200", "2025-06-02", rocket_line("발주", "100000777", "55577", 1, 5_000, 500,
                                                              "2025-06-01")),
                invoice("30000201", "2026-03-20", rocket_line("반출", "100000777", "55577", -1, 5_000, 500,
                                                              "2026-03-19"))),
    ]},
    "jet": {"accounts": []},
    "faults": [],
}


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


def jan5(conn) -> list[tuple]:
    return conn.execute("SELECT sales_date, quantity, payment_amount, is_cancelled FROM sales.order_lines "
                        "WHERE account_id = 'V00000001'").fetchall()


def test_a_return_written_in_march_restates_5_january_and_a_backfill_keeps_it(collection_dag, portal, warehouse,
                                                                             smtp, monkeypatch):
    # One daily run on each side of the return (overlapping daily windows, in any order and any
    # number, are the property tests' business: test_restatement_properties.py).
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    move_today(portal, monkeypatch, "2026-01-06")
    dag.test(logical_date=local_stack.logical_date_for(D("2026-01-05")))
    assert jan5(warehouse) == [(D("2026-01-05"), 10, 99_000, False)]
    assert smtp.subjects() == []

    move_today(portal, monkeypatch, "2026-03-21")
    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-03-20")))
    assert run.state == "success", "a return with no original warns; it does not fail the run"
    assert jan5(warehouse) == [(D("2026-01-05"), 0, 0, True)]
    march_run = run.run_id
    # "why did 5 January drop in March?"
    why = warehouse.execute(
        """
        SELECT c.run_id, c.old_payment_amount, c.new_payment_amount, f->>'kind', f->>'document'
        FROM sales.order_line_changes c, jsonb_array_elements(c.cause_facts) f
        WHERE c.account_id = 'V00000001' AND c.sales_date = '2026-01-05' AND c.change = 'changed'
        """).fetchall()
    assert why == [(march_run, 99_000, 0, "반출", "30000099")]
    # the return of V00000002 has no original: kept, reported and warned
    assert warehouse.execute("SELECT account_id, reason, amount FROM sales.restatement_adjustments").fetchall() == [
        ("V00000002", "no_original", -5_500)]
    warnings = [s for s in smtp.subjects() if "V00000002" in s]
    assert warnings and all(s.startswith("[coupang-sales] WARNING coupang_rocket V00000002 ")
                            and s.endswith(": restatement_without_original") for s in warnings)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.run_id == march_run, XComModel.task_id == "report", XComModel.key == "collection_report"))
    report = json.loads(value) if isinstance(value, str) else value
    row = {r["account_id"]: r for r in report["accounts"]}["V00000002"]
    assert (row["status"], row["unapplied_restatements"], row["unapplied_amount"]) == ("success", 1, -5_500)

    # a backfill of early January (today 21 March) reads invoices up to 6 March only
    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-01-05")))
    assert run.state == "success"
    assert jan5(warehouse) == [(D("2026-01-05"), 0, 0, True)]
