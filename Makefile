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
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/sluicedev/sluice/internal/version.Version=$(VERSION) -X github.com/sluicedev/sluice/internal/version.Commit=$(COMMIT)
# Images: every timestamp is the commit time, so a commit gives one digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
PLATFORMS ?= linux/amd64,linux/arm64
REGISTRY ?=

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
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into kustomize/base, and docs/api.md; VERSION=vX.Y.Z also sets the image tags.
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:dir=kustomize/base/crd
	$(CONTROLLER_GEN) rbac:roleName=sluice paths=./pkg/... paths=./cmd/... output:rbac:dir=kustomize/base/rbac
	go run ./hack/apidocs -crds kustomize/base/crd -out docs/api.md
	cp kustomize/base/crd/flagger.app_*.yaml charts/sluice/crds/
	cp kustomize/base/rbac/role.yaml charts/sluice/files/role.yaml
	cp kustomize/base/admission-warnings.yaml charts/sluice/files/admission-warnings.yaml
	rm -f charts/sluice/files/dashboards/*.json && cp kustomize/grafana/*.json charts/sluice/files/dashboards/
	$(if $(filter command line,$(origin VERSION)),hack/set-version.sh $(VERSION))

.PHONY: fmt
fmt: ## Run gofmt on the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint v2 with .golangci.yml.
	$(GOLANGCI_LINT) run ./...

.PHONY: vulncheck
vulncheck: ## Run govulncheck against the Go vulnerability database, built offline from the golang.org/x/vulndb module.
	hack/vulncheck.sh

.PHONY: verify
verify: generate manifests ## Fail when generated files are stale.
	@git diff --exit-code -- api kustomize docs charts || { echo "generated files are stale: run 'make generate manifests' and commit"; exit 1; }

##@ Test

.PHONY: tools
tools: ## Build kube-apiserver, etcd and controller-gen into bin/ (cached in ~/.cache/sluice).
	hack/tool.sh kube-apiserver etcd controller-gen

.PHONY: tools-e2e
tools-e2e: ## Also build kube-controller-manager, kube-scheduler, kwok, kubectl and Flagger (for the takeover tests) into bin/ (minutes cold, two at once).
	hack/tool.sh kube-apiserver kube-controller-manager kube-scheduler etcd controller-gen kwok kubectl flagger

.PHONY: tools-demo
tools-demo: ## Build only what make demo runs: kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok.
	hack/tool.sh kube-apiserver kube-controller-manager kube-scheduler etcd kwok

.PHONY: test
test: lint tools-e2e test-unit e2e ## Run every test: golangci-lint first (about 40 s), the unit and API-server suites, then the end-to-end scenarios.

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

.PHONY: e2e
e2e: tools-e2e ## Run the end-to-end scenarios on a local control plane with Prometheus and the sluice binary, then a short chaos campaign (a few minutes).
	@command -v prometheus >/dev/null 2>&1 || test -x /usr/bin/prometheus || hack/install-deps.sh
	KUBEBUILDER_ASSETS=$(BIN) go test -tags e2e -count=1 -timeout 30m $$(go list -tags e2e ./e2e/... ./bench/... | grep -v /e2e/chaos) -v
	KUBEBUILDER_ASSETS=$(BIN) go test -tags e2e -count=1 -timeout 10m ./e2e/chaos -v

SEED ?= 0
ROLLOUTS ?= 100

.PHONY: chaos
chaos: tools-e2e ## Run the fault-injection campaign (SEED=… reproduces one, ROLLOUTS=100 by default; about 20 minutes).
	@command -v prometheus >/dev/null 2>&1 || test -x /usr/bin/prometheus || hack/install-deps.sh
	KUBEBUILDER_ASSETS=$(BIN) go test -tags e2e -count=1 -timeout 90m ./e2e/chaos -run TestChaos_Campaign -v \
	  -args -chaos.campaign -chaos.seed=$(SEED) -chaos.rollouts=$(ROLLOUTS)

FUZZTIME ?= 1m

.PHONY: fuzz
fuzz: tools ## Run every Go fuzz target of the repository for FUZZTIME each (default 1m); make test runs their seed corpora.
	KUBEBUILDER_ASSETS=$(BIN) FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: check-generated
check-generated: $(CONTROLLER_GEN) ## Fail when the checked-in CRDs or RBAC differ from the Go types and markers.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:dir=$$tmp/crd; \
	$(CONTROLLER_GEN) rbac:roleName=sluice paths=./pkg/... paths=./cmd/... output:rbac:dir=$$tmp/rbac; \
	diff -r $$tmp/crd kustomize/base/crd -x kustomization.yaml && diff -r $$tmp/rbac kustomize/base/rbac -x kustomization.yaml \
	  || { echo "kustomize/base is stale: run 'make generate manifests' and commit" >&2; exit 1; }

.PHONY: demo
demo: tools-demo ## Play a healthy and a faulty release on a local control plane (DEMO_FLAGS=--keep to keep it running).
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

.PHONY: images
images: ## Build the sluice and sluice-loadtester OCI images for PLATFORMS into dist/ (REGISTRY=... also pushes).
	for p in $$(echo $(PLATFORMS) | tr , ' '); do hack/tool.sh kubectl $$p; hack/tool.sh helm $$p; done
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) go run ./hack/images -version $(VERSION) -commit $(COMMIT) \
	  -platforms $(PLATFORMS) -out dist $(if $(REGISTRY),-registry $(REGISTRY))

$(CONTROLLER_GEN):
	hack/tool.sh controller-gen

$(GOLANGCI_LINT):
	hack/tool.sh golangci-lint
