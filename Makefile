# The project's commands. `make demo` and `make test` are the two a new user needs.
SHELL := /bin/bash
PY := .venv/bin/python
SCENARIO ?= include/sandbox/scenarios/demo.json
FROM ?=
TO ?=
WAREHOUSE_DSN ?=
# pytest-xdist processes for `make test`; each has its own PostgreSQL, Airflow home and sandboxes
TEST_WORKERS ?= 4

.PHONY: setup demo test celery scale routes airflow lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py --scenario "$(SCENARIO)" \
		$(if $(FROM),--from "$(FROM)") $(if $(TO),--to "$(TO)") \
		$(if $(WAREHOUSE_DSN),--warehouse-dsn "$(WAREHOUSE_DSN)")

test: setup
	@$(PY) -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

# Both DAGs under the CeleryExecutor on this machine (Redis, API server, scheduler, two workers): a few minutes.
celery: setup
	@$(PY) -m pytest -p no:cacheprovider -m celery -s tests/integration/test_celery.py

# 2,000 active accounts over 4 shard DAGs, browser work marked done: every account gets its instances.
scale: setup
	@$(PY) -m pytest -p no:cacheprovider -m scale -s tests/integration/test_many_accounts.py

# Nine Rocket accounts over three egress routes (forward proxies on 127.0.0.41-43), pool 3, a real scheduler.
routes: setup
	@$(PY) -m pytest -p no:cacheprovider -m routes -s tests/integration/test_shared_sessions_scheduler.py

airflow: setup
	@$(PY) scripts/airflow_ui.py --scenario "$(SCENARIO)"

bench: setup
	@$(PY) bench/run.py $(if $(QUICK),--quick)

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff check --select AIR .
