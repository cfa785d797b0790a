#!/usr/bin/env bash
# The injector's memory with the missed-injection watcher on, in a cluster of N pods (default
# 10,000; half of them annotated for injection and created without it, as during a webhook
# outage). Ends with one line per binary measured:
#   watcher_memory bin=NAME pods=N missed=M sync_s=S idle_rss_kib=A rss_kib=B hwm_kib=C
# idle_rss_kib: the same binary, same cluster, watcher off (ready, then 5 s); rss_kib/hwm_kib:
# VmRSS and VmHWM once the watcher has counted every missed pod (and so created their Events).
#
#   benches/watcher-memory.sh [N]
#   COMPARE_BIN=/path/to/older/vault-injector benches/watcher-memory.sh
#       also measures that binary, first, on the same pods (the Events are deleted in between)
#   E2E_INJECTOR_BIN=/path/to/vault-injector   measure this binary instead of a release build
#
# The control plane is the e2e harness's (tests/e2e/lib.sh: etcd, kube-apiserver and the
# controller-manager on 127.0.0.1, components from tests/e2e/bin.sh); no scheduler, so the pods
# stay Pending and nothing else writes to them. The injector runs as a plain process with its
# certificates on disk and the RBAC of the missed-injection watcher (pods list/watch, events
# create). No webhook configuration is applied: every annotated pod is a miss. Needs root,
# like the e2e harness; about 3 minutes per binary on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-10000}"
NAMESPACES=10
BATCH=500
PARALLEL=4
# shellcheck source=../tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
cd "$ROOT"

if [ -z "${E2E_INJECTOR_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
  cargo build --release --bin vault-injector >&2
  E2E_INJECTOR_BIN="$CARGO_TARGET_DIR/release/vault-injector"
fi
THIS_BIN="$E2E_INJECTOR_BIN"
e2e_bin_all etcd kube-apiserver kube-controller-manager kubectl

e2e_state_init
finish() {
  local rc=$?
  trap - EXIT INT TERM
  e2e_teardown
  if [ -n "${E2E_KEEP_STATE:-}" ]; then e2e_say "state kept in $E2E_STATE"; else rm -rf "$E2E_STATE"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
k() { "$E2E_KUBECTL" "$@"; }

e2e_cluster_start
e2e_say "namespaces and the injector's service account and RBAC"
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: vault}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: vault-agent-injector, namespace: vault}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: vault-injector-watcher-memory}
rules:
- {apiGroups: [""], resources: [pods], verbs: [list, watch]}
- {apiGroups: [""], resources: [events], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: vault-injector-watcher-memory}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: vault-injector-watcher-memory}
subjects:
- {kind: ServiceAccount, name: vault-agent-injector, namespace: vault}
EOF
for i in $(seq 1 "$NAMESPACES"); do k create namespace "bench-$i" >/dev/null; done
# The ServiceAccount admission plugin refuses pods until the namespace's `default` exists.
for i in $(seq 1 "$NAMESPACES"); do
  e2e_wait kube-controller-manager 60 "$E2E_KUBECTL" -n "bench-$i" get serviceaccount default
done
E2E_INJECTOR_DIRECT=1
e2e_injector_prepare

# Pods of about 3 KB each (a Deployment's pod: labels, two containers with env, probes and
# resources, volumes), in lists of $BATCH; every other one asks for injection.
e2e_say "writing $N pods"
mkdir -p "$E2E_STATE/pods"
python3 - "$N" "$NAMESPACES" "$BATCH" "$E2E_STATE/pods" <<'PY'
import json, sys
n, namespaces, batch, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def pod(i):
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                   "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
    if i % 2 == 0:
        annotations.update({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "shop",
            "vault.hashicorp.com/agent-inject-secret-db": "database/creds/shop",
            "vault.hashicorp.com/agent-inject-template-db":
                '{{- with secret "database/creds/shop" -}}postgres://{{ .Data.username }}:'
                '{{ .Data.password }}@db:5432/shop{{- end }}',
        })
    env = [{"name": f"SETTING_{j}", "value": f"value-{j}-" + "x" * 24} for j in range(16)]
    env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10, "timeoutSeconds": 2}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"shop-{i:05d}", "namespace": f"bench-{i % namespaces + 1}",
            "labels": {"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "api",
                       "app.kubernetes.io/version": "1.2.3", "pod-template-hash": "5d8f7c9b4"},
            "annotations": annotations,
        },
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {"name": "api", "image": "registry.example.com/shop/api:1.2.3",
                 "args": ["--listen=:8080", "--metrics=:9090", "--log-format=json"],
                 "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                 "env": env,
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "readinessProbe": probe, "livenessProbe": probe,
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/shop"}, {"name": "tmp", "mountPath": "/tmp"}],
                 "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                     "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}},
                {"name": "log-shipper", "image": "registry.example.com/infra/shipper:4.5.6",
                 "args": ["--input=/var/log/shop", "--output=http://collector:4318"],
                 "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
                 "volumeMounts": [{"name": "tmp", "mountPath": "/var/log/shop"}]},
            ],
            "volumes": [{"name": "config", "configMap": {"name": "shop-config"}}, {"name": "tmp", "emptyDir": {}}],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}],
        },
    }

for start in range(0, n, batch):
    items = [pod(i) for i in range(start, min(n, start + batch))]
    with open(f"{out}/pods-{start:06d}.json", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
PY
e2e_say "creating $N pods ($(du -sh "$E2E_STATE/pods" | cut -f1) of JSON, $PARALLEL kubectl at a time)"
t=$SECONDS
find "$E2E_STATE/pods" -name 'pods-*.json' | sort |
  xargs -P "$PARALLEL" -I{} "$E2E_KUBECTL" create -f {} -o name >/dev/null
missed=$((N / 2 + N % 2))
e2e_say "created $(k get pods -A --no-headers 2>/dev/null | wc -l) pods in $((SECONDS - t))s; $missed ask for injection"

metrics() {
  curl -fsS --max-time 5 --cacert "$E2E_STATE/pki/ca.crt" "https://127.0.0.1:$E2E_INJECTOR_PORT/metrics"
}
# counted: the watcher's total over every namespace.
counted() {
  metrics 2>/dev/null |
    awk '/^vault_agent_injector_missed_injections_by_namespace_total/ {s += $2} END {print s + 0}'
}
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$(cat "$E2E_STATE/pids/injector")/status"; }

# measure NAME BIN: one line for BIN.
measure() {
  local name="$1" bin="$2" idle t n=0 rss hwm
  E2E_INJECTOR_BIN="$bin"
  e2e_say "$name: watcher off"
  e2e_injector_start
  sleep 5
  idle="$(status_kib VmRSS)"
  e2e_injector_stop
  e2e_say "$name: watcher on"
  E2E_INJECTOR_EXTRA_ENV="AGENT_INJECT_MISSED_INJECTION_WATCHER=true AGENT_INJECT_LOG_LEVEL=info" e2e_injector_start
  t=$SECONDS
  while [ "$n" -lt "$missed" ]; do
    [ $((SECONDS - t)) -lt 600 ] || { e2e_say "$name: only $n of $missed counted after 600s"; return 1; }
    e2e_alive injector || { e2e_say "$name: the injector exited"; tail -n 40 "$E2E_STATE/logs/injector.log" >&2; return 1; }
    sleep 1
    n="$(counted)"
  done
  rss="$(status_kib VmRSS)"
  hwm="$(status_kib VmHWM)"
  e2e_injector_stop
  echo "watcher_memory bin=$name pods=$N missed=$missed sync_s=$((SECONDS - t)) idle_rss_kib=$idle rss_kib=$rss hwm_kib=$hwm"
}

if [ -n "${COMPARE_BIN:-}" ]; then
  measure compare "$COMPARE_BIN"
  e2e_say "deleting the Events of the first run"
  # One deletecollection per namespace: kubectl's own `delete --all` is one request per Event,
  # throttled on the client side.
  for i in $(seq 1 "$NAMESPACES"); do k delete --raw "/api/v1/namespaces/bench-$i/events" >/dev/null; done
fi
measure this "$THIS_BIN"
