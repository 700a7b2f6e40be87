"""When the report task fails the run: COUPANG_FAIL_RUN_ON and the accounts that count."""

from __future__ import annotations

import pytest

from coupang_sales.airflow_glue.report import fail_run_on, run_failures
from coupang_sales.errors import CollectionError


def report(*rows: tuple[str, str, str | None]) -> dict:
    return {"accounts": [{"account_id": a, "status": s, "reason": r} for a, s, r in rows]}


SELLER_BLOCKED = report(("V1", "success", None), ("V2", "blocked", "tax_invoice_pending"),
                        ("V3", "blocked", "sub_account_expired"), ("V4", "blocked", "auth_challenge"))
DATA_TEAM = report(("V1", "success", None), ("V2", "blocked", "tax_invoice_pending"),
                   ("V5", "failed", "export_format_changed"), ("V6", "not_recorded", None))


def ids(rows) -> list[str]:
    return [row["account_id"] for row in rows]


def test_by_default_a_sellers_own_action_does_not_fail_the_run(monkeypatch):
    monkeypatch.delenv("COUPANG_FAIL_RUN_ON", raising=False)
    assert fail_run_on() == "action_needed"
    assert run_failures(SELLER_BLOCKED, fail_run_on()) == []
    assert ids(run_failures(DATA_TEAM, fail_run_on())) == ["V5", "V6"], "the data team's failures still fail it"


def test_any_fails_the_run_for_every_account_that_did_not_load(monkeypatch):
    monkeypatch.setenv("COUPANG_FAIL_RUN_ON", "any")
    assert ids(run_failures(SELLER_BLOCKED, fail_run_on())) == ["V2", "V3", "V4"]


def test_never_keeps_every_run_green(monkeypatch):
    monkeypatch.setenv("COUPANG_FAIL_RUN_ON", "never")
    assert run_failures(DATA_TEAM, fail_run_on()) == []


def test_an_unknown_value_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("COUPANG_FAIL_RUN_ON", "sometimes")
    with pytest.raises(CollectionError) as caught:
        fail_run_on()
    assert caught.value.category == "configuration_error" and "action_needed" in str(caught.value)
