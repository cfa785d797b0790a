#!/usr/bin/env bash
# tests/e2e/run.sh: the end-to-end suite, one entry point for a newcomer and for CI.
#
#   tests/e2e/run.sh                 build what is missing, start everything, run every scenario
#   tests/e2e/run.sh s3 s4           only the scenarios whose test name contains one of these
#   tests/e2e/run.sh node [FILTER]   only the node tier: the image, the chart and the agents in real
#                                    pods under a real kubelet (tests/e2e/node.sh)
#   tests/e2e/run.sh --kubeconfig FILE [FILTER]
#                                    the node tier's scenarios against an existing cluster
#
# 1. builds or finds the components (tests/e2e/bin.sh, cached in target/e2e-bin/),
# 2. builds the injector (cargo build --bin vault-injector) and the scenario crate,
# 3. starts etcd, kube-apiserver, kube-controller-manager, PostgreSQL and OpenBao on 127.0.0.1,
#    applies webhook-config/ (clientConfig rewritten to the injector's loopback URL + caBundle)
#    and starts the injector,
# 4. runs each scenario (tests/e2e/scenarios, one test at a time); a failed scenario prints what
#    every component logged while it ran,
# 5. tears everything down, runs tests/e2e/tls.sh (auto-TLS on its own control plane; also
#    selected by the filter `tls`), and exits non-zero if any scenario failed.
#
# Environment: E2E_INJECTOR_BIN (use this binary instead of building one), E2E_KEEP_STATE=1
# (keep the temp dir with logs), E2E_STATE (use this dir), E2E_INJECTOR_DIRECT=1 (run the
# injector as a plain process with a KUBECONFIG instead of a pod-like mount namespace),
# E2E_INJECTOR_FROM=chart (apply charts/vault-injector's rendered objects instead of
# webhook-config/ and run the injector with exactly the env and args of the chart's Deployment;
# needs helm from bin.sh; .ci/run does this for s1-s4).
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
  node) shift; exec "$E2E_DIR/node.sh" "$@" ;;
  --kubeconfig | --kubeconfig=*) exec "$E2E_DIR/node.sh" "$@" ;;
esac
# shellcheck source=lib.sh
. "$E2E_DIR/lib.sh"
cd "$E2E_ROOT"

t_start=$SECONDS
filters=("$@")

# 1. components
e2e_say "components (cached in $E2E_BIN_DIR)"
e2e_bin_all etcd openbao postgresql kube-apiserver kube-controller-manager kubectl
case "${E2E_INJECTOR_FROM:-}" in
  "") ;;
  chart) e2e_bin_all helm ;;
  *) e2e_die "E2E_INJECTOR_FROM must be empty or 'chart', not '$E2E_INJECTOR_FROM'" ;;
esac
t_bins=$((SECONDS - t_start))

# 2. the injector and the scenarios
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$E2E_ROOT/target}"
if [ -z "${E2E_INJECTOR_BIN:-}" ]; then
  e2e_say "cargo build --bin vault-injector"
  cargo build --bin vault-injector
  E2E_INJECTOR_BIN="$CARGO_TARGET_DIR/debug/vault-injector"
fi
[ -x "$E2E_INJECTOR_BIN" ] || e2e_die "no injector binary at $E2E_INJECTOR_BIN"
export E2E_INJECTOR_BIN
SCENARIOS=(cargo test --manifest-path "$E2E_DIR/scenarios/Cargo.toml" --test scenarios)
e2e_say "building the scenarios"
"${SCENARIOS[@]}" --no-run
t_builds=$((SECONDS - t_start))

# 3. the stack
e2e_state_init
finish() {
  local rc=$?
  trap - EXIT INT TERM
  e2e_teardown
  if [ -n "${E2E_KEEP_STATE:-}" ]; then
    e2e_say "state and logs kept in $E2E_STATE"
  else
    rm -rf "$E2E_STATE"
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! {
  e2e_cluster_start &&
  e2e_pg_start &&
  e2e_bao_start &&
  E2E_INJECTOR_PORT="$(e2e_free_port)" &&
  e2e_webhook_config_apply &&
  e2e_injector_prepare &&
  e2e_injector_start
}; then
  e2e_say "the stack did not start"
  e2e_dump_logs 60
  exit 1
fi
e2e_save_env
# shellcheck source=/dev/null
. "$E2E_STATE/env"
t_stack=$((SECONDS - t_start))
e2e_say "stack up ($((t_stack - t_builds))s); running scenarios"

# 4. scenarios, one test binary run each, so that logs can be attributed to a failed one
passed=0
failed=0
failed_names=()
E2E_FILTERS=("${filters[@]}")
E2E_ALIVE="etcd kube-apiserver kube-controller-manager openbao injector" e2e_run_scenarios "${SCENARIOS[@]}"

t_scenarios=$((SECONDS - t_stack))

# 5. auto-TLS (tests/e2e/tls.sh: its own control plane, so this stack goes first)
run_tls=""
if [ "${#filters[@]}" = 0 ]; then run_tls=1; fi
for f in "${filters[@]}"; do [[ tls == *"$f"* ]] && run_tls=1; done
if [ -n "$run_tls" ]; then
  e2e_teardown
  e2e_say "=== tls.sh (auto-TLS: caBundle, rotation, replicas, stale locks, Lease mode)"
  ts=$SECONDS
  if env -u E2E_STATE "$E2E_DIR/tls.sh"; then
    passed=$((passed + 1))
    e2e_say "=== tls.sh: ok ($((SECONDS - ts))s)"
  else
    failed=$((failed + 1))
    failed_names+=("tls.sh")
    e2e_say "=== tls.sh: FAILED ($((SECONDS - ts))s)"
  fi
fi

# 6. faults (tests/e2e/chaos.sh: apiserver/etcd restarts, replicas killed under a storm; its
#    own control plane as well; also selected by the filter `chaos`)
run_chaos=""
if [ "${#filters[@]}" = 0 ]; then run_chaos=1; fi
for f in "${filters[@]}"; do [[ chaos == *"$f"* ]] && run_chaos=1; done
if [ -n "$run_chaos" ]; then
  e2e_teardown
  e2e_say "=== chaos.sh (apiserver and etcd restarts, replica SIGKILL under a pod storm)"
  ts=$SECONDS
  if env -u E2E_STATE "$E2E_DIR/chaos.sh"; then
    passed=$((passed + 1))
    e2e_say "=== chaos.sh: ok ($((SECONDS - ts))s)"
  else
    failed=$((failed + 1))
    failed_names+=("chaos.sh")
    e2e_say "=== chaos.sh: FAILED ($((SECONDS - ts))s)"
  fi
fi

e2e_say "timings: components ${t_bins}s, builds $((t_builds - t_bins))s, stack $((t_stack - t_builds))s, scenarios ${t_scenarios}s, total $((SECONDS - t_start))s"
[ "$failed" = 0 ] || e2e_say "failed scenarios: ${failed_names[*]}"
echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ]
