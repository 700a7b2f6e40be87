"""The sandbox's mutable in-memory state: sessions, sub-account expiry, tax invoices, report requests, faults."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults import FaultBook
from sandbox.scenario import Scenario

# How far '연장하기' moves a sub-account's expiry, counted from the scenario's today.
EXTENSION_DAYS = 90


@dataclass
class Session:
    """A signed-on browser session of one portal."""

    token: str
    portal: str
    account_id: str
    username: str
    is_master: bool
    expires_at: float = float("inf")  # on the sandbox's clock (SandboxState.now)
    address: str = ""  # the client address that signed on
    user_agent: str = ""  # and its user agent: the session is bound to both (bot_protection.bind_to_client)
    # Wing's double-submit token: sent as the XSRF-TOKEN cookie, expected back in x-xsrf-token.
    xsrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))


@dataclass
class ReportRequest:
    """A Wing settlement report asked for (엑셀 다운로드 요청); it gets ready as the download list is polled."""

    request_id: int
    account_id: str
    report_type: str  # sellerReportType: CATEGORY_TR | WAREHOUSING_SHIPPING
    request_time: int  # requestTime: the client's ms epoch, which names the request in later calls
    group_keys: tuple[str, ...]  # settlementGroupKeys
    locale: str
    polls: int = 0  # download-list calls that have listed it
    created_at: float = 0.0  # on the sandbox's clock: a repeat soon after answers duplicateRequest


@dataclass
class AuthSession:
    """A sign-on in progress (Keycloak's authentication session, keyed by tab_id).

    ``session_code`` and ``execution`` change each time the form is shown: a form
    submitted with older ones is stale, as on Keycloak.
    """

    tab_id: str
    client_id: str
    redirect_uri: str
    state: str = ""  # the client's OAuth state, handed back with the code
    root_id: str = ""  # the AUTH_SESSION_ID cookie the browser must send with the form
    session_code: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    execution: str = field(default_factory=lambda: secrets.token_hex(8))
    pending: Any = None  # the principal waiting at the SMS step

    def rotate(self) -> None:
        self.session_code = secrets.token_urlsafe(16)
        self.execution = secrets.token_hex(8)


@dataclass
class PendingLogin:
    """A portal's authorization request (Spring Security's saved request): its state and where to go back."""

    portal: str
    state: str
    return_path: str


@dataclass
class IssuedCode:
    """A one-time authorization code handed to a portal's callback."""

    client_id: str
    redirect_uri: str
    account_id: str
    username: str
    is_master: bool


@dataclass
class SsoSession:
    """Keycloak's own session (cookie KEYCLOAK_SESSION): signs on again without the password while it lives."""

    token: str
    client_id: str
    account_id: str
    username: str
    is_master: bool
    expires_at: float = float("inf")
    address: str = ""
    user_agent: str = ""


@dataclass
class SignOn:
    """One password sign-on (the scarce resource the real portals ration), as the realm saw it."""

    username: str
    client_id: str
    address: str
    sms_asked: bool  # the SMS step was shown (an unknown device)
    at: float = 0.0  # the sandbox's clock (``SandboxState.now``) when the password was accepted


@dataclass
class RequestRecord:
    method: str
    target: str  # path and query
    status: int


@dataclass
class ApiCall:
    """One call of a Wing JSON API as the sandbox received it (tests read what a client sent)."""

    path: str  # without the /wing prefix
    body: Any
    at: float  # time.monotonic() when it arrived
    status: int = 0  # what it was answered (0 until answered)


@dataclass
class SandboxState:
    scenario: Scenario
    today: dt.date = field(init=False)
    sub_account_expires: dict[str, dt.date] = field(init=False)  # username -> 만료일
    tax_invoice_confirmed: dict[str, dt.date | None] = field(init=False)  # 계산서번호 -> 확정일
    sessions: dict[str, Session] = field(default_factory=dict)
    auth_sessions: dict[str, AuthSession] = field(default_factory=dict)
    pending_logins: dict[str, PendingLogin] = field(default_factory=dict)  # by the portal's pre-login cookie
    issued_codes: dict[str, IssuedCode] = field(default_factory=dict)  # one-time authorization codes
    sso_sessions: dict[str, SsoSession] = field(default_factory=dict)  # Keycloak sessions, by cookie
    sensor_challenges: dict[str, Any] = field(default_factory=dict)  # sensor token -> defences.SensorChallenge
    sensor_verdicts: dict[str, Any] = field(default_factory=dict)  # _abck cookie -> defences.Verdict
    portal_port: int = 0  # the portals' origin's port (Keycloak's valid redirect URIs are there)
    sso_origin: str = ""  # Keycloak's origin ('' = derive it from the request's host and sso_port)
    sso_port: int = 0
    help_origin: str = ""  # the help site a signed-out Wing API call ends at
    help_port: int = 0
    trusted_devices: dict[str, tuple[str, float]] = field(default_factory=dict)  # device cookie -> (username, until)
    sign_ons: list[SignOn] = field(default_factory=list)  # every password accepted, in order
    # (address, username) -> the sandbox's clock at the last page a portal session of theirs served: with
    # ``sign_ons`` it says when each seller was signed on from each address
    last_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    clock_offset: float = 0.0  # seconds added to the clock by advance_clock()
    requests: list[RequestRecord] = field(default_factory=list)
    report_requests: dict[int, ReportRequest] = field(default_factory=dict)  # Wing, by requestId
    links_issued: dict[str, int] = field(default_factory=dict)  # Wing account -> report links handed out
    vi_searches: int = 0  # vi-detail-search calls: their tie order shifts from call to call
    api_calls: list[ApiCall] = field(default_factory=list)  # Wing's JSON API calls with their bodies
    status_windows: dict[str, list[float]] = field(default_factory=dict)  # session -> [window start, calls]
    storage_url: str = ""  # the storage origin's base URL, once the server runs
    storage_requests: list[dict[str, Any]] = field(default_factory=list)  # what the storage origin was asked
    # Signs the storage origin's links; a new one every sandbox run.
    storage_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    faults: FaultBook = field(init=False)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self.today = self.scenario.today
        self.sub_account_expires = {}
        for account in self.scenario.rocket_accounts:
            self.sub_account_expires[account.username] = account.sub_account_expires
            for sub in account.other_sub_accounts:
                self.sub_account_expires[sub.username] = sub.expires
        self.tax_invoice_confirmed = {inv.invoice_no: inv.tax_invoice_confirmed
                                      for account in self.scenario.rocket_accounts for inv in account.invoices}
        self.faults = FaultBook(self.scenario.faults)

    # --- sessions --------------------------------------------------------------------

    def now(self) -> float:
        """The sandbox's clock for session lifetimes: monotonic seconds, moved on by ``advance_clock``."""
        return time.monotonic() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Let ``seconds`` pass for every session and device trust (tests of expiry without waiting)."""
        with self.lock:
            self.clock_offset += seconds

    def new_session(self, portal: str, account_id: str, username: str, is_master: bool, *,
                    address: str = "", user_agent: str = "") -> Session:
        session = Session(secrets.token_urlsafe(24), portal, account_id, username, is_master,
                          expires_at=self.now() + self.scenario.sessions.portal_seconds, address=address,
                          user_agent=user_agent)
        with self.lock:
            self.sessions[session.token] = session
        return session

    def _live(self, store: dict, token: str | None, client: Any = None):
        """The entry of ``token`` in ``store`` unless it expired (an expired one is dropped) or, with
        ``client`` (a ``defences.Client``) and ``bot_protection.bind_to_client``, another client made it."""
        with self.lock:
            found = store.get(token or "")
            if found is not None and found.expires_at <= self.now():
                store.pop(found.token, None)
                return None
            if (found is not None and client is not None and self.scenario.bot_protection.bind_to_client
                    and (found.address, found.user_agent) != (client.address, client.user_agent)):
                return None
            return found

    def live_session(self, token: str | None, client: Any = None) -> Session | None:
        """The portal session of ``token`` unless it expired (or is another client's)."""
        found = self._live(self.sessions, token, client)
        if found is not None:
            with self.lock:
                self.last_seen[(found.address, found.username)] = self.now()
        return found

    def live_sso_session(self, token: str | None, client: Any = None) -> SsoSession | None:
        """The Keycloak session of ``token`` unless it expired (or is another client's)."""
        return self._live(self.sso_sessions, token, client)

    def end_other_sellers(self, username: str, address: str) -> int:
        """Only one seller signed on at a time (REAL-PORTALS.md §1): a password sign-on from
        ``address`` ends the portal and Keycloak sessions of every other username from there."""
        if not self.scenario.sessions.one_seller_per_address:
            return 0
        with self.lock:
            ended = [t for t, s in self.sessions.items() if s.address == address and s.username != username]
            for token in ended:
                del self.sessions[token]
            for token in [t for t, s in self.sso_sessions.items() if s.address == address and s.username != username]:
                del self.sso_sessions[token]
            return len(ended)

    def trust_device(self, username: str) -> str:
        """A device cookie value that spares ``username`` the SMS step for ``device_trust_days``."""
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.trusted_devices[token] = (username, self.now() + self.scenario.sessions.device_trust_days * 86400)
        return token

    def device_trusted(self, token: str | None, username: str) -> bool:
        with self.lock:
            known = self.trusted_devices.get(token or "")
            return known is not None and known[0] == username and known[1] > self.now()

    def sign_ons_of(self, username: str) -> int:
        """Password sign-ons of ``username`` so far."""
        with self.lock:
            return sum(1 for s in self.sign_ons if s.username == username)

    def end_session(self, token: str | None) -> None:
        with self.lock:
            self.sessions.pop(token or "", None)

    def new_auth_session(self, client_id: str, redirect_uri: str, state: str = "", root_id: str = "") -> AuthSession:
        auth = AuthSession(secrets.token_urlsafe(8), client_id, redirect_uri, state=state, root_id=root_id)
        with self.lock:
            self.auth_sessions[auth.tab_id] = auth
        return auth

    # --- Supplier Hub ------------------------------------------------------------------

    def sub_account_expired(self, username: str) -> bool:
        expires = self.sub_account_expires.get(username)
        return expires is not None and expires < self.today

    def extend_sub_account(self, username: str) -> dt.date:
        """What the 연장하기 button does."""
        with self.lock:
            if username not in self.sub_account_expires:
                raise KeyError(username)
            new = max(self.sub_account_expires[username], self.today + dt.timedelta(days=EXTENSION_DAYS))
            self.sub_account_expires[username] = new
            return new

    def confirm_tax_invoice(self, invoice_no: str) -> dt.date:
        with self.lock:
            if invoice_no not in self.tax_invoice_confirmed:
                raise KeyError(invoice_no)
            if self.tax_invoice_confirmed[invoice_no] is None:
                self.tax_invoice_confirmed[invoice_no] = self.today
            return self.tax_invoice_confirmed[invoice_no]

    def pending_tax_invoices(self, account_id: str) -> list[str]:
        account = self.scenario.rocket_account(account_id)
        return [inv.invoice_no for inv in account.invoices
                if self.tax_invoice_confirmed[inv.invoice_no] is None and inv.written_date <= self.today]

    def set_today(self, today: dt.date) -> None:
        """Move the sandbox's clock (tests only, POST /__sandbox__/today): what the portals list
        (invoices by 작성일자, report rows by 매출인식일, sales by 판매일) stops at today, so
        facts written later appear only once today reaches them. It may not go back."""
        with self.lock:
            if today < self.today:
                raise ValueError(f"the sandbox's today cannot go back from {self.today} to {today}")
            self.today = today

    # --- Wing ----------------------------------------------------------------------------

    def new_report_request(self, account_id: str, report_type: str, request_time: int, group_keys: tuple[str, ...],
                           locale: str) -> ReportRequest:
        with self.lock:
            # Numbers like the real site's, never reused within one sandbox run.
            request_id = 80_000_001 + len(self.report_requests)
            request = ReportRequest(request_id, account_id, report_type, request_time, group_keys, locale,
                                    created_at=self.now())
            self.report_requests[request_id] = request
            return request

    def report_by_time(self, account_id: str, request_time: int) -> ReportRequest | None:
        with self.lock:
            return next((r for r in self.report_requests.values()
                         if r.account_id == account_id and r.request_time == request_time), None)

    def poll_report_requests(self, account_id: str, first_ms: int, last_ms: int) -> list[ReportRequest]:
        """The account's report requests with requestTime in [first_ms, last_ms], newest first, each
        counted as polled once more."""
        with self.lock:
            mine = [r for r in self.report_requests.values()
                    if r.account_id == account_id and first_ms <= r.request_time <= last_ms]
            for request in mine:
                request.polls += 1
            return sorted(mine, key=lambda r: r.request_id, reverse=True)

    def recent_request(self, account_id: str, report_type: str, group_keys: tuple[str, ...],
                       seconds: float) -> ReportRequest | None:
        """A request of the same report and groups made in the last ``seconds`` (a repeat of it)."""
        with self.lock:
            return next((r for r in self.report_requests.values()
                         if r.account_id == account_id and r.report_type == report_type
                         and set(r.group_keys) == set(group_keys) and self.now() - r.created_at < seconds), None)

    def api_call(self, path: str, body: Any) -> ApiCall:
        """Log a Wing API call; the number of calls so far is its position (1-based)."""
        call = ApiCall(path, body, time.monotonic())
        with self.lock:
            self.api_calls.append(call)
        return call

    def status_call(self, session_token: str) -> tuple[int, float]:
        """Count a status/api call of a session: (its number in the session, seconds since the first)."""
        with self.lock:
            window = self.status_windows.setdefault(session_token, [self.now(), 0])
            window[1] += 1
            return int(window[1]), self.now() - window[0]

    def next_link_number(self, account_id: str) -> int:
        """1 for the account's first report link, 2 for the next..."""
        with self.lock:
            self.links_issued[account_id] = self.links_issued.get(account_id, 0) + 1
            return self.links_issued[account_id]

    def next_vi_search(self) -> int:
        with self.lock:
            self.vi_searches += 1
            return self.vi_searches

    def record(self, method: str, target: str, status: int) -> None:
        with self.lock:
            self.requests.append(RequestRecord(method, target, status))

    def snapshot(self) -> dict[str, Any]:
        """A JSON-safe view for the /__sandbox__/state endpoint and for debugging."""
        with self.lock:
            return {
                "today": self.today.isoformat(),
                "sub_account_expires": {u: d.isoformat() for u, d in self.sub_account_expires.items()},
                "tax_invoice_confirmed": {n: d.isoformat() if d else None
                                          for n, d in self.tax_invoice_confirmed.items()},
                "sessions": len(self.sessions),
                "sign_ons": [{"username": s.username, "client_id": s.client_id, "sms_asked": s.sms_asked}
                             for s in self.sign_ons],
                "requests": len(self.requests),
                "report_requests": {r.request_id: {"account_id": r.account_id, "report_type": r.report_type,
                                                   "group_keys": list(r.group_keys), "polls": r.polls}
                                    for r in self.report_requests.values()},
                "links_issued": dict(self.links_issued),
                "faults": self.faults.remaining(),
            }
