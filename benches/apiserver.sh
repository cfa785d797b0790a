#!/usr/bin/env bash
# Issue 6, item 5: the median pod CREATE latency through a real kube-apiserver with the webhook
# (namespace opted in: the apiserver calls the injector) against without it (namespace not
# opted in), same apiserver, same pods, same run. Prints the example's lines, the last one
#   create_latency_ratio_p50=N.NN create_latency_ratio_p99=N.NN
#
#   benches/apiserver.sh [N] [WARMUP]      (default 300 pods per side after 30 warm-up ones)
#
# The stack is tests/e2e/cluster.sh's (etcd, kube-apiserver, controller-manager, OpenBao,
# PostgreSQL; components from tests/e2e/bin.sh) with the release injector, deployed from
# webhook-config/ and run as the harness runs it (uid 100, disk-mode TLS, log level debug).
# Needs root, like the e2e harness.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release --bin vault-injector >&2
cargo build --release --manifest-path tests/e2e/scenarios/Cargo.toml --example create_latency >&2
E2E_INJECTOR_BIN="$CARGO_TARGET_DIR/release/vault-injector" \
E2E_INJECTOR_LOG_LEVEL="${E2E_INJECTOR_LOG_LEVEL:-info}" \
E2E_CREATE_LATENCY_BIN="$CARGO_TARGET_DIR/release/examples/create_latency" \
E2E_CREATE_LATENCY_ARGS="${1:-300} ${2:-30}" \
  bash tests/e2e/cluster.sh bench-create
