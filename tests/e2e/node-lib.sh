#!/usr/bin/env bash
# Functions of the node tier (sourced by node.sh after lib.sh): a one-node Kubernetes cluster
# with a real kubelet, containerd and runc, inside a network namespace that node.sh creates.
#
# Layout of the namespace (nothing in it has a route out, so no test traffic can leave it):
#   lo          127.0.0.1, the node address E2E_NODE_IP and the `kubernetes` Service's
#               ClusterIP 10.0.0.1
#   e2e-cni0    the pod bridge (CNI bridge plugin, host-local IPAM, E2E_POD_SUBNET), the
#               pods' default gateway
# The API server listens on 0.0.0.0:443 of the namespace, so pods reach it at the ClusterIP
# 10.0.0.1:443 that the kubelet hands them in KUBERNETES_SERVICE_HOST/PORT (no kube-proxy runs:
# the ClusterIP is a local address of the node instead). It calls the injector's webhook Service
# by endpoint routing (--enable-aggregator-routing=true): it resolves the Service to a ready
# endpoint's pod IP and connects there, as it does for aggregated APIs.
# PostgreSQL and OpenBao listen on E2E_NODE_IP, where pods reach them.
#
# All state lives under $E2E_STATE: containerd's root and state (overlayfs snapshots, the pods'
# network namespace files), the kubelet's root dir, pod logs, CNI IPAM. e2e_node_teardown undoes
# what the kubelet and containerd leave behind: mounts under $E2E_STATE and the cgroup tree
# under E2E_CGROUP_ROOT.

E2E_NODE_NAME="${E2E_NODE_NAME:-e2e-node}"
E2E_NODE_IP="${E2E_NODE_IP:-10.87.0.2}"
E2E_POD_SUBNET="${E2E_POD_SUBNET:-10.88.0.0/24}"
E2E_CNI_BRIDGE=e2e-cni0
E2E_CLUSTER_IP=10.0.0.1

# e2e_node_net_up: inside the namespace, the addresses above on lo.
e2e_node_net_up() {
  ip link set lo up
  ip addr add "$E2E_NODE_IP/32" dev lo
  ip addr add "$E2E_CLUSTER_IP/32" dev lo
}

# e2e_node_pki: the node's certificates, in addition to e2e_pki's (kubelet client and serving,
# the API server's client for the kubelet, the scheduler).
e2e_node_pki() {
  e2e_cert kubelet "system:node:$E2E_NODE_NAME" system:nodes
  e2e_cert kubelet-serving "$E2E_NODE_NAME" "" "IP:$E2E_NODE_IP,DNS:$E2E_NODE_NAME"
  e2e_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  e2e_cert scheduler system:kube-scheduler
}

# e2e_node_control_plane: etcd, the API server as the node tier needs it, the controllers a
# node cluster needs, the scheduler.
e2e_node_control_plane() {
  local d="$E2E_STATE/pki"
  e2e_pki
  e2e_node_pki
  e2e_etcd_start || return 1
  E2E_API_BIND=0.0.0.0 E2E_API_ADVERTISE="$E2E_NODE_IP" E2E_APISERVER_EXTRA="--enable-aggregator-routing=true \
--kubelet-client-certificate=$d/apiserver-kubelet-client.crt --kubelet-client-key=$d/apiserver-kubelet-client.key \
--kubelet-preferred-address-types=InternalIP \
--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,NodeRestriction,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook" \
    e2e_apiserver_start 443 || return 1
  E2E_KCM_CONTROLLERS="serviceaccount-token-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller,deployment-controller,replicaset-controller,job-controller,root-ca-certificate-publisher-controller,endpoints-controller,endpointslice-controller,node-lifecycle-controller,pod-garbage-collector-controller,disruption-controller" \
    e2e_kcm_start || return 1
  e2e_kubeconfig "$E2E_STATE/scheduler.kubeconfig" scheduler
  e2e_spawn kube-scheduler "$E2E_KUBE_SCHEDULER" \
    --kubeconfig="$E2E_STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$E2E_STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$E2E_STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --v=1
  e2e_wait kube-scheduler 60 curl -fsSk https://127.0.0.1:10259/healthz
}

# e2e_containerd_start: containerd with the CRI plugin configured for this VM kind and the
# pod bridge; the sandbox image is the project's pause image.
e2e_containerd_start() {
  local c="$E2E_STATE/containerd"
  mkdir -p "$c/root" "$c/state" "$E2E_STATE/cni/net.d" "$E2E_STATE/cni/ipam" "$E2E_STATE/run"
  E2E_CONTAINERD_SOCK="$E2E_STATE/run/containerd.sock"
  cat > "$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$E2E_CONTAINERD_SOCK"
[ttrpc]
  address = "$E2E_STATE/run/containerd-ttrpc.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE_PAUSE"
  # root here lacks CAP_SYS_RESOURCE: the kubelet's oom_score_adj of -998 for sandboxes makes
  # runc fail ("can't get final child's PID from pipe: EOF"); this keeps the score at or above
  # containerd's own.
  restrict_oom_score_adj = true
  # The pods' network namespace files under the state dir, so teardown finds every one.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$E2E_STATE/cni/net.d"
EOF
  cat > "$E2E_STATE/cni/net.d/10-e2e-bridge.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "e2e-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$E2E_CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "subnet": "$E2E_POD_SUBNET",
        "dataDir": "$E2E_STATE/cni/ipam",
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
  e2e_spawn containerd containerd --config "$c/config.toml"
  e2e_wait containerd 60 e2e_ctr version
}

e2e_ctr() { ctr --address "$E2E_CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# e2e_images_import: every image archive images/build.sh wrote, into containerd's k8s.io
# namespace (what the kubelet sees); pods then use them with imagePullPolicy IfNotPresent.
e2e_images_import() {
  local f
  for f in "$E2E_IMAGES_DIR"/*.tar; do
    e2e_ctr images import --snapshotter overlayfs "$f" >&2 || return 1
  done
  e2e_ctr images ls -q >&2
}

# e2e_kubelet_start: the kubelet, joined to the API server as node E2E_NODE_NAME.
e2e_kubelet_start() {
  local k="$E2E_STATE/kubelet" d="$E2E_STATE/pki" ctrl
  mkdir -p "$k" "$E2E_STATE/podlogs"
  # The pods' cgroups go under a root of this run's own (created here, removed by teardown).
  # The kubelet checks that it exists in every v1 hierarchy, the named `systemd` one included.
  E2E_CGROUP_ROOT="/${E2E_NETNS:-vault-injector-e2e-$$}"
  for ctrl in /sys/fs/cgroup/*/; do
    case "$ctrl" in */unified/) continue ;; esac
    mkdir -p "$ctrl${E2E_CGROUP_ROOT#/}"
  done
  cat > "$k/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM kind mounts cgroup v1 (read-write); kubelet 1.34 refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $E2E_CGROUP_ROOT
containerRuntimeEndpoint: unix://$E2E_CONTAINERD_SOCK
failSwapOn: false
address: $E2E_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $d/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $d/kubelet-serving.crt
tlsPrivateKeyFile: $d/kubelet-serving.key
podLogsDir: $E2E_STATE/podlogs
# No DNS server in the namespace: pods get an empty resolv.conf rather than the host's.
resolvConf: ""
clusterDomain: cluster.local
serializeImagePulls: false
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
  e2e_kubeconfig "$E2E_STATE/kubelet.kubeconfig" kubelet
  e2e_spawn kubelet "$E2E_KUBELET" \
    --config="$k/config.yaml" --kubeconfig="$E2E_STATE/kubelet.kubeconfig" \
    --hostname-override="$E2E_NODE_NAME" --node-ip="$E2E_NODE_IP" \
    --root-dir="$k/root" --cert-dir="$k/pki" --v="${E2E_KUBELET_V:-2}"
  e2e_wait kubelet 120 e2e_node_ready
}

e2e_node_ready() {
  [ "$("$E2E_KUBECTL" get node "$E2E_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# e2e_chart_install: `helm install` of charts/vault-injector as a user installs it, with the
# locally built images and the OpenBao address pods reach; everything else is the chart's
# default (auto TLS, its probes, its webhook configuration) but the anti-affinity, which allows
# one replica per node (node-injector-restart runs two, on this cluster's one node).
e2e_chart_install() {
  local repo tag
  repo="${IMAGE_VAULT_INJECTOR%:*}"
  tag="${IMAGE_VAULT_INJECTOR##*:}"
  "$E2E_HELM" install vault "$E2E_ROOT/charts/vault-injector" --namespace vault --create-namespace \
    --set injector.image.repository="$repo" --set-string injector.image.tag="$tag" \
    --set injector.agentImage.repository="${IMAGE_OPENBAO%:*}" \
    --set-string injector.agentImage.tag="${IMAGE_OPENBAO##*:}" \
    --set-string injector.externalVaultAddr="$E2E_VAULT_ADDR" \
    --set injector.namespaceOptIn=true \
    --set injector.metrics.enabled=true \
    --set-string injector.logLevel=debug \
    --set-string injector.extraEnvironmentVars.AGENT_INJECT_AGENT_BINARY=bao \
    --set-string injector.affinity= \
    --wait --timeout 5m >&2
}

# e2e_node_teardown: stop the node's processes (kubelet first, then every container, then
# containerd), and remove what they leave on the host: mounts under $E2E_STATE, cgroups,
# leftover shims.
e2e_node_teardown() {
  local m ctrl pid
  e2e_stop kubelet
  if [ -S "${E2E_CONTAINERD_SOCK:-/nonexistent}" ] && e2e_alive containerd; then
    for m in $(e2e_ctr tasks ls -q 2>/dev/null); do
      e2e_ctr tasks kill -s SIGKILL "$m" >/dev/null 2>&1 || true
    done
    sleep 1
    for m in $(e2e_ctr tasks ls -q 2>/dev/null); do e2e_ctr tasks delete -f "$m" >/dev/null 2>&1 || true; done
    for m in $(e2e_ctr containers ls -q 2>/dev/null); do e2e_ctr containers delete "$m" >/dev/null 2>&1 || true; done
  fi
  e2e_stop containerd
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $E2E_STATE/" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  e2e_unmount_under "$E2E_STATE"
  if [ -n "${E2E_CGROUP_ROOT:-}" ]; then
    for ctrl in /sys/fs/cgroup/*/; do
      [ -d "$ctrl${E2E_CGROUP_ROOT#/}" ] || continue
      find "$ctrl${E2E_CGROUP_ROOT#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi
}

# e2e_unmount_under DIR: every mount point at or below DIR, deepest first.
e2e_unmount_under() {
  local m
  for _ in 1 2 3; do
    mapfile -t mounts < <(findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d) == 1' | sort -r)
    [ "${#mounts[@]}" = 0 ] && return 0
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  done
}
