"""Alerts on failed collections: one message per failed account-run, by e-mail and Slack, each on its own."""

from __future__ import annotations

import html
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from coupang_sales.errors import CATEGORIES, SELLER_ACTION_CATEGORIES

log = logging.getLogger(__name__)
_CATEGORY = re.compile(r"\[([a-z_]+)\]")


def alert_facts(context: Mapping[str, Any]) -> dict[str, str]:
    """Channel, account, window, category, action and log link of the failed task in ``context``."""
    from coupang_sales.airflow_glue.runtime import resolve_window

    task = context.get("task")
    account = context.get("coupang_account") or getattr(task, "account", None) \
        or (getattr(task, "op_kwargs", None) or {}).get("account") or {}
    exc = context.get("exception")
    cause = getattr(exc, "__cause__", None) or exc
    category = getattr(cause, "category", None)
    if category is None:
        found = _CATEGORY.search(str(exc or ""))
        category = found.group(1) if found and found.group(1) in CATEGORIES else "unexpected_error"
    action = getattr(cause, "action", None) or CATEGORIES.get(category, (False, "Read the task log."))[1]
    if account.get("account_id") and "CHANNEL ACCOUNT" in action:  # auth_challenge: the sign-in command
        action = action.replace("CHANNEL ACCOUNT", f"{account.get('channel')} {account['account_id']}")
    ti = context.get("ti")
    try:
        window = str(resolve_window(context))
    except Exception:  # an alert must go out even when the window cannot be worked out
        window = "unknown"
    return {
        "channel": str(account.get("channel") or getattr(context.get("dag"), "dag_id", "")),
        "account": str(account.get("account_id", "unknown")),
        "window": window,
        "category": category,
        "action": action,
        "detail": getattr(cause, "detail", None) or str(exc or context.get("coupang_warning") or ""),
        "task": f"{getattr(ti, 'dag_id', '')}.{getattr(ti, 'task_id', '')}",
        "run_id": str(context.get("run_id", "")),
        "log_url": str(getattr(ti, "log_url", "") or ""),
        **_sign_in_fact(category, account),
    }


def _sign_in_fact(category: str, account: Mapping[str, Any]) -> dict[str, str]:
    """An auth_challenge alert's link to the status page's "Sign in" action (the sign-in DAG)."""
    if category != "auth_challenge" or not account.get("account_id") or not account.get("channel"):
        return {}
    from coupang_sales.airflow_glue.sign_in_dag import sign_in_link

    return {"sign_in_url": sign_in_link(str(account["channel"]), str(account["account_id"]))}


def format_alert(facts: Mapping[str, str], *, warning: bool = False) -> tuple[str, str]:
    """Subject and plain-text body of an alert."""
    kind = "WARNING" if warning else "FAILED"
    subject = f"[coupang-sales] {kind} {facts['channel']} {facts['account']} {facts['window']}: {facts['category']}"
    body = "\n".join([
        f"Channel:  {facts['channel']}",
        f"Account:  {facts['account']}",
        f"Window:   {facts['window']}",
        f"Category: {facts['category']}",
        f"Action:   {facts['action']}",
        f"Detail:   {facts['detail']}",
        f"Task:     {facts['task']} (run {facts['run_id']})",
        f"Log:      {facts['log_url']}",
        *([f"Sign in:  {facts['sign_in_url']} (enter the seller's SMS code in the Airflow UI)"]
          if facts.get("sign_in_url") else []),
    ])
    return subject, body


DEFAULT_BLOCKED_REALERT_HOURS = 24.0


def blocked_realert_hours() -> float:
    """``COUPANG_BLOCKED_REALERT_HOURS`` (default 24; 0 = every run): how often an account that stays
    blocked by a seller's action is alerted again."""
    raw = os.environ.get("COUPANG_BLOCKED_REALERT_HOURS", "")
    try:
        return max(0.0, float(raw)) if raw.strip() else DEFAULT_BLOCKED_REALERT_HOURS
    except ValueError:
        log.error("COUPANG_BLOCKED_REALERT_HOURS=%r is not a number; using %g", raw, DEFAULT_BLOCKED_REALERT_HOURS)
        return DEFAULT_BLOCKED_REALERT_HOURS


# Whether a blocked account's alert is due: never alerted for this reason, alerted before a later
# successful collection (blocked anew), or last alerted longer ago than the re-alert period. The
# period has a 5 % grace, so a daily run that starts a few minutes earlier than yesterday's re-alerts.
_BLOCKED_ALERT_DUE = """
SELECT b.last_alerted_at, b.blocked_since,
       EXISTS (SELECT 1 FROM sales.collection_runs r
               WHERE r.channel = b.channel AND r.account_id = b.account_id AND r.status = 'success'
                 AND r.finished_at > b.last_alerted_at) AS collected_since,
       b.last_alerted_at <= now() - make_interval(secs => %(hours)s * 3600 * 0.95) AS period_over
FROM sales.blocked_alerts b
WHERE b.channel = %(channel)s AND b.account_id = %(account)s AND b.reason = %(reason)s
"""
_BLOCKED_ALERT_SENT = """
INSERT INTO sales.blocked_alerts AS b (channel, account_id, reason) VALUES (%(channel)s, %(account)s, %(reason)s)
ON CONFLICT (channel, account_id, reason) DO UPDATE SET
    blocked_since = CASE WHEN %(anew)s THEN now() ELSE b.blocked_since END,
    alerts = CASE WHEN %(anew)s THEN 1 ELSE b.alerts + 1 END,
    last_alerted_at = now()
"""


def _warehouse():
    from coupang_sales.airflow_glue.runtime import warehouse_connection

    return warehouse_connection()


def blocked_alert_due(facts: Mapping[str, str]) -> tuple[bool, bool, str]:
    """(due, anew, why) for the alert of an account blocked by a seller's action; due when the
    warehouse cannot tell (an alert too many beats an alert lost)."""
    try:
        conn = _warehouse()
        try:
            row = conn.execute(_BLOCKED_ALERT_DUE, {"channel": facts["channel"], "account": facts["account"],
                                                    "reason": facts["category"],
                                                    "hours": blocked_realert_hours()}).fetchone()
        finally:
            conn.close()
    except Exception as exc:
        log.warning("could not read when %s %s was last alerted (%s); alerting", facts["channel"],
                    facts["account"], type(exc).__name__)
        return True, False, "unknown"
    if row is None:
        return True, True, "newly blocked"
    last, since, collected_since, period_over = row
    if collected_since:
        return True, True, "blocked again after a successful collection"
    if period_over:
        return True, False, f"still blocked since {since:%Y-%m-%d %H:%M %Z}"
    return False, False, f"already alerted at {last:%Y-%m-%d %H:%M %Z}, blocked since {since:%Y-%m-%d %H:%M %Z}"


def remember_blocked_alert(facts: Mapping[str, str], *, anew: bool) -> None:
    try:
        conn = _warehouse()
        try:
            conn.execute(_BLOCKED_ALERT_SENT, {"channel": facts["channel"], "account": facts["account"],
                                               "reason": facts["category"], "anew": anew})
        finally:
            conn.close()
    except Exception as exc:  # the alert went out; the next run may send it again
        log.warning("could not record the alert of %s %s (%s)", facts["channel"], facts["account"],
                    type(exc).__name__)


def _reason(exc: BaseException, secrets: list[str]) -> str:
    """Why a send failed, in one line, with the connection's secrets replaced by ***."""
    text = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text[:500]


class CollectionAlertNotifier(BaseNotifier):
    """Sends a failed collection's alert to the configured channels, each on its own.

    The project composes the message (``alert_facts``, ``format_alert``); the providers deliver it:

    - e-mail: ``SmtpNotifier`` through the SMTP connection ``smtp_conn_id`` (default
      ``coupang_alerts_smtp``; the SMTP provider's extras ``from_email``, ``disable_ssl``,
      ``disable_tls``, ``timeout``, ``retry_limit``), to the recipients in its extra ``to``
      (comma-separated);
    - Slack: ``SlackWebhookNotifier`` through the ``slackwebhook`` connection ``slack_conn_id``
      (default ``coupang_alerts_slack``): the webhook token (``T000/B000/XXXX``) as password,
      the endpoint (default ``https://hooks.slack.com/services``) as host, or the whole URL
      as password.

    A channel whose connection does not exist is skipped; one that fails is logged with the
    reason (never the connection's secrets) and does not stop the other; the alert itself is
    always logged. An account blocked by a seller's action (``SELLER_ACTION_CATEGORIES``) is
    alerted when it becomes blocked, then at most every ``COUPANG_BLOCKED_REALERT_HOURS``
    (the last alert is kept in ``sales.blocked_alerts``).
    """

    template_fields = ("smtp_conn_id", "slack_conn_id")

    def __init__(self, *, smtp_conn_id: str = "coupang_alerts_smtp",
                 slack_conn_id: str = "coupang_alerts_slack", warning: bool = False) -> None:
        super().__init__()
        self.smtp_conn_id = smtp_conn_id
        self.slack_conn_id = slack_conn_id
        self.warning = warning

    def notify(self, context) -> None:
        facts = alert_facts(context)
        if self.warning and context.get("coupang_warning"):
            facts["category"] = context.get("coupang_warning_category", "sub_account_expiring")
            facts["detail"] = context["coupang_warning"]
            facts["action"] = context.get("coupang_warning_action",
                                          "Click '연장하기' at 서플라이어허브 > 부계정 관리 before the expiry date.")
        subject, body = format_alert(facts, warning=self.warning)
        log.warning("%s\n%s", subject, body)
        blocked = not self.warning and facts["category"] in SELLER_ACTION_CATEGORIES and facts["account"] != "unknown"
        anew = False
        if blocked:
            due, anew, why = blocked_alert_due(facts)
            if not due:
                log.warning("alert of %s %s (%s) not sent again: %s; the next one after %g h "
                            "(COUPANG_BLOCKED_REALERT_HOURS) or once it is collected and blocked again",
                            facts["channel"], facts["account"], facts["category"], why, blocked_realert_hours())
                return
            subject = f"{subject} ({why})" if why not in ("newly blocked", "unknown") else subject
        sent = self.deliver(context, subject, body)
        if blocked and (any(sent.values()) or not sent):  # delivered, or no channel to deliver to
            remember_blocked_alert(facts, anew=anew)

    def deliver(self, context, subject: str, body: str) -> dict[str, bool]:
        """Send ``subject``/``body`` through each configured channel; {channel: delivered}."""
        alert = {"subject": subject, "text": body, "html": f"<pre>{html.escape(body)}</pre>",
                 "slack": f"*{subject}*\n```{body}```"}
        templated = {**context, "coupang_alert": alert}
        results: dict[str, bool] = {}
        for channel, conn_id, build in (("e-mail", self.smtp_conn_id, self._smtp_notifier),
                                        ("Slack", self.slack_conn_id, self._slack_notifier)):
            conn = self._connection(conn_id)
            if conn is None:
                continue
            secrets = [conn.password or "", conn.host or ""] if channel == "Slack" else [conn.password or ""]
            try:
                notifier = build(conn)
                # as BaseNotifier.__call__ does, without its log line of the raw error
                notifier.render_template_fields(templated)
                notifier.notify(templated)
                results[channel] = True
            except Exception as exc:
                log.error("%s alert not sent through connection %s: %s", channel, conn_id, _reason(exc, secrets))
                results[channel] = False
        return results

    def _smtp_notifier(self, conn):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        extra = conn.extra_dejson
        recipients = [a.strip() for a in str(extra.get("to", "")).split(",") if a.strip()]
        if not recipients:
            raise ValueError(f"connection {self.smtp_conn_id} has no 'to' (recipients) in its extra")
        return SmtpNotifier(smtp_conn_id=self.smtp_conn_id, to=recipients,
                            from_email=extra.get("from_email") or extra.get("from") or None,
                            subject="{{ coupang_alert.subject }}", html_content="{{ coupang_alert.html }}")

    def _slack_notifier(self, conn):
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier(slack_webhook_conn_id=self.slack_conn_id, text="{{ coupang_alert.slack }}",
                                    timeout=30)

    @staticmethod
    def _connection(conn_id: str):
        from airflow.sdk import Connection

        try:
            return Connection.get(conn_id)
        except Exception:
            return None
