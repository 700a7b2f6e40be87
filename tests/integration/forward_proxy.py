"""A small forward HTTP proxy for tests: each instance leaves from its own loopback address.

Loopback is a whole /8 (127.0.0.2, 127.0.0.3 … are distinct hosts), so a test that starts three of
these, leaving from 127.0.0.21, .22 and .23, gives the sandbox three clients at three addresses,
as three egress routes would give the live portals. It serves ``CONNECT`` and absolute-URI
requests, optionally demands ``Proxy-Authorization: Basic`` (answering 407 otherwise), and counts
what it relayed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from urllib.parse import urlsplit


class ForwardProxy:
    def __init__(self, source_address: str, *, username: str | None = None, password: str | None = None):
        self.source_address = source_address
        self.credentials = (base64.b64encode(f"{username}:{password}".encode()).decode() if username else None)
        self.requests = 0
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ForwardProxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _serve(self, reader, writer) -> None:
        upstream = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.decode("latin-1").split(" ", 2)
            headers = [h for h in rest.split(b"\r\n") if h]
            if self.credentials is not None:
                given = [h for h in headers if h.lower().startswith(b"proxy-authorization:")]
                if not given or given[0].split(b":", 1)[1].strip() != f"Basic {self.credentials}".encode():
                    self.refused += 1
                    writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    return
            self.requests += 1
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
            else:
                parts = urlsplit(target)
                host, port = parts.hostname, parts.port or 80
            up_reader, upstream = await asyncio.open_connection(host, int(port), local_addr=(self.source_address, 0))
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                parts = urlsplit(target)
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                kept = [h for h in headers if not h.lower().startswith((b"proxy-", b"connection:"))]
                upstream.write(f"{method} {path} {version}".encode("latin-1") + b"\r\n"
                               + b"\r\n".join(kept + [b"Connection: close"]) + b"\r\n\r\n")
                await upstream.drain()
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    @staticmethod
    async def _pipe(reader, writer) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
