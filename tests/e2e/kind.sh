#!/usr/bin/env bash
# tests/e2e/kind.sh: the node tier's scenarios on a kind cluster.
#
# NOT RUN ON THE PROJECT'S OWN MACHINES, and never run there: kind needs a container engine
# (Docker or podman) and a kind node image, and those machines have neither (their `docker` is
# only a client). CI checks this script with shellcheck; the node tier (tests/e2e/node.sh) is
# what runs there, with the same images, the same chart install and the same scenarios.
#
#   tests/e2e/kind.sh [FILTER...]
#
# 1. builds the images (images/build.sh) and the components it needs (tests/e2e/bin.sh: helm,
#    kubectl, OpenBao, PostgreSQL);
# 2. creates a kind cluster (KIND_CLUSTER, default vault-injector-e2e) and loads every image
#    archive into it with `kind load image-archive`;
# 3. starts PostgreSQL and an OpenBao dev server on this host, listening on the kind network's
#    gateway address (which the kind node's pods reach);
# 4. installs the chart as the node tier does (release `vault`, namespace `vault`);
# 5. runs the node scenarios against it (tests/e2e/node.sh --kubeconfig).
# KIND_KEEP=1 keeps the cluster afterwards.
# Needs: kind, docker (or KIND_EXPERIMENTAL_PROVIDER=podman), cargo, gcc, buildah, Debian's
# busybox-static and PostgreSQL packages (as the images and the node tier need them).
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$E2E_DIR/lib.sh"
# shellcheck source=node-lib.sh
. "$E2E_DIR/node-lib.sh"
CLUSTER="${KIND_CLUSTER:-vault-injector-e2e}"

for t in kind docker cargo; do
  command -v "$t" >/dev/null || e2e_die "kind.sh: $t not found"
done
docker info >/dev/null 2>&1 || e2e_die "kind.sh: no container engine answers (docker info failed); use tests/e2e/run.sh node"

# 1. images and components
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$E2E_ROOT/target}"
export E2E_IMAGES_DIR="${E2E_IMAGES_DIR:-$CARGO_TARGET_DIR/images}"
IMAGES_OUT="$E2E_IMAGES_DIR" "$E2E_ROOT/images/build.sh"
# shellcheck source=/dev/null
. "$E2E_IMAGES_DIR/images.env"
export IMAGE_VAULT_INJECTOR IMAGE_OPENBAO IMAGE_BUSYBOX IMAGE_POSTGRES_CLIENT IMAGE_PAUSE
e2e_bin_all openbao postgresql kubectl helm

# 2. the cluster and the images
e2e_state_init
finish() {
  local rc=$?
  trap - EXIT INT TERM
  e2e_teardown
  [ -n "${KIND_KEEP:-}" ] || kind delete cluster --name "$CLUSTER" || true
  rm -rf "$E2E_STATE"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
kind create cluster --name "$CLUSTER" --wait 180s --kubeconfig "$E2E_STATE/kind.kubeconfig"
export KUBECONFIG="$E2E_STATE/kind.kubeconfig"
for f in "$E2E_IMAGES_DIR"/*.tar; do
  kind load image-archive "$f" --name "$CLUSTER"
done

# 3. PostgreSQL and OpenBao where the kind node's pods reach them
gateway="$(docker network inspect kind -f '{{(index .IPAM.Config 0).Gateway}}')"
[ -n "$gateway" ] || e2e_die "no gateway address for docker network kind"
export E2E_PG_HOST="$gateway" E2E_BAO_HOST="$gateway"
e2e_pg_start
e2e_bao_start

# 4. the chart
e2e_chart_install

# 5. the scenarios
export E2E_VAULT_ADDR E2E_VAULT_TOKEN E2E_BAO E2E_PG_BIN_DIR E2E_PG_PORT E2E_PG_ADMIN_USER \
  E2E_PG_ADMIN_PASSWORD E2E_PG_DATABASE E2E_HELM E2E_KUBECTL
"$E2E_DIR/node.sh" --kubeconfig "$KUBECONFIG" "$@"
