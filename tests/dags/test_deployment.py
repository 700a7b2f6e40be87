"""docker-compose.yaml: the services of an Airflow 3 CeleryExecutor deployment, wired to the settings the code reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
PACKAGE = "\n".join(p.read_text() for p in (ROOT / "plugins" / "coupang_sales").rglob("*.py"))


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


def test_selenium_grid_has_shared_memory_and_managed_downloads():
    selenium = SERVICES["selenium"]
    node = (ROOT / selenium["build"]["context"] / selenium["build"]["dockerfile"]).read_text()
    assert "FROM selenium/standalone-chromium" in node
    assert selenium["shm_size"] and selenium["environment"]["SE_ENABLE_MANAGED_DOWNLOADS"] == "true"


@pytest.mark.parametrize("setting", ["SELENIUM_REMOTE_URL", "COUPANG_STAGING_DIR", "AIRFLOW_CONN_COUPANG_WAREHOUSE"])
def test_the_code_reads_the_settings_the_deployment_sets(setting):
    assert setting in env_of("airflow-worker")
    code_name = setting.replace("AIRFLOW_CONN_COUPANG_WAREHOUSE", "coupang_warehouse")
    assert code_name in PACKAGE, f"{code_name} is set by docker-compose.yaml but not read by the package"


def test_staging_is_one_volume_shared_by_every_worker():
    staging = env_of("airflow-worker")["COUPANG_STAGING_DIR"]
    volumes = SERVICES["airflow-worker"]["volumes"]
    assert any(v.endswith(f":{staging}") and not v.startswith(("./", "/")) for v in volumes)
    assert "staging" in COMPOSE["volumes"]


def test_init_creates_the_portal_pools_the_dags_use():
    init = "\n".join(SERVICES["airflow-init"]["command"])
    for pool in ("coupang_supplier_hub", "coupang_wing"):
        assert f"pools set {pool}" in init and '"coupang_{self.pool}"' in PACKAGE


def test_every_browser_has_a_korean_font():
    """Screenshots of the portals' Korean pages show text only where Chromium has a Korean font."""
    selenium = SERVICES["selenium"]
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


def test_browser_tasks_have_their_own_queue_and_worker_role():
    queue = env_of("airflow-browser-worker")["COUPANG_BROWSER_QUEUE"]
    assert "COUPANG_BROWSER_QUEUE" in PACKAGE
    assert SERVICES["airflow-browser-worker"]["command"] == f"celery worker --queues {queue}"
    assert SERVICES["airflow-worker"]["command"] == "celery worker --queues default"  # Airflow's default_queue
    for name in ("airflow-worker", "airflow-browser-worker"):
        assert "container_name" not in SERVICES[name], f"a fixed container name prevents --scale {name}=N"
        assert env_of(name)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


@pytest.mark.parametrize("setting", ["COUPANG_ROCKET_SHARDS", "COUPANG_JET_SHARDS"])
def test_shard_settings_are_common_to_every_component(setting):
    """The DAG ids depend on the shard count, so the DAG processor and every worker must agree on it."""
    for name in ("airflow-dag-processor", "airflow-scheduler", "airflow-worker", "airflow-browser-worker"):
        assert int(env_of(name)[setting]) >= 1, name
    assert 'f"COUPANG_{key}_SHARDS"' in PACKAGE, "dag_factory.shard_count reads COUPANG_<CHANNEL>_SHARDS"


def test_the_local_celery_run_uses_the_compose_queues():
    """tests/integration/test_celery.py runs the same two worker roles on this machine."""
    local = (ROOT / "tests" / "integration" / "test_celery.py").read_text()
    assert 'workers=("default", "browser")' in local
    assert '"COUPANG_BROWSER_QUEUE": "browser"' in local
    assert env_of("airflow-browser-worker")["COUPANG_BROWSER_QUEUE"] == "browser"
