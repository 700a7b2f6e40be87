"""Custom operators for the Supplier Hub checks that run before a Rocket extract."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from coupang_sales.airflow_glue.runtime import (
    account_session,
    recorded_attempt,
    resolve_window,
    seoul_today,
    staging_dir,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class _SupplierHubCheckOperator(BaseOperator):
    template_fields: Sequence[str] = ("account",)
    ui_color = "#fde8d7"

    def __init__(self, *, account: Mapping[str, Any] | Any, **kwargs) -> None:
        super().__init__(**kwargs)
        self.account = account

    def _session(self, context: "Context"):
        """The account's browser in its persistent profile: after the first task of a run signed
        on, the later ones find it signed on and do not sign on (docs/decisions.md)."""
        from coupang_sales.airflow_glue.hooks import SupplierHubHook

        staging = staging_dir(context, self.account["account_id"]) / self.task_id
        return account_session(context, self.account, SupplierHubHook(self.account["conn_id"]),
                               download_dir=staging, artifacts_dir=staging / "artifacts")


class SubAccountExpiryOperator(_SupplierHubCheckOperator):
    """Stops an account whose Supplier Hub sub-account (부계정) expired, and warns ahead.

    An expired sub-account cannot log in until the master account clicks '연장하기' at
    서플라이어허브 > 부계정 관리: the task fails without retries, recording the
    collection as blocked with reason ``sub_account_expired``. When the expiry is within
    ``warn_days`` days (default 7) it calls ``on_expiry_warning`` notifiers and succeeds.
    With ``auto_extend=True`` and a session permitted to do so, it clicks '연장하기' itself
    when expiry is near.
    """

    template_fields: Sequence[str] = ("account", "warn_days")

    def __init__(self, *, account, warn_days: int = 7, auto_extend: bool = False,
                 on_expiry_warning: Sequence[Any] = (), **kwargs) -> None:
        super().__init__(account=account, **kwargs)
        self.warn_days = warn_days
        self.auto_extend = auto_extend
        self.on_expiry_warning = list(on_expiry_warning)

    def execute(self, context: "Context") -> dict[str, Any]:
        from coupang_sales.errors import CollectionError
        from coupang_sales.rocket.sub_accounts import sub_account_expiry_status

        context["account_label"] = self.account["account_id"]
        window = resolve_window(context)
        with recorded_attempt(context, self.account, window), self._session(context) as session:
            session.login()
            accounts = session.sub_accounts()
            status = sub_account_expiry_status(accounts, username=session.username,
                                               today=seoul_today(), warn_days=int(self.warn_days))
            if status.expired:
                raise CollectionError("sub_account_expired",
                                      f"{self.account['account_id']}: sub-account expired on {status.expires}.")
            if status.expiring_soon and self.auto_extend:
                new_expiry = session.extend_sub_account(session.username)
                log.info("Extended the sub-account of %s to %s", self.account["account_id"], new_expiry)
                status = status.extended_to(new_expiry)
            if status.expiring_soon:
                message = (f"Supplier Hub sub-account of {self.account['account_id']} expires on "
                           f"{status.expires} ({status.days_left} days). Action: the master account "
                           "should click '연장하기' at 서플라이어허브 > 부계정 관리 before then.")
                log.warning(message)
                for notifier in self.on_expiry_warning:  # called as Airflow calls a callback: templated first
                    notifier({**context, "coupang_warning": message, "coupang_account": self.account})
            return {"account_id": self.account["account_id"], "expires": status.expires.isoformat(),
                    "days_left": status.days_left, "warned": status.expiring_soon}


class TaxInvoiceBlockOperator(_SupplierHubCheckOperator):
    """Stops an account's collection while Supplier Hub shows a '미처리된 세금계산서'.

    While a reverse-issued tax invoice is unconfirmed the settlement pages show a
    notice instead of data. The task records the collection as blocked with reason
    ``tax_invoice_pending`` and the seller's action, loads nothing and fails without
    retries (retrying does not process the invoice).
    """

    def execute(self, context: "Context") -> dict[str, Any]:
        from coupang_sales.errors import CollectionError

        context["account_label"] = self.account["account_id"]
        window = resolve_window(context)
        with recorded_attempt(context, self.account, window), self._session(context) as session:
            session.login()
            if session.settlement_blocked():
                raise CollectionError(
                    "tax_invoice_pending",
                    f"{self.account['account_id']}: Supplier Hub shows an unprocessed tax invoice "
                    f"(미처리된 세금계산서); settlement data for {window} cannot be collected.")
        return {"account_id": self.account["account_id"], "blocked": False,
                "checked_at": dt.datetime.now(dt.UTC).isoformat()}
