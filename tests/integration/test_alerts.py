"""Failure alerts: the message a data engineer receives, through the SMTP and Slack providers' notifiers
to a real local SMTP server and a local HTTP server standing in for the Slack webhook."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

import pytest

from coupang_sales.airflow_glue.alerts import Alert
from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier
from coupang_sales.errors import CollectionError

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
ACCOUNT = {"channel": "coupang_rocket", "account_id": "V00034567", "conn_id": "c", "jet_version": None}


class FakeTask:
    account = ACCOUNT


class FakeTI:
    dag_id, task_id, log_url = "coupang_rocket_sales", "collect.check_tax_invoice_block", "http://ui/log/1"


def failure_context(category: str = "tax_invoice_pending"):
    error = CollectionError(category, "V00034567: Supplier Hub shows an unprocessed tax invoice.")
    try:
        raise RuntimeError("wrapped") from error
    except RuntimeError as exc:
        wrapped = exc
    return {"task": FakeTask(), "ti": FakeTI(), "exception": wrapped, "run_id": "scheduled__2026-01-06",
            "params": {"date": "2026-01-06", "lookback_days": 14}}


def test_alert_names_channel_account_window_category_action_and_log():
    alert = Alert.of(failure_context())
    assert alert.channel == "coupang_rocket" and alert.account == "V00034567"
    assert alert.window == "2025-12-23..2026-01-06" and alert.category == "tax_invoice_pending"
    assert "tax invoice" in alert.action and alert.log_url == "http://ui/log/1"


def test_failure_alert_is_emailed_through_the_smtp_connection(smtp):
    CollectionAlertNotifier().notify(failure_context())
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["data-eng@example.com"]
    # a seller's action is no failure of the pipeline: its subject says BLOCKED
    assert message["Subject"] == "[coupang-sales] BLOCKED coupang_rocket V00034567 2025-12-23..2026-01-06: " \
                                 "tax_invoice_pending"
    body = smtp.bodies()[0]
    assert "Action:   The seller must process" in body and "http://ui/log/1" in body


def test_no_smtp_connection_means_no_email_and_no_error(slack, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_COUPANG_ALERTS_SMTP", raising=False)
    with caplog.at_level(logging.INFO):
        sent = CollectionAlertNotifier().notify(failure_context("portal_unavailable"))
    assert sent == {"Slack": True}, "no e-mail channel is tried; the other channel still delivers"
    assert slack.subjects() == [FAILED_SUBJECT]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a missing channel is no error"
    assert any(FAILED_SUBJECT in r.getMessage()
               for r in caplog.records), "the alert itself is logged"


def test_an_alert_keeps_its_category_through_the_final_failure():
    """A failure Airflow must not retry ends the task as ``CollectionFailed`` (an AirflowFailException):
    the alert reads its category from it, not from the message's text."""
    from airflow.sdk.exceptions import AirflowFailException

    from coupang_sales.airflow_glue.audit import CollectionFailed

    error = CollectionError("sub_account_expired", "V00034567: sub-account expired on 2026-01-01.")
    final = CollectionFailed(error)
    assert isinstance(final, AirflowFailException) and final.category == "sub_account_expired"
    alert = Alert.of({**failure_context(), "exception": final})
    assert alert.category == "sub_account_expired" and alert.detail == error.detail
    assert Alert.of({**failure_context(), "exception": AirflowFailException("[sub_account_expired] x")}
                    ).category == "unexpected_error", "no category is guessed from a message"


def test_failure_alert_is_posted_to_the_slack_webhook(slack):
    CollectionAlertNotifier().notify(failure_context())
    assert slack.subjects() == ["[coupang-sales] BLOCKED coupang_rocket V00034567 2025-12-23..2026-01-06: "
                                "tax_invoice_pending"]
    text = slack.posts[0]["text"]
    assert "Action:   The seller must process" in text and "http://ui/log/1" in text


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SUBJECT = "[coupang-sales] BLOCKED coupang_rocket V00034567 2025-12-23..2026-01-06: tax_invoice_pending"
FAILED_SUBJECT = "[coupang-sales] FAILED coupang_rocket V00034567 2025-12-23..2026-01-06: portal_unavailable"


def test_an_smtp_outage_does_not_silence_slack_and_is_logged_without_secrets(slack, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_COUPANG_ALERTS_SMTP", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": closed_port(), "login": "alerts",
         "password": "smtp-secret-pw", "extra": {"to": "data-eng@example.com", "from_email": "a@example.com",
                                                 "disable_ssl": True, "disable_tls": True}}))
    with caplog.at_level(logging.INFO):
        CollectionAlertNotifier().notify(failure_context("portal_unavailable"))
    assert len(slack.posts) == 1, "Slack still gets the alert"
    failed = [r.getMessage() for r in caplog.records if "alert not sent" in r.getMessage()]
    assert len(failed) == 1 and failed[0].startswith("e-mail alert not sent through connection coupang_alerts_smtp")
    assert "ConnectionRefusedError" in failed[0]
    assert "smtp-secret-pw" not in caplog.text


def test_a_slack_failure_does_not_stop_the_email_and_keeps_the_token_out_of_the_log(smtp, slack, monkeypatch,
                                                                                     caplog):
    conn = json.loads(os.environ["AIRFLOW_CONN_COUPANG_ALERTS_SLACK"])
    monkeypatch.setenv("AIRFLOW_CONN_COUPANG_ALERTS_SLACK", json.dumps({**conn, "password": "T999/B999/REVOKED"}))
    with caplog.at_level(logging.INFO):
        CollectionAlertNotifier().notify(failure_context("portal_unavailable"))
    assert len(smtp.messages) == 1 and slack.posts == []
    failed = [r.getMessage() for r in caplog.records if "alert not sent" in r.getMessage()]
    assert len(failed) == 1 and "Slack alert not sent" in failed[0] and "404" in failed[0]
    assert "REVOKED" not in caplog.text


def test_the_expiry_warning_goes_through_the_same_templated_path(smtp, slack):
    """The operator calls its notifiers as Airflow calls a callback: rendered, then notified."""
    notifier = CollectionAlertNotifier(warning=True, smtp_conn_id="{{ 'coupang_alerts_' ~ 'smtp' }}")
    notifier({"ti": FakeTI(), "run_id": "r", "params": {"date": "2026-01-06", "lookback_days": 14},
              "coupang_account": ACCOUNT, "coupang_warning": "expires on 2026-01-10 ({{ not a template }})"})
    expected = "[coupang-sales] WARNING coupang_rocket V00034567 2025-12-23..2026-01-06: sub_account_expiring"
    assert smtp.subjects() == [expected] and slack.subjects() == [expected]
    assert "expires on 2026-01-10 ({{ not a template }})" in smtp.bodies()[0], "the message is not a template"


# --- a blocked seller: when it becomes blocked, then at most every COUPANG_BLOCKED_REALERT_HOURS -------


def test_a_blocked_account_alerts_when_blocked_then_once_a_day(warehouse, smtp, slack, monkeypatch):
    from coupang_sales.model import ROCKET, Window
    from coupang_sales.warehouse import record_run

    monkeypatch.delenv("COUPANG_BLOCKED_REALERT_HOURS", raising=False)
    CollectionAlertNotifier().notify(failure_context())
    CollectionAlertNotifier().notify(failure_context())  # the next run, still blocked
    assert smtp.subjects() == [SUBJECT] and slack.subjects() == [SUBJECT]
    CollectionAlertNotifier().notify(failure_context("portal_unavailable"))  # not a seller's action: always
    assert len(smtp.messages) == 2

    warehouse.execute("UPDATE sales.blocked_alerts SET last_alerted_at = now() - interval '25 hours'")
    CollectionAlertNotifier().notify(failure_context())  # a day later, still blocked: reminded
    assert smtp.subjects()[-1].startswith(SUBJECT + " (still blocked since ")
    assert len(smtp.messages) == 3 and len(slack.posts) == 3

    record_run(warehouse, channel=ROCKET, account_id="V00034567", window=Window.ending(D("2026-01-07"), 14),
               status="success", reason=None, message=None, run_id="r2")
    CollectionAlertNotifier().notify(failure_context())  # collected, then blocked again: alerts at once
    assert smtp.subjects()[-1] == SUBJECT + " (blocked again after a successful collection)"
    assert warehouse.execute("SELECT reason, alerts FROM sales.blocked_alerts").fetchall() == \
        [("tax_invoice_pending", 1)]


def test_the_realert_period_is_a_setting(warehouse, smtp, monkeypatch):
    monkeypatch.setenv("COUPANG_BLOCKED_REALERT_HOURS", "0")
    for _ in range(2):
        CollectionAlertNotifier().notify(failure_context("sub_account_expired"))
    assert len(smtp.messages) == 2
