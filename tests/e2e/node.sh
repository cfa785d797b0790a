#!/usr/bin/env bash
# tests/e2e/node.sh: the node tier. The injector runs the way users run it: its container image
# installed by `helm install` of charts/vault-injector on a one-node cluster with a real kubelet,
# containerd and runc; injected agents run as containers of the OpenBao image next to their
# app, against a real OpenBao server and PostgreSQL.
#
#   tests/e2e/node.sh [FILTER...]                 build, start the cluster, run the node scenarios
#   tests/e2e/node.sh --kubeconfig FILE [FILTER...]
#                                                 run the node scenarios against an existing
#                                                 cluster (see "Against another cluster" below)
#   (tests/e2e/run.sh node [FILTER...] and tests/e2e/run.sh --kubeconfig FILE ... come here)
#
# Steps: 1. components (tests/e2e/bin.sh: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet and kubectl of one Kubernetes version, helm, OpenBao, PostgreSQL) and
# Debian's containerd, runc and CNI plugins; 2. the images (images/build.sh); 3. the scenario
# crate; 4. a network namespace of this run, and everything below inside it (node-lib.sh
# describes the layout): etcd, the API server, controller-manager and scheduler, containerd and
# the kubelet (node Ready), the images imported into containerd, PostgreSQL and OpenBao on the
# node address, the chart installed; 5. the scenarios (scenarios/tests/node/), one at a time,
# each printed as `=== scenario NAME: ok`; 6. teardown: containers, mounts, cgroups and the
# namespace are removed; E2E_KEEP_STATE=1 keeps the state dir with every log.
#
# Against another cluster (kind.sh does this): KUBECONFIG from --kubeconfig; the images already
# loaded into the cluster's nodes; the chart installed as release `vault` in namespace `vault`
# (helm install ... with the values of e2e_chart_install in node-lib.sh); and in the
# environment: E2E_VAULT_ADDR (OpenBao, as the runner reaches it), E2E_POD_VAULT_ADDR (as pods
# reach it, if different), E2E_VAULT_TOKEN (root token), E2E_BAO (the bao CLI), E2E_PG_HOST,
# E2E_PG_PORT, E2E_POD_PG_HOST/E2E_POD_PG_PORT (as pods reach PostgreSQL, if different),
# E2E_PG_ADMIN_USER, E2E_PG_ADMIN_PASSWORD, E2E_PG_DATABASE (a database `orders` with table
# `orders`, owned by a CREATEROLE admin), E2E_PG_BIN_DIR (psql), E2E_HELM, E2E_KUBECTL, and the
# image references IMAGE_BUSYBOX, IMAGE_POSTGRES_CLIENT (images/build.sh's images.env).
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$E2E_DIR/lib.sh"
# shellcheck source=node-lib.sh
. "$E2E_DIR/node-lib.sh"
cd "$E2E_ROOT"

kubeconfig=""
inside=""
E2E_FILTERS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kubeconfig) kubeconfig="${2:?--kubeconfig needs a file}"; shift 2 ;;
    --kubeconfig=*) kubeconfig="${1#*=}"; shift ;;
    --inside) inside=1; shift ;;
    *) E2E_FILTERS+=("$1"); shift ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$E2E_ROOT/target}"
export E2E_IMAGES_DIR="${E2E_IMAGES_DIR:-$CARGO_TARGET_DIR/images}"
SCENARIOS=(cargo test --offline --manifest-path "$E2E_DIR/scenarios/Cargo.toml" --test node)
export E2E_DASHED_NAMES=1
passed=0
failed=0
failed_names=()

finish_summary() {
  [ "$failed" = 0 ] || e2e_say "failed scenarios: ${failed_names[*]}"
  echo "e2e node: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# ---------------------------------------------------------------------------------------------
# Inside the network namespace (node.sh re-runs itself there with --inside).
if [ -n "$inside" ]; then
  # shellcheck source=/dev/null
  . "$E2E_IMAGES_DIR/images.env"
  export IMAGE_VAULT_INJECTOR IMAGE_OPENBAO IMAGE_BUSYBOX IMAGE_POSTGRES_CLIENT IMAGE_PAUSE
  e2e_state_init
  inner_finish() {
    local rc=$?
    trap - EXIT INT TERM
    e2e_node_teardown
    e2e_teardown
    exit "$rc"
  }
  trap inner_finish EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  t0=$SECONDS
  export E2E_PG_HOST="$E2E_NODE_IP" E2E_PG_PORT=5432 E2E_BAO_HOST="$E2E_NODE_IP" E2E_BAO_PORT=8200
  if ! {
    e2e_node_net_up &&
    e2e_node_control_plane &&
    e2e_containerd_start &&
    e2e_images_import &&
    e2e_kubelet_start &&
    e2e_pg_start &&
    e2e_bao_start &&
    e2e_chart_install
  }; then
    e2e_say "the node tier's cluster did not start"
    "$E2E_KUBECTL" get pods -A -o wide >&2 || true
    "$E2E_KUBECTL" get events -A >&2 || true
    e2e_dump_logs 80
    exit 1
  fi
  export E2E_NODE_IP E2E_NODE_NAME E2E_CHART="$E2E_ROOT/charts/vault-injector"
  e2e_save_env
  # shellcheck source=/dev/null
  . "$E2E_STATE/env"
  e2e_say "node cluster up in $((SECONDS - t0))s; running the node scenarios"
  # After a failed scenario: every pod, the recent events, the injector's log.
  e2e_scenario_failed() {
    printf '\n----- kubectl get pods -A -o wide -----\n'
    "$E2E_KUBECTL" get pods -A -o wide 2>&1 || true
    printf '\n----- events (last 40) -----\n'
    "$E2E_KUBECTL" get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 40 || true
    printf '\n----- injector logs (last 60 lines per pod) -----\n'
    "$E2E_KUBECTL" -n vault logs -l app.kubernetes.io/name=vault-agent-injector --tail=60 --prefix 2>&1 || true
  }
  E2E_ALIVE="etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet openbao" \
    e2e_run_scenarios "${SCENARIOS[@]}" || true
  finish_summary
  exit
fi

# ---------------------------------------------------------------------------------------------
# Against an existing cluster: only the scenarios.
if [ -n "$kubeconfig" ]; then
  KUBECONFIG="$(cd "$(dirname "$kubeconfig")" && pwd)/$(basename "$kubeconfig")"
  export KUBECONFIG
  e2e_say "building the scenarios"
  "${SCENARIOS[@]}" --no-run
  E2E_STATE="$(mktemp -d "${TMPDIR:-/tmp}/vault-injector-e2e.XXXXXX")"
  mkdir -p "$E2E_STATE/logs"
  export E2E_STATE E2E_CHART="$E2E_ROOT/charts/vault-injector"
  e2e_run_scenarios "${SCENARIOS[@]}" || true
  rm -rf "$E2E_STATE"
  finish_summary
  exit
fi

# ---------------------------------------------------------------------------------------------
# The runner on the host: build, then the namespace.
[ "$(id -u)" = 0 ] || e2e_die "the node tier runs containers, mounts and network namespaces: run it as root"
t_start=$SECONDS
e2e_say "components (cached in $E2E_BIN_DIR)"
e2e_bin_all etcd openbao postgresql kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet helm
for b in containerd ctr; do
  command -v "$b" >/dev/null || { e2e_apt_install containerd runc containernetworking-plugins; break; }
done
[ -x /usr/sbin/runc ] || e2e_apt_install runc
[ -x /usr/lib/cni/bridge ] || e2e_apt_install containernetworking-plugins
t_bins=$((SECONDS - t_start))

e2e_say "images (images/build.sh)"
IMAGES_OUT="$E2E_IMAGES_DIR" "$E2E_ROOT/images/build.sh"
e2e_say "building the scenarios"
"${SCENARIOS[@]}" --no-run
t_builds=$((SECONDS - t_start))

E2E_NETNS="vault-injector-e2e-$$"
ip netns add "$E2E_NETNS"
export E2E_NETNS E2E_KUBE_APISERVER E2E_KUBE_CONTROLLER_MANAGER E2E_KUBE_SCHEDULER E2E_KUBECTL \
  E2E_KUBELET E2E_HELM E2E_ETCD E2E_BAO E2E_VAULT E2E_OPENBAO_BIN_DIR E2E_PG_BIN_DIR
# Only the network namespace changes: the kubelet, containerd and runc need the host's mount
# namespace and its cgroup mounts (`ip netns exec` would remount /sys, hiding /sys/fs/cgroup).
rc=0
nsenter --net="/run/netns/$E2E_NETNS" -- "$E2E_DIR/node.sh" --inside "${E2E_FILTERS[@]}" || rc=$?
ip netns delete "$E2E_NETNS" 2>/dev/null || true
e2e_say "timings: components ${t_bins}s, images and builds $((t_builds - t_bins))s, node tier $((SECONDS - t_builds))s, total $((SECONDS - t_start))s"
exit "$rc"
