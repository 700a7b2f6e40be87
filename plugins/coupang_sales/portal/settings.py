"""Portal settings as configuration: selectors, landing rules, paths, waits, download mode, concurrency, aliases.

Every portal has one packaged JSON file of defaults for the real site, on top of the shared
sign-on's (``portal/sign_on.json``); the channel declares its file and its settings model
(``PortalDefaults``: ``rocket/supplier_hub.json`` with ``SupplierHubSettings``, ``jet/wing.json``
with ``WingSettings``), documented in ``docs/portals.md``. A deployment overrides any part
without a code change: a JSON file named in the connection's extra (``settings_file``), an
Airflow Variable named there (``settings_variable``, read by the hook), and inline
``settings`` in the extra, applied in that order (later wins; objects merge key by key,
anything else is replaced). Before those, ``COUPANG_PORTAL_SETTINGS`` (a JSON object in the
environment) applies to every connection of both portals, so it may only set keys both have
(``waits``, ``pacing_seconds``, ...): a worker-wide override, e.g. a slower network's waits
or the keystroke pace; its keys ``wing`` and ``supplier_hub`` hold overrides for that portal
only (e.g. ``{"wing": {"waits": {"v1_page": 0.05}}}``).

Each layer is checked against the portal's pydantic model as it is applied (``extra="forbid"``):
an unknown key or a bad value is refused naming the field and the layer it came from; a typo
must not be ignored silently. Keys starting with ``_`` are comments.

A selector is a string: XPath when it starts with ``/``, ``(`` or ``./``, CSS otherwise.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coupang_sales.errors import CollectionError

SIGN_ON_FILE = Path(__file__).with_name("sign_on.json")
# The portals behind the shared sign-on; COUPANG_PORTAL_SETTINGS holds a section for each.
PORTALS = ("supplier_hub", "wing")
Locator = tuple[str, str]

Seconds = Annotated[float, Field(ge=0)]
NonEmpty = Annotated[str, Field(min_length=1)]


def _error(message: str) -> CollectionError:
    return CollectionError("configuration_error", f"portal settings: {message}")


def locator(selector: str) -> Locator:
    """A Selenium locator from a settings selector string."""
    text = selector.strip()
    if text.startswith(("/", "(", "./")):
        return ("xpath", text)
    return ("css selector", text)


# --- the models -------------------------------------------------------------------------------


class Strict(BaseModel):
    """A settings object: no key but its own, values of their own type (no '5' for 5, no true for 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SharedWaits(Strict):
    page: Seconds  # a page load, an in-page request
    sign_on_challenge: Seconds  # a blank page on the sign-on, waited out as a bot-protection challenge
    blank_page: Seconds  # a blank page elsewhere, before it counts as a bot wall
    keystroke: Seconds  # between the keys of the sign-on form


class Landing(Strict):
    paths: list[str] = Field(min_length=1)
    markers: list[str] = []  # selector keys one of which the landing page must show
    sign_on_redirects: list[str]


class SharedPaths(Strict):
    sign_on_realm: str


class PortalSettingsModel(Strict):
    """The settings both portals have (``portal/sign_on.json``); a portal's model adds its own."""

    portal: str
    selectors: dict[str, str]
    landing: Landing
    paths: SharedPaths
    query: dict[str, dict[str, Any]]  # open: a deployment may add parameters (sent as text)
    waits: SharedWaits
    download_mode: Literal["fetch", "browser"]
    concurrency: int = Field(ge=1)
    pacing_seconds: Seconds
    date_format: NonEmpty
    texts: Strict
    page_sizes: Strict
    column_aliases: dict[str, list[str]]  # open: a deployment may add aliases
    max_consecutive_renewals: int = Field(ge=0)
    max_renewals: int = Field(ge=0)

    @field_validator("selectors")
    @classmethod
    def _non_empty_selectors(cls, value: dict[str, str]) -> dict[str, str]:
        empty = [key for key, selector in value.items() if not selector.strip()]
        if empty:
            raise ValueError(f"the selector(s) {', '.join(empty)} are empty")
        return value

    @model_validator(mode="after")
    def _markers_are_selectors(self) -> PortalSettingsModel:
        unknown = [m for m in self.landing.markers if m not in self.selectors]
        if unknown:
            raise ValueError(f"landing.markers names selectors that do not exist: {unknown}")
        return self


@dataclass(frozen=True)
class PortalDefaults:
    """What a channel declares of its portal's settings: its name, its packaged defaults file (on top of
    ``portal/sign_on.json``) and the model its merged settings must fit."""

    portal: str
    file: Path
    model: type[PortalSettingsModel]


_DECLARED: dict[str, PortalDefaults] = {}


def declare(defaults: PortalDefaults) -> PortalDefaults:
    """Make ``defaults`` the settings of its portal by name too (``load_settings("wing")``); a channel's
    session module declares its portal's when it is imported."""
    if defaults.portal not in PORTALS:
        raise _error(f"unknown portal {defaults.portal!r} (known: {', '.join(PORTALS)})")
    _DECLARED[defaults.portal] = defaults
    return defaults


# --- the merged settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class PortalSettings:
    """The merged settings of one portal; ``model`` is the validated model, ``raw`` the whole document."""

    model: PortalSettingsModel

    @functools.cached_property
    def raw(self) -> dict[str, Any]:
        return self.model.model_dump()

    @property
    def portal(self) -> str:
        return self.model.portal

    def selector(self, key: str) -> Locator:
        try:
            return locator(self.model.selectors[key])
        except KeyError:
            raise _error(f"no selector {key!r} for {self.portal}") from None

    @property
    def selectors(self) -> dict[str, Locator]:
        return {key: locator(value) for key, value in self.model.selectors.items()}

    def path(self, key: str) -> str:
        return getattr(self.model.paths, key)

    def query(self, key: str) -> dict[str, str]:
        return {k: str(v) for k, v in self.model.query.get(key, {}).items()}

    def wait(self, key: str) -> float:
        return float(getattr(self.model.waits, key))

    @property
    def landing_paths(self) -> tuple[str, ...]:
        return tuple(self.model.landing.paths)

    @property
    def landing_markers(self) -> tuple[str, ...]:
        """Selector keys one of which the landing page must show (none: the path alone decides)."""
        return tuple(self.model.landing.markers)

    def text(self, key: str) -> str:
        return getattr(self.model.texts, key)

    def page_size(self, key: str) -> int:
        return int(getattr(self.model.page_sizes, key))

    def aliases(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(v) for k, v in self.model.column_aliases.items()}

    def __getattr__(self, name: str) -> Any:
        # the top-level values (download_mode, concurrency, pacing_seconds, ...) as attributes
        model = self.__dict__.get("model")
        if model is not None and name in type(model).model_fields:
            return getattr(model, name)
        raise AttributeError(name)


# --- merging the layers -----------------------------------------------------------------------


def _without_comments(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_comments(v) for k, v in value.items() if not str(k).startswith("_")}
    return copy.deepcopy(value)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise _error(f"cannot read the {what} {path} ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise _error(f"the {what} {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(raw, dict):
        raise _error(f"the {what} {path} must hold a JSON object")
    return raw


def _refusal(exc: ValidationError, layer: str) -> CollectionError:
    """The first problem pydantic found, naming the field (``waits.page``) and the layer it came from."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "the settings"
    if error["type"] == "extra_forbidden":
        return _error(f"unknown key {where!r} in {layer}")
    message = error["msg"].removeprefix("Value error, ")
    return _error(f"{where} in {layer}: {message}")


def _layers(portal: str, settings_file: str | Path | None, more: tuple[Mapping[str, Any], ...],
            overrides: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """The deployment's layers in the order they apply, each with its name for messages."""
    layers: list[tuple[str, Any]] = []
    everywhere = os.environ.get("COUPANG_PORTAL_SETTINGS", "").strip()
    if everywhere:
        try:
            shared = json.loads(everywhere)
        except json.JSONDecodeError as exc:
            raise _error(f"COUPANG_PORTAL_SETTINGS is not valid JSON ({exc.msg})") from None
        if not isinstance(shared, Mapping):
            raise _error("COUPANG_PORTAL_SETTINGS must hold a JSON object")
        # Keys named after a portal hold overrides for that portal only.
        layers.append(("COUPANG_PORTAL_SETTINGS", {k: v for k, v in shared.items() if k not in PORTALS}))
        if portal in shared:
            layers.append((f"COUPANG_PORTAL_SETTINGS.{portal}", shared[portal]))
    if settings_file:
        layers.append((f"the settings file {settings_file}", _read(Path(settings_file), "settings file")))
    layers += [(f"the connection's settings ({n + 1} of {len(more)})" if len(more) > 1 else
                "the connection's settings", m) for n, m in enumerate(more) if m]
    if overrides:
        layers.append(("the overrides", overrides))
    return layers


def load_settings(portal: PortalDefaults | str, *, settings_file: str | Path | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  more: tuple[Mapping[str, Any], ...] = ()) -> PortalSettings:
    """The settings of ``portal`` (a channel's ``PortalDefaults``, or the name of a declared one:
    ``supplier_hub``, ``wing``): packaged defaults, then ``COUPANG_PORTAL_SETTINGS``, then the
    ``settings_file``, then each of ``more`` (e.g. an Airflow Variable's, the extra's inline
    settings), then ``overrides``."""
    defaults = _declared(portal) if isinstance(portal, str) else portal
    doc = _without_comments(_merge(_read(SIGN_ON_FILE, "packaged settings"),
                                   _read(defaults.file, "packaged settings")))
    # The packaged defaults name every selector a deployment may set (a new one is a typo).
    known_selectors = set(doc.get("selectors", {}))
    layers = [(f"the packaged defaults {defaults.file.name}", {})] + _layers(defaults.portal, settings_file, more,
                                                                             overrides)
    model: PortalSettingsModel | None = None
    for name, layer in layers:
        if not isinstance(layer, Mapping):
            raise _error(f"{name} must be a JSON object")
        layer = _without_comments(layer)
        selectors = layer.get("selectors")
        unknown = sorted(set(selectors) - known_selectors) if isinstance(selectors, Mapping) else []
        if unknown:
            raise _error(f"unknown key 'selectors.{unknown[0]}' in {name}")
        doc = _merge(doc, layer)
        try:
            model = defaults.model.model_validate(doc)
        except ValidationError as exc:
            raise _refusal(exc, name) from None
    if model.portal != defaults.portal:
        raise _error(f"the settings are for {model.portal!r}, not {defaults.portal!r}")
    return PortalSettings(model)


def _declared(portal: str) -> PortalDefaults:
    if portal not in PORTALS:
        raise _error(f"unknown portal {portal!r} (known: {', '.join(PORTALS)})")
    try:
        return _DECLARED[portal]
    except KeyError:
        raise _error(f"the settings of {portal!r} are declared by its channel's session module "
                     "(its settings_defaults); import it first") from None
