"""Test harness: import paths, an isolated Airflow home, and an embedded PostgreSQL warehouse."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]

# Airflow reads its configuration when first imported: set it before any test imports it.
_HOME = Path(tempfile.mkdtemp(prefix="coupang-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    "COUPANG_STAGING_DIR": str(_HOME / "staging"),
    "SE_OFFLINE": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "COUPANG_RETRY_DELAY_SECONDS": "1",  # dag.test() waits out retry delays
    # The sandbox's sign-on challenge (the record's ~16 s) and a person's typing pace (~110 ms a key),
    # scaled down: the tests would otherwise spend minutes waiting on them.
    "SANDBOX_CHALLENGE_SECONDS": "0.2",
    # A browser task that finds its portal's routes taken (one route, "direct", unless a test names more:
    # one seller at a time per address) asks again after 1 s, not the 30 s a deployment waits.
    "COUPANG_ROUTE_WAIT_SECONDS": "1",
    # The pacing between requests (the record: 0.2-0.7 s; on Wing 0.7 s between 판매분석 pages, 1.2 s
    # between days) and the backoff of Wing's retries, scaled down the same way, through the settings a
    # deployment would use.
    "COUPANG_PORTAL_SETTINGS": json.dumps({"waits": {"keystroke": 0.002}, "pacing_seconds": 0.02, "wing": {
        "waits": {"v1_page": 0.01, "v1_day": 0.01, "retry_backoff": 0.05, "retry_backoff_max": 0.4,
                  "duplicate_backoff": 0.2}}}),
})


# `make test` hands whole files to pytest-xdist processes in collection order
# (--dist loadfile --no-loadscope-reorder): the longest files start first, so none of them is
# left to run alone at the end. Ordered by their measured wall time, longest first.
LONGEST_FIRST = (
    "test_backfill_scheduler.py", "test_scheduler_faults.py", "test_shared_sessions_scheduler.py",
    "test_sign_in_dag.py", "test_faults.py",
    "test_rocket_dag.py", "test_sign_ons.py", "test_secrets.py", "test_late_return_dag.py",
    "test_restatement_properties.py", "test_jet_dag.py", "test_block_gap_dag.py", "test_rocket_portal_fidelity.py",
    "test_schema_migrations.py", "test_sandbox_supplier_hub.py", "test_versions_and_cursors.py",
    "test_many_accounts.py", "test_status_page_browser.py",
)


def pytest_sessionfinish(session, exitstatus):
    """The shared browser sessions' WebDriver server (started by the first browser task of this Airflow
    home, outliving the tasks by design) stops with the tests."""
    from local_stack import stop_webdriver_server

    stop_webdriver_server(_HOME)


def pytest_collection_modifyitems(config, items):
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-file order is kept


@pytest.fixture(autouse=True)
def browser_profiles(tmp_path_factory, monkeypatch):
    """Each test's own root of persistent browser profiles (COUPANG_PROFILE_DIR): a profile signed on
    in one test never carries its cookies into another."""
    root = tmp_path_factory.mktemp("profiles")
    monkeypatch.setenv("COUPANG_PROFILE_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def pg_server():
    """An embedded PostgreSQL 16 (pgserver) for the whole session, on a Unix socket.

    Its folder is not under pytest's basetemp: a second pytest session on the machine
    prunes old basetemps and would delete a live data directory.
    """
    import fcntl
    import shutil

    import pgserver
    import psycopg

    data_dir = Path(tempfile.mkdtemp(prefix="coupang-pg-"))
    # One worker at a time: run as root, pgserver creates its system user with useradd on first use, and
    # two workers doing so at once on a fresh machine left one initdb with a uid that did not exist yet.
    with open(Path(tempfile.gettempdir()) / "coupang-pg-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
    # A throw-away server: durability across a crash of the machine is not under test, and without
    # fsync each test's DROP DATABASE (a checkpoint) takes milliseconds instead of about 2 s. The test
    # that stops PostgreSQL mid-load has a server of its own (test_faults.py, own_postgres).
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            admin.execute(f"ALTER SYSTEM SET {setting} = off")
        admin.execute("SELECT pg_reload_conf()")
    yield server
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def scratch_database(pg_server):
    """``scratch_database(name)``: a context manager giving the URI of a new, empty database
    ``name`` on the session's server, dropped on exit (open connections included)."""
    import contextlib

    import psycopg
    from psycopg import sql

    @contextlib.contextmanager
    def database(name: str):
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
            admin.execute(drop)
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                yield pg_server.get_uri(name)
            finally:
                admin.execute(drop)

    return database


@pytest.fixture
def warehouse(pg_server, scratch_database, request):
    """A fresh database per test, migrated to the newest schema version, and the Airflow connection pointing at it."""
    import psycopg

    from coupang_sales.warehouse.schema_versions import migrate

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    socket_dir = pg_server.get_uri().split("host=")[1]
    with scratch_database(name):
        conn = psycopg.connect(host=socket_dir, dbname=name, user="postgres", autocommit=True)
        migrate(conn)
        previous = os.environ.get("AIRFLOW_CONN_COUPANG_WAREHOUSE")
        os.environ["AIRFLOW_CONN_COUPANG_WAREHOUSE"] = json.dumps(
            {"conn_type": "postgres", "host": socket_dir, "login": "postgres", "schema": name})
        yield conn
        conn.close()
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_COUPANG_WAREHOUSE", None)
        else:
            os.environ["AIRFLOW_CONN_COUPANG_WAREHOUSE"] = previous


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite), created once per session."""
    from airflow.utils import db

    db.resetdb()
    yield


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        import email.policy

        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content,
                                                                          policy=email.policy.default)))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for _, message in self.messages]

    def bodies(self) -> list[str]:
        """The text of each message (the HTML part, tags and entities undone)."""
        import html
        import re

        def text(message) -> str:
            part = next(p for p in message.walk() if p.get_content_type() in ("text/html", "text/plain"))
            return html.unescape(re.sub(r"<[^>]+>", "", part.get_content()))

        return [text(message) for _, message in self.messages]


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server on loopback, wired as the alerts connection ``coupang_alerts_smtp``
    (plain SMTP: the SMTP provider's ``disable_ssl`` and ``disable_tls``)."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_COUPANG_ALERTS_SMTP", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
         "extra": {"to": "data-eng@example.com", "from_email": "airflow@example.com",
                   "disable_ssl": True, "disable_tls": True}}))
    yield inbox
    controller.stop()


class _SlackInbox:
    """Messages posted to a local HTTP server standing in for a Slack incoming webhook."""

    def __init__(self):
        self.posts: list[dict] = []

    def subjects(self) -> list[str]:
        return [post["text"].split("\n", 1)[0].strip("*") for post in self.posts]


@pytest.fixture
def slack(monkeypatch):
    """A real HTTP server on loopback, wired as the Slack webhook connection ``coupang_alerts_slack``: a
    ``slackwebhook`` connection, as the Slack provider reads it (endpoint as host, token as password)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    inbox = _SlackInbox()

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/services/T000/B000/XXXX":
                inbox.posts.append(json.loads(body))
                self.send_response(200)
            else:
                self.send_response(404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AIRFLOW_CONN_COUPANG_ALERTS_SLACK", json.dumps(
        {"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{server.server_port}/services",
         "password": "T000/B000/XXXX"}))
    yield inbox
    server.shutdown()
    server.server_close()


@pytest.fixture
def collection_dag(warehouse, airflow_db, monkeypatch):
    """``make(sandbox, scenario, dag_id)``: the DAG with the scenario's accounts registered in the warehouse,
    their connections in the environment and the sandbox's clock as today."""
    from airflow.dag_processing.dagbag import DagBag

    import local_stack

    def make(sandbox, scenario: dict, dag_id: str):
        monkeypatch.setenv("COUPANG_TODAY", scenario["today"])
        for key, value in local_stack.register_scenario_accounts(warehouse, scenario, sandbox).items():
            monkeypatch.setenv(key, value)
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert not bag.import_errors
        return bag.dags[dag_id]

    return make
