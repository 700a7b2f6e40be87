"""Benchmark 1b: the Jet v2 data path against PostgreSQL's COPY.

    .venv/bin/python bench/bench_jet_path.py [--rows 1000000] [--days 100]

The input is what the extract task stages for one Jet v2 account: both settlement reports
(CATEGORY_TR and WAREHOUSING_SHIPPING) of every weekly settlement group over ``--days`` days,
written by the sandbox's own report writers, with the groups' answer (``settlement_groups.json``).
About ``--rows`` report rows in all: one '주문 정산' row and one 배송비 row per order, and one
order in 25 cancelled later (a '주문 정산취소' row and a 배송비 정산취소 row). Generated once and
cached under ``.local/bench/jet_path/`` (openpyxl is slow); generation is not timed.

Timed as the DAG runs them (``jet_stages``), each stage in its own fresh process: validate
(read both reports by header name, the raw GX suite), transform (the v2 policy, its suite,
the facts), load (``load_facts`` into an empty warehouse), the same load again (nothing
changed; the warehouse vacuumed and analysed first, as autovacuum has by the next daily run:
``common.settle``), then the limit: COPY of the final ``sales.order_lines`` rows as CSV. Targets as
the Rocket path's: the whole path within 3x the COPY, every stage under 1.5 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

from bench_data_path import copy_limit, final_rows_csv, in_own_process

import common  # noqa: F401 - first: puts plugins/ and include/ on sys.path
import local_stack
from common import RESULTS, Report, load_average, settle

ACCOUNT = "A00000900"
LAST_DAY = dt.date(2025, 12, 31)
JET_STAGES = "bench_jet_path"  # the module-level stage functions below, over the v2 stages


def _plan(staging: Path, account: dict, window, list_until: dt.date):
    from coupang_sales.plan import Account, RunPlan

    return RunPlan(account=Account(channel="coupang_jet", conn_id="bench", **account), window=window,
                   list_until=list_until, staging=Path(staging).as_uri(), started_at=dt.datetime.now(dt.UTC))


def validate(*, staging: Path, account: dict, window, list_until: dt.date) -> dict:
    from coupang_sales.jet.stages import V2Stages

    return V2Stages().validate(_plan(staging, account, window, list_until), staging).model_dump()


def transform(*, staging: Path, account: dict, window, list_until: dt.date) -> dict:
    from coupang_sales.jet.stages import V2Stages

    return V2Stages().transform(_plan(staging, account, window, list_until), staging).model_dump()


def load(conn, *, staging: Path, account: dict, window, list_until: dt.date, run_id: str) -> dict:
    from coupang_sales.jet.stages import V2Stages

    return V2Stages().load(conn, _plan(staging, account, window, list_until), staging, run_id=run_id).model_dump()


def scenario(rows: int, days: int) -> dict:
    orders = []
    for i in range(int(rows / 2.08)):
        day = LAST_DAY - dt.timedelta(days=i % days)
        order = {"order_id": f"2{i:010d}", "option_id": f"8{i % 5_000:06d}", "sku_id": f"6{i % 5_000:06d}",
                 "product_name": f"대용량 상품 {i % 5_000}", "recognized_date": day.isoformat(),
                 "unit_price": 1_000 * (1 + i % 30), "qty": 1 + i % 3, "coupang_discount": 100 * (i % 2),
                 "instant_coupon": 0, "download_coupon": 500 * (i % 5 == 0), "commission_rate": 10.8,
                 "fees": [{"type": "배송비", "amount": 2_500, "discount": 0}]}
        if i % 25 == 24 and day < LAST_DAY:
            order["cancelled_date"] = (day + dt.timedelta(days=1)).isoformat()
        orders.append(order)
    return {"today": (LAST_DAY + dt.timedelta(days=1)).isoformat(), "rocket": {"accounts": []},
            "jet": {"accounts": [{"account_id": ACCOUNT, "username": "bench", "password": "pw-bench", "version": 2,
                                  "settlement_cycle": "weekly", "v2_orders": orders}]}}


_STATE: dict = {}


def _write_group(job: tuple) -> int:
    from sandbox import excel

    account, group, today, folder = _STATE["account"], job[0], _STATE["today"], Path(job[1])
    size = 0
    for report, write in (("CATEGORY_TR", excel.category_tr_xlsx), ("WAREHOUSING_SHIPPING",
                                                                   excel.warehousing_shipping_xlsx)):
        body = write(account, [group], today)
        (folder / f"{report}__{group.key}.xlsx").write_bytes(body)
        size += len(body)
    return size


def _init(scenario_json: str) -> None:
    from sandbox import load_scenario

    loaded = load_scenario(json.loads(scenario_json))
    _STATE["account"] = loaded.jet_account(ACCOUNT)
    _STATE["today"] = LAST_DAY + dt.timedelta(days=1)


def staged_input(rows: int, days: int) -> Path:
    from sandbox import load_scenario, settlement
    from sandbox.state import SandboxState
    from sandbox.wing import _group_json

    folder = RESULTS / "jet_path" / f"{rows}x{days}"
    if (folder / "complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"jet path bench: generating about {rows:,} report rows over {days} days once (cached in {folder})",
          flush=True)
    start = time.perf_counter()
    raw = scenario(rows, days)
    loaded = load_scenario(raw)
    state = SandboxState(loaded)
    account = loaded.jet_account(ACCOUNT)
    today = LAST_DAY + dt.timedelta(days=1)
    first = LAST_DAY - dt.timedelta(days=days - 1)
    groups = settlement.groups(account, first, LAST_DAY, today)
    (folder / "settlement_groups.json").write_text(json.dumps(
        [_group_json(state, account, g, settlement.SETTLEMENT_RATIOS[0], today) for g in groups],
        ensure_ascii=False), encoding="utf-8")
    (folder / "collected_range.json").write_text(json.dumps({"first_day": first.isoformat(),
                                                             "last_day": LAST_DAY.isoformat()}))
    with multiprocessing.Pool(initializer=_init, initargs=(json.dumps(raw),)) as pool:
        size = sum(pool.imap_unordered(_write_group, [(g, str(folder)) for g in groups]))
    (folder / "complete").write_text(json.dumps({"bytes": size, "seconds": time.perf_counter() - start}))
    print(f"jet path bench: {size / 1e6:.0f} MB of .xlsx in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description="The Jet v2 data path against COPY")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=100)
    args = parser.parse_args(argv)
    child = multiprocessing.Process(target=staged_input, args=(args.rows, args.days))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generating the reports failed (exit {child.exitcode})")
    source = staged_input(args.rows, args.days)

    import psycopg

    from coupang_sales.model import Window
    from coupang_sales.warehouse.schema_versions import migrate

    work = Path(tempfile.mkdtemp(prefix="coupang-bench-jet-path-"))
    staging = work / "staging"
    shutil.copytree(source, staging)
    window = Window(LAST_DAY - dt.timedelta(days=args.days - 1), LAST_DAY)
    account = {"account_id": ACCOUNT, "jet_version": 2}
    common_args = {"staging": staging, "account": account}
    warehouse = local_stack.EmbeddedWarehouse(work / "pgdata").start()
    report = Report("jet_path", settings={"rows": args.rows, "days": args.days})
    try:
        with psycopg.connect(warehouse.dsn, autocommit=True) as conn:
            migrate(conn)
            validated = in_own_process("validate", {**common_args, "window": window, "list_until": LAST_DAY},
                                       module=JET_STAGES)
            transformed = in_own_process("transform", {**common_args, "window": window, "list_until": LAST_DAY},
                                         module=JET_STAGES)
            load_args = {**common_args, "window": window, "list_until": LAST_DAY}
            loaded = in_own_process("load", {**load_args, "run_id": "bench"}, warehouse.dsn, module=JET_STAGES)
            settle(conn)  # as autovacuum has by the next daily run (common.settle)
            again = in_own_process("load", {**load_args, "run_id": "bench-again"}, warehouse.dsn, module=JET_STAGES)
            data, rows = final_rows_csv(conn)
            copy_s = copy_limit(conn, data, rows)
            report.settings["load_average"] = {**{name: run.load_average for name, run in (
                ("validate", validated), ("transform", transformed), ("load", loaded), ("load again", again))},
                "copy": load_average()}
            del data
    finally:
        warehouse.stop()
        shutil.rmtree(work, ignore_errors=True)
    path = validated.seconds + transformed.seconds + loaded.seconds
    peaks = {"validate": validated.peak_mb, "transform": transformed.peak_mb, "load": loaded.peak_mb,
             "load again": again.peak_mb}
    report.add("report rows read (CATEGORY_TR + WAREHOUSING_SHIPPING)", validated.result["rows_extracted"], "rows")
    report.add("order lines loaded", loaded.result["rows_loaded"], "rows",
               note=f"{loaded.result['facts_new']:,} facts")
    report.add("validate: read both reports, raw GX suite", validated.seconds, "s",
               note=f"{validated.seconds / path:.0%}")
    report.add("transform: the v2 policy and its suite", transformed.seconds, "s",
               note=f"{transformed.seconds / path:.0%}")
    report.add("load: load_facts (diff, derive, change log, swap)", loaded.seconds, "s",
               note=f"{loaded.seconds / path:.0%}")
    report.add("whole path", path, "s")
    report.add("limit: COPY of the final rows as CSV", copy_s, "s")
    report.add("whole path / COPY", path / copy_s, "x", "<= 3")
    report.add("load again, nothing changed", again.seconds, "s",
               note=f"{again.result['groups_derived']} groups derived")
    report.add("  second load / first load", again.seconds / loaded.seconds, "x", "<= 0.5")
    report.add("peak memory (max RSS of the largest stage)", max(peaks.values()), "MB", "< 1536",
               note="each stage in its own process: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
                    + f"; each decode process of validate at most {validated.children_peak_mb:.0f}")
    report.emit()
    return report


if __name__ == "__main__":
    main()
