"""Sharding a channel's accounts over several DAGs: a stable, balanced, consistent hash of the account id."""

from __future__ import annotations

import pytest

from coupang_sales.shards import jump_hash, shard_of

IDS = [f"V{n:08d}" for n in range(1, 10_001)]


def test_every_account_has_one_shard_in_range_and_one_shard_means_shard_0():
    assert {shard_of(a, 1) for a in IDS[:100]} == {0}
    assert {shard_of(a, 16) for a in IDS} == set(range(16))


def test_the_shard_of_an_account_never_changes():
    """A DAG's accounts must not move between processes or machines: SHA-256 based, not the salted hash()."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    plugins = str(Path(__file__).resolve().parents[2] / "plugins")
    other = subprocess.run([sys.executable, "-c", "from coupang_sales.shards import shard_of; "
                            "print([shard_of(f'V{n:08d}', 8) for n in range(1, 50)])"],
                           capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": plugins})
    assert other.stdout.strip() == str([shard_of(f"V{n:08d}", 8) for n in range(1, 50)])


def test_ten_thousand_accounts_split_evenly_enough_to_stay_under_the_mapping_limit():
    counts = [0] * 16
    for account in IDS:
        counts[shard_of(account, 16)] += 1
    assert max(counts) < 1024 and min(counts) > 0.8 * 10_000 / 16, counts


def test_adding_a_shard_moves_only_accounts_to_the_new_shard():
    moved = [a for a in IDS if shard_of(a, 10) != shard_of(a, 11)]
    assert {shard_of(a, 11) for a in moved} == {10}
    assert len(moved) < 0.15 * len(IDS)  # about 1/11; a modulo would move about 10/11


def test_zero_shards_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        jump_hash(5, 0)


def test_shard_count_and_dag_ids(monkeypatch):
    from coupang_sales.airflow_glue.dag_factory import shard_count, shard_dag_id

    monkeypatch.delenv("COUPANG_SHARDS", raising=False)
    monkeypatch.delenv("COUPANG_ROCKET_SHARDS", raising=False)
    assert shard_count("coupang_rocket") == 1
    monkeypatch.setenv("COUPANG_SHARDS", "3")
    monkeypatch.setenv("COUPANG_ROCKET_SHARDS", "12")
    assert (shard_count("coupang_rocket"), shard_count("coupang_jet")) == (12, 3)
    monkeypatch.setenv("COUPANG_ROCKET_SHARDS", "0")
    with pytest.raises(ValueError, match="COUPANG_ROCKET_SHARDS"):
        shard_count("coupang_rocket")
    assert shard_dag_id("coupang_rocket", 0) == "coupang_rocket_sales"
    assert shard_dag_id("coupang_jet", 3) == "coupang_jet_sales_shard_03"


def test_a_shard_above_the_mapping_limit_fails_naming_the_setting_to_raise():
    from airflow.sdk.exceptions import AirflowFailException

    from coupang_sales.airflow_glue.dag_factory import check_map_length

    check_map_length("coupang_jet", 2, 1024)
    with pytest.raises(AirflowFailException, match=r"1500 active coupang_jet .* max_map_length 1024: "
                                                   r"set COUPANG_JET_SHARDS to 4 or more"):
        check_map_length("coupang_jet", 2, 1500)
