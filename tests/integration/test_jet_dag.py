"""coupang_jet_sales end to end: Wing sandbox over HTTP, headed Chromium (Xvfb), GX, PostgreSQL, Airflow dag.test()."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
RUN_DAY = D("2026-02-03")  # the default look-back of 14 days: the window is 20 January .. 3 February


def v2_order(order_id: str, option_id: str, recognized: str, *, qty: int, unit_price: int, instant: int = 0,
             download: int = 0, cancelled: str | None = None, **extra) -> dict:
    return {"order_id": order_id, "option_id": option_id, "sku_id": "55501", "product_name": "보리차",
            "option_name": "1L x 12", "recognized_date": recognized, "unit_price": unit_price, "qty": qty,
            "coupang_discount": 0, "instant_coupon": instant, "download_coupon": download, "commission_rate": 10.8,
            "fees": [{"type": "입출고비", "amount": 650}, {"type": "배송비", "amount": 2500, "discount": 500}],
            "cancelled_date": cancelled, **extra}


def v1_sale(day: str, option_id: str, qty: int, amount: int) -> dict:
    return {"date": day, "option_id": option_id, "product_name": "보리차", "option_name": f"옵션 {option_id}",
            "qty": qty, "amount": amount}


SCENARIO = {
    "today": "2026-02-04",
    "rocket": {"accounts": []},
    "jet": {"accounts": [
        {"account_id": "A00000001", "username": "wing_v1", "password": "pw-wing-v1", "version": 1,
         # 판매분석 lists these every day with zero sales (totalGmv 0), and 87002 on 1 February, when it
         # sold nothing: none of them is a sale
         "v1_options": [{"option_id": f"8709{i}", "product_name": "보리차", "option_name": f"미판매 {i}"}
                        for i in range(3)] + [{"option_id": "87002", "product_name": "보리차",
                                               "option_name": "옵션 87002"}],
         "v1_sales": [v1_sale("2026-01-31", "87001", 3, 29_700), v1_sale("2026-01-31", "87002", 1, 11_900),
                      v1_sale("2026-02-01", "87001", 1, 9_900),
                      v1_sale("2026-02-02", "87001", 2, 19_800), v1_sale("2026-02-02", "87002", 2, 23_800)],
         # the same sales in the settlement reports (after coupons), read once the account switches to v2
         "v2_orders": [v2_order("5000001", "87001", "2026-01-31", qty=3, unit_price=9_900, instant=700),
                       v2_order("5000002", "87002", "2026-01-31", qty=1, unit_price=11_900),
                       v2_order("5000003", "87001", "2026-02-01", qty=1, unit_price=9_900),
                       v2_order("5000004", "87001", "2026-02-02", qty=2, unit_price=9_900, download=800),
                       v2_order("5000004", "87002", "2026-02-02", qty=2, unit_price=11_900)]},
        {"account_id": "A00000002", "username": "wing_v2", "password": "pw-wing-v2", "version": 2,
         # weekly groups cut at the month end: 19-25 Jan (cut by the window), 26-31 Jan, 1 Feb, 2-8 Feb
         "settlement_cycle": "weekly", "report_ready_after_polls": 4, "expired_links": 1,
         "cancellation_sign": "positive", "additional_cost_column": False,
         "v2_orders": [
             v2_order("3000001", "87001", "2026-01-19", qty=1, unit_price=9_900),  # before the window
             v2_order("3000002", "87001", "2026-01-21", qty=2, unit_price=10_000, instant=1_000, download=500),
             # one order and option with rows on two 매출인식일 (and in two settlement groups)
             v2_order("3000003", "87002", "2026-01-30", qty=1, unit_price=5_000),
             v2_order("3000003", "87002", "2026-02-01", qty=2, unit_price=5_000),
             # 1 of 3 cancelled on 2 February: a partial cancellation
             v2_order("3000004", "87003", "2026-01-31", qty=3, unit_price=8_000, cancelled="2026-02-02",
                      cancelled_qty=1),
             # paid 22 Jan, cancelled 23 Jan: restated to 0, its fees reversed
             v2_order("3000005", "87001", "2026-01-22", qty=1, unit_price=12_900, cancelled="2026-01-23"),
             # two options of one order, each with its own fee rows (옵션ID); option 87005 cancelled with its fees
             v2_order("3000006", "87004", "2026-01-27", qty=1, unit_price=10_000),
             v2_order("3000006", "87005", "2026-01-27", qty=1, unit_price=30_000, cancelled="2026-02-02"),
         ],
         "account_fees": [{"date": "2026-01-20", "type": "보관비", "amount": 1_000},
                          {"date": "2026-01-24", "type": "보관비", "amount": 500},
                          {"date": "2026-01-30", "type": "반품 회수비", "amount": 700},
                          {"date": "2026-02-02", "type": "보관비", "amount": 300}]},
        {"account_id": "A00000003", "username": "wing_monthly", "password": "pw-wing-v3", "version": 2,
         "settlement_cycle": "monthly",
         "v2_orders": [v2_order("4000001", "88001", "2026-01-25", qty=1, unit_price=7_000)],
         "account_fees": [{"date": "2026-01-10", "type": "보관비", "amount": 900}]},
    ]},
    "faults": [],
    # Wing as the record shows it failing (REAL-PORTALS.md §6): status/api fails 31 calls in 32 for a
    # window (the record's 40 s scaled to 1.5 s; the client's retry budget stays its 120 s), one API call
    # in five is a 403, and a repeated report request answers duplicateRequest.
    "wing": {"status_failures": {"window_seconds": 1.5}, "forbidden": {"share": 0.2}, "duplicate_requests": {}},
}


@pytest.fixture
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture
def jet_dag(collection_dag, portal, monkeypatch):
    dag = collection_dag(portal, SCENARIO, "coupang_jet_sales")
    for account in SCENARIO["jet"]["accounts"]:  # poll the download list quickly
        key = "AIRFLOW_CONN_" + local_stack.conn_id_for("coupang_jet", account["account_id"]).upper()
        conn = json.loads(__import__("os").environ[key])
        monkeypatch.setenv(key, json.dumps({**conn, "extra": {"poll_interval_seconds": 0.05}}))
    return dag


COLUMNS = ("account_id, order_id, option_id, sales_date, quantity, gross_amount, coupon_discount, payment_amount, "
           "seller_shipping_fee, collected_commission, is_cancelled, source")


def rows(conn, account_id: str) -> list[tuple]:
    return conn.execute(f"SELECT {COLUMNS} FROM sales.order_lines_effective WHERE account_id = %s "
                        "ORDER BY order_id, sales_date", (account_id,)).fetchall()


def fees(conn) -> list[tuple]:
    return conn.execute("SELECT account_id, period_start, period_end, fee_type, amount FROM sales.account_fees "
                        "ORDER BY account_id, period_start, fee_type").fetchall()


def every_row_and_fee(conn) -> tuple[list[list[tuple]], list[tuple]]:
    return [rows(conn, a) for a in ("A00000001", "A00000002", "A00000003")], fees(conn)


def test_jet_v1_and_v2_accounts_against_wing_as_recorded(jet_dag, portal, warehouse):
    """Against a Wing that fails as recorded, the rows a Wing without faults gives (these expectations
    predate the faults); zero-sale options load as nothing."""
    run = jet_dag.test(logical_date=local_stack.logical_date_for(RUN_DAY))
    statuses = warehouse.execute("SELECT account_id, status, coalesce(message, '') FROM sales.collection_runs "
                                 "WHERE run_id = %s ORDER BY account_id", (run.run_id,)).fetchall()
    assert [s[:2] for s in statuses] == [("A00000001", "success"), ("A00000002", "success"),
                                         ("A00000003", "success")], statuses

    # v1: 판매분석 one day at a time; option ID as order ID, no coupons, no fees, no commission
    assert rows(warehouse, "A00000001") == [
        ("A00000001", "87001", "87001", D("2026-01-31"), 3, 29_700, 0, 29_700, 0, None, False, "jet_v1"),
        ("A00000001", "87001", "87001", D("2026-02-01"), 1, 9_900, 0, 9_900, 0, None, False, "jet_v1"),
        ("A00000001", "87001", "87001", D("2026-02-02"), 2, 19_800, 0, 19_800, 0, None, False, "jet_v1"),
        ("A00000001", "87002", "87002", D("2026-01-31"), 1, 11_900, 0, 11_900, 0, None, False, "jet_v1"),
        ("A00000001", "87002", "87002", D("2026-02-02"), 2, 23_800, 0, 23_800, 0, None, False, "jet_v1"),
    ]
    searches = [r for r in portal.state.requests if "vi-detail-search" in r.target]
    window_days = (RUN_DAY - D("2026-01-20")).days + 1
    assert len([r for r in searches if r.status == 200]) == window_days, "one 판매분석 page per day of the window"
    assert 403 in {r.status for r in searches}, "a 403 met and retried"
    status = [r.status for r in portal.state.requests if "/status/api" in r.target]
    assert status.count(500) >= 2 * 3 and status.count(200) >= 2, "both v2 accounts waited out status/api's failures"

    v2 = rows(warehouse, "A00000002")
    by_order: dict[str, list[tuple]] = {}
    for row in v2:
        by_order.setdefault(row[1], []).append(row)
    assert "3000001" not in by_order, "a row of the cut group dated before the window is not loaded"
    assert by_order["3000002"] == [
        # coupons reflected; 입출고비 650 + 배송비 2,500 - 할인가 500; commission floor(10.8 % of 20,000) + VAT
        ("A00000002", "3000002", "87001", D("2026-01-21"), 2, 20_000, 1_500, 18_500, 2_650, 2_160 + 216, False,
         "jet_v2")]
    # rows on 30 January and 1 February of one order and option: both counted, nothing twice
    both_days = by_order["3000003"]
    assert sum(r[5] for r in both_days) == 5_000 + 10_000 and sum(r[4] for r in both_days) == 3
    assert sum(r[8] for r in both_days) == 2 * 2_650
    assert {r[3] for r in both_days} <= {D("2026-01-30"), D("2026-02-01")}
    # 1 of 3 cancelled on 2 February, printed with positive amounts: restates the 31 January line
    assert by_order["3000004"] == [
        ("A00000002", "3000004", "87003", D("2026-01-31"), 2, 16_000, 0, 16_000,
         2_650 - (650 // 3 + 2_500 // 3 - 500 // 3), 2_592 + 259 - 864 - 86, False, "jet_v2")]
    assert by_order["3000005"] == [
        ("A00000002", "3000005", "87001", D("2026-01-22"), 0, 0, 0, 0, 0, 0, True, "jet_v2")]
    # option 87005's cancellation and fee reversals leave option 87004's own fee (2,650) where it was
    assert [(r[2], r[4], r[7], r[8], r[10]) for r in by_order["3000006"]] == [
        ("87004", 1, 10_000, 2_650, False), ("87005", 0, 0, 0, True)]

    # account fees from the settlement groups' totals, per period; each group listed twice, counted once
    assert fees(warehouse) == [
        ("A00000002", D("2026-01-19"), D("2026-01-25"), "보관비", 1_500),
        ("A00000002", D("2026-01-26"), D("2026-01-31"), "반품 회수비", 700),
        ("A00000002", D("2026-02-02"), D("2026-02-08"), "보관비", 300),
        ("A00000003", D("2026-01-01"), D("2026-01-31"), "보관비", 900),
    ]
    requested = [(r.report_type, r.group_keys) for r in portal.state.report_requests.values()
                 if r.account_id == "A00000002"]
    assert len(requested) == len(set(requested)) == 2 * 4, "both reports of each of the 4 groups, once"
    assert all(r.polls >= 4 for r in portal.state.report_requests.values() if r.account_id == "A00000002"), \
        "PENDING for several polls of the download list"
    got = [r["status"] for r in portal.state.storage_requests if "/A00000002/" in r["path"]]
    assert got[0] == 403 and got.count(200) == 8, "the first link had expired: asked for again"
    assert all(not r["cookies"] for r in portal.state.storage_requests), "no portal cookies at the storage host"
    assert portal.state.links_issued["A00000002"] == 9
    # on the rows just loaded: the seller's own commission rates apply at once, and go again
    user_commission_rate_overrides_collected_and_its_removal_restores_it(warehouse)


def user_commission_rate_overrides_collected_and_its_removal_restores_it(warehouse) -> None:
    query = "SELECT effective_commission, commission_source FROM sales.order_lines_effective WHERE order_id = '3000002'"
    assert warehouse.execute(query).fetchone() == (2_376, "collected")
    warehouse.execute("INSERT INTO sales.commission_settings (channel, account_id, option_id, rate_percent) "
                      "VALUES ('coupang_jet', 'A00000002', NULL, 10)")
    assert warehouse.execute(query).fetchone() == (1_850, "user")  # applies to past rows at once, no reload
    warehouse.execute("INSERT INTO sales.commission_settings (channel, account_id, option_id, rate_percent) "
                      "VALUES ('coupang_jet', 'A00000002', '87001', 5)")
    assert warehouse.execute(query).fetchone() == (925, "user")  # the per-option rate is more specific
    warehouse.execute("DELETE FROM sales.commission_settings")
    assert warehouse.execute(query).fetchone() == (2_376, "collected")


def asset_events(run_id: str) -> dict[str, dict[str, dict]]:
    """The run's asset events from Airflow's metadata database: asset name -> account -> extra."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found: dict[str, dict[str, dict]] = {}
    with create_session() as session:
        for name, uri, extra in session.execute(
                select(AssetModel.name, AssetModel.uri, AssetEvent.extra)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetEvent.source_run_id == run_id, AssetEvent.source_task_id == "collect.load")):
            assert uri.startswith("postgres://") and uri.endswith(name.replace("coupang_sales.", "/sales/"))
            (account,) = extra["accounts"]
            assert account not in found.setdefault(name, {}), "one event per asset per account's load"
            found[name][account] = extra
    return found


def test_each_load_emits_asset_events_and_a_rerun_leaves_the_same_rows_and_fees(jet_dag, portal, warehouse):
    """The first run's loads emit an event per asset and account, with the accounts, dates and rows
    changed; a rerun of the date, whose report requests Wing answers duplicateRequest, uses the earlier
    requests, leaves the same rows and fees (loaded once), and its events say nothing changed."""
    first = jet_dag.test(logical_date=local_stack.logical_date_for(RUN_DAY))
    loaded = every_row_and_fee(warehouse)
    assert len(loaded[1]) == 4
    events = asset_events(first.run_id)
    assert set(events) == {"coupang_sales.order_lines", "coupang_sales.account_fees"}
    lines = events["coupang_sales.order_lines"]
    assert set(lines) == {"A00000001", "A00000002", "A00000003"}
    v1 = lines["A00000001"]
    assert v1["channel"] == "coupang_jet" and v1["window"] == ["2026-01-20", "2026-02-03"]
    assert v1["changed_sales_dates"] == ["2026-01-31", "2026-02-01", "2026-02-02"]
    assert v1["rows_changed"] == v1["added"] == 5 and (v1["changed"], v1["removed"]) == (0, 0)
    stored = {account: warehouse.execute("SELECT count(*), array_agg(DISTINCT sales_date::text ORDER BY "
                                         "sales_date::text) FROM sales.order_lines WHERE account_id = %s",
                                         (account,)).fetchone() for account in lines}
    for account, extra in lines.items():
        assert extra["rows_changed"] == extra["added"] == stored[account][0]
        assert extra["changed_sales_dates"] == stored[account][1]
    fees_by_account = events["coupang_sales.account_fees"]
    assert fees_by_account["A00000002"]["periods"] == [["2026-01-19", "2026-01-25"], ["2026-01-26", "2026-01-31"],
                                                       ["2026-02-01", "2026-02-01"], ["2026-02-02", "2026-02-08"]]
    assert fees_by_account["A00000002"]["amount"] == 1_500 + 700 + 300
    assert fees_by_account["A00000001"]["rows"] == 0 and fees_by_account["A00000001"]["periods"] == []

    # A00000001 switches from version 1 to version 2 before the rerun (issue #28); the other two accounts'
    # report requests repeat the first run's, which Wing answers duplicateRequest (issue #25)
    warehouse.execute("UPDATE sales.accounts SET jet_version = 2 WHERE account_id = 'A00000001'")
    repeated = ("A00000002", "A00000003")

    def report_requests() -> int:
        return len([r for r in portal.state.report_requests.values() if r.account_id in repeated])

    requested = report_requests()
    again = jet_dag.test(logical_date=local_stack.logical_date_for(RUN_DAY))
    assert again.state == "success"
    assert report_requests() == requested, "every repeat answered duplicateRequest: none is new"
    duplicates = [c for c in portal.state.api_calls if c.path.endswith("/request-download/api")
                  and c.body["settlementGroupKeys"][0].split("-")[0] in repeated]
    assert len(duplicates) >= 2 * requested, "each of their reports asked for again"
    after = every_row_and_fee(warehouse)
    assert after[0][1:] == loaded[0][1:] and after[1] == loaded[1]
    events = asset_events(again.run_id)["coupang_sales.order_lines"]
    for account in ("A00000002", "A00000003"):
        assert events[account]["rows_changed"] == 0 and events[account]["changed_sales_dates"] == [], \
            "a rerun changes nothing"
    # one line per order and date, every one v2's: the v1 lines of the dates v2 read are gone
    switched = rows(warehouse, "A00000001")
    assert {r[-1] for r in switched} == {"jet_v2"}
    assert len({(r[1], r[2], r[3]) for r in switched}) == len(switched)
    per_day: dict[dt.date, int] = {}
    for r in switched:
        per_day[r[3]] = per_day.get(r[3], 0) + r[7]
    assert per_day == {D("2026-01-31"): 29_000 + 11_900, D("2026-02-01"): 9_900, D("2026-02-02"): 19_000 + 23_800}
    assert events["A00000001"]["removed"] == 5
    assert warehouse.execute("SELECT from_version, to_version FROM sales.jet_version_changes "
                             "WHERE account_id = 'A00000001' ORDER BY id").fetchall() == [(None, 1), (1, 2)]
