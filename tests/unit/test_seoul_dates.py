"""Runs are named and noted by the Asia/Seoul date they collect (the timetable and the run note)."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.timetables.base import DataInterval
from airflow.utils.types import DagRunType

from coupang_sales.airflow_glue.notes import collection_note
from coupang_sales.airflow_glue.timetable import SeoulDailyTimetable

SEOUL = pendulum.timezone("Asia/Seoul")


@pytest.fixture(autouse=True)
def today(monkeypatch):
    monkeypatch.setenv("COUPANG_TODAY", "2026-01-10")


def interval(day: int) -> DataInterval:
    """The schedule's interval of the run that collects ``day`` January: [day 06:00, day+1 06:00) Seoul."""
    start = pendulum.datetime(2026, 1, day, 6, tz=SEOUL)
    return DataInterval(start=start, end=start.add(days=1))


@pytest.mark.parametrize("run_type", [DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB])
def test_a_scheduled_or_backfill_run_is_named_by_the_seoul_date_it_collects(run_type):
    run_after = interval(6).end  # 7 Jan 06:00 Seoul = 6 Jan 21:00 UTC: the UTC name said "2026-01-06T21"
    run_id = SeoulDailyTimetable().generate_run_id(run_type=run_type, run_after=run_after,
                                                   data_interval=interval(6))
    assert run_id == f"{run_type.value}__seoul-2026-01-06__{run_after.isoformat()}"


def test_a_manual_run_is_named_by_its_logical_date_in_seoul_never_later_than_yesterday():
    timetable = SeoulDailyTimetable()
    utc_evening = pendulum.datetime(2026, 1, 5, 22, tz="UTC")  # 6 Jan 07:00 in Seoul
    assert timetable.generate_run_id(run_type=DagRunType.MANUAL, run_after=utc_evening, data_interval=None) \
        .startswith("manual__seoul-2026-01-06__")
    now = pendulum.datetime(2026, 1, 10, 3, tz="UTC")  # today in Seoul: not over, so yesterday
    assert timetable.generate_run_id(run_type=DagRunType.MANUAL, run_after=now, data_interval=None) \
        .startswith("manual__seoul-2026-01-09__")


def test_the_timetable_serialises_as_airflows_cron_interval_timetable_does():
    timetable = SeoulDailyTimetable()
    again = SeoulDailyTimetable.deserialize(timetable.serialize())
    assert again.serialize() == timetable.serialize() == {"expression": "0 6 * * *", "timezone": "Asia/Seoul"}
    after = pendulum.datetime(2026, 1, 6, 12, tz=SEOUL)
    assert again.infer_manual_data_interval(run_after=after) == interval(5)


def test_a_scheduled_runs_note_names_the_date_and_its_lookback():
    note = collection_note(run_type="backfill", conf={}, logical_date=interval(6).start,
                           data_interval_start=interval(6).start, data_interval_end=interval(6).end)
    assert note == "Collects 2026-01-06 (Asia/Seoul) and the 14 days before"


def test_a_form_date_that_differs_from_the_logical_date_wins_and_the_note_says_so():
    logical = pendulum.datetime(2026, 1, 7, 6, tz=SEOUL)
    note = collection_note(run_type="manual", conf={"date": "2026-01-03", "lookback_days": 0},
                           logical_date=logical, data_interval_start=None, data_interval_end=None)
    assert note == ("Collects 2026-01-03 (Asia/Seoul); "
                    "the form's date 2026-01-03 wins over the logical date's 2026-01-07")
    agreeing = collection_note(run_type="manual", conf={"date": "2026-01-07", "lookback_days": 0},
                               logical_date=logical, data_interval_start=None, data_interval_end=None)
    assert agreeing == "Collects 2026-01-07 (Asia/Seoul)"


def test_a_range_runs_note_names_the_range():
    note = collection_note(run_type="manual", conf={"from_date": "2025-01-01", "date": "2025-12-31"},
                           logical_date=None, data_interval_start=None, data_interval_end=None)
    assert note == "Collects 2025-01-01 – 2025-12-31 (Asia/Seoul), one range run"


def test_the_collected_date_matches_the_window_the_tasks_resolve():
    """The run id and the tasks use one rule: the backfill run named 6 January collects 6 January."""
    from types import SimpleNamespace

    from coupang_sales.airflow_glue.window import resolve_window

    for day in (1, 5, 6, 8):
        run_id = SeoulDailyTimetable().generate_run_id(run_type=DagRunType.BACKFILL_JOB, run_after=interval(day).end,
                                                       data_interval=interval(day))
        window = resolve_window({"params": {}, "dag_run": SimpleNamespace(run_type="backfill"),
                                 "data_interval_start": interval(day).start, "data_interval_end": interval(day).end,
                                 "logical_date": interval(day).start})
        assert run_id.split("__")[1] == f"seoul-{window.end.isoformat()}" == f"seoul-{dt.date(2026, 1, day)}"
