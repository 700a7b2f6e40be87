"""Starts the Airflow UI (airflow standalone) with the DAGs, the portal sandbox and an embedded warehouse.

    python scripts/airflow_ui.py [--scenario FILE] [--port 8080]

Prints the URL and the admin login, then runs until Ctrl-C, stopping everything it started.
State lives in .local/ (Airflow home, warehouse data) so runs survive a restart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]

import local_stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "include/sandbox/scenarios/demo.json")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()

    state = ROOT / ".local"
    home = state / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **local_stack.airflow_env(home),
           "AIRFLOW__API__PORT": str(args.port),
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    os.environ.update(env)
    raw = json.loads(args.scenario.read_text(encoding="utf-8"))
    env["COUPANG_TODAY"] = raw["today"]

    import psycopg

    from coupang_sales.warehouse import apply_schema
    from sandbox import SandboxServer, load_scenario

    warehouse = local_stack.EmbeddedWarehouse(state / "pgdata").start()
    sandbox = SandboxServer(load_scenario(args.scenario))
    sandbox.start()
    standalone = None
    try:
        env["AIRFLOW_CONN_COUPANG_WAREHOUSE"] = local_stack.connection_json(warehouse.dsn)
        with psycopg.connect(warehouse.dsn, autocommit=True) as conn:
            apply_schema(conn)
            env.update(local_stack.register_scenario_accounts(conn, raw, sandbox))
        # Pools serialise each portal's browser tasks (one logged-in seller per browser/IP).
        subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        for pool, portal in (("coupang_supplier_hub", "Supplier Hub"), ("coupang_wing", "Wing")):
            subprocess.run(["airflow", "pools", "set", pool, "1", f"{portal}: one logged-in seller at a time"],
                           env=env, check=True, capture_output=True)
        standalone = subprocess.Popen(["airflow", "standalone"], env=env, cwd=ROOT, start_new_session=True,
                                      stdout=open(home / "standalone.log", "w"), stderr=subprocess.STDOUT)
        url = f"http://localhost:{args.port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if standalone.poll() is not None:
                print(f"airflow standalone exited; see {home / 'standalone.log'}", file=sys.stderr)
                return 1
            try:
                urllib.request.urlopen(f"{url}/api/v2/version", timeout=2)
                break
            except OSError:
                time.sleep(2)
        passwords = home / "simple_auth_manager_passwords.json.generated"
        login = json.loads(passwords.read_text()) if passwords.exists() else {}
        print(f"Airflow UI: {url}")
        for user, password in login.items():
            print(f"  login: {user} / {password}")
        print(f"Sandbox portal: {sandbox.url}   warehouse: {warehouse.dsn}")
        print("DAGs start paused: unpause coupang_rocket_sales, then trigger it with a date "
              f"(the sandbox's today is {raw['today']}). Ctrl-C stops everything.", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    finally:
        if standalone and standalone.poll() is None:
            os.killpg(standalone.pid, signal.SIGINT)
            # SIGINT asks standalone to stop its components; escalate if it does not within the grace time.
            for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 20)):
                try:
                    standalone.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    os.killpg(standalone.pid, sig)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(standalone.pid, signal.SIGKILL)  # components left behind by the parent
        sandbox.stop()
        warehouse.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
