"""What the status page's routes share: its answers' HTML frame, the Airflow UI's root, links that open a
page of the UI from inside the UI's frame, and Airflow's REST API called as the user.

A leaf of the glue below the page (``status_page``) and its actions (``sign_in_action``,
``rerun_action``), so none of them imports another for these.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coupang_sales.airflow_glue.sign_in_links import STATUS_PAGE_PREFIX

if TYPE_CHECKING:
    import httpx

ACTIVE_STATES = ("queued", "running")

# The UI embeds the page in a sandboxed iframe that may not navigate the top window, so a link of class
# task-log asks the UI's own router (same origin) to show its page; outside a frame (the page opened
# directly) the link is an ordinary one. The sign-in and re-run actions' answers use it too.
TOP_LINKS = """
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


def ui_root(request: Request) -> str:
    """The Airflow UI's root path (the API server's root, with any base path of a proxy)."""
    root = request.scope.get("root_path", "")
    return (root[: -len(STATUS_PAGE_PREFIX)] if root.endswith(STATUS_PAGE_PREFIX) else root).rstrip("/") + "/"


def page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans KR",sans-serif;margin:16px;color:#1a202c}}
h1{{font-size:20px}} button{{font-size:14px;padding:6px 12px}} .sub{{color:#4a5568;font-size:13px}}</style></head>
<body>{body}</body></html>""", status_code=status)


class AirflowApi:
    """Airflow's public REST API of this API server, called with the user's own token."""

    def __init__(self, request: Request):
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

        self.ui_root = ui_root(request)
        self.base = f"{request.url.scheme}://{request.url.netloc}{self.ui_root}api/v2"
        auth = request.headers.get("authorization", "")
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else request.cookies.get(
            COOKIE_NAME_JWT_TOKEN, "")
        self.headers = {"Authorization": f"Bearer {token}"}

    def active_run(self, dag_id: str, account: str) -> str | None:
        """The newest queued or running sign-in of ``account``, if any."""
        import httpx

        query = [("state", s) for s in ACTIVE_STATES] + [("order_by", "-run_after"), ("limit", "100")]
        answer = httpx.get(f"{self.base}/dags/{quote(dag_id, safe='')}/dagRuns", params=query,
                           headers=self.headers, timeout=30)
        answer.raise_for_status()
        for run in answer.json().get("dag_runs", []):
            if str((run.get("conf") or {}).get("account", "")) == account:
                return run["dag_run_id"]
        return None

    def trigger(self, dag_id: str, channel: str, account: str, note: str) -> httpx.Response:
        return self.trigger_run(dag_id, {"channel": channel, "account": account}, note=note)

    def trigger_run(self, dag_id: str, conf: dict[str, Any], *, note: str) -> httpx.Response:
        """``POST /api/v2/dags/{dag_id}/dagRuns`` (no logical date: a manual run) as the user."""
        import httpx

        return httpx.post(f"{self.base}/dags/{quote(dag_id, safe='')}/dagRuns", headers=self.headers, timeout=30,
                          json={"logical_date": None, "conf": conf, "note": note})

    def required_actions(self, dag_id: str, run_id: str) -> str:
        return f"{self.ui_root}dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/required_actions"


def in_frame(request: Request) -> bool:
    """A navigation inside the UI's frame (Browse > Coupang collections), as the browser says it."""
    return request.headers.get("sec-fetch-dest", "") == "iframe"


def to_top(url: str, frame: bool, *, title: str, text: str, after: str = "") -> Response:
    """A 303 to ``url`` (a page of the Airflow UI); inside the UI's frame, a page whose link asks the UI's
    router to show it (the frame may not navigate the top window)."""
    if not frame:
        return RedirectResponse(url, status_code=303)
    return page(title, f"""<h1>{html.escape(title)}</h1>
<p><a class="task-log" id="next" target="_top" href="{html.escape(url)}">{html.escape(text)}</a>{html.escape(after)}</p>
<script>{TOP_LINKS}
document.getElementById("next").click();</script>""")


