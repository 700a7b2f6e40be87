"""Benchmark 3: backfill throughput, one range run against day-by-day runs.

    .venv/bin/python bench/bench_backfill.py [--range-days 365] [--daily-days 30] [--lines 20]

One Rocket account in the sandbox has one invoice a day (``--lines`` 입고상세내역 lines
each) over ``--range-days`` days. Both sides run the real DAG through Airflow
(``dag.test()``, SQLite metadata, the embedded warehouse, headless Chromium):

- the range run: one run with Params ``from_date``/``date`` over all the days, so the
  account is signed on once per task that needs the portal (expiry check, tax-invoice
  check, extract), not once per day;
- the day-by-day runs: one run per day over the last ``--daily-days`` days, each with
  ``lookback_days = 0`` and ``restatement_horizon_days = 0`` (the cheapest daily run:
  it reads one invoice, no look-ahead), which flatters day-by-day and makes the ratio
  conservative.

Reports days collected per minute for both, their ratio (target >= 20), sign-ons per
run, and checks both sides loaded the same rows for the days they share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time

import common  # noqa: F401 - first: puts plugins/ and include/ on sys.path
import local_stack
from common import RESULTS, ROOT, Report

ACCOUNT = "V00000700"
SIGN_ON = "/login-actions/authenticate"


def scenario(days: int, lines: int, last: dt.date) -> dict:
    first = last - dt.timedelta(days=days - 1)
    invoices = []
    for i in range(days):
        day = first + dt.timedelta(days=i)
        invoices.append({
            "invoice_no": f"4{i:07d}", "written_date": day.isoformat(),
            "tax_invoice_confirmed": (day + dt.timedelta(days=1)).isoformat(),
            "lines": [{"kind": "발주", "po_no": f"5{i:05d}{n:03d}", "sku_id": f"{60000 + n}", "sku_name": f"상품 {n}",
                       "moved_date": (day - dt.timedelta(days=1)).isoformat(), "center": "이천1", "qty": 1 + n % 5,
                       "unit_price": 11_000, "unit_supply": 10_000, "unit_tax": 1_000} for n in range(lines)],
        })
    return {"today": (last + dt.timedelta(days=1)).isoformat(),
            # the defences on, with the sign-on challenge scaled from ~16 s to 2 s (bench_sign_ons.py measures it)
            "bot_protection": {"challenge_seconds": 2},
            "rocket": {"accounts": [{"account_id": ACCOUNT, "vendor_name": "주식회사 벤치", "username": "sub_bench",
                                     "password": "pw-sub_bench", "sub_account_expires": "2099-12-31",
                                     "invoices": invoices}]},
            "jet": {"accounts": []}}


def rows_by_day(conn, first: dt.date, last: dt.date) -> dict:
    return {day: (n, won) for day, n, won in conn.execute(
        "SELECT sales_date, count(*), sum(payment_amount)::bigint FROM sales.order_lines "
        "WHERE sales_date BETWEEN %s AND %s GROUP BY 1", (first, last)).fetchall()}


def task_seconds(run_ids: list[str]) -> dict[str, float]:
    """Mean duration of each task over the given runs (one account each): the per-account costs."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        rows = session.execute(select(TaskInstance.task_id, func.avg(TaskInstance.duration))
                               .where(TaskInstance.run_id.in_(run_ids)).group_by(TaskInstance.task_id)).all()
    return {task_id: float(seconds or 0) for task_id, seconds in rows}


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description="Range run vs day-by-day runs")
    parser.add_argument("--range-days", type=int, default=365)
    parser.add_argument("--daily-days", type=int, default=30)
    parser.add_argument("--lines", type=int, default=20)
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="coupang-bench-backfill-")
    os.environ.update(local_stack.airflow_env(local_stack.Path(work) / "airflow"))
    os.environ.update({"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "COUPANG_RETRY_DELAY_SECONDS": "5"})
    last = dt.date(2025, 12, 31)
    first = last - dt.timedelta(days=args.range_days - 1)
    raw = scenario(args.range_days, args.lines, last)
    os.environ["COUPANG_TODAY"] = raw["today"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / "backfill.log"
    warehouse = local_stack.EmbeddedWarehouse(local_stack.Path(work) / "pgdata").start()
    report = Report("backfill", settings={"range_days": args.range_days, "daily_days": args.daily_days,
                                          "lines_per_day": args.lines})
    try:
        with log_path.open("w") as log, local_stack.RedirectedOutput(log) as out:
            figures = run(raw, warehouse.dsn, first, last, args.daily_days, out.say)
    finally:
        warehouse.stop()
        shutil.rmtree(work, ignore_errors=True)
    range_rate = args.range_days / (figures["range_s"] / 60)
    daily_rate = args.daily_days / (figures["daily_s"] / 60)
    report.add("range run: wall time", figures["range_s"], "s", note=f"{args.range_days} days, one run")
    report.add("range run: days collected per minute", range_rate, "days/min")
    report.add("range run: sign-ons", figures["range_sign_ons"], "logins", note="expiry check, tax check, extract")
    report.add("day-by-day: wall time", figures["daily_s"], "s", note=f"{args.daily_days} runs")
    report.add("day-by-day: days collected per minute", daily_rate, "days/min")
    report.add("day-by-day: sign-ons", figures["daily_sign_ons"], "logins")
    report.add("range / day-by-day throughput", range_rate / daily_rate, "x", ">= 20")
    report.add("days whose rows differ between the two", figures["mismatched_days"], "days", "<= 0")
    browser_tasks = ("collect.check_sub_account_expiry", "collect.check_tax_invoice_block", "collect.extract")
    for task_id, seconds in sorted(figures["task_seconds"].items()):
        report.add(f"daily run, one account: {task_id}", seconds, "s",
                   note="browser" if task_id in browser_tasks else "")
    per_account = sum(s for t, s in figures["task_seconds"].items() if t.startswith("collect."))
    report.add("daily run, one account: task-seconds per account", per_account, "s")
    report.add("daily run, one account: browser-seconds per account",
               sum(figures["task_seconds"].get(t, 0.0) for t in browser_tasks), "s")
    report.emit()
    print(f"(Airflow's task logs: {log_path})")
    return report


def run(raw: dict, dsn: str, first: dt.date, last: dt.date, daily_days: int, say) -> dict:
    import psycopg
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    from coupang_sales.warehouse.schema_versions import migrate
    from sandbox import SandboxServer, load_scenario

    os.environ["AIRFLOW_CONN_COUPANG_WAREHOUSE"] = local_stack.connection_json(dsn)
    db.resetdb()
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["coupang_rocket_sales"]
    out: dict = {}
    with SandboxServer(load_scenario(raw)) as sandbox, psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        os.environ.update(local_stack.register_scenario_accounts(conn, raw, sandbox))

        def sign_ons() -> int:
            return sum(1 for r in sandbox.state.requests if r.method == "POST" and SIGN_ON in r.target)

        say(f"backfill bench: range run {first}..{last}")
        before, start = sign_ons(), time.perf_counter()
        result = dag.test(run_conf={"from_date": first.isoformat(), "date": last.isoformat()})
        out["range_s"], out["range_sign_ons"] = time.perf_counter() - start, sign_ons() - before
        if result.state != "success":
            raise SystemExit(f"the range run ended {result.state}: see {RESULTS / 'backfill.log'}")
        windows = conn.execute("SELECT DISTINCT window_start, window_end FROM sales.collection_runs").fetchall()
        if windows != [(first, last)]:
            raise SystemExit(f"the range run collected {windows}, not {first}..{last}")
        daily_first = last - dt.timedelta(days=daily_days - 1)
        from_range = rows_by_day(conn, daily_first, last)
        conn.execute("DELETE FROM sales.order_lines")

        before, start, daily_runs = sign_ons(), time.perf_counter(), []
        for i in range(daily_days):
            day = daily_first + dt.timedelta(days=i)
            say(f"backfill bench: daily run {i + 1}/{daily_days} for {day}")
            # from_date: None explicitly: dag.test() reuses one DAG object, and a param given in
            # an earlier run's conf would otherwise still be set.
            result = dag.test(run_conf={"date": day.isoformat(), "from_date": None, "lookback_days": 0,
                                        "restatement_horizon_days": 0})
            if result.state != "success":
                raise SystemExit(f"the daily run for {day} ended {result.state}: see {RESULTS / 'backfill.log'}")
            windows = conn.execute("SELECT DISTINCT window_start, window_end FROM sales.collection_runs "
                                   "WHERE run_id = %s", (result.run_id,)).fetchall()
            if windows != [(day, day)]:
                raise SystemExit(f"the daily run for {day} collected {windows}, not that day alone")
            daily_runs.append(result.run_id)
        out["daily_s"], out["daily_sign_ons"] = time.perf_counter() - start, sign_ons() - before
        out["task_seconds"] = task_seconds(daily_runs)
        from_daily = rows_by_day(conn, daily_first, last)
        days = {daily_first + dt.timedelta(days=i) for i in range(daily_days)}
        out["mismatched_days"] = sum(1 for d in days if from_range.get(d) != from_daily.get(d) or d not in from_daily)
        (RESULTS / "backfill_rows.json").write_text(json.dumps(
            {"range": {str(k): v for k, v in from_range.items()}, "daily": {str(k): v for k, v in from_daily.items()}}))
    return out


if __name__ == "__main__":
    main()
