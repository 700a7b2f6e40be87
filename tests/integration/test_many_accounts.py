"""Thousands of active accounts in one channel: sharded DAGs map every account once, each run within max_map_length.

The DAGs run through Airflow's ``dag.test()`` with the real ``list_accounts`` (the
warehouse, the shard filter) and every per-account task marked done instead of run
(``mark_success_pattern`` is matched with ``fullmatch`` against each task id, so
``collect\\..*`` is every task of the mapped group): what is checked is the structure,
one mapped instance of every task per account, not the browser work.

``dag.test()`` costs about 80 ms of CPU per task instance here (it marks each one in the
metadata database and re-examines the run after each layer), so 2,000 Rocket accounts (12,000
instances) take about a quarter of an hour of CPU: that case is marked ``scale`` and run by
``make scale``; ``make test`` runs the same test with 60 accounts over 2 shards under a
``max_map_length`` of 50 (so one unsharded run could not map them: shown too).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

pytestmark = pytest.mark.integration

CHANNEL = "coupang_rocket"
PER_ACCOUNT = ("collect.check_sub_account_expiry", "collect.check_tax_invoice_block", "collect.extract",
               "collect.validate", "collect.transform", "collect.load")


def register(conn, count: int) -> list[str]:
    ids = [f"V{n:08d}" for n in range(1, count + 1)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO sales.accounts (channel, account_id, conn_id, jet_version, active) "
                        "VALUES (%s, %s, %s, NULL, true)", [(CHANNEL, a, f"{CHANNEL}_{a.lower()}") for a in ids])
        # an inactive account is in no shard
        cur.execute("INSERT INTO sales.accounts (channel, account_id, conn_id, jet_version, active) "
                    "VALUES (%s, 'V99999999', 'unused', NULL, false)", (CHANNEL,))
    return ids


def listed_accounts(dag_run) -> list[str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id,
                                                 task_ids="list_accounts", key="return_value")
                              .with_only_columns(XComModel.value)).first()
    return [account["account_id"] for account in XComModel.deserialize_value(row)]


@pytest.mark.parametrize(("accounts", "shards", "map_limit"),
                         [(60, 2, 50), pytest.param(2_000, 4, None, marks=pytest.mark.scale)])
def test_every_account_gets_its_instances_across_shards(warehouse, airflow_db, monkeypatch, accounts, shards,
                                                        map_limit):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.configuration import conf

    from coupang_sales.airflow_glue.dag_factory import shard_dag_id
    from coupang_sales.shards import shard_of

    if map_limit:
        monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", str(map_limit))
    ids = register(warehouse, accounts)
    if map_limit:  # unsharded, the accounts are more than one run can map: refused, naming the setting
        monkeypatch.setenv("COUPANG_ROCKET_SHARDS", "1")
        single = DagBag(dag_folder=str(__import__("local_stack").ROOT / "dags")).dags["coupang_rocket_sales"]
        failed = single.test(logical_date=dt.datetime(2026, 1, 7, 6, tzinfo=dt.UTC),
                             mark_success_pattern=r"collect\..*|report")
        states = {ti.task_id: ti.state for ti in failed.get_task_instances()}
        assert states["list_accounts"] == "failed"  # (the run's colour is the report's, marked done here)
    monkeypatch.setenv("COUPANG_ROCKET_SHARDS", str(shards))
    bag = DagBag(dag_folder=str(__import__("local_stack").ROOT / "dags"))
    assert not bag.import_errors
    dag_ids = [shard_dag_id(CHANNEL, shard) for shard in range(shards)]
    assert dag_ids[0] == "coupang_rocket_sales" and set(dag_ids) <= set(bag.dags)
    assert "coupang_jet_sales" in bag.dags and "coupang_jet_sales_shard_01" not in bag.dags

    limit = conf.getint("core", "max_map_length")
    assert limit == (map_limit or 1024)
    started = time.monotonic()
    seen: dict[str, str] = {}
    for shard, dag_id in enumerate(dag_ids):
        dag_run = bag.dags[dag_id].test(logical_date=dt.datetime(2026, 1, 8, 6, tzinfo=dt.UTC),
                                        mark_success_pattern=r"collect\..*|report")
        assert dag_run.state == "success", dag_id
        listed = listed_accounts(dag_run)
        assert 0 < len(listed) <= limit, f"{dag_id} maps {len(listed)} accounts"
        assert {shard_of(a, shards) for a in listed} == {shard}
        for account in listed:
            assert account not in seen, f"{account} is in {seen.get(account)} and {dag_id}"
            seen[account] = dag_id
        instances = dag_run.get_task_instances()
        for task_id in PER_ACCOUNT:
            mapped = sorted(ti.map_index for ti in instances if ti.task_id == task_id and ti.state == "success")
            assert mapped == list(range(len(listed))), f"{dag_id} {task_id}: {len(mapped)} of {len(listed)}"
        assert len([ti for ti in instances if ti.task_id in PER_ACCOUNT]) == len(PER_ACCOUNT) * len(listed)
    elapsed = time.monotonic() - started

    assert sorted(seen) == ids, "every active account, and only those, got its instances"
    print(f"\n{accounts} accounts over {shards} shards: {elapsed:.1f} s for the {shards} runs")
