"""Custom operators for the Supplier Hub checks that run before a Rocket extract.

Sign-ons are the scarce resource (one seller signed on at a time per address, a ~16 s challenge,
an SMS step for unknown devices): by default a check signs on only through a profile that is still
signed on. When the profile is signed out it **defers** to the account's extract, which signs on
once and runs the same check first (``run_deferred_checks``), so an account costs at most one
sign-on per run however the scheduler interleaves accounts on one address (docs/decisions.md).
A profile known to be signed out without a browser defers without starting Chromium: the live
portals' sessions die with the browser (``sessions_survive_browser``), so a browser this task
would open is signed out; where sessions do outlive it (an attached Chrome), a profile that
never signed on, or whose channel saw another account sign on from this machine since
(``BrowserProfile.signed_out_for_sure``).
``sign_on=True`` lets the check sign on itself (a dedicated address per account).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from coupang_sales.airflow_glue.audit import Audit
from coupang_sales.airflow_glue.outcomes import outcome_first
from coupang_sales.airflow_glue.window import resolve_window, seoul_today
from coupang_sales.config import settings

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


DEFERRED = "deferred_to_extract"


class SupplierHubCheckOperator(BaseOperator):
    """A check of one account in Supplier Hub, before its extract (see the module).

    Stores its arguments only. ``hook`` (default: a ``SupplierHubHook`` of the account's connection) opens
    the browser session and ``audit`` (default: ``Audit()``, ``sales.collection_runs``) records a failed
    attempt; a test passes its own.
    """

    template_fields: Sequence[str] = ("account",)
    ui_color = "#fde8d7"

    def __init__(self, *, account: Mapping[str, Any] | Any, sign_on: bool = False, hook: Any = None,
                 audit: Audit | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.account = account
        self.sign_on = sign_on
        self._hook = hook
        self._audit = audit

    @property
    def hook(self):
        """The portal hook of the account's connection."""
        if self._hook is None:
            from coupang_sales.airflow_glue.hooks import SupplierHubHook

            self._hook = SupplierHubHook(self.account["conn_id"])
        return self._hook

    @hook.setter
    def hook(self, hook: Any) -> None:
        self._hook = hook

    @property
    def audit(self) -> Audit:
        if self._audit is None:
            self._audit = Audit()
        return self._audit

    @audit.setter
    def audit(self, audit: Audit) -> None:
        self._audit = audit

    @contextlib.contextmanager
    def session(self, context: "Context", driver_factory: Any = None):
        """The account's browser in its persistent profile (signed on still, or not: see the module), or
        the run's shared session of the account (``driver_factory``). Its screenshots land in the run's
        staging folder of the account, under the task's name."""
        from coupang_sales.airflow_glue.hooks import account_session
        from coupang_sales.airflow_glue.staging import account_folder, working_copy

        with working_copy(account_folder(context, self.account["account_id"]) / self.task_id, only=()) as work:
            with account_session(context, self.account, self.hook, download_dir=work,
                                 artifacts_dir=work / "artifacts", driver_factory=driver_factory) as session:
                yield session

    def execute(self, context: "Context") -> dict[str, Any]:
        """The check; a seller's action it finds ends the task skipped, the action the log's first line shown
        (``coupang_sales.airflow_glue.outcomes``)."""
        context["account_label"] = self.account["account_id"]
        with outcome_first(context, self.account, f"{self.account['account_id']}: {self.task_id} (sign-on and check)"):
            return self._execute(context)

    def _execute(self, context: "Context") -> dict[str, Any]:
        window = resolve_window(context)
        from coupang_sales.airflow_glue.shared_browser import leased_browser, shared_browser_enabled

        if shared_browser_enabled():
            # the run's one browser session of the account: this check signs on (once per run) and shows
            # its own outcome; the session lives on for the next check and the extract
            with (self.audit.attempt(context, self.account, window),
                  leased_browser(context, self.hook.channel, self.account, last=False) as factory,
                  self.session(context, factory) as session):
                session.login()
                return self.check(context, session, window)
        with self.audit.attempt(context, self.account, window):
            if not self.sign_on:
                # known signed out without a browser: no Chromium started for nothing
                signed_out = _profile_signed_out(self.account, self.hook)
                if signed_out:
                    return self._defer(signed_out)
            with self.session(context) as session:
                if self.sign_on:
                    session.login()
                elif not session.resume():
                    return self._defer("the portal's home asks for the password")
                return self.check(context, session, window)

    def _defer(self, why: str) -> dict[str, Any]:
        log.info("%s: the profile is signed out (%s); the check runs in the extract's session, "
                 "which signs on once for the whole collection", self.account["account_id"], why)
        return {"account_id": self.account["account_id"], DEFERRED: True, **self.settings()}

    def settings(self) -> dict[str, Any]:
        """What the extract needs to run this check as configured here, when it deferred."""
        return {}

    def check(self, context: "Context", session: Any, window: Any) -> dict[str, Any]:
        """The check, in a session that is signed on."""
        raise NotImplementedError


def one_seller_per_address() -> bool:
    """``COUPANG_ONE_SELLER_PER_ADDRESS`` (default true, REAL-PORTALS.md §1): does a password sign-on end
    the sessions of the portal's other sellers from the same address? Then a profile whose channel saw
    another account sign on since its own sign-on is signed out, known without a browser. ``false``
    (say, workers on several addresses sharing one profile volume) asks the portal every time."""
    return settings().one_seller_per_address


def sessions_survive_browser(account: Mapping[str, Any], hook: Any = None) -> bool:
    """Whether a browser this task opens can still be signed on from an earlier task. On the live sites
    the portal's and Keycloak's session cookies die with the browser (REAL-PORTALS.md §6), so a new
    browser process is signed out: False by default. True where the browser is a Chrome that outlives
    the task (``debugger_address`` in the connection's extra or ``CHROME_DEBUGGER_ADDRESS``), or where
    ``COUPANG_SESSIONS_SURVIVE_BROWSER=true`` says the portal keeps sessions in the profile."""
    if settings().sessions_survive_browser:
        return True
    from coupang_sales.portal.browser import debugger_address_from

    if hook is None:
        from coupang_sales.airflow_glue.hooks import SupplierHubHook

        hook = SupplierHubHook(account["conn_id"])
    extra = hook.get_connection(account["conn_id"]).extra_dejson
    return debugger_address_from(extra.get("debugger_address")) is not None


def _profile_signed_out(account: Mapping[str, Any], hook: Any = None) -> str | None:
    """Why the account's persistent profile is signed out for sure, or None (only the portal can tell).
    Deferring is never wrong: the extract lands on the portal first and types no password while the
    session lives, so a check deferred by mistake costs no sign-on, only its own task's answer."""
    from coupang_sales.portal.profiles import BrowserProfile

    if not sessions_survive_browser(account, hook):
        return "the portal's sessions die with the browser: a new browser is signed out"
    profile = BrowserProfile(account["channel"], account["account_id"])
    return profile.signed_out_for_sure(one_seller_per_address=one_seller_per_address())


class SubAccountExpiryOperator(SupplierHubCheckOperator):
    """Stops an account whose Supplier Hub sub-account (부계정) expired, and warns ahead.

    An expired sub-account cannot log in until the master account clicks '연장하기' at
    서플라이어허브 > 부계정 관리: the task ends skipped (the seller's action, not a failure: no
    retry, its alert sent, the action its note), recording the collection as blocked with reason
    ``sub_account_expired``. When the expiry is within
    ``warn_days`` days (default 7) it calls ``on_expiry_warning`` notifiers and succeeds.
    With ``auto_extend=True`` and a session permitted to do so, it clicks '연장하기' itself
    when expiry is near.
    """

    template_fields: Sequence[str] = ("account", "warn_days")

    def __init__(self, *, account, warn_days: int = 7, auto_extend: bool = False,
                 on_expiry_warning: Sequence[Any] = (), **kwargs) -> None:
        super().__init__(account=account, **kwargs)
        self.warn_days = warn_days
        self.auto_extend = auto_extend
        self.on_expiry_warning = list(on_expiry_warning)

    def settings(self) -> dict[str, Any]:
        return {"warn_days": int(self.warn_days), "auto_extend": bool(self.auto_extend)}

    def check(self, context: "Context", session: Any, window: Any) -> dict[str, Any]:
        return check_sub_account_expiry(context, session, self.account, warn_days=int(self.warn_days),
                                        auto_extend=self.auto_extend, on_expiry_warning=self.on_expiry_warning)


class TaxInvoiceBlockOperator(SupplierHubCheckOperator):
    """Stops an account's collection while Supplier Hub shows a '미처리된 세금계산서'.

    While a reverse-issued tax invoice is unconfirmed the settlement pages show a
    notice instead of data. The task records the collection as blocked with reason
    ``tax_invoice_pending`` and the seller's action, loads nothing and ends skipped (the seller's
    action, not a failure: no retry, which would not process the invoice; its alert sent, the action
    its note).
    """

    def check(self, context: "Context", session: Any, window: Any) -> dict[str, Any]:
        return check_tax_invoice_block(session, self.account, window)


def check_sub_account_expiry(context: Mapping[str, Any], session: Any, account: Mapping[str, Any], *,
                             warn_days: int = 7, auto_extend: bool = False,
                             on_expiry_warning: Sequence[Any] = ()) -> dict[str, Any]:
    """The sub-account expiry check, in a session that is signed on."""
    from coupang_sales.errors import CollectionError
    from coupang_sales.rocket.sub_accounts import sub_account_expiry_status

    accounts = session.sub_accounts()
    status = sub_account_expiry_status(accounts, username=session.username, today=seoul_today(),
                                       warn_days=warn_days)
    if status.expired:
        raise CollectionError("sub_account_expired",
                              f"{account['account_id']}: sub-account expired on {status.expires}.")
    if status.expiring_soon and auto_extend:
        new_expiry = session.extend_sub_account(session.username)
        log.info("Extended the sub-account of %s to %s", account["account_id"], new_expiry)
        status = status.extended_to(new_expiry)
    if status.expiring_soon:
        message = (f"Supplier Hub sub-account of {account['account_id']} expires on "
                   f"{status.expires} ({status.days_left} days). Action: the master account "
                   "should click '연장하기' at 서플라이어허브 > 부계정 관리 before then.")
        log.warning(message)
        for notifier in on_expiry_warning:  # called as Airflow calls a callback: templated first
            notifier({**context, "coupang_warning": message, "coupang_account": account,
                      "coupang_expires": status.expires, "coupang_warn_days": warn_days})
    return {"account_id": account["account_id"], "expires": status.expires.isoformat(),
            "days_left": status.days_left, "warned": status.expiring_soon}


def check_tax_invoice_block(session: Any, account: Mapping[str, Any], window: Any) -> dict[str, Any]:
    """The unprocessed-tax-invoice check, in a session that is signed on."""
    from coupang_sales.errors import CollectionError

    if session.settlement_blocked():
        raise CollectionError(
            "tax_invoice_pending",
            f"{account['account_id']}: Supplier Hub shows an unprocessed tax invoice "
            f"(미처리된 세금계산서); settlement data for {window} cannot be collected.")
    return {"account_id": account["account_id"], "blocked": False,
            "checked_at": dt.datetime.now(dt.UTC).isoformat()}


def run_deferred_checks(context: Mapping[str, Any], session: Any, account: Mapping[str, Any], window: Any, *,
                        outcomes: Mapping[str, Any], on_expiry_warning: Sequence[Any] = ()) -> list[str]:
    """In the extract's session, signed on, before anything is read: the checks whose task deferred
    to it (``outcomes``: task name -> that task's return value), in the operators' order and with
    their settings. Returns the names of the checks run here."""
    ran = []
    expiry = outcomes.get("check_sub_account_expiry") or {}
    if expiry.get(DEFERRED):
        check_sub_account_expiry(context, session, account, warn_days=int(expiry.get("warn_days", 7)),
                                 auto_extend=bool(expiry.get("auto_extend", False)),
                                 on_expiry_warning=on_expiry_warning)
        ran.append("check_sub_account_expiry")
    if (outcomes.get("check_tax_invoice_block") or {}).get(DEFERRED):
        check_tax_invoice_block(session, account, window)
        ran.append("check_tax_invoice_block")
    return ran
