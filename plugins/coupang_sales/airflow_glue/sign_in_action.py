"""The status page's "Sign in" action: start an account's sign-in DAG from the Airflow UI (or an alert's link).

Routes of the status page's FastAPI app (``status_page.app``, under ``/coupang-collections``):

- ``GET /sign-in?channel=C&account=A``: a confirm form (a link in an e-mail must not start anything:
  mail scanners open links); when a sign-in of that account is already queued or running, a
  redirect to its Required Actions page instead.
- ``POST /sign-in`` (form or query fields ``channel``, ``account``): triggers ``<channel>_sign_in``
  with ``{"channel", "account"}`` and redirects (303) to the new run's Required Actions page
  (``/dags/<dag>/runs/<run>/required_actions``), where the SMS code's form appears; again, one
  already running is reused instead of starting a second.

Who may: Airflow's own auth manager decides, as for the page itself, with the question the
REST API asks before a trigger (``is_authorized_dag(method="POST", access_entity=RUN)`` on the
sign-in DAG). Anyone else gets 403 here, and no "Sign in" link on the page. The run is
triggered through Airflow's public REST API (``POST /api/v2/dags/{dag_id}/dagRuns``) with the
user's own token (the UI's cookie or the request's bearer token), so Airflow's validation of
the params, its audit log and its notion of who triggered the run all apply unchanged.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from coupang_sales.airflow_glue.sign_in_links import (  # re-exported for the routes' callers
    may_sign_in,
    sign_in_dag_id,
)
from coupang_sales.airflow_glue.ui_actions import AirflowApi, in_frame, page, to_top

router = APIRouter()
UserDep = Annotated[Any, Depends(get_user)]


def _forbidden(channel: str) -> HTMLResponse:
    # An HTMLResponse, not an HTTPException: the app's handler sends 401/403 exceptions to the login page.
    return page("Not allowed", f"<p>You may not start <code>{html.escape(sign_in_dag_id(channel))}</code>: "
                 "Airflow's permissions do not let you trigger that DAG. Ask an administrator.</p>", status=403)


def _check(channel: str, account: str) -> str | None:
    """Why the account cannot be signed on from here (None: it can)."""
    from coupang_sales.airflow_glue.warehouse_hook import warehouse_connection
    from coupang_sales.warehouse.runs import account_conn_id
    from coupang_sales.warehouse.status import CHANNELS

    if channel not in CHANNELS:
        return f"unknown channel {channel!r}"
    conn = warehouse_connection()
    try:
        if account_conn_id(conn, channel=channel, account_id=account) is None:
            return f"{channel} {account} is not in sales.accounts"
    finally:
        conn.close()
    return None


def _to_required_actions(url: str, frame: bool) -> Response:
    """A 303 to the Required Actions page; inside the UI's (sandboxed) frame, a page that asks the UI's
    router to show it, as the status page's task-log links do."""
    return to_top(url, frame, title="Sign-in started", text="Open its Required Actions",
                   after=" — the SMS code's form appears there when the portal asks for it.")


def _refusal(user, channel: str, account: str) -> Response | None:
    """The page refusing this sign-in (403 without the permission, 404 for an unknown account), or None."""
    if not may_sign_in(user, channel):
        return _forbidden(channel)
    problem = _check(channel, account)
    if problem:
        return page("Cannot sign in", f"<p>{html.escape(problem)}</p>", status=404)
    return None


@router.get("/sign-in", response_class=HTMLResponse, summary="Confirm starting an account's sign-in")
def sign_in_form(request: Request, user: UserDep, channel: Annotated[str, Query()],
                 account: Annotated[str, Query()]) -> Response:
    refused = _refusal(user, channel, account)
    if refused is not None:
        return refused
    api = AirflowApi(request)
    dag_id = sign_in_dag_id(channel)
    running = api.active_run(dag_id, account)
    if running:
        return _to_required_actions(api.required_actions(dag_id, running), in_frame(request))
    esc = html.escape
    return page(f"Sign in {account}", f"""<h1>Sign in {esc(channel)} {esc(account)}</h1>
<p class="sub">Starts <code>{esc(dag_id)}</code>: a browser opens the account's profile and submits the password.
When the portal sends the seller an SMS code (인증번호), a Required Action asks you for it; have the seller
ready to read it to you, the code is valid for a few minutes only.</p>
<form method="post" action="sign-in">
  <input type="hidden" name="channel" value="{esc(channel)}">
  <input type="hidden" name="account" value="{esc(account)}">
  <input type="hidden" name="frame" id="frame" value="">
  <button type="submit" id="start">Start the sign-in</button>
</form>
<script>document.getElementById("frame").value = window.top === window ? "" : "1";</script>""")


@router.post("/sign-in", summary="Start an account's sign-in DAG (or find the one running)")
def start_sign_in(request: Request, user: UserDep, channel: Annotated[str, Form()],
                  account: Annotated[str, Form()], frame: Annotated[str, Form()] = "") -> Response:
    refused = _refusal(user, channel, account)
    if refused is not None:
        return refused
    api = AirflowApi(request)
    dag_id = sign_in_dag_id(channel)
    run_id = api.active_run(dag_id, account)
    if run_id is None:
        answer = api.trigger(dag_id, channel, account, note=f"Started from the Coupang collections page by "
                                                             f"{user.get_name()}")
        if answer.status_code >= 400:
            detail = answer.json().get("detail") if "json" in answer.headers.get("content-type", "") else answer.text
            return page("Sign-in not started", f"<p>Airflow refused to start <code>{html.escape(dag_id)}</code>: "
                         f"HTTP {answer.status_code} {html.escape(str(detail)[:500])}</p>",
                         status=answer.status_code)
        run_id = answer.json()["dag_run_id"]
    return _to_required_actions(api.required_actions(dag_id, run_id), frame == "1" or in_frame(request))


def status_app():
    """The status page's app with these routes and the "Re-run" action's (``rerun_action``) mounted (once,
    however often the plugin asks)."""
    from coupang_sales.airflow_glue.rerun_action import router as rerun_router
    from coupang_sales.airflow_glue.status_page import app

    if not getattr(app.state, "sign_in_routes", False):
        app.include_router(router)
        app.include_router(rerun_router)
        app.state.sign_in_routes = True
    return app
