"""The DAGs' schedule, which names each run by the Asia/Seoul date it collects.

Airflow names a run by the UTC time it may start (``scheduled__2026-01-06T21:00:00+00:00``),
which for a daily 06:00 Seoul schedule is the evening *before* the day after the date collected:
nothing in the UI said which Seoul date a run collects. ``SeoulDailyTimetable`` is Airflow's own
``CronDataIntervalTimetable`` (the same intervals, the same catch-up and backfill behaviour) with
run ids that start with that date::

    scheduled__seoul-2026-01-06__2026-01-06T21:00:00+00:00
    manual__seoul-2026-01-06__2026-01-07T03:12:44.123456+00:00

Airflow 3.3 asks the timetable for the names of scheduled runs and of runs triggered through the
API or the UI, but names a backfill's runs itself (``backfill__2026-01-06T21:00:00+00:00``): those
carry the Seoul date in their note only.

The date is the one ``window.resolve_window`` collects up to: for a scheduled or backfill run the
day before its data interval's end in Seoul; for a manual run its logical date in Seoul (or now),
never later than yesterday. A manual run's ``date`` param is not known when Airflow names the run:
when it names another day, the run's note says so (``notes.on_dag_run_running``) and the report
repeats it. The suffix is Airflow's own, so run ids stay unique and sort by time within a type.

A custom timetable must be registered by a plugin for the scheduler and the API server to read
the serialised DAG: ``coupang_sales_plugin.py`` lists it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

SEOUL_TIMEZONE = "Asia/Seoul"
DAILY_AT_SIX = "0 6 * * *"  # 06:00 Asia/Seoul, collecting up to the day before
SCHEDULED_RUN_TYPES = frozenset({"scheduled", "backfill"})


def collected_date(run_type: str, run_after: dt.datetime, data_interval_end: dt.datetime | None,
                   *, today: dt.date) -> dt.date:
    """The last Seoul date a run of this type collects (the ``date`` param aside)."""
    from coupang_sales.airflow_glue.window import SEOUL

    if run_type in SCHEDULED_RUN_TYPES and data_interval_end is not None:
        return data_interval_end.astimezone(SEOUL).date() - dt.timedelta(days=1)
    return min(run_after.astimezone(SEOUL).date(), today - dt.timedelta(days=1))


def seoul_run_id(run_type: Any, run_after: dt.datetime, data_interval_end: dt.datetime | None) -> str:
    """``<type>__seoul-<date collected>__<Airflow's suffix>``; ``run_type`` is a ``DagRunType``."""
    from coupang_sales.airflow_glue.window import seoul_today

    kind = str(getattr(run_type, "value", run_type))
    day = collected_date(kind, run_after, data_interval_end, today=seoul_today())
    return run_type.generate_run_id(suffix=f"seoul-{day.isoformat()}__{run_after.isoformat()}")


class SeoulDailyTimetable(CronDataIntervalTimetable):
    """Daily at 06:00 Asia/Seoul; each run collects the Seoul day before and is named by it."""

    def __init__(self, cron: str = DAILY_AT_SIX, timezone: Any = SEOUL_TIMEZONE) -> None:
        super().__init__(cron, timezone)

    @property
    def summary(self) -> str:
        return f"{self._expression} {SEOUL_TIMEZONE} (collects the Seoul day before)"

    def generate_run_id(self, *, run_type, run_after, data_interval, **extra) -> str:
        return seoul_run_id(run_type, run_after, data_interval.end if data_interval else None)
