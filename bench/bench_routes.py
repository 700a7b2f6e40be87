"""Rocket accounts per hour against the number of egress routes, through the shared-session mechanism.

Each route is a forward proxy leaving from its own loopback address (127.0.0.51, .52, ...), as
``tests/integration/test_routes.py`` does, so the sandbox's one-seller-per-address rule sees distinct
clients. As many workers as routes (the portal's pool sized to its routes) take accounts from a queue;
for each account a worker does what the DAG's browser tasks do with ``COUPANG_SHARED_BROWSER=true``
(``airflow_glue/shared_browser.py``): lease a route in PostgreSQL (``warehouse.leases``, the account's
last route first), open one WebDriver session through the route's proxy on the machine's own
chromedriver (``LocalWebDriverServer``), then three tasks attach to it in turn (sub-account expiry
check: sign-on and 하위 계정; tax-invoice check; the extract's invoice list), then close the session
and free the route. Airflow's own cost per task (a task process, about 2-4 s of CPU) is not in it.

The sign-on challenge is scaled down to CHALLENGE s (the record: ~16 s); the 16 s figure adds the
difference for each sign-on to its route's busy time. The machine's load average is printed beside
each figure: other jobs share its cores. Run: python bench/bench_routes.py [--accounts N] [--routes 1 2 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import queue
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from common import ROOT, Report, load_average

CHALLENGE = 2.0
REAL_CHALLENGE = 16.0
TODAY = dt.date(2026, 1, 7)
TASKS = ("check_sub_account_expiry", "check_tax_invoice_block", "extract")


def scenario(accounts: int) -> dict:
    return {"today": TODAY.isoformat(), "bot_protection": {"challenge_seconds": CHALLENGE},
            "rocket": {"accounts": [
                {"account_id": f"V00005{n:03d}", "vendor_name": f"벤치 {n}", "username": f"route_bench_{n}",
                 "password": f"pw-route-bench-{n}", "sub_account_expires": "2026-12-31", "invoices": [
                     {"invoice_no": f"395{n:05d}", "written_date": "2026-01-05", "tax_invoice_confirmed": "2026-01-06",
                      "lines": [{"kind": "발주", "po_no": f"1950{n:05d}", "sku_id": "55501", "sku_name": "보리차",
                                 "moved_date": "2026-01-04", "center": "이천1", "qty": 1, "unit_price": 11_000,
                                 "unit_supply": 10_000, "unit_tax": 1_000}]}]}
                for n in range(1, accounts + 1)]},
            "jet": {"accounts": []}}


def collect_account(server, dsn: str, account: dict, routes: dict[str, str], webdriver_url: str,
                    work: Path) -> tuple[str, int, float]:
    """One account's browser work on a leased route: (route, sign-ons, seconds holding the route)."""
    import psycopg

    from coupang_sales.portal.browser import session_options
    from coupang_sales.portal.profiles import BrowserProfile
    from coupang_sales.portal.webdriver_server import attach, close_session, new_session
    from coupang_sales.rocket.supplier_hub import SupplierHubSession
    from coupang_sales.warehouse import leases

    holder = f"bench/{account['account_id']}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:  # a worker holds one route at a time, so one is free; a race can still lose it
            lease = leases.lease_route(conn, portal="supplier_hub", routes=list(routes), channel="coupang_rocket",
                                       account_id=account["account_id"], holder=holder, ttl_seconds=600)
            if lease is not None:
                break
            time.sleep(0.2)
        started = time.perf_counter()
        profile = BrowserProfile("coupang_rocket", account["account_id"], root=work / "profiles")
        options = session_options(work / account["account_id"], profile_dir=profile.path,
                                  proxy_url=routes[lease.route])
        opener = new_session(webdriver_url, options, download_dir=work / account["account_id"])
        session_id = opener.session_id
        opener.command_executor.close()
        sign_ons = 0
        try:
            for task in TASKS:  # each task attaches to the run's one session, as the DAG's tasks do
                with SupplierHubSession(base_url=server.url, username=account["username"],
                                        password=account["password"], download_dir=work / task,
                                        driver_factory=lambda d: attach(webdriver_url, session_id,
                                                                        download_dir=d)) as session:
                    session.login()
                    if task == "check_sub_account_expiry":
                        session.sub_accounts()
                    elif task == "check_tax_invoice_block":
                        session.settlement_blocked()
                    else:
                        session.list_invoices(TODAY - dt.timedelta(days=14), TODAY)
                sign_ons += session.sign_ons
        finally:
            close_session(webdriver_url, session_id)
            leases.release(conn, lease)
        return lease.route, sign_ons, time.perf_counter() - started


def measure(server, dsn: str, accounts: list[dict], proxies: list, webdriver_url: str, work: Path) -> dict:
    routes = {f"r{n}": p.url for n, p in enumerate(proxies, 1)}
    todo: queue.Queue = queue.Queue()
    for account in accounts:
        todo.put(account)
    busy = {name: 0.0 for name in routes}
    extrapolated = {name: 0.0 for name in routes}
    sign_ons: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                account = todo.get_nowait()
            except queue.Empty:
                return
            try:
                route, signed, seconds = collect_account(server, dsn, account, routes, webdriver_url, work)
            except BaseException as exc:  # reported after the others finish
                errors.append(exc)
                return
            with lock:
                busy[route] += seconds
                extrapolated[route] += seconds + signed * (REAL_CHALLENGE - CHALLENGE)
                sign_ons.append(signed)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in routes]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    # each route serves one seller at a time: at a 16 s challenge the busiest route sets the pace
    wall_16 = wall + max(extrapolated[r] - busy[r] for r in routes)
    return {"wall": wall, "per_hour": len(accounts) * 3600 / wall, "per_hour_16": len(accounts) * 3600 / wall_16,
            "sign_ons": sum(sign_ons), "accounts": len(sign_ons), "load": load_average()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=12)
    parser.add_argument("--routes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    import json

    import psycopg
    from forward_proxy import ForwardProxy  # the tests' small proxy, leaving from a loopback address

    import local_stack
    from coupang_sales.portal.webdriver_server import LocalWebDriverServer
    from coupang_sales.warehouse.schema_versions import migrate
    from sandbox import SandboxServer, load_scenario

    os.environ["COUPANG_PORTAL_SETTINGS"] = json.dumps({"waits": {"keystroke": 0.01}, "pacing_seconds": 0.05})
    raw = scenario(args.accounts)
    report = Report("routes", settings={"accounts": args.accounts, "challenge_seconds": CHALLENGE,
                                        "extrapolated_to": REAL_CHALLENGE, "browser": "headed under Xvfb",
                                        "workers": "one per route"})
    work = Path(tempfile.mkdtemp(prefix="bench-routes-"))
    warehouse = local_stack.EmbeddedWarehouse(work / "pgdata").start()
    server_root = work / "webdriver"
    try:
        with psycopg.connect(warehouse.dsn, autocommit=True) as conn:
            migrate(conn)
        with SandboxServer(load_scenario(raw)) as server, ExitStack() as stack:
            proxies = [stack.enter_context(ForwardProxy(f"127.0.0.{51 + n}")) for n in range(max(args.routes))]
            webdriver_url = LocalWebDriverServer(server_root).url()
            for count in args.routes:
                # new profiles for each size: every account signs on, as on a run's first morning
                figures = measure(server, warehouse.dsn, raw["rocket"]["accounts"], proxies[:count], webdriver_url,
                                  work / f"routes-{count}")
                note = (f"{figures['accounts']} accounts in {figures['wall']:.0f} s, {figures['sign_ons']} sign-ons; "
                        f"load {figures['load']}")
                report.add(f"accounts per hour, {count} route(s)", round(figures["per_hour"]), "acc/h", note=note)
                report.add(f"accounts per hour, {count} route(s), at {REAL_CHALLENGE:g} s challenge",
                           round(figures["per_hour_16"]), "acc/h", note=f"extrapolated; load {figures['load']}")
    finally:
        LocalWebDriverServer(server_root).stop()
        warehouse.stop()
    report.emit()


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    started = time.monotonic()
    main()
    print(f"took {time.monotonic() - started:.0f} s")
