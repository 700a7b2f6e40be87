"""``python -m coupang_sales.cursors``: show or set each account's collection cursor.

The cursor (``sales.collection_cursors``) is the last date an account was collected without a gap;
a daily run's window starts at the earlier of its look-back and the cursor, and freshness counts from
it. A successful collection moves it by itself. Set it by hand only to say a gap holds nothing
(``set``), or to make the next daily run collect again from an earlier date (``set`` to that date, up
to ``COUPANG_MAX_CATCH_UP_DAYS`` back); ``reset`` forgets it (the next success starts it again).

    python -m coupang_sales.cursors show [--channel coupang_rocket] [--account V00012345]
    python -m coupang_sales.cursors set coupang_rocket V00012345 2026-01-02
    python -m coupang_sales.cursors reset coupang_rocket V00012345

The warehouse is the Airflow connection ``coupang_warehouse`` (``--conn-id``), or ``--dsn``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys

from coupang_sales.model import JET, ROCKET


def _connect(args: argparse.Namespace):
    if args.dsn:
        import psycopg

        return psycopg.connect(args.dsn, autocommit=True)
    from coupang_sales.airflow_glue.warehouse_hook import warehouse_connection

    return warehouse_connection(args.conn_id)


def main(argv: list[str] | None = None) -> int:
    from coupang_sales.warehouse import CURSOR_STREAM, set_collection_cursor
    from coupang_sales.warehouse.runs import account_conn_id, collection_cursors

    parser = argparse.ArgumentParser(prog="python -m coupang_sales.cursors", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dsn", help="PostgreSQL connection string or URI of the warehouse (instead of Airflow's)")
    where.add_argument("--conn-id", default="coupang_warehouse", help="Airflow connection id (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="list the cursors")
    show.add_argument("--channel", choices=(ROCKET, JET))
    show.add_argument("--account")
    for name, text in (("set", "set an account's cursor to a date"), ("reset", "forget an account's cursor")):
        command = commands.add_parser(name, help=text)
        command.add_argument("channel", choices=(ROCKET, JET))
        command.add_argument("account")
        if name == "set":
            command.add_argument("date", type=dt.date.fromisoformat, help="YYYY-MM-DD: collected through this date")
        command.add_argument("--stream", default=CURSOR_STREAM)
    args = parser.parse_args(argv)
    conn = _connect(args)
    try:
        if args.command == "show":
            cursors = collection_cursors(conn, channel=args.channel, account_id=args.account)
            for c in cursors:
                print(f"{c.channel}\t{c.account_id}\t{c.stream}\tcollected through {c.collected_through}\t"
                      f"(set {c.updated_at:%Y-%m-%d %H:%M} by {c.updated_by})")
            if not cursors:
                print("no cursor", file=sys.stderr)
            return 0
        if account_conn_id(conn, channel=args.channel, account_id=args.account) is None:
            print(f"no account {args.channel} {args.account} in sales.accounts", file=sys.stderr)
            return 1
        through = args.date if args.command == "set" else None
        before = set_collection_cursor(conn, channel=args.channel, account_id=args.account, through=through,
                                       stream=args.stream, by=f"coupang_sales.cursors ({getpass.getuser()})")
        print(f"{args.channel} {args.account} {args.stream}: collected through {before or 'never'} -> "
              f"{through or 'never (reset)'}")
        return 0
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
