"""The COUPANG_* settings object: read at call time, one way to read a boolean, a wrong value named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coupang_sales.config import PREFIX, ConfigurationError, Settings, settings

ROOT = Path(__file__).resolve().parents[2]
PORTALS_OWN = {"COUPANG_PORTAL_SETTINGS", "COUPANG_PROFILE_DIR"}  # read by coupang_sales.portal


def test_the_environment_is_read_when_asked(monkeypatch):
    monkeypatch.delenv("COUPANG_MAX_CATCH_UP_DAYS", raising=False)
    assert settings().max_catch_up_days == 92
    monkeypatch.setenv("COUPANG_MAX_CATCH_UP_DAYS", "30")
    assert settings().max_catch_up_days == 30
    monkeypatch.setenv("COUPANG_MAX_CATCH_UP_DAYS", "")
    assert settings().max_catch_up_days == 92, "empty is unset"


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("YES", True), ("1", True), ("on", True),
                                            ("false", False), ("No", False), ("0", False), ("off", False)])
def test_every_boolean_is_read_the_same_way(raw, value, monkeypatch):
    for name in ("COUPANG_CHECKS_SIGN_ON", "COUPANG_ONE_SELLER_PER_ADDRESS", "COUPANG_SESSIONS_SURVIVE_BROWSER"):
        monkeypatch.setenv(name, raw)
    read = settings()
    assert (read.checks_sign_on, read.one_seller_per_address, read.sessions_survive_browser) == (value,) * 3


def test_a_wrong_value_is_a_configuration_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS", "soon")
    monkeypatch.setenv("COUPANG_ONE_SELLER_PER_ADDRESS", "perhaps")
    with pytest.raises(ConfigurationError) as caught:
        settings()
    assert caught.value.category == "configuration_error" and not caught.value.retryable
    assert "COUPANG_WAREHOUSE_LOCK_TIMEOUT_SECONDS='soon'" in str(caught.value)
    assert "COUPANG_ONE_SELLER_PER_ADDRESS='perhaps'" in str(caught.value)


def test_every_setting_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description, f"{PREFIX}{name.upper()} has no description"


def test_every_coupang_variable_the_deployment_sets_is_a_setting():
    compose = (ROOT / "docker-compose.yaml").read_text(encoding="utf-8")
    names = set(re.findall(r"\b(COUPANG_[A-Z_]+)\b", compose)) - PORTALS_OWN
    known = {f"{PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert names and names <= known, f"not in coupang_sales.config.Settings: {sorted(names - known)}"
