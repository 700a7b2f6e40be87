"""DagBag import test and the policies every DAG of the package must follow."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_IDS = ("coupang_rocket_sales", "coupang_jet_sales")
HEAVY = ("pandas", "great_expectations", "selenium", "psycopg", "psycopg2", "numpy", "openpyxl",
         "python_calamine")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_present_with_policy(dagbag, dag_id):
    dag = dagbag.dags.get(dag_id)
    assert dag is not None, f"{dag_id} missing from dags/"
    assert dag.doc_md and len(dag.doc_md) > 200
    assert {"sales", "coupang"} <= set(dag.tags)
    assert dag.timezone.name == "Asia/Seoul"
    for t in dag.tasks:
        assert t.owner == "data-engineering", t.task_id
        assert t.retries >= 1, t.task_id
        assert t.doc_md, f"{t.task_id} has no doc_md"
        if t.task_id == "report":  # it fails the run when an account failed, which has alerted already
            assert not t.on_failure_callback and t.trigger_rule == "all_done"
        else:
            assert t.on_failure_callback, f"{t.task_id} sends no alert on failure"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_report_runs_after_every_collection(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.get_task("report").upstream_task_ids >= {"list_accounts", "collect.load"}
    assert [t.task_id for t in dag.leaves] == ["report"], "the report decides the run's state"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_extract_validate_transform_load_per_account(dagbag, dag_id):
    dag = dagbag.dags.get(dag_id)
    ids = set(dag.task_ids)
    assert {"list_accounts", "collect.extract", "collect.validate", "collect.transform", "collect.load"} <= ids
    assert "collect.validate" in dag.get_task("collect.extract").downstream_task_ids
    assert "collect.transform" in dag.get_task("collect.validate").downstream_task_ids
    assert "collect.load" in dag.get_task("collect.transform").downstream_task_ids


def test_rocket_checks_run_before_extract(dagbag):
    dag = dagbag.dags["coupang_rocket_sales"]
    assert dag.get_task("collect.check_sub_account_expiry").downstream_task_ids == {"collect.check_tax_invoice_block"}
    assert dag.get_task("collect.check_tax_invoice_block").downstream_task_ids == {"collect.extract"}


def test_parsing_dags_imports_nothing_heavy():
    """Loading dags/ in a fresh interpreter must not import pandas, GX, selenium or a DB driver."""
    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; "
        f"b = DagBag(dag_folder={str(ROOT / 'dags')!r}); assert not b.import_errors, b.import_errors; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__('os').environ, "PYTHONPATH": str(ROOT / "plugins")})
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), f"heavy modules imported: {out.stdout.strip()}"


@pytest.mark.parametrize(("dag_id", "pool"), [("coupang_rocket_sales", "coupang_supplier_hub"),
                                              ("coupang_jet_sales", "coupang_wing")])
def test_browser_tasks_share_the_portal_pool(dagbag, dag_id, pool):
    dag = dagbag.dags[dag_id]
    browser_tasks = [t for t in dag.tasks if t.task_id in (
        "collect.extract", "collect.check_sub_account_expiry", "collect.check_tax_invoice_block")]
    assert browser_tasks and {t.pool for t in browser_tasks} == {pool}
    # a backstop beyond the per-page timeouts: no browser task can hold a pool slot for ever
    assert {t.execution_timeout for t in browser_tasks} == {dt.timedelta(hours=3)}


@pytest.mark.parametrize("dag_id", ["coupang_rocket_sales", "coupang_jet_sales"])
def test_the_load_task_is_bounded(dagbag, dag_id):
    """Its statements are bounded by lock_timeout and statement_timeout; the task by execution_timeout."""
    load = dagbag.dags[dag_id].get_task("collect.load")
    assert load.execution_timeout == dt.timedelta(minutes=60)


def test_sharded_channels_keep_the_product_dag_id_and_the_portal_pool(monkeypatch):
    """COUPANG_ROCKET_SHARDS=3: coupang_rocket_sales and two more DAGs, all on the one Supplier Hub pool;
    COUPANG_BROWSER_QUEUE puts the browser tasks, and only them, on that queue."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("COUPANG_ROCKET_SHARDS", "3")
    monkeypatch.setenv("COUPANG_BROWSER_QUEUE", "browser")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    assert set(bag.dags) == {"coupang_rocket_sales", "coupang_rocket_sales_shard_01", "coupang_rocket_sales_shard_02",
                             "coupang_jet_sales", "coupang_rocket_sign_in", "coupang_jet_sign_in"}
    browser = {"collect.extract", "collect.check_sub_account_expiry", "collect.check_tax_invoice_block", "sign_in"}
    for dag_id, dag in bag.dags.items():
        for t in dag.tasks:
            assert t.queue == ("browser" if t.task_id in browser else "default"), (dag_id, t.task_id)
            if t.task_id in browser:
                assert t.pool == ("coupang_supplier_hub" if "rocket" in dag_id else "coupang_wing")
    assert "Shard 2 of 3" in bag.dags["coupang_rocket_sales_shard_01"].doc_md


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_a_manual_run_of_old_history_gets_every_task(dagbag, dag_id):
    """Airflow creates no task instance for a (non-backfill) run whose logical date is before a task's
    start_date, and the run then succeeds having collected nothing (issue #28, item 4): every task
    starts before any Coupang seller's history, so a manual run of a 2015 or 2025 date runs in full."""
    import pendulum

    dag = dagbag.dags[dag_id]
    for logical in (pendulum.datetime(2015, 3, 1, 6, tz="Asia/Seoul"), pendulum.datetime(2025, 12, 20, 6,
                                                                                         tz="Asia/Seoul")):
        assert all(t.start_date is None or t.start_date <= logical for t in dag.tasks), logical
    assert not dag.catchup, "an early start_date must not make the scheduler create a run per past day"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_tags_come_from_the_one_enumeration(dagbag, dag_id):
    """Every tag is a ``coupang_sales.channel.Tag``: a filter in the UI finds every DAG it should."""
    from coupang_sales.channel import Tag

    tags = set(dagbag.dags[dag_id].tags)
    assert tags <= {tag.value for tag in Tag}, f"tags outside coupang_sales.channel.Tag: {tags - set(Tag)}"


@pytest.mark.parametrize("dag_id", (*DAG_IDS, "coupang_rocket_sign_in", "coupang_jet_sign_in"))
def test_the_docstring_names_owner_code_and_consumers(dagbag, dag_id):
    """The DAG's page says who owns it, where its code lives and who reads what it writes."""
    doc = dagbag.dags[dag_id].doc_md
    for heading in ("**Owner:**", "**Code:**", "**Consumers:**"):
        assert heading in doc, f"{dag_id}'s docstring has no {heading}"
    owner = doc.split("**Owner:**", 1)[1].split()[0]
    assert {t.owner for t in dagbag.dags[dag_id].tasks} == {owner}, "the docstring's owner is the tasks' owner"
    code = doc.split("**Code:**", 1)[1].split("**Consumers:**", 1)[0]
    for path in (part.strip("`") for part in code.split() if part.startswith("`plugins/")):
        assert (ROOT / path).exists(), f"{dag_id}'s docstring names {path}, which does not exist"


def test_the_dag_files_build_from_a_channel_value():
    """A DAG file is a docstring and ``build_channel_dags(<Channel>, doc_md=__doc__)`` (or, for the sign-in
    DAGs, ``build_sign_in_dag(<Channel>, doc_md=__doc__)`` per channel): no channel by name."""
    import ast

    for path in sorted((ROOT / "dags").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and ast.unparse(node.func) in ("build_channel_dags", "build_sign_in_dag")]
        assert calls and len({ast.unparse(call.func) for call in calls}) == 1, path.name
        for call in calls:
            assert isinstance(call.args[0], ast.Name) and call.args[0].id in ("ROCKET", "JET"), path.name
            assert [ast.unparse(k.value) for k in call.keywords if k.arg == "doc_md"] == ["__doc__"], path.name
