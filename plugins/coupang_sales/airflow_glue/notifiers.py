"""Alerts on failed collections: one message per failed account-run, by e-mail and/or Slack."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from coupang_sales.errors import CATEGORIES

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
    }


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
    ])
    return subject, body


class CollectionAlertNotifier(BaseNotifier):
    """Sends a failed collection's alert to the configured channels.

    - e-mail: the SMTP connection ``smtp_conn_id`` (default ``coupang_alerts_smtp``) with the
      recipients in its extra ``to`` (comma-separated) and sender in ``from``;
    - Slack: the connection ``slack_conn_id`` (default ``coupang_alerts_slack``) whose
      ``host`` (or ``password``) is the incoming-webhook URL.
    A channel whose connection does not exist is skipped; the alert is always logged.
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
        self._send_email(subject, body)
        self._send_slack(subject, body)

    @staticmethod
    def _connection(conn_id: str):
        from airflow.sdk import Connection

        try:
            return Connection.get(conn_id)
        except Exception:
            return None

    def _send_email(self, subject: str, body: str) -> None:
        conn = self._connection(self.smtp_conn_id)
        if conn is None:
            return
        import smtplib
        from email.message import EmailMessage

        extra = conn.extra_dejson
        recipients = [a.strip() for a in str(extra.get("to", "")).split(",") if a.strip()]
        if not recipients:
            log.error("connection %s has no 'to' in its extra; e-mail alert not sent", self.smtp_conn_id)
            return
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = extra.get("from", "airflow@localhost")
        message["To"] = ", ".join(recipients)
        message.set_content(body)
        smtp_class = smtplib.SMTP_SSL if str(extra.get("ssl", "false")).lower() == "true" else smtplib.SMTP
        with smtp_class(conn.host or "localhost", int(conn.port or 25), timeout=30) as smtp:
            if str(extra.get("starttls", "false")).lower() == "true":
                smtp.starttls()
            if conn.login:
                smtp.login(conn.login, conn.password or "")
            smtp.send_message(message)

    def _send_slack(self, subject: str, body: str) -> None:
        conn = self._connection(self.slack_conn_id)
        if conn is None:
            return
        import requests

        url = conn.host if (conn.host or "").startswith("http") else conn.password
        response = requests.post(url, json={"text": f"*{subject}*\n```{body}```"}, timeout=30)
        response.raise_for_status()
