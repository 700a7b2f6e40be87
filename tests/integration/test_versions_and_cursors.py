"""Issue #28 at the warehouse: a Jet v1 -> v2 switch is an event and leaves one truth per date; each
account's cursor moves only without a gap, freshness counts from it, and its command sets it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupang_sales.jet import policy as jet
from coupang_sales.model import JET, ROCKET, Window
from coupang_sales.warehouse import collection_cursor, load_facts, record_run, replace_window, upsert_account
from coupang_sales.warehouse.status import StatusQuery, account_statuses

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat


def tr_row(order: str, option: str, *, price: int, date: str) -> dict[str, str]:
    """One '주문 정산' row of CATEGORY_TR: one unit at ``price``, no discounts or commission."""
    return {"주문ID": order, "등록상품 ID": "P1", "옵션ID": option, "SKU ID": "S1", "카테고리ID": "7",
            "거래유형": "주문 정산", "정산유형": "일반", "판매가(A)": str(price), "판매수량(B)": "1",
            "판매액(A*B)": str(price), "쿠팡지원할인(C)": "0", "매출금액(A*B-C)": str(price), "즉시할인쿠폰(D)": "0",
            "다운로드쿠폰(E)": "0", "판매자할인쿠폰(D+E)": "0", "정산대상액": str(price),
            "판매수수료율(%,VAT별도)": "0", "판매수수료": "0", "판매수수료 VAT": "0", "매출인식일": date,
            "정산주기(종료일)": date}


def v1_lines(account: str, sales: dict[str, int]) -> pd.DataFrame:
    rows = pd.DataFrame([{"판매일": day, "옵션ID": "87001", "등록상품명": "보리차", "옵션명": "1L", "판매수량": "1",
                          "판매금액": str(amount)} for day, amount in sales.items()], columns=list(jet.V1_COLUMNS))
    return jet.transform_v1(rows, account_id=account)


def v2_load(conn, account: str, orders: dict[str, int], read: Window) -> dict:
    tr = pd.DataFrame([tr_row(f"O{day}", "87001", price=amount, date=day) for day, amount in orders.items()],
                      columns=list(jet.CATEGORY_TR_COLUMNS))
    facts = jet.transform_v2(tr, pd.DataFrame(columns=list(jet.WAREHOUSING_SHIPPING_COLUMNS)),
                             account_id=account).facts
    return load_facts(conn, channel=JET, account_id=account, facts=facts, kinds=jet.JET_FACT_KINDS, read_range=read,
                      sources=("jet_v2",), supersedes=("jet_v1",), run_id="v2-run",
                      derive=lambda stored: jet.derive_v2(stored, account_id=account)).as_dict()


def by_date(conn, account: str) -> list[tuple]:
    return conn.execute("SELECT sales_date, source, count(*), sum(payment_amount) FROM sales.order_lines "
                        "WHERE account_id = %s GROUP BY sales_date, source ORDER BY sales_date, source",
                        (account,)).fetchall()


def test_a_v1_to_v2_switch_is_recorded_and_v2_replaces_v1_on_the_dates_it_read(warehouse):
    upsert_account(warehouse, channel=JET, account_id="A1", conn_id="c", jet_version=1)
    replace_window(warehouse, channel=JET, account_id="A1", window=Window(D("2025-12-20"), D("2026-01-05")),
                   lines=v1_lines("A1", {"2025-12-20": 12_000, "2026-01-04": 20_000, "2026-01-05": 30_000}),
                   run_id="v1-run")
    upsert_account(warehouse, channel=JET, account_id="A1", conn_id="c", jet_version=2)  # the switch, 6 January
    upsert_account(warehouse, channel=JET, account_id="A1", conn_id="c", jet_version=2)  # no change: no event
    events = warehouse.execute("SELECT from_version, to_version FROM sales.jet_version_changes "
                               "WHERE account_id = 'A1' ORDER BY id").fetchall()
    assert events == [(None, 1), (1, 2)]

    # the run for 6 January reads [23 December, 6 January] from the reports
    summary = v2_load(warehouse, "A1", {"2026-01-05": 29_000, "2026-01-06": 9_000},
                      Window(D("2025-12-23"), D("2026-01-06")))
    assert summary["superseded_lines"] == 2
    assert by_date(warehouse, "A1") == [
        (D("2025-12-20"), "jet_v1", 1, 12_000),   # before what v2 read: v1 stays
        (D("2026-01-05"), "jet_v2", 1, 29_000),   # one truth: the v2 figure, not 30,000 + 29,000
        (D("2026-01-06"), "jet_v2", 1, 9_000),
    ]                                             # 4 January: v2 read it and found no sale
    removed = warehouse.execute("SELECT sales_date, old_payment_amount, cause FROM sales.order_line_changes "
                                "WHERE change = 'removed' AND account_id = 'A1' ORDER BY sales_date").fetchall()
    assert [r[:2] for r in removed] == [(D("2026-01-04"), 20_000), (D("2026-01-05"), 30_000)]
    assert all("jet_v1 line replaced" in r[2] and "jet_v2" in r[2] for r in removed)
    # re-running the v2 date changes nothing
    again = v2_load(warehouse, "A1", {"2026-01-05": 29_000, "2026-01-06": 9_000},
                    Window(D("2025-12-23"), D("2026-01-06")))
    assert (again["added"], again["changed"], again["removed"]) == (0, 0, 0)

    [row] = account_statuses(warehouse, StatusQuery(channels=(JET,)), today=D("2026-01-07"))["rows"]
    assert row["jet_version"] == 2
    since = warehouse.execute("SELECT max(changed_at) FROM sales.jet_version_changes WHERE account_id = 'A1'")
    assert row["jet_version_since"] == since.fetchone()[0]


def success(conn, account: str, start: str, end: str, status: str = "success", reason: str | None = None):
    record_run(conn, channel=ROCKET, account_id=account, window=Window(D(start), D(end)), status=status,
               reason=reason, run_id=f"run {end}")


def test_the_cursor_moves_only_without_a_gap_and_freshness_counts_from_it(warehouse):
    upsert_account(warehouse, channel=ROCKET, account_id="V1", conn_id="c")
    cursor = lambda: collection_cursor(warehouse, channel=ROCKET, account_id="V1")  # noqa: E731
    state = lambda today: account_statuses(  # noqa: E731
        warehouse, StatusQuery(channels=(ROCKET,)), today=D(today))["rows"][0]
    assert cursor() is None
    success(warehouse, "V1", "2025-12-19", "2026-01-02")
    assert cursor() == D("2026-01-02")
    # blocked from 3 January: the cursor stays, the account goes stale behind its block
    success(warehouse, "V1", "2025-12-20", "2026-01-03", status="blocked", reason="tax_invoice_pending")
    assert cursor() == D("2026-01-02")
    blocked = state("2026-01-10")
    assert (blocked["state"], blocked["over_threshold"], blocked["freshness_days"]) == ("blocked", True, 8)
    # a success beyond the gap (a window that does not reach back to it) leaves the gap visible
    success(warehouse, "V1", "2026-01-12", "2026-01-26")
    assert cursor() == D("2026-01-02")
    after = state("2026-01-27")
    assert (after["state"], after["collected_through"], after["collected_until"]) == (
        "stale", D("2026-01-02"), D("2026-01-26"))
    # a range run over the gap closes it, and the window that came before it counts now: ok again
    success(warehouse, "V1", "2026-01-03", "2026-01-11")
    assert cursor() == D("2026-01-26") and state("2026-01-27")["state"] == "ok"
    # an old backfill never moves it back
    success(warehouse, "V1", "2025-06-01", "2025-06-30")
    assert cursor() == D("2026-01-26")


def test_the_cursor_command_shows_sets_and_resets(warehouse, capsys):
    from coupang_sales import cursors

    dsn = warehouse.info.dsn
    upsert_account(warehouse, channel=ROCKET, account_id="V1", conn_id="c")
    assert cursors.main(["--dsn", dsn, "set", ROCKET, "V1", "2026-01-02"]) == 0
    assert collection_cursor(warehouse, channel=ROCKET, account_id="V1") == D("2026-01-02")
    assert cursors.main(["--dsn", dsn, "show", "--account", "V1"]) == 0
    assert "coupang_rocket\tV1\torder_lines\tcollected through 2026-01-02" in capsys.readouterr().out
    assert cursors.main(["--dsn", dsn, "reset", ROCKET, "V1"]) == 0
    assert collection_cursor(warehouse, channel=ROCKET, account_id="V1") is None
    assert cursors.main(["--dsn", dsn, "set", ROCKET, "V_UNKNOWN", "2026-01-02"]) == 1
    assert "no account coupang_rocket V_UNKNOWN" in capsys.readouterr().err


WINDOWS = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 20), st.booleans()), min_size=1, max_size=8)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=st.tuples(st.integers(0, 60), st.integers(0, 20)), later=WINDOWS, order=st.randoms())
def test_the_cursor_is_the_end_of_the_collected_days_after_the_first_collection_in_any_order(
        warehouse, first, later, order):
    """After the account's first successful collection, the cursor is the last day of the unbroken run of
    collected days from it, whatever order the later windows (successful or not) arrive in."""
    day0 = D("2026-01-01")
    warehouse.execute("DELETE FROM sales.collection_runs; DELETE FROM sales.collection_cursors")

    def window(start: int, length: int) -> tuple[str, str]:
        return ((day0 + dt.timedelta(days=start)).isoformat(),
                (day0 + dt.timedelta(days=start + length)).isoformat())

    success(warehouse, "V1", *window(*first))
    shuffled = list(later)
    order.shuffle(shuffled)
    for start, length, ok in shuffled:
        success(warehouse, "V1", *window(start, length), status="success" if ok else "failed",
                reason=None if ok else "portal_unavailable")
    covered = {first[0] + d for d in range(first[1] + 1)}
    covered |= {start + d for start, length, ok in later if ok for d in range(length + 1)}
    through = first[0] + first[1]
    while through + 1 in covered:
        through += 1
    assert collection_cursor(warehouse, channel=ROCKET, account_id="V1") == day0 + dt.timedelta(days=through)


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(v1_days=st.sets(st.integers(0, 30), min_size=1, max_size=10),
       v2_days=st.dictionaries(st.integers(0, 30), st.integers(1, 50_000), max_size=10),
       ranges=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), min_size=1, max_size=4))
def test_after_a_switch_each_date_has_one_truth_whatever_v2_ranges_are_read_in_any_order(
        warehouse, v1_days, v2_days, ranges):
    """v1 history, then v2 loads of random ranges in any order: every date a v2 load read holds v2's lines
    only (the report's figure), every other date its v1 lines, never both."""
    day0 = D("2026-01-01")
    warehouse.execute("DELETE FROM sales.order_lines; DELETE FROM sales.collected_facts; "
                      "DELETE FROM sales.restatements; DELETE FROM sales.restatement_adjustments")
    v1 = {(day0 + dt.timedelta(days=d)).isoformat(): 1_000 + d for d in v1_days}
    replace_window(warehouse, channel=JET, account_id="A1", window=Window(day0, day0 + dt.timedelta(days=30)),
                   lines=v1_lines("A1", v1), run_id="v1")
    read: set[int] = set()
    for start, length in ranges:
        window = Window(day0 + dt.timedelta(days=start), day0 + dt.timedelta(days=start + length))
        within = {d: amount for d, amount in v2_days.items() if start <= d <= start + length}
        v2_load(warehouse, "A1", {(day0 + dt.timedelta(days=d)).isoformat(): a for d, a in within.items()}, window)
        read |= set(range(start, start + length + 1))
        stored = {(d, source): total for d, source, _, total in by_date(warehouse, "A1")}
        expected = {(day0 + dt.timedelta(days=d), "jet_v2"): a for d, a in v2_days.items() if d in read}
        expected |= {(day0 + dt.timedelta(days=d), "jet_v1"): 1_000 + d for d in v1_days if d not in read}
        assert stored == expected
