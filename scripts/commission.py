"""Sets or removes a user-entered commission rate, which takes precedence over the collected one.

    python scripts/commission.py --dsn DSN set   --channel coupang_jet --account A00098765 --rate 10.8 [--option 87001]
    python scripts/commission.py --dsn DSN unset --channel coupang_jet --account A00098765 [--option 87001]

Without --option the rate applies to all the account's options; a per-option rate wins over it.
The view sales.order_lines_effective applies the change to every past row at once.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal


def set_rate(conn, *, channel: str, account_id: str, rate_percent: Decimal, option_id: str | None = None) -> None:
    if not Decimal(0) <= rate_percent <= Decimal(100):
        raise ValueError(f"rate {rate_percent} is not a percentage between 0 and 100")
    with conn.transaction():
        conn.execute("DELETE FROM sales.commission_settings WHERE channel = %s AND account_id = %s "
                     "AND option_id IS NOT DISTINCT FROM %s", (channel, account_id, option_id))
        conn.execute("INSERT INTO sales.commission_settings (channel, account_id, option_id, rate_percent) "
                     "VALUES (%s, %s, %s, %s)", (channel, account_id, option_id, rate_percent))


def unset_rate(conn, *, channel: str, account_id: str, option_id: str | None = None) -> int:
    with conn.transaction():
        return conn.execute("DELETE FROM sales.commission_settings WHERE channel = %s AND account_id = %s "
                            "AND option_id IS NOT DISTINCT FROM %s", (channel, account_id, option_id)).rowcount


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True, help="the warehouse, e.g. postgresql://user@host/sales")
    parser.add_argument("action", choices=["set", "unset"])
    parser.add_argument("--channel", required=True, choices=["coupang_rocket", "coupang_jet"])
    parser.add_argument("--account", required=True)
    parser.add_argument("--option", help="an option ID; omit for all options")
    parser.add_argument("--rate", type=Decimal, help="percent, e.g. 10.8 (set only)")
    args = parser.parse_args(argv)
    if args.action == "set" and args.rate is None:
        parser.error("set needs --rate")

    import psycopg

    with psycopg.connect(args.dsn, autocommit=True) as conn:
        if args.action == "set":
            set_rate(conn, channel=args.channel, account_id=args.account, rate_percent=args.rate,
                     option_id=args.option)
            print(f"{args.channel}/{args.account}/{args.option or 'all options'}: {args.rate}%")
        else:
            removed = unset_rate(conn, channel=args.channel, account_id=args.account, option_id=args.option)
            print(f"{args.channel}/{args.account}/{args.option or 'all options'}: {removed} rate(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
