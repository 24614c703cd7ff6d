# Every target sets itself up from nothing: a fresh clone needs only python3 (3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench-quality bench-export bench-recbole clean

$(STAMP): pyproject.toml constraints.txt setup.py recsys_lib/search/_fused_scan.cpp
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

## demo: start local S3 + MLflow, generate a shop, run the recsys_retrain DAG, print where to look
demo: $(STAMP)
	$(BIN)/recsys demo $(DEMO_ARGS)

## test: the whole suite (unit, DAG integrity, end to end with real Airflow, MLflow and S3 processes)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench-quality: every model on Amazon Beauty and UCI Online Retail (../shared/datasets); ~85 min on 2 cores
bench-quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py $(BENCH_ARGS)

## bench-export: our batch export vs faiss-cpu vs the matmul bound, 100k and 1M users; ~6 min on 2 cores
bench-export: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/export.py $(BENCH_ARGS)

## bench-recbole: our SASRec vs RecBole 1.2.1's (installed into .venv-recbole), one run; ~25 min on 2 cores
bench-recbole: $(STAMP)
	$(BIN)/python benchmarks/recbole_speed.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check recsys_lib dags tests benchmarks
	$(BIN)/ruff format --check recsys_lib dags tests benchmarks
	$(BIN)/mypy recsys_lib
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf .demo .pytest_cache
