"""The audit of every collection attempt (``sales.collection_runs``) and the exception that ends a task for good.

Each attempt of an account's task is one row, written whatever happened: the window, the status
(``success``, ``failed`` or ``blocked`` for a seller's action), the failure's category and message,
the counts the stages reported and the browser's cost so far (``browser_use.json`` in the account's
staging folder).

How the task then ends (``coupang_sales.airflow_glue.outcomes``): a seller's own action
(``SELLER_ACTION_CATEGORIES``) ends it skipped (``SellerActionNeeded``), after its alert; any other
failure that retrying cannot fix ends it failed (``CollectionFailed``); a transient one is retried.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from coupang_sales.errors import FAILED, SELLER_ACTION, SELLER_ACTION_CATEGORIES, CollectionError, outcome_of
from coupang_sales.model import Window

log = logging.getLogger(__name__)

# Categories whose fix belongs to the seller (a pending tax invoice, an expired sub-account, an SMS step):
# the attempt is recorded 'blocked', not 'failed'.
BLOCKED_CATEGORIES = SELLER_ACTION_CATEGORIES
BROWSER_USE_FILE = "browser_use.json"
# What the audit's details never hold: the counts have columns of their own, the account its row.
_NOT_DETAILS = ("rows_extracted", "rows_loaded", "account", "route")


class CollectionFailed(AirflowFailException):
    """A collection failure Airflow must not retry, keeping its category (``CollectionError``) for the alert."""

    def __init__(self, error: CollectionError):
        super().__init__(str(error))
        self.error = error
        self.category, self.action, self.detail = error.category, error.action, error.detail


class SellerActionNeeded(AirflowSkipException):
    """A seller's own action stops the account (``SELLER_ACTION_CATEGORIES``): the task ends **skipped**,
    not failed, keeping the ``CollectionError`` for the alert and the note. Its message is the action."""

    def __init__(self, error: CollectionError):
        super().__init__(action_line(error))
        self.error = error
        self.category, self.action, self.detail = error.category, error.action, error.detail


def action_line(error: CollectionError) -> str:
    """The seller's action in one line: the task log's first line and the task instance's note."""
    return f"Seller action needed ({error.category}): {error.action}"


def failure_of(exc: BaseException | None) -> CollectionError | None:
    """The ``CollectionError`` a task failed (or stopped for a seller) with, however Airflow or a wrapper
    passed it on."""
    while exc is not None:
        if isinstance(exc, (CollectionFailed, SellerActionNeeded)):
            return exc.error
        if isinstance(exc, CollectionError):
            return exc
        exc = exc.__cause__
    return None


def _staging_file(context: Mapping[str, Any], account_id: str):
    from coupang_sales.airflow_glue.staging import account_folder

    return account_folder(context, account_id) / BROWSER_USE_FILE


def record_browser_use(context: Mapping[str, Any], account_id: str, usage: Mapping[str, Any]) -> None:
    """Keep one browser session's cost under its task and try, in the account's staging folder
    (the tasks of one account run one after another, so nothing writes it at once)."""
    ti = context.get("ti")
    key = f"{getattr(ti, 'task_id', 'task')}#{getattr(ti, 'try_number', 1)}"
    path = _staging_file(context, account_id)
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
    path = _staging_file(context, account_id)
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


class Audit:
    """Writes the attempts of an account's tasks to ``sales.collection_runs``.

    ``record`` is the one place a row is written; a test (or another store) overrides it.
    """

    def __init__(self, warehouse_conn_id: str = "coupang_warehouse") -> None:
        self.warehouse_conn_id = warehouse_conn_id

    @contextlib.contextmanager
    def attempt(self, context: Mapping[str, Any], account: Mapping[str, Any], window: Window,
                ) -> Iterator[dict[str, Any]]:
        """Record a failed attempt and make non-transient failures final.

        Yields a dict the task may fill with counts for the record. A seller's own action
        (``SELLER_ACTION_CATEGORIES``) is recorded ``blocked`` and becomes ``SellerActionNeeded`` (the
        task ends skipped; ``outcomes.outcome_first`` logs and alerts it); any other ``CollectionError`` whose
        category is not retryable becomes ``CollectionFailed`` (an ``AirflowFailException``, so
        Airflow does not retry it), keeping its category.
        """
        started = dt.datetime.now(dt.UTC)
        counts: dict[str, Any] = {}
        from airflow.sdk.exceptions import AirflowRescheduleException

        try:
            yield counts
        except (CollectionFailed, SellerActionNeeded):
            raise  # an inner attempt recorded it already
        except AirflowRescheduleException:
            raise  # not an attempt: the task waits for a free route (airflow_glue.shared_browser)
        except Exception as exc:
            error = exc if isinstance(exc, CollectionError) else None
            category = error.category if error else "unexpected_error"
            outcome = outcome_of(category)
            status = "blocked" if outcome == SELLER_ACTION else "failed"
            message = str(exc) if error else f"{type(exc).__name__}: {exc}"
            self.record(context, account, window, status=status, reason=category, message=message,
                        started=started, counts=counts)
            if error is not None and outcome == SELLER_ACTION:
                # an expected end, not a failure: the task ends skipped (outcomes.outcome_first alerts it)
                raise SellerActionNeeded(error) from None
            if error is not None and outcome == FAILED:
                raise CollectionFailed(error) from exc
            raise

    def success(self, context: Mapping[str, Any], account: Mapping[str, Any], window: Window, *,
                started: dt.datetime, counts: Mapping[str, Any]) -> None:
        self.record(context, account, window, status="success", reason=None, message=None,
                    started=started, counts=counts)

    def record(self, context: Mapping[str, Any], account: Mapping[str, Any], window: Window, *, status: str,
               reason: str | None, message: str | None, started: dt.datetime, counts: Mapping[str, Any]) -> None:
        """Append the attempt; a failure to do so is logged, never raised over the collection's own error."""
        from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
        from coupang_sales.warehouse import record_run

        ti = context.get("ti")
        # the egress route of this task's browser, else the one the account's extract used (in the XCom)
        route = context.get("coupang_route") or counts.get("route") or {}
        try:
            with WarehouseHook(self.warehouse_conn_id).connected() as conn:
                record_run(conn, channel=account["channel"], account_id=account["account_id"], window=window,
                           status=status, reason=reason, message=message,
                           rows_extracted=counts.get("rows_extracted"), rows_loaded=counts.get("rows_loaded"),
                           started_at=started, run_id=context.get("run_id"),
                           task_id=getattr(ti, "task_id", None), try_number=getattr(ti, "try_number", None),
                           dag_id=getattr(ti, "dag_id", None), map_index=getattr(ti, "map_index", None),
                           route=route.get("route"), route_wait_seconds=route.get("wait_seconds"),
                           details={**{k: v for k, v in counts.items() if k not in _NOT_DETAILS},
                                    **self._browser_use(context, account)})
        except Exception:  # the audit must not hide the collection's own error
            log.exception("could not record the attempt of %s/%s in sales.collection_runs",
                          account.get("channel"), account.get("account_id"))

    @staticmethod
    def _browser_use(context, account) -> dict[str, Any]:
        try:
            return browser_use(context, account["account_id"])
        except OSError:  # the audit goes on without the figures
            log.warning("could not read the browser use of %s", account.get("account_id"))
            return {}
