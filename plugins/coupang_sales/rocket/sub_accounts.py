"""Supplier Hub sub-account (부계정) expiry: expired, expiring soon, or fine."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coupang_sales.errors import ExportFormatError


@dataclass(frozen=True)
class ExpiryStatus:
    expires: dt.date
    today: dt.date
    warn_days: int

    @property
    def days_left(self) -> int:
        return (self.expires - self.today).days

    @property
    def expired(self) -> bool:
        # The portal's rule: the sub-account works through its expiry date.
        return self.expires < self.today

    @property
    def expiring_soon(self) -> bool:
        return not self.expired and self.days_left <= self.warn_days

    def extended_to(self, expires: dt.date) -> "ExpiryStatus":
        return dataclasses.replace(self, expires=expires)


def sub_account_expiry_status(sub_accounts: Iterable[Any], *, username: str, today: dt.date,
                              warn_days: int) -> ExpiryStatus:
    """The expiry status of ``username`` among the rows of 부계정 관리.

    Rows are objects with ``username`` and ``expires`` (a date). A sub-account missing
    from the page is a page change, not a pass.
    """
    for row in sub_accounts:
        if row.username == username:
            return ExpiryStatus(expires=row.expires, today=today, warn_days=warn_days)
    raise ExportFormatError("부계정 관리 does not list the integration's sub-account")
