#!/usr/bin/env bash
# cluster.sh: the local stack without the scenarios.
#
#   tests/e2e/cluster.sh up      start etcd + kube-apiserver + kube-controller-manager, OpenBao and
#                                PostgreSQL (and the injector with the webhook-config/ manifests
#                                when E2E_INJECTOR_BIN is set or --with-injector is given), print
#                                how to use them, and keep running until Ctrl-C / SIGTERM.
#   tests/e2e/cluster.sh smoke   start everything, check it (namespaces, a Deployment whose Pod is
#                                created by the controller-manager, OpenBao, PostgreSQL), stop.
#   tests/e2e/cluster.sh bench-create
#                                with the injector: run $E2E_CREATE_LATENCY_BIN (the create_latency
#                                example of the scenarios crate), stop. See benches/apiserver.sh.
#
# State (certificates, kubeconfigs, data, logs) lives in a temp dir ($E2E_STATE) that is
# removed on exit unless E2E_KEEP_STATE=1.
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$E2E_DIR/lib.sh"

mode="${1:-up}"
with_injector=""
[ "${2:-}" = --with-injector ] && with_injector=1
[ -n "${E2E_INJECTOR_BIN:-}" ] && with_injector=1

e2e_bin_all etcd openbao postgresql kube-apiserver kube-controller-manager kubectl
if [ -n "$with_injector" ] && [ -z "${E2E_INJECTOR_BIN:-}" ]; then
  (cd "$E2E_ROOT" && cargo build --bin vault-injector)
  E2E_INJECTOR_BIN="$E2E_ROOT/target/debug/vault-injector"
fi

e2e_state_init
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  e2e_teardown
  if [ -n "${E2E_KEEP_STATE:-}" ]; then
    e2e_say "state kept in $E2E_STATE"
  else
    rm -rf "$E2E_STATE"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$SECONDS
e2e_cluster_start
e2e_pg_start
e2e_bao_start
if [ -n "$with_injector" ]; then
  E2E_INJECTOR_PORT="$(e2e_free_port)"
  e2e_webhook_config_apply
  e2e_injector_prepare
  e2e_injector_start
fi
e2e_save_env
e2e_say "everything up in $((SECONDS - t0))s"

k() { "$E2E_KUBECTL" "$@"; }

case "$mode" in
  smoke)
    k get namespaces
    k auth can-i '*' '*' --all-namespaces
    k create namespace smoke
    e2e_wait - 60 k -n smoke get serviceaccount default
    k -n smoke create deployment web --image=registry.example/web:1.0 --replicas=2
    e2e_wait - 60 sh -c "[ \"\$('$E2E_KUBECTL' -n smoke get pods -l app=web -o name | wc -l)\" = 2 ]"
    k -n smoke get deployment,replicaset,pods -o wide
    k -n smoke get pods -o jsonpath='{range .items[*]}{.metadata.name}: volumes={.spec.volumes[*].name} phase={.status.phase}{"\n"}{end}'
    k -n smoke create token default --duration=10m >/dev/null
    e2e_wait - 60 k -n smoke get configmap kube-root-ca.crt
    # OpenBao and PostgreSQL
    env VAULT_ADDR="$E2E_VAULT_ADDR" VAULT_TOKEN="$E2E_VAULT_TOKEN" "$E2E_BAO" status
    PGPASSWORD="$E2E_PG_ADMIN_PASSWORD" "$E2E_PG_BIN_DIR/psql" -X -At \
      "host=127.0.0.1 port=$E2E_PG_PORT user=$E2E_PG_ADMIN_USER dbname=$E2E_PG_DATABASE" \
      -c "SELECT current_user, rolcreaterole, rolsuper, (SELECT count(*) FROM orders) FROM pg_roles WHERE rolname = current_user"
    k delete namespace smoke --wait=false
    e2e_say "smoke test passed in $((SECONDS - t0))s"
    ;;
  up)
    cat >&2 <<EOF

The local stack is up. In another shell:
  source $E2E_STATE/env        # KUBECONFIG, E2E_VAULT_ADDR, E2E_PG_PORT, ...
  \$E2E_KUBECTL get pods -A
  # with the injector (started by: cluster.sh up --with-injector, or E2E_INJECTOR_BIN=...):
  CARGO_TARGET_DIR=$E2E_ROOT/target cargo test --manifest-path $E2E_DIR/scenarios/Cargo.toml -- --test-threads=1
Logs: $E2E_STATE/logs/   Ctrl-C here stops everything.
EOF
    while :; do
      sleep 5
      for c in etcd kube-apiserver kube-controller-manager openbao; do
        e2e_alive "$c" || { e2e_say "$c died"; tail -n 30 "$E2E_STATE/logs/$c.log" >&2; exit 1; }
      done
    done
    ;;
  bench-create)
    # benches/apiserver.sh: pod CREATE latency with and without the webhook.
    [ -n "$with_injector" ] || e2e_die "bench-create needs the injector (E2E_INJECTOR_BIN)"
    # shellcheck source=/dev/null
    . "$E2E_STATE/env"
    "${E2E_CREATE_LATENCY_BIN:?}" ${E2E_CREATE_LATENCY_ARGS:-}
    ;;
  *) echo "usage: $0 up|smoke|bench-create [--with-injector]" >&2; exit 2 ;;
esac
