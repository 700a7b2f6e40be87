"""Portal settings as configuration: selectors, landing rules, paths, waits, download mode, concurrency, aliases.

Every portal has one packaged JSON file of defaults for the real site
(``portal/sign_on.json`` for the shared sign-on, then ``rocket/supplier_hub.json`` or
``jet/wing.json``), documented in ``docs/portals.md``. A deployment overrides any part
without a code change: a JSON file named in the connection's extra (``settings_file``),
an Airflow Variable named there (``settings_variable``, read by the hook), and inline
``settings`` in the extra, applied in that order (later wins; objects merge key by key,
anything else is replaced). An unknown key is refused, naming it: a typo must not be
ignored silently. Before those, ``COUPANG_PORTAL_SETTINGS`` (a JSON object in the
environment) applies to every connection of both portals, so it may only set keys both
have (``waits``, ``pacing_seconds``, ...): a worker-wide override, e.g. a slower network's
waits or the keystroke pace; its keys ``wing`` and ``supplier_hub`` hold overrides for that
portal only (e.g. ``{"wing": {"waits": {"v1_page": 0.05}}}``).

A selector is a string: XPath when it starts with ``/``, ``(`` or ``./``, CSS otherwise.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coupang_sales.errors import CollectionError

PACKAGE = Path(__file__).resolve().parents[1]
SIGN_ON_FILE = PACKAGE / "portal" / "sign_on.json"
PORTAL_FILES = {"supplier_hub": PACKAGE / "rocket" / "supplier_hub.json", "wing": PACKAGE / "jet" / "wing.json"}
# Top-level keys and their types; 'selectors', 'paths', 'query', 'waits', 'column_aliases',
# 'texts', 'fields' (names of API answer fields), 'api' (values Wing's API bodies carry) and
# 'formats' (date formats) are objects whose own keys the packaged defaults define.
_TOP = {"portal": str, "selectors": dict, "landing": dict, "paths": dict, "query": dict, "waits": dict,
        "download_mode": str, "receive_detail_source": str, "concurrency": int, "pacing_seconds": (int, float),
        "page_sizes": dict, "date_format": str, "column_aliases": dict, "texts": dict,
        "max_consecutive_renewals": int, "max_renewals": int, "fields": dict, "api": dict, "formats": dict}
_OPEN = {"column_aliases", "query"}  # objects that may gain keys of a deployment's own
Locator = tuple[str, str]


def _error(message: str) -> CollectionError:
    return CollectionError("configuration_error", f"portal settings: {message}")


def locator(selector: str) -> Locator:
    """A Selenium locator from a settings selector string."""
    text = selector.strip()
    if text.startswith(("/", "(", "./")):
        return ("xpath", text)
    return ("css selector", text)


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str, *, strict: bool) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if str(key).startswith("_"):
            continue  # comments
        path = f"{where}.{key}" if where else str(key)
        if strict and key not in out:
            known = ", ".join(sorted(k for k in out if not str(k).startswith("_")))
            raise _error(f"unknown key {path!r} (known: {known})")
        if isinstance(out.get(key), dict):
            if not isinstance(value, Mapping):
                raise _error(f"{path} must be an object")
            out[key] = _merge(out[key], value, path, strict=strict and key not in _OPEN)
        else:
            out[key] = copy.deepcopy(value)
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


@dataclass(frozen=True)
class PortalSettings:
    """The merged settings of one portal; ``raw`` is the whole document."""

    raw: Mapping[str, Any]

    @property
    def portal(self) -> str:
        return self.raw["portal"]

    def selector(self, key: str) -> Locator:
        try:
            return locator(self.raw["selectors"][key])
        except KeyError:
            raise _error(f"no selector {key!r} for {self.portal}") from None

    @property
    def selectors(self) -> dict[str, Locator]:
        return {key: locator(value) for key, value in self.raw["selectors"].items() if not key.startswith("_")}

    def path(self, key: str) -> str:
        return self.raw["paths"][key]

    def query(self, key: str) -> dict[str, str]:
        return {k: str(v) for k, v in self.raw["query"].get(key, {}).items() if not k.startswith("_")}

    def wait(self, key: str) -> float:
        return float(self.raw["waits"][key])

    @property
    def landing_paths(self) -> tuple[str, ...]:
        return tuple(self.raw["landing"]["paths"])

    @property
    def landing_markers(self) -> tuple[str, ...]:
        """Selector keys one of which the landing page must show (none: the path alone decides)."""
        return tuple(self.raw["landing"].get("markers", ()))

    def text(self, key: str) -> str:
        return self.raw["texts"][key]

    def page_size(self, key: str) -> int:
        return int(self.raw["page_sizes"][key])

    def aliases(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(v) for k, v in self.raw["column_aliases"].items() if not k.startswith("_")}

    def __getattr__(self, name: str) -> Any:
        if name in _TOP and name in self.raw:
            return self.raw[name]
        raise AttributeError(name)


def _check(doc: Mapping[str, Any]) -> None:
    for key, kind in _TOP.items():
        if key in doc and not isinstance(doc[key], kind) or isinstance(doc.get(key), bool) and kind is int:
            raise _error(f"{key} must be a {kind.__name__ if isinstance(kind, type) else 'number'}")
    for key, value in doc.get("selectors", {}).items():
        if not key.startswith("_") and not (isinstance(value, str) and value.strip()):
            raise _error(f"selectors.{key} must be a non-empty string")
    if doc.get("download_mode") not in ("fetch", "browser"):
        raise _error("download_mode must be 'fetch' or 'browser'")
    if doc.get("receive_detail_source", "pages") not in ("export", "pages"):
        raise _error("receive_detail_source must be 'export' or 'pages'")
    if doc.get("concurrency", 1) < 1:
        raise _error("concurrency must be at least 1")
    for key, value in doc.get("waits", {}).items():
        if not key.startswith("_") and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise _error(f"waits.{key} must be a number of seconds, not negative")
    for key, value in doc.get("column_aliases", {}).items():
        if not key.startswith("_") and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise _error(f"column_aliases.{key} must be a list of column names")
    landing = doc.get("landing", {})
    if not landing.get("paths"):
        raise _error("landing.paths must name at least one path")
    unknown_markers = [m for m in landing.get("markers", ()) if m not in doc.get("selectors", {})]
    if unknown_markers:
        raise _error(f"landing.markers names selectors that do not exist: {unknown_markers}")


def load_settings(portal: str, *, settings_file: str | Path | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  more: tuple[Mapping[str, Any], ...] = ()) -> PortalSettings:
    """The settings of ``portal`` (``supplier_hub`` or ``wing``): packaged defaults, then the
    ``settings_file``, then each of ``more`` (e.g. an Airflow Variable's), then ``overrides``."""
    if portal not in PORTAL_FILES:
        raise _error(f"unknown portal {portal!r} (known: {', '.join(PORTAL_FILES)})")
    doc = _merge(_read(SIGN_ON_FILE, "packaged settings"), _read(PORTAL_FILES[portal], "packaged settings"),
                 "", strict=False)
    layers: list[Mapping[str, Any]] = []
    everywhere = os.environ.get("COUPANG_PORTAL_SETTINGS", "").strip()
    if everywhere:
        try:
            shared = json.loads(everywhere)
        except json.JSONDecodeError as exc:
            raise _error(f"COUPANG_PORTAL_SETTINGS is not valid JSON ({exc.msg})") from None
        if not isinstance(shared, Mapping):
            raise _error("COUPANG_PORTAL_SETTINGS must hold a JSON object")
        # Keys named after a portal hold overrides for that portal only.
        layers.append({k: v for k, v in shared.items() if k not in PORTAL_FILES})
        if isinstance(shared.get(portal), Mapping):
            layers.append(shared[portal])
    if settings_file:
        layers.append(_read(Path(settings_file), "settings file"))
    layers += [m for m in more if m]
    if overrides:
        layers.append(overrides)
    for layer in layers:
        if not isinstance(layer, Mapping):
            raise _error("overrides must be a JSON object")
        doc = _merge(doc, layer, "", strict=True)
    if doc.get("portal") != portal:
        raise _error(f"the settings are for {doc.get('portal')!r}, not {portal!r}")
    _check(doc)
    return PortalSettings(doc)
