#!/usr/bin/env bash
# Chart tests for charts/vault-injector (run by .ci/run after `cargo test`):
#   1. helm lint, with the chart defaults and with every values file of the matrix;
#   2. helm template over the matrix below, each rendered set checked by check.py (object
#      names, labels, args, the AGENT_INJECT_* env against the stock vault-helm chart, RBAC,
#      webhook), and webhook-config/ against the chart (`webhook-config/generate.sh --check`:
#      the checked-in manifests must be exactly what the chart renders);
#   3. each rendered set applied with `kubectl apply --dry-run=server` to a real kube-apiserver
#      (etcd + kube-apiserver of tests/e2e/lib.sh, started here and stopped on exit).
#      CHART_TEST_DRY_RUN=0 skips this step.
# helm (and for step 3 etcd, kube-apiserver, kubectl) come from tests/e2e/bin.sh: cached in
# target/e2e-bin/, built from the Go module proxy on a cold machine (helm: about 4.5 min).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
E2E_DIR="$ROOT/tests/e2e"
# shellcheck source=../e2e/lib.sh
. "$E2E_DIR/lib.sh"
# Always a fresh state dir of our own (it is removed on exit), never a running harness's.
unset E2E_STATE

CHART=charts/vault-injector
VALUES=tests/chart/values
KUBE_VERSION="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$E2E_DIR/k8s/go.mod")"
KUBE_VERSION="${KUBE_VERSION#v}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/vault-injector-chart.XXXXXX")"
say() { printf '[chart-test] %s\n' "$*" >&2; }

dry_run="${CHART_TEST_DRY_RUN:-1}"
if [ "$dry_run" = 1 ]; then
  e2e_bin_all helm etcd kube-apiserver kubectl
else
  e2e_bin_all helm
fi
helm() { "$E2E_HELM" "$@"; }

# The matrix: case name, then the arguments of `helm template` (release `vault`, namespace
# `vault`, and --kube-version of the e2e apiserver unless the case gives its own).
CASES=(
  "defaults|"
  "vault-helm-style|-f $VALUES/vault-helm-style.yaml"
  "ha-3-replicas|-f $CHART/values-ha.yaml -f $VALUES/ha-3-replicas.yaml"
  "metrics|-f $VALUES/metrics.yaml"
  "openshift|-f $VALUES/openshift.yaml"
  "opt-in-namespaces|-f $VALUES/opt-in-namespaces.yaml"
  "everything|-f $VALUES/everything.yaml"
  "kube-1.27|--kube-version 1.27.0"
  "disabled|--set injector.enabled=false"
  "global-disabled|--set global.enabled=false"
  "server-account|-f $VALUES/server-account.yaml"
  "no-server-account|--set server.serviceAccount.create=false"
  "existing-account|--set server.serviceAccount.create=false --set server.serviceAccount.name=reviewer"
)

passed=0
failed=0
ok() { passed=$((passed + 1)); }
ko() { failed=$((failed + 1)); say "FAILED: $*"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${E2E_STATE:-}" ]; then
    e2e_teardown || true
    rm -rf "$E2E_STATE"
  fi
  rm -rf "$OUT"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "helm lint"
if helm lint "$CHART" >"$OUT/lint.log" 2>&1; then ok; else cat "$OUT/lint.log" >&2; ko "helm lint (defaults)"; fi
for f in "$CHART/values-ha.yaml" "$VALUES"/*.yaml; do
  if helm lint "$CHART" -f "$f" >"$OUT/lint.log" 2>&1; then ok; else cat "$OUT/lint.log" >&2; ko "helm lint -f $f"; fi
done

say "values.schema.json refuses bad values"
for f in tests/chart/bad-values/*.yaml; do
  if helm template vault "$CHART" -f "$f" >"$OUT/bad.yaml" 2>"$OUT/bad.err"; then
    ko "helm template -f $f: accepted a value the schema must refuse"
  elif grep -q "values don't meet the specifications of the schema" "$OUT/bad.err"; then
    say "$(basename "$f"): $(grep -o "at '[^']*': .*" "$OUT/bad.err" | head -n1)"
    ok
  else
    cat "$OUT/bad.err" >&2
    ko "helm template -f $f failed, but not on the schema"
  fi
done

say "helm template + assertions"
for c in "${CASES[@]}"; do
  name="${c%%|*}"
  # shellcheck disable=SC2206
  args=(${c#*|})
  case " ${args[*]} " in *" --kube-version "*) ;; *) args+=(--kube-version "$KUBE_VERSION") ;; esac
  if ! helm template vault "$CHART" --namespace vault "${args[@]}" >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
    cat "$OUT/$name.err" >&2
    ko "helm template ($name)"
    continue
  fi
  extra=()
  [ "$name" = vault-helm-style ] && extra=("$OUT/defaults.yaml")
  if python3 tests/chart/check.py "$name" "$OUT/$name.yaml" "${extra[@]}"; then ok; else ko "assertions ($name)"; fi
done

say "webhook-config/ drift"
if E2E_HELM="$E2E_HELM" bash webhook-config/generate.sh --check >"$OUT/drift.log" 2>&1; then
  ok
else
  cat "$OUT/drift.log" >&2
  ko "webhook-config/ differs from the chart"
fi
# the drift check must be able to fail: a changed chart value is noticed
if E2E_HELM="$E2E_HELM" bash webhook-config/generate.sh --check --set injector.replicas=2 >/dev/null 2>&1; then
  ko "negative control: a changed chart value did not make webhook-config/ drift"
else
  ok
fi

if [ "$dry_run" = 1 ]; then
  say "server-side dry-run against a real kube-apiserver $KUBE_VERSION"
  e2e_state_init
  e2e_pki
  e2e_etcd_start
  e2e_apiserver_start
  "$E2E_KUBECTL" create namespace vault >/dev/null
  # The dry-run must be able to fail: an unknown field in the rendered Deployment is refused.
  sed 's/^        - name: sidecar-injector$/        - name: sidecar-injector\n          notAField: true/' \
    "$OUT/defaults.yaml" >"$OUT/broken.yaml"
  if ! grep -q notAField "$OUT/broken.yaml"; then
    ko "negative control: could not break the defaults"
  elif "$E2E_KUBECTL" apply --dry-run=server --validate=strict -f "$OUT/broken.yaml" >"$OUT/broken.log" 2>&1; then
    ko "negative control: an unknown field passed the server dry-run"
  else
    say "negative control refused as expected: $(grep -o 'unknown field[^,]*' "$OUT/broken.log" | head -n1)"
    ok
  fi
  # NOTES.txt, as `helm install` prints it after installing: what was installed, how to opt a
  # namespace in, how to check it works.
  if KUBECONFIG="$E2E_STATE/admin.kubeconfig" "$E2E_HELM" install vault charts/vault-injector -n vault \
      --dry-run=server --set injector.namespaceOptIn=true >"$OUT/notes.log" 2>&1 &&
    sed -n '/^NOTES:/,$p' "$OUT/notes.log" >"$OUT/notes.txt" &&
    grep -q 'MutatingWebhookConfiguration  vault-agent-injector-cfg (failurePolicy Ignore)' "$OUT/notes.txt" &&
    grep -q 'kubectl label namespace <namespace> vault-injector/inject=enabled' "$OUT/notes.txt" &&
    grep -q 'kubectl -n vault rollout status deployment/vault-agent-injector' "$OUT/notes.txt" &&
    grep -q 'image vault-injector:0' "$OUT/notes.txt"; then
    ok
  else
    cat "$OUT/notes.log" >&2
    ko "NOTES.txt after helm install"
  fi
  for c in "${CASES[@]}"; do
    name="${c%%|*}"
    [ -s "$OUT/$name.yaml" ] || continue
    # No Prometheus Operator CRDs in the harness: leave out the ServiceMonitor (checked above).
    python3 - "$OUT/$name.yaml" >"$OUT/$name.apply.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") != "ServiceMonitor"]
print(yaml.safe_dump_all(docs))
PY
    if [ "$(grep -c '^kind:' "$OUT/$name.apply.yaml" || true)" = 0 ]; then
      say "$name: nothing to apply"
      ok
      continue
    fi
    if "$E2E_KUBECTL" apply --dry-run=server --validate=strict -f "$OUT/$name.apply.yaml" >"$OUT/$name.apply.log" 2>&1; then
      say "$name: $(grep -c . "$OUT/$name.apply.log") objects accepted (server dry-run)"
      ok
    else
      cat "$OUT/$name.apply.log" >&2
      ko "server dry-run ($name)"
    fi
  done
else
  say "server-side dry-run skipped (CHART_TEST_DRY_RUN=$dry_run)"
fi

echo "chart-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
