"""Injected portal failures (server errors, slow pages, lost sessions, broken downloads, bot walls)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PORTALS = ("supplier_hub", "wing")
KINDS = ("http_500", "timeout", "session_expired", "broken_download", "bot_rejected", "changed_header")
BROKEN_MODES = ("truncated", "html", "empty")
ERROR_MODES = ("page", "bare")
BOT_MODES = ("access_denied", "blank")
# session_expired: 'sso' ends Keycloak's session too (the password is asked again), 'portal'
# only the portal's (running the sign-on chain again renews it without the password).
SESSION_MODES = ("sso", "portal")  # Akamai's 403 page, or the blank page some Chromium builds get


@dataclass(frozen=True)
class Fault:
    portal: str  # supplier_hub | wing; sign-on pages count for the portal of their client_id
    kind: str
    path_contains: str = ""  # matched against the path plus '?query'; '' matches every request
    times: int = 1  # how many matching requests fail
    after: int = 0  # matching requests let through before the first failure
    delay_seconds: float = 30.0  # timeout only: how long the answer is held back
    mode: str = ""  # broken_download: truncated (default), html or empty; http_500: page (default) or bare;
    # bot_rejected: access_denied (default) or blank; session_expired: sso (default) or portal
    column: str = ""  # changed_header only: the header of the .xlsx export to change
    rename_to: str | None = None  # changed_header only: its new name; None drops the column


def parse_fault(raw: Any, path: str) -> Fault:
    """A Fault from its scenario object; ValueError names the bad field."""
    allowed = ("portal", "kind", "path_contains", "times", "after", "delay_seconds", "mode", "column", "rename_to")
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: must be an object")
    unknown = sorted(k for k in raw if k not in allowed and not str(k).startswith("_"))
    if unknown:
        raise ValueError(f"{path}.{unknown[0]}: unknown field (known: {', '.join(allowed)})")
    for key in ("portal", "kind"):
        if key not in raw:
            raise ValueError(f"{path}.{key}: required field is missing")
    if raw["portal"] not in PORTALS:
        raise ValueError(f"{path}.portal: must be one of {', '.join(PORTALS)}")
    if raw["kind"] not in KINDS:
        raise ValueError(f"{path}.kind: must be one of {', '.join(KINDS)}")
    if not isinstance(raw.get("path_contains", ""), str):
        raise ValueError(f"{path}.path_contains: must be a string")
    for key, minimum in (("times", 1), ("after", 0)):
        value = raw.get(key, minimum)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{path}.{key}: must be a whole number of at least {minimum}")
    delay = raw.get("delay_seconds", 30.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay <= 0:
        raise ValueError(f"{path}.delay_seconds: must be a positive number of seconds")
    modes = {"broken_download": BROKEN_MODES, "http_500": ERROR_MODES, "bot_rejected": BOT_MODES,
             "session_expired": SESSION_MODES}.get(raw["kind"], ())
    mode = raw.get("mode", modes[0] if modes else "")
    if "mode" in raw and mode not in modes:
        raise ValueError(f"{path}.mode: must be one of {', '.join(modes)}" if modes
                         else f"{path}.mode: only broken_download, http_500, bot_rejected and session_expired faults "
                     "have a mode")
    if raw["kind"] == "changed_header" and not (isinstance(raw.get("column"), str) and raw["column"].strip()):
        raise ValueError(f"{path}.column: changed_header needs the header text of the column to change")
    rename_to = raw.get("rename_to")
    if rename_to is not None and not (isinstance(rename_to, str) and rename_to.strip()):
        raise ValueError(f"{path}.rename_to: must be a non-empty string (leave it out to drop the column)")
    return Fault(portal=raw["portal"], kind=raw["kind"], path_contains=raw.get("path_contains", ""),
                 times=raw.get("times", 1), after=raw.get("after", 0), delay_seconds=float(delay),
                 mode=mode, column=raw.get("column", ""), rename_to=rename_to)


# Which kinds can act on which requests: a fault is only used up where it can show.
_SIGN_ON_KINDS = {"http_500", "timeout", "bot_rejected"}
_PORTAL_KINDS = {"http_500", "timeout", "session_expired", "broken_download", "bot_rejected", "changed_header"}


class FaultBook:
    """The scenario's faults with how often each has matched, shared by all request threads."""

    def __init__(self, faults: tuple[Fault, ...]):
        self._faults = faults
        self._seen = [0] * len(faults)
        self._lock = threading.Lock()

    def take(self, portal: str | None, target: str, *, sign_on: bool,
             kinds: frozenset[str] | None = None) -> Fault | None:
        """The fault that hits this request, counting the match; None to serve it normally.
        ``kinds`` narrows the kinds that can act on it (the storage origin has no session or bot wall)."""
        if portal is None:
            return None
        kinds = (_SIGN_ON_KINDS if sign_on else _PORTAL_KINDS) & (kinds or _PORTAL_KINDS | _SIGN_ON_KINDS)
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.portal != portal or fault.kind not in kinds or fault.path_contains not in target:
                    continue
                if self._seen[i] >= fault.after + fault.times:
                    continue
                self._seen[i] += 1
                if self._seen[i] > fault.after:
                    return fault
        return None

    def remaining(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"portal": f.portal, "kind": f.kind, "path_contains": f.path_contains,
                     "remaining": max(0, f.after + f.times - seen)}
                    for f, seen in zip(self._faults, self._seen, strict=True)]


async def hold(seconds: float, stopping: threading.Event) -> None:
    """Delay an answer, but let a stopping server end the wait at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not stopping.is_set():
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.1))


def broken_body(body: bytes, mode: str) -> bytes:
    """What a broken download delivers instead of ``body``."""
    if mode == "truncated":
        return truncate_body(body)
    if mode == "empty":
        return b""
    return BROKEN_HTML


def change_header(body: bytes, column: str, rename_to: str | None) -> bytes:
    """The .xlsx ``body`` with the header cell ``column`` renamed, or its whole column dropped.

    Headers are matched ignoring whitespace, as the parser does. Anything that is not a
    workbook holding that header is returned unchanged (the fault only acts on exports).
    """
    import io
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(body))
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return body
    sheet = book.worksheets[0]
    wanted = "".join(column.split())
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and "".join(cell.value.split()) == wanted:
                if rename_to is None:
                    sheet.delete_cols(cell.column)
                else:
                    cell.value = rename_to
                out = io.BytesIO()
                book.save(out)
                return out.getvalue()
    return body


def truncate_body(body: bytes) -> bytes:
    # Cut in the middle so the zip's central directory (at the end) is missing, as a dropped
    # connection would leave it: the 'PK' magic is still there, the archive is unreadable.
    return body[: max(2, len(body) // 2)]


BROKEN_HTML = ("<!DOCTYPE html><html><head><title>오류</title></head>"
               "<body><p>다운로드 중 오류가 발생했습니다.</p></body></html>").encode()
