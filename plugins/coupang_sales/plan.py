"""What one account's collection runs on (``RunPlan``) and what each stage says it did (``StageSummary``).

The plan is built once per account and run, by the extract, and travels between the tasks as
JSON in their XCom, beside the summaries of the stages so far (paths, dates and counts only):
``RunPlan.model_dump(mode="json")`` out, ``RunPlan.from_xcom(value)`` in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from coupang_sales.model import Window


def _window(value: Any) -> Window:
    if isinstance(value, Window):
        return value
    start, end = value
    return Window(dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end)))


# [first day, last day] in JSON, as the tasks' XComs and the collection audit have always shown it
WindowField = Annotated[Window, BeforeValidator(_window),
                        PlainSerializer(lambda w: [w.start.isoformat(), w.end.isoformat()], return_type=list)]


class Account(BaseModel):
    """One row of ``sales.accounts`` as a run sees it: ids and the connection's name, never credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    account_id: str
    conn_id: str
    jet_version: int | None = None


class RunPlan(BaseModel):
    """What every task of one account's collection needs, decided once by the extract."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    account: Account
    window: WindowField                         # the dates collected
    list_until: dt.date                          # the last date read for restatements of the window
    staging: str                                 # the account's staging folder (a URL)
    started_at: dt.datetime                      # when the extract started: the audit's started_at of the load
    collected_through_before: dt.date | None = None  # the account's cursor before this run
    gap: str | None = None                        # a gap too long for a daily run to close, as warned

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> RunPlan:
        """The plan out of a task's XCom (the plan's fields beside the stages' summaries)."""
        return cls.model_validate({name: value[name] for name in cls.model_fields if name in value})

    def to_xcom(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def read_range(self) -> Window:
        """The dates whose documents are read: the window, and after it up to ``list_until``."""
        return Window(self.window.start, max(self.window.end, self.list_until))


class StageSummary(BaseModel):
    """What a stage did, in counts: its fields are the stage's own, none shared with another stage's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_xcom(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class LoadSummary(StageSummary):
    """What a load changed (``coupang_sales.warehouse.LoadResult.as_dict``) and the money it loaded."""

    rows_loaded: int
    added: int
    changed: int
    removed: int
    facts_new: int | None = None
    facts_changed: int | None = None
    facts_removed: int | None = None
    groups_derived: int | None = None
    unapplied_restatements: int | None = None
    unapplied_amount: int | None = None
    unapplied_fee: int | None = None
    unapplied_detail: list[dict[str, Any]] | None = None
    price_difference: int | None = None
    superseded_lines: int | None = None
    payment_amount: int
    return_amount: int | None = None             # Rocket: Σ 총단가 of the 반출 lines read
    seller_shipping_fee: int | None = None       # Jet
    account_fees: int | None = None              # Jet: Σ of the account-level fees of the periods read
    fee_periods: list[list[str]] | None = None   # Jet: those periods
