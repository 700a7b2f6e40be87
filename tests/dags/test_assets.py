"""The Assets the load tasks update, and the example consumer of docs/assets.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.mark.parametrize(("dag_id", "names"), [
    ("coupang_rocket_sales", {"coupang_sales.order_lines"}),
    ("coupang_jet_sales", {"coupang_sales.order_lines", "coupang_sales.account_fees"}),
])
def test_only_the_load_declares_the_warehouse_assets(dagbag, dag_id, names):
    from airflow.sdk import Asset

    dag = dagbag.dags[dag_id]
    declared = {t.task_id: {o.name for o in t.outlets if isinstance(o, Asset)} for t in dag.tasks}
    assert declared.pop("collect.load") == names
    assert not any(declared.values()), "only the load writes the warehouse's sales"
    for outlet in dag.get_task("collect.load").outlets:
        assert re.fullmatch(r"postgres://[^/]+:\d+/[^/]+/sales/(order_lines|account_fees)", outlet.uri)


def test_the_asset_uris_follow_the_deployments_warehouse(monkeypatch):
    from coupang_sales.airflow_glue.assets import order_lines_asset

    monkeypatch.setenv("COUPANG_WAREHOUSE_ASSET_BASE", "postgres://dw.example.internal/analytics")
    asset = order_lines_asset()
    assert asset.uri == "postgres://dw.example.internal:5432/analytics/sales/order_lines"
    assert asset.name == "coupang_sales.order_lines"


def test_the_documented_consumer_is_scheduled_on_fresh_sales(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    doc = (ROOT / "docs" / "assets.md").read_text(encoding="utf-8")
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", doc, flags=re.S) if "@dag" in block]
    (tmp_path / "consumer.py").write_text(code, encoding="utf-8")
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    consumer = bag.dags["coupang_daily_sales_mart"]
    refs = list(consumer.timetable.asset_condition.objects)
    assert [ref.name for ref in refs] == ["coupang_sales.order_lines"]
