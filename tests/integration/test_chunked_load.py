"""A load derives its groups ``DERIVE_CHUNK_GROUPS`` at a time; at one group a chunk the warehouse ends
as it does in one chunk, and the loads stage every chunk's lines and policy result (the real policies, the
real GX suites and the real load against PostgreSQL, no browser)."""

from __future__ import annotations

import itertools

import pytest
from restatement_world import D, JetWorld, RocketWorld, lines, rocket_line, tr_row, ws_row

import coupang_sales.warehouse as warehouse_module
from coupang_sales.frames import read_frame
from coupang_sales.jet import stages as jet_stages
from coupang_sales.model import Window
from coupang_sales.rocket import stages as rocket_stages

pytestmark = pytest.mark.integration


def seller(account_id: str) -> RocketWorld:
    """Five 발주번호/SKU번호 over two invoices; a later invoice returns part of one and all of another."""
    world = RocketWorld(account_id=account_id)
    world.invoice("300", "2026-01-05", *(rocket_line("300", "발주", f"PO{n}", "S1", 10, 1_000 * n) for n in (1, 2, 3)))
    world.invoice("301", "2026-01-06", rocket_line("301", "발주", "PO4", "S1", 5, 700),
                  rocket_line("301", "발주", "PO5", "S2", 2, 19_900))
    world.invoice("302", "2026-01-20", rocket_line("302", "반출", "PO2", "S1", -4, 2_000, moved="2026-01-20"),
                  rocket_line("302", "반출", "PO5", "S2", -2, 19_900, moved="2026-01-20"))
    return world


def changes(conn, account_id: str) -> list[tuple]:
    return conn.execute(
        "SELECT run_id, order_id, line_key, change, old_payment_amount, new_payment_amount, cause, cause_facts "
        "FROM sales.order_line_changes WHERE account_id = %s ORDER BY run_id, order_id, line_key, change",
        (account_id,)).fetchall()


def whole_and_chunked(warehouse, monkeypatch, tmp_path, world, checked_derivation, last_run: str):
    """The same two runs (the first days, then the later restatement ``last_run``) for the account WHOLE
    in one derivation chunk, then for CHUNKED at one group a chunk, each CHUNKED run staging into
    ``tmp_path/<n>`` through ``checked_derivation``; returns the last CHUNKED run's result."""
    runs = [(Window(D("2026-01-05"), D("2026-01-06")), D("2026-01-07"), "first"),
            (Window(D("2026-01-20"), D("2026-01-20")), D("2026-01-21"), last_run)]
    whole = world("WHOLE")
    for window, until, run_id in runs:
        whole.run(warehouse, window, until, run_id=run_id)

    monkeypatch.setattr(warehouse_module, "DERIVE_CHUNK_GROUPS", 1)
    chunked = world("CHUNKED")
    for n, (window, until, run_id) in enumerate(runs):
        staged = tmp_path / str(n)
        staged.mkdir()
        result = chunked.run(warehouse, window, until, run_id=run_id,
                             checked=lambda stored, staged=staged, chunk=itertools.count():
                             checked_derivation(stored, account_id="CHUNKED", staging=staged, chunk=next(chunk)))
    return result


def test_one_group_a_chunk_leaves_the_rows_of_one_chunk(warehouse, monkeypatch, tmp_path):
    result = whole_and_chunked(warehouse, monkeypatch, tmp_path, seller, rocket_stages.checked_derivation,
                               "the return")
    staged = tmp_path / "1"
    assert len(list((tmp_path / "0").glob("order_lines*.parquet"))) == 5, "the first run: five groups, five chunks"
    assert lines(warehouse, "CHUNKED") == lines(warehouse, "WHOLE")
    assert changes(warehouse, "CHUNKED") == changes(warehouse, "WHOLE")
    assert result.groups == 2, "the return's run derives the two groups it touches, one per chunk"
    assert sorted(p.name for p in staged.glob("order_lines*.parquet")) == ["order_lines.1.parquet",
                                                                           "order_lines.parquet"]
    restated = sorted(order for name in ("order_lines.parquet", "order_lines.1.parquet")
                      for order in read_frame(staged / name)["order_id"])
    assert restated == ["PO2", "PO5"]


def jet_seller(account_id: str) -> JetWorld:
    """Three orders with their shipping fees; a later cancellation of one of them."""
    return JetWorld(account_id=account_id,
                    category_tr=[tr_row("O1", "A", "2026-01-05", coupon=500), tr_row("O2", "A", "2026-01-05"),
                                 tr_row("O3", "B", "2026-01-06", qty=2),
                                 tr_row("O2", "A", "2026-01-20", cancel=True)],
                    warehousing=[ws_row(order, "배송비 정산", 2_500, "2026-01-05") for order in ("O1", "O2")])


def test_jet_one_group_a_chunk_leaves_the_rows_and_a_policy_result_per_chunk(warehouse, monkeypatch, tmp_path):
    whole_and_chunked(warehouse, monkeypatch, tmp_path, jet_seller, jet_stages.checked_derivation,
                      "the cancellation")
    assert lines(warehouse, "CHUNKED") == lines(warehouse, "WHOLE")
    assert changes(warehouse, "CHUNKED") == changes(warehouse, "WHOLE")
    results = sorted(p.name for p in (tmp_path / "0").glob("quality_*.json"))
    assert results == ["quality_coupang_jet_v2_derived.1.json", "quality_coupang_jet_v2_derived.2.json",
                       "quality_coupang_jet_v2_derived.json"], "the first run: three orders, three chunks"
    assert [p.name for p in (tmp_path / "1").glob("quality_*.json")] == ["quality_coupang_jet_v2_derived.json"]


def test_a_large_load_analyses_the_facts_unless_another_load_holds_that_lock(warehouse, caplog):
    """A load that writes more facts than the statistics know of analyses the table in its transaction
    (its probes of the stored facts need them); when another session holds the ANALYZE lock, the load
    waits at most ``_ANALYZE_LOCK_WAIT`` and goes on without, its rows the same."""
    import logging

    import psycopg

    def big(account_id: str) -> RocketWorld:
        world = RocketWorld(account_id=account_id)
        world.invoice("900", "2026-01-05", *(rocket_line("900", "발주", f"PO{n:04d}", "S1", 1, 1_000)
                                             for n in range(1_500)))
        return world

    def known() -> float:
        return warehouse.execute("SELECT reltuples FROM pg_class "
                                 "WHERE oid = 'sales.collected_facts'::regclass").fetchone()[0]

    window = Window(D("2026-01-05"), D("2026-01-05"))
    with psycopg.connect(**warehouse.info.get_parameters()) as holder:
        holder.execute("LOCK TABLE sales.collected_facts IN SHARE UPDATE EXCLUSIVE MODE")
        with caplog.at_level(logging.INFO, logger="coupang_sales.warehouse"):
            big("HELD").run(warehouse, window, run_id="held")
        holder.rollback()
    assert "not analysed: another load holds its ANALYZE lock" in caplog.text
    assert known() < 1_500, "not analysed"
    big("FREE").run(warehouse, window, run_id="free")
    assert known() >= 3_000, "analysed in the load's transaction: both accounts' facts counted"
    assert len(lines(warehouse, "HELD")) == len(lines(warehouse, "FREE")) == 1_500


def rocket_runs(account_id: str):
    """A first run, a re-collection of the same invoices with one line's quantity changed and another line
    gone, then the later return: facts new, changed, removed and restating."""
    first = seller(account_id)
    recollected = seller(account_id)
    recollected.invoice("300", "2026-01-05", rocket_line("300", "발주", "PO1", "S1", 11, 1_000),
                        rocket_line("300", "발주", "PO2", "S1", 10, 2_000))
    early = Window(D("2026-01-05"), D("2026-01-06"))
    return [(first, early, "first"), (recollected, early, "again"),
            (recollected, Window(D("2026-01-20"), D("2026-01-20")), "the return")]


def jet_runs(account_id: str):
    first = jet_seller(account_id)
    recollected = jet_seller(account_id)
    recollected.category_tr[0] = tr_row("O1", "A", "2026-01-05", coupon=700)
    del recollected.category_tr[2]
    early = Window(D("2026-01-05"), D("2026-01-06"))
    return [(first, early, "first"), (recollected, early, "again"),
            (recollected, Window(D("2026-01-20"), D("2026-01-20")), "the cancellation")]


@pytest.mark.parametrize("runs", [rocket_runs, jet_runs], ids=["rocket", "jet"])
def test_probing_the_account_or_joining_it_leaves_the_same_rows(warehouse, monkeypatch, runs):
    """The facts' UPDATE, the old lines and the lines' DELETE probe the account's rows when the rows that
    drive them are few and join them otherwise (``_probes_pay``): both ways end in the same warehouse."""
    results = {}
    for account_id, probes in (("PROBED", True), ("JOINED", False)):
        monkeypatch.setattr(warehouse_module, "_probes_pay", lambda cur, table, rows, probes=probes: probes)
        results[account_id] = [world.run(warehouse, window, D("2026-01-21"), run_id=run_id)
                               for world, window, run_id in runs(account_id)]
    assert lines(warehouse, "PROBED") == lines(warehouse, "JOINED")
    assert changes(warehouse, "PROBED") == changes(warehouse, "JOINED")
    again = results["PROBED"][1]
    assert (again.facts_changed, again.facts_removed) == (1, 1), again
    assert [r.as_dict() for r in results["PROBED"]] == [r.as_dict() for r in results["JOINED"]]
