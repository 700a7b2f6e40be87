"""How a task ends for each failure category (a seller's action: skipped; the rest: failed), what it leaves
for the Grid (the log's first line, the XCom its note comes from, one alert), and the labels and notes the
run's listener writes when the run ends."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from airflow.sdk.exceptions import AirflowFailException

from coupang_sales.airflow_glue import notifiers, outcomes
from coupang_sales.airflow_glue.alerts import Alert
from coupang_sales.airflow_glue.audit import Audit, SellerActionNeeded
from coupang_sales.airflow_glue.ti_notes import Instance, account_labels, grid_changes
from coupang_sales.errors import CATEGORIES, SELLER_ACTION_CATEGORIES, CollectionError

ACCOUNT = {"channel": "coupang_rocket", "account_id": "V00000962", "conn_id": "coupang_rocket_v00000962"}


def test_each_category_has_one_outcome_and_only_the_sellers_actions_skip():
    by_outcome = {outcome: sorted(c for c in CATEGORIES if outcomes.outcome_of(c) == outcome)
                  for outcome in outcomes.TASK_STATE}
    assert by_outcome[outcomes.SELLER_ACTION] == ["auth_challenge", "sub_account_expired", "tax_invoice_pending"]
    assert set(by_outcome[outcomes.SELLER_ACTION]) == SELLER_ACTION_CATEGORIES
    assert by_outcome[outcomes.RETRIED] == ["portal_unavailable", "profile_busy", "warehouse_error"]
    assert "bot_rejected" in by_outcome[outcomes.FAILED] and "export_format_changed" in by_outcome[outcomes.FAILED]
    assert outcomes.outcome_of(None) == outcomes.RETRIED, "an unexpected error is retried, as Airflow does"
    assert outcomes.TASK_STATE == {"seller_action": "skipped", "retried": "up_for_retry", "failed": "failed"}


class Recorded(Audit):
    def __init__(self):
        super().__init__()
        self.rows = []

    def record(self, context, account, window, **row):
        self.rows.append(row)


class FakeTI:
    task_id, dag_id = "collect.check_tax_invoice_block", "coupang_rocket_sales"
    try_number, map_index, log_url = 1, 1, ""

    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


@pytest.fixture
def delivered(monkeypatch):
    """The alerts delivered (no channel, no warehouse: the blocked-alert bookkeeping says 'newly blocked')."""
    sent = []
    monkeypatch.setattr(notifiers, "blocked_alert_due", lambda alert: (True, True, "newly blocked"))
    monkeypatch.setattr(notifiers, "remember_blocked_alert", lambda alert, anew: None)
    monkeypatch.setattr(notifiers.CollectionAlertNotifier, "deliver",
                        lambda self, context, alert: sent.append(alert) or {"e-mail": True})
    return sent


def attempt(audit, error, context):
    """A task body failing with ``error`` in a recorded attempt, wrapped as the tasks are."""
    import datetime as dt

    from coupang_sales.model import Window

    with (outcomes.outcome_first(context, ACCOUNT, "V00000962: check"),
          audit.attempt(context, ACCOUNT, Window(dt.date(2026, 1, 6), dt.date(2026, 1, 6)))):
        raise error


def test_a_sellers_action_is_recorded_blocked_alerted_once_and_left_for_the_note(delivered):
    audit, ti = Recorded(), FakeTI()
    context = {"ti": ti, "run_id": "r1", "params": {"date": "2026-01-06", "lookback_days": 0}}
    error = CollectionError("tax_invoice_pending", "V00000962: Supplier Hub shows an unprocessed tax invoice.")
    with pytest.raises(SellerActionNeeded) as ended:
        attempt(audit, error, context)
    assert [(r["status"], r["reason"]) for r in audit.rows] == [("blocked", "tax_invoice_pending")]
    assert [a.subject for a in delivered] == [
        "[coupang-sales] BLOCKED coupang_rocket V00000962 2026-01-06..2026-01-06: tax_invoice_pending"]
    assert ti.pushed[outcomes.XCOM_KEY] == {"category": "tax_invoice_pending", "action": error.action,
                                            "note": str(ended.value)}
    assert str(ended.value) == f"Seller action needed (tax_invoice_pending): {error.action}"
    # an outer attempt (the extract's, around its deferred checks) does not record it again
    with pytest.raises(SellerActionNeeded), audit.attempt(context, ACCOUNT, None):
        raise ended.value
    assert len(audit.rows) == 1 and len(delivered) == 1
    assert Alert.of({**context, "exception": ended.value, "coupang_account": ACCOUNT}).category \
        == "tax_invoice_pending"


def test_a_pipeline_failure_still_fails_and_is_alerted_as_failed(delivered):
    audit = Recorded()
    with pytest.raises(AirflowFailException) as failed:
        attempt(audit, CollectionError("export_format_changed", "a column is gone"), {"run_id": "r1"})
    assert audit.rows[0]["status"] == "failed" and delivered == [], "Airflow's on_failure_callback alerts it"
    alert = Alert.of({"exception": failed.value, "coupang_account": ACCOUNT, "params": {"date": "2026-01-06"}})
    assert alert.subject.startswith("[coupang-sales] FAILED coupang_rocket V00000962")


def test_the_log_shows_the_sellers_action_first_after_the_folded_steps(caplog, delivered):
    caplog.set_level(logging.INFO, logger=outcomes.__name__)
    skip = SellerActionNeeded(CollectionError("sub_account_expired", "V00000963: sub-account expired on 2026-01-01."))
    with pytest.raises(SellerActionNeeded), outcomes.outcome_first({}, ACCOUNT, "V00000963: sign-on and check"):
        logging.getLogger(outcomes.__name__).info("signing on")
        raise skip
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:3] == ["::group::V00000963: sign-on and check", "signing on", "::endgroup::"]
    assert lines[3].startswith("Seller action needed (sub_account_expired): The master account must click")
    assert lines[4] == "Detail: V00000963: sub-account expired on 2026-01-01."
    assert not any(r.exc_info for r in caplog.records), "an expected outcome: no traceback"


def test_when_the_run_ends_every_instance_gets_its_account_and_the_skipped_check_its_note():
    labels = account_labels([{"account_id": "V1"}, {"account_id": "V2"}, {"account_id": "V3"}])
    note = "Seller action needed (tax_invoice_pending): The seller must process ..."
    instances = [
        Instance("collect.check_tax_invoice_block", 0, "success", "V1", None, False),
        Instance("collect.check_tax_invoice_block", 1, "skipped", "V2", None, False),
        Instance("collect.extract", 1, "skipped", None, None, False),  # skipped by the scheduler: no label
        Instance("collect.extract", 2, "upstream_failed", None, None, False),
        Instance("collect.load", 2, "upstream_failed", None, "look at this", True),  # a person's note
    ]
    changes = grid_changes(instances, labels, {("collect.check_tax_invoice_block", 1): {"note": note}})
    assert [(c.task_id, c.map_index, c.label, c.note, c.drop_note) for c in changes] == [
        ("collect.check_tax_invoice_block", 1, None, note, False),
        ("collect.extract", 1, "V2", None, False),
        ("collect.extract", 2, "V3", None, False),
        ("collect.load", 2, "V3", None, False),
    ]


def test_a_note_the_listener_wrote_goes_once_the_task_no_longer_ends_for_the_seller():
    note = "Seller action needed (tax_invoice_pending): ..."
    cleared_and_collected = Instance("collect.check_tax_invoice_block", 0, "success", "V1", note, False)
    persons = Instance("collect.check_sub_account_expiry", 0, "success", "V1", note, True)
    changes = grid_changes([cleared_and_collected, persons], ["V1"], {})
    assert [(c.task_id, c.drop_note) for c in changes] == [("collect.check_tax_invoice_block", True)]
    again = grid_changes([dataclasses.replace(cleared_and_collected, state="skipped")], ["V1"],
                         {("collect.check_tax_invoice_block", 0): {"note": note}})
    assert again == [], "the same note is not written again"
