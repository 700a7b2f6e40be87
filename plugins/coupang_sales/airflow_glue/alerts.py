"""The alert a data engineer receives, composed in one place: ``Alert`` from a task's context.

A failure's alert names the channel, account, window, the failure's category (kept from the
``CollectionError`` the task raised, ``audit.failure_of``) and the action; a warning's (a sub-account
about to expire, a gap, a return without its sale, freshness) carries its own category, text and
action in the context (``warning_context``). The notifiers (``coupang_sales.airflow_glue.notifiers``)
only deliver it.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from coupang_sales.airflow_glue.audit import failure_of
from coupang_sales.airflow_glue.window import resolve_window
from coupang_sales.config import ConfigurationError, Settings, settings
from coupang_sales.errors import CATEGORIES, SELLER_ACTION_CATEGORIES
from coupang_sales.model import Window

log = logging.getLogger(__name__)

DEFAULT_WARNING_CATEGORY = "sub_account_expiring"
DEFAULT_WARNING_ACTION = "Click '연장하기' at 서플라이어허브 > 부계정 관리 before the expiry date."
DEFAULT_BLOCKED_REALERT_HOURS = Settings.model_fields["blocked_realert_hours"].default


def warning_context(context: Mapping[str, Any], account: Mapping[str, Any], *, detail: str,
                    category: str | None = None, action: str | None = None) -> dict[str, Any]:
    """The context a warning's notifiers are called with, as Airflow calls a callback (templated first)."""
    return {**context, "coupang_account": account, "coupang_warning": detail,
            **({"coupang_warning_category": category} if category else {}),
            **({"coupang_warning_action": action} if action else {})}


def _sign_in_url(category: str, account: Mapping[str, Any]) -> str | None:
    """An auth_challenge alert's link to the status page's "Sign in" action (the sign-in DAG)."""
    if category != "auth_challenge" or not account.get("account_id") or not account.get("channel"):
        return None
    from coupang_sales.airflow_glue.sign_in_links import sign_in_link

    return sign_in_link(str(account["channel"]), str(account["account_id"]))


@dataclass(frozen=True)
class Alert:
    """One alert: what happened to which account, what to do, and where the log is."""

    channel: str
    account: str
    window: str
    category: str
    action: str
    detail: str
    task: str
    run_id: str
    log_url: str
    warning: bool = False
    repeat: str | None = None   # why a blocked account is alerted again ('still blocked since ...')
    sign_in_url: str | None = None  # auth_challenge: the status page's "Sign in" action (the sign-in DAG)

    @classmethod
    def of(cls, context: Mapping[str, Any], *, warning: bool = False) -> Alert:
        """The alert of the failed task (or, with ``warning`` and a ``coupang_warning``, the warning) in
        ``context``."""
        task = context.get("task")
        account = context.get("coupang_account") or getattr(task, "account", None) \
            or (getattr(task, "op_kwargs", None) or {}).get("account") or {}
        exc = context.get("exception")
        error = failure_of(exc)
        category = error.category if error else "unexpected_error"
        action = error.action if error else CATEGORIES.get(category, (False, "Read the task log."))[1]
        detail = error.detail if error else str(exc or context.get("coupang_warning") or "")
        if warning and context.get("coupang_warning"):
            category = context.get("coupang_warning_category", DEFAULT_WARNING_CATEGORY)
            detail = context["coupang_warning"]
            action = context.get("coupang_warning_action", DEFAULT_WARNING_ACTION)
        if account.get("account_id") and "CHANNEL ACCOUNT" in action:  # auth_challenge: the sign-in command
            action = action.replace("CHANNEL ACCOUNT", f"{account.get('channel')} {account['account_id']}")
        ti = context.get("ti")
        try:
            window = str(resolve_window(context))
        except Exception:  # an alert must go out even when the window cannot be worked out
            window = "unknown"
        return cls(
            channel=str(account.get("channel") or getattr(context.get("dag"), "dag_id", "")),
            account=str(account.get("account_id", "unknown")),
            window=window, category=category, action=action, detail=detail,
            task=f"{getattr(ti, 'dag_id', '')}.{getattr(ti, 'task_id', '')}",
            run_id=str(context.get("run_id", "")),
            log_url=str(getattr(ti, "log_url", "") or ""),
            warning=warning, sign_in_url=_sign_in_url(category, account),
        )

    @property
    def seller_blocked(self) -> bool:
        """A failure whose fix is a seller's: alerted when it starts, then every re-alert period."""
        return not self.warning and self.category in SELLER_ACTION_CATEGORIES and self.account != "unknown"

    def again(self, why: str) -> Alert:
        return replace(self, repeat=why)

    @property
    def subject(self) -> str:
        # a seller's action is not a failure of the pipeline: the task ended skipped, the account blocked
        kind = "WARNING" if self.warning else "BLOCKED" if self.category in SELLER_ACTION_CATEGORIES else "FAILED"
        subject = f"[coupang-sales] {kind} {self.channel} {self.account} {self.window}: {self.category}"
        return f"{subject} ({self.repeat})" if self.repeat else subject

    @property
    def body(self) -> str:
        return "\n".join([
            f"Channel:  {self.channel}",
            f"Account:  {self.account}",
            f"Window:   {self.window}",
            f"Category: {self.category}",
            f"Action:   {self.action}",
            f"Detail:   {self.detail}",
            f"Task:     {self.task} (run {self.run_id})",
            f"Log:      {self.log_url}",
            *([f"Sign in:  {self.sign_in_url} (enter the seller's SMS code in the Airflow UI)"]
              if self.sign_in_url else []),
        ])

    def rendered(self) -> dict[str, str]:
        """The alert as the delivering notifiers' templates read it (``{{ coupang_alert.subject }}`` ...)."""
        return {"subject": self.subject, "text": self.body, "html": f"<pre>{html.escape(self.body)}</pre>",
                "slack": f"*{self.subject}*\n```{self.body}```"}


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


def blocked_realert_hours() -> float:
    """``COUPANG_BLOCKED_REALERT_HOURS`` (default 24; 0 = every run): how often an account that stays
    blocked by a seller's action is alerted again."""
    try:
        return max(0.0, settings().blocked_realert_hours)
    except ConfigurationError as exc:  # an alert goes out whatever the setting says
        log.error("%s; using %g hours", exc.detail, DEFAULT_BLOCKED_REALERT_HOURS)
        return DEFAULT_BLOCKED_REALERT_HOURS


def blocked_alert_due(alert: Alert, conn_id: str = "coupang_warehouse") -> tuple[bool, bool, str]:
    """(due, anew, why) for the alert of an account blocked by a seller's action; due when the
    warehouse cannot tell (an alert too many beats an alert lost)."""
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
    from coupang_sales.warehouse.alerts import last_blocked_alert

    try:
        with WarehouseHook(conn_id).connected() as conn:
            last = last_blocked_alert(conn, channel=alert.channel, account_id=alert.account, reason=alert.category,
                                      realert_hours=blocked_realert_hours())
    except Exception as exc:
        log.warning("could not read when %s %s was last alerted (%s); alerting", alert.channel, alert.account,
                    type(exc).__name__)
        return True, False, "unknown"
    if last is None:
        return True, True, "newly blocked"
    if last.collected_since:
        return True, True, "blocked again after a successful collection"
    if last.period_over:
        return True, False, f"still blocked since {last.blocked_since:%Y-%m-%d %H:%M %Z}"
    return False, False, (f"already alerted at {last.last_alerted_at:%Y-%m-%d %H:%M %Z}, "
                          f"blocked since {last.blocked_since:%Y-%m-%d %H:%M %Z}")


def remember_blocked_alert(alert: Alert, *, anew: bool, conn_id: str = "coupang_warehouse") -> None:
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
    from coupang_sales.warehouse.alerts import remember_blocked_alert as remember

    try:
        with WarehouseHook(conn_id).connected() as conn:
            remember(conn, channel=alert.channel, account_id=alert.account, reason=alert.category, anew=anew)
    except Exception as exc:  # the alert went out; the next run may send it again
        log.warning("could not record the alert of %s %s (%s)", alert.channel, alert.account, type(exc).__name__)



def remember_expiry_warning(context: Mapping[str, Any], conn_id: str = "coupang_warehouse") -> bool:
    """Keep a sub-account expiry warning's date for the status page (``sales.sub_account_expiry``, the
    account ``expiring`` while the warning's run is its newest). Called by the warning's notifier, which
    both the check task and the extract's deferred check call; False for any other warning."""
    import datetime as dt

    account = context.get("coupang_account") or {}
    category = context.get("coupang_warning_category", DEFAULT_WARNING_CATEGORY)
    expires = context.get("coupang_expires")  # the check's own date and warn_days, beside its message
    if category != DEFAULT_WARNING_CATEGORY or expires is None or not account.get("account_id"):
        return False
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
    from coupang_sales.warehouse.status import record_expiry_warning

    task = context.get("task")
    try:
        with WarehouseHook(conn_id).connected() as conn:
            record_expiry_warning(conn, channel=str(account.get("channel") or "coupang_rocket"),
                                  account_id=str(account["account_id"]),
                                  expires=dt.date.fromisoformat(str(expires)),
                                  warn_days=context.get("coupang_warn_days", getattr(task, "warn_days", None)),
                                  run_id=context.get("run_id"))
    except Exception as exc:  # the warning goes out; the page shows the account as ok
        log.warning("could not record the expiry warning of %s (%s)", account.get("account_id"), type(exc).__name__)
        return False
    return True
