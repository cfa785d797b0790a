#!/usr/bin/env bash
# scripts/release.sh: builds a release's artifacts into dist/ and pushes nothing anywhere.
#
#   scripts/release.sh            -> dist/vault-injector-<version>/
#
# Artifacts (version = Cargo.toml's, which the chart's version and appVersion must equal):
#   vault-injector-<version>-x86_64-linux.tar.gz   the release binary, LICENSE, README.md, CHANGELOG.md
#   vault-injector-image-<version>.tar             the injector image (docker-archive, tag
#                                                  localhost/vault-injector:<version>; retag and
#                                                  push it to your registry yourself)
#   openbao-agent-image-<openbao version>.tar      the agent image the end-to-end tests use
#   vault-injector-<version>.tgz                   the Helm chart (`helm package`)
#   SHA256SUMS                                     of every file above (`sha256sum -c SHA256SUMS`)
# Needs what images/build.sh needs, and helm (tests/e2e/bin.sh helm builds it when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[release] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

version="$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)"
chart_version="$(awk '/^version:/ {print $2}' charts/vault-injector/Chart.yaml)"
app_version="$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' charts/vault-injector/Chart.yaml)"
[ "$chart_version" = "$version" ] || die "charts/vault-injector/Chart.yaml version is $chart_version, Cargo.toml says $version"
[ "$app_version" = "$version" ] || die "charts/vault-injector/Chart.yaml appVersion is $app_version, Cargo.toml says $version"
grep -q "^## \[$version\]" CHANGELOG.md || die "CHANGELOG.md has no section for $version"

out="$ROOT/dist/vault-injector-$version"
rm -rf "$out"
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-$ROOT/target}"

log "images (images/build.sh vault-injector openbao)"
IMAGES_OUT="$target/images" images/build.sh vault-injector openbao
cp "$target/images/vault-injector.tar" "$out/vault-injector-image-$version.tar"
# shellcheck source=/dev/null
. "$target/images/images.env"
cp "$target/images/openbao.tar" "$out/openbao-agent-image-${IMAGE_OPENBAO##*:}.tar"

log "binary"
bin="$target/release/vault-injector"
[ "$("$bin" version 2>/dev/null | head -n1 | awk '{print $2}')" = "$version" ] ||
  die "$bin version does not print $version"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/vault-injector-$version"
cp "$bin" LICENSE README.md CHANGELOG.md "$stage/vault-injector-$version/"
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  -czf "$out/vault-injector-$version-x86_64-linux.tar.gz" "vault-injector-$version"

log "chart (helm package)"
# shellcheck source=../tests/e2e/bin.sh
. tests/e2e/bin.sh
e2e_bin_all helm >/dev/null
"$E2E_HELM" package charts/vault-injector --destination "$out" >&2

(cd "$out" && sha256sum -- * > SHA256SUMS)
log "artifacts in $out:"
(cd "$out" && ls -l >&2 && sha256sum -c --quiet SHA256SUMS)
