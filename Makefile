# auth-operator Makefile, laid out as kubebuilder's scaffold is.

# Image that the manager runs and, by default, deploys the auth server from.
IMG ?= ghcr.io/hiringo/auth-operator:dev
# The version `make release` builds (vMAJOR.MINOR.PATCH[-PRERELEASE]).
VERSION ?=

# Where tools and the control-plane binaries go. Never committed.
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p $(LOCALBIN)

# Tool versions, pinned.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
HELM_VERSION ?= v3.22.0
VEGETA_VERSION ?= v12.13.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# promtool of Prometheus v3.16.0 (the Go module numbers v3.x.y as v0.3xx.y).
PROMTOOL_VERSION ?= v0.316.0
CYCLONEDX_GOMOD_VERSION ?= v1.10.0

# Each tool is installed as bin/<tool>-<version> with the link bin/<tool> pointing at it (see
# go-install-tool below); commands and tests use the link.
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
HELM ?= $(LOCALBIN)/helm
VEGETA ?= $(LOCALBIN)/vegeta
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
PROMTOOL ?= $(LOCALBIN)/promtool
CYCLONEDX_GOMOD ?= $(LOCALBIN)/cyclonedx-gomod
# The cluster's binaries, built from the Go module proxy by the separate module in
# hack/controlplane: kube-apiserver, etcd and kubectl (envtest; KUBEBUILDER_ASSETS points at
# them), and for the local node of `make dev` and the e2e kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy and CoreDNS.
CONTROLPLANE_BINS := $(LOCALBIN)/kube-apiserver $(LOCALBIN)/etcd $(LOCALBIN)/kubectl \
	$(LOCALBIN)/kube-controller-manager $(LOCALBIN)/kube-scheduler $(LOCALBIN)/kubelet \
	$(LOCALBIN)/kube-proxy $(LOCALBIN)/coredns
KUBERNETES_VERSION ?= v1.37.2
# containerd v2 with its runc shim and ctr, for the local node: built with go install (its own
# module's requirements), without the snapshotters and docs the node does not use.
CONTAINERD_VERSION ?= v2.4.2
CONTAINERD_BINS := $(LOCALBIN)/containerd $(LOCALBIN)/containerd-shim-runc-v2 $(LOCALBIN)/ctr
CONTAINERD_TAGS := no_btrfs no_devmapper no_zfs urfave_cli_no_docs
# Stamp the version a `go build` leaves as v0.0.0-master, so that helm's kubeVersion check and
# kubectl's skew warning see the real one.
CONTROLPLANE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBERNETES_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37

# How much `make test` fuzzes each fuzz target: a count of executions (a few seconds here), not a
# duration, because Go 1.26's fuzz coordinator can fail a duration-bounded run with a spurious
# "context deadline exceeded" at the deadline under CPU load (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 100000x
# The commit whose logout, refresh and issuance benchmarks make bench runs beside this tree's: main before the first release.
BENCH_BASELINE ?= 0f2b6f4c7eb2dc0a67afb16644461bfa32eeedc2

export KUBEBUILDER_ASSETS := $(LOCALBIN)
export PATH := $(LOCALBIN):$(PATH)
# Every Go build here is static and free of local paths, as the images need them: the tests,
# the tools, the cluster's binaries and the image recipe then share one build cache, and a
# cold `make test` compiles the dependency graph once instead of twice.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and RBAC from kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt over the tree; fails when a file is not formatted.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: test
test: verify vet controlplane containerd packages tools ## Run make verify, then every test: unit, envtest, real Redis, install, end to end on the local node, and a short fuzz.
	go test $$(go list ./... | grep -v -e '/test/cluster$$' -e '/test/e2e$$') -count=1 -timeout 40m
	@# Each of these starts the machine's one local node (and the cluster test compares the host
	@# before and after its own), so they run one after the other, never beside each other.
	go test -p 1 ./test/cluster ./test/e2e -count=1 -timeout 40m
	$(MAKE) fuzz

.PHONY: test-unit
test-unit: ## The edit loop: every package but the system suites under test/, with -short, under which each test that starts a process (envtest, redis-server, a tool) skips.
	go test -short $$(go list ./... | grep -v '/test/') -count=1

# What the generators write; verify-generated compares these before and after regenerating.
GENERATED_PATHS := api config charts

.PHONY: verify
verify: verify-generated verify-mod fmt lint ## Fail on stale generated files, an untidy go.mod, unformatted code or a lint finding.

.PHONY: verify-generated
verify-generated: controller-gen ## Regenerate CRDs, RBAC, deep-copy code and the chart's copies; fail when that changed a file.
	@before=$$(mktemp -d); trap 'rm -rf "$$before"' EXIT; \
	cp -R $(GENERATED_PATHS) "$$before"/; \
	$(MAKE) --no-print-directory manifests generate chart-crds >/dev/null; \
	stale=0; for p in $(GENERATED_PATHS); do diff -ruN "$$before/$$p" "$$p" || stale=1; done; \
	if [ $$stale = 1 ]; then echo "generated files were out of date (now regenerated, see the diff above): review and commit them"; exit 1; fi

.PHONY: verify-mod
verify-mod: ## Fail when `go mod tidy` would change go.mod or go.sum.
	@go mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }

.PHONY: lint
lint: golangci-lint ## Run golangci-lint with .golangci.yml.
	$(GOLANGCI_LINT) run ./...

.PHONY: fuzz
fuzz: ## Fuzz the token and header parsers, FUZZTIME executions each.
	@for target in $$(go test -list '^Fuzz' ./authserver/... | grep '^Fuzz'); do \
		pkg=$$(grep -rl "func $$target(" authserver --include='*_test.go' | xargs -n1 dirname | head -1); \
		echo "fuzzing $$target in ./$$pkg for $(FUZZTIME)"; \
		go test ./$$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME); \
	done

.PHONY: bench
bench: packages controlplane ## The hot paths beside their floors, A B A B, in one table (a few minutes): wrk (paced for the p99 rows), real Redis and kube-apiserver.
	go run ./test/load -control-plane-dir $(LOCALBIN) -baseline $(BENCH_BASELINE)

.PHONY: bench-go
bench-go: packages controlplane ## Every Go benchmark of the auth server, with allocations.
	go test ./authserver/... -run '^$$' -bench . -benchmem

.PHONY: dev
dev: controlplane containerd packages manifests ## Run the whole system locally: a cluster with one real node, the operator, the sample AuthService in containers (needs root).
	@# Built, then run (not `go run`, which exits 1 after Ctrl-C even when everything stopped cleanly).
	go build -o $(LOCALBIN)/auth-operator-dev ./hack/dev
	exec $(LOCALBIN)/auth-operator-dev --control-plane-dir $(LOCALBIN)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager and authserver binaries into bin/.
	go build -o $(LOCALBIN)/manager ./cmd/manager
	go build -o $(LOCALBIN)/authserver ./cmd/authserver

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster in ~/.kube/config.
	go run ./cmd/manager

.PHONY: image
image: ## Build the operator's image for this machine's platform as an OCI archive, dist/auth-operator.oci.tar (no Docker engine needed; see docs/release.md).
	go run ./hack/image --ref $(IMG) --out dist/auth-operator.oci.tar

.PHONY: release
release: kustomize helm cyclonedx-gomod ## Build a release into dist/release: VERSION=vX.Y.Z (multi-arch image archive, chart, install.yaml pinned by digest, plugin, SBOMs, checksums).
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=vX.Y.Z"; exit 2; }
	go run ./hack/release --version $(VERSION) --revision "$$(git rev-parse HEAD 2>/dev/null)" --out dist/release

.PHONY: build-installer
build-installer: manifests generate kustomize ## Render dist/install.yaml (CRDs, RBAC, the manager) with the manager image IMG.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml

.PHONY: chart-crds
chart-crds: manifests ## Write the chart's CRD and manager ClusterRole templates from config/crd/bases and config/rbac/role.yaml.
	go run ./hack/chartsync

##@ Dependencies

.PHONY: tools
tools: controller-gen kustomize helm golangci-lint promtool cyclonedx-gomod ## Install every pinned tool into bin/.

# go-install-tool installs the Go package $(2) at version $(3) as $(1)-$(3). The versioned file
# is the make target, so bumping a version installs the new one even though bin/ holds an older
# build; the link made by link-tool gives commands and tests one name (kubebuilder's pattern).
define go-install-tool
	@rm -f $(1)
	GOBIN=$(LOCALBIN) go install $(2)@$(3)
	@mv $(1) $(1)-$(3)
endef

# link-tool points $(1) at $(1)-$(2), relative to bin/ so the folder may be moved or shared.
define link-tool
	@ln -sfn $(notdir $(1))-$(2) $(1)
endef

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION)
	$(call link-tool,$(CONTROLLER_GEN),$(CONTROLLER_TOOLS_VERSION))
$(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE)-$(KUSTOMIZE_VERSION)
	$(call link-tool,$(KUSTOMIZE),$(KUSTOMIZE_VERSION))
$(KUSTOMIZE)-$(KUSTOMIZE_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: helm
helm: $(HELM)-$(HELM_VERSION)
	$(call link-tool,$(HELM),$(HELM_VERSION))
$(HELM)-$(HELM_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

.PHONY: vegeta
vegeta: $(VEGETA)-$(VEGETA_VERSION) ## The pinned vegeta, for `go run ./test/load -paced vegeta` (make bench paces wrk instead).
	$(call link-tool,$(VEGETA),$(VEGETA_VERSION))
$(VEGETA)-$(VEGETA_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(VEGETA),github.com/tsenart/vegeta/v12,$(VEGETA_VERSION))

# golangci-lint compiles its many linters: about 5 minutes with empty Go caches on 2 cores.
.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION)
	$(call link-tool,$(GOLANGCI_LINT),$(GOLANGCI_LINT_VERSION))
$(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: promtool
promtool: $(PROMTOOL)-$(PROMTOOL_VERSION)
	$(call link-tool,$(PROMTOOL),$(PROMTOOL_VERSION))
$(PROMTOOL)-$(PROMTOOL_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(PROMTOOL),github.com/prometheus/prometheus/cmd/promtool,$(PROMTOOL_VERSION))

.PHONY: cyclonedx-gomod
cyclonedx-gomod: $(CYCLONEDX_GOMOD)-$(CYCLONEDX_GOMOD_VERSION)
	$(call link-tool,$(CYCLONEDX_GOMOD),$(CYCLONEDX_GOMOD_VERSION))
$(CYCLONEDX_GOMOD)-$(CYCLONEDX_GOMOD_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(CYCLONEDX_GOMOD),github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod,$(CYCLONEDX_GOMOD_VERSION))

.PHONY: controlplane
controlplane: $(CONTROLPLANE_BINS) ## Build kube-apiserver, etcd, kubectl, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and CoreDNS from the Go module proxy.
# One `go build` for all eight: they share most of their packages, which one invocation compiles once.
$(CONTROLPLANE_BINS) &: hack/controlplane/go.mod hack/controlplane/go.sum | $(LOCALBIN)
	@echo "building kube-apiserver, etcd, kubectl, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and CoreDNS from the Go module proxy (several minutes the first time)"
	cd hack/controlplane && go build -ldflags '$(CONTROLPLANE_LDFLAGS)' -o $(LOCALBIN)/ ./kube-apiserver ./etcd ./kubectl ./kube-controller-manager ./kube-scheduler ./kubelet ./kube-proxy ./coredns
	@touch $(CONTROLPLANE_BINS)

.PHONY: containerd
containerd: $(LOCALBIN)/.containerd-$(CONTAINERD_VERSION) ## Build containerd, its runc shim and ctr from the Go module proxy (the local node's runtime).
$(LOCALBIN)/.containerd-$(CONTAINERD_VERSION): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install -tags '$(CONTAINERD_TAGS)' \
		github.com/containerd/containerd/v2/cmd/containerd@$(CONTAINERD_VERSION) \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$(CONTAINERD_VERSION) \
		github.com/containerd/containerd/v2/cmd/ctr@$(CONTAINERD_VERSION)
	@touch $@

# The Debian packages the tests and the local node need: Redis and Sentinel (the blacklist's
# tests), redis-tools (redis-cli, in the node's Redis image), wrk (make bench and its pacing
# test), runc and the CNI plugins (the node's runtime and network), nftables and iptables
# (kube-proxy, the kubelet), iproute2 and util-linux (the node's namespaces), CA certificates
# (the images').
DEBIAN_PACKAGES := redis-server redis-sentinel redis-tools=redis-cli wrk runc \
	containernetworking-plugins=/usr/lib/cni/bridge nftables=nft iptables iproute2=ip \
	util-linux=nsenter ca-certificates=/etc/ssl/certs/ca-certificates.crt

.PHONY: packages
packages: ## Make sure the Debian packages the tests and `make dev` need are installed (installs them with apt when root).
	@hack/ensure-packages.sh $(DEBIAN_PACKAGES)
