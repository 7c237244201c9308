# mlops-operator — every target sets itself up: venv, packages, cached cluster binaries.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MLOPS := $(VENV)/bin/mlops
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# uv resolves and exports the lock (uv.lock -> requirements/*.txt); pip installs from it.
UV_VERSION := 0.13.8
UV := $(VENV)/bin/uv
# `make images IMAGE_REPO=registry.example.com/mlops IMAGE_TAG=1.2.3`
IMAGE_REPO ?= ghcr.io/mlops-operator
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

##@ The two commands

.PHONY: demo
demo: $(STAMP) binaries bytecode ## The main job: the closed MLOps loop, end to end, on the local cluster.
	$(MLOPS) demo

# The suite brings the local cluster up once, then runs the cluster tests not marked serial
# on MLOPS_TEST_WORKERS pytest-xdist workers (default 6), and after them the serial ones,
# two at a time, with the unit tests beside them at a low priority (tests/suite.py).
.PHONY: test
test: $(STAMP) binaries helm images browser lint typecheck bytecode ## The whole suite: lint, types, unit, integration and e2e tests.
	$(PY) -m tests.suite $(PYTEST_ARGS)

##@ Development

.PHONY: venv
venv: $(STAMP) ## Create .venv: the locked dependencies (requirements/dev.txt), then the project.

# A pyproject.toml change re-locks first (uv lock keeps every pin it can), so the venv, the
# images and CI always install what uv.lock says; commit uv.lock and requirements/ with it.
$(STAMP): pyproject.toml uv.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) lock --quiet
	UV=$(UV) requirements/export.sh
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

.PHONY: lock
lock: $(STAMP) ## Re-lock after a dependency change (LOCK_ARGS=--upgrade: newest allowed) and export requirements/.
	$(UV) lock $(LOCK_ARGS)
	UV=$(UV) requirements/export.sh
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.txt

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
binaries: $(STAMP) ## Build (first run only) and cache the cluster binaries and its object store.
	$(MLOPS) cluster build --object-store

# The local node's pods run this checkout's package as a non-root user, who cannot write
# its __pycache__: without the bytecode written here, each pod compiles every module it
# imports on each start (30 ms for a server or a trainer, 76 ms for an operator).
.PHONY: bytecode
bytecode: $(STAMP) ## Compile the package's and the suite's bytecode (only what changed).
	$(PY) -m compileall -q operator tests >/dev/null

.PHONY: images
images: $(STAMP) ## Build the operator, trainer and server images with buildah (IMAGE_REPO, IMAGE_TAG).
	$(MLOPS) images build --repo $(IMAGE_REPO) --tag $(IMAGE_TAG)

.PHONY: browser
browser: ## Debian's chromium for the console's browser tests (installed when missing, as root).
	@command -v chromium >/dev/null || { \
		echo "[browser] installing chromium from Debian"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium fonts-liberation >/dev/null; }

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format), the import-layer contracts, and uv.lock matching pyproject.toml.
	$(UV) lock --check --quiet
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
test-unit: $(STAMP) ## Only the tests that need no cluster (on MLOPS_TEST_WORKERS workers, default 4).
	$(PY) -m pytest -m unit --numprocesses $${MLOPS_TEST_WORKERS:-4} $(PYTEST_ARGS)

.PHONY: cluster-up
cluster-up: $(STAMP) binaries ## Bring the local cluster up (then: eval "$$(.venv/bin/mlops cluster env)").
	$(MLOPS) cluster up

.PHONY: cluster-down
cluster-down: $(STAMP) ## Stop everything the local cluster started.
	$(MLOPS) cluster down

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
