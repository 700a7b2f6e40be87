"""Where a seller's sign-in is started: the sign-in DAGs' ids, the status page's "Sign in" action and who may use it.

A leaf of the glue (it imports none of its modules), so the alert, the status page, the action's routes
and the sign-in DAGs all read it without an import circle.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

STATUS_PAGE_PREFIX = "/coupang-collections"  # status_page.URL_PREFIX, without importing the web app


def sign_in_dag_id(channel: str) -> str:
    return f"{channel}_sign_in"


def sign_in_path(channel: str, account_id: str) -> str:
    """The action's path under the status page's app (relative to ``/coupang-collections/``)."""
    return "sign-in?" + urlencode({"channel": channel, "account": account_id})


def sign_in_link(channel: str, account_id: str, base_url: str | None = None) -> str:
    """The status page's "Sign in" action of the account, absolute, from Airflow's ``[api] base_url``
    (as a task instance's log link is built): for an ``auth_challenge`` alert."""
    if base_url is None:
        from airflow.sdk.configuration import conf

        base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base_url.rstrip('/')}{STATUS_PAGE_PREFIX}/{sign_in_path(channel, account_id)}"


def may_trigger(user, dag_id: str) -> bool:
    """May ``user`` trigger ``dag_id``? (The auth manager decides, as for the REST API's trigger.)"""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user))


def may_sign_in(user, channel: str) -> bool:
    """May ``user`` trigger the channel's sign-in DAG?"""
    return may_trigger(user, sign_in_dag_id(channel))


def add_sign_in_links(rows: list[dict[str, Any]], user) -> None:
    """Give each ``auth_challenge`` row a "Sign in" link (``sign_in_url``), if the user may trigger its DAG."""
    allowed: dict[str, bool] = {}
    for row in rows:
        if row.get("last_reason") != "auth_challenge" or row.get("state") not in ("blocked", "failing"):
            continue
        channel = row["channel"]
        if channel not in allowed:
            allowed[channel] = may_sign_in(user, channel)
        if allowed[channel]:
            row["sign_in_url"] = sign_in_path(channel, row["account_id"])
