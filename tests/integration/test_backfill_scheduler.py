"""Backfill by date through a real scheduler (airflow standalone, ``scheduler_stack``), as the README
tells an operator to; the README's command to do it again (``--reprocess-behavior completed``) asks for
the same two dates. That re-running a date changes nothing is shown at the cheaper level of
``dag.test()`` (``test_rocket_dag.py``, ``test_jet_dag.py``) and by the property tests."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from scheduler_stack import (  # noqa: F401 (fixtures)
    DAG_ID,
    EXPECTED,
    D,
    dag_runs,
    metadata,
    module_warehouse,
    order_lines,
    portal,
    scheduler,
    wait_for_successes,
    warehouse,
)

pytestmark = pytest.mark.integration

# read by scheduler_stack's ``scheduler`` fixture. This module is about dates: its two backfill runs of the
# one account need not take turns on the machine's one route, as shared sessions would have them do
# (those go through the scheduler in test_scheduler_faults.py and `make routes`).
SCHEDULER_ENV = {"COUPANG_SHARED_BROWSER": "false"}

# The backfill recipe of the README: the first and last Seoul date, the last one up to its end. Two
# dates: each run reads every invoice up to today (the 7 Jan 반출 restates a 5 Jan line in each).
BACKFILL = ("backfill", "create", "--dag-id", DAG_ID,
            "--from-date", "2026-01-06T00:00+09:00", "--to-date", "2026-01-07T23:59+09:00")


def test_backfill_by_date_through_the_scheduler_and_the_command_to_do_it_again(scheduler, warehouse):
    scheduler.cli(*BACKFILL)
    wait_for_successes(scheduler, warehouse, 2)
    # one run per Seoul date, each at 06:00 Asia/Seoul (21:00 UTC the day before)
    assert dag_runs(scheduler) == [("2026-01-05 21:00", "success"), ("2026-01-06 21:00", "success")]
    windows = warehouse.execute("SELECT window_end FROM sales.collection_runs ORDER BY window_end").fetchall()
    assert [w for (w,) in windows] == [D("2026-01-06"), D("2026-01-07")]
    # each run's note says the Seoul date it collects (Airflow names backfill runs by their UTC run-after
    # time itself, whatever the timetable says: 7 January 06:00 Seoul is "2026-01-06T21:00:00+00:00")
    noted = metadata(scheduler, "SELECT r.run_id, n.content FROM dag_run r LEFT JOIN dag_run_note n "
                                "ON n.dag_run_id = r.id WHERE r.dag_id = %s ORDER BY r.logical_date")
    assert noted == [
        ("backfill__2026-01-06T21:00:00+00:00", "Collects 2026-01-06 (Asia/Seoul) and the 14 days before"),
        ("backfill__2026-01-07T21:00:00+00:00", "Collects 2026-01-07 (Asia/Seoul) and the 14 days before")]
    assert order_lines(warehouse) == EXPECTED
    listed = scheduler.cli("dags", "list-runs", DAG_ID, "-o", "json").stdout.strip().splitlines()[-1]
    report = json.loads(listed)  # the CLI's JSON is its last line, after any log lines
    assert len(report) == 2 and {run["state"] for run in report} == {"success"}
    # the same backfill again: with the README's --reprocess-behavior completed it would run both dates
    # again; without it, none (a dry run asks the scheduler's own backfill planner, creating nothing)
    again = scheduler.cli(*BACKFILL, "--reprocess-behavior", "completed", "--dry-run").stdout
    assert "2026-01-05 21:00:00+00:00" in again and "2026-01-06 21:00:00+00:00" in again, again
    without = scheduler.cli(*BACKFILL, "--dry-run").stdout
    assert "2026-01-05 21:00:00+00:00" not in without and "2026-01-06 21:00:00+00:00" not in without, without
    assert len(dag_runs(scheduler)) == 2, "a dry run created runs"


def collected_by_dialog(scheduler, first: str, last: str, ui_zone: str) -> list[dt.date]:
    """The Seoul dates the runs of Airflow's backfill dialog would collect, for a range typed as
    "first 00:00 – last 23:59" in the UI's time zone: the dialog sends those instants to the backfill
    API, whose dry run answers with the runs' logical dates (06:00 Seoul of the date each collects)."""
    zone = ZoneInfo(ui_zone)
    start = dt.datetime.combine(D(first), dt.time(0, 0), zone)
    end = dt.datetime.combine(D(last), dt.time(23, 59), zone)
    answer = scheduler.api("POST", "/api/v2/backfills/dry_run", {
        "dag_id": DAG_ID, "from_date": start.isoformat(), "to_date": end.isoformat(),
        "reprocess_behavior": "completed"})
    seoul = ZoneInfo("Asia/Seoul")
    return [dt.datetime.fromisoformat(run["logical_date"]).astimezone(seoul).date() for run in answer["backfills"]]


def test_the_backfill_dialogs_range_in_asia_seoul_is_the_seoul_dates_collected(scheduler):
    """The UI's default zone is the browser's; with Asia/Seoul (as documented for the deployment) the
    dialog's "6 Jan – 7 Jan" collects 6 and 7 January. In UTC the same entry would collect 7 and 8."""
    in_seoul = collected_by_dialog(scheduler, "2026-01-06", "2026-01-07", "Asia/Seoul")
    assert in_seoul == [D("2026-01-06"), D("2026-01-07")]
    assert collected_by_dialog(scheduler, "2026-01-06", "2026-01-07", "UTC") == [D("2026-01-07"), D("2026-01-08")]
