"""The status page's "Re-run" action: collect one account's missing dates again, from the Airflow UI.

Routes of the status page's FastAPI app (``status_page.app``, under ``/coupang-collections``):

- ``GET /rerun?channel=C&account=A``: a confirm form naming the DAG and the dates (a link must not
  start anything by itself being opened);
- ``POST /rerun`` (form fields ``channel``, ``account``): triggers the account's collection DAG (the one
  that last collected it, ``<channel>_sales`` or its shard) with ``{"account_id": A, "from_date": F,
  "date": D}``, a range run of that account alone (``dag_factory.PARAMS``), and sends the browser to
  the new run's page.

The gap is the dates after the account's cursor (``collected_through``, the last date collected
without a gap) up to yesterday in Asia/Seoul: ``from_date`` the day after the cursor, ``date``
yesterday. An account never collected gets a daily run of yesterday (its look-back, since no date
before it is known to be missing). An account whose cursor already reaches yesterday has no gap and no
action.

Who may: Airflow's auth manager, asked what the REST API asks before a trigger
(``is_authorized_dag(method="POST", access_entity=RUN)``) on that DAG; anyone else gets 403 here and no
link on the page. The run is triggered through Airflow's REST API with the user's own token, as the
"Sign in" action's is (``ui_actions.AirflowApi``).
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from airflow.api_fastapi.core_api.security import get_user
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from coupang_sales.airflow_glue.sign_in_links import may_trigger
from coupang_sales.airflow_glue.ui_actions import AirflowApi, in_frame, page, to_top

router = APIRouter()
UserDep = Annotated[Any, Depends(get_user)]


def gap_of(row: dict[str, Any], today: dt.date) -> tuple[dt.date | None, dt.date] | None:
    """(from_date, date) of the account's missing dates up to yesterday; from_date None: never collected
    (a daily run of yesterday); None: no gap."""
    yesterday = today - dt.timedelta(days=1)
    through = row.get("collected_through")
    if through is None:
        return None, yesterday
    if through >= yesterday:
        return None
    return through + dt.timedelta(days=1), yesterday


def rerun_conf(account_id: str, gap: tuple[dt.date | None, dt.date]) -> dict[str, Any]:
    start, end = gap
    return {"account_id": account_id, "date": end.isoformat(),
            **({"from_date": start.isoformat()} if start else {})}


def _range_text(gap: tuple[dt.date | None, dt.date]) -> str:
    start, end = gap
    if start is None:
        return f"{end} and its look-back"
    return str(end) if start == end else f"{start} – {end}"


def add_rerun_links(rows: list[dict[str, Any]], user, *, today: dt.date) -> None:
    """Give each row with a gap a "Re-run" link (``rerun_url``, ``rerun_range``), if the user may trigger
    the account's DAG."""
    allowed: dict[str, bool] = {}
    for row in rows:
        gap = gap_of(row, today)
        if gap is None or row.get("state") == "paused":
            continue
        dag_id = _dag_of(row)
        if dag_id not in allowed:
            allowed[dag_id] = may_trigger(user, dag_id)
        if allowed[dag_id]:
            row["rerun_url"] = "rerun?" + urlencode({"channel": row["channel"], "account": row["account_id"]})
            row["rerun_range"] = _range_text(gap)


def _dag_of(row: dict[str, Any]) -> str:
    return row.get("last_dag_id") or f"{row['channel']}_sales"


def _account_row(channel: str, account: str) -> dict[str, Any] | None:
    from coupang_sales.airflow_glue.warehouse_hook import warehouse_connection
    from coupang_sales.airflow_glue.window import seoul_today
    from coupang_sales.warehouse.status import CHANNELS, StatusQuery, account_statuses

    if channel not in CHANNELS:
        return None
    conn = warehouse_connection()
    try:
        rows = account_statuses(conn, StatusQuery(channels=(channel,), search=account, page_size=500),
                                today=seoul_today())["rows"]
    finally:
        conn.close()
    return next((row for row in rows if row["account_id"] == account), None)


def _refusal(user, channel: str, account: str) -> tuple[Response | None, dict[str, Any] | None, Any]:
    """(a refusal, or None with the account's row and its gap)."""
    from coupang_sales.airflow_glue.window import seoul_today

    row = _account_row(channel, account)
    if row is None:
        return page("Cannot re-run", f"<p>{html.escape(channel)} {html.escape(account)} is not in "
                     "sales.accounts</p>", status=404), None, None
    dag_id = _dag_of(row)
    if not may_trigger(user, dag_id):
        return page("Not allowed", f"<p>You may not start <code>{html.escape(dag_id)}</code>: Airflow's "
                     "permissions do not let you trigger that DAG. Ask an administrator.</p>", status=403), None, None
    gap = gap_of(row, seoul_today())
    if gap is None:
        return page("Nothing to re-run", f"<p>{html.escape(account)} is collected through "
                     f"{row['collected_through']}: no date is missing.</p>", status=409), None, None
    return None, row, gap


@router.get("/rerun", summary="Confirm re-running an account for its missing dates")
def rerun_form(user: UserDep, channel: Annotated[str, Query()], account: Annotated[str, Query()]) -> Response:

    refused, row, gap = _refusal(user, channel, account)
    if refused is not None:
        return refused
    esc = html.escape
    dag_id = _dag_of(row)
    conf = rerun_conf(account, gap)
    name = f" ({esc(row['seller_name'])})" if row.get("seller_name") else ""
    return page(f"Re-run {account}", f"""<h1>Re-run {esc(channel)} {esc(account)}{name}</h1>
<p class="sub">Triggers <code>{esc(dag_id)}</code> for this account alone, collecting
<b>{esc(_range_text(gap))}</b> (Asia/Seoul): the dates after the last one collected without a gap
({esc(str(row.get('collected_through') or 'never'))}) up to yesterday. Params:
<code>{esc(str(conf))}</code>.</p>
<form method="post" action="rerun">
  <input type="hidden" name="channel" value="{esc(channel)}">
  <input type="hidden" name="account" value="{esc(account)}">
  <input type="hidden" name="frame" id="frame" value="">
  <button type="submit" id="start">Start the run</button>
</form>
<script>document.getElementById("frame").value = window.top === window ? "" : "1";</script>""")


@router.post("/rerun", summary="Trigger the account's DAG for its missing dates")
def start_rerun(request: Request, user: UserDep, channel: Annotated[str, Form()], account: Annotated[str, Form()],
                frame: Annotated[str, Form()] = "") -> Response:

    refused, row, gap = _refusal(user, channel, account)
    if refused is not None:
        return refused
    api = AirflowApi(request)
    dag_id = _dag_of(row)
    answer = api.trigger_run(dag_id, rerun_conf(account, gap),
                             note=f"Re-run of {account} for {_range_text(gap)} from the Coupang collections page "
                                  f"by {user.get_name()}")
    if answer.status_code >= 400:
        detail = answer.json().get("detail") if "json" in answer.headers.get("content-type", "") else answer.text
        return page("Re-run not started", f"<p>Airflow refused to start <code>{html.escape(dag_id)}</code>: "
                     f"HTTP {answer.status_code} {html.escape(str(detail)[:500])}</p>", status=answer.status_code)
    run_id = answer.json()["dag_run_id"]
    url = f"{api.ui_root}dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return to_top(url, frame == "1" or in_frame(request), title="Re-run started",
                   text="Open the run")
