# One-command recipes named in the README. Everything runs from the project's own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch must be installed before sentence-transformers, or pip pulls CUDA.
# Here `pip install torch==2.13.0` resolves to the CPU wheel; elsewhere set
# TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup run test test-fast lint bench bench-dedupe bench-dedupe-scale bench-dedupe-components bench-drift bench-features viz mlflow-ui jupyter api services-up services-down clean

setup:  ## create .venv, install CPU torch first, then the project with pinned versions
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel setuptools
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	@echo "set-up done: activate with 'source $(BIN)/activate'"

run:  ## the main job: every pipeline on embedded defaults
	$(BIN)/kedro run

test:  ## lint + the whole test suite (services tests skip with a reason when Redis/PostgreSQL are absent)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check src tests

bench: bench-dedupe bench-dedupe-scale bench-dedupe-components bench-drift bench-features

bench-dedupe:
	$(BIN)/python -m aietl_pipelines.benchmarks.dedupe

bench-dedupe-scale:
	$(BIN)/python -m aietl_pipelines.benchmarks.dedupe_scale

bench-dedupe-components:
	$(BIN)/python -m aietl_pipelines.benchmarks.dedupe_components

bench-drift:
	$(BIN)/python -m aietl_pipelines.benchmarks.drift

bench-features:
	$(BIN)/python -m aietl_pipelines.benchmarks.features

viz:
	$(BIN)/kedro viz run

mlflow-ui:
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

jupyter:
	$(BIN)/kedro jupyter lab

api:
	$(BIN)/uvicorn aietl_pipelines.api.app:app --host 127.0.0.1 --port 8000

services-up:
	docker compose --env-file .env up -d

services-down:
	docker compose down
