"""The sandbox web application and a uvicorn server that runs it in a background thread."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox import defences, storage, supplier_hub, wing
from sandbox.faults import Fault, broken_body, change_header, hold
from sandbox.scenario import Scenario, load_scenario
from sandbox.sso import REALM_PATH, LoginRequired, Portal, sign_on_url
from sandbox.sso import router as sso_router
from sandbox.state import SandboxState
from sandbox.web import render

# Wing is mounted under '/wing', since both portals would otherwise claim '/'.
PORTALS: tuple[Portal, ...] = (supplier_hub.PORTAL, wing.PORTAL)
CONTROL_PREFIX = "/__sandbox__"


def _portal_of(request: Request, portals: Sequence[Portal]) -> tuple[Portal | None, bool]:
    """The portal a request belongs to, and whether it is a sign-on page."""
    path = request.url.path
    if path.startswith(CONTROL_PREFIX):
        return None, False
    if path.startswith(REALM_PATH):
        client_id = request.query_params.get("client_id", "")
        return next((p for p in portals if p.client_id == client_id), None), True
    # Longest prefix first, so '/wing/...' is Wing's even though Supplier Hub owns '/'.
    for portal in sorted(portals, key=lambda p: len(p.prefix), reverse=True):
        if path.startswith(portal.prefix + "/") or path == portal.prefix:
            return portal, False
    return None, False


async def _apply_fault(fault: Fault, portal: Portal, request: Request, call_next: Any,
                       state: SandboxState) -> Response | None:
    """The faulty answer, or None when the request should go on (after a delay)."""
    if fault.kind == "http_500":
        if fault.mode == "bare":  # what a crashed application server answers: no page, no title
            return Response("Internal Server Error", status_code=500, media_type="text/plain")
        return render(request, "server_error.html", status_code=500)
    if fault.kind == "bot_rejected":
        if fault.mode == "blank":  # what Chrome for Testing and some bundled Chromium builds get
            return Response("<html><head></head><body></body></html>", status_code=200, media_type="text/html")
        return render(request, "access_denied.html", status_code=403, target=str(request.url),
                      reference=secrets.token_hex(8))
    if fault.kind == "timeout":
        await hold(fault.delay_seconds, state.stopping)
        if state.stopping.is_set():
            return Response("sandbox stopping", status_code=503)
        return None
    if fault.kind == "session_expired":
        session = state.sessions.get(request.cookies.get(portal.session_cookie) or "")
        if session is not None and fault.mode != "portal":
            with state.lock:  # Keycloak's session of the same user ends too: the password is asked again
                for token in [t for t, s in state.sso_sessions.items() if s.username == session.username]:
                    del state.sso_sessions[token]
        state.end_session(request.cookies.get(portal.session_cookie))
        response = RedirectResponse(sign_on_url(portal, str(request.url)), status_code=302)
        response.delete_cookie(portal.session_cookie, path="/")
        return response
    if fault.kind in ("broken_download", "changed_header"):
        response = await call_next(request)
        body = b"".join([chunk async for chunk in response.body_iterator])
        if fault.kind == "broken_download":
            body = broken_body(body, fault.mode)
        else:
            body = change_header(body, fault.column, fault.rename_to)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(body, status_code=response.status_code, headers=headers)
    raise AssertionError(f"unhandled fault kind {fault.kind}")


HELP_PAGE = ("<!DOCTYPE html><html lang=\"ko\"><head><meta charset=\"utf-8\"><title>쿠팡 판매자 도움말</title></head>"
             "<body><h1>쿠팡 판매자 도움말</h1><p>로그아웃되었습니다.</p></body></html>")


def _origin_of(request: Request, state: SandboxState) -> str:
    """Which of the sandbox's origins a request came to: 'portal', 'sso' (Keycloak) or 'help'."""
    port = (request.scope.get("server") or ("", 0))[1]
    if state.sso_port and port == state.sso_port:
        return "sso"
    if state.help_port and port == state.help_port:
        return "help"
    return "portal"


async def _edge(request: Request, state: SandboxState, origin: str) -> Response | None:
    """What answers before any portal sees the request: each origin serves only its own paths, the help
    site its page, the bot wall (sandbox.defences) its sensor and its refusals."""
    path = request.url.path
    if origin == "help":
        return HTMLResponse(HELP_PAGE)
    if path == defences.SENSOR_PATH and request.method == "POST":
        return await defences.verify(request, state)
    if (origin == "sso") != path.startswith(REALM_PATH) or (origin == "sso" and path.startswith(CONTROL_PREFIX)):
        return Response("Not Found", status_code=404, media_type="text/plain")
    if path.startswith(CONTROL_PREFIX):
        return None
    return defences.wall(request, state,
                         challenge_seconds=state.scenario.challenge_seconds if origin == "sso" else 0.0)


def create_app(state: SandboxState, portals: Sequence[Portal] = PORTALS) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = state
    app.state.portals = {p.client_id: p for p in portals}

    @app.middleware("http")
    async def faults_and_log(request: Request, call_next: Any) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        origin = _origin_of(request, state)
        edge = await _edge(request, state, origin)
        if edge is not None:
            state.record(request.method, target, edge.status_code)
            return edge
        portal, sign_on = _portal_of(request, portals)
        fault = state.faults.take(portal.name if portal else None, target, sign_on=sign_on)
        response = await _apply_fault(fault, portal, request, call_next, state) if fault and portal else None
        if response is None:
            response = await call_next(request)
        state.record(request.method, target, response.status_code)
        return response

    @app.exception_handler(LoginRequired)
    async def to_sign_on(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(exc.location, status_code=302)

    @app.get(f"{CONTROL_PREFIX}/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get(f"{CONTROL_PREFIX}/state")
    def snapshot() -> JSONResponse:
        return JSONResponse(state.snapshot())

    @app.post(f"{CONTROL_PREFIX}/today")
    async def set_today(request: Request) -> JSONResponse:
        """Test control: move the sandbox's clock forward ({"today": "YYYY-MM-DD"})."""
        try:
            state.set_today(dt.date.fromisoformat(str((await request.json())["today"])))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"today": state.today.isoformat()})

    app.include_router(sso_router)
    for portal in portals:
        app.include_router(portal.router, prefix=portal.prefix)
    return app


def _other_loopback_hosts(host: str) -> tuple[str, str] | None:
    """Keycloak's and the help site's hosts beside a portal served on an IPv4 loopback address:
    other addresses of 127.0.0.0/8, so that no cookie is shared (cookies are per host, not per port).
    None for any other host, where they are other ports of the same host."""
    if not host.startswith("127."):
        return None
    others = [h for h in ("127.0.0.2", "127.0.0.3", "127.0.0.4") if h != host]
    return others[0], others[1]


class SandboxServer:
    """Serves one scenario; ``start()`` returns once connections are accepted.

    Four origins, as the live sites have: the portals (``url``; Wing under ``/wing``), Keycloak
    (``sso_url``: xauth.coupang.com), the help site a signed-out Wing API call ends at
    (``help_url``: helpseller.coupang.com) and the cloud storage of Wing's report links
    (``storage_url``). On a loopback portal host Keycloak and the help site get hosts of their
    own (127.0.0.2, 127.0.0.3); elsewhere (``--host 0.0.0.0``) ports of their own.
    """

    def __init__(self, scenario: Scenario | Mapping[str, Any] | str | Path, host: str = "127.0.0.1",
                 port: int = 0, storage_port: int = 0, sso_port: int = 0, help_port: int = 0):
        self.scenario = load_scenario(scenario)
        self.state = SandboxState(self.scenario)
        self.app = create_app(self.state)
        # The second origin Wing's report links point at (cloud storage on the real site).
        self.storage_app = storage.create_storage_app(self.state, lambda r: wing.render_report(self.state, r))
        self.host, self.port, self.storage_port = host, port, storage_port
        self.sso_port, self.help_port = sso_port, help_port
        others = _other_loopback_hosts(host)
        self.sso_host, self.help_host = others if others else (host, host)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._storage: uvicorn.Server | None = None
        self._storage_thread: threading.Thread | None = None

    @staticmethod
    def _origin(host: str, port: int, which: str) -> str:
        if not port:
            raise RuntimeError(f"the sandbox server has no {which}port yet: call start()")
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return self._origin(self.host, self.port, "")

    @property
    def storage_url(self) -> str:
        """The storage origin (another port): where Wing's presigned report links point."""
        return self._origin(self.host, self.storage_port, "storage ")

    @property
    def sso_url(self) -> str:
        """Keycloak's origin (xauth.coupang.com on the live site)."""
        return self._origin(self.sso_host, self.sso_port, "Keycloak ")

    @property
    def help_url(self) -> str:
        """The help site's origin (helpseller.coupang.com on the live site)."""
        return self._origin(self.help_host, self.help_port, "help-site ")

    def portal_url(self, name: str) -> str:
        """The base URL of one portal (``supplier_hub`` or ``wing``): where its paths start."""
        for portal in PORTALS:
            if portal.name == name:
                return self.url + portal.prefix
        raise KeyError(f"no portal {name!r}; the sandbox serves {', '.join(p.name for p in PORTALS)}")

    def _bind(self, port: int, host: str | None = None) -> socket.socket:
        # Bind here, not in uvicorn, so port 0 resolves to a known port before serving.
        host = host or self.host
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return sock

    @staticmethod
    def _serve(app: Any, socks: list[socket.socket], name: str) -> tuple[uvicorn.Server, threading.Thread]:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none",
                                timeout_graceful_shutdown=2, timeout_keep_alive=30)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": socks}, name=name, daemon=True)
        thread.start()
        return server, thread

    def start(self, timeout: float = 15.0) -> SandboxServer:
        if self._server is not None:
            raise RuntimeError("the sandbox server is already started")
        sock, storage_sock = self._bind(self.port), self._bind(self.storage_port)
        sso_sock, help_sock = self._bind(self.sso_port, self.sso_host), self._bind(self.help_port, self.help_host)
        self.port, self.storage_port = sock.getsockname()[1], storage_sock.getsockname()[1]
        self.sso_port, self.help_port = sso_sock.getsockname()[1], help_sock.getsockname()[1]
        self.state.storage_url = self.storage_url
        self.state.portal_port, self.state.sso_port, self.state.help_port = self.port, self.sso_port, self.help_port
        loopback = _other_loopback_hosts(self.host) is not None
        self.state.sso_origin = self.sso_url if loopback else ""
        self.state.help_origin = self.help_url if loopback else ""
        self.state.stopping.clear()
        self._server, self._thread = self._serve(self.app, [sock, sso_sock, help_sock], f"sandbox-{self.port}")
        self._storage, self._storage_thread = self._serve(self.storage_app, [storage_sock],
                                                          f"sandbox-storage-{self.storage_port}")
        deadline = time.monotonic() + timeout
        while not (self._server.started and self._storage.started):
            if not (self._thread.is_alive() and self._storage_thread.is_alive()):
                self.stop()
                sock.close()
                storage_sock.close()
                raise RuntimeError("the sandbox server failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox server did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None:
            return
        self.state.stopping.set()  # ends held (timeout fault) answers at once
        for server in (self._server, self._storage):
            if server is not None:
                server.should_exit = True
        for thread in (self._thread, self._storage_thread):
            if thread is not None:
                thread.join(timeout)
        self._server = self._storage = None
        self._thread = self._storage_thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
