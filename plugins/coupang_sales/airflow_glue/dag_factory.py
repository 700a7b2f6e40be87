"""The shape of a channel's collection DAG: list accounts, then per account the checks, extract, validate,
transform and load, then the report. What each task does is ``coupang_sales.airflow_glue.stage``'s."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task, task_group

from coupang_sales.airflow_glue.assets import channel_assets
from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier
from coupang_sales.airflow_glue.operators import SubAccountExpiryOperator, TaxInvoiceBlockOperator
from coupang_sales.airflow_glue.staging import remove_expired, retention_days
from coupang_sales.airflow_glue.timetable import SeoulDailyTimetable
from coupang_sales.airflow_glue.window import DEFAULT_LOOKBACK_DAYS, DEFAULT_RESTATEMENT_HORIZON_DAYS
from coupang_sales.channel import Channel, PreCheck, Tag
from coupang_sales.config import settings

log = logging.getLogger(__name__)

# Every @task below says multiple_outputs=False: a task's summary is one XCom. Left to
# infer it from the dict return type, Airflow would also push every key as its own XCom.

# Mapped task instances are named by their account in the UI; each task sets the variable.
TASK_LABEL = OPERATOR_LABEL = "{{ account_label }}"

DAG_TIMEZONE = pendulum.timezone("Asia/Seoul")  # Airflow serialises pendulum zones only
HISTORY_START = pendulum.datetime(2014, 1, 1, tz=DAG_TIMEZONE)
PRE_CHECK_OPERATORS = {PreCheck.SUB_ACCOUNT_EXPIRY: SubAccountExpiryOperator,
                       PreCheck.TAX_INVOICE_BLOCK: TaxInvoiceBlockOperator}


def default_args() -> dict[str, Any]:
    """Task defaults, read when the DAG file is parsed.

    Only transient failures reach a retry: the others raise AirflowFailException.
    ``COUPANG_RETRY_DELAY_SECONDS`` (default 120) is the first retry's delay, doubled at
    each retry up to 30 minutes.
    """
    return {
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": dt.timedelta(seconds=settings().retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
    }


def browser_task_timeout() -> dt.timedelta:
    """The backstop on every browser task: each page, fetch and download already times out
    (the connection's ``timeout``, 20 s), so this only ends a task that hangs outside them
    (a wedged browser or driver). ``COUPANG_BROWSER_TASK_TIMEOUT_MINUTES``, default 180:
    a year's range run of a large account takes minutes, not hours."""
    return dt.timedelta(minutes=settings().browser_task_timeout_minutes)


def load_task_timeout() -> dt.timedelta:
    """The backstop on each load task: its statements are bounded by the warehouse's
    ``lock_timeout`` and ``statement_timeout`` (``warehouse_timeouts()``), so this only ends a
    load stuck outside them (reading the staged files, a hung connection).
    ``COUPANG_LOAD_TASK_TIMEOUT_MINUTES``, default 60."""
    return dt.timedelta(minutes=settings().load_task_timeout_minutes)


def browser_queue() -> dict[str, str]:
    """The Celery queue of the browser tasks: ``COUPANG_BROWSER_QUEUE`` (for example ``browser``), so
    only workers started with ``airflow celery worker --queues browser`` (beside a Chromium or a
    Selenium Grid) run them. Unset: Airflow's default queue, like every other task."""
    queue = settings().browser_queue
    return {"queue": queue} if queue else {}


def pool_name(channel: Channel) -> str:
    """The Airflow pool of the portal's browser tasks (``COUPANG_<PORTAL>_POOL`` overrides the name)."""
    return getattr(settings(), f"{channel.pool}_pool")


def checks_sign_on() -> bool:
    """``COUPANG_CHECKS_SIGN_ON`` (default false): may the Supplier Hub checks sign on themselves?

    By default a check uses the profile only while it is still signed on and otherwise defers to
    the extract, which signs on once and runs it first: one sign-on per account per run, however
    the scheduler interleaves accounts on one egress address (docs/decisions.md). ``true`` suits a
    deployment with an address per account, where each check then fails on its own task."""
    return settings().checks_sign_on


def shard_count(channel: str) -> int:
    """How many DAGs share the channel's accounts: ``COUPANG_ROCKET_SHARDS`` / ``COUPANG_JET_SHARDS``,
    else ``COUPANG_SHARDS``, default 1. Read at parse time, so the DAG processor and every worker
    must see the same value (set it in the deployment's common environment)."""
    return settings().shards_of(channel.removeprefix("coupang_").upper())


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
    "account_id": Param(None, type=["null", "string"],
                        description="Collect this one account of the channel (its id in sales.accounts, active or "
                                    "not) instead of every active account: the status page's 're-run' action "
                                    "sets it. Empty: every active account (of this shard)."),
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
                     "channel from `sales.accounts` (ids and connection names only); with the `account_id` param, "
                     "that one account alone (paused or not).",
    **{check.value: PRE_CHECK_OPERATORS[check].__doc__ for check in PreCheck},
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


def _collect(channel: Channel, account):
    """extract -> validate -> transform -> load for one account, after the channel's pre-checks."""
    pool = pool_name(channel)

    def stages():
        from coupang_sales.airflow_glue.stage import ChannelStages

        return ChannelStages(channel)

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["extract"], pool=pool, multiple_outputs=False,
          execution_timeout=browser_task_timeout(), **browser_queue())
    def extract(account: dict[str, Any]) -> dict[str, Any]:
        return stages().extract(account)

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["validate"], multiple_outputs=False)
    def validate(account: dict[str, Any], extracted: dict[str, Any]) -> dict[str, Any]:
        return stages().validate(account, extracted)

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["transform"], multiple_outputs=False)
    def transform(account: dict[str, Any], validated: dict[str, Any]) -> dict[str, Any]:
        return stages().transform(account, validated)

    @task(map_index_template=TASK_LABEL, doc_md=TASK_DOCS["load"], multiple_outputs=False,
          outlets=channel_assets(channel), execution_timeout=load_task_timeout())
    def load(account: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
        return stages().load(account, transformed)

    upstream = None
    sign_on = checks_sign_on()
    for check in channel.pre_checks:
        options = {"on_expiry_warning": [CollectionAlertNotifier(warning=True)]} \
            if check is PreCheck.SUB_ACCOUNT_EXPIRY else {}
        operator = PRE_CHECK_OPERATORS[check](
            task_id=check.value, account=account, sign_on=sign_on, map_index_template=OPERATOR_LABEL,
            pool=pool, execution_timeout=browser_task_timeout(), doc_md=TASK_DOCS[check.value],
            **options, **browser_queue())
        if upstream is not None:
            upstream >> operator
        upstream = operator
    extracted = extract(account)
    if upstream is not None:
        upstream >> extracted
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


def build_channel_dags(channel: Channel, *, doc_md: str | None = None) -> list[DAG]:
    """The channel's collection DAGs: one per shard (``shard_count``), the first one ``<channel>_sales``."""
    shards = shard_count(channel.name)
    return [build_channel_dag(channel, doc_md=doc_md, shard=shard, shards=shards) for shard in range(shards)]


def build_channel_dag(channel: Channel, *, doc_md: str | None = None, shard: int = 0, shards: int = 1) -> DAG:
    """The daily collection DAG of ``channel`` (``ROCKET`` or ``JET``), for the accounts of ``shard`` of
    ``shards`` (``coupang_sales.shards.shard_of``); with one shard, every account."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of {shards} shard(s)")
    name = channel.name
    if shards > 1:
        doc_md = (f"**Shard {shard + 1} of {shards}** of `{name}`: the active accounts whose "
                  f"`shard_of(account_id, {shards})` is {shard}.\n\n{doc_md or ''}")
    with DAG(
        dag_id=shard_dag_id(name, shard),
        schedule=SeoulDailyTimetable(),
        # Before any Coupang seller's history (Rocket delivery started in 2014): Airflow creates no task
        # for a non-backfill run whose logical date is before a task's start_date, so a later start_date
        # made a manual run of an older date succeed with nothing collected. catchup=False: the
        # scheduler still creates only the newest interval.
        start_date=HISTORY_START,
        catchup=False,
        default_args={**default_args(), "on_failure_callback": [CollectionAlertNotifier()]},
        params=PARAMS,
        tags=[Tag.SALES.value, *(tag.value for tag in channel.tags)],
        doc_md=doc_md,
        max_active_runs=4,
    ) as dag:
        @task(doc_md=TASK_DOCS["list_accounts"], retries=3, multiple_outputs=False)
        def list_accounts() -> list[dict[str, Any]]:
            from airflow.sdk.exceptions import AirflowFailException

            from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
            from coupang_sales.warehouse import active_accounts
            from coupang_sales.warehouse.schema_versions import SchemaVersionError, require_current

            with WarehouseHook().connected() as conn:
                try:  # no DDL in a run: the schema is migrated once per deploy
                    require_current(conn)
                except SchemaVersionError as exc:
                    raise AirflowFailException(str(exc)) from exc
                only = (get_current_context()["params"].get("account_id") or "").strip() or None
                if only:  # one account, wherever its shard: the run collects it alone
                    accounts = active_accounts(conn, name, account_id=only)
                    if not accounts:
                        raise AirflowFailException(f"account_id {only!r} is not a {name} account in sales.accounts")
                    return accounts
                accounts = active_accounts(conn, name, shard=(shard, shards) if shards > 1 else None)
            check_map_length(name, shards, len(accounts))
            return accounts

        @task_group(group_id="collect", tooltip="One mapped group per active account")
        def collect(account):
            return _collect(channel, account)

        @task(doc_md=TASK_DOCS["report"], trigger_rule="all_done", on_failure_callback=[], multiple_outputs=False)
        def report(accounts: list[dict[str, Any]]) -> None:
            from coupang_sales.airflow_glue.report import run_report

            run_report(get_current_context(), name, accounts)

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
