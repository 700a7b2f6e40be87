"""The shared sign-on of the sandbox portals: a look-alike of Coupang's Keycloak (realm ``seller``) and the
authorization-code chain each portal runs through it (REAL-PORTALS.md §1).

The chain, as the real sites run it, starts at the portal: an anonymous page redirects to
the portal's login start, which saves an authorization request (a random ``state``, kept
against a cookie of the portal's) and sends the browser to Keycloak's auth endpoint. The
sign-on form's action carries one-time codes (``session_code``, ``execution``, ``tab_id``)
and needs Keycloak's ``AUTH_SESSION_ID`` cookie; a right password sends the browser back to
the portal's callback with ``state`` and a one-time ``code``; the portal checks both and only
then sets its session cookie. Hence, as on the real sites:

- a hand-built auth URL signs nobody on: the portal never saved that authorization request,
  so its callback refuses the code (``authorization_request_not_found``), and an auth URL
  without ``state`` or with a redirect_uri that is not the portal's callback is refused by
  Keycloak itself;
- a code is good once (``invalid_grant`` the second time), and a form submitted with stale
  one-time codes is shown again with Keycloak's 'login timed out' message;
- while Keycloak's own session (cookie ``KEYCLOAK_SESSION``) lives, running the chain again
  renews the portal session without the password.

Keycloak has an origin of its own (another loopback host, so no cookie is shared with the
portals; ``SandboxServer.sso_url``), as xauth.coupang.com is another host than the portals:
the chain's redirects cross origins as on the live sites. The portal's and Keycloak's
session cookies are browser-session cookies (``sessions.browser_session_cookies``), so a new
browser process is signed out; the device cookie that spares the SMS step is persistent
(``sessions.device_trust_persistent``). The bot wall in front of both (``sandbox.defences``)
takes ``bot_protection.challenge_seconds`` on this origin, as Akamai's sign-on challenge does.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sandbox.defences import client_of
from sandbox.state import AuthSession, IssuedCode, PendingLogin, SandboxState, Session, SignOn, SsoSession
from sandbox.web import render, state_of

REALM_PATH = "/auth/realms/seller"
AUTH_PATH = f"{REALM_PATH}/protocol/openid-connect/auth"
LOGIN_ACTIONS_PATH = f"{REALM_PATH}/login-actions/authenticate"
AUTH_SESSION_COOKIE = "AUTH_SESSION_ID"
SSO_SESSION_COOKIE = "KEYCLOAK_SESSION"
# Set after a passed SMS step: the realm knows this browser profile and skips the step for its
# seller (the real cookie's name is not public; its effect is: peers reuse a signed-on profile).
DEVICE_COOKIE = "KC_DEVICE"

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
    """A portal served by the sandbox and signed on to through this realm.

    ``login_path`` is where an anonymous page sends the browser (with ``returnUrl``);
    ``callback_path`` receives ``state`` and ``code`` from Keycloak (Wing's ``/sso/login``
    also starts the authorization when called without them); ``landing_path`` is where a
    sign-on without a saved page ends.
    """

    name: str  # as in scenario faults: supplier_hub | wing
    client_id: str  # the Keycloak client: supplier-hub | wing
    title: str  # shown on the sign-on page
    prefix: str  # path prefix of the portal's own pages ('' = the root)
    session_cookie: str
    router: APIRouter
    authenticate: Callable[[SandboxState, str, str], Principal | None]
    home_path: str = "/"
    login_path: str = "/login"
    callback_path: str = "/sso/login"
    landing_path: str = "/"
    # Paths (after the prefix) of JSON APIs: signed out, they do not lead to the sign-on but, as
    # Wing's do, through the portal's logout to its help site (another origin).
    api_prefix: str | None = None

    @property
    def request_cookie(self) -> str:
        """The portal's cookie naming its saved authorization request (a pre-login session)."""
        return f"{self.session_cookie}_AUTHREQ"


class LoginRequired(Exception):
    """Raised by a portal page without a session; answered with a redirect to the portal's login start."""

    def __init__(self, location: str):
        self.location = location


def portals_of(request: Request) -> dict[str, Portal]:
    return request.app.state.portals  # client_id -> Portal


def _local_path(url: str, portal: Portal) -> str:
    """A return URL reduced to a path of the portal's own (anything else: its landing page)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if not path.startswith(portal.prefix + "/") and path != portal.prefix:
        return portal.prefix + portal.landing_path
    return path + (f"?{parts.query}" if parts.query else "")


def sign_on_url(portal: Portal, return_url: str) -> str:
    """Where the portal sends a browser without a session: its own login start, not Keycloak."""
    return f"{portal.prefix}{portal.login_path}?" + urlencode({"returnUrl": _local_path(return_url, portal)})


def current_session(request: Request, portal: Portal) -> Session:
    """The portal session of this browser, or LoginRequired back to this very page."""
    state = state_of(request)
    session = state.live_session(request.cookies.get(portal.session_cookie), client_of(request))
    if session is None or session.portal != portal.name:
        raise LoginRequired(sign_on_url(portal, str(request.url)))
    return session


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _other_origin(request: Request, origin: str, port: int) -> str:
    """Another origin of the sandbox as the browser reaches it: its own loopback host (``origin``), or,
    where the sandbox serves a name (``http://sandbox:8800`` in compose), that name on its own port."""
    return origin or f"{request.url.scheme}://{request.url.hostname}:{port}"


def sso_base(request: Request) -> str:
    """Keycloak's origin (xauth.coupang.com on the live site)."""
    state = state_of(request)
    return _other_origin(request, state.sso_origin, state.sso_port)


def help_base(request: Request) -> str:
    """The help site's origin (helpseller.coupang.com on the live site)."""
    state = state_of(request)
    return _other_origin(request, state.help_origin, state.help_port)


def valid_redirect(state: SandboxState, portal: Portal, redirect_uri: str) -> bool:
    """The client's registered redirect URI: the portal's callback on the portals' origin (any host name
    the browser reaches it by, on the portals' port)."""
    parts = urlsplit(redirect_uri)
    return parts.scheme in ("http", "https") and parts.port == state.portal_port and \
        parts.path == portal.prefix + portal.callback_path




def callback_url(request: Request, portal: Portal) -> str:
    return str(request.base_url).rstrip("/") + portal.prefix + portal.callback_path


def portal_error(request: Request, portal: Portal, status_code: int, error: str, message: str) -> Response:
    """What a Spring Security portal shows when its OAuth2 login fails: a bare error page."""
    return render(request, "sso/info.html", status_code=status_code, portal=portal, title="로그인 오류",
                  message=f"[{error}] {message}", css="login-error")


def begin_authorization(request: Request, portal: Portal, return_url: str) -> Response:
    """Save an authorization request (state, return path) and send the browser to Keycloak."""
    state = state_of(request)
    pending = PendingLogin(portal.name, secrets.token_urlsafe(24), _local_path(return_url, portal))
    key = secrets.token_urlsafe(16)
    redirect_uri = callback_url(request, portal)
    with state.lock:
        state.pending_logins[key] = pending
    query = urlencode({"response_type": "code", "client_id": portal.client_id,
                       "redirect_uri": redirect_uri, "state": pending.state,
                       "scope": "openid", "nonce": secrets.token_urlsafe(12)})
    response = RedirectResponse(f"{sso_base(request)}{AUTH_PATH}?{query}", status_code=302)
    response.set_cookie(portal.request_cookie, key, httponly=True, samesite="lax", path="/")
    return response


def finish_authorization(request: Request, portal: Portal, code: str, oauth_state: str) -> Response:
    """The portal's callback: the state must be the saved request's, the code unused; then the session."""
    state = state_of(request)
    with state.lock:
        pending = state.pending_logins.get(request.cookies.get(portal.request_cookie) or "")
        if pending is None or pending.portal != portal.name or not secrets.compare_digest(pending.state, oauth_state):
            return portal_error(request, portal, 401, "authorization_request_not_found",
                                "저장된 로그인 요청이 없습니다. 처음부터 다시 로그인해 주세요.")
        issued = state.issued_codes.pop(code, None)
        if issued is None or issued.client_id != portal.client_id or issued.redirect_uri != callback_url(request,
                                                                                                         portal):
            return portal_error(request, portal, 401, "invalid_grant", "Code not valid")
        state.pending_logins.pop(request.cookies.get(portal.request_cookie) or "", None)
    client = client_of(request)
    session = state.new_session(portal.name, issued.account_id, issued.username, issued.is_master,
                                address=client.address, user_agent=client.user_agent)
    response = RedirectResponse(pending.return_path, status_code=302)
    rules = state.scenario.sessions
    # A browser-session cookie, as the live portals' (a new browser process is signed out); with
    # browser_session_cookies off, a lifetime a profile keeps across restarts.
    response.set_cookie(portal.session_cookie, session.token, httponly=True, samesite="lax", path="/",
                        max_age=None if rules.browser_session_cookies else int(rules.portal_seconds))
    response.delete_cookie(portal.request_cookie, path="/")
    return response


def add_sign_on_routes(portal: Portal) -> None:
    """The portal's side of the chain on its router: its login start and its callback.

    Wing's login start hands over to ``/sso/login``, which starts the authorization when
    called without a code; Supplier Hub's login start starts it at once.
    """
    router = portal.router
    callback_starts = portal.callback_path == "/sso/login"

    @router.get(portal.login_path)
    def login_start(request: Request, returnUrl: str = "") -> Response:  # noqa: N803 (the site's name)
        back = returnUrl or portal.prefix + portal.landing_path
        if portal.api_prefix and urlsplit(back).path.startswith(portal.prefix + portal.api_prefix):
            # A signed-out API call: /login -> /logout -> the help site (OH's record of Wing).
            return RedirectResponse(f"{portal.prefix}/logout", status_code=302)
        if callback_starts:
            return RedirectResponse(f"{portal.prefix}{portal.callback_path}?" + urlencode({"returnUrl": back}),
                                    status_code=302)
        return begin_authorization(request, portal, back)

    @router.get(portal.callback_path)
    def callback(request: Request, returnUrl: str = "", code: str = "", state: str = "") -> Response:  # noqa: N803
        if not code and not state and callback_starts:
            return begin_authorization(request, portal, returnUrl or portal.prefix + portal.landing_path)
        if not state:
            return portal_error(request, portal, 401, "invalid_state_parameter", "state 가 없습니다.")
        if not code:
            return portal_error(request, portal, 400, "invalid_request", "code 가 없습니다.")
        return finish_authorization(request, portal, code, state)


router = APIRouter()


def _keycloak_error(request: Request, message: str, status_code: int = 400) -> Response:
    return render(request, "sso/info.html", status_code=status_code, title="오류", message=message,
                  css="kc-error")


def _login_page(request: Request, portal: Portal, auth: AuthSession, *, error: str | None = None,
                username: str = "", status_code: int = 200) -> Response:
    auth.rotate()  # every form shown carries new one-time codes
    action = f"{LOGIN_ACTIONS_PATH}?" + urlencode(
        {"session_code": auth.session_code, "execution": auth.execution, "client_id": portal.client_id,
         "tab_id": auth.tab_id})
    response = render(request, "sso/login.html", status_code=status_code, portal=portal, action=action,
                      error=error, username=username)
    response.set_cookie(AUTH_SESSION_COOKIE, auth.root_id, httponly=True, samesite="lax", path=REALM_PATH + "/")
    return response


@router.get(AUTH_PATH)
def auth(request: Request, client_id: str = "", redirect_uri: str = "", state: str = "",
         response_type: str = "") -> Response:
    portal = portals_of(request).get(client_id)
    if portal is None:
        return _keycloak_error(request, "Client not found.")
    sandbox = state_of(request)
    if not valid_redirect(sandbox, portal, redirect_uri):
        return _keycloak_error(request, "Invalid parameter: redirect_uri")
    if response_type != "code":
        return _keycloak_error(request, "Invalid parameter: response_type")
    if not state:
        return _keycloak_error(request, "Invalid parameter: state")
    # Keycloak skips the form while its own session lives: the portal session is renewed.
    sso = sandbox.live_sso_session(request.cookies.get(SSO_SESSION_COOKIE), client_of(request))
    if sso is not None and sso.client_id == client_id:
        return _issue_code(sandbox, client_id, redirect_uri, state, sso.account_id, sso.username, sso.is_master)
    root_id = request.cookies.get(AUTH_SESSION_COOKIE) or secrets.token_urlsafe(16)
    return _login_page(request, portal, sandbox.new_auth_session(client_id, redirect_uri, state, root_id))


def _issue_code(sandbox: SandboxState, client_id: str, redirect_uri: str, oauth_state: str, account_id: str,
                username: str, is_master: bool) -> Response:
    code = secrets.token_urlsafe(24)
    with sandbox.lock:
        sandbox.issued_codes[code] = IssuedCode(client_id, redirect_uri, account_id, username, is_master)
    query = urlencode({"state": oauth_state, "session_state": secrets.token_hex(8), "code": code})
    return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)


@router.post(LOGIN_ACTIONS_PATH)
async def login_action(request: Request, client_id: str = "", tab_id: str = "", execution: str = "",
                       session_code: str = "") -> Response:
    portal = portals_of(request).get(client_id)
    if portal is None:
        return _keycloak_error(request, "Client not found.")
    sandbox = state_of(request)
    auth = sandbox.auth_sessions.get(tab_id)
    if auth is None or auth.client_id != client_id or request.cookies.get(AUTH_SESSION_COOKIE) != auth.root_id:
        # No authentication session behind this form (a hand-built or replayed action).
        return _keycloak_error(request, AUTH_SESSION_GONE)
    if not (secrets.compare_digest(session_code, auth.session_code) and execution == auth.execution):
        return _login_page(request, portal, auth, error=AUTH_SESSION_GONE)
    form = await request.form()

    if auth.pending is not None:
        # The SMS step: the code the scenario names (sms_code) passes and makes the device known.
        principal = auth.pending
        expected = sandbox.scenario.sms_code(principal.username) or ""
        if not secrets.compare_digest(str(form.get("code", "")).strip().encode(), expected.encode()):
            return _sms_page(request, portal, auth, error=BAD_SMS_CODE)
        response = _signed_on(request, sandbox, portal, auth, principal)
        rules = sandbox.scenario.sessions
        response.set_cookie(DEVICE_COOKIE, sandbox.trust_device(principal.username), httponly=True,
                            samesite="lax", path=REALM_PATH + "/",
                            max_age=rules.device_trust_days * 86400 if rules.device_trust_persistent else None)
        return response

    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    principal = portal.authenticate(sandbox, username, password) if username and password else None
    if principal is None:
        return _login_page(request, portal, auth, error=BAD_CREDENTIALS, username=username)
    if principal.expired_on is not None:
        return render(request, "sso/expired.html", portal=portal, expired_on=principal.expired_on)
    # A new device meets the SMS step; a profile the realm knows (its device cookie) does not.
    sms = principal.sms_challenge and not sandbox.device_trusted(request.cookies.get(DEVICE_COOKIE),
                                                                 principal.username)
    with sandbox.lock:
        sandbox.sign_ons.append(SignOn(principal.username, client_id, client_address(request), sms,
                                       at=sandbox.now()))
    if sms:
        auth.pending = principal
        return _sms_page(request, portal, auth, error=None)
    return _signed_on(request, sandbox, portal, auth, principal)


def _signed_on(request: Request, sandbox: SandboxState, portal: Portal, auth: AuthSession,
               principal: Principal) -> Response:
    """Keycloak's session for a seller who passed every step, and the code back to the portal;
    other sellers signed on from the same address are signed out (one at a time)."""
    rules = sandbox.scenario.sessions
    client = client_of(request)
    sandbox.end_other_sellers(principal.username, client.address)
    with sandbox.lock:
        sandbox.auth_sessions.pop(auth.tab_id, None)
        sso = SsoSession(secrets.token_urlsafe(24), portal.client_id, principal.account_id, principal.username,
                         principal.is_master, expires_at=sandbox.now() + rules.sso_seconds, address=client.address,
                         user_agent=client.user_agent)
        sandbox.sso_sessions[sso.token] = sso
    response = _issue_code(sandbox, portal.client_id, auth.redirect_uri, auth.state, principal.account_id,
                           principal.username, principal.is_master)
    # Keycloak's identity dies with the browser on the live site (OH): a browser-session cookie.
    response.set_cookie(SSO_SESSION_COOKIE, sso.token, httponly=True, samesite="lax", path=REALM_PATH + "/",
                        max_age=None if rules.browser_session_cookies else int(rules.sso_seconds))
    response.delete_cookie(AUTH_SESSION_COOKIE, path=REALM_PATH + "/")
    return response


def _sms_page(request: Request, portal: Portal, auth: AuthSession, *, error: str | None) -> Response:
    auth.rotate()
    action = f"{LOGIN_ACTIONS_PATH}?" + urlencode(
        {"session_code": auth.session_code, "execution": auth.execution, "client_id": portal.client_id,
         "tab_id": auth.tab_id})
    return render(request, "sso/sms.html", portal=portal, action=action, error=error)


@router.get(f"{REALM_PATH}/protocol/openid-connect/registrations")
def registrations(request: Request, client_id: str = "") -> Response:
    return render(request, "sso/info.html", title="회원가입",
                  message="판매자 회원가입은 샌드박스에서 지원하지 않습니다.", css="kc-register")


@router.get(f"{REALM_PATH}/protocol/openid-connect/logout")
def logout(request: Request, client_id: str = "", redirect_uri: str = "") -> Response:
    portal = portals_of(request).get(client_id)
    if portal is None:
        return _keycloak_error(request, "Client not found.")
    sandbox = state_of(request)
    with sandbox.lock:
        sandbox.sso_sessions.pop(request.cookies.get(SSO_SESSION_COOKIE) or "", None)
    # Keycloak ends its own session (the portal's cookie is the portal's, on another origin) and goes
    # back to a page of the portals' origin (its valid post-logout redirect URIs).
    if urlsplit(redirect_uri).port == sandbox.portal_port:
        response: Response = RedirectResponse(redirect_uri, status_code=302)
    else:
        response = render(request, "sso/info.html", portal=portal, title="로그아웃", message="로그아웃되었습니다.",
                          css="kc-logout")
    response.delete_cookie(SSO_SESSION_COOKIE, path=REALM_PATH + "/")
    return response
