"""Runs the collection DAGs through Airflow against the portal sandbox and prints what was collected.

    python scripts/demo.py [--scenario FILE] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--warehouse-dsn DSN]
                           [--work-dir DIR] [--log FILE]

Without --warehouse-dsn an embedded PostgreSQL is started in a temporary folder and
removed at the end; with it, the data stays there for inspection. Airflow's home (its
metadata, XComs and logs) and the staging folder (downloads, failure screenshots and
page dumps) live in a temporary folder removed at the end, or in --work-dir, kept.
Exits non-zero only when the pipeline itself broke, not when a collection was
correctly blocked.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]

import local_stack  # noqa: E402

# Failures that are the portal's or the seller's doing: the pipeline handled them correctly.
EXPECTED_REFUSALS = {"tax_invoice_pending", "sub_account_expired", "auth_challenge", "bot_rejected",
                     "bad_credentials", "portal_unavailable"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "include/sandbox/scenarios/demo.json")
    parser.add_argument("--from", dest="first", type=dt.date.fromisoformat)
    parser.add_argument("--to", dest="last", type=dt.date.fromisoformat)
    parser.add_argument("--warehouse-dsn")
    parser.add_argument("--work-dir", type=Path, help="keep Airflow's home and the staging folder here")
    parser.add_argument("--log", type=Path, default=ROOT / ".local" / "demo.log",
                        help="where Airflow's task logs and the services' logs go (default .local/demo.log)")
    args = parser.parse_args(argv)

    global LOG
    LOG = args.log
    LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"demo: Airflow's and the services' logs go to {LOG}", flush=True)
    with LOG.open("w") as log, _output_to(log):
        return _demo(args, parser)


def _demo(args, parser) -> int:
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="coupang-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update(local_stack.airflow_env(work / "airflow"))
    # Transient failures retry after seconds, not minutes, so the demo does not stall.
    os.environ.setdefault("COUPANG_RETRY_DELAY_SECONDS", "5")
    # One route (this machine's address): the accounts' browser tasks take turns on it, asking every 2 s.
    os.environ.setdefault("COUPANG_ROUTE_WAIT_SECONDS", "2")
    from sandbox import SandboxServer, load_scenario

    raw = json.loads(args.scenario.read_text(encoding="utf-8"))
    scenario = load_scenario(args.scenario)
    today = dt.date.fromisoformat(raw["today"])
    os.environ["COUPANG_TODAY"] = today.isoformat()  # the sandbox's clock, for expiry and look-ahead
    last = args.last or today - dt.timedelta(days=1)
    first = args.first or last - dt.timedelta(days=1)
    if first > last:
        parser.error(f"--from {first} is after --to {last}")

    warehouse = None if args.warehouse_dsn else local_stack.EmbeddedWarehouse(work / "pgdata").start()
    dsn = args.warehouse_dsn or warehouse.dsn
    sandbox = SandboxServer(scenario)
    try:
        sandbox.start()
        _say(f"demo: sandbox portal at {sandbox.url}; warehouse {'embedded (temporary)' if warehouse else 'given'}; "
             f"runs {first}..{last}")
        return run(dsn, raw, sandbox, first, last)
    finally:
        local_stack.stop_webdriver_server(work / "airflow")  # the browsers the runs' sessions left
        sandbox.stop()
        if warehouse:
            warehouse.stop()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


LOG = ROOT / ".local" / "demo.log"
_say = print


def _output_to(log):
    """Airflow's task logs go to ``log``; ``_say`` still prints progress on the console."""
    global _say
    redirect = local_stack.RedirectedOutput(log)
    _say = redirect.say
    return redirect


def run(dsn: str, scenario: dict, sandbox, first: dt.date, last: dt.date) -> int:
    import psycopg

    from coupang_sales.warehouse.schema_versions import migrate

    os.environ["AIRFLOW_CONN_COUPANG_WAREHOUSE"] = local_stack.connection_json(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        os.environ.update(local_stack.register_scenario_accounts(conn, scenario, sandbox))

    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.resetdb()
    bag = DagBag(dag_folder=str(local_stack.ROOT / "dags"))
    if bag.import_errors:
        _say(f"demo: DAG import errors: {bag.import_errors}")
        return 1
    run_ids = []
    day = first
    while day <= last:
        for dag_id in ("coupang_rocket_sales", "coupang_jet_sales"):
            dag_run = bag.dags[dag_id].test(logical_date=local_stack.logical_date_for(day))
            _say(f"demo: {dag_id} for {day}: run {dag_run.state}")
            run_ids.append(dag_run.run_id)
        day += dt.timedelta(days=1)

    with psycopg.connect(dsn, autocommit=True) as conn:
        _say(local_stack.summary(conn, run_ids))
        outcomes = conn.execute(
            """
            SELECT DISTINCT ON (run_id, channel, account_id) channel, account_id, status, reason
            FROM sales.collection_runs WHERE run_id = ANY(%s)
            ORDER BY run_id, channel, account_id, finished_at DESC, id DESC
            """, (run_ids,)).fetchall()
        active = conn.execute("SELECT count(*) FROM sales.accounts WHERE active").fetchone()[0]
    broken = [o for o in outcomes if o[2] == "failed" and o[3] not in EXPECTED_REFUSALS]
    days = (last - first).days + 1
    if len(outcomes) < active * days:
        _say(f"demo: some account has no recorded outcome: the pipeline broke (see {LOG})")
        return 1
    if broken:
        _say(f"demo: the pipeline broke for {broken} (see {LOG})")
        return 1
    _say("\ndemo: done. A run is 'failed' when one of its accounts was blocked; "
         "the blocked collections above are expected outcomes of the scenario.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
