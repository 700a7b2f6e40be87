"""Route leases in PostgreSQL (``warehouse.leases``): one holder per route, an account on one route at a
time, a run's tasks share their lease, an expired lease is reaped by the next task. Real PostgreSQL;
the concurrent case runs threads with their own connections."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupang_sales.warehouse import leases

pytestmark = pytest.mark.integration
ROUTES = ("r1", "r2", "r3")


def take(conn, account: str, holder: str, *, ttl: int = 60, prefer: str | None = None):
    return leases.lease_route(conn, portal="supplier_hub", routes=ROUTES, channel="coupang_rocket",
                              account_id=account, holder=holder, ttl_seconds=ttl, prefer=prefer)


def test_a_runs_tasks_share_one_lease_and_a_second_run_of_the_account_waits(warehouse):
    first = take(warehouse, "V1", "dag/run-1", prefer="r2")
    assert first.route == "r2"
    assert take(warehouse, "V1", "dag/run-1").route == "r2", "the run's next task gets the same route"
    assert take(warehouse, "V1", "dag/run-2") is None, "another run of the account waits for this one"
    leases.record_session(warehouse, first, webdriver_url="http://127.0.0.1:9515", session_id="abc")
    assert leases.held_by(warehouse, portal="supplier_hub", channel="coupang_rocket", account_id="V1").session_id \
        == "abc"
    assert leases.release(warehouse, first) and not leases.leases(warehouse)


def test_routes_run_out_then_free_up(warehouse):
    held = [take(warehouse, f"V{n}", f"dag/run-{n}") for n in range(1, 4)]
    assert sorted(lease.route for lease in held) == list(ROUTES)
    assert take(warehouse, "V4", "dag/run-4") is None
    leases.release(warehouse, held[1])
    assert take(warehouse, "V4", "dag/run-4").route == held[1].route


def test_a_lease_whose_holder_stopped_renewing_it_is_reaped_by_the_next_task(warehouse):
    stale = take(warehouse, "V1", "dag/killed", ttl=1)
    for n in (2, 3):
        take(warehouse, f"V{n}", f"dag/run-{n}")
    assert take(warehouse, "V4", "dag/run-4") is None
    time.sleep(1.2)
    reaped = leases.reap_expired(warehouse, "supplier_hub")
    assert [(lease.route, lease.holder) for lease in reaped] == [(stale.route, "dag/killed")]
    assert take(warehouse, "V4", "dag/run-4").route == stale.route
    assert leases.renew(warehouse, stale, 60) is None, "the killed task's lease is gone: it cannot renew it"


# the warehouse fixture is the test's database; each example empties the lease table first
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=4, max_value=9), st.integers(min_value=0, max_value=2**32 - 1))
def test_concurrent_runs_never_put_two_accounts_on_one_route(warehouse_dsn, accounts, seed):
    """Threads (one per account, each with its own connection) lease, hold for a while, release; the
    holding intervals recorded per route never overlap, and every account got a route in the end."""
    chance = random.Random(seed)
    intervals: dict[str, list[tuple[float, float, str]]] = {r: [] for r in ROUTES}
    guard = threading.Lock()
    with psycopg.connect(warehouse_dsn, autocommit=True) as setup:
        setup.execute("TRUNCATE sales.route_leases")

    def run(account: str, pause: float) -> None:
        with psycopg.connect(warehouse_dsn, autocommit=True) as conn:
            while (lease := take(conn, account, f"dag/{account}")) is None:
                time.sleep(0.005)
            start = time.monotonic()
            time.sleep(pause)
            end = time.monotonic()
            assert leases.release(conn, lease)
            with guard:
                intervals[lease.route].append((start, end, account))

    threads = [threading.Thread(target=run, args=(f"V{n}", chance.uniform(0.005, 0.03))) for n in range(accounts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(len(v) for v in intervals.values()) == accounts
    for route, held in intervals.items():
        held.sort()
        for (_, end, who), (start, _, other) in zip(held, held[1:], strict=False):
            assert end <= start, f"{who} and {other} held {route} at once"


@pytest.fixture
def warehouse_dsn(warehouse):
    info = warehouse.info
    return f"host={info.host} dbname={info.dbname} user={info.user}"
