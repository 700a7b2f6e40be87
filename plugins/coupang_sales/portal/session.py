"""What every Coupang portal session shares: the browser's lifecycle, navigation, renewals and download checks.

A session is put together from its parts, each in its own module: the sign-on
(``portal.sign_on``), requests from inside the signed-on page (``portal.in_page``, one
transport), waits on pages (``portal.waits``) and failure artifacts (``portal.artifacts``).
Page objects start from ``portal.pages.Page``.
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal import artifacts
from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.failures import step, unavailable, url_path
from coupang_sales.portal.in_page import Fetched, InPageCalls, InPageRequest
from coupang_sales.portal.pages import Page, table_rows
from coupang_sales.portal.settings import Locator, PortalDefaults, PortalSettings, load_settings
from coupang_sales.portal.sign_on import SIGN_ON_PATH, SIGN_ON_SELECTORS, SignOn, SignOnPage
from coupang_sales.portal.waits import LANDED, ON_PORTAL, PageWaits

__all__ = ["LANDED", "ON_PORTAL", "SIGN_ON_PATH", "SIGN_ON_SELECTORS", "Fetched", "InPageRequest", "Page",
           "PortalSession", "SignOnPage", "step", "table_rows", "unavailable", "url_path"]

log = logging.getLogger(__name__)


class PortalSession(SignOn, InPageCalls, PageWaits):
    """One browser session on a portal behind the shared sign-on; a context manager that always quits the browser.

    Subclasses declare the portal's packaged settings (``settings_defaults``: its defaults
    file and settings model, ``coupang_sales.portal.settings.PortalDefaults``) and may add
    selectors of their own (``code_selectors``); the session's ``settings`` win over them.
    The sign-on starts at the portal's home and follows its redirects; "signed on" is the
    portal's landing rule (its host, a landing path, no password field, and one of the
    landing markers if any are set). Messages and logs name pages, URL paths and counts,
    never the username or password.
    """

    portal_name: ClassVar[str] = "the portal"  # in messages and logs
    artifact_prefix: ClassVar[str] = "portal"  # file names of failure artifacts
    settings_defaults: ClassVar[PortalDefaults | None] = None
    settings_portal: ClassVar[str] = ""  # the portal's name in its settings (supplier_hub | wing): from the above
    code_selectors: ClassVar[Mapping[str, Locator]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.settings_defaults is not None:
            cls.settings_portal = cls.settings_defaults.portal

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 settings: PortalSettings | None = None, timeout: float | None = None,
                 artifacts_dir: Path | None = None, driver_factory: Callable[[Path], WebDriver] = open_browser,
                 profile: Any = None, sign_in_command: str | None = None):
        self.base_url = base_url.rstrip("/")
        if self.settings_defaults is None:
            raise CollectionError("configuration_error", f"{type(self).__name__} declares no settings_defaults")
        self.settings = settings or load_settings(self.settings_defaults)
        if self.settings.portal != self.settings_portal:
            raise CollectionError("configuration_error", f"{self.portal_name} was given the settings of "
                                                         f"{self.settings.portal}")
        self.selectors: dict[str, Locator] = {**self.code_selectors, **self.settings.selectors}
        self._username, self._password = username, password
        self._scrub = artifacts.Redactor(username, password)
        self.download_dir = Path(download_dir)
        self.timeout = float(timeout if timeout is not None else self.settings.wait("page"))
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
        self._driver_factory = driver_factory
        self.driver: WebDriver | None = None
        self._renewals = 0  # sign-ons after the first, this session
        self._renewals_in_a_row = 0  # since the last page that answered
        # A persistent profile (coupang_sales.portal.profiles.BrowserProfile), locked while the
        # browser runs; the driver factory opens the browser in it.
        self.profile = profile
        self.sign_in_command = sign_in_command  # named by an auth_challenge: how a person signs on
        self.sign_ons = 0  # passwords submitted (the scarce resource: challenge, SMS, one seller at a time)
        self.sms_steps = 0  # SMS steps met
        self.browser_seconds = 0.0  # how long a browser was open
        self._browser_opened: float | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    @property
    def base_path(self) -> str:
        """The path the portal's paths start at ('' on the real sites; '/wing' for the sandbox's Wing)."""
        return urlsplit(self.base_url).path.rstrip("/")

    @property
    def username(self) -> str:
        """The account this session logs in as; never the password."""
        return self._username

    def __repr__(self) -> str:  # the default would be harmless, but keep credentials out for sure
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Any:
        self._browser()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        driver, self.driver = self.driver, None
        try:
            if driver is not None:
                try:
                    driver.quit()
                except WebDriverException as exc:
                    log.warning("quitting the browser failed: %s", (exc.msg or "").splitlines()[:1])
        finally:
            if self._browser_opened is not None:
                self.browser_seconds += time.monotonic() - self._browser_opened
                self._browser_opened = None
            if self.profile is not None:
                self.profile.release()

    def _browser(self) -> WebDriver:
        if self.driver is None:
            self.download_dir.mkdir(parents=True, exist_ok=True)
            if self.profile is not None:
                self.profile.acquire()  # released by close(); a second user waits or fails clearly
            try:
                self.driver = self._driver_factory(self.download_dir)
            except BaseException:
                if self.profile is not None:
                    self.profile.release()
                raise
            self._browser_opened = time.monotonic()
            self.driver.set_page_load_timeout(self.timeout)
        return self.driver

    @property
    def usage(self) -> dict[str, Any]:
        """What this session cost: sign-ons (passwords submitted), SMS steps, renewals, browser seconds."""
        seconds = self.browser_seconds + (time.monotonic() - self._browser_opened
                                          if self._browser_opened is not None else 0.0)
        return {"sign_ons": self.sign_ons, "sms_steps": self.sms_steps, "renewals": self._renewals,
                "browser_seconds": round(seconds, 2)}

    # --- navigation --------------------------------------------------------------------

    def _get(self, url: str, page: str) -> None:
        driver = self._browser()
        try:
            driver.get(url)
        except TimeoutException:
            raise unavailable(f"{page}: no answer within {self.timeout:g} s at {url_path(url)}") from None
        status = self._document_status()
        if status is not None and status >= 500:
            raise unavailable(f"{page}: HTTP {status} at {url_path(url)}")

    def _visit(self, url: str, page: str, expected: Mapping[str, str]) -> str:
        """Open a portal page; signs on again if the session was lost on the way."""
        while True:
            self._get(url, page)
            found = self._wait_for(page, {**expected, "__sign_on": "sign_on.form"})
            if found != "__sign_on":
                self._renewals_in_a_row = 0
                return found
            self._count_renewal(f"{page} ({url_path(url)})")
            self._sign_on_here(page, anywhere=True)

    def _count_renewal(self, what: str) -> None:
        """Renew a session the portal dropped, as often as a long run needs (``max_renewals``), but
        not again before a page has answered (``max_consecutive_renewals``): that is a session
        that keeps expiring, not one that aged."""
        if self._renewals_in_a_row >= self.settings.max_consecutive_renewals:
            raise unavailable(f"{what}: the portal sent the browser to the sign-on page again right after "
                              "signing on; the session keeps expiring")
        if self._renewals >= self.settings.max_renewals:
            raise unavailable(f"{what}: the session expired {self._renewals + 1} times in one run "
                              f"(max_renewals {self.settings.max_renewals})")
        self._renewals += 1
        self._renewals_in_a_row += 1
        log.info("%s: the session expired; signing on again (renewal %d)", what, self._renewals)

    @property
    def renewals(self) -> int:
        """How many times the session was renewed after the first sign-on."""
        return self._renewals

    def _accept_alert(self) -> None:
        artifacts.accept_alert(self.driver)

    # --- downloads -----------------------------------------------------------------------

    def _check_xlsx(self, body: bytes, what: str) -> bytes:
        """``body`` if it is a whole .xlsx; an empty answer or a truncated archive is
        portal_unavailable (a transfer that broke off: retried), anything else
        export_format_changed (unless ``_non_xlsx_error`` recognises it)."""
        if not body:
            raise unavailable(f"{what}: the portal sent an empty file")
        if body.startswith(b"PK"):
            try:
                with zipfile.ZipFile(io.BytesIO(body)) as archive:
                    if "[Content_Types].xml" in archive.namelist() and archive.testzip() is None:
                        return body
            except zipfile.BadZipFile:
                pass
            raise unavailable(f"{what}: the file is truncated or corrupt ({len(body)} bytes)")
        text = body[:4000].decode("utf-8", errors="replace")
        known = self._non_xlsx_error(text, what)
        if known is not None:
            raise known
        start = " ".join(text[:40].split())
        raise ExportFormatError(f"{what}: not an .xlsx file ({len(body)} bytes starting {start!r})")

    def _non_xlsx_error(self, text: str, what: str) -> CollectionError | None:
        """A portal's own explanation of a non-Excel answer (the start of its text), if it has one."""
        return None

    # --- failure artifacts ---------------------------------------------------------------

    def _save_artifacts(self, step_name: str) -> None:
        """Screenshot and page source of a failed step (``portal.artifacts``), if the session keeps artifacts."""
        if self.artifacts_dir is None or self.driver is None:
            return
        artifacts.save_artifacts(self.driver, self.artifacts_dir, self.artifact_prefix, step_name, self._scrub)
