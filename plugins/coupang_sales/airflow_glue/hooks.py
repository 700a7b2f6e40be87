"""Hooks for the portals: credentials and settings from an Airflow connection, I/O through the page objects."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from coupang_sales.channel import Channel
from coupang_sales.jet.channel import JET
from coupang_sales.rocket.channel import ROCKET

# Connection extra keys that are shortcuts for a setting (docs/portals.md).
EXTRA_SHORTCUTS = {
    "timeout": ("waits", "page"),
    "challenge_timeout": ("waits", "sign_on_challenge"),
    "download_mode": ("download_mode",),
    "concurrency": ("concurrency",),
    "receive_detail_source": ("receive_detail_source",),
    "pacing_seconds": ("pacing_seconds",),
    # Wing
    "report_wait_seconds": ("waits", "report"),
    "poll_interval_seconds": ("waits", "report_poll"),
    "xsrf_wait_seconds": ("waits", "xsrf"),
    "v1_page_size": ("page_sizes", "v1"),
    "v1_amount_field": ("fields", "v1_amount"),
    "status_retry_seconds": ("waits", "status_retry"),
    "locale": ("api", "locale"),
}
BROWSER_KEYS = ("remote_url", "headless", "debugger_address")
SETTINGS_KEYS = ("settings_file", "settings_variable", "settings")


def settings_from_extra(portal: str, extra: Mapping[str, Any], *, variable: Any = None):
    """The portal's settings for a connection's ``extra``: the packaged defaults, then the file named
    by ``settings_file``, then ``variable`` (the Airflow Variable named by ``settings_variable``, as
    decoded JSON), then inline ``settings``, then the shortcut keys (``timeout``, ``download_mode``,
    ``concurrency``, ``receive_detail_source``, ...). An unknown extra key is refused."""
    from coupang_sales.errors import CollectionError
    from coupang_sales.portal.settings import load_settings

    known = (*EXTRA_SHORTCUTS, *BROWSER_KEYS, *SETTINGS_KEYS)
    unknown = sorted(k for k in extra if k not in known)
    if unknown:
        raise CollectionError("configuration_error",
                              f"unknown key(s) in the portal connection's extra: {unknown} (known: {sorted(known)})")
    shortcuts: dict[str, Any] = {}
    for key, where in EXTRA_SHORTCUTS.items():
        if key in extra:
            value = extra[key]
            if where[0] in ("waits", "pacing_seconds"):
                value = float(value)
            elif where[0] in ("concurrency", "page_sizes"):
                value = int(value)
            elif where[0] in ("fields", "api"):
                value = str(value)
            target = shortcuts
            for part in where[:-1]:
                target = target.setdefault(part, {})
            target[where[-1]] = value
    inline = extra.get("settings") or {}
    if isinstance(inline, str):
        inline = json.loads(inline)
    return load_settings(portal, settings_file=extra.get("settings_file"),
                         more=tuple(m for m in (variable, inline) if m), overrides=shortcuts or None)


class PortalHook(BaseHook):
    """Opens a (not yet logged-in) browser session on a Coupang portal for one account's connection.

    The connection holds: ``host`` = the portal's base URL (``https://supplier.coupang.com``,
    ``https://wing.coupang.com`` or the sandbox URL), ``login``/``password`` = the
    integration's account, and in ``extra`` the portal settings (``settings_file``,
    ``settings_variable``, inline ``settings`` and shortcuts such as ``timeout``; see
    ``settings_from_extra`` and docs/portals.md) and the browser's ``remote_url`` (a Selenium
    Grid node, also from ``SELENIUM_REMOTE_URL``), ``debugger_address`` (attach to a running Chrome,
    also from ``CHROME_DEBUGGER_ADDRESS``) and ``headless`` (default false: the live portals refuse
    headless browsers; ``coupang_sales.portal.browser``). The password goes to the browser form only.
    """

    conn_name_attr = "portal_conn_id"
    conn_type = "http"
    channel: Channel  # whose portal, settings and page-object session

    def __init__(self, portal_conn_id: str, *, channel: Channel | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.portal_conn_id = portal_conn_id
        if channel is not None:
            self.channel = channel

    @property
    def portal(self) -> str:
        return self.channel.portal

    def settings(self, extra: Mapping[str, Any]):
        variable = None
        if extra.get("settings_variable"):
            from airflow.sdk import Variable

            variable = Variable.get(extra["settings_variable"], deserialize_json=True)
        return settings_from_extra(self.portal, extra, variable=variable)

    def session(self, *, download_dir: Path, artifacts_dir: Path | None = None,
                account: Mapping[str, Any] | None = None, driver_factory: Any = None) -> Any:
        """A page-object session; with ``account`` (its ``channel`` and ``account_id``) the browser runs in
        the account's persistent profile (``coupang_sales.portal.profiles``), locked while it runs, so a
        profile still signed on is not signed on again; without it, in a throw-away profile."""
        from coupang_sales.portal.browser import headless_from
        from coupang_sales.portal.profiles import BrowserProfile

        session_class = self.channel.session_class()
        conn = self.get_connection(self.portal_conn_id)
        extra = conn.extra_dejson
        base_url = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'https'}://{conn.host}"
        if conn.port and f":{conn.port}" not in base_url:
            base_url = f"{base_url}:{conn.port}"
        remote_url = extra.get("remote_url") or os.environ.get("SELENIUM_REMOTE_URL") or None
        # None: open_browser reads SELENIUM_HEADLESS and CHROME_DEBUGGER_ADDRESS itself.
        headless = headless_from(extra["headless"]) if "headless" in extra else None
        debugger_address = extra.get("debugger_address") or None

        profile = BrowserProfile(account["channel"], account["account_id"]) if account else None

        def own_browser(download_dir: Path):
            from coupang_sales.portal.browser import open_browser

            return open_browser(download_dir, headless=headless, remote_url=remote_url,
                                profile_dir=profile.path if profile else None, debugger_address=debugger_address)

        session = session_class(
            base_url=base_url.rstrip("/"), username=conn.login, password=conn.password,
            download_dir=download_dir, settings=self.settings(extra), artifacts_dir=artifacts_dir,
            driver_factory=driver_factory or own_browser,
        )
        # Set on the shared base (PortalSession), whatever the portal's own constructor takes.
        session.profile = profile
        if account:
            session.sign_in_command = f"python -m coupang_sales.sign_in {account['channel']} {account['account_id']}"
        return session


class SupplierHubHook(PortalHook):
    """Coupang Supplier Hub (Rocket)."""

    hook_name = ROCKET.portal_title
    channel = ROCKET


class WingHook(PortalHook):
    """Coupang Wing (Jet / Rocket Growth)."""

    hook_name = JET.portal_title
    channel = JET


def portal_hook(channel: Channel, conn_id: str) -> PortalHook:
    """The hook of ``channel``'s portal for one account's connection."""
    return next(cls for cls in (SupplierHubHook, WingHook) if cls.channel == channel)(conn_id)


@contextlib.contextmanager
def account_session(context: Mapping[str, Any], account: Mapping[str, Any], hook: PortalHook, *,
                    download_dir: Path, artifacts_dir: Path | None = None, driver_factory: Any = None,
                    ) -> Iterator[Any]:
    """The hook's browser session in the account's persistent profile; what it cost (sign-ons,
    SMS steps, renewals, browser seconds) is added to the run's ``browser_use.json`` of the
    account, whatever happened, and from there to every ``collection_runs.details``."""
    from coupang_sales.airflow_glue.audit import record_browser_use

    shared = {"driver_factory": driver_factory} if driver_factory is not None else {}
    session = hook.session(download_dir=download_dir, artifacts_dir=artifacts_dir, account=account, **shared)
    try:
        with session:
            yield session
    finally:
        record_browser_use(context, account["account_id"], session.usage)
