"""Egress routes from their configuration (``portal.routes``): what is refused, and what a route hides."""

from __future__ import annotations

import pytest

from coupang_sales.errors import CollectionError
from coupang_sales.portal.routes import Route, chrome_proxy_flags, parse_routes


def test_no_configuration_is_the_machines_own_address():
    assert parse_routes("") == [Route()] and Route().name == "direct" and not Route().proxy


def test_routes_name_a_proxy_a_connection_or_a_grid_node():
    read = {"coupang_route_b": ("socks5://10.0.0.2:1080", "user-b", "secret-b")}
    got = parse_routes('[{"name": "a", "proxy": "http://10.0.0.1:3128"}, {"name": "b", "conn_id": "coupang_route_b"},'
                       ' {"name": "c", "grid_node": "node-3"}]', read.__getitem__)
    assert [(r.name, r.proxy, r.grid_node, r.needs_relay) for r in got] == [
        ("a", "http://10.0.0.1:3128", None, False), ("b", "socks5://10.0.0.2:1080", None, True),
        ("c", None, "node-3", False)]
    assert "secret-b" not in repr(got[1]) and "secret-b" not in got[1].describe()


@pytest.mark.parametrize(("raw", "says"), [
    ("[", "not JSON"), ("{}", "non-empty JSON list"),
    ('[{"proxy": "http://h:1"}]', "routes[0]: an object with a 'name'"),
    ('[{"name": "a", "proxy": "ftp://h:1"}]', "http://host:port or socks5://host:port"),
    ('[{"name": "a", "proxy": "http://u:p@h:1"}]', "credentials in its connection"),
    ('[{"name": "a", "proxy": "http://h:1", "grid_node": "n"}]', "not both"),
    ('[{"name": "a", "via": "x"}]', "unknown keys ['via']"),
    ('[{"name": "a"}, {"name": "a"}]', "unique"),
    ('[{"name": "a", "conn_id": "x"}]', "needs Airflow connections"),
])
def test_a_bad_configuration_names_what_is_wrong(raw, says):
    with pytest.raises(CollectionError) as refused:
        parse_routes(raw)
    assert refused.value.category == "configuration_error" and says in str(refused.value)
    assert "p@" not in str(refused.value)


def test_chrome_is_told_not_to_exempt_loopback_from_the_proxy():
    assert chrome_proxy_flags("http://127.0.0.1:9") == ["--proxy-server=http://127.0.0.1:9",
                                                        "--proxy-bypass-list=<-loopback>"]
