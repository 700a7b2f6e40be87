"""Portal settings as configuration: packaged defaults for the real sites, overrides without code changes."""

from __future__ import annotations

import json

import pytest

from coupang_sales.errors import CollectionError
from coupang_sales.portal.settings import load_settings, locator


def test_the_packaged_defaults_are_the_real_sites(monkeypatch):
    monkeypatch.delenv("COUPANG_PORTAL_SETTINGS")  # the tests' scaled-down waits
    hub = load_settings("supplier_hub")
    assert hub.landing_paths == ("/dashboard/KR",) and hub.landing_markers == ()
    assert hub.query("purchase_account") == {"billIssueType": "DIRECT", "paymentPurchaseSearchType": "",
                                             "vendorPaymentInfoSeq": "", "paymentSearchType": "COMPLETE"}
    assert hub.selector("sign_on.username") == ("css selector", "input[name='username']")
    assert hub.selector("purchase_account.table")[0] == "xpath" and "계산서번호" in hub.selector(
        "purchase_account.table")[1]
    assert hub.aliases() == {"입고/반출일자": ("입고/반출시각",)}
    assert (hub.download_mode, hub.receive_detail_source, hub.concurrency) == ("fetch", "pages", 3)
    wing = load_settings("wing")
    assert wing.landing_markers and {wing.selector(m)[1] for m in wing.landing_markers} == {
        "#top-header-menu", "#wing-top-main-side-menu"}
    # the record's waits (REAL-PORTALS.md §6, OH): status/api retried 120 s, 700 ms between 판매분석
    # pages, 1,200 ms between days, a 15 min backoff after duplicateRequest
    assert (wing.wait("status_retry"), wing.wait("v1_page"), wing.wait("v1_day"), wing.wait("duplicate_backoff")) \
        == (120, 0.7, 1.2, 900)
    assert wing.raw["api"]["v1_registration_types"] == wing.raw["api"]["v1_kept_registration_types"] == ["RFM"]


def test_no_invented_class_in_the_supplier_hub_defaults():
    selectors = load_settings("supplier_hub").raw["selectors"]
    for key, value in selectors.items():
        if key.startswith(("purchase_account", "receive_detail", "settlement", "sub_accounts")):
            assert "@class" not in value, (key, value)
            assert value.startswith(("/", ".//")) or ("." not in value and "#" not in value), (key, value)


def test_a_file_then_inline_overrides_win_and_merge_key_by_key(tmp_path):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"selectors": {"purchase_account.table": "table#a"}, "waits": {"page": 5}}),
                    encoding="utf-8")
    settings = load_settings("supplier_hub", settings_file=path, overrides={"waits": {"blank_page": 1}})
    assert settings.selector("purchase_account.table") == ("css selector", "table#a")
    assert (settings.wait("page"), settings.wait("blank_page"), settings.wait("sign_on_challenge")) == (5, 1, 30)
    assert settings.selector("receive_detail.table")[0] == "xpath", "the rest stays"


@pytest.mark.parametrize(("override", "message"), [
    ({"selectorz": {}}, "unknown key 'selectorz'"),
    ({"selectors": {"purchase_account.tabel": "x"}}, "unknown key 'selectors.purchase_account.tabel'"),
    ({"download_mode": "click"}, "download_mode must be"),
    ({"receive_detail_source": "api"}, "receive_detail_source must be"),
    ({"waits": {"page": -1}}, "waits.page"),
    ({"landing": {"paths": []}}, "landing.paths"),
    ({"column_aliases": {"총단가": "합계"}}, "column_aliases.총단가"),
])
def test_a_bad_override_is_refused_naming_the_key(override, message):
    with pytest.raises(CollectionError, match=message) as caught:
        load_settings("supplier_hub", overrides=override)
    assert caught.value.category == "configuration_error"


def test_a_deployment_may_add_column_aliases_and_query_parameters():
    settings = load_settings("supplier_hub", overrides={"column_aliases": {"총단가": ["합계금액"]},
                                                        "query": {"receive_detail": {"lang": "ko"}}})
    assert settings.aliases()["총단가"] == ("합계금액",)
    assert settings.query("receive_detail") == {"cplbYn": "N", "lang": "ko"}


def test_a_missing_or_broken_file_is_a_configuration_error(tmp_path):
    with pytest.raises(CollectionError, match="cannot read"):
        load_settings("supplier_hub", settings_file=tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(CollectionError, match="not valid JSON"):
        load_settings("supplier_hub", settings_file=tmp_path / "bad.json")


def test_selector_strings():
    assert locator("//a") == ("xpath", "//a") and locator("(//a)[1]") == ("xpath", "(//a)[1]")
    assert locator(".//button") == ("xpath", ".//button") and locator("a.b") == ("css selector", "a.b")


def test_the_connection_extra_maps_onto_the_settings(tmp_path):
    from coupang_sales.airflow_glue.hooks import settings_from_extra

    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"concurrency": 5, "waits": {"page": 9}}), encoding="utf-8")
    settings = settings_from_extra("supplier_hub", {
        "settings_file": str(path), "settings": {"pacing_seconds": 0.5}, "timeout": "12",
        "receive_detail_source": "export", "headless": "false"}, variable={"concurrency": 4})
    assert settings.concurrency == 4, "the Variable after the file"
    assert settings.wait("page") == 12, "the shortcut last"
    assert (settings.pacing_seconds, settings.receive_detail_source) == (0.5, "export")
    with pytest.raises(CollectionError, match="sso_url"):
        settings_from_extra("supplier_hub", {"sso_url": "https://xauth.coupang.com"})


def test_the_workers_settings_may_hold_a_portals_own_keys(monkeypatch):
    monkeypatch.setenv("COUPANG_PORTAL_SETTINGS", json.dumps({"waits": {"page": 7}, "wing": {"waits": {"v1_day": 0.05}},
                                                              "supplier_hub": {"concurrency": 2}}))
    wing, hub = load_settings("wing"), load_settings("supplier_hub")
    assert (wing.wait("page"), wing.wait("v1_day"), wing.concurrency) == (7, 0.05, 3)
    assert (hub.wait("page"), hub.concurrency) == (7, 2)
    monkeypatch.setenv("COUPANG_PORTAL_SETTINGS", json.dumps({"waits": {"v1_day": 0.05}}))
    with pytest.raises(CollectionError, match="waits.v1_day"):
        load_settings("supplier_hub")  # a Wing-only key for both portals is refused, naming it


def test_wing_shortcuts_in_the_connection_extra():
    from coupang_sales.airflow_glue.hooks import settings_from_extra

    settings = settings_from_extra("wing", {"status_retry_seconds": "5", "locale": "en", "v1_page_size": "20"})
    assert (settings.wait("status_retry"), settings.raw["api"]["locale"], settings.page_size("v1")) == (5, "en", 20)
    with pytest.raises(CollectionError, match="api.locales"):
        settings_from_extra("wing", {"settings": {"api": {"locales": "en"}}})
