"""Benchmark 1: the Rocket data path against PostgreSQL's COPY.

    .venv/bin/python bench/bench_data_path.py [--lines 1000000] [--invoices 1000] [--days 100]

The input is what the extract task stages for one account: the 일반매입계정 rows
(``invoices.json``) and one 입고상세내역 .xlsx per invoice, written by the sandbox's own
export writer (title rows, numbers as text with separators, a blank row, a 합계 row: the
file the portal gives, with the cells its HTML pages show). One line in 50 is a partial
반출 of the line before it. Generating the files is slow (openpyxl), so they are cached
under ``.local/bench/data_path/`` and reused by later runs; generation is not timed.

Timed stage by stage as the DAG runs them (``rocket_stages``), each in its own fresh
process as Airflow runs each task (imports are not timed):

- validate: read every .xlsx by header name, type the cells, drop verbatim duplicates,
  and run the Great Expectations suite (the GX part is reported on its own too);
- transform: the Rocket policy (총단가, 작성일자, 반출 restatement);
- load: ``replace_window`` into an empty embedded warehouse (COPY into a temporary
  table, change log, delete + insert, one transaction);

and then the limit: ``COPY ... FROM STDIN (FORMAT csv)`` of the same final rows, as CSV
prepared beforehand, into an empty table like ``sales.order_lines``. Targets: the whole
path within 3x the COPY, peak memory (max RSS of the largest stage's process) under
1.5 GB. Also reported: the time to merely decode the .xlsx files (calamine), the floor of
any path that starts from the portal's files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import common  # noqa: F401 - first: puts plugins/ and include/ on sys.path
import local_stack
from common import RESULTS, Report, peak_rss_mb, timed

ACCOUNT = "V00000900"
VENDOR = "주식회사 대용량"
LAST_DAY = dt.date(2025, 12, 31)


def scenario(lines: int, invoices: int, days: int) -> dict:
    per_invoice = lines // invoices
    out = []
    for i in range(invoices):
        day = LAST_DAY - dt.timedelta(days=i % days)
        rows = []
        for n in range(per_invoice):
            price = 1 + n % 40
            base = {"po_no": f"9{i:05d}{n // 2:05d}", "sku_id": f"{100000 + n}",
                    "center": ("이천1", "평택", "대구2")[n % 3], "sku_name": f"대용량 상품 {n} 1.5L x {1 + n % 12}",
                    "moved_date": (day - dt.timedelta(days=2)).isoformat(),
                    "unit_price": 1_100 * price, "unit_supply": 1_000 * price, "unit_tax": 100 * price}
            if n % 50 == 49:  # a partial 반출 of the line before it
                rows.append({**base, "sku_id": f"{100000 + n - 1}", "kind": "반출", "qty": -1})
            else:
                rows.append({**base, "kind": "발주", "qty": 1 + n % 9})
        out.append({"invoice_no": f"5{i:07d}", "written_date": day.isoformat(),
                    "tax_invoice_confirmed": (day + dt.timedelta(days=1)).isoformat(), "lines": rows})
    return {"today": (LAST_DAY + dt.timedelta(days=1)).isoformat(),
            "rocket": {"accounts": [{"account_id": ACCOUNT, "vendor_name": VENDOR, "username": "bench",
                                     "password": "pw-bench", "sub_account_expires": "2099-12-31",
                                     "invoices": out}]},
            "jet": {"accounts": []}}


def _write_export(job: tuple) -> int:
    from sandbox.excel import receive_detail_xlsx

    invoice, target = job
    body = receive_detail_xlsx(invoice)
    Path(target).write_bytes(body)
    return len(body)


def staged_input(lines: int, invoices: int, days: int, say) -> Path:
    """The staging folder the extract task would leave, generated once and cached."""
    from sandbox import load_scenario
    from sandbox.state import SandboxState
    from sandbox.supplier_hub import LIST_HEADERS, _list_row

    folder = RESULTS / "data_path" / f"{lines}x{invoices}x{days}"
    if (folder / "complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    say(f"data path bench: generating {lines:,} lines over {invoices:,} invoices once (cached in {folder})")
    start = time.perf_counter()
    loaded = load_scenario(scenario(lines, invoices, days))
    state = SandboxState(loaded)
    account = loaded.rocket_account(ACCOUNT)
    rows = [dict(zip(LIST_HEADERS, _list_row(account, inv, state)["cells"], strict=False))
            for inv in account.invoices]
    (folder / "invoices.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    jobs = [(inv, str(folder / f"receive_detail_{inv.invoice_no}.xlsx")) for inv in account.invoices]
    with multiprocessing.Pool() as pool:
        size = sum(pool.imap_unordered(_write_export, jobs, chunksize=8))
    (folder / "complete").write_text(json.dumps({"bytes": size, "seconds": time.perf_counter() - start}))
    say(f"data path bench: {size / 1e6:.0f} MB of .xlsx in {time.perf_counter() - start:.0f} s")
    return folder


def copy_limit(conn, order_lines) -> float:
    """Seconds to COPY the final rows, as CSV prepared beforehand, into an empty table like sales.order_lines."""
    from coupang_sales.warehouse import ORDER_LINE_COLUMNS

    buffer = io.StringIO()
    order_lines.loc[:, list(ORDER_LINE_COLUMNS)].to_csv(buffer, index=False, header=False)
    data = buffer.getvalue().encode()
    cols = ", ".join(ORDER_LINE_COLUMNS)
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS public.copy_limit")
        conn.execute("CREATE TABLE public.copy_limit (LIKE sales.order_lines INCLUDING ALL)")
    start = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur, \
            cur.copy(f"COPY public.copy_limit ({cols}) FROM STDIN (FORMAT csv)") as copy:
        for first in range(0, len(data), 1 << 20):
            copy.write(data[first:first + (1 << 20)])
    elapsed = time.perf_counter() - start
    copied = conn.execute("SELECT count(*) FROM public.copy_limit").fetchone()[0]
    if copied != len(order_lines):
        raise SystemExit(f"COPY loaded {copied} rows, not {len(order_lines)}")
    return elapsed


@dataclass
class StageRun:
    seconds: float
    gx_seconds: float
    peak_mb: float
    result: dict


def _stage_child(name: str, kwargs: dict, dsn: str | None, answer) -> None:
    """One stage in a fresh interpreter, as an Airflow task runs it; imports are not timed."""
    try:
        import great_expectations  # noqa: F401 - imported before the clock starts, as below
        import pandas  # noqa: F401
        import psycopg

        import coupang_sales.quality as quality
        from coupang_sales.rocket import stages as rocket_stages

        gx: dict[str, float] = {}
        run_checks = quality.run_checks

        def timed_checks(*a, **k):
            with timed(gx, "gx"):
                return run_checks(*a, **k)

        quality.run_checks = timed_checks
        start = time.perf_counter()
        if dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                result = getattr(rocket_stages, name)(conn, **kwargs)
        else:
            result = getattr(rocket_stages, name)(**kwargs)
        answer.send(StageRun(time.perf_counter() - start, gx.get("gx", 0.0), peak_rss_mb(), result))
    except BaseException as exc:  # reported by the parent
        answer.send(f"{type(exc).__name__}: {exc}")


def in_own_process(name: str, kwargs: dict, dsn: str | None = None) -> StageRun:
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    child = context.Process(target=_stage_child, args=(name, kwargs, dsn, theirs))
    child.start()
    outcome = mine.recv()
    child.join()
    if not isinstance(outcome, StageRun):
        raise SystemExit(f"the {name} stage failed: {outcome}")
    return outcome


def _say(message: str) -> None:
    print(message, flush=True)


def decode_only(staging: Path) -> float:
    """Seconds to decode every staged .xlsx into Python rows and nothing else (calamine, Rust):
    the floor of any path that starts from these files."""
    from python_calamine import CalamineWorkbook

    start = time.perf_counter()
    for path in sorted(staging.glob("receive_detail_*.xlsx")):
        CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description="The Rocket data path against COPY")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"data path bench: {args.lines:,} lines over {args.invoices:,} invoices and {args.days} days", flush=True)
    # Generated in a child process, so this process's peak memory is the data path's alone.
    child = multiprocessing.Process(target=staged_input, args=(args.lines, args.invoices, args.days, _say))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generating the exports failed (exit {child.exitcode})")
    source = staged_input(args.lines, args.invoices, args.days, _say)

    import psycopg

    from coupang_sales.frames import read_frame
    from coupang_sales.model import Window
    from coupang_sales.warehouse.schema_versions import migrate

    work = Path(tempfile.mkdtemp(prefix="coupang-bench-data-path-"))
    staging = work / "staging"
    shutil.copytree(source, staging)
    window = Window(LAST_DAY - dt.timedelta(days=args.days - 1), LAST_DAY)
    common_args = {"staging": staging, "account": {"account_id": ACCOUNT}}
    warehouse = local_stack.EmbeddedWarehouse(work / "pgdata").start()
    report = Report("data_path", settings={"lines": args.lines, "invoices": args.invoices, "days": args.days})
    try:
        with psycopg.connect(warehouse.dsn, autocommit=True) as conn:
            migrate(conn)
            validated = in_own_process("validate", {**common_args, "window": window, "list_until": LAST_DAY})
            transformed = in_own_process("transform", common_args)
            loaded = in_own_process("load", {**common_args, "window": window, "run_id": "bench"}, warehouse.dsn)
            order_lines = read_frame(staging / "order_lines.parquet")
            copy_s = copy_limit(conn, order_lines)
            decode_s = decode_only(staging)
            in_table = conn.execute("SELECT count(*), sum(payment_amount)::bigint FROM sales.order_lines").fetchone()
    finally:
        warehouse.stop()
        shutil.rmtree(work, ignore_errors=True)
    stages = {"validate": validated.seconds, "transform": transformed.seconds, "load": loaded.seconds,
              "great expectations": validated.gx_seconds, "copy": copy_s, "decode": decode_s}
    peaks = {"validate": validated.peak_mb, "transform": transformed.peak_mb, "load": loaded.peak_mb}
    validated, transformed, loaded = validated.result, transformed.result, loaded.result
    if in_table != (len(order_lines), int(order_lines["payment_amount"].sum())):
        raise SystemExit(f"the warehouse holds {in_table}, the transform gave {len(order_lines)} rows")
    path = stages["validate"] + stages["transform"] + stages["load"]
    report.add("lines read from the exports", validated["rows_extracted"], "lines")
    report.add("order lines loaded", loaded["rows_loaded"], "rows",
               note=f"{transformed['order_lines']:,} after 반출 restatement")
    report.add("validate: read .xlsx, type, dedupe, GX", stages["validate"], "s",
               note=f"{stages['validate'] / path:.0%} of the path")
    report.add("  of which Great Expectations", stages["great expectations"], "s",
               note=f"{stages['great expectations'] / path:.0%} of the path")
    report.add("transform: the Rocket policy", stages["transform"], "s", note=f"{stages['transform'] / path:.0%}")
    report.add("load: replace_window (COPY, change log, swap)", stages["load"], "s",
               note=f"{stages['load'] / path:.0%}")
    report.add("whole path", path, "s")
    report.add("limit: COPY of the final rows as CSV", stages["copy"], "s")
    report.add("whole path / COPY", path / stages["copy"], "x", "<= 3")
    report.add("floor: decoding the .xlsx files alone", stages["decode"], "s",
               note=f"{stages['decode'] / stages['copy']:.1f}x the COPY before any parsing")
    report.add("lines per second through the whole path", validated["rows_extracted"] / path, "lines/s")
    report.add("peak memory (max RSS of the largest stage)", max(peaks.values()), "MB", "< 1536",
               note="each stage in its own process, as Airflow runs tasks: "
                    + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    report.emit()
    return report


if __name__ == "__main__":
    main()
