"""The sandbox's bot defences, modelled on what the live portals run (REAL-PORTALS.md §2, §6).

- **An Akamai-like sensor wall** in front of every portal page and the sign-on. A client is
  known by its sensor cookie ``_abck``. Without a passed one, a page load gets a 403 whose body
  is a script: it reports ``navigator.webdriver``, the user agent (and its client hints) and a
  few properties headless builds lack, then reloads; every other request (plain HTTP, an API
  call, a form post) is 'Access Denied' (403). A flagged client is 'Access Denied' on every
  request. On the sign-on's origin the sensor takes ``challenge_seconds`` (the recorded ~16 s).
- **Client binding**: the sensor cookie, like Cloudflare's ``cf_clearance``, is bound to the
  address and user agent it was earned with; the same cookie sent by another client is refused.
  (The portal and Keycloak sessions are bound the same way: ``SandboxState.live_session``.)

Which requests are page loads: ``Sec-Fetch-Mode: navigate``, or, where a browser sends no
fetch metadata (a host that is not potentially trustworthy, such as ``http://sandbox:8800``),
a GET that accepts ``text/html``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from sandbox.web import render

SENSOR_COOKIE = "_abck"
SENSOR_PATH = "/_sec/cp_challenge/verify"  # where the sensor script posts what it saw
SENSOR_COOKIE_DAYS = 365  # Akamai's _abck is a persistent cookie


@dataclass(frozen=True)
class Client:
    """Who is asking, as an edge sees it: the connection's address and the User-Agent header."""

    address: str
    user_agent: str


@dataclass
class SensorChallenge:
    """A sensor script served to a client; its answer is judged against the client it was served to."""

    client: Client
    served_at: float  # monotonic
    wait_seconds: float


@dataclass
class Verdict:
    client: Client
    passed: bool
    reasons: tuple[str, ...]


def client_of(request: Request) -> Client:
    return Client(request.client.host if request.client else "", request.headers.get("user-agent", ""))


def is_page_load(request: Request) -> bool:
    mode = request.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def judge(sensor: object, client: Client) -> tuple[str, ...]:
    """What flags a client: the reasons, none for a browser the live sites let in."""
    if not isinstance(sensor, dict):
        return ("no sensor data",)
    reasons = []
    if sensor.get("webdriver") is not False:
        reasons.append("navigator.webdriver is true")
    agent = str(sensor.get("userAgent", ""))
    if "HeadlessChrome" in agent or any("HeadlessChrome" in str(b) for b in sensor.get("brands") or ()):
        reasons.append("a headless user agent")
    if agent != client.user_agent:
        reasons.append("the script's user agent differs from the request's")
    if not sensor.get("chrome"):
        reasons.append("no window.chrome")
    if not sensor.get("languages"):
        reasons.append("no navigator.languages")
    if not sensor.get("plugins"):
        reasons.append("no navigator.plugins")
    return tuple(reasons)


def _sensor_page(token: str, wait_seconds: float) -> Response:
    script = f"""
(function () {{
  var nav = window.navigator;
  var sensor = {{
    webdriver: nav.webdriver, userAgent: nav.userAgent,
    brands: nav.userAgentData ? nav.userAgentData.brands.map(function (b) {{ return b.brand; }}) : null,
    languages: (nav.languages || []).length, plugins: nav.plugins ? nav.plugins.length : 0,
    chrome: typeof window.chrome === 'object'
  }};
  setTimeout(function () {{
    fetch({json.dumps(SENSOR_PATH)}, {{method: 'POST', credentials: 'include',
      headers: {{'Content-Type': 'application/json'}},
      body: JSON.stringify({{token: {json.dumps(token)}, sensor: sensor}})}})
      .then(function () {{ location.reload(); }}, function () {{ location.reload(); }});
  }}, {int(wait_seconds * 1000)});
}})();"""
    body = f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><script>{script}</script></body></html>'
    return HTMLResponse(body, status_code=403, headers={"Cache-Control": "no-store"})


def _denied(request: Request) -> Response:
    return render(request, "access_denied.html", status_code=403, target=str(request.url),
                  reference=secrets.token_hex(8))


def wall(request: Request, state, *, challenge_seconds: float) -> Response | None:
    """The wall's answer to ``request``, or None to let it through."""
    rules = state.scenario.bot_protection
    if not rules.wall:
        return None
    client = client_of(request)
    token = request.cookies.get(SENSOR_COOKIE) or ""
    with state.lock:
        verdict = state.sensor_verdicts.get(token)
    if verdict is not None:
        bound_here = verdict.client == client or not rules.bind_to_client
        if verdict.passed and bound_here:
            return None
        if not verdict.passed:
            return _denied(request)
        # A passed cookie replayed by another client: as if it had none.
    if not is_page_load(request):
        return _denied(request)
    token = secrets.token_urlsafe(18)
    with state.lock:
        state.sensor_challenges[token] = SensorChallenge(client, time.monotonic(), challenge_seconds)
    return _sensor_page(token, challenge_seconds)


async def verify(request: Request, state) -> Response:
    """The sensor's report: a verdict bound to the client, and the ``_abck`` cookie that names it."""
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError:
        payload = None
    token = payload.get("token") if isinstance(payload, dict) else None
    client = client_of(request)
    with state.lock:
        challenge = state.sensor_challenges.pop(str(token), None)
    if challenge is None:
        return JSONResponse({"success": False}, status_code=403)
    reasons = list(judge(payload.get("sensor"), client))
    if challenge.client != client:
        reasons.append("answered by another client than the one challenged")
    if time.monotonic() - challenge.served_at < challenge.wait_seconds - 0.05:
        reasons.append("answered before the challenge's time")
    verdict = Verdict(client, not reasons, tuple(reasons))
    with state.lock:
        state.sensor_verdicts[token] = verdict
    response = JSONResponse({"success": verdict.passed})
    response.set_cookie(SENSOR_COOKIE, token, max_age=SENSOR_COOKIE_DAYS * 86400, path="/", samesite="lax")
    return response
