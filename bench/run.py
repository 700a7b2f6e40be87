"""Runs every benchmark, each in its own process, and prints every figure and ratio.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...]      (or: make bench)

``--quick`` runs each benchmark at a small size to check it works (minutes, not the
figures of record). The figures of record are the defaults; ``docs/performance.md``
holds them with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import RESULTS, ROOT, Figure, Report, format_table, machine

BENCHMARKS = {
    # name: (script, arguments of the --quick size)
    "dag_parse": ("bench_dag_parse.py", ["--runs", "3"]),
    "data_path": ("bench_data_path.py", ["--lines", "20000", "--invoices", "20"]),
    "jet_path": ("bench_jet_path.py", ["--rows", "20000"]),
    "extraction": ("bench_extraction.py", ["--invoices", "5", "--lines", "20", "--repeat", "1"]),
    "backfill": ("bench_backfill.py", ["--range-days", "20", "--daily-days", "2", "--lines", "5"]),
    "sign_ons": ("bench_sign_ons.py", []),
    "routes": ("bench_routes.py", ["--accounts", "4", "--routes", "1", "2"]),
    "status_page": ("bench_status_page.py", ["--accounts", "1000", "--days", "10", "--repeat", "3"]),
}


# Before each benchmark, the machine is let settle until its 1-minute load average is under SETTLED_LOAD,
# waiting at most SETTLE_SECONDS: a benchmark that starts many processes (routes: 4 browsers and their
# sandbox) leaves the load at 10 or more, and the next one's figures would carry it: the status page,
# run right after routes, started at a load average of 2.6-2.8 in two runs of 2026-12-04.
SETTLED_LOAD = 1.0
SETTLE_SECONDS = 180


def settle_machine(limit: float = SETTLE_SECONDS) -> None:
    """Wait until the 1-minute load average is under SETTLED_LOAD, or ``limit`` seconds; say which."""
    start = time.monotonic()
    while os.getloadavg()[0] >= SETTLED_LOAD and time.monotonic() - start < limit:
        time.sleep(5)
    load = os.getloadavg()[0]
    print(f"(settled {time.monotonic() - start:.0f} s: 1-minute load average {load:.1f}"
          + ("" if load < SETTLED_LOAD else f", still at or over {SETTLED_LOAD} after {limit:.0f} s") + ")",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures of record")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=sorted(BENCHMARKS))
    args = parser.parse_args(argv)
    print(f"machine: {machine()}", flush=True)
    reports, failed = [], []
    for name in [n for n in BENCHMARKS if n in args.only]:
        script, quick = BENCHMARKS[name]
        if not (ROOT / "bench" / script).exists():
            failed.append(f"{name}: {script} is missing")
            continue
        print(f"\n--- {name} ---", flush=True)
        if not args.quick:
            settle_machine()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *(quick if args.quick else [])],
                              cwd=ROOT)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
        if done.returncode != 0:
            failed.append(f"{name}: exited {done.returncode}")
            continue
        payload = json.loads((RESULTS / f"{name}.json").read_text())
        report = Report(name, settings=payload["settings"])
        report.figures = [Figure(**{k: v for k, v in f.items() if k != "met"}) for f in payload["figures"]]
        reports.append(report)
    print("\n=== summary ===")
    for report in reports:
        print(format_table(report))
    missed = [f"{r.benchmark}: {f.name}" for r in reports for f in r.figures if f.met is False]
    for line in failed:
        print(f"FAILED  {line}")
    for line in missed:
        print(f"MISSED  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
