"""What every Coupang portal session shares: sign-on, page waits, HTTP with the browser's cookies, artifacts."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import logging
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode, urlsplit

import requests
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal.browser import open_browser

log = logging.getLogger(__name__)

Locator = tuple[str, str]

# The sign-on (Keycloak, realm 'seller', shared by Supplier Hub and Wing) and the pages any
# step may land on instead of the one asked for. Each portal's table starts with these.
SIGN_ON_SELECTORS: dict[str, Locator] = {
    # The page also holds a 가입하기 form, so the submit button is looked up inside the form
    # that holds the password field.
    "sign_on.form": (By.XPATH, "//form[.//input[@name='password']]"),
    "sign_on.username": (By.CSS_SELECTOR, "input[name='username']"),
    "sign_on.password": (By.CSS_SELECTOR, "input[name='password']"),
    "sign_on.submit": (By.CSS_SELECTOR, "button[type='submit'], input[type='submit']"),
    "sign_on.error": (By.CSS_SELECTOR, ".alert-error, .kc-feedback-text, #input-error"),
    "sign_on.sms_code": (By.XPATH, "//input[contains(@placeholder, '인증') or contains(@placeholder, 'code')"
                                   " or contains(@placeholder, 'Code') or @autocomplete='one-time-code']"),
    "access_denied": (By.XPATH, "//h1[contains(., 'Access Denied')]"),
    "server_error": (By.XPATH, "/html/head/title[contains(., 'Internal Server Error') or contains(., 'Bad Gateway')"
                               " or contains(., 'Service Unavailable') or contains(., 'Gateway Timeout')]"),
}
SIGN_ON_PATH = "/auth/realms/seller/protocol/openid-connect/auth"

# Reads a whole table in one round trip: per-cell WebDriver calls cost a few ms each.
_READ_TABLE_JS = """
const table = arguments[0];
const text = (el) => el.textContent.replace(/\\s+/g, ' ').trim();
const heads = Array.from(table.querySelectorAll('thead th')).map(text);
const rows = Array.from(table.querySelectorAll('tbody tr')).map(
    (tr) => Array.from(tr.cells).map((td) => [text(td), td.colSpan]));
return [heads, rows];
"""
# Run before any screenshot or page dump, so no credential can end up in an artifact.
_CLEAR_CREDENTIALS_JS = """
document.querySelectorAll("input[type=password], input[name=password], input[name=username]").forEach((e) => {
    e.value = ''; e.setAttribute('value', '');
});
"""
# One round trip for a page and, optionally, the file it links to: the page's own fetch()
# sends the request with the browser's session (cookies, headers, TLS: what bot
# protection sees), and the browser's DOMParser reads the answer; nothing is rendered.
# About ten times faster than navigating to each page, and nothing leaves the browser
# but the answer. Selectors are the selector table's (CSS or XPath).
_FETCH_JS = """
const [urls, probes, follow, timeoutMs, done] = arguments;
const get = async (u) => {
    const r = await fetch(u, {credentials: 'include', signal: AbortSignal.timeout(timeoutMs)});
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
const one = async (url) => {
    const page = await get(url);
    const found = {};
    if (probes.length && page.type.includes('html')) {
        const charset = (/charset=([^;]+)/i.exec(page.type) || [null, 'utf-8'])[1].trim();
        const doc = new DOMParser().parseFromString(new TextDecoder(charset).decode(page.bytes), 'text/html');
        for (const [key, by, value] of probes) {
            const el = find(doc, by, value);
            if (!el) continue;
            const href = el.getAttribute ? el.getAttribute('href') : null;
            found[key] = {text: (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 300),
                          href: href ? new URL(href, page.url).href : null};
        }
    }
    delete page.bytes;
    const link = follow && found[follow] && found[follow].href;
    const file = link && page.status < 400 ? await get(link) : null;
    if (file) delete file.bytes;
    return {page, found, file};
};
Promise.all(urls.map((url) => one(url).catch((e) => ({error: `${e.name}: ${e.message}`})))).then(done);
"""
# One XHR as the page's own scripts make it (method, URL, a JSON body or null, extra headers).
_CALL_JS = """
const [method, url, body, extra, timeoutMs, done] = arguments;
const headers = Object.assign({'Accept': 'application/json, text/plain, */*'}, extra);
if (body !== null) headers['Content-Type'] = 'application/json';
fetch(url, {method, credentials: 'include', headers, body: body === null ? undefined : JSON.stringify(body),
            signal: AbortSignal.timeout(timeoutMs)})
    .then(async (r) => {
        const bytes = new Uint8Array(await r.arrayBuffer());
        let raw = '';
        for (let i = 0; i < bytes.length; i += 0x8000) {
            raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        done({status: r.status, url: r.url, type: r.headers.get('content-type') || '', body: btoa(raw)});
    })
    .catch((e) => done({error: `${e.name}: ${e.message}`}));
"""
MAX_RELOGINS = 1


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
    found: dict[str, dict[str, str | None]] = field(default_factory=dict)  # selector key -> text, href

    @classmethod
    def of(cls, raw: Mapping[str, Any], found: Mapping[str, Any] | None = None) -> Fetched:
        return cls(int(raw["status"]), str(raw["url"]), str(raw["type"]), base64.b64decode(raw["body"]),
                   dict(found or {}))


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
        missing = [h for h in required if h not in heads]
        if missing:
            raise ExportFormatError(f"{self.name}: the table lacks the column(s) {', '.join(missing)}; "
                                    f"it has {', '.join(h for h in heads if h)}")
        out = []
        for cells in rows:
            if len(cells) == 1 and cells[0][1] > 1:
                continue  # the '조회된 데이터가 없습니다' row spans the whole table
            if len(cells) != len(heads):
                raise ExportFormatError(f"{self.name}: a row has {len(cells)} cells under {len(heads)} headers")
            out.append({h: text for h, (text, _) in zip(heads, cells, strict=True) if h})
        return out


class SignOnPage(Page):
    """The Keycloak sign-on form (xauth.coupang.com, realm 'seller')."""

    name = "sign-on page"

    def submit(self, username: str, password: str) -> WebElement:
        """Fill in and submit the login form; returns the form, to wait for it to go stale."""
        form = self.find("sign_on.form")
        for key, value in (("sign_on.username", username), ("sign_on.password", password)):
            field = self.find(key, form)
            # A remembered value must go first; asked as a yes/no, so the value itself is never
            # read back (it would be in the driver's debug log). clear() costs a round trip.
            if self.driver.execute_script("return arguments[0].value !== '';", field):
                field.clear()
            field.send_keys(value)
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

    Subclasses name the portal and give its selector table (starting with
    ``SIGN_ON_SELECTORS``, plus a ``home.nav`` part every signed-on page shows) and paths.
    Messages and logs name pages, URL paths and counts, never the username or password.
    """

    portal_name: ClassVar[str] = "the portal"  # in messages and logs
    artifact_prefix: ClassVar[str] = "portal"  # file names of failure artifacts
    client_id: ClassVar[str] = ""  # the Keycloak client of the portal
    selectors: ClassVar[Mapping[str, Locator]] = SIGN_ON_SELECTORS
    home_path: ClassVar[str] = "/"

    def __init__(self, *, base_url: str, username: str, password: str, download_dir: Path,
                 sso_url: str | None = None, timeout: float = 20.0, artifacts_dir: Path | None = None,
                 driver_factory: Callable[[Path], WebDriver] = open_browser):
        self.base_url = base_url.rstrip("/")
        self.sso_url = sso_url.rstrip("/") if sso_url else None
        self._username, self._password = username, password
        self.download_dir = Path(download_dir)
        self.timeout = timeout
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
        self._driver_factory = driver_factory
        self.driver: WebDriver | None = None
        self._relogins = 0

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
        if driver is not None:
            try:
                driver.quit()
            except WebDriverException as exc:
                log.warning("quitting the browser failed: %s", (exc.msg or "").splitlines()[:1])

    def _browser(self) -> WebDriver:
        if self.driver is None:
            self.download_dir.mkdir(parents=True, exist_ok=True)
            self.driver = self._driver_factory(self.download_dir)
            self.driver.set_page_load_timeout(self.timeout)
        return self.driver

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

    def _wait_for(self, page: str, expected: Mapping[str, str]) -> str:
        """Wait until one of the ``expected`` selector keys shows; returns its name.

        The access-denied and server-error pages end the wait at once with their category.
        """
        driver = self._browser()
        watch = {**expected, "__denied": "access_denied", "__error": "server_error"}

        def first_present(d: WebDriver) -> str | bool:
            try:
                for name, key in watch.items():
                    if d.find_elements(*self.selectors[key]):
                        return name
            except TimeoutException:
                raise
            except WebDriverException:
                pass  # a document being replaced; look again at the next poll
            return False

        try:
            found = WebDriverWait(driver, self.timeout, poll_frequency=0.05,
                                  ignored_exceptions=(StaleElementReferenceException,)).until(first_present)
        except TimeoutException:
            status = self._document_status()
            if status is not None and status >= 500:  # a bare error page, without a title to recognise
                raise unavailable(f"{page}: HTTP {status} at {url_path(driver.current_url)}") from None
            loading = driver.execute_script("return document.readyState") != "complete"
            if loading:
                raise unavailable(f"{page}: the page did not finish loading within {self.timeout:g} s") from None
            raise ExportFormatError(f"{page}: none of the expected parts ({', '.join(expected)}) is on the page "
                                    f"(title {driver.title!r}, path {url_path(driver.current_url)})") from None
        if found == "__denied":
            raise CollectionError("bot_rejected", f"{page}: the portal answered 'Access Denied' at "
                                                  f"{url_path(driver.current_url)}")
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
        """Open a portal page; signs on again once if the session was lost on the way."""
        while True:
            self._get(url, page)
            found = self._wait_for(page, {**expected, "__sign_on": "sign_on.form"})
            if found != "__sign_on":
                return found
            self._count_relogin(f"{page} ({url_path(url)})")
            self._sign_on_here(page)

    def _count_relogin(self, what: str) -> None:
        """Allow one new sign-on per session when the portal drops it; more means trouble."""
        if self._relogins >= MAX_RELOGINS:
            raise unavailable(f"{what}: the portal sent the browser to the sign-on page again; "
                              "the session keeps expiring")
        self._relogins += 1
        log.info("%s: the session expired; signing on again", what)

    def _accept_alert(self) -> None:
        # A real page may ask for confirmation in a confirm() box; the sandbox does not.
        try:
            self.driver.switch_to.alert.accept()
        except NoAlertPresentException:
            pass

    # --- sign-on -----------------------------------------------------------------------

    @step("login")
    def login(self) -> None:
        """Sign on; raises CollectionError auth_challenge, bad_credentials, bot_rejected or
        portal_unavailable, or a refusal of the portal's own (see ``_sign_on_refusals``)."""
        if self.sso_url:
            url = f"{self.sso_url}{SIGN_ON_PATH}?" + urlencode(
                {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.base_url + self.home_path,
                 "scope": "openid"})
        else:
            url = self.base_url + self.home_path  # the portal sends an anonymous browser to the sign-on
        log.info("signing on to %s at %s", self.portal_name, url_path(url))
        self._get(url, "sign-on")
        if self._wait_for("sign-on", {"home": "home.nav", "form": "sign_on.form"}) == "home":
            self._signed_on()
            return
        self._sign_on_here("sign-on")

    def _sign_on_refusals(self) -> Mapping[str, str]:
        """Pages of the portal's own that end a sign-on (outcome name -> selector key)."""
        return {}

    def _refused(self, outcome: str) -> CollectionError:
        """The error of a refusal named in ``_sign_on_refusals``."""
        raise NotImplementedError(f"{type(self).__name__} names the sign-on refusal {outcome!r} without its error")

    def _signed_on(self) -> None:
        """Called on the first portal page after each sign-on."""

    def _sign_on_here(self, page: str) -> None:
        """Submit the credentials on the sign-on page the browser shows, and judge the outcome."""
        self._mark_document()
        SignOnPage(self.driver, self.selectors).submit(self._username, self._password)
        self._wait_for_next_document(page)
        status = self._document_status()
        if status is not None and status >= 500:
            raise unavailable(f"{page}: the sign-on answered HTTP {status} at {url_path(self.driver.current_url)}")
        refusals = self._sign_on_refusals()
        # Every portal page carries the menu, so 'home' also covers a re-login that lands
        # on the page asked for; it goes before the refusals, whose texts a portal page may
        # also hold (부계정 관리 mentions 만료).
        found = self._wait_for(page, {
            "home": "home.nav",
            **refusals,
            "sms": "sign_on.sms_code",
            "error": "sign_on.error",
            "again": "sign_on.form",  # after 'error': the page with the error message holds the form too
        })
        if found in refusals:
            raise self._refused(found)
        if found == "sms":
            raise CollectionError("auth_challenge",
                                  f"{self.portal_name} asked for SMS verification (인증번호) after the password")
        if found == "error":
            shown = self._scrub(SignOnPage(self.driver, self.selectors).error_text())
            raise CollectionError("bad_credentials", f"{self.portal_name} rejected the sign-on: {shown!r}")
        if found == "again":
            raise unavailable(f"{page}: the portal sent the browser back to the sign-on page right after "
                              "signing on")
        self._signed_on()
        log.info("signed on to %s", self.portal_name)

    def _sign_on_again(self) -> None:
        """Sign on anew in the browser after a plain HTTP call found the session gone."""
        self._get(self.base_url + self.home_path, "home")
        if self._wait_for("home", {"home": "home.nav", "form": "sign_on.form"}) == "form":
            self._sign_on_here("home")

    # --- fetches inside the signed-on page --------------------------------------------

    def _fetch_in_page(self, urls: Sequence[str], what: Sequence[str], *, probes: Sequence[str] = (),
                       follow: str | None = None) -> list[tuple[Fetched, Fetched | None]]:
        """GET each of ``urls`` from inside the signed-on page, all at once; returns, in order,
        each page and, if ``follow`` names a probed selector with a link, the file it links to.

        ``what`` names each request in messages. ``probes`` are selector keys looked up in
        each answer (``Fetched.found``). Signs on again once if the portal sends a request
        to the sign-on, then fetches them all again; a timeout, a network error or a 5xx is
        ``portal_unavailable``, an 'Access Denied' answer ``bot_rejected``.
        """
        probe_list = [[key, *self.selectors[key]] for key in (*probes, "sign_on.form")]
        while True:
            driver = self._browser()
            driver.set_script_timeout(self.timeout + 5)  # the fetches time out first, with a clear error
            try:
                answers = driver.execute_async_script(_FETCH_JS, list(urls), probe_list, follow,
                                                      int(self.timeout * 1000))
            except TimeoutException:
                raise unavailable(f"{what[0]}: no answer within {self.timeout:g} s") from None
            results: list[tuple[Fetched, Fetched | None]] = []
            for name, raw in zip(what, answers, strict=True):
                error = raw.get("error")
                if error and error.startswith(("TimeoutError", "AbortError")):
                    raise unavailable(f"{name}: no answer within {self.timeout:g} s")
                if error:
                    raise unavailable(f"{name}: the request failed ({error[:200]})")
                page = Fetched.of(raw["page"], raw["found"])
                results.append((page, Fetched.of(raw["file"]) if raw.get("file") else None))
            lost = [name for name, (page, file) in zip(what, results, strict=True)
                    if "sign_on.form" in page.found or any(SIGN_ON_PATH in f.url for f in (page, file) if f)]
            if not lost:
                break
            self._count_relogin(lost[0])
            self._sign_on_again()
        for name, pair in zip(what, results, strict=True):
            for answer in (a for a in pair if a is not None):
                if answer.status >= 500:
                    raise unavailable(f"{name}: HTTP {answer.status} at {url_path(answer.url)}")
                if answer.status == 403 and b"Access Denied" in answer.body[:2000]:
                    raise CollectionError("bot_rejected", f"{name}: the portal answered 'Access Denied'")
        return results

    def _call_in_page(self, method: str, url: str, what: str, *, body: Any = None,
                      headers: Mapping[str, str] | None = None) -> Fetched:
        """One XHR from inside the signed-on page, as the portal's own scripts make it: ``fetch`` with the
        browser's credentials, ``body`` sent as JSON. Signs on again once if the portal sends the call to
        the sign-on (then calls again); a timeout, a network error or a 5xx is ``portal_unavailable``, an
        'Access Denied' answer ``bot_rejected``. Other statuses are the caller's to judge."""
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
            answer = Fetched.of(raw)
            if SIGN_ON_PATH not in answer.url:
                break
            self._count_relogin(what)
            self._sign_on_again()
        if answer.status >= 500:
            raise unavailable(f"{what}: HTTP {answer.status}")
        if answer.status == 403 and b"Access Denied" in answer.body[:2000]:
            raise CollectionError("bot_rejected", f"{what}: the portal answered 'Access Denied'")
        return answer

    # --- plain HTTP with the browser's session --------------------------------------------

    def _http(self) -> requests.Session:
        http = requests.Session()
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in self.driver.get_cookies())
        http.headers.update({"Cookie": cookies,
                             "User-Agent": self.driver.execute_script("return navigator.userAgent"),
                             "Referer": self.driver.current_url})
        return http

    def _request(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """One HTTP call with the browser's cookies (faster than the browser); signs on again once
        if the portal sends it to the sign-on, and turns 5xx, timeouts and bot walls into their category."""
        while True:
            try:
                response = self._http().request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
            except requests.Timeout:
                raise unavailable(f"{what}: no answer within {self.timeout:g} s") from None
            except requests.RequestException as exc:
                raise unavailable(f"{what}: {type(exc).__name__}") from None
            lost_session = response.is_redirect and SIGN_ON_PATH in response.headers.get("location", "")
            if not lost_session:
                break
            self._count_relogin(what)
            self._sign_on_again()
        if response.status_code >= 500:
            raise unavailable(f"{what}: HTTP {response.status_code}")
        if response.status_code == 403 and "Access Denied" in response.text[:2000]:
            raise CollectionError("bot_rejected", f"{what}: the portal answered 'Access Denied'")
        return response

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
