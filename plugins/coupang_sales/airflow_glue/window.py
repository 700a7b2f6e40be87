"""Which dates a run collects: the window of its kind of run, the look-back, the catch-up to the cursor."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from coupang_sales.config import settings
from coupang_sales.errors import CollectionError
from coupang_sales.model import Window

SEOUL = ZoneInfo("Asia/Seoul")
DEFAULT_LOOKBACK_DAYS = 14
DEFAULT_RESTATEMENT_HORIZON_DAYS = 60


def seoul_today() -> dt.date:
    """Today in Asia/Seoul; ``COUPANG_TODAY`` (YYYY-MM-DD) pins it for sandboxes and replays."""
    return settings().today or dt.datetime.now(SEOUL).date()


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


GAP_CATEGORY = "collection_gap"


def max_catch_up_days() -> int:
    """How far back a daily run goes to close a gap by itself (``COUPANG_MAX_CATCH_UP_DAYS``, default 92)."""
    return settings().max_catch_up_days


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


def gap_action(dag_id: str, params: Mapping[str, str]) -> str:
    """What to do about a gap a daily run does not close: the range run, as a command."""
    return ("Run a range collection over the gap (one sign-on per account): airflow dags trigger "
            f"{dag_id} -c '{json.dumps(dict(params))}' (or Trigger DAG with from_date/date), or raise "
            "COUPANG_MAX_CATCH_UP_DAYS. If those dates are known to hold nothing, move the cursor: "
            "python -m coupang_sales.cursors set CHANNEL ACCOUNT DATE.")


def list_until(context: Mapping[str, Any], window: Window) -> dt.date:
    """Last 작성일자 to read for restatements of the window (never past today in Seoul)."""
    params = context.get("params") or {}
    horizon = params.get("restatement_horizon_days")
    horizon = DEFAULT_RESTATEMENT_HORIZON_DAYS if horizon is None else int(horizon)
    return max(window.end, min(seoul_today(), window.end + dt.timedelta(days=horizon)))
