#!/usr/bin/env bash
# A one-node Kubernetes cluster with a real kubelet on this machine, for the
# real-node tests (test/node) and `make dev DEV_NODE=real`:
#
#   hack/node.sh up       start etcd, kube-apiserver, kube-controller-manager,
#                         kube-scheduler, containerd, the kubelet and kube-proxy
#                         (iptables mode), import the images of bin/images and
#                         wait for the Node to be Ready; prints the admin
#                         kubeconfig's path on stdout
#   hack/node.sh down     stop all of it and leave nothing behind: processes,
#                         mounts, cgroups, network interfaces, network
#                         namespaces, iptables rules, changed kernel settings
#   hack/node.sh status   say what runs
#   hack/node.sh crictl … crictl against this node's containerd
#   hack/node.sh ctr …    ctr against this node's containerd (namespace k8s.io)
#
# Needs root: it starts a kubelet and a container runtime, and installs
# runc, the CNI plugins, iptables and openssl with apt-get when missing. The
# binaries come from hack/build-tools.sh (`node`), the images from `make
# images`. State and logs live in bin/node (NODE_DIR); only the sockets live
# in /run/extraction-node, because a unix socket's path may not be longer than
# 108 bytes and containerd puts one per shim, named by a 64-character hash,
# under its state directory.
#
# Every process is started by this script, its PID recorded in
# bin/node/pids, and stopped by that PID after checking that the PID still
# runs the binary it started.
#
# The facts of this host (Debian 12, cgroup v1, a kernel where root may not
# lower oom_score_adj) are documented where they matter, with the error each
# one avoids.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${TOOLS_BIN:-$root/bin}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}
KUBECTL=${KUBECTL:-kubectl}
export KUBECACHEDIR=${KUBECACHEDIR:-$bin/kubectl-cache}

kube_bin=$bin/kube-$KUBE_VERSION
etcd_bin=$bin/etcd-$ETCD_VERSION/etcd
containerd_bin=$bin/containerd-$CONTAINERD_VERSION
crictl_bin=$bin/crictl-$CRICTL_VERSION/crictl
images_dir=${NODE_IMAGES:-$bin/images}

# bin/ may be a symlink; mounts and cgroup paths are compared as the kernel
# writes them, so every path here is a real one.
mkdir -p "$bin/node"
node_dir=$(realpath "${NODE_DIR:-$bin/node}")
run_dir=/run/extraction-node
pids=$node_dir/pids
logs=$node_dir/logs
pki=$node_dir/pki
conf=$node_dir/config
saved=$node_dir/saved
kubelet_root=$node_dir/kubelet
containerd_root=$node_dir/containerd
kubeconfig=$conf/admin.kubeconfig

node_name=${NODE_NAME:-extraction-node}
# The Pods' bridge and its gateway address. node.sh creates the bridge itself
# (the CNI bridge plugin reuses it) so that kube-apiserver can listen on the
# gateway address before the first Pod: see start_apiserver.
bridge=cni0
pod_cidr=10.88.0.0/16
gateway=10.88.0.1
service_cidr=10.96.0.0/16
kubernetes_service_ip=10.96.0.1
apiserver_port=${NODE_APISERVER_PORT:-16443}
etcd_client=127.0.0.1:${NODE_ETCD_PORT:-12379}
etcd_peer=127.0.0.1:${NODE_ETCD_PEER_PORT:-12380}
server=https://$gateway:$apiserver_port
containerd_sock=$run_dir/containerd.sock
pause_image=registry.k8s.io/pause:3.10

# The kernel settings that the kubelet (setupKernelTunables), the bridge
# plugin (isGateway turns on forwarding) and kube-proxy may change for the
# whole machine. `up` saves them, `down` restores them: otherwise a test run
# would leave this machine rebooting 10 s after a kernel oops
# (kernel.panic=10, panic_on_oops=1) and overcommitting memory.
sysctls=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet net.netfilter.nf_conntrack_max)

# The daemons, in the order they start; down stops them in reverse.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'hack/node.sh: %s\n' "$*" >&2; exit 1; }
k() { "$KUBECTL" --kubeconfig "$kubeconfig" "$@"; }
crictl() { "$crictl_bin" --config "$conf/crictl.yaml" "$@"; }
ctr() { "$containerd_bin/ctr" --address "$containerd_sock" --namespace k8s.io "$@"; }

binary_of() {
  case $1 in
    etcd) echo "$etcd_bin" ;;
    containerd) echo "$containerd_bin/containerd" ;;
    *) echo "$kube_bin/$1" ;;
  esac
}

# pid_of prints the PID recorded for a component if that PID still runs the
# component's binary; a stale file or a reused PID prints nothing.
pid_of() {
  local pid exe
  pid=$(cat "$pids/$1.pid" 2>/dev/null) || return 0
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  [ "$exe" = "$(realpath "$(binary_of "$1")")" ] && echo "$pid"
  return 0
}

# start runs a component in its own session (so a Ctrl-C in the caller's
# terminal does not reach it), logging to bin/node/logs/NAME.log.
start() {
  local name=$1; shift
  setsid "$(binary_of "$name")" "$@" >"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pids/$name.pid"
}

# stop stops components together: SIGTERM, and SIGKILL for what still runs
# after 10 s.
stop() {
  local name pid i begin=$SECONDS stopping=()
  for name in "$@"; do
    pid=$(pid_of "$name")
    rm -f "$pids/$name.pid"
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || true
    stopping+=("$name:$pid")
  done
  for i in $(seq 1 100); do
    local left=()
    for name in "${stopping[@]}"; do
      kill -0 "${name#*:}" 2>/dev/null && left+=("$name")
    done
    stopping=("${left[@]}")
    [ ${#stopping[@]} -gt 0 ] || break
    sleep 0.1
  done
  for name in "${stopping[@]}"; do
    say "${name%:*} (pid ${name#*:}) did not stop in 10 s: SIGKILL"
    kill -KILL "${name#*:}" 2>/dev/null || true
    while kill -0 "${name#*:}" 2>/dev/null; do sleep 0.1; done
  done
  echo "stopped $* in $((SECONDS - begin)) s" >>"$logs/down.log"
}

# wait_for runs a command until it succeeds, up to a number of seconds, and
# shows the end of a component's log if it never does.
wait_for() {
  local what=$1 seconds=$2 log=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "hack/node.sh: $what not ready after ${seconds}s; the end of $log:" >&2
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

install_packages() {
  # runc and the CNI plugins come from Debian (the plugins land in
  # /usr/lib/cni); containerd does not, see hack/build-tools.sh.
  local missing=()
  [ -x /usr/sbin/runc ] || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v sysctl >/dev/null || missing+=(procps)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# make_pki writes a CA, the API server's serving certificate, client
# certificates for the admin (also used by the controller manager, the
# scheduler, kube-proxy and the API server towards the kubelet) and the
# kubelet, and the ServiceAccount token signing key.
make_pki() {
  [ -f "$pki/done" ] && return
  mkdir -p "$pki"
  local o=(-days 30 -sha256)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj /CN=extraction-node-ca "${o[@]}" 2>/dev/null
  client_cert() {
    openssl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2" 2>/dev/null
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -out "$pki/$1.crt" "${o[@]}" ${3:+-extfile "$3"} 2>/dev/null
  }
  printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' \
    "$gateway" "$kubernetes_service_ip" >"$pki/apiserver.ext"
  client_cert apiserver /CN=kube-apiserver "$pki/apiserver.ext"
  client_cert admin "/O=system:masters/CN=admin"
  # The Node authorizer and NodeRestriction know a kubelet by this name.
  client_cert kubelet "/O=system:nodes/CN=system:node:$node_name"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  touch "$pki/done"
}

write_kubeconfig() {
  local path=$1 user=$2
  cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $node_name
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: $user
  user: {client-certificate: "$pki/$user.crt", client-key: "$pki/$user.key"}
contexts:
- name: $node_name
  context: {cluster: $node_name, user: $user}
current-context: $node_name
EOF
}

write_configs() {
  mkdir -p "$conf/net.d"
  write_kubeconfig "$kubeconfig" admin
  write_kubeconfig "$conf/kubelet.kubeconfig" kubelet

  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' "$containerd_sock" "$containerd_sock" >"$conf/crictl.yaml"

  # version = 3 is the configuration format containerd 2.x reads.
  cat >"$conf/containerd.toml" <<EOF
version = 3
root = "$containerd_root/root"
state = "$run_dir/state"
imports = []

[grpc]
  address = "$containerd_sock"

[plugins.'io.containerd.server.v1.ttrpc']
  address = "$containerd_sock.ttrpc"

[plugins.'io.containerd.shim.v1.manager']
  socket_dir = "$run_dir/s"

[plugins.'io.containerd.internal.v1.opt']
  path = "$containerd_root/opt"

# NRI would open /var/run/nri/nri.sock; nothing here uses it.
[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    # No registry is reachable: the sandbox image is built by \`make images\`
    # and imported by this script. Pinned, so it is never collected.
    sandbox = "$pause_image"

[plugins.'io.containerd.cri.v1.runtime']
  # Root on this host may not lower a process's oom_score_adj. Without this,
  # runc tries to and every Pod sandbox fails with "can't get final child's
  # PID from pipe".
  restrict_oom_score_adj = true
  # Network namespaces under containerd's state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
      # The kubelet's cgroupDriver is cgroupfs; both must agree.
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$conf/net.d"
EOF

  # ipMasq is off: Pods only talk to this machine, and masquerading would
  # add iptables rules of the plugin's own.
  cat >"$conf/net.d/10-extraction.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "extraction",
  "plugins": [{
    "type": "bridge",
    "bridge": "$bridge",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "dataDir": "$node_dir/cni-ipam",
      "ranges": [[{"subnet": "$pod_cidr", "gateway": "$gateway"}]],
      "routes": [{"dst": "0.0.0.0/0"}]
    }
  }]
}
EOF

  cat >"$conf/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host has cgroup v1, which kubelet 1.37 refuses unless told otherwise
# ("kubelet is configured to not run on a host using cgroup v1"). cgroup v1
# is deprecated in both the kubelet and containerd: this works only as long
# as failCgroupV1: false does.
failCgroupV1: false
# No systemd runs here to delegate cgroups to. The QoS cgroups (kubepods,
# burstable, besteffort) work on cgroup v1 with cgroupfs.
cgroupDriver: cgroupfs
cgroupsPerQOS: true
# A machine with swap (this one has none today) would stop the kubelet with
# "running with swap on is not supported".
failSwapOn: false
# The kubelet sets its own oom_score_adj to -999 by default; root here may
# not lower it (writing -999 to /proc/self/oom_score_adj fails with
# "Permission denied").
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$containerd_sock
# The kubelet serves on the bridge's gateway address, the Node's address
# (--node-ip): a kubelet on 127.0.0.1 refuses that as its node IP ("nodeIP
# can't be loopback address"), the Node then has no address, and kubectl logs
# fails with "no preferred addresses found". On 127.0.0.1 with another node
# IP, logs and exec would work but the API server's node proxy refuses the
# address; here the kubelet's stats can be read through the node proxy or
# from this port directly.
address: $gateway
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
# Imported images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# This machine's disk is shared: evict only when it is really full.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
# The node has no cluster DNS. A Pod with dnsPolicy ClusterFirst (the
# default, and the operator's attempt Pods') gets a MissingClusterDNS warning
# event and this resolv.conf; dnsPolicy: Default gets the same without the
# event.
resolvConf: /etc/resolv.conf
podLogsDir: $node_dir/pod-logs
volumePluginDir: $node_dir/volume-plugins
serializeImagePulls: false
maxPods: 110
EOF

  cat >"$conf/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$kubeconfig"}
hostnameOverride: $node_name
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $pod_cidr
detectLocalMode: ClusterCIDR
# Leave the machine's conntrack limits alone (0: do not change).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
# NodePorts on 127.0.0.1 would need net.ipv4.conf.all.route_localnet=1.
iptables: {localhostNodePorts: false}
EOF
}

save_host_state() {
  mkdir -p "$saved"
  [ -f "$saved/sysctl" ] && return   # an earlier up that was not brought down
  local s
  for s in "${sysctls[@]}"; do
    [ -e "/proc/sys/${s//.//}" ] && echo "$s=$(sysctl -n "$s")"
  done >"$saved/sysctl"
  # The kubelet makes /var/log/containers for its symlinks; libcni caches
  # results in /var/lib/cni. Remove them on down only if they were not here.
  : >"$saved/created"
  for d in /var/log/containers /var/lib/cni; do
    [ -e "$d" ] || echo "$d" >>"$saved/created"
  done
}

start_etcd() {
  start etcd --name "$node_name" --data-dir "$node_dir/etcd" \
    --listen-client-urls "http://$etcd_client" --advertise-client-urls "http://$etcd_client" \
    --listen-peer-urls "http://$etcd_peer" --initial-advertise-peer-urls "http://$etcd_peer" \
    --initial-cluster "$node_name=http://$etcd_peer" --log-level warn
}

# The bridge exists before the first Pod, with the gateway address, so that
# kube-apiserver can listen there. A Pod reaches the API server through the
# kubernetes Service, whose endpoint is the advertised address: on 127.0.0.1
# the endpoint reconciler would fail (an Endpoints address may not be a
# loopback one; it would need --endpoint-reconciler-type none) and a Pod
# could not reach it anyway.
make_bridge() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
  fi
  ip addr replace "$gateway/16" dev "$bridge"
  ip link set "$bridge" up
}

# --kubelet-preferred-address-types InternalIP: the Node's hostname,
# extraction-node, resolves nowhere, and kubectl logs would fail with "lookup
# extraction-node: no such host".
start_apiserver() {
  start kube-apiserver --etcd-servers "http://$etcd_client" \
    --bind-address "$gateway" --advertise-address "$gateway" --secure-port "$apiserver_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$service_cidr" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=false --profiling=false
}

start_control_plane() {
  # --secure-port 0: neither serves anything the tests need, and fixed ports
  # could clash with other clusters on this machine.
  start kube-controller-manager --kubeconfig "$kubeconfig" --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=false --secure-port 0 --controllers '*'
  start kube-scheduler --kubeconfig "$kubeconfig" --leader-elect=false --secure-port 0
}

start_containerd() {
  mkdir -p "$run_dir" "$containerd_root"
  # containerd finds containerd-shim-runc-v2 on its PATH.
  PATH=$containerd_bin:$PATH start containerd --config "$conf/containerd.toml"
  wait_for containerd 30 "$logs/containerd.log" ctr version
}

# import_images imports every image tarball of bin/images: the sandbox
# (pause) image first, which the runtime cannot pull here. ctr reads one
# tarball per call (it silently skips the rest), and silently does not
# import an image whose config has no OS and architecture: so each image is
# looked for afterwards.
import_images() {
  local tar name
  compgen -G "$images_dir/*.tar" >/dev/null || die "no image tarballs in $images_dir: run \`make images\`"
  for tar in "$images_dir"/*.tar; do
    ctr images import "$tar" >/dev/null 2>>"$logs/ctr.log"
  done
  local present
  present=$(ctr images ls -q 2>>"$logs/ctr.log")
  for name in $(image_names); do
    grep -qxF "$name" <<<"$present" || die "image $name of $images_dir was not imported (does its config name OS and architecture?)"
  done
}

# image_names prints the references of the images in bin/images, as
# `make images` lists them in images.txt: file name, reference, image ID.
image_names() {
  awk 'NF >= 2 && $1 !~ /^#/ {print $2}' "$images_dir/images.txt"
}

start_kubelet() {
  mkdir -p "$kubelet_root" "$node_dir/pod-logs" "$node_dir/volume-plugins"
  date +%s.%N >"$node_dir/kubelet-started"
  start kubelet --config "$conf/kubelet.yaml" --kubeconfig "$conf/kubelet.kubeconfig" \
    --root-dir "$kubelet_root" --cert-dir "$kubelet_root/pki" \
    --hostname-override "$node_name" --node-ip "$gateway"
}

kubernetes_service_proxied() {
  iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -qF "default/kubernetes:https cluster IP"
}

node_ready() {
  [ "$(k get node "$node_name" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root: it starts a kubelet and a container runtime (make test: set NODE_TESTS=skip to skip the real-node tier)"
  if [ -n "$(pid_of kubelet)" ] && node_ready; then
    say "the node is up already"
    echo "$kubeconfig"
    return
  fi
  down_quietly
  local begin=$SECONDS
  for f in "$kube_bin"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy} "$etcd_bin" \
    "$containerd_bin"/{containerd,containerd-shim-runc-v2,ctr} "$crictl_bin"; do
    [ -x "$f" ] || die "$f is missing: run \`hack/build-tools.sh node\`"
  done
  install_packages
  mkdir -p "$pids" "$conf"
  rm -rf "$logs"; mkdir -p "$logs"
  make_pki
  write_configs
  save_host_state

  say "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
  start_etcd
  make_bridge
  start_apiserver
  wait_for kube-apiserver 60 "$logs/kube-apiserver.log" k get --raw /readyz
  start_control_plane

  say "starting containerd and importing the images of ${images_dir#"$root"/}"
  start_containerd
  import_images

  say "starting the kubelet and kube-proxy"
  start_kubelet
  start kube-proxy --config "$conf/kube-proxy.yaml"
  wait_for "Node $node_name" 60 "$logs/kubelet.log" node_ready
  awk -v now="$(date +%s.%N)" '{printf "%.2f\n", now - $1}' "$node_dir/kubelet-started" >"$node_dir/kubelet-to-ready-seconds"
  # Pods need a default ServiceAccount; kube-proxy must have written the
  # kubernetes Service's rules before a Pod uses it.
  wait_for "ServiceAccount default" 30 "$logs/kube-controller-manager.log" k -n default get serviceaccount default
  wait_for "kube-proxy" 30 "$logs/kube-proxy.log" kubernetes_service_proxied
  say "node $node_name ready in $((SECONDS - begin)) s (kubelet start to Ready: $(cat "$node_dir/kubelet-to-ready-seconds") s)"
  echo "$kubeconfig"
}

# remove_sandboxes stops and removes every Pod sandbox while containerd still
# runs: after the kubelet stops they remain, with their shims, mounts and
# network namespaces.
remove_sandboxes() {
  [ -S "$containerd_sock" ] && [ -n "$(pid_of containerd)" ] || return 0
  local ids
  ids=$(crictl pods -q 2>/dev/null) || return 0
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  crictl stopp $ids >/dev/null || true
  # shellcheck disable=SC2086
  crictl rmp -f $ids >/dev/null || true
}

# stop_shims stops what remains of the shims of this containerd: each one
# names the containerd it serves in its -address flag.
stop_shims() {
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$(realpath "$containerd_bin/containerd-shim-runc-v2")" ] || continue
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-address $containerd_sock " || continue
    kill -KILL "$pid" 2>/dev/null || true
  done
}

unmount_under() {
  local dir
  for dir in "$@"; do
    # Deepest first; mountinfo escapes spaces as \040, which none of these have.
    awk -v d="$dir/" 'index($5, d) == 1 || $5 == substr(d, 1, length(d) - 1) {print $5}' /proc/self/mountinfo |
      sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  done
}

remove_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$c" ] || continue
    find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# remove_iptables removes the chains of kube-proxy (KUBE-…, which
# `kube-proxy --cleanup` also removes), of the kubelet (its KUBE-KUBELET-CANARY
# and KUBE-IPTABLES-HINT chains, which nothing removes) and of the CNI plugins
# (CNI-…), in IPv4 and IPv6, and the rules that jump to them.
remove_iptables() {
  local cmd table chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle raw; do
      local rules
      rules=$("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-A" && / -j (KUBE|CNI)-/ {sub(/^-A/, "-D"); print}')
      while read -r rule; do
        [ -n "$rule" ] && eval "$cmd -t $table $rule" 2>/dev/null || true
      done <<<"$rules"
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

restore_host_state() {
  [ -f "$saved/sysctl" ] || return 0
  local line
  while read -r line; do
    sysctl -q -w "$line" >/dev/null 2>&1 || true
  done <"$saved/sysctl"
  while read -r d; do
    rm -rf "$d"
  done <"$saved/created"
  rm -rf "$saved"
}

down() {
  mkdir -p "$logs"
  stop kubelet
  remove_sandboxes
  stop kube-proxy
  [ -x "$kube_bin/kube-proxy" ] && [ -f "$conf/kube-proxy.yaml" ] &&
    "$kube_bin/kube-proxy" --cleanup --config "$conf/kube-proxy.yaml" >>"$logs/kube-proxy-cleanup.log" 2>&1 || true
  stop kube-scheduler kube-controller-manager kube-apiserver etcd
  stop containerd
  stop_shims
  unmount_under "$kubelet_root" "$containerd_root" "$run_dir"
  remove_cgroups
  ip link show "$bridge" >/dev/null 2>&1 && ip link delete "$bridge"
  remove_iptables
  # The kubelet's symlinks to this node's container logs.
  find /var/log/containers -maxdepth 1 -type l -lname "$node_dir/*" -delete 2>/dev/null || true
  restore_host_state
  rm -rf "$run_dir" "$kubelet_root" "$containerd_root" "$node_dir/etcd" "$node_dir/cni-ipam" \
    "$node_dir/pod-logs" "$node_dir/volume-plugins" "$pids"
}

down_quietly() { down 2>/dev/null; }

status() {
  local c pid state=0
  for c in "${components[@]}"; do
    pid=$(pid_of "$c")
    if [ -n "$pid" ]; then printf '%-24s running (pid %s)\n' "$c" "$pid"; else printf '%-24s stopped\n' "$c"; state=1; fi
  done
  if [ $state = 0 ] && node_ready; then echo "node $node_name Ready; kubeconfig: $kubeconfig"; else return 1; fi
}

case ${1:-} in
  up) up ;;
  down) [ "$(id -u)" = 0 ] || die "needs root"; down ;;
  status) status ;;
  crictl) shift; crictl "$@" ;;
  ctr) shift; ctr "$@" ;;
  *) echo "usage: $0 up|down|status|crictl ARGS|ctr ARGS" >&2; exit 2 ;;
esac
