"""The "Coupang collections" page: every account's freshness, state and the action it needs, in the Airflow UI.

A FastAPI app that the project's plugin (``plugins/coupang_sales_plugin.py``) mounts in Airflow's API
server under ``/coupang-collections``, shown in the UI's Browse menu as an external view. Every
request goes through Airflow's own sign-in (the UI's JWT cookie, or an API bearer token); a
browser without one is sent to Airflow's login page, and a user sees only the channels whose DAG
they may read. ``GET /`` is the page (server-rendered HTML: filters, sorting and paging are
links and a form, no script), ``GET /api/accounts`` the same rows as JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

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
    from coupang_sales.airflow_glue.runtime import seoul_today, warehouse_connection
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
StateParam = Annotated[list[str] | None, Query(description="ok, blocked, failing, stale, new, paused")]


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
    from coupang_sales.airflow_glue.sign_in_action import add_sign_in_links

    add_sign_in_links(result["rows"], user)
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


def _ui_root(request: Request) -> str:
    """The Airflow UI's root path (the API server's root, with any base path of a proxy)."""
    root = request.scope.get("root_path", "")
    return (root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else root).rstrip("/") + "/"


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


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans KR",sans-serif;margin:16px;color:#1a202c}
h1{font-size:20px;margin:0 0 4px} .sub{color:#4a5568;margin-bottom:12px;font-size:13px}
form{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:8px 0}
select,input,button{font-size:13px;padding:4px 6px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e2e8f0;padding:6px 8px;text-align:left;vertical-align:top}
th a{color:inherit} td.num{text-align:right}
.state{display:inline-block;border-radius:4px;padding:1px 6px;font-weight:600;font-size:12px}
.ok{background:#c6f6d5}.blocked{background:#fed7aa}.failing{background:#fed7d7}.stale{background:#fefcbf}
.new{background:#e2e8f0}.paused{background:#edf2f7;color:#718096}
.over{color:#c53030;font-weight:600} .action{color:#2d3748;font-size:12px;max-width:460px}
.chips a{margin-right:10px} .pager{margin:10px 0}
"""
# The Airflow UI embeds the page in a sandboxed iframe that may not navigate the top window, so a
# task-log link asks the UI's own router (same origin) to show the task instance; outside a frame
# (the page opened directly) the link is an ordinary one.
_TOP_LINKS = """
document.addEventListener("click", function (event) {
  var link = event.target.closest("a.task-log");
  if (!link || window.top === window || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  try {
    var top = window.top;
    top.history.pushState({}, "", link.href);
    top.dispatchEvent(new PopStateEvent("popstate", {state: {}}));
    event.preventDefault();
  } catch (error) { /* another origin: leave the click to the browser */ }
});
"""
_HEADERS = (("channel", "Channel"), ("account", "Account"), (None, "Jet"),
            ("last_success", "Last successful collection"), ("freshness", "Freshness"), ("state", "State"),
            ("attempts", "Attempts"), (None, "Latest task log"))


def render(result: dict[str, Any], params: dict[str, str], *, ui_root: str) -> str:
    """The page's HTML (every value escaped)."""
    from coupang_sales.warehouse.status import STATES

    esc = html.escape

    def link(**changes) -> str:
        merged = {**params, **{k: str(v) for k, v in changes.items()}}
        return "?" + urlencode({k: v for k, v in merged.items() if v})

    head = []
    for key, label in _HEADERS:
        if key is None:
            head.append(f"<th>{label}</th>")
            continue
        descending = params["sort"] == key and not params["desc"]
        arrow = (" ▼" if params["desc"] else " ▲") if params["sort"] == key else ""
        head.append(f'<th><a href="{esc(link(sort=key, desc="true" if descending else "", page=""))}">'
                    f"{label}{arrow}</a></th>")
    body = [_row(row, ui_root) for row in result["rows"]]
    if not body:
        body = ['<tr><td colspan="8">No account matches.</td></tr>']
    chips = " ".join(f'<a class="state {s}" href="{esc(link(state=s, page=""))}">{s} {result["counts"].get(s, 0)}</a>'
                     for s in STATES)
    channel_options = "".join(
        f'<option value="{c}"{" selected" if params["channel"] == c else ""}>{c}</option>'
        for c in result["channels"])
    state_options = "".join(f'<option value="{s}"{" selected" if params["state"] == s else ""}>{s}</option>'
                            for s in STATES)
    hidden = "".join(f'<input type="hidden" name="{k}" value="{esc(params[k])}">' for k in ("sort", "desc", "size")
                     if params[k])
    first = (result["page"] - 1) * result["page_size"] + 1
    last = first + len(result["rows"]) - 1
    pager = [f"rows {first:,}–{last:,} of {result['total']:,}" if result["rows"] else f"0 of {result['total']:,}"]
    if result["page"] > 1:
        pager.insert(0, f'<a rel="prev" href="{esc(link(page=result["page"] - 1))}">← previous</a>')
    if last < result["total"]:
        pager.append(f'<a rel="next" href="{esc(link(page=result["page"] + 1))}">next →</a>')
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title>
<style>{_STYLE}</style></head><body>
<h1>{TITLE}</h1>
<div class="sub">Every account's freshness (days since the newest date a successful collection covered; today is
{result['today'].isoformat()} in Asia/Seoul), its state and whose move it is.</div>
<div class="chips">{chips} <a href="?">all</a></div>
<form method="get" action="">
  <label>Channel <select name="channel"><option value="">all</option>{channel_options}</select></label>
  <label>State <select name="state"><option value="">all</option>{state_options}</select></label>
  <label>Account <input type="search" name="q" value="{esc(params['q'])}" placeholder="account id"></label>
  {hidden}
  <button type="submit">Filter</button>
</form>
<table id="accounts"><thead><tr>{''.join(head)}</tr></thead><tbody>
{''.join(body)}
</tbody></table>
<div class="pager">{' · '.join(pager)}</div>
<script>{_TOP_LINKS}</script>
</body></html>"""


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "never"
    from coupang_sales.airflow_glue.runtime import SEOUL

    return value.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M KST")


def _version(row: dict[str, Any]) -> str:
    """A Jet account's version and since when it holds (``sales.jet_version_changes``)."""
    if row.get("jet_version") is None:
        return ""
    since = row.get("jet_version_since")
    return f"{row['jet_version']}" + (f"<br><small>since {_when(since)}</small>" if since else "")


def _row(row: dict[str, Any], ui_root: str) -> str:
    esc = html.escape
    success = _when(row["last_success_at"])
    if row["last_success_window_start"]:
        success += f"<br><small>window {row['last_success_window_start']}..{row['last_success_window_end']}</small>"
    if row["freshness_days"] is None:
        fresh = "—"
    else:
        over = ' class="over"' if row["over_threshold"] else ""
        # A blocked or failing account's data goes stale too: said beside its state, which outranks it.
        label = " · stale" if row["over_threshold"] and row["state"] != "stale" else ""
        fresh = (f"<span{over}>{row['freshness_days']} day(s){label}</span><br><small>collected through "
                 f"{row['collected_through']}; threshold {row['stale_after_days']}</small>")
        if row.get("collected_until") and row["collected_until"] != row["collected_through"]:
            fresh += f"<br><small>gap: collected again up to {row['collected_until']}</small>"
    if row.get("newest_sales_date"):
        fresh += f"<br><small>newest sale {row['newest_sales_date']}</small>"
    state = f'<span class="state {row["state"]}">{row["state"]}</span>'
    if row["state"] in ("blocked", "failing") and row["last_reason"]:
        state += f" <code>{esc(row['last_reason'])}</code>"
    if row.get("action"):
        state += f'<div class="action">{esc(row["action"])}</div>'
    if row.get("sign_in_url"):  # auth_challenge, for a user who may trigger the sign-in DAG (sign_in_action)
        state += f'<div><a class="sign-in" href="{esc(row["sign_in_url"])}">Sign in</a></div>'
    if row.get("signed_in_at"):
        state += f'<div class="signed-in"><small>signed in by {esc(row["signed_in_by"] or "?")} at ' \
                 f'{_when(row["signed_in_at"])}</small></div>'
    url = task_log_url(row, ui_root)
    log_link = (f'<a class="task-log" target="_top" href="{esc(url)}">{esc(row["last_task_id"])}</a>'
                f"<br><small>{esc(row['last_run_id'])}</small>") if url else "—"
    return (f'<tr data-account="{esc(row["account_id"])}" data-state="{row["state"]}">'
            f"<td>{esc(row['channel'])}</td><td>{esc(row['account_id'])}</td>"
            f"<td>{_version(row)}</td><td>{success}</td>"
            f"<td>{fresh}</td><td>{state}</td><td class='num'>{row['run_attempts'] or ''}</td><td>{log_link}</td></tr>")


def _include_sign_in_action() -> None:
    """The "Sign in" action of auth_challenge rows (GET/POST /sign-in), a module of its own."""
    from coupang_sales.airflow_glue.sign_in_action import router

    app.include_router(router)


_include_sign_in_action()
