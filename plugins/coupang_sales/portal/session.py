"""What every Coupang portal session shares: sign-on, page waits, HTTP with the browser's cookies, artifacts."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import json
import logging
import re
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.settings import Locator, PortalSettings, load_settings, locator

log = logging.getLogger(__name__)

# The sign-on's selectors as packaged for the real site (portal/sign_on.json); a session
# uses its settings' (coupang_sales.portal.settings), which a deployment may override.
SIGN_ON_SELECTORS: dict[str, Locator] = {
    key: locator(value) for key, value in
    json.loads((Path(__file__).with_name("sign_on.json")).read_text(encoding="utf-8"))["selectors"].items()}
# Keycloak's path on xauth.coupang.com; the client never builds a URL with it (the chain
# starts at the portal's home), it only recognises it.
SIGN_ON_PATH = "/auth/realms/seller/protocol/openid-connect/auth"
LANDED = "@landed"  # a pseudo selector key: the portal's landing rule holds
ON_PORTAL = "@portal"  # a pseudo selector key: a loaded page of the portal's host without a password field

# Reads a whole table in one round trip: per-cell WebDriver calls cost a few ms each.
_READ_TABLE_JS = """
const table = arguments[0];
const text = (el) => el.textContent.replace(/\\s+/g, ' ').trim();
const heads = Array.from(table.querySelectorAll('thead th')).map(text);
const rows = Array.from(table.querySelectorAll('tbody tr')).map(
    (tr) => Array.from(tr.cells).map((td) => [text(td), td.colSpan]));
return [heads, rows];
"""
# True when the document has loaded and shows nothing at all: what bot protection serves
# some browsers instead of a page (a JavaScript challenge looks the same while it runs).
_BLANK_JS = """
const b = document.body;
if (document.readyState !== 'complete') return false;
if (!b) return true;
return b.innerText.trim() === '' && !b.querySelector(':not(script):not(style):not(noscript):not(meta):not(link)');
"""
# Run before any screenshot or page dump, so no credential (nor an SMS code) can end up in an artifact.
_CLEAR_CREDENTIALS_JS = """
document.querySelectorAll("input[type=password], input[name=password], input[name=username], "
    + "input[autocomplete=one-time-code], input[name=code]").forEach((e) => {
    e.value = ''; e.setAttribute('value', '');
});
"""
# One round trip for a page and, optionally, the file it links to: the page's own fetch()
# sends the request with the browser's session (cookies, headers, TLS: what bot
# protection sees), and the browser's DOMParser reads the answer; nothing is rendered.
# About ten times faster than navigating to each page, and nothing leaves the browser
# but the answer. Selectors are the selector table's (CSS or XPath). Redirects are not
# followed: none of the pages and files asked for redirects while signed on, and signed out
# the live sites redirect across origins (to Keycloak, or Wing's API to its help site), where
# a followed fetch only fails as 'TypeError: Failed to fetch' (REAL-PORTALS.md §6). An opaque
# redirect is therefore read as "signed out" (OH does the same).
_FETCH_JS = """
const [urls, probes, follow, timeoutMs, tables, done] = arguments;
const get = async (u) => {
    const r = await fetch(u, {credentials: 'include', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs)});
    if (r.type === 'opaqueredirect' || (r.status >= 300 && r.status < 400)) return {signedOut: true, url: u};
    const bytes = new Uint8Array(await r.arrayBuffer());
    let raw = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
        raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return {status: r.status, url: r.url, type: r.headers.get('content-type') || '', body: btoa(raw), bytes};
};
const find = (doc, by, value) => by === 'xpath'
    ? doc.evaluate(value, doc, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue
    : doc.querySelector(value);
const text = (el) => el.textContent.replace(/\\s+/g, ' ').trim();
const one = async (url) => {
    const page = await get(url);
    if (page.signedOut) return {signedOut: true};
    const found = {};
    const read = {};
    page.blank = false;
    if (page.type.includes('html')) {
        const charset = (/charset=([^;]+)/i.exec(page.type) || [null, 'utf-8'])[1].trim();
        const doc = new DOMParser().parseFromString(new TextDecoder(charset).decode(page.bytes), 'text/html');
        for (const [key, by, value] of probes) {
            const el = find(doc, by, value);
            if (!el) continue;
            const href = el.getAttribute ? el.getAttribute('href') : null;
            found[key] = {text: (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 300),
                          href: href ? new URL(href, page.url).href : null,
                          value: el.getAttribute ? el.getAttribute('value') : null};
        }
        for (const [key, by, value] of tables) {
            const table = find(doc, by, value);
            if (!table) continue;
            read[key] = [Array.from(table.querySelectorAll('thead th')).map(text),
                         Array.from(table.querySelectorAll('tbody tr')).map(
                             (tr) => Array.from(tr.cells).map((td) => [text(td), td.colSpan]))];
        }
        const b = doc.body;
        page.blank = !b || (b.textContent.trim() === ''
            && !b.querySelector(':not(script):not(style):not(noscript):not(meta):not(link)'));
    }
    delete page.bytes;
    const link = follow && found[follow] && found[follow].href;
    const file = link && page.status < 400 ? await get(link) : null;
    if (file && file.signedOut) return {signedOut: true};
    if (file) delete file.bytes;
    return {page, found, file, tables: read};
};
Promise.all(urls.map((url) => one(url).catch((e) => ({error: `${e.name}: ${e.message}`})))).then(done);
"""
# One XHR as the page's own scripts make it (method, URL, a JSON body or null, extra headers);
# a redirect is "signed out", as in _FETCH_JS.
_CALL_JS = """
const [method, url, body, extra, timeoutMs, done] = arguments;
const headers = Object.assign({'Accept': 'application/json, text/plain, */*'}, extra);
if (body !== null) headers['Content-Type'] = 'application/json';
fetch(url, {method, credentials: 'include', headers, body: body === null ? undefined : JSON.stringify(body),
            redirect: 'manual', signal: AbortSignal.timeout(timeoutMs)})
    .then(async (r) => {
        if (r.type === 'opaqueredirect' || (r.status >= 300 && r.status < 400)) return done({signedOut: true});
        const bytes = new Uint8Array(await r.arrayBuffer());
        let raw = '';
        for (let i = 0; i < bytes.length; i += 0x8000) {
            raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        done({status: r.status, url: r.url, type: r.headers.get('content-type') || '', body: btoa(raw)});
    })
    .catch((e) => done({error: `${e.name}: ${e.message}`}));
"""


def unavailable(message: str) -> CollectionError:
    return CollectionError("portal_unavailable", message)


def url_path(url: str) -> str:
    """A URL reduced to its path, the only part that goes into messages."""
    return urlsplit(url).path or "/"


@dataclass(frozen=True)
class Fetched:
    """One answer of an in-page fetch: status, final URL (after redirects), content type, body."""

    status: int
    url: str
    content_type: str
    body: bytes
    found: dict[str, dict[str, str | None]] = field(default_factory=dict)  # selector key -> text, href, value
    tables: dict[str, list] = field(default_factory=dict)  # selector key -> [headers, rows of [text, colspan]]
    blank: bool = False  # an HTML answer that shows nothing: a bot wall

    @classmethod
    def of(cls, raw: Mapping[str, Any], found: Mapping[str, Any] | None = None,
           tables: Mapping[str, Any] | None = None) -> Fetched:
        return cls(int(raw["status"]), str(raw["url"]), str(raw["type"]), base64.b64decode(raw["body"]),
                   dict(found or {}), dict(tables or {}), bool(raw.get("blank")))


# --- page objects ------------------------------------------------------------------------


class Page:
    """A page of a portal, finding its parts through the portal's selector table."""

    name = "page"

    def __init__(self, driver: WebDriver, selectors: Mapping[str, Locator]):
        self.driver = driver
        self.selectors = selectors

    def find_all(self, key: str, within: WebElement | WebDriver | None = None) -> list[WebElement]:
        return (within or self.driver).find_elements(*self.selectors[key])

    def find(self, key: str, within: WebElement | WebDriver | None = None) -> WebElement:
        found = self.find_all(key, within)
        if not found:
            raise ExportFormatError(f"{self.name}: the page has no {key.split('.')[-1]} ({self.selectors[key][1]})")
        return found[0]

    def count(self, key: str) -> int:
        """A number shown as text ('총 1,234건'), as the total row count of a table."""
        text = self.find(key).text
        digits = re.sub(r"[^\d]", "", text)
        if not digits:
            raise ExportFormatError(f"{self.name}: the {key.split('.')[-1]} reads {text!r}, not a number")
        return int(digits)

    def read_table(self, key: str, required: tuple[str, ...]) -> list[dict[str, str]]:
        """The rows of a table keyed by header text, after checking the required headers."""
        heads, rows = self.driver.execute_script(_READ_TABLE_JS, self.find(key))
        return table_rows(self.name, heads, rows, required)


def table_rows(name: str, heads: list[str], rows: list, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of [text, colspan] cells keyed by header text (columns without a header dropped),
    after checking the ``required`` headers are there."""
    missing = [h for h in required if h not in heads]
    if missing:
        raise ExportFormatError(f"{name}: the table lacks the column(s) {', '.join(missing)}; "
                                f"it has {', '.join(h for h in heads if h)}")
    out = []
    for cells in rows:
        if len(cells) == 1 and cells[0][1] > 1:
            continue  # the '조회된 데이터가 없습니다' row spans the whole table
        if len(cells) != len(heads):
            raise ExportFormatError(f"{name}: a row has {len(cells)} cells under {len(heads)} headers")
        out.append({h: text for h, (text, _) in zip(heads, cells, strict=True) if h})
    return out


class SignOnPage(Page):
    """The Keycloak sign-on form (xauth.coupang.com, realm 'seller')."""

    name = "sign-on page"

    def __init__(self, driver: WebDriver, selectors: Mapping[str, Locator], *, keystroke_seconds: float = 0.0):
        super().__init__(driver, selectors)
        self.keystroke_seconds = keystroke_seconds

    def submit(self, username: str, password: str) -> WebElement:
        """Fill in and submit the login form, a key every ``keystroke_seconds`` (``waits.keystroke``: a
        person's pace, ~110 ms as LM types; bot sensors time the keys); returns the form."""
        form = self.find("sign_on.form")
        for key, value in (("sign_on.username", username), ("sign_on.password", password)):
            field = self.find(key, form)
            # A remembered value must go first; asked as a yes/no, so the value itself is never
            # read back (it would be in the driver's debug log). clear() costs a round trip.
            if self.driver.execute_script("return arguments[0].value !== '';", field):
                field.clear()
            if self.keystroke_seconds <= 0:
                field.send_keys(value)
                continue
            # One W3C actions call: the browser types each key and pauses between them itself.
            keys = ActionChains(self.driver).click(field)
            for char in value:
                keys.send_keys(char).pause(self.keystroke_seconds)
            keys.perform()
        self.find("sign_on.submit", form).click()
        return form

    def error_text(self) -> str:
        found = self.find_all("sign_on.error")
        return found[0].text.strip() if found else ""


# --- the session -------------------------------------------------------------------------

T = TypeVar("T")


def step(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn browser failures of one step into CollectionErrors and keep artifacts of any failure."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: PortalSession, *args: Any, **kwargs: Any) -> T:
            try:
                return method(self, *args, **kwargs)
            except CollectionError:
                self._save_artifacts(name)
                raise
            except TimeoutException:
                self._save_artifacts(name)
                raise unavailable(f"{name}: {self.portal_name} did not answer within {self.timeout:g} s") from None
            except WebDriverException as exc:
                self._save_artifacts(name)
                first_line = (exc.msg or type(exc).__name__).splitlines()[0]
                raise unavailable(f"{name}: browser error: {first_line}") from None
            except Exception:
                self._save_artifacts(name)
                raise

        return wrapper

    return decorate


class PortalSession:
    """One browser session on a portal behind the shared sign-on; a context manager that always quits the browser.

    Subclasses name the portal (``settings_portal``: whose packaged settings to load) and may
    add selectors of their own (``code_selectors``); the session's ``settings``
    (``coupang_sales.portal.settings``) win over them. The sign-on starts at the portal's
    home and follows its redirects; "signed on" is the portal's landing rule (its host, a
    landing path, no password field, and one of the landing markers if any are set).
    Messages and logs name pages, URL paths and counts, never the username or password.
    """

    portal_name: ClassVar[str] = "the portal"  # in messages and logs
    artifact_prefix: ClassVar[str] = "portal"  # file names of failure artifacts
    settings_portal: ClassVar[str] = ""  # supplier_hub | wing
    code_selectors: ClassVar[Mapping[str, Locator]] = {}

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 settings: PortalSettings | None = None, timeout: float | None = None,
                 artifacts_dir: Path | None = None, driver_factory: Callable[[Path], WebDriver] = open_browser,
                 profile: Any = None, sign_in_command: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.settings = settings or load_settings(self.settings_portal)
        if self.settings.portal != self.settings_portal:
            raise CollectionError("configuration_error", f"{self.portal_name} was given the settings of "
                                                         f"{self.settings.portal}")
        self.selectors: dict[str, Locator] = {**self.code_selectors, **self.settings.selectors}
        self._username, self._password = username, password
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
                    if key == LANDED:
                        if self._landed(d):
                            return name
                    elif key == ON_PORTAL:
                        if self._on_portal(d):
                            return name
                    elif d.find_elements(*self.selectors[key]):
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
                raise ExportFormatError(f"{page}: none of the expected parts ({', '.join(expected)}) is on the "
                                        f"page (title {driver.title!r}, path {url_path(driver.current_url)})") from None
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
        old document is recognised by a mark set on its window instead.
        """

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
        # A real page may ask for confirmation in a confirm() box; the sandbox does not.
        try:
            self.driver.switch_to.alert.accept()
        except NoAlertPresentException:
            pass

    # --- sign-on -----------------------------------------------------------------------

    @step("login")
    def login(self) -> None:
        """Sign on from the portal's home, following its redirects (never a hand-built sign-on URL);
        raises CollectionError auth_challenge, bad_credentials, bot_rejected or portal_unavailable,
        or a refusal of the portal's own (see ``_sign_on_refusals``)."""
        url = self.base_url + self.settings.path("home")
        log.info("signing on to %s from %s", self.portal_name, url_path(url))
        self._get(url, "sign-on")
        if self._wait_for("sign-on", {"home": LANDED, "form": "sign_on.form"}, sign_on=True) == "home":
            self._signed_on()
            return
        self._sign_on_here("sign-on")

    def resume(self) -> bool:
        """True when the profile is still signed on (the portal's home lands, perhaps renewed by a live
        single-sign-on session, which costs no password); False when only a password would sign on.
        Never submits the password: the caller decides whether a sign-on is worth it."""
        url = self.base_url + self.settings.path("home")
        self._get(url, "sign-on")
        if self._wait_for("sign-on", {"home": LANDED, "form": "sign_on.form"}, sign_on=True) == "home":
            self._signed_on()
            return True
        return False

    def _sign_on_refusals(self) -> Mapping[str, str]:
        """Pages of the portal's own that end a sign-on (outcome name -> selector key)."""
        return {}

    def _refused(self, outcome: str) -> CollectionError:
        """The error of a refusal named in ``_sign_on_refusals``."""
        raise NotImplementedError(f"{type(self).__name__} names the sign-on refusal {outcome!r} without its error")

    def _signed_on(self) -> None:
        """Called on the first portal page after each sign-on."""

    @step("login")
    def sign_in(self, ask_code: Callable[[], str], *, attempts: int = 3) -> bool:
        """A person-assisted sign-on (``python -m coupang_sales.sign_in``): like ``login()``, but an
        SMS step asks ``ask_code`` for the code (up to ``attempts`` times) instead of failing, so the
        profile becomes a device the portal knows. False if the profile was still signed on."""
        url = self.base_url + self.settings.path("home")
        self._get(url, "sign-on")
        if self._wait_for("sign-on", {"home": LANDED, "form": "sign_on.form"}, sign_on=True) == "home":
            self._signed_on()
            return False
        self._sign_on_here("sign-on", ask_code=ask_code, attempts=attempts)
        return True

    def _sign_on_here(self, page: str, *, anywhere: bool = False, ask_code: Callable[[], str] | None = None,
                      attempts: int = 3) -> None:
        """Submit the credentials on the sign-on page the browser shows, and judge the outcome.

        Signed on is the landing rule; with ``anywhere`` (a renewal that returns to the page
        asked for) any loaded page of the portal's host without a password field. An SMS step
        is ``auth_challenge`` unless ``ask_code`` (a person) gives the code."""
        self._mark_document()
        self.sign_ons += 1
        if self.profile is not None:
            self.profile.note_password_sign_on()
        log.info("submitting the password on the sign-on page (sign-on %d of this session)", self.sign_ons)
        SignOnPage(self.driver, self.selectors, keystroke_seconds=self.settings.wait("keystroke")).submit(
            self._username, self._password)
        self._wait_for_next_document(page)
        for attempt in range(attempts + 1):
            found = self._sign_on_outcome(page, anywhere=anywhere)
            if found != "sms":
                return
            if attempt == 0:
                self.sms_steps += 1
            if ask_code is None:
                hint = f" ({self.sign_in_command})" if self.sign_in_command else ""
                raise CollectionError(
                    "auth_challenge", f"{self.portal_name} asked for SMS verification (인증번호) after the password",
                    action="The portal does not know this browser profile yet: a person signs on once in it, "
                           f"entering the SMS code{hint}; later runs reuse the profile without the SMS step.")
            if attempt == attempts:
                break
            code = ask_code().strip()
            field = self.find_code_field()
            self._mark_document()
            field.clear()
            field.send_keys(code + "\n")  # Enter submits the code's form
            self._wait_for_next_document(page)
        raise CollectionError("auth_challenge", f"{self.portal_name} refused the SMS code {attempts} times")

    def find_code_field(self) -> WebElement:
        return Page(self.driver, self.selectors).find("sign_on.sms_code")

    def _sign_on_outcome(self, page: str, *, anywhere: bool) -> str:
        """After a form of the sign-on was submitted: 'home' when signed on, 'sms' at the SMS step;
        any other outcome raises its category."""
        status = self._document_status()
        if status is not None and status >= 500:
            raise unavailable(f"{page}: the sign-on answered HTTP {status} at {url_path(self.driver.current_url)}")
        refusals = self._sign_on_refusals()
        # The landing page, and with ``anywhere`` any portal page (off the realm's path), go before
        # the refusals, whose texts a portal page may also hold (부계정 관리 mentions 만료): a
        # renewal that returns to 부계정 관리 is not an expired sub-account.
        found = self._wait_for(page, {
            "home": LANDED,
            **({"page": ON_PORTAL} if anywhere else {}),
            **refusals,
            "sms": "sign_on.sms_code",
            "error": "sign_on.error",
            "again": "sign_on.form",  # after 'error': the page with the error message holds the form too
        }, sign_on=True)
        if found in refusals:
            raise self._refused(found)
        if found == "sms":
            return found
        if found == "error":
            shown = self._scrub(SignOnPage(self.driver, self.selectors).error_text())
            raise CollectionError("bad_credentials", f"{self.portal_name} rejected the sign-on: {shown!r}")
        if found == "page":
            found = "home"
        if found == "again":
            raise unavailable(f"{page}: the portal sent the browser back to the sign-on page right after "
                              "signing on")
        self._signed_on()
        log.info("signed on to %s", self.portal_name)
        return "home"

    def _sign_on_again(self) -> None:
        """Run the sign-on chain again from the portal's home after a request found the session gone:
        with Keycloak's session alive it lands without the form; else the form is filled in."""
        self._get(self.base_url + self.settings.path("home"), "home")
        if self._wait_for("home", {"home": LANDED, "form": "sign_on.form"}, sign_on=True) == "form":
            self._sign_on_here("home")
        else:
            self._signed_on()

    # --- fetches inside the signed-on page --------------------------------------------

    def _lost_session(self, answer: Fetched) -> bool:
        """An answer that is the sign-on instead of the page: the form, or another host / the realm's path."""
        parts = urlsplit(answer.url)
        return ("sign_on.form" in answer.found or parts.netloc != self.host
                or parts.path.startswith(self.settings.path("sign_on_realm")))

    def _pace(self) -> None:
        """Leave ``pacing_seconds`` between batches of requests, as people browsing do (OH: 0.2-0.7 s)."""
        last = getattr(self, "_last_fetch", None)
        if last is not None:
            left = self.settings.pacing_seconds - (time.monotonic() - last)
            if left > 0:
                time.sleep(left)
        self._last_fetch = time.monotonic()

    def _fetch_in_page(self, urls: Sequence[str], what: Sequence[str], *, probes: Sequence[str] = (),
                       follow: str | None = None, tables: Sequence[str] = ()) -> list[tuple[Fetched, Fetched | None]]:
        """GET each of ``urls`` from inside the signed-on page, all at once; returns, in order,
        each page and, if ``follow`` names a probed selector with a link, the file it links to.

        ``what`` names each request in messages. ``probes`` are selector keys looked up in
        each answer (``Fetched.found``: text, href, value), ``tables`` selector keys of tables
        read whole (``Fetched.tables``). When the portal sends a request to the sign-on, or
        the fetch fails as a stale page's does ('Failed to fetch'), the session is renewed
        from the portal's home and the batch fetched again. A timeout or a 5xx is
        ``portal_unavailable``; an 'Access Denied' or a blank page ``bot_rejected``.
        """
        probe_list = [[key, *self.selectors[key]] for key in (*probes, "sign_on.form")]
        table_list = [[key, *self.selectors[key]] for key in tables]
        while True:
            self._pace()
            driver = self._browser()
            driver.set_script_timeout(self.timeout + 5)  # the fetches time out first, with a clear error
            try:
                answers = driver.execute_async_script(_FETCH_JS, list(urls), probe_list, follow,
                                                      int(self.timeout * 1000), table_list)
            except TimeoutException:
                raise unavailable(f"{what[0]}: no answer within {self.timeout:g} s") from None
            results: list[tuple[Fetched, Fetched | None]] = []
            stale = None
            for name, raw in zip(what, answers, strict=True):
                if raw.get("signedOut"):
                    stale = stale or name  # the portal redirected: the session is gone
                    continue
                error = raw.get("error")
                if error and error.startswith(("TimeoutError", "AbortError")):
                    raise unavailable(f"{name}: no answer within {self.timeout:g} s")
                if error and error.startswith("TypeError"):
                    stale = stale or name  # 'Failed to fetch': a stale page, or a redirect to another origin
                    continue
                if error:
                    raise unavailable(f"{name}: the request failed ({error[:200]})")
                page = Fetched.of(raw["page"], raw["found"], raw.get("tables"))
                results.append((page, Fetched.of(raw["file"]) if raw.get("file") else None))
            lost = stale or next((name for name, (page, file) in zip(what, results, strict=False)
                                  if self._lost_session(page) or (file is not None and self._lost_session(file))),
                                 None)
            if lost is None:
                break
            self._count_renewal(lost)
            self._sign_on_again()
        self._renewals_in_a_row = 0
        for name, pair in zip(what, results, strict=True):
            for answer in (a for a in pair if a is not None):
                if answer.status >= 500:
                    raise unavailable(f"{name}: HTTP {answer.status} at {url_path(answer.url)}")
                if answer.status == 403 and b"Access Denied" in answer.body[:2000]:
                    raise CollectionError("bot_rejected", f"{name}: the portal answered 'Access Denied'")
                if answer.blank:
                    raise CollectionError("bot_rejected", f"{name}: the portal answered a blank page "
                                                          "(bot protection)")
        return results

    def _call_in_page(self, method: str, url: str, what: str, *, body: Any = None,
                      headers: Mapping[str, str] | None = None, server_errors: bool = False) -> Fetched:
        """One XHR from inside the signed-on page, as the portal's own scripts make it: ``fetch`` with the
        browser's credentials, ``body`` sent as JSON. Renews the session if the portal sends the call to
        the sign-on (then calls again, as ``_fetch_in_page`` does); a timeout, a network error or a 5xx
        is ``portal_unavailable`` (a 5xx is returned instead with ``server_errors``, for a caller that
        retries it), an 'Access Denied' answer ``bot_rejected``. Other statuses are the caller's to judge."""
        while True:
            driver = self._browser()
            driver.set_script_timeout(self.timeout + 5)
            try:
                raw = driver.execute_async_script(_CALL_JS, method, url, body, dict(headers or {}),
                                                  int(self.timeout * 1000))
            except TimeoutException:
                raise unavailable(f"{what}: no answer within {self.timeout:g} s") from None
            error = raw.get("error")
            if error and error.startswith(("TimeoutError", "AbortError")):
                raise unavailable(f"{what}: no answer within {self.timeout:g} s")
            if error:
                raise unavailable(f"{what}: the request failed ({error[:200]})")
            if raw.get("signedOut"):
                log.info("%s: the portal redirected the call (signed out)", what)
            else:
                answer = Fetched.of(raw)
                if not self._lost_session(answer):
                    break
            self._count_renewal(what)
            self._sign_on_again()
        self._renewals_in_a_row = 0
        if answer.status >= 500 and not server_errors:
            raise unavailable(f"{what}: HTTP {answer.status}")
        if answer.status == 403 and b"Access Denied" in answer.body[:2000]:
            raise CollectionError("bot_rejected", f"{what}: the portal answered 'Access Denied'")
        return answer

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

    def _scrub(self, text: str) -> str:
        for secret in (self._password, self._username):
            # A very short username would blank out ordinary text; passwords go whatever their length.
            if secret and (secret is self._password or len(secret) >= 3):
                text = text.replace(secret, "***")
        return text

    def _save_artifacts(self, step_name: str) -> None:
        """Screenshot and page source of a failed step, with the credential inputs emptied first.

        Each part is tried on its own: a browser stuck mid-navigation may refuse one and
        still give the other.
        """
        if self.artifacts_dir is None or self.driver is None:
            return
        driver = self.driver
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
        base = self.artifacts_dir / f"{self.artifact_prefix}_{step_name}_{stamp}"
        try:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("could not save failure artifacts of %s: %s", step_name, type(exc).__name__)
            return
        for attempt in (self._accept_alert, self._stop_loading):
            try:
                attempt()
            except WebDriverException:
                pass
        try:
            driver.execute_script(_CLEAR_CREDENTIALS_JS)
            # no screenshot of a page whose inputs may still hold credentials
            driver.save_screenshot(str(base.with_suffix(".png")))
        except WebDriverException as exc:
            log.warning("no screenshot of the failed step %s: %s", step_name, type(exc).__name__)
        try:
            base.with_suffix(".html").write_text(self._scrub(driver.page_source), encoding="utf-8")
        except (WebDriverException, OSError) as exc:
            log.warning("no page source of the failed step %s: %s", step_name, type(exc).__name__)
        log.info("saved failure artifacts of %s as %s.*", step_name, base.name)

    def _stop_loading(self) -> None:
        # A page still loading makes WebDriver commands wait for it; CDP stops it at once.
        if isinstance(self.driver, ChromiumDriver):
            self.driver.execute_cdp_cmd("Page.stopLoading", {})
        else:
            self.driver.execute_script("window.stop();")
