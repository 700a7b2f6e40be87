"""coupang_rocket_sales against the real-layout Supplier Hub: sandbox over HTTP, headed Chromium (Xvfb), GX,
PostgreSQL, Airflow dag.test(). The 입고상세내역 read both ways, bot walls, a long run whose session expires twice,
and portal settings given through the connection."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "V00000901"
CHANNEL = "coupang_rocket"


def line(kind: str, po: str, sku: str, qty: int, moved: str) -> dict:
    return {"kind": kind, "po_no": po, "sku_id": sku, "sku_name": f"상품 {sku}", "moved_date": moved,
            "center": "이천1", "qty": qty, "unit_price": 11_000, "unit_supply": 10_000, "unit_tax": 1_000}


def scenario(faults: list[dict] | None = None, *, return_sign: str = "negative", days: int = 3) -> dict:
    """One account, an invoice a day for ``days`` days up to 6 Jan (the first with 12 lines: two pages
    of 입고상세내역), and a 6 Jan 반출 of the first 5 Jan line."""
    invoices = []
    for n in range(days):
        day = D("2026-01-06") - dt.timedelta(days=days - 1 - n)
        lines = [line("발주", f"9{n:02d}{i:04d}", f"8{i:03d}", 1 + i % 3, (day - dt.timedelta(days=1)).isoformat())
                 for i in range(12 if n == 0 else 2)]
        invoices.append({"invoice_no": f"3009{n:04d}", "written_date": day.isoformat(),
                         "tax_invoice_confirmed": day.isoformat(), "lines": lines})
    first = invoices[0]["lines"][0]
    invoices[-1]["lines"].append(line("반출", first["po_no"], first["sku_id"], -first["qty"], "2026-01-06"))
    return {"today": "2026-01-07",
            "rocket": {"accounts": [{"account_id": ACCOUNT, "vendor_name": "주식회사 실사", "username": "sub_real",
                                     "password": "pw-sub_real", "sub_account_expires": "2026-12-31",
                                     "export_return_sign": return_sign, "invoices": invoices}]},
            "jet": {"accounts": []}, "faults": faults or []}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setenv("COUPANG_RETRY_DELAY_SECONDS", "0")


@pytest.fixture
def run_dag(collection_dag, monkeypatch):
    """``run_dag(server, raw, extra=None, **conf)``: the Rocket DAG for 6 Jan with the connection's ``extra``."""

    def run(server, raw: dict, extra: dict | None = None, **conf):
        dag = collection_dag(server, raw, "coupang_rocket_sales")
        key = f"AIRFLOW_CONN_{local_stack.conn_id_for(CHANNEL, ACCOUNT).upper()}"
        monkeypatch.setenv(key, json.dumps({**json.loads(os.environ[key]), "extra": extra or {}}))
        return dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")), run_conf=conf or None)

    return run


def order_lines(conn) -> list[tuple]:
    return conn.execute("SELECT order_id, line_key, sales_date, quantity, payment_amount, is_cancelled "
                        "FROM sales.order_lines WHERE account_id = %s ORDER BY order_id, line_key",
                        (ACCOUNT,)).fetchall()


def attempts(conn) -> list[tuple]:
    return conn.execute("SELECT split_part(task_id, '.', 2), status, reason, message FROM sales.collection_runs "
                        "WHERE account_id = %s ORDER BY id", (ACCOUNT,)).fetchall()


def staged(run, pattern: str) -> list[Path]:
    folder = re.sub(r"[^A-Za-z0-9_.-]", "_", run.run_id)
    return sorted((Path(os.environ["COUPANG_STAGING_DIR"]) / "coupang_rocket_sales" / folder / ACCOUNT).rglob(pattern))


def extract_summary(run_id: str) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        values = session.scalars(select(XComModel.value).where(
            XComModel.run_id == run_id, XComModel.task_id.like("%extract"), XComModel.key == "return_value"))
        found = [json.loads(v) if isinstance(v, str) else v for v in values]
    assert len(found) == 1, found
    return found[0]


def test_the_pages_by_default_and_the_export_give_the_same_rows(run_dag, warehouse, monkeypatch):
    """A run reads the 입고상세내역 pages by default (입고/반출일자, 반출 negative, paged with totalCount, fetched
    from inside the signed-on page); the real-layout export (header in row 1, 입고/반출시각, 반출 written
    positive), chosen through an Airflow Variable named in the connection's extra, loads the same rows."""
    monkeypatch.setenv("AIRFLOW_VAR_SUPPLIER_HUB_SETTINGS", json.dumps({"receive_detail_source": "export"}))
    from sandbox import SandboxServer

    raw = scenario(return_sign="positive")
    with SandboxServer(raw) as server:
        by_pages = run_dag(server, raw)
        assert by_pages.state == "success"
        assert staged(by_pages, "receive_detail_*.json") and not staged(by_pages, "receive_detail_*.xlsx")
        assert extract_summary(by_pages.run_id)["receive_detail_source"] == "pages"
        page_two = [r for r in server.state.requests if "/scm/receive/detail?" in r.target and "page=2" in r.target]
        assert page_two and all("totalCount=12" in r.target for r in page_two)
        assert not [r for r in server.state.requests if "/scm/receive/detail/excel" in r.target], "no export"
        from_pages = order_lines(warehouse)
        warehouse.execute("DELETE FROM sales.order_lines WHERE account_id = %s", (ACCOUNT,))
        by_export = run_dag(server, raw, {"settings_variable": "supplier_hub_settings"})
        assert by_export.state == "success"
        assert staged(by_export, "receive_detail_*.xlsx") and not staged(by_export, "receive_detail_*.json")
    assert order_lines(warehouse) == from_pages
    restated = [r for r in from_pages if r[5]]
    assert len(restated) == 1 and restated[0][3:5] == (0, 0), "the 반출 restated its 발주 line to 0 either way"
    assert len(from_pages) == 12 + 2 + 2


def test_a_session_that_expires_twice_in_a_range_run_is_renewed(run_dag, warehouse):
    from sandbox import SandboxServer

    expiry = {"portal": "supplier_hub", "kind": "session_expired", "path_contains": "/scm/receive/detail?"}
    raw = scenario([{**expiry, "after": 2}, {**expiry, "after": 6}], days=10)
    with SandboxServer(raw) as server:
        run = run_dag(server, raw, {"concurrency": 1}, from_date="2025-12-01", date="2026-01-06")
        sign_ons = [r for r in server.state.requests if r.method == "POST" and "/login-actions/" in r.target]
    assert run.state == "success"
    assert [a[1] for a in attempts(warehouse)] == ["success"], "no attempt failed"
    assert extract_summary(run.run_id)["session_renewals"] == 2
    assert len(sign_ons) == 1 + 2, "one sign-on for the run's three browser tasks (one profile), and two renewals"
    assert len(order_lines(warehouse)) == 12 + 9 * 2


@pytest.mark.parametrize("mode", ["access_denied", "blank"])
def test_a_bot_wall_ends_the_run_as_bot_rejected_with_the_action(run_dag, warehouse, smtp, mode):
    from sandbox import SandboxServer

    raw = scenario([{"portal": "supplier_hub", "kind": "bot_rejected", "mode": mode, "times": 100}])
    with SandboxServer(raw) as server:
        run = run_dag(server, raw, {"challenge_timeout": 1})
    assert run.state == "failed"
    recorded = attempts(warehouse)
    assert recorded and {a[2] for a in recorded} == {"bot_rejected"}, recorded
    assert ("blank page" if mode == "blank" else "Access Denied") in recorded[0][3]
    assert order_lines(warehouse) == []
    assert len(smtp.subjects()) == 1 and smtp.subjects()[0].endswith("bot_rejected")
    body = smtp.bodies()[0]
    assert "headed" in body


def test_a_selector_overridden_in_the_connection_extra_is_used(run_dag, warehouse, tmp_path):
    """Configuration only: the override file names a selector that finds nothing, and the run says which."""
    from sandbox import SandboxServer

    override = tmp_path / "supplier_hub.json"
    override.write_text(json.dumps({"selectors": {"purchase_account.table": "table.purchase-account-table"}}),
                        encoding="utf-8")
    raw = scenario()
    with SandboxServer(raw) as server:
        run = run_dag(server, raw, {"settings_file": str(override), "timeout": 2})
    assert run.state == "failed"
    failed = [a for a in attempts(warehouse) if a[1] == "failed"]
    assert failed and failed[0][2] == "export_format_changed" and "일반매입계정" in failed[0][3]


# --- the check_export command --------------------------------------------------------------


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "coupang_sales.check_export", *args],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
                          timeout=120)


@pytest.mark.parametrize("sign", ["negative", "positive"])
def test_check_export_reads_a_real_layout_export(tmp_path, sign):
    from sandbox import load_scenario
    from sandbox.excel import receive_detail_xlsx

    invoice = load_scenario(scenario(return_sign=sign)).rocket_accounts[0].invoices[-1]
    path = tmp_path / "Coupang_Stocked_Data_List(20260105~20260106).xlsx"
    path.write_bytes(receive_detail_xlsx(invoice, returns_positive=sign == "positive"))
    done = run_check("rocket-receive-detail", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"kind": "rocket-receive-detail", "rows": 3,
                                       "sums": {"총단가": invoice.payable_amount}}
    assert invoice.payable_amount < sum(abs(x.total_price) for x in invoice.lines), "the 반출 counted negative"


def test_check_export_refuses_a_file_naming_it_and_the_column(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["구분", "번호", "SKU번호"])
    book.active.append(["발주", "1", "2"])
    path = tmp_path / "other.xlsx"
    book.save(path)
    done = run_check("rocket-receive-detail", str(path))
    assert done.returncode == 1 and done.stdout == ""
    assert "other.xlsx" in done.stderr and "입고/반출일자" in done.stderr and "export_format_changed" in done.stderr


def test_check_export_imports_nothing_of_airflow(tmp_path):
    probe = ("import sys, runpy; sys.argv = ['x', '--help']\n"
             "try:\n    runpy.run_module('coupang_sales.check_export', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))")
    done = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert sys.executable  # the suite's own interpreter is not the one tested: .venv is
