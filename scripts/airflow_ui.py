"""Starts the Airflow UI (airflow standalone) with the DAGs, the portal sandbox and an embedded warehouse.

    python scripts/airflow_ui.py [--scenario FILE] [--port 8080] [--no-collect]

Prints the URL and the admin login, then runs until Ctrl-C, stopping everything it started.
State lives in .local/ (Airflow home, warehouse data) so runs survive a restart.

Unless --no-collect, it unpauses both DAGs and triggers one run of each for the day before the
scenario's today, so the collection status page (Browse > Coupang collections) fills with the
scenario's accounts in the states the runs really leave them in. The scheduler starts only
triggered runs and backfills here (scheduler.use_job_schedule off): the sandbox's clock is the
scenario's today, and a scheduled run would collect dates the sandbox has never seen. So the DAG
list's "Next Run" is the newest daily interval (06:00 Asia/Seoul of the real today or yesterday),
already past, and never starts: the UI's heading (``[api] instance_name``) says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]

import local_stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "include/sandbox/scenarios/demo.json")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-collect", action="store_true", help="leave the DAGs paused, trigger nothing")
    args = parser.parse_args()

    state = ROOT / ".local"
    home = state / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(local_stack.airflow_env(home))
    raw = json.loads(args.scenario.read_text(encoding="utf-8"))

    import psycopg

    from coupang_sales.warehouse.schema_versions import migrate
    from sandbox import SandboxServer, load_scenario

    warehouse = local_stack.EmbeddedWarehouse(state / "pgdata").start()
    # Airflow's metadata in the same embedded PostgreSQL (database 'airflow'): the scheduler and
    # the CLI (backfills) write at the same time, which SQLite cannot take.
    metadata = local_stack.postgres_metadata_url(warehouse.dsn, "airflow")
    env = {**os.environ, **local_stack.airflow_env(home, metadata_url=metadata), "COUPANG_TODAY": raw["today"],
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
           # said where "Next Run" is shown: the scheduler creates no scheduled run here, so it stays in the past
           "AIRFLOW__API__INSTANCE_NAME": "Coupang sales sandbox: scheduled runs are off (Next Run never starts); "
                                          "trigger a run or a backfill",
           # naive dates on the CLI and in the API are Seoul's (the UI's own zone is the browser's: set it to
           # Asia/Seoul under User > Timezone so the backfill dialog's range is the Seoul dates collected)
           "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Seoul"}
    sandbox = SandboxServer(load_scenario(args.scenario))
    sandbox.start()
    standalone = None
    try:
        env["AIRFLOW_CONN_COUPANG_WAREHOUSE"] = local_stack.connection_json(warehouse.dsn)
        with psycopg.connect(warehouse.dsn, autocommit=True) as conn:
            migrate(conn)
            env.update(local_stack.register_scenario_accounts(conn, raw, sandbox))
        standalone = local_stack.StandaloneAirflow(env, port=args.port, log_path=home / "standalone.log")
        standalone.prepare()
        standalone.start()
        print(f"Airflow UI: {standalone.url}")
        for user, password in standalone.logins().items():
            print(f"  login: {user} / {password}")
        print(f"Sandbox portal: {sandbox.url}   warehouse: {warehouse.dsn}")
        print(f"Collection status page: {standalone.url}/plugin/coupang-collections (Browse > Coupang collections; "
              f"the page alone, outside the UI's frame: {standalone.url}/coupang-collections/)")
        print("Scheduled runs are off here (the sandbox's clock is the scenario's today): the DAG list's Next Run is "
              "in the past and never starts; trigger a run or a backfill")
        print("Set the UI's time zone to Asia/Seoul (User > Timezone): runs collect Seoul dates, and the backfill "
              "dialog reads its range in the UI's zone")
        if args.no_collect:
            print("DAGs start paused: unpause coupang_rocket_sales, then trigger it with a date "
                  f"(the sandbox's today is {raw['today']}). Ctrl-C stops everything.", flush=True)
        else:
            day = (dt.date.fromisoformat(raw["today"]) - dt.timedelta(days=1)).isoformat()
            for dag_id in ("coupang_rocket_sales", "coupang_jet_sales"):
                standalone.cli("dags", "unpause", dag_id)
                standalone.cli("dags", "trigger", dag_id, "--conf", json.dumps({"date": day}))
            print(f"Triggered coupang_rocket_sales and coupang_jet_sales for {day} (the sandbox's today is "
                  f"{raw['today']}); the status page fills as their accounts finish. Ctrl-C stops everything.",
                  flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        if standalone:
            standalone.stop()
        sandbox.stop()
        warehouse.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
