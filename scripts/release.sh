#!/usr/bin/env bash
# scripts/release.sh: builds a release's artifacts into dist/ and pushes nothing anywhere.
#
#   scripts/release.sh                          -> dist/vault-injector-<version>/
#   RELEASE_REUSE_IMAGES=1 scripts/release.sh   take the image archives already built under
#                                               $CARGO_TARGET_DIR/images (CI's node tier builds
#                                               them) instead of building them again
#
# Artifacts (version = Cargo.toml's):
#   vault-injector-<version>-x86_64-linux.tar.gz   the release binary, LICENSE, README.md, CHANGELOG.md
#   vault-injector-image-<version>.tar             the injector image (docker-archive, tag
#                                                  localhost/vault-injector:<version>; retag and
#                                                  push it to your registry yourself)
#   openbao-agent-image-<openbao version>.tar      the agent image the end-to-end tests use
#   vault-injector-<version>.tgz                   the Helm chart (`helm package`)
#   SHA256SUMS                                     of every file above (`sha256sum -c SHA256SUMS`)
#
# Before writing anything it checks that one version runs through the release: Cargo.toml, the
# binary's `vault-injector version`, the chart's `version` and `appVersion`, the image's tag and
# its org.opencontainers.image.version label, and a CHANGELOG.md section; and that the image
# carries exactly the binary being archived.
# Needs what images/build.sh needs, python3, and helm (tests/e2e/bin.sh helm builds it when
# missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[release] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

version="$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)"
chart_version="$(awk '/^version:/ {print $2}' charts/vault-injector/Chart.yaml)"
app_version="$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' charts/vault-injector/Chart.yaml)"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "Cargo.toml version '$version' is not semver"
[ "$chart_version" = "$version" ] || die "charts/vault-injector/Chart.yaml version is $chart_version, Cargo.toml says $version"
[ "$app_version" = "$version" ] || die "charts/vault-injector/Chart.yaml appVersion is $app_version, Cargo.toml says $version"
grep -q "^## \[$version\]" CHANGELOG.md || die "CHANGELOG.md has no section for $version"

target="${CARGO_TARGET_DIR:-$ROOT/target}"
images="$target/images"
bin="$target/release/vault-injector"

if [ -n "${RELEASE_REUSE_IMAGES:-}" ] && [ -s "$images/vault-injector.tar" ] && [ -s "$images/openbao.tar" ] &&
  [ -s "$images/images.env" ] && [ -x "$bin" ]; then
  log "images: reusing $images (RELEASE_REUSE_IMAGES)"
else
  log "images (images/build.sh vault-injector openbao)"
  IMAGES_OUT="$images" images/build.sh vault-injector openbao
fi
# shellcheck source=/dev/null
. "$images/images.env"
[ -n "${IMAGE_OPENBAO:-}" ] || die "$images/images.env names no openbao image"

log "versions"
# `version` prints `vault-injector <version> (commit <sha>)`, then the upstream it replaces.
bin_line="$("$bin" version | head -n1)"
[ "$(awk '{print $2}' <<<"$bin_line")" = "$version" ] || die "$bin prints '$bin_line', not version $version"
# The image archive's own tag and label, and a digest of the binary inside it.
read -r image_tag image_label image_bin_sha < <(python3 - "$images/vault-injector.tar" <<'PY'
import hashlib, json, sys, tarfile
archive = tarfile.open(sys.argv[1])
manifest = json.load(archive.extractfile("manifest.json"))[0]
config = json.load(archive.extractfile(manifest["Config"]))
tag = manifest["RepoTags"][0].rsplit(":", 1)[1] if manifest.get("RepoTags") else "-"
label = (config.get("config", {}).get("Labels") or {}).get("org.opencontainers.image.version", "-")
digest = "-"
for layer in manifest["Layers"]:
    files = tarfile.open(fileobj=archive.extractfile(layer), mode="r:*")
    for name in ("usr/local/bin/vault-injector", "./usr/local/bin/vault-injector"):
        try:
            digest = hashlib.sha256(files.extractfile(name).read()).hexdigest()
        except KeyError:
            continue
print(tag, label, digest)
PY
)
[ "$image_tag" = "$version" ] || die "the injector image is tagged '$image_tag', not $version"
[ "$image_label" = "$version" ] || die "the injector image's version label is '$image_label', not $version"
[ "$image_bin_sha" = "$(sha256sum "$bin" | cut -d' ' -f1)" ] ||
  die "the injector image does not hold $bin (rebuild the images, or run without RELEASE_REUSE_IMAGES)"
log "version $version: Cargo.toml, binary ($bin_line), chart version and appVersion, image tag and label agree"

out="$ROOT/dist/vault-injector-$version"
rm -rf "$out"
mkdir -p "$out"
cp "$images/vault-injector.tar" "$out/vault-injector-image-$version.tar"
cp "$images/openbao.tar" "$out/openbao-agent-image-${IMAGE_OPENBAO##*:}.tar"

log "binary archive"
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
[ -s "$out/vault-injector-$version.tgz" ] || die "helm package did not write vault-injector-$version.tgz"

(cd "$out" && sha256sum -- * > SHA256SUMS)
log "artifacts in $out:"
(cd "$out" && ls -l >&2 && sha256sum -c --quiet SHA256SUMS)
