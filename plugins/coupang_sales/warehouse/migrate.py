"""``python -m coupang_sales.warehouse.migrate``: bring the warehouse to the newest schema version.

Run once per deploy (the compose init service and ``make demo`` do), never by a DAG run.
The warehouse is the Airflow connection ``coupang_warehouse`` (``--conn-id`` to name
another), or ``--dsn`` (a libpq connection string or URI) without Airflow. ``--check``
only reports the version and exits 1 when the warehouse is not current.

From Python: ``coupang_sales.warehouse.schema_versions.migrate(conn)``.
"""

from __future__ import annotations

import argparse
import sys

from coupang_sales.warehouse.schema_versions import SchemaVersionError, current_version, migrate, require_current


def _connect(args: argparse.Namespace):
    if args.dsn:
        import psycopg

        return psycopg.connect(args.dsn, autocommit=True)
    from coupang_sales.airflow_glue.warehouse_hook import warehouse_connection  # a command: it may use the hook

    return warehouse_connection(args.conn_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coupang_sales.warehouse.migrate",
                                     description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dsn", help="PostgreSQL connection string or URI of the warehouse (instead of Airflow's)")
    where.add_argument("--conn-id", default="coupang_warehouse", help="Airflow connection id (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="only check the version; exit 1 if not current")
    args = parser.parse_args(argv)
    conn = _connect(args)
    try:
        if args.check:
            try:
                version = require_current(conn)
            except SchemaVersionError as exc:
                print(f"warehouse schema: {exc}", file=sys.stderr)
                return 1
            print(f"warehouse schema: at version {version:04d}, current")
            return 0
        try:
            applied = migrate(conn)
        except SchemaVersionError as exc:
            print(f"warehouse schema: {exc}", file=sys.stderr)
            return 1
        version = current_version(conn)
        print(f"warehouse schema: at version {version:04d}"
              + (f" (applied now: {', '.join(f'{v:04d}' for v in applied)})" if applied else ", nothing to apply"))
        return 0
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
