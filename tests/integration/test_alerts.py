"""Failure alerts: the message a data engineer receives, sent to a real local SMTP server."""

from __future__ import annotations

import pytest

from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier, alert_facts
from coupang_sales.errors import CollectionError

pytestmark = pytest.mark.integration
ACCOUNT = {"channel": "coupang_rocket", "account_id": "V00034567", "conn_id": "c", "jet_version": None}


class FakeTask:
    account = ACCOUNT


class FakeTI:
    dag_id, task_id, log_url = "coupang_rocket_sales", "collect.check_tax_invoice_block", "http://ui/log/1"


def failure_context():
    error = CollectionError("tax_invoice_pending", "V00034567: Supplier Hub shows an unprocessed tax invoice.")
    try:
        raise RuntimeError("wrapped") from error
    except RuntimeError as exc:
        wrapped = exc
    return {"task": FakeTask(), "ti": FakeTI(), "exception": wrapped, "run_id": "scheduled__2026-01-06",
            "params": {"date": "2026-01-06", "lookback_days": 14}}


def test_alert_names_channel_account_window_category_action_and_log():
    facts = alert_facts(failure_context())
    assert facts["channel"] == "coupang_rocket" and facts["account"] == "V00034567"
    assert facts["window"] == "2025-12-23..2026-01-06" and facts["category"] == "tax_invoice_pending"
    assert "tax invoice" in facts["action"] and facts["log_url"] == "http://ui/log/1"


def test_failure_alert_is_emailed_through_the_smtp_connection(smtp):
    CollectionAlertNotifier().notify(failure_context())
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["data-eng@example.com"]
    assert message["Subject"] == "[coupang-sales] FAILED coupang_rocket V00034567 2025-12-23..2026-01-06: " \
                                 "tax_invoice_pending"
    body = message.get_content()
    assert "Action:   The seller must process" in body and "http://ui/log/1" in body


def test_no_smtp_connection_means_no_email_and_no_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_COUPANG_ALERTS_SMTP", raising=False)
    CollectionAlertNotifier().notify(failure_context())  # only logged


def test_failure_alert_is_posted_to_the_slack_webhook(slack):
    CollectionAlertNotifier().notify(failure_context())
    assert slack.subjects() == ["[coupang-sales] FAILED coupang_rocket V00034567 2025-12-23..2026-01-06: "
                                "tax_invoice_pending"]
    text = slack.posts[0]["text"]
    assert "Action:   The seller must process" in text and "http://ui/log/1" in text
