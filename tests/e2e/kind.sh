#!/usr/bin/env bash
# tests/e2e/kind.sh: the same scenarios against a kind cluster.
#
# NOT RUNNABLE ON THE PROJECT'S OWN MACHINES: kind needs a container engine (Docker or podman
# with node images), and these machines have none (`docker` there is only a client). It is kept
# small and shares everything else with the local runner (tests/e2e/run.sh): the scenario crate,
# webhook-config/, rewrite-free install (the injector manages its own caBundle in-cluster).
#
# Needs: kind, docker, kubectl, helm (when the chart exists), cargo; a Dockerfile for the
# injector image (E2E_DOCKERFILE, default ./Dockerfile).
# Scenario 5 (OpenBao + PostgreSQL + fake kubelet) needs the local harness and is skipped here.
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"
CLUSTER="${KIND_CLUSTER:-vault-injector-e2e}"
IMAGE="${E2E_IMAGE:-vault-injector:e2e}"

for t in kind docker kubectl cargo; do
  command -v "$t" >/dev/null || { echo "kind.sh: $t not found" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "kind.sh: no container engine answers (docker info failed); use tests/e2e/run.sh" >&2; exit 2; }

docker build -t "$IMAGE" -f "${E2E_DOCKERFILE:-$ROOT/Dockerfile}" "$ROOT"
kind create cluster --name "$CLUSTER" --wait 120s
pf_pid=""
cleanup() {
  [ -n "$pf_pid" ] && kill "$pf_pid" 2>/dev/null || true
  [ -n "${KIND_KEEP:-}" ] || kind delete cluster --name "$CLUSTER"
}
trap cleanup EXIT
kind load docker-image "$IMAGE" --name "$CLUSTER"
export KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}"
kubectl config use-context "kind-$CLUSTER"

chart="$ROOT/charts/vault-injector"
if [ -f "$chart/Chart.yaml" ] && command -v helm >/dev/null; then
  # Release `vault`: objects named like webhook-config/ (vault-agent-injector, -cfg, -svc);
  # opt-in namespaces as in webhook-config/ (scenario s2 relies on it).
  helm install vault "$chart" --namespace vault --create-namespace --set injector.namespaceOptIn=true \
    --set injector.image.repository="${IMAGE%:*}" --set injector.image.tag="${IMAGE##*:}" --wait
  dep="$(kubectl -n vault get deploy -o name | head -n1)"
else
  # webhook-config/ as is, with the image and a Vault address that exists nowhere (the
  # scenarios that run here never start an agent).
  sed -e "s#image: vault-injector:latest#image: $IMAGE#" \
      -e 's#"https://vault.$(NAMESPACE).svc:8200"#"http://vault.vault.svc:8200"#' \
      "$ROOT"/webhook-config/*.yaml | kubectl apply -f -
  dep=deployment/vault-agent-injector
fi
kubectl -n vault rollout status "$dep" --timeout=180s
export E2E_INJECTOR_DEPLOYMENT="${dep#*/}" E2E_INJECTOR_NAMESPACE=vault

# metrics through a port-forward (auto TLS: the CA is the injector's own, so curl -k)
port=18443
kubectl -n vault port-forward svc/vault-agent-injector-svc "$port:443" >/dev/null 2>&1 &
pf_pid=$!
sleep 3
export E2E_INJECTOR_METRICS_URL="https://127.0.0.1:$port/metrics"
# (scenario 4 scales the injector to 0 and back, which ends this port-forward: it is the last
# scenario that reads metrics, the tests run in name order.)

# No fake kubelet in kind: the walkthrough (which runs the agent itself) is left out explicitly.
E2E_NO_WALKTHROUGH=1 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" \
  cargo test --manifest-path "$E2E_DIR/scenarios/Cargo.toml" --test scenarios -- --test-threads=1
