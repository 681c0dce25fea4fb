# The ExtractionJob operator. `make help` lists the targets.

KUBE_VERSION ?= v1.37.2
# The promtool that test-monitoring runs; hack/tools/promtool pins its module.
PROMTOOL_VERSION ?= v3.16.0
PROMTOOL := $(CURDIR)/bin/promtool-$(PROMTOOL_VERSION)/promtool
export PROMTOOL_VERSION
BIN          := $(CURDIR)/bin
ENVTEST_DIR  := $(BIN)/envtest-$(KUBE_VERSION)
# A user's own envtest assets win over the ones built here.
KUBEBUILDER_ASSETS ?= $(ENVTEST_DIR)
export KUBEBUILDER_ASSETS

CONTROLLER_GEN := go tool controller-gen
# The images `make deploy` runs: empty keeps what config/default pins (the
# operator v0.1.0, and the reference extractor v0.1.0 as the default ExtractorClass).
IMG ?=
EXTRACTOR_IMG ?=
export IMG EXTRACTOR_IMG

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD and RBAC from the markers in api/ and controllers/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: ## Generate the deepcopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Format the Go code.
	go fmt ./...

.PHONY: vet
vet: ## Vet the Go code.
	go vet ./...

.PHONY: verify
verify: manifests generate ## Fail when generated files, go.mod or formatting drift from what is committed.
	go mod tidy
	cd api/podcontract && go mod tidy && go vet ./...
	@test -z "$$(gofmt -l api controllers cmd test hack)" || { echo "gofmt needed:"; gofmt -l api controllers cmd test hack; exit 1; }
	go vet ./...
	cd test/monitoring && go mod tidy && go vet ./...
	cd hack/tools/promtool && go mod tidy
	@git diff --exit-code -- config api go.mod go.sum test/monitoring/go.mod test/monitoring/go.sum hack/tools/promtool || { echo "generated files drifted: run 'make manifests generate' and commit"; exit 1; }

.PHONY: tools
tools: ## Build kube-apiserver, etcd, kwok and friends from the Go module proxy into bin/ (once; cached).
	hack/build-tools.sh all

.PHONY: envtest-assets
envtest-assets:
	@if [ "$(KUBEBUILDER_ASSETS)" = "$(ENVTEST_DIR)" ]; then hack/build-tools.sh envtest; fi

.PHONY: test
# timed runs one tier of `make test` and says how long it took, so a slow
# tier shows in CI's log.
timed = start=$$(date +%s); $(2) && echo "make test: $(1) took $$(( $$(date +%s) - start )) s"

# NODE_TESTS=skip skips the real-node tier, which needs root.
NODE_TESTS ?=

test: node-preflight vet envtest-assets ## Build what the tests need and run every test (the real-node tier needs root; NODE_TESTS=skip skips it).
	@$(call timed,unit and envtest,go test ./... -count=1)
	@$(call timed,api/podcontract,cd api/podcontract && go vet ./... && go test ./... -count=1)
	@$(call timed,monitoring,$(MAKE) test-monitoring)
	@$(call timed,end-to-end on KWOK,$(MAKE) test-e2e)
	@$(if $(filter skip,$(NODE_TESTS)),echo "make test: real node skipped (NODE_TESTS=skip)",$(call timed,real node,$(MAKE) test-node))
	@$(call timed,short chaos,$(MAKE) test-chaos-short)

.PHONY: test-monitoring
test-monitoring: envtest-assets kubectl ## promtool check and test of config/prometheus, the dashboard's PromQL, the Prometheus Operator's CRDs, promtool check of /metrics (test/monitoring).
	hack/build-tools.sh promtool
	cd test/monitoring && go vet ./... && PROMTOOL=$(PROMTOOL) go test ./... -count=1 -timeout 10m

# Fails at once, not after the other tiers, when the real-node tier cannot run.
.PHONY: node-preflight
node-preflight:
	@[ "$(NODE_TESTS)" = skip ] || [ "$$(id -u)" = 0 ] || { \
	  echo "make test: the real-node tier (make test-node) needs root: it installs Debian packages and starts a kubelet and containerd."; \
	  echo "make test: run it as root, or set NODE_TESTS=skip to skip only that tier: make test NODE_TESTS=skip"; exit 1; } >&2

##@ Build and run

.PHONY: build
build: ## Build the operator binary into bin/manager.
	go build -o $(BIN)/manager ./cmd

.PHONY: kubectl-plugin
kubectl-plugin: ## Build the kubectl plugin into bin/kubectl-extraction (put bin/ on PATH: `kubectl extraction ...`).
	go build -o $(BIN)/kubectl-extraction ./cmd/kubectl-extraction

.PHONY: run
run: manifests install ## Run the operator against the current kubeconfig's cluster.
	go run ./cmd --metrics-bind-address=0 --health-probe-bind-address=0

.PHONY: install
install: manifests ## Install the CRD into the current kubeconfig's cluster.
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRD (and every ExtractionJob) from the current kubeconfig's cluster.
	kubectl delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator with config/default (IMG=operator image, EXTRACTOR_IMG=extractor image).
	hack/deploy.sh apply

.PHONY: undeploy
undeploy: ## Remove what deploy created.
	hack/deploy.sh delete

.PHONY: images
images: ## Build the operator, extractor, test extractor and pause images as tarballs in bin/images, without Docker (see hack/images).
	go run ./hack/images -out $(BIN)/images

.PHONY: docker-build
docker-build: ## Build the operator image (needs a Docker engine).
	docker build -t $(or $(IMG),ghcr.io/pybase/extraction-operator:v0.1.0) .

.PHONY: docker-build-extractor
docker-build-extractor: ## Build the reference extractor's image (needs a Docker engine).
	docker build --target extractor -t $(or $(EXTRACTOR_IMG),ghcr.io/pybase/extraction-extractor:v0.1.0) .

##@ Local cluster (KWOK)

E2E_CLUSTER ?= extraction-e2e
# kubectl for the local cluster: the one on PATH, or else one built from the
# same pinned Kubernetes as the control plane.
KUBECTL ?= $(or $(shell command -v kubectl 2>/dev/null),$(BIN)/kubectl-$(KUBE_VERSION)/kubectl)
export KUBECTL

.PHONY: kubectl
kubectl: ## Build kubectl into bin/ when the machine has none.
	@[ -x "$(KUBECTL)" ] || hack/build-tools.sh kubectl

# DEV_NODE=real plays the samples on a real node instead (root).
DEV_NODE ?= kwok
export DEV_NODE

.PHONY: dev
dev: kubectl $(if $(filter real,$(DEV_NODE)),node-tools) ## Local KWOK cluster + CRD + operator, then play the samples and watch them (idempotent; DEV_NODE=real: on a real node, as root).
	hack/dev.sh up

.PHONY: dev-down
dev-down: kubectl ## Stop the operator that `make dev` started and delete its cluster (DEV_NODE=real: the real node).
	hack/dev.sh down

.PHONY: test-e2e
test-e2e: kubectl ## End-to-end tests on a KWOK cluster of their own, deleted afterwards.
	hack/build-tools.sh all
	go vet -tags e2e ./test/e2e
	@status=0; E2E_CLUSTER=$(E2E_CLUSTER) go test -tags e2e ./test/e2e -count=1 -timeout 30m -v -ginkgo.v || status=$$?; \
	hack/kwok-cluster.sh down $(E2E_CLUSTER); exit $$status

##@ Real node (root)

.PHONY: node-tools
node-tools: kubectl images
	hack/build-tools.sh node

.PHONY: node-up
node-up: node-tools ## Bring up a one-node cluster with a real kubelet, containerd and kube-proxy on this machine (root; hack/node.sh).
	hack/node.sh up

.PHONY: node-down
node-down: ## Stop the real node and leave nothing of it behind.
	hack/node.sh down

.PHONY: test-node
test-node: node-tools ## The operator from its image, and the real extractor, on a real node (root; about 3 minutes once built).
	go vet -tags node ./test/node
	go test -tags node ./test/node -count=1 -timeout 30m -v -ginkgo.v -ginkgo.label-filter='!latency'

.PHONY: bench-node
bench-node: node-tools ## Pod create → Running → Succeeded latency and kubelet start → Node Ready on the real node, into test/bench/results/node (root).
	NODE_RESULTS=$(CURDIR)/test/bench/results/node go test -tags node ./test/node -count=1 -timeout 30m -v -ginkgo.label-filter=latency

##@ Benchmark

.PHONY: bench
bench: ## Operator vs batch/v1 Job controller vs API ceiling on fresh local API servers (minutes; BENCH_* variables, see test/bench/config/settings.go).
	hack/build-tools.sh envtest
	go run ./test/bench -kube-version=$(KUBE_VERSION) $(BENCH_FLAGS)

##@ Chaos

.PHONY: test-chaos-short
test-chaos-short: envtest-assets ## Faults, short (~5 min): 100 jobs (a third in a capped ExtractorClass), 5 operator SIGKILLs, 1 kube-apiserver restart, leader failover, 20 % failed writes, deletions, and a circuit breaker under kills.
	go vet -tags chaos ./test/chaos
	CHAOS_PROFILE=short go test -tags chaos ./test/chaos -count=1 -timeout 20m -v

.PHONY: test-chaos
test-chaos: envtest-assets ## Faults, long: 1,000 jobs (a third in a capped ExtractorClass), 24 operator SIGKILLs, 2 kube-apiserver restarts, 2 leader failovers, failed writes, deletions (flock-serialised).
	go vet -tags chaos ./test/chaos
	flock /tmp/extraction-heavy.lock env CHAOS_PROFILE=long go test -tags chaos ./test/chaos -count=1 -timeout 120m -v
