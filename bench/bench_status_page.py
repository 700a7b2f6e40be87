"""The collection status page's query at 10,000 accounts: pages, filters, sorts and search, in milliseconds.

    .venv/bin/python bench/bench_status_page.py [--accounts 10000] [--days 30] [--lines 4] [--repeat 15]

Generates the accounts (half Rocket, half Jet) in an embedded PostgreSQL with the shipped schema,
``--days`` daily runs each in ``sales.collection_runs`` (inserted day by day through the trigger
that keeps ``sales.account_status``, as the tasks insert them, with a VACUUM of it between days as
autovacuum would; some accounts blocked, failing with three
tries, stale or paused) and ``--lines`` order lines per account and day, then times the page
query as the page sends it (``account_statuses``: one page of 50 with the count per state) and
the report task's freshness check. Median and slowest of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from common import Report

TODAY = dt.date(2026, 1, 31)

_ACCOUNTS = """
INSERT INTO sales.accounts (channel, account_id, conn_id, jet_version, active, seller_name)
SELECT CASE WHEN i %% 2 = 0 THEN 'coupang_rocket' ELSE 'coupang_jet' END,
       CASE WHEN i %% 2 = 0 THEN 'V' ELSE 'A' END || lpad(i::text, 8, '0'),
       'conn_' || i,
       CASE WHEN i %% 2 = 0 THEN NULL ELSE (1 + i %% 4 / 3)::smallint END,
       i %% 100 <> 4,
       '(주)판매자' || i
FROM generate_series(1, %(accounts)s) i
"""
# 1 in 50 Rocket accounts: the newest run's sub-account check warned (expiring in 5 days)
_EXPIRY = """
INSERT INTO sales.sub_account_expiry (channel, account_id, expires, warn_days, run_id)
SELECT channel, account_id, %(today)s::date + 5, 7, 'scheduled__' || %(last)s::date FROM sales.accounts
WHERE channel = 'coupang_rocket' AND substr(account_id, 2)::int %% 50 = 20
"""
# One run a day per account; the account's kind decides its last days: n % 50 = 0 blocked by a tax
# invoice for 3 days, = 10 an expired sub-account for 4 days, = 1 an SMS sign-on (auth_challenge)
# today, n % 25 = 2 failing (3 tries) today, n % 50 = 3 no run for 5 days (stale).
_RUNS = """
INSERT INTO sales.collection_runs (channel, account_id, window_start, window_end, status, reason, message,
                                   rows_extracted, rows_loaded, started_at, finished_at, run_id, task_id,
                                   try_number, dag_id, map_index)
SELECT a.channel, a.account_id, dd.d - 14, dd.d,
       s.status, s.reason, CASE WHEN s.reason IS NOT NULL THEN '[' || s.reason || '] generated' END,
       40, 40, r.at - interval '2 minutes', r.at, 'scheduled__' || dd.d, s.task, t.try, a.channel || '_sales',
       a.n %% 1000
FROM (SELECT channel, account_id, substr(account_id, 2)::int AS n FROM sales.accounts) a
CROSS JOIN generate_series(%(day)s::date, %(day)s::date, interval '1 day') g(day)
CROSS JOIN LATERAL (SELECT g.day::date AS d) dd
CROSS JOIN LATERAL (SELECT (dd.d + 1 + time '06:10')::timestamp AT TIME ZONE 'Asia/Seoul' AS at) r
CROSS JOIN LATERAL (SELECT CASE
        WHEN a.n %% 50 = 0 AND dd.d > %(last)s::date - 3 THEN 'tax_invoice_pending'
        WHEN a.n %% 50 = 10 AND dd.d > %(last)s::date - 4 THEN 'sub_account_expired'
        WHEN a.n %% 50 = 1 AND dd.d = %(last)s::date THEN 'auth_challenge'
        WHEN a.n %% 25 = 2 AND dd.d = %(last)s::date THEN 'portal_unavailable' END AS reason) k
CROSS JOIN LATERAL (
    SELECT CASE WHEN k.reason IN ('tax_invoice_pending', 'sub_account_expired') THEN 'blocked'
                WHEN k.reason IS NOT NULL THEN 'failed' ELSE 'success' END AS status,
           k.reason,
           CASE k.reason WHEN 'tax_invoice_pending' THEN 'collect.check_tax_invoice_block'
                         WHEN 'sub_account_expired' THEN 'collect.check_sub_account_expiry'
                         WHEN 'auth_challenge' THEN 'collect.extract'
                         WHEN 'portal_unavailable' THEN 'collect.extract'
                         ELSE 'collect.load' END AS task
) s
CROSS JOIN LATERAL generate_series(1, CASE WHEN s.reason = 'portal_unavailable' THEN 3 ELSE 1 END) t(try)
WHERE NOT (a.n %% 50 = 3 AND dd.d > %(last)s::date - 5)
ORDER BY r.at, a.account_id, t.try
"""
_LINES = """
INSERT INTO sales.order_lines (channel, account_id, order_id, line_key, option_id, sales_date, quantity,
                               gross_amount, payment_amount, source)
SELECT a.channel, a.account_id, 'O' || g.day::date || '-' || k, k::text, k::text, g.day::date, 1, 10000, 10000,
       CASE WHEN a.channel = 'coupang_rocket' THEN 'rocket' ELSE 'jet_v2' END
FROM sales.accounts a
CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 day') g(day)
CROSS JOIN generate_series(1, %(lines)s) k
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--lines", type=int, default=4, help="order lines per account and day")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)

    import pgserver
    import psycopg

    from coupang_sales.warehouse.schema_versions import migrate as apply_schema
    from coupang_sales.warehouse.status import StatusQuery, account_statuses, freshness_changes

    report = Report("status_page", settings={"accounts": args.accounts, "days": args.days, "lines": args.lines,
                                             "repeat": args.repeat})
    data = Path(tempfile.mkdtemp(prefix="bench-status-"))
    server = pgserver.get_server(data, cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            apply_schema(conn)
            last = TODAY - dt.timedelta(days=1)
            bounds = {"first": last - dt.timedelta(days=args.days - 1), "last": last,
                      "accounts": args.accounts, "lines": args.lines}
            start = time.perf_counter()
            conn.execute(_ACCOUNTS, bounds)
            conn.execute(_LINES, bounds)
            lines_s = time.perf_counter() - start
            runs, runs_s = 0, 0.0
            for day in range(args.days):  # a day's runs, then what autovacuum does between days
                start = time.perf_counter()
                runs += conn.execute(_RUNS, {**bounds, "day": bounds["first"] + dt.timedelta(days=day)}).rowcount
                runs_s += time.perf_counter() - start
                conn.execute("VACUUM sales.account_status")
            conn.execute(_EXPIRY, {**bounds, "today": TODAY})
            conn.execute("VACUUM ANALYZE")
            counts = dict(conn.execute("SELECT state, count(*) FROM sales.collection_status(%s) GROUP BY 1",
                                       (TODAY,)).fetchall())
            print(f"generated {args.accounts:,} accounts, {runs:,} attempts, "
                  f"{args.accounts * args.days * args.lines:,} order lines; states {counts}", flush=True)
            report.add("attempts inserted through the status trigger, per attempt", runs_s / runs * 1000, "ms",
                       note=f"{runs:,} attempts in {runs_s:.1f} s")
            report.settings["setup_lines_s"] = round(lines_s, 1)

            def timed(name: str, query: StatusQuery, target: str = "<= 100") -> None:
                times, result = [], None
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    result = account_statuses(conn, query, today=TODAY)
                    times.append((time.perf_counter() - start) * 1000)
                report.add(f"{name}: median", statistics.median(times), "ms", target,
                           note=f"slowest {max(times):.1f} ms; {result['total']:,} matching, "
                                f"{len(result['rows'])} shown")

            timed("first page (state, then account)", StatusQuery())
            timed("page 100 by account", StatusQuery(sort="account", page=100))
            timed("last page by freshness, descending",
                  StatusQuery(sort="freshness", descending=True, page=args.accounts // 50))
            timed("filter state=blocked", StatusQuery(states=("blocked",)))
            timed("filter channel=coupang_jet, state=failing", StatusQuery(channels=("coupang_jet",),
                                                                            states=("failing",)))
            timed("search account '0001234'", StatusQuery(search="0001234"))
            timed("search seller name '판매자777'", StatusQuery(search="판매자777"))
            timed("filter state=expiring", StatusQuery(states=("expiring",)))

            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                freshness_changes(conn, channel="coupang_rocket", today=TODAY, send=lambda change: None)
                times.append((time.perf_counter() - start) * 1000)
            report.add("freshness check of a channel (report task): median", statistics.median(times), "ms",
                       "<= 500", note=f"first check (marks the stale) {times[0]:.1f} ms, slowest {max(times):.1f}")
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('sales.account_status'))").fetchone()[0]
            report.settings["account_status_size"] = size
            report.settings["load_average"] = round(__import__("os").getloadavg()[0], 1)
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) SELECT * FROM sales.collection_status(%s) "
                                "ORDER BY account_id LIMIT 50", (TODAY,)).fetchall()
            print("\n".join(row[0] for row in plan[:12]))
    finally:
        server.cleanup()
    report.emit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
