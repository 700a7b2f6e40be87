"""A Rocket run staging on an object store (not a local folder) through ObjectStoragePath, in Parquet."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from one_invoice import SCENARIO

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat


@pytest.fixture
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


def test_a_run_stages_on_an_object_store_in_parquet_and_cleans_up_old_runs(collection_dag, portal, warehouse,
                                                                           monkeypatch):
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())  # any fsspec store a provider registers (s3, gs) works the same way
    url = f"memory://staging-{uuid.uuid4().hex}"
    monkeypatch.setenv("COUPANG_STAGING_URL", url)
    root = ObjectStoragePath(url)
    expired = root / "coupang_rocket_sales" / "scheduled__2025-01-01" / "V00000001" / "raw"
    expired.mkdir(parents=True, exist_ok=True)
    (expired / "facts.parquet").write_bytes(b"a year old")

    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    monkeypatch.setenv("COUPANG_STAGING_RETENTION_DAYS", "0")  # everything before this run is expired
    run = dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))
    assert run.state == "success"
    assert warehouse.execute("SELECT order_id, payment_amount FROM sales.order_lines").fetchall() == [
        ("100000001", 19_800)]

    runs = [p.name for p in (root / "coupang_rocket_sales").iterdir()]
    assert runs == [run.run_id.replace(":", "_").replace("+", "_")], "the old run removed, this one kept"
    account = root / "coupang_rocket_sales" / runs[0] / "V00000001"
    staged = sorted(str(p.relative_to(account)) for p in account.rglob("*") if p.is_file())
    for name in ("raw/invoices.parquet", "raw/lines.parquet", "raw/facts.parquet", "raw/order_lines.parquet",
                 "raw/receive_detail_30000001.json", "raw/quality_result.json", "browser_use.json"):
        assert name in staged, staged
    assert not [name for name in staged if name.endswith((".pkl", ".pickle")) or name.startswith("downloads/")]
