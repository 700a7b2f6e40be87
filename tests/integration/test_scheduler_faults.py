"""Through a real scheduler (airflow standalone, ``scheduler_stack``): two runs of one window at once,
one of their task processes killed in the middle of its load, leave the rows of one; a seller's action
and a portal failure side by side end in two different states, as the API server shows them to the Grid.
The module's tasks share one browser session per account and run (``COUPANG_SHARED_BROWSER``), so each
Supplier Hub check runs in its own task."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from load_lock import LoadLock
from scheduler_stack import (  # noqa: F401 (fixtures)
    BLOCKED_SELLER,
    DAG_ID,
    EXPECTED,
    PORTAL_FAILURE,
    metadata,
    module_warehouse,
    order_lines,
    portal,
    scheduler,
    warehouse,
)

pytestmark = pytest.mark.integration

# read by scheduler_stack's ``scheduler`` fixture: one browser session per account and run, on the one
# route of this machine; a task that finds it taken asks again 3 s later (not the default 30). Task logs
# at INFO, as deployed: Airflow's own start-up lines are then in its folded "Pre Execute" group.
SCHEDULER_ENV = {"COUPANG_SHARED_BROWSER": "true", "COUPANG_ROUTE_WAIT_SECONDS": "3",
                 "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}

# What one run for 6 Jan loads: it reads the invoices up to today (8 Jan) and derives every line
# their facts touch, so 200000015 is restated to 0 by the 7 Jan 반출 and the 7 Jan order is
# stored too: the same rows as the whole backfill.
EXPECTED_6_JAN = EXPECTED


def trigger(airflow, run_id: str, day: str) -> None:
    """A manual run collecting the window ending ``day``, as from the UI's trigger form."""
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps({"date": day}))


def wait_for_runs(airflow, run_ids: list[str], timeout: float = 600) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = dict(metadata(airflow, "SELECT run_id, state FROM dag_run WHERE dag_id = %s"))
        if all(states.get(run_id) in ("success", "failed") for run_id in run_ids):
            return {run_id: states[run_id] for run_id in run_ids}
        time.sleep(2)
    pytest.fail(f"runs {run_ids} not finished within {timeout:g} s; scheduler log: {airflow.log_path}")


def load_tries(airflow, run_id: str) -> list[tuple]:
    return metadata(airflow, "SELECT try_number, state FROM task_instance WHERE dag_id = %s "
                             f"AND task_id = 'collect.load' AND run_id = '{run_id}'")


def logged_changes(conn) -> list[tuple]:
    return conn.execute("SELECT order_id, change, count(*) FROM sales.order_line_changes "
                        "GROUP BY order_id, change ORDER BY order_id, change").fetchall()


def test_two_runs_at_once_one_worker_killed_in_its_load_leave_the_rows_of_one(scheduler, warehouse,
                                                                          module_warehouse):
    """Two runs of the same window reach their load together (one inside its transaction, the other
    waiting on the account's lock); the first load's task process gets SIGKILL there. Airflow retries
    that load; both runs succeed, and the warehouse holds one copy: the killed transaction left nothing,
    and whichever load came second found the rows and changed nothing."""
    waiting: list[list[int]] = []
    killed: list[int] = []

    def kill_the_first(pids: list[int]) -> None:
        waiting.append(pids)
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])
        psutil.Process(pids[0]).wait(30) if psutil.pid_exists(pids[0]) else None

    lock = LoadLock(module_warehouse[1], kill_the_first, loads=2)
    lock.start()
    trigger(scheduler, "overlap_a", "2026-01-06")
    trigger(scheduler, "overlap_b", "2026-01-06")
    lock.join(600)
    assert lock.error is None, lock.error
    assert len(set(waiting[0])) == 2, "two loads were in flight at once"
    assert killed and not psutil.pid_exists(killed[0]), "the worker's task process is gone"
    assert wait_for_runs(scheduler, ["overlap_a", "overlap_b"]) == {"overlap_a": "success", "overlap_b": "success"}
    tries = sorted(load_tries(scheduler, run_id) for run_id in ("overlap_a", "overlap_b"))
    assert tries == [[(1, "success")], [(2, "success")]], "the killed load ran again, as a retry"
    assert order_lines(warehouse) == EXPECTED_6_JAN
    assert logged_changes(warehouse) == [(order_id, "added", 1) for order_id, *_ in EXPECTED_6_JAN], \
        "each line added once: the killed transaction left nothing, the later load changed nothing"
    successes = warehouse.execute("SELECT run_id FROM sales.collection_runs WHERE status = 'success' "
                                  "ORDER BY run_id").fetchall()
    assert successes == [("overlap_a",), ("overlap_b",)]


def shown_first(entries: list) -> str:
    """The first log line the UI shows open: the first event outside every ``::group::`` (folded)."""
    depth = 0
    for entry in entries:
        event = str(entry.get("event", "")) if isinstance(entry, dict) else str(entry)
        if event.startswith("::group::"):
            depth += 1
        elif event.startswith("::endgroup::"):
            depth = max(0, depth - 1)
        elif depth == 0 and event.strip():
            return event
    return ""


def test_a_sellers_action_is_skipped_with_its_note_and_a_portal_failure_is_failed(scheduler, warehouse,
                                                                                  module_warehouse):
    """One run over a seller whose tax invoice is pending and an account whose invoice page the portal's
    bot protection refuses: the seller's check task ends skipped (nothing after it runs) with the action
    as its note and the first line of its log, no traceback; the portal failure's extract fails
    (bot_rejected, not retried) and fails the run (COUPANG_FAIL_RUN_ON=action_needed); every mapped
    instance, skipped and upstream_failed ones included, is labelled by its account. Read through the
    API server, as the Grid reads it."""
    conn = module_warehouse[0]
    conn.execute("UPDATE sales.accounts SET active = (account_id = ANY(%s)) WHERE channel = 'coupang_rocket'",
                 (list((BLOCKED_SELLER, PORTAL_FAILURE)),))
    try:
        trigger(scheduler, "blocked_and_failed", "2026-01-06")
        assert wait_for_runs(scheduler, ["blocked_and_failed"]) == {"blocked_and_failed": "failed"}
    finally:
        conn.execute("UPDATE sales.accounts SET active = (account_id = 'V00000100') "
                     "WHERE channel = 'coupang_rocket'")
    listed = scheduler.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/blocked_and_failed/taskInstances?limit=100")
    tis = {(ti["task_id"], ti["rendered_map_index"]): ti for ti in listed["task_instances"]}
    print({key: (ti["state"], ti["note"]) for key, ti in sorted(tis.items(), key=lambda kv: str(kv[0]))})

    def state(task: str, account: str) -> str:
        return tis[(f"collect.{task}", account)]["state"]

    every = ("check_sub_account_expiry", "check_tax_invoice_block", "extract", "validate", "transform", "load")
    assert {key for key in tis if key[0].startswith("collect.")} == {
        (f"collect.{task}", account) for task in every for account in (BLOCKED_SELLER, PORTAL_FAILURE)}, \
        "every mapped instance labelled by its account"
    assert [state(task, BLOCKED_SELLER) for task in every] == ["success"] + ["skipped"] * 5
    blocked = tis[("collect.check_tax_invoice_block", BLOCKED_SELLER)]
    assert blocked["note"].startswith("Seller action needed (tax_invoice_pending): The seller must process")
    assert [state(task, PORTAL_FAILURE) for task in every] == ["success", "success", "failed"] + \
        ["upstream_failed"] * 3
    failed = tis[("collect.extract", PORTAL_FAILURE)]
    assert failed["note"] is None and failed["try_number"] == 1, "not retried: a person must change the browser"
    assert tis[("report", None)]["state"] == "failed", "the portal failure fails the run, the seller's action not"

    log = scheduler.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/blocked_and_failed/taskInstances/"
                               f"collect.check_tax_invoice_block/logs/1?map_index={blocked['map_index']}")
    entries = log["content"]
    assert shown_first(entries).startswith("Seller action needed (tax_invoice_pending): The seller must process"), \
        [(e.get("timestamp"), e.get("logger"), str(e.get("event"))[:80]) for e in entries[:16] if isinstance(e, dict)]
    assert not [e for e in entries if isinstance(e, dict) and e.get("error_detail")], "no traceback"
    assert [(r, s) for r, s in warehouse.execute(
        "SELECT account_id, status FROM sales.collection_runs WHERE run_id = 'blocked_and_failed' "
        "AND status <> 'success' ORDER BY account_id").fetchall()] == \
        [(BLOCKED_SELLER, "blocked"), (PORTAL_FAILURE, "failed")]
    if os.environ.get("GRID_SCREENSHOT"):  # GRID_SCREENSHOT=docs/grid-blocked-and-failed.png keeps it there
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
        from grid_screenshot import grid_screenshot

        user, password = next(iter(scheduler.logins().items()))
        grid_screenshot(scheduler.url, user, password, "blocked_and_failed", Path(os.environ["GRID_SCREENSHOT"]),
                        expect=(BLOCKED_SELLER, PORTAL_FAILURE))
