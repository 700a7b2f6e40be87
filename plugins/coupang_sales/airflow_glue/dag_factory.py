"""Builds the per-channel collection DAG: list accounts, then per account checks, extract, validate, transform, load."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task, task_group

from coupang_sales.airflow_glue.assets import account_fees_asset, attach_extras, order_lines_asset
from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier
from coupang_sales.airflow_glue.operators import SubAccountExpiryOperator, TaxInvoiceBlockOperator
from coupang_sales.airflow_glue.runtime import (
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_RESTATEMENT_HORIZON_DAYS,
    account_session,
    account_window,
    list_until,
    record_success,
    recorded_attempt,
    resolve_window,
    send_gap_warning,
    send_unapplied_warning,
    staging_dir,
    warehouse_connection,
    warehouse_errors,
)
from coupang_sales.airflow_glue.staging import remove_expired, retention_days, staging_path, working_copy
from coupang_sales.airflow_glue.timetable import SeoulDailyTimetable
from coupang_sales.model import JET, ROCKET, Window

log = logging.getLogger(__name__)

# Every @task below says multiple_outputs=False: a task's summary is one XCom. Left to
# infer it from the dict return type, Airflow would also push every key as its own XCom.

# What transform and load read from an account's staging folder: frames and small JSON files, not the exports.
STAGED_DATA = ("*.parquet", "*.json")

# Mapped task instances are named by their account in the UI; each task sets the variable.
TASK_LABEL = OPERATOR_LABEL = "{{ account_label }}"

DAG_TIMEZONE = pendulum.timezone("Asia/Seoul")  # Airflow serialises pendulum zones only
HISTORY_START = pendulum.datetime(2014, 1, 1, tz=DAG_TIMEZONE)


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


def load_task_timeout() -> dt.timedelta:
    """The backstop on each load task: its statements are bounded by the warehouse's
    ``lock_timeout`` and ``statement_timeout`` (``warehouse_timeouts()``), so this only ends a
    load stuck outside them (reading the staged files, a hung connection).
    ``COUPANG_LOAD_TASK_TIMEOUT_MINUTES``, default 60."""
    return dt.timedelta(minutes=float(os.environ.get("COUPANG_LOAD_TASK_TIMEOUT_MINUTES", "60")))


def browser_queue() -> dict[str, str]:
    """The Celery queue of the browser tasks: ``COUPANG_BROWSER_QUEUE`` (for example ``browser``), so
    only workers started with ``airflow celery worker --queues browser`` (beside a Chromium or a
    Selenium Grid) run them. Unset: Airflow's default queue, like every other task."""
    queue = os.environ.get("COUPANG_BROWSER_QUEUE", "").strip()
    return {"queue": queue} if queue else {}


def shard_count(channel: str) -> int:
    """How many DAGs share the channel's accounts: ``COUPANG_ROCKET_SHARDS`` / ``COUPANG_JET_SHARDS``,
    else ``COUPANG_SHARDS``, default 1. Read at parse time, so the DAG processor and every worker
    must see the same value (set it in the deployment's common environment)."""
    key = channel.removeprefix("coupang_").upper()
    raw = os.environ.get(f"COUPANG_{key}_SHARDS") or os.environ.get("COUPANG_SHARDS") or "1"
    count = int(raw)
    if not 1 <= count <= 99:
        raise ValueError(f"COUPANG_{key}_SHARDS must be between 1 and 99, not {raw!r}")
    return count


def shard_dag_id(channel: str, shard: int) -> str:
    """``coupang_rocket_sales`` for shard 0 (the product's DAG id), ``coupang_rocket_sales_shard_01`` … after."""
    return f"{channel}_sales" if shard == 0 else f"{channel}_sales_shard_{shard:02d}"


PARAMS = {
    "date": Param(None, type=["null", "string"], format="date",
                  description="Last Asia/Seoul date collected (YYYY-MM-DD). When given it wins over the run's "
                              "logical date (the run's note says so when they differ). Empty: a scheduled or "
                              "backfill run's data interval; a manual run's logical date in Seoul, never later "
                              "than yesterday."),
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
    "list_accounts": "Checks that the warehouse is at this code's schema version (it fails, naming "
                     "`python -m coupang_sales.warehouse.migrate`, when not) and reads the active accounts of the "
                     "channel from `sales.accounts` (ids and connection names only).",
    "check_sub_account_expiry": SubAccountExpiryOperator.__doc__,
    "check_tax_invoice_block": TaxInvoiceBlockOperator.__doc__,
    "extract": "Logs in with a real browser and stages the raw portal files for the window.",
    "validate": "Parses the staged files by header name and runs the Great Expectations suite. "
                "A failure keeps `quality_result.json` in the staging folder and loads nothing.",
    "transform": "Applies the channel policy (PRODUCT.md §2) to the validated rows.",
    "load": "Stores the collected facts (receipts, returns, settlement and cancellation rows) and re-derives "
            "every order line they touch from all facts collected so far, in one transaction; records the run "
            "and sends a warning alert for any return/cancellation whose original was never collected. Updates the "
            "Asset `coupang_sales.order_lines` (and `coupang_sales.account_fees` for Jet) with the account, window, "
            "changed sales dates and rows changed as the event's extra.",
    "cleanup_staging": "Deletes this DAG's staging folders (one per run) whose newest file is older than "
                       "`COUPANG_STAGING_RETENTION_DAYS` (default 14), on whatever store the staging root is; "
                       "never the current run's.",
    "report": "Runs after every account, whatever happened: builds the collection report (each account's "
              "status, failure category, attempts, rows and won) from `sales.collection_runs`, shows it as "
              "the XCom `collection_report` and as a table in this log, alerts each account whose freshness "
              "crossed its channel's threshold since the last check (stale, or fresh again), and fails the run "
              "(without another alert: each failed account has already alerted) as `COUPANG_FAIL_RUN_ON` says: "
              "by default when an account did not load for a reason the data team must act on, not for a "
              "seller's own action (a pending tax invoice, an expired sub-account, an SMS step), which is "
              "alerted and shown.",
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
    account_fees: bool = False  # the load also writes sales.account_fees (an Asset of its own)

    @property
    def pool_name(self) -> str:
        """The Airflow pool of the portal's browser tasks (``COUPANG_<PORTAL>_POOL`` overrides the name)."""
        return os.environ.get(f"COUPANG_{self.pool.upper()}_POOL", f"coupang_{self.pool}")


CHANNELS = {
    ROCKET: ChannelSpec("coupang_sales.rocket.stages", "SupplierHubHook", True,
                        ("coupang", "rocket", "supplier-hub"), "supplier_hub"),
    JET: ChannelSpec("coupang_sales.jet.stages", "WingHook", False, ("coupang", "jet", "wing"), "wing",
                     account_fees=True),
}


def _stages(spec: ChannelSpec):
    from importlib import import_module

    return import_module(spec.stages)


def checks_sign_on() -> bool:
    """``COUPANG_CHECKS_SIGN_ON`` (default false): may the Supplier Hub checks sign on themselves?

    By default a check uses the profile only while it is still signed on and otherwise defers to
    the extract, which signs on once and runs it first: one sign-on per account per run, however
    the scheduler interleaves accounts on one egress address (docs/decisions.md). ``true`` suits a
    deployment with an address per account, where each check then fails on its own task."""
    return os.environ.get("COUPANG_CHECKS_SIGN_ON", "false").strip().lower() in ("1", "true", "yes")


def _deferred_checks(context, session, account: dict[str, Any], window: Window) -> None:
    """Sign on in the extract's session and run the checks that deferred to it (their failures are
    the extract's, with the same reasons and actions)."""
    from coupang_sales.airflow_glue.operators import run_deferred_checks

    ti = context["ti"]
    group = ti.task_id.rsplit(".", 1)[0] + "." if "." in ti.task_id else ""
    outcomes = {name: ti.xcom_pull(task_ids=group + name, map_indexes=ti.map_index)
                for name in ("check_sub_account_expiry", "check_tax_invoice_block")}
    # a retry of the extract does not repeat a check an earlier try passed (nor its expiry warning)
    passed_file = staging_dir(context, account["account_id"]) / "deferred_checks_passed.json"
    passed = set(json.loads(passed_file.read_text(encoding="utf-8"))) if passed_file.exists() else set()
    outcomes = {name: outcome for name, outcome in outcomes.items() if name not in passed}
    if not any((outcome or {}).get("deferred_to_extract") for outcome in outcomes.values()):
        return
    session.login()
    ran = run_deferred_checks(context, session, account, window, outcomes=outcomes,
                              on_expiry_warning=[CollectionAlertNotifier(warning=True)])
    passed_file.write_text(json.dumps(sorted(passed | set(ran))), encoding="utf-8")
    log.info("%s: ran %s in the extract's session", account["account_id"], ", ".join(ran))


def _collect(spec: ChannelSpec, account):
    """extract -> validate -> transform -> load for one account (after the Supplier Hub checks for Rocket)."""

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["extract"], pool=spec.pool_name, multiple_outputs=False,
          execution_timeout=browser_task_timeout(), **browser_queue())
    def extract(account: dict[str, Any]) -> dict[str, Any]:
        from coupang_sales.airflow_glue import hooks

        context = labelled_context(account)
        window = resolve_window(context)
        with recorded_attempt(context, account, window):  # the account's cursor: a gap is collected whole
            caught = account_window(context, account, window)
        window = caught.window
        send_gap_warning(context, account, caught)
        staging = staging_dir(context, account["account_id"])
        until = list_until(context, window)
        started = dt.datetime.now(dt.UTC)
        with recorded_attempt(context, account, window), working_copy(staging, only=(), fresh=("raw",)) as work:
            hook = getattr(hooks, spec.hook)(account["conn_id"])
            with account_session(context, account, hook, download_dir=work / "downloads",
                                 artifacts_dir=work / "artifacts") as session:
                if spec.supplier_hub_checks:
                    _deferred_checks(context, session, account, window)
                summary = _stages(spec).extract(session, account=account, window=window, list_until=until,
                                                staging=work / "raw")
        cursor = {"collected_through_before": caught.collected_through.isoformat()} \
            if caught.collected_through else {}
        if caught.gap:
            cursor["gap"] = caught.gap
        return {"window": [window.start.isoformat(), window.end.isoformat()], "staging": str(staging),
                "list_until": until.isoformat(), "started_at": started.isoformat(), **cursor, **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["validate"], multiple_outputs=False)
    def validate(account: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
        window = _window_of(extracted)
        with (recorded_attempt(labelled_context(account), account, window),
              working_copy(staging_path(extracted["staging"]) / "raw") as work):
            summary = _stages(spec).validate(staging=work, account=account, window=window,
                                             list_until=dt.date.fromisoformat(extracted["list_until"]))
        return {**extracted, **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["transform"], multiple_outputs=False)
    def transform(account: dict[str, Any], validated: dict[str, Any]) -> dict[str, Any]:
        with (recorded_attempt(labelled_context(account), account, _window_of(validated)),
              working_copy(staging_path(validated["staging"]) / "raw", only=STAGED_DATA) as work):
            summary = _stages(spec).transform(staging=work, account=account)
        return {**validated, **summary}

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["load"], multiple_outputs=False,
          outlets=[order_lines_asset(), *([account_fees_asset()] if spec.account_fees else [])],
          execution_timeout=load_task_timeout())
    def load(account: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
        from coupang_sales.warehouse import account_lock_key, changed_sales_dates, warehouse_now

        context = labelled_context(account)
        window = _window_of(transformed)
        with (recorded_attempt(context, account, window) as counts,
              working_copy(staging_path(transformed["staging"]) / "raw", only=STAGED_DATA) as work):
            counts.update(transformed)
            conn = warehouse_connection()
            try:
                with warehouse_errors(f"load of {account['account_id']} {window}", conn,
                                      lock_keys=(account_lock_key(account["channel"], account["account_id"]),)):
                    since = warehouse_now(conn)
                    summary = _stages(spec).load(conn, staging=work,
                                                 account=account, window=window, run_id=context.get("run_id"),
                                                 list_until=dt.date.fromisoformat(transformed["list_until"]))
                    changed = changed_sales_dates(conn, channel=account["channel"],
                                                  account_id=account["account_id"], since=since)
            finally:
                conn.close()
        result = {**transformed, **summary}
        record_success(context, account, window, started=dt.datetime.fromisoformat(transformed["started_at"]),
                       counts=result)
        send_unapplied_warning(context, account, window, result)
        attach_extras(context, account, transformed["window"], result, changed, fees=spec.account_fees)
        return result

    extracted = extract(account)
    if spec.supplier_hub_checks:
        sign_on = checks_sign_on()
        expiry = SubAccountExpiryOperator(
            task_id="check_sub_account_expiry", account=account, sign_on=sign_on, map_index_template=OPERATOR_LABEL,
            on_expiry_warning=[CollectionAlertNotifier(warning=True)], pool=spec.pool_name,
            execution_timeout=browser_task_timeout(), doc_md=TASK_DOCS["check_sub_account_expiry"],
            **browser_queue())
        block = TaxInvoiceBlockOperator(
            task_id="check_tax_invoice_block", account=account, sign_on=sign_on, map_index_template=OPERATOR_LABEL,
            pool=spec.pool_name, execution_timeout=browser_task_timeout(),
            doc_md=TASK_DOCS["check_tax_invoice_block"], **browser_queue())
        expiry >> block >> extracted
    return load(account, transform(account, validate(account, extracted)))




def check_map_length(channel: str, shards: int, count: int) -> None:
    """Refuse a shard holding more accounts than one run can map (``[core] max_map_length``), with the
    setting to raise, instead of Airflow's own 'pushed value is too large to map'."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import AirflowFailException

    limit = conf.getint("core", "max_map_length", fallback=1024)
    if count > limit:
        key = channel.removeprefix("coupang_").upper()
        needed = -(-count * shards // int(limit * 0.8))  # about 80 % full: hashing does not split evenly
        raise AirflowFailException(
            f"{count} active {channel} accounts in one run (shard of {shards}), above [core] max_map_length "
            f"{limit}: set COUPANG_{key}_SHARDS to {needed} or more on the DAG processor and every worker")


def build_channel_dags(channel: str, *, doc_md: str | None = None) -> list[DAG]:
    """The channel's collection DAGs: one per shard (``shard_count``), the first one ``<channel>_sales``."""
    shards = shard_count(channel)
    return [build_channel_dag(channel, doc_md=doc_md, shard=shard, shards=shards) for shard in range(shards)]


def build_channel_dag(channel: str, *, doc_md: str | None = None, shard: int = 0, shards: int = 1) -> DAG:
    """The daily collection DAG of ``channel`` ('coupang_rocket' or 'coupang_jet'), for the accounts of
    ``shard`` of ``shards`` (``coupang_sales.shards.shard_of``); with one shard, every account."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of {shards} shard(s)")
    spec = CHANNELS[channel]
    if shards > 1:
        doc_md = (f"**Shard {shard + 1} of {shards}** of `{channel}`: the active accounts whose "
                  f"`shard_of(account_id, {shards})` is {shard}.\n\n{doc_md or ''}")
    with DAG(
        dag_id=shard_dag_id(channel, shard),
        schedule=SeoulDailyTimetable(),
        # Before any Coupang seller's history (Rocket delivery started in 2014): Airflow creates no task
        # for a non-backfill run whose logical date is before a task's start_date, so a later start_date
        # made a manual run of an older date succeed with nothing collected. catchup=False: the
        # scheduler still creates only the newest interval.
        start_date=HISTORY_START,
        catchup=False,
        default_args={**default_args(), "on_failure_callback": [CollectionAlertNotifier()]},
        params=PARAMS,
        tags=["sales", *spec.tags],
        doc_md=doc_md,
        max_active_runs=4,
    ) as dag:
        @task(doc_md=TASK_DOCS["list_accounts"], retries=3, multiple_outputs=False)
        def list_accounts() -> list[dict[str, Any]]:
            from airflow.sdk.exceptions import AirflowFailException

            from coupang_sales.warehouse import active_accounts
            from coupang_sales.warehouse.schema_versions import SchemaVersionError, require_current

            conn = warehouse_connection()
            try:
                try:  # no DDL in a run: the schema is migrated once per deploy
                    require_current(conn)
                except SchemaVersionError as exc:
                    raise AirflowFailException(str(exc)) from exc
                accounts = active_accounts(conn, channel, shard=(shard, shards) if shards > 1 else None)
            finally:
                conn.close()
            check_map_length(channel, shards, len(accounts))
            return accounts

        @task_group(group_id="collect", tooltip="One mapped group per active account")
        def collect(account):
            return _collect(spec, account)

        @task(doc_md=TASK_DOCS["report"], trigger_rule="all_done", on_failure_callback=[], multiple_outputs=False)
        def report(accounts: list[dict[str, Any]]) -> None:
            from airflow.sdk.exceptions import AirflowFailException

            from coupang_sales.airflow_glue.freshness import send_freshness_alerts
            from coupang_sales.airflow_glue.report import (
                collection_report,
                fail_run_on,
                format_report,
                run_failures,
            )

            context = get_current_context()
            mode = fail_run_on()
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
            failing = run_failures(summary, mode)
            if failing:
                raise AirflowFailException(
                    f"{len(failing)} of {len(summary['accounts'])} account(s) did not load "
                    f"(COUPANG_FAIL_RUN_ON={mode}): "
                    + ", ".join(f"{row['account_id']} {row['status']} ({row['reason'] or 'see its tasks'})"
                                for row in failing))
            if missing:
                log.warning("%d account(s) did not load, alerted and in the report; the run does not fail for "
                            "them (COUPANG_FAIL_RUN_ON=%s): %s", len(missing), mode,
                            ", ".join(f"{row['account_id']} {row['reason']}" for row in missing))

        @task(doc_md=TASK_DOCS["cleanup_staging"], retries=1, multiple_outputs=False)
        def cleanup_staging() -> dict[str, Any]:
            context = get_current_context()
            removed = remove_expired(context["dag"].dag_id, keep=[str(context.get("run_id") or "")])
            return {"removed": len(removed), "retention_days": retention_days()}

        accounts = list_accounts()
        reported = report(accounts)
        collect.expand(account=accounts) >> reported
        cleanup_staging() >> reported  # a failed cleanup alerts; the report alone decides the run's state
    return dag
