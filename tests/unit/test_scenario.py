"""Sandbox scenario files: validation names the bad field, and the amounts follow scenario-format.md."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from sandbox import ScenarioError, load_scenario
from sandbox.excel import RECEIVE_DETAIL_HEADERS, receive_detail_xlsx

DEMO = Path(__file__).resolve().parents[2] / "include" / "sandbox" / "scenarios" / "demo.json"

# The example of scenario-format.md, verbatim: the minimum the loader must accept.
MINIMUM = {
    "today": "2026-01-07",
    "rocket": {"accounts": [{
        "account_id": "V00012345", "vendor_name": "주식회사 예시상사", "username": "sub_user1", "password": "pw-1",
        "sub_account_expires": "2026-03-31", "sms_challenge": False,
        "invoices": [{
            "invoice_no": "30608513", "written_date": "2026-01-05", "tax_invoice_confirmed": "2026-01-06",
            "lines": [{"kind": "발주", "po_no": "123456789", "sku_id": "55501", "sku_name": "보리차 1L x 12",
                       "moved_date": "2026-01-03", "center": "이천1", "qty": 10, "unit_price": 9000,
                       "unit_supply": 9000, "unit_tax": 900}],
        }],
    }]},
    "jet": {"accounts": [{
        "account_id": "A00098765", "username": "wing_user", "password": "pw-2", "version": 2,
        "v1_sales": [{"date": "2026-01-05", "option_id": "87001", "product_name": "보리차", "option_name": "1L x 12",
                      "qty": 3, "amount": 29700}],
        "v2_orders": [{"order_id": "2100001", "option_id": "87001", "sku_id": "55501", "product_name": "보리차",
                       "recognized_date": "2026-01-05", "unit_price": 9900, "qty": 3, "coupang_discount": 0,
                       "instant_coupon": 1000, "download_coupon": 500, "commission_rate": 10.8,
                       "fees": [{"type": "입출고비", "amount": 650}, {"type": "배송비", "amount": 2500}],
                       "cancelled_date": None}],
        "account_fees": [{"date": "2026-01-05", "type": "보관비", "amount": 1200}],
    }]},
    "faults": [{"portal": "supplier_hub", "path_contains": "/scm/receive/detail", "kind": "http_500", "times": 1}],
}


def _line(kind: str, qty: int, *, po_no: str = "123456789", sku_id: str = "55501", unit_supply: int = 9000,
          unit_tax: int = 900) -> dict:
    return {"kind": kind, "po_no": po_no, "sku_id": sku_id, "sku_name": "보리차 1L x 12", "moved_date": "2026-01-06",
            "center": "이천1", "qty": qty, "unit_price": unit_supply, "unit_supply": unit_supply, "unit_tax": unit_tax}


def with_change(change) -> dict:
    raw = copy.deepcopy(MINIMUM)
    change(raw)
    return raw


def test_the_minimum_shape_of_scenario_format_md_is_accepted():
    scenario = load_scenario(MINIMUM)
    assert scenario.today == dt.date(2026, 1, 7)
    account = scenario.rocket_accounts[0]
    assert account.invoices[0].lines[0].kind == "발주"
    assert scenario.jet_accounts[0].version == 2
    assert scenario.faults[0].kind == "http_500" and scenario.faults[0].times == 1


def test_the_demo_scenario_loads_and_covers_the_demo_cases():
    scenario = load_scenario(DEMO)
    rocket = {a.account_id: a for a in scenario.rocket_accounts}
    assert scenario.today == dt.date(2026, 1, 7)
    assert [a.has_pending_tax_invoice for a in rocket.values()].count(True) == 1
    assert [a.sub_account_expires < scenario.today for a in rocket.values()].count(True) == 1
    assert any(dt.timedelta(0) <= a.sub_account_expires - scenario.today <= dt.timedelta(days=7)
               for a in rocket.values())
    returns = [line for a in rocket.values() for inv in a.invoices for line in inv.lines if line.kind == "반출"]
    assert len(returns) == 2
    assert sorted(a.version for a in scenario.jet_accounts) == [1, 2]


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0].update(written_date="2026/01/05"),
     "rocket.accounts[0].invoices[0].written_date: not a YYYY-MM-DD date"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0].update(written_date="2026-02-30"),
     "rocket.accounts[0].invoices[0].written_date: not a YYYY-MM-DD date"),
    (lambda s: s.pop("today"), "today: required field is missing"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"][0].update(qty=1.5),
     "rocket.accounts[0].invoices[0].lines[0].qty: must be a whole number"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"][0].update(kind="입고"),
     "rocket.accounts[0].invoices[0].lines[0].kind: must be one of 발주, 반출"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"].append(_line("반출", 2)),
     "rocket.accounts[0].invoices[0].lines[1].qty: a 반출 line needs a negative quantity"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"].append(_line("반출", -1, sku_id="99")),
     "rocket.accounts[0].invoices[0].lines[1].po_no: 반출 line has no 발주 line"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"].append(_line("반출", -11)),
     "rocket.accounts[0].invoices[0].lines[1].qty: returns 11"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0].pop("tax_invoice_confirmed"),
     "rocket.accounts[0].invoices[0].tax_invoice_confirmed: required field is missing"),
    (lambda s: s["rocket"]["accounts"][0]["invoices"][0].update(tax_invoice_confirmd="2026-01-06"),
     "rocket.accounts[0].invoices[0].tax_invoice_confirmd: unknown field"),
    (lambda s: s["rocket"]["accounts"][0].update(sub_account_expires=None),
     "rocket.accounts[0].sub_account_expires: not a YYYY-MM-DD date"),
    (lambda s: s["rocket"]["accounts"][0].update(sms_challenge="yes"),
     "rocket.accounts[0].sms_challenge: must be true or false"),
    (lambda s: s["rocket"]["accounts"][0].update(password=""),
     "rocket.accounts[0].password: must be a non-empty string"),
    (lambda s: s["rocket"]["accounts"].append(copy.deepcopy(s["rocket"]["accounts"][0]) | {"account_id": "V2"}),
     "rocket.accounts[1].username: duplicate username"),
    (lambda s: s["jet"]["accounts"][0].update(version=3), "jet.accounts[0].version: must be 1 or 2"),
    (lambda s: s["jet"]["accounts"][0]["v2_orders"][0]["fees"][0].update(type="보관비"),
     "jet.accounts[0].v2_orders[0].fees[0].type: must be one of 입출고비, 배송비"),
    (lambda s: s["jet"]["accounts"][0]["v2_orders"][0].update(cancelled_date="2026-01-04"),
     "jet.accounts[0].v2_orders[0].cancelled_date: before recognized_date"),
    (lambda s: s["faults"][0].update(kind="explode"), "faults[0].kind: must be one of"),
    (lambda s: s["faults"][0].update(times=0), "faults[0].times: must be a whole number of at least 1"),
    (lambda s: s["faults"][0].update(portal="wing_hub"), "faults[0].portal: must be one of"),
])
def test_a_malformed_scenario_is_rejected_naming_the_bad_field(change, message):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(with_change(change))
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_bad_file_is_rejected_with_its_name_and_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"today": "2026-01-07",,}', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken.json: not valid JSON \(line 1 column 24"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")


def test_a_yaml_scenario_is_accepted_too(tmp_path):
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(MINIMUM)), allow_unicode=True), encoding="utf-8")
    assert load_scenario(path).rocket_accounts[0].invoices[0].invoice_no == "30608513"


def test_line_amounts_total_price_is_qty_times_unit_supply_plus_unit_tax():
    raw = with_change(lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"].append(_line("반출", -3)))
    purchase, returned = load_scenario(raw).rocket_accounts[0].invoices[0].lines
    assert (purchase.total_supply, purchase.total_tax, purchase.total_price) == (90_000, 9_000, 99_000)
    assert purchase.total_price == purchase.qty * (purchase.unit_supply + purchase.unit_tax)
    # a 반출 line carries a negative quantity, so all its totals are negative
    assert (returned.total_supply, returned.total_tax, returned.total_price) == (-27_000, -2_700, -29_700)


def test_invoice_amounts_are_the_sums_of_its_lines():
    raw = copy.deepcopy(MINIMUM)
    raw["rocket"]["accounts"][0]["invoices"][0]["lines"] += [
        _line("발주", 2, po_no="2", sku_id="7", unit_supply=20_000, unit_tax=2_000), _line("반출", -1)]
    invoice = load_scenario(raw).rocket_accounts[0].invoices[0]
    assert invoice.supply_amount == 90_000 + 40_000 - 9_000  # 공급가액
    assert invoice.vat_amount == 9_000 + 4_000 - 900  # 부가가치세
    assert invoice.payable_amount == invoice.supply_amount + invoice.vat_amount == 133_100  # 지급예정금액
    assert invoice.payable_amount == sum(line.total_price for line in invoice.lines)
    assert invoice.first_payment_amount == invoice.payable_amount and invoice.second_payment_amount == 0


def test_a_tax_free_line_needs_no_tax_and_gets_its_tax_type():
    raw = with_change(lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"][0].update(unit_tax=0))
    assert load_scenario(raw).rocket_accounts[0].invoices[0].lines[0].tax_type == "면세"
    raw = with_change(lambda s: s["rocket"]["accounts"][0]["invoices"][0]["lines"][0].update(tax_type="면세"))
    with pytest.raises(ScenarioError, match=r"lines\[0\].unit_tax: must be 0 for tax_type 면세"):
        load_scenario(raw)


def test_jet_v2_commission_is_rounded_down_and_its_vat_too():
    order = load_scenario(MINIMUM).jet_accounts[0].v2_orders[0]
    assert order.commission_rate == Decimal("10.8")
    assert (order.sales_amount, order.revenue_amount, order.seller_coupon) == (29_700, 29_700, 1_500)
    assert order.commission == 3_207  # 10.8 % of 29,700 = 3,207.6
    assert order.commission_vat == 320


def test_the_receive_detail_export_has_the_real_layout():
    raw = with_change(lambda s: s["rocket"]["accounts"][0]["invoices"][0].update(duplicate_lines=True))
    raw["rocket"]["accounts"][0]["invoices"][0]["lines"].append(_line("반출", -1))
    invoice = load_scenario(raw).rocket_accounts[0].invoices[0]
    body = receive_detail_xlsx(invoice)
    assert body[:2] == b"PK"
    rows = CalamineWorkbook.from_filelike(io.BytesIO(body)).get_sheet_by_index(0).to_python()
    assert list(rows[0]) == list(RECEIVE_DETAIL_HEADERS), "the header in row 1"
    assert "입고/반출시각" in RECEIVE_DETAIL_HEADERS
    lines = rows[1:]
    assert len(lines) == 3, "the duplicated line appears twice"
    assert lines[0] == lines[1]
    total_price = RECEIVE_DETAIL_HEADERS.index("총단가")
    assert lines[0][total_price] == "99,000" and lines[-1][total_price] == "-9,900"
    assert lines[0][RECEIVE_DETAIL_HEADERS.index("입고/반출시각")].startswith("2026/01/0")
    positive = CalamineWorkbook.from_filelike(io.BytesIO(receive_detail_xlsx(invoice, returns_positive=True)))
    assert positive.get_sheet_by_index(0).to_python()[-1][total_price] == "9,900", "반출 written without its sign"


def test_the_export_sign_of_returns_and_the_bot_challenge_are_scenario_settings():
    raw = with_change(lambda s: s["rocket"]["accounts"][0].update(export_return_sign="positive"))
    raw["bot_protection"] = {"challenge_seconds": 16}
    scenario = load_scenario(raw)
    assert scenario.rocket_accounts[0].export_return_sign == "positive" and scenario.challenge_seconds == 16
    # The defences are on by default: the recorded ~16 s challenge, unless SANDBOX_CHALLENGE_SECONDS (the tests)
    assert load_scenario(MINIMUM).bot_protection.wall and load_scenario(MINIMUM).bot_protection.bind_to_client
    assert load_scenario(MINIMUM).challenge_seconds == float(os.environ["SANDBOX_CHALLENGE_SECONDS"])
    assert load_scenario({**MINIMUM, "bot_protection": {"wall": False}}).challenge_seconds == 0, \
        "no wall, no challenge"
    rules = load_scenario(MINIMUM).sessions
    assert rules.browser_session_cookies and rules.device_trust_persistent
    with pytest.raises(ScenarioError, match="bot_protection.walls"):
        load_scenario({**MINIMUM, "bot_protection": {"walls": False}})
    bad = with_change(lambda s: s["rocket"]["accounts"][0].update(export_return_sign="plus"))
    with pytest.raises(ScenarioError, match=r"rocket.accounts\[0\].export_return_sign"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="bot_protection.challenge_seconds"):
        load_scenario({**MINIMUM, "bot_protection": {"challenge_seconds": -1}})



def test_session_lifetimes_device_trust_and_sms_codes_are_scenario_settings():
    scenario = load_scenario(MINIMUM)
    rules = scenario.sessions
    assert (rules.portal_seconds, rules.sso_seconds, rules.device_trust_days, rules.one_seller_per_address) == \
        (3600, 43200, 30, True)
    assert scenario.rocket_accounts[0].sms_code == scenario.jet_accounts[0].sms_code == "123456"
    assert scenario.sms_code(MINIMUM["rocket"]["accounts"][0]["username"]) == "123456"
    raw = with_change(lambda s: s["rocket"]["accounts"][0].update(sms_code="987654"))
    raw["sessions"] = {"portal_seconds": 5, "sso_seconds": 60, "device_trust_days": 0, "one_seller_per_address": False}
    changed = load_scenario(raw)
    assert changed.rocket_accounts[0].sms_code == "987654"
    assert (changed.sessions.portal_seconds, changed.sessions.one_seller_per_address) == (5, False)
    with pytest.raises(ScenarioError, match="sessions.portal_seconds"):
        load_scenario({**MINIMUM, "sessions": {"portal_seconds": 0}})
    with pytest.raises(ScenarioError, match="sessions.idle_seconds"):
        load_scenario({**MINIMUM, "sessions": {"idle_seconds": 5}})


# --- the jet section ---------------------------------------------------------------------------

D5, D6 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)


def jet_change(change) -> dict:
    """MINIMUM with its Jet account changed by ``change(account)``."""
    return with_change(lambda s: change(s["jet"]["accounts"][0]))


def v2_order(s: dict) -> dict:
    return s["v2_orders"][0]


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a.pop("version"), "jet.accounts[0].version: required field is missing"),
    (lambda a: a.update(version="2"), "jet.accounts[0].version: must be 1 or 2"),
    (lambda a: a.update(version=True), "jet.accounts[0].version: must be 1 or 2"),
    (lambda a: a.pop("v2_orders"), "jet.accounts[0].v2_orders: required field is missing (a version 2 account"),
    (lambda a: (a.update(version=1), a.pop("v1_sales")),
     "jet.accounts[0].v1_sales: required field is missing (a version 1 account"),
    (lambda a: a.pop("username"), "jet.accounts[0].username: required field is missing"),
    (lambda a: a.update(sms_challenge=1), "jet.accounts[0].sms_challenge: must be true or false"),
    (lambda a: a.update(report_ready_after_polls=0), "jet.accounts[0].report_ready_after_polls: must be at least 1"),
    (lambda a: a.update(vendor_name="x"), "jet.accounts[0].vendor_name: unknown field"),
    (lambda a: a.update(v1_sales={}), "jet.accounts[0].v1_sales: must be a list"),
    (lambda a: a["v1_sales"][0].update(qty=0), "jet.accounts[0].v1_sales[0].qty: must be at least 1"),
    (lambda a: a["v1_sales"][0].update(amount=-1), "jet.accounts[0].v1_sales[0].amount: must be at least 0"),
    (lambda a: a["v1_sales"][0].update(date="2026-1-5"), "jet.accounts[0].v1_sales[0].date: not a YYYY-MM-DD date"),
    (lambda a: a["v1_sales"][0].pop("option_name"), "jet.accounts[0].v1_sales[0].option_name: required field"),
    (lambda a: a["v1_sales"].append(dict(a["v1_sales"][0])),
     "jet.accounts[0].v1_sales[1]: duplicate date 2026-01-05 and option_id 87001"),
    (lambda a: v2_order(a).pop("commission_rate"),
     "jet.accounts[0].v2_orders[0].commission_rate: required field is missing"),
    (lambda a: v2_order(a).update(commission_rate=120),
     "jet.accounts[0].v2_orders[0].commission_rate: must be a percentage between 0 and 100"),
    (lambda a: v2_order(a).update(unit_price=9900.5), "jet.accounts[0].v2_orders[0].unit_price: must be a whole"),
    (lambda a: v2_order(a).update(qty=0), "jet.accounts[0].v2_orders[0].qty: must be at least 1"),
    (lambda a: v2_order(a).update(instant_coupon=30_000), "jet.accounts[0].v2_orders[0]: discounts exceed 판매액"),
    (lambda a: v2_order(a).update(recognized_date=None), "jet.accounts[0].v2_orders[0].recognized_date: not a"),
    (lambda a: v2_order(a).update(order_date="2026-01-06"),
     "jet.accounts[0].v2_orders[0].order_date: after recognized_date"),
    (lambda a: v2_order(a)["fees"][1].update(amount=-2500),
     "jet.accounts[0].v2_orders[0].fees[1].amount: must be at least 0"),
    (lambda a: v2_order(a)["fees"][1].update(discount=3000),
     "jet.accounts[0].v2_orders[0].fees[1].discount: more than the fee's amount"),
    (lambda a: v2_order(a)["fees"][1].pop("type"), "jet.accounts[0].v2_orders[0].fees[1].type: required field"),
    (lambda a: a["v2_orders"].append(dict(v2_order(a))),
     "jet.accounts[0].v2_orders[1].order_id: duplicate order_id/option_id/recognized_date "
     "'2100001/87001/2026-01-05'"),
    (lambda a: v2_order(a).update(cancelled_date="2026-01-06", cancelled_qty=4),
     "jet.accounts[0].v2_orders[0].cancelled_qty: more than qty (3)"),
    (lambda a: v2_order(a).update(cancelled_qty=1),
     "jet.accounts[0].v2_orders[0].cancelled_qty: given without a cancelled_date"),
    (lambda a: a.update(settlement_cycle="daily"), "jet.accounts[0].settlement_cycle: must be one of weekly, monthly"),
    (lambda a: a.update(cancellation_sign="-"), "jet.accounts[0].cancellation_sign: must be one of negative, positive"),
    (lambda a: a.update(expired_links=-1), "jet.accounts[0].expired_links: must be at least 0"),
    (lambda a: a.update(additional_cost_column="no"), "jet.accounts[0].additional_cost_column: must be true or false"),
    (lambda a: a["account_fees"][0].update(type="창고비"),
     "jet.accounts[0].account_fees[0].type: must be one of 보관비"),
    (lambda a: a["account_fees"][0].pop("type"), "jet.accounts[0].account_fees[0].type: required field is missing"),
    (lambda a: a["account_fees"][0].update(date="yesterday"),
     "jet.accounts[0].account_fees[0].date: not a YYYY-MM-DD date"),
    (lambda a: a["account_fees"][0].update(amount="1,200"),
     "jet.accounts[0].account_fees[0].amount: must be a whole number"),
])
def test_a_malformed_jet_account_is_rejected_naming_the_bad_field(change, message):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(jet_change(change))
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_jet_section_that_is_not_an_object_or_has_no_list_is_rejected():
    with pytest.raises(ScenarioError, match=r"^jet: must be an object"):
        load_scenario(with_change(lambda s: s.update(jet=[])))
    with pytest.raises(ScenarioError, match=r"^jet.accounts: must be a list"):
        load_scenario(with_change(lambda s: s["jet"].update(accounts={})))
    with pytest.raises(ScenarioError, match=r"^jet.accounts\[1\].username: duplicate username 'wing_user'"):
        load_scenario(with_change(lambda s: s["jet"]["accounts"].append(
            copy.deepcopy(s["jet"]["accounts"][0]) | {"account_id": "A2"})))


def test_a_version_1_account_needs_only_its_sales_and_a_version_2_account_only_its_orders():
    v1 = load_scenario(jet_change(lambda a: (a.update(version=1), a.pop("v2_orders"), a.pop("account_fees"))))
    assert v1.jet_accounts[0].version == 1 and v1.jet_accounts[0].v2_orders == ()
    v2 = load_scenario(jet_change(lambda a: (a.pop("v1_sales"), a.update(v2_orders=[]))))
    assert v2.jet_accounts[0].v1_sales == () and v2.jet_accounts[0].v2_orders == ()


def test_jet_defaults_fill_the_report_columns_a_scenario_rarely_cares_about():
    account = load_scenario(MINIMUM).jet_accounts[0]
    order = account.v2_orders[0]
    assert account.report_ready_after_polls == 3 and account.sms_challenge is False
    assert order.order_date == order.recognized_date
    assert (order.product_id, order.shipment_id, order.package_size, order.center) == ("187001", "72100001", "소형",
                                                                                        "이천1")
    assert [f.discount for f in order.fees] == [0, 0]
    assert order.settlement_amount == 29_700 - 1_500 - 3_207 - 320  # 정산대상액


def test_the_wing_reports_follow_scenario_format_md():
    """v2_orders become rows of the settlement group holding their 매출인식일, account_fees its totals."""
    from sandbox.settlement import category_tr_rows, group_of, groups, totals, warehousing_shipping_rows

    raw = jet_change(lambda a: v2_order(a).update(cancelled_date="2026-01-06"))
    account = load_scenario(raw).jet_accounts[0]
    group = group_of(account, D5)
    assert (group.key, group.start, group.end) == ("A00098765-20260105-20260111", D5, dt.date(2026, 1, 11))
    assert groups(account, D5, D6, today=dt.date(2026, 1, 7)) == [group]
    tr = category_tr_rows(account, group)
    assert [(r["거래유형"], r["매출인식일"]) for r in tr] == [("주문 정산", "2026-01-05"),
                                                       ("주문 정산취소", "2026-01-06")]
    sale, cancel = tr
    assert (sale["판매가(A)"], sale["판매수량(B)"], sale["판매액(A*B)"], sale["매출금액(A*B-C)"]) == (
        9_900, 3, 29_700, 29_700)
    assert (sale["즉시할인쿠폰(D)"], sale["다운로드쿠폰(E)"], sale["판매자할인쿠폰(D+E)"]) == (1_000, 500, 1_500)
    assert (sale["판매수수료율(%,VAT별도)"], sale["판매수수료"], sale["판매수수료 VAT"]) == (10.8, 3_207, 320)
    assert sale["정산대상액"] == 24_673 and sale["정산주기(종료일)"] == "2026-01-11" and sale["정산유형"] == "주정산"
    assert (cancel["판매가(A)"], cancel["판매수량(B)"], cancel["판매액(A*B)"], cancel["판매수수료"]) == (
        9_900, -3, -29_700, -3_207)

    ws = warehousing_shipping_rows(account, group)
    assert [(r["거래유형"], r["발생비용(A)"], r["매출인식일"]) for r in ws["입출고비"]] == [
        ("입출고비 정산", 650, "2026-01-05"), ("입출고비 정산취소", -650, "2026-01-06")]
    assert [r["발생비용(A)"] for r in ws["배송비"]] == [2_500, -2_500]
    detail = totals(account, group)
    assert detail["totalStorageFeeDeductionAmount"] == 1_200, "account fees are group totals, not report rows"
    assert detail["totalWarehousingFeeDeductionAmount"] == 0 and detail["totalSalesAmount"] == 29_700


def test_settlement_groups_are_weeks_cut_at_the_month_end_or_months():
    from sandbox.settlement import period_of

    assert period_of(dt.date(2026, 1, 28), "weekly") == (dt.date(2026, 1, 26), dt.date(2026, 1, 31))
    assert period_of(dt.date(2026, 2, 1), "weekly") == (dt.date(2026, 2, 1), dt.date(2026, 2, 1))
    assert period_of(dt.date(2026, 1, 1), "weekly") == (dt.date(2026, 1, 1), dt.date(2026, 1, 4))
    assert period_of(dt.date(2026, 2, 14), "monthly") == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))


def test_a_partial_cancellation_takes_back_its_share_and_signs_follow_the_scenario():
    from sandbox.settlement import category_tr_rows, group_of, warehousing_shipping_rows

    raw = jet_change(lambda a: (v2_order(a).update(cancelled_date="2026-01-06", cancelled_qty=1),
                                a.update(cancellation_sign="positive")))
    account = load_scenario(raw).jet_accounts[0]
    group = group_of(account, D5)
    cancel = category_tr_rows(account, group)[1]
    assert (cancel["거래유형"], cancel["판매수량(B)"], cancel["판매액(A*B)"], cancel["즉시할인쿠폰(D)"]) == (
        "주문 정산취소", 1, 9_900, 333)
    assert [r["발생비용(A)"] for r in warehousing_shipping_rows(account, group)["배송비"]] == [2_500, 833]


def test_the_demo_jet_accounts_cover_the_wing_cases():
    accounts = {a.version: a for a in load_scenario(DEMO).jet_accounts}
    assert accounts[1].v1_sales
    orders = accounts[2].v2_orders
    assert any(o.seller_coupon for o in orders), "a coupon"
    assert all(o.fees for o in orders), "입출고비 and 배송비"
    assert any(o.cancelled_date for o in orders), "a cancelled order"
    assert {f.type for f in accounts[2].account_fees} == {"보관비"}


def test_wing_failures_are_off_unless_named_and_named_take_the_recorded_values():
    plain = load_scenario(MINIMUM).wing
    assert plain.status_failures is None and plain.forbidden_share == plain.duplicate_request_seconds == 0
    assert (plain.group_key_dates, plain.instant_milliseconds) == ("compact", True)
    named = load_scenario({**MINIMUM, "wing": {"status_failures": {}, "forbidden": {}, "duplicate_requests": {}}}).wing
    assert (named.status_failures.share, named.status_failures.window_seconds) == (31 / 32, 40)
    assert (named.forbidden_share, named.duplicate_request_seconds) == (0.2, 900)


@pytest.mark.parametrize(("wing", "message"), [
    ({"forbidden": {"share": 1.5}}, "wing.forbidden.share: must be a share"),
    ({"status_failures": {"window_seconds": 0}}, "wing.status_failures.window_seconds: must be a positive"),
    ({"group_key_dates": "slashes"}, "wing.group_key_dates: must be one of compact, dashes"),
    ({"status_failure": {}}, "wing.status_failure: unknown field"),
])
def test_a_bad_wing_behaviour_is_refused_naming_it(wing, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario({**MINIMUM, "wing": wing})


def test_v1_options_and_registration_types_are_checked():
    def options(raw):
        raw["jet"]["accounts"][0]["v1_options"] = [{"option_id": "87009", "product_name": "p", "option_name": "o",
                                                    "registration_type": "ROCKET"}]

    with pytest.raises(ScenarioError, match=r"v1_options\[0\].registration_type: must be one of RFM, NORMAL"):
        load_scenario(with_change(options))
