"""The collection status page's data: each account's state, freshness and latest task, and freshness alerts.

Real PostgreSQL (pgserver) with the shipped schema: attempts are written with ``record_run`` as
the tasks write them, and the trigger's summary is read through ``sales.collection_status``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from coupang_sales.model import Window
from coupang_sales.warehouse import record_run, upsert_account
from coupang_sales.warehouse.status import StatusQuery, account_statuses, freshness_changes, record_expiry_warning

pytestmark = pytest.mark.integration
TODAY = dt.date(2026, 1, 7)
ROCKET, JET = "coupang_rocket", "coupang_jet"


def window_ending(day: str) -> Window:
    return Window.ending(dt.date.fromisoformat(day), 14)


def attempt(conn, channel, account, status, *, end="2026-01-06", reason=None, run="manual__1", task="collect.load",
            map_index=0, try_number=1):
    record_run(conn, channel=channel, account_id=account, window=window_ending(end), status=status, reason=reason,
               message=f"[{reason}] ..." if reason else None, run_id=run, task_id=task, try_number=try_number,
               dag_id=f"{channel}_sales", map_index=map_index)


@pytest.fixture
def accounts(warehouse):
    """One account in each state the page shows."""
    for account in ("V_OK", "V_TAX", "V_EXPIRED", "V_FAILING", "V_STALE", "V_PAUSED", "V_NEW", "V_EXPIRING",
                    "V_EXTENDED"):
        upsert_account(warehouse, channel=ROCKET, account_id=account, conn_id="c", active=account != "V_PAUSED",
                       seller_name="(주)바른생활" if account == "V_OK" else None)
    upsert_account(warehouse, channel=JET, account_id="A_SMS", conn_id="c", jet_version=2)
    upsert_account(warehouse, channel=JET, account_id="A_OK", conn_id="c", jet_version=1)
    attempt(warehouse, ROCKET, "V_OK", "success", map_index=0)
    attempt(warehouse, ROCKET, "V_TAX", "success", end="2026-01-05", run="scheduled__1")
    attempt(warehouse, ROCKET, "V_TAX", "blocked", reason="tax_invoice_pending", task="collect.check_tax_invoice_block",
            map_index=1)
    attempt(warehouse, ROCKET, "V_EXPIRED", "blocked", reason="sub_account_expired",
            task="collect.check_sub_account_expiry", map_index=2)
    for try_number in (1, 2, 3):
        attempt(warehouse, ROCKET, "V_FAILING", "failed", reason="portal_unavailable", task="collect.extract",
                map_index=3, try_number=try_number)
    attempt(warehouse, ROCKET, "V_STALE", "success", end="2026-01-03")
    attempt(warehouse, ROCKET, "V_PAUSED", "success", end="2026-01-01")
    attempt(warehouse, JET, "A_SMS", "failed", reason="auth_challenge", task="collect.extract", map_index=0)
    attempt(warehouse, JET, "A_OK", "success", map_index=1)
    # the sub-account check of scheduled__5 warned (5 days left); V_EXTENDED's warning is of an older run
    attempt(warehouse, ROCKET, "V_EXPIRING", "success", run="scheduled__5", map_index=4)
    attempt(warehouse, ROCKET, "V_EXTENDED", "success", run="scheduled__6", map_index=5)
    for account, run in (("V_EXPIRING", "scheduled__5"), ("V_EXTENDED", "scheduled__4")):
        record_expiry_warning(warehouse, channel=ROCKET, account_id=account, expires=TODAY + dt.timedelta(days=5),
                              warn_days=7, run_id=run)
    return warehouse


def states(conn, **query) -> dict[str, str]:
    result = account_statuses(conn, StatusQuery(**query), today=TODAY)
    return {row["account_id"]: row["state"] for row in result["rows"]}


def test_each_account_shows_its_state(accounts):
    assert states(accounts) == {"V_TAX": "blocked", "V_EXPIRED": "blocked", "A_SMS": "blocked",
                                "V_FAILING": "failing", "V_STALE": "stale", "V_NEW": "new", "V_OK": "ok",
                                "A_OK": "ok", "V_PAUSED": "paused", "V_EXPIRING": "expiring", "V_EXTENDED": "ok"}


def test_a_sub_account_expiring_in_5_days_is_expiring_with_its_date(accounts):
    rows = {r["account_id"]: r for r in account_statuses(accounts, StatusQuery(), today=TODAY)["rows"]}
    assert rows["V_EXPIRING"]["state"] == "expiring"
    assert rows["V_EXPIRING"]["sub_account_expires"] == dt.date(2026, 1, 12)
    assert "연장하기" in rows["V_EXPIRING"]["action"] and "2026-01-12" in rows["V_EXPIRING"]["action"]
    # a later run whose check did not warn (the master account extended it) ends the state
    assert rows["V_EXTENDED"]["state"] == "ok" and rows["V_EXTENDED"]["sub_account_expires"] is None


def test_the_expiry_warnings_notifier_keeps_the_date_the_check_names(accounts, monkeypatch):
    from coupang_sales.airflow_glue.alerts import remember_expiry_warning
    from coupang_sales.airflow_glue.operators import check_sub_account_expiry

    class Row:
        username, expires = "sub_user", TODAY + dt.timedelta(days=3)

    class Session:
        username = "sub_user"

        def sub_accounts(self):
            return [Row()]

    account = {"channel": ROCKET, "account_id": "V_OK", "conn_id": "c"}
    attempt(accounts, ROCKET, "V_OK", "success", run="scheduled__7")
    monkeypatch.setenv("COUPANG_TODAY", TODAY.isoformat())
    check_sub_account_expiry({"run_id": "scheduled__7"}, Session(), account, warn_days=7,
                             on_expiry_warning=[remember_expiry_warning])
    row = account_statuses(accounts, StatusQuery(search="V_OK", channels=(ROCKET,)), today=TODAY)["rows"][0]
    assert (row["state"], row["sub_account_expires"]) == ("expiring", dt.date(2026, 1, 10))
    assert not remember_expiry_warning({"coupang_warning": "a return without its sale", "coupang_account": account,
                                        "coupang_warning_category": "unapplied_restatement"})


def test_search_finds_a_seller_by_name_and_never_collected_is_the_stalest(accounts):
    assert set(states(accounts, search="바른")) == {"V_OK"}
    row = account_statuses(accounts, StatusQuery(search="바른"), today=TODAY)["rows"][0]
    assert row["seller_name"] == "(주)바른생활"
    stalest = account_statuses(accounts, StatusQuery(sort="freshness", descending=True), today=TODAY)["rows"]
    never = {"V_EXPIRED", "V_FAILING", "V_NEW", "A_SMS"}  # no date collected yet
    assert {r["account_id"] for r in stalest[:4]} == never
    freshest = account_statuses(accounts, StatusQuery(sort="freshness"), today=TODAY)["rows"]
    assert {r["account_id"] for r in freshest[-4:]} == never


def test_the_route_of_the_newest_attempt_that_used_one(accounts):
    record_run(accounts, channel=ROCKET, account_id="V_OK", window=window_ending("2026-01-06"), status="failed",
               reason="portal_unavailable", run_id="manual__2", task_id="collect.extract", route="proxy-a")
    attempt(accounts, ROCKET, "V_OK", "success", run="manual__2")  # the load: no route of its own
    row = account_statuses(accounts, StatusQuery(search="V_OK", channels=(ROCKET,)), today=TODAY)["rows"][0]
    assert row["last_route"] == "proxy-a"


def test_blocked_and_failing_rows_carry_reason_attempts_action_and_task(accounts):
    rows = {r["account_id"]: r for r in account_statuses(accounts, StatusQuery(), today=TODAY)["rows"]}
    assert rows["V_TAX"]["last_reason"] == "tax_invoice_pending" and "세금계산서" in rows["V_TAX"]["action"]
    assert "연장하기" in rows["V_EXPIRED"]["action"]
    assert "python -m coupang_sales.sign_in coupang_jet A_SMS" in rows["A_SMS"]["action"]
    failing = rows["V_FAILING"]
    assert (failing["run_attempts"], failing["last_task_id"], failing["last_map_index"],
            failing["last_try_number"]) == (3, "collect.extract", 3, 3)
    # the blocked account keeps its last success and how old its data is
    assert rows["V_TAX"]["last_success_window_end"] == dt.date(2026, 1, 5)
    assert rows["V_TAX"]["freshness_days"] == 2 and not rows["V_TAX"]["over_threshold"]
    assert rows["V_OK"]["freshness_days"] == 1 and rows["V_OK"]["action"] is None
    assert rows["V_STALE"]["freshness_days"] == 4 and rows["V_STALE"]["over_threshold"]
    assert rows["V_NEW"]["freshness_days"] is None and rows["V_NEW"]["last_run_id"] is None


def test_filters_search_sort_and_pages(accounts):
    assert set(states(accounts, channels=(JET,))) == {"A_SMS", "A_OK"}
    assert set(states(accounts, states=("blocked",))) == {"V_TAX", "V_EXPIRED", "A_SMS"}
    assert set(states(accounts, channels=(ROCKET,), states=("ok", "stale"))) == {"V_OK", "V_STALE", "V_EXTENDED"}
    assert set(states(accounts, search="v_ta")) == {"V_TAX"}
    assert states(accounts, search="%") == {}  # a wildcard typed in the search is a literal character
    by_freshness = account_statuses(accounts, StatusQuery(sort="freshness", descending=True), today=TODAY)["rows"]
    assert [r["account_id"] for r in by_freshness][4:6] == ["V_PAUSED", "V_STALE"]  # after the 4 never collected
    pages = [account_statuses(accounts, StatusQuery(sort="account", page=n, page_size=4), today=TODAY)
             for n in (1, 2, 3)]
    assert [len(p["rows"]) for p in pages] == [4, 4, 3] and {p["total"] for p in pages} == {11}
    assert [r["account_id"] for p in pages for r in p["rows"]] == sorted(
        ["V_OK", "V_TAX", "V_EXPIRED", "V_FAILING", "V_STALE", "V_PAUSED", "V_NEW", "A_SMS", "A_OK", "V_EXPIRING",
         "V_EXTENDED"])
    assert pages[0]["counts"] == {"ok": 3, "expiring": 1, "blocked": 3, "failing": 1, "stale": 1, "new": 1,
                                  "paused": 1}


def test_the_query_refuses_unknown_sorts_and_states():
    with pytest.raises(ValueError, match="sort must be one of"):
        StatusQuery(sort="1; DROP TABLE sales.accounts")
    with pytest.raises(ValueError, match="state must be one of"):
        StatusQuery(states=("late",))


def test_a_backfill_of_old_dates_does_not_move_freshness_back(accounts):
    attempt(accounts, ROCKET, "V_OK", "success", end="2025-12-01", run="backfill__1")
    row = account_statuses(accounts, StatusQuery(search="V_OK", channels=(ROCKET,)), today=TODAY)["rows"][0]
    assert row["last_success_window_end"] == dt.date(2025, 12, 1) and row["last_run_id"] == "backfill__1"
    assert row["collected_through"] == dt.date(2026, 1, 6) and row["state"] == "ok"


def test_the_channel_threshold_is_a_setting(accounts):
    accounts.execute("INSERT INTO sales.channel_settings (channel, stale_after_days) VALUES (%s, 5)", (ROCKET,))
    assert states(accounts, search="V_STALE")["V_STALE"] == "ok"


def test_the_summary_is_filled_from_the_audit_of_an_older_warehouse(accounts):
    from coupang_sales.warehouse.schema_versions import MIGRATIONS_DIR

    before = account_statuses(accounts, StatusQuery(), today=TODAY)["rows"]
    accounts.execute("DELETE FROM sales.account_status")  # as a warehouse with attempts before 0003
    accounts.execute("DROP FUNCTION sales.collection_status(date)")  # 0003's signature, as 0004 found it
    for later in ("0003_collection_status.sql", "0004_versions_and_cursors.sql",
                  "0007_status_page_sellers_expiry_routes.sql"):
        accounts.execute((MIGRATIONS_DIR / later).read_text(encoding="utf-8"))
    assert account_statuses(accounts, StatusQuery(), today=TODAY)["rows"] == before


def test_freshness_alerts_once_when_stale_and_once_when_recovered(accounts):
    sent = []
    first = freshness_changes(accounts, channel=ROCKET, today=TODAY, send=sent.append)
    # V_STALE is 4 days behind; the paused account (9 days behind) is not alerted, nor those never
    # collected (V_EXPIRED, V_FAILING: their own alerts went out) or never attempted (V_NEW)
    assert [(c.account_id, c.became) for c in first] == [("V_STALE", "stale")]
    assert freshness_changes(accounts, channel=ROCKET, today=TODAY, send=sent.append) == []  # the next run
    attempt(accounts, ROCKET, "V_STALE", "success", end="2026-01-06", run="manual__2")
    recovered = freshness_changes(accounts, channel=ROCKET, today=TODAY, send=sent.append)
    assert [(c.account_id, c.became, c.freshness_days) for c in recovered] == [("V_STALE", "recovered", 1)]
    assert len(sent) == 2
    # a day later V_TAX (blocked since 5 January) falls behind too
    later = freshness_changes(accounts, channel=ROCKET, today=TODAY + dt.timedelta(days=1), send=sent.append)
    assert [(c.account_id, c.became, c.reason) for c in later] == [("V_TAX", "stale", "tax_invoice_pending")]


def test_an_alert_that_cannot_be_sent_is_sent_at_the_next_check(accounts):
    def broken(change):
        raise OSError("smtp down")

    with pytest.raises(OSError):
        freshness_changes(accounts, channel=ROCKET, today=TODAY, send=broken)
    sent = []
    freshness_changes(accounts, channel=ROCKET, today=TODAY, send=sent.append)
    assert [c.account_id for c in sent] == ["V_STALE"]


def test_freshness_alerts_go_out_through_the_collection_alerts(accounts, smtp, monkeypatch):
    from coupang_sales.airflow_glue.freshness import send_freshness_alerts

    class ReportTI:
        dag_id, task_id, log_url = "coupang_rocket_sales", "report", "http://ui/log/report"

    context = {"ti": ReportTI(), "run_id": "manual__1", "params": {"date": "2026-01-06", "lookback_days": 14}}
    monkeypatch.setenv("COUPANG_TODAY", TODAY.isoformat())
    send_freshness_alerts(context, ROCKET, accounts)
    send_freshness_alerts(context, ROCKET, accounts)  # the next run's report: nothing new
    assert smtp.subjects() == ["[coupang-sales] WARNING coupang_rocket V_STALE 2025-12-23..2026-01-06: "
                               "collection_stale"]
    body = smtp.bodies()[0]
    assert "collected through 2026-01-03, 4 day(s) ago, over the 2-day threshold of coupang_rocket" in body
    assert "Check that the channel's DAG runs" in body
    # V_TAX, blocked since its success of 5 January, falls behind a day later: the alert names the block
    monkeypatch.setenv("COUPANG_TODAY", "2026-01-08")
    send_freshness_alerts(context, ROCKET, accounts)
    body = smtp.bodies()[1]
    assert "V_TAX: collected through 2026-01-05, 3 day(s) ago" in body and "세금계산서" in body


def test_a_run_of_one_account_lists_that_account_alone(accounts):
    from coupang_sales.warehouse import active_accounts

    assert [a["account_id"] for a in active_accounts(accounts, ROCKET, account_id="V_PAUSED")] == ["V_PAUSED"]
    assert active_accounts(accounts, ROCKET, account_id="A_OK") == []  # another channel's
    assert len(active_accounts(accounts, ROCKET)) == 8
