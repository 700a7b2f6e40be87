"""Hooks for the portals: credentials from an Airflow connection, I/O through the page objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook


class PortalHook(BaseHook):
    """Opens a (not yet logged-in) browser session on a Coupang portal for one account's connection.

    The connection holds: ``host`` = the portal's base URL (``https://supplier.coupang.com``,
    ``https://wing.coupang.com`` or the sandbox URL), ``login``/``password`` = the
    integration's account, and optional ``extra`` keys ``sso_url`` (the sign-on entry URL),
    ``remote_url`` (a Selenium Grid node, also from ``SELENIUM_REMOTE_URL``), ``headless``
    (default true) and ``timeout`` seconds. The password goes to the browser form only.
    """

    conn_name_attr = "portal_conn_id"
    conn_type = "http"
    session_class = ""  # dotted path of the page-object session class

    def __init__(self, portal_conn_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.portal_conn_id = portal_conn_id

    def session(self, *, download_dir: Path, artifacts_dir: Path | None = None) -> Any:
        from importlib import import_module

        module, _, name = self.session_class.rpartition(".")
        session_class = getattr(import_module(module), name)
        conn = self.get_connection(self.portal_conn_id)
        extra = conn.extra_dejson
        base_url = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'https'}://{conn.host}"
        if conn.port and f":{conn.port}" not in base_url:
            base_url = f"{base_url}:{conn.port}"
        remote_url = extra.get("remote_url") or os.environ.get("SELENIUM_REMOTE_URL") or None
        headless = str(extra.get("headless", os.environ.get("SELENIUM_HEADLESS", "true"))).lower() != "false"

        def driver_factory(download_dir: Path):
            from coupang_sales.portal.browser import open_browser

            return open_browser(download_dir, headless=headless, remote_url=remote_url)

        return session_class(
            base_url=base_url.rstrip("/"), username=conn.login, password=conn.password,
            download_dir=download_dir, sso_url=extra.get("sso_url"),
            timeout=float(extra.get("timeout", 20)), artifacts_dir=artifacts_dir,
            driver_factory=driver_factory, **self.session_options(extra),
        )

    def session_options(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Portal-specific settings of the session class, from the connection's extra."""
        return {}


class SupplierHubHook(PortalHook):
    """Coupang Supplier Hub (Rocket)."""

    hook_name = "Coupang Supplier Hub"
    session_class = "coupang_sales.rocket.supplier_hub.SupplierHubSession"


class WingHook(PortalHook):
    """Coupang Wing (Jet / Rocket Growth)."""

    hook_name = "Coupang Wing"
    session_class = "coupang_sales.jet.wing.WingSession"
    # extra key -> (WingSession argument, type); defaults are WingSession's (docs/portals.md).
    OPTIONS = {"report_wait_seconds": ("report_wait", float), "poll_interval_seconds": ("poll_interval", float),
               "xsrf_wait_seconds": ("xsrf_wait", float), "v1_amount_field": ("v1_amount_field", str),
               "v1_page_size": ("v1_page_size", int)}

    def session_options(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {name: kind(extra[key]) for key, (name, kind) in self.OPTIONS.items() if extra.get(key) is not None}
