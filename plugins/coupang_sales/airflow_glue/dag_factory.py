"""Builds the per-channel collection DAG: list accounts, then per account checks, extract, validate, transform, load."""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, get_current_context, task, task_group

from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier
from coupang_sales.airflow_glue.operators import SubAccountExpiryOperator, TaxInvoiceBlockOperator
from coupang_sales.airflow_glue.runtime import (
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_RESTATEMENT_HORIZON_DAYS,
    account_session,
    list_until,
    record_success,
    recorded_attempt,
    resolve_window,
    send_unapplied_warning,
    staging_dir,
    warehouse_connection,
    warehouse_errors,
)
from coupang_sales.model import JET, ROCKET, Window

log = logging.getLogger(__name__)

# Every @task below says multiple_outputs=False: a task's summary is one XCom. Left to
# infer it from the dict return type, Airflow would also push every key as its own XCom.

# Mapped task instances are named by their account in the UI; each task sets the variable.
TASK_LABEL = OPERATOR_LABEL = "{{ account_label }}"

DAG_TIMEZONE = pendulum.timezone("Asia/Seoul")  # Airflow serialises pendulum zones only
SCHEDULE = "0 6 * * *"  # 06:00 Asia/Seoul, collecting up to the day before


def default_args() -> dict[str, Any]:
    """Task defaults, read when the DAG file is parsed.

    Only transient failures reach a retry: the others raise AirflowFailException.
    ``COUPANG_RETRY_DELAY_SECONDS`` (default 120) is the first retry's delay, doubled at
    each retry up to 30 minutes.
    """
    return {
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": dt.timedelta(seconds=int(os.environ.get("COUPANG_RETRY_DELAY_SECONDS", "120"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
    }


def browser_task_timeout() -> dt.timedelta:
    """The backstop on every browser task: each page, fetch and download already times out
    (the connection's ``timeout``, 20 s), so this only ends a task that hangs outside them
    (a wedged browser or driver). ``COUPANG_BROWSER_TASK_TIMEOUT_MINUTES``, default 180:
    a year's range run of a large account takes minutes, not hours."""
    return dt.timedelta(minutes=float(os.environ.get("COUPANG_BROWSER_TASK_TIMEOUT_MINUTES", "180")))


PARAMS = {
    "date": Param(None, type=["null", "string"], format="date",
                  description="Last Asia/Seoul date of the window (YYYY-MM-DD). Empty: the run's logical date."),
    "from_date": Param(None, type=["null", "string"], format="date",
                       description="Range collection: first date of the window (YYYY-MM-DD); the window is "
                                   "[from_date, date] in one browser session per account and lookback_days is "
                                   "ignored. Empty: a daily window."),
    "lookback_days": Param(DEFAULT_LOOKBACK_DAYS, type="integer", minimum=0, maximum=366,
                           description="Days before 'date' re-collected, so later restatements land."),
    "restatement_horizon_days": Param(
        DEFAULT_RESTATEMENT_HORIZON_DAYS, type="integer", minimum=0, maximum=366,
        description="How many days after the window invoices / report rows are also read (faster restatement "
                    "of the window by later returns; correctness does not depend on it)."),
}

TASK_DOCS = {
    "list_accounts": "Reads the active accounts of the channel from `sales.accounts` (ids and connection names only).",
    "check_sub_account_expiry": SubAccountExpiryOperator.__doc__,
    "check_tax_invoice_block": TaxInvoiceBlockOperator.__doc__,
    "extract": "Logs in with a real browser and stages the raw portal files for the window.",
    "validate": "Parses the staged files by header name and runs the Great Expectations suite. "
                "A failure keeps `quality_result.json` in the staging folder and loads nothing.",
    "transform": "Applies the channel policy (PRODUCT.md §2) to the validated rows.",
    "load": "Stores the collected facts (receipts, returns, settlement and cancellation rows) and re-derives "
            "every order line they touch from all facts collected so far, in one transaction; records the run "
            "and sends a warning alert for any return/cancellation whose original was never collected.",
    "report": "Runs after every account, whatever happened: builds the collection report (each account's "
              "status, failure category, attempts, rows and won) from `sales.collection_runs`, shows it as "
              "the XCom `collection_report` and as a table in this log, alerts each account whose freshness "
              "crossed its channel's threshold since the last check (stale, or fresh again), and fails the run "
              "(without another alert: each failed account has already alerted) when any account did not load.",
}


def labelled_context(account: dict[str, Any]) -> dict[str, Any]:
    """The task's context, naming the account for the UI label and for the failure alert."""
    context = get_current_context()
    context["account_label"] = account["account_id"]
    context["coupang_account"] = account
    return context


def _window_of(summary: dict[str, Any]) -> Window:
    return Window(dt.date.fromisoformat(summary["window"][0]), dt.date.fromisoformat(summary["window"][1]))


@dataclass(frozen=True)
class ChannelSpec:
    stages: str            # module with extract/validate/transform/load over a staging folder
    hook: str              # PortalHook subclass in coupang_sales.airflow_glue.hooks
    supplier_hub_checks: bool
    tags: tuple[str, ...]
    pool: str              # browser tasks of one portal share it: one logged-in seller per browser/IP

    @property
    def pool_name(self) -> str:
        """The Airflow pool of the portal's browser tasks (``COUPANG_<PORTAL>_POOL`` overrides the name)."""
        return os.environ.get(f"COUPANG_{self.pool.upper()}_POOL", f"coupang_{self.pool}")


CHANNELS = {
    ROCKET: ChannelSpec("coupang_sales.rocket.stages", "SupplierHubHook", True,
                        ("coupang", "rocket", "supplier-hub"), "supplier_hub"),
    JET: ChannelSpec("coupang_sales.jet.stages", "WingHook", False, ("coupang", "jet", "wing"), "wing"),
}


def _stages(spec: ChannelSpec):
    from importlib import import_module

    return import_module(spec.stages)


def _collect(spec: ChannelSpec, account):
    """extract -> validate -> transform -> load for one account (after the Supplier Hub checks for Rocket)."""

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["extract"], pool=spec.pool_name, multiple_outputs=False,
          execution_timeout=browser_task_timeout())
    def extract(account: dict[str, Any]) -> dict[str, Any]:
        from coupang_sales.airflow_glue import hooks

        context = labelled_context(account)
        window = resolve_window(context)
        staging = staging_dir(context, account["account_id"])
        until = list_until(context, window)
        started = dt.datetime.now(dt.UTC)
        with recorded_attempt(context, account, window):
            hook = getattr(hooks, spec.hook)(account["conn_id"])
            with account_session(context, account, hook, download_dir=staging / "downloads",
                                 artifacts_dir=staging / "artifacts") as session:
                summary = _stages(spec).extract(session, account=account, window=window, list_until=until,
                                                staging=staging / "raw")
        return {"window": [window.start.isoformat(), window.end.isoformat()], "staging": str(staging),
                "list_until": until.isoformat(), "started_at": started.isoformat(), **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["validate"], multiple_outputs=False)
    def validate(account: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
        window = _window_of(extracted)
        with recorded_attempt(labelled_context(account), account, window):
            summary = _stages(spec).validate(staging=Path(extracted["staging"]) / "raw", account=account,
                                             window=window, list_until=dt.date.fromisoformat(extracted["list_until"]))
        return {**extracted, **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["transform"], multiple_outputs=False)
    def transform(account: dict[str, Any], validated: dict[str, Any]) -> dict[str, Any]:
        with recorded_attempt(labelled_context(account), account, _window_of(validated)):
            summary = _stages(spec).transform(staging=Path(validated["staging"]) / "raw", account=account)
        return {**validated, **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["load"], multiple_outputs=False)
    def load(account: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
        context = labelled_context(account)
        window = _window_of(transformed)
        with recorded_attempt(context, account, window) as counts:
            counts.update(transformed)
            conn = warehouse_connection()
            try:
                with warehouse_errors(f"load of {account['account_id']} {window}"):
                    summary = _stages(spec).load(conn, staging=Path(transformed["staging"]) / "raw",
                                                 account=account, window=window, run_id=context.get("run_id"),
                                                 list_until=dt.date.fromisoformat(transformed["list_until"]))
            finally:
                conn.close()
        result = {**transformed, **summary}
        record_success(context, account, window, started=dt.datetime.fromisoformat(transformed["started_at"]),
                       counts=result)
        send_unapplied_warning(context, account, window, result)
        return result

    extracted = extract(account)
    if spec.supplier_hub_checks:
        expiry = SubAccountExpiryOperator(
            task_id="check_sub_account_expiry", account=account, map_index_template=OPERATOR_LABEL,
            on_expiry_warning=[CollectionAlertNotifier(warning=True)], pool=spec.pool_name,
            execution_timeout=browser_task_timeout(), doc_md=TASK_DOCS["check_sub_account_expiry"])
        block = TaxInvoiceBlockOperator(
            task_id="check_tax_invoice_block", account=account, map_index_template=OPERATOR_LABEL,
            pool=spec.pool_name, execution_timeout=browser_task_timeout(),
            doc_md=TASK_DOCS["check_tax_invoice_block"])
        expiry >> block >> extracted
    return load(account, transform(account, validate(account, extracted)))




def build_channel_dag(channel: str, *, doc_md: str | None = None) -> DAG:
    """The daily collection DAG of ``channel`` ('coupang_rocket' or 'coupang_jet')."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    spec = CHANNELS[channel]
    with DAG(
        dag_id=f"{channel}_sales",
        schedule=CronDataIntervalTimetable(SCHEDULE, timezone=DAG_TIMEZONE),
        start_date=pendulum.datetime(2026, 1, 1, tz=DAG_TIMEZONE),
        catchup=False,
        default_args={**default_args(), "on_failure_callback": [CollectionAlertNotifier()]},
        params=PARAMS,
        tags=["sales", *spec.tags],
        doc_md=doc_md,
        max_active_runs=4,
    ) as dag:
        @task(doc_md=TASK_DOCS["list_accounts"], retries=3, multiple_outputs=False)
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
            return _collect(spec, account)

        @task(doc_md=TASK_DOCS["report"], trigger_rule="all_done", on_failure_callback=[], multiple_outputs=False)
        def report(accounts: list[dict[str, Any]]) -> None:
            from airflow.sdk.exceptions import AirflowFailException

            from coupang_sales.airflow_glue.freshness import send_freshness_alerts
            from coupang_sales.airflow_glue.report import collection_report, format_report

            context = get_current_context()
            conn = warehouse_connection()
            try:
                summary = collection_report(conn, channel=channel, run_id=context["run_id"], accounts=accounts)
                try:
                    send_freshness_alerts(context, channel, conn)
                except Exception:  # nothing was marked: the next run's report sends them
                    log.exception("freshness alerts of %s not sent", channel)
            finally:
                conn.close()
            context["ti"].xcom_push(key="collection_report", value=summary)
            log.info("%s", format_report(summary))
            missing = [row for row in summary["accounts"] if row["status"] != "success"]
            if missing:
                raise AirflowFailException(
                    f"{len(missing)} of {len(summary['accounts'])} account(s) did not load: "
                    + ", ".join(f"{row['account_id']} {row['status']} ({row['reason'] or 'see its tasks'})"
                                for row in missing))

        accounts = list_accounts()
        collect.expand(account=accounts) >> report(accounts)
    return dag
