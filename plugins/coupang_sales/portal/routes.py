"""Egress routes: the addresses a browser leaves from.

The live portals allow one signed-on seller at a time per address and bind their sessions and
bot clearance to the client's address (REAL-PORTALS.md §1, §6), so an address is a resource like
a browser: a deployment names its routes, and each browser leaves through one of them.

A route is one of
- ``direct``: the machine's own address (the only route when none is configured);
- a forward proxy, ``http://host:port`` or ``socks5://host:port``, with its user name and password
  (from an Airflow connection, never written in the route itself);
- a Selenium Grid node pinned by a capability (``grid_node``): the node's own address.

Chrome takes a proxy as ``--proxy-server`` but cannot send a proxy's credentials; a route with
credentials is reached through a local relay (``portal.relay``) that adds them, so they never
appear on Chrome's command line. ``--proxy-bypass-list=<-loopback>`` removes Chrome's implicit
bypass of loopback addresses (so a portal on this machine, the sandbox, is reached through the
route as well) and nothing else is exempted: every request of the portal leaves through the route.

Nothing here imports Airflow: ``airflow_glue`` reads the configuration and the connections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from coupang_sales.errors import CollectionError

DIRECT = "direct"
PROXY_SCHEMES = ("http", "socks5")
# Chrome bypasses loopback addresses implicitly; "<-loopback>" takes that exemption away.
BYPASS_NONE = "<-loopback>"
# The capability a Selenium Grid node's stereotype carries to be chosen for a route.
GRID_ROUTE_CAPABILITY = "coupang:route"


@dataclass(frozen=True)
class Route:
    """One egress address. ``proxy`` holds no credentials; ``password`` is never printed."""

    name: str = DIRECT
    proxy: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    grid_node: str | None = None

    def __post_init__(self) -> None:
        if self.proxy:
            parts = urlsplit(self.proxy)
            if parts.scheme not in PROXY_SCHEMES or not parts.hostname or not parts.port:
                raise CollectionError("configuration_error",
                                      f"route {self.name!r}: proxy must be http://host:port or socks5://host:port")
            if parts.username or parts.password:
                raise CollectionError("configuration_error",
                                      f"route {self.name!r}: put the proxy's credentials in its connection, "
                                      "not in the proxy address")
        if self.proxy and self.grid_node:
            raise CollectionError("configuration_error", f"route {self.name!r}: a proxy or a Grid node, not both")

    @property
    def needs_relay(self) -> bool:
        """Chrome cannot authenticate to a proxy by itself: a route with credentials goes through a relay."""
        return bool(self.proxy and (self.username or self.password))

    def describe(self) -> str:
        """What the run report and the status page show: the route's name and where it leaves from."""
        if self.grid_node:
            return f"{self.name} (Grid node {self.grid_node})"
        if self.proxy:
            return f"{self.name} ({self.proxy})"
        return self.name


def chrome_proxy_flags(proxy_url: str) -> list[str]:
    """Chrome's flags for leaving through ``proxy_url`` (no credentials in it), loopback included."""
    return [f"--proxy-server={proxy_url}", f"--proxy-bypass-list={BYPASS_NONE}"]


def parse_routes(raw: str, credentials=None) -> list[Route]:
    """Routes from their configuration: a JSON list of ``{"name", "proxy" | "conn_id" | "grid_node"}``.

    ``conn_id`` names a connection holding the proxy (host, port, login, password; the extra's
    ``scheme`` is ``http`` unless it says ``socks5``); ``credentials(conn_id)`` returns
    ``(proxy_url, login, password)`` for it (the Airflow side passes a reader of connections).
    An empty configuration is the one route ``direct``.
    """
    if not raw or not raw.strip():
        return [Route()]
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise CollectionError("configuration_error", f"routes: not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(items, list) or not items:
        raise CollectionError("configuration_error", "routes: a non-empty JSON list of routes")
    routes: list[Route] = []
    for number, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise CollectionError("configuration_error", f"routes[{number}]: an object with a 'name'")
        unknown = set(item) - {"name", "proxy", "conn_id", "grid_node"}
        if unknown:
            raise CollectionError("configuration_error", f"routes[{number}]: unknown keys {sorted(unknown)}")
        if item.get("conn_id"):
            if credentials is None:
                raise CollectionError("configuration_error", f"routes[{number}]: conn_id needs Airflow connections")
            proxy, username, password = credentials(item["conn_id"])
            routes.append(Route(item["name"], proxy=proxy, username=username or None, password=password or None))
        else:
            routes.append(Route(item["name"], proxy=item.get("proxy") or None, grid_node=item.get("grid_node") or None))
    names = [route.name for route in routes]
    if len(set(names)) != len(names):
        raise CollectionError("configuration_error", f"routes: names must be unique, not {names}")
    return routes
