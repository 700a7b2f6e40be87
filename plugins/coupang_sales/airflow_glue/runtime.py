"""What every collection task needs from its Airflow context: the window, staging, the audit."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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


# Run types whose data interval is the schedule's: the window comes from it.
SCHEDULED_RUN_TYPES = frozenset({"scheduled", "backfill"})


def _run_type(context: Mapping[str, Any]) -> str:
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(run_type, "value", run_type) or "")


def resolve_window(context: Mapping[str, Any]) -> Window:
    """The window a run collects: [first - lookback_days, D], or [from_date, D] for a range run.

    D and first, by the kind of run:

    - the ``date`` param when given (manual runs and the UI): D = first = that date;
    - a scheduled or backfill run: its data interval in Asia/Seoul. D is the day before
      ``data_interval_end`` (the last day the interval has completed) and first is the day of
      ``data_interval_start``; for the daily 06:00 schedule both are the day before the run;
    - any other run (manual, ``dag.test``) with a logical date: that date in Seoul, as the
      scheduled run of that logical date would collect, but never later than yesterday;
    - a manual run with no logical date: yesterday in Seoul.

    A run never collects today in Seoul unless the ``date`` param names it: today is not over.

    A ``from_date`` param makes the run a range collection: the whole range in one
    browser session per account (a year's backfill logs in once per account, not 365
    times), restated by the same rules as a daily run.
    """
    params = context.get("params") or {}
    yesterday = seoul_today() - dt.timedelta(days=1)
    interval_end = context.get("data_interval_end")
    interval_start = context.get("data_interval_start")
    first = None
    if params.get("date"):
        end = dt.date.fromisoformat(str(params["date"]))
    elif _run_type(context) in SCHEDULED_RUN_TYPES and interval_end is not None:
        end = interval_end.astimezone(SEOUL).date() - dt.timedelta(days=1)
        if interval_start is not None:
            first = min(interval_start.astimezone(SEOUL).date(), end)
    elif context.get("logical_date"):
        end = min(context["logical_date"].astimezone(SEOUL).date(), yesterday)
    else:
        end = yesterday
    if params.get("from_date"):
        start = dt.date.fromisoformat(str(params["from_date"]))
        if start > end:
            raise CollectionError("configuration_error",
                                  f"params: from_date {start} is after the last date of the range {end}")
        return Window(start, end)
    lookback = params.get("lookback_days")
    lookback = DEFAULT_LOOKBACK_DAYS if lookback is None else int(lookback)
    if first is not None:
        return Window(first - dt.timedelta(days=lookback), end)
    return Window.ending(end, lookback)


DEFAULT_MAX_CATCH_UP_DAYS = 92
GAP_CATEGORY = "collection_gap"


def max_catch_up_days() -> int:
    """How far back a daily run goes to close a gap by itself (``COUPANG_MAX_CATCH_UP_DAYS``, default 92)."""
    raw = os.environ.get("COUPANG_MAX_CATCH_UP_DAYS", "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_CATCH_UP_DAYS
    except ValueError:
        raise CollectionError("configuration_error",
                              f"COUPANG_MAX_CATCH_UP_DAYS must be a whole number of days, not {raw!r}") from None
    if value < 0:
        raise CollectionError("configuration_error", f"COUPANG_MAX_CATCH_UP_DAYS must be >= 0, not {value}")
    return value


@dataclass(frozen=True)
class CatchUp:
    """A daily window moved back to the account's cursor, or left as it was with the gap named."""

    window: Window
    collected_through: dt.date | None  # the cursor before this run
    gap: str | None = None              # set when the gap is longer than the bound: the warning's text
    range_params: dict[str, str] | None = None  # the range run that would close it


def catch_up(window: Window, collected_through: dt.date | None, *, bound: int) -> CatchUp:
    """The window of a daily run for an account whose dates are collected without a gap through
    ``collected_through`` (its cursor, ``sales.collection_cursors``).

    The window starts at the earlier of its look-back start and the cursor, so the first run after a
    block longer than the look-back collects the whole gap. A gap longer than ``bound`` days (the end
    of the window minus the cursor) is not closed by a daily run: the window stays the look-back's
    and ``gap`` says so, with the range run that would close it. An account never collected has no
    cursor: its history is a range run's (README, "Backfill").
    """
    if collected_through is None or collected_through >= window.start:
        return CatchUp(window, collected_through)
    behind = (window.end - collected_through).days
    if behind <= bound:
        return CatchUp(Window(collected_through, window.end), collected_through)
    params = {"from_date": (collected_through + dt.timedelta(days=1)).isoformat(), "date": window.end.isoformat()}
    gap = (f"collected without a gap only through {collected_through}: the {behind - 1} day(s) from "
           f"{params['from_date']} are more than COUPANG_MAX_CATCH_UP_DAYS ({bound}) for a daily run to catch up, "
           f"so this run collects {window} and the dates before it stay uncollected (the account shows stale)")
    return CatchUp(window, collected_through, gap, params)


def account_window(context: Mapping[str, Any], account: Mapping[str, Any], window: Window) -> CatchUp:
    """``catch_up`` of a daily window with the account's cursor read from the warehouse; a range run
    (``from_date``) collects exactly what it names."""
    if (context.get("params") or {}).get("from_date"):
        return CatchUp(window, None)
    from coupang_sales.warehouse import collection_cursor

    bound = max_catch_up_days()
    conn = warehouse_connection()
    try:
        with warehouse_errors(f"cursor of {account['account_id']}", conn):
            through = collection_cursor(conn, channel=account["channel"], account_id=account["account_id"])
    finally:
        conn.close()
    return catch_up(window, through, bound=bound)


def gap_action(dag_id: str, params: Mapping[str, str]) -> str:
    """What to do about a gap a daily run does not close: the range run, as a command."""
    return ("Run a range collection over the gap (one sign-on per account): airflow dags trigger "
            f"{dag_id} -c '{json.dumps(dict(params))}' (or Trigger DAG with from_date/date), or raise "
            "COUPANG_MAX_CATCH_UP_DAYS. If those dates are known to hold nothing, move the cursor: "
            "python -m coupang_sales.cursors set CHANNEL ACCOUNT DATE.")


def send_gap_warning(context: Mapping[str, Any], account: Mapping[str, Any], caught: CatchUp) -> None:
    """A warning alert for a gap longer than the bound (the run itself goes on with its look-back window)."""
    from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier

    if caught.gap is None:
        return
    message = f"{account['account_id']} ({caught.window}): {caught.gap}"
    log.warning(message)
    dag_id = getattr(context.get("dag"), "dag_id", None) or f"{account['channel']}_sales"
    action = gap_action(dag_id, caught.range_params or {}).replace(
        "CHANNEL ACCOUNT", f"{account['channel']} {account['account_id']}")
    try:
        CollectionAlertNotifier(warning=True)({
            **context, "coupang_warning": message, "coupang_account": account,
            "coupang_warning_category": GAP_CATEGORY, "coupang_warning_action": action})
    except Exception:  # an alert channel that fails must not stop the collection
        log.exception("could not send the gap warning of %s", account.get("account_id"))


def list_until(context: Mapping[str, Any], window: Window) -> dt.date:
    """Last 작성일자 to read for restatements of the window (never past today in Seoul)."""
    params = context.get("params") or {}
    horizon = params.get("restatement_horizon_days")
    horizon = DEFAULT_RESTATEMENT_HORIZON_DAYS if horizon is None else int(horizon)
    return max(window.end, min(seoul_today(), window.end + dt.timedelta(days=horizon)))


def staging_dir(context: Mapping[str, Any], account_id: str):
    """The run's staging folder of the account (an ``ObjectStoragePath``; see
    ``coupang_sales.airflow_glue.staging``): ``<root>/<dag>/<run>/<account>/``, a local one
    readable by its owner only. The root must be shared by all workers of a multi-worker
    deployment (docker-compose mounts one volume; or an object store, ``COUPANG_STAGING_URL``)."""
    from coupang_sales.airflow_glue.staging import account_folder

    return account_folder(context, account_id)


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


DEFAULT_LOCK_TIMEOUT_SECONDS = 120
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 900


def _seconds_setting(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw not in (None, "") else float(default)
    except ValueError:
        raise CollectionError("configuration_error", f"{name}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise CollectionError("configuration_error", f"{name}={raw!r} is negative")
    return value


def warehouse_timeouts() -> dict[str, float]:
    """The bounds of every warehouse session the tasks open, in seconds (0 = none, PostgreSQL's meaning).

    - ``COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS`` (default 120): the longest wait for one lock
      (another load of the same account, a migration, a ``LOCK TABLE`` in someone's open
      transaction). A load that waits longer fails as ``warehouse_error`` naming what holds
      the lock, and is retried.
    - ``COUPANG_WAREHOUSE_STATEMENT_TIMEOUT_SECONDS`` (default 900): the longest one statement
      may run; a year's range load of a large account takes well under a minute per statement.
    """
    return {"lock_timeout": _seconds_setting("COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS", DEFAULT_LOCK_TIMEOUT_SECONDS),
            "statement_timeout": _seconds_setting("COUPANG_WAREHOUSE_STATEMENT_TIMEOUT_SECONDS",
                                                  DEFAULT_STATEMENT_TIMEOUT_SECONDS)}


def warehouse_connection(conn_id: str = "coupang_warehouse"):
    """A psycopg (v3) connection to the warehouse, in autocommit (each load opens its own transaction).

    Its ``application_name`` names the worker process (``coupang-sales pid 1234``), so an
    operator looking at ``pg_stat_activity`` knows which task holds a lock or a transaction.
    Its ``lock_timeout`` and ``statement_timeout`` are ``warehouse_timeouts()``.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    timeouts = warehouse_timeouts()
    try:
        conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
        conn.autocommit = True
        conn.execute("SELECT set_config('application_name', %s, false), set_config('lock_timeout', %s, false), "
                     "set_config('statement_timeout', %s, false)",
                     (f"coupang-sales pid {os.getpid()}", f"{int(timeouts['lock_timeout'] * 1000)}ms",
                      f"{int(timeouts['statement_timeout'] * 1000)}ms"))
    except Exception as exc:  # the driver's message names host and database, never the password
        raise CollectionError("warehouse_error", f"cannot connect to warehouse '{conn_id}': "
                              f"{type(exc).__name__}: {_first_line(exc)}") from exc
    return conn


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


# Locks other sessions hold that a load waits behind: on the tables of schema 'sales' in a mode
# that blocks writing (ROW EXCLUSIVE), and the advisory lock of the account's loads.
_LOCK_HOLDERS = """
SELECT CASE WHEN l.locktype = 'relation' THEN l.relation::regclass::text
            ELSE 'advisory lock ' || k.key || ' (a load of the same account)' END,
       l.mode, l.pid, a.application_name, a.state, date_trunc('second', now() - a.xact_start)
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
LEFT JOIN unnest(%(keys)s::text[]) AS k(key)
  ON l.locktype = 'advisory' AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext(k.key)::bigint
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.locktype = 'relation' AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                                               'AccessExclusiveLock')
        AND l.relation IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = 'sales'))
       OR k.key IS NOT NULL)
ORDER BY 1, l.pid
"""


def lock_holders(conn, keys: tuple[str, ...] = ()) -> list[str]:
    """What other sessions hold now that a load of the accounts of ``keys`` (``account_lock_key``) waits
    behind: '<relation or load lock> (<mode>) held by pid N '<application>', <state> for <time>'."""
    rows = conn.execute(_LOCK_HOLDERS, {"keys": list(keys)}).fetchall()
    return [f"{what} ({mode}) held by pid {pid} '{app or ''}', {state or 'unknown state'}"
            + (f" for {held}" if held is not None else "") for what, mode, pid, app, state, held in rows]


@contextlib.contextmanager
def warehouse_errors(what: str, conn=None, *, lock_keys: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn a lost or refused warehouse connection inside the block into ``warehouse_error``
    (retried: the transaction was rolled back, so the retry starts from the same state).

    So are the bounds of ``warehouse_timeouts()``: a lock waited for longer than
    ``lock_timeout`` (the message names what holds the locks a load needs, read from
    ``pg_locks`` on ``conn``, with the account's load lock of ``lock_keys``) and a statement
    that ran longer than ``statement_timeout``. Other database errors (a constraint, a type)
    are not transient and pass through.
    """
    import psycopg
    from psycopg import errors

    try:
        yield
    except errors.LockNotAvailable as exc:
        limit = warehouse_timeouts()["lock_timeout"]
        try:
            held = lock_holders(conn, lock_keys) if conn is not None else []
            holders = "; ".join(held) or "none any more (released since)"
        except Exception as inner:  # the error stays a lock timeout, whatever the look-up does
            holders = f"unknown ({type(inner).__name__})"
        context = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
        raise CollectionError("warehouse_error", f"{what}: waited longer than lock_timeout ({limit:g} s, "
                              f"COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS) for a lock{context}; locks it needs "
                              f"held now: {holders}; nothing was committed") from exc
    except errors.QueryCanceled as exc:
        limit = warehouse_timeouts()["statement_timeout"]
        raise CollectionError("warehouse_error", f"{what}: a statement ran longer than statement_timeout "
                              f"({limit:g} s, COUPANG_WAREHOUSE_STATEMENT_TIMEOUT_SECONDS) or was cancelled "
                              f"({_first_line(exc)}); nothing was committed") from exc
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
        CollectionAlertNotifier(warning=True)({
            **context, "coupang_warning": message, "coupang_account": account,
            "coupang_warning_category": UNAPPLIED_CATEGORY, "coupang_warning_action": UNAPPLIED_ACTION})
    except Exception:  # the load is committed; a failing alert channel must not fail it
        log.exception("could not send the warning alert of %s", account.get("account_id"))
