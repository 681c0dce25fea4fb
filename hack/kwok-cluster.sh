#!/usr/bin/env bash
# Brings a local KWOK cluster up or down: a real etcd, kube-apiserver,
# kube-controller-manager (garbage collector included) and kube-scheduler,
# with KWOK playing the kubelet of one fake node through the stages in
# config/kwok/. Every binary comes from hack/build-tools.sh, so nothing is
# downloaded from anywhere but the Go module proxy.
#
#   hack/kwok-cluster.sh up NAME          create the cluster, or reuse it when it
#                                         is healthy and its stages are unchanged;
#                                         prints the kubeconfig path on stdout
#   hack/kwok-cluster.sh down NAME        stop and delete the cluster (no error if absent)
#   hack/kwok-cluster.sh kubeconfig NAME  print the kubeconfig path
#
# Everything lives under bin/kwok (KWOK_WORKDIR), nothing in $HOME; kwokctl's
# own log goes to bin/kwok/NAME.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${TOOLS_BIN:-$root/bin}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
KUBECTL=${KUBECTL:-kubectl}

export KWOK_WORKDIR=${KWOK_WORKDIR:-$bin/kwok}
# kubectl's discovery cache, too, stays out of $HOME.
export KUBECACHEDIR=${KUBECACHEDIR:-$bin/kubectl-cache}
export KWOK_KUBE_VERSION=$KUBE_VERSION
export KWOK_KUBE_APISERVER_BINARY=$bin/kube-$KUBE_VERSION/kube-apiserver
export KWOK_KUBE_CONTROLLER_MANAGER_BINARY=$bin/kube-$KUBE_VERSION/kube-controller-manager
export KWOK_KUBE_SCHEDULER_BINARY=$bin/kube-$KUBE_VERSION/kube-scheduler
export KWOK_ETCD_BINARY=$bin/etcd-$ETCD_VERSION/etcd
export KWOK_CONTROLLER_BINARY=$bin/kwok-$KWOK_VERSION/kwok
KWOK_KUBECTL_BINARY=$(command -v "$KUBECTL" || true)
export KWOK_KUBECTL_BINARY
kwokctl=$bin/kwok-$KWOK_VERSION/kwokctl

# Stages and node of the cluster; a change to any of them recreates it.
stage_files=("$root/config/kwok/stages-node.yaml" "$root/config/kwok/stages-pod.yaml" "$root/config/kwok/stages-extraction.yaml")
node_file=$root/config/kwok/node.yaml
# kwokctl wants a kubeconfig to add the cluster to and remove it from; this
# one is never used, so the user's ~/.kube/config stays untouched.
scratch_kubeconfig=$KWOK_WORKDIR/kwokctl-scratch.kubeconfig

usage() { echo "usage: $0 up|down|kubeconfig NAME" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 name=$2
cluster_dir=$KWOK_WORKDIR/clusters/$name
kubeconfig=$cluster_dir/kubeconfig.yaml
log=$KWOK_WORKDIR/$name.log
stamp=$cluster_dir/extraction-stages.sha256

k() { "$KUBECTL" --kubeconfig "$kubeconfig" "$@"; }

fingerprint() {
  { cat "${stage_files[@]}" "$node_file"; echo "$KUBE_VERSION $ETCD_VERSION $KWOK_VERSION $KWOK_KUBECTL_BINARY"; } | sha256sum | cut -d' ' -f1
}

healthy() {
  [ -f "$kubeconfig" ] && k get --raw /readyz >/dev/null 2>&1
}

delete_cluster() {
  if [ -d "$cluster_dir" ]; then
    echo "deleting kwok cluster $name" >&2
    "$kwokctl" --name "$name" delete cluster --kubeconfig "$scratch_kubeconfig" >>"$log" 2>&1 || {
      echo "kwokctl delete cluster failed; see $log" >&2; return 1; }
  fi
  rm -rf "$cluster_dir" "$scratch_kubeconfig"
}

create_cluster() {
  local configs=() f
  for f in "${stage_files[@]}"; do configs+=(--config "$f"); done
  echo "creating kwok cluster $name (log: $log)" >&2
  local start=$SECONDS
  if ! "$kwokctl" --name "$name" "${configs[@]}" create cluster \
      --runtime binary --kubeconfig "$scratch_kubeconfig" --wait 5m >>"$log" 2>&1; then
    echo "kwokctl create cluster failed; the end of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
  fingerprint >"$stamp"
  echo "kwok cluster $name is up after $((SECONDS - start))s" >&2
}

# The fake node, Ready, and the default ServiceAccount that ServiceAccount
# admission wants before it admits a Pod into the default namespace.
# Generous timeouts: on a busy two-core machine the control plane can take
# minutes where it usually takes seconds.
prepare_cluster() {
  k apply -f "$node_file" >/dev/null
  if ! k wait --for=condition=Ready -f "$node_file" --timeout=5m >/dev/null; then
    echo "the fake node never became Ready in kwok cluster $name; the end of the kwok controller's log:" >&2
    tail -n 20 "$cluster_dir/logs/kwok-controller.log" >&2 || true
    return 1
  fi
  local deadline=$((SECONDS + 300))
  until k -n default get serviceaccount default >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "the default ServiceAccount never appeared in kwok cluster $name; the end of kube-controller-manager's log:" >&2
      tail -n 20 "$cluster_dir/logs/kube-controller-manager.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

up() {
  "$root/hack/build-tools.sh" all
  mkdir -p "$KWOK_WORKDIR"
  if [ -d "$cluster_dir" ]; then
    if [ "$(cat "$stamp" 2>/dev/null)" != "$(fingerprint)" ]; then
      echo "the stages in config/kwok changed since kwok cluster $name was created: recreating it" >&2
      delete_cluster
    elif ! healthy; then
      echo "kwok cluster $name exists but does not answer: starting it" >&2
      "$kwokctl" --name "$name" start cluster --wait 5m >>"$log" 2>&1 || true
      healthy || { echo "starting failed: recreating kwok cluster $name" >&2; delete_cluster; }
    else
      echo "reusing kwok cluster $name" >&2
    fi
  fi
  [ -d "$cluster_dir" ] || create_cluster
  prepare_cluster
  echo "$kubeconfig"
}

case $cmd in
  up) up ;;
  down) delete_cluster ;;
  kubeconfig) echo "$kubeconfig" ;;
  *) usage ;;
esac
