"""Waiting on a portal's pages: for one of the expected parts (or the landing rule), and for the next document."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal.failures import unavailable, url_path

if TYPE_CHECKING:
    from coupang_sales.portal.settings import Locator, PortalSettings

LANDED = "@landed"  # a pseudo selector key: the portal's landing rule holds
ON_PORTAL = "@portal"  # a pseudo selector key: a loaded page of the portal's host without a password field

# True when the document has loaded and shows nothing at all: what bot protection serves
# some browsers instead of a page (a JavaScript challenge looks the same while it runs).
_BLANK_JS = """
const b = document.body;
if (document.readyState !== 'complete') return false;
if (!b) return true;
return b.innerText.trim() === '' && !b.querySelector(':not(script):not(style):not(noscript):not(meta):not(link)');
"""


class PageWaits:
    """The waits of a portal session (a part of ``PortalSession``, whose ``_browser()`` they use): what the
    browser shows, judged by the portal's selectors and landing rule."""

    driver: WebDriver | None
    settings: PortalSettings
    selectors: dict[str, Locator]
    timeout: float
    host: str
    base_path: str

    def _document_status(self) -> int | None:
        """The HTTP status of the last page loaded (Navigation Timing's responseStatus; None if unknown)."""
        try:
            status = self.driver.execute_script(
                "const nav = performance.getEntriesByType('navigation')[0];"
                " return nav && nav.responseStatus ? nav.responseStatus : null;")
        except WebDriverException:
            return None
        return int(status) if isinstance(status, int) else None

    def _landed(self, d: WebDriver) -> bool:
        """The landing rule: the portal's host, a landing path, no password field, a landing marker (if any)."""
        parts = urlsplit(d.current_url)
        if parts.netloc != self.host:
            return False
        path = parts.path[len(self.base_path):] if parts.path.startswith(self.base_path) else parts.path
        if (path or "/") not in self.settings.landing_paths:
            return False
        if d.find_elements(*self.selectors["password_field"]):
            return False
        markers = self.settings.landing_markers
        return not markers or any(d.find_elements(*self.selectors[m]) for m in markers)

    def _on_portal(self, d: WebDriver) -> bool:
        parts = urlsplit(d.current_url)
        return (parts.netloc == self.host and not parts.path.startswith(self.settings.path("sign_on_realm"))
                and not d.find_elements(*self.selectors["password_field"])
                and d.execute_script("return document.readyState === 'complete' && !!document.body"
                                     " && document.body.innerText.trim() !== '';"))

    def _shows(self, d: WebDriver, key: str) -> bool:
        if key == LANDED:
            return self._landed(d)
        if key == ON_PORTAL:
            return self._on_portal(d)
        return bool(d.find_elements(*self.selectors[key]))

    def _wait_for(self, page: str, expected: Mapping[str, str], *, sign_on: bool = False) -> str:
        """Wait until one of the ``expected`` selector keys (or ``LANDED``) shows; returns its name.

        The access-denied and server-error pages end the wait at once with their category; a
        page that stays blank ends it as ``bot_rejected`` after ``waits.blank_page`` seconds,
        or, on the sign-on (``sign_on``), after ``waits.sign_on_challenge`` seconds, the time
        a bot-protection challenge may take (the wait is that much longer, too).
        """
        driver = self._browser()
        watch = {**expected, "__denied": "access_denied", "__error": "server_error"}
        grace = self.settings.wait("sign_on_challenge" if sign_on else "blank_page")
        blank_since: list[float] = []

        def first_present(d: WebDriver) -> str | bool:
            try:
                for name, key in watch.items():
                    if self._shows(d, key):
                        return name
                if d.execute_script(_BLANK_JS):
                    blank_since[:] = blank_since or [time.monotonic()]
                    if time.monotonic() - blank_since[0] >= grace:
                        return "__blank"
                else:
                    blank_since.clear()
            except TimeoutException:
                raise
            except WebDriverException:
                pass  # a document being replaced; look again at the next poll
            return False

        limit = self.timeout + (grace if sign_on else 0)
        try:
            found = WebDriverWait(driver, limit, poll_frequency=0.05,
                                  ignored_exceptions=(StaleElementReferenceException,)).until(first_present)
        except TimeoutException:
            status = self._document_status()
            if status is not None and status >= 500:  # a bare error page, without a title to recognise
                raise unavailable(f"{page}: HTTP {status} at {url_path(driver.current_url)}") from None
            loading = driver.execute_script("return document.readyState") != "complete"
            if loading:
                raise unavailable(f"{page}: the page did not finish loading within {limit:g} s") from None
            if blank_since:
                found = "__blank"
            else:
                # what the page says instead, to tell a changed page from a stray one (innerText holds no
                # field's value, so no typed credential)
                shown = " ".join(str(driver.execute_script(
                    "return document.body ? document.body.innerText : ''") or "").split())[:100]
                raise ExportFormatError(f"{page}: none of the expected parts ({', '.join(expected)}) is on the "
                                        f"page (title {driver.title!r}, path {url_path(driver.current_url)}, "
                                        f"HTTP {status or 'unknown'}, text {shown!r})") from None
        if found == "__denied":
            raise CollectionError("bot_rejected", f"{page}: the portal answered 'Access Denied' at "
                                                  f"{url_path(driver.current_url)}")
        if found == "__blank":
            raise CollectionError("bot_rejected", f"{page}: the portal answered a blank page at "
                                                  f"{url_path(driver.current_url)} (bot protection)")
        if found == "__error":
            raise unavailable(f"{page}: the portal answered {driver.title!r} at {url_path(driver.current_url)}")
        return str(found)

    def _mark_document(self) -> None:
        self.driver.execute_script("window.__portalSessionMark = true;")

    def _wait_for_next_document(self, page: str) -> None:
        """Wait until the browser shows a new document after a click that submits a form.

        Chromedriver's staleness check fails with inspector errors mid-navigation, so the
        old document is recognised by a mark set on its window instead. Each look runs a
        script, which chromedriver holds while the submitted form's navigation is pending:
        the script timeout is set to this wait's own (an in-page fetch batch may have left
        minutes), so no single look outlasts it.
        """
        self.driver.set_script_timeout(self.timeout)

        def left(d: WebDriver) -> bool:
            try:
                return d.execute_script("return window.__portalSessionMark !== true;")
            except TimeoutException:
                raise
            except WebDriverException:
                return False  # the old document is going away

        try:
            WebDriverWait(self.driver, self.timeout, poll_frequency=0.05).until(left)
        except TimeoutException:
            raise unavailable(f"{page}: the portal did not answer the form within {self.timeout:g} s") from None
