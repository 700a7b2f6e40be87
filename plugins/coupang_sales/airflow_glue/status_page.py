"""The "Coupang collections" page: every account's freshness, state and the action it needs, in the Airflow UI.

A FastAPI app that the project's plugin (``plugins/coupang_sales_plugin.py``) mounts in Airflow's API
server under ``/coupang-collections``, shown in the UI's Browse menu as an external view. Every
request goes through Airflow's own sign-in (the UI's JWT cookie, or an API bearer token); a
browser without one is sent to Airflow's login page, and a user sees only the channels whose DAG
they may read. ``GET /`` is the page (server-rendered HTML from the Jinja2 template
``templates/status_page.html``, autoescaped: filters, sorting and paging are links and a form, no
script), ``GET /api/accounts`` the same rows as JSON. The search matches the account id or the
seller's name. A row's actions ("Re-run", ``rerun_action``; "Sign in", ``sign_in_action``) are shown
only to a user whom Airflow's auth manager lets trigger the DAG they start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
import markupsafe
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from coupang_sales.airflow_glue.ui_actions import TOP_LINKS
from coupang_sales.airflow_glue.ui_actions import ui_root as _ui_root

URL_PREFIX = "/coupang-collections"
TITLE = "Coupang collections"

app = FastAPI(title=TITLE, description=__doc__)


def _dag_id(channel: str) -> str:
    return f"{channel}_sales"  # build_channel_dag's naming


def readable_channels(user) -> tuple[str, ...]:
    """The channels whose DAG's task instances the user may read (the auth manager decides)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    from coupang_sales.warehouse.status import CHANNELS

    manager = get_auth_manager()
    return tuple(channel for channel in CHANNELS if manager.is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.TASK_INSTANCE, details=DagDetails(id=_dag_id(channel)),
        user=user))


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    found = tuple(v for value in values or () for v in value.split(",") if v)
    return found or None


def _statuses(user, channel, state, q, sort, desc, page, size) -> dict[str, Any]:
    from coupang_sales.airflow_glue.warehouse_hook import warehouse_connection
    from coupang_sales.airflow_glue.window import seoul_today
    from coupang_sales.warehouse.status import StatusQuery, account_statuses

    allowed = readable_channels(user)
    try:  # unknown names, sorts or page sizes are the caller's error
        asked = StatusQuery(channels=_split(channel), states=_split(state), search=q, sort=sort, descending=desc,
                            page=page, page_size=size)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    channels = tuple(c for c in (asked.channels or allowed) if c in allowed)
    if not channels:
        return {"rows": [], "total": 0, "counts": {}, "page": page, "page_size": size, "today": seoul_today(),
                "channels": allowed}
    query = dataclasses.replace(asked, channels=channels)
    conn = warehouse_connection()
    try:
        result = account_statuses(conn, query, today=seoul_today())
    finally:
        conn.close()
    return {**result, "channels": allowed}


UserDep = Annotated[Any, Depends(get_user)]
ChannelParam = Annotated[list[str] | None, Query(description="coupang_rocket and/or coupang_jet")]
StateParam = Annotated[list[str] | None, Query(description="ok, expiring, blocked, failing, stale, new, paused")]


@app.get("/api/accounts", summary="Accounts with their collection state (JSON)")
def accounts_json(user: UserDep, channel: ChannelParam = None, state: StateParam = None, q: str | None = None,
                  sort: str = "state", desc: str | None = None, page: int = 1, size: int = 50) -> JSONResponse:
    result = _statuses(user, channel, state, q, sort, _yes(desc), page, size)
    return JSONResponse({**{k: v for k, v in result.items() if k != "rows"}, "today": result["today"].isoformat(),
                         "rows": [{k: _jsonable(v) for k, v in row.items()} for row in result["rows"]]})


def _yes(value: str | None) -> bool:
    """A checkbox-like query flag: desc=true / 1 / yes; empty or absent is false."""
    return (value or "").strip().lower() in ("true", "1", "yes", "on")


def _jsonable(value):
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


@app.get("/", response_class=HTMLResponse, summary="The status page")
def status_page_html(request: Request, user: UserDep, channel: ChannelParam = None, state: StateParam = None,
         q: str | None = None, sort: str = "state", desc: str | None = None, page: int = 1,
         size: int = 50) -> HTMLResponse:
    result = _statuses(user, channel, state, q, sort, _yes(desc), page, size)
    from coupang_sales.airflow_glue.rerun_action import add_rerun_links
    from coupang_sales.airflow_glue.sign_in_links import add_sign_in_links

    add_sign_in_links(result["rows"], user)
    add_rerun_links(result["rows"], user, today=result["today"])
    params = {"channel": ",".join(_split(channel) or ()), "state": ",".join(_split(state) or ()), "q": q or "",
              "sort": sort, "desc": "true" if _yes(desc) else "", "size": str(size) if size != 50 else ""}
    return HTMLResponse(render(result, params, ui_root=_ui_root(request)))


@app.exception_handler(HTTPException)
async def _sign_in_first(request: Request, exc: HTTPException):
    """The page sends a browser without Airflow's sign-in to the login page, and back here after it."""
    if exc.status_code in (401, 403) and not request.url.path.rstrip("/").endswith("/api/accounts"):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def task_log_url(row: dict[str, Any], ui_root: str) -> str | None:
    """The Airflow 3 UI's page of the task instance that made the account's newest attempt (its log),
    as ``TaskInstance.log_url`` builds it."""
    if not (row.get("last_run_id") and row.get("last_task_id")):
        return None
    index = row.get("last_map_index")
    mapped = f"/mapped/{index}" if index is not None and index >= 0 else ""  # 0 is the first account, not unmapped
    tried = f"?try_number={row['last_try_number']}" if row.get("last_try_number") else ""
    return (f"{ui_root}dags/{quote(row['last_dag_id'], safe='')}/runs/{quote(row['last_run_id'], safe='')}"
            f"/tasks/{quote(row['last_task_id'], safe='')}{mapped}{tried}")


_HEADERS = (("channel", "Channel"), ("account", "Account"), ("seller", "Seller"), (None, "Jet version"),
            ("last_success", "Last successful collection"), ("freshness", "Days behind"), ("state", "State"),
            ("attempts", "Attempts (newest run)"), ("route", "Last route"), (None, "Newest attempt (task log)"),
            (None, "Actions"))


@functools.cache
def _template() -> jinja2.Template:
    # The markup lives in templates/status_page.html, beside this module (plugins/ is deployed whole).
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("status_page.html")


def render(result: dict[str, Any], params: dict[str, str], *, ui_root: str) -> str:
    """The page's HTML (templates/status_page.html; every value escaped) from the rows of one query."""
    from coupang_sales.warehouse.status import STATES

    def link(**changes) -> str:
        merged = {**params, **{k: str(v) for k, v in changes.items()}}
        return "?" + urlencode({k: v for k, v in merged.items() if v})

    headers = []
    for key, label in _HEADERS:
        if key is None:
            headers.append({"label": label, "href": None, "arrow": ""})
            continue
        descending = params["sort"] == key and not params["desc"]
        arrow = (" ▼" if params["desc"] else " ▲") if params["sort"] == key else ""
        headers.append({"label": label, "arrow": arrow,
                        "href": link(sort=key, desc="true" if descending else "", page="")})
    first = (result["page"] - 1) * result["page_size"] + 1
    last = first + len(result["rows"]) - 1
    return _template().render(
        title=TITLE, today=result["today"].isoformat(), headers=headers,
        rows=[_row(row, ui_root, result["today"]) for row in result["rows"]],
        chips=[{"state": s, "href": link(state=s, page=""), "count": result["counts"].get(s, 0)} for s in STATES],
        channel_options=[{"value": c, "selected": params["channel"] == c} for c in result["channels"]],
        state_options=[{"value": s, "selected": params["state"] == s} for s in STATES],
        top_links=markupsafe.Markup(TOP_LINKS), columns=len(headers),
        q=params["q"], hidden=[(k, params[k]) for k in ("sort", "desc", "size") if params[k]],
        shown=f"rows {first:,}–{last:,} of {result['total']:,}" if result["rows"] else f"0 of {result['total']:,}",
        prev_href=link(page=result["page"] - 1) if result["page"] > 1 else None,
        next_href=link(page=result["page"] + 1) if last < result["total"] else None)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "never"
    from coupang_sales.airflow_glue.window import SEOUL

    return value.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M KST")


def _row(row: dict[str, Any], ui_root: str, today: dt.date | None = None) -> dict[str, Any]:
    """What the page shows of one account, as the template's values."""
    url = task_log_url(row, ui_root)
    since = row.get("jet_version_since")
    return {
        "account_id": row["account_id"], "channel": row["channel"], "state": row["state"],
        "seller_name": row.get("seller_name"), "route": row.get("last_route"),
        "expires": row.get("sub_account_expires"),
        "expires_in": (row["sub_account_expires"] - today).days if row.get("sub_account_expires") and today else None,
        "rerun_url": row.get("rerun_url"), "rerun_range": row.get("rerun_range"),
        "jet_version": row.get("jet_version"), "jet_version_since": _when(since) if since else None,
        "last_success": _when(row["last_success_at"]),
        "window_start": row["last_success_window_start"], "window_end": row["last_success_window_end"],
        "freshness_days": row["freshness_days"], "over_threshold": row["over_threshold"],
        "stale_too": bool(row["over_threshold"] and row["state"] != "stale"),
        "collected_through": row["collected_through"], "stale_after_days": row["stale_after_days"],
        "gap_until": row["collected_until"] if row.get("collected_until")
        and row["collected_until"] != row["collected_through"] else None,
        "newest_sales_date": row.get("newest_sales_date"),
        "reason": row["last_reason"] if row["state"] in ("blocked", "failing") else None,
        "action": row.get("action"), "attempts": row["run_attempts"] or "",
        "log_url": url, "task_id": row["last_task_id"], "run_id": row["last_run_id"],
        # auth_challenge, for a user who may trigger the sign-in DAG (sign_in_action)
        "sign_in_url": row.get("sign_in_url"),
        "signed_in_by": row.get("signed_in_by") or "?" if row.get("signed_in_at") else None,
        "signed_in_at": _when(row["signed_in_at"]) if row.get("signed_in_at") else None}
