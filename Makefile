# mlops-operator — every target sets itself up: venv, packages, cached cluster binaries.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MLOPS := $(VENV)/bin/mlops
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

##@ The two commands

.PHONY: demo
demo: $(STAMP) binaries ## The main job: the closed MLOps loop, end to end, on the local cluster.
	$(MLOPS) demo

.PHONY: test
test: $(STAMP) binaries browser lint typecheck ## The whole suite: lint, types, unit, integration and e2e tests.
	$(PY) -m pytest $(PYTEST_ARGS)

##@ Development

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the project with every extra.

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

.PHONY: crds
crds: $(STAMP) ## Regenerate crds/*.yaml and the Helm chart's CRD templates from operator/mlops_operator/api.
	$(PY) -m mlops_operator.crdgen --write

.PHONY: protos
protos: $(STAMP) ## Regenerate the gRPC messages (serving/oip/*_pb2.py, .pyi) from their .proto.
	cd operator && ../$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. mlops_operator/serving/oip/grpc_predict_v2.proto

HELM = $(shell $(PY) -c 'from mlops_operator.localcluster.binaries import HELM; print(HELM.path("helm"))')

.PHONY: helm
helm: $(STAMP) ## Build (first run only) and cache Helm from its Go module; prints its path.
	@$(PY) -c 'from mlops_operator.localcluster.binaries import HELM, ensure_binaries; ensure_binaries((HELM,))'
	@echo $(HELM)

.PHONY: manifests
manifests: crds helm ## Render the kustomize base (manifests/base) from the Helm chart (and its CRDs).
	HELM=$(HELM) manifests/render-base.sh > manifests/base/mlops-operator.yaml

.PHONY: binaries
binaries: $(STAMP) ## Build (first run only) and cache the control-plane binaries.
	$(MLOPS) cluster build

.PHONY: browser
browser: ## Debian's chromium for the console's browser tests (installed when missing, as root).
	@command -v chromium >/dev/null || { \
		echo "[browser] installing chromium from Debian"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium fonts-liberation >/dev/null; }

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format) and the import-layer contracts.
	$(VENV)/bin/ruff check operator tests benchmarks
	$(VENV)/bin/ruff format --check operator tests benchmarks
	$(VENV)/bin/lint-imports

.PHONY: typecheck
typecheck: $(STAMP) ## mypy --strict over the package.
	$(VENV)/bin/mypy

.PHONY: fmt
fmt: $(STAMP) ## Apply ruff's fixes and formatting.
	$(VENV)/bin/ruff check --fix operator tests benchmarks
	$(VENV)/bin/ruff format operator tests benchmarks

.PHONY: test-unit
test-unit: $(STAMP) ## Only the tests that need no cluster.
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: cluster-up
cluster-up: $(STAMP) binaries ## Bring the local cluster up (then: eval "$$(.venv/bin/mlops cluster env)").
	$(MLOPS) cluster up

.PHONY: cluster-down
cluster-down: $(STAMP) ## Stop everything the local cluster started.
	$(MLOPS) cluster down

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
