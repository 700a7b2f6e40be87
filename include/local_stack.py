"""The local stack for the demo, the UI launcher and the end-to-end tests: Airflow env, embedded warehouse, accounts."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHANNEL_OF = {"rocket": "coupang_rocket", "jet": "coupang_jet"}


def airflow_env(home: Path, *, staging: Path | None = None, metadata_url: str | None = None) -> dict[str, str]:
    """Environment for an Airflow 3 home with this package's DAGs and no examples.

    Metadata goes to SQLite in ``home`` unless ``metadata_url`` (a SQLAlchemy URL) is
    given: ``dag.test()`` is fine on SQLite, but a scheduler running tasks while the
    backfill CLI writes needs PostgreSQL (SQLite answers 'database is locked').
    """
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "COUPANG_STAGING_DIR": str(staging or home / "staging"),
        # the accounts' persistent browser profiles live and go with this home
        "COUPANG_PROFILE_DIR": str(home / "browser-profiles"),
        "SE_OFFLINE": "true",
        "GX_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "plugins"), str(ROOT / "include"),
                                                    os.environ.get("PYTHONPATH")])),
    }


class EmbeddedWarehouse:
    """An embedded PostgreSQL 16 (pgserver) on a Unix socket in ``data_dir``."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.server = None

    def start(self) -> "EmbeddedWarehouse":
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        return self

    @property
    def dsn(self) -> str:
        return self.server.get_uri()

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


class StandaloneAirflow:
    """``airflow standalone`` (scheduler, dag-processor, triggerer, API server) in its own process group.

    ``env`` must hold the Airflow home settings (``airflow_env``) and every connection the
    tasks need. ``prepare()`` migrates the metadata DB, creates the portal pools and
    serialises the DAGs, so the scheduler can run them as soon as it starts.
    """

    POOLS = (("coupang_supplier_hub", "Supplier Hub"), ("coupang_wing", "Wing"))

    def __init__(self, env: dict[str, str], *, port: int = 8080, log_path: Path | None = None):
        self.env = {**env, "AIRFLOW__API__PORT": str(port),
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
                    # every component shares this machine's cores: the default 5 s for a task's call to the
                    # execution API times out under load (the task is then retried, or fails out of tries)
                    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
                    "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}"}
        self.home = Path(self.env["AIRFLOW_HOME"])
        self.url = f"http://localhost:{port}"
        self.log_path = log_path or self.home / "standalone.log"
        self.process: subprocess.Popen | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``airflow <args>`` against this home; a failure raises with the command's output."""
        done = subprocess.run(["airflow", *args], env=self.env, cwd=ROOT, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}"
                               f"\n{done.stderr[-3000:]}")
        return done

    def prepare(self, pool_slots: int = 1) -> None:
        """Metadata DB, the portal pools (one logged-in seller per portal by default), serialised DAGs."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate")
        self.import_pools(pool_slots)
        self.cli("dags", "reserialize")

    def import_pools(self, pool_slots: int = 1) -> None:
        """The portal pools, in one CLI call (each call imports Airflow anew: seconds of CPU)."""
        pools = self.home / "pools.json"
        pools.write_text(json.dumps({pool: {"slots": pool_slots, "description": f"{portal}: one logged-in seller "
                                            "at a time", "include_deferred": False} for pool, portal in self.POOLS}))
        self.cli("pools", "import", str(pools))

    def start_then_prepare(self, dag_ids: Sequence[str], pool_slots: int = 1, timeout: float = 300) -> None:
        """``prepare()`` and ``start()`` with two CLI calls fewer: standalone migrates the metadata DB
        itself and its DAG processor serialises the DAGs, so this starts it, imports the pools and
        waits until ``dag_ids`` are serialised (a trigger or a backfill needs them)."""
        self.home.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        self.start(timeout)
        self.import_pools(pool_slots)
        from sqlalchemy import column, create_engine, select, table

        engine = create_engine(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        try:
            while True:
                with engine.connect() as db:
                    found = set(db.execute(select(column("dag_id")).select_from(table("serialized_dag"))).scalars())
                if set(dag_ids) <= found:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{sorted(set(dag_ids) - found)} not serialised within {timeout:g} s; "
                                       f"see {self.log_path}")
                time.sleep(1)
        finally:
            engine.dispose()

    def start(self, timeout: float = 180) -> None:
        """Start it and wait until the API answers."""
        self.process = subprocess.Popen(["airflow", "standalone"], env=self.env, cwd=ROOT, start_new_session=True,
                                        stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited {self.process.returncode}; see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/version", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            raise RuntimeError(f"airflow standalone did not answer within {timeout:g} s; see {self.log_path}")
        self.warm_execution_api(deadline)

    def warm_execution_api(self, deadline: float) -> None:
        """The execution API builds its versioned routes on its first request (seconds of CPU): make
        that request now, so the first tasks' calls do not wait behind it."""
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{self.url}/execution/health", timeout=max(5.0, deadline - time.monotonic()))

    def logins(self) -> dict[str, str]:
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(passwords.read_text()) if passwords.exists() else {}

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A call of Airflow's public REST API (``/api/v2/...``) as the generated admin, as the UI makes it."""
        def call(url: str, payload: dict[str, Any] | None, headers: dict[str, str], verb: str) -> Any:
            data = json.dumps(payload).encode() if payload is not None else None
            request = urllib.request.Request(url, data=data, method=verb,
                                             headers={"Content-Type": "application/json", **headers})
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")

        user, password = next(iter(self.logins().items()))
        token = call(f"{self.url}/auth/token", {"username": user, "password": password}, {}, "POST")
        return call(f"{self.url}{path}", body, {"Authorization": f"Bearer {token['access_token']}"}, method)

    def stop(self, grace: float = 30) -> None:
        """SIGINT to the group (standalone stops its components), escalating to SIGTERM after ``grace``
        seconds and SIGKILL after 20 more. Tests that are done with it pass a short ``grace``."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 20)):
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # components left behind by the parent
        stop_webdriver_server(self.home)  # the shared browser sessions' server, if its tasks started one


def stop_webdriver_server(home: Path) -> None:
    """Stop the WebDriver server the shared browser sessions of ``home`` started, if any (its browsers
    outlive the tasks by design, so whoever owns the Airflow home stops it)."""
    if (Path(home) / "webdriver" / "server.json").exists():
        from coupang_sales.portal.webdriver_server import LocalWebDriverServer

        LocalWebDriverServer(Path(home) / "webdriver").stop()


class RedirectedOutput(contextlib.AbstractContextManager):
    """Send everything written to stdout/stderr (Airflow's task logs) to the file ``log``.

    ``say(message)`` still reaches the real console, for progress lines.
    """

    def __init__(self, log):
        self.log = log
        self.console: int | None = None
        self.saved: tuple[int, int] | None = None

    def say(self, message: str) -> None:
        os.write(self.console if self.console is not None else 1, (message + "\n").encode())

    def __enter__(self) -> "RedirectedOutput":
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        self.console = self.saved[0]
        os.dup2(self.log.fileno(), 1)
        os.dup2(self.log.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])
        self.console = None


def postgres_metadata_url(dsn: str, dbname: str) -> str:
    """Create database ``dbname`` (if missing) on the server of ``dsn``; its SQLAlchemy URL for Airflow."""
    import psycopg
    from psycopg import sql

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host = info.get("host", "localhost")
    if host.startswith("/"):  # a Unix socket folder
        return f"postgresql+psycopg2://{user}{password}@/{dbname}?host={host}"
    return f"postgresql+psycopg2://{user}{password}@{host}:{info.get('port', 5432)}/{dbname}"


def connection_json(dsn: str) -> str:
    """An Airflow connection (JSON form) for a libpq DSN/URI, socket hosts included."""
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    conn = {"conn_type": "postgres", "host": info.get("host", "localhost"), "login": info.get("user"),
            "password": info.get("password"), "schema": info.get("dbname", "postgres")}
    if info.get("port"):
        conn["port"] = int(info["port"])
    return json.dumps({k: v for k, v in conn.items() if v not in (None, "")})


def conn_id_for(channel: str, account_id: str) -> str:
    return f"{channel}_{re.sub(r'[^a-z0-9]+', '_', account_id.lower())}"


PORTAL_OF = {"rocket": "supplier_hub", "jet": "wing"}


def register_scenario_accounts(conn, scenario: dict[str, Any], sandbox,
                               channels: tuple[str, ...] = ("rocket", "jet")) -> dict[str, str]:
    """Put the scenario's accounts in ``sales.accounts`` and return their Airflow connections as env vars.

    The credentials are the sandbox's fake ones, passed as ``AIRFLOW_CONN_*`` variables
    exactly as a deployment passes real ones. ``sandbox`` is the running ``SandboxServer``.
    """
    from coupang_sales.warehouse import upsert_account

    env: dict[str, str] = {}
    for key in channels:
        channel = CHANNEL_OF[key]
        portal_url = sandbox.portal_url(PORTAL_OF[key])
        for account in (scenario.get(key) or {}).get("accounts", []):
            conn_id = conn_id_for(channel, account["account_id"])
            upsert_account(conn, channel=channel, account_id=account["account_id"], conn_id=conn_id,
                           jet_version=account.get("version") if key == "jet" else None,
                           seller_name=account.get("vendor_name"))
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({
                "conn_type": "http", "host": portal_url, "login": account["username"],
                "password": account["password"]})
    return env


def logical_date_for(day: dt.date) -> dt.datetime:
    """The logical date of the scheduled run collecting up to ``day`` (06:00 Asia/Seoul that day)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(6), tzinfo=ZoneInfo("Asia/Seoul"))


def summary(conn, run_ids: list[str]) -> str:
    """A readable summary: each collection's outcome, then rows and won per channel, account and date."""
    lines = ["", "Collections (sales.collection_runs, last attempt per account and run):"]
    rows = conn.execute(
        """
        SELECT DISTINCT ON (run_id, channel, account_id)
               run_id, channel, account_id, window_start, window_end, status, coalesce(reason, ''),
               coalesce(rows_loaded::text, '-'), coalesce(message, '')
        FROM sales.collection_runs WHERE run_id = ANY(%s)
        ORDER BY run_id, channel, account_id, finished_at DESC, id DESC
        """,
        (run_ids,),
    ).fetchall()
    # 'written': the order lines the load wrote, those of the orders whose facts changed (0 when none did)
    lines.append(f"  {'window':<23} {'channel':<15} {'account':<12} {'status':<8} {'reason':<20} {'written':>7}  "
                 "action")
    for _, channel, account, start, end, status, reason, loaded, message in rows:
        action = message.split("Action: ", 1)[1] if "Action: " in message else ""
        lines.append(f"  {start}..{end} {channel:<15} {account:<12} {status:<8} {reason:<20} {loaded:>7}  "
                     f"{action[:90]}")
    lines += ["", "Sales (sales.order_lines_effective):",
              f"  {'channel':<15} {'account':<12} {'date':<10} {'lines':>5} {'payment won':>12} "
              f"{'coupons':>9} {'ship fee':>9} {'commission':>10} {'cancelled':>9}"]
    for channel, account, day, n, pay, coupon, fee, commission, cancelled in conn.execute(
        """
        SELECT channel, account_id, sales_date, count(*), sum(payment_amount), sum(coupon_discount),
               sum(seller_shipping_fee), coalesce(sum(effective_commission)::text, '-'),
               count(*) FILTER (WHERE is_cancelled)
        FROM sales.order_lines_effective GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """
    ).fetchall():
        lines.append(f"  {channel:<15} {account:<12} {day!s:<10} {n:>5} {pay:>12,} {coupon:>9,} {fee:>9,} "
                     f"{commission:>10} {cancelled:>9}")
    fees = conn.execute("SELECT channel, account_id, period_start || '..' || period_end, fee_type, amount "
                        "FROM sales.account_fees ORDER BY 1, 2, 3, 4").fetchall()
    if fees:
        lines += ["", "Account-level fees per settlement period (sales.account_fees):"]
        lines += [f"  {c:<15} {a:<12} {p:<22} {t:<12} {amount:>9,}" for c, a, p, t, amount in fees]
    return "\n".join(lines)


def free_port() -> int:
    """A TCP port free on loopback now (bound to port 0, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=ROOT, start_new_session=True,
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen | None, grace: float = 20) -> None:
    """SIGTERM to the process group, then SIGKILL: the process and every child it started."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


class RedisServer:
    """Debian's ``redis-server`` on a free loopback port, its files in ``folder``, nothing persisted.

    The Celery broker of ``CeleryAirflow``; never the machine's system service.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "RedisServer":
        import shutil

        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed: run `make setup` (Debian package redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = _start([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                               "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
                              dict(os.environ), self.folder / "redis.log")
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.process.returncode}; see {self.folder / 'redis.log'}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"redis-server did not answer within {timeout:g} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        _stop(process)


class CeleryAirflow(StandaloneAirflow):
    """Airflow as deployed with the CeleryExecutor, on this machine: the API server (which serves the
    execution API the Celery workers run tasks through), the scheduler, the DAG processor and one
    ``airflow celery worker`` per entry of ``workers`` (its queues), Redis as the broker.

    ``env`` as for ``StandaloneAirflow`` (metadata in PostgreSQL: Celery refuses SQLite). Every
    process shares one JWT secret, so the tokens the scheduler signs are accepted by the API server.
    """

    def __init__(self, env: dict[str, str], redis: RedisServer, *, workers: tuple[str, ...] = ("default", "browser"),
                 concurrency: int = 2, port: int | None = None):
        import secrets

        super().__init__({**env,
                          "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                          "AIRFLOW__CELERY__BROKER_URL": f"{redis.url}/0",
                          "AIRFLOW__CELERY__RESULT_BACKEND": f"{redis.url}/1",
                          "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
                          "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                          "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                          "AIRFLOW__API__WORKERS": "1"},
                         port=port or free_port())
        self.workers = workers
        self.processes: dict[str, subprocess.Popen] = {}

    def log_of(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, timeout: float = 300) -> None:
        """Start every component; return once the API answers and each worker says it is ready."""
        self.home.mkdir(parents=True, exist_ok=True)
        components = {"api-server": ["airflow", "api-server", "--port", self.env["AIRFLOW__API__PORT"]],
                      "scheduler": ["airflow", "scheduler"], "dag-processor": ["airflow", "dag-processor"]}
        for number, queues in enumerate(self.workers, 1):
            components[f"worker-{number}"] = ["airflow", "celery", "worker", "--queues", queues,
                                              "--celery-hostname", f"worker{number}-{queues}@%h"]
        for name, args in components.items():
            env = {**self.env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            self.processes[name] = _start(args, env, self.log_of(name))
        deadline = time.monotonic() + timeout
        waiting = {"api-server", *(name for name in components if name.startswith("worker"))}
        while waiting and time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited {process.returncode}; see {self.log_of(name)}")
            if "api-server" in waiting:
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"{self.url}/api/v2/version", timeout=2)
                    waiting.discard("api-server")
            for name in [n for n in waiting if n.startswith("worker")]:
                if " ready." in self.log_of(name).read_text(errors="replace"):
                    waiting.discard(name)
            time.sleep(1)
        if waiting:
            raise RuntimeError(f"{sorted(waiting)} not up within {timeout:g} s; logs in {self.home}")
        self.warm_execution_api(deadline)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            _stop(self.processes.pop(name))
