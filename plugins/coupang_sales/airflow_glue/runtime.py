"""What every collection task needs from its Airflow context: the window, staging, the audit."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coupang_sales.errors import CollectionError
from coupang_sales.model import Window

SEOUL = ZoneInfo("Asia/Seoul")
DEFAULT_LOOKBACK_DAYS = 14
DEFAULT_RESTATEMENT_HORIZON_DAYS = 60
# Categories whose fix belongs to the seller: the run is recorded 'blocked', not 'failed'.
BLOCKED_CATEGORIES = frozenset({"tax_invoice_pending", "sub_account_expired"})

log = logging.getLogger(__name__)


def seoul_today() -> dt.date:
    """Today in Asia/Seoul; ``COUPANG_TODAY`` (YYYY-MM-DD) pins it for sandboxes and replays."""
    pinned = os.environ.get("COUPANG_TODAY")
    return dt.date.fromisoformat(pinned) if pinned else dt.datetime.now(SEOUL).date()


def resolve_window(context: Mapping[str, Any]) -> Window:
    """The window a run collects: [D - lookback_days, D], or [from_date, D] for a range run.

    D is the ``date`` param when given (manual runs and the UI), else the run's logical
    date in Asia/Seoul (the schedule's data interval start: the day before the run),
    else yesterday in Seoul (a manual run with no logical date).

    A ``from_date`` param makes the run a range collection: the whole range in one
    browser session per account (a year's backfill logs in once per account, not 365
    times), restated by the same rules as a daily run.
    """
    params = context.get("params") or {}
    if params.get("date"):
        end = dt.date.fromisoformat(str(params["date"]))
    elif context.get("logical_date"):
        end = context["logical_date"].astimezone(SEOUL).date()
    else:
        end = seoul_today() - dt.timedelta(days=1)
    if params.get("from_date"):
        start = dt.date.fromisoformat(str(params["from_date"]))
        if start > end:
            raise CollectionError("configuration_error",
                                  f"params: from_date {start} is after the last date of the range {end}")
        return Window(start, end)
    lookback = params.get("lookback_days")
    return Window.ending(end, DEFAULT_LOOKBACK_DAYS if lookback is None else int(lookback))


def list_until(context: Mapping[str, Any], window: Window) -> dt.date:
    """Last 작성일자 to read for restatements of the window (never past today in Seoul)."""
    params = context.get("params") or {}
    horizon = params.get("restatement_horizon_days")
    horizon = DEFAULT_RESTATEMENT_HORIZON_DAYS if horizon is None else int(horizon)
    return max(window.end, min(seoul_today(), window.end + dt.timedelta(days=horizon)))


def staging_dir(context: Mapping[str, Any], account_id: str) -> Path:
    """Per run and account folder for raw and intermediate files, created readable by its owner only.

    ``COUPANG_STAGING_DIR`` (default ``$AIRFLOW_HOME/staging``) must be shared by all
    workers in a multi-worker deployment (docker-compose mounts one volume for it).
    """
    root = Path(os.environ.get("COUPANG_STAGING_DIR")
                or Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "staging")
    run_id = re.sub(r"[^A-Za-z0-9_.-]", "_", str(context.get("run_id") or "manual"))
    dag_id = context["dag"].dag_id if context.get("dag") else "adhoc"
    folder = root / dag_id / run_id / re.sub(r"[^A-Za-z0-9_.-]", "_", account_id)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # sellers' sales files: readable by the workers' user only, whatever the umask
    return folder


BROWSER_USE_FILE = "browser_use.json"


@contextlib.contextmanager
def account_session(context: Mapping[str, Any], account: Mapping[str, Any], hook: Any, *, download_dir: Path,
                    artifacts_dir: Path | None = None) -> Iterator[Any]:
    """The hook's browser session in the account's persistent profile; what it cost (sign-ons,
    SMS steps, renewals, browser seconds) is added to the run's ``browser_use.json`` of the
    account, whatever happened, and from there to every ``collection_runs.details``."""
    session = hook.session(download_dir=download_dir, artifacts_dir=artifacts_dir, account=account)
    try:
        with session:
            yield session
    finally:
        record_browser_use(context, account["account_id"], session.usage)


def record_browser_use(context: Mapping[str, Any], account_id: str, usage: Mapping[str, Any]) -> None:
    """Keep one browser session's cost under its task and try, in the account's staging folder
    (the tasks of one account run one after another, so nothing writes it at once)."""
    ti = context.get("ti")
    key = f"{getattr(ti, 'task_id', 'task')}#{getattr(ti, 'try_number', 1)}"
    path = staging_dir(context, account_id) / BROWSER_USE_FILE
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        kept = {}
    previous = kept.get(key)
    if previous:  # a task that opened two sessions in one try
        usage = {k: previous.get(k, 0) + v for k, v in usage.items()}
    kept[key] = dict(usage)
    path.write_text(json.dumps(kept, indent=1, sort_keys=True), encoding="utf-8")


def browser_use(context: Mapping[str, Any], account_id: str) -> dict[str, Any]:
    """The account's browser cost in this run so far: sign-ons, SMS steps, renewals, browser seconds."""
    path = staging_dir(context, account_id) / BROWSER_USE_FILE
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        kept = {}
    total = {"sign_ons": 0, "sms_steps": 0, "renewals": 0, "browser_seconds": 0.0}
    for usage in kept.values():
        for name in total:
            total[name] += usage.get(name, 0)
    total["browser_seconds"] = round(total["browser_seconds"], 2)
    return total


def warehouse_connection(conn_id: str = "coupang_warehouse"):
    """A psycopg (v3) connection to the warehouse, in autocommit (each load opens its own transaction).

    Its ``application_name`` names the worker process (``coupang-sales pid 1234``), so an
    operator looking at ``pg_stat_activity`` knows which task holds a lock or a transaction.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    try:
        conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
        conn.autocommit = True
        conn.execute("SELECT set_config('application_name', %s, false)", (f"coupang-sales pid {os.getpid()}",))
    except Exception as exc:  # the driver's message names host and database, never the password
        raise CollectionError("warehouse_error", f"cannot connect to warehouse '{conn_id}': "
                              f"{type(exc).__name__}: {_first_line(exc)}") from exc
    return conn


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


@contextlib.contextmanager
def warehouse_errors(what: str) -> Iterator[None]:
    """Turn a lost or refused warehouse connection inside the block into ``warehouse_error``
    (retried: the transaction was rolled back, so the retry starts from the same state).

    Other database errors (a constraint, a type) are not transient and pass through.
    """
    import psycopg

    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise CollectionError("warehouse_error", f"{what}: the warehouse connection failed "
                              f"({type(exc).__name__}: {_first_line(exc)}); nothing was committed") from exc


@contextlib.contextmanager
def recorded_attempt(context: Mapping[str, Any], account: Mapping[str, Any], window: Window,
                     ) -> Iterator[dict[str, Any]]:
    """Record a failed attempt in ``sales.collection_runs`` and make non-transient failures final.

    Yields a dict the task may fill with counts for the record. A ``CollectionError``
    whose category is not retryable becomes ``AirflowFailException`` so Airflow does not
    retry it (retrying does not approve a tax invoice).
    """
    from airflow.sdk.exceptions import AirflowFailException

    started = dt.datetime.now(dt.UTC)
    counts: dict[str, Any] = {}
    try:
        yield counts
    except Exception as exc:
        error = exc if isinstance(exc, CollectionError) else None
        category = error.category if error else "unexpected_error"
        status = "blocked" if category in BLOCKED_CATEGORIES else "failed"
        message = str(exc) if error else f"{type(exc).__name__}: {exc}"
        _record(context, account, window, status=status, reason=category, message=message,
                started=started, counts=counts)
        if error is not None and not error.retryable:
            raise AirflowFailException(str(error)) from exc
        raise


def record_success(context: Mapping[str, Any], account: Mapping[str, Any], window: Window, *,
                   started: dt.datetime, counts: Mapping[str, Any]) -> None:
    _record(context, account, window, status="success", reason=None, message=None,
            started=started, counts=counts)


def _browser_use_of(context, account) -> dict[str, Any]:
    try:
        return browser_use(context, account["account_id"])
    except OSError:  # the audit goes on without the figures
        log.warning("could not read the browser use of %s", account.get("account_id"))
        return {}


def _record(context, account, window, *, status, reason, message, started, counts) -> None:
    from coupang_sales.warehouse import record_run

    ti = context.get("ti")
    try:
        conn = warehouse_connection()
        try:
            record_run(conn, channel=account["channel"], account_id=account["account_id"], window=window,
                       status=status, reason=reason, message=message,
                       rows_extracted=counts.get("rows_extracted"), rows_loaded=counts.get("rows_loaded"),
                       started_at=started, run_id=context.get("run_id"),
                       task_id=getattr(ti, "task_id", None), try_number=getattr(ti, "try_number", None),
                       dag_id=getattr(ti, "dag_id", None), map_index=getattr(ti, "map_index", None),
                       details={**{k: v for k, v in counts.items() if k not in ("rows_extracted", "rows_loaded")},
                                **_browser_use_of(context, account)})
        finally:
            conn.close()
    except Exception:  # the audit must not hide the collection's own error
        log.exception("could not record the attempt of %s/%s in sales.collection_runs",
                      account.get("channel"), account.get("account_id"))


UNAPPLIED_CATEGORY = "restatement_without_original"
UNAPPLIED_ACTION = (
    "Nothing is lost: the return/cancellation is stored (sales.restatement_adjustments) and restates its "
    "original by itself once a run collects that original. If the sale should exist (sold before the account "
    "was integrated, or on a date never collected), run a range collection (Params from_date/date) over its "
    "date; otherwise ask the seller about it.")


def unapplied_warning(account: Mapping[str, Any], window: Window, summary: Mapping[str, Any]) -> str | None:
    """The warning text when the load left returns/cancellations (or fees) with no original line, else None."""
    count = int(summary.get("unapplied_restatements") or 0)
    if not count:
        return None
    items = "; ".join(
        f"{u['kind']} {u['document']} {u['order_id']}/{u.get('option_id') or '-'} dated {u['fact_date']} "
        f"({u['reason']}, {u['amount']:+,} won" + (f", fee {u['seller_shipping_fee']:+,} won" if u.get(
            "seller_shipping_fee") else "") + ")"
        for u in summary.get("unapplied_detail") or [])
    return (f"{account['account_id']} ({window}): {count} collected return(s)/cancellation(s) have no original "
            f"line to restate, {int(summary.get('unapplied_amount') or 0):+,} won"
            + (f" and {int(summary.get('unapplied_fee') or 0):+,} won of fees" if summary.get("unapplied_fee") else "")
            + f" kept aside: {items}")


def send_unapplied_warning(context: Mapping[str, Any], account: Mapping[str, Any], window: Window,
                           summary: Mapping[str, Any]) -> None:
    """A warning alert (not a failure) for what the load could not apply; the run still succeeds."""
    from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier

    message = unapplied_warning(account, window, summary)
    if message is None:
        return
    log.warning(message)
    try:
        CollectionAlertNotifier(warning=True).notify({
            **context, "coupang_warning": message, "coupang_account": account,
            "coupang_warning_category": UNAPPLIED_CATEGORY, "coupang_warning_action": UNAPPLIED_ACTION})
    except Exception:  # the load is committed; a failing alert channel must not fail it
        log.exception("could not send the warning alert of %s", account.get("account_id"))
