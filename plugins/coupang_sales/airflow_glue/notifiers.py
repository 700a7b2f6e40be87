"""Delivery of the alerts (``coupang_sales.airflow_glue.alerts.Alert``): by e-mail and Slack, each on its own."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from coupang_sales.airflow_glue.alerts import (
    Alert,
    blocked_alert_due,
    blocked_realert_hours,
    remember_blocked_alert,
    remember_expiry_warning,
    warning_context,
)

log = logging.getLogger(__name__)


def _reason(exc: BaseException, secrets: list[str]) -> str:
    """Why a send failed, in one line, with the connection's secrets replaced by ***."""
    text = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text[:500]


class CollectionAlertNotifier(BaseNotifier):
    """Sends a failed collection's alert (or, with ``warning=True``, a warning) to the configured channels.

    The project composes the message (``Alert.of``); the providers deliver it:

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
    (the last alert is kept in ``sales.blocked_alerts``). A sub-account's expiry warning keeps its date
    in ``sales.sub_account_expiry`` (the status page's ``expiring``).
    """

    template_fields = ("smtp_conn_id", "slack_conn_id")

    def __init__(self, *, smtp_conn_id: str = "coupang_alerts_smtp",
                 slack_conn_id: str = "coupang_alerts_slack", warning: bool = False) -> None:
        super().__init__()
        self.smtp_conn_id = smtp_conn_id
        self.slack_conn_id = slack_conn_id
        self.warning = warning

    def notify(self, context) -> dict[str, bool]:
        """Deliver the context's alert; {channel: delivered} ({} when none was configured or it was not due)."""
        alert = Alert.of(context, warning=self.warning)
        log.warning("%s\n%s", alert.subject, alert.body)
        if self.warning:  # a sub-account's expiry date, for the status page's 'expiring'
            remember_expiry_warning(context)
        anew = False
        if alert.seller_blocked:
            due, anew, why = blocked_alert_due(alert)
            if not due:
                log.warning("alert of %s %s (%s) not sent again: %s; the next one after %g h "
                            "(COUPANG_BLOCKED_REALERT_HOURS) or once it is collected and blocked again",
                            alert.channel, alert.account, alert.category, why, blocked_realert_hours())
                return {}
            if why not in ("newly blocked", "unknown"):
                alert = alert.again(why)
        sent = self.deliver(context, alert)
        if alert.seller_blocked and (any(sent.values()) or not sent):  # delivered, or no channel to deliver to
            remember_blocked_alert(alert, anew=anew)
        return sent

    def deliver(self, context: Mapping[str, Any], alert: Alert) -> dict[str, bool]:
        """Send ``alert`` through each configured channel; {channel: delivered}."""
        templated = {**context, "coupang_alert": alert.rendered()}
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


def send_warning(context: Mapping[str, Any], account: Mapping[str, Any], *, detail: str, category: str,
                 action: str) -> None:
    """A warning alert (the task goes on): logged, then delivered; a failing alert channel never fails the task."""
    log.warning(detail)
    try:
        CollectionAlertNotifier(warning=True)(warning_context(context, account, detail=detail, category=category,
                                                              action=action))
    except Exception:
        log.exception("could not send the %s warning of %s", category, account.get("account_id"))
