"""The sign-in DAGs' shape and policies (docs/operating.md, "Sign-ons and browser profiles")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIGN_IN_DAGS = {"coupang_rocket_sign_in": "coupang_supplier_hub", "coupang_jet_sign_in": "coupang_wing"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.mark.parametrize("dag_id", SIGN_IN_DAGS)
def test_a_sign_in_dag_per_channel_with_its_portal_pool(dagbag, dag_id):
    from airflow.providers.standard.operators.hitl import HITLEntryOperator

    dag = dagbag.dags[dag_id]
    assert dag.schedule is None and dag.doc_md and len(dag.doc_md) > 200
    assert {"coupang", "sign-in"} <= set(dag.tags)
    assert set(dag.params) == {"channel", "account"}
    assert sorted(dag.task_ids) == ["ask_code_1", "ask_code_2", "ask_code_3", "sign_in"]
    sign_in = dag.get_task("sign_in")
    assert sign_in.pool == SIGN_IN_DAGS[dag_id], "the browser task holds the portal's pool"
    assert sign_in.retries == 0, "a retry would send the seller another SMS"
    assert sign_in.execution_timeout >= dt.timedelta(minutes=3 * 5)
    assert not sign_in.upstream_task_ids and not sign_in.downstream_task_ids, "beside the asks, not in line"
    for k in (1, 2, 3):
        ask = dag.get_task(f"ask_code_{k}")
        assert isinstance(ask, HITLEntryOperator)
        assert ask.options == ["Submit code"] and ask.defaults is None, "no default: an unanswered form times out"
        assert set(ask.params) == {"code"} and ask.response_timeout == dt.timedelta(minutes=5)
        assert ask.upstream_task_ids == ({f"ask_code_{k - 1}"} if k > 1 else set())
    for t in dag.tasks:
        assert t.owner == "data-engineering" and t.doc_md, t.task_id


def test_the_settings_shape_the_dag(monkeypatch):
    from coupang_sales.airflow_glue.sign_in_dag import build_sign_in_dag
    from coupang_sales.jet.channel import JET

    monkeypatch.setenv("COUPANG_SIGN_IN_CODE_ATTEMPTS", "2")
    monkeypatch.setenv("COUPANG_SIGN_IN_CODE_WAIT_MINUTES", "0.5")
    dag = build_sign_in_dag(JET)
    assert sorted(dag.task_ids) == ["ask_code_1", "ask_code_2", "sign_in"]
    assert dag.get_task("ask_code_2").response_timeout == dt.timedelta(seconds=30)
