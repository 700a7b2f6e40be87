"""The status page's plugin registration, task-log links and HTML, without a server."""

from __future__ import annotations

import datetime as dt

from coupang_sales.warehouse.status import action_for


def row(**changes):
    base = {"channel": "coupang_rocket", "account_id": "V1", "jet_version": None, "active": True, "state": "ok",
            "last_status": "success", "last_reason": None, "last_message": None,
            "last_finished_at": dt.datetime(2026, 1, 6, 21, 10, tzinfo=dt.UTC), "run_attempts": 1,
            "last_dag_id": "coupang_rocket_sales", "last_run_id": "scheduled__2026-01-06T21:00:00+00:00",
            "last_task_id": "collect.load", "last_map_index": 3, "last_try_number": 2,
            "last_success_at": dt.datetime(2026, 1, 6, 21, 10, tzinfo=dt.UTC),
            "last_success_window_start": dt.date(2025, 12, 23), "last_success_window_end": dt.date(2026, 1, 6),
            "collected_through": dt.date(2026, 1, 6), "freshness_days": 1, "stale_after_days": 2,
            "over_threshold": False, "newest_sales_date": dt.date(2026, 1, 5), "action": None}
    return {**base, **changes}


def test_the_plugin_mounts_the_page_and_adds_it_to_the_ui():
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert errors == {}
    plugin = next(p for p in plugins if p.name == "coupang_sales")
    [mounted] = plugin.fastapi_apps
    assert mounted["url_prefix"] == "/coupang-collections"
    paths = {route.path for route in mounted["app"].routes}
    assert {"/", "/api/accounts"} <= paths
    [view] = plugin.external_views
    assert view["url_route"] == "coupang-collections" and view["href"] == "coupang-collections/"
    assert view["destination"] == "nav" and view["category"] == "browse"


def test_the_task_log_link_is_the_ui_route_of_the_mapped_task_instance_and_try():
    from coupang_sales.airflow_glue.status_page import task_log_url

    assert task_log_url(row(), "/") == ("/dags/coupang_rocket_sales/runs/scheduled__2026-01-06T21%3A00%3A00%2B00%3A00"
                                        "/tasks/collect.load/mapped/3?try_number=2")
    assert task_log_url(row(last_map_index=-1, last_try_number=None), "/airflow/") == (
        "/airflow/dags/coupang_rocket_sales/runs/scheduled__2026-01-06T21%3A00%3A00%2B00%3A00/tasks/collect.load")
    assert task_log_url(row(last_run_id=None, last_task_id=None), "/") is None
    assert task_log_url(row(last_map_index=0), "/").endswith("/tasks/collect.load/mapped/0?try_number=2"), \
        "the first account of a mapped task is index 0, not an unmapped task"


def test_the_html_escapes_what_it_shows_and_links_sorting_and_paging():
    from coupang_sales.airflow_glue.status_page import render

    hostile = row(account_id='<script>alert(1)</script>', state="blocked", last_reason="auth_challenge",
                  action=action_for("coupang_rocket", "<b>", "auth_challenge"))
    result = {"rows": [hostile, row(account_id="V2")], "total": 120, "page": 1, "page_size": 2,
              "today": dt.date(2026, 1, 7), "counts": {"ok": 119, "blocked": 1}, "channels": ("coupang_rocket",)}
    page = render(result, {"channel": "", "state": "", "q": "", "sort": "state", "desc": "", "size": "2"},
                  ui_root="/")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "python -m coupang_sales.sign_in coupang_rocket &lt;b&gt;" in page
    assert 'href="?sort=state&amp;desc=true&amp;size=2"' in page      # the sorted column flips
    assert 'rel="next" href="?sort=state&amp;size=2&amp;page=2"' in page
    assert "rows 1–2 of 120" in page and "blocked 1" in page


def test_a_jet_account_shows_its_version_since_when_and_a_gap_its_newest_collected_date():
    from coupang_sales.airflow_glue.status_page import render

    switched = row(channel="coupang_jet", account_id="A1", jet_version=2,
                   jet_version_since=dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC),
                   collected_through=dt.date(2026, 1, 2), collected_until=dt.date(2026, 1, 26), state="stale")
    result = {"rows": [switched], "total": 1, "page": 1, "page_size": 50, "today": dt.date(2026, 1, 27),
              "counts": {"stale": 1}, "channels": ("coupang_jet",)}
    page = render(result, {"channel": "", "state": "", "q": "", "sort": "state", "desc": "", "size": ""}, ui_root="/")
    assert "2<br><small>since 2026-01-06 00:00 KST</small>" in page
    assert "collected through 2026-01-02" in page and "gap: collected again up to 2026-01-26" in page


def test_a_blocked_account_whose_data_went_stale_says_both():
    from coupang_sales.airflow_glue.status_page import render

    blocked = row(state="blocked", last_reason="tax_invoice_pending", freshness_days=8, over_threshold=True,
                  collected_through=dt.date(2026, 1, 2), action="The seller must process the pending tax invoice")
    result = {"rows": [blocked, row(account_id="V2")], "total": 2, "page": 1, "page_size": 50,
              "today": dt.date(2026, 1, 10), "counts": {"blocked": 1, "ok": 1}, "channels": ("coupang_rocket",)}
    page = render(result, {"channel": "", "state": "", "q": "", "sort": "state", "desc": "", "size": ""}, ui_root="/")
    assert '<span class="over">8 day(s) · stale</span>' in page, "stale behind its block"
    assert page.count("· stale") == 1, "a fresh account is not called stale"


def test_an_expiring_account_shows_its_date_its_seller_and_its_route():
    from coupang_sales.airflow_glue.status_page import render

    expiring = row(state="expiring", sub_account_expires=dt.date(2026, 1, 12), seller_name="주식회사 예시상사",
                   last_route="proxy-a", last_map_index=0)
    result = {"rows": [expiring], "total": 1, "page": 1, "page_size": 50, "today": dt.date(2026, 1, 7),
              "counts": {"expiring": 1}, "channels": ("coupang_rocket",)}
    page = render(result, {"channel": "", "state": "", "q": "", "sort": "state", "desc": "", "size": ""}, ui_root="/")
    assert '<span class="state expiring">expiring</span>' in page
    assert "sub-account expires 2026-01-12 (in 5 day(s))" in page
    assert '<td class="seller">주식회사 예시상사</td>' in page and '<td class="route">proxy-a</td>' in page
    assert "/tasks/collect.load/mapped/0?try_number=2" in page
    assert ">Jet version<" in page and ">Days behind<" in page


def test_the_rerun_covers_the_dates_after_the_cursor_up_to_yesterday():
    from coupang_sales.airflow_glue.rerun_action import gap_of, rerun_conf

    today = dt.date(2026, 1, 7)
    assert gap_of(row(collected_through=dt.date(2026, 1, 3)), today) == (dt.date(2026, 1, 4), dt.date(2026, 1, 6))
    assert gap_of(row(collected_through=dt.date(2026, 1, 6)), today) is None, "collected through yesterday"
    assert gap_of(row(collected_through=None), today) == (None, dt.date(2026, 1, 6)), "never collected"
    assert rerun_conf("V1", (dt.date(2026, 1, 4), dt.date(2026, 1, 6))) == {
        "account_id": "V1", "from_date": "2026-01-04", "date": "2026-01-06"}
    assert rerun_conf("V1", (None, dt.date(2026, 1, 6))) == {"account_id": "V1", "date": "2026-01-06"}


def test_a_run_of_one_account_says_so_in_its_note():
    from coupang_sales.airflow_glue.notes import collection_note

    note = collection_note(run_type="manual", conf={"account_id": "V1", "from_date": "2026-01-04",
                                                    "date": "2026-01-06"},
                           logical_date=None, data_interval_start=None, data_interval_end=None)
    assert note == "Collects 2026-01-04 – 2026-01-06 (Asia/Seoul), one range run, account V1 only"


def test_an_actions_answer_inside_the_uis_frame_opens_the_ui_page_through_the_uis_router():
    from coupang_sales.airflow_glue.ui_actions import TOP_LINKS, to_top

    framed = to_top("/dags/d/runs/r", True, title="Re-run started", text="Open the run").body.decode()
    assert 'class="task-log" id="next" target="_top" href="/dags/d/runs/r"' in framed and TOP_LINKS in framed
    plain = to_top("/dags/d/runs/r", False, title="Re-run started", text="Open the run")
    assert (plain.status_code, plain.headers["location"]) == (303, "/dags/d/runs/r")
