# Single entry point. `make demo` and `make test` each run `setup` first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := docker-registry skopeo
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# jsii refuses to stay quiet about an end-of-life Node unless its major version is listed here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 18,20
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup apt-packages demo test test-unit test-integration test-infrastructure test-e2e lint synth bench soak clean

setup: apt-packages $(VENV)/.installed

apt-packages:
	@missing=""; for p in $(APT_PACKAGES); do [ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = "install ok installed" ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cdk]'
	touch $@

demo: setup
	$(BIN)/ecr-replicate demo

# Every suite in parallel (pytest-xdist; tests/conftest.py groups what shares a process), then the IAM coverage
# test, which checks every AWS call those suites recorded: in a run of its own, after them, reading the same
# records folder.
IAM_COVERAGE := tests/iam/test_iam_coverage.py
test: setup
	records="$$(mktemp -d -t iam-calls-XXXXXX)" && \
	ECR_REPLICATE_IAM_RECORDS="$$records" $(BIN)/pytest -n auto --dist loadgroup --no-loadscope-reorder tests --deselect $(IAM_COVERAGE) && \
	ECR_REPLICATE_IAM_RECORDS="$$records" $(BIN)/pytest $(IAM_COVERAGE)

test-unit: setup
	$(BIN)/pytest tests/unit

test-integration: setup
	$(BIN)/pytest tests/integration

test-infrastructure: setup
	$(BIN)/pytest tests/infrastructure

test-e2e: setup
	$(BIN)/pytest tests/e2e

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# make synth [CONFIG=path/to/replication.yaml] [OUT=cdk.out]: the templates of exactly the stacks this config
# produces (templates of destinations no longer configured are removed first; bundled assets stay cached).
CONFIG ?= examples/replication.yaml
OUT ?= cdk.out
synth: setup
	rm -f $(OUT)/*.template.json $(OUT)/*.assets.json $(OUT)/*.metadata.json
	CDK_OUTDIR='$(abspath $(OUT))' CDK_CONTEXT_JSON='{"config": "$(abspath $(CONFIG))"}' $(BIN)/python -m infra.app

bench: setup
	$(BIN)/python bench/copy_vs_skopeo.py --runs 5 --sizes-mb 16 32
	$(BIN)/python bench/sync_dry_run.py

# A few minutes: many executions at once in the local runtime with random registry faults (not in `make test`).
soak: setup
	$(BIN)/python bench/soak.py

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
