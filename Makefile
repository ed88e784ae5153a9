# Single entry point. `make demo` and `make test` each run `setup` first.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# What the tests and the demo run besides Python: the CNCF distribution registry and skopeo, found on PATH
# however they were installed (Debian's docker-registry, the project's own `registry`, any package manager,
# or $ECR_REPLICATE_REGISTRY). Only where apt-get exists are missing ones installed here.
REGISTRY_BIN := $(or $(ECR_REPLICATE_REGISTRY),$(shell command -v docker-registry 2>/dev/null),$(shell command -v registry 2>/dev/null))
SKOPEO_BIN := $(shell command -v skopeo 2>/dev/null)
APT_GET := $(shell command -v apt-get 2>/dev/null)
MISSING := $(strip $(if $(REGISTRY_BIN),,docker-registry) $(if $(SKOPEO_BIN),,skopeo))
# The IAM coverage test's policy evaluator, @cloud-copilot/iam-simulate (tests/iam/simulate.py), under Node.
NODE_DIR := tests/iam/node
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# jsii refuses to stay quiet about an end-of-life Node unless its major version is listed here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 18,20
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup tools demo test test-unit test-integration test-infrastructure test-e2e lint synth bench soak clean

setup: tools $(VENV)/.installed $(NODE_DIR)/node_modules/.installed

tools:
ifneq ($(MISSING),)
ifeq ($(APT_GET),)
	$(error make setup needs $(MISSING) and this machine has no apt-get: install skopeo and the CNCF distribution registry (its `registry` binary, or Debian's docker-registry) with your package manager or from their releases, put them on PATH (or set ECR_REPLICATE_REGISTRY), then run make setup again; supported platforms: README, "Platforms")
endif
	@echo "installing Debian packages: $(MISSING)"
	@$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(MISSING) >/dev/null
endif

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cdk]'
	touch $@

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "tests/iam needs Node.js 20+ with npm (the IAM policy evaluator)" >&2; exit 1; }
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
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
