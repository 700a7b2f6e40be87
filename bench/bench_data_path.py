"""Benchmark 1: the Rocket data path against PostgreSQL's COPY.

    .venv/bin/python bench/bench_data_path.py [--lines 1000000] [--invoices LINES/1000] [--days 100]

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
- load: ``load_facts`` into an empty embedded warehouse (the facts diffed against the stored
  ones in PostgreSQL, the changed groups derived in chunks, the change log, one transaction);
- load again: the same staged facts a second time (nothing changed at the portal);
- load with 1 % touched: one receipt fact in 100 changed (one more unit), loaded again;
- daily run: the day's invoices alone (one day of the 100: 10,000 of the account's 1,000,000
  facts), one receipt in 100 of them changed, loaded as the next morning's run of that one day
  would load them;

the warehouse vacuumed and analysed before each of the last two (``common.settle``), as autovacuum
has done by the next daily run;

and then the limit: ``COPY ... FROM STDIN (FORMAT csv)`` of the final rows of
``sales.order_lines``, as CSV prepared beforehand, into an empty table like it. Targets:
the whole path within 3x the COPY, peak memory (max RSS of each stage's process) under
1.5 GB, the second load at most half the first, a run that touches 1 % of the account's lines at
most a tenth of the full load. That last target is read two ways, and both are reported against
it: the whole window re-read with 1 % of its lines changed (the extract is sent and compared whole,
so this load has the nothing-changed load as its floor), and a run that reads 1 % of the account's
lines (the daily run of a big seller). Also reported: the time to merely decode the .xlsx files
(calamine), the floor of any path that starts from the portal's files.
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
from common import RESULTS, Report, children_peak_rss_mb, load_average, peak_rss_mb, settle, timed

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


def final_rows_csv(conn) -> tuple[bytes, int]:
    """The rows the load left in sales.order_lines, as CSV (what the COPY limit copies) and their count."""
    from coupang_sales.warehouse import ORDER_LINE_COLUMNS

    cols = ", ".join(ORDER_LINE_COLUMNS)
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"COPY (SELECT {cols} FROM sales.order_lines) TO STDOUT (FORMAT csv)") as copy:
        for data in copy:
            buffer.write(data)
    return buffer.getvalue(), conn.execute("SELECT count(*) FROM sales.order_lines").fetchone()[0]


def _one_more_unit(facts, share: int) -> int:
    """Give one receipt fact in ``share`` of ``facts`` one more unit at its unit price, in place, as the
    portal would show a line re-counted; returns how many facts changed."""
    chosen = facts.index[facts["fact_kind"] == "rocket_receipt"][::share]
    facts.loc[chosen, "quantity"] = facts.loc[chosen, "quantity"] + 1
    facts.loc[chosen, "amount"] = facts.loc[chosen, "amount"] + facts.loc[chosen, "unit_price"]
    return len(chosen)


def touch_facts(staging: Path, share: int = 100) -> int:
    """Change one receipt fact in ``share`` (``_one_more_unit``) in the staged facts, as a re-collection
    that finds 1 % of the lines changed would; returns how many facts changed."""
    from coupang_sales.frames import read_frame, write_frame

    facts = read_frame(staging / "facts.parquet")
    changed = _one_more_unit(facts, share)
    write_frame(facts, staging / "facts.parquet")
    return changed


def one_day(staging: Path, target: Path, day: dt.date, share: int = 100) -> tuple[int, int]:
    """Stage in ``target`` what a run of ``day`` alone reads: the invoices written on ``day`` and their
    facts, one receipt fact in ``share`` of them changed (one more unit); returns how many facts it
    read and how many of them changed."""
    from coupang_sales.frames import read_frame, write_frame

    target.mkdir(parents=True, exist_ok=True)
    invoices = read_frame(staging / "invoices.parquet")
    invoices = invoices[invoices["written_date"] == day].reset_index(drop=True)
    facts = read_frame(staging / "facts.parquet")
    facts = facts[facts["document"].isin(invoices["invoice_no"])].reset_index(drop=True)
    changed = _one_more_unit(facts, share)
    write_frame(invoices, target / "invoices.parquet")
    write_frame(facts, target / "facts.parquet")
    return len(facts), changed


def copy_limit(conn, data: bytes, rows: int) -> float:
    """Seconds to COPY the final rows, as CSV prepared beforehand, into an empty table like sales.order_lines."""
    from coupang_sales.warehouse import ORDER_LINE_COLUMNS

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
    if copied != rows:
        raise SystemExit(f"COPY loaded {copied} rows, not {rows}")
    return elapsed


@dataclass
class StageRun:
    seconds: float
    gx_seconds: float
    peak_mb: float
    result: dict
    load_average: str = ""  # of the machine when the stage ended
    children_peak_mb: float = 0.0  # the largest process the stage started (the .xlsx decoders), 0 if none


def _stage_child(name: str, kwargs: dict, dsn: str | None, answer, module: str) -> None:
    """One stage in a fresh interpreter, as an Airflow task runs it; imports are not timed."""
    try:
        import importlib

        import great_expectations  # noqa: F401 - imported before the clock starts, as below
        import pandas  # noqa: F401
        import psycopg

        import coupang_sales.quality as quality

        stages = importlib.import_module(module)

        gx: dict[str, float] = {}
        run_checks = quality.run_checks

        def timed_checks(*a, **k):
            with timed(gx, "gx"):
                return run_checks(*a, **k)

        quality.run_checks = timed_checks
        start = time.perf_counter()
        if dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                result = getattr(stages, name)(conn, **kwargs)
        else:
            result = getattr(stages, name)(**kwargs)
        answer.send(StageRun(time.perf_counter() - start, gx.get("gx", 0.0), peak_rss_mb(), result,
                             load_average(), children_peak_rss_mb()))
    except BaseException as exc:  # reported by the parent
        answer.send(f"{type(exc).__name__}: {exc}")


def in_own_process(name: str, kwargs: dict, dsn: str | None = None,
                   module: str = "coupang_sales.rocket.stages") -> StageRun:
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    child = context.Process(target=_stage_child, args=(name, kwargs, dsn, theirs, module))
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
    parser.add_argument("--invoices", type=int, default=None, help="default: one per 1,000 lines")
    parser.add_argument("--days", type=int, default=100)
    args = parser.parse_args(argv)
    args.invoices = args.invoices or max(args.lines // 1_000, 1)
    print(f"data path bench: {args.lines:,} lines over {args.invoices:,} invoices and {args.days} days", flush=True)
    # Generated in a child process, so this process's peak memory is the data path's alone.
    child = multiprocessing.Process(target=staged_input, args=(args.lines, args.invoices, args.days, _say))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generating the exports failed (exit {child.exitcode})")
    source = staged_input(args.lines, args.invoices, args.days, _say)

    import psycopg

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
            in_table = conn.execute(
                "SELECT (SELECT count(*) FROM sales.order_lines), (SELECT sum(payment_amount) FROM sales.order_lines)"
                " + (SELECT coalesce(sum(amount), 0) FROM sales.restatement_adjustments)").fetchone()
            # The same window again, nothing changed at the portal; then again with 1 % of the lines changed;
            # each after the warehouse settled, as it has by the next daily run (common.settle).
            settle(conn)
            again = in_own_process("load", {**common_args, "window": window, "run_id": "bench-again"}, warehouse.dsn)
            settle(conn)
            touched_facts = touch_facts(staging)
            touched = in_own_process("load", {**common_args, "window": window, "run_id": "bench-touched"},
                                     warehouse.dsn)
            # The next morning's run of the last day alone, into the account that now holds 1,000,000 facts.
            settle(conn)
            day_staging = work / "staging_day"
            day_read, day_facts = one_day(staging, day_staging, LAST_DAY)
            daily = in_own_process("load", {"staging": day_staging, "account": {"account_id": ACCOUNT},
                                            "window": Window(LAST_DAY, LAST_DAY), "run_id": "bench-daily"},
                                   warehouse.dsn)
            data, rows = final_rows_csv(conn)
            copy_s = copy_limit(conn, data, rows)
            copy_load = load_average()
            del data
            decode_s = decode_only(staging)
    finally:
        warehouse.stop()
        shutil.rmtree(work, ignore_errors=True)
    stages = {"validate": validated.seconds, "transform": transformed.seconds, "load": loaded.seconds,
              "great expectations": validated.gx_seconds, "copy": copy_s, "decode": decode_s}
    peaks = {"validate": validated.peak_mb, "transform": transformed.peak_mb, "load": loaded.peak_mb,
             "load again": again.peak_mb, "load 1 % touched": touched.peak_mb, "daily run": daily.peak_mb}
    load_again_s, touched_s, daily_s = again.seconds, touched.seconds, daily.seconds
    report.settings["load_average"] = {name: run.load_average for name, run in (
        ("validate", validated), ("transform", transformed), ("load", loaded), ("load again", again),
        ("load touched", touched), ("daily run", daily))}
    report.settings["load_average"]["copy"] = copy_load
    decoders_mb = validated.children_peak_mb
    validated, transformed, loaded = validated.result, transformed.result, loaded.result
    again, touched, daily = again.result, touched.result, daily.result
    if in_table != (loaded["rows_loaded"], loaded["payment_amount"]):
        raise SystemExit(f"the warehouse holds {in_table} (lines, paid + adjusted), the load gave "
                         f"{loaded['rows_loaded']} lines and {loaded['payment_amount']} won collected")
    if again["rows_loaded"] or again["added"] or again["changed"] or again["removed"]:
        raise SystemExit(f"the second load of unchanged facts changed lines: {again}")
    if touched["facts_changed"] != touched_facts or touched["changed"] != touched_facts:
        raise SystemExit(f"touched {touched_facts} facts, the load saw {touched}")
    if daily["facts_changed"] != day_facts or daily["changed"] != day_facts or daily["facts_removed"]:
        raise SystemExit(f"the daily run changed {day_facts} facts, the load saw {daily}")
    path = stages["validate"] + stages["transform"] + stages["load"]
    report.add("lines read from the exports", validated["rows_extracted"], "lines")
    report.add("order lines loaded", loaded["rows_loaded"], "rows",
               note=f"{transformed['order_lines']:,} after 반출 restatement")
    loads = report.settings["load_average"]
    report.add("validate: read .xlsx, type, dedupe, GX", stages["validate"], "s",
               note=f"{stages['validate'] / path:.0%} of the path; load average {loads['validate']}")
    report.add("  of which Great Expectations", stages["great expectations"], "s",
               note=f"{stages['great expectations'] / path:.0%} of the path")
    report.add("transform: the Rocket policy", stages["transform"], "s",
               note=f"{stages['transform'] / path:.0%}; load average {loads['transform']}")
    report.add("load: load_facts (diff, derive, change log, swap)", stages["load"], "s",
               note=f"{stages['load'] / path:.0%}; load average {loads['load']}")
    report.add("whole path", path, "s")
    report.add("load again, same window, nothing changed", load_again_s, "s",
               note=f"{again['facts_new'] + again['facts_changed'] + again['facts_removed']} facts changed, "
                    f"{again['groups_derived']} groups derived; load average {loads['load again']}")
    report.add("  second load / first load", load_again_s / stages["load"], "x", "<= 0.5")
    second_path = stages["validate"] + stages["transform"] + load_again_s
    report.add("  second run, whole path / first", second_path / path, "x",
               note="validate and transform read and check every file again")
    report.add("load with 1 % of the lines changed", touched_s, "s",
               note=f"{touched['facts_changed']:,} facts changed, {touched['changed']:,} lines changed; "
                    f"load average {loads['load touched']}")
    report.add("  touched load / full load", touched_s / stages["load"], "x", "<= 0.1",
               note="the whole window read and compared again")
    report.add("daily run: the last day alone, 1 % of what it reads changed", daily_s, "s",
               note=f"{day_read:,} of the account's {loaded['facts_new']:,} facts read; "
                    f"{daily['facts_changed']:,} facts changed, "
                    f"{daily['changed']:,} lines changed; load average {loads['daily run']}")
    report.add("  daily run / full load", daily_s / stages["load"], "x", "<= 0.1",
               note=f"a run that reads {day_read / loaded['facts_new']:.0%} of the account's lines")
    report.add("limit: COPY of the final rows as CSV", stages["copy"], "s", note=f"load average {loads['copy']}")
    report.add("whole path / COPY", path / stages["copy"], "x", "<= 3")
    report.add("floor: decoding the .xlsx files alone", stages["decode"], "s",
               note=f"{stages['decode'] / stages['copy']:.1f}x the COPY before any parsing")
    report.add("lines per second through the whole path", validated["rows_extracted"] / path, "lines/s")
    report.add("peak memory (max RSS of the largest stage)", max(peaks.values()), "MB", "< 1536",
               note="each stage in its own process, as Airflow runs tasks: "
                    + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
                    + f"; each decode process at most {decoders_mb:.0f}")
    report.emit()
    return report


if __name__ == "__main__":
    main()
