"""Shared web plumbing of the sandbox portals: templates, number formats, query parsing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from sandbox.state import SandboxState

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def won(value: int | None) -> str:
    """Whole won with thousands separators, as the portals print them ('-9,900')."""
    return "" if value is None else f"{value:,}"


def ymd(value: dt.date | None, empty: str = "-") -> str:
    return empty if value is None else value.isoformat()


templates.env.filters["won"] = won
templates.env.filters["ymd"] = ymd


def state_of(request: Request) -> SandboxState:
    return request.app.state.sandbox


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


class BadRequest(Exception):
    """A query parameter the page cannot use; answered as a 400 error page."""


def int_param(request: Request, name: str, default: int, *, minimum: int = 1) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} 값이 올바르지 않습니다: {raw}") from None
    return max(minimum, value)


def date_param(request: Request, name: str, default: dt.date) -> dt.date:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        if len(raw) != 10:
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} 날짜 형식이 올바르지 않습니다 (YYYY-MM-DD): {raw}") from None


def page_count(total: int, size: int) -> int:
    return max(1, -(-total // size))
