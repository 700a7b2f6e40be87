"""The sandbox's mutable in-memory state: sessions, sub-account expiry, tax invoices, faults."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
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


@dataclass
class AuthSession:
    """A sign-on in progress (Keycloak's authentication session, keyed by tab_id)."""

    tab_id: str
    client_id: str
    redirect_uri: str
    pending: Any = None  # the principal waiting at the SMS step


@dataclass
class RequestRecord:
    method: str
    target: str  # path and query
    status: int


@dataclass
class SandboxState:
    scenario: Scenario
    today: dt.date = field(init=False)
    sub_account_expires: dict[str, dt.date] = field(init=False)  # username -> 만료일
    tax_invoice_confirmed: dict[str, dt.date | None] = field(init=False)  # 계산서번호 -> 확정일
    sessions: dict[str, Session] = field(default_factory=dict)
    auth_sessions: dict[str, AuthSession] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)
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

    def new_session(self, portal: str, account_id: str, username: str, is_master: bool) -> Session:
        session = Session(secrets.token_urlsafe(24), portal, account_id, username, is_master)
        with self.lock:
            self.sessions[session.token] = session
        return session

    def end_session(self, token: str | None) -> None:
        with self.lock:
            self.sessions.pop(token or "", None)

    def new_auth_session(self, client_id: str, redirect_uri: str) -> AuthSession:
        auth = AuthSession(secrets.token_urlsafe(8), client_id, redirect_uri)
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
        return [inv.invoice_no for inv in account.invoices if self.tax_invoice_confirmed[inv.invoice_no] is None]

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
                "requests": len(self.requests),
                "faults": self.faults.remaining(),
            }
