"""How a collection task ends, by the category of what stopped it: the seller's action, or a failure.

A seller's own action (``SELLER_ACTION_CATEGORIES``: a pending tax invoice, an expired sub-account, an
SMS step) is an expected outcome, not a broken pipeline. The task that meets it (the check named after
it; the extract when the checks deferred to it) ends **skipped**, which the Grid draws in Airflow's
skipped colour beside the red of a failure; its downstream tasks are skipped too (there is nothing to
collect) and nothing fails the run for it but the report, as ``COUPANG_FAIL_RUN_ON`` says. The task
records the attempt ``blocked`` (``audit.Audit.attempt``, which raises ``SellerActionNeeded``); then
``outcome_first``, around the task's body, logs the action as the first line shown (the steps before it
are folded), without a traceback, leaves it in the XCom ``seller_action`` (the run's listener,
``ti_notes``, makes it the task instance's note) and sends the alert itself (Airflow calls
``on_failure_callback`` for failures only).

Every other category fails the task (red): at once when retrying cannot help (``CollectionFailed``),
after the retries when it is transient.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from coupang_sales.airflow_glue.audit import SellerActionNeeded, action_line
from coupang_sales.errors import FAILED, RETRIED, SELLER_ACTION, outcome_of  # noqa: F401 (outcome_of: here too)

log = logging.getLogger(__name__)

# the Airflow state each outcome (coupang_sales.errors.outcome_of) leaves the task in
TASK_STATE = {SELLER_ACTION: "skipped", RETRIED: "up_for_retry", FAILED: "failed"}
XCOM_KEY = "seller_action"


def leave_for_note(context: Mapping[str, Any], skip: SellerActionNeeded) -> None:
    """The action in the task's XCom ``seller_action``, which ``ti_notes`` makes its note when the run ends."""
    ti = context.get("ti")
    if ti is None or not hasattr(ti, "xcom_push"):
        return
    error = skip.error
    try:
        ti.xcom_push(key=XCOM_KEY, value={"category": error.category, "action": error.action,
                                          "note": action_line(error)})
    except Exception as exc:  # the note is optional; the state and the alert are not
        log.warning("could not keep the seller's action for the task's note: %s", type(exc).__name__)


def send_seller_alert(context: Mapping[str, Any], account: Mapping[str, Any], skip: SellerActionNeeded) -> None:
    """The alert Airflow would send for a failure (``on_failure_callback`` does not fire on a skip), through
    the same notifier, so its re-alert rule (``COUPANG_BLOCKED_REALERT_HOURS``) applies as before."""
    from coupang_sales.airflow_glue.notifiers import CollectionAlertNotifier

    try:
        CollectionAlertNotifier()({**context, "exception": skip, "coupang_account": dict(account)})
    except Exception:  # a failing alert channel never changes how the task ends
        log.exception("could not send the %s alert of %s", skip.category, account.get("account_id"))


@contextlib.contextmanager
def outcome_first(context: Mapping[str, Any], account: Mapping[str, Any], title: str) -> Iterator[None]:
    """Run a task's body with its steps folded under ``title`` in the log (Airflow's ``::group::``), so the
    first line shown is the outcome: the seller's action in one line (then its detail and alert, no
    traceback), or Airflow's own failure and its traceback. A seller's action is also left for the
    task's note and alerted, once per task."""
    log.info("::group::%s", title)
    try:
        yield
    except SellerActionNeeded as skip:
        log.info("::endgroup::")
        log.warning("%s", skip.args[0])
        log.warning("Detail: %s", skip.detail)
        leave_for_note(context, skip)
        send_seller_alert(context, account, skip)
        raise
    except BaseException:
        log.info("::endgroup::")
        raise
    log.info("::endgroup::")
