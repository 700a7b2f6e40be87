"""Builds the per-channel collection DAG: list accounts, then per account checks, extract, validate, transform, load."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, get_current_context, task, task_group

from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier
from coupang_sales.airflow_glue.operators import SubAccountExpiryOperator, TaxInvoiceBlockOperator
from coupang_sales.airflow_glue.runtime import (
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_RESTATEMENT_HORIZON_DAYS,
    list_until,
    record_success,
    recorded_attempt,
    resolve_window,
    staging_dir,
    warehouse_connection,
)
from coupang_sales.errors import CollectionError
from coupang_sales.model import JET, ROCKET, Window

# Mapped task instances are named by their account in the UI; each task sets the variable.
TASK_LABEL = OPERATOR_LABEL = "{{ account_label }}"

DAG_TIMEZONE = pendulum.timezone("Asia/Seoul")  # Airflow serialises pendulum zones only
SCHEDULE = "0 6 * * *"  # 06:00 Asia/Seoul, collecting up to the day before
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-engineering",
    # Only transient failures reach a retry: the others raise AirflowFailException.
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=int(os.environ.get("COUPANG_RETRY_DELAY_SECONDS", "120"))),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=30),
}

PARAMS = {
    "date": Param(None, type=["null", "string"], format="date",
                  description="Last Asia/Seoul date of the window (YYYY-MM-DD). Empty: the run's logical date."),
    "lookback_days": Param(DEFAULT_LOOKBACK_DAYS, type="integer", minimum=0, maximum=366,
                           description="Days before 'date' re-collected, so later restatements land."),
    "restatement_horizon_days": Param(
        DEFAULT_RESTATEMENT_HORIZON_DAYS, type="integer", minimum=0, maximum=366,
        description="Rocket: how many days after the window later invoices are read for 반출 restatements."),
}

TASK_DOCS = {
    "list_accounts": "Reads the active accounts of the channel from `sales.accounts` (ids and connection names only).",
    "check_sub_account_expiry": SubAccountExpiryOperator.__doc__,
    "check_tax_invoice_block": TaxInvoiceBlockOperator.__doc__,
    "extract": "Logs in with a real browser and stages the raw portal files for the window.",
    "validate": "Parses the staged files by header name and runs the Great Expectations suite. "
                "A failure keeps `quality_result.json` in the staging folder and loads nothing.",
    "transform": "Applies the channel policy (PRODUCT.md §2) to the validated rows.",
    "load": "Replaces the account's rows of the window in one transaction and records the run.",
}


def labelled_context(account: dict[str, Any]) -> dict[str, Any]:
    context = get_current_context()
    context["account_label"] = account["account_id"]
    return context


def _window_of(summary: dict[str, Any]) -> Window:
    return Window(dt.date.fromisoformat(summary["window"][0]), dt.date.fromisoformat(summary["window"][1]))


def _rocket_tasks(account):
    from pathlib import Path

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["extract"])
    def extract(account: dict[str, Any]) -> dict[str, Any]:
        from coupang_sales import rocket_stages
        from coupang_sales.airflow_glue.hooks import SupplierHubHook

        context = labelled_context(account)
        window = resolve_window(context)
        staging = staging_dir(context, account["account_id"])
        until = list_until(context, window)
        started = dt.datetime.now(dt.UTC)
        with recorded_attempt(context, account, window):
            with SupplierHubHook(account["conn_id"]).session(
                    download_dir=staging / "downloads", artifacts_dir=staging / "artifacts") as session:
                summary = rocket_stages.extract(session, window=window, list_until=until, staging=staging / "raw")
        return {"window": [window.start.isoformat(), window.end.isoformat()], "staging": str(staging),
                "started_at": started.isoformat(), **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["validate"])
    def validate(account: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
        from coupang_sales import rocket_stages

        window = _window_of(extracted)
        with recorded_attempt(labelled_context(account), account, window):
            summary = rocket_stages.validate(staging=Path(extracted["staging"]) / "raw", window=window,
                                             list_until=dt.date.fromisoformat(extracted["list_until"]))
        return {**extracted, **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["transform"])
    def transform(account: dict[str, Any], validated: dict[str, Any]) -> dict[str, Any]:
        from coupang_sales import rocket_stages

        with recorded_attempt(labelled_context(account), account, _window_of(validated)):
            summary = rocket_stages.transform(staging=Path(validated["staging"]) / "raw",
                                              account_id=account["account_id"])
        return {**validated, **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["load"])
    def load(account: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
        from coupang_sales import rocket_stages

        context = labelled_context(account)
        window = _window_of(transformed)
        with recorded_attempt(context, account, window) as counts:
            counts.update(transformed)
            conn = warehouse_connection()
            try:
                summary = rocket_stages.load(conn, staging=Path(transformed["staging"]) / "raw",
                                             account_id=account["account_id"], window=window,
                                             run_id=context.get("run_id"))
            finally:
                conn.close()
        result = {**transformed, **summary}
        record_success(context, account, window, started=dt.datetime.fromisoformat(transformed["started_at"]),
                       counts=result)
        return result

    expiry = SubAccountExpiryOperator(
        task_id="check_sub_account_expiry", account=account, map_index_template=OPERATOR_LABEL,
        on_expiry_warning=[CollectionAlertNotifier(warning=True)], doc_md=TASK_DOCS["check_sub_account_expiry"])
    block = TaxInvoiceBlockOperator(
        task_id="check_tax_invoice_block", account=account, map_index_template=OPERATOR_LABEL,
        doc_md=TASK_DOCS["check_tax_invoice_block"])
    extracted = extract(account)
    expiry >> block >> extracted
    return load(account, transform(account, validate(account, extracted)))


def _jet_tasks(account):
    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["extract"])
    def extract(account: dict[str, Any]) -> dict[str, Any]:
        context = labelled_context(account)
        window = resolve_window(context)
        with recorded_attempt(context, account, window):
            raise CollectionError("not_implemented",
                                  f"{account['account_id']}: Coupang Jet (Wing) extraction is not implemented yet.")

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["validate"])
    def validate(account: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["transform"])
    def transform(account: dict[str, Any], validated: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["load"])
    def load(account: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    return load(account, transform(account, validate(account, extract(account))))


CHANNEL_TASKS = {ROCKET: _rocket_tasks, JET: _jet_tasks}
CHANNEL_TAGS = {ROCKET: ["coupang", "rocket", "supplier-hub"], JET: ["coupang", "jet", "wing"]}


def build_channel_dag(channel: str, *, doc_md: str | None = None) -> DAG:
    """The daily collection DAG of ``channel`` ('coupang_rocket' or 'coupang_jet')."""
    if channel not in CHANNEL_TASKS:
        raise ValueError(f"unknown channel {channel!r}")
    with DAG(
        dag_id=f"{channel}_sales",
        schedule=CronDataIntervalTimetable(SCHEDULE, timezone=DAG_TIMEZONE),
        start_date=pendulum.datetime(2026, 1, 1, tz=DAG_TIMEZONE),
        catchup=False,
        default_args={**DEFAULT_ARGS, "on_failure_callback": [CollectionAlertNotifier()]},
        params=PARAMS,
        tags=["sales", *CHANNEL_TAGS[channel]],
        doc_md=doc_md,
        max_active_runs=4,
    ) as dag:
        @task(doc_md=TASK_DOCS["list_accounts"], retries=3)
        def list_accounts() -> list[dict[str, Any]]:
            from coupang_sales.warehouse import active_accounts, apply_schema

            conn = warehouse_connection()
            try:
                apply_schema(conn)
                return active_accounts(conn, channel)
            finally:
                conn.close()

        @task_group(group_id="collect", tooltip="One mapped group per active account")
        def collect(account):
            return CHANNEL_TASKS[channel](account)

        collect.expand(account=list_accounts())
    return dag
