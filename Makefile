# One-command recipes named in the README. Everything runs from the project's own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch must be installed before sentence-transformers, or pip pulls CUDA.
# Here `pip install torch==2.13.0` resolves to the CPU wheel; elsewhere set
# TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup run test test-fast lint bench bench-dedupe bench-dedupe-scale bench-dedupe-components bench-dedupe-labels venv-dedupe bench-drift bench-features bench-api viz airflow-venv airflow-dag crontab notebook-filter mlflow-ui jupyter api metrics-secrets setup-system setup-java services-up services-down clean

setup: setup-system setup-java  ## create .venv, install CPU torch first, then the project with pinned versions
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel setuptools
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench,spark]"
	$(MAKE) --no-print-directory notebook-filter
	$(MAKE) --no-print-directory airflow-venv || echo "setup: .venv-airflow not built (offline?): the Airflow DagBag test will skip"
	@echo "set-up done: activate with 'source $(BIN)/activate'"

# Debian's prometheus + prometheus-pushgateway for tests/monitoring (skipped when not root, without apt-get
# or offline: those tests then skip with the reason).
# wrk: the API load benchmark (make bench-api)
APT_METRICS := prometheus prometheus-pushgateway wrk
setup-system:  ## Debian packages the tests use, when root
	@if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "setup-system: not root or no apt-get: skipping $(APT_METRICS) (their tests will skip)"; \
	elif command -v promtool >/dev/null && command -v prometheus-pushgateway >/dev/null && command -v wrk >/dev/null; then \
	  echo "setup-system: $(APT_METRICS) already installed"; \
	else \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { flock /tmp/aietl-apt.lock apt-get install -y -q --no-install-recommends $(APT_METRICS) \
	    || { flock /tmp/aietl-apt.lock apt-get update -q && flock /tmp/aietl-apt.lock apt-get install -y -q --no-install-recommends $(APT_METRICS); }; } \
	    || echo "setup-system: could not install $(APT_METRICS) (offline?): their tests will skip"; \
	fi

# Java 17 for pyspark (Spark tests and `kedro run --env spark`); the Spark tests skip with the reason without it.
setup-java:  ## Debian's openjdk-17-jre-headless when java is missing, when root
	@if command -v java >/dev/null || [ -n "$$JAVA_HOME" ]; then \
	  echo "setup-java: java present"; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "setup-java: no java and not root: install Java 17 yourself (Spark tests will skip)"; \
	else \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { flock /tmp/aietl-apt.lock apt-get install -y -q --no-install-recommends openjdk-17-jre-headless \
	    || { flock /tmp/aietl-apt.lock apt-get update -q && flock /tmp/aietl-apt.lock apt-get install -y -q --no-install-recommends openjdk-17-jre-headless; }; } \
	    || echo "setup-java: could not install openjdk-17-jre-headless (offline?): Spark tests will skip"; \
	fi

run:  ## the main job: every pipeline on embedded defaults
	$(BIN)/kedro run

test:  ## lint + the whole test suite (services tests skip with a reason when Redis/PostgreSQL are absent)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check src tests

bench: bench-dedupe bench-dedupe-scale bench-dedupe-components bench-drift bench-features bench-api

bench-dedupe:
	$(BIN)/python -m aietl_pipelines.benchmarks.dedupe

bench-dedupe-scale:
	$(BIN)/python -m aietl_pipelines.benchmarks.dedupe_scale

bench-dedupe-components:
	$(BIN)/python -m aietl_pipelines.benchmarks.dedupe_components

venv-dedupe:  ## the `dedupe` library 3.0.3 in its own virtualenv (its pins clash with ours), for bench-dedupe-labels
	test -x .venv-dedupe/bin/python || $(PYTHON) -m venv .venv-dedupe
	.venv-dedupe/bin/python -m pip install --quiet "dedupe==3.0.3" "pandas==2.3.3" "BTrees==6.1"  # BTrees 6.2+ drop IFBucket.byValue, which dedupe 3.0.3 calls

bench-dedupe-labels:  ## labelled mode (20 answers from active learning) beside the dedupe library (skipped without .venv-dedupe)
	$(BIN)/python -m aietl_pipelines.benchmarks.dedupe_labels

bench-drift:
	$(BIN)/python -m aietl_pipelines.benchmarks.drift

bench-features:
	$(BIN)/python -m aietl_pipelines.benchmarks.features

bench-api:  ## wrk against uvicorn on 127.0.0.1: /features/online and /vector-search/duplicates (100K)
	$(BIN)/python -m aietl_pipelines.benchmarks.api_load

viz:  ## kedro-viz on http://127.0.0.1:4141: every pipeline, node and dataset
	$(BIN)/kedro viz run

# The schedule (docs/operations.md): one Airflow DAG per pipeline, cadence from conf/base/airflow.yml.
AIRFLOW_PIPELINES ?= dedupe,drift_monitoring,feature_engineering,retraining
AIRFLOW_ENV       ?= local
AIRFLOW_DAGS      ?= airflow_dags
airflow-venv:  ## Apache Airflow in .venv-airflow (its pins clash with the project's): DagBag test, a local Airflow
	test -x .venv-airflow/bin/python || $(PYTHON) -m venv .venv-airflow
	.venv-airflow/bin/python -m pip install --quiet --upgrade "pip>=24"
	.venv-airflow/bin/python -m pip install --quiet -c constraints-airflow.txt "apache-airflow==3.3.2"

airflow-dag:  ## write the DAGs of $(AIRFLOW_PIPELINES) into $(AIRFLOW_DAGS)/ (kedro-airflow, deploy/airflow/dag_template.j2)
	$(BIN)/kedro airflow create --pipelines $(AIRFLOW_PIPELINES) --env $(AIRFLOW_ENV) --group-by memory \
	  --jinja-file deploy/airflow/dag_template.j2 --target-dir $(AIRFLOW_DAGS) \
	  --params "project_path=$(CURDIR),kedro_bin=$(CURDIR)/$(BIN)/kedro"

crontab:  ## the same schedule as crontab lines, for a machine without Airflow
	@$(BIN)/kedro airflow crontab --env $(AIRFLOW_ENV) | grep -E '^(#|@|[0-9*])'  # the lines, without Kedro's log

# Notebook outputs never reach git: nbstripout as the git filter of *.ipynb (.gitattributes) in this clone.
notebook-filter:
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean "$(CURDIR)/$(BIN)/nbstripout --keep-id" && git config filter.nbstripout.smudge cat && \
	  git config diff.ipynb.textconv "$(CURDIR)/$(BIN)/nbstripout -t" && echo "notebook-filter: nbstripout set as the git filter of *.ipynb"; \
	else echo "notebook-filter: not a git clone, nothing to do"; fi

mlflow-ui:
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

jupyter:  ## JupyterLab on the notebooks; the kernel runs in notebooks/, so MLflow's sqlite store is given absolute
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} $(BIN)/kedro jupyter lab

API_HOST ?= 127.0.0.1
API_PORT ?= 8000
# TLS when AIETL_TLS_CERT and AIETL_TLS_KEY name a certificate and its key (PEM)
api:
	$(BIN)/uvicorn aietl_pipelines.api.app:app --host $(API_HOST) --port $(API_PORT) \
	  $(if $(AIETL_TLS_CERT),--ssl-certfile "$(AIETL_TLS_CERT)" --ssl-keyfile "$(AIETL_TLS_KEY)")

metrics-secrets:  ## deploy/secrets/ for docker-compose: TLS cert, Prometheus web.yml, scrape credentials
	$(BIN)/python -m aietl_pipelines.monitoring.webconfig

services-up:
	test -f deploy/secrets/web.yml || $(MAKE) metrics-secrets
	docker compose --env-file .env up -d

services-down:
	docker compose down
