#!/usr/bin/env bash
# `make dev` and `make dev-down`: the sample story on a local KWOK cluster,
# or, with DEV_NODE=real, on a real node (hack/node.sh, as root).
#
#   hack/dev.sh up     build the tools, create (or reuse) the kwok cluster
#                      extraction-dev, install the CRDs and the default
#                      ExtractorClass, (re)start the operator in
#                      the background, replay the samples and watch them for up
#                      to DEV_WATCH_SECONDS (default 120) or until all are finished
#   hack/dev.sh down   stop the operator and delete the cluster
#
# Idempotent: a second `up` reuses the cluster, restarts the operator from
# the current code and plays the samples again from the start.
#
# DEV_NODE=real plays the story on a real kubelet and containerd instead:
# the operator runs from its image (`make images`) as config/default's
# Deployment, the jobs run the real extractor, and each sample's source is
# replaced by a real file of its format (cmd/extractor/testdata, served from
# this machine on the Pods' bridge by hack/node-files). So the story ends as
# real extractions end: a PDF gets its page count, a format without a file
# to serve fails with SourceNotFound, and the simulation annotations are
# ignored. KWOK stays the default: it is faster and needs no root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
name=${DEV_CLUSTER:-extraction-dev}
dev_dir=$root/bin/dev
pid_file=$dev_dir/operator.pid
operator_log=$dev_dir/operator.log
watch_seconds=${DEV_WATCH_SECONDS:-120}
dev_node=${DEV_NODE:-kwok}
files_pid_file=$dev_dir/files.pid
# Where hack/node-files serves cmd/extractor/testdata: the Pods' bridge's
# gateway, as hack/node.sh sets it up.
files_address=10.88.0.1:18080
KUBECTL=${KUBECTL:-kubectl}
export KUBECTL
# kubectl's discovery cache stays out of $HOME.
export KUBECACHEDIR=${KUBECACHEDIR:-$root/bin/kubectl-cache}

say() { printf '==> %s\n' "$*"; }

# operator_pid prints the pid of the operator this script started, if it
# still runs; a stale pid file or a pid reused by another program prints nothing.
operator_pid() {
  local pid
  pid=$(cat "$pid_file" 2>/dev/null) || return 0
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$root/bin/manager --kubeconfig"; then
    echo "$pid"
  fi
}

stop_operator() {
  local pid i
  pid=$(operator_pid)
  if [ -n "$pid" ]; then
    say "stopping the operator (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}

start_operator() {
  local kubeconfig=$1
  say "building the operator into bin/manager"
  go build -o "$root/bin/manager" ./cmd
  stop_operator
  # setsid: the operator outlives this script and a Ctrl-C in its terminal.
  setsid "$root/bin/manager" --kubeconfig "$kubeconfig" \
    --metrics-bind-address=0 --health-probe-bind-address=0 \
    --image-pull-grace-period=10s \
    >"$operator_log" 2>&1 </dev/null &
  echo $! >"$pid_file"
  sleep 1
  if [ -z "$(operator_pid)" ]; then
    echo "the operator exited at once; the end of $operator_log:" >&2
    tail -n 20 "$operator_log" >&2
    exit 1
  fi
  say "operator running (pid $(cat "$pid_file")), log: ${operator_log#"$root"/}"
}

# watch_story shows `kubectl get extractionjobs -w` while playing the two
# steps a person would: cancel the long-running job once it runs, and ask for
# a manual retry of the job that failed permanently.
watch_story() {
  local k=("$KUBECTL" --kubeconfig "$1") deadline=$((SECONDS + watch_seconds))
  local cancelled="" retried="" running_since="" failed_since="" phases
  "${k[@]}" get extractionjobs --watch &
  local watch_pid=$!
  # shellcheck disable=SC2064
  trap "kill $watch_pid 2>/dev/null || true" EXIT
  while [ $SECONDS -lt $deadline ]; do
    sleep 1
    # Each step waits a few seconds, so the phase it changes stays visible.
    if [ -z "$cancelled" ] && [ "$("${k[@]}" get extractionjob cancel-me -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ]; then
      running_since=${running_since:-$SECONDS}
      if [ $((SECONDS - running_since)) -ge 5 ]; then
        say "cancelling cancel-me: kubectl patch extractionjob cancel-me --type merge -p '{\"spec\":{\"cancel\":true}}'"
        "${k[@]}" patch extractionjob cancel-me --type merge -p '{"spec":{"cancel":true}}' >/dev/null
        cancelled=yes
      fi
    fi
    if [ -z "$retried" ] && [ "$("${k[@]}" get extractionjob manual-retry -o jsonpath='{.status.phase}' 2>/dev/null)" = Failed ]; then
      failed_since=${failed_since:-$SECONDS}
      if [ $((SECONDS - failed_since)) -ge 5 ]; then
        local token
        token=$(date +%s)
        say "asking for a manual retry: kubectl annotate extractionjob manual-retry --overwrite extraction.pybase.io/retry-requested-at=$token"
        "${k[@]}" annotate extractionjob manual-retry --overwrite "extraction.pybase.io/retry-requested-at=$token" >/dev/null
        retried=yes
      fi
    fi
    phases=$("${k[@]}" get extractionjobs -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')
    if [ -n "$cancelled" ] && [ -n "$retried" ] && ! grep -qvE '^(Succeeded|Failed|Cancelled)$' <<<"$phases"; then
      sleep 1
      break
    fi
  done
  kill "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  trap - EXIT
}

# stop_files stops the file server that up_real started, by its PID.
stop_files() {
  local pid
  pid=$(cat "$files_pid_file" 2>/dev/null) || return 0
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$root/bin/dev/node-files"; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  rm -f "$files_pid_file"
}

# The file server's address is private, which the reference extractor refuses
# unless the class allows it (EXTRACTOR_ALLOWED_DESTINATIONS, an admin's
# setting): without it every sample would fail DestinationNotAllowed.
allow_files='{"name": "EXTRACTOR_ALLOWED_DESTINATIONS", "value": "'"${files_address%:*}"'"}'

# real_samples prints config/samples with each job's source replaced by a
# file of its format on the file server, and each class allowing that server.
real_samples() {
  "$KUBECTL" kustomize config/samples | awk -v base="http://$files_address" -v allow="$allow_files" '
    $1 == "kind:" { kind = $2 }
    kind == "ExtractorClass" && /^  image:/ { print; print "  env: [" allow "]"; next }
    $1 == "format:" { format = $2 }
    $1 == "url:" && format != "" {
      file = "missing." format
      if (format == "pdf") file = "pdf/ghostscript-3-pages.pdf"
      if (format == "dxf") file = "dxf/plan-2018-ascii.dxf"
      sub(/url: .*/, "url: " base "/" file); format = ""
    }
    { print }'
}

up_real() {
  [ "$(id -u)" = 0 ] || { echo "DEV_NODE=real needs root: it starts a kubelet and a container runtime" >&2; exit 1; }
  mkdir -p "$dev_dir"
  local kubeconfig
  kubeconfig=$(hack/node.sh up)
  local k=("$KUBECTL" --kubeconfig "$kubeconfig")

  say "deploying the operator from its image with config/default (make deploy)"
  KUBECONFIG=$kubeconfig DEPLOY_OVERLAY=$dev_dir/deploy hack/deploy.sh apply >/dev/null
  "${k[@]}" -n extraction-system rollout status deployment/extraction-operator-controller-manager --timeout=3m >/dev/null
  "${k[@]}" patch extractorclass reference --type=merge -p '{"spec": {"env": ['"$allow_files"']}}' >/dev/null

  say "serving cmd/extractor/testdata on http://$files_address for the extractor's Pods"
  stop_files
  go build -o "$root/bin/dev/node-files" ./hack/node-files
  setsid "$root/bin/dev/node-files" -dir "$root/cmd/extractor/testdata" -listen "$files_address" \
    >"$dev_dir/files.log" 2>&1 </dev/null &
  echo $! >"$files_pid_file"

  say "applying the samples (config/samples) from the start, with real files as their sources"
  "${k[@]}" delete -k config/samples --ignore-not-found --wait=true >/dev/null
  real_samples | "${k[@]}" apply -f - >/dev/null

  cat <<EOF

The real node's kubeconfig: ${kubeconfig}
Operator log:               kubectl --kubeconfig ${kubeconfig} -n extraction-system logs deploy/extraction-operator-controller-manager
Stop everything:            make dev-down DEV_NODE=real

EOF
  say "kubectl get extractionjobs -w (up to ${watch_seconds}s, until every sample has finished)"
  watch_story "$kubeconfig"
  echo
  say "where the samples ended on the real node (kubectl get extractionjobs -o wide):"
  "${k[@]}" get extractionjobs -o wide
}

down_real() {
  stop_files
  hack/node.sh down
  rm -rf "$dev_dir"
}

up() {
  mkdir -p "$dev_dir"
  local kubeconfig
  kubeconfig=$(hack/kwok-cluster.sh up "$name")
  local k=("$KUBECTL" --kubeconfig "$kubeconfig")

  say "installing the CRDs and the default ExtractorClass"
  "${k[@]}" apply --server-side --force-conflicts -k config/crd >/dev/null
  "${k[@]}" wait --for=condition=Established crd/extractionjobs.extraction.pybase.io \
    crd/extractorclasses.extraction.pybase.io --timeout=60s >/dev/null
  # The reference class of config/default: on KWOK no image is pulled, so it
  # serves every format as it is.
  "${k[@]}" apply --server-side --force-conflicts -f config/default/reference-extractorclass.yaml >/dev/null

  start_operator "$kubeconfig"

  say "applying the samples (config/samples) from the start"
  "${k[@]}" delete -k config/samples --ignore-not-found --wait=true >/dev/null
  "${k[@]}" apply -k config/samples >/dev/null

  cat <<EOF

The cluster's kubeconfig:  ${kubeconfig}
From another shell:        kubectl --kubeconfig ${kubeconfig} get extractionjobs -w
                           export KUBECONFIG=${kubeconfig}
Operator log:              ${operator_log}
Stop everything:           make dev-down

EOF
  say "kubectl get extractionjobs -w (up to ${watch_seconds}s, until every sample has finished)"
  watch_story "$kubeconfig"
  echo
  say "where the samples ended (kubectl get extractionjobs -o wide):"
  "${k[@]}" get extractionjobs -o wide
  cat <<EOF

The cluster and the operator keep running; see a job's story with
  kubectl --kubeconfig ${kubeconfig} describe extractionjob flaky-connection
EOF
}

down() {
  stop_operator
  hack/kwok-cluster.sh down "$name"
  rm -rf "$dev_dir"
}

case ${1:-}/$dev_node in
  up/kwok) up ;;
  down/kwok) down ;;
  up/real) up_real ;;
  down/real) down_real ;;
  *) echo "usage: [DEV_NODE=kwok|real] $0 up|down" >&2; exit 2 ;;
esac
