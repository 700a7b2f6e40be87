"""The Supplier Hub check operators, executed with a faked portal hook (and its session) and audit."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from coupang_sales.airflow_glue import operators
from coupang_sales.airflow_glue.audit import Audit, SellerActionNeeded
from coupang_sales.airflow_glue.hooks import SupplierHubHook
from coupang_sales.errors import CollectionError
from coupang_sales.portal.profiles import BrowserProfile
from coupang_sales.rocket.supplier_hub import SubAccount

ACCOUNT = {"channel": "coupang_rocket", "account_id": "V1", "conn_id": "coupang_rocket_v1", "jet_version": None}
TODAY = dt.date(2026, 1, 7)


class FakeSession:
    username = "sub_user"

    def __init__(self, *, expires=dt.date(2026, 3, 31), blocked=False, login_error=None, signed_on=True):
        self.expires, self.blocked, self.login_error = expires, blocked, login_error
        self.signed_on = signed_on
        self.extended = []
        self.sign_ons = 0

    def login(self):
        if self.login_error:
            raise self.login_error
        if not self.signed_on:
            self.sign_ons += 1
            self.signed_on = True

    def resume(self):
        return self.signed_on

    def sub_accounts(self):
        return [SubAccount("someone_else", dt.date(2020, 1, 1)), SubAccount(self.username, self.expires)]

    def extend_sub_account(self, username):
        self.extended.append(username)
        self.expires = TODAY + dt.timedelta(days=90)
        return self.expires

    def settlement_blocked(self):
        return self.blocked

    # as a page-object session is used: in a with block, its cost read after it
    usage = {"sign_ons": 0, "sms_steps": 0, "renewals": 0, "browser_seconds": 0.0}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeHook(SupplierHubHook):
    """The account's Supplier Hub hook (its connection as configured) whose browser session is ``session``;
    without one, starting a browser fails the test."""

    def __init__(self, conn_id: str, session: FakeSession | None = None):
        super().__init__(conn_id)
        self.fake_session = session

    def session(self, **kwargs):
        if self.fake_session is None:
            raise AssertionError("no browser may be started for a profile known to be signed out")
        return self.fake_session


class RecordedAudit(list, Audit):
    """The audit of a test: each attempt's record kept in the list, none written to a warehouse; the
    alerts of the seller's actions that ended a task in ``ended`` (none delivered)."""

    def __init__(self):
        super().__init__()
        self.ended = []

    def record(self, context, account, window, **record):
        self.append(record)


@pytest.fixture
def audit(monkeypatch):
    from coupang_sales.airflow_glue import outcomes

    monkeypatch.setenv("COUPANG_TODAY", TODAY.isoformat())
    recorded = RecordedAudit()
    monkeypatch.setattr(outcomes, "send_seller_alert",
                        lambda context, account, skip: recorded.ended.append(skip.category))
    return recorded


@pytest.fixture(autouse=True)
def sessions_outlive_the_browser(monkeypatch):
    """The checks' own logic runs where a browser can still be signed on from an earlier task (an
    attached Chrome); where the live portals' sessions die with the browser, see
    test_by_default_a_check_defers_without_a_browser_since_sessions_die_with_it. These are the checks
    without the run's shared session (``COUPANG_SHARED_BROWSER=false``, where a check defers to the
    extract); the shared session is tests/integration/test_shared_sessions_dag.py."""
    monkeypatch.setenv("COUPANG_SESSIONS_SURVIVE_BROWSER", "true")
    monkeypatch.setenv("COUPANG_SHARED_BROWSER", "false")


def test_by_default_a_check_defers_without_a_browser_since_sessions_die_with_it(audit, monkeypatch):
    monkeypatch.delenv("COUPANG_SESSIONS_SURVIVE_BROWSER")
    monkeypatch.setenv("AIRFLOW_CONN_COUPANG_ROCKET_V1", '{"conn_type": "http", "host": "https://supplier.coupang.com"}')
    signed_on_here()  # even a profile that signed on last is signed out in a new browser process
    operator = operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit,
                                                 hook=FakeHook(ACCOUNT["conn_id"]))
    result = execute(operator)
    assert result[operators.DEFERRED] is True
    monkeypatch.setenv("AIRFLOW_CONN_COUPANG_ROCKET_V1", '{"conn_type": "http", "host": "https://supplier.coupang.com",'
                                                         ' "extra": {"debugger_address": "127.0.0.1:9222"}}')
    assert operators.sessions_survive_browser(ACCOUNT), "an attached Chrome outlives the task: ask the portal"


def signed_on_here(account_id: str = "V1", channel: str = "coupang_rocket") -> None:
    """The account's profile submitted a password on this machine (what a real session notes)."""
    BrowserProfile(channel, account_id).note_password_sign_on()


def run(operator, session, *, noted: bool = True):
    """Execute a check with ``session`` as its browser; ``noted``: its profile signed on here before
    (so only the portal can tell whether it still is)."""
    if noted:
        signed_on_here(operator.account["account_id"])
    operator.hook = FakeHook(operator.account["conn_id"], session)
    return execute(operator)


def execute(operator):
    """The operator's ``execute`` in the context of a run for 6 January."""
    return operator.execute({"params": {"date": "2026-01-06", "lookback_days": 14}, "run_id": "r1"})


class Recorder(BaseNotifier):
    """A notifier with a templated field, as the providers' are: called as Airflow calls one, it is
    rendered against the warning's context before ``notify``."""

    template_fields = ("text",)

    def __init__(self):
        super().__init__()
        self.text = "{{ coupang_account.account_id }}: {{ coupang_warning }}"
        self.calls = []

    def notify(self, context):
        self.calls.append(self.text)


def test_expired_sub_account_ends_skipped_for_the_seller_naming_yeonjanghagi(audit):
    op = operators.SubAccountExpiryOperator(task_id="t", account=ACCOUNT, audit=audit)
    with pytest.raises(AirflowSkipException, match="연장하기") as ended:
        run(op, FakeSession(expires=dt.date(2026, 1, 6)))
    assert isinstance(ended.value, SellerActionNeeded) and not isinstance(ended.value, AirflowFailException)
    assert str(ended.value).startswith("Seller action needed (sub_account_expired): The master account")
    assert ended.value.__cause__ is None and ended.value.__suppress_context__, "an expected end: no traceback"
    assert audit[0]["status"] == "blocked" and audit[0]["reason"] == "sub_account_expired"
    assert audit.ended == ["sub_account_expired"], "its alert went out once"


def test_sub_account_expiring_within_warn_days_warns_and_succeeds(audit):
    notifier = Recorder()
    op = operators.SubAccountExpiryOperator(task_id="t", account=ACCOUNT, audit=audit, on_expiry_warning=[notifier])
    result = run(op, FakeSession(expires=dt.date(2026, 1, 10)))
    assert result["warned"] is True and result["days_left"] == 3
    assert len(notifier.calls) == 1 and "2026-01-10" in notifier.calls[0] and "연장하기" in notifier.calls[0]
    assert notifier.calls[0].startswith(f"{ACCOUNT['account_id']}: "), "rendered before notify"
    assert audit == []  # a warning is not a failed collection


def test_sub_account_far_from_expiry_does_not_warn(audit):
    notifier = Recorder()
    op = operators.SubAccountExpiryOperator(task_id="t", account=ACCOUNT, audit=audit, warn_days=7,
                                            on_expiry_warning=[notifier])
    assert run(op, FakeSession(expires=dt.date(2026, 1, 15)))["warned"] is False
    assert notifier.calls == []


def test_auto_extend_clicks_yeonjanghagi_when_near(audit):
    session = FakeSession(expires=dt.date(2026, 1, 9))
    op = operators.SubAccountExpiryOperator(task_id="t", account=ACCOUNT, audit=audit, auto_extend=True)
    result = run(op, session)
    assert session.extended == ["sub_user"] and result["expires"] == "2026-04-07" and result["warned"] is False


def test_pending_tax_invoice_ends_skipped_for_the_seller(audit):
    op = operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit)
    with pytest.raises(SellerActionNeeded, match="Seller action needed \\(tax_invoice_pending\\)") as ended:
        run(op, FakeSession(blocked=True))
    assert "미처리된 세금계산서" in ended.value.detail
    assert audit[0]["status"] == "blocked" and audit[0]["reason"] == "tax_invoice_pending"
    assert "2025-12-23..2026-01-06" in audit[0]["message"]


def test_no_pending_tax_invoice_passes(audit):
    op = operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit)
    assert run(op, FakeSession())["blocked"] is False and audit == []


def test_transient_portal_failure_stays_retryable(audit):
    op = operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit, sign_on=True)
    with pytest.raises(CollectionError) as raised:
        run(op, FakeSession(login_error=CollectionError("portal_unavailable", "HTTP 500 on /")))
    assert not isinstance(raised.value, AirflowFailException) and raised.value.retryable
    assert audit[0]["status"] == "failed" and audit[0]["reason"] == "portal_unavailable"


def test_sms_challenge_is_the_sellers_action_recorded_blocked(audit):
    op = operators.SubAccountExpiryOperator(task_id="t", account=ACCOUNT, audit=audit, sign_on=True)
    with pytest.raises(SellerActionNeeded, match="auth_challenge"):
        run(op, FakeSession(login_error=CollectionError("auth_challenge", "SMS verification (인증번호) asked")))
    assert audit[0]["reason"] == "auth_challenge" and audit[0]["status"] == "blocked"


def test_a_final_portal_failure_still_fails_the_task(audit):
    op = operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit, sign_on=True)
    with pytest.raises(AirflowFailException, match="bot_rejected"):
        run(op, FakeSession(login_error=CollectionError("bot_rejected", "Access Denied")))
    assert audit[0]["status"] == "failed" and audit.ended == []


def test_a_signed_out_profile_defers_both_checks_to_the_extract_without_signing_on(audit):
    expiry = operators.SubAccountExpiryOperator(task_id="t", account=ACCOUNT, audit=audit, warn_days=10,
                                                auto_extend=True)
    block = operators.TaxInvoiceBlockOperator(task_id="u", account=ACCOUNT, audit=audit)
    session = FakeSession(signed_on=False, expires=dt.date(2026, 1, 6), blocked=True)
    deferred = {"check_sub_account_expiry": run(expiry, session), "check_tax_invoice_block": run(block, session)}
    assert session.sign_ons == 0 and audit == []
    assert deferred["check_sub_account_expiry"] == {"account_id": "V1", operators.DEFERRED: True, "warn_days": 10,
                                                    "auto_extend": True}
    assert deferred["check_tax_invoice_block"] == {"account_id": "V1", operators.DEFERRED: True}

    # the extract signs on once and runs them first, with the operators' settings and failures
    session.login()
    with pytest.raises(CollectionError, match="sub_account_expired"):
        operators.run_deferred_checks({}, session, ACCOUNT, "w", outcomes=deferred)
    session.expires = dt.date(2026, 1, 15)  # within the operator's 10 warning days: warned, and auto-extended
    notifier = Recorder()
    with pytest.raises(CollectionError, match="tax_invoice_pending"):
        operators.run_deferred_checks({}, session, ACCOUNT, "w", outcomes=deferred, on_expiry_warning=[notifier])
    assert session.extended == ["sub_user"] and session.sign_ons == 1
    session.blocked = False
    assert operators.run_deferred_checks({}, session, ACCOUNT, "w", outcomes=deferred) == [
        "check_sub_account_expiry", "check_tax_invoice_block"]
    assert operators.run_deferred_checks({}, session, ACCOUNT, "w", outcomes={
        "check_sub_account_expiry": {"expires": "2026-04-07"}, "check_tax_invoice_block": None}) == []


def test_with_sign_on_allowed_a_check_signs_on_itself(audit):
    """Even in a profile that never signed on (which would otherwise defer without a browser)."""
    session = FakeSession(signed_on=False)
    operator = operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit, sign_on=True)
    result = run(operator, session, noted=False)
    assert result["blocked"] is False and session.sign_ons == 1


def defers_without_a_browser(operator) -> bool:
    operator.hook = FakeHook(operator.account["conn_id"])  # no session: a browser started fails the test
    return execute(operator).get(operators.DEFERRED) is True


def test_a_profile_that_never_signed_on_defers_without_starting_a_browser(audit):
    assert defers_without_a_browser(operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit))
    assert defers_without_a_browser(operators.SubAccountExpiryOperator(task_id="t", account=ACCOUNT, audit=audit))
    assert audit == []


def test_another_accounts_later_sign_on_means_signed_out_without_a_browser(audit, monkeypatch):
    signed_on_here("V1")
    signed_on_here("V2")  # one seller at a time from an address: V1 was signed out by it
    assert defers_without_a_browser(operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit))
    # another channel's sign-on (Wing) does not sign out a Supplier Hub profile
    signed_on_here("V1")
    signed_on_here("A9", channel="coupang_jet")
    session = FakeSession()
    block = operators.TaxInvoiceBlockOperator(task_id="t", account=ACCOUNT, audit=audit)
    assert run(block, session, noted=False)["blocked"] is False
    # where sellers do not sign each other out, only the portal can tell: the browser asks it
    signed_on_here("V2")
    monkeypatch.setenv("COUPANG_ONE_SELLER_PER_ADDRESS", "false")
    assert run(block, session, noted=False)["blocked"] is False


def test_by_default_the_checks_attach_to_the_runs_shared_browser_session(monkeypatch):
    """The deferral to the extract above is the documented ``COUPANG_SHARED_BROWSER=false``."""
    from coupang_sales.airflow_glue.shared_browser import shared_browser_enabled

    monkeypatch.delenv("COUPANG_SHARED_BROWSER")
    assert shared_browser_enabled()
    monkeypatch.setenv("COUPANG_SHARED_BROWSER", "false")
    assert not shared_browser_enabled()
