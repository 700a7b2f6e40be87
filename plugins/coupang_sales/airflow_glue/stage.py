"""Runs one stage of one account's collection as an Airflow task: context, plan, audit, working copy.

The extract decides the account's ``RunPlan`` (the window caught up to its cursor, the list-until
date, the staging folder, the start) and every later task reads it back from its upstream XCom.
``run_stage`` wraps each stage the same way: the task's context labelled with the account, an
attempt recorded in the audit whatever happens, the account's staging folder as a local working
copy, and the stage's typed summary added to the XCom it returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import get_current_context

from coupang_sales.airflow_glue.alerts import UNAPPLIED_ACTION, UNAPPLIED_CATEGORY, unapplied_warning
from coupang_sales.airflow_glue.audit import Audit
from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier, send_warning
from coupang_sales.airflow_glue.outcomes import outcome_first
from coupang_sales.airflow_glue.shared_browser import leased_browser, shared_browser_enabled
from coupang_sales.airflow_glue.staging import account_folder, staging_path, working_copy
from coupang_sales.airflow_glue.window import (
    GAP_CATEGORY,
    CatchUp,
    catch_up,
    gap_action,
    list_until,
    max_catch_up_days,
    resolve_window,
)
from coupang_sales.channel import Channel, PreCheck
from coupang_sales.model import Window
from coupang_sales.plan import RunPlan, StageSummary

log = logging.getLogger(__name__)

# What transform and load read from an account's staging folder: frames and small JSON files, not the exports.
STAGED_DATA = ("*.parquet", "*.json")
DEFERRED_CHECKS_FILE = "deferred_checks_passed.json"


def labelled_context(account: Mapping[str, Any]) -> dict[str, Any]:
    """The task's context, naming the account for the UI label and for the failure alert."""
    context = get_current_context()
    context["account_label"] = account["account_id"]
    context["coupang_account"] = account
    return context


def account_window(context: Mapping[str, Any], account: Mapping[str, Any], window: Window) -> CatchUp:
    """``catch_up`` of a daily window with the account's cursor read from the warehouse; a range run
    (``from_date``) collects exactly what it names."""
    if (context.get("params") or {}).get("from_date"):
        return CatchUp(window, None)
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
    from coupang_sales.warehouse import collection_cursor

    bound = max_catch_up_days()
    with WarehouseHook().connected() as conn, WarehouseHook.errors(f"cursor of {account['account_id']}", conn):
        through = collection_cursor(conn, channel=account["channel"], account_id=account["account_id"])
    return catch_up(window, through, bound=bound)


def send_gap_warning(context: Mapping[str, Any], account: Mapping[str, Any], caught: CatchUp) -> None:
    """A warning alert for a gap longer than the bound (the run itself goes on with its look-back window)."""
    if caught.gap is None:
        return
    dag_id = getattr(context.get("dag"), "dag_id", None) or f"{account['channel']}_sales"
    action = gap_action(dag_id, caught.range_params or {}).replace(
        "CHANNEL ACCOUNT", f"{account['channel']} {account['account_id']}")
    send_warning(context, account, detail=f"{account['account_id']} ({caught.window}): {caught.gap}",
                 category=GAP_CATEGORY, action=action)


def send_unapplied_warning(context: Mapping[str, Any], account: Mapping[str, Any], window: Window,
                           summary: Mapping[str, Any]) -> None:
    """A warning alert (not a failure) for what the load could not apply; the run still succeeds."""
    message = unapplied_warning(account, window, summary)
    if message is not None:
        send_warning(context, account, detail=message, category=UNAPPLIED_CATEGORY, action=UNAPPLIED_ACTION)


def plan_run(context: Mapping[str, Any], channel: Channel, account: Mapping[str, Any], *,
             audit: Audit) -> RunPlan:
    """The account's plan for this run: its window (caught up to its cursor, a too-long gap warned),
    the last date read for restatements, its staging folder and the start."""
    window = resolve_window(context)
    with audit.attempt(context, account, window):  # the account's cursor: a gap is collected whole
        caught = account_window(context, account, window)
    send_gap_warning(context, account, caught)
    window = caught.window
    stages = channel.stages_for(account)
    return RunPlan(account=dict(account), window=window,
                   list_until=list_until(context, window) if stages.reads_after_window else window.end,
                   staging=str(account_folder(context, account["account_id"])),
                   started_at=dt.datetime.now(dt.UTC), collected_through_before=caught.collected_through,
                   gap=caught.gap)


@contextlib.contextmanager
def run_stage(context: Mapping[str, Any], plan: RunPlan, upstream: Mapping[str, Any], *, audit: Audit,
              folder: str = "raw", only: Sequence[str] | None = None, fresh: Sequence[str] = (),
              audit_upstream: bool = False) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The account's staging ``folder`` (``raw/``; '' for the whole account folder) as a local working copy
    (of the files matching ``only``, default all; ``fresh``: sub-folders emptied first), in a recorded attempt.

    Yields the folder and the XCom the task returns: the plan, the upstream summaries, and what the
    block adds (``stage_result``). ``audit_upstream``: a failed attempt records the upstream summaries.
    """
    account = plan.account.model_dump()
    result: dict[str, Any] = {**upstream, **plan.to_xcom()}
    with (audit.attempt(context, account, plan.window) as counts,
          working_copy(staging_path(plan.staging) / folder if folder else staging_path(plan.staging),
                       only=only, fresh=fresh) as work):
        if audit_upstream:
            counts.update(result)
        yield work, result


def stage_result(result: dict[str, Any], summary: StageSummary) -> dict[str, Any]:
    result.update(summary.to_xcom())
    return result


def deferred_checks(context, session, plan: RunPlan, pre_checks: Sequence[PreCheck]) -> None:
    """Sign on in the extract's session and run the checks that deferred to it (their failures are
    the extract's, with the same reasons and actions)."""
    from coupang_sales.airflow_glue.operators import run_deferred_checks

    if not pre_checks:
        return
    ti = context["ti"]
    group = ti.task_id.rsplit(".", 1)[0] + "." if "." in ti.task_id else ""
    outcomes = {check.value: ti.xcom_pull(task_ids=group + check.value, map_indexes=ti.map_index)
                for check in pre_checks}
    # a retry of the extract does not repeat a check an earlier try passed (nor its expiry warning)
    passed_file = account_folder(context, plan.account.account_id) / DEFERRED_CHECKS_FILE
    passed = set(json.loads(passed_file.read_text(encoding="utf-8"))) if passed_file.exists() else set()
    outcomes = {name: outcome for name, outcome in outcomes.items() if name not in passed}
    if not any((outcome or {}).get("deferred_to_extract") for outcome in outcomes.values()):
        return
    session.login()
    account = plan.account.model_dump()
    ran = run_deferred_checks(context, session, account, plan.window, outcomes=outcomes,
                              on_expiry_warning=[CollectionAlertNotifier(warning=True)])
    passed_file.write_text(json.dumps(sorted(passed | set(ran))), encoding="utf-8")
    log.info("%s: ran %s in the extract's session", plan.account.account_id, ", ".join(ran))


class ChannelStages:
    """The four task bodies of a channel's collection of one account, each run by ``run_stage``.

    ``audit`` and ``portal_hook`` are where the tasks write their attempts and open the portal; a
    test passes its own.
    """

    def __init__(self, channel: Channel, *, audit: Audit | None = None,
                 portal_hook: Callable[[str], Any] | None = None) -> None:
        self.channel = channel
        self.audit = audit or Audit()
        self._portal_hook = portal_hook

    def portal_hook(self, conn_id: str):
        if self._portal_hook is not None:
            return self._portal_hook(conn_id)
        from coupang_sales.airflow_glue.hooks import portal_hook

        return portal_hook(self.channel, conn_id)

    def extract(self, account: Mapping[str, Any]) -> dict[str, Any]:
        """Sign on and stage the raw files (after the checks that deferred to it); a seller's action ends
        the task skipped, the action the log's first line shown (``coupang_sales.airflow_glue.outcomes``)."""
        context = labelled_context(account)
        with outcome_first(context, account, f"{account['account_id']}: sign-on and extract"):
            return self._extract(context, account)

    def _extract(self, context: dict[str, Any], account: Mapping[str, Any]) -> dict[str, Any]:
        from coupang_sales.airflow_glue.hooks import account_session

        plan = plan_run(context, self.channel, account, audit=self.audit)
        stages = self.channel.stages_for(account)
        with run_stage(context, plan, {}, audit=self.audit, folder="", only=(), fresh=("raw",)) as (work, result):
            if shared_browser_enabled():  # the checks ran in this session already, each in its own task
                with (leased_browser(context, self.channel, account, last=True) as factory,
                      account_session(context, account, self.portal_hook(account["conn_id"]),
                                      download_dir=work / "downloads", artifacts_dir=work / "artifacts",
                                      driver_factory=factory) as session):
                    summary = stages.extract(session, plan, work / "raw")
                result["route"] = context.get("coupang_route")
            else:
                with account_session(context, account, self.portal_hook(account["conn_id"]),
                                     download_dir=work / "downloads", artifacts_dir=work / "artifacts") as session:
                    deferred_checks(context, session, plan, self.channel.pre_checks)
                    summary = stages.extract(session, plan, work / "raw")
        return stage_result(result, summary)

    def validate(self, account: Mapping[str, Any], extracted: Mapping[str, Any]) -> dict[str, Any]:
        context, plan = labelled_context(account), RunPlan.from_xcom(extracted)
        with run_stage(context, plan, extracted, audit=self.audit) as (work, result):
            summary = self.channel.stages_for(account).validate(plan, work)
        return stage_result(result, summary)

    def transform(self, account: Mapping[str, Any], validated: Mapping[str, Any]) -> dict[str, Any]:
        context, plan = labelled_context(account), RunPlan.from_xcom(validated)
        with run_stage(context, plan, validated, audit=self.audit, only=STAGED_DATA) as (work, result):
            summary = self.channel.stages_for(account).transform(plan, work)
        return stage_result(result, summary)

    def load(self, account: Mapping[str, Any], transformed: Mapping[str, Any]) -> dict[str, Any]:
        from coupang_sales.airflow_glue.assets import attach_extras
        from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
        from coupang_sales.warehouse import account_lock_key, changed_sales_dates, warehouse_now

        context, plan = labelled_context(account), RunPlan.from_xcom(transformed)
        with run_stage(context, plan, transformed, audit=self.audit, only=STAGED_DATA,
                       audit_upstream=True) as (work, result):
            with WarehouseHook().connected() as conn, WarehouseHook.errors(
                    f"load of {account['account_id']} {plan.window}", conn,
                    lock_keys=(account_lock_key(account["channel"], account["account_id"]),)):
                since = warehouse_now(conn)
                summary = self.channel.stages_for(account).load(conn, plan, work, run_id=context.get("run_id"))
                changed = changed_sales_dates(conn, channel=account["channel"],
                                              account_id=account["account_id"], since=since)
        result = stage_result(result, summary)
        self.audit.success(context, account, plan.window, started=plan.started_at, counts=result)
        send_unapplied_warning(context, account, plan.window, result)
        attach_extras(context, self.channel, account, transformed["window"], result, changed)
        return result
