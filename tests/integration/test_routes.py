"""Egress routes: a browser leaves through its route, and the sandbox sees each route as its own address.

Three small forward proxies started by the test leave from 127.0.0.21, .22 and .23; the third wants
credentials, which the browser's local relay adds (Chrome cannot). The sandbox (defences on, one signed-on
seller per address, sessions bound to the client's address) records the address of every sign-on.
Headed Chromium under a virtual display, real HTTP.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from forward_proxy import ForwardProxy

from coupang_sales.portal.browser import open_browser
from coupang_sales.portal.routes import Route
from coupang_sales.rocket.supplier_hub import SupplierHubSession
from sandbox import SandboxServer

pytestmark = pytest.mark.integration
PASSWORD = "pw-Route-4k2m9"
ADDRESSES = ("127.0.0.21", "127.0.0.22", "127.0.0.23")
PROXY_LOGIN, PROXY_PASSWORD = "route-user", "proxy-Secret-77x"


def scenario() -> dict:
    def hub(number: int) -> dict:
        return {"account_id": f"V0000090{number}", "vendor_name": f"거래처 {number}", "username": f"route_{number}",
                "password": PASSWORD, "sub_account_expires": "2026-06-30", "invoices": []}

    return {"today": "2026-02-05", "bot_protection": {"challenge_seconds": 0.2},
            "rocket": {"accounts": [hub(n) for n in range(1, 5)]}, "jet": {"accounts": []}}


@pytest.fixture(scope="module")
def portal():
    with SandboxServer(scenario()) as server:
        yield server


@pytest.fixture(scope="module")
def proxies():
    with ExitStack() as stack:
        plain = [stack.enter_context(ForwardProxy(address)) for address in ADDRESSES[:2]]
        secured = stack.enter_context(ForwardProxy(ADDRESSES[2], username=PROXY_LOGIN, password=PROXY_PASSWORD))
        yield [*plain, secured]


def routes(proxies) -> list[Route]:
    return [Route("r1", proxy=proxies[0].url), Route("r2", proxy=proxies[1].url),
            Route("r3", proxy=proxies[2].url, username=PROXY_LOGIN, password=PROXY_PASSWORD)]


def session(portal, number: int, route: Route, tmp_path) -> SupplierHubSession:
    return SupplierHubSession(base_url=portal.url, username=f"route_{number}", password=PASSWORD,
                              download_dir=tmp_path / f"dl{number}", timeout=15,
                              driver_factory=lambda d: open_browser(d, route=route))


def addresses_of(portal, username: str) -> list[str]:
    return [s.address for s in portal.state.sign_ons if s.username == username]


def test_three_sellers_on_three_routes_are_three_addresses_and_none_signs_another_out(portal, proxies, tmp_path):
    with ExitStack() as stack:
        hubs = [stack.enter_context(session(portal, n, route, tmp_path))
                for n, route in enumerate(routes(proxies), 1)]
        for hub in hubs:
            hub.login()
        for hub in hubs:  # each is still signed on after the others signed on
            assert hub.settlement_blocked() is False
    seen = {n: addresses_of(portal, f"route_{n}") for n in (1, 2, 3)}
    print(f"sign-on addresses per seller: {seen}; relayed requests per proxy: {[p.requests for p in proxies]}")
    assert seen == {1: [ADDRESSES[0]], 2: [ADDRESSES[1]], 3: [ADDRESSES[2]]}
    assert all(p.requests > 0 for p in proxies) and proxies[2].refused == 0


def test_two_sellers_on_one_route_sign_each_other_out(portal, proxies, tmp_path):
    """The live portals' rule, seen through a route: one signed-on seller per address."""
    route = routes(proxies)[0]
    before = len(addresses_of(portal, "route_4")), len(addresses_of(portal, "route_1"))
    with session(portal, 4, route, tmp_path) as fourth, session(portal, 1, route, tmp_path) as first:
        fourth.login()
        first.login()  # same address: the sandbox ends route_4's sessions
        assert fourth.settlement_blocked() is False  # route_4 had to sign on again
    assert len(addresses_of(portal, "route_4")) - before[0] == 2
    assert set(addresses_of(portal, "route_4")) == {ADDRESSES[0]}


def test_the_proxys_credentials_stay_out_of_chromes_command_line(portal, proxies, tmp_path):
    route = routes(proxies)[2]
    driver = open_browser(tmp_path / "dl", route=route)
    try:
        driver.get("chrome://version")
        page = driver.find_element("tag name", "body").text
    finally:
        driver.quit()
    assert "--proxy-server=http://127.0.0.1:" in page and "--proxy-bypass-list=<-loopback>" in page
    assert PROXY_PASSWORD not in page and PROXY_LOGIN not in page
    assert f":{proxies[2].port}" not in page, "Chrome must reach the authenticating proxy through the relay only"


def test_a_route_is_one_address_for_the_sessions_binding(portal, proxies, tmp_path):
    """The sandbox binds a session to its client's address: the whole session leaves through one route."""
    with session(portal, 2, routes(proxies)[1], tmp_path) as hub:
        hub.login()
        hub.settlement_blocked()
        bound = {s.address for s in portal.state.sessions.values() if s.username == "route_2"}
    assert bound == {ADDRESSES[1]}
