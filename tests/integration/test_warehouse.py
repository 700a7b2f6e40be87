"""The warehouse load against a real PostgreSQL: all-or-nothing, idempotent, audited."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

import pandas as pd
import pytest

from coupang_sales.model import ORDER_LINE_COLUMNS, ROCKET, Window
from coupang_sales.warehouse import record_run, replace_window

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
WINDOW = Window(D("2026-01-01"), D("2026-01-07"))


def frame(*rows: tuple[str, str, int]) -> pd.DataFrame:
    """Rows of (order_id, sales_date, payment_amount)."""
    data = []
    for order_id, day, amount in rows:
        data.append({"channel": ROCKET, "account_id": "V1", "order_id": order_id, "line_key": f"{order_id}:k",
                     "option_id": "S1", "product_name": "보리차", "sales_date": D(day), "quantity": 1,
                     "gross_amount": amount, "coupon_discount": 0, "payment_amount": amount,
                     "seller_shipping_fee": 0, "collected_commission": None, "is_cancelled": amount == 0,
                     "source": "rocket", "cancelled_quantity": 0, "cancelled_amount": 0})
    out = pd.DataFrame(data, columns=list(ORDER_LINE_COLUMNS))
    for column in ("quantity", "gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee",
                   "collected_commission", "cancelled_quantity", "cancelled_amount"):
        out[column] = out[column].astype("Int64")
    return out


def table(conn) -> list[tuple]:
    return conn.execute("SELECT order_id, sales_date, payment_amount FROM sales.order_lines "
                        "ORDER BY order_id").fetchall()


def test_loading_the_same_window_twice_leaves_the_same_rows(warehouse):
    lines = frame(("PO1", "2026-01-05", 99_000), ("PO2", "2026-01-06", 1_000))
    first = replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, lines=lines, run_id="r1")
    before = table(warehouse)
    second = replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, lines=lines, run_id="r2")
    assert table(warehouse) == before == [("PO1", D("2026-01-05"), 99_000), ("PO2", D("2026-01-06"), 1_000)]
    assert (first.added, second.added, second.changed, second.removed) == (2, 0, 0, 0)


def test_restatement_is_audited_with_old_and_new_amount(warehouse):
    replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW,
                   lines=frame(("PO1", "2026-01-05", 99_000)), run_id="day5")
    result = replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW,
                            lines=frame(("PO1", "2026-01-05", 0)), run_id="day6")
    assert result.changed == 1
    change = warehouse.execute("SELECT change, old_payment_amount, new_payment_amount, run_id "
                               "FROM sales.order_line_changes WHERE run_id = 'day6'").fetchall()
    assert change == [("changed", 99_000, 0, "day6")]


def test_rows_gone_from_the_source_are_removed_and_audited(warehouse):
    replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW,
                   lines=frame(("PO1", "2026-01-05", 1), ("PO2", "2026-01-05", 2)), run_id="a")
    result = replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW,
                            lines=frame(("PO1", "2026-01-05", 1)), run_id="b")
    assert result.removed == 1 and [r[0] for r in table(warehouse)] == ["PO1"]


def test_rows_outside_the_window_are_untouched(warehouse):
    replace_window(warehouse, channel=ROCKET, account_id="V1", window=Window(D("2025-12-01"), D("2025-12-31")),
                   lines=frame(("OLD", "2025-12-20", 5)), run_id="a")
    replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, lines=frame(), run_id="b")
    assert table(warehouse) == [("OLD", D("2025-12-20"), 5)]


def test_a_failing_load_leaves_the_warehouse_as_it_was(warehouse):
    replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW,
                   lines=frame(("PO1", "2026-01-05", 99_000)), run_id="good")
    bad = frame(("PO1", "2026-01-05", 0), ("PO2", "2026-01-05", 7))
    bad["payment_amount"] = bad["payment_amount"].astype(object)
    bad.loc[1, "payment_amount"] = 7.5  # a float must never reach the table
    with pytest.raises(TypeError, match="float"):
        replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, lines=bad, run_id="bad")
    assert table(warehouse) == [("PO1", D("2026-01-05"), 99_000)]


def test_rows_dated_outside_the_window_are_refused(warehouse):
    with pytest.raises(ValueError, match="outside the window"):
        replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW,
                       lines=frame(("PO1", "2026-02-01", 1)), run_id="x")


def test_every_attempt_is_recorded(warehouse):
    record_run(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, status="blocked",
               reason="tax_invoice_pending", message="process the tax invoice", run_id="r")
    assert warehouse.execute("SELECT status, reason, window_start, window_end FROM sales.collection_runs").fetchall() \
        == [("blocked", "tax_invoice_pending", WINDOW.start, WINDOW.end)]


def test_user_commission_rate_overrides_collected_when_read(warehouse):
    lines = frame(("O1", "2026-01-05", 10_005))
    lines["collected_commission"] = pd.array([1_188], dtype="Int64")
    replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, lines=lines, run_id="r")
    view = "SELECT effective_commission, commission_source FROM sales.order_lines_effective"
    assert warehouse.execute(view).fetchall() == [(1_188, "collected")]
    warehouse.execute("INSERT INTO sales.commission_settings (channel, account_id, rate_percent) "
                      "VALUES ('coupang_rocket', 'V1', 10)")
    assert warehouse.execute(view).fetchall() == [(1_001, "user")]  # 10% of 10,005 = 1,000.5 -> half up


def test_an_account_with_nothing_in_its_window_loads_zero_rows(warehouse):
    from coupang_sales.model import dated_within

    empty = dated_within(frame(("PO1", "2026-02-01", 1)), "sales_date", WINDOW)
    assert list(empty.columns) == list(ORDER_LINE_COLUMNS)
    result = replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, lines=empty, run_id="r")
    assert result.rows_loaded == 0 and table(warehouse) == []


def test_text_with_tabs_backslashes_and_line_breaks_arrives_as_it_was(warehouse):
    lines = frame(("PO\\1", "2026-01-05", 9_007_199_254_740_993), ("PO2", "2026-01-06", -5))
    lines.loc[0, "product_name"] = "보리차\t1L\\x 12\r\n(신상)"
    lines.loc[1, "product_name"] = None
    lines.loc[1, "option_id"] = ""
    replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW, lines=lines, run_id="r")
    rows = warehouse.execute("SELECT order_id, product_name, option_id, payment_amount, collected_commission "
                             "FROM sales.order_lines ORDER BY order_id").fetchall()
    assert rows == [("PO2", None, "", -5, None),
                    ("PO\\1", "보리차\t1L\\x 12\r\n(신상)", "S1", 9_007_199_254_740_993, None)]


# --- bounded loads: lock_timeout and statement_timeout ----------------------------------------


def bounded_load(monkeypatch, *, lock_timeout: str = "1"):
    """A replace_window load as the load task runs it: a warehouse_connection() under warehouse_errors()."""
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook, warehouse_connection
    from coupang_sales.warehouse import account_lock_key

    monkeypatch.setenv("COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS", lock_timeout)
    conn = warehouse_connection()
    try:
        with WarehouseHook.errors(f"load of V1 {WINDOW}", conn, lock_keys=(account_lock_key(ROCKET, "V1"),)):
            replace_window(conn, channel=ROCKET, account_id="V1", window=WINDOW,
                           lines=frame(("PO9", "2026-01-05", 1_000)), run_id="waiting")
    finally:
        conn.close()


@contextlib.contextmanager
def held(warehouse, statement: str, *, release_after: float = 20):
    """``statement`` run in another session's open transaction; released after ``release_after`` seconds
    at the latest, so a load that waits without bound ends (and its test fails) instead of hanging."""
    import psycopg

    params = warehouse.info.get_parameters()
    holder = psycopg.connect(**params, application_name="nightly-report")
    holder.execute(statement)

    def release() -> None:
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (holder.info.backend_pid,))

    timer = threading.Timer(release_after, release)
    timer.start()
    try:
        yield holder
    finally:
        timer.cancel()
        with contextlib.suppress(psycopg.Error):
            holder.rollback()
        holder.close()


def test_a_load_waiting_on_a_table_lock_fails_as_a_retried_warehouse_error_naming_it(warehouse, monkeypatch):
    from coupang_sales.airflow_glue.warehouse_hook import warehouse_connection
    from coupang_sales.errors import CollectionError

    replace_window(warehouse, channel=ROCKET, account_id="V1", window=WINDOW,
                   lines=frame(("PO1", "2026-01-05", 99_000)), run_id="before")
    warehouse_connection().close()  # Airflow's hook imported: the time below is the load's
    started = time.monotonic()
    with held(warehouse, "LOCK TABLE sales.order_lines IN SHARE MODE"), pytest.raises(CollectionError) as caught:
        bounded_load(monkeypatch)
    assert time.monotonic() - started < 10, "the load gave up after lock_timeout, not when the lock went"
    error = caught.value
    assert error.category == "warehouse_error" and error.retryable
    assert "lock_timeout (1 s" in str(error) and "sales.order_lines (ShareLock)" in str(error)
    assert "'nightly-report', idle in transaction" in str(error)
    assert table(warehouse) == [("PO1", D("2026-01-05"), 99_000)], "nothing of the load was committed"


def test_a_load_waiting_behind_another_load_of_the_account_names_its_load_lock(warehouse, monkeypatch):
    from coupang_sales.errors import CollectionError
    from coupang_sales.warehouse import account_lock_key

    with held(warehouse, f"SELECT pg_advisory_xact_lock(hashtext('{account_lock_key(ROCKET, 'V1')}'))"), \
            pytest.raises(CollectionError) as caught:
        bounded_load(monkeypatch)
    assert caught.value.category == "warehouse_error"
    assert f"advisory lock {account_lock_key(ROCKET, 'V1')} (a load of the same account)" in str(caught.value)
    bounded_load(monkeypatch)  # released: the retry loads
    assert table(warehouse) == [("PO9", D("2026-01-05"), 1_000)]


def test_every_warehouse_session_of_a_task_is_bounded(warehouse, monkeypatch):
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook, warehouse_connection
    from coupang_sales.errors import CollectionError

    monkeypatch.delenv("COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS", raising=False)
    monkeypatch.setenv("COUPANG_WAREHOUSE_STATEMENT_TIMEOUT_SECONDS", "0.5")
    conn = warehouse_connection()
    try:
        assert conn.execute("SHOW lock_timeout").fetchone()[0] == "2min", "the documented default"
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "500ms"
        with pytest.raises(CollectionError) as caught, WarehouseHook.errors("load of V1", conn):
            conn.execute("SELECT pg_sleep(5)")
    finally:
        conn.close()
    assert caught.value.category == "warehouse_error" and "statement_timeout (0.5 s" in str(caught.value)
