"""Which dates a run collects: scheduled, manual with a date, and range (from/to) runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupang_sales.airflow_glue.window import catch_up, gap_action, list_until, resolve_window
from coupang_sales.errors import CollectionError
from coupang_sales.model import Window

D = dt.date.fromisoformat
SEOUL_0600 = dt.datetime(2026, 1, 5, 21, 0, tzinfo=dt.UTC)  # 2026-01-06 06:00 in Asia/Seoul


def test_scheduled_run_ends_on_its_logical_date_in_seoul():
    window = resolve_window({"logical_date": SEOUL_0600, "params": {"lookback_days": 3}})
    assert window == Window(D("2026-01-03"), D("2026-01-06"))


class Run:
    def __init__(self, run_type: str):
        self.run_type = run_type


def seoul(day: str, hour: int) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(D(day), dt.time(hour), tzinfo=ZoneInfo("Asia/Seoul"))


@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_scheduled_run_takes_its_window_from_the_data_interval_in_seoul(run_type, monkeypatch):
    """The 06:00 run of 7 January: interval [6 Jan 06:00, 7 Jan 06:00) KST, so it collects up to 6 January,
    whatever its logical date says."""
    monkeypatch.setenv("COUPANG_TODAY", "2026-01-07")
    context = {"dag_run": Run(run_type), "logical_date": seoul("2026-01-07", 6), "params": {"lookback_days": 3},
               "data_interval_start": seoul("2026-01-06", 6).astimezone(dt.UTC),
               "data_interval_end": seoul("2026-01-07", 6).astimezone(dt.UTC)}
    assert resolve_window(context) == Window(D("2026-01-03"), D("2026-01-06"))


def test_an_interval_of_several_days_is_collected_whole(monkeypatch):
    """A weekly interval, Monday 00:00 to the next Monday 00:00 KST: the seven days, plus the lookback."""
    monkeypatch.setenv("COUPANG_TODAY", "2026-01-20")
    context = {"dag_run": Run("scheduled"), "params": {"lookback_days": 1},
               "data_interval_start": seoul("2026-01-05", 0), "data_interval_end": seoul("2026-01-12", 0)}
    assert resolve_window(context) == Window(D("2026-01-04"), D("2026-01-11"))


def test_a_manual_run_triggered_now_never_collects_a_partial_today(monkeypatch):
    """The UI's manual run has the trigger time as logical date (and an inferred interval): it
    collects up to yesterday in Seoul, not the part of today that has passed."""
    monkeypatch.setenv("COUPANG_TODAY", "2026-03-10")
    now = seoul("2026-03-10", 14)
    context = {"dag_run": Run("manual"), "logical_date": now, "params": {"lookback_days": 0},
               "data_interval_start": seoul("2026-03-09", 6), "data_interval_end": seoul("2026-03-10", 6)}
    assert resolve_window(context) == Window(D("2026-03-09"), D("2026-03-09"))
    context["dag_run"] = Run("scheduled")  # the same interval, scheduled: its end was 06:00, so yesterday too
    assert resolve_window(context) == Window(D("2026-03-09"), D("2026-03-09"))


def test_a_manual_run_for_an_earlier_logical_date_collects_that_date(monkeypatch):
    monkeypatch.setenv("COUPANG_TODAY", "2026-03-10")
    context = {"dag_run": Run("manual"), "logical_date": seoul("2026-03-01", 6), "params": {"lookback_days": 0}}
    assert resolve_window(context) == Window(D("2026-03-01"), D("2026-03-01"))


def test_date_param_beats_the_logical_date():
    window = resolve_window({"logical_date": SEOUL_0600, "params": {"date": "2026-02-01", "lookback_days": 0}})
    assert window == Window(D("2026-02-01"), D("2026-02-01"))


def test_manual_run_without_a_date_collects_up_to_yesterday(monkeypatch):
    monkeypatch.setenv("COUPANG_TODAY", "2026-03-10")
    assert resolve_window({"params": {"lookback_days": 1}}) == Window(D("2026-03-08"), D("2026-03-09"))
    manual = {"dag_run": Run("manual"), "logical_date": None, "data_interval_start": None,
              "data_interval_end": None, "params": {"lookback_days": 1}}
    assert resolve_window(manual) == Window(D("2026-03-08"), D("2026-03-09"))


def test_range_run_collects_from_date_to_date_ignoring_lookback():
    window = resolve_window({"params": {"from_date": "2025-01-01", "date": "2025-12-31", "lookback_days": 14}})
    assert window == Window(D("2025-01-01"), D("2025-12-31")) and len(window.days()) == 365


def test_range_run_backwards_is_a_configuration_error():
    with pytest.raises(CollectionError) as caught:
        resolve_window({"params": {"from_date": "2026-02-01", "date": "2026-01-01"}})
    assert caught.value.category == "configuration_error" and "from_date" in str(caught.value)


def test_rocket_look_ahead_stops_at_today(monkeypatch):
    monkeypatch.setenv("COUPANG_TODAY", "2026-01-20")
    window = Window(D("2026-01-01"), D("2026-01-06"))
    assert list_until({"params": {"restatement_horizon_days": 60}}, window) == D("2026-01-20")
    assert list_until({"params": {"restatement_horizon_days": 3}}, window) == D("2026-01-09")


def test_staging_folder_is_per_run_and_account_and_private(tmp_path, monkeypatch):
    import os
    import stat

    from coupang_sales.airflow_glue.staging import account_folder as staging_dir

    monkeypatch.setenv("COUPANG_STAGING_DIR", str(tmp_path))
    old_umask = os.umask(0o022)
    try:
        folder = staging_dir({"run_id": "scheduled__2026-01-05T21:00:00+00:00"}, "V'1; DROP TABLE x")
    finally:
        os.umask(old_umask)
    assert str(folder).startswith("file:///")
    folder = Path(folder.path)
    assert folder.parent.parent == tmp_path / "adhoc" and folder.is_dir()
    assert folder.name == "V_1__DROP_TABLE_x" and ":" not in folder.parent.name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# ---------------------------------------------------------------- each account's cursor (issue #28, item 3)


def test_the_first_run_after_a_23_day_block_collects_the_whole_gap():
    # collected through 2 January; blocked 3..26 January; the run for 26 January
    caught = catch_up(Window(D("2026-01-12"), D("2026-01-26")), D("2026-01-02"), bound=92)
    assert caught.window == Window(D("2026-01-02"), D("2026-01-26")) and caught.gap is None


def test_a_gap_longer_than_the_bound_keeps_the_look_back_and_proposes_a_range_run():
    caught = catch_up(Window(D("2026-04-20"), D("2026-05-04")), D("2026-01-02"), bound=92)
    assert caught.window == Window(D("2026-04-20"), D("2026-05-04"))
    assert caught.range_params == {"from_date": "2026-01-03", "date": "2026-05-04"}
    assert "only through 2026-01-02" in caught.gap and "COUPANG_MAX_CATCH_UP_DAYS (92)" in caught.gap
    action = gap_action("coupang_rocket_sales", caught.range_params)
    assert """airflow dags trigger coupang_rocket_sales -c '{"from_date": "2026-01-03", "date": "2026-05-04"}'""" \
        in action


@given(end=st.dates(D("2026-01-01"), D("2027-12-31")), lookback=st.integers(0, 30),
       behind=st.one_of(st.none(), st.integers(-40, 200)), bound=st.integers(0, 120))
def test_catch_up_never_leaves_a_day_between_the_cursor_and_the_window(end, lookback, behind, bound):
    window = Window.ending(end, lookback)
    cursor = None if behind is None else end - dt.timedelta(days=behind)
    caught = catch_up(window, cursor, bound=bound)
    assert caught.window.end == window.end and caught.window.start <= window.start
    if cursor is None or cursor >= window.start:
        assert caught.window == window and caught.gap is None  # nothing to catch up
    elif (window.end - cursor).days <= bound:
        assert caught.window.start == cursor and caught.gap is None  # the whole gap, in this run
    else:
        assert caught.window == window and caught.gap and caught.range_params["from_date"] == (
            cursor + dt.timedelta(days=1)).isoformat()


def test_a_gap_over_the_bound_warns_with_the_range_run_and_a_closed_gap_does_not(monkeypatch):
    from types import SimpleNamespace

    from coupang_sales.airflow_glue import notifiers
    from coupang_sales.airflow_glue.stage import send_gap_warning

    sent = []

    class Notifier:
        def __init__(self, *, warning: bool):
            assert warning

        def __call__(self, context):
            sent.append(context)

    monkeypatch.setattr(notifiers, "CollectionAlertNotifier", Notifier)
    context, account = {"dag": SimpleNamespace(dag_id="coupang_jet_sales")}, {"channel": "coupang_jet",
                                                                              "account_id": "A1"}
    send_gap_warning(context, account, catch_up(Window(D("2026-01-12"), D("2026-01-26")), D("2026-01-02"), bound=92))
    assert sent == []
    send_gap_warning(context, account, catch_up(Window(D("2026-01-12"), D("2026-01-26")), D("2026-01-02"), bound=10))
    [alert] = sent
    assert alert["coupang_warning_category"] == "collection_gap"
    assert alert["coupang_warning"].startswith("A1 (2026-01-12..2026-01-26): collected without a gap only through")
    assert """airflow dags trigger coupang_jet_sales -c '{"from_date": "2026-01-03", "date": "2026-01-26"}'""" \
        in alert["coupang_warning_action"]
    assert "python -m coupang_sales.cursors set coupang_jet A1 DATE" in alert["coupang_warning_action"]
