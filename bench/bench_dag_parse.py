"""Benchmark 4: the cost of parsing dags/ (what the dag-processor pays on every parse loop).

    .venv/bin/python bench/bench_dag_parse.py [--runs 7]

Each run is a fresh interpreter that first imports ``airflow.sdk`` and the DagBag class
(the baseline every DAG file pays anyway), then times loading dags/ into a DagBag: that
is the cost above ``airflow.sdk``, our package imports included. A second load in the
same interpreter shows the DAG construction alone (modules already imported). The
figures are medians over the runs; the run also lists any heavy module the parse imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from common import ROOT, Report

HEAVY = ("pandas", "numpy", "great_expectations", "selenium", "psycopg", "psycopg2", "openpyxl",
         "python_calamine", "requests")

TRIVIAL_DAG = """
import pendulum
from airflow.sdk import DAG, task

with DAG(dag_id="trivial", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1)):
    @task
    def noop():
        pass

    noop()
"""

PROBE = f"""
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
trivial = sys.argv[1] if len(sys.argv) > 1 else None
if trivial:
    DagBag(dag_folder=trivial)
    t_trivial = time.perf_counter() - t1
    t1 = time.perf_counter()
bag = DagBag(dag_folder={str(ROOT / 'dags')!r})
t2 = time.perf_counter()
assert not bag.import_errors, bag.import_errors
again = DagBag(dag_folder={str(ROOT / 'dags')!r})
t3 = time.perf_counter()
print(json.dumps({{"trivial": t_trivial if trivial else None, "baseline": t1 - t0, "first": t2 - t1,
                  "again": t3 - t2, "dags": sorted(bag.dag_ids),
                  "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description="Time loading dags/ into a DagBag")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")])}
    env.setdefault("AIRFLOW_HOME", str(ROOT / ".local" / "bench" / "airflow"))
    trivial = ROOT / ".local" / "bench" / "trivial_dag"
    trivial.mkdir(parents=True, exist_ok=True)
    (trivial / "trivial.py").write_text(TRIVIAL_DAG)

    def probe(*extra: str) -> dict:
        done = subprocess.run([sys.executable, "-c", PROBE, *extra], env=env, capture_output=True, text=True,
                              check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    samples = [probe() for _ in range(args.runs)]
    after_trivial = [probe(str(trivial)) for _ in range(args.runs)]
    report = Report("dag_parse", settings={"runs": args.runs, "dags": ",".join(samples[0]["dags"])})
    median = {key: statistics.median(s[key] for s in samples) for key in ("baseline", "first", "again")}
    report.add("import airflow.sdk + DagBag (baseline, not ours)", median["baseline"], "s")
    report.add("load dags/ above airflow.sdk (fresh interpreter)", median["first"], "s", "< 0.3")
    report.add("load dags/ again (modules cached)", median["again"], "s")
    report.add("reference: a one-task DAG, fresh interpreter", statistics.median(s["trivial"] for s in after_trivial),
               "s", note="Airflow's own first-DagBag cost")
    report.add("load dags/ after the one-task DAG (ours alone)", statistics.median(s["first"] for s in after_trivial),
               "s")
    heavy = sorted({m for s in samples for m in s["heavy"]})
    report.add("heavy modules imported at parse time", len(heavy), "modules", "<= 0",
               ", ".join(heavy) if heavy else "none of " + ", ".join(HEAVY))
    report.emit()
    return report


if __name__ == "__main__":
    main()
