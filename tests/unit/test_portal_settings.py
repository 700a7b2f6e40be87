"""Portal settings as configuration: packaged defaults for the real sites, overrides without code changes."""

from __future__ import annotations

import json

import pytest

from coupang_sales.airflow_glue.hooks import settings_from_extra
from coupang_sales.errors import CollectionError
from coupang_sales.jet.portal_settings import WING_SETTINGS
from coupang_sales.jet.wing import WingSession
from coupang_sales.portal.settings import SIGN_ON_FILE, PortalDefaults, load_settings, locator
from coupang_sales.rocket.portal_settings import SUPPLIER_HUB_SETTINGS
from coupang_sales.rocket.supplier_hub import SupplierHubSession


def without_comments(value):
    if isinstance(value, dict):
        return {k: without_comments(v) for k, v in value.items() if not k.startswith("_")}
    return value


@pytest.mark.parametrize("defaults", [SUPPLIER_HUB_SETTINGS, WING_SETTINGS], ids=lambda d: d.portal)
def test_every_packaged_default_is_a_setting_the_model_reads(monkeypatch, defaults):
    """No key of the packaged files is ignored: what loads is the shared file under the channel's own, whole."""
    monkeypatch.delenv("COUPANG_PORTAL_SETTINGS")  # the tests' scaled-down waits
    shared, own = (without_comments(json.loads(p.read_text(encoding="utf-8")))
                   for p in (SIGN_ON_FILE, defaults.file))
    loaded = load_settings(defaults).raw
    for key, value in shared.items():
        assert key in loaded and (not isinstance(value, dict) or set(value) <= set(loaded[key])), key
    for key, value in own.items():  # the channel's file wins over the shared one
        if isinstance(value, dict):
            assert {k: loaded[key][k] for k in value} == value, key
        else:
            assert loaded[key] == value, key
    assert load_settings(defaults.portal).raw == loaded, "by name: the channel's declared defaults"


def test_the_channel_passes_its_own_defaults(tmp_path, monkeypatch):
    """portal/ knows no channel's file: a session loads the defaults its class declares."""
    monkeypatch.delenv("COUPANG_PORTAL_SETTINGS")
    mine = json.loads(WING_SETTINGS.file.read_text(encoding="utf-8"))
    mine["waits"]["report"] = 7
    (tmp_path / "wing.json").write_text(json.dumps(mine), encoding="utf-8")

    class OtherWing(WingSession):
        settings_defaults = PortalDefaults("wing", tmp_path / "wing.json", WING_SETTINGS.model)

    session = OtherWing(base_url="https://wing.example", username="u", password="p", download_dir=tmp_path)
    assert session.report_wait == 7 and session.settings_portal == "wing"
    assert SupplierHubSession.settings_portal == "supplier_hub"


def test_the_real_sites_landing_rule_and_selectors_parse(monkeypatch):
    monkeypatch.delenv("COUPANG_PORTAL_SETTINGS")
    for settings in (load_settings(SUPPLIER_HUB_SETTINGS), load_settings(WING_SETTINGS)):
        assert settings.landing_paths, "a landing rule needs a path"
        for marker in settings.landing_markers:
            assert settings.selector(marker)  # every marker is a selector of the portal
        for key, (by, value) in settings.selectors.items():
            assert by in ("xpath", "css selector") and value.strip(), key


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
    before = load_settings("supplier_hub")
    settings = load_settings("supplier_hub", settings_file=path, overrides={"waits": {"blank_page": 1}})
    assert settings.selector("purchase_account.table") == ("css selector", "table#a")
    assert (settings.wait("page"), settings.wait("blank_page")) == (5, 1)
    assert settings.wait("sign_on_challenge") == before.wait("sign_on_challenge"), "the rest stays"
    assert settings.selector("receive_detail.table") == before.selector("receive_detail.table")


@pytest.mark.parametrize(("override", "message"), [
    ({"selectorz": {}}, "unknown key 'selectorz' in the overrides"),
    ({"selectors": {"purchase_account.tabel": "x"}}, "unknown key 'selectors.purchase_account.tabel' in the overrides"),
    ({"waits": {"pagee": 1}}, "unknown key 'waits.pagee' in the overrides"),
    ({"download_mode": "click"}, "download_mode in the overrides: Input should be 'fetch' or 'browser'"),
    ({"receive_detail_source": "api"}, "receive_detail_source in the overrides"),
    ({"waits": {"page": -1}}, "waits.page in the overrides"),
    ({"waits": {"page": "5"}}, "waits.page in the overrides"),
    ({"concurrency": True}, "concurrency in the overrides"),
    ({"concurrency": 0}, "concurrency in the overrides"),
    ({"landing": {"paths": []}}, "landing.paths in the overrides"),
    ({"landing": {"markers": ["nowhere"]}}, "landing.markers names selectors that do not exist"),
    ({"selectors": {"purchase_account.table": " "}}, "selectors in the overrides"),
    ({"column_aliases": {"총단가": "합계"}}, "column_aliases.총단가 in the overrides"),
    ({"waits": 3}, "waits in the overrides"),
])
def test_a_bad_override_is_refused_naming_the_key_and_the_layer(override, message):
    with pytest.raises(CollectionError, match=message) as caught:
        load_settings("supplier_hub", overrides=override)
    assert caught.value.category == "configuration_error"


def test_a_bad_value_names_the_layer_it_came_from(tmp_path, monkeypatch):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"waits": {"page": -2}}), encoding="utf-8")
    with pytest.raises(CollectionError, match=r"waits.page in the settings file .*hub.json"):
        load_settings("supplier_hub", settings_file=path)
    with pytest.raises(CollectionError, match="concurrency in the connection's settings"):
        load_settings("supplier_hub", more=({"concurrency": "4"},))
    monkeypatch.setenv("COUPANG_PORTAL_SETTINGS", json.dumps({"supplier_hub": {"pacing_seconds": -1}}))
    with pytest.raises(CollectionError, match="pacing_seconds in COUPANG_PORTAL_SETTINGS.supplier_hub"):
        load_settings("supplier_hub")
    monkeypatch.setenv("COUPANG_PORTAL_SETTINGS", "[1]")
    with pytest.raises(CollectionError, match="COUPANG_PORTAL_SETTINGS must hold a JSON object"):
        load_settings("supplier_hub")


def test_a_deployment_may_add_column_aliases_and_query_parameters():
    before = load_settings("supplier_hub")
    settings = load_settings("supplier_hub", overrides={"column_aliases": {"총단가": ["합계금액"]},
                                                        "query": {"receive_detail": {"lang": "ko"}}})
    assert settings.aliases()["총단가"] == ("합계금액",)
    assert settings.query("receive_detail") == {**before.query("receive_detail"), "lang": "ko"}


def test_a_missing_or_broken_file_is_a_configuration_error(tmp_path):
    with pytest.raises(CollectionError, match="cannot read"):
        load_settings("supplier_hub", settings_file=tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(CollectionError, match="not valid JSON"):
        load_settings("supplier_hub", settings_file=tmp_path / "bad.json")
    with pytest.raises(CollectionError, match="unknown portal 'jet'"):
        load_settings("jet")


def test_selector_strings():
    assert locator("//a") == ("xpath", "//a") and locator("(//a)[1]") == ("xpath", "(//a)[1]")
    assert locator(".//button") == ("xpath", ".//button") and locator("a.b") == ("css selector", "a.b")


def test_the_connection_extra_maps_onto_the_settings(tmp_path):
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
    monkeypatch.delenv("COUPANG_PORTAL_SETTINGS")
    packaged = load_settings("wing")
    monkeypatch.setenv("COUPANG_PORTAL_SETTINGS", json.dumps({"waits": {"page": 7}, "wing": {"waits": {"v1_day": 0.05}},
                                                              "supplier_hub": {"concurrency": 2}}))
    wing, hub = load_settings("wing"), load_settings("supplier_hub")
    assert (wing.wait("page"), wing.wait("v1_day"), wing.concurrency) == (7, 0.05, packaged.concurrency)
    assert (hub.wait("page"), hub.concurrency) == (7, 2)
    monkeypatch.setenv("COUPANG_PORTAL_SETTINGS", json.dumps({"waits": {"v1_day": 0.05}}))
    with pytest.raises(CollectionError, match="unknown key 'waits.v1_day' in COUPANG_PORTAL_SETTINGS"):
        load_settings("supplier_hub")  # a Wing-only key for both portals is refused, naming it


def test_wing_shortcuts_in_the_connection_extra():
    settings = settings_from_extra("wing", {"status_retry_seconds": "5", "locale": "en", "v1_page_size": "20"})
    assert (settings.wait("status_retry"), settings.raw["api"]["locale"], settings.page_size("v1")) == (5, "en", 20)
    with pytest.raises(CollectionError, match="api.locales"):
        settings_from_extra("wing", {"settings": {"api": {"locales": "en"}}})
    with pytest.raises(CollectionError, match="page_sizes"):
        settings_from_extra("wing", {"v1_page_size": "500"})  # larger than page_sizes.v1_max
    with pytest.raises(CollectionError, match="api.v1_registration_types"):
        settings_from_extra("wing", {"settings": {"api": {"v1_registration_types": []}}})
