"""The shared sign-on of the sandbox portals, a look-alike of Coupang's Keycloak (realm ``seller``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sandbox.state import AuthSession, SandboxState, Session
from sandbox.web import render, state_of

REALM_PATH = "/auth/realms/seller"
AUTH_PATH = f"{REALM_PATH}/protocol/openid-connect/auth"
LOGIN_ACTIONS_PATH = f"{REALM_PATH}/login-actions/authenticate"

BAD_CREDENTIALS = "아이디 또는 비밀번호가 올바르지 않습니다."
BAD_SMS_CODE = "인증번호가 올바르지 않습니다. 다시 확인해 주세요."
AUTH_SESSION_GONE = "로그인 시간이 만료되었습니다. 다시 로그인해 주세요."


@dataclass(frozen=True)
class Principal:
    """Who a username/password pair signs on as, as a portal judges it."""

    account_id: str
    username: str
    is_master: bool
    sms_challenge: bool
    expired_on: dt.date | None  # set when a sub-account's 사용기간 has ended


@dataclass(frozen=True)
class Portal:
    """A portal served by the sandbox and signed on to through this realm."""

    name: str  # as in scenario faults: supplier_hub | wing
    client_id: str  # the Keycloak client: supplier-hub | wing
    title: str  # shown on the sign-on page
    prefix: str  # path prefix of the portal's own pages ('' = the root)
    session_cookie: str
    router: APIRouter
    authenticate: Callable[[SandboxState, str, str], Principal | None]
    home_path: str = "/"


class LoginRequired(Exception):
    """Raised by a portal page without a session; answered with a redirect to the sign-on."""

    def __init__(self, location: str):
        self.location = location


def portals_of(request: Request) -> dict[str, Portal]:
    return request.app.state.portals  # client_id -> Portal


def sign_on_url(portal: Portal, redirect_uri: str) -> str:
    query = urlencode({"response_type": "code", "client_id": portal.client_id,
                       "redirect_uri": redirect_uri, "scope": "openid"})
    return f"{AUTH_PATH}?{query}"


def current_session(request: Request, portal: Portal) -> Session:
    """The portal session of this browser, or LoginRequired back to this very page."""
    state = state_of(request)
    token = request.cookies.get(portal.session_cookie)
    session = state.sessions.get(token or "")
    if session is None or session.portal != portal.name:
        raise LoginRequired(sign_on_url(portal, str(request.url)))
    return session


router = APIRouter()


def _login_page(request: Request, portal: Portal, auth: AuthSession, *, error: str | None = None,
                username: str = "", status_code: int = 200) -> Response:
    action = f"{LOGIN_ACTIONS_PATH}?" + urlencode(
        {"session_code": auth.tab_id[::-1], "execution": "login", "client_id": portal.client_id,
         "tab_id": auth.tab_id})
    return render(request, "sso/login.html", status_code=status_code, portal=portal, action=action,
                  error=error, username=username)


def _unknown_client(request: Request) -> Response:
    return render(request, "sso/info.html", status_code=400, title="잘못된 요청",
                  message="Client not found.", css="kc-error")


@router.get(AUTH_PATH)
def auth(request: Request, client_id: str = "", redirect_uri: str = "") -> Response:
    portal = portals_of(request).get(client_id)
    if portal is None:
        return _unknown_client(request)
    state = state_of(request)
    # Keycloak skips the form when the browser already holds a live session.
    session = state.sessions.get(request.cookies.get(portal.session_cookie) or "")
    target = redirect_uri or portal.prefix + portal.home_path
    if session is not None and session.portal == portal.name:
        return RedirectResponse(target, status_code=302)
    return _login_page(request, portal, state.new_auth_session(client_id, target))


@router.post(LOGIN_ACTIONS_PATH)
async def login_action(request: Request, client_id: str = "", tab_id: str = "", execution: str = "") -> Response:
    portal = portals_of(request).get(client_id)
    if portal is None:
        return _unknown_client(request)
    state = state_of(request)
    auth = state.auth_sessions.get(tab_id)
    if auth is None or auth.client_id != client_id:
        fresh = state.new_auth_session(client_id, portal.prefix + portal.home_path)
        return _login_page(request, portal, fresh, error=AUTH_SESSION_GONE)
    form = await request.form()

    if execution == "sms":
        # No code ever passes: an SMS step needs a person, which is what the sandbox shows.
        return render(request, "sso/sms.html", portal=portal, action=str(request.url), error=BAD_SMS_CODE)

    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    principal = portal.authenticate(state, username, password) if username and password else None
    if principal is None:
        return _login_page(request, portal, auth, error=BAD_CREDENTIALS, username=username)
    if principal.expired_on is not None:
        return render(request, "sso/expired.html", portal=portal, expired_on=principal.expired_on)
    if principal.sms_challenge:
        auth.pending = principal
        sms_action = f"{LOGIN_ACTIONS_PATH}?" + urlencode(
            {"session_code": auth.tab_id[::-1], "execution": "sms", "client_id": client_id, "tab_id": tab_id})
        return render(request, "sso/sms.html", portal=portal, action=sms_action, error=None)

    state.auth_sessions.pop(tab_id, None)
    session = state.new_session(portal.name, principal.account_id, principal.username, principal.is_master)
    response = RedirectResponse(auth.redirect_uri, status_code=302)
    response.set_cookie(portal.session_cookie, session.token, httponly=True, samesite="lax", path="/")
    return response


@router.get(f"{REALM_PATH}/protocol/openid-connect/registrations")
def registrations(request: Request, client_id: str = "") -> Response:
    return render(request, "sso/info.html", title="회원가입",
                  message="판매자 회원가입은 샌드박스에서 지원하지 않습니다.", css="kc-register")


@router.get(f"{REALM_PATH}/protocol/openid-connect/logout")
def logout(request: Request, client_id: str = "", redirect_uri: str = "") -> Response:
    portal = portals_of(request).get(client_id)
    if portal is None:
        return _unknown_client(request)
    state_of(request).end_session(request.cookies.get(portal.session_cookie))
    response = RedirectResponse(redirect_uri or sign_on_url(portal, portal.prefix + portal.home_path),
                                status_code=302)
    response.delete_cookie(portal.session_cookie, path="/")
    return response
