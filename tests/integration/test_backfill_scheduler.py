"""Backfill by date through a real scheduler (airflow standalone, ``scheduler_stack``), as the README
tells an operator to, then the same backfill again with ``--reprocess-behavior completed``."""

from __future__ import annotations

import json

import pytest
from scheduler_stack import (  # noqa: F401 (fixtures)
    DAG_ID,
    EXPECTED,
    D,
    dag_runs,
    module_warehouse,
    order_lines,
    portal,
    scheduler,
    wait_for_successes,
    warehouse,
)

pytestmark = pytest.mark.integration

# The backfill recipe of the README: the first and last Seoul date, the last one up to its end. Two
# dates: each run reads every invoice up to today (the 7 Jan 반출 restates a 5 Jan line in each).
BACKFILL = ("backfill", "create", "--dag-id", DAG_ID,
            "--from-date", "2026-01-06T00:00+09:00", "--to-date", "2026-01-07T23:59+09:00")


def test_backfill_by_date_through_the_scheduler_then_again_changes_nothing(scheduler, warehouse):
    scheduler.cli(*BACKFILL)
    wait_for_successes(scheduler, warehouse, 2)
    # one run per Seoul date, each at 06:00 Asia/Seoul (21:00 UTC the day before)
    assert dag_runs(scheduler) == [("2026-01-05 21:00", "success"), ("2026-01-06 21:00", "success")]
    windows = warehouse.execute("SELECT window_end FROM sales.collection_runs ORDER BY window_end").fetchall()
    assert [w for (w,) in windows] == [D("2026-01-06"), D("2026-01-07")]
    assert order_lines(warehouse) == EXPECTED
    changes = warehouse.execute("SELECT count(*) FROM sales.order_line_changes").fetchone()[0]

    scheduler.cli(*BACKFILL, "--reprocess-behavior", "completed")
    wait_for_successes(scheduler, warehouse, 4)
    assert order_lines(warehouse) == EXPECTED
    assert warehouse.execute("SELECT count(*) FROM sales.order_line_changes").fetchone()[0] == changes, \
        "re-running the backfill changed rows"
    listed = scheduler.cli("dags", "list-runs", DAG_ID, "-o", "json").stdout.strip().splitlines()[-1]
    report = json.loads(listed)  # the CLI's JSON is its last line, after any log lines
    assert len(report) == 2 and {run["state"] for run in report} == {"success"}
