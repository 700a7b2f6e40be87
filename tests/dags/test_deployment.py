"""docker-compose.yaml: the services of an Airflow 3 CeleryExecutor deployment, wired to the settings the code reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
CHANNELS = ("ROCKET", "JET")


def channel(name: str):
    """The ``Channel`` value of ``coupang_sales.rocket.channel.ROCKET`` or ``coupang_sales.jet.channel.JET``."""
    if name == "ROCKET":
        from coupang_sales.rocket.channel import ROCKET

        return ROCKET
    from coupang_sales.jet.channel import JET

    return JET


def built(name: str):
    """The channel's DAGs as the DAG processor builds them, with the environment the test set."""
    from coupang_sales.airflow_glue.dag_factory import build_channel_dags

    return build_channel_dags(channel(name), doc_md="test")


def environment_reads(name: str) -> bool:
    """Whether a module of the package reads the environment variable ``name`` (``os.environ.get(name)``,
    ``os.environ[name]``, ``os.getenv(name)``): the call, parsed, not a mention in a docstring."""
    import ast

    for path in (ROOT / "plugins" / "coupang_sales").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            key = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                callee = ast.unparse(node.func)
                if callee in ("os.environ.get", "os.getenv", "environ.get"):
                    key = node.args[0].value
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ") \
                    and isinstance(node.slice, ast.Constant):
                key = node.slice.value
            if key == name:
                return True
    return False


def env_of(service: str) -> dict:
    return SERVICES[service].get("environment", {})


def test_all_airflow_components_and_backing_services_exist():
    assert {"postgres", "warehouse", "redis", "selenium", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-init", "sandbox"} <= set(SERVICES)
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert SERVICES[name]["command"].split()[0] in ("api-server", "scheduler", "dag-processor", "triggerer")


def test_workers_scale_out_with_celery():
    worker = SERVICES["airflow-worker"]
    assert worker["command"].split()[:2] == ["celery", "worker"]
    assert "container_name" not in worker, "a fixed container name prevents --scale airflow-worker=N"
    assert env_of("airflow-worker")["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env_of("airflow-worker")["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")


def test_image_is_built_from_the_official_airflow_image_with_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile and "requirements.txt" in dockerfile
    assert SERVICES["airflow-scheduler"]["build"] == "."


def grid_nodes() -> dict[str, dict]:
    return {name: service for name, service in SERVICES.items() if name.startswith("selenium-node-")}


def test_selenium_grid_has_shared_memory_and_managed_downloads():
    assert SERVICES["selenium"]["image"].startswith("selenium/hub")
    for node in grid_nodes().values():
        dockerfile = (ROOT / node["build"]["context"] / node["build"]["dockerfile"]).read_text()
        assert "FROM selenium/node-chromium" in dockerfile
        assert node["shm_size"] and node["environment"]["SE_ENABLE_MANAGED_DOWNLOADS"] == "true"
        assert node["environment"]["SE_EVENT_BUS_HOST"] == "selenium"


def test_one_grid_node_per_egress_route_one_session_each():
    """Each route of COUPANG_ROUTES is a node whose stereotype carries it, and holds one seller at a time."""
    import json

    from coupang_sales.portal.routes import GRID_ROUTE_CAPABILITY, parse_routes

    routes = parse_routes(env_of("airflow-worker")["COUPANG_ROUTES"])
    stereotypes = {json.loads(node["environment"]["SE_NODE_STEREOTYPE_EXTRA"])[GRID_ROUTE_CAPABILITY]: node
                   for node in grid_nodes().values()}
    assert len(routes) >= 2 and {route.grid_node for route in routes} == set(stereotypes)
    assert all(node["environment"]["SE_NODE_MAX_SESSIONS"] == "1" for node in stereotypes.values())
    assert env_of("airflow-worker")["COUPANG_SHARED_BROWSER"] == "true"


def test_the_code_reads_the_settings_the_deployment_sets(tmp_path, monkeypatch):
    worker = env_of("airflow-worker")
    assert {"SELENIUM_REMOTE_URL", "COUPANG_STAGING_DIR", "AIRFLOW_CONN_COUPANG_WAREHOUSE"} <= set(worker)
    from coupang_sales.airflow_glue.staging import staging_root
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook

    monkeypatch.setenv("COUPANG_STAGING_DIR", str(tmp_path))
    assert staging_root().path.rstrip("/") == str(tmp_path), "COUPANG_STAGING_DIR is the staging root"
    assert WarehouseHook().conn_id == "coupang_warehouse", "AIRFLOW_CONN_COUPANG_WAREHOUSE is the warehouse's"
    assert environment_reads("SELENIUM_REMOTE_URL"), "the portal hook reads SELENIUM_REMOTE_URL"


def test_staging_is_one_volume_shared_by_every_worker():
    staging = env_of("airflow-worker")["COUPANG_STAGING_DIR"]
    volumes = SERVICES["airflow-worker"]["volumes"]
    assert any(v.endswith(f":{staging}") and not v.startswith(("./", "/")) for v in volumes)
    assert "staging" in COMPOSE["volumes"]


@pytest.mark.parametrize("name", CHANNELS)
def test_init_creates_the_portal_pools_the_dags_use(name, monkeypatch):
    monkeypatch.delenv(f"COUPANG_{channel(name).pool.upper()}_POOL", raising=False)
    init = "\n".join(SERVICES["airflow-init"]["command"])
    pools = {task.pool for dag in built(name) for task in dag.tasks} - {"default_pool"}
    assert pools, "the browser tasks have a pool of their own"
    for pool in pools:
        assert f"pools set {pool} " in init, f"{pool} is used by {name}'s tasks but not created by airflow-init"


def test_every_browser_has_a_korean_font():
    """Screenshots of the portals' Korean pages show text only where Chromium has a Korean font."""
    selenium = next(iter(grid_nodes().values()))
    node = (ROOT / selenium["build"]["context"] / selenium["build"]["dockerfile"]).read_text()
    for where, text in (("the Grid node", node), ("the Airflow image", (ROOT / "Dockerfile").read_text()),
                        ("scripts/setup.sh", (ROOT / "scripts" / "setup.sh").read_text())):
        assert "fonts-noto-cjk" in text, f"{where} installs no Korean font"


def test_sandbox_is_an_optional_profile():
    assert SERVICES["sandbox"]["profiles"] == ["sandbox"]


def test_init_migrates_the_warehouse_schema_once_per_deploy():
    init = "\n".join(SERVICES["airflow-init"]["command"])
    assert "python -m coupang_sales.warehouse.migrate" in init
    assert (ROOT / "plugins" / "coupang_sales" / "warehouse" / "migrate.py").exists()
    assert {"AIRFLOW_CONN_COUPANG_WAREHOUSE", "PYTHONPATH"} <= set(env_of("airflow-init"))
    assert SERVICES["airflow-init"]["depends_on"]["warehouse"]["condition"] == "service_healthy"


def test_browser_tasks_have_their_own_queue_and_worker_role(monkeypatch):
    queue = env_of("airflow-browser-worker")["COUPANG_BROWSER_QUEUE"]
    monkeypatch.setenv("COUPANG_BROWSER_QUEUE", queue)
    [dag] = built("ROCKET")
    browser_tasks = {t.task_id for t in dag.tasks if t.queue == queue}
    assert browser_tasks == {"collect.check_sub_account_expiry", "collect.check_tax_invoice_block",
                             "collect.extract"}, "the browser tasks, and only they, go to the browser queue"
    assert SERVICES["airflow-browser-worker"]["command"] == f"celery worker --queues {queue}"
    assert SERVICES["airflow-worker"]["command"] == "celery worker --queues default"  # Airflow's default_queue
    for name in ("airflow-worker", "airflow-browser-worker"):
        assert "container_name" not in SERVICES[name], f"a fixed container name prevents --scale {name}=N"
        assert env_of(name)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


@pytest.mark.parametrize("name", CHANNELS)
def test_shard_settings_are_common_to_every_component(name, monkeypatch):
    """The DAG ids depend on the shard count, so the DAG processor and every worker must agree on it."""
    setting = f"COUPANG_{name}_SHARDS"
    for service in ("airflow-dag-processor", "airflow-scheduler", "airflow-worker", "airflow-browser-worker"):
        assert int(env_of(service)[setting]) >= 1, service
    monkeypatch.setenv(setting, "3")
    stem = channel(name).dag_id
    assert [dag.dag_id for dag in built(name)] == [stem, f"{stem}_shard_01", f"{stem}_shard_02"], \
        f"{setting} is the number of the channel's DAGs"


def test_the_local_celery_run_uses_the_compose_queues():
    """tests/integration/test_celery.py runs the same two worker roles on this machine."""
    local = (ROOT / "tests" / "integration" / "test_celery.py").read_text()
    assert 'workers=("default", "browser")' in local
    assert '"COUPANG_BROWSER_QUEUE": "browser"' in local
    assert env_of("airflow-browser-worker")["COUPANG_BROWSER_QUEUE"] == "browser"
