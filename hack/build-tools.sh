#!/usr/bin/env bash
# Builds the pinned control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler) with the kubelet and kube-proxy, etcd, and kwok/kwokctl from
# the Go module proxy into bin/, one directory per tool and version, so a
# version bump never reuses a stale binary. Nothing is downloaded from
# anywhere else.
#
#   hack/build-tools.sh [kube|etcd|kwok|envtest|kubectl|promtool|node|all]   (default: all)
#
# kubectl is not part of "all": it is built (from the same pinned
# k8s.io/kubernetes) only for a machine that has none on its PATH. "node" is
# what hack/node.sh needs on top of "all": containerd, its runc shim, ctr and
# crictl.
#
# Prints nothing for a tool that is already cached. Binaries are built into a
# temporary directory and moved into place, so an interrupted build never
# leaves a half-written cache behind.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
# Prometheus v3.16.0 is Go module version v0.316.0; hack/tools/promtool pins it.
PROMTOOL_VERSION=${PROMTOOL_VERSION:-v3.16.0}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${TOOLS_BIN:-$root/bin}
kube_dir=$bin/kube-$KUBE_VERSION
etcd_dir=$bin/etcd-$ETCD_VERSION
kwok_dir=$bin/kwok-$KWOK_VERSION
envtest_dir=$bin/envtest-$KUBE_VERSION
kubectl_dir=$bin/kubectl-$KUBE_VERSION
promtool_dir=$bin/promtool-$PROMTOOL_VERSION
containerd_dir=$bin/containerd-$CONTAINERD_VERSION
crictl_dir=$bin/crictl-$CRICTL_VERSION

have() { for f in "$@"; do [ -x "$f" ] || return 1; done; }

# All five in one `go build`, so the packages the kubelet and kube-proxy share
# with the control plane compile once.
build_kube() {
  have "$kube_dir/kube-apiserver" "$kube_dir/kube-controller-manager" "$kube_dir/kube-scheduler" "$kube_dir/kubelet" "$kube_dir/kube-proxy" && return
  echo "building kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy $KUBE_VERSION (cold Go cache: over 15 minutes on 2 cores; warm: about a minute)" >&2
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local tmp; tmp=$(mktemp -d "$bin/.kube.XXXX")
  (cd "$root/hack/tools/kube" && go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    -o "$tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  rm -rf "$kube_dir"; mv "$tmp" "$kube_dir"
}

build_kubectl() {
  have "$kubectl_dir/kubectl" && return
  echo "building kubectl $KUBE_VERSION" >&2
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local tmp; tmp=$(mktemp -d "$bin/.kubectl.XXXX")
  (cd "$root/hack/tools/kube" && go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    -o "$tmp/kubectl" k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$kubectl_dir"; mv "$tmp" "$kubectl_dir"
}

build_etcd() {
  have "$etcd_dir/etcd" && return
  echo "building etcd $ETCD_VERSION" >&2
  local tmp; tmp=$(mktemp -d "$bin/.etcd.XXXX")
  (cd "$root/hack/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
  rm -rf "$etcd_dir"; mv "$tmp" "$etcd_dir"
}

build_kwok() {
  have "$kwok_dir/kwok" "$kwok_dir/kwokctl" && return
  echo "building kwok and kwokctl $KWOK_VERSION" >&2
  local tmp; tmp=$(mktemp -d "$bin/.kwok.XXXX")
  GOBIN=$tmp go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  rm -rf "$kwok_dir"; mv "$tmp" "$kwok_dir"
}

# promtool checks the alerting rules, their tests and the operator's /metrics
# (make test-monitoring); its module pins the Prometheus release. Prometheus'
# remove_all_sd tag leaves out the cloud service discoveries, which none of
# those commands uses, and most of the build.
build_promtool() {
  have "$promtool_dir/promtool" && return
  echo "building promtool $PROMTOOL_VERSION" >&2
  local tmp; tmp=$(mktemp -d "$bin/.promtool.XXXX")
  (cd "$root/hack/tools/promtool" && go build -trimpath -tags remove_all_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROMTOOL_VERSION#v}" \
    -o "$tmp/promtool" github.com/prometheus/prometheus/cmd/promtool)
  rm -rf "$promtool_dir"; mv "$tmp" "$promtool_dir"
}

# containerd from the module proxy: Debian 12's containerd is 1.6, which lacks
# the CRI RuntimeConfig call that kubelet 1.38 will require.
# Static (CGO_ENABLED=0), so the btrfs snapshotter, which needs cgo, is left
# out. crictl removes the kubelet's Pod sandboxes on `hack/node.sh down`.
build_node_runtime() {
  if ! have "$containerd_dir/containerd" "$containerd_dir/containerd-shim-runc-v2" "$containerd_dir/ctr"; then
    echo "building containerd, containerd-shim-runc-v2, ctr $CONTAINERD_VERSION (from a cold Go cache: a few minutes)" >&2
    local tmp; tmp=$(mktemp -d "$bin/.containerd.XXXX")
    local pkg=github.com/containerd/containerd/v2/cmd
    CGO_ENABLED=0 GOBIN=$tmp go install -trimpath -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
      "$pkg/containerd@$CONTAINERD_VERSION" "$pkg/containerd-shim-runc-v2@$CONTAINERD_VERSION" "$pkg/ctr@$CONTAINERD_VERSION"
    rm -rf "$containerd_dir"; mv "$tmp" "$containerd_dir"
  fi
  if ! have "$crictl_dir/crictl"; then
    echo "building crictl $CRICTL_VERSION" >&2
    local tmp; tmp=$(mktemp -d "$bin/.crictl.XXXX")
    CGO_ENABLED=0 GOBIN=$tmp go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
    rm -rf "$crictl_dir"; mv "$tmp" "$crictl_dir"
  fi
}

# envtest wants kube-apiserver and etcd side by side in one directory.
link_envtest() {
  build_kube; build_etcd
  mkdir -p "$envtest_dir"
  ln -sf "$kube_dir/kube-apiserver" "$envtest_dir/kube-apiserver"
  ln -sf "$etcd_dir/etcd" "$envtest_dir/etcd"
}

mkdir -p "$bin"
case "${1:-all}" in
  kube) build_kube ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  envtest) link_envtest ;;
  kubectl) build_kubectl ;;
  promtool) build_promtool ;;
  node) build_node_runtime; link_envtest ;;
  all) link_envtest; build_kwok; build_promtool ;;
  *) echo "usage: $0 [kube|etcd|kwok|envtest|kubectl|promtool|node|all]" >&2; exit 2 ;;
esac
