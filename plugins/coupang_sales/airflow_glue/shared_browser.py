"""One browser session per account and run, held on an egress route and shared by the run's browser tasks.

With ``COUPANG_SHARED_BROWSER=true`` the first browser task of an account (a Supplier Hub check, or the
extract) leases a free route of its portal (``warehouse.leases``; the account's last route first: its
cookies and clearance were made there), opens a WebDriver session on a server that outlives the task
(``SELENIUM_REMOTE_URL``'s Grid, or the machine's own ``LocalWebDriverServer``), leaving through the
route, and records the session in the lease. The next tasks of the account in that run attach to the
same session: the run signs on once, and each check runs, and fails, in its own task. The last browser
task (the extract), or any failure, closes the session and frees the route. A lease whose holder
stopped renewing it (killed task, dead worker) expires after ``COUPANG_ROUTE_LEASE_SECONDS`` (600) and
the next task that asks for a route closes its session. A task that finds every route taken is
rescheduled (``COUPANG_ROUTE_WAIT_SECONDS``, 30 s later) and holds no worker slot meanwhile.

Routes: ``COUPANG_ROUTES``, a JSON list (``portal.routes.parse_routes``: ``proxy``, ``conn_id`` of a
connection holding the proxy and its credentials, or ``grid_node``); unset, the one route ``direct``.
The route of each attempt is recorded in ``sales.collection_runs.route``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from coupang_sales.channel import Channel
from coupang_sales.errors import CollectionError
from coupang_sales.portal.routes import Route, parse_routes

log = logging.getLogger(__name__)

ROUTE_CONTEXT_KEY = "coupang_route"


def shared_browser_enabled() -> bool:
    from coupang_sales.config import settings

    return settings().shared_browser


def lease_seconds() -> int:
    from coupang_sales.config import settings

    return settings().route_lease_seconds


def wait_seconds() -> int:
    from coupang_sales.config import settings

    return settings().route_wait_seconds


def configured_routes() -> list[Route]:
    """``COUPANG_ROUTES`` with each ``conn_id`` read from its Airflow connection."""
    from airflow.sdk import BaseHook

    def credentials(conn_id: str) -> tuple[str, str | None, str | None]:
        conn = BaseHook.get_connection(conn_id)
        scheme = (conn.extra_dejson or {}).get("scheme", "http")
        return f"{scheme}://{conn.host}:{conn.port}", conn.login, conn.password

    from coupang_sales.config import settings

    return parse_routes(settings().routes, credentials)


def webdriver_server_url() -> str:
    """The WebDriver server sessions live on: the Grid of ``SELENIUM_REMOTE_URL``, else this machine's."""
    remote = os.environ.get("SELENIUM_REMOTE_URL", "").strip()
    if remote:
        return remote
    from coupang_sales.portal.webdriver_server import LocalWebDriverServer

    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return LocalWebDriverServer(home / "webdriver").url()


def close_lease_session(lease) -> None:
    """Close the lease's browser session (and its relay): the route is free of it."""
    from coupang_sales.portal.webdriver_server import close_session

    if lease.webdriver_url and lease.session_id:
        closed = close_session(lease.webdriver_url, lease.session_id)
        log.info("closed the browser session of %s on route %s (%s)", lease.account_id, lease.route,
                 "it was running" if closed else "already gone")
    if lease.relay_pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(lease.relay_pid, 15)


class _Renewer(threading.Thread):
    """Renews the lease while the task runs; a lease it finds gone is reported to the task."""

    def __init__(self, lease, ttl: int) -> None:
        super().__init__(daemon=True, name="route-lease")
        self.lease, self.ttl, self.lost = lease, ttl, False
        self._halt = threading.Event()

    def run(self) -> None:
        from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
        from coupang_sales.warehouse import leases

        while not self._halt.wait(max(5, self.ttl // 3)):
            try:
                with WarehouseHook().connected() as conn:
                    if leases.renew(conn, self.lease, self.ttl) is None:
                        self.lost = True
                        return
            except Exception as exc:  # renewals are retried; an expired lease is noticed at the next one
                log.warning("could not renew the route lease: %s", type(exc).__name__)

    def stop(self) -> None:
        self._halt.set()


@contextlib.contextmanager
def leased_browser(context: Mapping[str, Any], channel: Channel, account: Mapping[str, Any], *,
                   last: bool, headless: bool | None = None) -> Iterator[Any]:
    """Yields a ``driver_factory(download_dir)`` for the account's shared session of this run.

    ``last``: this task ends the session (the extract). A failure inside the block ends it too, and
    frees the route. The route's name goes to ``context['coupang_route']`` for the audit.
    """
    from airflow.sdk.exceptions import AirflowRescheduleException

    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
    from coupang_sales.portal.browser import session_options
    from coupang_sales.portal.profiles import BrowserProfile
    from coupang_sales.portal.webdriver_server import attach, new_session, session_alive
    from coupang_sales.warehouse import leases

    routes = {route.name: route for route in configured_routes()}
    dag_run = context.get("dag_run")
    holder = f"{getattr(context.get('dag'), 'dag_id', '')}/{context.get('run_id')}"
    ttl = lease_seconds()
    with WarehouseHook().connected() as conn:
        for stale in leases.reap_expired(conn, channel.portal):
            close_lease_session(stale)
        prefer = leases.last_route(conn, channel=account["channel"], account_id=account["account_id"])
        lease = leases.lease_route(conn, portal=channel.portal, routes=list(routes), channel=account["channel"],
                                   account_id=account["account_id"], holder=holder, ttl_seconds=ttl,
                                   prefer=prefer)
    if lease is None:
        log.info("%s: every route of %s is taken; asking again in %d s (no worker slot held)",
                 account["account_id"], channel.portal, wait_seconds())
        raise AirflowRescheduleException(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait_seconds()))
    route = routes[lease.route]
    started = getattr(dag_run, "start_date", None)
    context[ROUTE_CONTEXT_KEY] = {"route": route.name, "wait_seconds": (
        int((lease.leased_at - started).total_seconds()) if started and lease.leased_at > started else 0)}
    log.info("%s: route %s (%s)", account["account_id"], route.describe(),
             "shared session" if lease.session_id else "new session")
    renewer = _Renewer(lease, ttl)
    renewer.start()
    profile = BrowserProfile(account["channel"], account["account_id"])

    def driver_factory(download_dir: Path):
        nonlocal lease
        if lease.session_id and session_alive(lease.webdriver_url, lease.session_id):
            return attach(lease.webdriver_url, lease.session_id, download_dir=download_dir)
        if lease.session_id:
            log.info("the shared session of %s is gone (the server closed it); a new one", account["account_id"])
        url = webdriver_server_url()
        proxy_url, relay_pid = route.proxy, None
        if route.needs_relay:  # Chrome cannot send the proxy's credentials: a relay outliving the task does
            if os.environ.get("SELENIUM_REMOTE_URL"):
                raise CollectionError("configuration_error", f"route {route.name}: a Grid node cannot reach this "
                                      "worker's relay for the proxy's credentials; make the route a Grid node")
            from coupang_sales.portal.relay import spawn

            proxy_url, relay_pid = spawn(route)
        options = session_options(download_dir, headless=headless, profile_dir=profile.path, proxy_url=proxy_url)
        if route.grid_node:
            from coupang_sales.portal.routes import GRID_ROUTE_CAPABILITY

            options.set_capability(GRID_ROUTE_CAPABILITY, route.grid_node)
        try:
            driver = new_session(url, options, download_dir=download_dir)
        except BaseException:
            if relay_pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(relay_pid, 15)
            raise
        with WarehouseHook().connected() as conn:
            lease = leases.record_session(conn, lease, webdriver_url=url, session_id=driver.session_id,
                                          relay_pid=relay_pid) or lease
        shared = attach(url, driver.session_id, download_dir=download_dir)
        driver.command_executor.close()
        return shared

    failed = False
    try:
        yield driver_factory
    except BaseException:
        failed = True
        raise
    finally:
        renewer.stop()
        if last or failed or renewer.lost:
            with WarehouseHook().connected() as conn:
                current = leases.held_by(conn, portal=channel.portal, channel=account["channel"],
                                         account_id=account["account_id"])
                if current is not None and current.holder == holder:
                    close_lease_session(current)
                    leases.release(conn, current)
