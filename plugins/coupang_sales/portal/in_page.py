"""Requests made from inside the signed-on page: one transport for pages, the files they link to and API calls.

The page's own ``fetch()`` sends each request with the browser's session (cookies, headers,
TLS: what bot protection sees), and the browser's DOMParser reads an HTML answer; nothing is
rendered. About ten times faster than navigating to each page, and nothing leaves the browser
but the answer. Redirects are not followed: none of the pages and calls asked for redirects
while signed on, and signed out the live sites redirect across origins (to Keycloak, or Wing's
API to its help site), where a followed fetch only fails as 'TypeError: Failed to fetch'
(REAL-PORTALS.md §6). An opaque redirect is therefore read as "signed out" (OH does the same).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from selenium.common.exceptions import TimeoutException

from coupang_sales.errors import CollectionError
from coupang_sales.portal.failures import unavailable, url_path

if TYPE_CHECKING:
    from coupang_sales.portal.settings import Locator, PortalSettings

# An HTML answer read as a document (probed, its tables read in the page) comes back with only the first
# HEAD_BYTES of its body: enough to tell a bot wall's 'Access Denied'; the rest would only cross
# WebDriver to be dropped.
HEAD_BYTES = 2000
# Each request: {method, url, body (JSON or null), headers, probes, follow, tables}. ``probes`` are
# [key, by, value] looked up in an HTML answer (text, href, value of the first match), ``tables``
# [key, by, value] of tables read whole; ``follow`` a probe key whose link is fetched too. Selectors
# are the selector table's (CSS or XPath). An answer is read as a document only when asked to probe it.
_IN_PAGE_JS = """
const [requests, timeoutMs, groupSize, pacingMs, done] = arguments;
const get = async (u, method, body, extra) => {
    const headers = Object.assign({}, extra);
    if (body !== null) headers['Content-Type'] = 'application/json';
    const r = await fetch(u, {method, credentials: 'include', headers,
                              body: body === null ? undefined : JSON.stringify(body),
                              redirect: 'manual', signal: AbortSignal.timeout(timeoutMs)});
    if (r.type === 'opaqueredirect' || (r.status >= 300 && r.status < 400)) return {signedOut: true, url: u};
    const bytes = new Uint8Array(await r.arrayBuffer());
    let raw = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
        raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return {status: r.status, url: r.url, type: r.headers.get('content-type') || '', raw, bytes};
};
const encode = (answer, limit) => {  // the body as base64 (only its head when it was read in the page)
    answer.body = btoa(limit === null ? answer.raw : answer.raw.slice(0, limit));
    delete answer.raw;
    delete answer.bytes;
    return answer;
};
const find = (doc, by, value) => by === 'xpath'
    ? doc.evaluate(value, doc, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue
    : doc.querySelector(value);
const text = (el) => el.textContent.replace(/\\s+/g, ' ').trim();
const one = async (q) => {
    const page = await get(q.url, q.method, q.body, q.headers);
    if (page.signedOut) return {signedOut: true};
    const found = {};
    const read = {};
    page.blank = false;
    const asDocument = (q.probes.length || q.tables.length) && page.type.includes('html');
    if (asDocument) {
        const charset = (/charset=([^;]+)/i.exec(page.type) || [null, 'utf-8'])[1].trim();
        const doc = new DOMParser().parseFromString(new TextDecoder(charset).decode(page.bytes), 'text/html');
        for (const [key, by, value] of q.probes) {
            const el = find(doc, by, value);
            if (!el) continue;
            const href = el.getAttribute ? el.getAttribute('href') : null;
            found[key] = {text: (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 300),
                          href: href ? new URL(href, page.url).href : null,
                          value: el.getAttribute ? el.getAttribute('value') : null};
        }
        for (const [key, by, value] of q.tables) {
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
    encode(page, asDocument ? HEAD_BYTES : null);
    const link = q.follow && found[q.follow] && found[q.follow].href;
    const file = link && page.status < 400 ? await get(link, 'GET', null, {}) : null;
    if (file && file.signedOut) return {signedOut: true};
    if (file) encode(file, null);
    return {page, found, file, tables: read};
};
// Groups of groupSize requests at once, each group pacingMs after the one before started; after a
// group with an answer that is no page (signed out, the sign-on form, failed), the rest are skipped:
// the caller renews the session and asks again for what is missing, or fails.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
    const out = [];
    let started = null;
    for (let i = 0; i < requests.length; i += groupSize) {
        if (out.some((a) => a.signedOut || a.error || (a.found && a.found['sign_on.form']))) {
            while (out.length < requests.length) out.push({skipped: true});
            break;
        }
        if (started !== null) await sleep(Math.max(0, pacingMs - (performance.now() - started)));
        started = performance.now();
        out.push(...await Promise.all(requests.slice(i, i + groupSize).map(
            (q) => one(q).catch((e) => ({error: `${e.name}: ${e.message}`})))));
    }
    return {answers: out, sinceLastGroup: performance.now() - started};
})().then(done);
""".replace("HEAD_BYTES", str(HEAD_BYTES))
# What an in-page call sends when its caller names no Accept header: what the portals' own scripts send.
_CALL_ACCEPT = {"Accept": "application/json, text/plain, */*"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """One answer of an in-page fetch: status, final URL (after redirects), content type, body."""

    status: int
    url: str
    content_type: str
    body: bytes  # an HTML answer read as a document: its first HEAD_BYTES only
    found: dict[str, dict[str, str | None]] = field(default_factory=dict)  # selector key -> text, href, value
    tables: dict[str, list] = field(default_factory=dict)  # selector key -> [headers, rows of [text, colspan]]
    blank: bool = False  # an HTML answer that shows nothing: a bot wall

    @classmethod
    def of(cls, raw: Mapping[str, Any], found: Mapping[str, Any] | None = None,
           tables: Mapping[str, Any] | None = None) -> Fetched:
        return cls(int(raw["status"]), str(raw["url"]), str(raw["type"]), base64.b64decode(raw["body"]),
                   dict(found or {}), dict(tables or {}), bool(raw.get("blank")))


@dataclass(frozen=True)
class InPageRequest:
    """One request of a batch: ``what`` names it in messages."""

    url: str
    what: str
    method: str = "GET"
    body: Any = None  # sent as JSON
    headers: Mapping[str, str] = field(default_factory=dict)


class InPageCalls:
    """The in-page transport of a portal session (a part of ``PortalSession``, whose browser, selectors,
    renewal count and sign-on it uses)."""

    settings: PortalSettings
    selectors: dict[str, Locator]
    timeout: float
    host: str
    _renewals_in_a_row: int

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

    def _in_page(self, requests: Sequence[InPageRequest], *, probes: Sequence[str] = (), follow: str | None = None,
                 tables: Sequence[str] = (), as_document: bool = True, pace: bool = True,
                 stale_on_failed_fetch: bool = True, server_errors: bool = False,
                 group: int | None = None) -> list[tuple[Fetched, Fetched | None]]:
        """Make ``requests`` from inside the signed-on page, ``group`` at once (all at once by default),
        each group ``pacing_seconds`` after the one before (with ``pace``), in one WebDriver call; returns,
        in order, each answer and, if ``follow`` names a probed selector with a link, the file it links to.

        With ``as_document``, each HTML answer is read as a document: ``probes`` are selector keys
        looked up in it (``Fetched.found``: text, href, value; the sign-on form is always looked
        for), ``tables`` selector keys of tables read whole (``Fetched.tables``), and a blank page
        is told. When the portal sends a request to the sign-on (a redirect, the form, another
        host), or, with ``stale_on_failed_fetch``, the fetch fails as a stale page's does ('Failed
        to fetch'), the session is renewed from the portal's home and the requests not yet answered
        are made again (the answers read before the loss are kept). A
        timeout, another network error or a 5xx (unless ``server_errors``: then returned, for a
        caller that retries it) is ``portal_unavailable``; an 'Access Denied' answer or a blank page
        ``bot_rejected``. Other statuses are the caller's to judge.
        """
        what = [r.what for r in requests]
        probe_keys = (*probes, "sign_on.form") if as_document else ()
        probe_list = [[key, *self.selectors[key]] for key in probe_keys]
        table_list = [[key, *self.selectors[key]] for key in tables]
        batch = [{"method": r.method, "url": r.url, "body": r.body, "headers": dict(r.headers), "probes": probe_list,
                  "follow": follow, "tables": table_list} for r in requests]
        size = max(1, group or len(batch))
        pacing = self.settings.pacing_seconds if pace else 0.0
        results: dict[int, tuple[Fetched, Fetched | None]] = {}  # by position in ``requests``
        while True:
            pending = [i for i in range(len(batch)) if i not in results]
            if pace:
                self._pace()
            driver = self._browser()
            # the fetches time out first, with a clear error
            driver.set_script_timeout((self.timeout + pacing) * -(-len(pending) // size) + 5)
            try:
                done = driver.execute_async_script(_IN_PAGE_JS, [batch[i] for i in pending],
                                                   int(self.timeout * 1000), size, int(pacing * 1000))
            except TimeoutException:
                raise unavailable(f"{what[pending[0]]}: no answer within {self.timeout:g} s") from None
            if pace:  # the next batch is paced from this one's last group
                self._last_fetch = time.monotonic() - float(done["sinceLastGroup"]) / 1000
            lost, gained = None, False
            for i, raw in zip(pending, done["answers"], strict=True):
                name = what[i]
                if raw.get("skipped"):  # after an answer that is no page: renewed below, or raised here
                    continue
                error = raw.get("error")
                if error and error.startswith(("TimeoutError", "AbortError")):
                    raise unavailable(f"{name}: no answer within {self.timeout:g} s")
                if raw.get("signedOut") or (error and stale_on_failed_fetch and error.startswith("TypeError")):
                    # the portal redirected (the session is gone), or 'Failed to fetch': a stale page,
                    # or a redirect to another origin
                    log.info("%s: the portal redirected the request (signed out)", name)
                    lost = lost or name
                    continue
                if error:
                    raise unavailable(f"{name}: the request failed ({error[:200]})")
                page = Fetched.of(raw["page"], raw["found"], raw.get("tables"))
                file = Fetched.of(raw["file"]) if raw.get("file") else None
                if self._lost_session(page) or (file is not None and self._lost_session(file)):
                    lost = lost or name
                    continue
                results[i], gained = (page, file), True
            if lost is None:
                break
            if gained:  # pages were read since the last sign-on: not a session that keeps expiring
                self._renewals_in_a_row = 0
            self._count_renewal(lost)
            self._sign_on_again()  # ... and only what is still missing is asked for again
        self._renewals_in_a_row = 0
        ordered = [results[i] for i in range(len(batch))]
        for name, pair in zip(what, ordered, strict=True):
            for answer in (a for a in pair if a is not None):
                self._judge(name, answer, server_errors=server_errors)
        return ordered

    @staticmethod
    def _judge(name: str, answer: Fetched, *, server_errors: bool) -> None:
        """The categories of an answer that is no answer of the page: a server error, a bot wall."""
        if answer.status >= 500 and not server_errors:
            raise unavailable(f"{name}: HTTP {answer.status} at {url_path(answer.url)}")
        if answer.status == 403 and b"Access Denied" in answer.body[:2000]:
            raise CollectionError("bot_rejected", f"{name}: the portal answered 'Access Denied'")
        if answer.blank:
            raise CollectionError("bot_rejected", f"{name}: the portal answered a blank page (bot protection)")

    def _fetch_in_page(self, urls: Sequence[str], what: Sequence[str], *, probes: Sequence[str] = (),
                       follow: str | None = None, tables: Sequence[str] = (),
                       group: int | None = None) -> list[tuple[Fetched, Fetched | None]]:
        """GET each of ``urls`` (``what`` names each in messages) from inside the signed-on page, ``group``
        at once (all at once by default), each group ``pacing_seconds`` after the one before, each HTML
        answer read as a document (see ``_in_page``)."""
        return self._in_page([InPageRequest(url, name) for url, name in zip(urls, what, strict=True)],
                             probes=probes, follow=follow, tables=tables, group=group)

    def _call_in_page(self, method: str, url: str, what: str, *, body: Any = None,
                      headers: Mapping[str, str] | None = None, server_errors: bool = False) -> Fetched:
        """One XHR from inside the signed-on page, as the portal's own scripts make it: ``fetch`` with the
        browser's credentials, ``body`` sent as JSON, the answer not read as a document. Renewed and judged
        as ``_in_page`` does, except that a failed fetch is ``portal_unavailable`` (no stale page: a call is
        made from the page just signed on to)."""
        request = InPageRequest(url, what, method=method, body=body, headers={**_CALL_ACCEPT, **(headers or {})})
        return self._in_page([request], as_document=False, pace=False, stale_on_failed_fetch=False,
                             server_errors=server_errors)[0][0]
