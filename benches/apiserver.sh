#!/usr/bin/env bash
# The median pod CREATE latency through a real kube-apiserver with the webhook
# (namespace opted in: the apiserver calls the webhook) against without it (namespace not
# opted in), same apiserver, same pods, same run. Prints the example's lines, the last one
#   create_latency_ratio_p50=N.NN create_latency_ratio_p99=N.NN
#
#   benches/apiserver.sh [N] [WARMUP]      (default 300 pods per side after 30 warm-up ones)
#   WEBHOOK=baseline benches/apiserver.sh  (the webhook is `loadgen baseline --learn` instead:
#                                           the same TLS stack answering every review with the
#                                           injector's reply to the first one, so the ratio is
#                                           the API server's own cost of calling a webhook)
#
# The stack is tests/e2e/cluster.sh's (etcd, kube-apiserver, controller-manager, OpenBao,
# PostgreSQL; components from tests/e2e/bin.sh) with the release injector (or the baseline),
# deployed from webhook-config/ and run directly (E2E_INJECTOR_DIRECT: no fake-kubelet chroot,
# which a wrapper script could not run in), at log level info. Needs root, like the e2e harness.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release --bin vault-injector --example loadgen >&2
cargo build --release --manifest-path tests/e2e/scenarios/Cargo.toml --example create_latency >&2
bin="$CARGO_TARGET_DIR/release/vault-injector"
case "${WEBHOOK:-injector}" in
  injector) ;;
  baseline)
    wrap=$(mktemp -d)
    trap 'rm -rf "$wrap"' EXIT
    # Called as the injector is (`agent-inject 2>&1`, env -i plus the Deployment's variables).
    cat >"$wrap/webhook" <<SH
#!/bin/sh
exec "$CARGO_TARGET_DIR/release/examples/loadgen" baseline --learn \\
  --listen="\$AGENT_INJECT_LISTEN" --cert="\$AGENT_INJECT_TLS_CERT_FILE" --key="\$AGENT_INJECT_TLS_KEY_FILE"
SH
    chmod 0755 "$wrap/webhook"
    bin="$wrap/webhook"
    ;;
  *) echo "WEBHOOK must be injector or baseline" >&2; exit 2 ;;
esac
E2E_INJECTOR_DIRECT=1 \
E2E_INJECTOR_BIN="$bin" \
E2E_INJECTOR_LOG_LEVEL="${E2E_INJECTOR_LOG_LEVEL:-info}" \
E2E_CREATE_LATENCY_BIN="$CARGO_TARGET_DIR/release/examples/create_latency" \
E2E_CREATE_LATENCY_ARGS="${1:-300} ${2:-30}" \
  bash tests/e2e/cluster.sh bench-create
