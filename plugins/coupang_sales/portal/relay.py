"""A local relay for Chrome to a proxy that wants credentials.

Chrome reads ``--proxy-server`` without a user name or password and asks a person when the proxy
answers 407, so a route with credentials is reached through this relay: an HTTP proxy on
``127.0.0.1`` (a free port, for one browser) that passes each request to the route's proxy with its
credentials (``Proxy-Authorization: Basic`` for an HTTP proxy, RFC 1929 for SOCKS5). The
credentials stay in this process: not on Chrome's command line, not in its profile, not in a log.

Requests are relayed one per upstream connection (``CONNECT`` tunnels, which carry every HTTPS
request, are one connection each anyway), so an HTTP proxy sees its credentials on every request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import struct
import threading
from urllib.parse import urlsplit

from coupang_sales.portal.routes import Route

log = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024


class RelayError(Exception):
    """The upstream proxy refused the relay (its status line or SOCKS reply, never the credentials)."""


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > HEAD_LIMIT:
        raise RelayError("request head too large")
    return head


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _target_of(method: str, target: str) -> tuple[str, int, str]:
    """(host, port, origin-form path) of a request line's target."""
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        return host.strip("[]"), int(port), ""
    parts = urlsplit(target)
    path = parts.path or "/"
    return parts.hostname or "", parts.port or 80, path + (f"?{parts.query}" if parts.query else "")


class ProxyRelay:
    """``start()`` serves on ``127.0.0.1:<port>`` until ``stop()``; ``url`` is Chrome's proxy."""

    def __init__(self, route: Route) -> None:
        if not route.proxy:
            raise ValueError("a relay needs a route with a proxy")
        parts = urlsplit(route.proxy)
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._username, self._password = route.username or "", route.password or ""
        self._route_name = route.name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"relay-{route.name}", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ProxyRelay":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> "ProxyRelay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer = None
        try:
            head = await _read_head(reader)
            request_line, _, rest = head.partition(b"\r\n")
            method, target, version = request_line.decode("latin-1").split(" ", 2)
            if self._scheme == "http":
                up_reader, upstream_writer = await asyncio.open_connection(self._host, self._port)
                auth = base64.b64encode(f"{self._username}:{self._password}".encode()).decode()
                headers = [line for line in rest.split(b"\r\n") if line and not line.lower().startswith(
                    (b"proxy-authorization:", b"proxy-connection:", b"connection:"))]
                headers += [f"Proxy-Authorization: Basic {auth}".encode(), b"Connection: close"]
                upstream_writer.write(request_line + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n")
                await upstream_writer.drain()
            else:
                host, port, path = _target_of(method, target)
                up_reader, upstream_writer = await self._socks_connect(host, port)
                if method == "CONNECT":
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                else:
                    headers = [line for line in rest.split(b"\r\n") if line and not line.lower().startswith(
                        (b"proxy-authorization:", b"proxy-connection:", b"connection:"))]
                    line = f"{method} {path} {version}".encode("latin-1")
                    upstream_writer.write(line + b"\r\n" + b"\r\n".join(headers + [b"Connection: close"])
                                          + b"\r\n\r\n")
                    await upstream_writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(up_reader, writer))
        except (RelayError, OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.warning("route %s: relay to its proxy failed: %s", self._route_name, type(exc).__name__)
            with contextlib.suppress(Exception):
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _socks_connect(self, host: str, port: int):
        reader, writer = await asyncio.open_connection(self._host, self._port)
        methods = b"\x02" if self._username or self._password else b"\x00"
        writer.write(b"\x05\x01" + methods)
        await writer.drain()
        version, method = await reader.readexactly(2)
        if version != 5 or method == 0xFF:
            raise RelayError("the SOCKS proxy accepts none of the relay's methods")
        if method == 2:
            user, password = self._username.encode(), self._password.encode()
            writer.write(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
            await writer.drain()
            _, status = await reader.readexactly(2)
            if status != 0:
                raise RelayError("the SOCKS proxy refused the route's credentials")
        try:
            address = ipaddress.ip_address(host)
            target = (b"\x01" if address.version == 4 else b"\x04") + address.packed
        except ValueError:
            target = b"\x03" + bytes([len(host.encode())]) + host.encode()
        writer.write(b"\x05\x01\x00" + target + struct.pack("!H", port))
        await writer.drain()
        reply = await reader.readexactly(4)
        if reply[1] != 0:
            raise RelayError(f"the SOCKS proxy could not connect (reply {reply[1]})")
        kind = reply[3]
        await reader.readexactly({1: 4, 4: 16}.get(kind) or (await reader.readexactly(1))[0])
        await reader.readexactly(2)
        return reader, writer


def spawn(route: Route) -> tuple[str, int]:
    """A relay in a process of its own, for a browser session that outlives the task (a shared session on a
    WebDriver server): returns its proxy URL and pid; the lease's release (or reaping) stops it. The
    route, credentials included, reaches the child on its standard input, never on its command line."""
    import json
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    child.stdin.write(json.dumps({"name": route.name, "proxy": route.proxy, "username": route.username,
                                  "password": route.password}).encode())
    child.stdin.close()
    line = child.stdout.readline().decode().strip()
    if not line.isdigit():
        child.kill()
        raise RelayError(f"route {route.name}: the relay did not start")
    return f"http://127.0.0.1:{line}", child.pid


def _serve_forever() -> None:  # this file run as a script (by spawn)
    import json
    import signal
    import sys

    given = json.loads(sys.stdin.read())
    relay = ProxyRelay(Route(given["name"], proxy=given["proxy"], username=given["username"],
                             password=given["password"])).start()
    print(relay.port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Event().wait()


if __name__ == "__main__":
    _serve_forever()
