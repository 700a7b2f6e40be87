"""Versioned warehouse migrations against a real PostgreSQL: in order, once, each in a transaction,
safe with two migrators at once, refusing a newer warehouse, adopting a warehouse of the old per-run
schema without DDL; and a DAG run after a migration added a column to sales.order_lines."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from one_invoice import SCENARIO

import local_stack
from coupang_sales.warehouse import schema_versions
from coupang_sales.warehouse.schema_versions import (
    BASELINE_INDEXES,
    BASELINE_OBJECTS,
    SchemaVersionError,
    current_version,
    migrate,
    require_current,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
D = dt.date.fromisoformat


def initial_sql() -> str:
    return (schema_versions.MIGRATIONS_DIR / "0001_initial_schema.sql").read_text(encoding="utf-8")


def per_run_schema_sql() -> str:
    """The schema every run applied before versioning: 0001 with the view's former ``ol.*``."""
    sql, count = re.subn(r"SELECT ol\.channel,.*?ol\.run_id,\n", "SELECT ol.*,\n", initial_sql(), flags=re.S)
    assert count == 1
    return sql


def migrations_with(tmp_path: Path, **extra: str) -> Path:
    """The shipped migrations plus ``extra`` (file name -> SQL) in a folder of the test's own."""
    folder = tmp_path / "migrations"
    shutil.copytree(schema_versions.MIGRATIONS_DIR, folder)
    for name, sql in extra.items():
        (folder / name).write_text(sql, encoding="utf-8")
    return folder


SHIPPED = [m.version for m in schema_versions.migrations()]  # 0001 and every later shipped migration
SHIPPED_ROWS = [(m.version, m.name) for m in schema_versions.migrations()]
LATEST = SHIPPED[-1]
NEXT = LATEST + 1  # the number a test's own migration takes


def only_0001(tmp_path: Path) -> Path:
    folder = tmp_path / "only_0001"
    folder.mkdir()
    shutil.copy(schema_versions.MIGRATIONS_DIR / "0001_initial_schema.sql", folder)
    return folder


def versions(conn) -> list[tuple[int, str]]:
    return conn.execute("SELECT version, name FROM sales.schema_migrations ORDER BY version").fetchall()


@pytest.fixture
def empty(scratch_database, request):
    name = "m_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    with scratch_database(name) as uri:
        with psycopg.connect(uri, autocommit=True) as conn:
            yield uri, conn


def test_an_empty_warehouse_gets_every_migration_once(empty):
    _, conn = empty
    assert current_version(conn) is None
    assert migrate(conn) == SHIPPED
    assert versions(conn) == SHIPPED_ROWS
    assert migrate(conn) == [], "a second deploy applies nothing"
    assert require_current(conn) == LATEST


def test_0001_makes_exactly_the_objects_a_per_run_schema_is_recognised_by(empty, tmp_path):
    _, conn = empty
    assert migrate(conn, directory=only_0001(tmp_path)) == [1]
    catalog = dict(conn.execute(
        "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'sales' "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.relkind IN ('r', 'v') AND c.relname <> 'schema_migrations' GROUP BY c.relname").fetchall())
    assert catalog == {name: list(columns) for name, columns in BASELINE_OBJECTS.items()}
    indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'sales' "
                                          "AND tablename <> 'schema_migrations'")}
    assert indexes == BASELINE_INDEXES


def test_the_view_names_its_columns_so_adding_a_column_keeps_it(empty):
    _, conn = empty
    migrate(conn)
    conn.execute("ALTER TABLE sales.order_lines ADD COLUMN note text")
    view_columns = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'sales' "
        "AND table_name = 'order_lines_effective' ORDER BY ordinal_position")]
    assert "note" not in view_columns and view_columns[-2:] == ["effective_commission", "commission_source"]
    assert "ol.*" not in initial_sql()


def test_a_warehouse_of_the_per_run_schema_is_recorded_at_0001_without_ddl(empty):
    uri, conn = empty
    conn.execute(per_run_schema_sql())  # what every run of the previous release did
    conn.execute("INSERT INTO sales.accounts (channel, account_id, conn_id) VALUES ('coupang_rocket', 'V1', 'c')")
    # A reader holding the view open: CREATE OR REPLACE VIEW (or any DDL on it) would wait behind it.
    with psycopg.connect(uri) as reader:
        reader.execute("SELECT count(*) FROM sales.order_lines_effective").fetchone()
        conn.execute("SET lock_timeout = '2s'")
        assert migrate(conn) == SHIPPED  # 0001 recorded without DDL, later ones applied
        reader.rollback()
    assert versions(conn) == SHIPPED_ROWS
    assert conn.execute("SELECT account_id FROM sales.accounts").fetchall() == [("V1",)]
    assert require_current(conn) == LATEST


def test_a_per_run_schema_of_an_older_release_is_completed_by_0001(empty):
    _, conn = empty
    conn.execute(per_run_schema_sql())
    conn.execute("DROP TABLE sales.restatement_adjustments")
    conn.execute("ALTER TABLE sales.order_line_changes DROP COLUMN cause, DROP COLUMN cause_facts")
    assert migrate(conn) == SHIPPED
    assert conn.execute("SELECT to_regclass('sales.restatement_adjustments') IS NOT NULL").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'sales' "
                        "AND table_name = 'order_line_changes' AND column_name LIKE 'cause%'").fetchone()[0] == 2


def test_a_warehouse_newer_than_the_code_is_refused(empty):
    _, conn = empty
    migrate(conn)
    conn.execute("INSERT INTO sales.schema_migrations (version, name) VALUES (%s, 'from_a_later_release')",
                 (NEXT + 5,))
    with pytest.raises(SchemaVersionError,
                       match=rf"version {NEXT + 5:04d} \(from_a_later_release\), newer than this code"):
        migrate(conn)
    with pytest.raises(SchemaVersionError, match="newer than this code knows"):
        require_current(conn)


def test_migrations_apply_in_order_and_a_failing_one_changes_nothing(empty, tmp_path):
    _, conn = empty
    folder = migrations_with(tmp_path, **{
        f"{NEXT:04d}_add_note.sql": "ALTER TABLE sales.order_lines ADD COLUMN note text;",
        f"{NEXT + 1:04d}_broken.sql": "CREATE TABLE sales.half_done (id int);\nSELECT no_such_function();",
    })
    with pytest.raises(psycopg.errors.UndefinedFunction):
        migrate(conn, directory=folder)
    assert versions(conn) == [*SHIPPED_ROWS, (NEXT, "add_note")]
    assert conn.execute("SELECT to_regclass('sales.half_done')").fetchone()[0] is None, "rolled back whole"
    refusal = (rf"at schema version {NEXT:04d}, this code needs {NEXT + 1:04d} "
               rf".*{NEXT + 1:04d}_broken.*python -m coupang_sales.warehouse.migrate")
    with pytest.raises(SchemaVersionError, match=refusal):
        require_current(conn, directory=folder)


def test_two_migrators_at_once_apply_each_migration_once(empty, tmp_path):
    uri, _ = empty
    # not idempotent on purpose: run twice, the CREATE TABLE fails
    slow = "SELECT pg_sleep(1); CREATE TABLE sales.once (id int);"
    folder = migrations_with(tmp_path, **{f"{NEXT:04d}_slow.sql": slow})
    results, errors = [], []

    def deploy():
        try:
            with psycopg.connect(uri, autocommit=True) as conn:
                results.append(migrate(conn, directory=folder))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(v for applied in results for v in applied) == [*SHIPPED, NEXT], "each migration applied once"


def test_gaps_and_bad_names_in_the_migrations_folder_are_refused(tmp_path):
    gap = migrations_with(tmp_path, **{f"{NEXT + 1:04d}_skipped_one.sql": "SELECT 1;"})
    with pytest.raises(ValueError, match=f"{NEXT:04d} is missing"):
        schema_versions.migrations(gap)
    (gap / f"{NEXT + 1:04d}_skipped_one.sql").rename(gap / "2_bad.sql")
    with pytest.raises(ValueError, match="NNNN_slug.sql"):
        schema_versions.migrations(gap)


def test_the_command_migrates_and_checks(empty):
    uri, conn = empty
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")])}
    command = [sys.executable, "-m", "coupang_sales.warehouse.migrate", "--dsn", uri]
    check = subprocess.run([*command, "--check"], env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "python -m coupang_sales.warehouse.migrate" in check.stderr
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"at version {LATEST:04d} (applied now: {', '.join(f'{v:04d}' for v in SHIPPED)})" in done.stdout
    again = subprocess.run([*command, "--check"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "current" in again.stdout
    assert versions(conn) == SHIPPED_ROWS


def test_python_callers_migrate_through_schema_versions_whatever_else_is_imported(empty):
    """``python -m coupang_sales.warehouse.migrate`` is the command; from Python the migrations are
    ``schema_versions.migrate``, which importing the command module does not hide (the package itself
    has no ``migrate`` function for the command module's name to shadow)."""
    import coupang_sales.warehouse.migrate as command
    from coupang_sales.warehouse.schema_versions import migrate

    assert callable(command.main)
    _, conn = empty
    assert migrate(conn) == SHIPPED


# --- a DAG run against the migrated warehouse (one_invoice.SCENARIO) -----------------------------

ADD_COLUMN = """
ALTER TABLE sales.order_lines ADD COLUMN warehouse_note text NOT NULL DEFAULT '';
"""


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


def test_a_dag_runs_after_a_migration_added_a_column_to_order_lines(collection_dag, portal, warehouse, tmp_path,
                                                                    monkeypatch):
    folder = migrations_with(tmp_path, **{f"{NEXT:04d}_order_line_note.sql": ADD_COLUMN})
    monkeypatch.setattr(schema_versions, "MIGRATIONS_DIR", folder)  # the code of the release that ships it
    assert migrate(warehouse) == [NEXT]
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    for day in ("2026-01-05", "2026-01-06"):  # the second run is where a per-run CREATE OR REPLACE VIEW broke
        run = dag.test(logical_date=local_stack.logical_date_for(D(day)))
        assert run.state == "success"
    rows = warehouse.execute("SELECT order_id, payment_amount, warehouse_note FROM sales.order_lines").fetchall()
    assert rows == [("100000001", 19_800, "")]
    assert warehouse.execute("SELECT payment_amount FROM sales.order_lines_effective").fetchall() == [(19_800,)]


def test_a_run_against_a_warehouse_behind_the_code_fails_naming_the_command(collection_dag, portal, warehouse,
                                                                            tmp_path, monkeypatch, smtp):
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    folder = migrations_with(tmp_path, **{f"{NEXT:04d}_order_line_note.sql": ADD_COLUMN})
    monkeypatch.setattr(schema_versions, "MIGRATIONS_DIR", folder)  # new code, warehouse not migrated yet
    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))
    assert run.state == "failed"
    assert warehouse.execute("SELECT count(*) FROM sales.order_lines").fetchone()[0] == 0
    assert warehouse.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'sales' "
                             "AND column_name = 'warehouse_note'").fetchone()[0] == 0, "a run does no DDL"
    bodies = "\n".join(smtp.bodies())
    assert "python -m coupang_sales.warehouse.migrate" in bodies and f"{NEXT:04d}_order_line_note" in bodies
