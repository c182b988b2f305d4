# Sluice: progressive delivery for Kubernetes, speaking the flagger.app/v1beta1 API.
# `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT := $(shell pwd)
BIN := $(ROOT)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
GO_TEST_FLAGS ?=
BENCH_FLAGS ?= -benchtime=1s -timeout=20m
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/sluicedev/sluice/internal/version.Version=$(VERSION)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object paths=./api/... paths=./pkg/apis/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into kustomize/base, and docs/api.md.
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:dir=kustomize/base/crd
	$(CONTROLLER_GEN) rbac:roleName=sluice paths=./pkg/... paths=./cmd/... output:rbac:dir=kustomize/base/rbac
	go run ./hack/apidocs -crds kustomize/base/crd -out docs/api.md

.PHONY: fmt
fmt: ## Run gofmt on the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint v2 with .golangci.yml.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: generate manifests ## Fail when generated files are stale.
	@git diff --exit-code -- api kustomize docs || { echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }

##@ Test

.PHONY: tools
tools: ## Build kube-apiserver, etcd and controller-gen into bin/ (cached in ~/.cache/sluice).
	hack/tool.sh kube-apiserver
	hack/tool.sh etcd
	hack/tool.sh controller-gen

.PHONY: tools-e2e
tools-e2e: tools ## Also build kube-controller-manager, kube-scheduler, kwok and kubectl for the local control plane (minutes cold).
	hack/tool.sh kube-controller-manager
	hack/tool.sh kube-scheduler
	hack/tool.sh kwok
	hack/tool.sh kubectl

.PHONY: test
test: test-unit e2e ## Run every test: the unit and API-server suites, then the end-to-end scenarios.

.PHONY: test-unit
test-unit: tools check-generated ## Run the unit and API-server suites against a real kube-apiserver and etcd.
	KUBEBUILDER_ASSETS=$(BIN) go test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: tools ## Run the benchmarks: pure functions, and reconciles against a real kube-apiserver (BENCH_FLAGS=-benchtime=...).
	KUBEBUILDER_ASSETS=$(BIN) go test -run '^$$' -bench . -benchmem $(BENCH_FLAGS) ./pkg/...

N ?= 100
BENCH_SCALE_FLAGS ?=

.PHONY: bench-scale
bench-scale: tools-e2e build ## Scale benchmark on a local control plane: N Canaries, N/10 releases (make bench-scale N=1000 BENCH_SCALE_FLAGS=-compare).
	KUBEBUILDER_ASSETS=$(BIN) go run ./bench/scale -n $(N) -sluice $(BIN)/sluice -json $(BIN)/bench-scale-$(N).json $(BENCH_SCALE_FLAGS)

FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: tools ## Run every Go fuzz target of the repo for FUZZTIME each (make fuzz FUZZTIME=1m); go test runs their seed corpora.
	@for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u); do \
	  for target in $$(KUBEBUILDER_ASSETS=$(BIN) go test -list '^Fuzz' $$dir | grep '^Fuzz' || true); do \
	    echo "== $$dir $$target"; \
	    KUBEBUILDER_ASSETS=$(BIN) go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; \
	done

.PHONY: e2e
e2e: tools-e2e ## Run the end-to-end scenarios on a local control plane with Prometheus and the sluice binary (a few minutes).
	@command -v prometheus >/dev/null 2>&1 || test -x /usr/bin/prometheus || hack/install-deps.sh
	KUBEBUILDER_ASSETS=$(BIN) go test -tags e2e -count=1 -timeout 30m ./e2e/... ./bench/... -v

.PHONY: check-generated
check-generated: $(CONTROLLER_GEN) ## Fail when the checked-in CRDs or RBAC differ from the Go types and markers.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:dir=$$tmp/crd; \
	$(CONTROLLER_GEN) rbac:roleName=sluice paths=./pkg/... paths=./cmd/... output:rbac:dir=$$tmp/rbac; \
	diff -r $$tmp/crd kustomize/base/crd -x kustomization.yaml && diff -r $$tmp/rbac kustomize/base/rbac -x kustomization.yaml \
	  || { echo "kustomize/base is stale: run 'make generate manifests' and commit" >&2; exit 1; }

.PHONY: demo
demo: tools-e2e ## Play a healthy and a faulty release on a local control plane (DEMO_FLAGS=--keep to keep it running).
	@command -v prometheus >/dev/null 2>&1 || test -x /usr/bin/prometheus || hack/install-deps.sh
	KUBEBUILDER_ASSETS=$(BIN) go run ./e2e/demo $(DEMO_FLAGS)

##@ Build

.PHONY: build
build: ## Build the sluice manager and the load tester into bin/.
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/sluice ./cmd/sluice
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/loadtester ./cmd/loadtester

.PHONY: kubectl-sluice
kubectl-sluice: ## Build the command-line client into bin/ (with bin/ on PATH, kubectl runs it as `kubectl sluice`).
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl-sluice ./cmd/kubectl-sluice

$(CONTROLLER_GEN):
	hack/tool.sh controller-gen

$(GOLANGCI_LINT):
	hack/tool.sh golangci-lint
